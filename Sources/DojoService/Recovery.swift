import DojoCluster
import DojoMachine
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

// Recovery: what a controller does when it starts after any stop, SIGKILL included.

extension JobService {
    // MARK: Recovery

    func recover(now: Double) throws {
        let (tenants, tiles, rows, unreaped) = try store.db.read { db in
            (try Row.fetchAll(db, sql: "SELECT name, quota, borrow_limit FROM tenant ORDER BY name"),
             try Row.fetchAll(db, sql: "SELECT id, health, since, cause FROM tile WHERE health != 'healthy'"),
             try Row.fetchAll(db, sql: "SELECT * FROM job WHERE state NOT IN \(JobService.finalStates) ORDER BY id").map(JobRow.init),
             try Row.fetchAll(db, sql: "SELECT * FROM job WHERE reaped = 0 AND state IN \(JobService.finalStates)").map(JobRow.init))
        }
        for t in tenants { scheduler.addTenant(Tenant(t["name"], quota: t["quota"], borrowLimit: t["borrow_limit"])) }
        for t in tiles {
            try scheduler.failTile(t["id"], at: now)
            // A random fault comes back after faultRepairSeconds, counted from when it happened, across restarts.
            if (t["cause"] as String?) == "random" { faulted[t["id"]] = t["since"] }
        }
        // Finished jobs whose worker may still run (the controller died between writing the end and the kill).
        for j in unreaped { do { try killOrphan(j) } catch { lastError = "job \(j.id): \(error)" } }
        // One job that cannot be recovered ends FAILED with the reason; the others are recovered.
        for j in rows {
            do { try recoverJob(j, now: now) } catch {
                failJob(j.id, because: "could not be recovered after a restart: \(error)", now: now)
            }
        }
    }

    private func recoverJob(_ j: JobRow, now: Double) throws {
        do {
            let sid = try scheduler.submit(spec(j), at: j.submitTime)
            sidOf[j.id] = sid
            jobOf.append(j.id)
            guard j.state.isActive else {
                if j.attempts > 0 { try killOrphan(j) }   // a queued job whose earlier attempt may still run
                return
            }
            let pl = Placement(pod: j.pod ?? 0, x: j.x ?? 0, y: j.y ?? 0, w: j.w ?? j.shapeW, h: j.h ?? j.shapeH)
            let start = j.startTime ?? now
            do {
                try scheduler.adopt(sid, on: pl, since: start, stopping: j.stopReason == "preempt" ? (j.stopDeadline ?? now) : nil)
            } catch {
                // Cannot happen with a consistent store; if it does, the attempt is ended and the job queued again.
                try endAttempt(j.id, row: j, rc: nil, now: now, forced: "could not take \(pl) back: \(error)")
                return
            }
            active[j.id] = ActiveJob(tenant: j.tenant, start: start, timeLimit: j.timeLimit, stopReason: j.stopReason, stopDeadline: j.stopDeadline)
            let dir = attemptDir(j.id, j.attempts)
            var pid = Worker.pidFile(dir)
            if pid == nil, Worker.readInt(dir + "/exit") == nil, FileManager.default.fileExists(atPath: dir) {
                // The folder is made just before the spawn: give a spawn under way time to write its pid.
                let end = Date().addingTimeInterval(3)
                while pid == nil && Date() < end { usleep(20_000); pid = Worker.pidFile(dir) }
                // A supervisor slower than that still names its folder on its command line.
                if pid == nil { pid = Worker.findSupervisor(dir) }
            }
            if pid != nil || Worker.readInt(dir + "/exit") != nil {
                let w = Worker(dir: dir, pid: pid, ownChild: false)
                workers[j.id] = w
                if Worker.readInt(dir + "/exit") != nil { recovered.booked += 1 } else { recovered.adopted += 1 }
                // A stop written just before the crash may not have been signalled: signal it (again).
                if let d = j.stopDeadline, j.stopReason != nil, now < d { w.signal(SIGTERM) }
            } else {
                // Placed and written, but never started: start it now (the same attempt).
                try? FileManager.default.removeItem(atPath: dir)
                do {
                    try spawn(j.id, row: j, placement: pl)
                    active[j.id]?.start = now
                    try store.db.write { db in
                        try db.execute(sql: "UPDATE job SET start_time = ? WHERE id = ?", arguments: [now, j.id])
                        try db.execute(sql: "UPDATE attempt SET start = ? WHERE job = ? AND n = ?", arguments: [now, j.id, j.attempts])
                    }
                    recovered.restarted += 1
                } catch let e as ServiceError where e.kind != .internalError {
                    try endAttempt(j.id, row: j, rc: nil, now: now, forced: "could not start again after a restart: \(e)", final: true)
                } catch {
                    // the server's error, not the job's: queued again (its retries untouched), as `Controller.start` does
                    spawnFailures[j.id, default: 0] += 1
                    try endAttempt(j.id, row: j, rc: nil, now: now,
                                   forced: "could not start again after a restart (the server's error; requeued): \(error)", requeue: true)
                }
            }
        }
    }

    /// The scheduler's view of a job. Dependencies that have completed (or are no longer in this controller's
    /// scheduler, which holds only jobs that were unfinished when it started) are met.
    /// Recovery: dependents of jobs that ended without completing, left queued by a controller that died in between.
    func cancelOrphanedDependents(now: Double) throws {
        let ended = try store.db.read {
            try Row.fetchAll($0, sql: """
                SELECT DISTINCT k.id, k.state FROM job j, json_each(j.depends_on) AS dep JOIN job k ON k.id = dep.value
                WHERE j.state IN ('PENDING', 'REQUEUED') AND k.state IN ('FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY')
                """)
        }
        for r in ended { try cancelDependents(of: r["id"], ended: JobPhase(rawValue: r["state"]) ?? .failed, now: now) }
    }

    /// A job no longer active whose last attempt may still run (the controller died between writing its end and the
    /// kill): kill it, and mark it reaped.
    func killOrphan(_ j: JobRow) throws {
        var w = Worker(dir: attemptDir(j.id, j.attempts), pid: Worker.pidFile(attemptDir(j.id, j.attempts)), ownChild: false)
        if w.alive() { w.killAndWait(); recovered.orphansKilled += 1 }
        if j.attempts > 0 { cleanUpAttempt(j.id, j.attempts) }
        try store.db.write { try $0.execute(sql: "UPDATE job SET reaped = 1 WHERE id = ?", arguments: [j.id]) }
    }
}
