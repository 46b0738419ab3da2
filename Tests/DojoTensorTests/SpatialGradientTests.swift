import DojoTensor
import Testing

/// Finite-difference checks of convolution, pooling and batch norm through the tape, on both kernel backends,
/// and the two backends against each other.
@Suite struct SpatialGradientTests {
    @Test(arguments: [KernelBackend.oneDNN, .reference])
    func convolution(backend: KernelBackend) {
        Engine.$backend.withValue(backend) {
            checkGradients("conv \(backend)", inputs: [random([2, 3, 7, 6], seed: 1), random([4, 3, 3, 3], seed: 2), random([4], seed: 3)]) {
                $0[0].conv2d(weight: $0[1], bias: $0[2], stride: (2, 1), padding: (1, 1))
            }
            checkGradients("grouped conv \(backend)", inputs: [random([1, 4, 5, 5], seed: 4), random([6, 2, 3, 3], seed: 5)]) {
                $0[0].conv2d(weight: $0[1], padding: (1, 1), groups: 2)
            }
        }
    }

    /// The transposed convolution against its definition in plain loops (each input value times the kernel, added
    /// into the output at stride steps, cropped by the padding), and its gradients by finite differences: stride 2
    /// with output padding and bias, and 2 groups.
    @Test(arguments: [KernelBackend.oneDNN, .reference])
    func transposedConvolution(backend: KernelBackend) {
        Engine.$backend.withValue(backend) {
            let x = random([2, 4, 3, 4], seed: 11), w = random([4, 3, 3, 2], seed: 12), b = random([6], seed: 13)
            let groups = 2, (sh, sw, ph, pw, oph, opw) = (2, 3, 1, 0, 1, 2)
            let y = x.convTranspose2d(weight: w, bias: b, stride: (sh, sw), padding: (ph, pw), outputPadding: (oph, opw), groups: groups)
            let (oh, ow) = ((3 - 1) * sh - 2 * ph + 3 + oph, (4 - 1) * sw - 2 * pw + 2 + opw)
            #expect(y.shape == [2, 6, oh, ow])
            var ref = [Float](repeating: 0, count: 2 * 6 * oh * ow)
            for n in 0..<2 {
                for o in 0..<6 { for i in 0..<(oh * ow) { ref[(n * 6 + o) * oh * ow + i] = b.pointer[o] } }
                for c in 0..<4 {
                    let gr = c / 2
                    for o in 0..<3 { for h in 0..<3 { for v in 0..<4 { for kh in 0..<3 { for kw in 0..<2 {
                        let yh = h * sh - ph + kh, yw = v * sw - pw + kw
                        guard yh >= 0, yh < oh, yw >= 0, yw < ow else { continue }
                        let oc = gr * 3 + o
                        ref[((n * 6 + oc) * oh + yh) * ow + yw] += x.pointer[((n * 4 + c) * 3 + h) * 4 + v] * w.pointer[((c * 3 + o) * 3 + kh) * 2 + kw]
                    } } } } }
                }
            }
            for i in 0..<ref.count { #expect(abs(y.pointer[i] - ref[i]) < 1e-4, "element \(i): \(y.pointer[i]) vs \(ref[i])") }
            checkGradients("transposed conv \(backend)", inputs: [x, w, b]) {
                $0[0].convTranspose2d(weight: $0[1], bias: $0[2], stride: (sh, sw), padding: (ph, pw), outputPadding: (oph, opw), groups: groups)
            }
        }
    }

    @Test(arguments: [KernelBackend.oneDNN, .reference])
    func pooling(backend: KernelBackend) {
        Engine.$backend.withValue(backend) {
            // distinct values so that max pooling has no ties for finite differences to straddle
            let x = Tensor((0..<(2 * 3 * 6 * 5)).map { Float(($0 * 37) % 180) / 20 }, shape: [2, 3, 6, 5])
            checkGradients("maxpool \(backend)", inputs: [x], step: 1e-3) { $0[0].maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
            checkGradients("avgpool \(backend)", inputs: [random([2, 3, 6, 5], seed: 6)]) { $0[0].avgPool2d(kernel: (2, 2)) }
            checkGradients("global avg pool", inputs: [random([2, 3, 4, 5], seed: 7)]) { $0[0].globalAvgPool() }
        }
    }

    @Test(arguments: [KernelBackend.oneDNN, .reference])
    func batchNorm(backend: KernelBackend) {
        Engine.$backend.withValue(backend) {
            let rm = Tensor(zeros: [3]), rv = Tensor(repeating: 1, shape: [3])
            checkGradients("batchnorm \(backend)", inputs: [random([4, 3, 3, 2], seed: 8), random([3], seed: 9), random([3], seed: 10)]) {
                $0[0].batchNorm(gamma: $0[1], beta: $0[2], runningMean: rm, runningVariance: rv, training: true)
            }
        }
    }

    /// Synchronised batch norm (`BatchNormSync`), in one process: with one rank (sums as they are) it passes finite
    /// differences; as one of two ranks that hold the same examples (every sum doubled, weight ½) its output, running
    /// statistics (the variance unbiased over the global 2M) and gradients are those of plain batch norm.
    @Test func synchronisedBatchNorm() {
        let one = BatchNormSync(weight: 1) { _, _ in }
        let rm = Tensor(zeros: [3]), rv = Tensor(repeating: 1, shape: [3])
        checkGradients("synchronised batchnorm", inputs: [random([4, 3, 3, 2], seed: 8), random([3], seed: 9), random([3], seed: 10)]) {
            $0[0].batchNorm(gamma: $0[1], beta: $0[2], runningMean: rm, runningVariance: rv, training: true, sync: one)
        }
        let twin = BatchNormSync(weight: 0.5) { p, n in for i in 0..<n { p[i] *= 2 } }
        func run(_ sync: BatchNormSync?) -> (y: [Float], grads: [[Float]], rm: [Float], rv: [Float]) {
            let x = random([5, 3, 4, 2], seed: 21).requiringGrad(), g = random([3], seed: 22).requiringGrad(), b = random([3], seed: 23).requiringGrad()
            let rm = Tensor(zeros: [3]), rv = Tensor(repeating: 1, shape: [3])
            let w = random([5, 3, 4, 2], seed: 24)
            let tape = Tape()
            var y: Tensor!
            let loss = tape.record {
                y = x.batchNorm(gamma: g, beta: b, runningMean: rm, runningVariance: rv, training: true, sync: sync)
                return (y * w).sum()
            }
            let grads = tape.backward(from: loss)
            return (y.array, [x, g, b].map { grads[$0]!.array }, rm.array, rv.array)
        }
        let plain = run(nil), synced = run(twin)
        func close(_ a: [Float], _ b: [Float]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) } && a.count == b.count }
        #expect(close(plain.y, synced.y))
        #expect(close(plain.rm, synced.rm))
        // The running variance is unbiased over the global batch: 2M examples, not M.
        let m: Float = 5 * 4 * 2
        let expected = plain.rv.map { 0.9 + 0.1 * (($0 - 0.9) / 0.1 * (m - 1) / m) * (2 * m) / (2 * m - 1) }
        #expect(close(expected, synced.rv), "\(expected) \(synced.rv)")
        for (a, b) in zip(plain.grads, synced.grads) { #expect(close(a, b)) }
    }

    @Test func runningStatisticsFollowPyTorch() {
        // one channel, values 1…4: batch mean 2.5, biased variance 1.25, unbiased 5/3
        let x = Tensor([1, 2, 3, 4], shape: [4, 1])
        let rm = Tensor(zeros: [1]), rv = Tensor(repeating: 1, shape: [1])
        let y = x.batchNorm(gamma: Tensor([1], shape: [1]), beta: Tensor([0], shape: [1]), runningMean: rm, runningVariance: rv,
                            training: true, momentum: 0.1, epsilon: 0)
        #expect(abs(rm[flat: 0] - 0.25) < 1e-6)
        #expect(abs(rv[flat: 0] - (0.9 + 0.1 * 5 / 3)) < 1e-6)
        #expect(abs(y[flat: 0] - (1 - 2.5) / Float(1.25).squareRoot()) < 1e-5)
    }

    @Test func backendsAgreeOnAWholeConvBlock() {
        func block() -> ([Float], [Float]) {
            let x = random([3, 5, 9, 7], seed: 11).requiringGrad(), w = random([8, 5, 3, 3], seed: 12).requiringGrad()
            let rm = Tensor(zeros: [8]), rv = Tensor(repeating: 1, shape: [8])
            let tape = Tape()
            let loss = tape.record {
                x.conv2d(weight: w, padding: (1, 1)).batchNorm(gamma: Tensor(repeating: 1, shape: [8]), beta: Tensor(zeros: [8]),
                    runningMean: rm, runningVariance: rv, training: true).relu().maxPool2d(kernel: (2, 2)).sum()
            }
            let g = tape.backward(from: loss)
            return (g[x]!.array, g[w]!.array)
        }
        let fast = Engine.$backend.withValue(.oneDNN) { block() }
        let ref = Engine.$backend.withValue(.reference) { block() }
        for (a, b) in zip(fast.0 + fast.1, ref.0 + ref.1) { #expect(abs(a - b) < 2e-3 * max(1, abs(b))) }
    }
}
