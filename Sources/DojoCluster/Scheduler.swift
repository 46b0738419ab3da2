/// Scheduling policies compared by `dojo cluster replay`.
public enum Policy: String, Sendable, CaseIterable {
    /// Strict first-come first-served: the oldest job starts first; nothing passes a blocked head.
    case fifo
    /// FIFO with EASY backfill: the head gets a reservation; a later job may start only if it cannot delay it.
    case fifoBackfill = "fifo-backfill"
    /// Priorities, per-tenant quotas with borrowing and reclaim by preemption, fair share, EASY backfill, best fit.
    case opendojo
}

/// Why a pending job waits (Slurm's reason codes, plus Kueue-like quota and shape).
public enum PendingReason: String, Sendable, Equatable {
    /// Jobs ahead of it in the queue are served first.
    case priority = "Priority"
    /// Not enough free healthy tiles.
    case resources = "Resources"
    /// Enough free tiles, but no contiguous rectangle of its shape.
    case shape = "Shape"
    /// Its tenant would exceed quota plus borrow limit.
    case quota = "Quota"
    /// It fits now, but would delay the reservation of the job at the head.
    case reservation = "Reservation"
    /// A job it depends on has not completed.
    case dependency = "Dependency"
    /// It has evicted borrowed jobs and waits for their grace period to end.
    case preemption = "Preemption"
}

public enum JobState: String, Sendable, Equatable {
    case pending = "PENDING", running = "RUNNING", stopping = "PREEMPTING", completed = "COMPLETED", cancelled = "CANCELLED"
}

/// What a tenant submits.
public struct JobSpec: Sendable, Equatable {
    public var tenant: String
    public var name: String
    public var priority: Int
    public var request: DPURequest
    /// Seconds of work (replay); nil: open-ended (runs until completed or cancelled).
    public var duration: Double?
    /// Jobs that must complete first.
    public var dependsOn: [Int]
    /// Checkpoint interval in seconds; a tile failure loses the work since the last checkpoint.
    public var checkpointInterval: Double
    public init(tenant: String, name: String = "", priority: Int = 0, request: DPURequest, duration: Double? = nil,
                dependsOn: [Int] = [], checkpointInterval: Double = 3600) {
        self.tenant = tenant; self.name = name; self.priority = priority; self.request = request
        self.duration = duration; self.dependsOn = dependsOn; self.checkpointInterval = checkpointInterval
    }
}

/// A tenant: a nominal quota of tiles, and how many more it may borrow while others leave them idle
/// (nil: any idle tile). Borrowed jobs can be preempted to give tiles back.
public struct Tenant: Sendable, Equatable {
    public var name: String
    public var quota: Int
    public var borrowLimit: Int?
    public init(_ name: String, quota: Int, borrowLimit: Int? = nil) { self.name = name; self.quota = quota; self.borrowLimit = borrowLimit }
}

/// A job as the scheduler sees it.
public struct Job: Sendable, Equatable {
    public let id: Int
    public let spec: JobSpec
    public let shape: Shape
    public let submitTime: Double
    public internal(set) var state: JobState = .pending
    public internal(set) var placement: Placement?
    /// Start of the current attempt; first start ever; end (completed or cancelled).
    public internal(set) var startTime: Double?
    public internal(set) var firstStart: Double?
    public internal(set) var endTime: Double?
    /// Seconds of work saved (checkpointed or done before a preemption).
    public internal(set) var workDone: Double = 0
    public internal(set) var attempts = 0
    public internal(set) var preemptions = 0
    public internal(set) var nodeFails = 0
    /// Tile-seconds of work lost to tile failures.
    public internal(set) var lostTileSeconds: Double = 0
    /// Whether the running attempt uses borrowed quota (and may be preempted).
    public internal(set) var borrowed = false
    /// The latest reservation made for it as head of the queue: (start time, rectangle).
    public internal(set) var reservation: (time: Double, placement: Placement)? {
        get { resTime.map { ($0, resPlacement!) } }
        set { resTime = newValue?.time; resPlacement = newValue?.placement }
    }
    var resTime: Double?, resPlacement: Placement?
    /// The first reservation it ever got (the EASY guarantee is measured against it).
    public internal(set) var firstReservation: Double?
    /// When a preempted attempt's grace period ends.
    public internal(set) var graceEnd: Double?
    var claim: Placement?
    var reasonValue: PendingReason = .priority
    var reasonPass = -1

