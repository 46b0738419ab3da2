import DojoCompiler
import DojoGraph
import DojoMachine
import DojoSim
import Foundation
import Testing

@Suite struct TopologyTests {
    @Test func exapodLevels() throws {
        let t = DeviceTopology(machine: try Machine.resolve("exapod"))
        #expect(t.devices == 3000)
        #expect(t.levels.map(\.name) == ["tile mesh", "tray", "Z-plane"])
        #expect(t.levels.map(\.size) == [25, 6, 20])
        #expect(abs(t.fastMemoryBytes - 442.5e6) < 1)           // 354 × 1.25 MB
        // 20 DIPs × 32 GB per tray of 150 dies
        #expect(abs(t.bulkMemoryBytes - 20 * 32e9 / 150) < 1)
        // A tensor-parallel group of 25 stays on the tile; a data-parallel group of 120 at stride 25 spans trays.
        #expect(t.spread(size: 25, stride: 1).map(\.members) == [25])
        let dp = t.spread(size: 120, stride: 25)
        #expect(dp.map(\.level) == [1, 2] && dp.map(\.members) == [6, 20])
    }

    @Test func dgxLevels() throws {
        let t = DeviceTopology(machine: try Machine.resolve("dgx-h100x4"))
        #expect(t.devices == 32)
        #expect(t.levels.map(\.name) == ["NVLink", "InfiniBand"])
        // 8 × 400 Gb/s per node over 8 GPUs = 50 GB/s per GPU, times link efficiency
        let eff = t.linkEfficiency
        #expect(abs(t.levels[1].bandwidthPerDevice - 50e9 * eff) < 1)
        #expect(abs(t.levels[0].bandwidthPerDevice - 450e9 * eff) < 1)
        #expect(t.spread(size: 4, stride: 8).map(\.level) == [1])
        #expect(t.spread(size: 16, stride: 2).map(\.members) == [4, 4])
    }

    /// A server of PCIe cards: its GPUs exchange data over PCIe (half the data sheet's both-ways figure, times the
    /// server's bisection share), not NVLink.
    @Test func pcieServerLevels() throws {
        let t = DeviceTopology(machine: try Machine.resolve("pcie-h100x2"))
        #expect(t.levels.map(\.name) == ["PCIe", "InfiniBand"])
        #expect(abs(t.levels[0].bandwidthPerDevice - 64e9 * 0.5 * t.linkEfficiency) < 1)
        // one 200 Gb/s NIC for 8 cards
        #expect(abs(t.levels[1].bandwidthPerDevice - 25e9 / 8 * t.linkEfficiency) < 1)
        // an all-reduce among 8 PCIe cards is slower than among 8 H100s on NVSwitch
        let pcie = Collectives(topology: DeviceTopology(machine: try Machine.resolve("pcie-h100")))
        let nv = Collectives(topology: DeviceTopology(machine: try Machine.resolve("dgx-h100")))
        #expect(pcie.time(.allReduce, bytes: 1e9, size: 8) > 10 * nv.time(.allReduce, bytes: 1e9, size: 8))
    }
}

@Suite struct CollectiveTests {
    /// A ring all-reduce on one level: 2 (g−1)/g · S / B plus its latency steps, computed here by hand.
    @Test func ringAllReduceOnNVLink() throws {
        let t = DeviceTopology(machine: try Machine.resolve("dgx-h100"))
        let c = Collectives(topology: t)
        let s = 1e9
        let b = t.levels[0].bandwidthPerDevice
        let expected = 2 * (7.0 / 8.0) * s / b + 2 * min(7, 2 * 3) * t.levels[0].latency
        #expect(abs(c.time(.allReduce, bytes: s, size: 8) - expected) < 1e-12)
        #expect(abs(c.time(.reduceScatter, bytes: s, size: 8) - expected / 2) < 1e-12)
        #expect(c.time(.allReduce, bytes: s, size: 1) == 0)
    }

