import Foundation
import Testing
import DojoNumerics

@Suite("Stochastic rounding")
struct StochasticTests {
    /// Mean of n stochastic roundings of x; checks it is within 5σ of x, σ = (hi − lo)·√(p(1−p)/n).
    func checkUnbiased(_ f: NumberFormat, _ x: Float, lo: Double, hi: Double, seed: UInt64 = 1) {
        let n = 100_000
        var sum = 0.0
        var others = 0
        for i in 0..<n {
            let r = Double(f.rounded(x, rounding: .stochastic(seed: seed), index: UInt64(i)))
            if r.magnitude != lo && r.magnitude != hi { others += 1 }
            sum += r
        }
        let mean = sum / Double(n)
        let p = (Double(x.magnitude) - lo) / (hi - lo)
        let sigma = (hi - lo) * (p * (1 - p) / Double(n)).squareRoot()
        #expect(others == 0, "results must be one of the two neighbours")
        #expect(abs(mean - Double(x)) <= 5 * sigma + 1e-300, "\(f) x=\(x) mean=\(mean) σ=\(sigma)")
    }

    @Test("the mean of many conversions is the input (normal, denormal, as-printed gap, SHP, BF16)")
    func unbiased() throws {
        let c8 = try NumberFormat(.cfp8_143)
        checkUnbiased(c8, 1 + 0.3 * 0.125, lo: 1, hi: 1.125)
        checkUnbiased(c8, -(1 + 0.3 * 0.125), lo: 1, hi: 1.125)
        checkUnbiased(c8, 3 * 0x1p-10 + 0.7 * 0x1p-10, lo: 3 * 0x1p-10, hi: 4 * 0x1p-10)      // denormals
        // The as-printed gap between 0.875·2^-7 and 2^-6, width 9 units of 2^-10.
        checkUnbiased(c8, 0x1p-7 * 0.9, lo: 0.875 * 0x1p-7, hi: 0x1p-6)
        checkUnbiased(c8, 0x1p-12, lo: 0, hi: 0x1p-10)
        let shp = try NumberFormat(.shp, bias: 15, denormalScale: .ieee)
        checkUnbiased(shp, 1 + 0.123 * 0x1p-10, lo: 1, hi: 1 + 0x1p-10)
        let bf = try NumberFormat(.bf16)
        checkUnbiased(bf, 1 + 0.6 * 0x1p-7, lo: 1, hi: 1 + 0x1p-7)
        let c152 = try NumberFormat(.cfp8_152, bias: 15)
        checkUnbiased(c152, 1.3, lo: 1.25, hi: 1.5)
    }

    @Test("the same seed gives the same results; another seed different ones")
    func reproducible() throws {
        let f = try NumberFormat(.cfp8_152)
        let xs = sampleFloats(count: 5_000, around: f, seed: 3)
        let a = xs.enumerated().map { f.encode($1, rounding: .stochastic(seed: 11), index: UInt64($0)).code }
        let b = xs.enumerated().map { f.encode($1, rounding: .stochastic(seed: 11), index: UInt64($0)).code }
        let c = xs.enumerated().map { f.encode($1, rounding: .stochastic(seed: 12), index: UInt64($0)).code }
        #expect(a == b)
        #expect(a != c)
        let differing = zip(a, c).filter { $0 != $1 }.count
        #expect(differing > 500)
        // Exactly representable values never move.
        for code in UInt16(0)..<256 {
            let v = f.decode(code)
            #expect(f.encode(v, rounding: .stochastic(seed: 5), index: UInt64(code)).code == code)
        }
    }

    @Test("overflow under stochastic rounding clamps with the flag")
    func stochasticOverflow() throws {
        let f = try NumberFormat(.cfp8_143)
        var sawOverflow = false, sawMax = false
        for i in 0..<1000 {
            let r = f.encode(490, rounding: .stochastic(seed: 1), index: UInt64(i))
            #expect(r.code == 0x7F)
            if r.flags == .overflow { sawOverflow = true } else if r.flags == [] { sawMax = true }
        }
        #expect(sawOverflow && sawMax)
        #expect(f.encode(.nan, rounding: .stochastic(seed: 1)) == (0x7F, .invalid))
    }
}

@Suite("Bulk conversion")
struct BulkTests {
    static let formats: [NumberFormat] = [
        make(.bf16, 127), make(.cfp8_143, 7), make(.cfp8_143, 63, .ieee), make(.cfp8_152, 15),
        make(.cfp8_152, 0, .ieee), make(.shp, 15), make(.shp, 40, .ieee), make(.uhp, 31), make(.uhp, 10, .ieee),
    ]
    static let roundings: [Rounding] = [.nearestEven, .stochastic(seed: 99)]

