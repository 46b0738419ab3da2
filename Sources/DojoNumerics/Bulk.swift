import CDojoKernels
import Dispatch
import Synchronization

// Bulk conversion of whole buffers. Every element gives exactly what the scalar `encode`/`rounded`/`decode`
// give (element i uses RNG index `offset + i`); the work is split over `threads` threads, and because the
// random numbers are counter-based the result does not depend on the split.
//
// Hot path: pure integer arithmetic on the FP32 bit pattern in branch-free loops the compiler vectorises.
// Each block of `blockSize` elements is computed by the fast path (valid for zero and the format's normal
// range) into a scratch buffer while the same loop notes whether any element lies outside that range; in
// such a block, those elements alone are redone by the scalar kernel, which handles denormals, the
// as-printed gap, overflow, NaN/Inf and negative UHP inputs. Shifts by run-time amounts use the masking
// operators (`&>>`, `&<<`): Swift's `>>` checks the amount per element, which stops vectorisation.
// Stochastic blocks first fill a block of random bits (`CounterRNG.fill32`, one splitmix64 per pair).

/// A pointer that may cross into `concurrentPerform`; each thread touches a disjoint range.
struct UncheckedPointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
}

private let blockSize = 1024
/// Buffers shorter than this run on the calling thread.
private let parallelThreshold = 1 << 16

/// Runs `body` over `threads` contiguous slices of 0..<n and ORs the flags it returns.
private func forEachSlice(_ n: Int, threads: Int, _ body: (Int, Int) -> UInt8) -> UInt8 {
    let parts = n < parallelThreshold ? 1 : max(1, min(threads, n / (parallelThreshold / 2)))
    if parts == 1 { return body(0, n) }
    let results = UnsafeMutablePointer<UInt8>.allocate(capacity: parts)
    results.initialize(repeating: 0, count: parts)
    defer { results.deallocate() }
    let out = UncheckedPointer(p: results)
    withoutActuallyEscaping(body) { body in
        let b = UncheckedBody(body: body)
        DispatchQueue.concurrentPerform(iterations: parts) { k in
            let lo = n * k / parts, hi = n * (k + 1) / parts
            out.p[k] = b.body(lo, hi)
        }
    }
    var f: UInt8 = 0
    for k in 0..<parts { f |= results[k] }
    return f
}

/// The slice body is called from several threads; it only reads shared state and writes disjoint slices.
private struct UncheckedBody: @unchecked Sendable {
    let body: (Int, Int) -> UInt8
}

