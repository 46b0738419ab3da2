// Tesla's number formats as its CFloat whitepaper ("Tesla Dojo Technology: A Guide to Tesla's Configurable
// Floating Point Formats & Arithmetic", S5 in docs/SOURCES.md §8) defines them, plus BF16.
//
// Code layout for every format: sign in the top bit (none for UHP), then the exponent field, then the
// stored mantissa. Codes are held in the low `bitWidth` bits of a UInt16; higher bits are ignored.

/// The storage formats.
public enum Format: String, CaseIterable, Sendable {
    /// Google BFloat16: 1 sign, 8 exponent, 7 mantissa, bias 127, IEEE-like with Inf/NaN and subnormals (S5 p2-p3).
    case bf16
    /// CFloat8 1-4-3: 1 sign, 4 exponent, 3 mantissa, 6-bit configurable bias (S5 p4-p6).
    case cfp8_143 = "cfp8-143"
    /// CFloat8 1-5-2: 1 sign, 5 exponent, 2 mantissa, 6-bit configurable bias (S5 p4-p6).
    case cfp8_152 = "cfp8-152"
    /// CFloat16 signed half precision: 1 sign, 5 exponent, 10 mantissa, 6-bit configurable bias (S5 p8 Table 6).
    case shp
    /// CFloat16 unsigned half precision: no sign, 6 exponent, 10 mantissa; the table text reads bias 31,
    /// configurable here as a switch (S5 p8 Table 6, docs/SOURCES.md §12).
    case uhp

    /// Whether the code has a sign bit (all but UHP).
    public var isSigned: Bool { self != .uhp }
    /// Width of the exponent field in bits.
    public var exponentBits: Int {
        switch self {
        case .bf16: 8
        case .cfp8_143: 4
        case .cfp8_152: 5
        case .shp: 5
        case .uhp: 6
        }
    }
    /// Width of the stored mantissa in bits.
    public var mantissaBits: Int {
        switch self {
        case .bf16: 7
        case .cfp8_143: 3
        case .cfp8_152: 2
        case .shp: 10
        case .uhp: 10
        }
    }
    /// Total code width in bits (8 or 16).
    public var bitWidth: Int { (isSigned ? 1 : 0) + exponentBits + mantissaBits }

    /// The bias used when a user gives none.
    ///
    /// ASSUMPTION: the whitepaper makes the CFP biases configurable and gives no default. We pick the
    /// IEEE-style centre bias 2^(e−1)−1 for the CFP8 and SHP formats (cfp8-143: 7, cfp8-152: 15, shp: 15)
    /// and the "31" the UHP table text reads (docs/SOURCES.md §12). BF16's bias is fixed at 127.
    public var defaultBias: Int {
        switch self {
        case .bf16: 127
        case .cfp8_143: 7
        case .cfp8_152: 15
        case .shp: 15
        case .uhp: 31
        }
    }

    /// "1-4-3 (sign, exponent, mantissa)" and the like.
    public var layout: String {
        isSigned ? "1-\(exponentBits)-\(mantissaBits) (sign-exponent-mantissa)"
                 : "0-\(exponentBits)-\(mantissaBits) (unsigned: exponent-mantissa)"
    }
}

/// The scale of CFP denormals (exponent field 0, mantissa m ≠ 0).
///
/// The whitepaper prints `±0.m × 2^(−bias)` (S5 p6): `.asPrinted`, the default. IEEE-style gradual underflow
/// would be `0.m × 2^(1−bias)`: `.ieee`. docs/SOURCES.md §12 lists the conflict; we make it a switch. With
/// `.asPrinted` the denormals stop at `(1 − 2^−M)·2^(−bias)`, leaving a gap below the smallest normal
/// `2^(1−bias)`; rounding treats the two neighbours of the gap like any other pair of neighbours.
/// The switch applies to CFP8, SHP and UHP alike (the whitepaper gives no formula for CFP16 denormals:
/// an ASSUMPTION). BF16 is IEEE and ignores it.
public enum DenormalScale: String, CaseIterable, Sendable {
    case asPrinted = "as-printed"
    case ieee
}

