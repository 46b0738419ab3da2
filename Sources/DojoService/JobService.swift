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
    /// How attempts are contained (Sandbox.swift): bubblewrap by default; `.none` only for a single trusted user.
    public var sandbox: SandboxMode
    /// CPU and memory per tile, processes per job, disk per tenant.
    public var limits: SandboxLimits
    /// Running as root, tenant n (the n-th created) runs its jobs as uid `tenantUIDBase + n`. ASSUMPTION: the range
    /// from 1,900,001 is unused on the host (no passwd entries are needed); change it where it is not.
    public var tenantUIDBase: Int
    /// Adopt and reap orphaned processes of the sandboxes (PR_SET_CHILD_SUBREAPER): `dojo serve` sets it; a process
    /// that also runs children of its own (a test) leaves it off.
    public var reapOrphans = false
    /// Jobs one tenant may have waiting; a submission beyond is refused (429): a flood of queued jobs would slow every
    /// scheduling round for all tenants.
    public var maxQueuedPerTenant = 1000
    /// The host's cores: a job may not ask for more ranks (processes under mpirun) than this. ASSUMPTION: every rank
    /// of a job runs on this host (default: the cores this process may use).
    public var hostCores = ProcessInfo.processInfo.activeProcessorCount
    /// The hosts that serve the tiles (`HostMap`'s file; nil: every job runs on this host), the program that starts
    /// ranks on them (`PROGRAM HOST COMMAND`; nil: ssh), the network they talk over (CIDR; nil: Open MPI picks), the TCP
    /// port probed to see that a host answers, and the seconds without an answer after which its tiles fail.
    public var hostFile: String?
    public var hostLauncher: String?
    public var hostNetwork: String?
    public var hostProbePort = 22
    public var hostDownAfter = 5.0

    public init(database: String, machine: String? = nil, policy: Policy = .opendojo, grace: Double = 10,
                defaultTimeLimit: Double = 3600, maxTimeLimit: Double = 30 * 86400, tickInterval: Double = 0.2,
                faultsPerTileHour: Double = 0, faultRepairSeconds: Double = 60, seed: UInt64 = 1,
                sandbox: SandboxMode = .bwrap, limits: SandboxLimits = SandboxLimits(), tenantUIDBase: Int = 1_900_000) {
        self.database = database; self.machine = machine; self.policy = policy; self.grace = grace
        self.defaultTimeLimit = defaultTimeLimit; self.maxTimeLimit = maxTimeLimit; self.tickInterval = tickInterval
        self.faultsPerTileHour = faultsPerTileHour; self.faultRepairSeconds = faultRepairSeconds; self.seed = seed
        self.sandbox = sandbox; self.limits = limits; self.tenantUIDBase = tenantUIDBase
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
    /// `<database>.jobs`: the server's folder per job (output.log, attempt-N/{pid,exit}); never visible to jobs.
    public nonisolated let jobsRoot: String
    /// `<database>.tenants`: each tenant's storage (`<name>/`, owned by its uid): jobs' work folders
    /// (`jobs/<id>/`) and checkpoint folders (`checkpoint_dir`, relative to it).
    public nonisolated let tenantsRoot: String
    let sandbox: Sandbox
    /// What `dojo serve` prints about containment and limits.
    public nonisolated let sandboxSummary: [String]
    /// Which host serves which tiles (`--hosts`); nil: every job runs on this host.
    public nonisolated let hostMap: HostMap?
    /// Hosts that have not answered since (the time of their last answer), and whether a probe round is running.
    var hostSilentSince: [Int: Double] = [:]
    var hostDown: Set<Int> = []
    var hostProbeRunning = false
    var hostNotes: [String] = []
    var lastHostProbe: Double = 0
    /// Seconds since the last disk-usage check of tenants' storage.
    var lastDiskCheck: Double = 0
    /// Jobs being killed by the controller for a reason of its own (disk quota): their end is booked with it.
    var killReason: [Int: String] = [:]
    /// Bytes in each running job's own folders when it started: a tenant over its disk limit loses only the jobs
    /// whose folders grew (a job that deletes files to get back under it is left alone).
    var diskAtStart: [Int: Sandbox.Usage] = [:]
    /// A disk check's walk is running (off the actor).
    var diskCheckRunning = false
    /// Starts that failed for a reason of the store (not of the job) in a row: after three, the job is FAILED.
    var startFailures: [Int: Int] = [:]
    /// Starts in a row of a job that the server could not spawn (`Controller.start`): requeued until 3.
    var spawnFailures: [Int: Int] = [:]
    public nonisolated let machineName: String
    nonisolated let adminHash: String
    let adminTokenValue: String
    var scheduler: Scheduler
    var sidOf: [Int: Int] = [:]
    var jobOf: [Int] = []
    var workers: [Int: Worker] = [:]
    var active: [Int: ActiveJob] = [:]
    var faulted: [Int: Double] = [:]
    var rng: UInt64
    var lastTick: Double
    private let lockFD: Int32
    /// Attempts this controller found running and adopted, or found ended and booked, when it started.
    public internal(set) var recovered = (adopted: 0, booked: 0, restarted: 0, orphansKilled: 0)

    static let finalStates = "('COMPLETED','FAILED','CANCELLED','TIMEOUT','OUT_OF_MEMORY')"

    /// Opens (or creates) the store, takes the controller lock, and reconciles jobs left by an earlier controller.
    public static func open(_ options: ServiceOptions) async throws -> JobService {
        try await JobService(options)
    }

    init(_ options: ServiceOptions) async throws {
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
        tenantsRoot = path + ".tenants"
        // Only the server's user reads the database, its bookkeeping and the tenants' storage list.
        for (p, mode) in [(jobsRoot, 0o700), (tenantsRoot, 0o711)] as [(String, mode_t)] {
            if mkdir(p, mode) != 0 && errno != EEXIST { throw ServiceError.badRequest("cannot create \(p): \(String(cString: strerror(errno)))") }
            chmod(p, mode)
        }
        for f in [path, path + "-journal", path + ".lock"] { chmod(f, 0o600) }
        var h: UInt64 = 1469598103934665603
        for b in path.utf8 { h = (h ^ UInt64(b)) &* 1099511628211 }
        sandbox = try Sandbox(mode: options.sandbox, limits: options.limits, tenantUIDBase: options.tenantUIDBase,
                              database: path, groupName: "opendojo-" + String(h & 0xFFFF_FFFF, radix: 16))
        if options.reapOrphans { Worker.becomeSubreaper() }
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
        hostMap = try JobService.loadHosts(options, tileCount: inventory.count)
        sandboxSummary = sandbox.summary + (hostMap.map { [$0.summary] } ?? [])

        // The admin token: kept in a file only its owner reads; the store keeps its hash.
        let tokenFile = path + ".admin-token"
        var token = (try? String(contentsOfFile: tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if try token.isEmpty || store.meta("admin_token_hash").map({ $0 != Tokens.hash(token) }) ?? true {
            token = Tokens.make(prefix: "dojo_admin_")
            let tfd = Glibc.open(tokenFile, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o600)
            guard tfd >= 0 else { throw ServiceError.badRequest("cannot write \(tokenFile): \(String(cString: strerror(errno)))") }
            fchmod(tfd, 0o600)
            let bytes = Array((token + "\n").utf8)
            let n = bytes.withUnsafeBytes { write(tfd, $0.baseAddress, $0.count) }
            Glibc.close(tfd)
            guard n == bytes.count else { throw ServiceError.badRequest("cannot write \(tokenFile)") }
        }
        adminTokenValue = token
        adminHash = Tokens.hash(token)
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

    /// The host map of `--hosts`, checked against this machine's tiles and the launcher and network given with it.
    static func loadHosts(_ o: ServiceOptions, tileCount: Int) throws -> HostMap? {
        guard let file = o.hostFile else {
            if o.hostLauncher != nil || o.hostNetwork != nil { throw ServiceError.badRequest("--host-launcher and --host-network go with --hosts FILE") }
            return nil
        }
        var text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            var st = stat()
            let why = stat(file, &st) != 0 ? String(cString: strerror(errno)) : (st.st_mode & S_IFMT) == S_IFDIR ? "a folder, not a file" : "not readable UTF-8 text"
            throw ServiceError.badRequest("--hosts \(file): \(why)")
        }
        if text.utf8.count > 1 << 20 { throw ServiceError.badRequest("--hosts \(file): larger than 1 MiB") }
        if let l = o.hostLauncher {
            var folder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: l, isDirectory: &folder) else { throw ServiceError.badRequest("--host-launcher \(l): no such file") }
            guard !folder.boolValue, access(l, X_OK) == 0 else { throw ServiceError.badRequest("--host-launcher \(l): \(folder.boolValue ? "a folder" : "not executable (chmod +x)")") }
            guard l.hasPrefix("/"), !l.contains(where: { $0 == " " || $0 == "'" || $0 == "\n" }) else {
                throw ServiceError.badRequest("--host-launcher \(l): give an absolute path without spaces or quotes (Open MPI runs it by name)")
            }
        }
        if let n = o.hostNetwork, !isCIDR(n) { throw ServiceError.badRequest("--host-network must be an IPv4 network as CIDR, e.g. 10.99.1.0/24, got '\(printable(n))'") }
        guard (1...65535).contains(o.hostProbePort) else { throw ServiceError.badRequest("--host-probe-port must be 1…65535, got \(o.hostProbePort)") }
        guard o.hostDownAfter.isFinite, (1...3600).contains(o.hostDownAfter) else { throw ServiceError.badRequest("--host-timeout must be 1…3600 seconds, got \(o.hostDownAfter)") }
        do {
            var m = try HostMap.parse(text, file: file, tileCount: tileCount, launcher: o.hostLauncher, network: o.hostNetwork)
            m.probePort = o.hostProbePort
            m.downAfter = o.hostDownAfter
            m.probeInterval = min(1, o.hostDownAfter / 3)
            return m
        } catch let e as HostMapError { throw ServiceError.badRequest("--hosts \(e.message)") }
    }

    static func isCIDR(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]), (0...32).contains(bits) else { return false }
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { $0.count <= 3 && Int($0).map { (0...255).contains($0) } == true }
    }

    var closed = false
    deinit { if !closed { Glibc.close(lockFD) } }

    /// Gives up the controller lock (workers keep running; the next `open` adopts them). The service must not be
    /// used after this.
    public func close() {
        guard !closed else { return }
        closed = true
        sandbox.cgroups?.removeParents()   // only when no attempt's group is left in them
        Glibc.close(lockFD)
    }


    /// Errors of the last rounds (a round that fails is retried by the next; they are kept for `dojo serve` to print).
    public internal(set) var lastError: String?
    /// Tiles failed by the random-fault mode since this controller started.
    public internal(set) var randomFaults = 0

    func formatSeconds(_ s: Double) -> String { s < 1e9 ? "\(Int(s.rounded())) s" : "\(s) s" }

    /// The tile ids of a rectangle, row by row.
    func tileIDs(_ pl: Placement) -> [Int] {
        (pl.y..<(pl.y + pl.h)).flatMap { y in (pl.x..<(pl.x + pl.w)).map { scheduler.inventory.id(pod: pl.pod, x: $0, y: y) } }
    }


    /// The path with every symlink resolved, if it exists.
    func realPath(_ p: String) -> String? {
        guard let r = Glibc.realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    /// The server's folder of a job (its log and attempts' bookkeeping).
    func jobDir(_ id: Int) -> String { "\(jobsRoot)/\(id)" }
    /// A tenant's storage root, and a job's work folder in it.
    func tenantRoot(_ tenant: String) -> String { "\(tenantsRoot)/\(tenant)" }
    func workDir(_ r: JobRow) -> String { "\(tenantRoot(r.tenant))/jobs/\(r.id)" }
    func attemptDir(_ id: Int, _ n: Int) -> String { "\(jobsRoot)/\(id)/attempt-\(n)" }

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
