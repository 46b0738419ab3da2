import DojoGraph

extension Tensor {
    /// The same values under another shape (shares storage, and the number format they are exact in; one dimension
    /// may be -1).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            s[i] = count / known
        }
        precondition(elementCount(s) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        if s == shape { return self }
        let out = Tensor(shape: s, storage: storage)
        out.format = format
        // the same values: their gradient is rounded as this tensor's is, and a gradient a kernel rounded for the view
        // (`fusingGradientRounding`) is this tensor's, rounded
        out.gradientRounding = gradientRounding
        Tape.note(.reshape, inputs: [self], output: out, attributes: OpAttributes(shape: s)) { [inShape = shape, serial, view = out.serial] g, _ in
            let r = g.reshaped(inShape)
            if g.roundedAsGradientOf == view {
                r.roundedAsGradientOf = serial
                r.format = g.format
            }
            return [r]
        }
        return out
    }

    /// Flattens every dimension from `start` on into one.
    public func flattened(from start: Int = 1) -> Tensor {
        reshaped(Array(shape[..<start]) + [shape[start...].reduce(1, *)])
    }

    /// Reorders dimensions: output dimension i is input dimension `order[i]` (a copy).
    public func permuted(_ order: [Int]) -> Tensor {
        let outShape = OpKind.transpose.engineShape([shape], OpAttributes(axes: order))
        let out = Tensor(uninitializedShape: outShape)
        let skip = out.isShapeOnly || isShapeOnly
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let strides = order.map { inStrides[$0] }
        let zero = [Int](repeating: 0, count: rank)
        let src = pointer, dst = out.pointer
        if !skip, let last = outShape.last, last > 0 {
            // rows of the output split over the compute threads
            parallelChunks(out.count / last, minimumPerThread: max(1, (1 << 14) / last)) { rows in
                forEachBroadcastRow(outShape, strides, zero, rows: rows) { o, a, _, len, sa, _ in
                    if sa == 1 { (dst + o).update(from: src + a, count: len) } else { for j in 0..<len { dst[o + j] = src[a + j * sa] } }
                }
            }
        }
        Tape.note(.transpose, inputs: [self], output: out, attributes: OpAttributes(axes: order)) { g, _ in
            var inverse = [Int](repeating: 0, count: order.count)
            for (i, o) in order.enumerated() { inverse[o] = i }
            return [g.permuted(inverse)]
        }
        return out
    }

    /// Swaps the last two dimensions.
    public func transposedLastTwo() -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(rank - 1, rank - 2)
        return permuted(order)
    }

    /// Elements `range` along `axis` (a copy).
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[axis], "slice \(range) of axis \(axis) with size \(shape[axis])")
        var outShape = shape
        outShape[axis] = range.count
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        let out = Tensor(uninitializedShape: outShape)
        if !out.isShapeOnly && !isShapeOnly {
            for o in 0..<outer {
                (out.pointer + o * range.count * inner).update(from: pointer + (o * shape[axis] + range.lowerBound) * inner, count: range.count * inner)
            }
        }
        Tape.note(.slice, inputs: [self], output: out, attributes: OpAttributes(axes: [axis], shape: outShape)) { [inShape = shape] g, _ in
            // into the gradient the other slices of this tensor filled, when the tape hands it over (added: slices may
            // overlap)
            if let target = Tape.fillTarget, target.shape == inShape, !target.isShapeOnly, !g.isShapeOnly {
                for o in 0..<outer {
                    let dst = target.pointer + (o * inShape[axis] + range.lowerBound) * inner, src = g.pointer + o * range.count * inner
                    for j in 0..<(range.count * inner) { dst[j] += src[j] }
                }
                return [target]
            }
            let r = Tensor(zeros: inShape)
            if r.isShapeOnly || g.isShapeOnly { return [r] }
            for o in 0..<outer {
                (r.pointer + (o * inShape[axis] + range.lowerBound) * inner).update(from: g.pointer + o * range.count * inner, count: range.count * inner)
            }
            return [r]
        }
        return out
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concatenate(_ parts: [Tensor], axis: Int) -> Tensor {
        let outShape = OpKind.concat.engineShape(parts.map(\.shape), OpAttributes(axes: [axis]))
        let outer = outShape[..<axis].reduce(1, *), inner = outShape[(axis + 1)...].reduce(1, *)
        let out = Tensor(uninitializedShape: outShape)
        var offset = 0
        for p in parts where !out.isShapeOnly && !p.isShapeOnly {
            let n = p.shape[axis] * inner
            for o in 0..<outer {
                (out.pointer + o * outShape[axis] * inner + offset).update(from: p.pointer + o * n, count: n)
            }
            offset += n
        }
        Tape.note(.concat, inputs: parts, output: out, attributes: OpAttributes(axes: [axis])) { g, needs in
            var start = 0
            return parts.enumerated().map { i, p in
                defer { start += p.shape[axis] }
                guard needs[i] else { return nil }
                return Tape.$current.withValue(nil) { g.slice(axis: axis, start..<(start + p.shape[axis])) }
            }
        }
        return out
    }
}
