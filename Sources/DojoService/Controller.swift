import DojoCluster
import DojoMachine
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

// The controller round: reap, time limits, grace periods, scheduling, starting and ending attempts.

extension JobService {
    // MARK: The controller

    /// Rounds every `tickInterval` until the task is cancelled. Workers keep running after it returns.
    public func run() async {
        while !Task.isCancelled {
            tick()
            try? await Task.sleep(nanoseconds: UInt64(options.tickInterval * 1e9))
        }
    }

    /// One controller round: reap ended workers, enforce time limits and grace periods, schedule, start workers.
    public func tick() {
        do { try round() } catch { lastError = "\(error)" }
    }

    func round() throws {
        let now = Date().timeIntervalSince1970
        let dt = max(0, now - lastTick)
        lastTick = now
        for (t, since) in faulted where now - since >= options.faultRepairSeconds { try repairTile(t, now: now) }
        if options.faultsPerTileHour > 0 { try injectRandomFaults(dt: dt, now: now) }
        // Workers that ended. A failure with one job ends that job, never the round (nor the controller).
        for id in workers.keys.sorted() {
            guard var w = workers[id] else { continue }
            do {
                if let rc = w.exitStatus() {
                    try finish(id, rc: rc, now: w.exitTime() ?? now)
                    w.reap()
                    workers[id] = nil
                } else if !w.alive() {
                    let rc = w.exitStatus()
                    try finish(id, rc: rc, now: rc == nil ? now : (w.exitTime() ?? now))
                    workers[id] = nil
                } else {
                    workers[id] = w
                }
            } catch {
                workers[id] = nil
                failJob(id, because: "could not book the end of its attempt: \(error)", now: now)
            }
        }
        checkDisk(now: now)
        checkHosts(now: now)
        if options.reapOrphans {
            Worker.reapOrphans(except: Set(workers.values.filter(\.ownChild).compactMap(\.pid)))
        }
        // Time limits and grace periods.
        for id in active.keys.sorted() {
            guard let a = active[id] else { continue }
            if a.stopReason == nil, now - a.start >= a.timeLimit {
                try requestStop(id, reason: "timeout", deadline: now + options.grace, detail: "time limit of \(Int(a.timeLimit)) s reached", now: now)
            } else if let d = a.stopDeadline, now >= d {
                workers[id]?.signal(SIGKILL)
            }
        }
        // Scheduling.
        // Each decision on its own: one that cannot be written is undone in the scheduler, the rest go on.
        var failure: Error?
        for d in scheduler.schedule(at: now) {
            switch d {
            case .start(let sid, let pl):
                do { try start(jobOf[sid], on: pl, now: now) } catch let e as ServiceError where e.kind != .internalError {
                    failJob(jobOf[sid], because: "\(e)", now: now)   // the job's own fault: it will not go better next round
                } catch {
                    let id = jobOf[sid]
                    active[id] = nil
                    try? scheduler.requeue(sid, at: now)
                    startFailures[id, default: 0] += 1
                    if startFailures[id]! >= 3 {
                        // Not a passing problem of the store: something about this job's row. It ends; the rest go on.
                        startFailures[id] = nil
                        failJob(id, because: "could not be started 3 times: \(error)", now: now)
                    } else {
                        failure = error
                    }
                }
            case .preempt(let sid, let by, let graceEnd):
                do { try requestStop(jobOf[sid], reason: "preempt", deadline: graceEnd, detail: "preempted by job \(jobOf[by])", now: now) }
                catch { failure = error }   // the scheduler keeps it stopping; the SIGKILL at the deadline still comes
            }
        }
        if let failure { throw failure }
    }

    /// Ends one job FAILED with the reason in its transitions, whatever state its row or folders are in; the round
    /// goes on. If even that cannot be written, the error is kept for `dojo serve` to print.
    func failJob(_ id: Int, because why: String, now: Double) {
        if var w = workers.removeValue(forKey: id) { w.killAndWait() }
        do {
            guard let r = try fetchRow(id), !r.state.isFinal else { active[id] = nil; return }
            try endAttempt(id, row: r, rc: nil, now: now, forced: why, final: true)
        } catch {
            active[id] = nil
            if let sid = sidOf[id] { try? scheduler.cancel(sid, at: now) }
            lastError = "job \(id): \(why); and it could not be marked FAILED: \(error)"
        }
    }

