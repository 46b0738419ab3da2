import DojoGraph

extension Tensor {
    /// The tensor with every value rounded by `round` (e.g. to a Dojo number format), as Dojo stores it.
    /// Backward is straight-through, the gradient itself rounded by `roundGradient` when one is given (Dojo keeps
    /// gradients in a narrow format too).
    public func rounded(to dtype: DType, _ round: (UnsafeMutableBufferPointer<Float>) -> Void,
                        gradient roundGradient: ((UnsafeMutableBufferPointer<Float>) -> Void)? = nil) -> Tensor {
        let out = detachedCopy()
        round(out.storage.buffer)
        Tape.note(.quantize, inputs: [self], output: out, attributes: OpAttributes(dtype: dtype)) { g, _ in
            guard let roundGradient else { return [g] }
            let r = g.detachedCopy()
            roundGradient(r.storage.buffer)
            return [r]
        }
        return out
    }

    /// The largest magnitude in the tensor (NaN if any value is NaN).
    public var maxMagnitude: Float { Tensor.maxMagnitude(of: UnsafeBufferPointer(storage.buffer)) }

    /// The largest magnitude in a buffer (NaN if any value is NaN).
    public static func maxMagnitude(of b: UnsafeBufferPointer<Float>) -> Float {
        var m: Float = 0
        for v in b { let a = abs(v); if a.isNaN { return .nan }; if a > m { m = a } }
        return m
    }
}
