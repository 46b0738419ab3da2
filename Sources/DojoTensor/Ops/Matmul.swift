import DojoGraph

extension Tensor {
    /// Matrix product of the last two dimensions: [m, k]·[k, n], or batched [b, m, k]·[b, k, n]
    /// (a rank-2 right operand is shared by every batch). `transposeA`/`transposeB` use Xᵀ of the last two dims.
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        let a = self, b = other
        let attributes = OpAttributes(transposeA: transposeA, transposeB: transposeB)
        let outShape = OpKind.matmul.engineShape([a.shape, b.shape], attributes)   // checks the operands
        let m = outShape[outShape.count - 2], n = outShape[outShape.count - 1]
        let k = transposeA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        let batchA = a.shape.dropLast(2).reduce(1, *), batchB = b.shape.dropLast(2).reduce(1, *)
        let out = Tensor(uninitializedShape: outShape)
        let backend = Engine.backend
        let shareB = batchB == 1 && !transposeA && batchA > 1
        if out.isShapeOnly || a.isShapeOnly || b.isShapeOnly {
            // shape-only: no arithmetic
        } else if backend == .oneDNN, let (a16, b16) = BF16Operand.pair(a, b) {
            // operands exact in BF16 (a Dojo format made them) on a CPU with BF16 arithmetic: the same sums on BF16 kernels
            BF16Gemm.run(batch: shareB ? 1 : batchA, batchB: shareB ? 1 : batchB, transposeA: transposeA, transposeB: transposeB,
                         m: shareB ? batchA * m : m, n: n, k: k, a: a16.bits, lda: transposeA ? m : k,
                         b: b16.bits, ldb: transposeB ? k : n, c: out.pointer, ldc: n)
        } else if shareB {
            // [batch·m, k] · [k, n]: one large GEMM
            GemmKernel.run(transposeA: false, transposeB: transposeB, m: batchA * m, n: n, k: k, a: a.pointer, lda: k,
                           b: b.pointer, ldb: transposeB ? k : n, c: out.pointer, ldc: n, backend: backend)
        } else {
            // Batched (attention's products per head): the matrices side by side over the compute threads
            GemmKernel.run(batches: (1, batchA), transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                           a: a.pointer, aStrides: (0, m * k), lda: transposeA ? m : k,
                           b: b.pointer, bStrides: (0, batchB == 1 ? 0 : k * n), ldb: transposeB ? k : n,
                           c: out.pointer, cStrides: (0, m * n), ldc: n, backend: backend)
        }
        Tape.note(.matmul, inputs: [a, b], output: out, attributes: attributes) { g, needs in
            Tensor.matmulGradients(g, needs, a, b, transposeA: transposeA, transposeB: transposeB, backend: backend)
        }
        return out
    }

    /// The gradients of C = op(A)·op(B) for its inputs, given dC.
    static func matmulGradients(_ g: Tensor, _ needs: [Bool], _ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool,
                                backend: KernelBackend) -> [Tensor?] {
        Engine.$backend.withValue(backend) {
            let batchA = a.shape.dropLast(2).reduce(1, *), batchB = b.shape.dropLast(2).reduce(1, *)
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

    /// Rows of an [rows, width] output made and rounded block by block: each compute thread takes its share of the
    /// rows and runs `make(firstRow, count)` (a GEMM: oneDNN runs one called inside a parallel region on the calling
    /// thread) over blocks of output, rounding each block by `task` (and writing its codes, with `codes`) while it is
    /// still in the thread's cache: one parallel region for both, not a parallel GEMM and then a pass over the whole
    /// output. The caller finishes the task.
    ///
    /// Blocks are at least 256 rows: each block's GEMM packs the whole right operand again, which costs little against
    /// 256 rows of products and much against 64 (AVX2, [4096, 256]·[256, 768] rounded to BF16, best of 15, two runs:
    /// blocks of 85 rows cost 2.4–4.7 ms over FP32's one GEMM, blocks of 256 rows 1.6–2.0 ms less than it). Where such a
    /// block would not stay in a core's cache (over 768 KiB) or the rows do not give every thread one, `make(0, rows)`
    /// runs over every thread and the rounding follows in a pass of its own (+0.7–1.8 ms for [4096, 256]·[256, 1024],
    /// where 64-row blocks cost +1.8–6.0).
    static func rowBlocks(rows n: Int, width m: Int, of out: UnsafeMutablePointer<Float>, rounding task: RoundingTask,
                          codes: CodesWriter? = nil, _ make: (_ firstRow: Int, _ count: Int) -> Void) {
        let block = max(256, (1 << 16) / max(m, 1))
        guard block * m <= 3 << 16, n >= block * ComputeThreads.count else {
            make(0, n)
            task.roundAll(out, count: n * m, codes: codes)
            return
        }
        parallelChunks(n, minimumPerThread: block) { rows in
            var tally = RoundingTask.Tally()
            var r0 = rows.lowerBound
            while r0 < rows.upperBound {
                let count = min(block, rows.upperBound - r0)
                make(r0, count)
                task.round(out + r0 * m, count: count * m, offset: r0 * m, into: &tally)
                codes?.write(out + r0 * m, count: count * m, offset: r0 * m)
                r0 += count
            }
            task.merge(tally)
        }
    }

    /// Each of `rows` rows of `width` at `out` set to `bias`, over the compute threads.
    static func fillRowsWithBias(_ out: UnsafeMutablePointer<Float>, rows: Int, width: Int, bias: UnsafePointer<Float>) {
        parallelChunks(rows, minimumPerThread: max(1, (1 << 15) / max(width, 1))) { range in
            for r in range { (out + r * width).update(from: bias, count: width) }
        }
    }

    /// In training (a tape that packs what it keeps) on BF16 kernels, with the output rounded to BF16 to nearest even:
    /// x·Wᵀ + b made by a GEMM that writes the rounded output's BF16 codes and nothing else (`BF16Gemm.runIntoBF16`),
    /// 2 bytes a value, instead of FP32 values, a rounding pass over them and the codes written in it. The output is
    /// held as codes only: the next products read them as they are, GELU and the residual add decode spans as they
    /// read them, anything else decodes once. Nil (the FP32-output path runs) without those conditions, when
    /// `Engine.bf16Outputs` is off, or when a sum was beyond BF16's range (an infinity or NaN in the codes: the FP32
    /// path's rounding then raises the flags as before).
    private func linearIntoBF16Codes(weight w: Tensor, bias: Tensor, roundOutput: TensorRounding?) -> Tensor? {
        guard Engine.bf16Outputs, let rounding = roundOutput, rounding.dtype == .bf16, Tape.current?.packsSavedValues == true
        else { return nil }
        let n = shape[0], k = shape[1], m = w.shape[0], count = n * m
        guard count >= Storage.packMinimum, let (x16, w16) = BF16Operand.pair(self, w) else { return nil }
        guard let task = rounding.begin(), task.bf16NearestEven, let nf = task.numberFormat, nf.packedBytes == 2 else { return nil }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 2, alignment: 64)
        let codes = raw.bindMemory(to: UInt16.self, capacity: count)
        BF16Gemm.runIntoBF16(transposeB: true, m: n, n: m, k: k, a: x16.bits, b: w16.bits, bias: bias.pointer, c: codes)
        guard BF16Gemm.allFinite(codes, count: count) else { raw.deallocate(); return nil }
        let y = Tensor(shape: [n, m], storage: Storage(codes: raw, count: count, format: nf))
        y.finishRounding(task, of: rounding)
        return y
    }

    /// A linear layer's x·Wᵀ + b for x [n, k], W [m, k], b [m]: the bias is written into the output first and the
    /// GEMM adds its product onto it, one pass over the output fewer than a product and then an add. Recorded as
    /// the matmul and the add it stands for (the product as a shape-only tensor), so the Graph IR and the
    /// gradients are those of `x.matmul(W, transposeB: true) + b`.
    ///
    /// `roundOutput`: the output rounded by that rounding as the GEMM makes it (when it can run span by span now,
    /// `TensorRounding.begin`): the GEMM runs over blocks of rows, each rounded right after its product while it is in
    /// cache, instead of a rounding pass over the whole output after it. The output then carries the format
    /// (`format`, `Storage.packFormat`), and the caller records the rounding without running it.
    public func linear(weight w: Tensor, bias: Tensor?, roundOutput: TensorRounding? = nil) -> Tensor {
        guard let bias, rank == 2, w.rank == 2, bias.shape == [w.shape[0]], shape[1] == w.shape[1],
              !isShapeOnly, !w.isShapeOnly, !bias.isShapeOnly else {
            let y = matmul(w, transposeB: true)
            return bias.map { y + $0 } ?? y
        }
        let n = shape[0], k = shape[1], m = w.shape[0]
        let backend = Engine.backend
        let codesOnly = backend == .oneDNN ? linearIntoBF16Codes(weight: w, bias: bias, roundOutput: roundOutput) : nil
        var out = codesOnly ?? Tensor(uninitializedShape: [n, m])
        if !out.isShapeOnly && codesOnly == nil {
            let pb = bias.pointer, po = out.pointer
            // C = bias, then C += x·Wᵀ, for rows r0..<r0+count (x's FP32 values read only here: an input held as codes
            // only, a GELU's output in training, is not decoded for the BF16 product)
            func rowsOfProduct(_ r0: Int, _ count: Int) {
                let pa = pointer, pw = w.pointer
                if count == n {
                    // every row at once (`rowBlocks`' one GEMM): the bias copied over every thread, as below
                    Tensor.fillRowsWithBias(po, rows: n, width: m, bias: pb)
                } else {
                    for r in r0..<(r0 + count) { (po + r * m).update(from: pb, count: m) }
                }
                GemmKernel.run(transposeA: false, transposeB: true, m: count, n: m, k: k, a: pa + r0 * k, lda: k, b: pw, ldb: k,
                               beta: 1, c: po + r0 * m, ldc: m, backend: backend)
            }
            if backend == .oneDNN, let (x16, w16) = BF16Operand.pair(self, w) {
                // operands exact in BF16: one product with its bias on BF16 kernels over every thread, then the rounding pass
                BF16Gemm.run(transposeA: false, transposeB: true, m: n, n: m, k: k, a: x16.bits, lda: k, b: w16.bits, ldb: k,
                             bias: pb, c: po, ldc: m)
                if let task = roundOutput?.begin() {
                    // in training, the rounded output written as its codes only (the FP32 product read once, never
                    // rewritten, then freed): the next products (attention's, a layer's) read the codes as they are,
                    // GELU and the residual add decode spans of them as they read them (as for a BF16 output that the
                    // GEMM writes itself, above); a value that cannot be coded brings the FP32 rounding back
                    if let codes = CodesWriter(task, count: n * m) {
                        let from = SendablePointer(po)
                        task.roundIntoCodes(units: n * m, blockUnits: RoundingTask.block, minimumPerThread: 1 << 14,
                                            codes: codes) { first, count, out, _ in out.update(from: from.p + first, count: count) }
                        if let s = codes.codesOnlyStorage(count: n * m) {
                            out = Tensor(shape: [n, m], storage: s)
                            out.finishRounding(task, of: roundOutput)
                        } else if let again = roundOutput?.begin() {
                            again.roundAll(po, count: n * m)
                            out.finishRounding(again, of: roundOutput)
                        }
                    } else {
                        task.roundAll(po, count: n * m)
                        out.finishRounding(task, of: roundOutput)
                    }
                }
            } else if let task = backend == .oneDNN ? roundOutput?.begin() : nil {
                // in training, the rounded values' codes written too while they are in cache: a layer reading this
                // output for its backward (GELU) keeps it packed without an encoding pass over it
                let codes = CodesWriter(task, count: n * m)
                Tensor.rowBlocks(rows: n, width: m, of: po, rounding: task, codes: codes, rowsOfProduct)
                out.finishRounding(task, of: roundOutput)
                codes?.finish(out)
            } else {
                // one GEMM over every thread
                Tensor.fillRowsWithBias(po, rows: n, width: m, bias: pb)
                GemmKernel.run(transposeA: false, transposeB: true, m: n, n: m, k: k, a: pointer, lda: k, b: w.pointer, ldb: k,
                               beta: 1, c: po, ldc: m, backend: backend)
            }
        }
        let product = Engine.$shapeOnly.withValue(true) { Tensor(uninitializedShape: [n, m]) }
        Tape.note(.matmul, inputs: [self, w], output: product, attributes: OpAttributes(transposeA: false, transposeB: true)) { [x = self] g, needs in
            // operands exact in BF16 (g, W, x from a Dojo format): both products on BF16 kernels, g's bits made once;
            // x's gradient then rounded in a pass
            if backend == .oneDNN, !g.isShapeOnly,
               (needs[0] && BF16Operand.mayBeExact(w)) || (needs[1] && BF16Operand.mayBeExact(x)), let g16 = BF16Operand.of(g) {
                var dx: Tensor? = nil, dw: Tensor? = nil
                if needs[0], let w16 = BF16Operand.of(w) {
                    let d = Tensor(uninitializedShape: [n, k]), pdx = d.pointer
                    BF16Gemm.run(transposeA: false, transposeB: false, m: n, n: k, k: m, a: g16.bits, lda: m, b: w16.bits, ldb: k,
                                 c: pdx, ldc: k)
                    Tensor.fusingGradientRounding(x.gradientRounding, of: x.serial, into: d, codes: true) { task, codes in
                        task?.roundAll(pdx, count: n * k, codes: codes)
                        return task != nil
                    }
                    dx = d
                }
                if needs[1], let x16 = BF16Operand.of(x) {
                    // dW = gᵀ·x
                    let d = Tensor(uninitializedShape: [m, k])
                    BF16Gemm.run(transposeA: true, transposeB: false, m: m, n: k, k: n, a: g16.bits, lda: m, b: x16.bits, ldb: k,
                                 c: d.pointer, ldc: k)
                    dw = d
                }
                if (needs[0] && dx == nil) || (needs[1] && dw == nil) {
                    let rest = Tensor.matmulGradients(g, [needs[0] && dx == nil, needs[1] && dw == nil], x, w, transposeA: false,
                                                      transposeB: true, backend: backend)
                    dx = dx ?? rest[0]; dw = dw ?? rest[1]
                }
                return [dx, dw]
            }
            // x's gradient g·W rounded as its GEMM makes it, block by block, when x's gradient is rounded (a layer's
            // output: a GELU's, a layer norm's, attention's merged heads) and the rounding can run that way now
            guard needs[0], backend == .oneDNN, x.gradientRounding != nil, !g.isShapeOnly, !w.isShapeOnly else {
                return Tensor.matmulGradients(g, needs, x, w, transposeA: false, transposeB: true, backend: backend)
            }
            let dx = Tensor(uninitializedShape: [n, k])
            let pg = g.pointer, pw = w.pointer, pdx = dx.pointer
            x.fusingGradientRounding(into: dx) { task in
                guard let task else {
                    GemmKernel.run(transposeA: false, transposeB: false, m: n, n: k, k: m, a: pg, lda: m, b: pw, ldb: k,
                                   c: pdx, ldc: k, backend: backend)
                    return false
                }
                Tensor.rowBlocks(rows: n, width: k, of: pdx, rounding: task) { r0, count in
                    GemmKernel.run(transposeA: false, transposeB: false, m: count, n: k, k: m, a: pg + r0 * m, lda: m, b: pw,
                                   ldb: k, c: pdx + r0 * k, ldc: k, backend: backend)
                }
                return true
            }
            let dw = needs[1] ? Tensor.matmulGradients(g, [false, true], x, w, transposeA: false, transposeB: true, backend: backend)[1] : nil
            return [dx, dw]
        }
        Tape.note(.add, inputs: [product, bias], output: out) { g, needs in
            [needs[0] ? g : nil, needs[1] ? g.sumToShape(bias.shape) : nil]
        }
        return out
    }
}
