import CDojoKernels
import Synchronization
import DojoNumerics
import DojoGraph

import Foundation

extension Engine {
    /// Whether a gradient rounded to BF16 or CFP8 in place writes its codes as it rounds, for the BF16 products that
    /// read it (off: they convert its FP32 values: the other side of a comparison on one machine, `DOJO_GRADIENT_CODES=0`).
    @TaskLocal public static var gradientCodes = ProcessInfo.processInfo.environment["DOJO_GRADIENT_CODES"] != "0"

    /// Whether a linear layer whose output is rounded to BF16 has its GEMM write the BF16 codes directly
    /// (`Tensor.linear`; off: an FP32 result and a rounding pass, the other side of a comparison, `DOJO_BF16_OUTPUTS=0`).
    @TaskLocal public static var bf16Outputs = ProcessInfo.processInfo.environment["DOJO_BF16_OUTPUTS"] != "0"
}

/// A rounding to a number format, in the two forms a kernel can use (issue 14 §2: rounding fused into the loop that
/// produces a tensor): `pass` rounds a whole buffer in a pass of its own; `begin` starts a rounding that the
/// producing kernel applies span by span while the values are still in cache (nil when it cannot run that way now:
/// a CFP8 site still choosing its bias from a scan of the whole tensor).
public struct TensorRounding {
    public let dtype: DType
    public let pass: Tensor.RoundingPass
    public let begin: () -> RoundingTask?
    public init(dtype: DType, pass: @escaping Tensor.RoundingPass, begin: @escaping () -> RoundingTask?) {
        self.dtype = dtype; self.pass = pass; self.begin = begin
    }
}

/// One tensor's rounding, applied span by span by the kernel that writes it (from any of its threads). Each thread
/// keeps a `Tally` (exception flags, the largest magnitude seen) and merges it once; `finish` hands the totals to
/// whoever chose the format (the precision policy's history and flags).
public final class RoundingTask: @unchecked Sendable {
    public struct Tally: Sendable {
        public var flags: UInt8 = 0
        public var largest: Float = 0
        public init() {}
        mutating func add(_ bits: UInt8, _ top: Float) {
            flags |= bits
            largest = top.isNaN || largest.isNaN ? .nan : Swift.max(largest, top)
        }
    }
    /// Rounds `count` values in place, `offset` being the first one's index in the tensor; returns the flags raised
    /// and the largest magnitude (when the rounding tracks it). Must be safe to call from several threads at once.
    let span: @Sendable (UnsafeMutablePointer<Float>, Int, Int) -> (UInt8, Float)
    let done: @Sendable (Tally) -> Void
    private var total = Tally()
    private let lock = NSLock()

    /// BF16 with round-to-nearest-even: spans of normal values are rounded inline
    /// (`NumberFormat.roundBF16NearestEvenIfNormal`), the rest by `span`.
    let bf16NearestEven: Bool
    /// The format with its bias the values are rounded to, when the rounding says (the kernel sets it as the output
    /// storage's `packFormat`: its values can then be packed).
    public let numberFormat: NumberFormat?

    /// Rounds `count` values (`offset` the first one's index) and writes the codes of the rounded values, in
    /// `numberFormat`, at the address given, instead of the rounded values (the values may be changed): one pass where
    /// rounding and then coding (`codes.write`) would be two (BF16 and CFP8 to nearest-even, `SpanRounder.roundIntoCodes`).
    /// Returns the flags, the largest magnitude and whether every value was coded. Nil: round, then code.
    public typealias CodesSpan = @Sendable (UnsafeMutablePointer<Float>, Int, Int, UnsafeMutableRawPointer) -> (UInt8, Float, Bool)
    let codesSpan: CodesSpan?

    public init(bf16NearestEven: Bool = false, numberFormat: NumberFormat? = nil,
                span: @escaping @Sendable (UnsafeMutablePointer<Float>, Int, Int) -> (UInt8, Float),
                codesSpan: CodesSpan? = nil,
                done: @escaping @Sendable (Tally) -> Void) {
        self.bf16NearestEven = bf16NearestEven; self.numberFormat = numberFormat; self.span = span; self.done = done
        self.codesSpan = numberFormat?.packedBytes == nil ? nil : codesSpan
    }

