import DojoServer
import DojoService
import Foundation
import Glibc
import HummingbirdTesting
import Testing

/// The hostile-tenant suite (issue 9 §5): a tenant ("mallory") attacks through the public API only — jobs it submits
/// and requests it sends — while another tenant ("alice") runs a job. Each attack's outcome is printed. What must
/// hold: no escape (no secret of the server or of alice reaches mallory, nothing outside its folders changes), the
/// server never crashes, alice's job completes untouched.
///
/// Needs bubblewrap and root (per-tenant uids), as CI has; elsewhere it records why it did not run.
@Suite("hostile tenant", .serialized)
struct HostileTenantTests {
    /// A range of its own: other tests' services (default base 1,900,000) run their tenants' jobs at the same time.
    static let uidBase = 1_950_000

    /// Live processes whose real uid is `uid`, anywhere on the host (zombies are dead: a sandbox's init that its
    /// outer bwrap did not wait for is reparented to the host's pid 1, which reaps it where it is an init system).
    static func processes(ofUID uid: Int) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { e -> Int32? in
            guard let p = Int32(e), let status = try? String(contentsOfFile: "/proc/\(p)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return nil }
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            let zombie = status.contains("State:\tZ")
            return fields.count > 1 && Int(fields[1]) == uid && !zombie ? p : nil
        }
    }

    /// A process's command line, for a failure message.
    static func commandLine(_ pid: Int32) -> String {
        guard let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "\(pid): gone" }
        return "\(pid): " + String(decoding: d.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
    }

