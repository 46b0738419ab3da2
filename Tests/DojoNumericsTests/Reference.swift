import Foundation
import DojoNumerics

/// An independent reference for the formats, written from the whitepaper's rules with Double arithmetic
/// (pow/scalbn); it never calls the implementation.
struct Reference {
    let format: Format
    let bias: Int
    let asPrinted: Bool

    var e: Int { format.exponentBits }
    var m: Int { format.mantissaBits }
    var signed: Bool { format != .uhp }
    var width: Int { (signed ? 1 : 0) + e + m }

    /// The value of a code; nil for a NaN code (BF16 only).
    func value(_ code: Int) -> Double? {
        let magBits = e + m
        let mag = code & ((1 << magBits) - 1)
        let negative = signed && (code >> magBits) & 1 == 1
        let ef = mag >> m
        let mant = Double(mag & ((1 << m) - 1))
        let frac = mant / pow(2.0, Double(m))
        var v: Double
        if format == .bf16 {
            if ef == 255 {
                if mant != 0 { return nil }
                v = .infinity
            } else if ef == 0 {
                v = frac * pow(2.0, -126)
            } else {
                v = (1 + frac) * pow(2.0, Double(ef - 127))
            }
        } else if ef == 0 {
            // Denormal ±0.m × 2^(−bias) as printed, or 2^(1−bias) (IEEE-style).
            v = scalbn(frac, asPrinted ? -bias : 1 - bias)
        } else {
            // Normal for every E = 1 … all-ones.
            v = (1 + frac) * pow(2.0, Double(ef - bias))
        }
        return negative ? -v : v
    }

    /// Non-negative representable magnitudes with their codes, ascending (finite values only).
    func magnitudes() -> [(value: Double, code: Int)] {
        var out: [(Double, Int)] = []
        for c in 0..<(1 << (e + m)) {
            if let v = value(c), v.isFinite { out.append((v, c)) }
        }
        out.sort { $0.0 < $1.0 }
        return out
    }
}

/// Round-to-nearest-even by search over the sorted magnitude list: an independent reference for CFP
/// formats. Values beyond max compete with a virtual next value (max + ulp, code maxCode + 1, even) as
/// an unbounded exponent would: choosing it means overflow (clamp to max).
struct ReferenceQuantizer {
    let ref: Reference
    let mags: [(value: Double, code: Int)]
    let virtualTop: Double

    init(_ ref: Reference) {
        self.ref = ref
        mags = ref.magnitudes()
        let maxV = mags.last!.value
        let emax = (1 << ref.e) - 1
        virtualTop = maxV + pow(2.0, Double(emax - ref.bias - ref.m))
    }

    /// Expected (code, value, flags) for RNE.
    func encode(_ x: Float) -> (code: Int, value: Double, flags: ExceptionFlags) {
        let signBit = ref.signed ? 1 << (ref.e + ref.m) : 0
        let maxCode = mags.last!.code
        if x.isNaN { return (maxCode, mags.last!.value, .invalid) }
        if !ref.signed && x < 0 { return (0, 0, .invalid) }
        var flags: ExceptionFlags = []
        if x.isSubnormal { flags.insert(.denormal) }
        let neg = x.sign == .minus
        let s = neg && ref.signed ? signBit : 0
        if x.isInfinite { return (maxCode | s, neg ? -mags.last!.value : mags.last!.value, .overflow) }
        let a = Double(x.magnitude)
        // Neighbours.
        var lo = 0, hi = mags.count   // hi == mags.count: the virtual top
        var l = 0, h = mags.count - 1
        if a >= mags.last!.value { lo = mags.count - 1; hi = mags.count } else {
            while h - l > 1 { let mid = (l + h) / 2; if mags[mid].value <= a { l = mid } else { h = mid } }
            lo = l; hi = h
        }
        let loV = mags[lo].value, loC = mags[lo].code
        let hiV = hi == mags.count ? virtualTop : mags[hi].value
        let hiC = hi == mags.count ? maxCode + 1 : mags[hi].code
        let pickHi: Bool
        if a == loV { pickHi = false } else if a - loV > hiV - a { pickHi = true } else if a - loV < hiV - a { pickHi = false } else { pickHi = hiC % 2 == 0 }
        if pickHi && hi == mags.count {
            flags.insert(.overflow)
            return (maxCode | s, neg ? -mags.last!.value : mags.last!.value, flags)
        }
        let code = pickHi ? hiC : loC
        let v = pickHi ? hiV : loV
        let minNormal = pow(2.0, Double(1 - ref.bias))
        if a != 0 && v < minNormal && v != a { flags.insert(.underflow) }
        return (code | s, neg ? -v : v, flags)
    }
}

/// Deterministic test data.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random floats spread over the format's whole range and beyond, with specials mixed in.
func sampleFloats(count: Int, around f: NumberFormat, seed: UInt64) -> [Float] {
    var g = TestRNG(state: seed)
    let lo = Double(f.minPositive).exponent - 3
    let hi = Double(f.maxMagnitude).exponent + 2
    var out: [Float] = []
    out.reserveCapacity(count)
    for i in 0..<count {
        switch i % 97 {
        case 0: out.append(0)
        case 1: out.append(-0.0)
        case 2: out.append(Float(bitPattern: UInt32.random(in: 1..<0x80_0000, using: &g)))   // FP32 subnormal
        case 3: out.append(i % 2 == 0 ? .infinity : -.infinity)
        case 4: out.append(.nan)
        default:
            let e = Int.random(in: Int(lo)...Int(hi), using: &g)
            let v = Float(sign: Bool.random(using: &g) ? .minus : .plus, exponent: e,
                          significand: Float.random(in: 1..<2, using: &g))
            out.append(v)
        }
    }
    return out
}
