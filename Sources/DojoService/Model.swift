import DojoCluster
import Foundation

/// A job's state, as Slurm names them. PENDING and REQUEUED wait in the queue; RUNNING and PREEMPTED hold tiles;
/// the rest are final, except NODE_FAIL, which a job passes through on its way back to the queue.
public enum JobPhase: String, Codable, Sendable, CaseIterable {
    case pending = "PENDING", running = "RUNNING", preempted = "PREEMPTED", requeued = "REQUEUED"
    case completed = "COMPLETED", failed = "FAILED", cancelled = "CANCELLED", timeout = "TIMEOUT", nodeFail = "NODE_FAIL"
    /// Killed by the kernel over its memory limit (the DPU's tiles × memory per tile); final, as in Slurm.
    case outOfMemory = "OUT_OF_MEMORY"

    /// Waiting for tiles.
    public var isQueued: Bool { self == .pending || self == .requeued }
    /// Holding tiles (a preempted job keeps them through its grace period).
    public var isActive: Bool { self == .running || self == .preempted }
    /// Nothing more will happen to it.
    public var isFinal: Bool { self == .completed || self == .failed || self == .cancelled || self == .timeout || self == .outOfMemory }
}

/// What a tenant submits (the JSON body of `POST /v1/jobs`).
public struct JobSubmission: Codable, Sendable, Equatable {
    /// A name to recognise it by (default: the program's name).
    public var name: String?
    /// The program and its arguments (argv; not a shell line). `dojo train …` is the common case.
    public var command: [String]
    /// Tiles wanted (mapped to the smallest allowed shape), or a shape `WxH`. Exactly one.
    public var tiles: Int?
    public var shape: String?
    /// Higher runs first; may preempt lower-priority jobs running on borrowed quota.
    public var priority: Int?
    /// Wall-clock limit in seconds (default 3600): SIGTERM, a grace period, then SIGKILL → TIMEOUT.
    public var timeLimit: Double?
    /// How often a job that exits non-zero is started again before it is FAILED (default 0).
    public var retries: Int?
    /// Where the job keeps its checkpoints, relative to its tenant's storage (default: `checkpoints/<id>`, beside the job's
    /// work folder `jobs/<id>`); given to it as DOJO_CHECKPOINT_DIR (absolute). Jobs of a tenant that name the same
    /// folder share it (a later job resumes an earlier one's run).
    public var checkpointDir: String?
    /// Only an admin may submit for a tenant; a tenant's token implies its own name.
    public var tenant: String?
    /// Jobs (of the same tenant) that must complete first (Slurm's afterok). If one ends otherwise, this job is
    /// cancelled (DependencyNeverSatisfied).
    public var dependsOn: [Int]?
    /// Processes to run it as, under Open MPI's mpirun (default 1): `dojo train` gets `--ranks N` (data-parallel),
    /// any other program is started as `mpirun -n N PROGRAM …`. At most its DPU's tiles and the host's cores. Every
    /// rank sees the DPU in its environment; cancel, time limits, preemption and tile failures stop all of them.
    public var ranks: Int?

    public init(name: String? = nil, command: [String], tiles: Int? = nil, shape: String? = nil, priority: Int? = nil,
                timeLimit: Double? = nil, retries: Int? = nil, checkpointDir: String? = nil, tenant: String? = nil,
                dependsOn: [Int]? = nil, ranks: Int? = nil) {
        self.name = name; self.command = command; self.tiles = tiles; self.shape = shape; self.priority = priority
        self.timeLimit = timeLimit; self.retries = retries; self.checkpointDir = checkpointDir; self.tenant = tenant
        self.dependsOn = dependsOn; self.ranks = ranks
    }
    enum CodingKeys: String, CodingKey {
        case name, command, tiles, shape, priority, retries, tenant, ranks
        case timeLimit = "time_limit", checkpointDir = "checkpoint_dir", dependsOn = "depends_on"
    }
}

/// One timestamped state change of a job.
public struct Transition: Codable, Sendable, Equatable {
    public var state: JobPhase
    /// Unix time, seconds.
    public var time: Double
    public var detail: String
}

/// A placed DPU: a rectangle of tiles in one pod's grid, and the tile ids.
public struct DPUInfo: Codable, Sendable, Equatable {
    public var pod: Int, x: Int, y: Int, w: Int, h: Int
    public var tiles: [Int]
}

