import DojoCluster
import DojoMachine
import Foundation
import Testing

@Suite("DojoCluster: inventory and allocator")
struct AllocatorTests {
    @Test("an ExaPOD is one 4 x 30 grid of 120 tiles in 20 trays; exapodx2 two grids")
    func inventory() throws {
        let inv = try Inventory(machine: Machine.resolve("exapod"))
        #expect(inv.width == 30 && inv.height == 4 && inv.pods == 1 && inv.count == 120)
        #expect(inv.trayCount == 20 && inv.dipsPerTray == 20)
        #expect(inv.tile(pod: 0, x: 3, y: 2).cabinet == 1)
        let two = try Inventory(machine: Machine.resolve("exapodx2"))
        #expect(two.pods == 2 && two.count == 240)
        #expect(throws: ClusterError.self) { try Inventory(machine: Machine.resolve("dgx-h100")) }
        #expect(throws: ClusterError.self) { try Inventory(machine: Machine.resolve("d1")) }
    }

    @Test("placements are contiguous rectangles of healthy free tiles and never overlap")
    func noOverlap() throws {
        var a = Allocator(inventory: Inventory(width: 30, height: 4))
        a.setHealth(a.inventory.id(pod: 0, x: 5, y: 1), .failed)
        var placed: [Placement] = []
        var rng = SeededRandom(seed: 7)
        let shapes = ShapeCatalog.standard.shapes.filter { $0.tiles <= 12 }
        for job in 0..<200 {
            guard let pl = a.find(shapes[rng.below(shapes.count)]) else { continue }
            for p in placed { #expect(!p.overlaps(pl)) }
            #expect(!pl.contains(x: 5, y: 1))
            a.allocate(pl, to: job)
            placed.append(pl)
        }
        #expect(a.freeCount == 119 - placed.reduce(0) { $0 + $1.tiles })
    }

    @Test("best fit keeps room for the next job where first fit does not")
    func bestBeatsFirst() {
        var inv = Inventory(width: 5, height: 1)
        let cat = ShapeCatalog([Shape(1, 1), Shape(1, 3)])
        func run(_ fit: Fit) -> Bool {
            var s = Scheduler(inventory: inv, policy: .fifo, shapes: cat, fit: fit)
            try! s.failTile(3, at: 0)
            _ = try! s.submit(JobSpec(tenant: "a", request: .tiles(1), duration: 100), at: 0)
            _ = s.schedule(at: 0)
            _ = try! s.submit(JobSpec(tenant: "a", request: .shape(Shape(1, 3)), duration: 100), at: 1)
            return s.schedule(at: 1).count == 1
        }
        inv = Inventory(width: 5, height: 1)
        #expect(run(.best))
        #expect(!run(.first))
    }

    @Test("impossible requests are rejected at once with the reason")
    func rejects() throws {
        let inv = try Inventory(machine: Machine.resolve("exapod"))
        var s = Scheduler(inventory: inv, policy: .opendojo)
        #expect(throws: ClusterError.rejected("121 tiles is more than one 30x4 grid of exapod holds (120)")) {
            try s.submit(JobSpec(tenant: "a", request: .tiles(121)), at: 0)
        }
        #expect(throws: ClusterError.self) { try s.submit(JobSpec(tenant: "a", request: .shape(Shape(3, 3))), at: 0) }
        #expect(throws: ClusterError.self) { try s.submit(JobSpec(tenant: "a", request: .tiles(0)), at: 0) }
        let small = ShapeCatalog([Shape(1, 1), Shape(4, 3)])
        var t = Scheduler(inventory: Inventory(width: 3, height: 2), policy: .fifo, shapes: small)
        #expect(throws: ClusterError.self) { try t.submit(JobSpec(tenant: "a", request: .tiles(5)), at: 0) }
        #expect(ShapeCatalog.standard.shapes.count == 9)
        #expect(try ShapeCatalog.standard.resolve(.tiles(8), on: inv) == Shape(2, 4))
        #expect(try ShapeCatalog.standard.resolve(.tiles(5), on: inv) == Shape(2, 3))
    }
}