extension NumberFormat {
    /// BF16 round-to-nearest-even of `count` values in place, on the calling thread, when none is an FP32
    /// subnormal, near BF16's largest, infinite or NaN (values that raise flags or need the full rounding): then
    /// nothing is changed and the answer is false. Branch-free loops over the bits that the compiler vectorises, with
    /// no set-up, for kernels that round a few hundred values at a time as they write them (the same bits as
    /// `roundInPlace` for every value it accepts).
    @inline(__always)
    public static func roundBF16NearestEvenIfNormal(_ p: UnsafeMutablePointer<Float>, count n: Int) -> Bool {
        dojo_round_bf16_if_normal(UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt32.self), n) != 0
    }

    /// The largest magnitude of `count` values (NaN if one is NaN), on the calling thread.
    public static func largestMagnitude(_ p: UnsafePointer<Float>, count n: Int) -> Float {
        let top = dojo_max_magnitude_bits(UnsafeRawPointer(p).assumingMemoryBound(to: UInt32.self), n)
        // the bits of a non-negative float order as its value; above infinity's are NaNs
        return top > 0x7F80_0000 ? .nan : Float(bitPattern: top)
    }

    /// Which build of the formats' hot loops runs (CDojoKernels): "avx2" or "baseline" (x86-64's SSE2, or not x86).
    public static var kernelBuild: String { dojo_kernels_level() == 1 ? "avx2" : "baseline" }
    /// Chooses the build: `false` runs the baseline loops (both give the same bits; tests run both). The AVX2 build runs
    /// only where the CPU has every extension it is compiled with (AVX2, FMA, BMI, BMI2, F16C).
    public static func useAVX2Kernels(_ on: Bool) { dojo_kernels_set_level(on ? 1 : 0) }

    /// Replaces each value by the nearest representable value of the format (fake quantisation), as
    /// `rounded(_:rounding:index:)` would, in place. Element i uses RNG index `offset + i`.
    /// Returns the union of the flags raised.
    @discardableResult
    public func roundInPlace(_ buffer: UnsafeMutableBufferPointer<Float>, rounding: Rounding = .nearestEven,
                             offset: UInt64 = 0, threads: Int = 2) -> ExceptionFlags {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return [] }
        let p = params
        let rng = rounding.rng
        let data = UncheckedPointer(p: base)
        let f = forEachSlice(buffer.count, threads: threads) { lo, hi in
            let ptr = UnsafeMutableRawPointer(data.p).assumingMemoryBound(to: UInt32.self)
            return p.isBF16 ? p.roundBF16(ptr, lo, hi, rng: rng, offset: offset)
                            : p.roundCFP(ptr, lo, hi, rng: rng, offset: offset)
        }
        return ExceptionFlags(rawValue: f)
    }

    /// The same on the calling thread, also finding the largest magnitude of the values before rounding (NaN if
    /// one was NaN) in the same pass: delayed scaling rounds with a bias chosen from earlier maxima and notes this
    /// one for the next, instead of scanning the buffer first.
    public func roundInPlace(_ buffer: UnsafeMutableBufferPointer<Float>, rounding: Rounding = .nearestEven, offset: UInt64 = 0,
                             largestMagnitude: inout Float) -> ExceptionFlags {
        guard let base = buffer.baseAddress, buffer.count > 0 else { largestMagnitude = 0; return [] }
        var top: UInt32 = 0
        let f = SpanRounder(self, rounding: rounding).round(base, count: buffer.count, offset: offset, largest: &top)
        largestMagnitude = SpanRounder.magnitude(top)
        return f
    }

    /// One rounding to this format (nearest-even or stochastic), set up once and applied span by span on the calling
    /// thread: what a kernel that rounds its output as it writes it calls, a few hundred values at a time, thousands of
    /// times a step. The format's constants are worked out here once, not on every span; a nearest-even CFP span goes
    /// straight to the C loop, and only a chunk holding a value outside the normal range to the Swift path.
    public struct SpanRounder: @unchecked Sendable {
        private let p: Params
        private let c: dojo_cfp_params?
        private let rng: CounterRNG?
        private let format: NumberFormat
        public init(_ format: NumberFormat, rounding: Rounding = .nearestEven) {
            p = format.params
            rng = rounding.rng
            c = p.isBF16 || rng != nil ? nil : p.cParams
            self.format = format
        }

        /// Whether `roundIntoCodes` can run: nearest-even to BF16 or to a signed 1-byte format (CFP8).
        public var roundsIntoCodes: Bool {
            (p.isBF16 && rng == nil) || (format.packedBytes == 1 && c.map { $0.mag_mask == 0x7FFF_FFFF } == true)
        }

        /// Rounds `count` values as `round` does and writes the rounded values' codes (`packExactly`'s) to `codes`
        /// instead of the values: zero and the normal range in one C pass that never stores the rounded values
        /// (`dojo_round_cfp8_codes`, `dojo_round_bf16_codes`); a chunk of 64 holding another value (a denormal, one
        /// beyond the largest; for BF16 the whole span) is rounded in place (`values` is then changed there) and coded
        /// as before. Returns the flags raised and whether every value was coded; `largest` is raised as `round`
        /// raises it, except by BF16's C pass (a BF16 rounding tracks no maximum). Only where `roundsIntoCodes`.
        public func roundIntoCodes(_ values: UnsafeMutablePointer<Float>, count n: Int, offset: UInt64,
                                   codes: UnsafeMutableRawPointer, largest: inout UInt32) -> (flags: ExceptionFlags, coded: Bool) {
            precondition(roundsIntoCodes, "roundIntoCodes: \(format.format.rawValue) with this rounding has no one-pass codes")
            if p.isBF16 {
                // BF16: the C pass for spans of normal values; another span rounded in place and coded after
                if dojo_round_bf16_codes(values, n, codes.assumingMemoryBound(to: UInt16.self)) != 0 { return ([], true) }
                let flags = round(values, count: n, offset: offset, largest: &largest)
                return (flags, format.packExactly(values, count: n, into: codes))
            }
            var c = c!
            let u = UnsafeRawPointer(values).assumingMemoryBound(to: UInt32.self)
            let out = codes.assumingMemoryBound(to: UInt8.self)
            var flags: ExceptionFlags = [], coded = true, start = 0
            while start < n {
                start += dojo_round_cfp8_codes(u + start, n - start, out + start, &c, &largest)
                if start >= n { break }
                let end = Swift.min(start + 64, n)
                flags.formUnion(round(values + start, count: end - start, offset: offset &+ UInt64(start), largest: &largest))
                if !format.packExactly(values + start, count: end - start, into: codes + start) { coded = false }
                start = end
            }
            return (flags, coded)
        }

        /// Rounds `count` values in place (element i uses RNG index `offset + i`), raising `largest` to the largest
        /// |value| bits seen before rounding (`magnitude(_:)` reads them). Returns the flags raised.
        @inline(__always)
        public func round(_ values: UnsafeMutablePointer<Float>, count n: Int, offset: UInt64, largest: inout UInt32) -> ExceptionFlags {
            guard n > 0 else { return [] }
            let u = UnsafeMutableRawPointer(values).assumingMemoryBound(to: UInt32.self)
            if var c {
                var underflow: UInt32 = 0
                let done = dojo_round_cfp_nearest(u, n, &c, &largest, &underflow)
                let flags: ExceptionFlags = underflow != 0 ? .underflow : []
                if done >= n { return flags }
                return flags.union(ExceptionFlags(rawValue: p.roundCFP(u, done, n, rng: nil, offset: offset, top: &largest)))
            }
            if p.isBF16 {
                var top = largest
                for i in 0..<n { top = max(top, u[i] & 0x7FFF_FFFF) }
                largest = top
                return ExceptionFlags(rawValue: p.roundBF16(u, 0, n, rng: rng, offset: offset))
            }
            return ExceptionFlags(rawValue: p.roundCFP(u, 0, n, rng: rng, offset: offset, top: &largest))
        }

        /// The magnitude of |value| bits (NaN above infinity's: the bits of a non-negative float order as its value).
        @inline(__always)
        public static func magnitude(_ bits: UInt32) -> Float { bits > 0x7F80_0000 ? .nan : Float(bitPattern: bits) }
    }

    /// Encodes `src` into 16-bit codes (CFP8 codes use the low 8 bits). `codes.count` must equal `src.count`.
    @discardableResult
    public func encode(_ src: UnsafeBufferPointer<Float>, into codes: UnsafeMutableBufferPointer<UInt16>,
                       rounding: Rounding = .nearestEven, offset: UInt64 = 0, threads: Int = 2) -> ExceptionFlags {
        precondition(codes.count == src.count, "encode: \(src.count) values into \(codes.count) codes")
        return encodeGeneric(src, into: codes, rounding: rounding, offset: offset, threads: threads)
    }

    /// Encodes `src` into 8-bit codes; only for the CFP8 formats. `codes.count` must equal `src.count`.
    @discardableResult
    public func encode(_ src: UnsafeBufferPointer<Float>, into codes: UnsafeMutableBufferPointer<UInt8>,
                       rounding: Rounding = .nearestEven, offset: UInt64 = 0, threads: Int = 2) -> ExceptionFlags {
        precondition(bitWidth == 8, "encode into UInt8 codes needs an 8-bit format, not \(format.rawValue)")
        precondition(codes.count == src.count, "encode: \(src.count) values into \(codes.count) codes")
        return encodeGeneric(src, into: codes, rounding: rounding, offset: offset, threads: threads)
    }

    /// Decodes codes into FP32 values. Returns `.denormal` if a denormal code was decoded.
    @discardableResult
    public func decode(_ codes: UnsafeBufferPointer<UInt16>, into dst: UnsafeMutableBufferPointer<Float>,
                       threads: Int = 2) -> ExceptionFlags {
        precondition(codes.count == dst.count, "decode: \(codes.count) codes into \(dst.count) values")
        guard let s = codes.baseAddress, let d = dst.baseAddress, codes.count > 0 else { return [] }
        let p = params
        let src = UncheckedPointer(p: UnsafeMutablePointer(mutating: s))
        let out = UncheckedPointer(p: UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt32.self))
        let table = bitWidth == 8 ? DecodeTable(p) : nil
        let f = forEachSlice(codes.count, threads: threads) { lo, hi in
            if let table { return table.decode(src.p, out.p, lo, hi) }
            return p.isBF16 ? p.decodeBF16(src.p, out.p, lo, hi) : p.decodeCFP16(src.p, out.p, lo, hi)
        }
        return ExceptionFlags(rawValue: f)
    }

    /// Decodes 8-bit codes (CFP8 formats) into FP32 values.
    @discardableResult
    public func decode(_ codes: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<Float>,
                       threads: Int = 2) -> ExceptionFlags {
        precondition(bitWidth == 8, "decode from UInt8 codes needs an 8-bit format, not \(format.rawValue)")
        precondition(codes.count == dst.count, "decode: \(codes.count) codes into \(dst.count) values")
        guard let s = codes.baseAddress, let d = dst.baseAddress, codes.count > 0 else { return [] }
        let src = UncheckedPointer(p: UnsafeMutablePointer(mutating: s))
        let out = UncheckedPointer(p: UnsafeMutableRawPointer(d).assumingMemoryBound(to: UInt32.self))
        let table = DecodeTable(params)
        let f = forEachSlice(codes.count, threads: threads) { lo, hi in table.decode(src.p, out.p, lo, hi) }
        return ExceptionFlags(rawValue: f)
    }

    private func encodeGeneric<C: FixedWidthInteger & UnsignedInteger>(
        _ src: UnsafeBufferPointer<Float>, into codes: UnsafeMutableBufferPointer<C>,
        rounding: Rounding, offset: UInt64, threads: Int
    ) -> ExceptionFlags {
        guard let s = src.baseAddress, let d = codes.baseAddress, src.count > 0 else { return [] }
        let p = params
        let rng = rounding.rng
        let input = UncheckedPointer(p: UnsafeMutableRawPointer(mutating: s).assumingMemoryBound(to: UInt32.self))
        let out = UncheckedPointer(p: d)
        let f = forEachSlice(src.count, threads: threads) { lo, hi in
            p.isBF16 ? p.encodeBF16(input.p, out.p, lo, hi, rng: rng, offset: offset)
                     : p.encodeCFP(input.p, out.p, lo, hi, rng: rng, offset: offset)
        }
        return ExceptionFlags(rawValue: f)
    }
}

