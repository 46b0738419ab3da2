import Foundation
import Testing

@Suite("dojo serve and its client commands", .serialized)
struct ServiceCLITests {
    @Test("serve, tenant add, submit, jobs, job show, job logs, cancel, usage, cluster status, fail/repair-tile, then SIGTERM")
    func endToEnd() throws {
        let server = try ServeProcess()
        defer { _ = server.stop() }
        #expect(server.output.contains("admin token: \(server.db).admin-token"))
        // Its first lines say how jobs are contained and limited.
        #expect(server.output.contains("sandbox: bubblewrap") && server.output.contains("limits: "), "\(server.output)")
        let admin = server.adminToken
        #expect(!admin.isEmpty)
        let env = ["DOJO_SERVER": server.url, "PATH": "/usr/bin:/bin"]
        func dojo(_ args: [String], token: String? = nil) -> (status: Int32, stdout: String, stderr: String) {
            var e = env
            if let token { e["DOJO_TOKEN"] = token }
            return runDojo(args, environment: e)
        }

        let add = dojo(["tenant", "add", "vision", "--quota", "4", "--borrow-limit", "2", "--token-file", server.db + ".admin-token"])
        #expect(add.status == 0, "\(add.stderr)")
        let token = add.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!token.isEmpty && !token.contains(" "))
        let list = dojo(["tenant", "list"], token: admin)
        #expect(list.status == 0 && list.stdout.contains("vision") && list.stdout.contains("4"), "\(list.stdout)\(list.stderr)")

