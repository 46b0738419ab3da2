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
        let grads = tape.backward(from: loss(tape), watching: params.map(\.1)) { p, g in
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
}