    /// Every 2 s: a tenant whose storage holds more than its disk limit has the running jobs that made it grow killed
    /// (FAILED, with the reason): those whose own folders (work, checkpoint, log) hold more than when they started. A
    /// job that only reads, or deletes to get back under the limit, runs on. Files larger than the limit are stopped
    /// by RLIMIT_FSIZE as they are written. The walk runs off the controller (a detached task on the service's own
    /// threads, `DedicatedThreads.blockingWork`): a tenant with many files slows its own check, not the API or the
    /// rounds; its result is applied to the jobs still running.
    func checkDisk(now: Double) {
        let limits = sandbox.limits
        guard limits.diskPerTenant > 0, !diskCheckRunning, now - lastDiskCheck >= 2 else { return }
        lastDiskCheck = now
        var targets: [DiskTarget] = []
        for t in Set(active.values.map(\.tenant)).sorted() {
            var jobs: [(Int, [String], String?)] = []
            for (id, a) in active.sorted(by: { $0.key < $1.key }) where a.tenant == t && killReason[id] == nil {
                if let r = try? fetchRow(id), let f = jobFolders(r) { jobs.append((id, f.folders, f.log)) }
            }
            targets.append(DiskTarget(tenant: t, root: tenantRoot(t), jobs: jobs))
        }
        guard !targets.isEmpty else { return }
        diskCheckRunning = true
        Task.detached(executorPreference: DedicatedThreads.blockingWork) { [weak self] in
            let results = targets.map { t -> (String, Sandbox.Usage, [(Int, Sandbox.Usage)]) in
                let u = Sandbox.diskUsage(t.root, cap: 4 * limits.diskPerTenant, entryCap: 4 * limits.filesPerTenant)
                let over = u.bytes > limits.diskPerTenant || u.entries > limits.filesPerTenant
                return (t.tenant, u, over ? t.jobs.map { ($0.0, Sandbox.usage(folders: $0.1, log: $0.2, limits: limits)) } : [])
            }
            await self?.applyDiskCheck(results)
        }
    }

    struct DiskTarget: Sendable { var tenant: String; var root: String; var jobs: [(Int, [String], String?)] }

    func applyDiskCheck(_ results: [(String, Sandbox.Usage, [(Int, Sandbox.Usage)])]) {
        diskCheckRunning = false
        let limit = sandbox.limits.diskPerTenant
        for (t, u, jobs) in results {
            let overBytes = u.bytes > limit, overFiles = u.entries > sandbox.limits.filesPerTenant
            for (id, now) in jobs where active[id] != nil && killReason[id] == nil {
                // A job adopted after a restart has no starting figure: it is taken now.
                guard let start = diskAtStart[id] else { diskAtStart[id] = now; continue }
                let grewBytes = overBytes && now.bytes > start.bytes, grewFiles = overFiles && now.entries > start.entries
                if grewBytes || grewFiles {
                    let what = grewFiles ? "holds more than \(sandbox.limits.filesPerTenant) files and folders" : "stores more than \(formatBytes(limit))"
                    killReason[id] = "disk quota: tenant '\(t)' \(what) (this job's folders grew by \(formatBytes(max(0, now.bytes - start.bytes))) and \(max(0, now.entries - start.entries)) entries)"
                    workers[id]?.signal(SIGKILL)
                }
            }
        }
    }

    func injectRandomFaults(dt: Double, now: Double) throws {
        let p = options.faultsPerTileHour * dt / 3600
        for t in scheduler.inventory.tiles where t.health == .healthy {
            rng = rng &+ 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB; z ^= z >> 31
            if Double(z >> 11) / Double(1 << 53) < p {
                _ = try failTile(t.id, detail: "failed (random fault)", now: now)
                faulted[t.id] = now
                randomFaults += 1
            }
        }
    }