    @Test("20+ attacks through the public API: 0 escapes, 0 server crashes, the other tenant's job unaffected")
    func attacks() async throws {
        guard geteuid() == 0, access("/usr/bin/bwrap", X_OK) == 0 else {
            Issue.record("the hostile-tenant suite needs root and bubblewrap (apt-get install bubblewrap; make test installs it)")
            return
        }
        try await TestServer.with(machine: "exapod", setup: .live, grace: 1, configure: {
            $0.limits = SandboxLimits(cpuPerTile: 1, memoryPerTile: 64 << 20, pidsPerJob: 64, diskPerTenant: 32 << 20, filesPerTenant: 5000)
            $0.tenantUIDBase = HostileTenantTests.uidBase
            $0.maxQueuedPerTenant = 40
        }) { s, client in
            let port = try #require(client.port)
            let db = s.dir.appendingPathComponent("dojo.sqlite").path
            let alice = try await client.addTenant("alice", quota: 10, admin: s.admin)
            let mallory = try await client.addTenant("mallory", quota: 60, admin: s.admin)
            let malloryUID = HostileTenantTests.uidBase + 2
            var outcomes: [(String, Bool, String)] = []
            func record(_ name: String, _ ok: Bool, _ detail: String) {
                outcomes.append((name, ok, detail))
                print("attack \(outcomes.count) \(ok ? "held" : "ESCAPED/FAILED"): \(name): \(detail)")
                #expect(ok, "\(name): \(detail)")
            }
            func json(_ v: Any) -> String { String(decoding: try! JSONSerialization.data(withJSONObject: v), as: UTF8.self) }
            func submit(_ name: String, _ script: String, timeLimit: Double = 10, extra: [String: Any] = [:]) async throws -> JobInfo {
                var body: [String: Any] = ["name": name, "command": ["/bin/sh", "-c", script], "tiles": 1, "time_limit": timeLimit]
                for (k, v) in extra { body[k] = v }
                return try await client.submit(json(body), token: mallory)
            }
            func waitEnd(_ id: Int, timeout: Double = 30) async throws -> JobInfo {
                var j: JobInfo?
                _ = try await eventually(timeout: timeout) {
                    j = try await client.call(.get, "/v1/jobs/\(id)", token: s.admin).decode(JobInfo.self)
                    return j?.state.isFinal == true
                }
                return j!
            }
            func log(_ id: Int) async throws -> String { try await client.call(.get, "/v1/jobs/\(id)/logs", token: s.admin).body }

            // The victim: writes a secret into its checkpoint folder and its log, runs a while, then says it is done.
            let victim = try await client.submit(json(["name": "alice-train", "tiles": 2, "time_limit": 120,
                "command": ["/bin/sh", "-c", "echo alice-secret-ckpt > \"$DOJO_CHECKPOINT_DIR/secret\"; echo alice-secret-log; sleep 12; cat \"$DOJO_CHECKPOINT_DIR/secret\"; echo alice-done"]]),
                token: alice)
            _ = try await eventually { try await client.call(.get, "/v1/jobs/\(victim.id)", token: alice).decode(JobInfo.self).state == .running }
            try await Task.sleep(nanoseconds: 300_000_000)
            let aliceWork = "\(db).tenants/alice/jobs/\(victim.id)", aliceCheckpoint = "\(db).tenants/alice/checkpoints/\(victim.id)"
            let aliceLog = "\(db).tenants/alice/logs/\(victim.id).log"

            // 1. The crash of issue 9: `dojo train --checkpoint-dir` without a value.
            let bare = try await client.submit(json(["command": ["dojo", "train", "--checkpoint-dir"], "tiles": 1]), token: mallory)
            let bareEnd = try await waitEnd(bare.id)
            record("dojo train --checkpoint-dir (no value)", bareEnd.state == .failed, "job ended \(bareEnd.state.rawValue), server up")

            // 2. Writing its own attempt's exit file to end its billing early.
            let exitFile = "\(db).jobs/$DOJO_JOB_ID/attempt-1/exit"
            let forge = try await submit("forge-exit", "echo 0 > \(exitFile) && echo FORGED || echo denied; sleep 1; exit 5")
            let forgeEnd = try await waitEnd(forge.id)
            record("write its own attempt's exit file", forgeEnd.state == .failed && forgeEnd.exitCode == 5,
                   "\(forgeEnd.state.rawValue) exit \(forgeEnd.exitCode.map(String.init) ?? "-") (0 and COMPLETED would mean forged)")

            // 3–5. The admin token, the database, the lock file.
            let steal = try await submit("steal", "cat \(db).admin-token; head -c 64 \(db) | od -c | head -2; cat \(db).lock; ls \(db).jobs \(db).tenants; echo end")
            let stealEnd = try await waitEnd(steal.id)
            let stealLog = try await log(steal.id)
            record("read the admin token", stealEnd.state.isFinal && !stealLog.contains(s.admin), "token not in the job's output")
            record("open the database by path", !stealLog.contains("S   Q   L   i   t   e"), "no SQLite header in the output")
            record("list the bookkeeping and other tenants' storage", !stealLog.contains("alice") && !stealLog.contains("attempt-"), "both folders are empty in the sandbox")

            // 6–7. Another tenant's checkpoint and log, by path.
            let peek = try await submit("peek", "cat \(aliceCheckpoint)/secret \(aliceLog); ls -la \(aliceWork) \(aliceCheckpoint); echo end")
            _ = try await waitEnd(peek.id)
            let peekLog = try await log(peek.id)
            record("read another tenant's checkpoint by path", !peekLog.contains("alice-secret-ckpt"), "not visible")
            record("read another tenant's log by path", !peekLog.contains("alice-secret-log"), "not visible")

            // 8. Another tenant's logs and job through the API.
            let apiLog = try await client.call(.get, "/v1/jobs/\(victim.id)/logs", token: mallory)
            let apiJob = try await client.call(.get, "/v1/jobs/\(victim.id)", token: mallory)
            let apiCancel = try await client.call(.post, "/v1/jobs/\(victim.id)/cancel", token: mallory)
            record("read or cancel another tenant's job through the API", apiLog.status == 404 && apiJob.status == 404 && apiCancel.status == 404,
                   "logs \(apiLog.status), job \(apiJob.status), cancel \(apiCancel.status)")

            // 9–10. checkpoint_dir into another tenant's storage: '..', absolute; then a symlink planted by a job.
            let dotdot = try await client.call(.post, "/v1/jobs", token: mallory, json: json(["command": ["/bin/true"], "tiles": 1, "checkpoint_dir": "../alice/checkpoints/\(victim.id)"]))
            let absolute = try await client.call(.post, "/v1/jobs", token: mallory, json: json(["command": ["/bin/true"], "tiles": 1, "checkpoint_dir": aliceCheckpoint]))
            record("checkpoint_dir '..' or absolute into another tenant", dotdot.status == 422 && absolute.status == 422, "\(dotdot.status), \(absolute.status): \(dotdot.errorMessage ?? "")")
            let plant = try await submit("plant-symlink", "ln -s \(aliceCheckpoint) evil && echo planted")
            _ = try await waitEnd(plant.id)
            let follow = try await submit("follow-symlink", "cat \"$DOJO_CHECKPOINT_DIR/secret\"; echo x > \"$DOJO_CHECKPOINT_DIR/pwned\"", extra: ["checkpoint_dir": "jobs/\(plant.id)/evil"])
            let followEnd = try await waitEnd(follow.id)
            let followLog = try await log(follow.id)
            record("checkpoint_dir through a symlink planted by an earlier job",
                   followEnd.state == .failed && !followLog.contains("alice-secret") && !FileManager.default.fileExists(atPath: aliceCheckpoint + "/pwned"),
                   "\(followEnd.state.rawValue): \(followEnd.reason ?? "")")

            // 24. The race of a symlink swapped into a checkpoint path between the server's check and the mount: one
            // job exchanges a folder and a symlink to / as fast as it can while others name the folder. The mount is
            // of the folder the server opened (--bind-fd; bwrap also refuses when the path no longer leads to it), so a
            // job either gets that folder or fails; never the host.
            let swapper = Data("""
                import ctypes, time
                libc = ctypes.CDLL(None); end = time.time() + 8
                while time.time() < end: libc.renameat2(-100, b"target", -100, b"t_link", 2)
                """.utf8).base64EncodedString()
            let racer = try await submit("swap-symlink", "cd \"$DOJO_CHECKPOINT_DIR\" && mkdir -p target && ln -sfn ../../../../../../../../.. t_link && echo \(swapper) | base64 -d | python3",
                                         timeLimit: 12, extra: ["checkpoint_dir": "shared"])
            _ = try await eventually { try await client.call(.get, "/v1/jobs/\(racer.id)", token: mallory).decode(JobInfo.self).state == .running }
            var raceJobs: [Int] = []
            for _ in 0..<12 {
                raceJobs.append(try await submit("race", "ls /proc | wc -l; test -d \"$DOJO_CHECKPOINT_DIR/usr/bin\" && echo HOST-ROOT-MOUNTED; test -r /proc/1/cmdline && tr '\\0' ' ' < /proc/1/cmdline; echo", extra: ["checkpoint_dir": "shared/target"]).id)
                try await Task.sleep(nanoseconds: 150_000_000)
            }
            var escaped = 0, ran = 0
            var reasons: Set<String> = []
            for id in raceJobs {
                let j = try await waitEnd(id)
                if j.state == .completed { ran += 1 } else { reasons.insert(String((j.reason ?? "").suffix(90))) }
                if j.exitCode == 1, try await log(id).contains("Race condition binding dirfd") { reasons.insert("bwrap saw the folder change under its descriptor and refused") }
                if try await log(id).contains("HOST-ROOT-MOUNTED") { escaped += 1 }
            }
            _ = try await waitEnd(racer.id)
            record("swap a checkpoint folder for a symlink to / while jobs start", escaped == 0, "\(ran) of 12 got the folder, the rest failed (\(reasons.sorted())); host mounted: \(escaped)")

            // 11. The network: the server's port on loopback is not the sandbox's loopback.
            let net = try await submit("network", "bash -c 'echo GET / > /dev/tcp/127.0.0.1/\(port)' && echo CONNECTED || echo refused")
            _ = try await waitEnd(net.id)
            let netLog = try await log(net.id)
            record("reach the server over the network", netLog.contains("refused") && !netLog.contains("CONNECTED"), "loopback only, the server's port is not there")

            // 12. Signal the server (its pid is no secret) and everything it can see.
            let sig = try await submit("signal-server", "kill -KILL \(getpid()) 2>&1; kill -TERM -1 2>&1; echo tried")
            _ = try await waitEnd(sig.id)
            let alive = try await client.call(.get, "/healthz")
            record("signal the server", alive.status == 200 && kill(getpid(), 0) == 0, "server answers /healthz")

            // 13. Fork bomb.
            let bomb = try await submit("fork-bomb", "b() { b | b & }; b", timeLimit: 4)
            let bombEnd = try await waitEnd(bomb.id)
            record("fork bomb", bombEnd.state.isFinal && alive.status == 200, "\(bombEnd.state.rawValue) at the pids limit (64)")

            // 14–15. Filling the disk: one large file, then many small ones.
            let big = try await submit("one-big-file", "head -c 100000000 /dev/zero > big")
            let bigEnd = try await waitEnd(big.id)
            // Two guards race here, and either holds: RLIMIT_FSIZE stops the write at 32 MiB (SIGXFSZ, exit 153), or on a
            // loaded machine the 2 s disk walk sees the tenant over its limit first and kills the job (no exit status).
            record("fill the disk with one file",
                   bigEnd.state == .failed && (bigEnd.exitCode == 153 || (bigEnd.reason ?? "").contains("disk quota")),
                   "\(bigEnd.state.rawValue) exit \(bigEnd.exitCode.map(String.init) ?? "none"): \(bigEnd.reason ?? "")")
            let many = try await submit("many-files", "i=0; while [ $i -lt 40 ]; do head -c 4000000 /dev/zero > f$i; i=$((i+1)); sleep 0.1; done; sleep 20", timeLimit: 30)
            let manyEnd = try await waitEnd(many.id)
            record("fill the disk with many files", manyEnd.state == .failed && (manyEnd.reason ?? "").contains("disk quota"), "\(manyEnd.state.rawValue): \(manyEnd.reason ?? "")")

            // 16. Memory.
            let hog = try await submit("memory-hog", "tail /dev/zero")
            let hogEnd = try await waitEnd(hog.id)
            record("allocate past its memory", hogEnd.state == .outOfMemory, "\(hogEnd.state.rawValue): \(hogEnd.reason ?? "")")

            // 17. Ignores SIGTERM: SIGKILL after the grace period.
            let stubborn = try await submit("ignore-sigterm", "trap '' TERM; while true; do sleep 0.2; done", timeLimit: 1)
            let stubbornEnd = try await waitEnd(stubborn.id)
            record("ignore SIGTERM", stubbornEnd.state == .timeout, "\(stubbornEnd.state.rawValue): \(stubbornEnd.reason ?? "")")

            // 18. Daemons that outlive the job.
            let daemon = try await submit("daemons", "setsid sh -c 'sleep 300' & nohup sleep 301 > /dev/null 2>&1 & (sleep 302 &) ; exit 0")
            let daemonEnd = try await waitEnd(daemon.id)
            try await Task.sleep(nanoseconds: 500_000_000)
            let left = HostileTenantTests.processes(ofUID: malloryUID)
            record("spawn daemons and exit", daemonEnd.state == .completed && left.isEmpty, "\(daemonEnd.state.rawValue); processes of its uid left: \(left)")

            // 19. Write outside its folders: the system, the host's /tmp.
            let scribble = try await submit("write-system", "touch /etc/dojo-pwned /usr/dojo-pwned /tmp/dojo-host-pwned \(db).pwned 2>&1; echo done")
            _ = try await waitEnd(scribble.id)
            let wrote = ["/etc/dojo-pwned", "/usr/dojo-pwned", "/tmp/dojo-host-pwned", "\(db).pwned"].filter { FileManager.default.fileExists(atPath: $0) }
            record("write the system, the host's /tmp or beside the database", wrote.isEmpty, wrote.isEmpty ? "read-only or private" : "wrote \(wrote)")

            // 20. Secrets in the environment.
            let envJob = try await submit("environment", "env; id")
            _ = try await waitEnd(envJob.id)
            let envLog = try await log(envJob.id)
            record("find a token in its environment", !envLog.contains(s.admin) && !envLog.contains(mallory) && !envLog.contains("TOKEN"),
                   envLog.split(separator: "\n").first(where: { $0.hasPrefix("uid=") }).map(String.init) ?? "")
            record("run as root", envLog.contains("uid=\(malloryUID)") && !envLog.contains("uid=0("), "runs as its tenant's uid \(malloryUID)")

            // 21. A huge log, read through ?tail.
            let chatty = try await submit("huge-log", "head -c 3000000 /dev/zero | tr '\\0' x")
            _ = try await waitEnd(chatty.id)
            let whole = try await client.call(.get, "/v1/jobs/\(chatty.id)/logs", token: mallory)
            let tooMuch = try await client.call(.get, "/v1/jobs/\(chatty.id)/logs?tail=99999999999", token: mallory)
            record("read a huge log whole", whole.body.utf8.count <= JobService.maxTail && tooMuch.status == 400, "\(whole.body.utf8.count) bytes returned, tail past the cap: \(tooMuch.status)")

            // 22. Control characters and path tricks in every string field.
            var rejected: [String] = []
            for (field, value) in [("name", "\u{1B}[2J\u{1B}[31mPWNED"), ("name", "a\nb"), ("name", "x\u{202E}gpj.exe"),
                                   ("checkpoint_dir", "a/../../alice"), ("checkpoint_dir", "/etc"), ("checkpoint_dir", "."), ("checkpoint_dir", "a\u{7}b")] {
                let r = try await client.call(.post, "/v1/jobs", token: mallory, json: json(["command": ["/bin/true"], "tiles": 1, field: value]))
                if r.status == 422 { rejected.append(field) }
            }
            let ansiArg = try await client.call(.post, "/v1/jobs", token: mallory, json: json(["command": ["/bin/echo", "\u{1B}]0;title\u{7}"], "tiles": 1]))
            let badTenant = try await client.call(.post, "/v1/tenants", token: s.admin, json: json(["name": "../../etc", "quota": 1]))
            record("control characters and path tricks in string fields", rejected.count == 7 && ansiArg.status == 422 && badTenant.status == 422,
                   "\(rejected.count)/7 rejected with 422, ANSI in command \(ansiArg.status), tenant '../../etc' \(badTenant.status)")

            // 23. Malformed commands: flags without values, empty argv, huge argv, NUL, a lone surrogate.
            var statuses: [Int] = []
            for body in [#"{"command":[],"tiles":1}"#, #"{"command":[""],"tiles":1}"#, #"{"command":["a\u0000b"],"tiles":1}"#,
                         #"{"command":["\udc80"],"tiles":1}"#, json(["command": Array(repeating: "x", count: 5000), "tiles": 1])] {
                statuses.append(try await client.call(.post, "/v1/jobs", token: mallory, json: body).status)
            }
            let flags = try await client.submit(json(["command": ["dojo", "train", "--model"], "tiles": 1]), token: mallory)
            _ = try await waitEnd(flags.id)
            record("malformed commands", statuses.allSatisfy { (400...422).contains($0) }, "statuses \(statuses); a flag without a value ran and failed")

            // 25. A command that starts with '-' is a program's name, not an option of the sandbox's launcher.
            let dash = try await client.submit(json(["command": ["--help"], "tiles": 1]), token: mallory)
            let dashEnd = try await waitEnd(dash.id)
            let dashLog = try await log(dash.id)
            record("a command that looks like an option", dashEnd.state == .failed && !dashLog.contains("Usage: env"), "\(dashEnd.state.rawValue) exit \(dashEnd.exitCode ?? -1)")

            // 26. Output counts against the disk limit (the log lives in the tenant's storage, out of the job's reach).
            let loud = try await submit("log-flood", "head -c 60000000 /dev/zero | tr '\\0' A; sleep 5")
            let loudEnd = try await waitEnd(loud.id)
            record("fill the disk through its output", loudEnd.state == .failed, "\(loudEnd.state.rawValue): \(loudEnd.reason ?? "exit \(loudEnd.exitCode ?? -1)")")

            // 27. Paths longer than PATH_MAX and files with no blocks: the walk uses descriptors and counts inodes.
            let deepScript = Data("""
                import os
                for i in range(25): os.mkdir("d" * 200); os.chdir("d" * 200)
                open("big", "wb").write(b"x" * 40000000)
                """.utf8).base64EncodedString()
            let deep = try await submit("deep-tree", "echo \(deepScript) | base64 -d | python3; sleep 6")
            let deepEnd = try await waitEnd(deep.id)
            record("hide files below PATH_MAX", deepEnd.state == .failed, "\(deepEnd.state.rawValue): \(deepEnd.reason ?? "exit \(deepEnd.exitCode ?? -1)")")
            let inodes = try await submit("empty-files", "i=0; while [ $i -lt 8000 ]; do : > e$i; i=$((i+1)); done; sleep 6", timeLimit: 30)
            let inodesEnd = try await waitEnd(inodes.id, timeout: 40)
            record("drain inodes with empty files", inodesEnd.state == .failed && (inodesEnd.reason ?? "").contains("files and folders"),
                   "\(inodesEnd.state.rawValue): \(inodesEnd.reason ?? "")")

            // 32. A folder wider than the walk's pending list once was (4,400 subfolders), data at its far end.
            let wide = try await submit("wide-folder", "mkdir w && cd w && i=0; while [ $i -lt 4400 ]; do mkdir d$i; i=$((i+1)); done; head -c 20000000 /dev/zero > d4399/a; head -c 20000000 /dev/zero > d4398/b; sleep 8", timeLimit: 40)
            let wideEnd = try await waitEnd(wide.id, timeout: 50)
            record("hide data in a very wide folder", wideEnd.state == .failed && (wideEnd.reason ?? "").contains("disk quota"), "\(wideEnd.state.rawValue): \(wideEnd.reason ?? "")")

            // 33. A first word NAME=VALUE would be a variable for env, not a program.
            let assign = try await client.call(.post, "/v1/jobs", token: mallory, json: json(["command": ["--split-string=/bin/id -a"], "tiles": 1]))
            record("a program name env would read as a variable", assign.status == 422, "\(assign.status): \(assign.errorMessage ?? "")")

            // 28. A flood of queued jobs: refused past the tenant's queue limit (40 here).
            let blocker = try await submit("blocker", "sleep 20", timeLimit: 30)
            var codes: [Int: Int] = [:]
            for _ in 0..<45 {
                let r = try await client.call(.post, "/v1/jobs", token: mallory, json: json(["command": ["/bin/true"], "tiles": 1, "depends_on": [blocker.id]]))
                codes[r.status, default: 0] += 1
            }
            _ = try await client.call(.post, "/v1/jobs/\(blocker.id)/cancel", token: mallory)
            record("flood the queue", codes[429] ?? 0 >= 5 && (codes[201] ?? 0) <= 40, "\(codes.sorted { $0.key < $1.key })")

            // The victim, unaffected.
            let victimEnd = try await waitEnd(victim.id, timeout: 60)
            let victimLog = try await client.call(.get, "/v1/jobs/\(victim.id)/logs", token: alice).body
            record("the other tenant's job", victimEnd.state == .completed && victimLog.contains("alice-secret-ckpt") && victimLog.contains("alice-done"),
                   "\(victimEnd.state.rawValue), its checkpoint intact")
            let stillUp = try await client.call(.get, "/healthz")
            #expect(stillUp.status == 200)
            // Nothing of mallory's left running once her last job (the cancelled blocker) has ended: its cgroup is killed
            // as the attempt ends, and SIGKILL takes effect a moment later, so a loaded machine gets a few seconds.
            let blockerEnd = try await waitEnd(blocker.id, timeout: 60)
            #expect(blockerEnd.state == .cancelled, "\(blockerEnd.state.rawValue): \(blockerEnd.reason ?? "")")
            var remaining = HostileTenantTests.processes(ofUID: malloryUID)
            for _ in 0..<50 where !remaining.isEmpty {
                try await Task.sleep(nanoseconds: 100_000_000)
                remaining = HostileTenantTests.processes(ofUID: malloryUID)
            }
            #expect(remaining.isEmpty, "processes of mallory's uid left: \(remaining.map { HostileTenantTests.commandLine($0) })")
            print("hostile tenant: \(outcomes.count) attacks, \(outcomes.filter { !$0.1 }.count) escapes or failures, server up: \(stillUp.status == 200)")
            #expect(outcomes.count >= 20)
        }
    }
}
