import DojoGraph
import Foundation

// MARK: - loops

/// out[i] = f(x[i]) over the whole buffer, on several threads for large tensors.
@inline(__always)
func mapKernel(_ x: Tensor, _ f: @escaping @Sendable (Float) -> Float) -> Tensor {
    let out = Tensor(uninitializedShape: x.shape)
    if out.isShapeOnly || x.isShapeOnly { return out }
    let src = SendablePointer(x.pointer), dst = SendablePointer(out.pointer)
    parallelChunks(x.count) { r in
        for i in r { dst.p[i] = f(src.p[i]) }
    }
    return out
}

/// out[i] = f(a[i], b[i]) for same-shape tensors.
@inline(__always)
func zipKernel(_ a: Tensor, _ b: Tensor, _ f: @escaping @Sendable (Float, Float) -> Float) -> Tensor {
    let out = Tensor(uninitializedShape: a.shape)
    if out.isShapeOnly || a.isShapeOnly || b.isShapeOnly { return out }
    let pa = SendablePointer(a.pointer), pb = SendablePointer(b.pointer), dst = SendablePointer(out.pointer)
    parallelChunks(a.count) { r in
        for i in r { dst.p[i] = f(pa.p[i], pb.p[i]) }
    }
    return out
}

/// out = f(a, b) with NumPy broadcasting.
@inline(__always)
func broadcastKernel(_ a: Tensor, _ b: Tensor, _ outShape: [Int], _ f: @escaping @Sendable (Float, Float) -> Float) -> Tensor {
    if a.shape == b.shape { return zipKernel(a, b, f) }
    let out = Tensor(uninitializedShape: outShape)
    if out.isShapeOnly || a.isShapeOnly || b.isShapeOnly { return out }
    let pa = a.pointer, pb = b.pointer, po = out.pointer
    if b.count == 1 && a.shape == outShape {
        let s = pb[0]
        return mapKernel(a) { f($0, s) }
    }
    forEachBroadcastRow(outShape, broadcastStrides(a.shape, to: outShape), broadcastStrides(b.shape, to: outShape)) { o, ia, ib, len, sa, sb in
        if sa == 1 && sb == 1 {
            for j in 0..<len { po[o + j] = f(pa[ia + j], pb[ib + j]) }
        } else if sa == 1 {
            let bv = pb[ib]
            for j in 0..<len { po[o + j] = f(pa[ia + j], bv) }
        } else if sb == 1 {
            let av = pa[ia]
            for j in 0..<len { po[o + j] = f(av, pb[ib + j]) }
        } else {
            let v = f(pa[ia], pb[ib])
            for j in 0..<len { po[o + j] = v }
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

// MARK: - binary ops with broadcasting

extension Tensor {
    @inline(__always)
    private func binary(_ other: Tensor, _ kind: OpKind, _ f: @escaping @Sendable (Float, Float) -> Float,
                        backward: @escaping (_ g: Tensor, _ a: Tensor, _ b: Tensor, _ out: Tensor, _ needs: [Bool]) -> [Tensor?]) -> Tensor {
        guard let outShape = broadcastShape(shape, other.shape) else {
            preconditionFailure("\(kind.rawValue): shapes \(shape) and \(other.shape) do not broadcast")
        }
        let out = broadcastKernel(self, other, outShape, f)
        Tape.note(kind, inputs: [self, other], output: out) { [a = self, b = other, out] g, needs in
            backward(g, a, b, out, needs)
        }
        return out
    }

    public func adding(_ other: Tensor) -> Tensor {
        binary(other, .add, { $0 + $1 }) { g, a, b, _, needs in
            [needs[0] ? g.sumToShape(a.shape) : nil, needs[1] ? g.sumToShape(b.shape) : nil]
        }
    }

    public func subtracting(_ other: Tensor) -> Tensor {
        binary(other, .sub, { $0 - $1 }) { g, a, b, _, needs in
            [needs[0] ? g.sumToShape(a.shape) : nil, needs[1] ? mapKernel(g.sumToShape(b.shape)) { -$0 } : nil]
        }
    }

    public func multiplying(_ other: Tensor) -> Tensor {
        binary(other, .mul, { $0 * $1 }) { g, a, b, _, needs in
            let outShape = g.shape
            return [needs[0] ? broadcastKernel(g, b, outShape, { $0 * $1 }).sumToShape(a.shape) : nil,
                    needs[1] ? broadcastKernel(g, a, outShape, { $0 * $1 }).sumToShape(b.shape) : nil]
        }
    }

    public func dividing(_ other: Tensor) -> Tensor {
        binary(other, .div, { $0 / $1 }) { g, a, b, out, needs in
            let outShape = g.shape
            var ga: Tensor? = nil, gb: Tensor? = nil
            if needs[0] { ga = broadcastKernel(g, b, outShape, { $0 / $1 }).sumToShape(a.shape) }
            if needs[1] {
                // d(a/b)/db = -out / b
                let t = broadcastKernel(zipKernel(g, out, { $0 * $1 }), b, outShape, { -$0 / $1 })
                gb = t.sumToShape(b.shape)
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
    private func unary(_ kind: OpKind, attributes: OpAttributes = OpAttributes(), _ f: @escaping @Sendable (Float) -> Float,
                       derivative: @escaping @Sendable (_ x: Float, _ y: Float) -> Float) -> Tensor {
        let out = mapKernel(self, f)
        Tape.note(kind, inputs: [self], output: out, attributes: attributes) { [x = self, out] g, _ in
            let r = Tensor(uninitializedShape: g.shape)
            if r.isShapeOnly || g.isShapeOnly || x.isShapeOnly { return [r] }
            let pg = SendablePointer(g.pointer), px = SendablePointer(x.pointer), py = SendablePointer(out.pointer)
            let pr = SendablePointer(r.pointer)
            parallelChunks(g.count) { range in
                for i in range { pr.p[i] = pg.p[i] * derivative(px.p[i], py.p[i]) }
            }
            return [r]
        }
        return out
    }

    /// An activation with a oneDNN eltwise primitive (`EltwiseKernel`; the scalar loops under `.reference`), split
    /// over the compute threads by oneDNN itself. Its derivative is computed from its input.
    private func activation(_ kind: OpKind, _ algorithm: EltwiseAlgorithm) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let backend = Engine.backend
        if !out.isShapeOnly && !isShapeOnly {
            if backend == .reference {
                let src = SendablePointer(pointer), dst = SendablePointer(out.pointer)
                parallelChunks(count) { r in for i in r { dst.p[i] = algorithm.value(src.p[i]) } }
            } else {
                EltwiseKernel.forward(algorithm, count: count, x: pointer, y: out.pointer)
            }
        }
        Tape.note(kind, inputs: [self], output: out) { [x = self, out] g, _ in
            let r = Tensor(uninitializedShape: g.shape)
            if r.isShapeOnly || g.isShapeOnly || x.isShapeOnly { return [r] }
            if backend == .reference {
                let pg = SendablePointer(g.pointer), px = SendablePointer(x.pointer), py = SendablePointer(out.pointer)
                let pr = SendablePointer(r.pointer)
                parallelChunks(g.count) { range in for i in range { pr.p[i] = pg.p[i] * algorithm.derivative(px.p[i], py.p[i]) } }
            } else {
                EltwiseKernel.backward(algorithm, count: g.count, x: x.pointer, y: out.pointer, dy: g.pointer, dx: r.pointer)
            }
            return [r]
        }
        return out
    }

    public func relu() -> Tensor { unary(.relu, { max($0, 0) }, derivative: { x, _ in x > 0 ? 1 : 0 }) }

    /// GELU, tanh approximation (as in BERT/ViT and PyTorch's approximate="tanh").
    public func gelu() -> Tensor { activation(.gelu, .geluTanh) }
    public func sigmoid() -> Tensor { activation(.sigmoid, .logistic) }
    public func tanh() -> Tensor { activation(.tanh, .tanh) }
    public func exp() -> Tensor { activation(.exp, .exp) }
    public func log() -> Tensor { unary(.log, { Foundation.log($0) }, derivative: { x, _ in 1 / x }) }
    public func sqrt() -> Tensor { unary(.sqrt, { $0.squareRoot() }, derivative: { _, y in 0.5 / y }) }
    public func negated() -> Tensor { unary(.neg, { -$0 }, derivative: { _, _ in -1 }) }
    public static prefix func - (x: Tensor) -> Tensor { x.negated() }

    /// x · s for a constant s.
    public func scaled(by s: Float) -> Tensor {
        unary(.scale, attributes: OpAttributes(scalar: Double(s)), { $0 * s }, derivative: { _, _ in s })
    }

    /// x + s for a constant s.
    public func shifted(by s: Float) -> Tensor {
        unary(.add, attributes: OpAttributes(scalar: Double(s)), { $0 + s }, derivative: { _, _ in 1 })
    }
}
