import DojoCluster
import DojoMachine
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

// Jobs: submission (validation), queries, cancel, logs, dependencies.

extension JobService {
    func spec(_ j: JobRow) -> JobSpec {
        let deps = j.dependsOn.compactMap { d -> Int? in
            guard let sid = sidOf[d], scheduler.job(sid).state != .completed else { return nil }
            return sid
        }
        return JobSpec(tenant: j.tenant, name: j.name, priority: j.priority, request: .shape(Shape(j.shapeW, j.shapeH)),
                       duration: j.timeLimit, dependsOn: deps, checkpointInterval: 3600)
    }

    /// Queued jobs waiting for `id`, which ended without completing, can never start: they are cancelled (and theirs).
    func cancelDependents(of id: Int, ended: JobPhase, now: Double) throws {
        var work = [(id, ended)]
        while let (d, how) = work.popLast() {
            let ids = try store.db.read {
                try Int.fetchAll($0, sql: """
                    SELECT DISTINCT j.id FROM job j, json_each(j.depends_on) AS dep
                    WHERE dep.value = ? AND j.state IN ('PENDING', 'REQUEUED') ORDER BY j.id
                    """, arguments: [d])
            }
            for j in ids {
                let why = "DependencyNeverSatisfied: job \(d) ended \(how.rawValue)"
                try store.db.write { db in
                    try db.execute(sql: "UPDATE job SET state = 'CANCELLED', end_time = ?, reason = ? WHERE id = ?", arguments: [now, why, j])
                    try db.execute(sql: "INSERT INTO transition VALUES (?, 'CANCELLED', ?, ?)", arguments: [j, now, why])
                }
                if let sid = sidOf[j] { try? scheduler.cancel(sid, at: now) }
                work.append((j, .cancelled))
            }
        }
    }

    // MARK: Jobs

