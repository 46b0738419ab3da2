import DojoGraph

extension Tensor {
    /// A rounding pass: rounds `source`'s values (nil: the destination's own) into `destination`, in one pass.
    public typealias RoundingPass = (_ source: UnsafePointer<Float>?, _ destination: UnsafeMutableBufferPointer<Float>) -> Void

    /// The tensor with every value rounded by `round` (e.g. to a Dojo number format), as Dojo stores it.
    /// Backward is straight-through, the gradient itself rounded by `roundGradient` when one is given (Dojo keeps
    /// gradients in a narrow format too), into a new tensor in the same pass that reads it.
    /// - inPlace: round this tensor's own storage and return a view of it (no copy, no second buffer), for a value
    ///   nothing else reads unrounded — a layer's fresh output, which backward then uses in the format, as Dojo
    ///   stores it.
    public func rounded(to dtype: DType, inPlace: Bool = false, _ round: RoundingPass, gradient roundGradient: RoundingPass? = nil) -> Tensor {
        let out = inPlace ? Tensor(shape: shape, storage: storage) : Tensor(uninitializedShape: shape)
        if !out.isShapeOnly && !isShapeOnly { round(inPlace ? nil : UnsafePointer(pointer), out.storage.buffer) }
        out.format = dtype
        Tape.note(.quantize, inputs: [self], output: out, attributes: OpAttributes(dtype: dtype)) { g, _ in
            guard let roundGradient, !g.isShapeOnly else { return [g] }
            let r = Tensor(uninitializedShape: g.shape)
            roundGradient(UnsafePointer(g.pointer), r.storage.buffer)
            return [r]
        }
        return out
    }

    /// The largest magnitude in the tensor (NaN if any value is NaN).
    public var maxMagnitude: Float { Tensor.maxMagnitude(of: UnsafeBufferPointer(storage.buffer)) }

    /// The largest magnitude in a buffer (NaN if any value is NaN). Vectorised, on the OpenMP pool for large
    /// buffers: the precision policy scans every rounded tensor with it.
    public static func maxMagnitude(of b: UnsafeBufferPointer<Float>) -> Float {
        guard let base = b.baseAddress, b.count > 0 else { return 0 }
        let parts = max(1, min(ComputeThreads.count, b.count / (1 << 16)))
        var partial = [Float](repeating: 0, count: parts)
        partial.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            ompChunks(parts, threads: parts) { range in
                for t in range {
                    let lo = b.count * t / parts, hi = b.count * (t + 1) / parts
                    o[t] = maxMagnitudeSerial(base + lo, hi - lo)
                }
            }
        }
        var m: Float = 0
        for v in partial { if v.isNaN { return .nan }; m = Swift.max(m, v) }
        return m
    }

    private static func maxMagnitudeSerial(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        // eight independent lanes the compiler can keep in one vector register; `poison` stays 0 unless a
        // value is NaN or infinite
        var m = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
        var poison: Float = 0
        var i = 0
        while i + 8 <= n {
            let a0 = abs(p[i]), a1 = abs(p[i + 1]), a2 = abs(p[i + 2]), a3 = abs(p[i + 3])
            let a4 = abs(p[i + 4]), a5 = abs(p[i + 5]), a6 = abs(p[i + 6]), a7 = abs(p[i + 7])
            m.0 = a0 > m.0 ? a0 : m.0; m.1 = a1 > m.1 ? a1 : m.1; m.2 = a2 > m.2 ? a2 : m.2; m.3 = a3 > m.3 ? a3 : m.3
            m.4 = a4 > m.4 ? a4 : m.4; m.5 = a5 > m.5 ? a5 : m.5; m.6 = a6 > m.6 ? a6 : m.6; m.7 = a7 > m.7 ? a7 : m.7
            poison += (a0 - a0) + (a1 - a1) + (a2 - a2) + (a3 - a3) + (a4 - a4) + (a5 - a5) + (a6 - a6) + (a7 - a7)
            i += 8
        }
        var result = Swift.max(Swift.max(Swift.max(m.0, m.1), Swift.max(m.2, m.3)), Swift.max(Swift.max(m.4, m.5), Swift.max(m.6, m.7)))
        var clean = poison == 0
        while i < n {
            let a = abs(p[i])
            if !a.isFinite { clean = false }
            result = Swift.max(result, a)
            i += 1
        }
        if clean { return result }
        // rare: a NaN or an infinity somewhere; look again one value at a time
        var r: Float = 0
        for j in 0..<n { let a = abs(p[j]); if a.isNaN { return .nan }; r = Swift.max(r, a) }
        return r
    }}
