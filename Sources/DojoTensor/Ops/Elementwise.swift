import CDojoKernels
import DojoGraph
import Foundation
import Synchronization

// MARK: - loops

// The elementwise functions are types (generic parameters, specialised and inlined into the loops) rather than
// closures: a closure was called once per element, 3-5 ns each, and the bias and residual adds of a transformer
// step took 12-17 % of it (perf, ViT-Tiny and a GPT decoder).

/// f(x) of one element, and f'(x) from x and y = f(x).
protocol UnaryElementFunction {
    func apply(_ x: Float) -> Float
    func derivative(_ x: Float, _ y: Float) -> Float
    /// Whether `derivative` reads its input x, its output y (as the kind's `saved` values say): backward reads no
    /// other, so a value kept packed (`Storage.packAway`) is not brought back for nothing.
    static var derivativeReads: (input: Bool, output: Bool) { get }
}
extension UnaryElementFunction {
    static var derivativeReads: (input: Bool, output: Bool) { (false, false) }
}
/// f(a, b) of one element pair.
protocol BinaryElementFunction { static func apply(_ a: Float, _ b: Float) -> Float }

struct ScaleBy: UnaryElementFunction {
    let s: Float
    @inline(__always) func apply(_ x: Float) -> Float { x * s }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { s }
}
struct ShiftBy: UnaryElementFunction {
    let s: Float
    @inline(__always) func apply(_ x: Float) -> Float { x + s }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { 1 }
}
struct Negate: UnaryElementFunction {
    @inline(__always) func apply(_ x: Float) -> Float { -x }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { -1 }
}
struct Rectify: UnaryElementFunction {
    @inline(__always) func apply(_ x: Float) -> Float { max(x, 0) }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { y > 0 ? 1 : 0 }
    static var derivativeReads: (input: Bool, output: Bool) { (false, true) }
}
struct Logarithm: UnaryElementFunction {
    @inline(__always) func apply(_ x: Float) -> Float { Foundation.log(x) }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { 1 / x }
    static var derivativeReads: (input: Bool, output: Bool) { (true, false) }
}
struct SquareRoot: UnaryElementFunction {
    @inline(__always) func apply(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { 0.5 / y }
    static var derivativeReads: (input: Bool, output: Bool) { (false, true) }
}
enum AddElements: BinaryElementFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum SubtractElements: BinaryElementFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum MultiplyElements: BinaryElementFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum DivideElements: BinaryElementFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }
/// −a / b: times g/b, the gradient of a quotient by its divisor.
enum NegatedQuotient: BinaryElementFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { -a / b } }

/// out[i] = f(x[i]) over the whole buffer, on several threads for large tensors. `overInput`: into x's own FP32
/// buffer when the tape keeps x packed anyway (`Tensor.outputOverPackedInput`).
@inline(__always)
func mapKernel<F: UnaryElementFunction>(_ x: Tensor, _ f: F, overInput: Bool = false) -> Tensor {
    if overInput, let out = x.outputOverPackedInput(savedByThisOp: F.derivativeReads.input) {
        let p = out.pointer
        parallelChunks(x.count) { r in for i in r { p[i] = f.apply(p[i]) } }
        return out
    }
    let out = Tensor(uninitializedShape: x.shape)
    if out.isShapeOnly || x.isShapeOnly { return out }
    let src = x.pointer, dst = out.pointer
    parallelChunks(x.count) { r in
        for i in r { dst[i] = f.apply(src[i]) }
    }
    return out
}

