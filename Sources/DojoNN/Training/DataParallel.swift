import DojoNumerics
import DojoTensor
import Foundation

/// The trainer's view of data-parallel training across processes (the distributed runtime, DojoDistributed,
/// implements it over MPI). Without one, training runs in one process: the default path.
///
/// Each rank trains its share of every global batch (`Batch.shard`); the global batch, sample order, learning-rate
/// schedule and initial weights are those of one process with the same batch size. Gradients are weighted by each
/// rank's share of the batch and summed over the ranks, so every rank applies the gradient of the global batch's
/// mean loss, and the replicas stay identical. Batch norm uses each rank's own statistics (as PyTorch's DDP without
/// SyncBatchNorm) unless the trainer synchronises it (`Trainer.syncBatchNorm`: the statistics of the global batch);
/// an MLP, any model without batch norm, or synchronised batch norm matches one process up to the order of sums.
public protocol DataParallelGroup: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Sums `count` floats at `buffer` over every rank, in place (every rank calls it with the same count).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// The same for doubles (batch-norm statistics of synchronised batch norm).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws
    /// The largest of every rank's `value` (stop requests, so that all ranks stop at the same step).
    func allReduceMax(_ value: Int32) throws -> Int32
    /// Starts summing `count` floats at `buffer` over every rank without waiting (every rank starts the same sums in
    /// the same order); returns a handle for `test` and `wait`. The buffer must stay until `wait` returns.
    func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws -> Int
    /// Lets a started sum make progress; whether it has finished.
    func test(_ handle: Int) throws -> Bool
    /// Waits until a started sum has finished.
    func wait(_ handle: Int) throws
    /// The same for BF16 values (the top 16 bits of FP32): each partial sum is rounded to BF16 (nearest even), so
    /// the sums travel in half the bytes at the cost of BF16's precision.
    func startAllReduceSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, count: Int) throws -> Int
    /// Starts gathering every rank's `count` bytes at `send` into `receive` (rank r's at offset r·count) without
    /// waiting; a handle for `test` and `wait` (CFP8 sums: each rank's codes travel, every rank adds them up).
    func startAllGather(_ send: UnsafeMutablePointer<UInt8>, count: Int, into receive: UnsafeMutablePointer<UInt8>) throws -> Int
    /// Tells the other ranks this one is alive while it works without them (evaluation, checkpoints), so that a
    /// long stretch of work is not taken for a hang.
    func keepAlive()
}

extension DataParallelGroup {
    public func keepAlive() {}
}

/// The format gradients are summed over the ranks in (`dojo train --allreduce`).
/// cfp8: each rank's weighted gradients are rounded once to CFP8 1-5-2 (Dojo's gradient format) with one exponent
/// bias per bucket that every rank agrees on (from the largest magnitude over the ranks), gathered (a quarter of
/// FP32's bytes per value), and every rank adds all ranks' values in FP32 in rank order, so the replicas stay
/// identical. Not an all-reduce of CFP8 sums: each value is rounded once, not at every partial sum.
public enum GradientReduceFormat: String, Sendable, CaseIterable { case fp32, bf16, cfp8 }

/// FP32 → BF16, rounding to nearest even (NaN stays a quiet NaN).
@inline(__always) public func bf16Bits(_ x: Float) -> UInt16 {
    if x.isNaN { return 0x7FC0 }
    let u = x.bitPattern
    return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
}