    /// Write first, then signal: SIGTERM now, SIGKILL at the deadline (a later round).
    func requestStop(_ id: Int, reason: String, deadline: Double, detail: String?, now: Double) throws {
        guard var a = active[id] else { return }
        if a.stopReason == "cancel" || (a.stopReason == "timeout" && reason == "preempt") { return }
        let d = min(deadline, a.stopDeadline ?? .infinity)
        try store.db.write { db in
            try db.execute(sql: "UPDATE job SET stop_reason = ?, stop_deadline = ? WHERE id = ?", arguments: [reason, d, id])
            if reason == "preempt" {
                try db.execute(sql: "UPDATE job SET state = 'PREEMPTED' WHERE id = ?", arguments: [id])
                try db.execute(sql: "INSERT INTO transition VALUES (?, 'PREEMPTED', ?, ?)", arguments: [id, now, (detail ?? "preempted") + "; SIGTERM, \(formatSeconds(d - now)) to checkpoint"])
            }
        }
        a.stopReason = reason
        a.stopDeadline = d
        active[id] = a
        workers[id]?.signal(SIGTERM)
    }

    func start(_ id: Int, on pl: Placement, now: Double) throws {
        guard let r = try fetchRow(id) else { return }
        let n = r.attempts + 1
        let ids = tileIDs(pl)
        try store.db.write { db in
            try db.execute(sql: """
                UPDATE job SET state = 'RUNNING', attempts = ?, pod = ?, x = ?, y = ?, w = ?, h = ?, start_time = ?, reason = NULL,
                  stop_reason = NULL, stop_deadline = NULL, reaped = 0 WHERE id = ?
                """, arguments: [n, pl.pod, pl.x, pl.y, pl.w, pl.h, now, id])
            try db.execute(sql: "INSERT INTO attempt (job, n, tenant, tiles, start) VALUES (?, ?, ?, ?, ?)", arguments: [id, n, r.tenant, pl.tiles, now])
            try db.execute(sql: "INSERT INTO transition VALUES (?, 'RUNNING', ?, ?)", arguments: [id, now,
                "attempt \(n) on \(pl) = tiles \(ids.map(String.init).joined(separator: ","))"])
        }
        startFailures[id] = nil
        var row = r
        row.attempts = n
        active[id] = ActiveJob(tenant: r.tenant, start: now, timeLimit: r.timeLimit)
        do {
            try spawn(id, row: row, placement: pl)
            spawnFailures[id] = nil
        } catch let e as ServiceError where e.kind != .internalError {
            // the job's own (a command, a folder or a rank count it asked for): it would not go better next time
            try finish(id, rc: nil, now: now, forced: "could not start: \(e)", final: true)
        } catch {
            // the server's (a folder it could not make, a process it could not start under load): the attempt ends and
            // the job waits for its next turn, its retries untouched; 3 such starts in a row end it
            spawnFailures[id, default: 0] += 1
            if spawnFailures[id]! >= 3 {
                spawnFailures[id] = nil
                try finish(id, rc: nil, now: now, forced: "could not start 3 times in a row: \(error)", final: true)
            } else {
                try finish(id, rc: nil, now: now, forced: "could not start (the server's error; requeued): \(error)", requeue: true)
            }
        }
    }

