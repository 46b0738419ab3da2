// Batch normalisation over x viewed as [N, C, S] (S = H·W for images, 1 for [N, C]): statistics per channel over N·S.
import CDojoKernels
import COneDNN

/// Batch-norm kernels. `.oneDNN` means the fastest implementation for plain NCHW buffers, which is the
/// vectorised, multi-threaded pure-Swift one (`SwiftBatchNorm`): on the project's 2-core machine, N128 C32 28×28
/// (12.8 MB), it took 3.0–3.5 ms forward and 3.6–5.1 ms backward against 12.7–35 ms and 25–58 ms for oneDNN's
/// plain-layout `ncsp_bnorm` (oneDNN is fast only on its blocked layouts, which these NCHW buffers are not). The
/// oneDNN primitive path stays available internally (`OneDNNBatchNorm`) and is tested against the reference.
/// `.reference` is the clear loop version with Double statistics.
///
/// Training forward returns the batch mean and the **biased** variance (÷ N·S); running statistics are the caller's.
/// Backward is the training backward (gradients flow through the batch statistics). Outputs are overwritten.
public enum BatchNormKernel {
    public static func forwardTraining(n: Int, c: Int, spatial: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                       beta: UnsafePointer<Float>, epsilon: Float, y: UnsafeMutablePointer<Float>,
                                       mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>,
                                       backend: KernelBackend = .oneDNN, round: RoundingTask? = nil, xPacked: PackedValues? = nil,
                                       codes: CodesWriter? = nil) {
        validate(n, c, spatial, epsilon)
        switch backend {
        case .reference:
            precondition(round == nil && xPacked == nil && codes == nil,
                         "the reference batch norm does not round its output, read packed values or write codes")
            ReferenceKernels.batchNormForwardTraining(n: n, c: c, s: spatial, x: x, gamma: gamma, beta: beta,
                                                      epsilon: epsilon, y: y, mean: mean, variance: variance)
        case .oneDNN:
            SwiftBatchNorm.forwardTraining(n: n, c: c, s: spatial, x: x, gamma: gamma, beta: beta, epsilon: epsilon,
                                           y: y, mean: mean, variance: variance, round: round, xPacked: xPacked, codes: codes)
        }
    }

    public static func forwardInference(n: Int, c: Int, spatial: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                        beta: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                                        variance: UnsafePointer<Float>, epsilon: Float, y: UnsafeMutablePointer<Float>,
                                        backend: KernelBackend = .oneDNN) {
        validate(n, c, spatial, epsilon)
        switch backend {
        case .reference:
            ReferenceKernels.batchNormForwardInference(n: n, c: c, s: spatial, x: x, gamma: gamma, beta: beta,
                                                       mean: mean, variance: variance, epsilon: epsilon, y: y)
        case .oneDNN:
            SwiftBatchNorm.forwardInference(n: n, c: c, s: spatial, x: x, gamma: gamma, beta: beta, mean: mean,
                                            variance: variance, epsilon: epsilon, y: y)
        }
    }

    /// `mean` and `variance` are the batch statistics `forwardTraining` returned. `beta` does not enter the
    /// gradients (oneDNN's interface wants it).
    public static func backward(n: Int, c: Int, spatial: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                                variance: UnsafePointer<Float>, epsilon: Float, dx: UnsafeMutablePointer<Float>,
                                dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>,
                                backend: KernelBackend = .oneDNN, round: RoundingTask? = nil, xPacked: PackedValues? = nil) {
        validate(n, c, spatial, epsilon)
        switch backend {
        case .reference:
            precondition(round == nil && xPacked == nil, "the reference batch norm does not round its gradient or read packed values")
            ReferenceKernels.batchNormBackward(n: n, c: c, s: spatial, x: x, dy: dy, gamma: gamma, mean: mean,
                                               variance: variance, epsilon: epsilon, dx: dx, dGamma: dGamma, dBeta: dBeta)
        case .oneDNN:
            SwiftBatchNorm.backward(n: n, c: c, s: spatial, x: x, dy: dy, gamma: gamma, mean: mean, variance: variance,
                                    epsilon: epsilon, dx: dx, dGamma: dGamma, dBeta: dBeta, round: round, xPacked: xPacked)
        }
    }