extension Rounding {
    var rng: CounterRNG? {
        switch self {
        case .nearestEven: nil
        case let .stochastic(seed): CounterRNG(seed: seed)
        }
    }
}

private let denormalFlag = ExceptionFlags.denormal.rawValue
private let invalidFlag = ExceptionFlags.invalid.rawValue
private let overflowFlag = ExceptionFlags.overflow.rawValue
private let underflowFlag = ExceptionFlags.underflow.rawValue

/// FP32 bits and flags of all 256 codes of an 8-bit format.
private struct DecodeTable: @unchecked Sendable {
    let bits: [UInt32]
    let flags: [UInt8]

    init(_ p: Params) {
        var b = [UInt32](repeating: 0, count: 256), f = [UInt8](repeating: 0, count: 256)
        for c in 0..<256 {
            let r = p.decodeBits(UInt32(c))
            b[c] = r.bits
            f[c] = r.flags
        }
        bits = b
        flags = f
    }

    func decode<C: FixedWidthInteger & UnsignedInteger>(_ src: UnsafeMutablePointer<C>, _ out: UnsafeMutablePointer<UInt32>,
                                                        _ lo: Int, _ hi: Int) -> UInt8 {
        bits.withUnsafeBufferPointer { tb in
            flags.withUnsafeBufferPointer { tf in
                var f: UInt8 = 0
                for i in lo..<hi {
                    let c = Int(src[i] & 0xFF)
                    out[i] = tb[c]
                    f |= tf[c]
                }
                return f
            }
        }
    }
}

