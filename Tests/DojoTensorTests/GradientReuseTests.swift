import DojoTensor
import Testing

/// An op's backward writes its input's gradient over the gradient it was given only when nothing else holds that
/// gradient (`Tape.exclusiveGradient`): a gradient an add hands to both of its inputs is not overwritten.
@Suite struct GradientReuseTests {
    @Test func aSharedGradientIsNotWrittenOver() {
        var rng = RandomSource(seed: 4)
        let p = Tensor.randomNormal([64, 128], generator: &rng).requiringGrad()
        let q = Tensor.randomNormal([64, 128], generator: &rng).requiringGrad()
        let w = Tensor.randomNormal([64, 128], generator: &rng)
        let tape = Tape()
        // add's backward gives its one gradient to both ReLUs; each ReLU's backward must leave it for the other
        let loss = tape.record { ((p.relu() + q.relu()) * w).sum() }
        let grads = tape.backward(from: loss)
        let gp = grads[p]!.array, gq = grads[q]!.array
        let expectedP = (0..<p.count).map { p[flat: $0] > 0 ? w[flat: $0] : 0 }
        let expectedQ = (0..<q.count).map { q[flat: $0] > 0 ? w[flat: $0] : 0 }
        #expect(gp == expectedP)
        #expect(gq == expectedQ)
    }

    @Test func anExclusiveGradientIsReused() {
        var rng = RandomSource(seed: 5)
        let p = Tensor.randomNormal([64, 128], generator: &rng).requiringGrad()
        let w = Tensor.randomNormal([64, 128], generator: &rng)
        let tape = Tape()
        let loss = tape.record { (p.relu().relu().scaled(by: 2) * w).sum() }
        let grads = tape.backward(from: loss)
        let expected = (0..<p.count).map { p[flat: $0] > 0 ? 2 * w[flat: $0] : 0 }
        #expect(grads[p]!.array == expected)
    }
}
