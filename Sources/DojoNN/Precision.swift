import DojoGraph
import DojoNumerics
import DojoTensor
import Foundation

/// Dojo-style mixed precision: weights, activations and gradients are rounded to a Dojo format while master
/// weights and accumulation stay FP32 (the CFP whitepaper: arithmetic "expanded to wider data types, such as
/// Float32"). For CFP8, weights and activations use 1-4-3 (more precision) and gradients 1-5-2 (more range),
/// each tensor with its own exponent bias chosen from its recent maximum magnitude, as the whitepaper's
/// "configurable bias" that "does not change frequently" intends.
public final class PrecisionPolicy: @unchecked Sendable {
    public enum Mode: String, Sendable, CaseIterable { case fp32, bf16, cfp8 }

    public let mode: Mode
    /// Stochastic rounding for gradients (reproducible: the seed, the step and the site fix the random stream).
    public let stochasticGradients: Bool
    public let seed: UInt64
    /// How many recent maxima choose a tensor's bias (assumption: 16 steps, a parameter).
    public let historyLength: Int
    /// The training step, set by the trainer; part of the stochastic-rounding stream.
    public var step: Int = 0
    /// Whether rounding notes maxima in the history (off during evaluation, so evaluating changes nothing).
    public var updatesHistory = true
    /// Recent maximum magnitudes per rounding site (`<layer path>.<weight|activation|gradient>`).
    public private(set) var history: [String: [Float]] = [:]
    /// Exception flags raised so far (overflow clamps, underflows) — what a Dojo user would watch.
    public private(set) var flags: ExceptionFlags = []

    public init(mode: Mode, stochasticGradients: Bool = false, seed: UInt64 = 0, historyLength: Int = 16) {
        self.mode = mode; self.stochasticGradients = stochasticGradients; self.seed = seed; self.historyLength = historyLength
    }

    /// The format activations are rounded to (nil in FP32).
    public var activationType: DType? { weightFormat.map(Self.dtype) }
    var weightFormat: Format? { mode == .fp32 ? nil : (mode == .bf16 ? .bf16 : .cfp8_143) }
    var gradientFormat: Format? { mode == .fp32 ? nil : (mode == .bf16 ? .bf16 : .cfp8_152) }

    static func dtype(_ f: Format) -> DType {
        switch f {
        case .bf16: return .bf16
        case .cfp8_143: return .cfp8_143
        case .cfp8_152: return .cfp8_152
        case .shp: return .shp
        case .uhp: return .uhp
        }
    }

    /// Notes a tensor's maximum magnitude in its site's history (the last `historyLength`).
    func note(_ amax: Float, site: String) {
        guard updatesHistory, amax.isFinite else { return }
        var h = history[site] ?? []
        h.append(amax)
        if h.count > historyLength { h.removeFirst(h.count - historyLength) }
        history[site] = h
    }

