import DojoServer
import DojoService
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Testing

/// A real JobService on a temporary SQLite file, its controller loop running, and the HTTP API in front of it.
struct TestServer {
    let service: JobService
    let dir: URL
    let admin: String

    /// Runs `body` with a fresh service and a test client (`.router`: in-process; `.live`: a real socket).
    static func with<T: Sendable>(machine: String = "tray", setup: TestingSetup = .router, grace: Double = 1,
                                  configure: (inout ServiceOptions) -> Void = { _ in },
                                  _ body: @Sendable (TestServer, any TestClientProtocol) async throws -> T) async throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dojo-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { removeTree(dir) }
        var options = ServiceOptions(database: dir.appendingPathComponent("dojo.sqlite").path, machine: machine, grace: grace, tickInterval: 0.05)
        configure(&options)
        // The service, its controller, the server's handlers and the test's own requests run on threads of their own:
        // the CLI tests beside them block the cooperative pool (one thread a core) while their `dojo` runs, and on a
        // 2-core machine two of them left the server no thread for 20 s (the test client's read timeout).
        return try await withTaskExecutorPreference(testServerThreads) {
            let service = try await JobService.open(options)
            let server = TestServer(service: service, dir: dir, admin: await service.adminToken)
            let controller = Task(executorPreference: testServerThreads) { await service.run() }
            defer { controller.cancel() }
            let app = try DojoServer.application(api: DojoAPI(service: service), host: "127.0.0.1", port: 0)
            let result = try await app.test(setup) { client in try await body(server, client) }
            controller.cancel()
            _ = await controller.value
            // Stop what the test left running (its jobs are short, but a failed test must not leave processes behind).
            if let jobs = try? await service.jobs(by: .admin) {
                for j in jobs where !j.state.isFinal { _ = try? await service.cancel(j.id, by: .admin) }
                await service.tick()
            }
            return result
        }
    }
}

/// The threads every TestServer runs on (they live as long as the test process).
let testServerThreads = DedicatedThreads(count: 4, name: "test-server")

/// Removes a test's folder. A hostile job's tree deeper than PATH_MAX (HostileTenantTests, 27) defeats
/// FileManager.removeItem; GNU rm walks it by descriptors.
func removeTree(_ url: URL) {
    if (try? FileManager.default.removeItem(at: url)) != nil || !FileManager.default.fileExists(atPath: url.path) { return }
    let rm = Process()
    rm.executableURL = URL(fileURLWithPath: "/bin/rm")
    rm.arguments = ["-rf", "--", url.path]
    try? rm.run()
    rm.waitUntilExit()
}

/// What a request returned, decoded.
struct Reply: Sendable {
    let status: Int
    let body: String
    let contentType: String?
    var data: Data { Data(body.utf8) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: data) }
    /// The `error` field of a JSON error body (nil when the body is not one).
    var errorMessage: String? {
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], obj.count == 1 else { return nil }
        return obj["error"] as? String
    }
}

extension TestClientProtocol {
    /// Sends a request with an optional bearer token and body.
    func call(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: String? = nil,
              headers extra: [(String, String)] = []) async throws -> Reply {
        var headers = HTTPFields()
        if let token { headers[HTTPField.Name("Authorization")!] = "Bearer \(token)" }
        if json != nil { headers[HTTPField.Name("Content-Type")!] = "application/json" }
        for (k, v) in extra { if let n = HTTPField.Name(k) { headers.append(HTTPField(name: n, value: v)) } }
        let body = json.map { ByteBuffer(string: $0) }
        return try await execute(uri: uri, method: method, headers: headers, body: body) { r in
            Reply(status: Int(r.status.code), body: String(decoding: r.body.readableBytesView, as: UTF8.self),
                  contentType: r.headers[HTTPField.Name("Content-Type")!])
        }
    }

    /// Adds a tenant as the admin and returns its token.
    func addTenant(_ name: String, quota: Int, admin: String, borrowLimit: Int? = nil) async throws -> String {
        let b = borrowLimit.map { #","borrow_limit":\#($0)"# } ?? ""
        let r = try await call(.post, "/v1/tenants", token: admin, json: #"{"name":"\#(name)","quota":\#(quota)\#(b)}"#)
        #expect(r.status == 201, "\(r.body)")
        return try r.decode(TenantInfo.self).token ?? ""
    }

    /// Submits a job and returns it.
    func submit(_ json: String, token: String) async throws -> JobInfo {
        let r = try await call(.post, "/v1/jobs", token: token, json: json)
        #expect(r.status == 201, "\(r.body)")
        return try r.decode(JobInfo.self)
    }
}

/// Waits until `check` holds (polling), up to `timeout` seconds.
func eventually(timeout: Double = 15, _ check: () async throws -> Bool) async throws -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if try await check() { return true }
        try await Task.sleep(nanoseconds: 50_000_000)
    }
    return try await check()
}