    /// Validates and queues a job (4xx with the reason when it is malformed or can never fit; nothing is written then).
    public func submit(_ s: JobSubmission, by p: Principal) throws -> JobInfo {
        let tenant: String
        switch p {
        case .admin:
            guard let t = s.tenant else { throw ServiceError.unprocessable("an admin submits for a tenant: give 'tenant'") }
            tenant = t
        case .tenant(let own):
            if let t = s.tenant, t != own { throw ServiceError.forbidden("a tenant token submits only for its own tenant ('\(own)'), not '\(t)'") }
            tenant = own
        }
        guard let quota = scheduler.tenants.first(where: { $0.name == tenant }) else { throw ServiceError.unprocessable("unknown tenant '\(tenant)'") }
        guard let prog = s.command.first, !prog.isEmpty else { throw ServiceError.unprocessable("command: give the program and its arguments, e.g. [\"dojo\", \"train\"]") }
        // env, which gives a sandboxed job its signals back, would read a first word NAME=VALUE as a variable.
        if prog.contains("=") { throw ServiceError.unprocessable("command[0] '\(printable(prog))': a program's name cannot contain '='; to set a variable, run [\"/usr/bin/env\", \"NAME=VALUE\", \"program\", …]") }
        guard s.command.count <= 4096, s.command.reduce(0, { $0 + $1.utf8.count }) <= 65536 else { throw ServiceError.unprocessable("command: at most 4096 arguments and 64 KiB") }
        // Every string is echoed (dojo jobs, the dashboard, an admin's terminal): printable text only.
        if let i = s.command.firstIndex(where: { $0.contains("\u{0}") }) { throw ServiceError.unprocessable("command[\(i)]: an argument contains a NUL character") }
        if let i = s.command.firstIndex(where: { !isPrintable($0, allowTab: true) }) {
            throw ServiceError.unprocessable("command[\(i)] '\(printable(s.command[i]))': control characters are not allowed (put multi-line scripts in a file)")
        }
        let name = s.name ?? String((prog as NSString).lastPathComponent.prefix(128))
        guard !name.isEmpty, name.count <= 128, isPrintable(name) else {
            throw ServiceError.unprocessable("name '\(printable(name))': 1–128 printable characters, no control characters")
        }
        let request: DPURequest
        switch (s.tiles, s.shape) {
        case (let n?, nil): request = .tiles(n)
        case (nil, let sh?):
            guard let shape = Shape(parsing: sh) else { throw ServiceError.unprocessable("shape '\(sh)': expected WxH, e.g. 2x3") }
            request = .shape(shape)
        case (nil, nil): throw ServiceError.unprocessable("give 'tiles' (a count) or 'shape' (WxH)")
        default: throw ServiceError.unprocessable("give 'tiles' or 'shape', not both")
        }
        let shape: Shape
        do { shape = try scheduler.shapes.resolve(request, on: scheduler.inventory) } catch let e as ClusterError {
            throw ServiceError.unprocessable("\(e)")
        }
        if let b = quota.borrowLimit, shape.tiles > quota.quota + b {
            throw ServiceError.unprocessable("rejected: the job needs \(shape.tiles) tiles (\(shape)), more than tenant '\(tenant)' may ever hold (quota \(quota.quota) + borrow limit \(b))")
        }
        let ranks = try ranksOf(s, tiles: shape.tiles)
        let priority = s.priority ?? 0
        guard (-1000...1000).contains(priority) else { throw ServiceError.unprocessable("priority must be -1000…1000, got \(priority)") }
        let limit = s.timeLimit ?? options.defaultTimeLimit
        guard limit > 0, limit <= options.maxTimeLimit, limit.isFinite else {
            throw ServiceError.unprocessable("time_limit must be > 0 and ≤ \(Int(options.maxTimeLimit)) s, got \(limit)")
        }
        let retries = s.retries ?? 0
        guard (0...100).contains(retries) else { throw ServiceError.unprocessable("retries must be 0…100, got \(retries)") }
        // Relative to the tenant's own storage: no absolute paths, no '..'; symlinks are refused when it is made.
        let checkpoint = try s.checkpointDir.map { try Sandbox.relativeComponents($0).joined(separator: "/") }
        let deps = Array(Set(s.dependsOn ?? [])).sorted()
        guard deps.count <= 100 else { throw ServiceError.unprocessable("depends_on: at most 100 jobs, got \(deps.count)") }
        for d in deps {
            guard d > 0, let r = try fetchRow(d), r.tenant == tenant else {
                throw ServiceError.unprocessable("depends_on: no job \(d) of tenant '\(tenant)'")
            }
            if r.state.isFinal && r.state != .completed {
                throw ServiceError.unprocessable("depends_on: job \(d) ended \(r.state.rawValue); the dependency can never be satisfied")
            }
        }
        let waiting = try store.db.read {
            try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM job WHERE tenant = ? AND state IN ('PENDING', 'REQUEUED')", arguments: [tenant]) ?? 0
        }
        if waiting >= options.maxQueuedPerTenant {
            throw ServiceError(.tooMany, "tenant '\(tenant)' has \(waiting) jobs waiting, the most this service queues for one tenant (\(options.maxQueuedPerTenant)); submit more when some have started")
        }
        let now = Date().timeIntervalSince1970
        let command = String(decoding: try JSONEncoder().encode(s.command), as: UTF8.self)
        let depsJSON = String(decoding: try JSONEncoder().encode(deps), as: UTF8.self)
        let id = try store.db.write { db -> Int in
            try db.execute(sql: """
                INSERT INTO job (tenant, name, command, shape_w, shape_h, priority, time_limit, retries, checkpoint_dir, state, submit_time, depends_on, ranks)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'PENDING', ?, ?, ?)
                """, arguments: [tenant, name, command, shape.w, shape.h, priority, limit, retries, checkpoint ?? "", now, depsJSON, ranks])
            let id = Int(db.lastInsertedRowID)
            if checkpoint == nil {
                try db.execute(sql: "UPDATE job SET checkpoint_dir = ? WHERE id = ?", arguments: ["checkpoints/\(id)", id])
            }
            if p == .admin { try JobService.audit(db, p, "submit-job", "job \(id)", "for tenant \(tenant)", now) }
            try db.execute(sql: "INSERT INTO transition VALUES (?, 'PENDING', ?, ?)", arguments: [id, now,
                "submitted: \(shape) (\(shape.tiles) tiles)" + (ranks > 1 ? ", \(ranks) ranks" : "") + (deps.isEmpty ? "" : ", after jobs \(deps.map(String.init).joined(separator: ", "))")])
            return id
        }
        let row: JobRow
        do {
            row = try fetchRow(id)!
            let sid = try scheduler.submit(spec(row), at: now)
            sidOf[id] = sid
            jobOf.append(id)
        } catch {
            try? store.db.write { db in
                try db.execute(sql: "DELETE FROM transition WHERE job = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id])
            }
            throw ServiceError.unprocessable("\(error)")
        }
        return try info(row, transitions: true)
    }

    /// The ranks a submission asks for: `ranks`, or a `dojo train --ranks N` command's N, or its `--plan dp=D,pp=P`'s
    /// D × P (they must agree);
    /// at most the DPU's tiles (one rank per tile at least) and the host's cores.
    func ranksOf(_ s: JobSubmission, tiles: Int) throws -> Int {
        var fromCommand: Int?
        let c = s.command
        if c.count >= 2, (c[0] as NSString).lastPathComponent == "dojo", c[1] == "train" {
            for (i, a) in c.enumerated() where a == "--ranks" || a.hasPrefix("--ranks=") {
                let v = a == "--ranks" ? (c.indices.contains(i + 1) ? c[i + 1] : "") : String(a.dropFirst("--ranks=".count))
                guard let n = Int(v) else { throw ServiceError.unprocessable("command: dojo train --ranks needs a whole number, got '\(printable(v))'") }
                fromCommand = n
            }
            // `--plan dp=D,pp=P` runs D × P ranks (dp alone: D; pp alone: P)
            for (i, a) in c.enumerated() where a == "--plan" || a.hasPrefix("--plan=") {
                let v = a == "--plan" ? (c.indices.contains(i + 1) ? c[i + 1] : "") : String(a.dropFirst("--plan=".count))
                var n = 1
                for part in v.split(separator: ",") {
                    let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                    guard kv.count == 2, kv[0] == "dp" || kv[0] == "pp" else { continue }
                    guard let k = Int(kv[1]), k >= 1, k <= 1 << 20 else {
                        throw ServiceError.unprocessable("command: dojo train --plan \(kv[0])= needs a whole number ≥ 1, got '\(printable(kv[1]))'")
                    }
                    n *= k
                }
                if let b = fromCommand, n > 1, b != n {
                    throw ServiceError.unprocessable("command: dojo train --ranks \(b) differs from --plan \(printable(v)), which runs \(n) ranks")
                }
                if n > 1 { fromCommand = n }
            }
        }
        if let a = s.ranks, let b = fromCommand, a != b {
            let what = c.contains { $0 == "--ranks" || $0.hasPrefix("--ranks=") } ? "--ranks \(b)" : "--plan (\(b) ranks)"
            throw ServiceError.unprocessable("ranks \(a) differs from the command's \(what): give one of them")
        }
        let ranks = s.ranks ?? fromCommand ?? 1
        guard ranks >= 1 else { throw ServiceError.unprocessable("ranks must be at least 1, got \(ranks)") }
        guard ranks <= tiles else {
            let machine = scheduler.inventory.tiles.count
            throw ServiceError.unprocessable(ranks > machine
                ? "ranks \(ranks) is more than this machine has tiles (\(machine)): a job runs at most one rank per tile of its DPU (\(tiles) here)"
                : "ranks \(ranks) is more than the job's DPU has tiles (\(tiles)): ask for at least \(ranks) tiles, or fewer ranks")
        }
        if let m = hostMap {
            guard ranks <= m.totalCores else {
                throw ServiceError.unprocessable("ranks \(ranks) is more than the \(m.hosts.count) host\(m.hosts.count == 1 ? "" : "s") of this service have cores (\(m.totalCores))")
            }
        } else if ranks > options.hostCores {
            throw ServiceError.unprocessable("ranks \(ranks) is more than this host's \(options.hostCores) cores: every rank of a job runs on this host")
        }
        return ranks
    }

    func fetchRow(_ id: Int) throws -> JobRow? {
        try store.db.read { try Row.fetchOne($0, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map(JobRow.init) }
    }

    func visibleRow(_ id: Int, by p: Principal) throws -> JobRow {
        guard let r = try fetchRow(id), p == .admin || r.tenant == p.tenantName else { throw ServiceError.notFound("no job \(id)") }
        return r
    }

    func info(_ r: JobRow, transitions: Bool, tileSeconds: Double? = nil) throws -> JobInfo {
        let now = Date().timeIntervalSince1970
        var reason = r.reason
        if r.state.isQueued, let sid = sidOf[r.id] { reason = scheduler.reason(sid)?.rawValue ?? reason }
        if r.state.isActive, let a = active[r.id], let why = a.stopReason {
            reason = ["cancel": "Cancelling", "timeout": "TimeLimit", "preempt": "Preempted"][why] ?? why
        }
        var dpu: DPUInfo?
        if r.state.isActive, let pod = r.pod, let x = r.x, let y = r.y, let w = r.w, let h = r.h {
            dpu = DPUInfo(pod: pod, x: x, y: y, w: w, h: h, tiles: tileIDs(Placement(pod: pod, x: x, y: y, w: w, h: h)))
        }
        let ts: Double
        if let tileSeconds { ts = tileSeconds } else {
            ts = try store.db.read {
                try Double.fetchOne($0, sql: "SELECT SUM(tiles * (COALESCE(end, ?) - start)) FROM attempt WHERE job = ?", arguments: [now, r.id])
            } ?? 0
        }
        var trs: [Transition] = []
        if transitions {
            trs = try store.db.read {
                try Row.fetchAll($0, sql: "SELECT state, time, detail FROM transition WHERE job = ? ORDER BY rowid", arguments: [r.id])
            }.map { Transition(state: JobPhase(rawValue: $0["state"]) ?? .failed, time: $0["time"], detail: $0["detail"]) }
        }
        return JobInfo(id: r.id, tenant: r.tenant, name: r.name, command: r.command, state: r.state, reason: reason,
                       shape: "\(r.shapeW)x\(r.shapeH)", tiles: r.shapeW * r.shapeH, priority: r.priority, timeLimit: r.timeLimit,
                       retries: r.retries, attempts: r.attempts, dpu: dpu, submitTime: r.submitTime,
                       startTime: r.startTime, endTime: r.endTime, exitCode: r.exitCode, tileSeconds: ts,
                       checkpointDir: r.checkpointDir, dependsOn: r.dependsOn, ranks: r.ranks, transitions: trs)
    }

    /// The caller's jobs (an admin: all, or one tenant's), newest first, optionally only some states.
    public func jobs(by p: Principal, states: [JobPhase]? = nil, tenant: String? = nil, limit: Int? = nil) throws -> [JobInfo] {
        if let l = limit, l < 1 || l > 100_000 { throw ServiceError.badRequest("limit must be 1…100000, got \(l)") }
        var conds: [String] = [], args: [DatabaseValueConvertible?] = []
        if let t = p.tenantName {
            if let tenant, tenant != t { return [] }
            conds.append("tenant = ?"); args.append(t)
        } else if let tenant {
            conds.append("tenant = ?"); args.append(tenant)
        }
        if let states, !states.isEmpty {
            conds.append("state IN (\(states.map { _ in "?" }.joined(separator: ",")))")
            args += states.map { $0.rawValue }
        }
        let now = Date().timeIntervalSince1970
        let sql = "SELECT job.*, (SELECT SUM(tiles * (COALESCE(end, ?) - start)) FROM attempt WHERE attempt.job = job.id) AS ts FROM job"
            + (conds.isEmpty ? "" : " WHERE " + conds.joined(separator: " AND ")) + " ORDER BY id DESC LIMIT ?"
        let rows = try store.db.read { try Row.fetchAll($0, sql: sql, arguments: StatementArguments([now] + args + [limit ?? 1000])) }
        return try rows.map { try info(JobRow(row: $0), transitions: false, tileSeconds: ($0["ts"] as Double?) ?? 0) }
    }

    /// One job with its transitions. Another tenant's job is 404, as if it did not exist.
    public func job(_ id: Int, by p: Principal) throws -> JobInfo {
        try info(visibleRow(id, by: p), transitions: true)
    }

    /// Cancels a queued job at once, or a running one (SIGTERM, grace, SIGKILL). A final job: 409.
    public func cancel(_ id: Int, by p: Principal) throws -> JobInfo {
        let r = try visibleRow(id, by: p)
        let now = Date().timeIntervalSince1970
        if r.state.isFinal { throw ServiceError.conflict("job \(id) has already ended (\(r.state.rawValue))") }
        if r.state.isQueued {
            try store.db.write { db in
                try db.execute(sql: "UPDATE job SET state = 'CANCELLED', end_time = ?, reason = ? WHERE id = ?", arguments: [now, "cancelled by \(who(p))", id])
                try db.execute(sql: "INSERT INTO transition VALUES (?, 'CANCELLED', ?, ?)", arguments: [id, now, "cancelled by \(who(p)) while queued"])
                if p == .admin { try JobService.audit(db, p, "cancel-job", "job \(id)", "tenant \(r.tenant), queued", now) }
            }
            if let sid = sidOf[id] { try? scheduler.cancel(sid, at: now) }
            try cancelDependents(of: id, ended: .cancelled, now: now)
        } else {
            if p == .admin { try store.db.write { try JobService.audit($0, p, "cancel-job", "job \(id)", "tenant \(r.tenant), \(r.state.rawValue)", now) } }
            try requestStop(id, reason: "cancel", deadline: now + options.grace, detail: nil, now: now)
        }
        return try info(fetchRow(id)!, transitions: true)
    }

    func who(_ p: Principal) -> String { p.tenantName.map { "tenant \($0)" } ?? "admin" }

    /// The most of a log one request returns (and the default): 1 MiB.
    public static let maxTail = 1 << 20

    /// The job's output (stdout and stderr of every attempt), at most the last `tailBytes` bytes.
    public func logs(_ id: Int, by p: Principal, tailBytes: Int? = nil) throws -> String {
        let r = try visibleRow(id, by: p)
        if let t = tailBytes, t < 0 || t > JobService.maxTail { throw ServiceError.badRequest("tail must be 0…\(JobService.maxTail) bytes, got \(t)") }
        guard let h = FileHandle(forReadingAtPath: try logPath(r)) else { return "" }
        defer { try? h.close() }
        // Read from the end: at most maxTail bytes of a log of any size reach memory.
        let size = (try? h.seekToEnd()) ?? 0
        let want = UInt64(tailBytes ?? JobService.maxTail)
        try? h.seek(toOffset: size > want ? size - want : 0)
        return String(decoding: (try? h.read(upToCount: Int(want))) ?? Data(), as: UTF8.self)
    }

}