extension Params {
    /// The constants CDojoKernels' CFP loops take.
    var cParams: dojo_cfp_params {
        dojo_cfp_params(mag_mask: signed ? 0x7FFF_FFFF : 0xFFFF_FFFF, sign_mask: signed ? 0x8000_0000 : 0,
                        min_normal_bits: minNormalBits, range: maxBits &- minNormalBits, low_mask: lowMask, shift: shift,
                        bias_adj: biasAdj, sign_shift: 31 - magBits, mantissa_bits: mantissaBits, code_mag_mask: magMask,
                        denormal_unit: Float(sign: .plus, exponent: unitExponent, significand: 1), as_printed: asPrinted ? 1 : 0)
    }

    // MARK: BF16 (fully branch-free)

    @inline(__always)
    private func bf16Round(_ b: UInt32, _ rand: UInt32, _ stochastic: Bool) -> (r: UInt32, flags: UInt32) {
        let a = b & 0x7FFF_FFFF
        let isNaN = a > 0x7F80_0000
        let r = stochastic ? b &+ (rand & 0xFFFF) : b &+ 0x7FFF &+ ((b >> 16) & 1)
        let out = isNaN ? ((b | 0x0040_0000) & 0xFFFF_0000) : (r & 0xFFFF_0000)
        // Flags as 32-bit lanes (UInt32) so the loops that OR them vectorise without packing.
        var f: UInt32 = isNaN ? UInt32(invalidFlag) : 0
        f |= (a != 0 && a < 0x0080_0000) ? UInt32(denormalFlag) : 0
        f |= (a < 0x7F80_0000 && (out & 0x7FFF_FFFF) == 0x7F80_0000) ? UInt32(overflowFlag) : 0
        f |= ((out & 0x7FFF_FFFF) < 0x0080_0000 && (a & 0xFFFF) != 0) ? UInt32(underflowFlag) : 0
        return (out, f)
    }

