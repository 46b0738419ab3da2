import DojoGraph
import DojoTensor
import Foundation
import Testing

/// The ops of language models: lookup by an id tensor, RMS normalisation, causal softmax.
@Suite struct SequenceOpTests {
    @Test func gradients() {
        let ids = Tensor([4, 0, 4, 2, 1, 3], shape: [2, 3])
        checkGradients("embedding by id tensor", inputs: [random([5, 3], seed: 50)]) { Tensor.embedding($0[0], ids: ids) }
        checkGradients("rmsNorm", inputs: [random([3, 8], seed: 51), random([8], seed: 52)]) { $0[0].rmsNorm(gamma: $0[1]) }
        checkGradients("causal softmax", inputs: [random([2, 4, 4], seed: 53)]) { $0[0].softmax(causal: true) }
        checkGradients("grouped causal softmax", inputs: [random([2, 6, 3], seed: 54)]) { $0[0].softmax(causal: true) }
    }

    @Test func valuesMatchDefinitions() {
        let table = Tensor((0..<12).map(Float.init), shape: [4, 3])
        let rows = Tensor.embedding(table, ids: Tensor([3, 1], shape: [1, 2]))
        #expect(rows.shape == [1, 2, 3])
        #expect(rows.array == [9, 10, 11, 3, 4, 5])

        // x / rms(x) · γ with rms = √(mean(x²) + ε)
        let x = Tensor([1, 2, 3, 4], shape: [1, 4])
        let y = x.rmsNorm(gamma: Tensor([1, 1, 2, 2], shape: [4]), epsilon: 0)
        let rms = Float((30.0 / 4).squareRoot())
        for (i, v) in [1 / rms, 2 / rms, 6 / rms, 8 / rms].enumerated() { #expect(abs(y[flat: i] - v) < 1e-6) }

        // query i sees keys 0...i; a second group of query rows starts over
        let p = Tensor(zeros: [1, 4, 2]).softmax(causal: true)
        #expect(p.array == [1, 0, 0.5, 0.5, 1, 0, 0.5, 0.5])
        #expect(Tensor(zeros: [1, 2, 2]).softmax(causal: false).array == [0.5, 0.5, 0.5, 0.5])
    }

    /// The backward traffic the IR records (`OpKind.backwardTraffic`): a same-shape add hands its gradient on with no
    /// kernel, a bias add sums it down to the bias, a value read twice gets one more op summing its two gradients
    /// (2 read, 1 written), and the slices of one tensor fill one gradient without such a sum.
    @Test func recordedBackwardTraffic() {
        let x = random([4, 6], seed: 21).requiringGrad()
        let b = random([6], seed: 22).requiringGrad()
        let tape = Tape()
        let loss = tape.record { (x.relu() + x + b).sum() }
        let grads = tape.backward(from: loss)
        let g = tape.graph(model: "fork", batch: 4)
        let backward = g.ops.filter { $0.phase == .backward }
        let adds = backward.filter { $0.kind == .add && $0.attributes.accumulates != true }
        #expect(adds.count == 2)
        // relu(x) + x: both operands of the output's shape, no traffic; (…) + b: the bias's gradient summed over rows
        #expect(adds.contains { $0.bytesRead == 0 && $0.bytesWritten == 0 && $0.flops == 0 })
        #expect(adds.contains { $0.bytesRead == 24 * 4 && $0.bytesWritten == 6 * 4 && $0.flops == 24 })
        let sums = backward.filter { $0.attributes.accumulates == true }
        #expect(sums.count == 1)
        #expect(sums.first?.bytesRead == 2 * 24 * 4 && sums.first?.bytesWritten == 24 * 4 && sums.first?.flops == 24)
        #expect(sums.first.map { g.tensor($0.outputs[0])?.role } == .gradient)
        // the gradient the engine computed: 1 + relu'(x) per element
        let gx = grads[x]!
        for i in 0..<gx.count { #expect(gx.pointer[i] == (x.pointer[i] > 0 ? 2 : 1)) }

        let qkv = random([2, 9], seed: 23).requiringGrad()
        let t2 = Tape()
        let l2 = t2.record { (qkv.slice(axis: 1, 0..<3) * qkv.slice(axis: 1, 3..<6) + qkv.slice(axis: 1, 6..<9)).sum() }
        _ = t2.backward(from: l2)
        let g2 = t2.graph(model: "slices", batch: 2)
        #expect(!g2.ops.contains { $0.attributes.accumulates == true })
        #expect(g2.ops.filter { $0.phase == .backward && $0.kind == .slice }.allSatisfy { $0.bytesRead == 6 * 4 && $0.bytesWritten == 6 * 4 })
    }

    /// A lookup reads the rows it gathers, not its table; its gradient writes the table.
    @Test func recordedBytesOfALookup() {
        let table = Tensor(zeros: [1000, 8]).requiringGrad()
        let tape = Tape()
        let loss = tape.record { Tensor.embedding(table, ids: Tensor([1, 2, 3], shape: [3])).sum() }
        _ = tape.backward(from: loss)
        let g = tape.graph(model: "lookup", batch: 1)
        let forward = g.ops.first { $0.kind == .embedding && $0.phase == .forward }
        let backward = g.ops.first { $0.kind == .embedding && $0.phase == .backward }
        #expect(forward?.bytesRead == (3 * 8 + 3) * 4)
        #expect(forward?.bytesWritten == 3 * 8 * 4)
        #expect(forward?.inputs.count == 2)
        #expect(g.tensor(forward?.inputs[1] ?? -1)?.role == .input)
        #expect(backward?.bytesRead == 3 * 8 * 4)
        #expect(backward?.bytesWritten == 1000 * 8 * 4)
    }
}
