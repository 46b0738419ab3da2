import DojoCluster
import DojoMachine
import Foundation

/// How a service runs. The machine is fixed when the database is created; later starts must agree.
public struct ServiceOptions: Sendable {
    /// The SQLite file (created when missing). Job folders go to `<database>.jobs/<id>/`; the admin token to
    /// `<database>.admin-token`.
    public var database: String
    /// A machine preset or YAML file (`dojo machines`); its tiles are the cluster.
    public var machine: String
    public var policy: Policy
    /// Seconds between SIGTERM and SIGKILL (preemption, time limit, cancel).
    public var grace: Double
    /// Time limit of jobs that give none, and the largest one allowed.
    public var defaultTimeLimit: Double
    public var maxTimeLimit: Double
    /// Seconds between controller rounds.
    public var tickInterval: Double
    /// Random tile faults per tile-hour (0: none). For tests of the failure path.
    public var faultsPerTileHour: Double
    public var seed: UInt64

    public init(database: String, machine: String = "exapod", policy: Policy = .opendojo, grace: Double = 10,
                defaultTimeLimit: Double = 3600, maxTimeLimit: Double = 30 * 86400, tickInterval: Double = 0.2,
                faultsPerTileHour: Double = 0, seed: UInt64 = 1) {
        self.database = database; self.machine = machine; self.policy = policy; self.grace = grace
        self.defaultTimeLimit = defaultTimeLimit; self.maxTimeLimit = maxTimeLimit; self.tickInterval = tickInterval
        self.faultsPerTileHour = faultsPerTileHour; self.seed = seed
    }
}

/// The resource manager as a running service: the durable job store (SQLite through GRDB), the scheduler core of
/// DojoCluster, and workers that run each job as a real process. One controller per database (a file lock).
/// Every state change is written to the store before it is acted on, so a SIGKILL at any moment loses nothing:
/// the next start adopts workers still running, books those that ended, and requeues what never started.
public actor JobService {
    /// Opens (or creates) the store, takes the controller lock, and reconciles jobs left by an earlier controller.
    public static func open(_ options: ServiceOptions) throws -> JobService { fatalError("not yet") }

    /// The admin token (also in `<database>.admin-token`).
    public nonisolated var adminToken: String { fatalError("not yet") }

    /// `Bearer` token → who calls. Missing or unknown: 401.
    public func authenticate(token: String?) throws -> Principal { fatalError("not yet") }

    /// Admin: add a tenant with a quota of tiles (and how many more it may borrow); the answer carries its token.
    public func createTenant(name: String, quota: Int, borrowLimit: Int?, by: Principal) throws -> TenantInfo { fatalError("not yet") }
    /// Admin: every tenant (without tokens); a tenant: itself.
    public func tenants(by: Principal) throws -> [TenantInfo] { fatalError("not yet") }

    /// Validates and queues a job (400/422 with the reason when it is malformed or can never fit; nothing is written then).
    public func submit(_ s: JobSubmission, by: Principal) throws -> JobInfo { fatalError("not yet") }
    /// The caller's jobs (an admin: all, or one tenant's), newest first, optionally only some states.
    public func jobs(by: Principal, states: [JobPhase]? = nil, tenant: String? = nil, limit: Int? = nil) throws -> [JobInfo] { fatalError("not yet") }
    /// One job with its transitions. Another tenant's job is 404, as if it did not exist.
    public func job(_ id: Int, by: Principal) throws -> JobInfo { fatalError("not yet") }
    /// Cancels a queued job at once, or a running one (SIGTERM, grace, SIGKILL). A final job: 409.
    public func cancel(_ id: Int, by: Principal) throws -> JobInfo { fatalError("not yet") }
    /// The job's output (stdout and stderr of every attempt), at most the last `tailBytes` bytes.
    public func logs(_ id: Int, by: Principal, tailBytes: Int? = nil) throws -> String { fatalError("not yet") }
    /// The tile map, counts and utilisation. A tenant sees other tenants' tiles as busy, without job ids.
    public func cluster(by: Principal) throws -> ClusterStatus { fatalError("not yet") }
    /// Tile-seconds per tenant (a tenant: only its own row).
    public func usage(by: Principal) throws -> [UsageRow] { fatalError("not yet") }
    /// Admin: a tile fails (its job goes to NODE_FAIL and is requeued) / is repaired.
    public func failTile(_ tile: Int, by: Principal) throws -> [Int] { fatalError("not yet") }
    public func repairTile(_ tile: Int, by: Principal) throws { fatalError("not yet") }
    /// Prometheus text exposition: queue length, utilisation, jobs by state, tiles by health.
    public func metrics() -> String { fatalError("not yet") }

    /// One controller round: reap ended workers, enforce time limits and grace periods, schedule, start workers.
    public func tick() { fatalError("not yet") }
    /// Rounds every `tickInterval` until the task is cancelled. Workers keep running after it returns.
    public func run() async { fatalError("not yet") }
}
