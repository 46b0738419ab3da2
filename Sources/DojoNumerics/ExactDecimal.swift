/// The exact decimal value of a Float (not the shortest round-tripping form): 2^-62 prints all 44 digits
/// after the point. Integers print without a point ("3"), zero as "0" or "-0", and "inf", "-inf", "nan".
public func exactDecimal(_ x: Float) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    let sign = x.sign == .minus ? "-" : ""
    if x == 0 { return sign + "0" }
    // x = m × 2^e with m an integer.
    let bits = x.bitPattern & 0x7FFF_FFFF
    let ef = Int(bits >> 23)
    var m = UInt32(bits & 0x7F_FFFF)
    var e: Int
    if ef == 0 { e = -149 } else { m |= 0x80_0000; e = ef - 150 }
    while m & 1 == 0 { m >>= 1; e += 1 }
    var digits = BigDecimalDigits(UInt64(m))
    if e >= 0 {
        for _ in 0..<e { digits.multiply(by: 2) }
        return sign + digits.string
    }
    // m × 2^e = m × 5^(−e) / 10^(−e).
    for _ in 0..<(-e) { digits.multiply(by: 5) }
    var s = digits.string
    let point = -e
    if s.count <= point { s = String(repeating: "0", count: point - s.count + 1) + s }
    let intPart = s.dropLast(point)
    let frac = s.suffix(point)   // never ends in 0: m odd and 5^k odd, so the product is odd
    return sign + intPart + "." + frac
}

/// A non-negative big integer in base 10^9 limbs, least significant first.
struct BigDecimalDigits {
    private var limbs: [UInt32]
    private static let base: UInt64 = 1_000_000_000

    init(_ v: UInt64) {
        var v = v
        limbs = []
        repeat {
            limbs.append(UInt32(v % Self.base))
            v /= Self.base
        } while v > 0
    }

    mutating func multiply(by k: UInt32) {
        var carry: UInt64 = 0
        for i in limbs.indices {
            let t = UInt64(limbs[i]) * UInt64(k) + carry
            limbs[i] = UInt32(t % Self.base)
            carry = t / Self.base
        }
        while carry > 0 {
            limbs.append(UInt32(carry % Self.base))
            carry /= Self.base
        }
    }

    var string: String {
        var s = String(limbs.last!)
        for limb in limbs.dropLast().reversed() {
            let d = String(limb)
            s += String(repeating: "0", count: 9 - d.count) + d
        }
        return s
    }
}