/// out[i] = f(a[i], b[i]) for same-shape tensors.
@inline(__always)
func zipKernel<F: BinaryElementFunction>(_ f: F.Type, _ a: Tensor, _ b: Tensor) -> Tensor {
    let out = Tensor(uninitializedShape: a.shape)
    if out.isShapeOnly || a.isShapeOnly || b.isShapeOnly { return out }
    // an operand held as codes only (a kernel in a Dojo format wrote it so: batch norm's output before a residual add)
    // decoded a block at a time in cache, not brought back whole
    let qa = a.storage.packedValues, qb = b.storage.packedValues
    if qa != nil || qb != nil {
        let pa = qa == nil ? SendablePointer(a.pointer) : nil, pb = qb == nil ? SendablePointer(b.pointer) : nil
        let dst = SendablePointer(out.pointer)
        parallelChunks(a.count) { r in
            let block = 4096
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * block) { scratch in
                let sa = scratch.baseAddress!, sb = sa + block
                var lo = r.lowerBound
                while lo < r.upperBound {
                    let n = min(block, r.upperBound - lo)
                    let xa = qa.map { $0.read(lo, count: n, into: sa); return UnsafePointer(sa) } ?? UnsafePointer(pa!.p + lo)
                    let xb = qb.map { $0.read(lo, count: n, into: sb); return UnsafePointer(sb) } ?? UnsafePointer(pb!.p + lo)
                    let o = dst.p + lo
                    for j in 0..<n { o[j] = F.apply(xa[j], xb[j]) }
                    lo += n
                }
            }
        }
        return out
    }
    let pa = a.pointer, pb = b.pointer, dst = out.pointer
    parallelChunks(a.count) { r in
        for i in r { dst[i] = F.apply(pa[i], pb[i]) }
    }
    return out
}

/// out[i] = f(a[i], b[i]) for a closure f (rare ops).
func zipKernel(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    let out = Tensor(uninitializedShape: a.shape)
    if out.isShapeOnly || a.isShapeOnly || b.isShapeOnly { return out }
    for i in 0..<a.count { out.pointer[i] = f(a.pointer[i], b.pointer[i]) }
    return out
}

/// out = f(a, b) with NumPy broadcasting; rows of the output split over the compute threads.
@inline(__always)
func broadcastKernel<F: BinaryElementFunction>(_ f: F.Type, _ a: Tensor, _ b: Tensor, _ outShape: [Int]) -> Tensor {
    if a.shape == b.shape { return zipKernel(f, a, b) }
    let out = Tensor(uninitializedShape: outShape)
    if out.isShapeOnly || a.isShapeOnly || b.isShapeOnly { return out }
    let pa = a.pointer, pb = b.pointer, po = out.pointer
    if b.count == 1 && a.shape == outShape {
        let s = pb[0]
        parallelChunks(out.count) { r in for i in r { po[i] = F.apply(pa[i], s) } }
        return out
    }
    let last = max(outShape.last ?? 1, 1), rows = out.count / last
    let aStrides = broadcastStrides(a.shape, to: outShape), bStrides = broadcastStrides(b.shape, to: outShape)
    parallelChunks(rows, minimumPerThread: max(1, (1 << 15) / last)) { rowRange in
        forEachBroadcastRow(outShape, aStrides, bStrides, rows: rowRange) { o, ia, ib, len, sa, sb in
            if sa == 1 && sb == 1 {
                for j in 0..<len { po[o + j] = F.apply(pa[ia + j], pb[ib + j]) }
            } else if sa == 1 {
                let bv = pb[ib]
                for j in 0..<len { po[o + j] = F.apply(pa[ia + j], bv) }
            } else if sb == 1 {
                let av = pa[ia]
                for j in 0..<len { po[o + j] = F.apply(av, pb[ib + j]) }
            } else {
                let v = F.apply(pa[ia], pb[ib])
                for j in 0..<len { po[o + j] = v }
            }
        }
    }
    return out
}

/// `t` broadcast to `shape` (a copy, not recorded).
func expand(_ t: Tensor, to shape: [Int]) -> Tensor {
    if t.shape == shape { return t }
    let out = Tensor(uninitializedShape: shape)
    if out.isShapeOnly || t.isShapeOnly { return out }
    let src = t.pointer, dst = out.pointer
    forEachBroadcastRow(shape, broadcastStrides(t.shape, to: shape), [Int](repeating: 0, count: shape.count)) { o, a, _, len, sa, _ in
        if sa == 0 { let v = src[a]; for j in 0..<len { dst[o + j] = v } } else { (dst + o).update(from: src + a, count: len) }
    }
    return out
}

// MARK: - writing over an input kept packed

