import DojoServer
import DojoService
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Testing

/// A small seeded generator (SplitMix64), so a failing case can be replayed from its seed and index.
struct FuzzRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) / 1_000_000 < p }
    mutating func pick<T>(_ xs: [T]) -> T { xs[int(xs.count)] }
}

/// Inputs a client can get wrong, mixed: bodies, headers, paths, ids, query strings.
struct Fuzzer {
    var rng: FuzzRNG
    let tokens: [String?]

    static let validBodies = [
        #"{"name":"fz","command":["/bin/true"],"tiles":1,"time_limit":5}"#,
        #"{"command":["/bin/true"],"shape":"1x2","priority":3,"retries":0}"#,
        #"{"command":["/bin/true"],"tiles":2,"checkpoint_dir":"/tmp/fuzz-ckpt","time_limit":2.5}"#,
        #"{"name":"q","quota":1,"borrow_limit":2}"#,
    ]
    static let weird = ["", " ", "\u{0}", "\u{1F525}", "é", "\\", "\"", "{", "}", "[", "]", ":", ",", "null", "true", "-1", "0", "1e309",
                        "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1.5", "NaN", "%00", "%zz", "..", "/", "?", "&",
                        "=", "#", "+", "%2F", "\n", "\r\n", "\t", String(repeating: "a", count: 300), "ＡＢＣ", "'; DROP TABLE jobs; --"]
    static let keys = ["name", "command", "tiles", "shape", "priority", "time_limit", "retries", "checkpoint_dir", "tenant", "quota",
                       "borrow_limit", "id", "state", "__proto__", "", "Tiles", "tiles ", "command\u{0}"]

    mutating func jsonValue(depth: Int = 0) -> String {
        switch rng.int(depth > 2 ? 7 : 9) {
        case 0: return "null"
        case 1: return rng.chance(0.5) ? "true" : "false"
        case 2: return "\(Int64(bitPattern: rng.next()) >> rng.int(63))"
        case 3: return rng.pick(["0", "-0", "1.5", "-3", "1e3", "1e309", "-1e-400", "0.1", "123456789012345678901234567890", "2"])
        case 4: return "\"" + rng.pick(Self.weird).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\t", with: "\\t")
            .replacingOccurrences(of: "\u{0}", with: "\\u0000") + "\""
        case 5: return rng.pick(["\"/bin/true\"", "\"2x3\"", "\"1x1\"", "\"0x0\"", "\"-1x2\"", "\"x\"", "\"4x30\"", "\"99999x99999\""])
        case 6: return "[" + (0..<rng.int(4)).map { _ in rng.chance(0.6) ? "\"/bin/true\"" : jsonValue(depth: depth + 1) }.joined(separator: ",") + "]"
        case 7: return "[" + (0..<rng.int(3)).map { _ in jsonValue(depth: depth + 1) }.joined(separator: ",") + "]"
        default: return object(depth: depth + 1)
        }
    }

    mutating func object(depth: Int = 0) -> String {
        "{" + (0..<rng.int(5)).map { _ in "\"\(rng.pick(Self.keys))\":\(jsonValue(depth: depth))" }.joined(separator: ",") + "}"
    }