    /// Rounds `count` values at `p` (the tensor's values `offset..<offset+count`) in place, noting into `tally`.
    @inline(__always)
    public func round(_ p: UnsafeMutablePointer<Float>, count: Int, offset: Int, into tally: inout Tally) {
        guard count > 0 else { return }
        if bf16NearestEven {
            // a block at a time, checked (a read) and rounded (a write) while it is in L1: one pass over a large span,
            // not two; a block holding a value the fast path leaves (subnormal, near BF16's largest, infinite, NaN)
            // goes to `span`
            var start = 0
            while start < count {
                let n = Swift.min(RoundingTask.block, count - start)
                if !NumberFormat.roundBF16NearestEvenIfNormal(p + start, count: n) {
                    let (bits, top) = span(p + start, n, offset + start)
                    tally.add(bits, top)
                }
                start += n
            }
            return
        }
        let (bits, top) = span(p, count, offset)
        tally.add(bits, top)
    }

    /// Values a BF16 rounding checks and rounds at a time (16 KiB: in L1 between the two).
    static let block = 4096

    /// Rounds `count` values at `p` (a whole tensor, written before) over the compute threads, merging their tallies.
    /// `codes`: the rounded values' codes written too, block by block while the block is in cache (then the tensor is
    /// packed without an encoding pass, and a BF16 product reads its codes as they are).
    /// `source`: the values to round, copied into `p` block by block as they are rounded (one pass that reads them and
    /// writes `p`); nil: `p`'s own.
    public func roundAll(_ p: UnsafeMutablePointer<Float>, count: Int, from source: UnsafePointer<Float>? = nil,
                         codes: CodesWriter? = nil) {
        let base = SendablePointer(p)
        let from = source.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
        parallelChunks(count, minimumPerThread: 1 << 14) { r in
            var tally = Tally()
            guard codes != nil || from != nil else {
                round(base.p + r.lowerBound, count: r.count, offset: r.lowerBound, into: &tally)
                merge(tally)
                return
            }
            var lo = r.lowerBound
            while lo < r.upperBound {
                let n = Swift.min(RoundingTask.block, r.upperBound - lo)
                if let from { (base.p + lo).update(from: from.p + lo, count: n) }
                round(base.p + lo, count: n, offset: lo, into: &tally)
                codes?.write(base.p + lo, count: n, offset: lo)
                lo += n
            }
            merge(tally)
        }
    }

    /// A tensor made, rounded and coded block by block, its codes the only thing written (no FP32 values), over the
    /// compute threads: `units` units of `width` values each (a row of layer norm, or one value), `blockUnits` at a
    /// time; `produce(first, count, buffer, spare)` writes units `first..<first+count` into a buffer that stays in
    /// cache, which is then rounded by this task and coded (`spare`: as large again, for an input decoded first). The one loop behind every output held as codes only from the
    /// start (a Linear's rounded product, GELU's and layer norm's outputs in training); then `codes.codesOnlyStorage`
    /// holds the tensor (nil when a value could not be coded).
    public func roundIntoCodes(units: Int, width: Int = 1, blockUnits: Int, minimumPerThread: Int, codes: CodesWriter,
                               _ produce: (_ first: Int, _ count: Int, _ buffer: UnsafeMutablePointer<Float>,
                                           _ spare: UnsafeMutablePointer<Float>) -> Void) {
        parallelChunks(units, minimumPerThread: minimumPerThread) { r in
            var tally = Tally()
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * blockUnits * width) { scratch in
                let s = scratch.baseAddress!
                var lo = r.lowerBound
                while lo < r.upperBound {
                    let n = Swift.min(blockUnits, r.upperBound - lo)
                    produce(lo, n, s, s + blockUnits * width)
                    if !roundCoding(s, count: n * width, offset: lo * width, format: codes.format,
                                    codes: codes.address(of: lo * width), into: &tally) { codes.markFailed() }
                    lo += n
                }
            }
            merge(tally)
        }
    }

    /// Rounds `count` values at `p` (the tensor's values `offset..<offset+count`, `p` changed or not) and writes the
    /// rounded values' codes in `format` at `codes`, nothing else: in one pass (`codesSpan`) where the rounding has one
    /// and `format` is its own, else rounded in place and then coded. Returns whether every value was coded.
    @inline(__always)
    func roundCoding(_ p: UnsafeMutablePointer<Float>, count: Int, offset: Int, format: NumberFormat,
                     codes: UnsafeMutableRawPointer, into tally: inout Tally) -> Bool {
        // called through the optional rather than bound to a local copy of the closure (batch norm calls this once
        // per channel span from every thread, where reference counting showed in perf)
        if format == numberFormat, let (flags, top, coded) = codesSpan?(p, count, offset, codes) {
            tally.add(flags, top)
            return coded
        }
        round(p, count: count, offset: offset, into: &tally)
        return format.packExactly(p, count: count, into: codes)
    }

    public func merge(_ tally: Tally) {
        lock.lock(); total.add(tally.flags, tally.largest); lock.unlock()
    }

    /// After every span was rounded and merged.
    public func finish() { done(total) }
}

