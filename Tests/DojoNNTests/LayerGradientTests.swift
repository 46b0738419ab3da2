import DojoNN
import DojoTensor
import Testing

/// Whole layers and blocks differentiated end to end against finite differences (the per-op checks live in
/// DojoTensorTests).
@Suite struct LayerGradientTests {
    func check(_ name: String, _ module: Module, input: [Int], tolerance: Float = 3e-2) {
        var rng = RandomSource(seed: 11)
        let x = Tensor.randomNormal(input, generator: &rng).requiringGrad()
        let r = Tensor.randomNormal(Module.$context.withValue(ForwardContext(training: false)) { module(x) }.shape, generator: &rng)
        func loss() -> Double {
            let y = Module.$context.withValue(ForwardContext(training: false)) { module(x) }
            var s = 0.0
            for i in 0..<y.count { s += Double(y[flat: i]) * Double(r[flat: i]) }
            return s
        }
        let tape = Tape()
        let l = tape.record { Module.$context.withValue(ForwardContext(training: false)) { (module(x) * r).sum() } }
        let grads = tape.backward(from: l)
        let targets = [("input", x)] + module.parameters.prefix(3)
        for (pname, t) in targets {
            guard let g = grads[t] else { Issue.record("\(name): no gradient for \(pname)"); continue }
            var maxAbs: Float = 1e-3
            for i in 0..<g.count { maxAbs = max(maxAbs, abs(g[flat: i])) }
            for k in 0..<6 {
                let i = (k * 7919) % t.count
                let old = t[flat: i]
                t[flat: i] = old + 1e-2; let up = loss()
                t[flat: i] = old - 1e-2; let down = loss()
                t[flat: i] = old
                let numeric = Float((up - down) / 2e-2)
                #expect(abs(numeric - g[flat: i]) / max(maxAbs, abs(numeric)) < tolerance,
                        "\(name) \(pname)[\(i)]: analytic \(g[flat: i]) numeric \(numeric)")
            }
        }
    }

    @Test func blocks() {
        var g = RandomSource(seed: 3)
        let attention = MultiHeadSelfAttention(dimension: 8, heads: 2, generator: &g)
        attention.finalizeNames()
        check("attention", attention, input: [2, 5, 8])
        let block = TransformerBlock(dimension: 8, heads: 2, generator: &g)
        block.finalizeNames()
        check("transformer block", block, input: [2, 3, 8])
        let linear = Linear(6, 4, generator: &g)
        check("linear on rank 3", linear, input: [2, 3, 6])
    }
}
