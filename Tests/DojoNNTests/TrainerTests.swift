import DojoData
import DojoNN
import DojoNumerics
import DojoTensor
import Foundation
import Testing

/// This test process's folder for the trainer tests' runs, removed when the process exits; they were left behind,
/// about 40 MB a `make test`.
let trainerTestsFolder: String = {
    let dir = NSTemporaryDirectory() + "opendojo-nn-tests-\(getpid())"
    atexit { try? FileManager.default.removeItem(atPath: trainerTestsFolder) }
    return dir
}()

func temporaryDirectory(_ name: String) -> String {
    let dir = trainerTestsFolder + "/opendojo-\(name)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A trainer on a slice of the real Fashion-MNIST.
func makeTrainer(model: String = "small-cnn", precision: String = "fp32", epochs: Int = 2, optimizer: String = "sgd",
                 lr: Float = 0.05, checkpointDirectory: String?, train: Int = 256, stochastic: Bool = false,
                 augment: Bool = true) throws -> Trainer {
    let trainSet = try FashionMNIST(split: .train, limit: train)
    let evalSet = try FashionMNIST(split: .test, limit: 128)
    let config = TrainingConfig(model: model, dataset: "fashion-mnist", epochs: epochs, batchSize: 32, learningRate: lr,
                                optimizer: optimizer, precision: precision, stochasticGradients: stochastic, seed: 5, checkpointEvery: 0)
    let net = try ModelZoo.make(model, inputShape: trainSet.inputShape, classes: 10, seed: 5)
    return try Trainer(config: config, model: net, task: .classification,
                       train: try DataLoader(dataset: trainSet, batchSize: 32, shuffle: true, augment: augment, seed: 5),
                       eval: try DataLoader(dataset: evalSet, batchSize: 64, shuffle: false, augment: false, seed: 0),
                       checkpointDirectory: checkpointDirectory)
}

@Suite(.serialized) struct TrainerTests {
    @Test func trainingLowersTheLoss() throws {
        let t = try makeTrainer(epochs: 3, lr: 0.01, checkpointDirectory: nil, train: 512, augment: false)
        var losses: [Float] = []
        t.onStep = { losses.append($0.loss) }
        let reports = try t.run()
        #expect(losses.count == 48)
        let first = losses.prefix(4).reduce(0, +) / 4, last = losses.suffix(4).reduce(0, +) / 4
        #expect(last < 0.6 * first, "loss \(first) → \(last)")
        #expect((reports.last?.eval?.accuracy ?? 0) > 0.6)
        #expect(t.recordedGraph?.ops.contains { $0.kind == .conv2d } == true)
    }

    /// Interrupt after some steps, resume from the checkpoint in a fresh trainer: the losses equal those of an
    /// uninterrupted run bit for bit, also with CFP8 rounding (per-tensor bias history) and AdamW state.
    @Test(arguments: [("fp32", "sgd"), ("cfp8", "adamw")])
    func resumeContinuesBitForBit(precision: String, optimizer: String) throws {
        let lr: Float = optimizer == "adamw" ? 1e-3 : 0.05
        let straight = try makeTrainer(precision: precision, optimizer: optimizer, lr: lr, checkpointDirectory: nil, stochastic: true)
        var reference: [UInt32] = []
        straight.onStep = { reference.append($0.loss.bitPattern) }
        try straight.run()

        let dir = temporaryDirectory("resume")
        let first = try makeTrainer(precision: precision, optimizer: optimizer, lr: lr, checkpointDirectory: dir, stochastic: true)
        var seen: [UInt32] = []
        first.onStep = { seen.append($0.loss.bitPattern) }
        first.shouldStop = { seen.count == 11 }   // mid-epoch (8 steps per epoch)
        #expect(throws: TrainingError.self) { try first.run() }
        #expect(seen.count == 11)

        let second = try makeTrainer(precision: precision, optimizer: optimizer, lr: lr, checkpointDirectory: dir, stochastic: true)
        try second.resume(from: dir + "/checkpoint.safetensors")
        #expect(second.step == 11)
        second.onStep = { seen.append($0.loss.bitPattern) }
        try second.run()
        #expect(seen == reference)
    }

    /// A checkpoint whose position does not add up (tampered step or batch_in_epoch) is refused, naming the numbers.
    @Test func aDamagedPositionIsRefused() throws {
        let dir = temporaryDirectory("position")
        let first = try makeTrainer(precision: "fp32", optimizer: "sgd", lr: 0.05, checkpointDirectory: dir, stochastic: false)
        var steps = 0
        first.onStep = { _ in steps += 1 }
        first.shouldStop = { steps == 5 }
        #expect(throws: TrainingError.self) { try first.run() }
        let path = dir + "/checkpoint.safetensors"
        for (key, value) in [("step", "9223372036854775807"), ("batch_in_epoch", "1000000"), ("epoch", "3")] {
            var file = try SafeTensorsFile.read(from: path)
            file.metadata[key] = value
            try file.write(to: dir + "/tampered.safetensors")
            let second = try makeTrainer(precision: "fp32", optimizer: "sgd", lr: 0.05, checkpointDirectory: nil, stochastic: false)
            do {
                try second.resume(from: dir + "/tampered.safetensors")
                Issue.record("\(key)=\(value) resumed")
            } catch let e as TrainingError {
                #expect("\(e)".contains("its position does not add up"), "\(e)")
            }
            #expect(second.step == 0, "nothing changed")
        }
        let good = try makeTrainer(precision: "fp32", optimizer: "sgd", lr: 0.05, checkpointDirectory: nil, stochastic: false)
        try good.resume(from: path)
        #expect(good.step == 5)
    }

    @Test func cfp8WeightsAreRepresentableAndLossStaysClose() throws {
        let policy = PrecisionPolicy(mode: .cfp8)
        var g = RandomSource(seed: 1)
        let w = Tensor.randomNormal([64], std: 0.05, generator: &g)
        let q = policy.weight(w, site: "w")
        let bias = NumberFormat.bias(for: .cfp8_143, maxMagnitude: w.maxMagnitude)
        let f = try NumberFormat(.cfp8_143, bias: bias)
        for i in 0..<q.count {
            #expect(f.rounded(q[flat: i]) == q[flat: i])
            #expect(abs(q[flat: i] - w[flat: i]) <= abs(w[flat: i]) / 16 + f.minPositive)
        }
        let fp = try makeTrainer(epochs: 1, checkpointDirectory: nil)
        let c8 = try makeTrainer(precision: "cfp8", epochs: 1, checkpointDirectory: nil)
        var a: [Float] = [], b: [Float] = []
        fp.onStep = { a.append($0.loss) }; c8.onStep = { b.append($0.loss) }
        try fp.run(); try c8.run()
        #expect(a != b)                                 // the rounding really happens
        #expect(abs(a.last! - b.last!) < 0.3 * a.last!) // and training still works
    }

    /// A ReLU, max pooling or flatten after a rounded layer keeps its values in the format: no second rounding (no
    /// quantize op, no pass over the tensor or its gradient); on an input that is not in the format it still rounds.
    @Test(arguments: [PrecisionPolicy.Mode.bf16, .cfp8]) func layersThatOnlyPickValuesAreNotRoundedAgain(mode: PrecisionPolicy.Mode) throws {
        let policy = PrecisionPolicy(mode: mode)
        var g = RandomSource(seed: 4)
        let net = Sequential([Conv2d(1, 4, kernel: 3, padding: 1, generator: &g), ReLU(), MaxPool2d(kernel: 2), Flatten(),
                              Linear(64, 3, generator: &g)])
        let x = Tensor.randomNormal([2, 1, 8, 8], generator: &g)
        let tape = Tape()
        let ctx = ForwardContext(training: true, precision: policy)
        var afterConv: Tensor?, afterPool: Tensor?
        let y = tape.record { Module.$context.withValue(ctx) { () -> Tensor in
            let layers = net.layers
            let c = layers[0](x)
            let h = layers[2](layers[1](c))
            afterConv = c; afterPool = h
            return layers[4](layers[3](h))
        } }
        let kinds = tape.graph(model: "t", batch: 2).ops.filter { $0.phase == .forward }.map(\.kind)
        // the conv's and the linear's weights and outputs: 4 roundings; none for ReLU, pooling, flatten
        #expect(kinds.filter { $0 == .quantize }.count == 4, "\(kinds)")
        let h = try #require(afterPool)
        #expect(h.format == policy.activationType && y.format == policy.activationType)
        // every value after the ReLU and the pooling is 0 or one of the rounded convolution's values (so exact in its format)
        let c = try #require(afterConv)
        let convValues = Set(UnsafeBufferPointer(start: c.pointer, count: c.count))
        #expect((0..<h.count).allSatisfy { h.pointer[$0] == 0 || convValues.contains(h.pointer[$0]) })
        #expect((0..<h.count).contains { h.pointer[$0] != 0 })
        // a ReLU on an input that was not rounded rounds its output as before
        let raw = Tensor.randomNormal([2, 5], generator: &g)
        let t2 = Tape()
        let r = t2.record { Module.$context.withValue(ctx) { ReLU()(raw) } }
        #expect(r.format == policy.activationType)
        #expect(t2.graph(model: "t", batch: 2).ops.filter { $0.phase == .forward }.map(\.kind).contains(.quantize))
    }

    @Test func nonFiniteLossStopsAndKeepsTheLastGoodCheckpoint() throws {
        let dir = temporaryDirectory("nan")
        let t = try makeTrainer(model: "mlp", epochs: 2, lr: 1e30, checkpointDirectory: dir)
        do {
            try t.run()
            Issue.record("training with lr 1e30 should have stopped")
        } catch let e as TrainingError {
            guard case .nonFiniteLoss(let step, _, _, _) = e else { Issue.record("wrong error \(e)"); return }
            #expect(step >= 1)
            #expect(e.description.contains("the loss became"))
        }
    }

    @Test func checkpointOfAnotherModelIsRejected() throws {
        let dir = temporaryDirectory("other")
        let mlp = try makeTrainer(model: "mlp", epochs: 1, checkpointDirectory: dir)
        try mlp.run()
        let cnn = try makeTrainer(model: "small-cnn", epochs: 1, checkpointDirectory: nil)
        #expect {
            try cnn.resume(from: dir + "/checkpoint.safetensors")
        } throws: { e in "\(e)".contains("checkpoint of model 'mlp', not 'small-cnn'") }
        // a checkpoint whose tensor was written with another shape
        var file = try SafeTensorsFile.read(from: dir + "/checkpoint.safetensors")
        let name = file.names.first { $0.hasPrefix("model.") && $0.hasSuffix("weight") }!
        file.setFloats(name, shape: [1], values: [0])
        try file.write(to: dir + "/bad.safetensors")
        let mlp2 = try makeTrainer(model: "mlp", epochs: 1, checkpointDirectory: nil)
        #expect { try mlp2.resume(from: dir + "/bad.safetensors") } throws: { e in "\(e)".contains("does not fit model 'mlp'") }
    }
}
