import DojoGraph

extension Tensor {
    /// Matrix product of the last two dimensions: [m, k]·[k, n], or batched [b, m, k]·[b, k, n]
    /// (a rank-2 right operand is shared by every batch). `transposeA`/`transposeB` use Xᵀ of the last two dims.
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        let a = self, b = other
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
        let m = transposeA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let k = transposeA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        let kb = transposeB ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
        let n = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        precondition(k == kb, "matmul: inner dimensions differ, \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = a.shape.dropLast(2).reduce(1, *), batchB = b.shape.dropLast(2).reduce(1, *)
        precondition(batchB == 1 || batchB == batchA, "matmul: batch \(a.shape.dropLast(2)) vs \(b.shape.dropLast(2))")
        if a.rank == 2 && b.rank > 2 { preconditionFailure("matmul: a rank-2 left operand with a batched right operand") }
        let outShape = Array(a.shape.dropLast(2)) + [m, n]
        let out = Tensor(uninitializedShape: outShape)
        let backend = Engine.backend
        let shareB = batchB == 1 && !transposeA && batchA > 1
        if out.isShapeOnly || a.isShapeOnly || b.isShapeOnly {
            // shape-only: no arithmetic
        } else if shareB {
            // [batch·m, k] · [k, n]: one large GEMM
            GemmKernel.run(transposeA: false, transposeB: transposeB, m: batchA * m, n: n, k: k, a: a.pointer, lda: k,
                           b: b.pointer, ldb: transposeB ? k : n, c: out.pointer, ldc: n, backend: backend)
        } else {
            // Batched (attention's products per head): the matrices split over the compute threads, each product on
            // one thread (oneDNN's GEMM runs single-threaded inside a parallel region). Small products gain more
            // from running side by side than from splitting each one.
            let pa = a.pointer, pb = b.pointer, pc = out.pointer
            let threads = batchA >= 2 * ComputeThreads.count && m * n * k <= 1 << 24 ? ComputeThreads.count : 1
            ompChunks(batchA, threads: threads) { range in
                for i in range {
                    GemmKernel.run(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                   a: pa + i * m * k, lda: transposeA ? m : k,
                                   b: pb + (batchB == 1 ? 0 : i * k * n), ldb: transposeB ? k : n,
                                   c: pc + i * m * n, ldc: n, backend: backend)
                }
            }
        }
        Tape.note(.matmul, inputs: [a, b], output: out, attributes: OpAttributes(transposeA: transposeA, transposeB: transposeB)) { g, needs in
            Engine.$backend.withValue(backend) {
                var ga: Tensor? = nil, gb: Tensor? = nil
                if needs[0] {
                    // C = op(A)·op(B): dop(A) = dC·op(B)ᵀ; dA = dop(A) or its transpose
                    ga = transposeA ? b.matmul(g, transposeA: transposeB, transposeB: true)
                                    : g.matmul(b, transposeA: false, transposeB: !transposeB)
                }
                if needs[1] {
                    // dop(B) = op(A)ᵀ·dC
                    var d = transposeB ? g.matmul(a, transposeA: true, transposeB: transposeA)
                                       : a.matmul(g, transposeA: !transposeA, transposeB: false)
                    if batchB == 1 && batchA > 1 { d = d.reshaped([batchA] + Array(b.shape.suffix(2))).sum(axes: [0]) }
                    gb = d.reshaped(b.shape)
                }
                return [ga, gb]
            }
        }
        return out
    }
}
