import Foundation

/// A seeded generator (SplitMix64): replays are reproducible from `--seed`.
public struct SeededRandom: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    /// Exponential with the given mean.
    public mutating func exponential(mean: Double) -> Double { -mean * log(1 - unit()) }
}

/// One job of a replay: what is submitted, and when.
public struct ReplayJob: Sendable, Equatable {
    public var submit: Double
    public var spec: JobSpec
    public init(submit: Double, spec: JobSpec) { self.submit = submit; self.spec = spec }
}

/// Random tile failures: each healthy tile fails after an exponential time with mean `mtbf` seconds;
/// a failed tile is repaired after `repair` seconds.
public struct FaultModel: Sendable, Equatable {
    public var mtbf: Double, repair: Double, seed: UInt64
    public init(mtbf: Double, repair: Double = 3600, seed: UInt64 = 1) { self.mtbf = mtbf; self.repair = repair; self.seed = seed }
}

/// What a replay measured.
public struct ReplayResult: Sendable, Equatable {
    public var policy: Policy
    public var jobs = 0, completed = 0, rejected = 0
    /// Job completion time (end − submit) and queueing delay (first start − submit), seconds.
    public var meanJCT = 0.0, p95JCT = 0.0, meanWait = 0.0
    /// Busy tile-seconds / (tiles × makespan).
    public var utilization = 0.0
    /// Time-averaged share of free tiles that the head job's shape cannot use, while a job waits.
    public var fragmentation = 0.0
    public var makespan = 0.0
    public var preemptions = 0, nodeFails = 0, tileFailures = 0
    /// Tile-seconds of work lost to tile failures.
    public var workLost = 0.0
    /// Jobs examined by scheduling passes, passes, and the wall time spent in the scheduler core.
    public var decisions = 0, passes = 0
    public var schedulerSeconds = 0.0
    /// Largest amount by which any job started after its first EASY reservation (0 when the guarantee held).
    public var maxReservationDelay = 0.0
}

