import Foundation
import Testing
import CDojoKernels
import DojoNumerics

/// The formats' hot loops run from CDojoKernels in one of two builds, baseline x86-64 or AVX2, chosen at start-up. Both
/// must give exactly what the scalar codec gives: every rounding, code and maximum is compared bit for bit here, with
/// each build, on values that are mostly in the format's normal range (the C loops' part) with zeros, denormals, values
/// beyond the largest, infinities and NaNs scattered among them (the scalar path's part), and on values that are not.
@Suite("Kernel builds", .serialized)
struct KernelBuildTests {
    /// Builds to run: baseline always, AVX2 where the CPU has it.
    static var builds: [Bool] { dojo_kernels_best_level() == 1 ? [false, true] : [false] }

    /// Runs `body` with each build; the codes it returns must be the same bytes in both.
    static func sameCodesInEachBuild(_ body: (_ avx2: Bool) throws -> [UInt8]) rethrows {
        defer { NumberFormat.useAVX2Kernels(true) }
        var codesByBuild: [[UInt8]] = []
        for avx2 in builds {
            NumberFormat.useAVX2Kernels(avx2)
            codesByBuild.append(try body(avx2))
        }
        if codesByBuild.count == 2 { #expect(codesByBuild[0] == codesByBuild[1]) }
    }

    /// Values of which about one in `sparse` is special (0 for none), the rest normal in `f`.
    static func values(_ f: NumberFormat, count: Int, sparse: Int, seed: UInt64) -> [Float] {
        var g = SplitMix64(seed: seed)
        let lo = Double(f.minNormal).exponent, hi = Double(f.maxMagnitude).exponent
        let specials = sampleFloats(count: 97, around: f, seed: seed).enumerated().filter { $0.offset % 97 < 5 }.map(\.element)
            + [f.maxMagnitude * 3, -f.maxMagnitude * 1.5, f.minPositive, -f.minPositive * 3, f.minNormal * 0.5]
        return (0..<count).map { i in
            if sparse > 0 && g.nextInt(below: sparse) == 0 { return specials[i % specials.count] }
            if g.nextInt(below: 8) == 0 { return i % 2 == 0 ? 0 : -0.0 }
            let e = Int(lo) + g.nextInt(below: Int(hi - lo) + 1)
            return Float(sign: g.nextInt(below: 2) == 0 ? .plus : .minus, exponent: e,
                         significand: 1 + Float(g.nextInt(below: 1 << 23)) / Float(1 << 23))
        }
    }

    static let formats: [NumberFormat] = [try! NumberFormat(.bf16)]
        + [0, 7, 15, 40, 63].flatMap { b in [try! NumberFormat(.cfp8_143, bias: b), try! NumberFormat(.cfp8_152, bias: b)] }
        + [try! NumberFormat(.cfp8_143, bias: 7, denormalScale: .ieee), try! NumberFormat(.shp), try! NumberFormat(.uhp)]

    /// `xs` rounded in place by the build that runs (with the largest magnitude found while rounding) against the scalar
    /// codec value by value: how many values differ (NaN matching NaN), the flags raised and the codec's, the largest.
    static func roundedAgainstTheCodec(_ nf: NumberFormat, _ xs: [Float]) -> (mismatches: Int, flags: ExceptionFlags, codec: ExceptionFlags, top: Float) {
        var ys = xs
        var top: Float = 0
        let flags = ys.withUnsafeMutableBufferPointer { nf.roundInPlace($0, largestMagnitude: &top) }
        var codec = ExceptionFlags()
        var mismatches = 0
        for (x, y) in zip(xs, ys) {
            let r = nf.encode(x, rounding: .nearestEven, index: 0)
            codec.formUnion(r.flags)
            let want = nf.decode(r.code)
            if !(want.bitPattern == y.bitPattern || (want.isNaN && y.isNaN)) { mismatches += 1 }
        }
        return (mismatches, flags, codec, top)
    }

    @Test("rounding to nearest-even and the largest magnitude: each build gives the scalar codec's bits")
    func rounding() {
        defer { NumberFormat.useAVX2Kernels(true) }
        for avx2 in Self.builds {
            NumberFormat.useAVX2Kernels(avx2)
            for (k, nf) in Self.formats.enumerated() {
                for sparse in [0, 900, 50] {
                    let xs = Self.values(nf, count: 5_003, sparse: sparse, seed: UInt64(k * 10 + sparse))
                    let (mismatches, flags, expectedFlags, top) = Self.roundedAgainstTheCodec(nf, xs)
                    #expect(mismatches == 0, "\(nf) avx2=\(avx2) sparse=\(sparse)")
                    #expect(flags == expectedFlags, "\(nf) avx2=\(avx2) sparse=\(sparse)")
                    let want = xs.contains { $0.isNaN } ? Float.nan : xs.map(\.magnitude).max()!
                    #expect(top.bitPattern == want.bitPattern || (top.isNaN && want.isNaN), "\(nf) avx2=\(avx2)")
                    #expect(NumberFormat.largestMagnitude(xs, count: xs.count).bitPattern == want.bitPattern
                            || want.isNaN && NumberFormat.largestMagnitude(xs, count: xs.count).isNaN)
                }
            }
        }
    }

