import DojoService
import Foundation
import Hummingbird

/// The HTTP API of `dojo serve` (OpenAPI document: Sources/DojoServer/Web/openapi.yaml, served at /openapi.yaml).
///
/// One responder routes every request itself, so that every answer the server gives — unknown routes, wrong
/// methods, oversized bodies, malformed JSON, a failed store — is JSON `{"error": "…"}` with the right status;
/// nothing escapes as Hummingbird's default empty 500. Routes:
///
///     GET  /                      the dashboard (HTML; it asks for the token)            no token
///     GET  /healthz               {"status":"ok"}                                        no token
///     GET  /openapi.yaml          this API's OpenAPI 3.1 document                        no token
///     GET  /metrics               Prometheus text (has tenant names: admin token)
///     POST /v1/jobs               JobSubmission → 201 JobInfo
///     GET  /v1/jobs               ?state=A,B&tenant=T&limit=N → [JobInfo]
///     GET  /v1/jobs/{id}          JobInfo with transitions
///     POST /v1/jobs/{id}/cancel   JobInfo       (also DELETE /v1/jobs/{id})
///     GET  /v1/jobs/{id}/logs     ?tail=BYTES → text/plain
///     GET  /v1/cluster            ClusterStatus
///     GET  /v1/usage              [UsageRow]
///     POST /v1/tenants            {name, quota, borrow_limit, network} → 201 TenantInfo with its token  admin
///     GET  /v1/audit              ?limit=N → [AuditEntry], newest first                          admin
///     GET  /v1/tenants            [TenantInfo]                                                   admin (a tenant: itself)
///     POST /v1/tiles/{id}/fail    {"tile": id, "requeued": [job ids]}                            admin
///     POST /v1/tiles/{id}/repair  {"tile": id}                                                   admin
public struct DojoAPI: HTTPResponder {
    public typealias Context = BasicRequestContext

    public let service: JobService
    /// Largest request body accepted (bigger: 413).
    public let maxBodyBytes: Int

    public init(service: JobService, maxBodyBytes: Int = 64 * 1024) {
        self.service = service
        self.maxBodyBytes = maxBodyBytes
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        do {
            return try await route(request)
        } catch let e as ServiceError {
            return Self.error(HTTPResponse.Status(code: e.kind.rawValue), e.message)
        } catch let e as HTTPMethodError {
            var r = Self.error(.methodNotAllowed, "method \(e.method) is not allowed on \(e.path) (allowed: \(e.allowed.joined(separator: ", ")))")
            r.headers[.allow] = e.allowed.joined(separator: ", ")
            return r
        } catch {
            // A failure of the service itself (the store, the file system): say what it was, never an empty 500.
            return Self.error(.internalServerError, "internal error: \(error)")
        }
    }

    // MARK: routing

    struct HTTPMethodError: Error { var method: String; var path: String; var allowed: [String] }