/// How to round a value that is not representable.
public enum Rounding: Sendable, Hashable {
    /// Round to nearest, ties to the even code (the whitepaper names round-to-nearest and no tie rule).
    case nearestEven
    /// Round away from zero in magnitude with probability (|x| − lo)/(hi − lo), where lo and hi are the
    /// neighbouring representable magnitudes. The random number for element `index` is a pure function of
    /// `(seed, index)` (`CounterRNG`), so results are reproducible and independent of how work is split.
    ///
    /// Precision of P(up): in the normal range the random threshold has exactly as many bits as the FP32
    /// mantissa bits dropped, so P(up) is exactly (|x| − lo)/(hi − lo) for every FP32 input; below the
    /// smallest normal the threshold has up to 64 bits (error < 2^−64); in the as-printed gap below
    /// 2^(1−bias), whose width (2^M + 1 denormal units) is not a power of two, P(up) is within 2^−32.
    case stochastic(seed: UInt64)
}

/// The four exception flags of the whitepaper (S5 p9). How we raise them:
/// - `invalid`: a NaN input (the result is +max for CFP formats, as SHP's clamp rule says, and a quiet
///   NaN for BF16); a negative nonzero input to UHP (the result is 0). -0.0 to UHP gives 0 and no flag.
/// - `denormal`: the input operand is denormal: an FP32 subnormal being encoded or rounded, or a denormal
///   code being decoded.
/// - `overflow`: the result was clamped to ±max because the rounded magnitude exceeds max (IEEE's rule:
///   rounding with an unbounded exponent gives more than max); also ±Inf inputs to CFP formats. For BF16,
///   a finite input that rounds to ±Inf.
/// - `underflow`: a nonzero input whose result is zero or denormal and not exact.
public struct ExceptionFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let invalid = ExceptionFlags(rawValue: 1)
    public static let denormal = ExceptionFlags(rawValue: 2)
    public static let overflow = ExceptionFlags(rawValue: 4)
    public static let underflow = ExceptionFlags(rawValue: 8)

    /// "invalid,overflow", or "none".
    public var description: String {
        var names: [String] = []
        if contains(.invalid) { names.append("invalid") }
        if contains(.denormal) { names.append("denormal") }
        if contains(.overflow) { names.append("overflow") }
        if contains(.underflow) { names.append("underflow") }
        return names.isEmpty ? "none" : names.joined(separator: ",")
    }
}

/// Errors a user can cause when describing a format.
public enum NumericsError: Error, Sendable, Hashable, CustomStringConvertible {
    case biasOutOfRange(bias: Int, format: Format)
    case biasNotConfigurable(bias: Int, format: Format)
    case unknownFormat(String)
    case unknownDenormalScale(String)

    public var description: String {
        switch self {
        case let .biasOutOfRange(bias, format):
            "bias \(bias) is out of range 0…63 for \(format.rawValue)"
        case let .biasNotConfigurable(bias, format):
            "bias \(bias) given for \(format.rawValue), whose bias is fixed at \(format.defaultBias)"
        case let .unknownFormat(name):
            "unknown format '\(name)'; valid formats: \(Format.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .unknownDenormalScale(name):
            "unknown denormal scale '\(name)'; valid: \(DenormalScale.allCases.map(\.rawValue).joined(separator: ", "))"
        }
    }
}

/// The class of a code.
public enum CodeClass: String, Sendable {
    case zero, denormal, normal, infinity = "inf", nan
}

/// A format with its bias: the unit every conversion works with.
public struct NumberFormat: Sendable, Hashable, CustomStringConvertible {
    public let format: Format
    /// The exponent bias: 0…63 for CFP formats, 127 for BF16.
    public let bias: Int
    /// Denormal scale for CFP formats; always `.ieee` for BF16.
    public let denormalScale: DenormalScale

