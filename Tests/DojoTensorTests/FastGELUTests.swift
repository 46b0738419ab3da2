import DojoTensor
import Foundation
import Testing

/// GELU's tanh form through the rational tanh (`FastGELU`) against libm's tanh, value and derivative, over the range
/// a transformer's activations take and beyond it (where tanh is ±1 in FP32).
@Suite struct FastGELUTests {
    @Test func matchesLibm() {
        var worstTanh: Float = 0, worstValue: Float = 0, worstDerivative: Float = 0
        for i in -240_000...240_000 {
            let x = Float(i) * 1e-4 * (1 + Float(i & 7) * 1e-3)
            worstTanh = max(worstTanh, abs(FastGELU.tanh(x) - Foundation.tanh(x)))
            let v = EltwiseAlgorithm.geluTanh.value(x), d = EltwiseAlgorithm.geluTanh.derivative(x, v)
            worstValue = max(worstValue, abs(FastGELU.value(x) - v) / max(1, abs(v)))
            worstDerivative = max(worstDerivative, abs(FastGELU.derivative(x) - d))
        }
        #expect(worstTanh < 1e-6, "tanh off by \(worstTanh)")
        #expect(worstValue < 1e-6, "GELU off by \(worstValue) (relative above 1)")
        // (1 − t² loses the bits of t near ±1, in libm's result as in this one: a few ulp of t become ~5e-6 here)
        #expect(worstDerivative < 1e-5, "GELU' off by \(worstDerivative)")
        #expect(FastGELU.tanh(.infinity) == 1 && FastGELU.tanh(-.infinity) == -1 && FastGELU.tanh(0) == 0)
    }

    /// The kernel (the vectorised loop on the compute threads) gives the scalar function's values.
    @Test func kernelMatchesScalar() {
        var rng = RandomSource(seed: 9)
        let x = Tensor.randomNormal([3, 10_000], std: 3, generator: &rng)
        let y = x.gelu()
        for i in stride(from: 0, to: x.count, by: 97) { #expect(y[flat: i] == FastGELU.value(x[flat: i])) }
    }
}
