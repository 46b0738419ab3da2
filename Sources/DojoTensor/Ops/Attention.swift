import DojoGraph
import Foundation

extension Engine {
    /// Whether attention's products read the heads of a fused projection and write the merged heads in place, by
    /// strides (`Tensor.attentionHeads`); off: the permute, three slices and the permute after run as copies (the
    /// reference it is tested against, and the other side of a comparison on one machine: `DOJO_STRIDED_HEADS=0`).
    @TaskLocal public static var stridedHeads = ProcessInfo.processInfo.environment["DOJO_STRIDED_HEADS"] != "0"
}

extension Tensor {
    /// Multi-head attention's two products over a fused projection's output `qkv` [B, T, 3·H·hd] (q, k and v one after
    /// another in each row, heads inside each): the probabilities `probabilities(q·kᵀ)` (the caller's scale, softmax,
    /// rounding and dropout, on the scores [B·H, T, T]) times v, with the heads merged back: [B, T, H·hd].
    ///
    /// Issue 14 §1: the products read q, k and v where they lie in `qkv` (head h of batch b is a [T, hd] block with rows
    /// 3·H·hd apart) and write each head's output into its columns of the merged result, and their backward writes the
    /// gradients of q, k and v into one [B, T, 3·H·hd] buffer the same way, through GEMMs with strides (oneDNN's sgemm,
    /// and its BF16 matmul over a grid of strided matrices): no permute and slices copied before, nor a permute after.
    /// The tape records the same ops the copies would be — reshape, transpose, three slices and reshapes, the product,
    /// the caller's ops, the product, reshape, transpose, reshape — with the values between the products and `qkv` or the
    /// result never made (shape-only), so the Graph IR, and what the simulator prices, are the same either way.
    /// Shape-only, under the reference kernels, or with `Engine.stridedHeads` off: the copies, as written.
    public static func attentionHeads(qkv: Tensor, heads: Int, probabilities: (Tensor) -> Tensor) -> Tensor {
        precondition(qkv.rank == 3 && heads >= 1 && qkv.shape[2] % (3 * heads) == 0,
                     "attentionHeads: qkv \(qkv.shape) is not [B, T, 3·\(heads)·head dim]")
        let b = qkv.shape[0], t = qkv.shape[1], hd = qkv.shape[2] / (3 * heads), d = heads * hd
        if !Engine.stridedHeads || Engine.shapeOnly || qkv.isShapeOnly || Engine.backend == .reference || b * heads == 0 || t == 0 || hd == 0 {
            let parts = qkv.reshaped([b, t, 3, heads, hd]).permuted([2, 0, 3, 1, 4])   // [3, B, H, T, hd]
            func part(_ i: Int) -> Tensor { parts.slice(axis: 0, i..<(i + 1)).reshaped([b * heads, t, hd]) }
            let q = part(0), k = part(1), v = part(2)
            let p = probabilities(q.matmul(k, transposeB: true))
            return p.matmul(v).reshaped([b, heads, t, hd]).permuted([0, 2, 1, 3]).reshaped([b, t, d])
        }
        let heads5 = [b, t, 3, heads, hd], order = [2, 0, 3, 1, 4], split = [3, b, heads, t, hd]
        let one = [1, b, heads, t, hd], flat = [b * heads, t, hd]
        let grid = HeadGrid(batch: b, heads: heads, tokens: t, headDim: hd)
        let box = HeadGradients()
        func shapeOnly(_ s: [Int]) -> Tensor { Engine.$shapeOnly.withValue(true) { Tensor(uninitializedShape: s) } }
        // between qkv and the products: shapes only; backward routes shape-only gradients, the products' backward fills
        // the one real buffer (`box.dqkv`), and the first op hands it to qkv
        let r5 = shapeOnly(heads5)
        Tape.note(.reshape, inputs: [qkv], output: r5, attributes: OpAttributes(shape: heads5)) { _, _ in
            defer { box.dqkv = nil }
            return [box.finished(grid)]
        }
        let parts = shapeOnly(split)
        Tape.note(.transpose, inputs: [r5], output: parts, attributes: OpAttributes(axes: order)) { _, _ in [shapeOnly(heads5)] }
        // the three slices hand back one gradient (the tape adds nothing to a gradient it already holds)
        let partsGradient = shapeOnly(split)
        var qkvParts: [Tensor] = []
        for _ in 0..<3 {
            let s = shapeOnly(one)
            Tape.note(.slice, inputs: [parts], output: s, attributes: OpAttributes(axes: [0], shape: one)) { _, _ in [partsGradient] }
            let f = shapeOnly(flat)
            Tape.note(.reshape, inputs: [s], output: f, attributes: OpAttributes(shape: flat)) { _, _ in [shapeOnly(one)] }
            qkvParts.append(f)
        }
        // q·kᵀ, each head read in place
        let scores = Tensor(uninitializedShape: [b * heads, t, t])
        let qkv16 = BF16Operand.of(qkv)
        grid.product(.q, .k, into: scores, qkv: qkv, qkv16: qkv16)
        Tape.note(.matmul, inputs: [qkvParts[0], qkvParts[1]], output: scores, attributes: OpAttributes(transposeA: false, transposeB: true)) {
            [qkv] g, _ in
            let dqkv = box.buffer(like: qkv)
            grid.scoresBackward(g, qkv: qkv, qkv16: box.operand(qkv), into: dqkv)
            box.wrote[0] = true; box.wrote[1] = true
            box.dropOperand()
            return [shapeOnly(flat), shapeOnly(flat)]
        }
        let p = probabilities(scores)
        precondition(p.shape == scores.shape, "attentionHeads: probabilities \(p.shape) for scores \(scores.shape)")
        // p·v, each head written into its columns of the merged heads
        let y = Tensor(uninitializedShape: [b, t, d])
        grid.product(p, .v, into: y, qkv: qkv, qkv16: qkv16)
        let o = shapeOnly(flat)
        Tape.note(.matmul, inputs: [p, qkvParts[2]], output: o, attributes: OpAttributes(transposeA: false, transposeB: false)) {
            [qkv] _, needs in
            guard let dy = box.dy, needs[0] || needs[1] else { return [nil, nil] }
            box.dy = nil
            // dv only where qkv wants a gradient (p may want one alone: an op inside `probabilities` with a parameter)
            let dqkv = needs[1] ? box.buffer(like: qkv) : nil
            let dp = grid.valuesBackward(dy, p: p, needsP: needs[0], qkv: qkv, qkv16: box.operand(qkv), into: dqkv)
            if needs[1] { box.wrote[2] = true }
            if !needs[1] || !needs[0] { box.dropOperand() }   // no q·kᵀ backward reads them then
            return [dp, needs[1] ? shapeOnly(flat) : nil]
        }
        let o4 = shapeOnly([b, heads, t, hd])
        Tape.note(.reshape, inputs: [o], output: o4, attributes: OpAttributes(shape: [b, heads, t, hd])) { _, _ in [shapeOnly(flat)] }
        let merged = shapeOnly([b, t, heads, hd])
        Tape.note(.transpose, inputs: [o4], output: merged, attributes: OpAttributes(axes: [0, 2, 1, 3])) { _, _ in [shapeOnly([b, heads, t, hd])] }
        Tape.note(.reshape, inputs: [merged], output: y, attributes: OpAttributes(shape: [b, t, d])) { g, _ in
            box.dy = g
            return [shapeOnly([b, t, heads, hd])]
        }
        // qkv is read again by backward (in place of the copies, which were kept): kept packed in its format meanwhile
        if let tape = Tape.current, tape.packsSavedValues, qkv.requiresGrad {
            qkv.storage.heldForBackward = true
            qkv.storage.packAway()
        }
        return y
    }
}