    init(id: Int, spec: JobSpec, shape: Shape, submitTime: Double) {
        self.id = id; self.spec = spec; self.shape = shape; self.submitTime = submitTime
    }

    /// Seconds of work left (infinite when open-ended).
    public var remaining: Double { spec.duration.map { max(0, $0 - workDone) } ?? .infinity }
    /// When the running attempt ends if nothing happens.
    public var expectedEnd: Double? {
        switch state {
        case .running: return startTime.map { $0 + remaining }
        case .stopping: return min(graceEnd ?? .infinity, startTime.map { $0 + remaining } ?? .infinity)
        default: return nil
        }
    }
}

/// A scheduling decision for the workers (or the simulator) to carry out.
public enum Decision: Sendable, Equatable {
    /// Start the job on that rectangle.
    case start(job: Int, placement: Placement)
    /// Tell the job to stop (SIGTERM), give it until `graceEnd` to checkpoint, then call `stopped`.
    case preempt(job: Int, by: Int, graceEnd: Double)
}

/// The scheduler core: deterministic and pure (no clocks, no threads): the same calls give the same decisions.
public struct Scheduler: Sendable {
    public let policy: Policy
    public let shapes: ShapeCatalog
    public private(set) var allocator: Allocator
    public private(set) var jobs: [Job] = []
    public private(set) var tenants: [Tenant]
    /// Grace period a preempted job gets to checkpoint (SageMaker's 120 s).
    public var grace: Double
    /// How many pending jobs a pass examines after the head (Slurm's bf_max_job_test).
    public var depth: Int = 100
    /// Jobs examined over all passes (each gets a start, a reservation or a reason): scheduling decisions.
    public private(set) var decisionsMade = 0
    public private(set) var passes = 0
    /// The shape of the first job that could not start in the last pass (fragmentation is measured against it).
    public private(set) var headShape: Shape?
    private let autoTenants: Bool
    private var tenantIndex: [String: Int] = [:]
    /// Tiles in use per tenant (running and stopping), and tile-seconds of finished attempts.
    public private(set) var inUse: [Int]
    public private(set) var usedTileSeconds: [Double]
    /// Pending queues, one per (priority, tenant) for `opendojo`, one in all for FIFO; each in (submit, id) order.
    private var queues: [(key: QueueKey, ids: [Int])] = []
    private var running: [Int] = []
    /// Pending jobs holding a rectangle while their victims stop.
    private var claimants: [Int] = []

    struct QueueKey: Comparable {
        let priority: Int, tenant: Int
        static func < (a: QueueKey, b: QueueKey) -> Bool { (-a.priority, a.tenant) < (-b.priority, b.tenant) }
    }

    /// `tenants` empty: any tenant name is accepted, with the whole machine as quota.
    public init(inventory: Inventory, policy: Policy, shapes: ShapeCatalog = .standard, tenants: [Tenant] = [],
                fit: Fit? = nil, grace: Double = 120) {
        self.policy = policy
        self.shapes = shapes
        self.allocator = Allocator(inventory: inventory, fit: fit ?? (policy == .opendojo ? .best : .first))
        self.tenants = tenants
        self.autoTenants = tenants.isEmpty
        self.grace = grace
        self.inUse = Array(repeating: 0, count: tenants.count)
        self.usedTileSeconds = Array(repeating: 0, count: tenants.count)
        for (i, t) in tenants.enumerated() { tenantIndex[t.name] = i }
    }

