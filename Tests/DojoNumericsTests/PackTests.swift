import Foundation
import Testing
import DojoNumerics

/// Issue 14 §2: values a rounding made exact in a format are kept as its codes, 1 byte (CFP8) or 2 (BF16) a value,
/// and come back bit for bit; a value that is not exact is refused, never changed.
@Suite("Packed values")
struct PackTests {
    /// Every code of the format decoded (all of its values, zeros, denormals, the as-printed gap's edges), shuffled
    /// into a buffer longer than a block, packed and unpacked.
    @Test("every value of the format packs and unpacks bit for bit", arguments: [Format.bf16, .cfp8_143, .cfp8_152])
    func roundTrip(_ f: Format) throws {
        for b in f == .bf16 ? [127] : cfp8Biases {
            for s in f == .bf16 ? [DenormalScale.ieee] : DenormalScale.allCases {
                let nf = make(f, b, s)
                var values = (0..<nf.codeCount).map { nf.decode(UInt16($0)) }.filter { !$0.isNaN && !$0.isInfinite }
                var g = SplitMix64(seed: UInt64(b))
                values = (0..<5000).map { _ in values[g.nextInt(below: values.count)] }
                let bytes = try #require(nf.packedBytes)
                let codes = UnsafeMutableRawPointer.allocate(byteCount: values.count * bytes, alignment: 64)
                defer { codes.deallocate() }
                var back = [Float](repeating: .nan, count: values.count)
                let ok = values.withUnsafeBufferPointer { nf.packExactly($0.baseAddress!, count: values.count, into: codes) }
                #expect(ok, "\(nf)")
                back.withUnsafeMutableBufferPointer { nf.unpack(codes, count: values.count, into: $0.baseAddress!) }
                #expect(back.map(\.bitPattern) == values.map(\.bitPattern), "\(nf)")
            }
        }
    }

    @Test("a value not exact in the format is refused", arguments: [Format.bf16, .cfp8_143, .cfp8_152])
    func refusesInexact(_ f: Format) {
        let nf = make(f, f == .bf16 ? 127 : 7)
        // (BF16 holds FP32's infinities, NaNs and subnormals with 7 mantissa bits: only values with more bits fail)
        for bad in f == .bf16 ? [Float(1.0000001), 0.3] : [Float(1.0000001), 0.3, nf.maxMagnitude * 4, nf.minPositive / 3, .nan] {
            var values = [Float](repeating: 1, count: 3000)
            values[2500] = bad
            let codes = UnsafeMutableRawPointer.allocate(byteCount: values.count * 2, alignment: 64)
            defer { codes.deallocate() }
            #expect(!values.withUnsafeBufferPointer { nf.packExactly($0.baseAddress!, count: values.count, into: codes) }, "\(nf) \(bad)")
        }
    }

    /// Packing large buffers and spans, as the tape and the kernels do (speed: `dojo formats bench --format cfp8-143`).
    @Test("buffers of millions of values and spans of 4096 round-trip")
    func large() throws {
        for f in [Format.bf16, .cfp8_143] {
            var g = SplitMix64(seed: 3)
            let n = 1 << 22
            let raw = (0..<n).map { _ in max(0, g.nextNormal()) }
            // the bias delayed scaling would choose: room for twice the largest value
            let nf = try NumberFormat(f, bias: f == .bf16 ? nil : NumberFormat.bias(for: f, maxMagnitude: 2 * raw.max()!))
            let values = raw.map { nf.rounded($0) }
            let codes = UnsafeMutableRawPointer.allocate(byteCount: n * 2, alignment: 64)
            defer { codes.deallocate() }
            for span in [n, 4096] {
                var back = [Float](repeating: .nan, count: n)
                var ok = true
                for start in stride(from: 0, to: n, by: span) {
                    ok = ok && values.withUnsafeBufferPointer {
                        nf.packExactly($0.baseAddress! + start, count: span, into: codes + start * nf.packedBytes!)
                    }
                }
                #expect(ok)
                back.withUnsafeMutableBufferPointer { nf.unpack(codes, count: n, into: $0.baseAddress!) }
                #expect(back.map(\.bitPattern) == values.map(\.bitPattern), "\(nf) spans of \(span)")
            }
        }
    }
}