    /// - Parameters:
    ///   - bias: 0…63 for CFP formats; `nil` means `format.defaultBias` (an ASSUMPTION, see `Format.defaultBias`).
    ///     BF16's bias is fixed: passing one is an error.
    ///   - denormalScale: see `DenormalScale`; ignored for BF16.
    public init(_ format: Format, bias: Int? = nil, denormalScale: DenormalScale = .asPrinted) throws(NumericsError) {
        self.format = format
        if format == .bf16 {
            if let bias { throw .biasNotConfigurable(bias: bias, format: format) }
            self.bias = 127
            self.denormalScale = .ieee
        } else {
            let b = bias ?? format.defaultBias
            guard (0...63).contains(b) else { throw .biasOutOfRange(bias: b, format: format) }
            self.bias = b
            self.denormalScale = denormalScale
        }
    }

    public var description: String {
        format == .bf16 ? "bf16" : "\(format.rawValue) (bias \(bias), \(denormalScale.rawValue) denormals)"
    }

    public var bitWidth: Int { format.bitWidth }
    /// Number of codes: 2^bitWidth.
    public var codeCount: Int { 1 << bitWidth }
    /// The largest finite magnitude: (2 − 2^−M)·2^(Emax − bias), where Emax is the all-ones exponent for
    /// CFP formats (an ordinary normal value) and 254 for BF16.
    public var maxMagnitude: Float { Float(bitPattern: params.maxBits) }
    /// The smallest positive normal: 2^(1 − bias).
    public var minNormal: Float { Float(bitPattern: params.minNormalBits) }
    /// The smallest positive value: the denormal with mantissa 1, 2^(d) with d = −bias − M (`.asPrinted`)
    /// or 1 − bias − M (`.ieee`, and BF16).
    public var minPositive: Float { Float(sign: .plus, exponent: params.unitExponent, significand: 1) }

    /// The value of a code (exact in Float for every format and bias). Only the low `bitWidth` bits are used.
    /// The sign bit of a zero code gives -0.0.
    public func decode(_ code: UInt16) -> Float {
        Float(bitPattern: params.decodeBits(UInt32(code)).bits)
    }

    /// The value of a code and the flags decoding raises (`.denormal` for a denormal code).
    public func decodeReportingFlags(_ code: UInt16) -> (value: Float, flags: ExceptionFlags) {
        let r = params.decodeBits(UInt32(code))
        return (Float(bitPattern: r.bits), ExceptionFlags(rawValue: r.flags))
    }

    /// The class of a code.
    public func classify(_ code: UInt16) -> CodeClass {
        let p = params
        let mag = UInt32(code) & p.magMask
        let ef = mag >> p.mantissaBits
        let m = mag & p.mantMask
        if format == .bf16 && ef == 0xFF { return m == 0 ? .infinity : .nan }
        if ef == 0 { return m == 0 ? .zero : .denormal }
        return .normal
    }

    /// Converts an FP32 value to a code. `index` selects the random number for stochastic rounding.
    /// -0.0 and negative values that round to zero give the negative-zero code (sign bit set), as IEEE does;
    /// the whitepaper does not say what the sign of a zero means. UHP has no sign: they give code 0.
    public func encode(_ x: Float, rounding: Rounding = .nearestEven, index: UInt64 = 0) -> (code: UInt16, flags: ExceptionFlags) {
        let r = params.encodeBits(x.bitPattern, rng: rounding.rng, index: index)
        return (UInt16(truncatingIfNeeded: r.code), ExceptionFlags(rawValue: r.flags))
    }

    /// The nearest representable value (fake quantisation): `decode(encode(x).code)`.
    public func rounded(_ x: Float, rounding: Rounding = .nearestEven, index: UInt64 = 0) -> Float {
        decode(encode(x, rounding: rounding, index: index).code)
    }

