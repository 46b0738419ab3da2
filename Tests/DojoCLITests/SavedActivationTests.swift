import DojoCompiler
import DojoGraph
import DojoMachine
import DojoNN
import DojoSim
import Testing

/// Activation memory is what the backward pass reads (`OpKind.definition.saved`), not every op's result.
/// Korthikanti et al. 2022 (arXiv 2205.05198, sec. 4.1) count one transformer layer's saved activations in 16-bit as
/// 34·s·b·h + 5·a·s²·b bytes (dropout masks one byte an element): one more BERT layer must add exactly that.
@Suite("saved activations")
struct SavedActivationTests {
    func activations(layers: Int, fusedAttention: Bool, scoreBytes: String = "0") throws -> Double {
        let g = try GraphRecorder.record(model: "bert:layers=\(layers),hidden=64,heads=4,seq=32,vocab=100,dropout=10", batch: 1)
        let m = try Machine.resolve("dgx-a100")
        var o = SimOptions()
        try o.set("fused_attention", fusedAttention ? "1" : "0")
        try o.set("score_bytes", scoreBytes)
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 8, precision: .fp16), machine: m,
                                    costModel: m.opCostModel(), options: o)
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 8, microBatches: 1)
        return try #require(sim.evaluate(plan)).memory.activations
    }

    @Test func oneBertLayerAsKorthikantiCountsIt() throws {
        let (s, b, h, a) = (32.0, 8.0, 64.0, 4.0)
        let unfused = try activations(layers: 3, fusedAttention: false) - activations(layers: 2, fusedAttention: false)
        #expect(unfused == 34 * s * b * h + 5 * a * s * s * b)
        // fused attention keeps no score matrix: the layer's 34·s·b·h only
        let fused = try activations(layers: 3, fusedAttention: true) - activations(layers: 2, fusedAttention: true)
        #expect(fused == 34 * s * b * h)
    }

    /// A Llama layer (RMSNorm, RoPE, grouped keys and values, SwiGLU) in 16-bit, counted by hand from what each gradient
    /// reads: the two norms' inputs, the QKV and gate/up GEMMs' inputs, q (2·s·b·h), k and v (4·s·b·kv·hd), the
    /// projection's input, and SwiGLU's gate, up and their product (6·s·b·f) = 12·s·b·h + 4·s·b·kv·hd + 6·s·b·f.
    /// RoPE's x·cos and rotate(x)·sin keep nothing of x (cos and sin are constants: autograd keeps a factor only for
    /// the other one's gradient). Fused, gate·σ(gate)·up is one kernel that keeps its two inputs and recomputes the
    /// rest, as Megatron's fused bias-SwiGLU does (`SwiGLUFunction` saves its input only); with fusion off, σ(gate)
    /// and silu(gate) are kept too (4·s·b·f more), as eager PyTorch keeps them.
    @Test func oneLlamaLayerCountedByHand() throws {
        let (s, b, h, f, kvhd) = (32.0, 8.0, 64.0, 160.0, 2.0 * 16)
        func activations(layers: Int, fusion: String) throws -> Double {
            let g = try GraphRecorder.record(model: "llama:layers=\(layers),hidden=64,heads=4,kv-heads=2,ffn=160,seq=32,vocab=100", batch: 1)
            let m = try Machine.resolve("dgx-a100")
            var o = SimOptions()
            try o.set("fusion", fusion)
            let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 8, precision: .fp16), machine: m,
                                        costModel: m.opCostModel(), options: o)
            let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 8, microBatches: 1)
            return try #require(sim.evaluate(plan)).memory.activations
        }
        let fused = try activations(layers: 3, fusion: "1") - activations(layers: 2, fusion: "1")
        #expect(fused == 12 * s * b * h + 4 * s * b * kvhd + 6 * s * b * f)
        let unfused = try activations(layers: 3, fusion: "0") - activations(layers: 2, fusion: "0")
        #expect(unfused == fused + 4 * s * b * f)
    }

    /// `score_bytes` changes the traffic of the score passes, not what is kept (TensorFlow AMP's FP32 softmax).
    @Test func scoreBytesKnob() throws {
        var o = SimOptions()
        try o.set("score_bytes", "4")
        #expect(o.knobs.contains { $0.key == "score_bytes" && $0.value == "4" && $0.why == "set for this case" })
        #expect(throws: SimError.self) { try o.set("score_bytes", "3") }
        let g = try GraphRecorder.record(model: "bert:layers=2,hidden=64,heads=4,seq=128,vocab=100,dropout=10", batch: 1)
        let m = try Machine.resolve("dgx-a100")
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 64, microBatches: 1)
        func step(_ bytes: String, fused: String = "0") throws -> Double {
            var o = SimOptions()
            try o.set("fused_attention", fused)
            try o.set("score_bytes", bytes)
            let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 64, precision: .fp16), machine: m,
                                        costModel: m.opCostModel(), options: o)
            return try #require(sim.evaluate(plan)).stepSeconds
        }
        #expect(try step("4") > step("0"))
        #expect(try step("2") == step("0"))
        #expect(try step("4", fused: "1") == step("0", fused: "1"))
    }

    /// `eager_attention=1`: the scale after the scores' product becomes a kernel of its own and a padding-mask add
    /// follows it (eager PyTorch BERT): one more read and write of the score matrices forward, none kept; nothing
    /// changes when attention is fused.
    @Test func eagerAttentionKnob() throws {
        let g = try GraphRecorder.record(model: "bert:layers=2,hidden=64,heads=4,seq=128,vocab=100,dropout=10", batch: 1)
        let m = try Machine.resolve("dgx-a100")
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 64, microBatches: 1)
        func run(_ eager: String, fused: String = "0") throws -> (StepSimulator, PlanEvaluation) {
            var o = SimOptions()
            try o.set("fused_attention", fused)
            try o.set("eager_attention", eager)
            let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 64, precision: .fp16), machine: m,
                                        costModel: m.opCostModel(), options: o)
            return (sim, try #require(sim.evaluate(plan)))
        }
        let (plainSim, plain) = try run("0"), (eagerSim, eager) = try run("1")
        #expect(eager.stepSeconds > plain.stepSeconds)
        #expect(eager.memory.activations == plain.memory.activations)
        // the scale was in a chain with the scores' product and is not any more
        let scale = try #require(g.ops.first { $0.kind == .scale && $0.phase == .forward })
        #expect(plainSim.fusion.isFused(scale.id) && !eagerSim.fusion.isFused(scale.id))
        // the added time is at least the mask's pass: the score matrices (batch × heads × seq², 2 bytes) read and
        // written once per layer at the A100's HBM bandwidth
        let scoreBytes = 64.0 * 4 * 128 * 128 * 2
        #expect(eager.stepSeconds - plain.stepSeconds >= 2 * 2 * scoreBytes / 2.039e12)
        #expect(try run("1", fused: "1").1.stepSeconds == run("0", fused: "1").1.stepSeconds)
        var o = SimOptions()
        #expect(throws: SimError.self) { try o.set("eager_attention", "2") }
    }

    /// `attention_segments=N`: a sample packs N sequences that attend within themselves, so attention's score work
    /// and the scores kept are 1/N of a whole sample's; the rest of the layer is unchanged.
    @Test func attentionSegmentsKnob() throws {
        let g = try GraphRecorder.record(model: "bert:layers=2,hidden=64,heads=4,seq=256,vocab=100,dropout=10", batch: 1)
        let m = try Machine.resolve("dgx-a100")
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 32, microBatches: 1)
        func run(_ segments: String, fused: String) throws -> PlanEvaluation {
            var o = SimOptions()
            try o.set("fused_attention", fused)
            try o.set("attention_segments", segments)
            let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 32, precision: .fp16), machine: m,
                                        costModel: m.opCostModel(), options: o)
            return try #require(sim.evaluate(plan))
        }
        for fused in ["0", "1"] {
            let one = try run("1", fused: fused), two = try run("2", fused: fused), four = try run("4", fused: fused)
            #expect(two.stepSeconds < one.stepSeconds && four.stepSeconds < two.stepSeconds, "fused_attention=\(fused)")
        }
        // unfused: the score matrices kept (5·a·s²·b bytes a layer, Korthikanti et al.) are halved, the rest not
        let (s, b, h, a) = (256.0, 32.0, 64.0, 4.0)
        let kept = try run("1", fused: "0").memory.activations - run("2", fused: "0").memory.activations
        #expect(abs(kept - 2 * 5 * a * s * s * b / 2) <= 1e-6 * kept)
        _ = h
        // below 1, a context-parallel share (ValidationCase.simulationInputs): 32 samples of 1,024 tokens whose queries
        // attend to 2,048 keys cost more than their own attention, about what 16 samples of 2,048 tokens cost; twice
        // the scores kept
        func step(seq: Int, batch: Int, _ segments: String, fused: String) throws -> PlanEvaluation {
            let graph = try GraphRecorder.record(model: "bert:layers=2,hidden=1024,heads=16,seq=\(seq),vocab=100,dropout=10", batch: 1)
            var o = SimOptions()
            try o.set("fused_attention", fused)
            try o.set("attention_segments", segments)
            let sim = try StepSimulator(workload: Workload(graph: graph, globalBatch: batch, precision: .fp16), machine: m,
                                        costModel: m.opCostModel(), options: o)
            return try #require(sim.evaluate(ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: batch, microBatches: 1)))
        }
        for fused in ["0", "1"] {
            let own = try step(seq: 1024, batch: 32, "1", fused: fused), share = try step(seq: 1024, batch: 32, "0.5", fused: fused)
            let full = try step(seq: 2048, batch: 16, "1", fused: fused)
            #expect(own.stepSeconds < share.stepSeconds && abs(share.stepSeconds / full.stepSeconds - 1) < 0.1,
                    "fused_attention=\(fused): \(own.stepSeconds) \(share.stepSeconds) \(full.stepSeconds)")
            if fused == "0" {
                let scores = 2 * 5 * 16 * 1024.0 * 1024 * 32   // 5·a·s²·b bytes a layer, 2 layers
                #expect(abs(share.memory.activations - own.memory.activations - scores) <= 1e-6 * scores)
            }
        }
        var o = SimOptions()
        #expect(throws: SimError.self) { try o.set("attention_segments", "0") }
    }

    /// `causal_block=B`: where no published kernel table prices attention (`attention_kernel=efficiency`, or a GPU
    /// without figures), fused attention under a decoder's causal mask (recorded on its softmax) prices (s + B) / 2s of
    /// the scores, as FlashAttention-2 skips the blocks above the diagonal; 0 (the default) prices them all. An
    /// encoder's attention (no mask) is unchanged. With a table (fa2 on an A100), its causal figures already do it.
    @Test func causalBlockKnob() throws {
        let m = try Machine.resolve("dgx-a100")
        func step(_ model: String, _ block: String, kernel: String = "efficiency") throws -> Double {
            let g = try GraphRecorder.record(model: model, batch: 1)
            var o = SimOptions()
            try o.set("attention_kernel", kernel)
            try o.set("causal_block", block)
            let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 8, precision: .bf16), machine: m,
                                        costModel: m.opCostModel(), options: o)
            return try #require(sim.evaluate(ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 8, microBatches: 1))).stepSeconds
        }
        let gpt = "gpt:layers=2,hidden=1024,heads=8,seq=8192,vocab=1000"
        let all = try step(gpt, "0"), skipped = try step(gpt, "128")
        #expect(skipped < all, "\(skipped) \(all)")
        #expect(try step(gpt, "128", kernel: "fa2") == step(gpt, "0", kernel: "fa2"))
        #expect(try step("bert:layers=2,hidden=1024,heads=8,seq=8192,vocab=1000", "128") == step("bert:layers=2,hidden=1024,heads=8,seq=8192,vocab=1000", "0"))
        let g = try GraphRecorder.record(model: gpt, batch: 1)
        #expect(g.ops.contains { $0.kind == .softmax && $0.attributes.causal == true })
        var o = SimOptions()
        #expect(throws: SimError.self) { try o.set("causal_block", "-1") }
    }

    /// `recompute=op`, torchtitan's per-op policy, on a Llama layer counted by hand. In each block the weight products
    /// are counted in the order they run (QKV 1, projection 2, gate 3, up 4, down 5): the odd ones keep their outputs,
    /// the even ones (projection and up) run again in the backward pass with every op outside the fused attention
    /// kernel, whose output is kept. Kept per layer in 16-bit: its input (h), QKV's output (h + 2·kv·hd), attention's
    /// output (h), gate's (f) and down's (h). Priced with matrix FLOPs only, the step is the projection's and up's
    /// forward products longer per layer than without recomputation.
    @Test func torchtitanPerOpPolicyOnALlamaLayer() throws {
        struct MatrixOnly: OpCostModel {
            func peakFlops(_ precision: Precision) -> Double { 1e12 }
            func cost(_ w: OpWork, precision: Precision) -> OpCost {
                let c = w.kind.isMatrixOp ? w.flops / 1e12 : 0
                return OpCost(seconds: c, bound: .compute, computeSeconds: c, memorySeconds: 0, utilisation: 1)
            }
        }
        let (s, b, h, f, kvhd) = (32.0, 8.0, 64.0, 160.0, 2.0 * 16)
        func run(layers: Int, _ recompute: PlanSpec.Recompute) throws -> PlanEvaluation {
            let g = try GraphRecorder.record(model: "llama:layers=\(layers),hidden=64,heads=4,kv-heads=2,ffn=160,seq=32,vocab=100", batch: 1)
            let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: 8, precision: .fp16),
                                        machine: try Machine.resolve("dgx-a100"), costModel: MatrixOnly())
            return try #require(sim.evaluate(ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 8,
                                                          microBatches: 1, recompute: recompute)))
        }
        let kept = try run(layers: 3, .op).memory.activations - run(layers: 2, .op).memory.activations
        #expect(kept == 2 * s * b * (4 * h + 2 * kvhd + f))
        for layers in [2, 3] {
            let extra = try run(layers: layers, .op).breakdown.compute - run(layers: layers, .none).breakdown.compute
            let expected = Double(layers) * 2 * s * b * (h * h + h * f) / 1e12
            #expect(abs(extra - expected) / expected < 1e-9, "\(layers) layers: \(extra) s against \(expected) s")
            // between Megatron's selective recomputation (the scores only; none under fused attention) and full
            let selective = try run(layers: layers, .selective), full = try run(layers: layers, .full), op = try run(layers: layers, .op)
            #expect(selective.breakdown.compute < op.breakdown.compute && op.breakdown.compute < full.breakdown.compute)
            #expect(full.memory.activations < op.memory.activations && op.memory.activations < selective.memory.activations)
        }
    }
}

