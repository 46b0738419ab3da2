import Testing
@_spi(Testing) import DojoTensor

/// Weight gradients (C = Aᵀ·B with a long reduction) run by transposing the longer operand first
/// (`GemmKernel.transposedOperandFirst`): both orders (m ≥ n, m < n), with β = 0 and β = 1, against the reference
/// triple loop.
@Suite("GEMM with a transposed operand over a long reduction")
struct GemmTransposeTests {
    @Test(arguments: [(96, 72), (72, 96)], [Float(0), 1])
    func againstReference(_ mn: (Int, Int), _ beta: Float) {
        let (m, n, k) = (mn.0, mn.1, 12_288)   // m·n·k ≥ 2²⁶: the transposing path
        var g = TestRNG(UInt64(m * 7 + n))
        let a = g.array(k * m), b = g.array(k * n), c0 = g.array(m * n)
        var fast = c0, slow = c0
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
            fast.withUnsafeMutableBufferPointer { pc in
                GemmKernel.run(transposeA: true, transposeB: false, m: m, n: n, k: k, a: pa.baseAddress!, lda: m,
                               b: pb.baseAddress!, ldb: n, beta: beta, c: pc.baseAddress!, ldc: n)
            }
            slow.withUnsafeMutableBufferPointer { pc in
                GemmKernel.run(transposeA: true, transposeB: false, m: m, n: n, k: k, a: pa.baseAddress!, lda: m,
                               b: pb.baseAddress!, ldb: n, beta: beta, c: pc.baseAddress!, ldc: n, backend: .reference)
            }
        } }
        // sums of 12,288 products of values in [-1, 1): FP32 rounding differs from the Double reference by ~1e-5
        #expect(relativeError(fast, slow) < 1e-4, "m \(m) n \(n) β \(beta)")
    }
}