@inline(__always) public func floatFromBF16(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// Gradients summed over the ranks while backward still runs (as PyTorch's DDP and Horovod do): parameters are
/// grouped into buckets in the order backward finishes them (the reverse of the model's order); when every
/// gradient of a bucket is final (`Tape.backward(watching:onReady:)`), the bucket is packed and its sum started; the
/// next gradients are computed while it travels. `finish` starts what is left, waits, and hands out the sums.
/// Buckets are the same on every rank and start in the same order, as MPI requires.
///
/// Gradients arrive already weighted by the rank's share of the batch (the trainer seeds backward with it). In fp32,
/// a parameter of at least `soloFloats` values is a bucket of its own, summed where backward left its gradient when
/// the tape says no other tensor shares that memory (`exclusive`), so the large gradients are never copied: the copy
/// was most of what the sums cost beyond a bare `MPI_Allreduce`. A gradient that is not exclusive is copied to a
/// buffer of its own first; either way every rank starts the same sums in the same order.
public final class OverlappedGradientReduction {
    let group: DataParallelGroup
    let parameters: [Tensor]
    /// Parameter indices of each bucket, and each parameter's bucket and offset in it.
    let buckets: [[Int]]
    /// Values in each bucket; whether a bucket is one parameter summed in place (fp32 only).
    public let sizes: [Int]
    let solo: [Bool]
    var slot: [ObjectIdentifier: (bucket: Int, offset: Int, index: Int)] = [:]
    var remaining: [Int]
    /// Packed buckets (nil for a solo bucket, which sums its gradient in place or in `staging`).
    var buffers: [UnsafeMutablePointer<Float>?] = []
    /// A solo bucket's own buffer, made the first time its gradient is not exclusive (or missing).
    var staging: [Int: UnsafeMutablePointer<Float>] = [:]
    /// Where each solo bucket's sum runs this step, and the gradient summed in place (nil when staged).
    var source: [UnsafeMutablePointer<Float>?]
    var inPlace: [Tensor?]
    var handles: [Int?]
    var filled: [Bool]
    var nextToStart = 0
    var failure: Error?
    public let format: GradientReduceFormat
    /// BF16 copies of the buckets while they travel (bf16 only).
    var halves: [UnsafeMutablePointer<UInt16>] = []
    /// CFP8 codes of this rank's buckets, every rank's codes once gathered, and each bucket's bias (cfp8 only).
    var codes: [UnsafeMutablePointer<UInt8>] = []
    var gathered: [UnsafeMutablePointer<UInt8>] = []
    var biases: [Int] = []
    /// Seconds `finish` took until every sum was there: what backward did not hide.
    public private(set) var exposedSeconds = 0.0
    /// Gradients of the last step summed where backward left them, and those copied into a bucket.
    public private(set) var summedInPlace = 0, copied = 0

    public init(group: DataParallelGroup, parameters: [(String, Tensor)], bucketFloats: Int = 1 << 20,
                soloFloats: Int = 1 << 15, format: GradientReduceFormat = .fp32) {
        self.group = group
        self.format = format
        let ordered = parameters.map(\.1).reversed().map { $0 }
        self.parameters = ordered
        let soloAt = format == .fp32 ? soloFloats : Int.max
        var buckets: [[Int]] = [], current: [Int] = [], floats = 0
        for (i, p) in ordered.enumerated() {
            if p.count >= soloAt { buckets.append([i]); continue }   // its own bucket; the packed one goes on after it
            if !current.isEmpty && floats + p.count > bucketFloats { buckets.append(current); current = []; floats = 0 }
            current.append(i); floats += p.count
        }
        if !current.isEmpty { buckets.append(current) }
        self.buckets = buckets
        sizes = buckets.map { $0.reduce(0) { $0 + ordered[$1].count } }
        solo = buckets.map { $0.count == 1 && ordered[$0[0]].count >= soloAt }
        remaining = buckets.map(\.count)
        handles = Array(repeating: nil, count: buckets.count)
        source = Array(repeating: nil, count: buckets.count)
        inPlace = Array(repeating: nil, count: buckets.count)
        filled = Array(repeating: false, count: ordered.count)
        for (b, members) in buckets.enumerated() {
            var offset = 0
            for i in members { slot[ObjectIdentifier(ordered[i])] = (b, offset, i); offset += ordered[i].count }
            buffers.append(solo[b] ? nil : UnsafeMutablePointer<Float>.allocate(capacity: max(offset, 1)))
            if format == .bf16 { halves.append(UnsafeMutablePointer<UInt16>.allocate(capacity: max(offset, 1))) }
            if format == .cfp8 {
                codes.append(UnsafeMutablePointer<UInt8>.allocate(capacity: max(offset, 1)))
                gathered.append(UnsafeMutablePointer<UInt8>.allocate(capacity: max(offset, 1) * group.size))
                biases.append(0)
            }
        }
    }

    deinit {
        for b in buffers { b?.deallocate() }; for (_, s) in staging { s.deallocate() }; for h in halves { h.deallocate() }
        for c in codes { c.deallocate() }; for g in gathered { g.deallocate() }
    }

    /// Ready for the next step: the same buckets and buffers (allocating 4 bytes a parameter every step, and faulting
    /// the pages in, cost more than the sums on shared memory).
    public func reset() {
        remaining = buckets.map(\.count)
        handles = Array(repeating: nil, count: buckets.count)
        source = Array(repeating: nil, count: buckets.count)
        inPlace = Array(repeating: nil, count: buckets.count)
        filled = Array(repeating: false, count: parameters.count)
        nextToStart = 0
        failure = nil
        exposedSeconds = 0
        summedInPlace = 0; copied = 0
    }

    /// The memory a bucket's sum runs in.
    func memory(_ b: Int) -> UnsafeMutablePointer<Float> { solo[b] ? source[b]! : buffers[b]! }

    func stagingBuffer(_ b: Int) -> UnsafeMutablePointer<Float> {
        if let s = staging[b] { return s }
        let s = UnsafeMutablePointer<Float>.allocate(capacity: max(sizes[b], 1))
        staging[b] = s
        return s
    }

    /// A parameter's gradient (already weighted) is final: summed where it is if it is exclusive and large, else
    /// copied into its bucket; starts every bucket that is complete, in order. `exclusive`: nothing else reads or
    /// writes the gradient's memory until `finish` (`Tape.backward(watching:onReady:)` says so).
    public func ready(_ parameter: Tensor, _ gradient: Tensor, exclusive: Bool = false) {
        guard failure == nil, let s = slot[ObjectIdentifier(parameter)], !filled[s.index] else { return }
        if solo[s.bucket] && exclusive {
            source[s.bucket] = gradient.pointer
            inPlace[s.bucket] = gradient
            summedInPlace += 1
        } else {
            let dst: UnsafeMutablePointer<Float>
            if solo[s.bucket] { dst = stagingBuffer(s.bucket); source[s.bucket] = dst } else { dst = buffers[s.bucket]!.advanced(by: s.offset) }
            let src = gradient.pointer
            // between two backward ops: the compute threads are free
            ComputeThreads.parallelChunks(parameter.count, elements: parameter.count) { r in
                (dst + r.lowerBound).update(from: src + r.lowerBound, count: r.count)
            }
            copied += 1
        }
        filled[s.index] = true
        remaining[s.bucket] -= 1
        do {
            try startCompleteBuckets()
            for h in handles.compactMap({ $0 }) { _ = try group.test(h) }   // progress for what is in flight
        } catch { failure = error }
    }

    func startCompleteBuckets() throws {
        while nextToStart < buckets.count && remaining[nextToStart] == 0 {
            let b = nextToStart, floats = sizes[b]
            if format == .bf16 {
                let src = memory(b), dst = halves[b]
                for i in 0..<floats { dst[i] = bf16Bits(src[i]) }
                handles[b] = try group.startAllReduceSumBF16(dst, count: floats)
            } else if format == .cfp8 {
                // One bias for every rank: from the largest magnitude over the ranks (a non-negative float's bits
                // order as its value, so an integer max finds it).
                let src = memory(b)
                var amax: Float = 0
                for i in 0..<floats where src[i].isFinite { amax = max(amax, src[i].magnitude) }
                let global = Float(bitPattern: UInt32(bitPattern: try group.allReduceMax(Int32(bitPattern: amax.bitPattern))))
                let bias = NumberFormat.bias(for: .cfp8_152, maxMagnitude: global)
                biases[b] = bias
                let f = try NumberFormat(.cfp8_152, bias: bias)
                f.encode(UnsafeBufferPointer(start: src, count: floats), into: UnsafeMutableBufferPointer(start: codes[b], count: floats), threads: 1)
                handles[b] = try group.startAllGather(codes[b], count: floats, into: gathered[b])
            } else {
                handles[b] = try group.startAllReduceSum(memory(b), count: floats)
            }
            nextToStart += 1
        }
    }

    /// Gradients that were not handed to `ready` (a run without overlap, a parameter that took no part, a rank with no
    /// examples) are taken from `grads` or count as zeros; starts the rest, waits for every sum, and puts the sums in
    /// `grads`.
    public func finish(into grads: inout Gradients) throws {
        if let failure { throw failure }
        // Everything from here on is after backward: what the step pays for the sums (with --no-overlap, the copies
        // and the sums of every gradient).
        let t0 = Date()
        for (i, p) in parameters.enumerated() where !filled[i] {
            if let g = grads[p] { ready(p, g); continue }
            let s = slot[ObjectIdentifier(p)]!
            let dst: UnsafeMutablePointer<Float>
            if solo[s.bucket] { dst = stagingBuffer(s.bucket); source[s.bucket] = dst } else { dst = buffers[s.bucket]!.advanced(by: s.offset) }
            dst.initialize(repeating: 0, count: p.count)
            filled[i] = true
            remaining[s.bucket] -= 1
        }
        if let failure { throw failure }
        try startCompleteBuckets()
        for h in handles.compactMap({ $0 }) { try group.wait(h) }
        exposedSeconds = Date().timeIntervalSince(t0)
        if format == .bf16 {
            for b in buckets.indices {
                let dst = memory(b), src = halves[b]
                for i in 0..<sizes[b] { dst[i] = floatFromBF16(src[i]) }
            }
        }
        if format == .cfp8 {
            // Every rank's values, decoded and added in rank order (the same order on every rank).
            let part = UnsafeMutablePointer<Float>.allocate(capacity: max(sizes.max() ?? 0, 1))
            defer { part.deallocate() }
            for b in buckets.indices {
                let floats = sizes[b], dst = memory(b)
                let f = try NumberFormat(.cfp8_152, bias: biases[b])
                dst.initialize(repeating: 0, count: floats)
                for r in 0..<group.size {
                    f.decode(UnsafeBufferPointer(start: gathered[b] + r * floats, count: floats), into: UnsafeMutableBufferPointer(start: part, count: floats), threads: 1)
                    for i in 0..<floats { dst[i] += part[i] }
                }
            }
        }
        // The sums are handed out where MPI left them: the gradient itself when it was summed in place, else a view of
        // its bucket (valid until the next step's `ready` writes it again). Copying them back was a third pass over
        // every gradient.
        for p in parameters {
            let s = slot[ObjectIdentifier(p)]!
            if let g = inPlace[s.bucket] { grads[p] = g; continue }
            let base = solo[s.bucket] ? source[s.bucket]! : buffers[s.bucket]!.advanced(by: s.offset)
            grads[p] = Tensor(shape: p.shape, storage: Storage(borrowing: base, count: p.count, owner: self))
        }
    }
}
