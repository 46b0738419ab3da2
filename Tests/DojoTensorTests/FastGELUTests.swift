import CDojoKernels
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

    /// CDojoKernels' loops (both builds: baseline x86-64 and AVX2) give FastGELU's value and derivative bit for bit,
    /// NaN, infinities, zeros, FP32 subnormals and the clamp at ±9 included; the tensor op and its gradient use them.
    @Test func cLoopsMatchSwiftBitForBit() {
        var values: [Float] = [0, -0, .infinity, -.infinity, .nan, 9, -9, 9.000001, -9.000001, 1e-40, -1e-40,
                               .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude]
        var rng = RandomSource(seed: 3)
        values += Tensor.randomNormal([50_001], std: 4, generator: &rng).array
        let dy = values.indices.map { Float($0 % 13) - 6.5 }
        let before = dojo_kernels_level()
        defer { dojo_kernels_set_level(before) }
        for level in 0...dojo_kernels_best_level() {
            dojo_kernels_set_level(Int32(level))
            var y = [Float](repeating: 0, count: values.count), dx = y
            dojo_gelu_tanh_f32(values, &y, values.count)
            dojo_gelu_tanh_backward_f32(values, dy, &dx, values.count)
            var wrong = 0
            for i in values.indices {
                let v = FastGELU.value(values[i]), d = dy[i] * FastGELU.derivative(values[i])
                if y[i].bitPattern != v.bitPattern && !(y[i].isNaN && v.isNaN) { wrong += 1 }
                if dx[i].bitPattern != d.bitPattern && !(dx[i].isNaN && d.isNaN) { wrong += 1 }
            }
            #expect(wrong == 0, "build \(level): \(wrong) values differ from FastGELU")
        }
        // the tensor's gradient through the engine's loop: dy · FastGELU'(x)
        let x = Tensor(values.map { $0.isFinite ? $0 : 0 }, shape: [values.count]).requiringGrad()
        let tape = Tape()
        let loss = tape.record { x.gelu().sum() }
        let g = tape.backward(from: loss)[x]!.array
        for i in stride(from: 0, to: x.count, by: 89) { #expect(g[i] == FastGELU.derivative(x[flat: i]), "at \(i)") }
    }
}