/// The codes a kernel writes for its rounded output, span by span while the values are in cache, in training: beside
/// the FP32 values (`finish`: the tape keeps such an output packed for the backward that reads it, and packing then
/// only frees the FP32 values), or in their place (`codesOnlyStorage`: batch norm's output). A product reads BF16
/// codes as they are. Spans may be written from several threads.
public final class CodesWriter: @unchecked Sendable {
    let format: NumberFormat
    let bytes: Int
    let codes: UnsafeMutableRawPointer
    private let failed = Atomic<Bool>(false)

    /// Nil outside a tape that packs, for a tensor too small to pack, or without a rounding to a packed format.
    public init?(_ task: RoundingTask?, count: Int) {
        guard Tape.current?.packsSavedValues == true, count >= Storage.packMinimum, let f = task?.numberFormat,
              let b = f.packedBytes else { return nil }
        format = f; bytes = b
        codes = UnsafeMutableRawPointer.allocate(byteCount: count * b, alignment: 64)
    }

    /// Codes for a rounded gradient, which no tape packs: a BF16 product reads them in place of its FP32 values. A
    /// gradient rounded to CFP8 gets BF16 codes (its values' upper halves: CFP8's values are exact in BF16), which the
    /// products read as they are, not 1-byte codes that each product would look up into BF16 bits first; the
    /// storage's `packFormat` is then BF16 (`format`). Nil for a tensor too small to be worth it or a rounding to a
    /// format without codes.
    public init?(gradientOf task: RoundingTask, count: Int) {
        guard count >= Storage.packMinimum, var f = task.numberFormat, var b = f.packedBytes else { return nil }
        if b == 1, f.format == .cfp8_143 || f.format == .cfp8_152 { f = CodesWriter.bf16; b = 2 }
        format = f; bytes = b
        codes = UnsafeMutableRawPointer.allocate(byteCount: count * b, alignment: 64)
    }
    private static let bf16 = try! NumberFormat(.bf16)

    /// Frees the codes (a kernel that did not write them).
    public func discard() { codes.deallocate() }

    /// The codes of the rounded values `offset..<offset+count` (at `values`).
    @inline(__always)
    public func write(_ values: UnsafePointer<Float>, count: Int, offset: Int) {
        if !format.packExactly(values, count: count, into: codes + offset * bytes) { failed.store(true, ordering: .relaxed) }
    }

    /// Where value `offset`'s code goes.
    @inline(__always)
    func address(of offset: Int) -> UnsafeMutableRawPointer { codes + offset * bytes }

    /// A span could not be coded (`codesOnlyStorage` then gives nil).
    func markFailed() { failed.store(true, ordering: .relaxed) }

    /// A storage holding the values as these codes only (`Storage(codes:count:format:)`), for a kernel that wrote
    /// the codes in place of its FP32 output; nil (the codes freed) when a span could not be coded: the caller then
    /// writes the FP32 output after all.
    public func codesOnlyStorage(count: Int) -> Storage? {
        if failed.load(ordering: .relaxed) { codes.deallocate(); return nil }
        return Storage(codes: codes, count: count, format: format)
    }

    /// Hands the codes to the tensor's storage when every span was written exactly in the format the storage is
    /// packable in (`Tensor.finishRounding` set it); frees them otherwise.
    public func finish(_ t: Tensor) {
        if failed.load(ordering: .relaxed) || t.storage.packFormat != format || !t.storage.adoptCodesIfNone(codes) { codes.deallocate() }
    }
}

/// A BF16 copy of FP32 values, as codes (2 bytes a value, rounded to nearest even), written span by span by the
/// kernel that reads the values anyway: what a backward reads, kept in a format (issue 14 §2) where the op's input is
/// in none (layer normalisation's input, the FP32 residual stream of a transformer). Only while a tape records, and
/// only for tensors worth packing; whether the tape packs or not (`Tape.packsSavedValues`), so that packing never
/// changes what backward computes.
public final class BF16Copy: @unchecked Sendable {
    let codes: UnsafeMutablePointer<UInt16>
    private let failed = Atomic<Bool>(false)
    private static let format = try! NumberFormat(.bf16)

