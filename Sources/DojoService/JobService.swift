import DojoCluster
import DojoMachine
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// How a service runs. The machine is fixed when the database is created; later starts must agree.
public struct ServiceOptions: Sendable {
    /// The SQLite file (created when missing). Job folders go to `<database>.jobs/<id>/`; the admin token to
    /// `<database>.admin-token`.
    public var database: String
    /// A machine preset or YAML file (`dojo machines`); its tiles are the cluster. nil: the database's machine, or
    /// `exapod` for a new database.
    public var machine: String?
    public var policy: Policy
    /// Seconds between SIGTERM and SIGKILL (preemption, time limit, cancel).
    public var grace: Double
    /// Time limit of jobs that give none, and the largest one allowed.
    public var defaultTimeLimit: Double
    public var maxTimeLimit: Double
    /// Seconds between controller rounds.
    public var tickInterval: Double
    /// Random tile faults per tile-hour (0: none), for tests of the failure path; such a tile comes back after
    /// `faultRepairSeconds` (tiles failed by an admin stay out until repaired).
    public var faultsPerTileHour: Double
    public var faultRepairSeconds: Double
    public var seed: UInt64

    public init(database: String, machine: String? = nil, policy: Policy = .opendojo, grace: Double = 10,
                defaultTimeLimit: Double = 3600, maxTimeLimit: Double = 30 * 86400, tickInterval: Double = 0.2,
                faultsPerTileHour: Double = 0, faultRepairSeconds: Double = 60, seed: UInt64 = 1) {
        self.database = database; self.machine = machine; self.policy = policy; self.grace = grace
        self.defaultTimeLimit = defaultTimeLimit; self.maxTimeLimit = maxTimeLimit; self.tickInterval = tickInterval
        self.faultsPerTileHour = faultsPerTileHour; self.faultRepairSeconds = faultRepairSeconds; self.seed = seed
    }
}

/// A job holding tiles, as the controller tracks it between rounds.
struct ActiveJob: Sendable {
    var tenant: String
    var start: Double
    var timeLimit: Double
    var stopReason: String?
    var stopDeadline: Double?
}

