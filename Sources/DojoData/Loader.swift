// The data loader: seeded shuffling, seeded augmentation, batch assembly on 2 threads, bounded prefetch.
import Foundation

/// A mini-batch. `inputs` is `[size] + per-example input shape`, row-major; `targets` likewise (empty if
/// the data set has no targets). `indices` are the data set indices of the examples, in batch order.
public struct Batch: Sendable, Equatable {
    public var inputs: [Float]
    public var inputShape: [Int]
    public var labels: [Int32]
    public var targets: [Float]
    public var targetShape: [Int]
    public var indices: [Int]
    public var size: Int
}

/// Feeds batches of a data set to training.
///
/// Determinism: batch `b` of epoch `e` depends only on `(seed, e, b)` and the data set — the epoch's order
/// is a Fisher–Yates permutation drawn from `SplitMix64(mix(seed, e))`, and example `i` is augmented with
/// `SplitMix64(mix(seed, e, i))` — never on timing, prefetch depth or how fast batches are consumed.
public final class DataLoader: @unchecked Sendable {
    public let dataset: any Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public let augment: Bool
    public let seed: UInt64
    public let dropLast: Bool
    public let prefetch: Int
    /// Threads that assemble one batch (examples are split between them); 2 by default.
    public let assemblyThreads: Int
    /// Batches per epoch: `count / batchSize`, rounded up unless `dropLast`.
    public let batchesPerEpoch: Int
    /// Set before iterating: only share `index` of `of` of every batch (`Batch.shard`) is prepared, the rest of the
    /// batch left zero (labels -1). A data-parallel rank, or a pipeline replica's ranks, train on that share only:
    /// preparing the others' examples too (rendering, decoding, augmenting) took the cores they compute on — four
    /// ranks on two cores each rendered all 16 scenes of an occupancy batch, four times the work. The share's values
    /// are those of the whole batch (augmentation is seeded per example).
    public var part: (index: Int, of: Int)? = nil

    private let inputShape: [Int]
    private let targetShape: [Int]
    private let inputSize: Int
    private let targetSize: Int

    public init(dataset: any Dataset, batchSize: Int, shuffle: Bool, augment: Bool, seed: UInt64,
                dropLast: Bool = false, prefetch: Int = 2, assemblyThreads: Int = 2) throws(DataError) {
        guard batchSize > 0 else {
            throw .invalidArgument(name: "batchSize", value: "\(batchSize)", expected: "> 0")
        }
        guard prefetch >= 0 else {
            throw .invalidArgument(name: "prefetch", value: "\(prefetch)", expected: ">= 0")
        }
        guard (1...64).contains(assemblyThreads) else {
            throw .invalidArgument(name: "assemblyThreads", value: "\(assemblyThreads)", expected: "1...64")
        }
        guard dataset.count > 0 else {
            throw .emptyDataset(name: dataset.name, reason: "it holds no examples")
        }
        if dropLast && dataset.count < batchSize {
            throw .emptyDataset(name: dataset.name,
                                reason: "\(dataset.count) examples with dropLast and batchSize \(batchSize) give no batches")
        }
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.dropLast = dropLast
        self.prefetch = prefetch
        self.assemblyThreads = assemblyThreads
        self.batchesPerEpoch = dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
        self.inputShape = dataset.inputShape
        self.targetShape = dataset.targetShape
        self.inputSize = dataset.inputSize
        self.targetSize = dataset.targetSize
    }