    /// Converts a code of another format to this one by way of its exact FP32 value (e.g. BF16 → CFP8).
    /// The flags are those of decoding the source code and of encoding its value.
    public func convert(_ code: UInt16, from source: NumberFormat, rounding: Rounding = .nearestEven, index: UInt64 = 0) -> (code: UInt16, flags: ExceptionFlags) {
        let d = source.decodeReportingFlags(code)
        let e = encode(d.value, rounding: rounding, index: index)
        return (e.code, e.flags.union(d.flags))
    }

    /// The finest bias (the largest, 0…63) whose max magnitude is ≥ `amax` (its magnitude); 0 when even
    /// bias 0 cannot hold it (the values then clamp); `format.defaultBias` for amax = 0 or NaN, and for BF16.
    public static func bias(for format: Format, maxMagnitude amax: Float) -> Int {
        if format == .bf16 { return 127 }
        let m = amax.magnitude
        if m == 0 || m.isNaN { return format.defaultBias }
        for b in stride(from: 63, through: 0, by: -1) {
            // Max magnitude at bias b is exact in Float; denormal scale does not change it.
            let f = (try? NumberFormat(format, bias: b))!
            if f.maxMagnitude >= m { return b }
        }
        return 0
    }

    // MARK: - Precomputed parameters for the bit-level kernels

    var params: Params { Params(self) }
}

/// Integer parameters of a format, shared by the scalar and bulk kernels.
struct Params: Sendable {
    let isBF16: Bool
    let signed: Bool
    let mantissaBits: UInt32
    /// 23 − M: FP32 mantissa bits dropped.
    let shift: UInt32
    /// Mask of the dropped FP32 bits.
    let lowMask: UInt32
    /// Exponent+mantissa bits: the sign bit's position.
    let magBits: UInt32
    let magMask: UInt32
    let mantMask: UInt32
    /// Largest finite magnitude code.
    let maxCodeMag: UInt32
    /// (127 − bias) << 23: subtracting it from FP32 bits re-biases the exponent.
    let biasAdj: UInt32
    /// FP32 bits of 2^(1−bias).
    let minNormalBits: UInt32
    /// FP32 bits of the max magnitude.
    let maxBits: UInt32
    /// The denormal unit is 2^unitExponent.
    let unitExponent: Int
    let asPrinted: Bool

    init(_ f: NumberFormat) {
        let M = UInt32(f.format.mantissaBits)
        let E = UInt32(f.format.exponentBits)
        isBF16 = f.format == .bf16
        signed = f.format.isSigned
        mantissaBits = M
        shift = 23 - M
        lowMask = (1 << (23 - M)) - 1
        magBits = E + M
        magMask = (1 << (E + M)) - 1
        mantMask = (1 << M) - 1
        let b = UInt32(f.bias)
        if isBF16 {
            maxCodeMag = 0x7F7F
            biasAdj = 0
            minNormalBits = 0x0080_0000
            maxBits = 0x7F7F_0000
            unitExponent = -133
            asPrinted = false
        } else {
            maxCodeMag = (1 << (E + M)) - 1
            biasAdj = (127 - b) << 23
            minNormalBits = (128 - b) << 23
            let emaxField = (UInt32(1) << E) - 1
            maxBits = ((emaxField + 127 - b) << 23) | (((1 << M) - 1) << (23 - M))
            asPrinted = f.denormalScale == .asPrinted
            unitExponent = (asPrinted ? 0 : 1) - f.bias - Int(M)
        }
    }

    /// FP32 bits of a code's value, and `.denormal` for a denormal code.
    @inline(__always)
    func decodeBits(_ code: UInt32) -> (bits: UInt32, flags: UInt8) {
        if isBF16 {
            let c = code & 0xFFFF
            let den: UInt8 = (c & 0x7F80) == 0 && (c & 0x7F) != 0 ? ExceptionFlags.denormal.rawValue : 0
            return (c << 16, den)
        }
        let mag = code & magMask
        let sign: UInt32 = signed ? ((code >> magBits) & 1) << 31 : 0
        let ef = mag >> mantissaBits
        if ef == 0 {
            let m = mag & mantMask
            if m == 0 { return (sign, 0) }
            let v = Float(m) * Float(sign: .plus, exponent: unitExponent, significand: 1)
            return (v.bitPattern | sign, ExceptionFlags.denormal.rawValue)
        }
        return (((mag << shift) &+ biasAdj) | sign, 0)
    }

