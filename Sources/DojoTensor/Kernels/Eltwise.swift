// Elementwise activations through oneDNN's eltwise primitives (JIT, vectorised, on the OpenMP pool), forward and
// backward, with the engine's scalar loops as the reference.
import CDojoKernels
import COneDNN
import Foundation

/// The activations with a oneDNN eltwise primitive. Scalar libm calls were the largest cost of a transformer step:
/// GELU's `tanhf` (through `expm1f`) was 25–30 % of a ViT-Tiny training step on 28×28 (perf, 2 threads, AVX2).
public enum EltwiseAlgorithm: Int, Sendable, Hashable, CaseIterable {
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — GELU's tanh form, as BERT, GPT-2 and ViT use it.
    case geluTanh
    /// 0.5·x·(1 + erf(x/√2)) — GELU as defined (PyTorch's nn.GELU() default; ONNX exports it as Div, Erf, Add, Mul).
    case geluErf
    case tanh
    /// 1 / (1 + e^−x)
    case logistic
    case exp

    /// oneDNN's algorithm; those whose derivative follows from the output take their `use_dst_for_bwd` form (the
    /// same forward), so backward reads y and the input need not be kept.
    var dnnl: dnnl_alg_kind_t {
        switch self {
        case .geluTanh: return dnnl_eltwise_gelu_tanh
        case .geluErf: return dnnl_eltwise_gelu_erf
        case .tanh: return dnnl_eltwise_tanh_use_dst_for_bwd
        case .logistic: return dnnl_eltwise_logistic_use_dst_for_bwd
        case .exp: return dnnl_eltwise_exp_use_dst_for_bwd
        }
    }

    /// Whether the derivative is computed from the output y (tanh, the logistic, exp: their kinds save the result)
    /// rather than from the input x (GELU: its kind saves the input). Backward reads that one only.
    public var derivativeReadsOutput: Bool {
        switch self {
        case .geluTanh, .geluErf: return false
        case .tanh, .logistic, .exp: return true
        }
    }

    /// The reference: f(x) in scalar Float arithmetic (libm).
    public func value(_ x: Float) -> Float {
        switch self {
        case .geluTanh:
            let u = 0.7978845608 * (x + 0.044715 * x * x * x)
            return 0.5 * x * (1 + Foundation.tanh(u))
        case .geluErf: return 0.5 * x * (1 + Foundation.erf(x * 0.70710678118654752))
        case .tanh: return Foundation.tanh(x)
        case .logistic: return 1 / (1 + Foundation.exp(-x))
        case .exp: return Foundation.exp(x)
        }
    }

    /// The reference: f'(x), given x and y = f(x).
    public func derivative(_ x: Float, _ y: Float) -> Float {
        switch self {
        case .geluTanh:
            let u = 0.7978845608 * (x + 0.044715 * x * x * x)
            let t = Foundation.tanh(u)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608 * (1 + 3 * 0.044715 * x * x)
        case .geluErf:
            // Φ(x) + x·φ(x)
            return 0.5 * (1 + Foundation.erf(x * 0.70710678118654752)) + x * 0.39894228040143268 * Foundation.exp(-0.5 * x * x)
        case .tanh: return 1 - y * y
        case .logistic: return y * (1 - y)
        case .exp: return y
        }
    }
}

/// GELU's tanh form in branch-free Float arithmetic the compiler vectorises (no libm call), with tanh as a 13/6-degree
/// rational interpolant on [−9, 9] (the one Eigen uses, `generic_fast_tanh_float`: a couple of ulp there; ±1 beyond, as in
/// FP32). oneDNN's eltwise primitive took ~3 ns a value for it on this AVX2 machine (a tenth of a GPT-style step).
public enum FastGELU {
    @inline(__always)
    public static func tanh(_ a: Float) -> Float {
        let x = Swift.min(Swift.max(a, -9), 9)
        let x2 = x * x
        var p: Float = x2 * -2.76076847742355e-16 + 2.00018790482477e-13
        p = x2 * p + -8.60467152213735e-11
        p = x2 * p + 5.12229709037114e-08
        p = x2 * p + 1.48572235717979e-05
        p = x2 * p + 6.37261928875436e-04
        p = x2 * p + 4.89352455891786e-03
        p = x * p
        var q: Float = x2 * 1.19825839466702e-06 + 1.18534705686654e-04
        q = x2 * q + 2.26843463243900e-03
        q = x2 * q + 4.89352518554385e-03
        return p / q
    }

    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    @inline(__always)
    public static func value(_ x: Float) -> Float {
        let t = tanh(0.7978845608 * (x + 0.044715 * x * x * x))
        return 0.5 * x * (1 + t)
    }