    public init?(count: Int) {
        guard Tape.current != nil, count >= Storage.packMinimum else { return nil }
        codes = .allocate(capacity: count)
    }

    /// The codes of values `offset..<offset+count` (at `values`, which stay as they are).
    @inline(__always)
    public func write(_ values: UnsafePointer<Float>, count: Int, offset: Int) {
        if dojo_round_bf16_codes(values, count, codes + offset) == 0 { failed.store(true, ordering: .relaxed) }
    }

    /// The copy, held as codes only (`Storage(codes:count:format:)`); nil, the codes freed, when a value had none (an
    /// FP32 subnormal, a value near BF16's largest, an infinity or a NaN): the caller keeps the FP32 values then.
    public func tensor(shape: [Int]) -> Tensor? {
        if failed.load(ordering: .relaxed) { codes.deallocate(); return nil }
        return Tensor(shape: shape, storage: Storage(codes: UnsafeMutableRawPointer(codes), count: elementCount(shape), format: BF16Copy.format))
    }
}

extension Tensor {
    /// A rounding pass: rounds `source`'s values (nil: the destination's own) into `destination`, in one pass, and
    /// returns the format with its bias that every value is now exact in (nil when it does not say: the values are
    /// then never packed, `Storage.packFormat`).
    public typealias RoundingPass = (_ source: UnsafePointer<Float>?, _ destination: UnsafeMutableBufferPointer<Float>) -> NumberFormat?

    /// The tensor with every value rounded by `round` (e.g. to a Dojo number format), as Dojo stores it.
    /// Backward is straight-through, the gradient itself rounded by `gradient` when one is given (Dojo keeps
    /// gradients in a narrow format too), into a new tensor in the same pass that reads it — unless the kernel that
    /// made the gradient already rounded it while writing it (`gradientRounding`, `roundedAsGradientOf`).
    /// - inPlace: round this tensor's own storage and return a view of it (no copy, no second buffer), for a value
    ///   nothing else reads unrounded — a layer's fresh output, which backward then uses in the format, as Dojo
    ///   stores it.
    /// - alreadyRounded: the kernel that made this tensor rounded it as it wrote it (it is exclusive and in the
    ///   format): nothing left to do forward; the op is still recorded, and its gradient rounded.
    /// - spans: the same rounding in its span form (`round`'s twin). Where it can run span by span now (its format
    ///   chosen: a site with history), the pass also writes the rounded values' codes block by block while they are in
    ///   cache, so that packing the tensor for backward later frees its FP32 buffer without an encoding pass over
    ///   values no longer in cache.
    public func rounded(to dtype: DType, inPlace: Bool = false, alreadyRounded: Bool = false, _ round: RoundingPass,
                        spans: TensorRounding? = nil, gradient: TensorRounding? = nil) -> Tensor {
        let out = inPlace || alreadyRounded ? Tensor(shape: shape, storage: storage) : Tensor(uninitializedShape: shape)
        if !alreadyRounded && !out.isShapeOnly && !isShapeOnly {
            let source = inPlace ? nil : UnsafePointer(pointer)
            if Engine.backend == .oneDNN, let spans, let task = spans.begin() {
                let codes = CodesWriter(task, count: count)
                task.roundAll(out.pointer, count: count, from: source, codes: codes)
                out.finishRounding(task, of: spans)
                codes?.finish(out)
            } else {
                out.storage.packFormat = round(source, out.storage.buffer)
            }
        }
        out.format = dtype
        out.gradientRounding = gradient
        Tape.note(.quantize, inputs: [self], output: out, attributes: OpAttributes(dtype: dtype)) { [serial = out.serial] g, _ in
            guard let gradient, !g.isShapeOnly else { return [g] }
            if g.roundedAsGradientOf == serial { return [g] }
            let r = Tape.gradientBuffer(reusing: g, shape: g.shape)
            let exactInBF16 = gradient.dtype.valuesExactInBF16
            // A BF16 product reads a gradient rounded to BF16 or CFP8 as BF16 bits (a layer's weight and input
            // gradients): where the rounding runs span by span now, it writes the codes as it rounds,
            // block by block in cache, and the product takes them as they are (CFP8's through a table) instead of
            // converting the FP32 gradient in a pass of its own. The storage then holds a format and is not written over
            // again (`Tape.gradientBuffer`).
            if Engine.gradientCodes, exactInBF16, BF16Gemm.isEnabled, let task = gradient.begin() {
                let codes = CodesWriter(gradientOf: task, count: r.count)
                task.roundAll(r.pointer, count: r.count, from: r.storage === g.storage ? nil : UnsafePointer(g.pointer), codes: codes)
                task.finish()
                r.storage.packFormat = codes?.format ?? task.numberFormat
                codes?.finish(r)
                r.bf16Exact = true
                return [r]
            }
            // (a gradient rounded to a format is exact in BF16: a GEMM that reads it may run on BF16 kernels)
            if gradient.pass(r.storage === g.storage ? nil : UnsafePointer(g.pointer), r.storage.buffer) != nil {
                r.bf16Exact = exactInBF16
            }
            return [r]
        }
        return out
    }