/// A job as the service reports it (`GET /v1/jobs/{id}`).
public struct JobInfo: Codable, Sendable, Equatable {
    public var id: Int
    public var tenant: String
    public var name: String
    public var command: [String]
    public var state: JobPhase
    /// Why it waits (Priority, Resources, Shape, Quota, Reservation, Dependency, Preemption), or why it ended.
    public var reason: String?
    /// The shape it runs on (WxH) and the tiles that is.
    public var shape: String
    public var tiles: Int
    public var priority: Int
    public var timeLimit: Double
    public var retries: Int
    /// Attempts started so far.
    public var attempts: Int
    public var dpu: DPUInfo?
    public var submitTime: Double
    public var startTime: Double?
    public var endTime: Double?
    public var exitCode: Int?
    /// Tile-seconds used by all its attempts (running attempts counted to now).
    public var tileSeconds: Double
    public var checkpointDir: String
    /// Jobs that must complete before it starts.
    public var dependsOn: [Int]
    /// Processes it runs as (under mpirun when more than 1).
    public var ranks: Int
    /// Its transitions, oldest first (only in `GET /v1/jobs/{id}`; empty in lists).
    public var transitions: [Transition]

    enum CodingKeys: String, CodingKey {
        case id, tenant, name, command, state, reason, shape, tiles, priority, retries, attempts, dpu, transitions, ranks
        case dependsOn = "depends_on"
        case timeLimit = "time_limit", submitTime = "submit_time", startTime = "start_time", endTime = "end_time"
        case exitCode = "exit_code", tileSeconds = "tile_seconds", checkpointDir = "checkpoint_dir"
    }
}

/// One tile on the cluster map.
public struct TileInfo: Codable, Sendable, Equatable {
    public var id: Int, pod: Int, x: Int, y: Int, cabinet: Int, tray: Int
    public var health: TileHealth
    /// The job holding it, if any (a tenant sees other tenants' jobs only as "busy", without an id).
    public var job: Int?
    public var busy: Bool
}

/// The cluster as a whole (`GET /v1/cluster`).
public struct ClusterStatus: Codable, Sendable, Equatable {
    public var machine: String
    public var width: Int, height: Int, pods: Int
    public var tiles: [TileInfo]
    public var healthy: Int, failed: Int, busy: Int, free: Int
    /// Jobs by state (the caller's jobs only, for a tenant).
    public var jobs: [String: Int]
    public var pending: Int, running: Int
    /// Busy tiles ÷ healthy tiles.
    public var utilization: Double
    /// Allowed DPU shapes.
    public var shapes: [String]
}

/// Tile-seconds per tenant (`dojo usage`, like sreport).
public struct UsageRow: Codable, Sendable, Equatable {
    public var tenant: String
    public var jobs: Int
    public var attempts: Int
    public var tileSeconds: Double
    public var quota: Int
    enum CodingKeys: String, CodingKey { case tenant, jobs, attempts, quota; case tileSeconds = "tile_seconds" }
}

/// A tenant as an admin sees it; `token` only in the answer to its creation.
public struct TenantInfo: Codable, Sendable, Equatable {
    public var name: String
    public var quota: Int
    public var borrowLimit: Int?
    /// Whether its jobs may use the host's network (multi-rank jobs need it); otherwise loopback only.
    public var network: Bool
    public var token: String?
    enum CodingKeys: String, CodingKey { case name, quota, token, network; case borrowLimit = "borrow_limit" }
}

/// One admin action (`GET /v1/audit`, `dojo audit`).
public struct AuditEntry: Codable, Sendable, Equatable {
    public var id: Int
    public var time: Double
    /// `admin`, or `tenant NAME` for a tenant acting on what is not its own (none today).
    public var actor: String
    /// create-tenant, fail-tile, repair-tile, cancel-job, submit-job (an admin submitting for a tenant).
    public var action: String
    public var target: String
    public var detail: String
}

/// Who calls.
public enum Principal: Sendable, Equatable {
    case admin
    case tenant(String)
    public var tenantName: String? { if case .tenant(let t) = self { return t }; return nil }
}

/// A service error with the HTTP status it maps to and a message that names the problem.
public struct ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Int, Sendable { case badRequest = 400, unauthorized = 401, forbidden = 403, notFound = 404, conflict = 409, tooLarge = 413, unprocessable = 422, tooMany = 429, internalError = 500 }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
    public static func badRequest(_ m: String) -> ServiceError { .init(.badRequest, m) }
    public static func notFound(_ m: String) -> ServiceError { .init(.notFound, m) }
    public static func forbidden(_ m: String) -> ServiceError { .init(.forbidden, m) }
    public static func unauthorized(_ m: String) -> ServiceError { .init(.unauthorized, m) }
    public static func conflict(_ m: String) -> ServiceError { .init(.conflict, m) }
    public static func unprocessable(_ m: String) -> ServiceError { .init(.unprocessable, m) }
}
