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
