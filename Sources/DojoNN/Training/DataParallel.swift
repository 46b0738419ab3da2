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
/// gradient of a bucket is final (`Tape.backward(watching:onReady:)`), the bucket is weighted, packed and its sum
/// started; the next gradients are computed while it travels. `finish` starts what is left, waits, and puts the
/// sums back. Buckets are the same on every rank and start in the same order, as MPI requires.
public final class OverlappedGradientReduction {
    let group: DataParallelGroup
    let weight: Float
    let parameters: [Tensor]
    /// Parameter indices of each bucket, and each parameter's bucket and offset in it.
    let buckets: [[Int]]
    var slot: [ObjectIdentifier: (bucket: Int, offset: Int, index: Int)] = [:]
    var remaining: [Int]
    var buffers: [UnsafeMutablePointer<Float>] = []
    var handles: [Int?]
    var filled: [Bool]
    var nextToStart = 0
    var failure: Error?
    let format: GradientReduceFormat
    /// BF16 copies of the buckets while they travel (bf16 only).
    var halves: [UnsafeMutablePointer<UInt16>] = []
    /// CFP8 codes of this rank's buckets, every rank's codes once gathered, and each bucket's bias (cfp8 only).
    var codes: [UnsafeMutablePointer<UInt8>] = []
    var gathered: [UnsafeMutablePointer<UInt8>] = []
    var biases: [Int] = []
    /// Seconds `finish` spent waiting for sums that backward did not hide.
    public private(set) var exposedSeconds = 0.0

    public init(group: DataParallelGroup, parameters: [(String, Tensor)], weight: Float, bucketFloats: Int = 1 << 20,
                format: GradientReduceFormat = .fp32) {
        self.group = group
        self.weight = weight
        self.format = format
        let ordered = parameters.map(\.1).reversed().map { $0 }
        self.parameters = ordered
        var buckets: [[Int]] = [], current: [Int] = [], floats = 0
        for (i, p) in ordered.enumerated() {
            if !current.isEmpty && floats + p.count > bucketFloats { buckets.append(current); current = []; floats = 0 }
            current.append(i); floats += p.count
        }
        if !current.isEmpty { buckets.append(current) }
        self.buckets = buckets
        remaining = buckets.map(\.count)
        handles = Array(repeating: nil, count: buckets.count)
        filled = Array(repeating: false, count: ordered.count)
        for (b, members) in buckets.enumerated() {
            var offset = 0
            for i in members { slot[ObjectIdentifier(ordered[i])] = (b, offset, i); offset += ordered[i].count }
            buffers.append(UnsafeMutablePointer<Float>.allocate(capacity: max(offset, 1)))
            if format == .bf16 { halves.append(UnsafeMutablePointer<UInt16>.allocate(capacity: max(offset, 1))) }
            if format == .cfp8 {
                codes.append(UnsafeMutablePointer<UInt8>.allocate(capacity: max(offset, 1)))
                gathered.append(UnsafeMutablePointer<UInt8>.allocate(capacity: max(offset, 1) * group.size))
                biases.append(0)
            }
        }
    }

    deinit {
        for b in buffers { b.deallocate() }; for h in halves { h.deallocate() }
        for c in codes { c.deallocate() }; for g in gathered { g.deallocate() }
    }

    /// Ready for the next step: the same buckets and buffers (allocating 4 bytes a parameter every step, and faulting
    /// the pages in, cost more than the sums on shared memory).
    public func reset() {
        remaining = buckets.map(\.count)
        handles = Array(repeating: nil, count: buckets.count)
        filled = Array(repeating: false, count: parameters.count)
        nextToStart = 0
        failure = nil
        exposedSeconds = 0
    }

    /// A parameter's gradient is final: into its bucket; start every bucket that is complete, in order.
    public func ready(_ parameter: Tensor, _ gradient: Tensor) {
        guard failure == nil, let s = slot[ObjectIdentifier(parameter)], !filled[s.index] else { return }
        let dst = buffers[s.bucket].advanced(by: s.offset)
        let src = gradient.pointer, w = weight
        // between two backward ops: the compute threads are free
        ComputeThreads.parallelChunks(parameter.count, elements: parameter.count) { r in for i in r { dst[i] = src[i] * w } }
        filled[s.index] = true
        remaining[s.bucket] -= 1
        do {
            try startCompleteBuckets()
            for h in handles.compactMap({ $0 }) { _ = try group.test(h) }   // progress for what is in flight
        } catch { failure = error }
    }

