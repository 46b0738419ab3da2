import Testing
import DojoGraph
import DojoTensor

/// A finite-difference gradient check for every op of the engine.
@Suite struct OpGradientTests {
    @Test func broadcastingArithmetic() {
        checkGradients("add", inputs: [random([3, 4], seed: 1), random([4], seed: 2)]) { $0[0] + $0[1] }
        checkGradients("sub", inputs: [random([2, 3, 1], seed: 3), random([3, 5], seed: 4)]) { $0[0] - $0[1] }
        checkGradients("mul", inputs: [random([2, 1, 4], seed: 5), random([3, 1], seed: 6)]) { $0[0] * $0[1] }
        let d = random([4, 3], seed: 8)
        for i in 0..<d.count { d.pointer[i] = 1.5 + abs(d.pointer[i]) }
        checkGradients("div", inputs: [random([4, 3], seed: 7), d]) { $0[0] / $0[1] }
    }

    @Test func unaryOps() {
        checkGradients("relu", inputs: [awayFromZero([5, 7], seed: 9)]) { $0[0].relu() }
        checkGradients("gelu", inputs: [random([5, 7], seed: 10)]) { $0[0].gelu() }
        checkGradients("sigmoid", inputs: [random([5, 7], seed: 11)]) { $0[0].sigmoid() }
        checkGradients("tanh", inputs: [random([5, 7], seed: 12)]) { $0[0].tanh() }
        checkGradients("exp", inputs: [random([5, 7], seed: 13, std: 0.5)]) { $0[0].exp() }
        let pos = random([5, 7], seed: 14)
        for i in 0..<pos.count { pos.pointer[i] = 0.5 + abs(pos.pointer[i]) }
        checkGradients("log", inputs: [pos]) { $0[0].log() }
        checkGradients("sqrt", inputs: [pos]) { $0[0].sqrt() }
        checkGradients("neg+scale+shift", inputs: [random([6], seed: 15)]) { (-$0[0]).scaled(by: 3).shifted(by: 1) }
    }

    @Test func reductionsAndSoftmax() {
        checkGradients("sum axes", inputs: [random([3, 4, 5], seed: 16)]) { $0[0].sum(axes: [0, 2]) }
        checkGradients("mean all", inputs: [random([3, 4], seed: 17)]) { $0[0].mean() }
        checkGradients("mean keepdims", inputs: [random([2, 3, 4], seed: 18)]) { $0[0].mean(axes: [1], keepDims: true) }
        checkGradients("softmax", inputs: [random([4, 6], seed: 19)]) { $0[0].softmax() }
        checkGradients("logSoftmax", inputs: [random([4, 6], seed: 20)]) { $0[0].logSoftmax() }
    }

    @Test func shapeOps() {
        checkGradients("reshape", inputs: [random([2, 6], seed: 21)]) { $0[0].reshaped([3, -1]) * $0[0].reshaped([3, 4]) }
        checkGradients("permute", inputs: [random([2, 3, 4], seed: 22)]) { $0[0].permuted([2, 0, 1]) }
        checkGradients("slice", inputs: [random([3, 5, 2], seed: 23)]) { $0[0].slice(axis: 1, 1..<4) }
        checkGradients("concat", inputs: [random([2, 3], seed: 24), random([2, 2], seed: 25)]) { Tensor.concatenate($0, axis: 1) }
    }