    static func validate(_ n: Int, _ c: Int, _ s: Int, _ epsilon: Float) {
        precondition(n > 0 && c > 0 && s > 0, "BatchNormKernel: sizes must be positive (n \(n), c \(c), spatial \(s))")
        precondition(epsilon >= 0, "BatchNormKernel: epsilon must be non-negative, got \(epsilon)")
    }
}

// MARK: - Vectorised multi-threaded implementation

/// Channels are split over `ComputeThreads.count` threads; each channel is N contiguous spans of S floats, each span
/// reduced in Float by CDojoKernels' loops (16 partial sums; AVX2 where the CPU has it) and summed across spans in
/// Double.
@_spi(Testing) public enum SwiftBatchNorm {
    static func parallelChannels(_ c: Int, elements: Int, _ body: (Range<Int>) -> Void) {
        ComputeThreads.parallelChunks(c, elements: elements, body)
    }

    /// Σ (p[i] − k) and Σ (p[i] − k)² over one span.
    @inline(__always)
    static func shiftedSums(_ p: UnsafePointer<Float>, _ s: Int, shift k: Float) -> (Float, Float) {
        // CDojoKernels' loop: 16 partial sums, 8 lanes with AVX2 (this package's Swift gets SSE2's 4)
        var sum: Float = 0, sq: Float = 0
        dojo_bn_shifted_sums(p, s, k, &sum, &sq)
        return (sum, sq)
    }