    /// Rounds one block of FP32 bits to BF16 (result as FP32 bits in `out`) without flags; returns whether
    /// any element might raise one (FP32 subnormal, near or above max, Inf, NaN). Such blocks get a second,
    /// flag-computing pass, which keeps the common loop short.
    @inline(__always)
    private func bf16Block(_ src: UnsafeMutablePointer<UInt32>, _ out: UnsafeMutablePointer<UInt32>, _ n: Int,
                           rnd: UnsafeMutablePointer<UInt32>?) -> Bool {
        var special: UInt32 = 0
        if let rnd {
            for j in 0..<n {
                let b = src[j]
                let a = b & 0x7FFF_FFFF
                special |= ((a != 0 && a < 0x0080_0000) || a > 0x7F7F_0000) ? 1 : 0
                let r = b &+ (rnd[j] & 0xFFFF)
                out[j] = a > 0x7F80_0000 ? ((b | 0x0040_0000) & 0xFFFF_0000) : (r & 0xFFFF_0000)
            }
        } else {
            for j in 0..<n {
                let b = src[j]
                let a = b & 0x7FFF_FFFF
                special |= ((a != 0 && a < 0x0080_0000) || a > 0x7F7F_0000) ? 1 : 0
                let r = b &+ 0x7FFF &+ ((b >> 16) & 1)
                out[j] = a > 0x7F80_0000 ? ((b | 0x0040_0000) & 0xFFFF_0000) : (r & 0xFFFF_0000)
            }
        }
        return special != 0
    }

    /// The flags of one block (the second pass of `bf16Block`).
    private func bf16Flags(_ src: UnsafeMutablePointer<UInt32>, _ n: Int, rng: CounterRNG?, index0: UInt64) -> UInt32 {
        var f: UInt32 = 0
        for j in 0..<n {
            let rand = rng?.bits32(at: index0 &+ UInt64(j)) ?? 0
            f |= bf16Round(src[j], rand, rng != nil).flags
        }
        return f
    }

    func roundBF16(_ p: UnsafeMutablePointer<UInt32>, _ lo: Int, _ hi: Int, rng: CounterRNG?, offset: UInt64) -> UInt8 {
        var f: UInt32 = 0
        if rng == nil {
            // nearest-even: each block checked for values outside the fast path's range (read only), then rounded in
            // place, both while it is in L1; only a block with such a value takes the scratch-buffer path below
            var start = lo
            while start < hi {
                let n = min(blockSize, hi - start)
                let b = UnsafeMutableRawPointer(p + start).assumingMemoryBound(to: Float.self)
                if !NumberFormat.roundBF16NearestEvenIfNormal(b, count: n) {
                    f |= UInt32(roundBF16Scratch(p, start, start + n, rng: nil, offset: offset))
                }
                start += n
            }
            return UInt8(truncatingIfNeeded: f)
        }
        return roundBF16Scratch(p, lo, hi, rng: rng, offset: offset)
    }

    private func roundBF16Scratch(_ p: UnsafeMutablePointer<UInt32>, _ lo: Int, _ hi: Int, rng: CounterRNG?, offset: UInt64) -> UInt8 {
        var f: UInt32 = 0
        let tmp = UnsafeMutablePointer<UInt32>.allocate(capacity: blockSize)
        defer { tmp.deallocate() }
        let rnd: UnsafeMutablePointer<UInt32>? = rng == nil ? nil : .allocate(capacity: blockSize)
        defer { rnd?.deallocate() }
        var start = lo
        while start < hi {
            let n = min(blockSize, hi - start)
            let index0 = offset &+ UInt64(start)
            if let rng, let rnd { rng.fill32(rnd, count: n, from: index0) }
            if bf16Block(p + start, tmp, n, rnd: rnd) {
                f |= bf16Flags(p + start, n, rng: rng, index0: index0)
            }
            (p + start).update(from: tmp, count: n)
            start += n
        }
        return UInt8(truncatingIfNeeded: f)
    }