    /// d/dx of `value`
    @inline(__always)
    public static func derivative(_ x: Float) -> Float {
        let x2 = x * x
        let t = tanh(0.7978845608 * (x + 0.044715 * x2 * x))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608 * (1 + 3 * 0.044715 * x2)
    }
}

/// y = f(x) and dx = dy·f'(x) over `count` contiguous values.
public enum EltwiseKernel {
    struct Key: Hashable, Sendable {
        var algorithm: EltwiseAlgorithm
        var count: Int
        var backward: Bool
    }

    final class Primitives: DnnlExecutable, @unchecked Sendable {
        let prim: DnnlPrimitive
        let src, dst, diffDst, diffSrc: DnnlMemory

        init(_ k: Key) {
            var data = dnnlMD([k.count], dnnl_a)
            var fd = dnnl_eltwise_desc_t()
            let what = "eltwise \(k.algorithm) of \(k.count)"
            dnnlCheck(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, k.algorithm.dnnl, &data, 0, 0), "\(what) forward descriptor")
            let fwd = DnnlPrimitive(op: &fd, what)
            if k.backward {
                var bd = dnnl_eltwise_desc_t()
                dnnlCheck(dnnl_eltwise_backward_desc_init(&bd, k.algorithm.dnnl, &data, &data, 0, 0), "\(what) backward descriptor")
                prim = DnnlPrimitive(op: &bd, hint: fwd, what)
            } else {
                prim = fwd
            }
            src = DnnlMemory(data, owned: false); dst = DnnlMemory(data, owned: false)
            diffDst = DnnlMemory(data, owned: false); diffSrc = DnnlMemory(data, owned: false)
            super.init()
        }
    }

    static let cache = DnnlCache<Key, Primitives>()

    /// Each compute thread's share of `0..<count` in blocks of at most 2,048 values: `body(first, count, scratch)` writes
    /// `output[first..<first+count]` (a 2,048-value scratch buffer in cache at hand), then the block is rounded by
    /// `round` while it is still in cache.
    /// `codes`: the rounded blocks' codes written too (with `round`).
    static func inBlocks(_ count: Int, of output: UnsafeMutablePointer<Float>, rounding round: RoundingTask?,
                         codes: CodesWriter? = nil, _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        parallelChunks(count, minimumPerThread: 1 << 13) { r in
            var tally = RoundingTask.Tally()
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2048) { tmp in
                var lo = r.lowerBound
                while lo < r.upperBound {
                    let n = min(2048, r.upperBound - lo)
                    body(lo, n, tmp.baseAddress!)
                    if let round {
                        round.round(output + lo, count: n, offset: lo, into: &tally)
                        codes?.write(output + lo, count: n, offset: lo)
                    }
                    lo += n
                }
            }
            round?.merge(tally)
        }
    }

    /// GELU's tanh form in training in a Dojo format, its output written as codes only (no FP32 values): each block
    /// of x (its FP32 values, or decoded from `xPacked`) made, rounded by `round` and coded by `codes` in a scratch
    /// buffer in cache. What reads the output (the next layer's product, on BF16 codes as they are, and its weight
    /// gradient) reads the codes; a reader that needs FP32 decodes them. 2 or 1 bytes written a value, not 4 + 2.
    public static func geluTanhIntoCodes(count: Int, x: UnsafePointer<Float>?, xPacked: PackedValues?, round: RoundingTask,
                                         codes: CodesWriter) {
        precondition(x != nil || xPacked != nil, "geluTanhIntoCodes: no input")
        let input = x.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        round.roundIntoCodes(units: count, blockUnits: 2048, minimumPerThread: 1 << 13, codes: codes) { lo, n, out, decoded in
            if let input { dojo_gelu_tanh_f32(input.p + lo, out, n); return }
            // (decoded into the spare buffer: the loop does not vectorise in place)
            xPacked!.read(lo, count: n, into: decoded)
            dojo_gelu_tanh_f32(decoded, out, n)
        }
    }

    /// Below this many values the scalar loop is as fast as a primitive call (and makes no cached primitive).
    static let smallest = 4096

    /// `round`: the output rounded block by block as the loop writes it, where the loop is this engine's own (GELU's
    /// tanh form). Returns whether it did (false: the caller rounds in a pass of its own).
    /// `codes` (with `round`): the rounded values' codes written too (`CodesWriter.finish` keeps them).
    @discardableResult
    public static func forward(_ algorithm: EltwiseAlgorithm, count: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               backend: KernelBackend = .oneDNN, round: RoundingTask? = nil, codes: CodesWriter? = nil) -> Bool {
        if backend == .reference || count < smallest {
            parallelChunks(count) { r in for i in r { y[i] = algorithm.value(x[i]) } }
            return false
        }
        if algorithm == .geluTanh {
            // a block at a time through a copy in cache: the loop does not vectorise over two pointers to the same
            // memory (in place, over an input kept packed, `Tensor.outputOverPackedInput`), and the block is rounded
            // (and coded) while it is in cache
            let inPlace = UnsafePointer(y) == x
            inBlocks(count, of: y, rounding: round, codes: codes) { lo, n, t in
                let src: UnsafePointer<Float>
                if inPlace { t.update(from: x + lo, count: n); src = UnsafePointer(t) } else { src = x + lo }
                // FastGELU's arithmetic in CDojoKernels (8 lanes with AVX2; this package's Swift gets SSE2's 4)
                dojo_gelu_tanh_f32(src, y + lo, n)
            }
            return round != nil
        }
        let k = Key(algorithm: algorithm, count: count, backward: false)
        let p = cache.get(k) { Primitives(k) }
        p.exclusive {
            p.src.set(x); p.dst.set(y)
            p.prim.run(p.stream, [dnnlArg(DNNL_ARG_SRC, p.src), dnnlArg(DNNL_ARG_DST, p.dst)])
            p.stream.wait()
        }
        return false
    }

    /// dx = dy · f'(x), from `x` or from `y` = f(x) as `derivativeReadsOutput` says (the other is not read: a caller
    /// that keeps only one may pass the same pointer for both).
    ///
    /// Where the loop is this engine's own (GELU's tanh form): `xPacked`, x held packed, decoded a block at a time
    /// (`x` is then not read); `round`, dx rounded block by block as it is written, and `codes` written for each block
    /// after its rounding. Returns whether it rounded.
    @discardableResult
    public static func backward(_ algorithm: EltwiseAlgorithm, count: Int, x: UnsafePointer<Float>, y: UnsafePointer<Float>,
                                dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, backend: KernelBackend = .oneDNN,
                                xPacked: PackedValues? = nil, round: RoundingTask? = nil, codes: CodesWriter? = nil) -> Bool {
        if backend == .reference || count < smallest {
            precondition(xPacked == nil, "the reference loop reads x itself")
            parallelChunks(count) { r in for i in r { dx[i] = dy[i] * algorithm.derivative(x[i], y[i]) } }
            return false
        }
        if algorithm == .geluTanh {
            guard xPacked != nil || round != nil else {
                parallelChunks(count, minimumPerThread: 1 << 13) { r in
                    dojo_gelu_tanh_backward_f32(x + r.lowerBound, dy + r.lowerBound, dx + r.lowerBound, r.count)
                }
                return false
            }
            inBlocks(count, of: dx, rounding: round, codes: codes) { lo, n, t in
                var bx = x + lo
                if let xPacked { xPacked.read(lo, count: n, into: t); bx = UnsafePointer(t) }
                dojo_gelu_tanh_backward_f32(bx, dy + lo, dx + lo, n)
            }
            return round != nil
        }
        precondition(xPacked == nil, "oneDNN's primitive reads x itself")
        let k = Key(algorithm: algorithm, count: count, backward: true)
        let p = cache.get(k) { Primitives(k) }
        p.exclusive {
            let (data, argument) = algorithm.derivativeReadsOutput ? (y, DNNL_ARG_DST) : (x, DNNL_ARG_SRC)
            p.src.set(data); p.diffDst.set(dy); p.diffSrc.set(dx)
            p.prim.run(p.stream, [dnnlArg(argument, p.src), dnnlArg(DNNL_ARG_DIFF_DST, p.diffDst), dnnlArg(DNNL_ARG_DIFF_SRC, p.diffSrc)])
            p.stream.wait()
        }
        return false
    }
}
