import ArgumentParser
import DojoService
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where the service is and who calls: shared by every client command (submit, jobs, job, cancel, usage, tenant,
/// cluster status|fail-tile|repair-tile).
struct ServerOptions: ParsableArguments {
    @Option(help: "The server's URL (default: $DOJO_SERVER, else http://127.0.0.1:8080).")
    var server: String?
    @Option(help: "Your token (default: $DOJO_TOKEN).")
    var token: String?
    @Option(help: "Read the token from this file (the admin's is <db>.admin-token).")
    var tokenFile: String?

    func client() throws -> ServiceClient {
        let env = ProcessInfo.processInfo.environment
        let url = server ?? env["DOJO_SERVER"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8080"
        guard let base = URL(string: url.hasSuffix("/") ? String(url.dropLast()) : url), let scheme = base.scheme,
              scheme == "http" || scheme == "https", base.host != nil else {
            throw ClientError("--server must be an http:// or https:// URL, got '\(url)'")
        }
        var tok = token
        if let file = tokenFile {
            guard tok == nil else { throw ClientError("give --token or --token-file, not both") }
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ClientError("cannot read the token file \(file)")
            }
            tok = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if tok == nil, let t = env["DOJO_TOKEN"], !t.isEmpty { tok = t }
        return ServiceClient(base: base, token: tok)
    }
}

/// A client error: printed as one line `Error: …`, non-zero exit.
struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A tiny synchronous HTTP client for the service's JSON API (URLSession; the CLI commands are synchronous).
struct ServiceClient {
    let base: URL
    let token: String?

    private final class Box: @unchecked Sendable {
        var data: Data?
        var response: HTTPURLResponse?
        var error: (any Error)?
    }

    /// Sends a request; returns the body of a 2xx answer, throws `ClientError` with the server's message otherwise.
    func send(_ method: String, _ path: String, query: [(String, String)] = [], body: Data? = nil) throws -> Data {
        var comps = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty { comps.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        var req = URLRequest(url: comps.url!)
        req.httpMethod = method
        req.timeoutInterval = 30
        if let token { req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            req.httpBody = body
            req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let task = URLSession.shared.dataTask(with: req) { data, response, error in
            box.data = data
            box.response = response as? HTTPURLResponse
            box.error = error
            done.signal()
        }
        task.resume()
        done.wait()
        if let error = box.error {
            let code = (error as? URLError)?.code
            if code == .cannotConnectToHost || code == .cannotFindHost || code == .networkConnectionLost || code == .timedOut
                || code == .notConnectedToInternet || code == .dnsLookupFailed {
                throw ClientError("the server is not reachable at \(base.absoluteString) (\(error.localizedDescription)); start it with 'dojo serve' or pass --server")
            }
            throw ClientError("request to \(base.absoluteString) failed: \(error.localizedDescription)")
        }
        guard let response = box.response else { throw ClientError("no answer from \(base.absoluteString)") }
        let data = box.data ?? Data()
        guard (200..<300).contains(response.statusCode) else {
            struct ErrorBody: Decodable { var error: String }
            var message = (try? JSONDecoder().decode(ErrorBody.self, from: data))?.error
                ?? "HTTP \(response.statusCode) from \(base.absoluteString)\(path)"
            if response.statusCode == 401 && token == nil { message += " (pass --token, --token-file or set DOJO_TOKEN)" }
            throw ClientError(message.replacingOccurrences(of: "\n", with: " "))
        }
        return data
    }

    func get<T: Decodable>(_ type: T.Type, _ path: String, query: [(String, String)] = []) throws -> T {
        try decode(type, send("GET", path, query: query))
    }

    func post<T: Decodable, B: Encodable>(_ type: T.Type, _ path: String, _ body: B) throws -> T {
        try decode(type, send("POST", path, body: try JSONEncoder().encode(body)))
    }

    func post<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
        try decode(type, send("POST", path))
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch {
            throw ClientError("the server's answer is not what this client expects (\(error)); is \(base.absoluteString) an OpenDojo server of the same version?")
        }
    }
}

// MARK: formatting shared by the client commands

/// Elapsed time like squeue: M:SS, H:MM:SS, D-HH:MM:SS.
func squeueTime(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "-" }
    let s = max(0, Int(seconds.rounded(.down)))
    let d = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60
    func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    if d > 0 { return "\(d)-\(two(h)):\(two(m)):\(two(sec))" }
    if h > 0 { return "\(h):\(two(m)):\(two(sec))" }
    return "\(m):\(two(sec))"
}

/// A DPU as one short field: `pod0:x0y0+2x3`.
func dpuText(_ d: DPUInfo?) -> String {
    guard let d else { return "-" }
    return "pod\(d.pod):x\(d.x)y\(d.y)+\(d.w)x\(d.h)"
}

/// A Unix time as local date and time.
func timeText(_ t: Double?) -> String {
    guard let t else { return "-" }
    let f = DateFormatter()
    f.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return f.string(from: Date(timeIntervalSince1970: t))
}

/// How long a job's last attempt ran: to now while it holds tiles, to its end once final, 0 while it waits.
func elapsed(_ j: JobInfo, now: Double = Date().timeIntervalSince1970) -> Double {
    guard let start = j.startTime else { return 0 }
    if j.state.isActive { return max(0, now - start) }
    if let end = j.endTime, end >= start { return end - start }
    return 0
}
