import DojoGraph
import DojoNN
import DojoTensor
import Foundation
import Testing

/// Issue 14 §2: what backward reads is kept in the format itself (1 byte a value in CFP8, 2 in BF16) between the ops
/// that read it, and a training step gives exactly the same weights as with every value kept in FP32.
@Suite struct PackedSavedValuesTests {
    /// Three steps of a fresh network (same seed), with saved values packed or not: the weights after them, bit for
    /// bit, and how many of the step's large storages the last tape held packed at its end.
    static func train(_ model: String, _ mode: PrecisionPolicy.Mode, packed: Bool) throws -> (weights: [UInt32], saved: (count: Int, packed: Int)) {
        let net = try ModelZoo.make(model, inputShape: [1, 28, 28], classes: 10, seed: 0)
        let task = try ModelZoo.entry(model).task
        let policy = mode == .fp32 ? nil : PrecisionPolicy(mode: mode)
        var rng = RandomSource(seed: 1)
        let x = Tensor.randomNormal([8, 1, 28, 28], generator: &rng)
        let optimizer: Optimizer = model == "small-cnn" ? SGD(momentum: 0.9) : AdamW()
        var saved = (count: 0, packed: 0)
        try Tape.$packsByDefault.withValue(packed) {
            for _ in 0..<3 {
                let step = TrainingStep.run(net, task: task, input: x, classes: 10, optimizer: optimizer, learningRate: 0.01, precision: policy)
                saved = step.tape.savedStorages
                try #require(step.loss.item.isFinite)
            }
        }
        return (net.parameters.flatMap { $0.1.array.map(\.bitPattern) }, saved)
    }