    /// Hierarchical: the upper level carries only each device's 1/8 share, over the slower InfiniBand.
    @Test func hierarchicalAllReduce() throws {
        let t = DeviceTopology(machine: try Machine.resolve("dgx-h100x2"))
        let c = Collectives(topology: t)
        let s = 8e8
        let nv = t.levels[0], ib = t.levels[1]
        let expected = 2 * (7.0 / 8) * s / nv.bandwidthPerDevice + 2 * 6 * nv.latency
            + 2 * (1.0 / 2) * (s / 8) / ib.bandwidthPerDevice + 2 * 1 * ib.latency
        #expect(abs(c.time(.allReduce, bytes: s, size: 16) - expected) < 1e-12)
        // a group spanning nodes is slower than one inside a node
        #expect(c.time(.allReduce, bytes: s, size: 2, stride: 8) > c.time(.allReduce, bytes: s, size: 2, stride: 1))
    }

    /// NCCL's ring broadcast: the data once over the slowest level (a node taking it over all its NICs), and the first
    /// chunk's 15 hops, 14 inside the two nodes and one between them.
    @Test func ringBroadcast() throws {
        let t = DeviceTopology(machine: try Machine.resolve("dgx-h100x2"))
        let c = Collectives(topology: t)
        let s = 8e8
        let nv = t.levels[0], ib = t.levels[1]
        let expected = max(s / nv.bandwidthPerDevice, s / (8 * ib.bandwidthPerDevice)) + 14 * nv.latency + 1 * ib.latency
        #expect(abs(c.broadcastTime(bytes: s, size: 16) - expected) < 1e-12)
        #expect(abs(c.broadcastTime(bytes: s, size: 8) - (s / nv.bandwidthPerDevice + 7 * nv.latency)) < 1e-12)
        #expect(c.broadcastTime(bytes: s, size: 1) == 0)
        // latency grows with the group: 1,024 ranks take 1,023 hops
        let big = Collectives(topology: DeviceTopology(machine: try Machine.resolve("dgx-h100x128")))
        let tiny = big.broadcastTime(bytes: 1, size: 1024)
        #expect(abs(tiny - (896 * nv.latency + 127 * ib.latency)) < 1e-9)
    }
}