    public var inventory: Inventory { allocator.inventory }
    public func job(_ id: Int) -> Job { jobs[id] }
    public var pendingIDs: [Int] { queues.flatMap(\.ids).sorted() }
    public var runningIDs: [Int] { running.sorted() }

    /// Why a pending job waits (nil when it is not pending). Jobs a pass did not reach wait for `Priority`.
    public func reason(_ id: Int) -> PendingReason? {
        let j = jobs[id]
        guard j.state == .pending else { return nil }
        return j.reasonPass == passes ? j.reasonValue : .priority
    }

    /// Admits a job: resolves its shape (or rejects it at once, with the reason, when it can never fit) and queues it.
    public mutating func submit(_ spec: JobSpec, at t: Double) throws -> Int {
        let shape = try shapes.resolve(spec.request, on: allocator.inventory)
        let ti = try tenantSlot(spec.tenant)
        for d in spec.dependsOn where d < 0 || d >= jobs.count { throw ClusterError.unknownJob(d) }
        if let d = spec.duration, !(d >= 0 && d.isFinite) { throw ClusterError.invalidRequest("duration must be ≥ 0 s, got \(d)") }
        guard spec.checkpointInterval > 0 else { throw ClusterError.invalidRequest("checkpoint interval must be > 0 s") }
        let id = jobs.count
        jobs.append(Job(id: id, spec: spec, shape: shape, submitTime: t))
        _ = ti
        enqueue(id)
        return id
    }

    private mutating func tenantSlot(_ name: String) throws -> Int {
        if let i = tenantIndex[name] { return i }
        guard autoTenants else { throw ClusterError.unknownTenant(name) }
        tenants.append(Tenant(name, quota: allocator.inventory.count))
        inUse.append(0); usedTileSeconds.append(0)
        tenantIndex[name] = tenants.count - 1
        return tenants.count - 1
    }

    private mutating func enqueue(_ id: Int) {
        let j = jobs[id]
        let key = policy == .opendojo ? QueueKey(priority: j.spec.priority, tenant: tenantIndex[j.spec.tenant]!) : QueueKey(priority: 0, tenant: 0)
        var qi = queues.firstIndex { $0.key == key }
        if qi == nil {
            let at = queues.firstIndex { key < $0.key } ?? queues.count
            queues.insert((key, []), at: at)
            qi = at
        }
        // Sorted by (submit, id); a requeued job goes back to its place.
        var lo = 0, hi = queues[qi!].ids.count
        while lo < hi {
            let mid = (lo + hi) / 2, m = jobs[queues[qi!].ids[mid]]
            if (m.submitTime, m.id) < (j.submitTime, j.id) { lo = mid + 1 } else { hi = mid }
        }
        queues[qi!].ids.insert(id, at: lo)
    }

    private mutating func dequeue(_ id: Int) {
        for q in queues.indices { if let k = queues[q].ids.firstIndex(of: id) { queues[q].ids.remove(at: k); return } }
    }

    /// The order of the pending queue this pass: FIFO by submit time; `opendojo` by priority, then the tenant with
    /// the smallest share of its quota used (tile-seconds, finished and running), then submit time.
    private func forEachInOrder(now: Double, _ body: (Int) -> Bool) {
        if queues.count == 1 {
            for id in queues[0].ids { if !body(id) { return } }
            return
        }
        var share = [Double](repeating: 0, count: tenants.count)
        for i in tenants.indices { share[i] = usedTileSeconds[i] }
        for r in running { let j = jobs[r]; share[tenantIndex[j.spec.tenant]!] += Double(j.shape.tiles) * (now - (j.startTime ?? now)) }
        for i in tenants.indices { share[i] /= Double(max(1, tenants[i].quota)) }
        var cursors = [Int](repeating: 0, count: queues.count)
        while true {
            var best = -1
            for q in queues.indices where cursors[q] < queues[q].ids.count {
                if best < 0 { best = q; continue }
                let a = jobs[queues[q].ids[cursors[q]]], b = jobs[queues[best].ids[cursors[best]]]
                let ka = (-a.spec.priority, share[queues[q].key.tenant], a.submitTime, a.id)
                let kb = (-b.spec.priority, share[queues[best].key.tenant], b.submitTime, b.id)
                if ka < kb { best = q }
            }
            if best < 0 { return }
            let id = queues[best].ids[cursors[best]]
            cursors[best] += 1
            if !body(id) { return }
        }
    }