    func rounding(site: String, stochastic: Bool) -> Rounding {
        guard stochastic else { return .nearestEven }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in site.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return .stochastic(seed: seed ^ h ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15))
    }

    /// Headroom of delayed scaling: the bias leaves room for values this many times the largest recent maximum
    /// (assumption: 2, one binade; with none, a ViT or CNN whose gradients grew between steps clamped them).
    public var delayedScalingHeadroom: Float = 2

    /// Starts one tensor's rounding for a site when its format is known before the values are: always for BF16
    /// (no bias to choose); for CFP8 by **delayed scaling** (as FP8 training recipes do, and as the CFP whitepaper's
    /// bias that "does not change frequently" allows) once the site has `historyLength` maxima: the bias comes from
    /// the largest of them times `delayedScalingHeadroom`, and this tensor's maximum is found while rounding and noted
    /// for the next steps; a value above that range clamps to the format's largest and raises the overflow flag.
    /// Nil while a CFP8 site is still young: its tensors are scanned first (`roundingPass`).
    func task(_ f: Format, site: String, stochastic: Bool) -> RoundingTask? {
        let nf: NumberFormat
        if f == .bf16 {
            nf = try! NumberFormat(.bf16)
        } else if let earlier = history[site], earlier.count >= historyLength, let largest = earlier.max() {
            nf = try! NumberFormat(f, bias: NumberFormat.bias(for: f, maxMagnitude: largest * delayedScalingHeadroom))
        } else {
            return nil
        }
        return task(nf, tracked: f != .bf16, site: site, stochastic: stochastic)
    }

    /// A rounding to `nf`; `tracked`: the largest magnitude is found while rounding and noted in the site's history.
    private func task(_ nf: NumberFormat, tracked: Bool, site: String, stochastic: Bool) -> RoundingTask {
        let r = rounding(site: site, stochastic: stochastic)
        // the format's constants set up once for every span this tensor's kernel rounds
        let rounder = NumberFormat.SpanRounder(nf, rounding: r)
        // BF16 and CFP8 to nearest-even: a kernel whose output is held as codes only rounds and codes each span in one
        // pass (BF16 roundings are not tracked: its C pass finds no largest magnitude)
        var codesSpan: RoundingTask.CodesSpan? = nil
        if rounder.roundsIntoCodes {
            codesSpan = { (p: UnsafeMutablePointer<Float>, count: Int, offset: Int, codes: UnsafeMutableRawPointer) -> (UInt8, Float, Bool) in
                var top: UInt32 = 0
                let r = rounder.roundIntoCodes(p, count: count, offset: UInt64(offset), codes: codes, largest: &top)
                return (r.flags.rawValue, tracked ? NumberFormat.SpanRounder.magnitude(top) : 0, r.coded)
            }
        }
        return RoundingTask(bf16NearestEven: nf.format == .bf16 && !stochastic, numberFormat: nf, span: { p, count, offset in
            var top: UInt32 = 0
            let bits = rounder.round(p, count: count, offset: UInt64(offset), largest: &top).rawValue
            return (bits, tracked ? NumberFormat.SpanRounder.magnitude(top) : 0)
        }, codesSpan: codesSpan, done: { [self] tally in
            flags.formUnion(ExceptionFlags(rawValue: tally.flags))
            if tracked { note(tally.largest, site: site) }
        })
    }

    /// Rounds a buffer for a site, in one pass over it (`task`; a young CFP8 site scans the tensor for its maximum
    /// first and takes its bias from it). The rounding runs on the compute threads' OpenMP pool, a slice each (the
    /// counter-based random stream is indexed by the value's position, so slices round exactly as the whole buffer
    /// would), copying and rounding a block at a time while it is in cache: DojoNumerics' own GCD threads competed
    /// for the cores with OpenMP workers still spinning after the last kernel.
    func roundingPass(_ f: Format, site: String, stochastic: Bool) -> Tensor.RoundingPass {
        { [self] source, buffer in
            guard let base = buffer.baseAddress, buffer.count > 0 else { return nil }
            let job: RoundingTask
            if let t = task(f, site: site, stochastic: stochastic) {
                job = t
            } else {
                let amax = Tensor.maxMagnitude(of: UnsafeBufferPointer(start: source ?? UnsafePointer(base), count: buffer.count))
                note(amax, site: site)
                let nf = try! NumberFormat(f, bias: NumberFormat.bias(for: f, maxMagnitude: amax.isFinite ? amax : 0))
                job = task(nf, tracked: false, site: site, stochastic: stochastic)
            }
            let parts = max(1, min(ComputeThreads.count, buffer.count / (1 << 15)))
            let block = 1 << 14   // copied and rounded while it is in cache
            ComputeThreads.parallelChunks(parts, elements: parts << 15) { range in
                for k in range {
                    let lo = buffer.count * k / parts, hi = buffer.count * (k + 1) / parts
                    var tally = RoundingTask.Tally()
                    var start = lo
                    while start < hi {
                        let end = min(start + block, hi)
                        if let source { (base + start).update(from: source + start, count: end - start) }
                        job.round(base + start, count: end - start, offset: start, into: &tally)
                        start = end
                    }
                    job.merge(tally)
                }
            }
            job.finish()
            return job.numberFormat
        }
    }

    /// A site's rounding in both forms (a pass of its own, or span by span in the kernel that writes the tensor).
    func rounding(_ f: Format, site: String, stochastic: Bool) -> TensorRounding {
        TensorRounding(dtype: Self.dtype(f), pass: roundingPass(f, site: site, stochastic: stochastic),
                 begin: { [self] in task(f, site: site, stochastic: stochastic) })
    }

    /// A weight as the forward pass uses it.
    public func weight(_ w: Tensor, site: String) -> Tensor {
        guard let f = weightFormat else { return w }
        return w.rounded(to: Self.dtype(f), roundingPass(f, site: site, stochastic: false))
    }

    /// A layer's output, and (backward) the gradient that flows into it.
    /// - exclusive: `y` is a fresh tensor nothing else reads unrounded (not the layer's input or a parameter, nor a
    ///   view of them): rounded in place.
    /// - alreadyRounded: the kernel that made `y` rounded it as it wrote it, by `outputRounding(site:)`.
    public func activation(_ y: Tensor, site: String, exclusive: Bool = false, alreadyRounded: Bool = false) -> Tensor {
        guard let f = weightFormat, let gf = gradientFormat else { return y }
        let forward = rounding(f, site: site + ".activation", stochastic: false)
        return y.rounded(to: Self.dtype(f), inPlace: exclusive, alreadyRounded: alreadyRounded, forward.pass, spans: forward,
                         gradient: rounding(gf, site: site + ".gradient", stochastic: stochasticGradients))
    }

    /// The rounding of a layer's output, for a kernel that rounds it span by span as it writes it (then
    /// `activation(_:site:alreadyRounded: true)` records it); nil in FP32.
    public func outputRounding(site: String) -> TensorRounding? {
        guard let f = weightFormat else { return nil }
        return rounding(f, site: site + ".activation", stochastic: false)
    }

    /// A parameter's gradient before the optimizer uses it.
    public func roundGradient(_ g: Tensor, site: String) {
        guard let gf = gradientFormat else { return }
        _ = roundingPass(gf, site: site + ".grad", stochastic: stochasticGradients)(nil, g.storage.buffer)
    }

    /// The history, for checkpoints (a resumed run must choose the same biases).
    public func restore(history: [String: [Float]]) { self.history = history }
}
