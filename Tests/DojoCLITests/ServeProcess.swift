import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `dojo serve` as a real process on a free port, on a database that outlives it: started, stopped (SIGTERM) or
/// SIGKILLed, and started again; plus a small HTTP client for the tests.
final class ServeProcess {
    /// The database as given to --db (relative to `cwd` when that is set).
    let db: String
    let cwd: String?
    let machine: String
    /// More `dojo serve` options (e.g. --tls-cert).
    let extraArguments: [String]
    /// A temporary folder this object made (and removes), if any.
    let dir: URL?
    var process: Process?
    var url = ""
    private var outPath = ""

    /// A new database in a new temporary folder; the server is started.
    convenience init(machine: String = "tray") throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dojo-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        self.init(db: dir.appendingPathComponent("dojo.sqlite").path, machine: machine, dir: dir)
        try start()
    }

    init(db: String, cwd: String? = nil, machine: String = "cabinet", dir: URL? = nil, extraArguments: [String] = []) {
        self.db = db; self.cwd = cwd; self.machine = machine; self.dir = dir; self.extraArguments = extraArguments
    }

    private var dbPath: String { (cwd.map { $0 + "/" } ?? "") + db }

    func start() throws {
        let p = Process()
        guard let exe = dojoExecutableURL else { throw CLIError("dojo executable not found") }
        p.executableURL = exe
        p.arguments = ["serve", "--db", db, "--machine", machine, "--port", "0", "--grace", "1", "--tick", "0.05"] + extraArguments
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        outPath = dbPath + ".serve-\(UUID().uuidString).out"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        p.standardOutput = h; p.standardError = h; p.standardInput = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = output
            if let r = text.range(of: #"https?://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) { url = String(text[r]); return }
            if !p.isRunning { throw CLIError("dojo serve exited: \(text)") }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw CLIError("dojo serve printed no URL in 30 s")
    }

    /// What the current server printed.
    var output: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    var adminToken: String { ((try? String(contentsOfFile: dbPath + ".admin-token", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }

    /// SIGTERM, then wait; returns the exit status.
    func stop() -> Int32 {
        guard let p = process else { return -1 }
        if p.isRunning { p.terminate() }
        let deadline = Date().addingTimeInterval(15)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        return p.terminationStatus
    }

    /// SIGKILL: the server dies at once; its jobs' workers do not.
    func sigkill() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// One HTTP request with the admin token; nil when the server did not answer.
    func request(_ method: String, _ path: String, _ body: [String: Any]? = nil) -> (status: Int, body: Data)? {
        var r = URLRequest(url: URL(string: url + path)!)
        r.httpMethod = method
        r.timeoutInterval = 10
        r.setValue("Bearer \(adminToken)", forHTTPHeaderField: "Authorization")
        if let body {
            r.httpBody = try? JSONSerialization.data(withJSONObject: body)
            r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, Data)?
        URLSession.shared.dataTask(with: r) { data, resp, _ in
            if let h = resp as? HTTPURLResponse { result = (h.statusCode, data ?? Data()) }
            done.signal()
        }.resume()
        done.wait()
        return result
    }

    deinit {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL) }
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