@Suite struct ShardingTests {
    /// Two linear layers: the first splits by output column, the second by its reduction and all-reduces.
    @Test func megatronPairs() {
        let g = mlpGraph(layers: 2, width: 64, batch: 4)
        let s = TensorSharding(graph: g)
        let fwd = g.ops.filter { $0.phase == .forward }
        #expect(fwd.map { s.split[$0.id] } == [.n, .batch, .k, .none, .none])
        #expect(s.allReduceBytes[fwd[2].id] == 4 * 64 * 4)
        let total: Double = s.allReduceBytes.reduce(0, +)
        #expect(total == 1024)
        // backward ops divide as their forward op; both weights are split
        for op in g.ops where op.phase == .backward { #expect(s.split[op.id] == s.split[op.forward!]) }
        #expect(s.splitParameters.count == 2)
    }
}

@Suite struct StepModelTests {
    /// One device, data parallel 1: the step is the sum of every op's cost (the hand model), nothing else.
    @Test func singleDeviceStepIsTheSumOfOps() throws {
        let g = mlpGraph(layers: 4, width: 256, batch: 8)
        let machine = try Machine.resolve("dgx-h100")
        let model = HandCostModel()
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 8, precision: .fp32), machine: machine, costModel: model)
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 8, microBatches: 1,
                                virtualStages: 1, recompute: .none, shardOptimizer: false, sequenceParallel: false)
        let e = try #require(sim.evaluate(plan))
        // every op that is not fused, plus one kernel per fused chain (each relu after a matmul is a chain of one)
        let fusion = FusionPlan(graph: g)
        #expect(fusion.count == 8)   // 4 forward relus and their backward passes
        #expect(fusion.chains.count == 4)
        var expected = 0.0
        for op in g.ops where !fusion.isFused(op.id) {
            expected += model.cost(OpWork(op: op, graph: g, precision: .fp32), precision: .fp32).seconds
        }
        for c in fusion.chains {
            #expect(c.bytesIn == 8 * 256 * 4 && c.bytesOut == 8 * 256 * 4)
            expected += model.cost(OpWork(kind: .add, phase: .forward, gemm: nil, flops: c.flops, bytesRead: c.bytesIn, bytesWritten: c.bytesOut), precision: .fp32).seconds
            expected += model.cost(OpWork(kind: .add, phase: .backward, gemm: nil, flops: 2 * c.flops, bytesRead: c.bytesIn + c.bytesOut, bytesWritten: c.bytesIn), precision: .fp32).seconds
        }
        #expect(abs(e.stepSeconds - expected) / expected < 1e-9)
        #expect(e.breakdown.dataParallel == 0 && e.breakdown.pipeline == 0 && e.breakdown.tensorParallel == 0)
        // memory: 4 weights of 256² in fp32 with AdamW: 16 B per parameter
        let state: Double = e.memory.weights + e.memory.gradients + e.memory.optimizerState
        let expectedState: Double = 4 * 256 * 256 * 16
        #expect(state == expectedState)
    }

    /// Micro-batching: 4 micro-batches of 2 cost what one batch of 8 costs when ops scale linearly.
    @Test func microBatchesScaleLinearly() throws {
        let g = mlpGraph(layers: 2, width: 512, batch: 1)
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 8, precision: .bf16),
                                    machine: try Machine.resolve("dgx-h100"), costModel: HandCostModel(bandwidth: 1e30))
        func plan(_ mb: Int) -> ResolvedPlan {
            ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: mb, microBatches: 8 / mb,
                         virtualStages: 1, recompute: .none, shardOptimizer: false, sequenceParallel: false)
        }
        let a = try #require(sim.evaluate(plan(8))), b = try #require(sim.evaluate(plan(2)))
        #expect(abs(a.breakdown.compute - b.breakdown.compute) / a.breakdown.compute < 1e-9)
        #expect(b.memory.activations * 4 == a.memory.activations)
    }

    /// A pipeline of 2 stages over 2 micro-batches: m·T_max + (ΣT − T_max) plus the sends.
    @Test func pipelineBubble() throws {
        let g = mlpGraph(layers: 4, width: 8192, batch: 1)
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 256, precision: .bf16),
                                    machine: try Machine.resolve("dgx-h100"), costModel: HandCostModel(bandwidth: 1e30))
        let one = try #require(sim.evaluate(ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 64,
                                                          microBatches: 4, virtualStages: 1, recompute: .none, shardOptimizer: false, sequenceParallel: false)))
        let two = try #require(sim.evaluate(ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 2, microBatch: 64,
                                                          microBatches: 4, virtualStages: 1, recompute: .none, shardOptimizer: false, sequenceParallel: false)))
        // balanced halves: compute halves, the bubble is one stage's time per micro-batch
        #expect(abs(two.breakdown.compute - one.breakdown.compute / 2) / one.breakdown.compute < 0.02)
        let perMicro = one.breakdown.compute / 4 / 2
        #expect(two.breakdown.pipeline > perMicro * 0.98)
        #expect(two.stepSeconds < one.stepSeconds)
    }

    /// Data parallelism: the gradient all-reduce, less what hides behind the backward pass.
    @Test func dataParallelExposedAllReduce() throws {
        let g = mlpGraph(layers: 2, width: 4096, batch: 1)
        let machine = try Machine.resolve("dgx-h100x2")
        var opts = SimOptions(); opts.gradientOverlap = 0
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 16, precision: .bf16), machine: machine,
                                    costModel: HandCostModel(), options: opts)
        let e = try #require(sim.evaluate(ResolvedPlan(dataParallel: 16, tensorParallel: 1, pipelineParallel: 1, microBatch: 1,
                                                        microBatches: 1, virtualStages: 1, recompute: .none, shardOptimizer: false, sequenceParallel: false)))
        let c = Collectives(topology: DeviceTopology(machine: machine))
        let expected = c.time(.allReduce, bytes: 2 * 4096 * 4096 * 2, size: 16)
        #expect(abs(e.breakdown.dataParallel - expected) / expected < 1e-9)
    }

    /// A sharded optimizer in groups (`zero_group`) keeps one copy of its state a group; returning the weights by a
    /// broadcast from each rank of the group (`param_broadcast`, InternEvo's) costs the group's broadcasts, less the
    /// first forward pass they hide behind.
    @Test func shardedOptimizerGroupsAndBroadcasts() throws {
        let g = mlpGraph(layers: 2, width: 4096, batch: 1)
        let machine = try Machine.resolve("dgx-h100x2")
        let c = Collectives(topology: DeviceTopology(machine: machine))
        let plan = ResolvedPlan(dataParallel: 16, tensorParallel: 1, pipelineParallel: 1, microBatch: 1, microBatches: 1,
                                virtualStages: 1, recompute: .none, shardOptimizer: true, sequenceParallel: false)
        func run(_ settings: [String: String]) throws -> PlanEvaluation {
            var opts = SimOptions(); opts.gradientOverlap = 0
            for (k, v) in settings { try opts.set(k, v) }
            let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 16, precision: .bf16), machine: machine,
                                        costModel: HandCostModel(), options: opts)
            return try #require(sim.evaluate(plan))
        }
        let all = try run([:]), group8 = try run(["zero_group": "8"])
        #expect(abs(group8.memory.optimizerState - 2 * all.memory.optimizerState) / all.memory.optimizerState < 1e-9)
        #expect(abs(group8.breakdown.dataParallel - all.breakdown.dataParallel) < 1e-12)   // same gradient all-reduce
        let bytes = 2.0 * 4096 * 4096 * 2
        for (settings, size) in [(["param_broadcast": "1"], 16), (["param_broadcast": "1", "zero_group": "8"], 8)] {
            let e = try run(settings)
            let broadcasts = Double(size) * c.broadcastTime(bytes: bytes / Double(size), size: size)
            let extra = e.breakdown.dataParallel - all.breakdown.dataParallel
            #expect(extra > 0 && extra <= broadcasts + 1e-12, "\(settings)")
            #expect(extra >= broadcasts - all.breakdown.compute - 1e-12, "\(settings): hidden at most behind a forward pass")
        }
        #expect(throws: SimError.self) { var o = SimOptions(); try o.set("zero_group", "1.5") }
        #expect(throws: SimError.self) { var o = SimOptions(); try o.set("param_broadcast", "2") }
    }

    /// A model too big for one GPU: the search picks a split that fits, and says why data parallelism was rejected.
    @Test func searchSplitsWhatDoesNotFit() throws {
        // 8 layers of 32768² = 8.6 G parameters: 137 GB of state, more than an 80 GB H100.
        let g = mlpGraph(layers: 8, width: 32768, batch: 1)
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 8, precision: .bf16),
                                    machine: try Machine.resolve("dgx-h100"), costModel: HandCostModel())
        let r = try sim.search()
        #expect(r.best.fits)
        #expect(r.best.plan.tensorParallel * r.best.plan.pipelineParallel > 1 || r.best.plan.shardOptimizer)
        let dp = try #require(r.families.first { $0.family == "data parallel" })
        #expect(dp.verdict.contains("does not fit") || dp.verdict.contains("slower"))
        #expect(r.families.contains { $0.verdict == "chosen" })
    }

    /// Nothing fits: the error says how much is needed and how much there is.
    @Test func noPlanFitsSaysByHowMuch() throws {
        let g = mlpGraph(layers: 2, width: 65536, batch: 1)
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 1, precision: .bf16),
                                    machine: try Machine.resolve("d1"), costModel: HandCostModel())
        #expect(throws: PlanError.self) { try sim.search() }
        do { _ = try sim.search() } catch {
            let text = "\(error)"
            #expect(text.contains("too much") && text.contains("per D1"))
        }
    }

    @Test func inconsistentPlans() throws {
        let g = mlpGraph(layers: 2, width: 64, batch: 1)
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 6, precision: .bf16),
                                    machine: try Machine.resolve("dgx-h100"), costModel: HandCostModel())
        #expect(throws: PlanError.self) { try sim.search(PlanSpec(dataParallel: 4)) }
        #expect(throws: PlanError.self) { try sim.search(PlanSpec(dataParallel: 2, tensorParallel: 4, pipelineParallel: 2)) }
        #expect(throws: PlanError.self) { try sim.search(PlanSpec(pipelineParallel: 8)) }
        #expect(throws: PlanError.self) { try PlanSpec(parsing: "dp=2,xx=3") }
        #expect(throws: PlanError.self) { try PlanSpec(parsing: "tp=0") }
        #expect(try PlanSpec(parsing: "dp=2,tp=4,recompute=full").description == "dp=2,tp=4,recompute=full")
    }
}