    func encodeBF16<C: FixedWidthInteger & UnsignedInteger>(_ src: UnsafeMutablePointer<UInt32>, _ out: UnsafeMutablePointer<C>,
                                                            _ lo: Int, _ hi: Int, rng: CounterRNG?, offset: UInt64) -> UInt8 {
        var f: UInt32 = 0
        let tmp = UnsafeMutablePointer<UInt32>.allocate(capacity: blockSize)
        defer { tmp.deallocate() }
        let rnd: UnsafeMutablePointer<UInt32>? = rng == nil ? nil : .allocate(capacity: blockSize)
        defer { rnd?.deallocate() }
        var start = lo
        while start < hi {
            let n = min(blockSize, hi - start)
            let index0 = offset &+ UInt64(start)
            if let rng, let rnd { rng.fill32(rnd, count: n, from: index0) }
            if bf16Block(src + start, tmp, n, rnd: rnd) {
                f |= bf16Flags(src + start, n, rng: rng, index0: index0)
            }
            let dst = out + start
            for j in 0..<n { dst[j] = C(truncatingIfNeeded: tmp[j] >> 16) }
            start += n
        }
        return UInt8(truncatingIfNeeded: f)
    }

    func decodeBF16(_ src: UnsafeMutablePointer<UInt16>, _ out: UnsafeMutablePointer<UInt32>, _ lo: Int, _ hi: Int) -> UInt8 {
        var f: UInt8 = 0
        for i in lo..<hi {
            let c = UInt32(src[i])
            out[i] = c << 16
            f |= ((c & 0x7F80) == 0 && (c & 0x7F) != 0) ? denormalFlag : 0
        }
        return f
    }

    // MARK: CFP formats

    /// Whether FP32 bits lie outside the fast path's domain: nonzero and below the smallest normal or
    /// above max, NaN, Inf, or (UHP) negative.
    /// Branch-free (no `&&`): the blocks that hold a special value check every value with it, and a short-circuit
    /// branch on `a != 0` mispredicted on every other value of a ReLU's output or gradient (half of them zeros).
    @inline(__always)
    func isSpecial(_ b: UInt32) -> Bool {
        let a = signed ? b & 0x7FFF_FFFF : b
        let outside: UInt32 = (a &- minNormalBits) > (maxBits &- minNormalBits) ? 1 : 0
        let nonzero: UInt32 = a != 0 ? 1 : 0
        return outside & nonzero != 0
    }

    /// Fast path over one block: `out[j]` gets the FP32 bits (`codes == false`) or the code of `src[j]`,
    /// assuming the element is not special; returns whether any element of the block is special.
    @inline(__always)
    private func fastBlock(_ src: UnsafeMutablePointer<UInt32>, _ out: UnsafeMutablePointer<UInt32>, _ n: Int,
                           rnd: UnsafeMutablePointer<UInt32>?, codes: Bool, top: inout UInt32) -> Bool {
        var largest = top
        defer { top = largest }
        let mask: UInt32 = signed ? 0x7FFF_FFFF : 0xFFFF_FFFF
        let range = maxBits &- minNormalBits
        let minN = minNormalBits
        let signMask: UInt32 = signed ? 0x8000_0000 : 0
        let signShift = 31 - magBits
        let low = lowMask, halfm1 = lowMask >> 1, sh = shift, adj = biasAdj
        var special: UInt32 = 0
        if let rnd {
            for j in 0..<n {
                let b = src[j]
                let a = b & 0x7FFF_FFFF
                largest = a > largest ? a : largest
                let m = b & mask
                special |= (m != 0 && (m &- minN) > range) ? 1 : 0
                let r = a &+ (rnd[j] & low)
                out[j] = codes ? (a == 0 ? 0 : (r &- adj) &>> sh) | ((b & signMask) &>> signShift)
                               : (r & ~low) | (b & signMask)
            }
        } else {
            for j in 0..<n {
                let b = src[j]
                let a = b & 0x7FFF_FFFF
                largest = a > largest ? a : largest
                let m = b & mask
                special |= (m != 0 && (m &- minN) > range) ? 1 : 0
                let r = a &+ halfm1 &+ ((a &>> sh) & 1)
                out[j] = codes ? (a == 0 ? 0 : (r &- adj) &>> sh) | ((b & signMask) &>> signShift)
                               : (r & ~low) | (b & signMask)
            }
        }
        return special != 0
    }

    /// In-place fake quantisation of elements lo..<hi. Each block is computed by the fast path into a
    /// scratch buffer; elements the fast path cannot handle are then redone by the scalar kernel.
    func roundCFP(_ p: UnsafeMutablePointer<UInt32>, _ lo: Int, _ hi: Int, rng: CounterRNG?, offset: UInt64) -> UInt8 {
        var top: UInt32 = 0
        return roundCFP(p, lo, hi, rng: rng, offset: offset, top: &top)
    }