    func route(_ request: Request) async throws -> Response {
        let path = request.uri.path
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let method = request.method
        func allow(_ methods: HTTPRequest.Method...) throws {
            guard methods.contains(method) || (method == .head && methods.contains(.get)) else {
                throw HTTPMethodError(method: method.rawValue, path: path, allowed: methods.map(\.rawValue))
            }
        }
        let query = try Query(request.uri.query)

        switch parts.count {
        case 0:
            try allow(.get)
            if query["token"] != nil {
                throw ServiceError.badRequest("a token in the query string reaches logs and proxies: open /#token=TOKEN (a fragment, kept in the browser) or paste it into the page")
            }
            try query.only([])
            return Self.text(EmbeddedWeb.dashboard, contentType: "text/html; charset=utf-8")
        case 1 where parts[0] == "healthz":
            try allow(.get)
            return Self.rawJSON(#"{"status":"ok"}"#)
        case 1 where parts[0] == "openapi.yaml":
            try allow(.get)
            return Self.text(EmbeddedWeb.openAPI, contentType: "application/yaml; charset=utf-8")
        case 1 where parts[0] == "metrics":
            try allow(.get)
            try query.only([])
            // Admin only: the samples name tenants and their use (Prometheus: `authorization: {credentials_file: <db>.admin-token}`).
            guard try await principal(request) == .admin else { throw ServiceError.forbidden("/metrics needs the admin token") }
            return Self.text(await service.metrics(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        default:
            break
        }
        guard parts.first == "v1", parts.count >= 2 else { throw Self.noRoute(method, path) }
        let rest = Array(parts.dropFirst())

        switch (rest[0], rest.count) {
        case ("jobs", 1):
            try allow(.get, .post)
            let who = try await principal(request)
            if method == .post {
                try query.only([])
                let body = try await self.body(request)
                let submission = try JobSubmission.strict(body)
                let info = try await service.submit(submission, by: who)
                return try Self.json(info, status: .created, location: "/v1/jobs/\(info.id)")
            }
            try query.only(["state", "tenant", "limit"])
            var states: [JobPhase]?
            if let s = query["state"] {
                states = try s.split(separator: ",", omittingEmptySubsequences: false).map { (item: Substring) throws -> JobPhase in
                    let name = String(item).trimmingCharacters(in: CharacterSet.whitespaces).uppercased()
                    guard let p = JobPhase(rawValue: name) else {
                        throw ServiceError.badRequest("query 'state': unknown state '\(StrictObject.clip(String(item)))' (one of \(JobPhase.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    return p
                }
            }
            let limit = try query.int("limit", min: 1)
            let tenant = query["tenant"]
            if let t = tenant, t.isEmpty { throw ServiceError.badRequest("query 'tenant' is empty") }
            return try Self.json(try await service.jobs(by: who, states: states, tenant: tenant, limit: limit))

        case ("jobs", 2), ("jobs", 3):
            let id = try Self.id(rest[1], what: "job")
            if rest.count == 2 {
                try allow(.get, .delete)
                try query.only([])
                let who = try await principal(request)
                if method == .delete { return try Self.json(try await service.cancel(id, by: who)) }
                return try Self.json(try await service.job(id, by: who))
            }
            switch rest[2] {
            case "cancel":
                try allow(.post)
                try query.only([])
                let who = try await principal(request)
                return try Self.json(try await service.cancel(id, by: who))
            case "logs":
                try allow(.get)
                try query.only(["tail"])
                let who = try await principal(request)
                let tail = try query.int("tail", min: 0, max: JobService.maxTail)
                return Self.text(try await service.logs(id, by: who, tailBytes: tail), contentType: "text/plain; charset=utf-8")
            default:
                throw Self.noRoute(method, path)
            }

        case ("cluster", 1):
            try allow(.get)
            try query.only([])
            let who = try await principal(request)
            return try Self.json(try await service.cluster(by: who))

        case ("usage", 1):
            try allow(.get)
            try query.only([])
            let who = try await principal(request)
            return try Self.json(try await service.usage(by: who))

        case ("tenants", 1):
            try allow(.get, .post)
            try query.only([])
            let who = try await principal(request)
            if method == .post {
                // Admin only: refuse a tenant before reading its body, so a tenant learns nothing from the answer.
                guard who == .admin else { throw ServiceError.forbidden("only the admin token may add tenants") }
                let t = try TenantRequest.strict(try await body(request))
                let info = try await service.createTenant(name: t.name, quota: t.quota, borrowLimit: t.borrowLimit, network: t.network, by: who)
                return try Self.json(info, status: .created)
            }
            return try Self.json(try await service.tenants(by: who))

        case ("audit", 1):
            try allow(.get)
            try query.only(["limit"])
            let who = try await principal(request)
            return try Self.json(try await service.auditLog(by: who, limit: try query.int("limit", min: 1, max: 100_000)))

        case ("tiles", 3):
            let tile = try Self.id(rest[1], what: "tile", allowZero: true)
            guard rest[2] == "fail" || rest[2] == "repair" else { throw Self.noRoute(method, path) }
            try allow(.post)
            try query.only([])
            let who = try await principal(request)
            guard who == .admin else { throw ServiceError.forbidden("only the admin token may \(rest[2]) tiles") }
            if rest[2] == "fail" {
                let requeued = try await service.failTile(tile, by: who)
                return try Self.json(TileAction(tile: tile, action: "fail", requeued: requeued))
            }
            try await service.repairTile(tile, by: who)
            return try Self.json(TileAction(tile: tile, action: "repair", requeued: nil))

        default:
            throw Self.noRoute(method, path)
        }
    }

    struct TileAction: Encodable { var tile: Int; var action: String; var requeued: [Int]? }

    static func noRoute(_ method: HTTPRequest.Method, _ path: String) -> ServiceError {
        .notFound("no such route: \(method.rawValue) \(StrictObject.clip(path)) (see /openapi.yaml)")
    }

    /// A job or tile id in a path: a whole number (job ids from 1, tile ids from 0).
    static func id(_ s: String, what: String, allowZero: Bool = false) throws -> Int {
        guard s.count <= 18, s.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(s), v >= (allowZero ? 0 : 1) else {
            throw ServiceError.badRequest("\(what) id must be a whole number\(allowZero ? "" : " ≥ 1"), got '\(StrictObject.clip(s))'")
        }
        return v
    }

    // MARK: authentication and bodies

    /// `Authorization: Bearer TOKEN` → who calls (401 when missing, malformed or unknown).
    func principal(_ request: Request) async throws -> Principal {
        let values = request.headers[values: .authorization]
        if values.count > 1 { throw ServiceError.unauthorized("send one Authorization header, got \(values.count)") }
        guard let header = values.first else {
            throw ServiceError.unauthorized("missing token: send 'Authorization: Bearer TOKEN'")
        }
        let pieces = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard pieces.count == 2, pieces[0].lowercased() == "bearer" else {
            throw ServiceError.unauthorized("malformed Authorization header: expected 'Bearer TOKEN'")
        }
        return try await service.authenticate(token: pieces[1].trimmingCharacters(in: .whitespaces))
    }

    /// The request body, at most `maxBodyBytes` (more: 413, whatever Content-Length says).
    func body(_ request: Request) async throws -> Data {
        if let cl = request.headers[.contentLength], let n = Int(cl), n > maxBodyBytes {
            throw ServiceError(.tooLarge, "request body of \(n) bytes is over the limit of \(maxBodyBytes) bytes")
        }
        var data = Data()
        for try await chunk in request.body {
            data.append(contentsOf: chunk.readableBytesView)
            if data.count > maxBodyBytes {
                throw ServiceError(.tooLarge, "request body is over the limit of \(maxBodyBytes) bytes")
            }
        }
        return data
    }

    // MARK: responses

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, location: String? = nil) throws -> Response {
        let data = try encoder.encode(value)
        var r = Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                         body: .init(byteBuffer: ByteBuffer(bytes: data)))
        if let location { r.headers[.location] = location }
        return r
    }

    static func rawJSON(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func text(_ text: String, contentType: String) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    struct ErrorBody: Codable { var error: String }

    /// `{"error": message}` with `status`.
    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        let data = (try? encoder.encode(ErrorBody(error: message))) ?? Data(#"{"error":"error"}"#.utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The query string, strictly: known parameters only, each at most once.
struct Query {
    var values: [String: String] = [:]

    init(_ query: String?) throws {
        guard let q = query, !q.isEmpty else { return }
        for item in q.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let rawKey = String(kv[0]), rawValue = kv.count > 1 ? String(kv[1]) : ""
            let key = Self.decode(rawKey), value = Self.decode(rawValue)
            guard let key, let value else {
                throw ServiceError.badRequest("query: malformed percent-encoding in '\(StrictObject.clip(String(item)))'")
            }
            if values[key] != nil { throw ServiceError.badRequest("query '\(StrictObject.clip(key))' given twice") }
            values[key] = value
        }
    }

    static func decode(_ s: String) -> String? {
        s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    subscript(_ key: String) -> String? { values[key] }

    /// Rejects parameters not in `allowed`.
    func only(_ allowed: [String]) throws {
        if let bad = values.keys.filter({ !allowed.contains($0) }).sorted().first {
            throw ServiceError.badRequest("unknown query parameter '\(StrictObject.clip(bad))'"
                                          + (allowed.isEmpty ? " (this route takes none)" : " (allowed: \(allowed.joined(separator: ", ")))"))
        }
    }

    func int(_ key: String, min: Int, max: Int = Int.max) throws -> Int? {
        guard let s = values[key] else { return nil }
        guard s.count <= 18, s.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(s), v >= min, v <= max else {
            throw ServiceError.badRequest("query '\(key)' must be a whole number \(max == Int.max ? "≥ \(min)" : "\(min)…\(max)"), got '\(StrictObject.clip(s))'")
        }
        return v
    }
}