    /// A body: a valid one mutated at the byte level, a generated object, garbage, or an oversized one.
    mutating func body() -> String? {
        switch rng.int(10) {
        case 0: return nil
        case 1, 2, 3:
            var bytes = Array(rng.pick(Self.validBodies).utf8)
            for _ in 0..<(1 + rng.int(4)) {
                guard !bytes.isEmpty else { break }
                let i = rng.int(bytes.count)
                switch rng.int(4) {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.remove(at: i)
                case 2: bytes.insert(contentsOf: Array(rng.pick(Self.weird).utf8), at: i)
                default: bytes = Array(bytes[..<i])
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        case 4, 5: return object()
        case 6: return rng.pick(Self.validBodies)
        case 7: return jsonValue()
        case 8: return String(repeating: rng.chance(0.5) ? "[" : "{\"a\":", count: 1 + rng.int(3000))
        default:
            return rng.chance(0.2) ? "{\"name\":\"" + String(repeating: "x", count: 70_000) + "\",\"command\":[\"/bin/true\"]}" : rng.pick(Self.weird)
        }
    }

    mutating func id() -> String {
        rng.pick(["1", "2", "3", "0", "-1", "999999", "abc", "1.0", "1e3", "%31", "99999999999999999999", "", "0x10", " 1", "1/", "\(rng.int(50))", rng.pick(Self.weird)])
    }

    mutating func path() -> String {
        let templates = ["/v1/jobs", "/v1/jobs/ID", "/v1/jobs/ID/cancel", "/v1/jobs/ID/logs", "/v1/cluster", "/v1/usage", "/v1/tenants",
                         "/v1/tiles/ID/fail", "/v1/tiles/ID/repair", "/metrics", "/healthz", "/openapi.yaml", "/", "/v1", "/v1/", "//v1//jobs",
                         "/v1/jobs/ID/ID", "/v1/../v1/jobs", "/v2/jobs", "/V1/JOBS", "/v1/jobs%2F1", "/v1/tiles/ID", "/v1/tenants/ID"]
        var p = rng.pick(templates)
        while let r = p.range(of: "ID") { p.replaceSubrange(r, with: id().addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "x") }
        if rng.chance(0.4) {
            let params = (0..<(1 + rng.int(3))).map { _ -> String in
                let k = rng.pick(["state", "limit", "tenant", "tail", "token", "x", "", "state[]", "limit"])
                let v = rng.pick(["PENDING,RUNNING", "running", "RUNNING,,", "5", "0", "-1", "abc", "999999999999999999999", "%zz", "%", "t",
                                  "", "COMPLETED", "a+b", "%E2%9C%93", "1e2"])
                return rng.chance(0.1) ? k : "\(k)=\(v)"
            }
            p += "?" + params.joined(separator: rng.chance(0.9) ? "&" : ";")
        }
        return p
    }

    mutating func method() -> HTTPRequest.Method {
        rng.pick([.get, .get, .get, .post, .post, .post, .delete, .put, .patch, .head, .options])
    }

    mutating func headers() -> [(String, String)] {
        var h: [(String, String)] = []
        switch rng.int(8) {
        case 0: break
        case 1: h.append(("Authorization", rng.pick(["Bearer", "Bearer ", "bearer x", "Basic abc", "Token abc", "Bearer  a b c", ""])))
        case 2: h.append(("Authorization", "Bearer " + rng.pick(Self.weird).filter { $0 != "\n" && $0 != "\r" && $0 != "\u{0}" }))
        case 3: h.append(("Authorization", "Bearer x")); h.append(("Authorization", "Bearer y"))
        default: if let t = rng.pick(tokens) { h.append(("Authorization", (rng.chance(0.9) ? "Bearer " : "bEaReR ") + t)) }
        }
        if rng.chance(0.3) { h.append(("Content-Type", rng.pick(["application/json", "text/plain", "application/x-www-form-urlencoded", "", "💥"]))) }
        if rng.chance(0.1) { h.append(("Accept", "*/*")) }
        return h
    }
}

@Suite("DojoServer fuzzing", .serialized)
struct FuzzTests {
    @Test("3,000 seeded random and mutated requests: never a 5xx, every 4xx a JSON error, rejected requests change nothing")
    func fuzz() async throws {
        try await TestServer.with(machine: "tray") { s, client in
            let alice = try await client.addTenant("alice", quota: 3, admin: s.admin, borrowLimit: 3)
            let bob = try await client.addTenant("bob", quota: 3, admin: s.admin)
            // Some jobs to aim at: alice's running one, bob's queued one, a finished one.
            let a = try await client.submit(#"{"command":["/bin/sleep","60"],"tiles":1}"#, token: alice)
            _ = try await client.submit(#"{"command":["/bin/true"],"tiles":1}"#, token: bob)
            _ = try await client.submit(#"{"command":["/bin/sleep","60"],"tiles":6,"priority":-5}"#, token: bob)
            var fz = Fuzzer(rng: FuzzRNG(state: 20_240_611), tokens: [alice, bob, s.admin, nil, "nope", String(alice.dropLast())])
            var statuses: [Int: Int] = [:]
            var accepted = 0, tenantsAdded = 0
            var cancelAccepted = false
            var failures: [String] = []
            let jobsBefore = try await s.service.jobs(by: .admin).count
            let tenantsBefore = try await s.service.tenants(by: .admin).count
            for i in 0..<3000 {
                let method = fz.method(), path = fz.path(), headers = fz.headers()
                let body = method == .get || method == .head ? (fz.rng.chance(0.1) ? fz.body() : nil) : fz.body()
                let countBefore = try await s.service.jobs(by: .admin).count
                let aBefore = try await s.service.job(a.id, by: .admin).state
                let r = try await client.call(method, path, json: nil, headers: headers + (body.map { _ in [("Content-Type", "application/json")] } ?? []), rawBody: body)
                statuses[r.status, default: 0] += 1
                if r.status < 300 && (path.contains("cancel") || method == .delete) { cancelAccepted = true }
                let countAfter = try await s.service.jobs(by: .admin).count
                let what = "#\(i) \(method) \(path) headers \(headers) body \(String((body ?? "-").prefix(120)))"
                if r.status >= 500 { failures.append("\(what) → \(r.status) \(r.body.prefix(300))") }
                if r.status >= 400 {
                    if method != .head && r.errorMessage == nil { failures.append("\(what) → \(r.status) not a JSON error: \(r.body.prefix(200))") }
                    if countAfter != countBefore { failures.append("\(what) → \(r.status) but the job count went \(countBefore) → \(countAfter)") }
                    // A rejected request must not have stopped alice's job (it sleeps 60 s), unless an accepted cancel
                    // earlier is still taking effect (SIGTERM, then the controller books it).
                    let aAfter = try await s.service.job(a.id, by: .admin).state
                    if !cancelAccepted && aAfter != aBefore && aAfter == .cancelled { failures.append("\(what) → \(r.status) but job \(a.id) was cancelled") }
                } else if r.status == 201 && r.body.contains("\"transitions\"") {
                    accepted += 1
                    if countAfter != countBefore + 1 { failures.append("\(what) → 201 but the job count went \(countBefore) → \(countAfter)") }
                } else if r.status == 201 {
                    tenantsAdded += 1
                }
                if failures.count > 20 { break }
            }
            #expect(failures.isEmpty, "\(failures.count) failures:\n\(failures.joined(separator: "\n"))")
            let jobsAfter = try await s.service.jobs(by: .admin).count
            #expect(jobsAfter == jobsBefore + accepted, "jobs \(jobsBefore) + \(accepted) accepted ≠ \(jobsAfter)")
            #expect(try await s.service.tenants(by: .admin).count == tenantsBefore + tenantsAdded)
            // The mix exercised the error paths, not only the happy ones.
            for code in [200, 400, 401, 404, 405] { #expect(statuses[code, default: 0] > 0, "no \(code) in \(statuses)") }
            print("fuzz: statuses \(statuses.sorted { $0.key < $1.key }), \(accepted) jobs accepted, \(tenantsAdded) tenants added")
        }
    }
}

extension TestClientProtocol {
    /// A request with a raw body (any bytes, not necessarily JSON).
    func call(_ method: HTTPRequest.Method, _ uri: String, json: String?, headers extra: [(String, String)], rawBody: String?) async throws -> Reply {
        var headers = HTTPFields()
        for (k, v) in extra {
            if let n = HTTPField.Name(k), HTTPField.isValidValue(v) { headers.append(HTTPField(name: n, value: v)) }
        }
        return try await execute(uri: uri, method: method, headers: headers, body: rawBody.map { ByteBuffer(string: $0) }) { r in
            Reply(status: Int(r.status.code), body: String(decoding: r.body.readableBytesView, as: UTF8.self),
                  contentType: r.headers[HTTPField.Name("Content-Type")!])
        }
    }
}
