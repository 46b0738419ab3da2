import Testing
import DojoTensor

/// Finite-difference check of the tape's gradients: loss = Σ f(inputs) ⊙ r for a fixed random r; each input's
/// analytic gradient must match central differences at a sample of elements.
func checkGradients(_ name: String, inputs: [Tensor], tolerance: Float = 2e-2, step: Float = 1e-2,
                    samples: Int = 12, seed: UInt64 = 7, _ f: ([Tensor]) -> Tensor) {
    var rng = RandomSource(seed: seed)
    for t in inputs { t.requiringGrad() }
    let tape = Tape()
    let y0 = tape.record { f(inputs) }
    let r = Tensor.randomNormal(y0.shape, generator: &rng)
    func loss() -> Double {
        let y = f(inputs)
        var s = 0.0
        for i in 0..<y.count { s += Double(y.pointer[i]) * Double(r.pointer[i]) }
        return s
    }
    let l = tape.record { (y0 * r).sum() }
    let grads = tape.backward(from: l)
    for (k, x) in inputs.enumerated() {
        guard let g = grads[x] else { Issue.record("\(name): no gradient for input \(k)"); continue }
        #expect(g.shape == x.shape, "\(name): gradient shape")
        var maxAbs: Float = 1e-3
        for i in 0..<g.count { maxAbs = max(maxAbs, abs(g.pointer[i])) }
        for _ in 0..<min(samples, x.count) {
            let i = Int(rng.next() % UInt64(x.count))
            let old = x.pointer[i]
            x.pointer[i] = old + step; let up = loss()
            x.pointer[i] = old - step; let down = loss()
            x.pointer[i] = old
            let numeric = Float((up - down) / Double(2 * step))
            let err = abs(numeric - g.pointer[i]) / max(maxAbs, abs(numeric))
            #expect(err < tolerance, "\(name): input \(k) element \(i): analytic \(g.pointer[i]) vs numeric \(numeric)")
        }
    }
}

func random(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
    var rng = RandomSource(seed: seed)
    return Tensor.randomNormal(shape, std: std, generator: &rng)
}

/// Values kept away from a kink (relu at 0) so finite differences stay on one side.
func awayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
    let t = random(shape, seed: seed)
    for i in 0..<t.count where abs(t.pointer[i]) < 0.05 { t.pointer[i] += t.pointer[i] < 0 ? -0.1 : 0.1 }
    return t
}