    @Test func matmulAllTranspositions() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = random(ta ? [5, 3] : [3, 5], seed: 26), b = random(tb ? [4, 5] : [5, 4], seed: 27)
            checkGradients("matmul \(ta) \(tb)", inputs: [a, b]) { $0[0].matmul($0[1], transposeA: ta, transposeB: tb) }
        }
        checkGradients("batched matmul", inputs: [random([2, 3, 5], seed: 28), random([2, 5, 4], seed: 29)]) { $0[0].matmul($0[1]) }
        checkGradients("shared right operand", inputs: [random([2, 3, 5], seed: 30), random([4, 5], seed: 31)]) {
            $0[0].matmul($0[1], transposeB: true)
        }
    }

    @Test func losses() {
        checkGradients("crossEntropy", inputs: [random([4, 5], seed: 32)]) { $0[0].crossEntropy(labels: [0, 4, 2, 2]) }
        let t = Tensor([1, 0, 0, 1, 1, 0], shape: [2, 3])
        checkGradients("bce", inputs: [random([2, 3], seed: 33)]) { $0[0].binaryCrossEntropyWithLogits(targets: t, positiveWeight: 3) }
        checkGradients("mse", inputs: [random([2, 3], seed: 34), random([2, 3], seed: 35)]) { $0[0].meanSquaredError(targets: $0[1]) }
    }

    @Test func normalisationAndLookup() {
        checkGradients("layerNorm", inputs: [random([3, 8], seed: 36), random([8], seed: 37), random([8], seed: 38)]) {
            $0[0].layerNorm(gamma: $0[1], beta: $0[2])
        }
        checkGradients("embedding", inputs: [random([5, 3], seed: 39)]) { Tensor.embedding($0[0], indices: [4, 0, 4, 2]) }
        var rng = RandomSource(seed: 40)
        let x = random([50], seed: 41)
        // the same generator state gives the same mask, so finite differences see the op the tape saw
        checkGradients("dropout", inputs: [x]) { inputs in
            var g = rng
            return inputs[0].dropout(probability: 0.3, generator: &g)
        }
        _ = rng.next()
    }

    @Test func lossValuesMatchDefinitions() {
        // log(e^1 + e^2 + e^3) - 3 for label 2
        let ce = Tensor([1, 2, 3], shape: [1, 3]).crossEntropy(labels: [2]).item
        #expect(abs(ce - 0.40760596) < 1e-6)
        let bce = Tensor([0], shape: [1]).binaryCrossEntropyWithLogits(targets: Tensor([1], shape: [1])).item
        #expect(abs(bce - 0.6931472) < 1e-6)
        #expect(Tensor([1, 2], shape: [2]).meanSquaredError(targets: Tensor([0, 0], shape: [2])).item == 2.5)
    }

    @Test func gemmMatchesReferenceOnOddShapes() {
        for (m, n, k) in [(1, 1, 1), (7, 13, 5), (33, 17, 65), (128, 3, 9)] {
            let a = random([m, k], seed: UInt64(m)), b = random([k, n], seed: UInt64(n))
            let fast = Engine.$backend.withValue(.oneDNN) { a.matmul(b) }
            let ref = Engine.$backend.withValue(.reference) { a.matmul(b) }
            for i in 0..<fast.count { #expect(abs(fast.pointer[i] - ref.pointer[i]) < 1e-4 * Float(k)) }
        }
    }
}

@Suite struct GradientCheckerTests {
    /// The checker itself must fail on a wrong gradient (identity forward with a backward that doubles).
    @Test func catchesAWrongGradient() {
        withKnownIssue {
            checkGradients("wrong", inputs: [random([4], seed: 1)]) { x in
                let out = x[0].detachedCopy()
                Tape.note(.scale, inputs: [x[0]], output: out) { g, _ in [g.scaled(by: 2)] }
                return out
            }
        }
    }

    @Test func tapeRecordsTheGraphOfAStep() throws {
        let w = Tensor.parameter([Float](repeating: 0.1, count: 12), shape: [4, 3], name: "fc.weight")
        let x = random([2, 4], seed: 3)
        let tape = Tape()
        let loss = tape.record { Tape.withScope("fc") { x.matmul(w) }.relu().mean() }
        let grads = tape.backward(from: loss)
        #expect(grads[w]?.shape == [4, 3])
        #expect(grads[x] == nil)
        let g = tape.graph(model: "tiny", batch: 2)
        let fwd = g.ops.filter { $0.phase == .forward }
        #expect(fwd.map(\.kind) == [.matmul, .relu, .sum, .scale])
        #expect(fwd[0].scope == "fc")
        #expect(fwd[0].flops == 2 * 2 * 3 * 4)
        let bwd = g.ops.filter { $0.phase == .backward }
        let matmulBackward = bwd.first { $0.kind == .matmul }
        #expect(matmulBackward?.flops == Double(2 * 2 * 3 * 4))  // only the weight gradient
        #expect(g.summary.parameters == 12)
        _ = try Graph.decode(json: g.jsonData())
    }
}

@Suite struct MaxMagnitudeTests {
    @Test func findsTheLargestMagnitudeAndNaN() {
        for n in [0, 1, 7, 8, 9, 1000, 300_001] {
            var values = (0..<n).map { Float(($0 * 7919) % 1013) / 100 - 5 }
            let expected = values.map(abs).max() ?? 0
            #expect(values.withUnsafeBufferPointer { Tensor.maxMagnitude(of: $0) } == expected, "n \(n)")
            if n > 0 {
                values[n / 2] = -1e30
                #expect(values.withUnsafeBufferPointer { Tensor.maxMagnitude(of: $0) } == 1e30)
                values[n - 1] = -.infinity
                #expect(values.withUnsafeBufferPointer { Tensor.maxMagnitude(of: $0) } == .infinity)
                values[0] = .nan
                #expect(values.withUnsafeBufferPointer { Tensor.maxMagnitude(of: $0) }.isNaN)
            }
        }
    }
}
