import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `dojo serve --hosts FILE`: a job's ranks on the hosts of its DPU's tiles (network namespaces as hosts), a host that
/// stops answering fails its tiles and the job resumes when it is back; bad host files are one error line.
@Suite(.serialized) struct ServiceHostsTests {
    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/netns-hosts.sh").path
    }

    @Test("bad --hosts files and flags: one line naming the problem, non-zero, no server")
    func badHostFiles() throws {
        let d = DistributedTrainTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        // The tray has 6 tiles (0…5).
        let cases: [(String, [String], String)] = [
            ("10.0.0.1 tiles=0-2 cores=1\n", [], "tile 3 and 2 more on no host"),
            ("10.0.0.1 tiles=0-5 cores=1\n10.0.0.2 tiles=5 cores=1\n", [], "tile 5 is on two hosts"),
            ("10.0.0.1 tiles=0-6 cores=1\n", [], "tile 6 is not a tile of this machine"),
            ("10.0.0.1 tiles=0-5\n", [], "has no cores="),
            ("10.0.0.1 cores=2\n", [], "has no tiles="),
            ("10.0.0.1 tiles=5-0 cores=1\n", [], "tiles must be ids or ranges"),
            ("10.0.0.1 tiles=0-5 cores=0\n", [], "cores must be a whole number"),
            ("10.0.0.1 tiles=0-5 cores=1 gpus=8\n", [], "unknown key 'gpus'"),
            ("10.0.0.1 tiles=0-2 cores=1\n10.0.0.1 tiles=3-5 cores=1\n", [], "listed twice"),
            ("bad;host tiles=0-5 cores=1\n", [], "is not a host address"),
            ("# nothing\n", [], "no hosts"),
            ("10.0.0.1 tiles=0-5 cores=1\n", ["--host-network", "10.0.0/8"], "--host-network must be an IPv4 network"),
            ("10.0.0.1 tiles=0-5 cores=1\n", ["--host-launcher", "/nonexistent/agent"], "no such file"),
            ("10.0.0.1 tiles=0-5 cores=1\n", ["--host-timeout", "0"], "--host-timeout must be 1…3600"),
        ]
        for (i, (text, flags, expected)) in cases.enumerated() {
            try text.write(toFile: d + "/hosts\(i)", atomically: true, encoding: .utf8)
            let r = runDojo(["serve", "--db", d + "/db\(i).sqlite", "--machine", "tray", "--port", "0", "--sandbox", "none", "--hosts", d + "/hosts\(i)"] + flags)
            #expect(r.status != 0 && r.stderr.contains(expected) && r.stderr.split(separator: "\n").count == 1, "case \(i): \(r.stderr)")
        }
        let missing = runDojo(["serve", "--db", d + "/m.sqlite", "--machine", "tray", "--port", "0", "--sandbox", "none", "--hosts", d + "/none"])
        #expect(missing.status != 0 && missing.stderr.contains("--hosts \(d)/none: No such file"), "\(missing.stderr)")
        let stray = runDojo(["serve", "--db", d + "/s.sqlite", "--machine", "tray", "--port", "0", "--sandbox", "none", "--host-network", "10.1.0.0/16"])
        #expect(stray.status != 0 && stray.stderr.contains("go with --hosts"), "\(stray.stderr)")
    }

    @Test("jobs on two namespace hosts: ranks on the hosts of their tiles, in the sandbox; a silent host fails its tiles, the job resumes when it is back; cancel checkpoints")
    func jobsOnNamespaceHosts() throws {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/mpirun") else {
            Issue.record("needs root (network namespaces) and Open MPI"); return
        }
        let d = DistributedTrainTests.tempDir()
        let prefix = "dsh"
        _ = DistributedTrainTests.sh(Self.script, ["down", "--prefix", prefix])
        defer {
            let down = DistributedTrainTests.sh(Self.script, ["down", "--prefix", prefix])
            #expect(down.status == 0, "\(down.output)")
            try? FileManager.default.removeItem(atPath: d)
        }
        let up = DistributedTrainTests.sh(Self.script, ["up", "2", "--prefix", prefix, "--agent", d + "/agent.sh"])
        guard up.status == 0 else {
            if up.output.contains("Operation not permitted") || up.output.contains("Permission denied") {
                withKnownIssue("this machine does not let root make network namespaces: \(up.output)") { throw CLIError("no namespaces") }
            } else {
                Issue.record("netns-hosts.sh up failed: \(up.output)")
            }
            return
        }
        let net = DistributedTrainTests.sh(Self.script, ["subnet", "--prefix", prefix]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let base = net.replacingOccurrences(of: ".0/24", with: "")
        // The tray is 3 × 2 tiles (ids row by row): host 1 serves columns 0 and 2 of the rows' ids, so a 1×2 DPU (one
        // column, both rows: tiles x and x+3) spans both hosts.
        try "\(base).1 tiles=0,2,4 cores=1\n\(base).2 tiles=1,3,5 cores=1   # the second host\n".write(toFile: d + "/hosts", atomically: true, encoding: .utf8)
        let server = ServeProcess(db: d + "/dojo.sqlite", machine: "tray", extraArguments: [
            "--hosts", d + "/hosts", "--host-launcher", d + "/agent.sh", "--host-network", net, "--host-probe-port", "9", "--host-timeout", "2"])
        try server.start()
        defer { _ = server.stop() }
        #expect(server.output.contains("hosts: 2 — \(base).1 (3 tiles, 1 core), \(base).2 (3 tiles, 1 core)"), "\(server.output)")
        let env = ["DOJO_SERVER": server.url, "PATH": "/usr/bin:/bin"]
        let token = runDojo(["tenant", "add", "hs", "--quota", "6", "--token", server.adminToken], environment: env).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        func state(_ id: String) -> String {
            let show = runDojo(["job", "show", id, "--token", token], environment: env).stdout
            return show.range(of: #"State +[A-Z_]+"#, options: .regularExpression).map { String(show[$0].split(separator: " ").last!) } ?? ""
        }
        func logs(_ id: String) -> String { runDojo(["job", "logs", id, "--token", token], environment: env).stdout }
        func wait(_ what: String, timeout: Double = 90, _ done: () -> Bool) -> Bool {
            let end = Date().addingTimeInterval(timeout)
            while Date() < end { if done() { return true }; Thread.sleep(forTimeInterval: 0.2) }
            Issue.record("waited \(Int(timeout)) s for \(what)")
            return false
        }
        // Any program: each rank says where it runs (its host's address), as whom, and what it was given.
        let hello = runDojo(["submit", "--parsable", "--shape", "1x2", "--ranks", "2", "--token", token, "--", "/bin/sh", "-c",
                             "echo rank $OMPI_COMM_WORLD_RANK at $(ip -4 -o addr show eth0 | awk '{print $4}') uid $(id -u) tiles $DOJO_DPU_TILES threads $DOJO_THREADS_PER_RANK"],
                            environment: env)
        #expect(hello.status == 0, "\(hello.stderr)")
        let helloID = hello.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = wait("the hello job") { ["COMPLETED", "FAILED"].contains(state(helloID)) }
        let helloLog = logs(helloID)
        #expect(state(helloID) == "COMPLETED", "\(helloLog)")
        #expect(helloLog.contains("ranks on hosts: \(base).1 (1 rank), \(base).2 (1 rank)"), "\(helloLog)")
        #expect(helloLog.contains("rank 0 at \(base).1/24 uid 19") && helloLog.contains("rank 1 at \(base).2/24 uid 19"), "each rank on its tile's host, as the tenant's uid:\n\(helloLog)")
        #expect(helloLog.contains("threads 1"), "a rank's share of its host's cores:\n\(helloLog)")
        // mpirun runs as the server: the tenant's words are the program's arguments, never mpirun's options or app contexts.
        let words = ["/bin/echo", "args", ":", "-n", "5", "--mca", "plm_rsh_agent", "/bin/false", "$HOME", "'q'"]
        let inj = runDojo(["submit", "--parsable", "--shape", "1x2", "--ranks", "2", "--token", token, "--"] + words, environment: env)
        let injID = inj.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = wait("the echo job") { ["COMPLETED", "FAILED"].contains(state(injID)) }
        let injLog = logs(injID)
        #expect(state(injID) == "COMPLETED" && injLog.components(separatedBy: "args : -n 5 --mca plm_rsh_agent /bin/false $HOME 'q'\n").count == 3, "\(injLog)")
        // dojo train over both hosts, checkpointing; then host 2 goes silent (its link down).
        let sub = runDojo(["submit", "--parsable", "--shape", "1x2", "--ranks", "2", "--time-limit", "600", "--token", token, "--",
                           "dojo", "train", "--model", "mlp", "--data", "fashion-mnist", "--train-examples", "4096", "--eval-examples", "64",
                           "--steps", "100000", "--epochs", "100", "--batch-size", "64", "--checkpoint-every", "10"], environment: env)
        #expect(sub.status == 0, "\(sub.stderr)")
        let id = sub.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let checkpoint = d + "/dojo.sqlite.tenants/hs/checkpoints/\(id)/checkpoint.safetensors"
        guard wait("a checkpoint of the 2-host run", { FileManager.default.fileExists(atPath: checkpoint) }) else { print(logs(id)); return }
        #expect(logs(id).contains("over 2 ranks (data-parallel, 32 each)"))
        let down = DistributedTrainTests.sh("/usr/sbin/ip", ["link", "set", prefix + "v2", "down"])
        #expect(down.status == 0, "\(down.output)")
        #expect(wait("the job to requeue after host 2 went silent", timeout: 30) { state(id) == "REQUEUED" || state(id) == "PENDING" })
        let show = runDojo(["job", "show", id, "--token", token], environment: env).stdout
        #expect(show.contains("NODE_FAIL") && show.contains("(host \(base).2 stopped answering"), "\(show)")
        #expect(wait("no process of the first attempt left", timeout: 30) { ServiceCLITests.rankProcesses(job: id).isEmpty })
        let status = runDojo(["cluster", "status", "--token", server.adminToken], environment: env).stdout
        #expect(status.contains("failed 3"), "host 2's three tiles failed:\n\(status)")
        // Back: its tiles return and the job resumes from its checkpoint on both hosts.
        _ = DistributedTrainTests.sh("/usr/sbin/ip", ["link", "set", prefix + "v2", "up"])
        #expect(wait("the resumed run", timeout: 60) { logs(id).contains("resuming at step") })
        #expect(server.output.contains("host \(base).2 stopped answering") && server.output.contains("host \(base).2 answers again"), "\(server.output)")
        // Cancel: SIGTERM reaches every rank on every host as a stop request; a checkpoint is written, all ranks end.
        Thread.sleep(forTimeInterval: 2)
        let cancel = runDojo(["cancel", id, "--token", token], environment: env)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(wait("CANCELLED", timeout: 30) { state(id) == "CANCELLED" })
        #expect(logs(id).contains("interrupted at step") && logs(id).contains("checkpoint saved"), "\(logs(id))")
        #expect(wait("every rank to end after cancel", timeout: 30) { ServiceCLITests.rankProcesses(job: id).isEmpty })
        // More ranks than the hosts have cores: 422.
        let tooMany = runDojo(["submit", "--tiles", "4", "--ranks", "3", "--token", token, "--", "/bin/true"], environment: env)
        #expect(tooMany.status != 0 && tooMany.stderr.contains("more than the 2 hosts of this service have cores (2)"), "\(tooMany.stderr)")
    }
}