@Suite struct TimelineTests {
    /// Playing the 1F1B schedule out event by event ends where the closed form says: m·T_max + (ΣT − T_max).
    @Test func eventScheduleMatchesClosedForm() throws {
        let g = mlpGraph(layers: 8, width: 8192, batch: 1)
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 512, precision: .bf16),
                                    machine: try Machine.resolve("dgx-h100"), costModel: HandCostModel())
        for (p, m) in [(1, 4), (2, 8), (4, 8), (4, 2)] {
            let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: p, microBatch: 512 / m, microBatches: m)
            let e = try #require(sim.evaluate(plan))
            let pipelineEnd = e.breakdown.compute + e.breakdown.pipeline + e.breakdown.tensorParallel
            let events = sim.timeline(plan).events.filter { $0.lane == "compute" || $0.lane == "tensor-parallel" }
            let end = events.map { $0.start + $0.duration }.max() ?? 0
            #expect(abs(end - pipelineEnd) / pipelineEnd < 0.03, "p=\(p) m=\(m): events end at \(end), closed form \(pipelineEnd)")
            let json = sim.timeline(plan).chromeTraceJSON(title: "t")
            let doc = try JSONSerialization.jsonObject(with: json) as? [String: Any]
            #expect((doc?["traceEvents"] as? [Any])?.isEmpty == false)
        }
    }
}