/// What attention's backward passes between its ops (`Tensor.attentionHeads`): the merged heads' gradient, and the
/// one buffer the products' backward fill with the gradients of q, k and v.
private final class HeadGradients: @unchecked Sendable {
    var dy: Tensor?
    var dqkv: Tensor?
    /// Which of q, k and v the products' backward wrote into `dqkv`.
    var wrote = [false, false, false]
    /// `dqkv` for qkv's gradient, the columns of a part no product wrote zero (a gradient stopped inside the caller's
    /// `probabilities`: as the copies' slices would give); nil when no product wrote any.
    func finished(_ grid: HeadGrid) -> Tensor? {
        guard let dqkv, wrote.contains(true) else { return nil }
        let rows = grid.batch * grid.tokens, width = grid.width, d = grid.dimension, p = dqkv.pointer
        for part in 0..<3 where !wrote[part] {
            for r in 0..<rows { (p + r * width + part * d).initialize(repeating: 0, count: d) }
        }
        return dqkv
    }
    /// qkv's BF16 bits for backward's products, made once (nil: FP32 products)
    private var bits: BF16Operand??
    func operand(_ qkv: Tensor) -> BF16Operand? {
        if let bits { return bits }
        let made = BF16Operand.of(qkv)
        bits = .some(made)
        return made
    }
    /// After the last product that reads them (a CFP8 projection's bits are a copy).
    func dropOperand() { bits = nil }
    func buffer(like qkv: Tensor) -> Tensor {
        if let dqkv { return dqkv }
        let made = Tensor(uninitializedShape: qkv.shape)
        dqkv = made
        return made
    }
}

