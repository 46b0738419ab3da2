import Foundation
import Testing
import DojoNumerics

let cfp8Biases = [0, 1, 7, 15, 31, 63]
let cfp16Biases = [0, 15, 31, 63]

/// Every (format, bias, scale) the exhaustive tests cover.
let exhaustiveCases: [(Format, Int, DenormalScale)] = {
    var cases: [(Format, Int, DenormalScale)] = [(.bf16, 127, .ieee)]
    for f in [Format.cfp8_143, .cfp8_152] {
        for b in cfp8Biases { for s in DenormalScale.allCases { cases.append((f, b, s)) } }
    }
    for f in [Format.shp, .uhp] {
        for b in cfp16Biases { for s in DenormalScale.allCases { cases.append((f, b, s)) } }
    }
    return cases
}()

func make(_ f: Format, _ b: Int, _ s: DenormalScale = .asPrinted) -> NumberFormat {
    // swiftlint:disable:next force_try
    try! NumberFormat(f, bias: f == .bf16 ? nil : b, denormalScale: s)
}

@Suite("Scalar codec")
struct CodecTests {
    @Test("every code decodes to the value of the whitepaper's rules", arguments: exhaustiveCases.indices)
    func decodeEveryCode(_ i: Int) {
        let (f, b, s) = exhaustiveCases[i]
        let nf = make(f, b, s)
        let ref = Reference(format: f, bias: b, asPrinted: s == .asPrinted && f != .bf16)
        #expect(nf.codeCount == 1 << ref.width)
        var mismatches = 0
        for c in 0..<nf.codeCount {
            let got = nf.decode(UInt16(c))
            guard let want = ref.value(c) else {
                if !got.isNaN { mismatches += 1 }
                continue
            }
            if Double(got) != want || got.sign != want.sign { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(nf)")
    }

    @Test("encode(decode(code)) == code for every non-NaN code", arguments: exhaustiveCases.indices)
    func roundTripEveryCode(_ i: Int) {
        let (f, b, s) = exhaustiveCases[i]
        let nf = make(f, b, s)
        var bad: [Int] = []
        for c in 0..<nf.codeCount {
            let v = nf.decode(UInt16(c))
            if v.isNaN { continue }
            let e = nf.encode(v)
            if Int(e.code) != c { bad.append(c) }
            // Exact values raise no flags except Denormal for FP32-subnormal inputs (BF16 denormals).
            let expected: ExceptionFlags = v.isSubnormal ? .denormal : []
            if e.flags != expected { bad.append(c) }
            if nf.rounded(v).bitPattern != v.bitPattern { bad.append(c) }
        }
        #expect(bad.isEmpty, "\(nf): \(bad.prefix(5).map { String($0, radix: 16) })")
    }

    @Test("known values: ranges quoted in the whitepaper")
    func whitepaperRanges() throws {
        // 1_4_3 with bias 0: [1.000×2^1, 1.111×2^15]; bias 31: [2^-30, 1.111×2^-16]; bias 63: [2^-62, 1.111×2^-48].
        for (b, lo, hi) in [(0, 1, 15), (31, -30, -16), (63, -62, -48)] {
            let f = try NumberFormat(.cfp8_143, bias: b)
            #expect(f.minNormal == Float(sign: .plus, exponent: lo, significand: 1))
            #expect(f.maxMagnitude == Float(sign: .plus, exponent: hi, significand: 1.875))
        }
        // 1_5_2 with bias 0: [1.00×2^1, 1.11×2^31]; bias 63: [2^-62, 1.11×2^-32].
        for (b, lo, hi) in [(0, 1, 31), (63, -62, -32)] {
            let f = try NumberFormat(.cfp8_152, bias: b)
            #expect(f.minNormal == Float(sign: .plus, exponent: lo, significand: 1))
            #expect(f.maxMagnitude == Float(sign: .plus, exponent: hi, significand: 1.75))
        }
        // The all-ones exponent is a normal value: 0x7F of 1-4-3 bias 7 is 1.875 × 2^8 = 480.
        let f = try NumberFormat(.cfp8_143)
        #expect(f.bias == 7)
        #expect(f.decode(0x7F) == 480)
        #expect(f.decode(0xFF) == -480)
        #expect(f.decode(0x78) == 256)
        #expect(f.decode(0x38) == 1)
        #expect(f.classify(0x7F) == .normal)
        #expect(f.classify(0x00) == .zero)
        #expect(f.classify(0x81) == .denormal)
        #expect(try NumberFormat(.cfp8_152).bias == 15)
        #expect(try NumberFormat(.shp).bias == 15)
        #expect(try NumberFormat(.uhp).bias == 31)
        let bf = try NumberFormat(.bf16)
        #expect(bf.maxMagnitude == Float(bitPattern: 0x7F7F_0000))
        #expect(bf.classify(0x7F80) == .infinity)
        #expect(bf.classify(0xFFC0) == .nan)
        #expect(bf.minPositive == Float(sign: .plus, exponent: -133, significand: 1))
    }

    @Test("denormal scale switch: as printed 0.m × 2^-bias, IEEE 0.m × 2^(1-bias)")
    func denormalScales() throws {
        let printed = try NumberFormat(.cfp8_143, bias: 7, denormalScale: .asPrinted)
        let ieee = try NumberFormat(.cfp8_143, bias: 7, denormalScale: .ieee)
        // Code 0x04: m = 100 → 0.5.
        #expect(printed.decode(0x04) == 0.5 * 0x1p-7)
        #expect(ieee.decode(0x04) == 0.5 * 0x1p-6)
        #expect(printed.minPositive == 0x1p-10)
        #expect(ieee.minPositive == 0x1p-9)
        #expect(printed.decode(0x07) == 0.875 * 0x1p-7)
        #expect(printed.minNormal == 0x1p-6)
        let shp = try NumberFormat(.shp, bias: 15, denormalScale: .ieee)
        #expect(shp.decode(0x0001) == 0x1p-24)    // IEEE FP16's smallest subnormal
        #expect(shp.decode(0x7BFF) == 65504)      // FP16 max…
        #expect(shp.decode(0x7FFF) == 131008)     // …and SHP's all-ones exponent is one binade more
        let shpPrinted = try NumberFormat(.shp, bias: 15)
        #expect(shpPrinted.decode(0x0001) == 0x1p-25)
        // Decoding a denormal code raises Denormal.
        #expect(printed.decodeReportingFlags(0x84) == (-0.5 * 0x1p-7, .denormal))
        #expect(printed.decodeReportingFlags(0x38).flags == [])
        // As-printed gap: between 0.875·2^-7 (0x07) and 2^-6 (0x08); its midpoint 0.9375·2^-6… rounds to even.
        let lo = Double(printed.decode(0x07)), hi = Double(printed.decode(0x08))
        let mid = Float((lo + hi) / 2)
        #expect(printed.encode(mid).code == 0x08)
        #expect(printed.encode(mid.nextDown) == (0x07, .underflow))
        #expect(printed.encode(mid.nextUp) == (0x08, []))
    }

    @Test("bias validation")
    func biasValidation() {
        #expect(throws: NumericsError.biasOutOfRange(bias: 70, format: .cfp8_143)) {
            try NumberFormat(.cfp8_143, bias: 70)
        }
        #expect(throws: NumericsError.biasOutOfRange(bias: -1, format: .uhp)) { try NumberFormat(.uhp, bias: -1) }
        #expect(throws: NumericsError.biasNotConfigurable(bias: 127, format: .bf16)) { try NumberFormat(.bf16, bias: 127) }
        #expect(NumericsError.biasOutOfRange(bias: 70, format: .cfp8_143).description == "bias 70 is out of range 0…63 for cfp8-143")
        #expect((try? NumberFormat(.shp, bias: 63)) != nil)
        #expect((try? NumberFormat(.shp, bias: 0)) != nil)
    }

    @Test("RNE: midpoints go to even, neighbours of midpoints go to the nearer", arguments: exhaustiveCases.indices)
    func midpoints(_ i: Int) {
        let (f, b, s) = exhaustiveCases[i]
        if f == .bf16 { return }
        let nf = make(f, b, s)
        let q = ReferenceQuantizer(Reference(format: f, bias: b, asPrinted: s == .asPrinted))
        var bad = 0
        var ties = 0
        for j in 0..<(q.mags.count - 1) {
            let lo = q.mags[j].value, hi = q.mags[j + 1].value
            let mid = Float((lo + hi) / 2)
            guard Double(mid) == (lo + hi) / 2 else { continue }
            ties += 1
            for x in [mid, mid.nextUp, mid.nextDown, -mid, -mid.nextUp] {
                let want = q.encode(x)
                let got = nf.encode(x)
                if Int(got.code) != want.code || got.flags != want.flags { bad += 1 }
                if f == .cfp8_143 || f == .cfp8_152 {
                    // Ties go to the even code: the code is one of the two neighbours.
                }
            }
            // The tie itself picks the even code.
            if Int(nf.encode(mid).code) % 2 != 0 { bad += 1 }
        }
        #expect(ties > 0)
        #expect(bad == 0, "\(nf)")
    }

    @Test("RNE on random inputs matches the search-based reference", arguments: exhaustiveCases.indices)
    func randomInputs(_ i: Int) {
        let (f, b, s) = exhaustiveCases[i]
        if f == .bf16 { return }
        let nf = make(f, b, s)
        let q = ReferenceQuantizer(Reference(format: f, bias: b, asPrinted: s == .asPrinted))
        var bad: [Float] = []
        for x in sampleFloats(count: 20_000, around: nf, seed: UInt64(i)) {
            let want = q.encode(x)
            let got = nf.encode(x)
            if Int(got.code) != want.code || got.flags != want.flags { bad.append(x) }
            let r = nf.rounded(x)
            if Double(r) != want.value { bad.append(x) }
        }
        #expect(bad.isEmpty, "\(nf): \(bad.prefix(5))")
    }

    @Test("overflow clamps to ±max with Overflow; Inf and NaN")
    func overflowAndSpecials() throws {
        let f = try NumberFormat(.cfp8_143)   // max 480, ulp at top 32
        #expect(f.encode(480) == (0x7F, []))
        #expect(f.encode(495.9) == (0x7F, []))          // below max + ulp/2: rounds to max, exact overflow rule
        #expect(f.encode(496) == (0x7F, .overflow))     // tie with the virtual 512 (even): overflow, clamp
        #expect(f.encode(1e6) == (0x7F, .overflow))
        #expect(f.encode(-1e6) == (0xFF, .overflow))
        #expect(f.encode(.infinity) == (0x7F, .overflow))
        #expect(f.encode(-.infinity) == (0xFF, .overflow))
        #expect(f.encode(.nan) == (0x7F, .invalid))
        #expect(f.encode(-.nan) == (0x7F, .invalid))
        #expect(f.rounded(.nan) == 480)
        // UHP: negative input → 0 with Invalid; -0.0 → 0 with no flag.
        let u = try NumberFormat(.uhp)
        #expect(u.encode(-1) == (0, .invalid))
        #expect(u.encode(-.infinity) == (0, .invalid))
        #expect(u.encode(-0.0) == (0, []))
        #expect(u.encode(.nan) == (0xFFFF, .invalid))
        #expect(u.encode(1) == (31 << 10, []))
        // SHP clamp.
        let shp = try NumberFormat(.shp)
        #expect(shp.encode(1e9) == (0x7FFF, .overflow))
        #expect(shp.encode(-.infinity) == (0xFFFF, .overflow))
    }

    @Test("underflow: tiny values go to zero or denormals with Underflow; FP32 subnormals set Denormal")
    func underflow() throws {
        let f = try NumberFormat(.cfp8_143)          // min positive 2^-10 (as printed, bias 7)
        let minPos = f.minPositive
        #expect(minPos == 0x1p-10)
        #expect(f.encode(minPos) == (0x01, []))
        #expect(f.encode(minPos / 2) == (0x00, .underflow))           // tie → even (zero)
        #expect(f.encode((minPos / 2).nextUp) == (0x01, .underflow))  // inexact denormal
        #expect(f.encode((minPos / 2).nextDown) == (0x00, .underflow))
        #expect(f.encode(-minPos / 4) == (0x80, .underflow))          // negative zero code
        #expect(f.encode(minPos * 1.5) == (0x02, .underflow))         // tie 1.5 → 2 (even)
        #expect(f.encode(minPos * 2.5) == (0x02, .underflow))         // tie 2.5 → 2 (even)
        let sub = Float(bitPattern: 0x0000_1234)
        #expect(sub.isSubnormal)
        #expect(f.encode(sub) == (0x00, [.denormal, .underflow]))
        #expect(f.encode(-sub) == (0x80, [.denormal, .underflow]))
        #expect(f.encode(0) == (0x00, []))
        #expect(f.encode(-0.0) == (0x80, []))
        #expect(f.decode(0x80).sign == .minus && f.decode(0x80) == 0)
        // Gradual underflow in IEEE scale: rounding up to the smallest normal is not underflow.
        let g = try NumberFormat(.cfp8_143, bias: 7, denormalScale: .ieee)
        #expect(g.encode(g.minNormal.nextDown) == (0x08, []))
    }

    @Test("BF16: every FP32 pattern class rounds like an independent RNE reference")
    func bf16() throws {
        let f = try NumberFormat(.bf16)
        #expect(f.encode(1 + 0x1p-8) == (0x3F80, []))             // tie → even
        #expect(f.encode(1 + 3 * 0x1p-8) == (0x3F82, []))         // tie → even (up)
        #expect(f.encode(-1.5) == (0xBFC0, []))
        #expect(f.encode(.greatestFiniteMagnitude) == (0x7F80, .overflow))
        #expect(f.encode(.infinity) == (0x7F80, []))
        #expect(f.encode(.nan).code & 0x7FC0 == 0x7FC0)
        #expect(f.encode(.nan).flags == .invalid)
        #expect(f.encode(Float(bitPattern: 0x0001_8000)) == (0x0002, [.denormal, .underflow]))
        #expect(f.encode(Float(bitPattern: 0x0001_0000)) == (0x0001, .denormal))
        var g = TestRNG(state: 42)
        var bad = 0
        for _ in 0..<200_000 {
            let bits = UInt32.random(in: 0...UInt32.max, using: &g)
            let x = Float(bitPattern: bits)
            if x.isNaN { continue }
            let got = f.encode(x).code
            // Reference: the nearer of the truncated and next bf16 patterns in Double, ties to even.
            let lo = bits & 0xFFFF_0000
            let loV = Double(Float(bitPattern: lo))
            let hiV: Double = {
                let hb = lo + 0x1_0000
                if hb & 0x7FFF_FFFF == 0x7F80_0000 { return Double(sign: loV.sign, exponent: 128, significand: 1) }
                return Double(Float(bitPattern: hb))
            }()
            let xd = Double(x)
            let want: UInt32
            if x.isInfinite { want = bits >> 16 } else if abs(xd - loV) < abs(hiV - xd) { want = lo >> 16 } else if abs(xd - loV) > abs(hiV - xd) { want = (lo >> 16) + 1 } else { want = (lo >> 16) % 2 == 0 ? lo >> 16 : (lo >> 16) + 1 }
            if UInt32(got) != want { bad += 1 }
        }
        #expect(bad == 0)
    }

    @Test("BF16 → CFP8 goes by way of the exact FP32 value")
    func bf16ToCFP8() throws {
        let bf = try NumberFormat(.bf16)
        let c8 = try NumberFormat(.cfp8_152, bias: 15)
        // bf16 0x3FB0 = 1.375; 1-5-2 neighbours 1.25 and 1.5: tie → even code (1.5 = 0x3E).
        #expect(bf.decode(0x3FB0) == 1.375)
        #expect(c8.convert(0x3FB0, from: bf) == (0x3E, []))
        #expect(c8.decode(0x3E) == 1.5)
        // A BF16 denormal operand sets Denormal and underflows to zero.
        #expect(c8.convert(0x0001, from: bf) == (0x00, [.denormal, .underflow]))
        #expect(c8.convert(0x7F80, from: bf) == (0x7F, .overflow))
    }

    @Test("exact decimal printer")
    func exactDecimals() {
        #expect(exactDecimal(0x1p-62) == "0." + String(repeating: "0", count: 18) + "21684043449710088680149056017398834228515625")
        #expect(exactDecimal(0.1) == "0.100000001490116119384765625")
        #expect(exactDecimal(3e38) == "300000000549775575777803994281145270272")
        #expect(exactDecimal(-1.5) == "-1.5")
        #expect(exactDecimal(480) == "480")
        #expect(exactDecimal(0) == "0")
        #expect(exactDecimal(-0.0) == "-0")
        #expect(exactDecimal(.infinity) == "inf")
        #expect(exactDecimal(-.infinity) == "-inf")
        #expect(exactDecimal(.nan) == "nan")
        let tiny = exactDecimal(.leastNonzeroMagnitude)
        #expect(tiny.hasPrefix("0." + String(repeating: "0", count: 44) + "1401298464324817070923729583289916131280"))
        #expect(tiny.hasSuffix("8836212158203125"))
    }

    @Test("flags print their names")
    func flagNames() {
        #expect(ExceptionFlags([]).description == "none")
        #expect(ExceptionFlags([.invalid, .underflow]).description == "invalid,underflow")
    }
}

@Suite("Per-tensor bias")
struct BiasChoiceTests {
    @Test("bias(for:maxMagnitude:) picks the finest bias that does not overflow")
    func biasChoice() throws {
        #expect(NumberFormat.bias(for: .cfp8_143, maxMagnitude: 480) == 7)
        #expect(NumberFormat.bias(for: .cfp8_143, maxMagnitude: 480.5) == 6)
        #expect(NumberFormat.bias(for: .cfp8_143, maxMagnitude: -480) == 7)
        #expect(NumberFormat.bias(for: .cfp8_143, maxMagnitude: 1) == 15)
        #expect(NumberFormat.bias(for: .cfp8_143, maxMagnitude: 1e-30) == 63)
        #expect(NumberFormat.bias(for: .cfp8_143, maxMagnitude: 1e30) == 0)
        #expect(NumberFormat.bias(for: .cfp8_143, maxMagnitude: 0) == 7)
        #expect(NumberFormat.bias(for: .cfp8_152, maxMagnitude: 0) == 15)
        #expect(NumberFormat.bias(for: .uhp, maxMagnitude: 0) == 31)
        #expect(NumberFormat.bias(for: .bf16, maxMagnitude: 5) == 127)
        var g = TestRNG(state: 7)
        for format in [Format.cfp8_143, .cfp8_152, .shp, .uhp] {
            for _ in 0..<500 {
                let amax = Float(sign: .plus, exponent: Int.random(in: -70...70, using: &g),
                                 significand: Float.random(in: 1..<2, using: &g))
                let b = NumberFormat.bias(for: format, maxMagnitude: amax)
                // Independent: max magnitude (2 − 2^−M)·2^(Emax − b).
                func maxAt(_ b: Int) -> Double {
                    (2 - pow(2, -Double(format.mantissaBits))) * pow(2, Double((1 << format.exponentBits) - 1 - b))
                }
                #expect((0...63).contains(b))
                if maxAt(0) >= Double(amax) {
                    #expect(maxAt(b) >= Double(amax))
                    #expect(b == 63 || maxAt(b + 1) < Double(amax))
                } else {
                    #expect(b == 0)
                }
            }
        }
    }
}
