import DojoGraph
import DojoTensor
import Testing

/// The slices of one tensor fill one gradient buffer (`Tape.fillTarget`): the gradient is what the slices' parts say,
/// with overlapping slices added and a second reader's gradient summed in, and the IR records no gradient sums
/// for them.
@Suite struct SliceFillTests {
    @Test func slicesFillOneGradient() {
        let x = random([4, 9], seed: 80).requiringGrad()
        let a = random([4, 3], seed: 81), b = random([4, 3], seed: 82), c = random([4, 5], seed: 83), d = random([4, 9], seed: 84)
        let tape = Tape()
        let loss = tape.record { () -> Tensor in
            // q, k, v of a fused projection, a fourth slice overlapping two of them, and x read by another op too
            let q = x.slice(axis: 1, 0..<3), k = x.slice(axis: 1, 3..<6), v = x.slice(axis: 1, 6..<9), o = x.slice(axis: 1, 4..<9)
            return (q * a).sum() + (k * b).sum() + (v * a).sum() + (o * c).sum() + (x * d).sum()
        }
        let g = tape.backward(from: loss)[x]!
        for i in 0..<4 {
            for j in 0..<9 {
                var expected = d.pointer[i * 9 + j]
                if j < 3 { expected += a.pointer[i * 3 + j] }
                else if j < 6 { expected += b.pointer[i * 3 + j - 3] }
                else { expected += a.pointer[i * 3 + j - 6] }
                if j >= 4 { expected += c.pointer[i * 5 + j - 4] }
                #expect(abs(g.pointer[i * 9 + j] - expected) <= 1e-5, "[\(i), \(j)]")
            }
        }
        // the IR records no gradient sums for the slices' parts (they fill one buffer, as it prices them)
        let graph = tape.graph(model: "slices", batch: 4)
        #expect(graph.ops.filter { $0.attributes.accumulates == true }.isEmpty)
        #expect(graph.ops.filter { $0.kind == .slice && $0.phase == .backward }.count == 4)
    }
}