    /// Encodes FP32 bits; `rng` (nil for round-to-nearest-even) and `index` give the random numbers.
    @inline(__always)
    func encodeBits(_ bits: UInt32, rng: CounterRNG?, index: UInt64) -> (code: UInt32, flags: UInt8) {
        let a = bits & 0x7FFF_FFFF
        let neg = bits >> 31 != 0
        if isBF16 {
            let s = (bits >> 16) & 0x8000
            if a > 0x7F80_0000 { return ((bits >> 16) | 0x0040, ExceptionFlags.invalid.rawValue) }
            if a == 0x7F80_0000 { return (bits >> 16, 0) }
            var f: UInt8 = a != 0 && a < 0x0080_0000 ? ExceptionFlags.denormal.rawValue : 0
            let r = rng.map { a &+ ($0.bits32(at: index) & 0xFFFF) } ?? a &+ 0x7FFF &+ ((a >> 16) & 1)
            var c = r >> 16
            if c >= 0x7F80 {
                c = 0x7F80
                f |= ExceptionFlags.overflow.rawValue
            } else if c < 0x0080 && (a & 0xFFFF) != 0 {
                f |= ExceptionFlags.underflow.rawValue
            }
            return (c | s, f)
        }
        if a > 0x7F80_0000 { return (maxCodeMag, ExceptionFlags.invalid.rawValue) }
        if !signed && neg && a != 0 { return (0, ExceptionFlags.invalid.rawValue) }
        let signBit: UInt32 = signed && neg ? 1 << magBits : 0
        if a == 0x7F80_0000 { return (maxCodeMag | signBit, ExceptionFlags.overflow.rawValue) }
        let den: UInt8 = a != 0 && a < 0x0080_0000 ? ExceptionFlags.denormal.rawValue : 0
        let m = encodeMagnitude(a, rng: rng, index: index)
        return (m.code | signBit, m.flags | den)
    }

    /// Encodes a finite non-negative FP32 magnitude (bits) of a CFP format.
    @inline(__always)
    func encodeMagnitude(_ a: UInt32, rng: CounterRNG?, index: UInt64) -> (code: UInt32, flags: UInt8) {
        if a >= minNormalBits {
            let fixed = a &- biasAdj
            let r = rng.map { fixed &+ ($0.bits32(at: index) & lowMask) }
                ?? fixed &+ (lowMask >> 1) &+ ((fixed >> shift) & 1)
            let code = r >> shift
            if code > maxCodeMag { return (maxCodeMag, ExceptionFlags.overflow.rawValue) }
            return (code, 0)
        }
        if a == 0 { return (0, 0) }
        return encodeSmall(a, rand: rng?.bits64(at: index) ?? 0, stochastic: rng != nil)
    }

