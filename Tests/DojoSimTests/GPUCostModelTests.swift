import DojoCompiler
import DojoGraph
import DojoMachine
import DojoSim
import Testing

@Suite("GPU op cost")
struct GPUCostModelTests {
    let h100: GPUCostModel, a100: GPUCostModel, v100: GPUCostModel

    init() throws {
        h100 = try #require(GPUCostModel(machine: try Presets.load("dgx-h100")))
        a100 = try #require(GPUCostModel(machine: try Presets.load("dgx-a100")))
        v100 = try #require(GPUCostModel(machine: try Presets.load("dgx-v100")))
    }

    @Test("the matrix rate by precision: fp32 without TF32, and fallbacks where a GPU lacks a format")
    func rates() throws {
        #expect(h100.peakFlops(.fp32) == 67e12)
        #expect(h100.peakFlops(.tf32) == 494.5e12)
        #expect(h100.peakFlops(.bf16) == 989.5e12)
        #expect(h100.peakFlops(.fp8) == 1979e12)
        #expect(h100.peakFlops(.cfp8) == 1979e12)
        #expect(a100.peakFlops(.fp8) == 312e12)       // no FP8 on Ampere: BF16
        #expect(v100.peakFlops(.bf16) == 125e12)      // no BF16 on Volta: FP16 tensor cores
        #expect(v100.peakFlops(.tf32) == 15.7e12)     // no TF32 on Volta: FP32
        #expect(GPUCostModel(machine: try Presets.load("tile")) == nil)
    }

    @Test("a big GEMM runs near matrix_efficiency × peak; wave quantisation is the rest")
    func bigGEMM() {
        let w = gemmWork(8192, 8192, 8192, .bf16)
        let c = h100.cost(w, precision: .bf16)
        #expect(c.bound == .compute)
        // 64 × 64 tiles of 128² in ⌈4096 / 132⌉ = 32 waves: 4096 / (32 × 132) = 97 % of the SMs busy.
        let waves = 4096.0 / (32 * 132)
        // the H100's matrix_efficiency: the A100's 0.7 scaled by the two GPUs' measured matmul shares (80.3 / 86.9 %)
        let e = 0.647
        #expect(relative(c.computeSeconds, w.flops / (989.5e12 * e * waves)) < 1e-12)
        #expect(c.utilisation > 0.95 * e * waves && c.utilisation < e)
    }

    @Test("a small GEMM reaches a small fraction of peak: one partial wave and the launch")
    func smallGEMM() {
        let big = h100.cost(gemmWork(8192, 8192, 8192, .bf16), precision: .bf16)
        let small = h100.cost(gemmWork(256, 256, 256, .bf16), precision: .bf16)
        #expect(small.utilisation < 0.02)
        #expect(small.utilisation < 0.1 * big.utilisation)
        #expect(small.bound == .latency)
        // A 1 GFLOP GEMM sits in between (Calculon's table puts 1–16 GFLOP at 60 % of peak, below 1 GFLOP at 10 %).
        let mid = h100.cost(gemmWork(1024, 1024, 512, .bf16), precision: .bf16)
        #expect(mid.utilisation > small.utilisation && mid.utilisation < big.utilisation)
    }

    @Test("a memory-bound elementwise op: bytes / (HBM bandwidth × memory_efficiency) + launch")
    func elementwise() {
        let w = elementwiseWork(.add, elements: 100e6, .bf16)
        let c = h100.cost(w, precision: .bf16)
        let expected = (w.bytesRead + w.bytesWritten) / (3.35e12 * 0.9) + 4e-6
        #expect(c.bound == .hbm)
        #expect(relative(c.seconds, expected) < 1e-12)
        #expect(c.latencySeconds == 4e-6)
    }

    @Test("a power limit below the TDP slows compute by (limit ÷ TDP)^(1/3), not HBM traffic")
    func powerLimit() throws {
        let limited = try #require(GPUCostModel(machine: try Presets.load("dgx-h100").with(["gpu.power_limit": "500W"])))
        let scale = limited.gpu.clockScale
        #expect(relative(scale, 0.893_904) < 1e-5)   // (500 / 700)^(1/3)
        #expect(h100.gpu.clockScale == 1)
        // a compute-bound GEMM takes 1/scale the time; a memory-bound add the same time
        let g = gemmWork(8192, 8192, 8192, .bf16)
        #expect(relative(limited.cost(g, precision: .bf16).computeSeconds, h100.cost(g, precision: .bf16).computeSeconds / scale) < 1e-12)
        let a = elementwiseWork(.add, elements: 100e6, .bf16)
        #expect(limited.cost(a, precision: .bf16).seconds == h100.cost(a, precision: .bf16).seconds)
        // the nominal peak (what MFU is reported against) stays the data sheet's
        #expect(limited.peakFlops(.bf16) == 989.5e12)
        // a limit at the TDP changes nothing
        let atTDP = try #require(GPUCostModel(machine: try Presets.load("dgx-h100").with(["gpu.power_limit": "700W"])))
        #expect(atTDP.cost(g, precision: .bf16) == h100.cost(g, precision: .bf16))
    }

