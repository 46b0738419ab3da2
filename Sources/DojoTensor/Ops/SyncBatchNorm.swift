import DojoGraph
import Foundation

/// Batch statistics over several processes (synchronised batch norm, as PyTorch's SyncBatchNorm): in training,
/// every rank's examples of the global batch count toward one mean and variance per channel, so a data-parallel
/// run normalises exactly as one process with the whole batch does. The distributed runtime supplies the sums.
public final class BatchNormSync: @unchecked Sendable {
    /// Sums `count` doubles over every rank, in place; every rank calls it the same number of times, in the same order.
    public let allReduceSum: (UnsafeMutablePointer<Double>, Int) -> Void
    /// This rank's share of the global batch's loss (its examples ÷ the global batch): local gradients are of the
    /// rank's own mean loss, the batch-norm sums of the global one.
    public let weight: Double
    public init(weight: Double, allReduceSum: @escaping (UnsafeMutablePointer<Double>, Int) -> Void) {
        self.weight = weight; self.allReduceSum = allReduceSum
    }
}

extension Tensor {
    /// Training-mode batch norm with statistics over every rank (`sync`); the numbers are those of `batchNorm` on the
    /// concatenated global batch: mean, then the biased variance from the deviations (two sums, in Double), running
    /// statistics updated with the global unbiased variance. Backward sums Σdy and Σdy·x̂ of the global loss over the
    /// ranks, so each rank's dx is that of one process on the whole batch (scaled to the rank's own loss).
    func syncedBatchNorm(gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVariance: Tensor,
                         momentum: Float, epsilon: Float, sync: BatchNormSync) -> Tensor {
        let n = shape[0], c = shape[1], s = rank == 4 ? shape[2] * shape[3] : 1
        let out = Tensor(uninitializedShape: shape)
        let attrs = OpAttributes(epsilon: Double(epsilon))
        let skip = out.isShapeOnly || isShapeOnly
        let mean = Tensor(uninitializedShape: [c]), variance = Tensor(uninitializedShape: [c])
        var globalCount = 1.0
        if !skip {
            let x = pointer
            // Σx and the count, then Σ(x − mean)²: every rank adds its own examples.
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: c + 1)
            defer { sums.deallocate() }
            for ch in 0..<c {
                var a = 0.0
                for i in 0..<n { let row = x + (i * c + ch) * s; for j in 0..<s { a += Double(row[j]) } }
                sums[ch] = a
            }
            sums[c] = Double(n * s)
            sync.allReduceSum(sums, c + 1)
            let count = sums[c]
            globalCount = max(count, 1)
            var m = [Double](repeating: 0, count: c)
            for ch in 0..<c { m[ch] = count > 0 ? sums[ch] / count : 0 }
            for ch in 0..<c {
                var q = 0.0
                for i in 0..<n { let row = x + (i * c + ch) * s; for j in 0..<s { let d = Double(row[j]) - m[ch]; q += d * d } }
                sums[ch] = q
            }
            sync.allReduceSum(sums, c)
            for ch in 0..<c {
                mean.pointer[ch] = Float(m[ch])
                variance.pointer[ch] = Float(count > 0 ? sums[ch] / count : 0)
            }
            BatchNormKernel.forwardInference(n: n, c: c, spatial: s, x: x, gamma: gamma.pointer, beta: beta.pointer,
                                             mean: mean.pointer, variance: variance.pointer, epsilon: epsilon,
                                             y: out.pointer, backend: Engine.backend)
            let unbias = count > 1 ? Float(count / (count - 1)) : 1
            for ch in 0..<c {
                runningMean.pointer[ch] = (1 - momentum) * runningMean.pointer[ch] + momentum * mean.pointer[ch]
                runningVariance.pointer[ch] = (1 - momentum) * runningVariance.pointer[ch] + momentum * variance.pointer[ch] * unbias
            }
        }
        Tape.note(.batchNorm, inputs: [self, gamma, beta], output: out, attributes: attrs) { [x = self, globalCount] dy, needs in
            let dx = Tensor(uninitializedShape: x.shape), dg = Tensor(uninitializedShape: [c]), db = Tensor(uninitializedShape: [c])
            guard !dx.isShapeOnly && !dy.isShapeOnly && !dg.isShapeOnly else { return [needs[0] ? dx : nil, needs[1] ? dg : nil, needs[2] ? db : nil] }
            let xp = x.pointer, dyp = dy.pointer, dxp = dx.pointer, w = sync.weight
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * c)
            defer { sums.deallocate() }
            var invStd = [Double](repeating: 0, count: c)
            for ch in 0..<c {
                let m = Double(mean.pointer[ch])
                invStd[ch] = 1 / (Double(variance.pointer[ch]) + Double(epsilon)).squareRoot()
                var a = 0.0, b = 0.0
                for i in 0..<n {
                    let row = (i * c + ch) * s
                    for j in 0..<s { let d = Double(dyp[row + j]); a += d; b += d * (Double(xp[row + j]) - m) * invStd[ch] }
                }
                db.pointer[ch] = Float(a)      // of this rank's own loss: the gradient reduction weighs and sums them
                dg.pointer[ch] = Float(b)
                sums[ch] = a * w               // of the global loss
                sums[c + ch] = b * w
            }
            sync.allReduceSum(sums, 2 * c)
            for ch in 0..<c {
                let m = Double(mean.pointer[ch]), g = Double(gamma.pointer[ch]) * invStd[ch]
                let a = sums[ch] / globalCount, b = sums[c + ch] / globalCount
                for i in 0..<n {
                    let row = (i * c + ch) * s
                    for j in 0..<s {
                        let xhat = (Double(xp[row + j]) - m) * invStd[ch]
                        dxp[row + j] = Float(g * (Double(dyp[row + j]) * w - a - xhat * b) / w)
                    }
                }
            }
            return [needs[0] ? dx : nil, needs[1] ? dg : nil, needs[2] ? db : nil]
        }
        return out
    }
}