@Suite struct FusionTests {
    /// A chain after a matmul reads what enters it and writes what leaves it, once.
    @Test func chainBytes() {
        let g = mlpGraph(layers: 3, width: 32, batch: 2)
        let f = FusionPlan(graph: g)
        #expect(f.chains.count == 3)
        for c in f.chains {
            #expect(c.ops.count == 1)
            #expect(c.bytesIn == 2 * 32 * 4 && c.bytesOut == 2 * 32 * 4)
        }
        // the loss reduction is a kernel of its own; backward relus join their forward op's chain
        let loss = g.ops.first { $0.kind == .sum }!
        #expect(!f.isFused(loss.id))
        for op in g.ops where op.phase == .backward && op.kind == .relu { #expect(f.isFused(op.id)) }
        #expect(FusionPlan.none(g).count == 0)
    }

    /// A residual add that reads an earlier chain's output and a later matmul's output joins the later chain (its
    /// kernel runs after that matmul), not the earlier one, even when the earlier chain's output is its first input
    /// (as a pre-norm transformer's second residual add reads the first residual stream and the MLP's output).
    @Test func residualAddJoinsTheLaterChain() {
        var g = Graph(model: "residual", batch: 2)
        func tensor(_ role: TensorInfo.Role) -> Int {
            g.tensors.append(TensorInfo(id: g.tensors.count, shape: role == .parameter ? [8, 8] : [2, 8], role: role))
            return g.tensors.count - 1
        }
        func op(_ kind: OpKind, _ inputs: [Int]) -> Int {
            let out = tensor(.activation)
            g.ops.append(Op(id: g.ops.count, kind: kind, phase: .forward, scope: "", inputs: inputs, outputs: [out],
                            attributes: OpAttributes(), flops: 16, bytesRead: 64 * inputs.count, bytesWritten: 64))
            return out
        }
        let x = tensor(.input)
        let y1 = op(.matmul, [x, tensor(.parameter)])
        let r1 = op(.add, [y1, x])                    // chain 0: rooted at the first matmul
        let y2 = op(.matmul, [r1, tensor(.parameter)])
        _ = op(.add, [r1, y2])                        // reads chain 0's output first; made after the second matmul
        let f = FusionPlan(graph: g)
        #expect(f.chains.map(\.ops) == [[1], [3]])
        for c in f.chains { #expect(c.bytesIn == 2 * 2 * 8 * 4 && c.bytesOut == 2 * 8 * 4) }
    }

    /// Turning fusion off never makes a step faster (a chain of one op costs what the op costs alone).
    @Test func fusionNeverSlower() throws {
        let g = mlpGraph(layers: 4, width: 1024, batch: 8)
        let m = try Machine.resolve("dgx-a100")
        var off = SimOptions(); off.fusion = false
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 8, microBatches: 1)
        let a = try StepSimulator(workload: Workload(graph: g, globalBatch: 8, precision: .bf16), machine: m, costModel: m.opCostModel())
        let b = try StepSimulator(workload: Workload(graph: g, globalBatch: 8, precision: .bf16), machine: m, costModel: m.opCostModel(), options: off)
        #expect(a.evaluate(plan)!.stepSeconds <= b.evaluate(plan)!.stepSeconds)
        var bad = SimOptions()
        #expect(throws: SimError.self) { try bad.set("fusion", "2") }
        #expect(throws: SimError.self) { try bad.set("no_such", "1") }
        #expect(throws: SimError.self) { try bad.set("memory_headroom", "1.5") }
    }

    /// Host data loading (`loader_workers`): each GPU's workers, capped by the host's threads shared by the node's
    /// GPUs in use, prepare `calibration.host_decode_rate` samples/s each; the step takes at least that long.
    @Test func hostLoaderBoundsTheStep() throws {
        let g = mlpGraph(layers: 2, width: 256, batch: 8)
        let m = try Machine.resolve("dgx-a100")
        guard case .gpu(let c) = m.system else { Issue.record("not a GPU machine"); return }
        #expect(c.server.hostCores == 128 && c.server.hostThreads == 256)
        #expect(m.calibration.hostDecodeRate == 140)
        let plan8 = ResolvedPlan(dataParallel: 8, tensorParallel: 1, pipelineParallel: 1, microBatch: 256, microBatches: 1)
        let free = try StepSimulator(workload: Workload(graph: g, globalBatch: 2048, precision: .fp16), machine: m,
                                     costModel: m.opCostModel())
        var opts = SimOptions()
        try opts.set("loader_workers", "64")     // more than the 256 threads ÷ 8 GPUs = 32 the host has
        let bound = try StepSimulator(workload: Workload(graph: g, globalBatch: 2048, precision: .fp16), machine: m,
                                      costModel: m.opCostModel(), options: opts)
        let a = try #require(free.evaluate(plan8)), b = try #require(bound.evaluate(plan8))
        #expect(a.stepSeconds < 256.0 / (32 * 140))
        #expect(relative(b.stepSeconds, 256.0 / (32 * 140)) < 1e-9)
        #expect(b.breakdown.input > 0)
        // One GPU of the node: all 64 workers run (64 ≤ 256 threads).
        let plan1 = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 256, microBatches: 1)
        let one = try StepSimulator(workload: Workload(graph: g, globalBatch: 256, precision: .fp16), machine: m,
                                    costModel: m.opCostModel(), options: opts)
        #expect(relative(try #require(one.evaluate(plan1)).stepSeconds, 256.0 / (64 * 140)) < 1e-9)
        var bad = SimOptions()
        #expect(throws: SimError.self) { try bad.set("loader_workers", "2.5") }
        #expect(throws: SimError.self) { try bad.set("loader_workers", "-1") }
    }

