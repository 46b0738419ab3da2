import DojoGraph
import DojoTensor
import Testing

/// The tape holds what each op's backward reads (its kind's `OpDefinition.saved` values) and nothing more: a value no
/// backward reads is freed as soon as the forward ops that read it are done, as in PyTorch's autograd, and the
/// gradients are the same as when something else keeps it alive.
@Suite struct TapeHoldsTests {
    /// Attention's chain: scores = q·kᵀ (nothing reads them back: the scale's derivative is a constant), scaled
    /// scores (the softmax saves its result, not its input), probabilities (saved). Also a layer norm over a sum
    /// (the add saves nothing; the norm saves its input) and a GELU (saves its input) then a tanh (saves its output).
    func forward(_ q: Tensor, _ k: Tensor, _ gamma: Tensor, _ beta: Tensor, keep: inout [Tensor], watch: inout [String: () -> Tensor?]) -> Tensor {
        let scores = q.matmul(k, transposeB: true)
        let scaled = scores.scaled(by: 0.25)
        let probs = scaled.softmax()
        let mixed = probs.matmul(k)                     // [8, 16]
        let sum = mixed + q
        let normed = sum.layerNorm(gamma: gamma, beta: beta)
        let g = normed.gelu()
        let t = g.tanh()
        keep += [scores, scaled, probs, sum, normed, g, t]
        weak var weakScores = scores, weakScaled = scaled, weakProbs = probs, weakSum = sum, weakNormed = normed
        weak var weakG = g, weakT = t
        watch = ["scores": { weakScores }, "scaled": { weakScaled }, "probs": { weakProbs }, "sum": { weakSum },
                 "normed": { weakNormed }, "gelu": { weakG }, "tanh": { weakT }]
        return (t * t).sum()
    }

    @Test func valuesNoBackwardReadsAreFreedAndGradientsAreUnchanged() {
        var rng = RandomSource(seed: 11)
        let q = Tensor.randomNormal([8, 16], generator: &rng).requiringGrad()
        let k = Tensor.randomNormal([8, 16], generator: &rng).requiringGrad()
        let gamma = Tensor.randomNormal([16], generator: &rng).requiringGrad()
        let beta = Tensor.randomNormal([16], generator: &rng).requiringGrad()

        // once with every intermediate kept alive by the caller, once with only the tape holding them
        var kept: [Tensor] = [], watch: [String: () -> Tensor?] = [:]
        let tapeKept = Tape()
        let lossKept = tapeKept.record { forward(q, k, gamma, beta, keep: &kept, watch: &watch) }
        let gradsKept = tapeKept.backward(from: lossKept)

        let tape = Tape()
        let loss = tape.record { () -> Tensor in
            var scratch: [Tensor] = []
            return forward(q, k, gamma, beta, keep: &scratch, watch: &watch)
        }
        #expect(watch["scores"]!() == nil, "the scores are read back by no backward, yet something holds them")
        #expect(watch["scaled"]!() == nil, "the scaled scores are read back by no backward, yet something holds them")
        #expect(watch["probs"]!() != nil, "the softmax's result is what its backward reads")
        #expect(watch["sum"]!() != nil, "the layer norm's input is what its backward reads")
        #expect(watch["normed"]!() != nil, "GELU's input is what its backward reads")
        #expect(watch["gelu"]!() == nil, "tanh's backward reads its output, not its input")
        #expect(watch["tanh"]!() != nil, "tanh's output (and the product's operands) are read back")
        #expect(loss.item == lossKept.item)
        let grads = tape.backward(from: loss)
        for (name, p) in [("q", q), ("k", k), ("gamma", gamma), ("beta", beta)] {
            #expect(grads[p]!.array == gradsKept[p]!.array, "gradient of \(name) differs when the tape alone holds the values")
        }
    }

    /// A backward that reads an operand its kind does not save (a loss's targets) keeps it itself: with the caller's
    /// targets gone and their memory written over by new tensors, the gradient is the one computed with them alive.
    @Test func aLossKeepsItsTargetsWhenNothingElseDoes() {
        var rng = RandomSource(seed: 12)
        let logits = Tensor.randomNormal([64, 256], generator: &rng).requiringGrad()
        let targetValues = (0..<(64 * 256)).map { _ in Float(rng.nextInt(below: 2)) }
        func gradient(keepTargets: Bool) -> [Float] {
            let tape = Tape()
            var kept: Tensor?
            let loss = tape.record { () -> Tensor in
                let targets = Tensor(targetValues, shape: [64, 256])
                if keepTargets { kept = targets }
                return logits.binaryCrossEntropyWithLogits(targets: targets, positiveWeight: 3)
            }
            // new tensors of the same size, likely in the freed memory, full of other values
            let clobber = (0..<8).map { _ in Tensor(repeating: 7, shape: [64, 256]) }
            let g = tape.backward(from: loss)[logits]!.array
            _ = (kept, clobber)
            return g
        }
        #expect(gradient(keepTargets: false) == gradient(keepTargets: true))
    }
}