    /// Magnitudes below the smallest normal: denormals, and (`.asPrinted`) the gap below 2^(1−bias).
    func encodeSmall(_ a: UInt32, rand: UInt64, stochastic: Bool) -> (code: UInt32, flags: UInt8) {
        let ef = Int(a >> 23)
        let mant24 = UInt64(ef == 0 ? (a & 0x7F_FFFF) : (a & 0x7F_FFFF) | 0x80_0000)
        let p = ef == 0 ? -149 : ef - 150              // value = mant24 × 2^p
        let s = unitExponent - p                        // value in units = mant24 >> s; s ≥ 1 here
        let k: UInt64 = s >= 64 ? 0 : mant24 >> UInt64(s)
        let rem: UInt64 = s >= 64 ? mant24 : mant24 & ((1 << UInt64(s)) - 1)
        let top = UInt64(1) << UInt64(mantissaBits)     // 2^M
        let underflow = ExceptionFlags.underflow.rawValue

        if asPrinted && k >= top - 1 {
            // The gap between the largest denormal (2^M − 1 units) and the smallest normal (2^(M+1) units).
            // y in fixed point with 32 fraction bits (exact: y ≥ 1 so s ≤ 23).
            let yfix = mant24 << UInt64(32 - s)
            let diff = yfix - ((top - 1) << 32)
            let width = (top + 1) << 32
            let up: Bool
            if stochastic {
                // P(up) = ceil(2^32·diff/width)/2^32: within 2^−32 of (y − lo)/(hi − lo).
                up = (rand >> 32) * (top + 1) < diff
            } else {
                up = 2 * diff >= width                  // tie goes to the even code 2^M (the normal)
            }
            if up { return (UInt32(top), 0) }
            return (UInt32(top - 1), diff != 0 ? underflow : 0)
        }

        let up: Bool
        if stochastic {
            if s < 64 {
                up = (rand & ((1 << UInt64(s)) - 1)) < rem
            } else if s == 64 {
                up = rand < rem
            } else {
                up = s - 64 < 64 && rand < (rem >> UInt64(s - 64))
            }
        } else {
            if s > 25 {
                up = false                              // rem < 2^24 < half
            } else {
                let half = UInt64(1) << UInt64(s - 1)
                up = rem > half || (rem == half && k & 1 == 1)
            }
        }
        let q = k + (up ? 1 : 0)
        // q == 2^M with the IEEE scale is the smallest normal's code: a normal result, no underflow.
        let tiny = asPrinted || q < top
        return (UInt32(q), rem != 0 && tiny ? underflow : 0)
    }
}

/// Counter-based random numbers, a pure function of (seed, index), so that bulk conversion gives the same
/// result however it is split. Built on splitmix64 (its finaliser `mix` applied to a Weyl sequence started
/// from the hash of `seed`):
/// - `bits32(at: i)`: 32 bits for element i, half `i & 1` (low half for even i) of the splitmix64 output
///   for counter `i/2 + 1`; one 64-bit hash serves two neighbouring elements. Used in the normal range,
///   which needs at most 23 bits.
/// - `bits64(at: i)`: 64 bits for element i from a second, independent stream; used only below the
///   smallest normal, where the rounding threshold may need more than 32 bits.
public struct CounterRNG: Sendable, Hashable {
    public let seed: UInt64
    @usableFromInline let base: UInt64
    @usableFromInline let wideBase: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        self.base = CounterRNG.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        self.wideBase = CounterRNG.mix(base ^ 0xD1B5_4A32_D192_ED03)
    }

    @inlinable @inline(__always)
    public static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inlinable @inline(__always)
    public func bits32(at index: UInt64) -> UInt32 {
        let h = CounterRNG.mix(base &+ ((index >> 1) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
        return UInt32(truncatingIfNeeded: h >> ((index & 1) << 5))
    }

    @inlinable @inline(__always)
    public func bits64(at index: UInt64) -> UInt64 {
        CounterRNG.mix(wideBase &+ (index &+ 1) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// `out[j] = bits32(at: index0 + j)` for j in 0..<n, one hash per pair of elements.
    func fill32(_ out: UnsafeMutablePointer<UInt32>, count n: Int, from index0: UInt64) {
        var j = 0
        if n > 0 && index0 & 1 == 1 {
            out[0] = bits32(at: index0)
            j = 1
        }
        let pairs = (n - j) / 2
        let p0 = (index0 &+ UInt64(j)) >> 1
        let o = out + j
        for k in 0..<pairs {
            let h = CounterRNG.mix(base &+ (p0 &+ UInt64(k) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
            o[2 * k] = UInt32(truncatingIfNeeded: h)
            o[2 * k + 1] = UInt32(truncatingIfNeeded: h >> 32)
        }
        j += 2 * pairs
        if j < n { out[j] = bits32(at: index0 &+ UInt64(j)) }
    }
}