/// Replays jobs through the scheduler core in simulated time (a discrete-event simulation).
public func replay(_ input: [ReplayJob], inventory: Inventory, policy: Policy, tenants: [Tenant] = [],
                   shapes: ShapeCatalog = .standard, faults: FaultModel? = nil, grace: Double = 120) throws -> ReplayResult {
    var s = Scheduler(inventory: inventory, policy: policy, shapes: shapes, tenants: tenants, grace: grace)
    var result = ReplayResult(policy: policy)
    let arrivals = input.enumerated().sorted { ($0.element.submit, $0.offset) < ($1.element.submit, $1.offset) }.map(\.element)
    // Events other than arrivals: (time, seq, kind, a, b); kinds 0 complete(job, attempt), 1 stopped(job, attempt),
    // 2 fail(tile), 3 repair(tile).
    var heap = EventHeap()
    var rng = SeededRandom(seed: faults?.seed ?? 0)
    if let f = faults { heap.push(rng.exponential(mean: f.mtbf / Double(inventory.count)), 2, -1, 0) }
    var next = 0, live = 0
    var now = arrivals.first?.submit ?? 0
    let t0 = now
    var fragArea = 0.0, busyArea = 0.0, lastT = now, lastFrag = 0.0, lastBusy = 0
    let clock = ContinuousClock()
    var spent = Duration.zero
    func tilesBusy(_ s: Scheduler) -> Int { s.runningIDs.reduce(0) { $0 + s.job($1).shape.tiles } }
    while next < arrivals.count || live > 0 {
        let tA = next < arrivals.count ? arrivals[next].submit : .infinity
        let tE = heap.peekTime ?? .infinity
        let t = min(tA, tE)
        if t == .infinity { break }   // only open-ended jobs left
        fragArea += lastFrag * (t - lastT); busyArea += Double(lastBusy) * (t - lastT); lastT = t
        now = t
        let began = clock.now
        while next < arrivals.count && arrivals[next].submit == now {
            do { _ = try s.submit(arrivals[next].spec, at: now); live += 1 } catch { result.rejected += 1 }
            next += 1
        }
        while let e = heap.peek(), e.time == now {
            heap.pop()
            switch e.kind {
            case 0:
                let j = s.job(e.a)
                if (j.state == .running || j.state == .stopping) && j.attempts == e.b { try s.complete(e.a, at: now); live -= 1 }
            case 1:
                let j = s.job(e.a)
                if j.state == .stopping && j.attempts == e.b { try s.stopped(e.a, at: now) }
            case 2:
                let healthy = s.inventory.tiles.filter { $0.health == .healthy }
                if !healthy.isEmpty && live > 0 {
                    let tile = healthy[rng.below(healthy.count)].id
                    let lostBefore = s.jobs.reduce(0) { $0 + $1.lostTileSeconds }
                    try s.failTile(tile, at: now)
                    result.workLost += s.jobs.reduce(0) { $0 + $1.lostTileSeconds } - lostBefore
                    result.tileFailures += 1
                    heap.push(now + faults!.repair, 3, tile, 0)
                }
                if live > 0 || next < arrivals.count {
                    heap.push(now + rng.exponential(mean: faults!.mtbf / Double(max(1, s.inventory.healthyCount))), 2, -1, 0)
                }
            default:
                try s.repairTile(e.a)
            }
        }
        for d in s.schedule(at: now) {
            switch d {
            case .start(let id, _):
                let j = s.job(id)
                if j.remaining.isFinite { heap.push(now + j.remaining, 0, id, j.attempts) }
            case .preempt(let id, _, let g):
                heap.push(g, 1, id, s.job(id).attempts)
            }
        }
        spent += clock.now - began
        lastBusy = tilesBusy(s)
        let free = s.allocator.freeCount
        if let h = s.headShape, free > 0 { lastFrag = Double(s.allocator.unusableFreeTiles(for: h)) / Double(free) } else { lastFrag = 0 }
    }
    let done = s.jobs.filter { $0.state == .completed }
    result.jobs = input.count
    result.completed = done.count
    result.makespan = now - t0
    if !done.isEmpty {
        let jct = done.map { $0.endTime! - $0.submitTime }.sorted()
        result.meanJCT = jct.reduce(0, +) / Double(jct.count)
        result.p95JCT = jct[min(jct.count - 1, Int((0.95 * Double(jct.count)).rounded(.up)) - 1)]
        result.meanWait = done.map { $0.firstStart! - $0.submitTime }.reduce(0, +) / Double(done.count)
    }
    if result.makespan > 0 {
        result.utilization = busyArea / (Double(inventory.count) * result.makespan)
        result.fragmentation = fragArea / result.makespan
    }
    result.preemptions = s.jobs.reduce(0) { $0 + $1.preemptions }
    result.nodeFails = s.jobs.reduce(0) { $0 + $1.nodeFails }
    result.decisions = s.decisionsMade
    result.passes = s.passes
    result.schedulerSeconds = Double(spent.components.seconds) + Double(spent.components.attoseconds) * 1e-18
    for j in s.jobs { if let r = j.firstReservation, let st = j.firstStart { result.maxReservationDelay = max(result.maxReservationDelay, st - r) } }
    return result
}

/// A binary min-heap of events by (time, sequence).
struct EventHeap {
    struct Event { let time: Double, seq: Int, kind: Int, a: Int, b: Int }
    private var items: [Event] = []
    private var seq = 0
    var peekTime: Double? { items.first?.time }
    func peek() -> Event? { items.first }
    private func less(_ x: Event, _ y: Event) -> Bool { (x.time, x.seq) < (y.time, y.seq) }
    mutating func push(_ time: Double, _ kind: Int, _ a: Int, _ b: Int) {
        items.append(Event(time: time, seq: seq, kind: kind, a: a, b: b)); seq += 1
        var i = items.count - 1
        while i > 0 { let p = (i - 1) / 2; if less(items[i], items[p]) { items.swapAt(i, p); i = p } else { break } }
    }
    mutating func pop() {
        items.swapAt(0, items.count - 1); items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && less(items[l], items[m]) { m = l }
            if r < items.count && less(items[r], items[m]) { m = r }
            if m == i { break }
            items.swapAt(i, m); i = m
        }
    }
}
