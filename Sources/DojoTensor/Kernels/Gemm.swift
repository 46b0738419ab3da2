import CDojoKernels
import COneDNN

/// Row-major single-precision GEMM: C = alpha · op(A) · op(B) + beta · C, op(X) = X or Xᵀ.
/// A is m×k (k×m when transposed), B is k×n (n×k when transposed), C is m×n; lda/ldb/ldc are row strides.
public enum GemmKernel {
    public static func run(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, backend: KernelBackend = .oneDNN) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        switch backend {
        case .oneDNN:
            if transposeA && !transposeB && alpha == 1 && k >= 2048 && m >= 64 && n >= 64 && m * n * k >= 1 << 26 {
                transposedOperandFirst(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
                return
            }
            if transposeB && !transposeA && m <= 256 && n >= 4 * m && m * n * k >= 1 << 20 {
                fewRowsTimesTransposed(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
                return
            }
            let status = dnnl_sgemm(CChar(UInt8(ascii: transposeA ? "T" : "N")), CChar(UInt8(ascii: transposeB ? "T" : "N")),
                                    dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), alpha, a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb),
                                    beta, c, dnnl_dim_t(ldc))
            precondition(status == dnnl_success, "dnnl_sgemm failed with status \(status.rawValue) (m \(m) n \(n) k \(k))")
        case .reference:
            reference(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                      b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// How many threads run a grid of `count` products of m×n×k each, one product per thread: all compute threads when
    /// there are at least two products per thread and each is small (≤ 2²⁴ multiply-adds), else one (each product then
    /// runs alone, and oneDNN may thread inside it).
    static func gridThreads(count: Int, m: Int, n: Int, k: Int) -> Int {
        count >= 2 * ComputeThreads.count && m * n * k <= 1 << 24 ? ComputeThreads.count : 1
    }

    /// The same over a grid of `batches.0 × batches.1` matrices lying anywhere in memory: matrix (i, j) of A at
    /// `a + i·aStrides.0 + j·aStrides.1` (likewise B and C; B's strides (0, 0): one B for every matrix), rows `ld` apart.
    /// The matrices split over the compute threads, each product on one thread (oneDNN's sgemm runs single-threaded
    /// inside a parallel region): small products (attention's, per head) gain more from running side by side than
    /// from splitting each one. `BF16Gemm.run(batches:…)` is its BF16 twin.
    public static func run(batches: (Int, Int), transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                           a: UnsafePointer<Float>, aStrides: (Int, Int), lda: Int, b: UnsafePointer<Float>, bStrides: (Int, Int), ldb: Int,
                           c: UnsafeMutablePointer<Float>, cStrides: (Int, Int), ldc: Int, backend: KernelBackend = .oneDNN) {
        let count = batches.0 * batches.1, per = batches.1
        ompChunks(count, threads: gridThreads(count: count, m: m, n: n, k: k)) { range in
            for i in range {
                let (p, q) = (i / per, i % per)
                run(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                    a: a + p * aStrides.0 + q * aStrides.1, lda: lda, b: b + p * bStrides.0 + q * bStrides.1, ldb: ldb,
                    c: c + p * cStrides.0 + q * cStrides.1, ldc: ldc, backend: backend)
            }
        }
    }

    /// C = Aᵀ·B + β·C with a long reduction (A [k, m], B [k, n]: a layer's weight gradient, k = the tokens or pixels
    /// of the batch). oneDNN's sgemm runs a transposed A with a long k at about half its untransposed rate on AVX2
    /// (67–85 against 140 GFLOP/s for GPT's 256–1024-wide layers over 4,096 tokens, 2 cores), so the operand with the
    /// longer side is transposed first (a pass over it), with a leading dimension off a multiple of 4 KiB (a row
    /// stride of 4 KiB made a 256 × 1024 product run at 60): C = (Aᵀ)·B when m ≥ n, else Cᵀ = (Bᵀ)·A into a scratch
    /// buffer added into C transposed. Same sums in another order: the result may differ in the last bits.
    static func transposedOperandFirst(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                       beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let ld = k + 16
        let (rows, src, lds) = m >= n ? (m, a, lda) : (n, b, ldb)
        let t = UnsafeMutablePointer<Float>.allocate(capacity: rows * ld)
        defer { t.deallocate() }
        transpose(src, lds: lds, rows: k, columns: rows, into: t, ldd: ld)
        if m >= n {
            let status = dnnl_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "N")), dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k),
                                    1, t, dnnl_dim_t(ld), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
            precondition(status == dnnl_success, "dnnl_sgemm failed with status \(status.rawValue) (m \(m) n \(n) k \(k))")
            return
        }
        // Cᵀ [n, m] = Bᵀ·A, then C = Cᵀᵀ + β·C
        let ct = UnsafeMutablePointer<Float>.allocate(capacity: n * m)
        defer { ct.deallocate() }
        let status = dnnl_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "N")), dnnl_dim_t(n), dnnl_dim_t(m), dnnl_dim_t(k),
                                1, t, dnnl_dim_t(ld), a, dnnl_dim_t(lda), 0, ct, dnnl_dim_t(m))
        precondition(status == dnnl_success, "dnnl_sgemm failed with status \(status.rawValue) (m \(n) n \(m) k \(k))")
        addTransposed(ct, m: m, n: n, beta: beta, into: c, ldc: ldc)
    }

    /// C = α·A·Bᵀ + β·C for a few rows of A against a wide B [n, k] (a linear layer's forward at a small batch: the
    /// occupancy network's lift, 16 × 2048 by 1024 × 2048). oneDNN's sgemm runs that at 15–35 GFLOP/s, slower on two
    /// threads than on one (it splits the few rows), but Cᵀ = B·Aᵀ, the same products with the wide operand first, at
    /// 140–170 on two: 3.2 → 0.48 ms for the lift, 4.1 → 1.7 at 64 rows, 8.1 → 6.4 at 256; at 512 rows the plain
    /// call wins. Cᵀ goes to a scratch buffer, added into C transposed. The same products and sums, in another order:
    /// the result may differ in the last bits.
    static func fewRowsTimesTransposed(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                                       b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let ct = UnsafeMutablePointer<Float>.allocate(capacity: n * m)
        defer { ct.deallocate() }
        let status = dnnl_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "T")), dnnl_dim_t(n), dnnl_dim_t(m), dnnl_dim_t(k),
                                alpha, b, dnnl_dim_t(ldb), a, dnnl_dim_t(lda), 0, ct, dnnl_dim_t(m))
        precondition(status == dnnl_success, "dnnl_sgemm failed with status \(status.rawValue) (m \(n) n \(m) k \(k))")
        addTransposed(ct, m: m, n: n, beta: beta, into: c, ldc: ldc)
    }

    /// C [m, n] = Cᵀᵀ + β·C from `ct` [n, m] (β = 0: C's old values are not read).
    static func addTransposed(_ ct: UnsafeMutablePointer<Float>, m: Int, n: Int, beta: Float, into c: UnsafeMutablePointer<Float>, ldc: Int) {
        if beta == 0 {
            transpose(UnsafePointer(ct), lds: m, rows: n, columns: m, into: c, ldd: ldc)
        } else {
            let out = SendablePointer(c), src = SendablePointer(ct)
            parallelChunks(m, minimumPerThread: 16) { range in
                for i in range { for j in 0..<n { out.p[i * ldc + j] = src.p[j * m + i] + beta * out.p[i * ldc + j] } }
            }
        }
    }

    /// dst[j * ldd + i] = src[i * lds + j] for a [rows, columns] source, over the compute threads.
    static func transpose(_ src: UnsafePointer<Float>, lds: Int, rows: Int, columns: Int, into dst: UnsafeMutablePointer<Float>, ldd: Int) {
        let s = SendablePointer(UnsafeMutablePointer(mutating: src)), d = SendablePointer(dst)
        parallelChunks(columns, minimumPerThread: max(32, (1 << 15) / max(rows, 1))) { range in
            dojo_transpose_f32(s.p, lds, d.p, ldd, 0, rows, range.lowerBound, range.upperBound)
        }
    }

    /// The truth the fast path is tested against: a plain triple loop, accumulating in Double.
    public static func reference(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k {
                    let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    acc += Double(av) * Double(bv)
                }
                let prior = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                c[i * ldc + j] = Float(Double(alpha) * acc + prior)
            }
        }
    }
}