    /// One scheduling pass at time `now`: starts what can start, preempts for the head where the policy allows,
    /// reserves for the head, backfills, and gives every examined pending job its reason.
    public mutating func schedule(at now: Double) -> [Decision] {
        passes += 1
        headShape = nil
        var decisions: [Decision] = []
        var reservation: (time: Double, placement: Placement)?
        var claims: [Placement] = []
        for id in claimants { if let c = jobs[id].claim { claims.append(c) } }
        var blocked = false, examined = 0
        var ids: [Int] = []
        forEachInOrder(now: now) { id in
            if ids.count >= depth { return false }
            ids.append(id)
            return true
        }
        var k = 0
        while true {
            // The examined window grows while nothing is blocked (every job may start).
            if k == ids.count {
                if blocked || ids.count < depth { break }
                var more: [Int] = [], seen = 0
                forEachInOrder(now: now) { id in
                    seen += 1
                    if seen <= ids.count { return true }
                    more.append(id)
                    return more.count < depth
                }
                if more.isEmpty { break }
                ids += more
            }
            let id = ids[k]
            k += 1
            if jobs[id].state != .pending { continue }
            if blocked && (examined >= depth || allocator.freeCount == 0) { break }
            examined += 1
            decisionsMade += 1
            jobs[id].reasonPass = passes
            let j = jobs[id]
            if j.spec.dependsOn.contains(where: { jobs[$0].state != .completed }) { jobs[id].reasonValue = .dependency; continue }
            let ti = tenantIndex[j.spec.tenant]!
            if policy == .opendojo, let limit = tenants[ti].borrowLimit, inUse[ti] + j.shape.tiles > tenants[ti].quota + limit {
                jobs[id].reasonValue = .quota; continue
            }
            if let c = j.claim {
                let others = claims.filter { $0 != c }
                if allocator.isFree(c) && !others.contains(where: { $0.overlaps(c) }) {
                    start(id, on: c, at: now); decisions.append(.start(job: id, placement: c)); continue
                }
                jobs[id].reasonValue = .preemption
                if reservation == nil { reservation = (now + grace, c) }
                if !blocked { blocked = true; headShape = j.shape }
                continue
            }
            var avoid = claims
            if let r = reservation { avoid.append(r.placement) }
            var pl = allocator.find(j.shape, avoiding: avoid)
            if pl == nil, let r = reservation, let end = Optional(now + j.remaining), end <= r.time {
                pl = allocator.find(j.shape, avoiding: claims)   // it ends before the reservation: it may use the rectangle
            }
            if let pl {
                start(id, on: pl, at: now); decisions.append(.start(job: id, placement: pl)); continue
            }
            let freeNow = allocator.freeCount
            let why: PendingReason = freeNow < j.shape.tiles ? .resources : .shape
            if blocked {
                jobs[id].reasonValue = allocator.find(j.shape, avoiding: claims) != nil ? .reservation : why
                continue
            }
            // The head: the first job that cannot start.
            blocked = true
            headShape = j.shape
            jobs[id].reasonValue = why
            if policy == .fifo { break }
            if policy == .opendojo, let (pl, victims) = preemptionFor(id, claims: claims) {
                for v in victims {
                    jobs[v].state = .stopping
                    jobs[v].graceEnd = now + grace
                    jobs[v].preemptions += 1
                    decisions.append(.preempt(job: v, by: id, graceEnd: now + grace))
                }
                jobs[id].claim = pl
                claimants.append(id)
                claims.append(pl)
                jobs[id].reasonValue = .preemption
                reservation = (now + grace, pl)
                continue
            }
            if let r = shadow(j.shape, claims: claims) {
                reservation = r
                jobs[id].reservation = r
                if jobs[id].firstReservation == nil { jobs[id].firstReservation = r.time }
            }
        }
        return decisions
    }

