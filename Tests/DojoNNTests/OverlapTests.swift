import DojoNN
import DojoTensor
import Testing

/// Issue 10 §1: gradients become "ready" during backward, each exactly once, with its final value, the last layer's
/// first — what lets data-parallel training sum them over the ranks while backward still runs.
@Suite struct OverlapTests {
    @Test func gradientsAreReadyOnceFinalAndLastLayerFirst() throws {
        let net = try ModelZoo.make("small-cnn", inputShape: [1, 28, 28], classes: 10, seed: 3)
        var rng = RandomSource(seed: 1)
        let x = Tensor.randomNormal([4, 1, 28, 28], generator: &rng)
        func loss(_ tape: Tape) -> Tensor {
            tape.record { Module.$context.withValue(ForwardContext(training: true)) { net(x).crossEntropy(labels: [0, 1, 2, 3]) } }
        }
        let plain = Tape()
        let expected = plain.backward(from: loss(plain))
        let params = net.parameters
        let tape = Tape()
        var order: [String] = []
        var seen: [String: [Float]] = [:]
        let grads = tape.backward(from: loss(tape), watching: params.map(\.1)) { p, g, _ in
            let name = params.first { $0.1 === p }!.0
            order.append(name)
            seen[name] = Array(UnsafeBufferPointer(start: g.pointer, count: g.count))
        }
        #expect(order.count == params.count && Set(order).count == params.count, "each parameter ready exactly once: \(order)")
        for (name, p) in params {
            let final = Array(UnsafeBufferPointer(start: grads[p]!.pointer, count: p.count))
            let reference = Array(UnsafeBufferPointer(start: expected[p]!.pointer, count: p.count))
            #expect(seen[name] == final && final == reference, "\(name): the gradient given when ready is the final one")
        }
        // Backward reaches the classifier first and the first convolution last.
        let firstLayer = params.first!.0, lastLayer = params.last!.0
        #expect(order.firstIndex(of: lastLayer)! < order.firstIndex(of: firstLayer)!, "\(order)")
    }

    /// The gradients data-parallel training sums in place while backward runs: `exclusive` only where no other
    /// gradient and nothing backward still reads shares the memory; `scale` seeds backward (the rank's weight).
    @Test func exclusiveGradientsShareNoMemoryAndScaleSeedsBackward() throws {
        var rng = RandomSource(seed: 2)
        let w = Tensor.randomNormal([3, 4], generator: &rng).requiringGrad()
        let b = Tensor.randomNormal([2, 4], generator: &rng).requiringGrad()   // same shape as x·w: add hands both one gradient
        let c = Tensor.randomNormal([4], generator: &rng).requiringGrad()      // broadcast: a gradient of its own
        let x = Tensor.randomNormal([2, 3], generator: &rng)
        func loss(_ tape: Tape) -> Tensor { tape.record { (x.matmul(w) + b + c).multiplying(x.matmul(w)).mean() } }
        let plainTape = Tape()
        let plain = plainTape.backward(from: loss(plainTape))
        let tape = Tape()
        var exclusive: [ObjectIdentifier: Bool] = [:]
        let grads = tape.backward(from: loss(tape), scale: 0.25, watching: [w, b, c]) { t, _, e in exclusive[ObjectIdentifier(t)] = e }
        #expect(exclusive[ObjectIdentifier(w)] == true, "a weight's gradient comes fresh from its product")
        #expect(exclusive[ObjectIdentifier(c)] == true, "a broadcast bias's gradient is summed into a tensor of its own")
        #expect(exclusive[ObjectIdentifier(b)] == false, "the add's backward hands b the gradient it hands x·w")
        for t in [w, b, c] {
            let got = Array(UnsafeBufferPointer(start: grads[t]!.pointer, count: t.count))
            let want = Array(UnsafeBufferPointer(start: plain[t]!.pointer, count: t.count)).map { $0 * 0.25 }
            #expect(got == want, "scale 0.25 gives a quarter of every gradient, exactly")
        }
    }
}