    /// Work on every gradient at every micro-batch (`micro_batch_gradient_bytes`, `…_kernels`): each micro-batch
    /// moves the bytes of every parameter at the HBM rate and launches the kernels for every parameter tensor.
    @Test func microBatchGradientWork() throws {
        let g = mlpGraph(layers: 2, width: 256, batch: 8)
        let m = try Machine.resolve("dgx-a100")
        guard case .gpu(let c) = m.system else { Issue.record("not a GPU machine"); return }
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 4, microBatches: 3)
        let w = Workload(graph: g, globalBatch: 12, precision: .fp16)
        let base = try #require(try StepSimulator(workload: w, machine: m, costModel: m.opCostModel()).evaluate(plan))
        var o = SimOptions()
        try o.set("micro_batch_gradient_bytes", "42")
        try o.set("micro_batch_gradient_kernels", "6")
        let more = try #require(try StepSimulator(workload: w, machine: m, costModel: m.opCostModel(), options: o).evaluate(plan))
        let params = g.tensors.filter { $0.role == .parameter }
        #expect(params.count == 2)   // two weight matrices (mlpGraph has no biases)
        let n = params.reduce(0.0) { $0 + Double(elementCount($1.shape)) }
        let perMicroBatch = n * 42 / (c.gpu.hbmBandwidth * m.calibration.memoryEfficiency) + Double(params.count) * 6 * c.gpu.launchOverhead
        #expect(relative(more.stepSeconds - base.stepSeconds, 3 * perMicroBatch) < 1e-9)
        #expect(o.knobs.contains { $0.key == "micro_batch_gradient_bytes" && $0.value == "42" && $0.why == "set for this case" })
        var bad = SimOptions()
        #expect(throws: SimError.self) { try bad.set("micro_batch_gradient_bytes", "-1") }
        #expect(throws: SimError.self) { try bad.set("micro_batch_gradient_kernels", "1.5") }
    }

    /// An optimizer run op by op (`optimizer_kernels`, `optimizer_bytes`): each step moves that many bytes of every
    /// parameter at the HBM rate and launches that many kernels for every parameter tensor, instead of the fused
    /// update's 28 bytes (weight, gradient and two moments read; weight and moments written) in one kernel a tensor.
    @Test func eagerOptimizer() throws {
        let g = mlpGraph(layers: 2, width: 256, batch: 8)
        let m = try Machine.resolve("dgx-a100")
        guard case .gpu(let c) = m.system else { Issue.record("not a GPU machine"); return }
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 4, microBatches: 3)
        let w = Workload(graph: g, globalBatch: 12, precision: .tf32)
        let base = try #require(try StepSimulator(workload: w, machine: m, costModel: m.opCostModel()).evaluate(plan))
        var o = SimOptions()
        try o.set("optimizer_kernels", "19")
        try o.set("optimizer_bytes", "140")
        let eager = try #require(try StepSimulator(workload: w, machine: m, costModel: m.opCostModel(), options: o).evaluate(plan))
        let params = g.tensors.filter { $0.role == .parameter }
        let n = params.reduce(0.0) { $0 + Double(elementCount($1.shape)) }
        let rate = c.gpu.hbmBandwidth * m.calibration.memoryEfficiency
        let fused = n * 28 / rate + Double(params.count) * c.gpu.launchOverhead
        let opByOp = n * 140 / rate + Double(params.count) * 19 * c.gpu.launchOverhead
        #expect(relative(base.breakdown.optimizer, fused) < 1e-9)
        #expect(relative(eager.breakdown.optimizer, opByOp) < 1e-9)
        #expect(relative(eager.stepSeconds - base.stepSeconds, opByOp - fused) < 1e-9)
        // the kernels alone, with the fused update's bytes
        var k = SimOptions()
        try k.set("optimizer_kernels", "19")
        let kernels = try #require(try StepSimulator(workload: w, machine: m, costModel: m.opCostModel(), options: k).evaluate(plan))
        #expect(relative(kernels.breakdown.optimizer, n * 28 / rate + Double(params.count) * 19 * c.gpu.launchOverhead) < 1e-9)
        #expect(o.knobs.contains { $0.key == "optimizer_kernels" && $0.value == "19" && $0.why == "set for this case" })
        var bad = SimOptions()
        #expect(throws: SimError.self) { try bad.set("optimizer_kernels", "2.5") }
        #expect(throws: SimError.self) { try bad.set("optimizer_bytes", "-1") }
    }
}