    /// `top`: raised to the largest |value| bits seen (before rounding).
    func roundCFP(_ p: UnsafeMutablePointer<UInt32>, _ lo: Int, _ hi: Int, rng: CounterRNG?, offset: UInt64, top: inout UInt32) -> UInt8 {
        // the scratch block on the stack: kernels call this span by span (a few hundred values each), where a heap
        // allocation per call cost as much as the rounding
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: blockSize) { scratch in
            roundCFP(p, lo, hi, rng: rng, offset: offset, top: &top, tmp: scratch.baseAddress!)
        }
    }

    private func roundCFP(_ p: UnsafeMutablePointer<UInt32>, _ lo: Int, _ hi: Int, rng: CounterRNG?, offset: UInt64, top: inout UInt32,
                          tmp: UnsafeMutablePointer<UInt32>) -> UInt8 {
        var f: UInt8 = 0
        let rnd: UnsafeMutablePointer<UInt32>? = rng == nil ? nil : .allocate(capacity: blockSize)
        defer { rnd?.deallocate() }
        var c = rng == nil ? cParams : nil
        var start = lo
        while start < hi {
            if c != nil {
                // nearest-even: the C loops (AVX2 where the CPU has it) take zero and the normal range, up to the first
                // chunk of 64 holding another value; that chunk alone then goes through the fast block and the scalar
                // kernel, and the C loops go on after it (values the format holds as denormals, common among small
                // activations, would otherwise send a whole block of 1024 to the slower Swift loop each time)
                var underflow: UInt32 = 0
                start += withUnsafePointer(to: &c!) { dojo_round_cfp_nearest(p + start, hi - start, $0, &top, &underflow) }
                if underflow != 0 { f |= underflowFlag }
                if start >= hi { break }
            }
            let n = min(c != nil ? 64 : blockSize, hi - start)
            let base = p + start
            let index0 = offset &+ UInt64(start)
            if let rng, let rnd { rng.fill32(rnd, count: n, from: index0) }
            if fastBlock(base, tmp, n, rnd: rnd, codes: false, top: &top) {
                for j in 0..<n {
                    let b = base[j]
                    if isSpecial(b) {
                        let e = encodeBits(b, rng: rng, index: index0 &+ UInt64(j))
                        base[j] = decodeBits(e.code).bits
                        f |= e.flags
                    } else {
                        base[j] = tmp[j]
                    }
                }
            } else {
                base.update(from: tmp, count: n)
            }
            start += n
        }
        return f
    }

    func encodeCFP<C: FixedWidthInteger & UnsignedInteger>(_ src: UnsafeMutablePointer<UInt32>, _ out: UnsafeMutablePointer<C>,
                                                           _ lo: Int, _ hi: Int, rng: CounterRNG?, offset: UInt64) -> UInt8 {
        var f: UInt8 = 0
        let tmp = UnsafeMutablePointer<UInt32>.allocate(capacity: blockSize)
        defer { tmp.deallocate() }
        let rnd: UnsafeMutablePointer<UInt32>? = rng == nil ? nil : .allocate(capacity: blockSize)
        defer { rnd?.deallocate() }
        var start = lo
        while start < hi {
            let n = min(blockSize, hi - start)
            let base = src + start
            let dst = out + start
            let index0 = offset &+ UInt64(start)
            if let rng, let rnd { rng.fill32(rnd, count: n, from: index0) }
            var unused: UInt32 = 0
            if fastBlock(base, tmp, n, rnd: rnd, codes: true, top: &unused) {
                for j in 0..<n {
                    let b = base[j]
                    if isSpecial(b) {
                        let e = encodeBits(b, rng: rng, index: index0 &+ UInt64(j))
                        dst[j] = C(truncatingIfNeeded: e.code)
                        f |= e.flags
                    } else {
                        dst[j] = C(truncatingIfNeeded: tmp[j])
                    }
                }
            } else {
                for j in 0..<n { dst[j] = C(truncatingIfNeeded: tmp[j]) }
            }
            start += n
        }
        return f
    }

    func decodeCFP16(_ src: UnsafeMutablePointer<UInt16>, _ out: UnsafeMutablePointer<UInt32>, _ lo: Int, _ hi: Int) -> UInt8 {
        var f: UInt8 = 0
        let unit = Float(sign: .plus, exponent: unitExponent, significand: 1)
        let mm = magMask, mb = magBits, m = mantissaBits, sh = shift, adj = biasAdj
        let sgn: UInt32 = signed ? 1 : 0
        for i in lo..<hi {
            let c = UInt32(src[i])
            let mag = c & mm
            let sign = ((c &>> mb) & sgn) << 31
            let isDen = (mag &>> m) == 0
            let den = (Float(Int32(bitPattern: mag)) * unit).bitPattern
            let normal = (mag &<< sh) &+ adj
            out[i] = (isDen ? den : normal) | sign
            f |= (isDen && mag != 0) ? denormalFlag : 0
        }
        return f
    }
}