    /// y = x·a + b over one span.
    @inline(__always)
    static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ s: Int, _ a: Float, _ b: Float) {
        dojo_bn_affine(x, y, s, a, b)
    }

    @_spi(Testing) public static func forwardTraining(n: Int, c: Int, s: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                beta: UnsafePointer<Float>, epsilon: Float, y: UnsafeMutablePointer<Float>,
                                mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>,
                                round: RoundingTask? = nil, xPacked: PackedValues? = nil, codes: CodesWriter? = nil) {
        precondition(codes == nil || round != nil, "batch norm writes codes of a rounded output only")
        let count = Double(n * s)
        let bf16Codes = codes?.bytes == 2 && round?.bf16NearestEven == true
        parallelChannels(c, elements: n * c * s) { channels in
            var tally = RoundingTask.Tally(), uncoded = false
            defer { round?.merge(tally); if uncoded { codes?.markFailed() } }
            // the codes' format and address as values: the writer (a class) used in the span loop would be retained and
            // released once per span from each thread
            let codesFormat = codes?.format, codesBase = codes?.address(of: 0), codeBytes = codes?.bytes ?? 0
            // `codes`: the rounded output's codes written in place of y (not written): each span made in cache, coded
            let out: UnsafeMutablePointer<Float>? = codes == nil ? nil : .allocate(capacity: s)
            defer { out?.deallocate() }
            // x held as codes (`xPacked`; `x` is then not read): BF16 codes read as they are by the span loops (a
            // span the one-pass affine leaves is decoded into `spanBuffer` first); CFP8 codes one channel's values
            // decoded at a time into a buffer that stays in cache for both passes over them
            let xCodes = xPacked?.bf16Codes
            let scratch: UnsafeMutablePointer<Float>? = xPacked == nil || xCodes != nil ? nil : .allocate(capacity: n * s)
            defer { scratch?.deallocate() }
            let spanBuffer: UnsafeMutablePointer<Float>? = xCodes == nil ? nil : .allocate(capacity: s)
            defer { spanBuffer?.deallocate() }
            for ch in channels {
                if let xPacked, let scratch { for i in 0..<n { xPacked.read((i * c + ch) * s, count: s, into: scratch + i * s) } }
                @inline(__always) func span(_ i: Int) -> UnsafePointer<Float> {
                    if let xPacked, let spanBuffer { xPacked.read((i * c + ch) * s, count: s, into: spanBuffer); return UnsafePointer(spanBuffer) }
                    return scratch.map { UnsafePointer($0 + i * s) } ?? x + (i * c + ch) * s
                }
                // shift: the variance of x − k is that of x, and x − k is small
                let k = xCodes.map { Float(bitPattern: UInt32($0[ch * s]) << 16) } ?? span(0)[0]
                var sum: Double = 0, sq: Double = 0
                for i in 0..<n {
                    var a: Float = 0, b: Float = 0
                    if let xCodes { dojo_bn_shifted_sums_bf16x(xCodes + (i * c + ch) * s, s, k, &a, &b) }
                    else { (a, b) = shiftedSums(span(i), s, shift: k) }
                    sum += Double(a); sq += Double(b)
                }
                let m = sum / count
                let v = max(sq / count - m * m, 0)
                mean[ch] = Float(Double(k) + m)
                variance[ch] = Float(v)
                let invStd = 1 / (v + Double(epsilon)).squareRoot()
                let a = Double(gamma[ch]) * invStd
                let b = Double(beta[ch]) - (Double(k) + m) * a
                for i in 0..<n {
                    let o = (i * c + ch) * s, yo = out ?? y + o
                    // BF16 codes only: the affine, its rounding and its codes in one pass (a span with a value the
                    // rounding leaves to the slow path takes the three passes below)
                    if bf16Codes, let codesBase,
                       (xCodes.map { dojo_bn_affine_bf16_codes_bf16x($0 + o, s, Float(a), Float(b), codesBase.assumingMemoryBound(to: UInt16.self) + o) }
                        ?? dojo_bn_affine_bf16_codes(span(i), s, Float(a), Float(b), codesBase.assumingMemoryBound(to: UInt16.self) + o)) != 0 { continue }
                    affine(span(i), yo, s, Float(a), Float(b))
                    // rounded while the span is in cache; into codes only in one pass where the rounding has one (CFP8)
                    if let codesFormat, let codesBase {
                        if round?.roundCoding(yo, count: s, offset: o, format: codesFormat, codes: codesBase + o * codeBytes,
                                              into: &tally) == false { uncoded = true }
                    } else {
                        round?.round(yo, count: s, offset: o, into: &tally)
                    }
                }
            }
        }
    }

    @_spi(Testing) public static func forwardInference(n: Int, c: Int, s: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                 beta: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
                                 epsilon: Float, y: UnsafeMutablePointer<Float>) {
        parallelChannels(c, elements: n * c * s) { channels in
            for ch in channels {
                let invStd = 1 / (Double(variance[ch]) + Double(epsilon)).squareRoot()
                let a = Double(gamma[ch]) * invStd
                let b = Double(beta[ch]) - Double(mean[ch]) * a
                for i in 0..<n {
                    let o = (i * c + ch) * s
                    affine(x + o, y + o, s, Float(a), Float(b))
                }
            }
        }
    }

    @_spi(Testing) public static func backward(n: Int, c: Int, s: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
                         epsilon: Float, dx: UnsafeMutablePointer<Float>, dGamma: UnsafeMutablePointer<Float>,
                         dBeta: UnsafeMutablePointer<Float>, round: RoundingTask? = nil, xPacked: PackedValues? = nil) {
        let count = Double(n * s)
        let bf16 = round?.bf16NearestEven == true
        parallelChannels(c, elements: n * c * s) { channels in
            var tally = RoundingTask.Tally()
            defer { round?.merge(tally) }
            // x held packed (`xPacked`; `x` is then not read): BF16 codes read as they are by the span loops (the part
            // of a span the one-pass input gradient leaves decoded into `spanBuffer` first); CFP8 codes one channel's
            // values decoded at a time, not all of them
            let xCodes = xPacked?.bf16Codes
            let scratch: UnsafeMutablePointer<Float>? = xPacked == nil || xCodes != nil ? nil : .allocate(capacity: n * s)
            defer { scratch?.deallocate() }
            let spanBuffer: UnsafeMutablePointer<Float>? = xCodes == nil ? nil : .allocate(capacity: s)
            defer { spanBuffer?.deallocate() }
            for ch in channels {
                if let xPacked, let scratch { for i in 0..<n { xPacked.read((i * c + ch) * s, count: s, into: scratch + i * s) } }
                let m = mean[ch]
                var sumDy: Double = 0, sumDyXc: Double = 0
                for i in 0..<n {
                    let o = (i * c + ch) * s
                    var a: Float = 0, b: Float = 0
                    if let xCodes { dojo_bn_backward_sums_bf16x(xCodes + o, dy + o, s, m, &a, &b) }
                    else { dojo_bn_backward_sums(scratch.map { UnsafePointer($0 + i * s) } ?? x + o, dy + o, s, m, &a, &b) }
                    sumDy += Double(a); sumDyXc += Double(b)
                }
                let invStd = 1 / (Double(variance[ch]) + Double(epsilon)).squareRoot()
                dBeta[ch] = Float(sumDy)
                dGamma[ch] = Float(sumDyXc * invStd)
                // dx = g·invStd·(dy − mean(dy) − x̂·mean(dy·x̂)) = A·dy + B·x + C
                let g = Double(gamma[ch]) * invStd
                let bCoef = -g * invStd * invStd * sumDyXc / count
                let cCoef = -g * sumDy / count - bCoef * Double(m)
                let (af, bf, cf) = (Float(g), Float(bCoef), Float(cCoef))
                for i in 0..<n {
                    let o = (i * c + ch) * s
                    let dp = dy + o, op = dx + o
                    // a BF16 gradient: written rounded in the same pass; from a chunk holding a value it leaves to
                    // the slow path (dx not written from there, so dy is intact there when dx is dy) the two passes
                    let done = !bf16 ? 0 : xCodes.map { dojo_bn_backward_dx_bf16_bf16x($0 + o, dp, op, s, af, bf, cf) }
                        ?? dojo_bn_backward_dx_bf16(scratch.map { UnsafePointer($0 + i * s) } ?? x + o, dp, op, s, af, bf, cf)
                    if done == s { continue }
                    // x from `done` on
                    let rest: UnsafePointer<Float>
                    if let xPacked, let spanBuffer {
                        xPacked.read(o + done, count: s - done, into: spanBuffer)
                        rest = UnsafePointer(spanBuffer)
                    } else {
                        rest = (scratch.map { UnsafePointer($0 + i * s) } ?? x + o) + done
                    }
                    dojo_bn_backward_dx(rest, dp + done, op + done, s - done, af, bf, cf)
                    round?.round(op + done, count: s - done, offset: o + done, into: &tally)
                }
            }
        }
    }
}