    @Test(arguments: [("small-cnn", PrecisionPolicy.Mode.cfp8), ("small-cnn", .bf16), ("vit-tiny", .cfp8), ("vit-tiny", .bf16)])
    func packedStepsGiveTheSameWeights(_ model: String, _ mode: PrecisionPolicy.Mode) throws {
        let packed = try Self.train(model, mode, packed: true)
        let plain = try Self.train(model, mode, packed: false)
        #expect(packed.weights == plain.weights, "\(model) \(mode): packing the saved values changed the weights")
        // every layer's output is in the format in the CNN; in the ViT, attention's scores and the permutes around
        // them are not rounded (not a layer's output, nor a GEMM's operand) and stay FP32
        #expect(packed.saved.packed > 0 && (model != "small-cnn" || packed.saved.packed * 2 >= packed.saved.count),
                "\(model) \(mode): \(packed.saved.packed) of \(packed.saved.count) saved storages packed")
        #expect(plain.saved.packed == 0)
    }

    @Test func fp32KeepsEveryValueInFP32() throws {
        let r = try Self.train("small-cnn", .fp32, packed: true)
        #expect(r.saved.count > 0 && r.saved.packed == 0)
    }

    /// A storage packs only values exact in its format; reading it brings them back bit for bit, and packing again
    /// after that frees the FP32 buffer without encoding anew.
    @Test func storagePacksAndUnpacks() throws {
        let nf = try NumberFormat(.cfp8_143, bias: 9)
        var rng = RandomSource(seed: 2)
        let values = (0..<10_000).map { _ in nf.rounded(rng.nextNormal()) }
        let t = Tensor(values, shape: [10_000])
        #expect(!t.storage.packAway(), "no format: nothing to pack")
        t.storage.packFormat = nf
        #expect(t.storage.packAway() && t.storage.isPacked && t.storage.residentAddress == nil)
        #expect(t.storage.packedValues != nil)
        #expect(t.array.map(\.bitPattern) == values.map(\.bitPattern))
        #expect(!t.storage.isPacked && t.storage.packedValues == nil)
        #expect(t.storage.packAway() && t.storage.isPacked)
        var part = [Float](repeating: 0, count: 100)
        part.withUnsafeMutableBufferPointer { try! #require(t.storage.packedValues).read(5_000, count: 100, into: $0.baseAddress!) }
        #expect(part == Array(values[5_000..<5_100]))

        // a value not exact in the format: refused, and the storage keeps FP32 values for good
        let u = Tensor(values.enumerated().map { $0.offset == 7_777 ? 0.3 : $0.element }, shape: [10_000])
        u.storage.packFormat = nf
        #expect(!u.storage.packAway() && !u.storage.isPacked && u.storage.packFormat == nil)
        #expect(u[flat: 7_777] == 0.3)
        #expect(u.storage.packAwayYieldingBuffer() == nil, "values that cannot be packed keep their buffer")
    }

    /// Only values a backward reads are packed: a rounded value read by an op that saves only its output (ReLU) is
    /// left in FP32 (it is freed once read; packing it would be a pass for nothing), and the ReLU writes a buffer of
    /// its own instead of over it. The value a later op's backward reads (the ReLU's output, read by the sum's
    /// product) is packed once that op is done.
    @Test func onlyValuesABackwardReadsArePacked() throws {
        let nf = try NumberFormat(.cfp8_143, bias: 9)
        var rng = RandomSource(seed: 4)
        let x = Tensor((0..<8_192).map { _ in nf.rounded(rng.nextNormal()) }, shape: [8_192]).requiringGrad()
        let tape = Tape()
        let (a, y, loss) = tape.record { () -> (Tensor, Tensor, Tensor) in
            let a = x.scaled(by: 1)                        // a fresh value, rounded: exact in the format
            a.storage.packFormat = nf
            let y = a.relu()                               // saves its output, not its input
            #expect(y.storage !== a.storage && !a.storage.isPacked && !a.storage.heldForBackward)
            y.storage.packFormat = nf
            return (a, y, (y * y).sum())                   // the product's backward reads y
        }
        #expect(!a.storage.isPacked, "no backward reads the ReLU's input, yet it was packed")
        #expect(y.storage.heldForBackward && y.storage.isPacked, "the ReLU's output is read back by two backward ops")
        let g = tape.backward(from: loss)[x]!
        #expect(g.array == x.array.map { $0 > 0 ? 2 * $0 : 0 }, "d/dx relu(x)² = 2·relu(x)")
    }

    /// An op may write its output over an input kept packed anyway: the input's FP32 buffer moves to a new storage,
    /// and the input reads back bit for bit from its codes afterwards.
    @Test func packedInputYieldsItsBuffer() throws {
        let nf = try NumberFormat(.bf16)
        var rng = RandomSource(seed: 3)
        let values = (0..<20_000).map { _ in nf.rounded(rng.nextNormal()) }
        let t = Tensor(values, shape: [20_000])
        let address = t.storage.residentAddress
        #expect(t.storage.packAwayYieldingBuffer() == nil, "no format: the buffer stays")
        t.storage.packFormat = nf
        let moved = try #require(t.storage.packAwayYieldingBuffer())
        #expect(moved.residentAddress == address && t.storage.isPacked)
        #expect(t.storage.packAwayYieldingBuffer() == nil, "the values are not in memory: nothing to hand over")
        moved.pointer.update(repeating: -1, count: 20_000)
        #expect(t.array.map(\.bitPattern) == values.map(\.bitPattern))
        #expect(t.storage.packAwayYieldingBuffer() != nil, "brought back, they can move again (the codes are kept)")
    }
    /// Layer normalisation's input in a transformer is the FP32 residual stream (a sum, in no format). In training in a
    /// Dojo format its backward reads a BF16 copy, written as the forward reads each block (2 bytes a value, not 4): the
    /// input itself is freed once the forward ops reading it are done, and the gradients differ from those of the
    /// exact input by BF16's rounding of x alone (the statistics stay exact).
    @Test(arguments: [PrecisionPolicy.Mode.bf16, .cfp8])
    func layerNormKeepsItsFP32InputAsBF16(_ mode: PrecisionPolicy.Mode) throws {
        var rng = RandomSource(seed: 5)
        let (rows, d) = (64, 128)
        let a = Tensor.randomNormal([rows, d], generator: &rng).requiringGrad()
        let b = Tensor.randomNormal([rows, d], generator: &rng).requiringGrad()
        let gamma = Tensor.randomNormal([d], generator: &rng).requiringGrad()
        let beta = Tensor.randomNormal([d], generator: &rng).requiringGrad()
        let c = Tensor.randomNormal([rows, d], generator: &rng)
        let rounding = PrecisionPolicy(mode: mode).outputRounding(site: "ln")
        func run(_ r: TensorRounding?) -> (grads: [[Float]], sumAlive: Bool, held: [OpKind: Int], outputBytes: Int) {
            let tape = Tape()
            weak var watched: Tensor?
            var y: Tensor? = nil
            let loss = tape.record { () -> Tensor in
                let sum = a + b                            // the residual stream: FP32, in no format
                watched = sum
                y = sum.layerNorm(gamma: gamma, beta: beta, roundOutput: r)
                return (y! * c).sum()
            }
            let alive = watched != nil
            // bytes held by the op that made them (the copy: by the layer norm that reads it), FP32 and packed together
            let held = Dictionary(tape.heldBytesByKind.map { ($0.kind, $0.fp32 + $0.packed) }, uniquingKeysWith: +)
            let g = tape.backward(from: loss)
            return ([a, b, gamma, beta].map { g[$0]!.array }, alive, held, y!.storage.bytesHeld)
        }
        let exact = run(nil), copied = run(rounding)
        #expect(exact.sumAlive && !copied.sumAlive, "the FP32 input is freed when its BF16 copy is what backward reads")
        let n = rows * d
        #expect(exact.held[.add] == 4 * n && copied.held[.add] == nil, "the sum's FP32 values: \(exact.held) \(copied.held)")
        // the layer norm's own output (read back by the product) is held either way: in FP32 or in the format
        // the layer norm's own output, read back by the product, is held too (in the format or not)
        #expect(copied.held[.layerNorm] == 2 * n + copied.outputBytes && exact.held[.layerNorm] == exact.outputBytes,
                "the copy, 2 bytes a value: \(copied.held), output \(copied.outputBytes) B; exact \(exact.held)")
        // the gradient of the loss through y is c either way (the output's rounding changes y, not dy)
        for (k, name) in ["a", "b", "gamma", "beta"].enumerated() {
            let e = exact.grads[k], q = copied.grads[k]
            let scale = e.map(abs).max()!, diff = zip(e, q).map { abs($0 - $1) }.max()!
            if name == "beta" { #expect(diff == 0, "dβ = Σ dy reads no x") } else {
                #expect(diff > 0 && diff <= scale / 128, "\(name): largest difference \(diff) of \(scale)")
            }
        }
    }
}