    /// Values between FP32's smallest normal and the format's: the AVX2 build rounds them to the format's denormals
    /// itself (both denormal scales, the as-printed gap below the smallest normal, ties), and must give the scalar
    /// codec's bits and raise underflow exactly when it does: checked on buffers of such values only (inexact, and
    /// all exact: no flag), so a flag the C loop missed is not hidden by one from another value.
    @Test("values below the smallest normal: each build gives the scalar codec's bits and flags")
    func roundingBelowTheSmallestNormal() throws {
        defer { NumberFormat.useAVX2Kernels(true) }
        let formats = [0, 9, 40, 63].flatMap { b in
            [try! NumberFormat(.cfp8_143, bias: b), try! NumberFormat(.cfp8_152, bias: b),
             try! NumberFormat(.cfp8_143, bias: b, denormalScale: .ieee), try! NumberFormat(.cfp8_152, bias: b, denormalScale: .ieee)]
        } + [try NumberFormat(.shp), try NumberFormat(.uhp)]
        for avx2 in Self.builds {
            NumberFormat.useAVX2Kernels(avx2)
            for (k, nf) in formats.enumerated() {
                var g = SplitMix64(seed: UInt64(k))
                let unit = nf.minPositive, signed = nf.format != .uhp
                // below the smallest normal (and above FP32's), a quarter exactly on a multiple of the unit, ties
                // included, and a few normals; zeros
                let small: [Float] = (0..<2_051).map { i in
                    let sign: Float = signed && g.nextInt(below: 2) == 0 ? -1 : 1
                    switch g.nextInt(below: 8) {
                    case 0: return 0
                    case 1: return sign * unit * Float(g.nextInt(below: 16))
                    case 2: return sign * unit * (Float(g.nextInt(below: 16)) + 0.5)
                    case 3: return sign * nf.minNormal * (1 + Float(g.nextInt(below: 8)) / 8)
                    default: return sign * nf.minNormal * Float(g.nextInt(below: 1 << 20) + 1) / Float(1 << 20)
                    }
                }.filter { $0 == 0 || $0.magnitude >= Float.leastNormalMagnitude }
                let exact = small.map { nf.rounded($0) }.filter { $0 == 0 || $0.magnitude >= Float.leastNormalMagnitude }
                for xs in [small, exact] {
                    let (mismatches, flags, want, top) = Self.roundedAgainstTheCodec(nf, xs)
                    #expect(mismatches == 0, "\(nf) avx2=\(avx2)")
                    #expect(flags == want, "\(nf) avx2=\(avx2): flags \(flags), the codec's \(want)")
                    #expect(top == xs.map(\.magnitude).max()!, "\(nf) avx2=\(avx2)")
                }
                // packed (CFP8): the exact values' codes unpack to the same bits; a value half a unit off is refused
                guard nf.packedBytes == 1 else { continue }
                let codes = UnsafeMutableRawPointer.allocate(byteCount: exact.count, alignment: 64)
                defer { codes.deallocate() }
                #expect(nf.packExactly(exact, count: exact.count, into: codes), "\(nf) avx2=\(avx2)")
                var back = [Float](repeating: .nan, count: exact.count)
                back.withUnsafeMutableBufferPointer { nf.unpack(codes, count: exact.count, into: $0.baseAddress!) }
                #expect(back.map(\.bitPattern) == exact.map(\.bitPattern), "\(nf) avx2=\(avx2)")
                if let at = exact.firstIndex(where: { $0 != 0 && $0.magnitude < nf.minNormal && $0.magnitude >= 2 * Float.leastNormalMagnitude }) {
                    var bad = exact
                    bad[at] += (bad[at] > 0 ? 0.5 : -0.5) * unit
                    #expect(!nf.packExactly(bad, count: bad.count, into: codes), "\(nf) avx2=\(avx2): \(bad[at]) packed")
                }
            }
        }
    }

