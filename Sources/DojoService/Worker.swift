import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// glibc ≥ 2.34 (Debian 12 has 2.36); Swift's Glibc module does not export it.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
func posix_spawn_file_actions_addclosefrom_np(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32

@_silgen_name("prctl")
func c_prctl(_ option: Int32, _ a2: UInt, _ a3: UInt, _ a4: UInt, _ a5: UInt) -> Int32

/// A job's attempt as a real process tree: `/bin/sh` as supervisor in a session of its own (so it outlives a killed
/// controller and its whole tree can be signalled as one process group), the job's program as its child. The
/// supervisor writes its pid first, the program's exit status last, each with an atomic rename, into the attempt's
/// folder — that folder is how a restarted controller learns what happened while it was away.
struct Worker: Sendable {
    /// The attempt folder: `pid`, `exit`.
    let dir: String
    /// The supervisor, leader of the attempt's process group. nil until known (recovery waits for the pid file).
    var pid: pid_t?
    /// Whether this controller spawned it (then it must be reaped with waitpid).
    var ownChild: Bool

    /// The supervisor's script. $1 = attempt folder, $2 = log file, $3 = working folder, $4 = the cgroup.procs files
    /// to join (space-separated, may be empty), $5 = 1 when the program is sandboxed, the rest = the program and its
    /// arguments (already wrapped by `Sandbox.wrap`).
    /// SIGTERM goes to the whole group: the program gets it (to checkpoint), the shell's trap keeps it waiting until
    /// the program is gone, so the exit status is always written unless the group is SIGKILLed. A sandboxed program
    /// is started with SIGTERM/SIGINT ignored, so that the outer bwrap outlives them (its death would kill the job
    /// before it checkpoints); `env --default-signal` inside the sandbox gives them back to the job.
    /// The supervisor and the attempt folder stay outside the sandbox: nothing the job writes decides its end.
    static let script = """
        d="$1"; log="$2"; cd "$3" || exit 1; unset OLDPWD; cg="$4"; sandboxed="$5"; shift 5
        echo $$ > "$d/pid.tmp" && mv "$d/pid.tmp" "$d/pid" || exit 1
        trap 'stop=1' TERM INT
        /bin/sh -c 'for f in $1; do echo $$ > "$f" || exit 126; done; [ "$2" = 1 ] && trap "" TERM INT; shift 2; exec "$@"' dojo-job "$cg" "$sandboxed" "$@" >> "$log" 2>&1 < /dev/null &
        child=$!
        wait $child; rc=$?
        while kill -0 $child 2>/dev/null; do wait $child; rc=$?; done
        echo $rc > "$d/exit.tmp" && mv "$d/exit.tmp" "$d/exit"
        kill -KILL 0
        """

    /// Starts the attempt. The folder is made first: a folder without a pid file means a spawn may be under way.
    static func spawn(dir: String, log: String, workingDirectory: String, cgroupProcs: [String], sandboxed: Bool,
                      command: [String], environment: [String: String], passing descriptors: [Int32] = []) throws -> Worker {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // POSIX_SPAWN_SETSID (glibc ≥ 2.26): the supervisor leads a new session and process group.
        posix_spawnattr_setflags(&attr, Int16(0x80))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // `descriptors` become 3, 4, … (the folders the sandbox binds); nothing else of the server's goes with the job:
        // not its listening socket, client connections or database.
        for (i, fd) in descriptors.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, Int32(3 + i)) }
        _ = posix_spawn_file_actions_addclosefrom_np(&actions, Int32(3 + descriptors.count))
        let argv = ["/bin/sh", "-c", script, "dojo-worker", dir, log, workingDirectory, cgroupProcs.joined(separator: " "), sandboxed ? "1" : "0"] + command
        // posix_spawn takes C strings: an argument with a NUL byte would be cut short (submissions refuse them).
        guard !argv.contains(where: { $0.utf8.contains(0) }) else { throw ServiceError(.unprocessable, "an argument contains a NUL byte") }
        let env = environment.map { "\($0.key)=\($0.value)" }.sorted()
        var cargv = argv.map { strdup($0) } + [nil]
        var cenv = env.map { strdup($0) } + [nil]
        defer { for p in cargv { free(p) }; for p in cenv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, &cargv, &cenv)
        guard rc == 0 else { throw ServiceError(.internalError, "cannot start the worker: \(String(cString: strerror(rc)))") }
        return Worker(dir: dir, pid: pid, ownChild: true)
    }

    /// When the program ended (the exit file's time): an attempt that ended while no controller ran is booked to then.
    func exitTime() -> Double? {
        (try? FileManager.default.attributesOfItem(atPath: dir + "/exit")[.modificationDate] as? Date)?.timeIntervalSince1970
    }

    /// Collects our own supervisor once it has written its exit status (it ends right after).
    mutating func reap() {
        guard ownChild, let p = pid else { return }
        var status: Int32 = 0
        for _ in 0..<200 { if waitpid(p, &status, WNOHANG) != 0 { break }; usleep(5_000) }
        ownChild = false
    }

    /// A supervisor whose command line names `dir` (found through /proc), for recovery when its pid file is missing.
    static func findSupervisor(_ dir: String) -> pid_t? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for e in entries {
            guard let p = pid_t(e), isAttempt(p, dir) else { continue }
            return p
        }
        return nil
    }

    /// The exit status the supervisor wrote, if the program has ended.
    func exitStatus() -> Int? { Worker.readInt(dir + "/exit") }
    /// The pid the supervisor wrote, if it has started.
    static func pidFile(_ dir: String) -> pid_t? { readInt(dir + "/pid").map { pid_t($0) } }

    static func readInt(_ path: String) -> Int? {
        guard let s = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int(s.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Whether the supervisor still runs. Our own children are reaped here; an adopted one is checked through
    /// /proc, and must still be this attempt's shell (its command line names the folder) — pids are reused.
    mutating func alive() -> Bool {
        guard let p = pid else { return false }
        if ownChild {
            var status: Int32 = 0
            let r = waitpid(p, &status, WNOHANG)
            if r == p || (r < 0 && errno == ECHILD) { ownChild = false; return Worker.isAttempt(p, dir) }
            return true
        }
        return Worker.isAttempt(p, dir)
    }

    static func isAttempt(_ p: pid_t, _ dir: String) -> Bool {
        guard kill(p, 0) == 0 || errno == EPERM else { return false }
        guard let data = FileManager.default.contents(atPath: "/proc/\(p)/cmdline") else { return false }
        let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        if let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" { return false }
        return args.contains(dir)
    }

    /// Signals the whole attempt (supervisor and program).
    func signal(_ sig: Int32) {
        guard let p = pid, p > 1 else { return }
        _ = kill(-p, sig)
    }

    /// SIGKILL to the group, then waits (up to `timeout` s) until the supervisor is gone.
    mutating func killAndWait(timeout: Double = 3) {
        signal(SIGKILL)
        let end = Date().addingTimeInterval(timeout)
        while alive() && Date() < end { usleep(5_000) }
    }

    /// Makes this process the reaper of its descendants' orphans (`dojo serve` does): a sandbox's init can outlive its
    /// outer bwrap by a moment and is reparented; where the host's pid 1 does not reap (a container), it would stay
    /// a zombie.
    static func becomeSubreaper() { _ = c_prctl(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0) }

    /// Reaps zombie children that are not one of `tracked` (our own supervisors, reaped by `alive`/`reap`).
    static func reapOrphans(except tracked: Set<pid_t>) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        let me = getpid()
        for e in entries {
            guard let p = pid_t(e), !tracked.contains(p),
                  let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let f = stat[stat.index(after: close)...].split(separator: " ")
            guard f.count > 2, f[0] == "Z", pid_t(f[1]) == me else { continue }
            var status: Int32 = 0
            _ = waitpid(p, &status, WNOHANG)
        }
    }
}
