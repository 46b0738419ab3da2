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

    /// The format (with bias) for a site, after noting this tensor's maximum in the site's history.
    func format(_ f: Format, site: String, maxMagnitude amax: Float) -> NumberFormat {
        if f == .bf16 { return try! NumberFormat(.bf16) }
        var h = history[site] ?? []
        if amax.isFinite { h.append(amax) }
        if h.count > historyLength { h.removeFirst(h.count - historyLength) }
        if updatesHistory { history[site] = h }
        let bias = NumberFormat.bias(for: f, maxMagnitude: h.max() ?? 0)
        return try! NumberFormat(f, bias: bias)
    }

    func rounding(site: String, stochastic: Bool) -> Rounding {
        guard stochastic else { return .nearestEven }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in site.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return .stochastic(seed: seed ^ h ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15))
    }

    func roundingClosure(_ f: Format, site: String, stochastic: Bool) -> (UnsafeMutableBufferPointer<Float>) -> Void {
        { [self] buffer in
            let amax = Tensor.maxMagnitude(of: UnsafeBufferPointer(buffer))
            let nf = format(f, site: site, maxMagnitude: amax)
            flags.formUnion(nf.roundInPlace(buffer, rounding: rounding(site: site, stochastic: stochastic)))
        }
    }

    /// A weight as the forward pass uses it.
    public func weight(_ w: Tensor, site: String) -> Tensor {
        guard let f = weightFormat else { return w }
        return w.rounded(to: Self.dtype(f), roundingClosure(f, site: site, stochastic: false))
    }

    /// A layer's output, and (backward) the gradient that flows into it.
    public func activation(_ y: Tensor, site: String) -> Tensor {
        guard let f = weightFormat, let gf = gradientFormat else { return y }
        return y.rounded(to: Self.dtype(f), roundingClosure(f, site: site + ".activation", stochastic: false),
                         gradient: roundingClosure(gf, site: site + ".gradient", stochastic: stochasticGradients))
    }

    /// A parameter's gradient before the optimizer uses it.
    public func roundGradient(_ g: Tensor, site: String) {
        guard let gf = gradientFormat else { return }
        roundingClosure(gf, site: site + ".grad", stochastic: stochasticGradients)(g.storage.buffer)
    }

    /// The history, for checkpoints (a resumed run must choose the same biases).
    public func restore(history: [String: [Float]]) { self.history = history }
}
