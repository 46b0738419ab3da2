import DojoCluster
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Jobs on the service's hosts (`dojo serve --hosts FILE`): the ranks of a job start on the hosts of its DPU's tiles
// through Open MPI's launch agent, in the job's sandbox on each host; a host that stops answering fails its tiles.

/// How an attempt starts on hosts: the command the worker runs here (mpirun behind a small stop translator) and
/// which hosts run how many ranks, for the log.
struct HostLaunch {
    var command: [String]
    var `where`: String
}

extension JobService {
    /// The stop translator around mpirun: mpirun runs in a session of its own (the attempt's SIGTERM does not reach
    /// it: it would kill the ranks at once) and dies with this shell (PR_SET_PDEATHSIG); a SIGTERM or SIGINT here
    /// becomes a SIGUSR1, which mpirun passes on to every rank on every host (dojo train saves a checkpoint and stops).
    static let hostLaunchScript = """
        setsid setpriv --pdeathsig KILL "$@" & m=$!
        trap 'kill -USR1 $m 2>/dev/null' TERM INT
        wait $m; rc=$?
        while kill -0 $m 2>/dev/null; do wait $m; rc=$?; done
        exit $rc
        """

    /// The attempt's mpirun command over the hosts of `tiles`: a hostfile with the ranks each host runs (rank i on
    /// the host of the DPU's i-th tile), and a launch agent that runs each host's Open MPI daemon in the job's sandbox
    /// through the service's launcher (`LAUNCHER HOST COMMAND`, like ssh). Both are written to the server's folder of
    /// the job (never visible to the job). Sets DOJO_HOSTS and DOJO_THREADS_PER_RANK in `environment`.
    func hostLaunch(_ id: Int, row r: JobRow, command: [String], isTrain: Bool, environment env: inout [String: String], tiles: [Int],
                    hosts: HostMap, uid: Int?, work: String, checkpoint: String, programFolder: String?) throws -> HostLaunch {
        guard let mpirun = JobService.mpirunPath else {
            throw ServiceError(.unprocessable, "this service runs jobs on its hosts through Open MPI, and this host has no mpirun: install openmpi-bin")
        }
        let place = hosts.placement(ranks: r.ranks, tiles: tiles)
        let hostfile = jobDir(id) + "/attempt-\(r.attempts).hosts", agent = jobDir(id) + "/attempt-\(r.attempts).agent"
        let lines = place.map { "\(hosts.hosts[$0.host].address) slots=\($0.ranks)\n" }.joined()
        // The sandbox on each host: the job's uid, namespaces and limits; the host's network (ranks talk over it).
        let sandboxArgv = sandbox.wrap(["/bin/sh", "-c"], uid: uid, work: work, checkpoint: checkpoint, network: true, tiles: tiles.count,
                                       programFolder: programFolder, onHost: true)
        let launcher = hosts.launcher.map(shellQuote) ?? "ssh -o BatchMode=yes -o ConnectTimeout=10"
        let script = """
            #!/bin/sh
            # Written by dojo serve for job \(id), attempt \(r.attempts): mpirun calls it as AGENT HOST COMMAND…; COMMAND (Open
            # MPI's daemon) runs on HOST in the job's sandbox, started there through the service's launcher.
            host=$1; shift
            # The daemon checks that its plm_rsh_agent exists, though with no tree spawn it never runs it; this file is
            # not visible in the sandbox: the daemon is told /bin/false instead. And it must not --daemonize: the
            # sandbox ends (with everything in it) when its first process does.
            swap() { rest=$1; out=''
                while case $rest in *"$2"*) true ;; *) false ;; esac; do out=$out${rest%%"$2"*}$3; rest=${rest#*"$2"}; done
                printf '%s' "$out$rest"; }
            cmd=$(swap "$*" \(shellQuote(agent)) /bin/false)
            cmd=$(swap "$cmd" ' --daemonize ' ' ')
            q=$(printf '%s' "$cmd" | sed "s/'/'\\\\\\\\''/g")
            exec \(launcher) "$host" "\(sandboxArgv.map(shellQuote).joined(separator: " ").replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "$", with: "\\$").replacingOccurrences(of: "`", with: "\\`")) '$q'"

            """
        for (path, text, mode) in [(hostfile, lines, 0o600), (agent, script, 0o700)] as [(String, String, mode_t)] {
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode)
            guard fd >= 0 else { throw ServiceError(.internalError, "cannot write \(path): \(String(cString: strerror(errno)))") }
            let bytes = Array(text.utf8)
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            fchmod(fd, mode)
            Glibc.close(fd)
            guard n == bytes.count else { throw ServiceError(.internalError, "cannot write \(path)") }
        }
        // Threads: each rank gets its share of its host's cores (the fewest of the job's hosts), not of this machine's.
        let perRank = place.map { max(1, hosts.hosts[$0.host].cores / $0.ranks) }.min() ?? 1
        env["DOJO_THREADS_PER_RANK"] = "\(perRank)"
        env["DOJO_HOSTS"] = place.map { hosts.hosts[$0.host].address }.joined(separator: ",")
        var cmd = command
        // mpirun starts dojo train's ranks itself (a --ranks in the command is checked against mpirun's by each rank).
        if isTrain, !cmd.contains(where: { $0 == "--threads" || $0.hasPrefix("--threads=") }) { cmd += ["--threads", "\(perRank)"] }
        // The job's command never reaches mpirun's own argv: mpirun runs as the server, and a word of the tenant's
        // there could be read as an option of mpirun (`--mca plm_rsh_agent …`) or start another app context (`:`).
        // It travels in the environment, quoted, and a fixed shell runs it in the sandbox on each host.
        env["DOJO_COMMAND"] = cmd.map(shellQuote).joined(separator: " ")
        var argv = [mpirun, "-n", "\(r.ranks)", "--bind-to", "none", "--hostfile", hostfile,
                    "--mca", "plm_rsh_agent", agent, "--mca", "plm_rsh_no_tree_spawn", "1"]
        if geteuid() == 0 { argv.append("--allow-run-as-root") }
        if let net = hosts.network { argv += ["--mca", "btl_tcp_if_include", net, "--mca", "oob_tcp_if_include", net] }
        for k in env.keys.sorted() { argv += ["-x", k] }
        argv += ["/bin/sh", "-c", "eval \"exec $DOJO_COMMAND\""]
        let shown = place.map { "\(hosts.hosts[$0.host].address) (\($0.ranks) rank\($0.ranks == 1 ? "" : "s"))" }.joined(separator: ", ")
        return HostLaunch(command: ["/bin/sh", "-c", JobService.hostLaunchScript, "dojo-launch"] + argv, where: shown)
    }

    /// Open MPI's mpirun on this host, if installed.
    static var mpirunPath: String? {
        let candidates: [String] = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"]
        return candidates.first(where: { Glibc.access($0, X_OK) == 0 })
    }

    // MARK: Host health

    /// Every `probeInterval`: probes every host off the controller (a TCP connection to its probe port; made or
    /// refused, it answered). A host silent for `downAfter` seconds is down: its healthy tiles fail (their jobs
    /// requeue and resume from their checkpoints elsewhere or later). When it answers again, the tiles it took down
    /// come back.
    func checkHosts(now: Double) {
        guard let m = hostMap, !hostProbeRunning, now - lastHostProbe >= m.probeInterval else { return }
        lastHostProbe = now
        hostProbeRunning = true
        let targets = m.hosts.map(\.address), port = m.probePort, timeout = min(1, m.downAfter / 2)
        Task.detached(executorPreference: DedicatedThreads.blockingWork) { [weak self] in
            var answered = [Bool](repeating: false, count: targets.count)
            answered.withUnsafeMutableBufferPointer { out in
                let box = UnsafeSendable(out)
                DispatchQueue.concurrentPerform(iterations: targets.count) { i in
                    box.value[i] = HostMap.answers(address: targets[i], port: port, timeout: timeout)
                }
            }
            await self?.applyHostProbe(answered, at: Date().timeIntervalSince1970)
        }
    }

    func applyHostProbe(_ answered: [Bool], at now: Double) {
        hostProbeRunning = false
        guard let m = hostMap else { return }
        for (h, ok) in answered.enumerated() {
            let host = m.hosts[h]
            if ok {
                hostSilentSince[h] = nil
                let back = hostTilesDown(h)
                guard hostDown.remove(h) != nil || !back.isEmpty else { continue }
                for t in back { try? repairTile(t, now: now) }
                hostNotes.append("host \(host.address) answers again: its tiles are back")
            } else {
                let since = hostSilentSince[h] ?? now
                hostSilentSince[h] = since
                guard !hostDown.contains(h), now - since >= m.downAfter else { continue }
                hostDown.insert(h)
                let detail = "failed (host \(host.address) stopped answering for \(Int(now - since)) s)"
                for t in host.tiles where scheduler.inventory.tiles[t].health == .healthy {
                    do { _ = try failTile(t, detail: detail, now: now, cause: "host") } catch { lastError = "host \(host.address): \(error)" }
                }
                hostNotes.append("host \(host.address) stopped answering: its \(host.tiles.count) tiles failed (their jobs requeue)")
            }
        }
    }

    /// What happened to hosts since the last call (dojo serve prints it).
    public func takeHostNotes() -> [String] {
        defer { hostNotes = [] }
        return hostNotes
    }

    /// Tiles of host `h` that are failed because a host stopped answering (not an admin's or a random fault's).
    func hostTilesDown(_ h: Int) -> [Int] {
        guard let m = hostMap else { return [] }
        let failed = m.hosts[h].tiles.filter { scheduler.inventory.tiles[$0].health != .healthy }
        guard !failed.isEmpty else { return [] }
        let causes = (try? store.db.read { db in
            try [Int: String](uniqueKeysWithValues: failed.map { t in (t, try String.fetchOne(db, sql: "SELECT cause FROM tile WHERE id = ?", arguments: [t]) ?? "") })
        }) ?? [:]
        return failed.filter { causes[$0] == "host" }
    }
}

/// A buffer handed to concurrent probes that each write their own element.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