    /// The attempt's process in its sandbox: its folders (made without following a tenant's symlinks), environment,
    /// cgroups, output, and for `dojo train` its checkpoint folder and --resume.
    func spawn(_ id: Int, row r: JobRow, placement pl: Placement) throws {
        // The server's folder of the job: its log and the attempts' bookkeeping; never inside a sandbox.
        if mkdir(jobDir(id), 0o700) != 0 && errno != EEXIST {
            throw ServiceError(.internalError, "cannot create \(jobDir(id)): \(String(cString: strerror(errno)))")
        }
        guard !r.command.isEmpty, !r.command[0].isEmpty else {
            throw ServiceError(.unprocessable, "the job's command could not be read from the store")
        }
        let tenant = try tenantPolicy(r.tenant)
        let uid = sandbox.mode == .bwrap ? sandbox.uid(tenantNumber: tenant.number) : nil
        let root = tenantRoot(r.tenant)
        try Sandbox.ensureTenantRoot(root)
        guard !r.checkpointDir.hasPrefix("/") else {
            throw ServiceError(.unprocessable, "checkpoint_dir \(r.checkpointDir) is an absolute path (a job submitted before the sandbox); submit it again with a path relative to the tenant's storage")
        }
        let (work, workFD) = try Sandbox.ensureFolder(root: root, relative: ["jobs", "\(id)"], uid: uid)
        defer { Glibc.close(workFD) }
        let (checkpoint, checkpointFD) = try Sandbox.ensureFolder(root: root, relative: try Sandbox.relativeComponents(r.checkpointDir), uid: uid)
        defer { Glibc.close(checkpointFD) }
        let ids = tileIDs(pl)
        var env = ProcessInfo.processInfo.environment.filter { ["LANG", "TZ", "OMP_NUM_THREADS"].contains($0.key) }
        // The system's PATH, not the server's (root's may name folders a tenant's uid cannot search), plus the folder
        // of this dojo binary so that `dojo train …` commands find it.
        let own = ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) as NSString?)?.deletingLastPathComponent
        env["PATH"] = ([own].compactMap { $0 } + ["/usr/local/bin", "/usr/bin", "/bin"]).joined(separator: ":")
        env["HOME"] = work
        env["TMPDIR"] = sandbox.mode == .bwrap ? "/tmp" : work
        env["DOJO_JOB_ID"] = "\(id)"
        env["DOJO_TENANT"] = r.tenant
        env["DOJO_ATTEMPT"] = "\(r.attempts)"
        env["DOJO_DPU_TILES"] = ids.map(String.init).joined(separator: ",")
        env["DOJO_DPU_SHAPE"] = "\(pl.w)x\(pl.h)"
        env["DOJO_DPU_ORIGIN"] = "\(pl.pod),\(pl.x),\(pl.y)"
        env["DOJO_MACHINE"] = machineName
        env["DOJO_CHECKPOINT_DIR"] = checkpoint
        env["DOJO_TIME_LIMIT"] = "\(Int(r.timeLimit))"
        env["DOJO_RANKS"] = "\(r.ranks)"
        var cmd = r.command
        let isTrain = cmd.count >= 2 && (cmd[0] as NSString).lastPathComponent == "dojo" && cmd[1] == "train"
        if isTrain {
            // The job's own --checkpoint-dir wins (a flag without a value is left for dojo train to refuse).
            var ck: String? = checkpoint
            if let i = cmd.firstIndex(where: { $0 == "--checkpoint-dir" || $0.hasPrefix("--checkpoint-dir=") }) {
                let given = cmd[i] == "--checkpoint-dir" ? (cmd.indices.contains(i + 1) ? cmd[i + 1] : nil) : String(cmd[i].dropFirst("--checkpoint-dir=".count))
                ck = given.map { $0.hasPrefix("/") ? $0 : work + "/" + $0 }
            } else {
                cmd += ["--checkpoint-dir", checkpoint]
            }
            // --resume only for a checkpoint inside the tenant's storage (a path elsewhere is not the job's to read).
            if let ck, !cmd.contains("--resume"), let real = realPath(ck + "/checkpoint.safetensors"), real.hasPrefix(root + "/") {
                cmd.append("--resume")
            } else if r.attempts > 1, !cmd.contains("--resume"), !cmd.contains("--force") {
                // A retry that has no checkpoint to resume starts its own run over (dojo train refuses a folder that
                // holds a run otherwise: the first attempt's metrics are there).
                cmd.append("--force")
            }
        }
        var launch: HostLaunch? = nil
        if let hosts = hostMap {
            launch = try hostLaunch(id, row: r, command: cmd, isTrain: isTrain, environment: &env, tiles: ids, hosts: hosts, uid: uid,
                                    work: work, checkpoint: checkpoint, programFolder: own)
        } else if r.ranks > 1 {
            // Every rank inherits the environment (the DPU) from mpirun; all of them live in the attempt's sandbox, so
            // ending the attempt ends every rank.
            guard let mpirun = JobService.mpirunPath else {
                throw ServiceError(.unprocessable, "the job asks for \(r.ranks) ranks and this host has no Open MPI (mpirun): install openmpi-bin")
            }
            if isTrain {
                if !cmd.contains(where: { $0 == "--ranks" || $0.hasPrefix("--ranks=") }) { cmd.insert(contentsOf: ["--ranks", "\(r.ranks)"], at: 2) }
            } else {
                cmd = [mpirun, "-n", "\(r.ranks)", "--bind-to", "none"] + cmd
            }
            if uid == nil && geteuid() == 0 {   // unconfined as root (--sandbox none): mpirun refuses root unless told
                env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
            }
        }
        let group = cgroupName(id, r.attempts)
        let procs = try sandbox.cgroups?.create(group, limits: sandbox.limits, tiles: pl.tiles) ?? []
        let log = try logPath(r, creating: true)
        let header = "== OpenDojo: job \(id) attempt \(r.attempts) on \(pl) (tiles \(env["DOJO_DPU_TILES"]!)) at \(Date()) ==\n"
            + (launch.map { "== ranks on hosts: \($0.where) ==\n" } ?? "")
        let lfd = Glibc.open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if lfd >= 0 { let b = Array(header.utf8); _ = b.withUnsafeBytes { Glibc.write(lfd, $0.baseAddress, $0.count) }; Glibc.close(lfd) }
        // What its folders and log hold now (after the header): the disk check kills only jobs that grew past it.
        if sandbox.limits.diskPerTenant > 0 { diskAtStart[id] = jobDiskUsage(r) ?? Sandbox.Usage() }
        let wrapped = launch?.command ?? sandbox.wrap(cmd, uid: uid, work: work, checkpoint: checkpoint, network: tenant.network, tiles: pl.tiles,
                                                      programFolder: own)
        do {
            // A launch on hosts: mpirun runs here, outside the sandbox (with the service's rights to reach the hosts);
            // each host's daemon and ranks run in the job's sandbox there.
            workers[id] = try Worker.spawn(dir: attemptDir(id, r.attempts), log: log, workingDirectory: work, cgroupProcs: procs,
                                           sandboxed: launch == nil && sandbox.mode == .bwrap, command: wrapped, environment: env,
                                           passing: launch == nil ? [workFD, checkpointFD] : [])
        } catch {
            sandbox.cgroups?.killAndRemove(group)
            throw error
        }
    }

    /// A job's output: in its tenant's storage (`logs/<id>.log`, so that logs count against the tenant's disk limit),
    /// owned by the server and never bound into a sandbox (the job writes it through its stdout only). Jobs from
    /// before the sandbox keep `<db>.jobs/<id>/output.log`. `creating` makes the logs folder (spawn makes the root first).
    func logPath(_ r: JobRow, creating: Bool = false) throws -> String {
        let legacy = jobDir(r.id) + "/output.log"
        if FileManager.default.fileExists(atPath: legacy) { return legacy }
        let root = tenantRoot(r.tenant)
        if creating {
            let (_, fd) = try Sandbox.ensureFolder(root: root, relative: ["logs"], uid: nil, serverOwnedLeaf: true)
            Glibc.close(fd)
        }
        return root + "/logs/\(r.id).log"
    }

    /// Bytes in a job's own folders (its work folder, and its checkpoint folder when that is elsewhere).
    func jobDiskUsage(_ r: JobRow) -> Sandbox.Usage? {
        jobFolders(r).map { Sandbox.usage(folders: $0.folders, log: $0.log, limits: sandbox.limits) }
    }

    /// A job's own folders (work, and checkpoint when it is elsewhere) and its log.
    func jobFolders(_ r: JobRow) -> (folders: [String], log: String?)? {
        guard !r.checkpointDir.hasPrefix("/"), let ck = try? Sandbox.relativeComponents(r.checkpointDir) else { return nil }
        let work = workDir(r), checkpoint = tenantRoot(r.tenant) + "/" + ck.joined(separator: "/")
        return ((checkpoint + "/").hasPrefix(work + "/") ? [work] : [work, checkpoint], try? logPath(r))
    }

    func cgroupName(_ id: Int, _ attempt: Int) -> String { "job-\(id)-\(attempt)" }

    /// Kills whatever is left of an attempt in its cgroups and removes them.
    func cleanUpAttempt(_ id: Int, _ attempt: Int) {
        sandbox.cgroups?.killAndRemove(cgroupName(id, attempt))
    }

    /// The attempt ended with exit status `rc` (nil: the worker vanished without one): its new state, written first.
    /// `requeue`: the attempt ends requeued whatever its retries (it never ran: the server could not start it).
    func finish(_ id: Int, rc: Int?, now: Double, forced: String? = nil, final forceFinal: Bool = false, requeue: Bool = false) throws {
        guard let r = try fetchRow(id), r.state.isActive else { active[id] = nil; return }
        try endAttempt(id, row: r, rc: rc, now: now, forced: forced, final: forceFinal, requeue: requeue)
    }

    func endAttempt(_ id: Int, row r: JobRow, rc: Int?, now: Double, forced: String? = nil, final forceFinal: Bool = false,
                    requeue: Bool = false) throws {
        let stop = active[id]?.stopReason ?? r.stopReason
        var status = rc.map { "exit status \($0)" } ?? forced ?? "the worker ended without an exit status"
        if rc == 128 + Int(SIGXFSZ) { status += " (SIGXFSZ: a file or its log reached the limit of \(formatBytes(sandbox.limits.diskPerTenant)))" }
        var failures = r.failures
        let next: JobPhase, detail: String
        // Before its cgroup goes: did the kernel kill it for memory?
        let oom = r.attempts > 0 && (sandbox.cgroups?.oomKills(cgroupName(id, r.attempts)) ?? 0) > 0
        let killed = killReason.removeValue(forKey: id)
        diskAtStart[id] = nil
        if r.attempts > 0 { cleanUpAttempt(id, r.attempts) }
        switch stop {
        case _ where killed != nil && stop != "cancel":
            next = .failed; detail = killed! + (rc.map { "; exit status \($0)" } ?? "")
        case nil where oom && rc != 0:
            let mem = sandbox.limits.memoryPerTile * Int64(r.shapeW * r.shapeH)
            next = .outOfMemory
            detail = "killed by the kernel over its memory limit of \(formatBytes(mem)) (\(r.shapeW * r.shapeH) tile\(r.shapeW * r.shapeH == 1 ? "" : "s") × \(formatBytes(sandbox.limits.memoryPerTile))); \(status)"
        case "cancel": next = .cancelled; detail = "cancelled; \(status)"
        case "timeout": next = .timeout; detail = "time limit of \(Int(r.timeLimit)) s; \(status)"
        case "preempt": next = rc == 0 ? .completed : .requeued; detail = rc == 0 ? "finished during its grace period" : "requeued after preemption; \(status)"
        default:
            if rc == 0 { next = .completed; detail = status }
            else if requeue { next = .requeued; detail = status }
            else if !forceFinal && failures < r.retries { failures += 1; next = .requeued; detail = "\(status); retry \(failures) of \(r.retries)" }
            else { next = .failed; detail = status + (r.retries > 0 ? " after \(r.retries) retries" : "") }
        }
        let outcome = next == .requeued ? (stop == "preempt" ? "PREEMPTED" : "FAILED") : next.rawValue
        try store.db.write { db in
            try db.execute(sql: """
                UPDATE job SET state = ?, exit_code = ?, failures = ?, end_time = ?, reason = ?, pod = NULL, x = NULL, y = NULL, w = NULL, h = NULL,
                  stop_reason = NULL, stop_deadline = NULL, reaped = 1 WHERE id = ?
                """, arguments: [next.rawValue, rc, failures, next.isFinal ? now : nil, next.isFinal ? detail : nil, id])
            try db.execute(sql: "UPDATE attempt SET end = ?, outcome = ?, exit_code = ? WHERE job = ? AND n = ?", arguments: [now, outcome, rc, id, r.attempts])
            try db.execute(sql: "INSERT INTO transition VALUES (?, ?, ?, ?)", arguments: [id, next.rawValue, now, detail])
        }
        active[id] = nil
        guard let sid = sidOf[id] else { return }
        switch next {
        case .completed: try scheduler.complete(sid, at: now)
        case .requeued:
            if scheduler.job(sid).state == .stopping { try scheduler.stopped(sid, at: now) } else { try scheduler.requeue(sid, at: now) }
        default:
            try scheduler.cancel(sid, at: now)
            try cancelDependents(of: id, ended: next, now: now)
        }
    }
}
