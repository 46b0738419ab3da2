import DojoCompiler
import DojoGraph
import DojoMachine
import DojoSim
import Foundation
import Testing

/// Sample costs and the models' speed, printed for docs/ARCHITECTURE.md and the benchmark record. Asserts only what
/// is robust: every cost is finite and positive.
@Suite("Op cost samples and speed")
struct CostSamplesTests {
    /// ResNet-50 convolutions; GPT-3 175B's MLP up-projection for 2,048 tokens (12,288 → 49,152), whole and as one
    /// of 8 tensor-parallel shards; its attention scores for one shard's 12 heads; a GELU over a shard's MLP output.
    static let samples: [(String, OpWork)] = [
        ("ResNet-50 conv 3x3 128->128 at 28x28, batch 256", convWork(batch: 256, inChannels: 128, outChannels: 128, size: 28, kernel: 3, .bf16)),
        ("ResNet-50 conv1 7x7/2 3->64 at 224x224, batch 32", convWork(batch: 32, inChannels: 3, outChannels: 64, size: 224, kernel: 7, stride: 2, .bf16)),
        ("GPT-3 MLP up, 2048 tokens, 1/8 shard (2048x6144x12288)", gemmWork(2048, 6144, 12288, .bf16)),
        ("GPT-3 MLP up, 2048 tokens, whole (2048x49152x12288)", gemmWork(2048, 49152, 12288, .bf16)),
        ("GPT-3 attention scores, 12 heads x 2048x2048x128", gemmWork(2048, 2048, 128, batch: 12, .bf16, weights: false)),
        ("GELU over 2048 x 6144", elementwiseWork(.gelu, elements: 2048 * 6144, inputs: 1, .bf16, flopsPerElement: 14)),
        ("8x8x8 GEMM", gemmWork(8, 8, 8, .bf16)),
    ]

    @Test("sample costs on a D1 and an H100")
    func samples() throws {
        let d1 = try #require(D1CostModel(machine: try Presets.load("tile")))
        let h100 = try #require(GPUCostModel(machine: try Presets.load("dgx-h100")))
        for (name, work) in Self.samples {
            let e = d1.estimate(work, precision: .bf16)
            let g = h100.cost(work, precision: .bf16)
            #expect(e.cost.seconds > 0 && e.cost.seconds.isFinite && g.seconds > 0 && g.seconds.isFinite)
            let layout = e.mapping.map { " on \($0.rows)x\($0.cols) nodes, k panels \(Int($0.panelDepth)), sub-blocks \($0.rowSplits)x\($0.colSplits)" } ?? ""
            func f(_ x: Double) -> String { String(format: "%.3g", x) }
            print("\(name) | D1: \(f(e.cost.seconds)) s, \(e.cost.bound.rawValue), \(f(100 * e.cost.utilisation))%\(layout)"
                + " | H100: \(f(g.seconds)) s, \(g.bound.rawValue), \(f(100 * g.utilisation))%")
        }
    }

    @Test("nanoseconds per cost call")
    func speed() throws {
        let d1 = try #require(D1CostModel(machine: try Presets.load("tile")))
        let h100 = try #require(GPUCostModel(machine: try Presets.load("dgx-h100")))
        var random = TestRandom(state: 5)
        var gemms: [OpWork] = []
        for _ in 0..<64 { gemms.append(gemmWork(random.size(3e4), random.size(1.6e4), random.size(1.6e4), .bf16)) }
        let others = [elementwiseWork(.add, elements: 1e7, .bf16), elementwiseWork(.softmax, elements: 4e6, inputs: 1, .bf16),
                      elementwiseWork(.layerNorm, elements: 4e6, inputs: 1, .bf16),
                      OpWork(kind: .transpose, phase: .forward, gemm: nil, flops: 0, bytesRead: 8e6, bytesWritten: 8e6)]
        // A training graph's mix: about one op in four multiplies matrices.
        let mix = Array(gemms.prefix(16)) + Array(repeating: others, count: 12).flatMap { $0 }
        // GEMMs whose tensors overflow the die's 442.5 MB of SRAM: every reserve share is searched.
        let spilling = [gemmWork(65536, 4096, 1024, .bf16), gemmWork(2048, 49152, 12288, .bf16),
                        gemmWork(2048, 2048, 128, batch: 128, .bf16, weights: false)]
        let results: [(String, Double)] = [
            ("D1 GEMMs (64 random shapes up to 30k x 16k x 16k, all fit on the die)", nanosecondsPerCost(d1, works: gemms, precision: .bf16)),
            ("D1 GEMMs that spill to HBM (3 shapes)", nanosecondsPerCost(d1, works: spilling, precision: .bf16)),
            ("D1 elementwise/data movement", nanosecondsPerCost(d1, works: others, precision: .bf16)),
            ("D1 graph-like mix (1 GEMM in 4)", nanosecondsPerCost(d1, works: mix, precision: .bf16)),
            ("H100 GEMMs", nanosecondsPerCost(h100, works: gemms, precision: .bf16)),
            ("H100 mix", nanosecondsPerCost(h100, works: mix, precision: .bf16)),
        ]
        for (name, ns) in results {
            #expect(ns > 0)
            print("\(name): \(Int(ns.rounded())) ns per call")
        }
    }
}
