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
        grid.scores(qkv: qkv, qkv16: qkv16, into: scores)
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
        grid.values(p, qkv: qkv, qkv16: qkv16, into: y)
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

    /// Where one operand's matrices lie: an element offset, the (batch, head) strides and the row stride.
    struct Layout { let offset: Int, strides: (Int, Int), ld: Int }
    func inProjection(_ part: Part) -> Layout { Layout(offset: part.rawValue * dimension, strides: (tokens * width, headDim), ld: width) }
    var square: Layout { Layout(offset: 0, strides: (heads * tokens * tokens, tokens * tokens), ld: tokens) }
    var merged: Layout { Layout(offset: 0, strides: (tokens * dimension, headDim), ld: dimension) }

    /// An operand's values: its BF16 bits (the products run on BF16 kernels) or its FP32 values. The caller keeps the
    /// `BF16Operand` the bits came from alive while a product reads them.
    enum Values {
        case bf16(UnsafePointer<UInt16>), fp32(UnsafePointer<Float>)
        /// Codes decoded a matrix at a time into a thread's buffer as the FP32 products read them (the probabilities
        /// held packed for backward: not brought back whole, 4 bytes a value, before the product)
        case packed(PackedValues)
        /// BF16 when both operands of a product are exact in it (`bits` made), else FP32 (read only then: the tensors
        /// may be held as codes, decoded on reading).
        static func pair(_ a: Tensor, _ a16: BF16Operand?, _ b: Tensor, _ b16: BF16Operand?) -> (Values, Values) {
            if let a16, let b16 { return (.bf16(a16.bits), .bf16(b16.bits)) }
            return (.fp32(UnsafePointer(a.pointer)), .fp32(UnsafePointer(b.pointer)))
        }
    }

    /// C = op(A)·op(B) over the grid, C's matrices at `cl` in `c`.
    func product(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, _ a: Values, _ al: Layout,
                 _ b: Values, _ bl: Layout, into c: UnsafeMutablePointer<Float>, _ cl: Layout) {
        switch (a, b) {
        case let (.bf16(pa), .bf16(pb)):
            BF16Gemm.run(batches: (batch, heads), transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                         a: pa + al.offset, aStrides: al.strides, lda: al.ld, b: pb + bl.offset, bStrides: bl.strides, ldb: bl.ld,
                         c: c + cl.offset, cStrides: cl.strides, ldc: cl.ld)
        case let (.fp32(pa), .fp32(pb)):
            GemmKernel.run(batches: (batch, heads), transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                           a: pa + al.offset, aStrides: al.strides, lda: al.ld, b: pb + bl.offset, bStrides: bl.strides, ldb: bl.ld,
                           c: c + cl.offset, cStrides: cl.strides, ldc: cl.ld)
        case let (.packed(pa), .fp32(pb)):
            // each thread decodes A's matrix into its own buffer (in cache), then runs the product from it
            let (rowsA, colsA) = transposeA ? (k, m) : (m, k)
            let count = batch * heads
            ompChunks(count, threads: GemmKernel.gridThreads(count: count, m: m, n: n, k: k)) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rowsA * colsA)
                defer { scratch.deallocate() }
                for i in range {
                    let (p, q) = (i / heads, i % heads)
                    let at = al.offset + p * al.strides.0 + q * al.strides.1
                    if al.ld == colsA {
                        pa.read(at, count: rowsA * colsA, into: scratch)
                    } else {
                        for r in 0..<rowsA { pa.read(at + r * al.ld, count: colsA, into: scratch + r * colsA) }
                    }
                    GemmKernel.run(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: scratch, lda: colsA,
                                   b: pb + bl.offset + p * bl.strides.0 + q * bl.strides.1, ldb: bl.ld,
                                   c: c + cl.offset + p * cl.strides.0 + q * cl.strides.1, ldc: cl.ld)
                }
            }
        default: preconditionFailure("attention: a product of a BF16 and an FP32 operand")
        }
    }

    /// scores = q·kᵀ.
    func scores(qkv: Tensor, qkv16: BF16Operand?, into scores: Tensor) {
        let (x, _) = Values.pair(qkv, qkv16, qkv, qkv16)
        product(transposeB: true, m: tokens, n: tokens, k: headDim, x, inProjection(.q), x, inProjection(.k), into: scores.pointer, square)
    }

    /// y = p·v, written into the merged heads.
    func values(_ p: Tensor, qkv: Tensor, qkv16: BF16Operand?, into y: Tensor) {
        let p16 = qkv16 == nil ? nil : BF16Operand.of(p)
        let (pv, x) = Values.pair(p, p16, qkv, qkv16)
        withExtendedLifetime(p16) {   // a copy it owns (CFP8 codes' bits) lives until the product has read it
            product(m: tokens, n: headDim, k: tokens, pv, square, x, inProjection(.v), into: y.pointer, merged)
        }
    }

    /// From dS (the scores' gradient): dq = dS·k and dk = dSᵀ·q, into their columns of `dqkv`.
    func scoresBackward(_ ds: Tensor, qkv: Tensor, qkv16: BF16Operand?, into dqkv: Tensor) {
        let ds16 = qkv16 == nil ? nil : BF16Operand.of(ds)
        let (g, x) = Values.pair(ds, ds16, qkv, qkv16)
        let out = dqkv.pointer
        withExtendedLifetime(ds16) {
            product(m: tokens, n: headDim, k: tokens, g, square, x, inProjection(.k), into: out, inProjection(.q))
            product(transposeA: true, m: tokens, n: headDim, k: tokens, g, square, x, inProjection(.q), into: out, inProjection(.k))
        }
    }

    /// From dy (the merged heads' gradient): dv = pᵀ·dy into v's columns of `dqkv` (when given), and dp = dy·vᵀ
    /// (returned, when `needsP`).
    func valuesBackward(_ dy: Tensor, p: Tensor, needsP: Bool, qkv: Tensor, qkv16: BF16Operand?, into dqkv: Tensor?) -> Tensor? {
        let dy16 = qkv16 == nil ? nil : BF16Operand.of(dy), p16 = dy16 == nil ? nil : BF16Operand.of(p)
        let (g, x) = Values.pair(dy, p16 == nil ? nil : dy16, qkv, qkv16)
        return withExtendedLifetime((dy16, p16)) { () -> Tensor? in
            if let out = dqkv?.pointer {
                // FP32 products on probabilities held packed: decoded a head at a time as the product reads them (the
                // softmax's backward after it decodes its rows the same way), not brought back whole first
                let packed = p16 == nil ? p.storage.packedValues : nil
                let (pv, gv) = packed.map { (Values.packed($0), Values.fp32(UnsafePointer(dy.pointer))) }
                    ?? Values.pair(p, p16, dy, p16 == nil ? nil : dy16)
                product(transposeA: true, m: tokens, n: headDim, k: tokens, pv, square, gv, merged, into: out, inProjection(.v))
            }
            guard needsP else { return nil }
            let dp = Tensor(uninitializedShape: [batch * heads, tokens, tokens])
            product(transposeB: true, m: tokens, n: tokens, k: headDim, g, merged, x, inProjection(.v), into: dp.pointer, square)
            return dp
        }
    }
}