/// The (batch, head) grid of attention's products and where each matrix lies: in the fused projection [B, T, 3·H·hd]
/// (q, k, v: rows 3·H·hd apart, at column offsets 0, H·hd, 2·H·hd, then h·hd), in the scores and probabilities
/// [B·H, T, T] (packed), and in the merged heads [B, T, H·hd] (rows H·hd apart, at column h·hd).
private struct HeadGrid {
    let batch, heads, tokens, headDim: Int
    enum Part: Int { case q = 0, k = 1, v = 2 }
    init(batch: Int, heads: Int, tokens: Int, headDim: Int) {
        self.batch = batch; self.heads = heads; self.tokens = tokens; self.headDim = headDim
    }
    var width: Int { 3 * heads * headDim }
    var dimension: Int { heads * headDim }
    /// Batch strides and the offset of a part's matrices in the projection (or its gradient).
    func inProjection(_ part: Part) -> (offset: Int, strides: (Int, Int), ld: Int) {
        (part.rawValue * dimension, (tokens * width, headDim), width)
    }
    var square: (strides: (Int, Int), ld: Int) { ((heads * tokens * tokens, tokens * tokens), tokens) }
    var merged: (strides: (Int, Int), ld: Int) { ((tokens * dimension, headDim), dimension) }

    /// scores = q·kᵀ.
    func product(_ a: Part, _ b: Part, into scores: Tensor, qkv: Tensor, qkv16: BF16Operand?) {
        let (qa, kb) = (inProjection(a), inProjection(b))
        if let qkv16 {
            BF16Gemm.run(batches: (batch, heads), transposeA: false, transposeB: true, m: tokens, n: tokens, k: headDim,
                         a: qkv16.bits + qa.offset, aStrides: qa.strides, lda: qa.ld, b: qkv16.bits + kb.offset, bStrides: kb.strides,
                         ldb: kb.ld, c: scores.pointer, cStrides: square.strides, ldc: square.ld)
            return
        }
        let x = UnsafePointer(qkv.pointer)
        products(transposeA: false, transposeB: true, m: tokens, n: tokens, k: headDim, a: x + qa.offset, aStrides: qa.strides,
                 lda: qa.ld, b: x + kb.offset, bStrides: kb.strides, ldb: kb.ld, c: scores.pointer, cStrides: square.strides, ldc: square.ld)
    }

    /// y = p·v, written into the merged heads.
    func product(_ p: Tensor, _ v: Part, into y: Tensor, qkv: Tensor, qkv16: BF16Operand?) {
        let vb = inProjection(v)
        if let qkv16, let p16 = BF16Operand.of(p) {
            BF16Gemm.run(batches: (batch, heads), transposeA: false, transposeB: false, m: tokens, n: headDim, k: tokens,
                         a: p16.bits, aStrides: square.strides, lda: square.ld, b: qkv16.bits + vb.offset, bStrides: vb.strides,
                         ldb: vb.ld, c: y.pointer, cStrides: merged.strides, ldc: merged.ld)
            return
        }
        let x = UnsafePointer(qkv.pointer)
        products(transposeA: false, transposeB: false, m: tokens, n: headDim, k: tokens, a: UnsafePointer(p.pointer),
                 aStrides: square.strides, lda: square.ld, b: x + vb.offset, bStrides: vb.strides, ldb: vb.ld,
                 c: y.pointer, cStrides: merged.strides, ldc: merged.ld)
    }

