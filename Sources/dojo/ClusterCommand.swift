import ArgumentParser
import DojoCluster
import DojoMachine
import DojoReport
import DojoService
import Foundation

/// `dojo cluster replay|bench`: the resource manager's scheduler core in simulated time (issue 4);
/// `dojo cluster status|fail-tile|repair-tile`: the running service's tiles (ServiceCommands.swift).
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "The service's tile map and tile failures; replay a cluster trace through the DPU scheduler, or benchmark it.",
        subcommands: [Status.self, FailTile.self, RepairTile.self, Replay.self, Bench.self, BenchService.self])
}

func parsePolicies(_ s: String) throws -> [Policy] {
    if s == "all" { return Policy.allCases }
    guard let p = Policy(rawValue: s) else {
        throw ClusterInputError("unknown policy '\(s)' (fifo, fifo-backfill, opendojo, all)")
    }
    return [p]
}

func fmtSeconds(_ s: Double) -> String {
    if s >= 86400 { return formatFixed(s / 86400, 2) + " d" }
    if s >= 3600 { return formatFixed(s / 3600, 2) + " h" }
    return formatFixed(s, 0) + " s"
}

func resultTable(_ rs: [ReplayResult]) -> String {
    var t = TextTable(headers: ["policy", "jobs", "done", "refused", "mean JCT", "p95 JCT", "mean wait", "util", "frag", "preempt", "node fails", "work lost"],
                      alignments: [.left] + Array(repeating: .right, count: 11))
    for r in rs {
        t.addRow([r.policy.rawValue, "\(r.jobs)", "\(r.completed)", "\(r.rejected)", fmtSeconds(r.meanJCT), fmtSeconds(r.p95JCT), fmtSeconds(r.meanWait),
                  formatFixed(100 * r.utilization, 1) + "%", formatFixed(100 * r.fragmentation, 1) + "%", "\(r.preemptions)",
                  "\(r.nodeFails)", formatFixed(r.workLost / 3600, 1) + " tile-h"])
    }
    return t.render()
}