    /// After a kernel wrote this fresh tensor and rounded every value by `task` (begun from `rounding`) as it wrote
    /// them: hands the tally to whoever chose the format, and marks the tensor as in the format (`format`) and its
    /// storage as packable in it (`Storage.packFormat`), so that the layer records the rounding without running it.
    func finishRounding(_ task: RoundingTask, of rounding: TensorRounding?) {
        task.finish()
        format = rounding?.dtype
        storage.packFormat = task.numberFormat
    }

    /// Rounds, span by span, the gradient `dx` a kernel writes for this tensor, when this tensor's gradient is rounded
    /// and the rounding can run that way now: `body` writes `dx` and calls the task (if any) on each span it wrote,
    /// while the span is in cache, and returns whether it did; then `dx` is marked rounded. Without a task `body`
    /// runs alone.
    public func fusingGradientRounding(into dx: Tensor, _ body: (RoundingTask?) -> Bool) {
        Tensor.fusingGradientRounding(gradientRounding, of: serial, into: dx, body)
    }

    /// The same for the tensor with this `serial` and `gradientRounding`, for a backward that does not keep the tensor.
    public static func fusingGradientRounding(_ rounding: TensorRounding?, of serial: Int, into dx: Tensor, _ body: (RoundingTask?) -> Bool) {
        fusingGradientRounding(rounding, of: serial, into: dx, codes: false) { task, _ in body(task) }
    }

    /// The same, and where the gradient goes to BF16 products (a format exact in BF16, BF16 kernels on), `body` is also
    /// given codes to write for each span right after rounding it (`CodesWriter(gradientOf:)`: BF16's): the products
    /// that read `dx` (a layer's weight and input gradients) then take them as they are, not a conversion of its FP32
    /// values in a pass of their own (`BF16Operand`).
    public static func fusingGradientRounding(_ rounding: TensorRounding?, of serial: Int, into dx: Tensor, codes wanted: Bool,
                                              _ body: (RoundingTask?, CodesWriter?) -> Bool) {
        guard let task = rounding?.begin(), !dx.isShapeOnly else { _ = body(nil, nil); return }
        let exactInBF16 = rounding?.dtype.valuesExactInBF16 == true
        let codes = wanted && Engine.gradientCodes && exactInBF16 && BF16Gemm.isEnabled ? CodesWriter(gradientOf: task, count: dx.count) : nil
        guard body(task, codes) else { codes?.discard(); return }
        task.finish()
        dx.format = rounding?.dtype
        dx.roundedAsGradientOf = serial
        if let codes {
            dx.storage.packFormat = codes.format
            codes.finish(dx)
            dx.bf16Exact = true
        }
    }

    /// The largest magnitude in the tensor (NaN if any value is NaN).
    public var maxMagnitude: Float { Tensor.maxMagnitude(of: UnsafeBufferPointer(storage.buffer)) }

    /// The largest magnitude in a buffer (NaN if any value is NaN). Vectorised, on the OpenMP pool for large
    /// buffers: the precision policy scans every rounded tensor with it.
    public static func maxMagnitude(of b: UnsafeBufferPointer<Float>) -> Float {
        guard let base = b.baseAddress, b.count > 0 else { return 0 }
        let parts = max(1, min(ComputeThreads.count, b.count / (1 << 16)))
        var partial = [Float](repeating: 0, count: parts)
        partial.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            ompChunks(parts, threads: parts) { range in
                for t in range {
                    let lo = b.count * t / parts, hi = b.count * (t + 1) / parts
                    o[t] = NumberFormat.largestMagnitude(base + lo, count: hi - lo)
                }
            }
        }
        var m: Float = 0
        for v in partial { if v.isNaN { return .nan }; m = Swift.max(m, v) }
        return m
    }
}
