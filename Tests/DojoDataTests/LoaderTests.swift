import Foundation
import Testing
import DojoData

/// A tiny data set whose example i is [i, i + 0.5] with label i % 3 and target [−i]; augmentation adds
/// a random number drawn from the generator (so tests can see it is seeded per (seed, epoch, index)).
struct Counting: Dataset {
    var count: Int
    var name: String { "counting" }
    var inputShape: [Int] { [2] }
    var targetShape: [Int] { [1] }
    var classNames: [String] { ["a", "b", "c"] }
    var delay: Double = 0
    var counter: Counter? = nil
    func example(at index: Int) -> Example {
        counter?.increment()
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        return Example(input: [Float(index), Float(index) + 0.5], label: Int32(index % 3), target: [-Float(index)])
    }
    func augment(_ example: inout Example, generator: inout SplitMix64) {
        example.input[1] += Float(generator.nextInt(below: 1000)) * 1000
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}

@Suite struct LoaderTests {
    func all(_ loader: DataLoader, epoch: Int, from: Int = 0) -> [Batch] { Array(loader.batches(epoch: epoch, startingAt: from)) }

    @Test func everyIndexOncePerEpoch() throws {
        let loader = try DataLoader(dataset: Counting(count: 103), batchSize: 10, shuffle: true, augment: false, seed: 7)
        #expect(loader.batchesPerEpoch == 11)
        for epoch in 0..<3 {
            let batches = all(loader, epoch: epoch)
            #expect(batches.count == 11)
            #expect(batches.last?.size == 3)
            let indices = batches.flatMap(\.indices)
            #expect(indices.sorted() == Array(0..<103))
            for b in batches {
                #expect(b.inputShape == [b.size, 2])
                #expect(b.targetShape == [b.size, 1])
                #expect(b.inputs.count == b.size * 2 && b.targets.count == b.size && b.labels.count == b.size)
                for (k, i) in b.indices.enumerated() {
                    #expect(b.inputs[2 * k] == Float(i) && b.inputs[2 * k + 1] == Float(i) + 0.5)
                    #expect(b.labels[k] == Int32(i % 3) && b.targets[k] == -Float(i))
                }
            }
        }
    }

