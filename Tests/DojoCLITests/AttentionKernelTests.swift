import DojoCompiler
import DojoGraph
import DojoMachine
import DojoNN
import Foundation
import DojoSim
import Testing

/// Fused attention priced from its kernel's published forward+backward throughput (FlashAttention-2, Dao 2023, Figs. 4
/// and 7; cuDNN 9.1.1 in FlashAttention-3, Shah et al. 2024, Figs. 5-6), scaled as the machine's GEMMs are.
@Suite("attention kernels")
struct AttentionKernelTests {
    func rate(_ k: AttentionKernel, _ gpu: String, causal: Bool, hd: Int, seq: Double) -> Double? {
        AttentionKernel.throughput(k, gpu: gpu, causal: causal, headDimension: hd, sequence: seq)
    }

    @Test("the published bars at their lengths, interpolated between, the nearest outside; none without figures")
    func table() throws {
        // FlashAttention-2 paper, Fig. 4 (A100) and Fig. 7 (H100): printed bar values
        #expect(rate(.fa2, "A100 SXM4 80GB", causal: true, hd: 128, seq: 2048) == 155)
        #expect(rate(.fa2, "A100 SXM4 80GB", causal: false, hd: 64, seq: 16384) == 176)
        #expect(rate(.fa2, "H100 SXM5 80GB", causal: false, hd: 128, seq: 16384) == 338)
        #expect(rate(.fa2, "H100 SXM5 80GB", causal: true, hd: 64, seq: 512) == 141)
        // between 2k (155) and 4k (173) in log2(seq): halfway at 2^11.5; between head dims 64 and 128 linearly
        let mid = try #require(rate(.fa2, "A100", causal: true, hd: 128, seq: 2048 * 2.0.squareRoot()))
        #expect(abs(mid - 164) < 1e-9)
        let hd96 = try #require(rate(.fa2, "A100", causal: false, hd: 96, seq: 1024))
        #expect(abs(hd96 - (153 + 173) / 2) < 1e-9)
        // outside the measured range: the nearest measured value
        #expect(rate(.fa2, "A100", causal: false, hd: 32, seq: 128) == 132)
        #expect(rate(.fa2, "A100", causal: false, hd: 256, seq: 131_072) == 203)
        // cuDNN 9.1.1 on H100: forward (497) and backward (305) at 512, head dim 128, combined as FlashAttention counts
        // (backward 2.5 × the forward's FLOPs); its causal row scaled by the causal forward's share (315 / 497)
        let nc = try #require(rate(.cudnn, "H100", causal: false, hd: 128, seq: 512))
        #expect(abs(nc - 3.5 / (1 / 497 + 2.5 / 305)) < 1e-9)
        let c = try #require(rate(.cudnn, "H100", causal: true, hd: 128, seq: 512))
        #expect(abs(c - nc * 315 / 497) < 1e-9)
        // the 2022 Triton FlashAttention beside FA2 on A100 (Fig. 4); no figures on H100
        #expect(rate(.triton, "A100", causal: true, hd: 128, seq: 2048) == 68)
        #expect(rate(.triton, "H100", causal: true, hd: 128, seq: 2048) == nil)
        // no published figures: V100 (FlashAttention-2 needs Ampere), the efficiency rule, cuDNN on an A100 = FA2's
        #expect(rate(.fa2, "V100 SXM2 32GB", causal: true, hd: 128, seq: 2048) == nil)
        #expect(rate(.efficiency, "A100", causal: true, hd: 128, seq: 2048) == nil)
        #expect(rate(.cudnn, "A100", causal: true, hd: 128, seq: 2048) == rate(.fa2, "A100", causal: true, hd: 128, seq: 2048))
        // cuDNN 9.13.1 on a B200 (A3: causal, head dim 128, forward 1171.278 and backward 942.509 at 8k), combined as
        // above; its other rows in the proportions of the H100's cuDNN table at the same length; FA2's from the same CSV
        let b = try #require(rate(.cudnn, "B200 SXM", causal: true, hd: 128, seq: 8192))
        #expect(abs(b - 3.5 / (1 / 1171.278 + 2.5 / 942.509)) < 1e-9)
        let b64 = try #require(rate(.cudnn, "B200 SXM", causal: false, hd: 64, seq: 8192))
        let hRatio = try #require(rate(.cudnn, "H100", causal: false, hd: 64, seq: 8192)) / #require(rate(.cudnn, "H100", causal: true, hd: 128, seq: 8192))
        #expect(abs(b64 - b * hRatio) < 1e-9)
        let fa2 = try #require(rate(.fa2, "B200", causal: true, hd: 128, seq: 16384))
        #expect(abs(fa2 - 3.5 / (1 / 425.128 + 2.5 / 336.635)) < 1e-9)
        let stepB = try #require(AttentionKernel.stepRate(.cudnn, gpu: "B200", matrixEfficiency: 0.625, causal: true, headDimension: 128, sequence: 8192))
        #expect(abs(stepB - b * 1e12 * 0.625 / (1745.0 / 2250)) < 1)
        // a step reaches the kernel's rate scaled by matrix_efficiency over the GEMM benchmark's share (M1: 271.2 of 312)
        let step = try #require(AttentionKernel.stepRate(.fa2, gpu: "A100", matrixEfficiency: 0.7, causal: true, headDimension: 128, sequence: 2048))
        #expect(abs(step - 155e12 * 0.7 / (271.2 / 312)) < 1)
    }