    /// The order in which epoch `epoch` visits the data set (identity when not shuffling).
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<dataset.count)
        guard shuffle else { return order }
        var g = SplitMix64(seed: SplitMix64.mix(seed, UInt64(bitPattern: Int64(epoch)), 0x5348_5546))
        var i = order.count - 1
        while i > 0 {
            let j = g.nextInt(below: i + 1)
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }

    /// The batches of `epoch`, from batch `batchIndex` on: exactly the batches an uninterrupted run sees
    /// from that point. A background thread prepares up to `prefetch` batches ahead (0: on demand).
    public func batches(epoch: Int, startingAt batchIndex: Int = 0) -> BatchSequence {
        BatchSequence(loader: self, epoch: epoch, order: order(epoch: epoch),
                      start: min(max(0, batchIndex), batchesPerEpoch))
    }

    /// Assembles batch `batchIndex` of an epoch whose order is `order`.
    public func makeBatch(epoch: Int, batchIndex: Int, order: [Int]) -> Batch {
        let lo = batchIndex * batchSize
        let hi = min(lo + batchSize, order.count)
        precondition(lo < hi, "batch \(batchIndex) is past the end of the epoch")
        let indices = Array(order[lo..<hi])
        let n = indices.count
        var inputs = [Float](repeating: 0, count: n * inputSize)
        var targets = [Float](repeating: 0, count: n * targetSize)
        var labels = [Int32](repeating: -1, count: n)
        let dataset = self.dataset, augment = self.augment, seed = self.seed
        let inputSize = self.inputSize, targetSize = self.targetSize
        let epochBits = UInt64(bitPattern: Int64(epoch))
        inputs.withUnsafeMutableBufferPointer { inBuf in
            targets.withUnsafeMutableBufferPointer { tBuf in
                labels.withUnsafeMutableBufferPointer { lBuf in
                    let out = BatchBuffers(inputs: inBuf, targets: tBuf, labels: lBuf)
                    let work = { (slot: Int) in
                        let index = indices[slot]
                        var ex = dataset.example(at: index)
                        if augment {
                            var g = SplitMix64(seed: SplitMix64.mix(seed, epochBits, UInt64(index)))
                            dataset.augment(&ex, generator: &g)
                        }
                        precondition(ex.input.count == inputSize,
                                     "\(dataset.name): example \(index) has \(ex.input.count) input floats, shape says \(inputSize)")
                        precondition(ex.target.count == targetSize,
                                     "\(dataset.name): example \(index) has \(ex.target.count) target floats, shape says \(targetSize)")
                        ex.input.withUnsafeBufferPointer { src in
                            out.inputs.baseAddress!.advanced(by: slot * inputSize)
                                .update(from: src.baseAddress!, count: inputSize)
                        }
                        if targetSize > 0 {
                            ex.target.withUnsafeBufferPointer { src in
                                out.targets.baseAddress!.advanced(by: slot * targetSize)
                                    .update(from: src.baseAddress!, count: targetSize)
                            }
                        }
                        out.labels[slot] = ex.label
                    }
                    let slots = part.map { Batch.shardRange(size: n, $0.index, of: $0.of) } ?? 0..<n
                    let chunks = min(assemblyThreads, slots.count)
                    if chunks <= 1 {
                        for slot in slots { work(slot) }
                    } else {
                        let w = SendableBox(work)
                        DispatchQueue.concurrentPerform(iterations: chunks) { c in
                            var slot = slots.lowerBound + c
                            while slot < slots.upperBound { w.value(slot); slot += chunks }
                        }
                    }
                }
            }
        }
        return Batch(inputs: inputs, inputShape: [n] + inputShape, labels: labels, targets: targets,
                     targetShape: targetSize > 0 ? [n] + targetShape : [], indices: indices, size: n)
    }
}

/// Disjoint-slot output buffers shared by the assembly threads (each slot is written by one thread).
private struct BatchBuffers: @unchecked Sendable {
    let inputs: UnsafeMutableBufferPointer<Float>
    let targets: UnsafeMutableBufferPointer<Float>
    let labels: UnsafeMutableBufferPointer<Int32>
}

private struct SendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The batches of one epoch from a starting batch. Each `makeIterator()` starts its own producer.
public struct BatchSequence: Sequence, Sendable {
    let loader: DataLoader
    public let epoch: Int
    let order: [Int]
    public let start: Int

    init(loader: DataLoader, epoch: Int, order: [Int], start: Int) {
        self.loader = loader
        self.epoch = epoch
        self.order = order
        self.start = start
    }

    /// How many batches this sequence yields.
    public var underestimatedCount: Int { loader.batchesPerEpoch - start }

    public func makeIterator() -> Iterator {
        Iterator(loader: loader, epoch: epoch, order: order, start: start)
    }

    public struct Iterator: IteratorProtocol {
        private let loader: DataLoader
        private let epoch: Int
        private let order: [Int]
        private var nextIndex: Int
        private let end: Int
        private let producer: ProducerHandle?