    @Test("packing: each build writes codes that unpack to the same bits, and refuses a value not exact")
    func packing() throws {
        Self.sameCodesInEachBuild { avx2 in
            var all: [UInt8] = []
            for (k, nf) in Self.formats.enumerated() {
                guard let bytes = nf.packedBytes else { continue }
                for sparse in [0, 900, 50] {
                    // exact values: the rounding of the mixture, NaN and infinities left out (a rounding makes finite
                    // values; CFP8 has no infinity)
                    let xs = Self.values(nf, count: 4_099, sparse: sparse, seed: UInt64(k + 100 * sparse))
                        .map { nf.rounded($0) }.filter { $0.isFinite }
                    let codes = UnsafeMutableRawPointer.allocate(byteCount: xs.count * bytes, alignment: 64)
                    defer { codes.deallocate() }
                    let ok = nf.packExactly(xs, count: xs.count, into: codes)
                    #expect(ok, "\(nf) avx2=\(avx2) sparse=\(sparse)")
                    var back = [Float](repeating: .nan, count: xs.count)
                    back.withUnsafeMutableBufferPointer { nf.unpack(codes, count: xs.count, into: $0.baseAddress!) }
                    #expect(back.map(\.bitPattern) == xs.map(\.bitPattern), "\(nf) avx2=\(avx2) sparse=\(sparse)")
                    all += Array(UnsafeRawBufferPointer(start: codes, count: xs.count * bytes))
                    // one value off the format's grid, in a chunk of normals and in one with a special value
                    for at in [700, 3_000] where nf.format != .bf16 || at == 700 {
                        var bad = xs
                        bad[at] = Float(bitPattern: bad[at].bitPattern | 1) == bad[at] ? 1.0000001 : Float(bitPattern: bad[at].bitPattern | 1)
                        if bad[at] == 0 || !bad[at].isNormal { bad[at] = 1.0000001 }
                        #expect(!nf.packExactly(bad, count: bad.count, into: codes), "\(nf) avx2=\(avx2) at \(at)")
                    }
                }
            }
            return all
        }
    }