    /// From dS (the scores' gradient): dq = dS·k and dk = dSᵀ·q, into their columns of `dqkv`.
    func scoresBackward(_ ds: Tensor, qkv: Tensor, qkv16: BF16Operand?, into dqkv: Tensor) {
        let (q, k) = (inProjection(.q), inProjection(.k))
        let out = dqkv.pointer
        if let x16 = qkv16, let ds16 = BF16Operand.of(ds) {
            BF16Gemm.run(batches: (batch, heads), transposeA: false, transposeB: false, m: tokens, n: headDim, k: tokens,
                         a: ds16.bits, aStrides: square.strides, lda: square.ld, b: x16.bits + k.offset, bStrides: k.strides,
                         ldb: k.ld, c: out + q.offset, cStrides: q.strides, ldc: q.ld)
            BF16Gemm.run(batches: (batch, heads), transposeA: true, transposeB: false, m: tokens, n: headDim, k: tokens,
                         a: ds16.bits, aStrides: square.strides, lda: square.ld, b: x16.bits + q.offset, bStrides: q.strides,
                         ldb: q.ld, c: out + k.offset, cStrides: k.strides, ldc: k.ld)
            return
        }
        let x = UnsafePointer(qkv.pointer), g = UnsafePointer(ds.pointer)
        products(transposeA: false, transposeB: false, m: tokens, n: headDim, k: tokens, a: g, aStrides: square.strides,
                 lda: square.ld, b: x + k.offset, bStrides: k.strides, ldb: k.ld, c: out + q.offset, cStrides: q.strides, ldc: q.ld)
        products(transposeA: true, transposeB: false, m: tokens, n: headDim, k: tokens, a: g, aStrides: square.strides,
                 lda: square.ld, b: x + q.offset, bStrides: q.strides, ldb: q.ld, c: out + k.offset, cStrides: k.strides, ldc: k.ld)
    }

    /// From dy (the merged heads' gradient): dv = pᵀ·dy into v's columns of `dqkv`, and dp = dy·vᵀ (returned).
    func valuesBackward(_ dy: Tensor, p: Tensor, needsP: Bool, qkv: Tensor, qkv16: BF16Operand?, into dqkv: Tensor?) -> Tensor? {
        let v = inProjection(.v)
        let dp = needsP ? Tensor(uninitializedShape: [batch * heads, tokens, tokens]) : nil
        if let x16 = qkv16, let dy16 = BF16Operand.of(dy), let p16 = BF16Operand.of(p) {
            if let out = dqkv?.pointer {
                BF16Gemm.run(batches: (batch, heads), transposeA: true, transposeB: false, m: tokens, n: headDim, k: tokens,
                             a: p16.bits, aStrides: square.strides, lda: square.ld, b: dy16.bits, bStrides: merged.strides,
                             ldb: merged.ld, c: out + v.offset, cStrides: v.strides, ldc: v.ld)
            }
            if let dp {
                BF16Gemm.run(batches: (batch, heads), transposeA: false, transposeB: true, m: tokens, n: tokens, k: headDim,
                             a: dy16.bits, aStrides: merged.strides, lda: merged.ld, b: x16.bits + v.offset, bStrides: v.strides,
                             ldb: v.ld, c: dp.pointer, cStrides: square.strides, ldc: square.ld)
            }
            return dp
        }
        let x = UnsafePointer(qkv.pointer), g = UnsafePointer(dy.pointer)
        if let out = dqkv?.pointer {
            products(transposeA: true, transposeB: false, m: tokens, n: headDim, k: tokens, a: UnsafePointer(p.pointer),
                     aStrides: square.strides, lda: square.ld, b: g, bStrides: merged.strides, ldb: merged.ld,
                     c: out + v.offset, cStrides: v.strides, ldc: v.ld)
        }
        if let dp {
            products(transposeA: false, transposeB: true, m: tokens, n: tokens, k: headDim, a: g, aStrides: merged.strides,
                     lda: merged.ld, b: x + v.offset, bStrides: v.strides, ldb: v.ld, c: dp.pointer, cStrides: square.strides,
                     ldc: square.ld)
        }
        return dp
    }

    /// FP32 products over the grid, matrix (i, j) at the strides: the matrices split over the compute threads, each
    /// product on one thread (as `matmul`'s batched products).
    func products(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, aStrides: (Int, Int), lda: Int,
                  b: UnsafePointer<Float>, bStrides: (Int, Int), ldb: Int, c: UnsafeMutablePointer<Float>, cStrides: (Int, Int), ldc: Int) {
        let count = batch * heads, per = heads
        let threads = count >= 2 * ComputeThreads.count && m * n * k <= 1 << 24 ? ComputeThreads.count : 1
        ompChunks(count, threads: threads) { range in
            for i in range {
                let (p, q) = (i / per, i % per)
                GemmKernel.run(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                               a: a + p * aStrides.0 + q * aStrides.1, lda: lda, b: b + p * bStrides.0 + q * bStrides.1, ldb: ldb,
                               c: c + p * cStrides.0 + q * cStrides.1, ldc: ldc)
            }
        }
    }
}