extension Tensor {
    /// The output of an op that reads each of this tensor's values before it writes the output at the same place
    /// (an elementwise op, batch norm's normalising pass), over this tensor's own FP32 buffer, when the recording tape
    /// keeps this tensor packed after the op anyway: it is exact in a Dojo format (`Storage.packFormat`) and a backward
    /// reads it (`savedByThisOp`: this op's own, as its kind's `saved` values say; or an earlier op's,
    /// `Storage.heldForBackward`). The values are packed first (the pass the tape would run after the op) and stay
    /// readable from their codes. Nil otherwise: in FP32, outside a tape, when no backward reads the tensor (it is
    /// freed, not packed, once read), or when the values cannot be packed. (The op then reads its input through the
    /// output's pointer.)
    func outputOverPackedInput(savedByThisOp: Bool) -> Tensor? {
        guard !isShapeOnly, Tape.current?.packsSavedValues == true, storage.packFormat != nil,
              savedByThisOp && requiresGrad || storage.heldForBackward,
              let reused = storage.packAwayYieldingBuffer() else { return nil }
        return Tensor(shape: shape, storage: reused)
    }
}

// MARK: - binary ops with broadcasting

extension Tensor {
    @inline(__always)
    /// An elementwise op of two operands. Backward is given the operands' shapes and the operands its kind saves
    /// (`OpDefinition.saved`, both or neither): an add does not keep its operands alive for backward.
    private func binary<F: BinaryElementFunction>(_ other: Tensor, _ kind: OpKind, _ f: F.Type,
                        backward: @escaping (_ g: Tensor, _ shapes: (a: [Int], b: [Int]), _ operands: (a: Tensor, b: Tensor)?, _ needs: [Bool]) -> [Tensor?]) -> Tensor {
        let outShape = kind.engineShape([shape, other.shape])
        let out = broadcastKernel(f, self, other, outShape)
        let kept = kind.definition.saved.inputs.isEmpty ? nil : (a: self, b: other)
        Tape.note(kind, inputs: [self, other], output: out) { [shapes = (a: shape, b: other.shape), kept] g, needs in
            backward(g, shapes, kept, needs)
        }
        return out
    }

    public func adding(_ other: Tensor) -> Tensor {
        binary(other, .add, AddElements.self) { g, shapes, _, needs in
            [needs[0] ? g.sumToShape(shapes.a) : nil, needs[1] ? g.sumToShape(shapes.b) : nil]
        }
    }

    public func subtracting(_ other: Tensor) -> Tensor {
        binary(other, .sub, SubtractElements.self) { g, shapes, _, needs in
            [needs[0] ? g.sumToShape(shapes.a) : nil, needs[1] ? mapKernel(g.sumToShape(shapes.b), Negate()) : nil]
        }
    }

    public func multiplying(_ other: Tensor) -> Tensor {
        binary(other, .mul, MultiplyElements.self) { g, shapes, operands, needs in
            let (a, b) = operands!, outShape = g.shape
            return [needs[0] ? broadcastKernel(MultiplyElements.self, g, b, outShape).sumToShape(shapes.a) : nil,
                    needs[1] ? broadcastKernel(MultiplyElements.self, g, a, outShape).sumToShape(shapes.b) : nil]
        }
    }