    @Test("GEMMs on CUDA cores run at simt_efficiency (V100: DeepBench's measured FP32 share), on tensor cores at matrix_efficiency")
    func simtEfficiency() throws {
        // the V100's: 0.7 × (B1: 14.78 of 15.7 TFLOPS) / (M1: the A100's 271.2 of 312)
        #expect(abs(v100.calibration.simtEfficiency - 0.7 * (14.778 / 15.7) / (271.2 / 312)) < 0.001)
        #expect(v100.calibration.matrixEfficiency == 0.7)
        // a big FP32 GEMM takes 0.7 / simt_efficiency the time it would at matrix_efficiency; FP16 on tensor cores the same
        let same = try #require(GPUCostModel(machine: try Presets.load("dgx-v100").with(["calibration.simt_efficiency": "0.7"])))
        let w = gemmWork(8192, 8192, 8192, .fp32), h = gemmWork(8192, 8192, 8192, .fp16)
        #expect(relative(v100.cost(w, precision: .fp32).computeSeconds,
                         same.cost(w, precision: .fp32).computeSeconds * 0.7 / v100.calibration.simtEfficiency) < 1e-12)
        #expect(v100.cost(h, precision: .fp16) == same.cost(h, precision: .fp16))
        // without simt_efficiency (the A100 preset) CUDA-core GEMMs take matrix_efficiency
        #expect(a100.calibration.simtEfficiency == a100.calibration.matrixEfficiency)
    }

    @Test("V100 is slower than A100, which is slower than H100")
    func ordering() {
        for (w, p) in [(gemmWork(8192, 8192, 8192, .bf16), Precision.bf16), (gemmWork(4096, 4096, 4096, .fp16), .fp16),
                       (gemmWork(4096, 4096, 4096, .fp32), .fp32), (elementwiseWork(.gelu, elements: 50e6, .bf16), .bf16),
                       (convWork(batch: 256, inChannels: 64, outChannels: 64, size: 56, kernel: 3, .bf16), .bf16)] {
            let v = v100.cost(w, precision: p).seconds, a = a100.cost(w, precision: p).seconds, h = h100.cost(w, precision: p).seconds
            #expect(v > a && a > h, "\(w.kind): \(v) \(a) \(h)")
        }
    }

    @Test("split-K: a GEMM with few output tiles and a deep k spreads over the SMs")
    func splitK() {
        let w = gemmWork(128, 128, 65536, .bf16)
        let c = h100.cost(w, precision: .bf16)
        // One tile alone would take 2 × 128² × 65536 / (peak / 132 × efficiency).
        let oneSM = 2 * 128 * 128 * 65536 / (989.5e12 / 132 * 0.7)
        #expect(c.computeSeconds < oneSM / 16)
    }

    @Test("a backward GEMM is its two passes with their own shapes: the input's gradient and the weights' over the batch")
    func backwardPassShapes() throws {
        // ResNet-50's 3×3, 64 → 64 convolution at 56×56, batch 256, as an implicit GEMM: m = N·OH·OW, n = OC, k = IC·9
        let m = 256.0 * 56 * 56, n = 64.0, k = 576.0
        let bytes = (m * k + k * n + m * n) * 2
        let back = OpWork(kind: .conv2d, phase: .backward, gemm: GEMMShape(m: m, n: n, k: k), passes: 2, flops: 4 * m * n * k,
                          bytesRead: bytes, bytesWritten: bytes, weightBytes: k * n * 2)
        // dX [m, k] over n, and dW [k, n] over m, each with half the bytes, priced as GEMMs of their own
        let dx = OpWork(kind: .conv2d, phase: .forward, gemm: GEMMShape(m: m, n: k, k: n), flops: 2 * m * n * k,
                        bytesRead: bytes / 2, bytesWritten: bytes / 2)
        let dw = OpWork(kind: .conv2d, phase: .forward, gemm: GEMMShape(m: k, n: n, k: m), flops: 2 * m * n * k,
                        bytesRead: bytes / 2, bytesWritten: bytes / 2)
        let total = a100.cost(back, precision: .fp16).seconds
        let parts = a100.cost(dx, precision: .fp16).seconds + a100.cost(dw, precision: .fp16).seconds
        #expect(abs(total - parts) < 1e-12 * max(1, total), "\(total) vs \(parts)")
        // the weights' gradient has 5 output tiles of 128 × 128 for 108 SMs: split-K fills them, the partial sums cost
        // HBM traffic, and it runs slower per FLOP than the forward pass's 6,272 × 0.5 tiles
        let forward = OpWork(kind: .conv2d, phase: .forward, gemm: GEMMShape(m: m, n: n, k: k), flops: 2 * m * n * k,
                             bytesRead: bytes / 2, bytesWritten: bytes / 2)
        #expect(a100.cost(dw, precision: .fp16).seconds > a100.cost(forward, precision: .fp16).seconds)
        // one backward pass of a layer with weights (the first layer: no input gradient) is the weights' gradient
        var first = back
        first.passes = 1
        first.flops = 2 * m * n * k
        first.bytesRead = bytes / 2
        first.bytesWritten = bytes / 2
        #expect(abs(a100.cost(first, precision: .fp16).seconds - a100.cost(dw, precision: .fp16).seconds) < 1e-15)
    }

    @Test("more work of the same shape family is never cheaper (random shapes)")
    func monotone() {
        var random = TestRandom(state: 11)
        for model in [h100, a100, v100] {
            for i in 0..<300 {
                let m = random.size(1e5), n = random.size(3e4), k = random.size(3e4), batch = random.size(16)
                let p: Precision = i % 3 == 0 ? .fp32 : .bf16
                let base = gemmWork(m, n, k, batch: batch, p)
                let bigger = gemmWork(m + Double(random.next() % 200), n + Double(random.next() % 200),
                                      k + Double(random.next() % 200), batch: batch + Double(random.next() % 2), p)
                let a = model.cost(base, precision: p).seconds, b = model.cost(bigger, precision: p).seconds
                #expect(b >= a * (1 - 1e-12), "\(base.gemm!) → \(bigger.gemm!)")
            }
        }
    }

    @Test("Machine.opCostModel picks the model of the machine's device")
    func dispatch() throws {
        #expect(try Presets.load("dgx-a100").opCostModel() is GPUCostModel)
        #expect(try Presets.load("exapod").opCostModel() is D1CostModel)
    }
}