        let sub = dojo(["submit", "--tiles", "2", "--name", "hello", "--time-limit", "60", "--", "/bin/sh", "-c", "echo hello from the job; sleep 0.5"], token: token)
        #expect(sub.status == 0, "\(sub.stderr)")
        #expect(sub.stdout.hasPrefix("Submitted job "), "\(sub.stdout)")
        let id = sub.stdout.split(separator: " ")[2]
        let long = dojo(["submit", "--parsable", "--shape", "1x1", "--", "/bin/sleep", "60"], token: token)
        #expect(long.status == 0 && Int(long.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) != nil, "\(long.stdout)\(long.stderr)")
        let longId = long.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let jobs = dojo(["jobs"], token: token)
        #expect(jobs.status == 0, "\(jobs.stderr)")
        for h in ["JOBID", "TENANT", "NAME", "STATE", "SHAPE", "TILES", "TIME", "DPU(REASON)"] { #expect(jobs.stdout.contains(h)) }
        #expect(jobs.stdout.contains("hello") && jobs.stdout.contains("vision"), "\(jobs.stdout)")

        // Wait for the short job to finish, then it shows only with --all.
        var finished = false
        for _ in 0..<200 {
            let s = dojo(["job", "show", String(id)], token: token)
            if s.stdout.range(of: #"State +COMPLETED"#, options: .regularExpression) != nil { finished = true; break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(finished)
        let show = dojo(["job", "show", String(id)], token: token)
        for field in ["JobId", "Name", "Tenant", "Command", "State", "Shape", "DPU", "TimeLimit", "ExitCode", "TileSeconds", "Transitions:", "RUNNING", "COMPLETED"] {
            #expect(show.stdout.contains(field), "\(field) missing:\n\(show.stdout)")
        }
        let logs = dojo(["job", "logs", String(id)], token: token)
        #expect(logs.status == 0 && logs.stdout.contains("hello from the job"), "\(logs.stdout)\(logs.stderr)")
        #expect(!dojo(["jobs"], token: token).stdout.contains(" hello "))
        #expect(dojo(["jobs", "--all"], token: token).stdout.contains("COMPLETED"))

        let status = dojo(["cluster", "status"], token: admin)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("legend:") && status.stdout.contains("utilisation"), "\(status.stdout)")
        #expect(status.stdout.contains("A  job \(longId)"), "\(status.stdout)")

        let fail = dojo(["cluster", "fail-tile", "5"], token: admin)
        #expect(fail.status == 0 && fail.stdout.contains("Tile 5 failed"), "\(fail.stdout)\(fail.stderr)")
        #expect(dojo(["cluster", "status"], token: admin).stdout.contains("X"))
        let repair = dojo(["cluster", "repair-tile", "5"], token: admin)
        #expect(repair.status == 0 && repair.stdout.contains("Tile 5 repaired"), "\(repair.stdout)\(repair.stderr)")

        let cancel = dojo(["cancel", longId], token: token)
        #expect(cancel.status == 0 && cancel.stdout.contains("Job \(longId)"), "\(cancel.stdout)\(cancel.stderr)")

        let audit = dojo(["audit"], token: admin)
        #expect(audit.status == 0, "\(audit.stderr)")
        for action in ["create-tenant", "fail-tile", "repair-tile"] { #expect(audit.stdout.contains(action), "\(audit.stdout)") }
        #expect(!audit.stdout.contains("cancel-job"), "a tenant cancelling its own job is not an admin action: \(audit.stdout)")
        #expect(dojo(["audit"], token: token).stderr.contains("admin"))

        let usage = dojo(["usage"], token: admin)
        #expect(usage.status == 0 && usage.stdout.contains("TENANT") && usage.stdout.contains("TILE-HOURS") && usage.stdout.contains("vision"), "\(usage.stdout)")

        // SIGTERM stops the server cleanly.
        #expect(server.stop() == 0, "\(server.output)")
        #expect(server.output.contains("stopped"))
    }

    @Test("client errors are one line 'Error: …' and a non-zero exit")
    func clientErrors() throws {
        let server = try ServeProcess()
        defer { _ = server.stop() }
        let env = ["DOJO_SERVER": server.url, "PATH": "/usr/bin:/bin"]
        let token = runDojo(["tenant", "add", "t", "--quota", "2", "--token", server.adminToken], environment: env).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let cases: [([String], [String: String], String)] = [
            (["jobs"], ["DOJO_SERVER": "http://127.0.0.1:1"], "not reachable at http://127.0.0.1:1"),
            (["jobs"], env, "missing token"),
            (["jobs", "--token", "bogus"], env, "token"),
            (["job", "show", "4242", "--token", token], env, "4242"),
            (["cancel", "4242", "--token", token], env, "4242"),
            (["submit", "--tiles", "5000", "--token", token, "--", "/bin/true"], env, "5000"),
            (["submit", "--token", token], env, "no command"),
            (["tenant", "add", "x", "--quota", "1", "--token", token], env, "admin"),
            (["cluster", "fail-tile", "3", "--token", token], env, "admin"),
            (["jobs", "--state", "SLEEPING", "--token", token], env, "SLEEPING"),
            (["jobs", "--server", "ftp://x"], env, "--server"),
            (["tenant", "list", "--token-file", "/nonexistent/token"], env, "/nonexistent/token"),
        ]
        for (args, e, text) in cases {
            let r = runDojo(args, environment: e)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.hasPrefix("Error: ") && r.stderr.contains(text), "\(args): \(r.stderr)")
            #expect(r.stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        let db = server.dir!.appendingPathComponent("x.sqlite").path
        for (args, text) in [(["--policy", "lifo"], "unknown policy"), (["--sandbox", "docker"], "--sandbox must be bwrap or none"),
                             (["--memory-per-tile", "lots"], "--memory-per-tile"), (["--memory-per-tile", "1M"], "at least 16M"),
                             (["--cpu-per-tile", "-1"], "--cpu-per-tile"), (["--disk-per-tenant", "-5G"], "--disk-per-tenant"),
                             (["--tls-cert", "/nonexistent.pem"], "--tls-cert and --tls-key go together"),
                             (["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"], "/nonexistent.pem"),
                             (["--tenant-uid-base", "0"], "--tenant-uid-base")] {
            let bad = runDojo(["serve", "--db", db, "--port", "0"] + args)
            #expect(bad.status != 0 && bad.stderr.hasPrefix("Error: ") && bad.stderr.contains(text), "\(args): \(bad.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: db), "a refused start creates no database")
    }

    @Test("dojo serve --tls-cert --tls-key serves HTTPS (curl with the CA answers; plain HTTP does not)")
    func tls() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dojo-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(_ exe: String, _ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        guard FileManager.default.fileExists(atPath: "/usr/bin/openssl"), FileManager.default.fileExists(atPath: "/usr/bin/curl") else {
            Issue.record("openssl and curl are needed for the TLS test")
            return
        }
        let gen = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                                               "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        #expect(gen.0 == 0, "\(gen.1)")
        let server = ServeProcess(db: dir.appendingPathComponent("dojo.sqlite").path, machine: "tray", extraArguments: ["--tls-cert", cert, "--tls-key", key])
        try server.start()
        defer { _ = server.stop() }
        #expect(server.url.hasPrefix("https://"), "\(server.output)")
        let ok = try run("/usr/bin/curl", ["-sS", "--cacert", cert, server.url + "/healthz"])
        #expect(ok.0 == 0 && ok.1.contains(#""status":"ok""#), "\(ok.1)")
        let plain = try run("/usr/bin/curl", ["-sS", server.url.replacingOccurrences(of: "https://", with: "http://") + "/healthz"])
        #expect(plain.0 != 0 || !plain.1.contains("ok"), "plain HTTP answered: \(plain.1)")
        let untrusted = try run("/usr/bin/curl", ["-sS", server.url + "/healthz"])
        #expect(untrusted.0 != 0, "a self-signed certificate must not be trusted without its CA")
    }

    @Test("a data-parallel training job (dojo train --ranks 2, Open MPI inside the sandbox, no network) runs to the end")
    func multiRankJob() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/mpirun") else { Issue.record("Open MPI is not installed"); return }
        let server = try ServeProcess()
        defer { _ = server.stop() }
        let env = ["DOJO_SERVER": server.url, "PATH": "/usr/bin:/bin"]
        let token = runDojo(["tenant", "add", "dp", "--quota", "2", "--token", server.adminToken], environment: env).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let sub = runDojo(["submit", "--parsable", "--tiles", "2", "--time-limit", "120", "--token", token, "--",
                           "dojo", "train", "--ranks", "2", "--model", "mlp", "--data", "fashion-mnist", "--train-examples", "1024",
                           "--eval-examples", "64", "--steps", "8", "--batch-size", "64", "--threads", "1"], environment: env)
        #expect(sub.status == 0, "\(sub.stderr)")
        let id = sub.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var state = ""
        for _ in 0..<600 {
            let show = runDojo(["job", "show", id, "--token", token], environment: env).stdout
            if let r = show.range(of: #"State +[A-Z_]+"#, options: .regularExpression) { state = String(show[r]) }
            if state.hasSuffix("COMPLETED") || state.hasSuffix("FAILED") { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let logs = runDojo(["job", "logs", id, "--token", token], environment: env).stdout
        #expect(state.hasSuffix("COMPLETED"), "\(state)\n\(logs)")
        #expect(logs.contains("over 2 ranks (data-parallel, 32 each)") && logs.contains("done in"), "\(logs)")
    }

    /// Processes of a job's ranks: those whose environment has its DOJO_JOB_ID and an Open MPI rank (pid → environment).
    static func rankProcesses(job: String) -> [pid_t: [String: String]] {
        var out: [pid_t: [String: String]] = [:]
        for e in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(e), let raw = FileManager.default.contents(atPath: "/proc/\(e)/environ") else { continue }
            var env: [String: String] = [:]
            for kv in raw.split(separator: 0) {
                let s = String(decoding: kv, as: UTF8.self)
                if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            }
            let stat = (try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8)) ?? ""
            if env["DOJO_JOB_ID"] == job, env["OMPI_COMM_WORLD_RANK"] != nil, !stat.contains(") Z ") { out[pid] = env }
        }
        return out
    }

    @Test("dojo submit --ranks 2: every rank sees its DPU; a failed tile stops all ranks and the requeued job resumes; cancel stops all")
    func ranksOfAJob() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/mpirun") else { Issue.record("Open MPI is not installed"); return }
        let server = try ServeProcess()
        defer { _ = server.stop() }
        let env = ["DOJO_SERVER": server.url, "PATH": "/usr/bin:/bin"]
        let token = runDojo(["tenant", "add", "dp", "--quota", "4", "--token", server.adminToken], environment: env).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        func state(_ id: String) -> String {
            let show = runDojo(["job", "show", id, "--token", token], environment: env).stdout
            return show.range(of: #"State +[A-Z_]+"#, options: .regularExpression).map { String(show[$0].split(separator: " ").last!) } ?? ""
        }
        func wait(_ what: String, timeout: Double = 60, _ done: () -> Bool) -> Bool {
            let end = Date().addingTimeInterval(timeout)
            while Date() < end { if done() { return true }; Thread.sleep(forTimeInterval: 0.1) }
            Issue.record("waited \(Int(timeout)) s for \(what)")
            return false
        }
        // Any program: mpirun -n 2 PROGRAM, each rank with the DPU in its environment.
        let hello = runDojo(["submit", "--parsable", "--tiles", "2", "--ranks", "2", "--token", token, "--",
                             "/bin/sh", "-c", "echo rank $OMPI_COMM_WORLD_RANK of $DOJO_RANKS on tiles $DOJO_DPU_TILES"], environment: env)
        let helloID = hello.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hello.status == 0, "\(hello.stderr)")
        _ = wait("the hello job") { ["COMPLETED", "FAILED"].contains(state(helloID)) }
        let helloLog = runDojo(["job", "logs", helloID, "--token", token], environment: env).stdout
        #expect(state(helloID) == "COMPLETED" && helloLog.contains("rank 0 of 2 on tiles") && helloLog.contains("rank 1 of 2 on tiles"), "\(helloLog)")
        // dojo train: --ranks 2 added by the service.
        let sub = runDojo(["submit", "--parsable", "--tiles", "2", "--ranks", "2", "--time-limit", "300", "--token", token, "--",
                           "dojo", "train", "--model", "mlp", "--data", "fashion-mnist", "--train-examples", "4096", "--eval-examples", "64",
                           "--steps", "100000", "--epochs", "100", "--batch-size", "64", "--threads", "1", "--checkpoint-every", "10"], environment: env)
        #expect(sub.status == 0, "\(sub.stderr)")
        let id = sub.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let show = runDojo(["job", "show", id, "--token", token], environment: env).stdout
        #expect(show.range(of: #"Ranks +2"#, options: .regularExpression) != nil, "\(show)")
        var first: [pid_t: [String: String]] = [:]
        guard wait("2 ranks running", { first = Self.rankProcesses(job: id); return first.count == 2 }) else { return }
        #expect(Set(first.values.compactMap { $0["DOJO_DPU_TILES"] }).count == 1, "every rank sees the same DPU")
        let tile = first.values.first!["DOJO_DPU_TILES"]!.split(separator: ",").first.map(String.init)!
        // A checkpoint, then a tile of its DPU fails: every rank stops, the job is requeued and resumes.
        _ = wait("a checkpoint") { FileManager.default.fileExists(atPath: server.db + ".tenants/dp/checkpoints/\(id)/checkpoint.safetensors") }
        let fail = runDojo(["cluster", "fail-tile", tile, "--token", server.adminToken], environment: env)
        #expect(fail.status == 0, "\(fail.stderr)")
        #expect(wait("the first attempt's ranks to end") { first.keys.allSatisfy { pid in Self.rankProcesses(job: id)[pid] == nil } })
        var second: [pid_t: [String: String]] = [:]
        #expect(wait("the requeued job's 2 ranks") { second = Self.rankProcesses(job: id); return second.count == 2 && Set(second.keys).isDisjoint(with: first.keys) })
        #expect(wait("the resumed run") { runDojo(["job", "logs", id, "--token", token], environment: env).stdout.contains("resuming at step") })
        // Cancel: every rank ends.
        let cancel = runDojo(["cancel", id, "--token", token], environment: env)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(wait("every rank to end after cancel", timeout: 30) { Self.rankProcesses(job: id).isEmpty })
        #expect(wait("CANCELLED", timeout: 30) { state(id) == "CANCELLED" })
        // More ranks than tiles: 422, one line.
        let tooMany = runDojo(["submit", "--tiles", "1", "--ranks", "2", "--token", token, "--", "/bin/true"], environment: env)
        #expect(tooMany.status != 0 && tooMany.stderr.contains("more than the job's DPU has tiles"), "\(tooMany.stderr)")
    }

    @Test("dojo --help names every command")
    func help() {
        let r = runDojo(["--help"])
        for c in ["serve", "submit", "jobs", "job", "cancel", "usage", "tenant", "audit", "cluster", "train", "sim"] {
            #expect(r.stdout.contains("  \(c) "), "\(c) missing from dojo --help")
        }
        let cluster = runDojo(["cluster", "--help"])
        for c in ["status", "fail-tile", "repair-tile", "replay", "bench"] { #expect(cluster.stdout.contains(c)) }
    }
}