extension ClusterCommand {
    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay Alibaba's GPU trace (openb_pod_list_default.csv) on Dojo tiles under each policy.",
            discussion: """
            Mapping (a decision, printed with the results): CPU-only and never-scheduled tasks are left out; each GPU \
            (or fraction) is one tile, rounded up to an allowed shape; arrival = creation_time / --time-scale; run time \
            = deletion_time − scheduled_time; tenant = QoS class (Guaranteed, LS, Burstable, BE) with priorities 3, 2, 1, 0 \
            and quotas of 10/40/10/20% of the tiles; --gang-jobs adds seeded multi-tile jobs (tenant train, 20%).
            """)

        @Argument(help: "The trace CSV (openb_pod_list_default.csv).")
        var trace: String
        @Option(help: "fifo, fifo-backfill, opendojo or all.")
        var policy = "all"
        @Option(help: "A Dojo machine (preset, optionally xN).")
        var machine = "exapod"
        @Option(help: "Use only the first N GPU tasks of the trace.")
        var jobs: Int?
        @Option(help: "Seed for the gang jobs and the faults.")
        var seed: UInt64 = 1
        @Option(help: "Large gang jobs (tray-sized and up) to add.")
        var gangJobs = 200
        @Option(help: "Divide arrival times by this (offered load).")
        var timeScale = 6.0
        @Option(help: "Random tile faults: mean time between failures of one tile, in hours (0: none).")
        var mtbfHours = 0.0
        @Flag(help: "One JSON object per policy.")
        var json = false

        func run() throws {
            let policies = try parsePolicies(policy)
            if let n = jobs, !(0...10_000_000).contains(n) { throw ClusterInputError("--jobs must be 0…10,000,000, got \(n)") }
            guard (0...10_000).contains(gangJobs) else { throw ClusterInputError("--gang-jobs must be 0…10,000, got \(gangJobs)") }
            guard timeScale >= 1e-3 && timeScale <= 1e6 else { throw ClusterInputError("--time-scale must be 0.001…1,000,000, got \(timeScale)") }
            // (a fault is an event of the replay: a tile failing every hour on an ExaPOD's 3,000 tiles never let it end)
            guard mtbfHours == 0 || (mtbfHours >= 100 && mtbfHours <= 1e9) else {
                throw ClusterInputError("--mtbf-hours must be 0 (no faults) or 100…10^9 hours per tile, got \(mtbfHours)")
            }
            let inv = try replayInventory(machine)
            let tasks = try AlibabaTrace.read(file: trace)
            var input = AlibabaTrace.jobs(tasks, timeScale: timeScale)
            if let n = jobs { input = Array(input.prefix(n)) }
            let span = (input.map(\.submit).max() ?? 0)
            input += generateGangJobs(count: gangJobs, span: max(span, 86400), seed: seed)
            let faults = mtbfHours > 0 ? FaultModel(mtbf: mtbfHours * 3600, seed: seed) : nil
            let tenants = AlibabaTrace.tenants(tiles: inv.width * inv.height * inv.pods)
            var results: [ReplayResult] = []
            for p in policies {
                results.append(try DojoCluster.replay(input, inventory: inv, policy: p, tenants: tenants, faults: faults))
            }
            if json {
                for r in results {
                    print("{\"policy\":\"\(r.policy.rawValue)\",\"jobs\":\(r.jobs),\"completed\":\(r.completed),\"rejected\":\(r.rejected),\"mean_jct_s\":\(r.meanJCT),\"p95_jct_s\":\(r.p95JCT),\"mean_wait_s\":\(r.meanWait),\"utilization\":\(r.utilization),\"fragmentation\":\(r.fragmentation),\"preemptions\":\(r.preemptions),\"node_fails\":\(r.nodeFails),\"work_lost_tile_s\":\(r.workLost),\"decisions\":\(r.decisions)}")
                }
                return
            }
            print("\(inv.machineName): \(inv.pods) grid(s) of \(inv.height)x\(inv.width) tiles (\(inv.count) tiles, \(inv.trayCount) trays, \(inv.dipsPerTray) DIPs per tray)")
            print("trace: \(tasks.count) tasks; \(input.count - gangJobs) GPU tasks replayed (1 GPU = 1 tile, arrivals / \(formatFixed(timeScale, 1))) + \(gangJobs) gang jobs (seed \(seed))"
                  + (faults.map { "; tile faults: MTBF \(formatFixed($0.mtbf / 3600, 0)) h per tile, repair 1 h" } ?? ""))
            print("")
            print(resultTable(results))
            if let r = results.first, r.rejected > 0 {
                print("refused: jobs the scheduler cannot ever place (more tiles than \(inv.machineName) has, or a shape it lacks); they are not in JCT or wait.")
            }
            print("JCT: completion − submit. wait: first start − submit. util: busy tile-seconds / (tiles × makespan). frag: free tiles the head job's shape cannot use, time-averaged while a job waits.")
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Scheduling decisions per second and a large synthetic replay (goals: ≥ 10,000/s; 100,000 jobs < 60 s).")
        @Option(help: "Jobs in the synthetic replay.")
        var jobs = 100_000
        @Option(help: "A Dojo machine.")
        var machine = "exapod"
        @Option(help: "Seed.")
        var seed: UInt64 = 1

        func run() throws {
            guard (1...200_000).contains(jobs) else { throw ClusterInputError("--jobs must be 1…200,000, got \(jobs)") }
            let inv = try replayInventory(machine)
            let input = syntheticJobs(count: jobs, tiles: inv.count, load: 0.9, seed: seed)
            let tenants = (0..<4).map { Tenant("t\($0)", quota: inv.count / 4) }
            var t = TextTable(headers: ["policy", "jobs", "wall", "decisions", "decisions/s", "passes/s", "util"],
                              alignments: [.left] + Array(repeating: .right, count: 6))
            for p in Policy.allCases {
                let start = Date()
                let r = try DojoCluster.replay(input, inventory: inv, policy: p, tenants: tenants)
                let wall = Date().timeIntervalSince(start)
                t.addRow([p.rawValue, "\(jobs)", formatFixed(wall, 2) + " s", "\(r.decisions)",
                          formatThousands(Int(Double(r.decisions) / max(r.schedulerSeconds, 1e-9))),
                          formatThousands(Int(Double(r.passes) / max(r.schedulerSeconds, 1e-9))), formatFixed(100 * r.utilization, 1) + "%"])
            }
            print("\(inv.machineName): \(inv.count) tiles; synthetic jobs (shapes 1x1…4x6, load 0.9, 4 tenants, seed \(seed))")
            print(t.render())
            print("decision: one pending job examined by a pass (started, reserved, or given a reason); wall: whole replay.")
        }
    }
}

