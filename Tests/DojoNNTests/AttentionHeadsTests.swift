import DojoGraph
import DojoNN
import DojoTensor
import Foundation
import Testing

/// Issue 14 §1: attention's products read q, k and v where they lie in the fused projection's output and write the
/// merged heads in place, by strides (`Tensor.attentionHeads`), instead of a permute and three slices copied before and
/// a permute after. Checked against those copies (`Engine.stridedHeads` off) on a transformer block with odd sizes
/// (4 examples, 20 tokens, 3 heads of 8: a projection of 5,760 values, large enough to be kept packed between
/// forward and backward), causal and not, in FP32 and in Dojo's formats: the same output, the same
/// gradients of the input and of every parameter, and the same Graph IR (what the simulator prices). The block's own
/// finite-difference checks (LayerGradientTests) run through it too.
@Suite struct AttentionHeadsTests {
    struct Run {
        let y: [Float]
        let grads: [[Float]]
        let graph: Data
        let bf16Products: Int
    }

    static func run(strided: Bool, causal: Bool, mode: PrecisionPolicy.Mode?) throws -> Run {
        try Engine.$stridedHeads.withValue(strided) {
            var g = RandomSource(seed: 7)
            let block = TransformerBlock(dimension: 24, heads: 3, ffn: 40, causal: causal, generator: &g)
            block.finalizeNames()
            let x = Tensor.randomNormal([4, 20, 24], generator: &g).requiringGrad()
            let ctx = ForwardContext(training: true, precision: mode.map { PrecisionPolicy(mode: $0) })
            let counter = BF16Gemm.Counter()
            return try BF16Gemm.$counter.withValue(counter) {
                let tape = Tape()
                var y: Tensor? = nil
                let loss = tape.record { Module.$context.withValue(ctx) { () -> Tensor in
                    let out = block(x)
                    y = out
                    return (out * out).mean()
                } }
                let grads = tape.backward(from: loss)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                let graph = try encoder.encode(tape.graph(model: "block", batch: 4))
                return Run(y: y!.array, grads: ([x] + block.parameters.map(\.1)).map { grads[$0]?.array ?? [] }, graph: graph,
                           bf16Products: counter.count)
            }
        }
    }

    /// Relative L2 distance.
    static func distance(_ a: [Float], _ b: [Float]) -> Double {
        let num = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
        let den = b.map { Double($0) * Double($0) }.reduce(0, +)
        return (num / max(den, 1e-30)).squareRoot()
    }

    @Test(arguments: [false, true])
    func fp32MatchesTheCopies(causal: Bool) throws {
        let strided = try Self.run(strided: true, causal: causal, mode: nil)
        let copies = try Self.run(strided: false, causal: causal, mode: nil)
        #expect(strided.graph == copies.graph, "the Graph IR differs")
        #expect(strided.y.count == 4 * 20 * 24 && Self.distance(strided.y, copies.y) < 1e-6)
        #expect(strided.grads.count == copies.grads.count && strided.grads.allSatisfy { !$0.isEmpty })
        for (i, (a, b)) in zip(strided.grads, copies.grads).enumerated() {
            #expect(a.count == b.count && Self.distance(a, b) < 1e-5, "gradient \(i): \(Self.distance(a, b))")
        }
    }

    /// In BF16 and CFP8 (products on BF16 kernels where the CPU has them, over the grid of strided matrices): the same
    /// values up to the order of the sums (a value on a rounding boundary may round the other way).
    @Test(arguments: [PrecisionPolicy.Mode.bf16, .cfp8])
    func formatsMatchTheCopies(_ mode: PrecisionPolicy.Mode) throws {
        let strided = try Self.run(strided: true, causal: true, mode: mode)
        let copies = try Self.run(strided: false, causal: true, mode: mode)
        #expect(strided.graph == copies.graph, "the Graph IR differs")
        #expect(Self.distance(strided.y, copies.y) < 1e-3)
        for (i, (a, b)) in zip(strided.grads, copies.grads).enumerated() {
            #expect(a.count == b.count && Self.distance(a, b) < 1e-2, "gradient \(i): \(Self.distance(a, b))")
        }
        // the same products run on BF16 kernels both ways (none where the CPU has no native BF16)
        #expect(strided.bf16Products == copies.bf16Products)
        if BF16Gemm.isAvailable { #expect(strided.bf16Products >= 16, "\(strided.bf16Products)") }
    }

    /// In Dojo's formats the probabilities [B·H, T, T] are held packed for backward and stay so: pᵀ·dy and the softmax's
    /// backward decode the spans they read (FP32 products) or read their BF16 bits (BF16 products), never bringing them
    /// back whole, 4 bytes a value. The copies' batched matmul does bring them back, which shows the watch sees it.
    @Test(arguments: [PrecisionPolicy.Mode.bf16, .cfp8])
    func probabilitiesStayPackedThroughBackward(_ mode: PrecisionPolicy.Mode) throws {
        let probabilities = 4 * 3 * 20 * 20
        func unpacked(strided: Bool) throws -> [Int] {
            let watch = Storage.UnpackWatch()
            _ = try Storage.$unpackWatch.withValue(watch) { try Self.run(strided: strided, causal: true, mode: mode) }
            return watch.unpacked
        }
        let strided = try unpacked(strided: true)
        #expect(!strided.contains(probabilities), "\(strided)")
        if !BF16Gemm.isAvailable {
            let copies = try unpacked(strided: false)
            #expect(copies.contains(probabilities), "\(copies)")
        }
    }

    /// A loss on the probabilities alone (nothing reads the merged heads): q's and k's gradients from the scores, v's
    /// zero, as the copies' slices give it.
    @Test func aLossOnTheProbabilitiesAlone() {
        func grad(strided: Bool) -> [Float] {
            Engine.$stridedHeads.withValue(strided) {
                var g = RandomSource(seed: 13)
                let qkv = Tensor.randomNormal([2, 30, 3 * 2 * 8], generator: &g).requiringGrad()
                let r = Tensor.randomNormal([2 * 2, 30, 30], generator: &g)
                let tape = Tape()
                let loss = tape.record { () -> Tensor in
                    var p: Tensor? = nil
                    _ = Tensor.attentionHeads(qkv: qkv, heads: 2) { scores in
                        let s = scores.softmax(causal: true)
                        p = s
                        return s
                    }
                    return (p! * r).sum()
                }
                return tape.backward(from: loss)[qkv]?.array ?? []
            }
        }
        let a = grad(strided: true), b = grad(strided: false)
        #expect(a.count == 2 * 30 * 48 && Self.distance(a, b) < 1e-6)
        // v's columns (32..<48 of each row) are zero; q's are not (but the first token's: causal, it sees itself alone)
        #expect((0..<60).allSatisfy { row in (32..<48).allSatisfy { a[row * 48 + $0] == 0 } })
        #expect((0..<16).contains { a[5 * 48 + $0] != 0 })
    }

    /// Without a tape (evaluation), the same output.
    @Test func withoutATape() {
        var g = RandomSource(seed: 9)
        let attention = MultiHeadSelfAttention(dimension: 12, heads: 2, causal: true, generator: &g)
        attention.finalizeNames()
        let x = Tensor.randomNormal([2, 5, 12], generator: &g)
        let a = Engine.$stridedHeads.withValue(true) { attention(x).array }
        let b = Engine.$stridedHeads.withValue(false) { attention(x).array }
        #expect(a.count == 2 * 5 * 12 && Self.distance(a, b) < 1e-6)
    }
}