    /// Data-parallel shares: together the ranks see exactly the batch, in order; sizes differ by at most one; a
    /// batch smaller than the number of ranks leaves some empty.
    @Test func shardsSplitABatchExactly() throws {
        let loader = try DataLoader(dataset: Counting(count: 103), batchSize: 10, shuffle: true, augment: false, seed: 7)
        for b in all(loader, epoch: 0) {
            for ranks in [1, 2, 3, 4, 12] {
                let shares = (0..<ranks).map { b.shard($0, of: ranks) }
                #expect(shares.flatMap(\.indices) == b.indices)
                #expect(shares.flatMap(\.inputs) == b.inputs && shares.flatMap(\.labels) == b.labels && shares.flatMap(\.targets) == b.targets)
                #expect(shares.map(\.size).reduce(0, +) == b.size)
                #expect((shares.map(\.size).max() ?? 0) - (shares.map(\.size).min() ?? 0) <= 1)
                for s in shares { #expect(s.inputShape == [s.size, 2] && s.targetShape == [s.size, 1] && s.inputs.count == 2 * s.size) }
            }
        }
    }

    /// `part`: a rank's loader prepares only its share of each batch; that share equals the whole batch's, with
    /// augmentation, and the examples of the other shares are never made.
    @Test func aPartPreparesOnlyItsShare() throws {
        for ranks in [2, 3, 4] {
            for rank in 0..<ranks {
                let counter = Counter()
                let whole = try DataLoader(dataset: Counting(count: 103), batchSize: 10, shuffle: true, augment: true, seed: 7)
                let part = try DataLoader(dataset: Counting(count: 103, counter: counter), batchSize: 10, shuffle: true, augment: true, seed: 7)
                part.part = (rank, ranks)
                let a = all(whole, epoch: 1), b = all(part, epoch: 1)
                #expect(a.count == b.count)
                var made = 0
                for (x, y) in zip(a, b) {
                    #expect(y.size == x.size && y.indices == x.indices)
                    #expect(y.shard(rank, of: ranks) == x.shard(rank, of: ranks), "rank \(rank) of \(ranks)")
                    made += x.shard(rank, of: ranks).size
                }
                #expect(counter.value == made, "rank \(rank) of \(ranks): \(counter.value) examples made, its shares hold \(made)")
            }
        }
    }

    @Test func ordersDependOnSeedAndEpoch() throws {
        let d = Counting(count: 200)
        let a = try DataLoader(dataset: d, batchSize: 16, shuffle: true, augment: true, seed: 1)
        let a2 = try DataLoader(dataset: d, batchSize: 16, shuffle: true, augment: true, seed: 1, prefetch: 0)
        let b = try DataLoader(dataset: d, batchSize: 16, shuffle: true, augment: true, seed: 2)
        #expect(a.order(epoch: 0) != a.order(epoch: 1))
        #expect(a.order(epoch: 0) != b.order(epoch: 0))
        #expect(a.order(epoch: 3) == a2.order(epoch: 3))
        #expect(all(a, epoch: 3) == all(a2, epoch: 3))
        #expect(all(a, epoch: 0) != all(b, epoch: 0))
        let plain = try DataLoader(dataset: d, batchSize: 16, shuffle: false, augment: false, seed: 1)
        #expect(all(plain, epoch: 5).flatMap(\.indices) == Array(0..<200))
    }

    @Test func augmentationSeededPerSeedEpochIndex() throws {
        let d = Counting(count: 50)
        let a = try DataLoader(dataset: d, batchSize: 8, shuffle: true, augment: true, seed: 9)
        let noAug = try DataLoader(dataset: d, batchSize: 8, shuffle: true, augment: false, seed: 9)
        func augmented(_ l: DataLoader, epoch: Int) -> [Int: Float] {
            var m: [Int: Float] = [:]
            for b in all(l, epoch: epoch) { for (k, i) in b.indices.enumerated() { m[i] = b.inputs[2 * k + 1] } }
            return m
        }
        let e0 = augmented(a, epoch: 0), e1 = augmented(a, epoch: 1)
        #expect(e0 != e1)
        #expect(e0 == augmented(a, epoch: 0))
        for (i, v) in augmented(noAug, epoch: 0) { #expect(v == Float(i) + 0.5) }
        for i in 0..<50 {
            var g = SplitMix64(seed: SplitMix64.mix(9, 0, UInt64(i)))
            #expect(e0[i] == Float(i) + 0.5 + Float(g.nextInt(below: 1000)) * 1000)
        }
    }

    @Test func startingAtEqualsSkipping() throws {
        let loader = try DataLoader(dataset: Counting(count: 95), batchSize: 8, shuffle: true, augment: true, seed: 3)
        let full = all(loader, epoch: 2)
        for start in [0, 1, 5, 11, 12] {
            #expect(all(loader, epoch: 2, from: start) == Array(full.dropFirst(start)))
        }
        #expect(all(loader, epoch: 2, from: 99).isEmpty)
    }

    @Test func dropLast() throws {
        let loader = try DataLoader(dataset: Counting(count: 103), batchSize: 10, shuffle: true, augment: false,
                                    seed: 4, dropLast: true)
        #expect(loader.batchesPerEpoch == 10)
        let batches = all(loader, epoch: 0)
        #expect(batches.count == 10)
        #expect(batches.allSatisfy { $0.size == 10 })
        #expect(Set(batches.flatMap(\.indices)).count == 100)
        #expect(dataErrorMessage {
            _ = try DataLoader(dataset: Counting(count: 5), batchSize: 10, shuffle: false, augment: false, seed: 0, dropLast: true)
        } != nil)
        #expect(dataErrorMessage {
            _ = try DataLoader(dataset: Counting(count: 5), batchSize: 0, shuffle: false, augment: false, seed: 0)
        }?.contains("batchSize") == true)
        #expect(dataErrorMessage {
            _ = try DataLoader(dataset: Counting(count: 5), batchSize: 2, shuffle: false, augment: false, seed: 0, prefetch: -1)
        }?.contains("prefetch") == true)
    }

    @Test func slowConsumerAndSlowProducerGiveSameBatches() throws {
        let reference = try DataLoader(dataset: Counting(count: 60), batchSize: 7, shuffle: true, augment: true,
                                       seed: 11, prefetch: 0, assemblyThreads: 1)
        let expected = all(reference, epoch: 1)
        let prefetching = try DataLoader(dataset: Counting(count: 60), batchSize: 7, shuffle: true, augment: true,
                                         seed: 11, prefetch: 3)
        var got: [Batch] = []
        for b in prefetching.batches(epoch: 1) {
            Thread.sleep(forTimeInterval: 0.003)
            got.append(b)
        }
        #expect(got == expected)
        let slowProducer = try DataLoader(dataset: Counting(count: 60, delay: 0.0005), batchSize: 7, shuffle: true,
                                          augment: true, seed: 11, prefetch: 1)
        #expect(all(slowProducer, epoch: 1) == expected)
    }

    @Test func droppingTheIteratorStopsTheProducer() throws {
        let counter = Counter()
        let loader = try DataLoader(dataset: Counting(count: 10000, counter: counter), batchSize: 10, shuffle: true,
                                    augment: false, seed: 1, prefetch: 2)
        var it: BatchSequence.Iterator? = loader.batches(epoch: 0).makeIterator()
        _ = it?.next()
        Thread.sleep(forTimeInterval: 0.05)
        // The queue is bounded: 1 batch taken, 2 waiting, at most 1 being assembled.
        #expect(counter.value <= 40, "\(counter.value) examples generated")
        it = nil  // the producer must stop instead of running on to the end
        Thread.sleep(forTimeInterval: 0.05)
        #expect(counter.value <= 50, "\(counter.value) examples generated")
        // Breaking out of a for loop early also works and the next epoch starts cleanly.
        var n = 0
        for _ in loader.batches(epoch: 1) { n += 1; if n == 3 { break } }
        #expect(n == 3)
        #expect(all(loader, epoch: 2).count == 1000)
        let before = counter.value
        _ = loader.batches(epoch: 3)  // a sequence that is never iterated generates nothing
        Thread.sleep(forTimeInterval: 0.02)
        #expect(counter.value == before)
    }

    @Test func loaderOverRealDataSets() throws {
        let scenes = try DrivingScenes(count: 512, seed: 5)
        let loader = try DataLoader(dataset: scenes, batchSize: 32, shuffle: true, augment: true, seed: 5)
        let start = Date()
        var count = 0
        var first: Batch?
        for b in loader.batches(epoch: 0) {
            if first == nil { first = b }
            count += b.size
        }
        let seconds = Date().timeIntervalSince(start)
        print("DataLoader DrivingScenes batch 32: \(String(format: "%.1f", Double(loader.batchesPerEpoch) / seconds)) batches/s, \(Int(Double(count) / seconds)) examples/s")
        #expect(count == 512)
        let b = try #require(first)
        #expect(b.inputShape == [32, 4, 3, 32, 32])
        #expect(b.targetShape == [32, 16, 16])
        // Each example is the data set's, augmented (mirrored or not) with the (seed, epoch, index) generator.
        var mirroredCount = 0
        for k in 0..<b.size {
            var ex = scenes.example(at: b.indices[k])
            let plain = ex
            var g = SplitMix64(seed: SplitMix64.mix(5, 0, UInt64(b.indices[k])))
            scenes.augment(&ex, generator: &g)
            if ex != plain { mirroredCount += 1 }
            #expect(Array(b.inputs[(k * 4 * 3 * 32 * 32)..<((k + 1) * 4 * 3 * 32 * 32)]) == ex.input)
            #expect(Array(b.targets[(k * 256)..<((k + 1) * 256)]) == ex.target)
            #expect(b.labels[k] == ex.label)
        }
        #expect(mirroredCount > 4 && mirroredCount < 28)

        if FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory + "/train-images-idx3-ubyte.gz") {
            let fm = try FashionMNIST(split: .train)
            let l2 = try DataLoader(dataset: fm, batchSize: 128, shuffle: true, augment: true, seed: 1, dropLast: true)
            let t = Date()
            var seen = 0
            for b in l2.batches(epoch: 0) { seen += b.size }
            let s2 = Date().timeIntervalSince(t)
            print("DataLoader FashionMNIST batch 128 augmented: \(String(format: "%.1f", Double(l2.batchesPerEpoch) / s2)) batches/s, \(Int(Double(seen) / s2)) examples/s")
            #expect(seen == 59904)
        }
    }
}