    func startCompleteBuckets() throws {
        while nextToStart < buckets.count && remaining[nextToStart] == 0 {
            let floats = buckets[nextToStart].reduce(0) { $0 + parameters[$1].count }
            if format == .bf16 {
                let src = buffers[nextToStart], dst = halves[nextToStart]
                for i in 0..<floats { dst[i] = bf16Bits(src[i]) }
                handles[nextToStart] = try group.startAllReduceSumBF16(dst, count: floats)
            } else if format == .cfp8 {
                // One bias for every rank: from the largest magnitude over the ranks (a non-negative float's bits
                // order as its value, so an integer max finds it).
                let src = buffers[nextToStart]
                var amax: Float = 0
                for i in 0..<floats where src[i].isFinite { amax = max(amax, src[i].magnitude) }
                let global = Float(bitPattern: UInt32(bitPattern: try group.allReduceMax(Int32(bitPattern: amax.bitPattern))))
                let bias = NumberFormat.bias(for: .cfp8_152, maxMagnitude: global)
                biases[nextToStart] = bias
                let f = try NumberFormat(.cfp8_152, bias: bias)
                f.encode(UnsafeBufferPointer(start: src, count: floats), into: UnsafeMutableBufferPointer(start: codes[nextToStart], count: floats), threads: 1)
                handles[nextToStart] = try group.startAllGather(codes[nextToStart], count: floats, into: gathered[nextToStart])
            } else {
                handles[nextToStart] = try group.startAllReduceSum(buffers[nextToStart], count: floats)
            }
            nextToStart += 1
        }
    }

    /// Gradients that never became ready (a parameter that took no part, or a rank with no examples) count as
    /// zeros; starts the rest, waits for every sum, and writes the sums into `grads`.
    public func finish(into grads: inout Gradients) throws {
        if let failure { throw failure }
        for (i, p) in parameters.enumerated() where !filled[i] {
            let s = slot[ObjectIdentifier(p)]!
            buffers[s.bucket].advanced(by: s.offset).initialize(repeating: 0, count: p.count)
            filled[i] = true
            remaining[s.bucket] -= 1
        }
        try startCompleteBuckets()
        let t0 = Date()
        for h in handles.compactMap({ $0 }) { try group.wait(h) }
        exposedSeconds = Date().timeIntervalSince(t0)
        if format == .bf16 {
            for (b, members) in buckets.enumerated() {
                let floats = members.reduce(0) { $0 + parameters[$1].count }
                for i in 0..<floats { buffers[b][i] = floatFromBF16(halves[b][i]) }
            }
        }
        if format == .cfp8 {
            // Every rank's values, decoded and added in rank order (the same order on every rank).
            let largest = buckets.map { $0.reduce(0) { $0 + parameters[$1].count } }.max() ?? 0
            let part = UnsafeMutablePointer<Float>.allocate(capacity: max(largest, 1))
            defer { part.deallocate() }
            for (b, members) in buckets.enumerated() {
                let floats = members.reduce(0) { $0 + parameters[$1].count }
                let f = try NumberFormat(.cfp8_152, bias: biases[b])
                buffers[b].initialize(repeating: 0, count: floats)
                for r in 0..<group.size {
                    f.decode(UnsafeBufferPointer(start: gathered[b] + r * floats, count: floats), into: UnsafeMutableBufferPointer(start: part, count: floats), threads: 1)
                    for i in 0..<floats { buffers[b][i] += part[i] }
                }
            }
        }
        // The sums are handed out where MPI left them (views of the buckets, valid until the next step's `ready`
        // writes them again): copying them back was a third pass over every gradient, and the largest part of what
        // training's sums cost beyond a bare MPI_Allreduce.
        for p in parameters {
            let s = slot[ObjectIdentifier(p)]!
            grads[p] = Tensor(shape: p.shape, storage: Storage(borrowing: buffers[s.bucket].advanced(by: s.offset), count: p.count, owner: self))
        }
    }
}