@Suite("DojoCluster: scheduler")
struct SchedulerTests {
    @Test("gang: a job starts on all its tiles or not at all; pending reasons Resources, Shape, Priority")
    func gang() throws {
        var s = Scheduler(inventory: Inventory(width: 3, height: 2), policy: .fifo)
        let a = try s.submit(JobSpec(tenant: "a", request: .tiles(4), duration: 100), at: 0)
        let b = try s.submit(JobSpec(tenant: "a", request: .shape(Shape(2, 3)), duration: 100), at: 0)
        let c = try s.submit(JobSpec(tenant: "a", request: .tiles(1), duration: 100), at: 0)
        let d = s.schedule(at: 0)
        #expect(d == [.start(job: a, placement: s.job(a).placement!)])
        #expect(s.job(b).state == .pending && s.job(b).placement == nil)
        #expect(s.reason(b) == .resources)
        #expect(s.reason(c) == .priority)
        #expect(s.allocator.freeCount == 2)
        try s.complete(a, at: 100)
        _ = s.schedule(at: 100)
        #expect(s.job(b).state == .running && s.job(b).placement!.tiles == 6)
    }

    @Test("priority order, and Shape when free tiles are not contiguous")
    func priorityAndShape() throws {
        var s = Scheduler(inventory: Inventory(width: 4, height: 1), policy: .opendojo)
        let x = try s.submit(JobSpec(tenant: "a", request: .tiles(1), duration: 100), at: 0)
        let y = try s.submit(JobSpec(tenant: "a", request: .tiles(1), duration: 100), at: 0)
        _ = s.schedule(at: 0)
        // Occupy tiles so that two free tiles are apart.
        let lo = try s.submit(JobSpec(tenant: "a", priority: 0, request: .tiles(2), duration: 10), at: 1)
        let hi = try s.submit(JobSpec(tenant: "a", priority: 5, request: .tiles(1), duration: 10), at: 1)
        _ = s.schedule(at: 1)
        #expect(s.job(hi).state == .running)
        #expect(s.job(x).state == .running && s.job(y).state == .running)
        #expect(s.job(lo).state == .pending)
        #expect(s.reason(lo) == .resources)
    }

    @Test("quota: a tenant borrows idle tiles; the owner reclaims them by preemption with a grace period")
    func borrowAndReclaim() throws {
        let tenants = [Tenant("a", quota: 3), Tenant("b", quota: 3)]
        var s = Scheduler(inventory: Inventory(width: 3, height: 2), policy: .opendojo, tenants: tenants, grace: 60)
        let a1 = try s.submit(JobSpec(tenant: "a", request: .shape(Shape(2, 3)), duration: 1000), at: 0)
        _ = s.schedule(at: 0)
        #expect(s.job(a1).state == .running && s.job(a1).borrowed)
        let b1 = try s.submit(JobSpec(tenant: "b", request: .tiles(2), duration: 100), at: 10)
        let d = s.schedule(at: 10)
        #expect(d == [.preempt(job: a1, by: b1, graceEnd: 70)])
        #expect(s.reason(b1) == .preemption)
        try s.stopped(a1, at: 70)
        #expect(s.job(a1).state == .pending && s.job(a1).workDone == 70)
        _ = s.schedule(at: 70)
        #expect(s.job(b1).state == .running)
        #expect(s.job(a1).state == .pending)
        #expect(throws: ClusterError.unknownTenant("c")) { try s.submit(JobSpec(tenant: "c", request: .tiles(1)), at: 80) }
        // A borrow limit gives the Quota reason.
        var q = Scheduler(inventory: Inventory(width: 3, height: 2), policy: .opendojo, tenants: [Tenant("a", quota: 2, borrowLimit: 0)])
        let big = try q.submit(JobSpec(tenant: "a", request: .tiles(4)), at: 0)
        _ = q.schedule(at: 0)
        #expect(q.reason(big) == .quota)
    }