/// Issue 11 §3: one 1F1B schedule behind the closed-form step time and the event timeline.
@Suite("1F1B schedule")
struct OneFOneBScheduleTests {
    @Test("the order: warm-up forwards, one forward one backward, drain; the last stage alternates from the start")
    func order() {
        let s = OneFOneBSchedule(stages: 4, microBatches: 4)
        #expect(s.order(stage: 0).map { "\($0.forward ? "F" : "B")\($0.microBatch)" } == ["F0", "F1", "F2", "F3", "B0", "B1", "B2", "B3"])
        #expect(s.order(stage: 3).map { "\($0.forward ? "F" : "B")\($0.microBatch)" } == ["F0", "B0", "F1", "B1", "F2", "B2", "F3", "B3"])
        #expect(s.order(stage: 2).map { "\($0.forward ? "F" : "B")\($0.microBatch)" } == ["F0", "F1", "B0", "F2", "B1", "F3", "B2", "B3"])
    }

    @Test("equal stages, free sends: the playback ends when the closed form says, (m + p − 1) × (f + b)")
    func closedFormEqualsPlayback() {
        for (p, m) in [(1, 1), (2, 4), (4, 4), (4, 16), (8, 3)] {
            let s = OneFOneBSchedule(stages: p, microBatches: m)
            let f = 1.0, b = 2.0
            let ends = s.play(send: Array(repeating: 0, count: p)) { _, isF, _, start in start + (isF ? f : b) }
            let played = ends.max() ?? 0
            #expect(abs(played - s.closedForm(stageTimes: Array(repeating: f + b, count: p))) < 1e-9, "p=\(p) m=\(m)")
            #expect(abs(played - Double(m + p - 1) * (f + b)) < 1e-9)
        }
        // Interleaving divides the bubble by the chunks.
        let v = OneFOneBSchedule(stages: 4, microBatches: 8, virtualStages: 2)
        #expect(v.bubble(stageTimes: [3, 3, 3, 3]) == 4.5)
        #expect(OneFOneBSchedule(stages: 3, microBatches: 1).drainLead(backward: [1, 2, 3]) == [0, 1, 3])
    }
}