    /// `SpanRounder.roundIntoCodes` (BF16 and CFP8 to nearest-even, rounded and coded in one pass, the rounded values
    /// never stored) against rounding in place and then `packExactly`: the same codes and flags (and, for CFP8, the same
    /// largest magnitude), with each build, on mixtures whose special values (denormals, beyond the largest, FP32
    /// subnormals, negative zeros) send spans to the two-pass path; and a NaN.
    @Test("rounding into codes in one pass: each build gives the codes of rounding and then packing, and the same flags")
    func roundingIntoCodes() {
        Self.sameCodesInEachBuild { avx2 in
            var all: [UInt8] = []
            for (k, nf) in Self.formats.enumerated() {
                guard let bytes = nf.packedBytes else { continue }
                let rounder = NumberFormat.SpanRounder(nf)
                #expect(rounder.roundsIntoCodes, "\(nf)")
                #expect(!NumberFormat.SpanRounder(nf, rounding: .stochastic(seed: 1)).roundsIntoCodes)
                // finite values, then one NaN among them
                let mixtures = [0, 900, 50].map { sparse in
                    Self.values(nf, count: 4_099, sparse: sparse, seed: UInt64(k + 7 * sparse)).filter { $0.isFinite }
                } + [{ var v = Self.values(nf, count: 300, sparse: 0, seed: 9).filter { $0.isFinite }; v[130] = .nan; return v }()]
                for xs in mixtures {
                    var twice = xs, once = xs
                    var topTwice: UInt32 = 0, topOnce: UInt32 = 0
                    let want = UnsafeMutableRawPointer.allocate(byteCount: xs.count * bytes, alignment: 64)
                    let got = UnsafeMutableRawPointer.allocate(byteCount: xs.count * bytes, alignment: 64)
                    defer { want.deallocate(); got.deallocate() }
                    let flagsTwice = twice.withUnsafeMutableBufferPointer { rounder.round($0.baseAddress!, count: xs.count, offset: 0, largest: &topTwice) }
                    let packed = nf.packExactly(twice, count: xs.count, into: want)
                    let (flagsOnce, coded) = once.withUnsafeMutableBufferPointer {
                        rounder.roundIntoCodes($0.baseAddress!, count: xs.count, offset: 0, codes: got, largest: &topOnce)
                    }
                    let label = "\(nf) avx2=\(avx2) NaN=\(xs.contains { $0.isNaN })"
                    #expect(coded == packed, "\(label)")
                    let a = Array(UnsafeRawBufferPointer(start: want, count: xs.count * bytes))
                    let b = Array(UnsafeRawBufferPointer(start: got, count: xs.count * bytes))
                    #expect(a == b, "\(label): \(zip(a, b).filter { $0 != $1 }.count) code bytes differ")
                    #expect(flagsOnce == flagsTwice, "\(label)")
                    if bytes == 1 { #expect(topOnce == topTwice, "\(label)") }
                    if xs.contains(where: { $0.isNaN }), bytes == 1 { #expect(flagsOnce.contains(.invalid), "\(label)") }
                    all += b
                }
            }
            return all
        }
    }

    @Test("a 256-entry table looked up by 1-byte codes (CFP8 codes to BF16 bits): each build, the 32-wide loop and its tail")
    func tableLookup() {
        defer { NumberFormat.useAVX2Kernels(true) }
        var g = SplitMix64(seed: 5)
        let table = (0..<256).map { _ in UInt16(truncatingIfNeeded: g.next()) }
        for avx2 in Self.builds {
            NumberFormat.useAVX2Kernels(avx2)
            for n in [0, 1, 31, 32, 33, 64, 1_000, 4_099] {
                // every code, in an order that puts each at every position of a 32-code block over the sizes
                let codes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 167 &+ n) }
                var out = [UInt16](repeating: 0xDEAD, count: n + 3)
                out.withUnsafeMutableBufferPointer { dojo_lookup_u8_u16(codes, n, table, $0.baseAddress!) }
                #expect(Array(out[..<n]) == codes.map { table[Int($0)] }, "n \(n) avx2=\(avx2)")
                #expect(out[n...].allSatisfy { $0 == 0xDEAD }, "wrote past the end, n \(n)")
            }
        }
    }

    @Test("the transpose: each build, odd shapes and leading dimensions, parts of the columns")
    func transpose() {
        defer { NumberFormat.useAVX2Kernels(true) }
        for avx2 in Self.builds {
            NumberFormat.useAVX2Kernels(avx2)
            for (rows, cols) in [(1, 1), (7, 9), (8, 8), (67, 131), (256, 40)] {
                let lds = cols + 3, ldd = rows + 5
                let src = (0..<(rows * lds)).map { Float($0) }
                var dst = [Float](repeating: -1, count: cols * ldd)
                // two calls over halves of the columns, as the threads split it
                let half = cols / 2
                dst.withUnsafeMutableBufferPointer { d in
                    dojo_transpose_f32(src, lds, d.baseAddress!, ldd, 0, rows, 0, half)
                    dojo_transpose_f32(src, lds, d.baseAddress!, ldd, 0, rows, half, cols)
                }
                var wrong = 0
                for c in 0..<cols { for r in 0..<ldd { if dst[c * ldd + r] != (r < rows ? src[r * lds + c] : -1) { wrong += 1 } } }
                #expect(wrong == 0, "\(rows)×\(cols) avx2=\(avx2)")
            }
        }
    }
}

