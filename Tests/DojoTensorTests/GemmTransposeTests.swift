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

/// A few rows times a wide transposed operand (a linear layer at a small batch) run as Cᵀ = B·Aᵀ
/// (`GemmKernel.fewRowsTimesTransposed`): with β = 0 (C's old values, NaN here, never read), β = 1 and α ≠ 1, row
/// strides wider than the rows, against the reference triple loop.
@Suite("GEMM of a few rows by a wide transposed operand")
struct GemmFewRowsTests {
    @Test(arguments: [(16, 1024, 96), (3, 64, 5462), (256, 1024, 64)], [(Float(0), Float(1)), (1, 1), (0.5, -2)])
    func againstReference(_ mnk: (Int, Int, Int), _ betaAlpha: (Float, Float)) {
        let (m, n, k) = mnk, (beta, alpha) = betaAlpha
        #expect(m <= 256 && n >= 4 * m && m * n * k >= 1 << 20, "the shape must take the swapped path")
        let lda = k + 3, ldb = k + 5, ldc = n + 7
        var g = TestRNG(UInt64(m * 31 + n))
        let a = g.array(m * lda), b = g.array(n * ldb)
        let c0 = beta == 0 ? [Float](repeating: .nan, count: m * ldc) : g.array(m * ldc)
        var fast = c0, slow = c0
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
            for backend in [KernelBackend.oneDNN, .reference] {
                func go(_ pc: inout UnsafeMutableBufferPointer<Float>) {
                    GemmKernel.run(transposeA: false, transposeB: true, m: m, n: n, k: k, alpha: alpha, a: pa.baseAddress!, lda: lda,
                                   b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc, backend: backend)
                }
                if backend == .oneDNN { fast.withUnsafeMutableBufferPointer(go) } else { slow.withUnsafeMutableBufferPointer(go) }
            }
        } }
        // only C's m × n block is written: the padding between rows keeps its old values
        let inside = (0..<m).flatMap { i in (0..<n).map { i * ldc + $0 } }
        #expect(relativeError(inside.map { fast[$0] }, inside.map { slow[$0] }) < 1e-4, "m \(m) n \(n) k \(k) β \(beta) α \(alpha)")
        let padding = (0..<m).flatMap { i in (n..<ldc).map { i * ldc + $0 } }
        #expect(padding.allSatisfy { fast[$0].bitPattern == c0[$0].bitPattern })
    }
}
