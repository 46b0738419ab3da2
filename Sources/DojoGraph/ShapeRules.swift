/// Shape inference: each op kind's rule for its output shape, from its operands' shapes and its attributes — the one
/// rule the engine's ops compute their outputs with and check their operands by, the tape checks each recorded op
/// against, and an importer can ask before it runs anything (issue 13 §1: shape inference lives in DojoGraph).

/// Why an op's operands do not fit its kind's rule.
public struct ShapeError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The shape two operands broadcast to (NumPy's rule: align the trailing dimensions; a 1 stretches), or nil.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let n = max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let da = i < n - a.count ? 1 : a[i - (n - a.count)]
        let db = i < n - b.count ? 1 : b[i - (n - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
    }
    return out
}

extension OpKind {
    /// How many operands an op of this kind takes (data input first), as the engine records it.
    public var operandCounts: ClosedRange<Int> { definition.operands }

    /// The output shape of one op of this kind, or an error naming what does not fit. `attributes.shape` gives the
    /// result of the kinds whose operands cannot say it (reshape's target, slice's result, broadcast's target, an
    /// embedding looked up by a list of indices), checked against the operands; `attributes.keepDims` keeps a
    /// reduction's axes as 1s.
    public func outputShape(inputs: [[Int]], attributes a: OpAttributes) throws(ShapeError) -> [Int] {
        func fail(_ why: String) -> ShapeError { ShapeError("\(rawValue): \(why)") }
        guard operandCounts.contains(inputs.count) else {
            let c = operandCounts
            throw fail("takes \(c.lowerBound == c.upperBound ? "\(c.lowerBound)" : c.upperBound == Int.max ? "at least \(c.lowerBound)" : "\(c.lowerBound) or \(c.upperBound)") operand\(c.upperBound == 1 ? "" : "s"), got \(inputs.count)")
        }
        if let bad = inputs.first(where: { $0.contains { $0 < 0 } }) { throw fail("negative dimension in \(bad)") }
        let x = inputs[0]
        /// [N, C, H, W] under a window: the output height and width.
        func window(_ h: Int, _ w: Int, kernel k: [Int], stride s: [Int], padding p: [Int]) throws(ShapeError) -> (Int, Int) {
            guard k.count == 2, s.count == 2, p.count == 2, k.allSatisfy({ $0 >= 1 }), s.allSatisfy({ $0 >= 1 }), p.allSatisfy({ $0 >= 0 }) else {
                throw fail("kernel \(k), stride \(s), padding \(p) must be two positive, positive and non-negative values")
            }
            guard h + 2 * p[0] >= k[0], w + 2 * p[1] >= k[1] else {
                throw fail("a \(k[0])×\(k[1]) window does not fit a \(h)×\(w) input with padding \(p)")
            }
            return ((h + 2 * p[0] - k[0]) / s[0] + 1, (w + 2 * p[1] - k[1]) / s[1] + 1)
        }
        switch definition.shape {
        case .matrixProduct:
            let w = inputs[1]
            guard x.count >= 2, w.count >= 2 else { throw fail("needs matrices, got \(x) and \(w)") }
            let tA = a.transposeA ?? false, tB = a.transposeB ?? false
            let m = tA ? x[x.count - 1] : x[x.count - 2], k = tA ? x[x.count - 2] : x[x.count - 1]
            let kb = tB ? w[w.count - 1] : w[w.count - 2], n = tB ? w[w.count - 2] : w[w.count - 1]
            guard k == kb else { throw fail("inner dimensions differ, \(x)\(tA ? "ᵀ" : "") · \(w)\(tB ? "ᵀ" : "")") }
            // the right operand's batch dimensions: the left's, or none that count (one matrix shared by every batch)
            let batchA = Array(x.dropLast(2)), batchB = Array(w.dropLast(2))
            guard batchB.allSatisfy({ $0 == 1 }) || batchB == batchA else {
                throw fail("batch \(batchA) vs \(batchB) (a batched right operand needs the same batch dimensions on the left)")
            }
            return Array(x.dropLast(2)) + [m, n]
        case .convolution:
            let w = inputs[1], g = a.groups ?? 1
            guard x.count == 4, w.count == 4 else { throw fail("input \(x) and weight \(w) must be NCHW / OIHW") }
            guard g >= 1, w[0] % g == 0, w[1] * g == x[1] else {
                throw fail("input \(x) has \(x[1]) channels; weight \(w) with group \(g) needs \(w[1] * g)\(g >= 1 && w[0] % g != 0 ? " and output channels divisible by \(g)" : "")")
            }
            if inputs.count == 3, inputs[2] != [w[0]] { throw fail("bias \(inputs[2]) for \(w[0]) channels") }
            if let k = a.kernel, k != [w[2], w[3]] { throw fail("kernel \(k) differs from the weight's \([w[2], w[3]])") }
            let (oh, ow) = try window(x[2], x[3], kernel: [w[2], w[3]], stride: a.stride ?? [1, 1], padding: a.padding ?? [0, 0])
            return [x[0], w[0], oh, ow]
        case .transposedConvolution:
            // the adjoint of a convolution from the output's shape to the input's: weight [IC, OC/groups, KH, KW];
            // the result is (in − 1)·stride − 2·padding + kernel, plus an output padding below the stride that
            // `shape` (the result's shape) carries
            let w = inputs[1], g = a.groups ?? 1
            guard x.count == 4, w.count == 4 else { throw fail("input \(x) and weight \(w) must be NCHW / IOHW") }
            guard g >= 1, w[0] == x[1], x[1] % g == 0 else {
                throw fail("input \(x) has \(x[1]) channels; weight \(w) with group \(g) needs \(w[0])\(g >= 1 && x[1] % g != 0 ? ", divisible by \(g)" : "")")
            }
            let oc = w[1] * g
            if inputs.count == 3, inputs[2] != [oc] { throw fail("bias \(inputs[2]) for \(oc) channels") }
            if let k = a.kernel, k != [w[2], w[3]] { throw fail("kernel \(k) differs from the weight's \([w[2], w[3]])") }
            let s = a.stride ?? [1, 1], p = a.padding ?? [0, 0]
            guard s.count == 2, p.count == 2, s.allSatisfy({ $0 >= 1 }), p.allSatisfy({ $0 >= 0 }), w[2] >= 1, w[3] >= 1 else {
                throw fail("stride \(s) and padding \(p) must be two positive and two non-negative values")
            }
            let oh = (x[2] - 1) * s[0] - 2 * p[0] + w[2], ow = (x[3] - 1) * s[1] - 2 * p[1] + w[3]
            guard oh >= 1, ow >= 1 else { throw fail("padding \(p) leaves no output of a \(x[2])×\(x[3]) input") }
            guard let out = a.shape else { return [x[0], oc, oh, ow] }
            guard out.count == 4, out[0] == x[0], out[1] == oc, (oh..<(oh + s[0])).contains(out[2]), (ow..<(ow + s[1])).contains(out[3]) else {
                throw fail("result \(out) for \([x[0], oc, oh, ow]) plus an output padding below the stride \(s)")
            }
            return out
        case .window:
            guard x.count == 4 else { throw fail("input \(x) must be NCHW") }
            guard let k = a.kernel else { throw fail("no kernel attribute") }
            let (oh, ow) = try window(x[2], x[3], kernel: k, stride: a.stride ?? k, padding: a.padding ?? [0, 0])
            return [x[0], x[1], oh, ow]
        case .globalPool:
            guard x.count == 4 else { throw fail("input \(x) must be NCHW") }
            return [x[0], x[1]]
        case .channelNormalization:
            guard x.count >= 2 else { throw fail("input \(x) needs a channel dimension") }
            guard inputs[1] == [x[1]], inputs[2] == [x[1]] else { throw fail("scale \(inputs[1]) and shift \(inputs[2]) for \(x[1]) channels") }
            return x
        case .featureNormalization:
            guard let d = x.last else { throw fail("a scalar has nothing to normalise") }
            guard inputs.dropFirst().allSatisfy({ $0 == [d] }) else { throw fail("scale/shift \(Array(inputs.dropFirst())) for a last dimension of \(d)") }
            return x
        case .broadcastBinary:
            if inputs.count == 1 {
                guard a.scalar != nil else { throw fail("takes 2 operands, or 1 and a constant (scalar), got 1 without one") }
                return x
            }
            guard let out = broadcastShape(x, inputs[1]) else { throw fail("shapes \(x) and \(inputs[1]) do not broadcast") }
            return out
        case .sameAsInput:
            return x
        case .reduction:
            let axes = (a.axes ?? Array(0..<x.count)).map { $0 < 0 ? $0 + x.count : $0 }
            guard axes.allSatisfy({ $0 >= 0 && $0 < x.count }), Set(axes).count == axes.count else {
                throw fail("axes \(a.axes ?? []) for rank \(x.count)")
            }
            if a.keepDims ?? false { return x.enumerated().map { axes.contains($0.offset) ? 1 : $0.element } }
            return x.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        case .reshape:
            guard let s = a.shape else { throw fail("no target shape") }
            guard elementCount(s) == elementCount(x), s.allSatisfy({ $0 >= 0 }) else { throw fail("cannot reshape \(x) (\(elementCount(x)) elements) to \(s)") }
            return s
        case .permutation:
            guard let order = a.axes, order.sorted() == Array(0..<x.count) else { throw fail("permutation \(a.axes ?? []) for rank \(x.count)") }
            return order.map { x[$0] }
        case .concatenation:
            guard let axis = a.axes?.first, axis >= 0, axis < x.count else { throw fail("axis \(a.axes ?? []) for rank \(x.count)") }
            var out = x
            for p in inputs.dropFirst() {
                var s = p
                guard s.count == x.count else { throw fail("\(p) does not fit \(x) along axis \(axis)") }
                s[axis] = x[axis]
                guard s == x else { throw fail("\(p) does not fit \(x) along axis \(axis)") }
                out[axis] += p[axis]
            }
            return out
        case .slice:
            guard let axis = a.axes?.first, axis >= 0, axis < x.count, let s = a.shape else { throw fail("axis \(a.axes ?? []) and result \(a.shape ?? []) for \(x)") }
            var expected = x
            expected[axis] = s.count == x.count ? s[axis] : -1
            guard s == expected, s[axis] <= x[axis] else { throw fail("a slice of \(x) along axis \(axis) cannot be \(s)") }
            return s
        case .lookup:
            guard x.count == 2 else { throw fail("table must be [vocabulary, dimension], got \(x)") }
            if inputs.count == 2 { return inputs[1] + [x[1]] }
            guard let s = a.shape, s.count == 2, s[1] == x[1] else { throw fail("rows of \(x) cannot be \(a.shape ?? [])") }
            return s
        case .broadcastTo:
            guard let s = a.shape, broadcastShape(x, s) == s else { throw fail("\(x) does not broadcast to \(a.shape ?? [])") }
            return s
        case .classLoss:
            guard x.count == 2 else { throw fail("logits \(x) must be [batch, classes]") }
            return []
        case .pairLoss:
            guard x == inputs[1] else { throw fail("predictions \(x) and targets \(inputs[1]) differ") }
            return []
        }
    }
}
