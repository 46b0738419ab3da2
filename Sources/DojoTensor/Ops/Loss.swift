import DojoGraph
import Foundation

extension Tensor {
    /// Mean softmax cross-entropy of logits [N, C] against class indices (fused: stable log-sum-exp forward,
    /// (softmax − one-hot)/N backward). Labels must lie in 0..<C.
    public func crossEntropy(labels: [Int32]) -> Tensor {
        precondition(rank == 2 && shape[0] == labels.count, "crossEntropy: logits \(shape) for \(labels.count) labels")
        let n = shape[0], c = shape[1]
        for l in labels { precondition(l >= 0 && Int(l) < c, "crossEntropy: label \(l) outside 0..<\(c)") }
        let probs = Tensor(uninitializedShape: shape)
        // rows over the compute threads, each row's loss kept apart and summed in order (the same total on any
        // number of threads)
        var losses = [Double](repeating: 0, count: !probs.isShapeOnly && !isShapeOnly ? n : 0)
        if !losses.isEmpty {
            let px = pointer, pp = probs.pointer
            labels.withUnsafeBufferPointer { lb in
                losses.withUnsafeMutableBufferPointer { out in
                    let lp = lb.baseAddress!, op = out.baseAddress!
                    parallelChunks(n, minimumPerThread: max(1, (1 << 14) / max(c, 1))) { range in
                        for i in range {
                            let x = px + i * c, p = pp + i * c
                            var m = -Float.infinity
                            for j in 0..<c { m = max(m, x[j]) }
                            var s: Float = 0
                            for j in 0..<c { let e = Foundation.exp(x[j] - m); p[j] = e; s += e }
                            let inv = 1 / s
                            for j in 0..<c { p[j] *= inv }
                            op[i] = Double(Foundation.log(s) + m - x[Int(lp[i])])
                        }
                    }
                }
            }
        }
        let total = losses.reduce(0, +)
        let out = Tensor(scalar: Float(total / Double(max(n, 1))))
        Tape.note(.crossEntropy, inputs: [self], output: out) { g, _ in
            let r = Tensor(uninitializedShape: probs.shape)
            if r.isShapeOnly || g.isShapeOnly { return [r] }
            let scale = g.item / Float(max(n, 1))
            let pr = r.pointer, pp = probs.pointer
            parallelChunks(n * c) { range in for i in range { pr[i] = pp[i] * scale } }
            for i in 0..<n { pr[i * c + Int(labels[i])] -= scale }
            return [r]
        }
        return out
    }

    /// Mean binary cross-entropy of logits against targets in [0, 1] of the same shape; `positiveWeight` scales
    /// the loss of positive targets (for rare positives, like occupied cells).
    public func binaryCrossEntropyWithLogits(targets: Tensor, positiveWeight: Float = 1) -> Tensor {
        precondition(targets.shape == shape, "binaryCrossEntropy: logits \(shape) vs targets \(targets.shape)")
        let n = count
        var total = 0.0
        let x = pointer, t = targets.pointer
        for i in 0..<(!isShapeOnly && !targets.isShapeOnly ? n : 0) {
            // -[w·t·log σ(x) + (1−t)·log(1−σ(x))], with log σ(x) = −softplus(−x), log(1−σ(x)) = −softplus(x)
            let sp = Foundation.log1p(Foundation.exp(-abs(x[i])))
            let softplusPos = max(x[i], 0) + sp, softplusNeg = max(-x[i], 0) + sp
            total += Double(positiveWeight * t[i] * softplusNeg + (1 - t[i]) * softplusPos)
        }
        let out = Tensor(scalar: Float(total / Double(max(n, 1))))
        // backward keeps the targets themselves, not a pointer into them: the tape holds only what a kind saves
        Tape.note(.bceWithLogits, inputs: [self, targets], output: out) { [x = self, targets] g, needs in
            let r = Tensor(uninitializedShape: x.shape)
            if r.isShapeOnly || g.isShapeOnly || x.isShapeOnly || targets.isShapeOnly { return [r, nil] }
            let scale = g.item / Float(max(n, 1))
            let t = targets.pointer
            for i in 0..<n {
                let s = 1 / (1 + Foundation.exp(-x.pointer[i])), tv = t[i]
                r.pointer[i] = scale * (positiveWeight * tv * (s - 1) + (1 - tv) * s)
            }
            return [r, nil]
        }
        return out
    }

    /// Mean squared error against targets of the same shape.
    public func meanSquaredError(targets: Tensor) -> Tensor {
        precondition(targets.shape == shape, "meanSquaredError: \(shape) vs \(targets.shape)")
        var total = 0.0
        for i in 0..<(!isShapeOnly && !targets.isShapeOnly ? count : 0) { let d = Double(pointer[i] - targets.pointer[i]); total += d * d }
        let n = count
        let out = Tensor(scalar: Float(total / Double(max(n, 1))))
        Tape.note(.mse, inputs: [self, targets], output: out) { [x = self] g, needs in
            let scale = g.isShapeOnly ? 0 : 2 * g.item / Float(max(n, 1))
            let gx = zipKernel(x, targets) { ($0 - $1) * scale }
            return [needs[0] ? gx : nil, needs[1] ? mapKernel(gx, Negate()) : nil]
        }
        return out
    }
}