    /// A buffer big enough to be split over 2 threads: mostly normal values (fast path) with blocks that
    /// contain denormals, overflow, NaN, Inf, FP32 subnormals and negatives (scalar path).
    func data(_ f: NumberFormat, count: Int) -> [Float] {
        var g = TestRNG(state: 5)
        let special = sampleFloats(count: count, around: f, seed: 9)
        let lo = f.minNormal, hi = f.maxMagnitude
        return (0..<count).map { i in
            if (i / 2048) % 5 == 3 { return special[i] }
            let v = Float.random(in: 0...1, using: &g)
            let x = Float(sign: .plus, exponent: Int(Float.random(in: 0...1, using: &g) * Float(hi.exponent - lo.exponent)) + Int(lo.exponent), significand: 1 + v)
            let y = min(x, hi)
            return f.format == .uhp || Bool.random(using: &g) ? y : -y
        }
    }

    @Test("bulk round/encode/decode equal the scalar conversion element by element", arguments: formats.indices, roundings)
    func bulkEqualsScalar(_ fi: Int, _ rounding: Rounding) {
        let f = Self.formats[fi]
        let n = 200_003
        let offset: UInt64 = 1_001   // odd: RNG pairs straddle the start
        let xs = data(f, count: n)
        var expectCodes = [UInt16](repeating: 0, count: n)
        var expectValues = [UInt32](repeating: 0, count: n)
        var expectFlags: ExceptionFlags = []
        for i in 0..<n {
            let e = f.encode(xs[i], rounding: rounding, index: offset + UInt64(i))
            expectCodes[i] = e.code
            expectFlags.formUnion(e.flags)
            expectValues[i] = f.decode(e.code).bitPattern
        }
        // In place, 2 threads.
        var buf = xs
        let flags = buf.withUnsafeMutableBufferPointer { f.roundInPlace($0, rounding: rounding, offset: offset) }
        #expect(flags == expectFlags)
        #expect(buf.map(\.bitPattern) == expectValues)
        // Split by hand into uneven pieces with matching offsets: same result.
        var pieces = xs
        pieces.withUnsafeMutableBufferPointer { p in
            let cuts = [0, 7, 70_001, 131_072, n]
            for k in 0..<(cuts.count - 1) {
                let slice = UnsafeMutableBufferPointer(rebasing: p[cuts[k]..<cuts[k + 1]])
                f.roundInPlace(slice, rounding: rounding, offset: offset + UInt64(cuts[k]), threads: 1)
            }
        }
        #expect(pieces.map(\.bitPattern) == expectValues)
        // Encode into codes; 1 and 2 threads.
        for threads in [1, 2] {
            var codes = [UInt16](repeating: 0xAAAA, count: n)
            let cf = xs.withUnsafeBufferPointer { s in
                codes.withUnsafeMutableBufferPointer { f.encode(s, into: $0, rounding: rounding, offset: offset, threads: threads) }
            }
            #expect(cf == expectFlags)
            #expect(codes == expectCodes)
            var back = [Float](repeating: 0, count: n)
            codes.withUnsafeBufferPointer { c in back.withUnsafeMutableBufferPointer { _ = f.decode(c, into: $0, threads: threads) } }
            #expect(back.map(\.bitPattern) == expectValues)
            if f.bitWidth == 8 {
                var c8 = [UInt8](repeating: 0xAA, count: n)
                _ = xs.withUnsafeBufferPointer { s in
                    c8.withUnsafeMutableBufferPointer { f.encode(s, into: $0, rounding: rounding, offset: offset, threads: threads) }
                }
                #expect(c8.map { UInt16($0) } == expectCodes)
                var back8 = [Float](repeating: 0, count: n)
                c8.withUnsafeBufferPointer { c in back8.withUnsafeMutableBufferPointer { _ = f.decode(c, into: $0, threads: threads) } }
                #expect(back8.map(\.bitPattern) == expectValues)
            }
        }
    }

    @Test("bulk decode of every code equals scalar decode, with the Denormal flag", arguments: formats.indices)
    func bulkDecodeAllCodes(_ fi: Int) {
        let f = Self.formats[fi]
        let codes = (0..<f.codeCount).map { UInt16($0) }
        var out = [Float](repeating: 0, count: codes.count)
        let flags = codes.withUnsafeBufferPointer { c in out.withUnsafeMutableBufferPointer { f.decode(c, into: $0) } }
        #expect(flags == .denormal)
        #expect(zip(codes, out).allSatisfy { c, v in
            let w = f.decode(c)
            return w.bitPattern == v.bitPattern || (w.isNaN && v.isNaN)
        })
    }

    @Test("empty buffers")
    func empty() throws {
        let f = try NumberFormat(.shp)
        var e: [Float] = []
        #expect(e.withUnsafeMutableBufferPointer { f.roundInPlace($0) } == [])
    }
}
