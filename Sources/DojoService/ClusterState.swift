import DojoCluster
import DojoMachine
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

// Tiles (fail, repair), the cluster map, usage and Prometheus metrics.

extension JobService {
    /// The tile map, counts and utilisation. A tenant sees other tenants' tiles as busy, without job ids.
    public func cluster(by p: Principal) throws -> ClusterStatus {
        let inv = scheduler.inventory
        let owner = scheduler.allocator.owner
        var tiles: [TileInfo] = []
        tiles.reserveCapacity(inv.count)
        var busy = 0
        for t in inv.tiles {
            let o = owner[t.id]
            var job: Int? = nil
            if o >= 0 {
                busy += 1
                let jid = jobOf[o]
                if p == .admin || active[jid]?.tenant == p.tenantName { job = jid }
            }
            tiles.append(TileInfo(id: t.id, pod: t.pod, x: t.x, y: t.y, cabinet: t.cabinet, tray: t.tray, health: t.health, job: job, busy: o >= 0))
        }
        let healthy = inv.healthyCount
        var byState: [String: Int] = [:]
        let rows = try store.db.read { db in
            try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job" + (p.tenantName == nil ? "" : " WHERE tenant = ?") + " GROUP BY state",
                             arguments: StatementArguments(p.tenantName.map { [$0] } ?? []))
        }
        for r in rows { byState[r["state"]] = r["n"] }
        return ClusterStatus(machine: machineName, width: inv.width, height: inv.height, pods: inv.pods, tiles: tiles,
                             healthy: healthy, failed: inv.count - healthy, busy: busy, free: scheduler.allocator.freeCount,
                             jobs: byState, pending: (byState["PENDING"] ?? 0) + (byState["REQUEUED"] ?? 0),
                             running: (byState["RUNNING"] ?? 0) + (byState["PREEMPTED"] ?? 0),
                             utilization: healthy == 0 ? 0 : Double(busy) / Double(healthy),
                             shapes: scheduler.shapes.shapes.map(\.description))
    }

    /// Tile-seconds per tenant (a tenant: only its own row).
    public func usage(by p: Principal) throws -> [UsageRow] {
        let now = Date().timeIntervalSince1970
        let rows = try store.db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT t.name, t.quota,
                  (SELECT COUNT(*) FROM job j WHERE j.tenant = t.name) AS jobs,
                  (SELECT COUNT(*) FROM attempt a WHERE a.tenant = t.name) AS attempts,
                  (SELECT SUM(a.tiles * (COALESCE(a.end, ?) - a.start)) FROM attempt a WHERE a.tenant = t.name) AS ts
                FROM tenant t ORDER BY t.name
                """, arguments: [now])
        }
        return rows.map { UsageRow(tenant: $0["name"], jobs: $0["jobs"], attempts: $0["attempts"], tileSeconds: ($0["ts"] as Double?) ?? 0, quota: $0["quota"]) }
            .filter { p == .admin || $0.tenant == p.tenantName }
    }

    // MARK: Tiles

    /// Admin: a tile fails (its job goes to NODE_FAIL and is requeued) / is repaired.
    public func failTile(_ tile: Int, by p: Principal) throws -> [Int] {
        try requireAdmin(p, "failing a tile")
        return try failTile(tile, detail: "failed by admin", now: Date().timeIntervalSince1970, by: p)
    }

    func failTile(_ tile: Int, detail: String, now: Double, by p: Principal? = nil, cause: String? = nil) throws -> [Int] {
        let inv = scheduler.inventory
        guard tile >= 0, tile < inv.count else { throw ServiceError.notFound("no tile \(tile) (this \(machineName) has tiles 0…\(inv.count - 1))") }
        guard inv.tiles[tile].health == .healthy else { throw ServiceError.conflict("tile \(tile) has already failed") }
        let o = scheduler.allocator.owner[tile]
        let victim = o >= 0 ? jobOf[o] : nil
        var final: JobPhase? = nil
        try store.db.write { db in
            try db.execute(sql: "UPDATE tile SET health = 'failed', since = ?, cause = ? WHERE id = ?",
                           arguments: [now, cause ?? (detail.contains("random") ? "random" : "admin"), tile])
            if let p { try JobService.audit(db, p, "fail-tile", "tile \(tile)", victim.map { "job \($0) requeued" } ?? "no job on it", now) }
            guard let v = victim, let r = try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [v]).map(JobRow.init) else { return }
            // A job being cancelled or timed out ends so; any other goes back to the queue.
            let next: JobPhase = r.stopReason == "cancel" ? .cancelled : r.stopReason == "timeout" ? .timeout : .requeued
            if next != .requeued { final = next }
            try db.execute(sql: "INSERT INTO transition VALUES (?, 'NODE_FAIL', ?, ?)", arguments: [v, now, "tile \(tile) \(detail)"])
            try db.execute(sql: "INSERT INTO transition VALUES (?, ?, ?, ?)", arguments: [v, next.rawValue, now,
                next == .requeued ? "requeued; resumes from its last checkpoint" : "ended by the tile failure"])
            try db.execute(sql: """
                UPDATE job SET state = ?, reason = ?, pod = NULL, x = NULL, y = NULL, w = NULL, h = NULL,
                  stop_reason = NULL, stop_deadline = NULL, end_time = ?, reaped = 0 WHERE id = ?
                """, arguments: [next.rawValue, "NodeFail (tile \(tile))", next.isFinal ? now : nil, v])
            try db.execute(sql: "UPDATE attempt SET end = ?, outcome = 'NODE_FAIL' WHERE job = ? AND n = ?", arguments: [now, v, r.attempts])
        }
        // The tile is gone: so is what ran on it.
        if let v = victim {
            if var w = workers[v] { w.killAndWait() }
            if let n = try fetchRow(v)?.attempts, n > 0 { cleanUpAttempt(v, n) }
            workers[v] = nil
            active[v] = nil
            try store.db.write { try $0.execute(sql: "UPDATE job SET reaped = 1 WHERE id = ?", arguments: [v]) }
        }
        _ = try scheduler.failTile(tile, at: now)
        if let v = victim, let f = final, let sid = sidOf[v] {
            try scheduler.cancel(sid, at: now)
            try cancelDependents(of: v, ended: f, now: now)
        }
        return victim.map { [$0] } ?? []
    }

    public func repairTile(_ tile: Int, by p: Principal) throws {
        try requireAdmin(p, "repairing a tile")
        try repairTile(tile, now: Date().timeIntervalSince1970, by: p)
    }

    func repairTile(_ tile: Int, now: Double, by p: Principal? = nil) throws {
        let inv = scheduler.inventory
        guard tile >= 0, tile < inv.count else { throw ServiceError.notFound("no tile \(tile) (this \(machineName) has tiles 0…\(inv.count - 1))") }
        guard inv.tiles[tile].health != .healthy else { throw ServiceError.conflict("tile \(tile) is healthy") }
        try store.db.write { db in
            try db.execute(sql: "UPDATE tile SET health = 'healthy', since = ?, cause = NULL WHERE id = ?", arguments: [now, tile])
            if let p { try JobService.audit(db, p, "repair-tile", "tile \(tile)", "", now) }
        }
        try scheduler.repairTile(tile)
        faulted[tile] = nil
    }

    // MARK: Metrics

    /// Prometheus text exposition: queue length, utilisation, jobs by state, tiles by health, tile-seconds by tenant.
    public func metrics() -> String {
        let st = try? cluster(by: .admin)
        let use = (try? usage(by: .admin)) ?? []
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, v) in samples { out += "\(name)\(labels) \(v.rounded() == v && abs(v) < 1e15 ? String(Int(v)) : String(v))\n" }
        }
        metric("dojo_queue_length", "gauge", "Jobs waiting for tiles (PENDING or REQUEUED).", [("", Double(st?.pending ?? 0))])
        metric("dojo_jobs", "gauge", "Jobs by state.", JobPhase.allCases.map { ("{state=\"\($0.rawValue)\"}", Double(st?.jobs[$0.rawValue] ?? 0)) })
        metric("dojo_tiles", "gauge", "Tiles by state: busy (in a DPU), free (healthy, unused), failed.",
               [("{state=\"busy\"}", Double(st?.busy ?? 0)), ("{state=\"free\"}", Double(st?.free ?? 0)), ("{state=\"failed\"}", Double(st?.failed ?? 0))])
        metric("dojo_utilization", "gauge", "Busy tiles divided by healthy tiles.", [("", st?.utilization ?? 0)])
        metric("dojo_tenant_tile_seconds_total", "counter", "Tile-seconds used by each tenant's jobs.",
               use.map { ("{tenant=\"\($0.tenant)\"}", $0.tileSeconds) })
        metric("dojo_scheduler_passes_total", "counter", "Scheduling passes since the controller started.", [("", Double(scheduler.passes))])
        metric("dojo_scheduler_decisions_total", "counter", "Pending jobs examined by scheduling passes since the controller started.",
               [("", Double(scheduler.decisionsMade))])
        return out
    }

}