    @Test("a dependent job waits with reason Dependency")
    func dependency() throws {
        var s = Scheduler(inventory: Inventory(width: 3, height: 2), policy: .fifoBackfill)
        let a = try s.submit(JobSpec(tenant: "a", request: .tiles(1), duration: 10), at: 0)
        let b = try s.submit(JobSpec(tenant: "a", request: .tiles(1), duration: 10, dependsOn: [a]), at: 0)
        _ = s.schedule(at: 0)
        #expect(s.reason(b) == .dependency)
        try s.complete(a, at: 10)
        _ = s.schedule(at: 10)
        #expect(s.job(b).state == .running)
    }

    @Test("EASY backfill never delays the head's reservation (random workloads)", arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
    func easyProperty(seed: UInt64) throws {
        let inv = Inventory(width: 12, height: 4)
        let jobs = syntheticJobs(count: 300, tiles: inv.count, load: 1.2, seed: seed)
        let r = try replay(jobs, inventory: inv, policy: .fifoBackfill)
        #expect(r.completed == 300)
        #expect(r.maxReservationDelay <= 1e-6)
    }

    @Test("backfill beats FIFO; replay is deterministic for a seed; faults lose work and requeue")
    func replayDeterminism() throws {
        let inv = Inventory(width: 12, height: 4)
        let jobs = syntheticJobs(count: 400, tiles: inv.count, load: 0.9, seed: 9)
        let fifo = try replay(jobs, inventory: inv, policy: .fifo)
        let bf = try replay(jobs, inventory: inv, policy: .fifoBackfill)
        #expect(bf.meanWait < fifo.meanWait)
        let f = FaultModel(mtbf: 50 * 3600, repair: 3600, seed: 3)
        var r1 = try replay(jobs, inventory: inv, policy: .opendojo, faults: f)
        var r2 = try replay(jobs, inventory: inv, policy: .opendojo, faults: f)
        r1.schedulerSeconds = 0; r2.schedulerSeconds = 0
        #expect(r1 == r2)
        #expect(r1.tileFailures > 0 && r1.nodeFails > 0 && r1.workLost > 0)
        #expect(r1.completed == 400)
    }
}

@Suite("DojoCluster: Alibaba trace reader")
struct TraceTests {
    let header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time"

    @Test("reads rows and maps GPUs to tiles, QoS to tenants")
    func reads() throws {
        let t = try AlibabaTrace.parse(header + "\np0,1000,10,8,1000,,LS,Running,0,100,10\np1,1000,10,0,0,,BE,Failed,5,9,\n", file: "t.csv")
        #expect(t.count == 2 && t[1].scheduled == nil)
        let j = AlibabaTrace.jobs(t, timeScale: 2)
        #expect(j.count == 1 && j[0].spec.request == .tiles(8) && j[0].spec.duration == 90 && j[0].spec.tenant == "LS")
    }

    @Test("errors name the file, line and column", arguments: [
        ("p0,1000,10,x,1000,,LS,Running,0,100,10", "t.csv:2 column 'num_gpu': 'x' is not an integer"),
        ("p0,1000,10,1,1000,,XX,Running,0,100,10", "t.csv:2 column 'qos'"),
        ("p0,1000,10,1,1000,,LS,Running,0,100", "t.csv:2: 10 fields, expected 11"),
        ("p0,1000,10,1,1000,,LS,Running,50,10,", "t.csv:2 column 'deletion_time'"),
    ])
    func errors(row: String, message: String) {
        do {
            _ = try AlibabaTrace.parse(header + "\n" + row + "\n", file: "t.csv")
            Issue.record("no error for \(row)")
        } catch {
            #expect("\(error)".hasPrefix(message), "\(error)")
        }
        #expect(throws: TraceError.self) { try AlibabaTrace.parse("a,b\n", file: "t.csv") }
    }
}