    /// When and where the shape could start if running jobs end as expected (EASY's shadow time).
    private func shadow(_ shape: Shape, claims: [Placement]) -> (time: Double, placement: Placement)? {
        var copy = allocator
        let ends = running.compactMap { r -> (Double, Int)? in jobs[r].expectedEnd.flatMap { $0.isFinite ? ($0, r) : nil } }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        var free = copy.freeCount
        for (t, r) in ends {
            copy.release(jobs[r].placement!, of: r)
            free += jobs[r].shape.tiles
            if free >= shape.tiles, let pl = copy.find(shape, avoiding: claims) { return (t, pl) }
        }
        return nil
    }

    /// Borrowed jobs the pending job `id` may evict, and the rectangle that evicts the fewest tiles.
    private func preemptionFor(_ id: Int, claims: [Placement]) -> (Placement, [Int])? {
        let j = jobs[id]
        let ti = tenantIndex[j.spec.tenant]!
        let withinQuota = inUse[ti] + j.shape.tiles <= tenants[ti].quota
        guard let (pl, victims) = allocator.placementEvicting(j.shape, evictable: { v in
            let vj = jobs[v]
            guard vj.state == .running, vj.borrowed else { return false }
            return vj.spec.priority < j.spec.priority || (withinQuota && vj.spec.tenant != j.spec.tenant)
        }, cost: { Double(jobs[$0].shape.tiles) }) else { return nil }
        if claims.contains(where: { $0.overlaps(pl) }) { return nil }
        return (pl, victims)
    }

    private mutating func start(_ id: Int, on pl: Placement, at now: Double) {
        allocator.allocate(pl, to: id)
        dequeue(id)
        let ti = tenantIndex[jobs[id].spec.tenant]!
        jobs[id].borrowed = inUse[ti] + pl.tiles > tenants[ti].quota
        inUse[ti] += pl.tiles
        jobs[id].state = .running
        jobs[id].placement = pl
        jobs[id].startTime = now
        if jobs[id].firstStart == nil { jobs[id].firstStart = now }
        jobs[id].attempts += 1
        jobs[id].claim = nil
        claimants.removeAll { $0 == id }
        jobs[id].graceEnd = nil
        running.append(id)
    }

    /// Ends the running attempt at `now`: frees its tiles, books its tile-seconds.
    private mutating func endAttempt(_ id: Int, at now: Double) {
        let j = jobs[id]
        guard let pl = j.placement, let s = j.startTime else { return }
        allocator.release(pl, of: id)
        let ti = tenantIndex[j.spec.tenant]!
        inUse[ti] -= pl.tiles
        usedTileSeconds[ti] += Double(pl.tiles) * (now - s)
        if let k = running.firstIndex(of: id) { running.remove(at: k) }
        jobs[id].placement = nil
    }

    /// The job finished its work.
    public mutating func complete(_ id: Int, at now: Double) throws {
        guard id >= 0, id < jobs.count else { throw ClusterError.unknownJob(id) }
        guard jobs[id].state == .running || jobs[id].state == .stopping else { return }
        endAttempt(id, at: now)
        jobs[id].workDone = jobs[id].spec.duration ?? jobs[id].workDone
        jobs[id].state = .completed
        jobs[id].endTime = now
    }

