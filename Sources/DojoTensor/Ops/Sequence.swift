import DojoGraph
import Foundation

/// Ops of sequence models (language models): a token lookup whose indices are a tensor, and RMS normalisation.
extension Tensor {
    /// Rows of `table` [V, D] picked by `ids` (a tensor of any shape holding whole numbers in 0..<V, as Float32,
    /// exact up to 2²⁴) → ids.shape + [D]. The ids are a tensor rather than an array so that a language model's
    /// input is an ordinary input tensor: under `Engine.shapeOnly` it has no values, and the lookup records its
    /// shapes only. Recorded as `embedding` with inputs [table, ids]; the gradient scatter-adds into the table.
    public static func embedding(_ table: Tensor, ids: Tensor) -> Tensor {
        precondition(table.rank == 2, "embedding table must be [vocabulary, dimension], got \(table.shape)")
        let v = table.shape[0], d = table.shape[1], n = ids.count
        let out = Tensor(uninitializedShape: ids.shape + [d])
        let real = !out.isShapeOnly && !ids.isShapeOnly && !table.isShapeOnly
        if real {
            for i in 0..<n {
                let idx = Int(ids.pointer[i])
                precondition(idx >= 0 && idx < v && Float(idx) == ids.pointer[i], "embedding id \(ids.pointer[i]) outside 0..<\(v)")
                (out.pointer + i * d).update(from: table.pointer + idx * d, count: d)
            }
        }
        Tape.note(.embedding, inputs: [table, ids], output: out) { g, _ in
            let r = Tensor(zeros: table.shape)
            if r.isShapeOnly || g.isShapeOnly || ids.isShapeOnly { return [r, nil] }
            for i in 0..<n {
                let dst = r.pointer + Int(ids.pointer[i]) * d, src = g.pointer + i * d
                for j in 0..<d { dst[j] += src[j] }
            }
            return [r, nil]
        }
        return out
    }

    /// Root-mean-square normalisation over the last dimension with a learned gain (Zhang & Sennrich 2019, used by
    /// Llama): y = x / √(mean(x²) + ε) · γ. Recorded as a `layerNorm` op with inputs [x, γ] (the IR's normalisation
    /// kind; the same per-element cost class, one pass fewer in a real kernel).
    public func rmsNorm(gamma: Tensor, epsilon: Float = 1e-5) -> Tensor {
        let d = shape.last ?? 1, rows = count / max(d, 1)
        precondition(gamma.shape == [d], "rmsNorm: gamma \(gamma.shape) for width \(d)")
        let out = Tensor(uninitializedShape: shape)
        let inv = Tensor(uninitializedShape: [rows])
        let real = !out.isShapeOnly && !isShapeOnly && !gamma.isShapeOnly
        for r in 0..<(real ? rows : 0) {
            let x = pointer + r * d, y = out.pointer + r * d
            var ss: Float = 0
            for j in 0..<d { ss += x[j] * x[j] }
            let s = 1 / (ss / Float(d) + epsilon).squareRoot()
            inv.pointer[r] = s
            for j in 0..<d { y[j] = x[j] * s * gamma.pointer[j] }
        }
        Tape.note(.layerNorm, inputs: [self, gamma], output: out, attributes: OpAttributes(epsilon: Double(epsilon))) { [x = self] g, needs in
            let dx = Tensor(uninitializedShape: g.shape), dg = Tensor(zeros: [d])
            if dx.isShapeOnly || g.isShapeOnly || x.isShapeOnly { return [needs[0] ? dx : nil, needs[1] ? dg : nil] }
            for r in 0..<rows {
                let gy = g.pointer + r * d, xr = x.pointer + r * d, o = dx.pointer + r * d
                let s = inv.pointer[r]
                // dx = s·(γ⊙g) − s³/d · x · Σ(γ⊙g⊙x);  dγ = Σ_rows g ⊙ x · s
                var dot: Float = 0
                for j in 0..<d { dot += gamma.pointer[j] * gy[j] * xr[j]; dg.pointer[j] += gy[j] * xr[j] * s }
                let c = s * s * s * dot / Float(d)
                for j in 0..<d { o[j] = s * gamma.pointer[j] * gy[j] - c * xr[j] }
            }
            return [needs[0] ? dx : nil, needs[1] ? dg : nil]
        }
        return out
    }
}