        init(loader: DataLoader, epoch: Int, order: [Int], start: Int) {
            self.loader = loader
            self.epoch = epoch
            self.order = order
            self.nextIndex = start
            self.end = loader.batchesPerEpoch
            if loader.prefetch > 0 && start < end {
                producer = ProducerHandle(loader: loader, epoch: epoch, order: order, start: start, end: end)
            } else {
                producer = nil
            }
        }

        public mutating func next() -> Batch? {
            guard nextIndex < end else { return nil }
            defer { nextIndex += 1 }
            if let producer { return producer.queue.take() }
            return loader.makeBatch(epoch: epoch, batchIndex: nextIndex, order: order)
        }
    }
}

/// A bounded FIFO between one producer thread and one consumer.
final class PrefetchQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Batch] = []
    private var head = 0
    private let capacity: Int
    private var cancelled = false

    init(capacity: Int) { self.capacity = capacity }

    /// Blocks while full; returns false if the consumer has gone away.
    func put(_ batch: Batch) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count - head >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        items.append(batch)
        condition.broadcast()
        return true
    }

    /// Blocks until a batch is there.
    func take() -> Batch {
        condition.lock()
        defer { condition.unlock() }
        while items.count - head == 0 { condition.wait() }
        let b = items[head]
        head += 1
        if head > 64 { items.removeFirst(head); head = 0 }
        condition.broadcast()
        return b
    }

    var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    func cancel() {
        condition.lock()
        cancelled = true
        items.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }

    /// Batches ready and waiting (for tests and diagnostics).
    var ready: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count - head
    }
}

/// Owns the producer thread; when the last iterator copy goes away the producer is told to stop, and waited for (at
/// most the batch it is assembling), so no batch is being built while a stopped run writes its checkpoint and exits.
final class ProducerHandle: @unchecked Sendable {
    let queue: PrefetchQueue
    private let finished: DispatchSemaphore

    init(loader: DataLoader, epoch: Int, order: [Int], start: Int, end: Int) {
        let queue = PrefetchQueue(capacity: loader.prefetch)
        let finished = DispatchSemaphore(value: 0)
        self.queue = queue
        self.finished = finished
        let thread = Thread {
            defer { finished.signal() }
            var b = start
            while b < end && !queue.isCancelled {
                let batch = loader.makeBatch(epoch: epoch, batchIndex: b, order: order)
                if !queue.put(batch) { break }
                b += 1
            }
        }
        thread.name = "DojoData.prefetch"
        thread.start()
    }

    deinit {
        queue.cancel()
        finished.wait()   // at most the batch it is assembling
    }
}

extension Batch {
    /// The rows of a batch of `size` examples that `shard(rank, of: ranks)` keeps.
    public static func shardRange(size: Int, _ rank: Int, of ranks: Int) -> Range<Int> {
        precondition(ranks >= 1 && (0..<ranks).contains(rank), "share \(rank) of \(ranks): needs 0 ≤ share < ranks")
        let base = size / ranks, extra = size % ranks
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Rank `rank` of `ranks`' contiguous share of the batch, for data-parallel training: shares differ by at most
    /// one example (the first `size % ranks` ranks get one more) and may be empty when the batch is smaller than the
    /// number of ranks. Every rank cuts the same global batch, so together they see exactly its examples.
    public func shard(_ rank: Int, of ranks: Int) -> Batch {
        precondition(ranks >= 1 && (0..<ranks).contains(rank))
        guard ranks > 1 else { return self }
        let r = Batch.shardRange(size: size, rank, of: ranks)
        let start = r.lowerBound, n = r.count
        func rows<T>(_ a: [T]) -> [T] {
            guard size > 0, !a.isEmpty else { return [] }
            let per = a.count / size
            return Array(a[(start * per)..<((start + n) * per)])
        }
        func shape(_ s: [Int]) -> [Int] { s.isEmpty ? s : [n] + s.dropFirst() }
        return Batch(inputs: rows(inputs), inputShape: shape(inputShape), labels: rows(labels), targets: rows(targets),
                     targetShape: shape(targetShape), indices: rows(indices), size: n)
    }
}