    /// A preempted job's grace period ended (it checkpointed): it goes back to the queue and keeps its work.
    public mutating func stopped(_ id: Int, at now: Double) throws {
        guard id >= 0, id < jobs.count else { throw ClusterError.unknownJob(id) }
        guard jobs[id].state == .stopping, let s = jobs[id].startTime else { return }
        jobs[id].workDone += now - s
        endAttempt(id, at: now)
        jobs[id].state = .pending
        jobs[id].graceEnd = nil
        enqueue(id)
    }

    public mutating func cancel(_ id: Int, at now: Double) throws {
        guard id >= 0, id < jobs.count else { throw ClusterError.unknownJob(id) }
        switch jobs[id].state {
        case .pending: dequeue(id); jobs[id].claim = nil; claimants.removeAll { $0 == id }
        case .running, .stopping: endAttempt(id, at: now)
        default: return
        }
        jobs[id].state = .cancelled
        jobs[id].endTime = now
    }

    /// A tile failed: it leaves the pool; the job on it (if any) loses the work since its last checkpoint and is
    /// requeued. Returns the requeued jobs.
    @discardableResult
    public mutating func failTile(_ tile: Int, at now: Double) throws -> [Int] {
        guard tile >= 0, tile < allocator.inventory.count else { throw ClusterError.unknownTile(tile) }
        var requeued: [Int] = []
        let o = allocator.owner[tile]
        if o >= 0, let s = jobs[o].startTime {
            let ran = now - s, ck = jobs[o].spec.checkpointInterval
            let kept = (ran / ck).rounded(.down) * ck
            jobs[o].lostTileSeconds += (ran - kept) * Double(jobs[o].shape.tiles)
            jobs[o].workDone += kept
            jobs[o].nodeFails += 1
            endAttempt(o, at: now)
            jobs[o].state = .pending
            jobs[o].graceEnd = nil
            enqueue(o)
            requeued.append(o)
        }
        allocator.setHealth(tile, .failed)
        let t = allocator.inventory.tiles[tile]
        for id in claimants {
            if let c = jobs[id].claim, c.pod == t.pod, c.contains(x: t.x, y: t.y) { jobs[id].claim = nil }
        }
        claimants.removeAll { jobs[$0].claim == nil }
        return requeued
    }

    /// The running attempt ended without finishing (a failed run to be retried, a worker lost in a crash): it goes
    /// back to the queue at its place and keeps the work saved so far.
    public mutating func requeue(_ id: Int, at now: Double) throws {
        guard id >= 0, id < jobs.count else { throw ClusterError.unknownJob(id) }
        guard jobs[id].state == .running || jobs[id].state == .stopping else { return }
        endAttempt(id, at: now)
        jobs[id].state = .pending
        jobs[id].graceEnd = nil
        enqueue(id)
    }

    /// Adds a tenant (a running service learns of new tenants without a restart). An existing name: quota updated.
    public mutating func addTenant(_ t: Tenant) {
        if let i = tenantIndex[t.name] { tenants[i] = t; return }
        tenants.append(t)
        inUse.append(0); usedTileSeconds.append(0)
        tenantIndex[t.name] = tenants.count - 1
    }

    /// Recovery: a pending job that was already running on `pl` since `since` (a controller restarted and found its
    /// worker alive) takes that rectangle again without a scheduling pass. The rectangle must be free.
    public mutating func adopt(_ id: Int, on pl: Placement, since: Double, stopping graceEnd: Double? = nil) throws {
        guard id >= 0, id < jobs.count else { throw ClusterError.unknownJob(id) }
        guard jobs[id].state == .pending else { throw ClusterError.invalidRequest("job \(id) is not pending") }
        guard allocator.isFree(pl) else { throw ClusterError.invalidRequest("\(pl) is not free for job \(id)") }
        start(id, on: pl, at: since)
        if let g = graceEnd { jobs[id].state = .stopping; jobs[id].graceEnd = g }
    }

    public mutating func repairTile(_ tile: Int) throws {
        guard tile >= 0, tile < allocator.inventory.count else { throw ClusterError.unknownTile(tile) }
        allocator.setHealth(tile, .healthy)
    }
}
