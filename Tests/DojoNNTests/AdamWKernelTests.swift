import DojoNN
import Foundation
import DojoTensor
import Testing

/// AdamW's update runs on the engine's vectorised loop over the compute threads (`OptimizerKernels.adamw`); it must
/// give the scalar loop's bits (`AdamW.reference`), for every size (the vector loop's tail) and at the first steps,
/// where the bias corrections are far from 1.
@Suite struct AdamWKernelTests {
    @Test(arguments: [1, 7, 33, 100_003], [1, 2, 50])
    func vectorisedLoopGivesTheScalarLoopsBits(_ count: Int, _ step: Int) {
        var r = RandomSource(seed: UInt64(count &* 31 &+ step))
        let w0 = Tensor.randomNormal([count], generator: &r).array, g = Tensor.randomNormal([count], generator: &r).array
        let m0 = Tensor.randomNormal([count], std: 0.1, generator: &r).array
        let v0 = Tensor.randomNormal([count], std: 0.1, generator: &r).array.map { $0 * $0 }
        let (b1, b2): (Float, Float) = (0.9, 0.999)
        let c1 = 1 - Float(pow(Double(b1), Double(step))), c2 = 1 - Float(pow(Double(b2), Double(step)))
        var (w, m, v) = (w0, m0, v0), (wr, mr, vr) = (w0, m0, v0)
        OptimizerKernels.adamw(w: &w, g: g, m: &m, v: &v, count: count, lr: 3e-4, weightDecay: 0.01, beta1: b1, beta2: b2,
                               c1: c1, c2: c2, epsilon: 1e-8)
        AdamW.reference(w: &wr, g: g, m: &mr, v: &vr, count: count, lr: 3e-4, weightDecay: 0.01, beta1: b1, beta2: b2,
                        c1: c1, c2: c2, epsilon: 1e-8)
        #expect(w.map(\.bitPattern) == wr.map(\.bitPattern))
        #expect(m.map(\.bitPattern) == mr.map(\.bitPattern))
        #expect(v.map(\.bitPattern) == vr.map(\.bitPattern))
        #expect(w != w0)
    }
}