// MARK: - Packed storage (issue 14 §2: what backward reads kept in the format itself, 1 or 2 bytes a value)

extension NumberFormat {
    /// Bytes one value takes packed: 1 for the CFP8 formats, 2 for BF16; nil for the formats not packed (CFP16).
    public var packedBytes: Int? {
        switch format {
        case .cfp8_143, .cfp8_152: 1
        case .bf16: 2
        case .shp, .uhp: nil
        }
    }

    /// Writes the codes of `count` values (`packedBytes` each) when every value is exactly representable in this
    /// format: the FP32 values a rounding to it produced. Returns false at the first value that is not (nothing is
    /// then promised about `codes`): packing never changes a value. On the calling thread; branch-free loops over the
    /// bits for the values in the normal range and zero, the scalar encoder (and a check that the code decodes to the
    /// same bits) for the rest.
    public func packExactly(_ src: UnsafePointer<Float>, count n: Int, into codes: UnsafeMutableRawPointer) -> Bool {
        let u = UnsafeRawPointer(src).assumingMemoryBound(to: UInt32.self)
        if format == .bf16 {
            return dojo_pack_bf16(u, n, codes.assumingMemoryBound(to: UInt16.self)) != 0
        }
        guard packedBytes == 1 else { return false }
        let p = params
        var c = p.cParams
        let out = codes.assumingMemoryBound(to: UInt8.self)
        // Zero and the normal range in the C loops (AVX2 where the CPU has it), up to the first 64 values holding
        // another value (a denormal, one beyond the largest, NaN): those go through the scalar encoder, whose code must
        // decode to the same bits; the branch that finds them is rarely taken.
        var start = 0
        while start < n {
            let done = dojo_pack_cfp8(u + start, n - start, out + start, &c)
            if done < 0 { return false }
            start += done
            if start >= n { break }
            let end = Swift.min(start + 64, n)
            for j in start..<end {
                let b = u[j]
                if p.isSpecial(b) {
                    let e = p.encodeBits(b, rng: nil, index: 0)
                    if p.decodeBits(e.code).bits != b { return false }
                    out[j] = UInt8(truncatingIfNeeded: e.code)
                } else {
                    let a = b & 0x7FFF_FFFF
                    if a & p.lowMask != 0 { return false }
                    let code = a == 0 ? 0 : (a &- p.biasAdj) &>> p.shift
                    out[j] = UInt8(truncatingIfNeeded: code | ((b & 0x8000_0000) &>> (31 - p.magBits)))
                }
            }
            start = end
        }
        return true
    }

    /// The FP32 values of `count` codes that `packExactly` wrote, on the calling thread.
    public func unpack(_ codes: UnsafeRawPointer, count n: Int, into dst: UnsafeMutablePointer<Float>) {
        Unpacker(self).unpack(codes, count: n, into: dst)
    }

    /// Decodes packed codes (`packExactly`'s) of one format: made once, then used for every span a kernel reads.
    public struct Unpacker: @unchecked Sendable {
        public let format: NumberFormat
        private let constants: dojo_cfp_params?
        public init(_ format: NumberFormat) {
            precondition(format.packedBytes != nil, "unpack: \(format.format.rawValue) is not packed")
            self.format = format
            constants = format.format == .bf16 ? nil : format.params.cParams
        }
        /// Values `offset..<offset+count` of the codes at `codes` into `dst`.
        @inline(__always)
        public func unpack(_ codes: UnsafeRawPointer, offset: Int = 0, count n: Int, into dst: UnsafeMutablePointer<Float>) {
            let out = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt32.self)
            guard var c = constants else {
                dojo_unpack_bf16(codes.assumingMemoryBound(to: UInt16.self) + offset, n, out)
                return
            }
            dojo_unpack_cfp8(codes.assumingMemoryBound(to: UInt8.self) + offset, n, out, &c)
        }
    }
}