// MARK: - oneDNN on plain NCHW (kept for comparison; slower here, see BatchNormKernel)

@_spi(Testing) public enum OneDNNBatchNorm {
    struct Key: Hashable, Sendable {
        var n, c, s: Int
        var epsilonBits: UInt32
        var pass: Int  // 0 training, 1 inference, 2 backward
    }

    static let cache = DnnlCache<Key, Primitives>()

    final class Primitives: DnnlExecutable, @unchecked Sendable {
        let prim: DnnlPrimitive
        let src, dst, diffSrc, diffDst: DnnlMemory
        let scale, shift, mean, variance, diffScale, diffShift: DnnlMemory

        init(_ k: Key) {
            var data = dnnlMD([k.n, k.c, k.s, 1], dnnl_nchw)
            let vec = dnnlMD([k.c], dnnl_x)
            let eps = Float(bitPattern: k.epsilonBits)
            let flags = dnnl_use_scale.rawValue | dnnl_use_shift.rawValue
            var fd = dnnl_batch_normalization_desc_t()
            let what = "batch norm \(k)"
            dnnlCheck(dnnl_batch_normalization_forward_desc_init(
                &fd, k.pass == 1 ? dnnl_forward_inference : dnnl_forward_training, &data, eps,
                k.pass == 1 ? flags | dnnl_use_global_stats.rawValue : flags), "\(what) forward descriptor")
            let fwd = DnnlPrimitive(op: &fd, what)
            if k.pass == 2 {
                var bd = dnnl_batch_normalization_desc_t()
                dnnlCheck(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &data, &data, eps, flags),
                          "\(what) backward descriptor")
                prim = DnnlPrimitive(op: &bd, hint: fwd, what)
            } else {
                prim = fwd
            }
            src = DnnlMemory(data, owned: false); dst = DnnlMemory(data, owned: false)
            diffSrc = DnnlMemory(data, owned: false); diffDst = DnnlMemory(data, owned: false)
            scale = DnnlMemory(vec, owned: false); shift = DnnlMemory(vec, owned: false)
            mean = DnnlMemory(vec, owned: false); variance = DnnlMemory(vec, owned: false)
            diffScale = DnnlMemory(vec, owned: false); diffShift = DnnlMemory(vec, owned: false)
            super.init()
        }
    }

    static func primitives(_ n: Int, _ c: Int, _ s: Int, _ eps: Float, _ pass: Int) -> Primitives {
        let k = Key(n: n, c: c, s: s, epsilonBits: eps.bitPattern, pass: pass)
        return cache.get(k) { Primitives(k) }
    }

    @_spi(Testing) public static func forwardTraining(n: Int, c: Int, s: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                beta: UnsafePointer<Float>, epsilon: Float, y: UnsafeMutablePointer<Float>,
                                mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>) {
        let p = primitives(n, c, s, epsilon, 0)
        p.exclusive {
            p.src.set(x); p.dst.set(y); p.scale.set(gamma); p.shift.set(beta); p.mean.set(mean); p.variance.set(variance)
            p.prim.run(p.stream, [dnnlArg(DNNL_ARG_SRC, p.src), dnnlArg(DNNL_ARG_DST, p.dst),
                                  dnnlArg(DNNL_ARG_SCALE, p.scale), dnnlArg(DNNL_ARG_SHIFT, p.shift),
                                  dnnlArg(DNNL_ARG_MEAN, p.mean), dnnlArg(DNNL_ARG_VARIANCE, p.variance)])
            p.stream.wait()
        }
    }

    @_spi(Testing) public static func forwardInference(n: Int, c: Int, s: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                 beta: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
                                 epsilon: Float, y: UnsafeMutablePointer<Float>) {
        let p = primitives(n, c, s, epsilon, 1)
        p.exclusive {
            p.src.set(x); p.dst.set(y); p.scale.set(gamma); p.shift.set(beta); p.mean.set(mean); p.variance.set(variance)
            p.prim.run(p.stream, [dnnlArg(DNNL_ARG_SRC, p.src), dnnlArg(DNNL_ARG_DST, p.dst),
                                  dnnlArg(DNNL_ARG_SCALE, p.scale), dnnlArg(DNNL_ARG_SHIFT, p.shift),
                                  dnnlArg(DNNL_ARG_MEAN, p.mean), dnnlArg(DNNL_ARG_VARIANCE, p.variance)])
            p.stream.wait()
        }
    }

    @_spi(Testing) public static func backward(n: Int, c: Int, s: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                         variance: UnsafePointer<Float>, epsilon: Float, dx: UnsafeMutablePointer<Float>,
                         dGamma: UnsafeMutablePointer<Float>, dBeta: UnsafeMutablePointer<Float>) {
        let p = primitives(n, c, s, epsilon, 2)
        p.exclusive {
            p.src.set(x); p.diffDst.set(dy); p.scale.set(gamma); p.shift.set(beta); p.mean.set(mean)
            p.variance.set(variance); p.diffSrc.set(dx); p.diffScale.set(dGamma); p.diffShift.set(dBeta)
            p.prim.run(p.stream, [dnnlArg(DNNL_ARG_SRC, p.src), dnnlArg(DNNL_ARG_DIFF_DST, p.diffDst),
                                  dnnlArg(DNNL_ARG_MEAN, p.mean), dnnlArg(DNNL_ARG_VARIANCE, p.variance),
                                  dnnlArg(DNNL_ARG_SCALE, p.scale), dnnlArg(DNNL_ARG_SHIFT, p.shift),
                                  dnnlArg(DNNL_ARG_DIFF_SRC, p.diffSrc), dnnlArg(DNNL_ARG_DIFF_SCALE, p.diffScale),
                                  dnnlArg(DNNL_ARG_DIFF_SHIFT, p.diffShift)])
            p.stream.wait()
        }
    }
}