    func attentionSeconds(_ model: String, machine: String, precision: Precision, kernel: String,
                          batch: Int = 8) throws -> (attention: Double, step: Double) {
        let g = try GraphRecorder.record(model: model, batch: 1)
        let m = try Machine.resolve(machine)
        var o = SimOptions()
        try o.set("attention_kernel", kernel)
        let sim = try StepSimulator(workload: Workload(graph: g, globalBatch: batch, precision: precision), machine: m,
                                    costModel: m.opCostModel(), options: o)
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: batch, microBatches: 1)
        let e = try #require(sim.evaluate(plan))
        let attention = sim.costliestOps(plan, count: 1000).filter { $0.scope.hasSuffix("attention") && $0.kind == "matmul" }
            .reduce(0) { $0 + $1.seconds }
        return (attention, e.stepSeconds)
    }

    @Test("a causal decoder's attention on an A100 costs its FLOPs as FlashAttention counts them over the table's rate")
    func pricedFromTheTable() throws {
        // 2 layers, hidden 1024, 8 heads (head dim 128), seq 2048, causal; batch 8
        let gpt = "gpt:layers=2,hidden=1024,heads=8,seq=2048,vocab=1000"
        let (attention, step) = try attentionSeconds(gpt, machine: "dgx-a100", precision: .bf16, kernel: "fa2")
        // forward 4·s²·hd·heads·batch per layer, halved by the causal mask; backward 2.5 times the forward
        let s = 2048.0, hd = 128.0, heads = 8.0, batch = 8.0, layers = 2.0
        let forward: Double = 4 * s * s * hd * heads * batch * layers / 2
        let flops = 3.5 * forward
        let rate: Double = 155e12 * 0.7 / (271.2 / 312)
        #expect(abs(attention - flops / rate) / (flops / rate) < 1e-6, "\(attention) against \(flops / rate)")
        // without the table (a GEMM's rate × attention_efficiency, every score priced) the same step is slower
        let old = try attentionSeconds(gpt, machine: "dgx-a100", precision: .bf16, kernel: "efficiency")
        #expect(old.step > step)
        // TF32 (FlashAttention runs in 16-bit) and a V100 (no figures) keep the efficiency rule
        #expect(try attentionSeconds(gpt, machine: "dgx-a100", precision: .tf32, kernel: "fa2").step
                    == attentionSeconds(gpt, machine: "dgx-a100", precision: .tf32, kernel: "efficiency").step)
        #expect(try attentionSeconds(gpt, machine: "dgx-v100", precision: .fp16, kernel: "fa2").step
                    == attentionSeconds(gpt, machine: "dgx-v100", precision: .fp16, kernel: "efficiency").step)
    }

    @Test("attention_kernel: fa2 by default, cudnn, triton and efficiency settable, anything else refused")
    func knob() throws {
        var o = SimOptions()
        #expect(o.attentionKernel == .fa2)
        #expect(o.knobs.contains { $0.key == "attention_kernel" && $0.value == "fa2" && $0.why.contains("Dao 2023") })
        try o.set("attention_kernel", "cuDNN")
        #expect(o.attentionKernel == .cudnn)
        #expect(throws: SimError.self) { try o.set("attention_kernel", "fa4") }
    }
}