/// The resource manager as a running service: the durable job store (SQLite through GRDB), the scheduler core of
/// DojoCluster, and workers that run each job as a real process. One controller per database (a file lock).
/// Every state change is written to the store before it is acted on, so a SIGKILL at any moment loses nothing:
/// the next start adopts workers still running, books those that ended, and starts what was placed but never began.
public actor JobService {
    public let options: ServiceOptions
    let store: Store
    /// `<database>.jobs`: one folder per job (output.log, checkpoint/, attempt-N/{pid,exit}).
    public nonisolated let jobsRoot: String
    public nonisolated let machineName: String
    private nonisolated let adminHash: String
    private let adminTokenValue: String
    private var scheduler: Scheduler
    private var sidOf: [Int: Int] = [:]
    private var jobOf: [Int] = []
    private var workers: [Int: Worker] = [:]
    private var active: [Int: ActiveJob] = [:]
    private var faulted: [Int: Double] = [:]
    private var rng: UInt64
    private var lastTick: Double
    private let lockFD: Int32
    /// Attempts this controller found running and adopted, or found ended and booked, when it started.
    public private(set) var recovered = (adopted: 0, booked: 0, restarted: 0, orphansKilled: 0)

    private static let finalStates = "('COMPLETED','FAILED','CANCELLED','TIMEOUT')"

    /// Opens (or creates) the store, takes the controller lock, and reconciles jobs left by an earlier controller.
    public static func open(_ options: ServiceOptions) async throws -> JobService {
        try await JobService(options)
    }

    private init(_ options: ServiceOptions) async throws {
        self.options = options
        guard options.grace >= 0, options.grace <= 86400, options.tickInterval > 0, options.tickInterval <= 60,
              options.defaultTimeLimit > 0, options.maxTimeLimit >= options.defaultTimeLimit, options.maxTimeLimit <= 365 * 86400,
              options.faultsPerTileHour >= 0, options.faultsPerTileHour.isFinite, options.faultRepairSeconds >= 0 else {
            throw ServiceError.badRequest("service options: 0 ≤ grace ≤ 86400 s, 0 < tick ≤ 60 s, 0 < default time limit ≤ max time limit ≤ 365 days, faults ≥ 0")
        }
        // Absolute: workers run in their job's folder, and a restart must name attempt folders as the last run did.
        let path = URL(fileURLWithPath: options.database).standardizedFileURL.path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
            throw ServiceError.badRequest("the folder of the database \(path) does not exist")
        }
        // One controller per database.
        let fd = Glibc.open(path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ServiceError.badRequest("cannot create \(path).lock: \(String(cString: strerror(errno)))") }
        // A process being spawned holds a copy of the descriptor until its exec closes it: retry for a moment.
        var locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        for _ in 0..<40 where !locked && errno == EWOULDBLOCK {
            usleep(25_000)
            locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            let e = errno
            Glibc.close(fd)
            if e != EWOULDBLOCK { throw ServiceError.badRequest("cannot lock \(path).lock: \(String(cString: strerror(e)))") }
            throw ServiceError.conflict("another controller (dojo serve) is running on \(path)")
        }
        lockFD = fd
        // Until the service is whole, a failure must give the lock back (a failed init runs no deinit).
        var ready = false
        defer { if !ready { Glibc.close(fd) } }
        store = try Store(path: path)
        jobsRoot = path + ".jobs"
        try FileManager.default.createDirectory(atPath: jobsRoot, withIntermediateDirectories: true)
        rng = options.seed &+ 0x9E37_79B9_7F4A_7C15
        let now = Date().timeIntervalSince1970
        lastTick = now

        // The machine: fixed at creation.
        let stored = try store.meta("machine")
        let name = options.machine ?? stored ?? "exapod"
        if let stored, stored != name {
            throw ServiceError.conflict("\(path) was created for machine '\(stored)', not '\(name)': start it with --machine \(stored) or use another database")
        }
        let machine: Machine
        do { machine = try Machine.resolve(name) } catch { throw ServiceError.badRequest("\(error)") }
        let inventory: Inventory
        do { inventory = try Inventory(machine: machine) } catch { throw ServiceError.badRequest("\(error)") }
        machineName = name
        scheduler = Scheduler(inventory: inventory, policy: options.policy, grace: options.grace)

        // The admin token: kept in a file only its owner reads; the store keeps its hash.
        let tokenFile = path + ".admin-token"
        var token = (try? String(contentsOfFile: tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if try token.isEmpty || store.meta("admin_token_hash").map({ $0 != SHA256.hex(token) }) ?? true {
            token = JobService.newToken(prefix: "dojo_admin_")
            let tfd = Glibc.open(tokenFile, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o600)
            guard tfd >= 0 else { throw ServiceError.badRequest("cannot write \(tokenFile): \(String(cString: strerror(errno)))") }
            fchmod(tfd, 0o600)
            let bytes = Array((token + "\n").utf8)
            let n = bytes.withUnsafeBytes { write(tfd, $0.baseAddress, $0.count) }
            Glibc.close(tfd)
            guard n == bytes.count else { throw ServiceError.badRequest("cannot write \(tokenFile)") }
        }
        adminTokenValue = token
        adminHash = SHA256.hex(token)
        let count = inventory.count, hash = adminHash
        try await store.db.write { db in
            if stored == nil {
                try db.execute(sql: "INSERT INTO meta VALUES ('machine', ?), ('created', ?)", arguments: [name, "\(now)"])
                for t in 0..<count { try db.execute(sql: "INSERT INTO tile (id, health, since) VALUES (?, 'healthy', ?)", arguments: [t, now]) }
            }
            try db.execute(sql: "INSERT OR REPLACE INTO meta VALUES ('admin_token_hash', ?)", arguments: [hash])
        }
        try recover(now: now)
        try cancelOrphanedDependents(now: now)
        ready = true
    }

    private var closed = false
    deinit { if !closed { Glibc.close(lockFD) } }

    /// Gives up the controller lock (workers keep running; the next `open` adopts them). The service must not be
    /// used after this.
    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(lockFD)
    }

    static func newToken(prefix: String) -> String {
        var g = SystemRandomNumberGenerator()
        return prefix + (0..<4).map { _ in String(format: "%016llx", g.next() as UInt64) }.joined()
    }

    // MARK: Recovery

    private func recover(now: Double) throws {
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
        for j in unreaped { try killOrphan(j) }
        for j in rows {
            let sid = try scheduler.submit(spec(j), at: j.submitTime)
            sidOf[j.id] = sid
            jobOf.append(j.id)
            guard j.state.isActive else {
                if j.attempts > 0 { try killOrphan(j) }   // a queued job whose earlier attempt may still run
                continue
            }
            let pl = Placement(pod: j.pod ?? 0, x: j.x ?? 0, y: j.y ?? 0, w: j.w ?? j.shapeW, h: j.h ?? j.shapeH)
            let start = j.startTime ?? now
            do {
                try scheduler.adopt(sid, on: pl, since: start, stopping: j.stopReason == "preempt" ? (j.stopDeadline ?? now) : nil)
            } catch {
                // Cannot happen with a consistent store; if it does, the attempt is ended and the job queued again.
                try endAttempt(j.id, row: j, rc: nil, now: now, forced: "could not take \(pl) back: \(error)")
                continue
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
                } catch {
                    try endAttempt(j.id, row: j, rc: nil, now: now, forced: "could not start again after a restart: \(error)", final: true)
                }
            }
        }
    }

    /// The scheduler's view of a job. Dependencies that have completed (or are no longer in this controller's
    /// scheduler, which holds only jobs that were unfinished when it started) are met.
    /// Recovery: dependents of jobs that ended without completing, left queued by a controller that died in between.
    private func cancelOrphanedDependents(now: Double) throws {
        let ended = try store.db.read {
            try Row.fetchAll($0, sql: """
                SELECT DISTINCT k.id, k.state FROM job j, json_each(j.depends_on) AS dep JOIN job k ON k.id = dep.value
                WHERE j.state IN ('PENDING', 'REQUEUED') AND k.state IN ('FAILED', 'CANCELLED', 'TIMEOUT')
                """)
        }
        for r in ended { try cancelDependents(of: r["id"], ended: JobPhase(rawValue: r["state"]) ?? .failed, now: now) }
    }

    private func spec(_ j: JobRow) -> JobSpec {
        let deps = j.dependsOn.compactMap { d -> Int? in
            guard let sid = sidOf[d], scheduler.job(sid).state != .completed else { return nil }
            return sid
        }
        return JobSpec(tenant: j.tenant, name: j.name, priority: j.priority, request: .shape(Shape(j.shapeW, j.shapeH)),
                       duration: j.timeLimit, dependsOn: deps, checkpointInterval: 3600)
    }

    /// Queued jobs waiting for `id`, which ended without completing, can never start: they are cancelled (and theirs).
    private func cancelDependents(of id: Int, ended: JobPhase, now: Double) throws {
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

    func formatSeconds(_ s: Double) -> String { s < 1e9 ? "\(Int(s.rounded())) s" : "\(s) s" }

    /// The tile ids of a rectangle, row by row.
    func tileIDs(_ pl: Placement) -> [Int] {
        (pl.y..<(pl.y + pl.h)).flatMap { y in (pl.x..<(pl.x + pl.w)).map { scheduler.inventory.id(pod: pl.pod, x: $0, y: y) } }
    }

    /// A job no longer active whose last attempt may still run (the controller died between writing its end and the
    /// kill): kill it, and mark it reaped.
    private func killOrphan(_ j: JobRow) throws {
        var w = Worker(dir: attemptDir(j.id, j.attempts), pid: Worker.pidFile(attemptDir(j.id, j.attempts)), ownChild: false)
        if w.alive() { w.killAndWait(); recovered.orphansKilled += 1 }
        try store.db.write { try $0.execute(sql: "UPDATE job SET reaped = 1 WHERE id = ?", arguments: [j.id]) }
    }

    func jobDir(_ id: Int) -> String { "\(jobsRoot)/\(id)" }
    func attemptDir(_ id: Int, _ n: Int) -> String { "\(jobsRoot)/\(id)/attempt-\(n)" }

    // MARK: Authentication and tenants

    /// The admin token (also in `<database>.admin-token`).
    public var adminToken: String { adminTokenValue }

    /// `Bearer` token → who calls. Missing or unknown: 401.
    public func authenticate(token: String?) throws -> Principal {
        guard let token, !token.isEmpty else { throw ServiceError.unauthorized("missing token: send 'Authorization: Bearer TOKEN'") }
        let h = SHA256.hex(token)
        if h == adminHash { return .admin }
        if let name = try store.db.read({ try String.fetchOne($0, sql: "SELECT name FROM tenant WHERE token_hash = ?", arguments: [h]) }) {
            return .tenant(name)
        }
        throw ServiceError.unauthorized("unknown token")
    }

    private func requireAdmin(_ p: Principal, _ what: String) throws {
        guard p == .admin else { throw ServiceError.forbidden("\(what) needs the admin token") }
    }

    static func validName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, s.unicodeScalars.count <= 64, CharacterSet.alphanumerics.contains(f), f.isASCII else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    /// Admin: add a tenant with a quota of tiles (and how many more it may borrow); the answer carries its token.
    public func createTenant(name: String, quota: Int, borrowLimit: Int?, by p: Principal) throws -> TenantInfo {
        try requireAdmin(p, "adding a tenant")
        guard JobService.validName(name) else {
            throw ServiceError.unprocessable("tenant name '\(name)': 1–64 characters, letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        let total = scheduler.inventory.count
        guard quota >= 0, quota <= total else { throw ServiceError.unprocessable("quota must be 0…\(total) tiles (the machine's), got \(quota)") }
        if let b = borrowLimit, b < 0 || b > total { throw ServiceError.unprocessable("borrow_limit must be 0…\(total) tiles, got \(b)") }
        let token = JobService.newToken(prefix: "dojo_")
        let now = Date().timeIntervalSince1970
        do {
            try store.db.write { db in
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM tenant WHERE name = ?", arguments: [name]) == true {
                    throw ServiceError.conflict("tenant '\(name)' exists")
                }
                try db.execute(sql: "INSERT INTO tenant (name, quota, borrow_limit, token_hash, created) VALUES (?, ?, ?, ?, ?)", arguments: [name, quota, borrowLimit, SHA256.hex(token), now])
            }
        }
        scheduler.addTenant(Tenant(name, quota: quota, borrowLimit: borrowLimit))
        return TenantInfo(name: name, quota: quota, borrowLimit: borrowLimit, token: token)
    }

    /// Admin: every tenant (without tokens); a tenant: itself.
    public func tenants(by p: Principal) throws -> [TenantInfo] {
        let rows = try store.db.read { try Row.fetchAll($0, sql: "SELECT name, quota, borrow_limit FROM tenant ORDER BY name") }
        return rows.map { TenantInfo(name: $0["name"], quota: $0["quota"], borrowLimit: $0["borrow_limit"], token: nil) }
            .filter { p == .admin || $0.name == p.tenantName }
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
        guard s.command.count <= 4096, s.command.reduce(0, { $0 + $1.utf8.count }) <= 65536 else { throw ServiceError.unprocessable("command: at most 4096 arguments and 64 KiB") }
        if s.command.contains(where: { $0.contains("\u{0}") }) { throw ServiceError.unprocessable("command: an argument contains a NUL character") }
        let name = s.name ?? (prog as NSString).lastPathComponent
        guard !name.isEmpty, name.count <= 128, !name.contains(where: { $0.isNewline || $0 == "\u{0}" }) else {
            throw ServiceError.unprocessable("name: 1–128 characters on one line")
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
        let priority = s.priority ?? 0
        guard (-1000...1000).contains(priority) else { throw ServiceError.unprocessable("priority must be -1000…1000, got \(priority)") }
        let limit = s.timeLimit ?? options.defaultTimeLimit
        guard limit > 0, limit <= options.maxTimeLimit, limit.isFinite else {
            throw ServiceError.unprocessable("time_limit must be > 0 and ≤ \(Int(options.maxTimeLimit)) s, got \(limit)")
        }
        let retries = s.retries ?? 0
        guard (0...100).contains(retries) else { throw ServiceError.unprocessable("retries must be 0…100, got \(retries)") }
        if let c = s.checkpointDir, !c.hasPrefix("/") || c.contains("\u{0}") || c.count > 1024 {
            throw ServiceError.unprocessable("checkpoint_dir must be an absolute path, got '\(c)'")
        }
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
        let now = Date().timeIntervalSince1970
        let command = String(decoding: try JSONEncoder().encode(s.command), as: UTF8.self)
        let depsJSON = String(decoding: try JSONEncoder().encode(deps), as: UTF8.self)
        let root = jobsRoot
        let id = try store.db.write { db -> Int in
            try db.execute(sql: """
                INSERT INTO job (tenant, name, command, shape_w, shape_h, priority, time_limit, retries, checkpoint_dir, state, submit_time, depends_on)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'PENDING', ?, ?)
                """, arguments: [tenant, name, command, shape.w, shape.h, priority, limit, retries, s.checkpointDir ?? "", now, depsJSON])
            let id = Int(db.lastInsertedRowID)
            if s.checkpointDir == nil {
                try db.execute(sql: "UPDATE job SET checkpoint_dir = ? WHERE id = ?", arguments: ["\(root)/\(id)/checkpoint", id])
            }
            try db.execute(sql: "INSERT INTO transition VALUES (?, 'PENDING', ?, ?)", arguments: [id, now,
                "submitted: \(shape) (\(shape.tiles) tiles)" + (deps.isEmpty ? "" : ", after jobs \(deps.map(String.init).joined(separator: ", "))")])
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

    private func fetchRow(_ id: Int) throws -> JobRow? {
        try store.db.read { try Row.fetchOne($0, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map(JobRow.init) }
    }

    private func visibleRow(_ id: Int, by p: Principal) throws -> JobRow {
        guard let r = try fetchRow(id), p == .admin || r.tenant == p.tenantName else { throw ServiceError.notFound("no job \(id)") }
        return r
    }

    private func info(_ r: JobRow, transitions: Bool, tileSeconds: Double? = nil) throws -> JobInfo {
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
                       checkpointDir: r.checkpointDir, dependsOn: r.dependsOn, transitions: trs)
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
            }
            if let sid = sidOf[id] { try? scheduler.cancel(sid, at: now) }
            try cancelDependents(of: id, ended: .cancelled, now: now)
        } else {
            try requestStop(id, reason: "cancel", deadline: now + options.grace, detail: nil, now: now)
        }
        return try info(fetchRow(id)!, transitions: true)
    }

    private func who(_ p: Principal) -> String { p.tenantName.map { "tenant \($0)" } ?? "admin" }

    /// The job's output (stdout and stderr of every attempt), at most the last `tailBytes` bytes.
    public func logs(_ id: Int, by p: Principal, tailBytes: Int? = nil) throws -> String {
        _ = try visibleRow(id, by: p)
        if let t = tailBytes, t < 0 { throw ServiceError.badRequest("tail must be ≥ 0 bytes, got \(t)") }
        guard let h = FileHandle(forReadingAtPath: jobDir(id) + "/output.log") else { return "" }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        let want = UInt64(tailBytes ?? 8 << 20)
        try? h.seek(toOffset: size > want ? size - want : 0)
        return String(decoding: h.readDataToEndOfFile(), as: UTF8.self)
    }

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
        return try failTile(tile, detail: "failed by admin", now: Date().timeIntervalSince1970)
    }

    private func failTile(_ tile: Int, detail: String, now: Double) throws -> [Int] {
        let inv = scheduler.inventory
        guard tile >= 0, tile < inv.count else { throw ServiceError.notFound("no tile \(tile) (this \(machineName) has tiles 0…\(inv.count - 1))") }
        guard inv.tiles[tile].health == .healthy else { throw ServiceError.conflict("tile \(tile) has already failed") }
        let o = scheduler.allocator.owner[tile]
        let victim = o >= 0 ? jobOf[o] : nil
        var final: JobPhase? = nil
        try store.db.write { db in
            try db.execute(sql: "UPDATE tile SET health = 'failed', since = ?, cause = ? WHERE id = ?",
                           arguments: [now, detail.contains("random") ? "random" : "admin", tile])
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
        try repairTile(tile, now: Date().timeIntervalSince1970)
    }

    private func repairTile(_ tile: Int, now: Double) throws {
        let inv = scheduler.inventory
        guard tile >= 0, tile < inv.count else { throw ServiceError.notFound("no tile \(tile) (this \(machineName) has tiles 0…\(inv.count - 1))") }
        guard inv.tiles[tile].health != .healthy else { throw ServiceError.conflict("tile \(tile) is healthy") }
        try store.db.write { try $0.execute(sql: "UPDATE tile SET health = 'healthy', since = ?, cause = NULL WHERE id = ?", arguments: [now, tile]) }
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

    // MARK: The controller

    /// Rounds every `tickInterval` until the task is cancelled. Workers keep running after it returns.
    public func run() async {
        while !Task.isCancelled {
            tick()
            try? await Task.sleep(nanoseconds: UInt64(options.tickInterval * 1e9))
        }
    }

    /// Errors of the last rounds (a round that fails is retried by the next; they are kept for `dojo serve` to print).
    public private(set) var lastError: String?

    /// One controller round: reap ended workers, enforce time limits and grace periods, schedule, start workers.
    public func tick() {
        do { try round() } catch { lastError = "\(error)" }
    }

    private func round() throws {
        let now = Date().timeIntervalSince1970
        let dt = max(0, now - lastTick)
        lastTick = now
        for (t, since) in faulted where now - since >= options.faultRepairSeconds { try repairTile(t, now: now) }
        if options.faultsPerTileHour > 0 { try injectRandomFaults(dt: dt, now: now) }
        // Workers that ended.
        for id in workers.keys.sorted() {
            guard var w = workers[id] else { continue }
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
                do { try start(jobOf[sid], on: pl, now: now) } catch {
                    failure = error
                    active[jobOf[sid]] = nil
                    try? scheduler.requeue(sid, at: now)
                }
            case .preempt(let sid, let by, let graceEnd):
                do { try requestStop(jobOf[sid], reason: "preempt", deadline: graceEnd, detail: "preempted by job \(jobOf[by])", now: now) }
                catch { failure = error }   // the scheduler keeps it stopping; the SIGKILL at the deadline still comes
            }
        }
        if let failure { throw failure }
    }

    /// Tiles failed by the random-fault mode since this controller started.
    public private(set) var randomFaults = 0

    private func injectRandomFaults(dt: Double, now: Double) throws {
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
    private func requestStop(_ id: Int, reason: String, deadline: Double, detail: String?, now: Double) throws {
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

    private func start(_ id: Int, on pl: Placement, now: Double) throws {
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
        var row = r
        row.attempts = n
        active[id] = ActiveJob(tenant: r.tenant, start: now, timeLimit: r.timeLimit)
        do { try spawn(id, row: row, placement: pl) } catch {
            try finish(id, rc: nil, now: now, forced: "\(error)", final: true)
        }
    }

    /// The attempt's process: environment, output, and for `dojo train` its checkpoint folder and --resume.
    private func spawn(_ id: Int, row r: JobRow, placement pl: Placement) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: jobDir(id), withIntermediateDirectories: true)
        try? fm.createDirectory(atPath: r.checkpointDir, withIntermediateDirectories: true)
        let ids = tileIDs(pl)
        var env = ProcessInfo.processInfo.environment.filter { ["PATH", "HOME", "LANG", "TZ", "USER", "TMPDIR", "OMP_NUM_THREADS"].contains($0.key) }
        env["DOJO_JOB_ID"] = "\(id)"
        env["DOJO_TENANT"] = r.tenant
        env["DOJO_ATTEMPT"] = "\(r.attempts)"
        env["DOJO_DPU_TILES"] = ids.map(String.init).joined(separator: ",")
        env["DOJO_DPU_SHAPE"] = "\(pl.w)x\(pl.h)"
        env["DOJO_DPU_ORIGIN"] = "\(pl.pod),\(pl.x),\(pl.y)"
        env["DOJO_MACHINE"] = machineName
        env["DOJO_CHECKPOINT_DIR"] = r.checkpointDir
        env["DOJO_TIME_LIMIT"] = "\(Int(r.timeLimit))"
        var cmd = r.command
        if cmd.count >= 2, (cmd[0] as NSString).lastPathComponent == "dojo", cmd[1] == "train" {
            if !cmd.contains(where: { $0 == "--checkpoint-dir" || $0.hasPrefix("--checkpoint-dir=") }) { cmd += ["--checkpoint-dir", r.checkpointDir] }
            let ck = cmd.firstIndex(of: "--checkpoint-dir").map { cmd[$0 + 1] } ?? r.checkpointDir
            if !cmd.contains("--resume"), fm.fileExists(atPath: ck + "/checkpoint.safetensors") { cmd.append("--resume") }
        }
        let log = jobDir(id) + "/output.log"
        let header = "== OpenDojo: job \(id) attempt \(r.attempts) on \(pl) (tiles \(env["DOJO_DPU_TILES"]!)) at \(Date()) ==\n"
        if let h = FileHandle(forWritingAtPath: log) ?? (fm.createFile(atPath: log, contents: nil) ? FileHandle(forWritingAtPath: log) : nil) {
            _ = try? h.seekToEnd(); h.write(Data(header.utf8)); try? h.close()
        }
        workers[id] = try Worker.spawn(dir: attemptDir(id, r.attempts), log: log, workingDirectory: jobDir(id), command: cmd, environment: env)
    }

    /// The attempt ended with exit status `rc` (nil: the worker vanished without one): its new state, written first.
    private func finish(_ id: Int, rc: Int?, now: Double, forced: String? = nil, final forceFinal: Bool = false) throws {
        guard let r = try fetchRow(id), r.state.isActive else { active[id] = nil; return }
        try endAttempt(id, row: r, rc: rc, now: now, forced: forced, final: forceFinal)
    }

    private func endAttempt(_ id: Int, row r: JobRow, rc: Int?, now: Double, forced: String? = nil, final forceFinal: Bool = false) throws {
        let stop = active[id]?.stopReason ?? r.stopReason
        let status = rc.map { "exit status \($0)" } ?? forced ?? "the worker ended without an exit status"
        var failures = r.failures
        let next: JobPhase, detail: String
        switch stop {
        case "cancel": next = .cancelled; detail = "cancelled; \(status)"
        case "timeout": next = .timeout; detail = "time limit of \(Int(r.timeLimit)) s; \(status)"
        case "preempt": next = rc == 0 ? .completed : .requeued; detail = rc == 0 ? "finished during its grace period" : "requeued after preemption; \(status)"
        default:
            if rc == 0 { next = .completed; detail = status }
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

extension JobService {
    /// The floor under a submission, for `dojo cluster bench-service`: `count` durable transactions of one job row
    /// each into a fresh store (no validation, scheduler or transition). Returns the seconds taken.
    public static func benchmarkDurableInserts(count: Int, database: String) throws -> Double {
        let store = try Store(path: database)
        try store.db.write { try $0.execute(sql: "INSERT INTO tenant (name, quota, token_hash, created) VALUES ('bench', 1, 'x', 0)") }
        let start = Date()
        for i in 0..<count {
            try store.db.write { db in
                try db.execute(sql: """
                    INSERT INTO job (tenant, name, command, shape_w, shape_h, priority, time_limit, retries, checkpoint_dir, state, submit_time)
                    VALUES ('bench', ?, '["true"]', 1, 1, 0, 3600, 0, '', 'PENDING', ?)
                    """, arguments: ["j\(i)", Date().timeIntervalSince1970])
            }
        }
        return Date().timeIntervalSince(start)
    }

    /// Seconds of the last `rounds` controller rounds, for the benchmark.
    public func timeRounds(_ rounds: Int) -> Double {
        let start = Date()
        for _ in 0..<rounds { tick() }
        return Date().timeIntervalSince(start)
    }
}