extension ClusterCommand {
    /// The running service against its own floors: durable inserts, raw process starts, a bare scheduler pass.
    struct BenchService: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-service",
            abstract: "The job service's costs next to their floors: submissions vs durable SQLite inserts, jobs run in the sandbox vs without it vs raw process starts, a controller round vs a bare scheduler pass.")
        @Option(help: "Jobs submitted and run end to end.")
        var jobs = 300
        @Option(help: "Pending jobs behind a full machine when timing controller rounds.")
        var pending = 3000

        func run() throws {
            guard (1...100_000).contains(jobs), (1...1_000_000).contains(pending) else {
                throw ClusterInputError("--jobs must be 1…100,000 and --pending 1…1,000,000, got \(jobs) and \(pending)")
            }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dojo-bench-service-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let jobs = self.jobs, pending = self.pending
            final class Rows: @unchecked Sendable { var rows: [[String]] = [] }
            let box = Rows()
            let outcome = runBlocking {
                // 1. Submissions (validated, written with their transition, queued) vs bare durable inserts.
                let s = try await JobService.open(ServiceOptions(database: dir + "/a.sqlite", machine: "exapod", grace: 1, tickInterval: 0.01))
                _ = try await s.createTenant(name: "bench", quota: 120, borrowLimit: nil, by: .admin)
                var t0 = Date()
                for _ in 0..<jobs { _ = try await s.submit(JobSubmission(command: ["true"], tiles: 1, tenant: "bench"), by: .admin) }
                let submit = Date().timeIntervalSince(t0)
                let floor = try JobService.benchmarkDurableInserts(count: jobs, database: dir + "/floor.sqlite")
                box.rows.append(["submissions/s", formatThousands(Int(Double(jobs) / submit)), "durable inserts/s",
                             formatThousands(Int(Double(jobs) / floor)), formatFixed(floor / submit, 2)])
                // 2. Those jobs run to the end (120 at a time), each in its sandbox (bubblewrap, cgroups), vs the same jobs
                // run by a service with --sandbox none, vs starting and waiting for the same processes directly.
                func runAll(_ s: JobService) async throws -> Double {
                    let t0 = Date()
                    while try await s.jobs(by: .admin, states: [.completed], limit: jobs).count < jobs {
                        await s.tick()
                        try await Task.sleep(nanoseconds: 2_000_000)
                    }
                    return Date().timeIntervalSince(t0)
                }
                let sandboxed = try await runAll(s)
                await s.close()
                let n = try await JobService.open(ServiceOptions(database: dir + "/n.sqlite", machine: "exapod", grace: 1, tickInterval: 0.01, sandbox: .none))
                _ = try await n.createTenant(name: "bench", quota: 120, borrowLimit: nil, by: .admin)
                for _ in 0..<jobs { _ = try await n.submit(JobSubmission(command: ["true"], tiles: 1, tenant: "bench"), by: .admin) }
                let run = try await runAll(n)
                await n.close()
                box.rows.append(["jobs run/s, sandboxed (bwrap, cgroups)", formatFixed(Double(jobs) / sandboxed, 0), "jobs run/s, --sandbox none",
                             formatFixed(Double(jobs) / run, 0), formatFixed(run / sandboxed, 2)])
                t0 = Date()
                for _ in 0..<jobs {
                    let p = Process()
                    p.executableURL = URL(fileURLWithPath: "/bin/sh")
                    p.arguments = ["-c", "true"]
                    try p.run(); p.waitUntilExit()
                }
                let spawn = Date().timeIntervalSince(t0)
                box.rows.append(["jobs run/s, --sandbox none", formatFixed(Double(jobs) / run, 0), "sh -c true started/s",
                             formatFixed(Double(jobs) / spawn, 0), formatFixed(spawn / run, 2)])
                // 3. A controller round with a queue behind a full machine vs a bare scheduler pass over the same queue.
                var qo = ServiceOptions(database: dir + "/q.sqlite", machine: "exapod", grace: 1)
                qo.maxQueuedPerTenant = pending + 1   // a deep queue is the point here
                let q = try await JobService.open(qo)
                _ = try await q.createTenant(name: "bench", quota: 120, borrowLimit: nil, by: .admin)
                let big = try await q.submit(JobSubmission(command: ["/bin/sleep", "600"], shape: "4x30", tenant: "bench"), by: .admin)
                await q.tick()
                for i in 0..<pending {
                    _ = try await q.submit(JobSubmission(command: ["true"], tiles: 1 + i % 6, tenant: "bench"), by: .admin)
                }
                let rounds = 50
                let serviceRound = await q.timeRounds(rounds) / Double(rounds)
                _ = try await q.cancel(big.id, by: .admin)
                for _ in 0..<100 { await q.tick(); if try await q.job(big.id, by: .admin).state == .cancelled { break }; try await Task.sleep(nanoseconds: 20_000_000) }
                await q.close()
                var sched = Scheduler(inventory: try Inventory(machine: Machine.resolve("exapod")), policy: .opendojo,
                                      tenants: [Tenant("bench", quota: 120)])
                _ = try sched.submit(JobSpec(tenant: "bench", request: .shape(Shape(4, 30)), duration: 3600), at: 0)
                _ = sched.schedule(at: 0)
                for i in 0..<pending { _ = try sched.submit(JobSpec(tenant: "bench", request: .tiles(1 + i % 6), duration: 3600), at: 1) }
                t0 = Date()
                for r in 0..<rounds { _ = sched.schedule(at: 2 + Double(r)) }
                let bare = Date().timeIntervalSince(t0) / Double(rounds)
                box.rows.append(["controller round, \(formatThousands(pending)) pending (ms)", formatFixed(serviceRound * 1e3, 3),
                             "bare scheduler pass (ms)", formatFixed(bare * 1e3, 3), formatFixed(bare / serviceRound, 2)])
            }
            if case .failure(let e) = outcome { throw e }
            var t = TextTable(headers: ["figure", "OpenDojo service", "baseline", "baseline value", "speed ratio (service ÷ baseline)"],
                              alignments: [.left, .right, .left, .right, .right])
            for r in box.rows { t.addRow(r) }
            print("job service on exapod (120 tiles), \(jobs) jobs end to end, \(pending) pending for the round timing")
            print(t.render())
        }
    }
}

/// A bad option value: printed as one line `Error: …` (a ValidationError would add the usage text).
struct ClusterInputError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The tiles a replay schedules over: a Dojo machine of at most 100,000 tiles (about 830 ExaPODs; the replay keeps
/// every tile's state and scans them each pass).
func replayInventory(_ machine: String) throws -> Inventory {
    let m = try Machine.resolve(machine)
    // checked before the tiles are laid out (that alone took minutes for 10^8 tiles)
    let tiles = m.total.tiles
    guard tiles <= 100_000 else {
        throw ClusterInputError("--machine \(machine) has \(tiles) tiles; a replay schedules at most 100,000 (about 830 ExaPODs)")
    }
    return try Inventory(machine: m)
}