    public func dividing(_ other: Tensor) -> Tensor {
        binary(other, .div, DivideElements.self) { g, shapes, operands, needs in
            let (a, b) = operands!, outShape = g.shape
            var ga: Tensor? = nil, gb: Tensor? = nil
            // g / b, read by both gradients: d(a/b)/da = 1/b, d(a/b)/db = −a/b² = (g/b)·(−a/b)
            let gOverB = broadcastKernel(DivideElements.self, g, b, outShape)
            if needs[0] { ga = gOverB.sumToShape(shapes.a) }
            if needs[1] {
                let t = broadcastKernel(NegatedQuotient.self, a, b, outShape)
                gb = zipKernel(MultiplyElements.self, gOverB, t).sumToShape(shapes.b)
            }
            return [ga, gb]
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.adding(b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.subtracting(b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.multiplying(b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { a.dividing(b) }
}

// MARK: - unary ops

extension Tensor {
    /// An elementwise op whose derivative is computed from its input and output.
    @inline(__always)
    private func unary<F: UnaryElementFunction>(_ kind: OpKind, attributes: OpAttributes = OpAttributes(), _ f: F,
                                                output: Tensor? = nil) -> Tensor {
        let out = output ?? mapKernel(self, f, overInput: true)
        // backward keeps only the values the derivative reads (as the kind's `saved` values say), so the others are
        // freed once the forward ops that read them are done
        let keptX = F.derivativeReads.input ? self : nil, keptY = F.derivativeReads.output ? out : nil
        Tape.note(kind, inputs: [self], output: out, attributes: attributes) { [keptX, keptY, rounding = gradientRounding, serial] g, _ in
            let r = Tape.gradientBuffer(reusing: g, shape: g.shape)
            if r.isShapeOnly || g.isShapeOnly || keptX?.isShapeOnly == true || keptY?.isShapeOnly == true { return [r] }
            // a value the derivative does not read is not brought back from its codes (the gradient stands in for it);
            // one it reads that is held packed is decoded block by block as the loop goes, not brought back whole
            let pg = g.pointer, pr = r.pointer
            let xs = keptX?.storage.packedValues, ys = keptY?.storage.packedValues
            let px = xs == nil ? keptX?.pointer ?? pg : pg, py = ys == nil ? keptY?.pointer ?? pg : pg
            // ReLU's output held as codes: where it is positive read from the codes themselves (sign clear, not zero;
            // for BF16 also not NaN), nothing decoded
            let signs = F.self == Rectify.self && ys != nil ? keptY?.storage.codesAndFormat.flatMap { c in
                c.format.packedBytes.map { (codes: SendableRaw(c.codes), bytes: $0) } } : nil
            // x's gradient rounded block by block as it is written, when x's gradient is rounded (a layer's output)
            Tensor.fusingGradientRounding(rounding, of: serial, into: r) { task in
                parallelChunks(g.count) { range in
                    if let signs {
                        // ReLU's derivative (1 or 0) from the codes times the gradient, in CDojoKernels' loop (one pass,
                        // 8 lanes with AVX2), a block at a time, each rounded while it is in cache
                        var tally = RoundingTask.Tally()
                        var lo = range.lowerBound
                        while lo < range.upperBound {
                            let n = min(4096, range.upperBound - lo), bg = pg + lo, br = pr + lo
                            if signs.bytes == 2 {   // codes 1...0x7F80: positive, up to +∞ (code − 1 wraps in 16 bits)
                                dojo_relu_backward_codes16(signs.codes.p.assumingMemoryBound(to: UInt16.self) + lo, bg, br, n)
                            } else {                // codes 1...0x7F: positive
                                dojo_relu_backward_codes8(signs.codes.p.assumingMemoryBound(to: UInt8.self) + lo, bg, br, n)
                            }
                            task?.round(br, count: n, offset: lo, into: &tally)
                            lo += n
                        }
                        task?.merge(tally)
                        return
                    }
                    guard task != nil || xs != nil || ys != nil else {
                        for i in range { pr[i] = pg[i] * f.derivative(px[i], py[i]) }
                        return
                    }
                    let block = 4096
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * block) { scratch in
                        let sx = scratch.baseAddress!, sy = sx + block
                        var tally = RoundingTask.Tally()
                        var lo = range.lowerBound
                        while lo < range.upperBound {
                            let n = min(block, range.upperBound - lo)
                            var bx = px + lo, by = py + lo
                            if let xs { xs.read(lo, count: n, into: sx); bx = sx }
                            if let ys { ys.read(lo, count: n, into: sy); by = sy }
                            let bg = pg + lo, br = pr + lo
                            for j in 0..<n { br[j] = bg[j] * f.derivative(bx[j], by[j]) }
                            task?.round(br, count: n, offset: lo, into: &tally)
                            lo += n
                        }
                        task?.merge(tally)
                    }
                }
                return task != nil
            }
            return [r]
        }
        return out
    }

    /// An activation through `EltwiseKernel` (a oneDNN eltwise primitive, or the engine's own loop for GELU's tanh form;
    /// the scalar loops under `.reference` and for small tensors). Its derivative is computed from its input or its
    /// output (`EltwiseAlgorithm.derivativeReadsOutput`). Where the loop is the engine's own: `roundOutput`, the output
    /// rounded as the loop writes it (then it carries the format, and the caller records the rounding without running
    /// it); and in backward, the input's gradient rounded as it is written when that gradient is rounded (a layer's
    /// output), and an input kept packed decoded a block at a time.
    private func activation(_ kind: OpKind, _ algorithm: EltwiseAlgorithm, roundOutput: TensorRounding? = nil) -> Tensor {
        let coded = geluIntoCodes(algorithm, roundOutput: roundOutput)
        let reused = coded == nil ? outputOverPackedInput(savedByThisOp: !algorithm.derivativeReadsOutput) : nil
        let out = coded ?? reused ?? Tensor(uninitializedShape: shape)
        let backend = Engine.backend
        if coded == nil && !out.isShapeOnly && !isShapeOnly {
            let task = backend == .oneDNN ? roundOutput?.begin() : nil
            // in training, the codes written too while the values are in cache (the layer reading the output keeps it
            // for its backward; its product reads BF16 codes as they are)
            let codes = CodesWriter(task, count: count)
            if EltwiseKernel.forward(algorithm, count: count, x: reused != nil ? out.pointer : pointer, y: out.pointer,
                                     backend: backend, round: task, codes: codes), let task {
                out.finishRounding(task, of: roundOutput)
            }
            codes?.finish(out)
        }
        // backward keeps the one value its derivative reads (as the kind's `saved` values say)
        let kept = algorithm.derivativeReadsOutput ? out : self
        Tape.note(kind, inputs: [self], output: out) { [kept, rounding = gradientRounding, serial] g, _ in
            let r = Tensor(uninitializedShape: g.shape)
            if r.isShapeOnly || g.isShapeOnly || kept.isShapeOnly { return [r] }
            let ownLoop = backend == .oneDNN && algorithm == .geluTanh && g.count >= EltwiseKernel.smallest
            let packed = ownLoop ? kept.storage.packedValues : nil
            let pk = packed == nil ? kept.pointer : g.pointer
            Tensor.fusingGradientRounding(ownLoop ? rounding : nil, of: serial, into: r, codes: true) { task, codes in
                EltwiseKernel.backward(algorithm, count: g.count, x: pk, y: pk, dy: g.pointer, dx: r.pointer, backend: backend,
                                       xPacked: packed, round: task, codes: codes)
            }
            return [r]
        }
        return out
    }

    /// In training in a Dojo format on BF16 kernels, GELU's tanh form (the engine's own loop) with its output rounded:
    /// the output written as codes only (`EltwiseKernel.geluTanhIntoCodes`), nothing reading its FP32 values in
    /// training (the next layer's products read BF16 codes; GELU's backward reads its input); the input read as it is
    /// held (FP32, or decoded from its codes block by block). Nil (the FP32 loop runs) otherwise — without BF16 kernels
    /// the next product would decode the codes back to FP32 — or when a value cannot be coded. A ViT-Tiny MLP's GELU
    /// (2.46 M values, bf16): 1.14–1.20 ms forward against 1.31–1.34 writing FP32 values and codes.
    private func geluIntoCodes(_ algorithm: EltwiseAlgorithm, roundOutput: TensorRounding?) -> Tensor? {
        guard algorithm == .geluTanh, Engine.backend == .oneDNN, BF16Gemm.isEnabled, !isShapeOnly, count >= EltwiseKernel.smallest,
              Tape.current?.packsSavedValues == true, let rounding = roundOutput, let task = rounding.begin(),
              let codes = CodesWriter(task, count: count) else { return nil }
        let packed = storage.packedValues
        EltwiseKernel.geluTanhIntoCodes(count: count, x: packed == nil ? UnsafePointer(pointer) : nil, xPacked: packed,
                                        round: task, codes: codes)
        guard let s = codes.codesOnlyStorage(count: count) else { return nil }
        let y = Tensor(shape: shape, storage: s)
        y.finishRounding(task, of: rounding)
        return y
    }

    public func relu() -> Tensor { unary(.relu, Rectify(), output: rectifiedIntoCodes()) }

    /// In training, with values in a Dojo format (a rounding made them exact in it: `Storage.packFormat`): ReLU's
    /// output written as codes only, 1 or 2 bytes a value, never as FP32. Its values are the input's or zero, so they
    /// are exact in the same format and bias. The tape keeps the output for ReLU's backward packed anyway; the next
    /// op reads the codes (max pooling, a BF16 convolution) or decodes them when it needs FP32. Nil (the FP32 loop
    /// runs) otherwise, or when a value cannot be coded (NaN).
    private func rectifiedIntoCodes() -> Tensor? {
        guard Engine.backend == .oneDNN, !isShapeOnly, Tape.current?.packsSavedValues == true, count >= Storage.packMinimum,
              let nf = storage.packFormat, let bytes = nf.packedBytes else { return nil }
        let codes = UnsafeMutableRawPointer.allocate(byteCount: count * bytes, alignment: 64)
        if let (src, format) = storage.codesAndFormat, format == nf {
            // the input's own codes (batch norm wrote it as codes): a negative code becomes +0's, the rest stay (NaN
            // included, as max(NaN, 0) is NaN), by arithmetic on the codes, nothing decoded
            let from = SendableRaw(src), to = SendablePointer(codes.assumingMemoryBound(to: UInt8.self))
            parallelChunks(count) { r in
                if bytes == 2 {
                    let c = from.p.assumingMemoryBound(to: UInt16.self), d = UnsafeMutableRawPointer(to.p).assumingMemoryBound(to: UInt16.self)
                    for j in r {
                        let v = c[j], negative = v &>> 15, nan = (0x7F80 &- (v & 0x7FFF)) &>> 15
                        d[j] = v & ((negative & (nan ^ 1)) &- 1)
                    }
                } else {
                    let c = from.p.assumingMemoryBound(to: UInt8.self)
                    for j in r { let v = c[j]; to.p[j] = v & ((v &>> 7) &- 1) }
                }
            }
            let y = Tensor(shape: shape, storage: Storage(codes: codes, count: count, format: nf))
            y.bf16Exact = bf16Exact
            return y
        }
        let packed = storage.packedValues, px = packed == nil ? SendablePointer(pointer) : nil
        let out = SendablePointer(codes.assumingMemoryBound(to: UInt8.self)), failed = Atomic<Bool>(false)
        parallelChunks(count) { range in
            let block = 4096
            withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { scratch in
                let s = scratch.baseAddress!, f = Rectify()
                var lo = range.lowerBound
                while lo < range.upperBound {
                    let n = min(block, range.upperBound - lo)
                    if let packed { packed.read(lo, count: n, into: s) } else { s.update(from: px!.p + lo, count: n) }
                    for j in 0..<n { s[j] = f.apply(s[j]) }
                    if !nf.packExactly(s, count: n, into: out.p + lo * bytes) { failed.store(true, ordering: .relaxed) }
                    lo += n
                }
            }
        }
        if failed.load(ordering: .relaxed) { codes.deallocate(); return nil }
        let y = Tensor(shape: shape, storage: Storage(codes: codes, count: count, format: nf))
        y.bf16Exact = bf16Exact
        return y
    }

    /// GELU, tanh approximation (as in BERT/ViT and PyTorch's approximate="tanh").
    /// `roundOutput`: the output rounded as the loop writes it (see `activation`).
    public func gelu(roundOutput: TensorRounding? = nil) -> Tensor { activation(.gelu, .geluTanh, roundOutput: roundOutput) }
    /// GELU as defined, 0.5·x·(1 + erf(x/√2)) (`gelu()` is its tanh approximation); recorded as `gelu` too.
    public func geluExact() -> Tensor { activation(.gelu, .geluErf) }
    public func sigmoid() -> Tensor { activation(.sigmoid, .logistic) }
    public func tanh() -> Tensor { activation(.tanh, .tanh) }
    public func exp() -> Tensor { activation(.exp, .exp) }
    public func log() -> Tensor { unary(.log, Logarithm()) }
    public func sqrt() -> Tensor { unary(.sqrt, SquareRoot()) }
    public func negated() -> Tensor { unary(.neg, Negate()) }
    public static prefix func - (x: Tensor) -> Tensor { x.negated() }

    /// x · s for a constant s.
    public func scaled(by s: Float) -> Tensor { unary(.scale, attributes: OpAttributes(scalar: Double(s)), ScaleBy(s: s)) }

    /// x + s for a constant s.
    public func shifted(by s: Float) -> Tensor { unary(.add, attributes: OpAttributes(scalar: Double(s)), ShiftBy(s: s)) }
}
