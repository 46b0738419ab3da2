import DojoGraph
import DojoNN
import DojoTensor
import Testing

/// One recorded training step of a zoo model at batch 1 (random data).
func recordedGraph(_ model: String, input: [Int], classes: Int = 1000, batch: Int = 1, shapeOnly: Bool = true) throws -> Graph {
    let net = try ModelZoo.make(model, inputShape: input, classes: classes, seed: 0)
    let task = try ModelZoo.entry(model).task
    return Engine.$shapeOnly.withValue(shapeOnly) {
        var rng = RandomSource(seed: 1)
        let x = Tensor.randomNormal([batch] + input, generator: &rng)
        let tape = Tape()
        let loss = tape.record {
            Module.$context.withValue(ForwardContext(training: true)) {
                let y = net(x)
                return task == .occupancy ? y.binaryCrossEntropyWithLogits(targets: Tensor(zeros: y.shape))
                                          : y.crossEntropy(labels: (0..<batch).map { Int32($0 % classes) })
            }
        }
        let grads = tape.backward(from: loss)
        SGD().step(net.parameters, gradients: grads, learningRate: 0, tape: tape)
        return tape.graph(model: model, batch: batch)
    }
}

func forwardMACs(_ g: Graph) -> Double {
    g.ops.filter { $0.phase == .forward && $0.kind.isMatrixOp }.reduce(0) { $0 + $1.flops } / 2
}

/// Published figures (torchvision's model cards, timm) checked against what the engine records.
@Suite struct ZooTests {
    @Test func resnet50MatchesPublishedCounts() throws {
        let g = try recordedGraph("resnet50", input: [3, 224, 224])
        // torchvision ResNet50_Weights.IMAGENET1K_V1: 25,557,032 parameters, 4.09 GFLOPS (multiply-adds)
        #expect(g.summary.parameters == 25_557_032)
        let macs = forwardMACs(g)
        #expect(abs(macs - 4.09e9) / 4.09e9 < 0.01, "ResNet-50 forward: \(macs) multiply-adds")
        // backward: the input layer needs no data gradient, so a bit under twice the forward
        let bwd = g.ops.filter { $0.phase == .backward && $0.kind.isMatrixOp }.reduce(0) { $0 + $1.flops } / 2
        #expect(bwd > 1.9 * macs && bwd < 2.0 * macs)
        #expect(g.ops.filter { $0.phase == .optimizer }.count == 161)   // one update per parameter tensor
    }

    @Test func resnet18MatchesPublishedCounts() throws {
        let g = try recordedGraph("resnet18", input: [3, 224, 224])
        // torchvision ResNet18_Weights.IMAGENET1K_V1: 11,689,512 parameters, 1.81 GFLOPS (multiply-adds)
        #expect(g.summary.parameters == 11_689_512)
        let macs = forwardMACs(g)
        #expect(abs(macs - 1.81e9) / 1.81e9 < 0.01, "ResNet-18 forward: \(macs)")
    }

    @Test func vitTinyMatchesPublishedCounts() throws {
        let net = try ModelZoo.make("vit-tiny", inputShape: [3, 224, 224], classes: 1000, patchSize: 16, seed: 0)
        // timm vit_tiny_patch16_224: 5.72 M parameters (5,717,416)
        #expect(net.parameterCount == 5_717_416)
    }

    @Test func modelsBuildAtOtherSizesAndRejectWhatDoesNotFit() throws {
        let small = try ModelZoo.make("resnet18", inputShape: [3, 64, 64], classes: 10, seed: 0)
        let y = small(Tensor(zeros: [2, 3, 64, 64]))
        #expect(y.shape == [2, 10])
        let occ = try ModelZoo.make("occupancy", inputShape: [6, 3, 48, 48], gridSize: 20, seed: 0)
        #expect(occ(Tensor(zeros: [1, 6, 3, 48, 48])).shape == [1, 20, 20])
        // 28×28 (Fashion-MNIST) ends in 1×1 maps, as 32×32 does; 12×12 is refused
        let fmnist = try ModelZoo.make("resnet18", inputShape: [1, 28, 28], classes: 10, seed: 0)
        #expect(fmnist(Tensor(zeros: [2, 1, 28, 28])).shape == [2, 10])
        #expect(throws: ModelError.self) { try ModelZoo.make("resnet50", inputShape: [1, 12, 12], seed: 0) }
        #expect(throws: ModelError.self) { try ModelZoo.make("occupancy", inputShape: [1, 28, 28], seed: 0) }
        #expect(throws: ModelError.self) { try ModelZoo.make("alexnet", inputShape: [3, 224, 224], seed: 0) }
        #expect(throws: ModelError.self) { try ModelZoo.make("vit-tiny", inputShape: [3, 30, 30], patchSize: 16, seed: 0) }
        // A ViT's default patch divides the image (Fashion-MNIST's 28 × 28 had image/8 = 3): 16 on 224, 4 on 28.
        #expect([224, 28, 32, 30, 64, 7, 1].map { ModelZoo.defaultPatch(image: $0) } == [16, 4, 4, 3, 8, 1, 1])
        let vit = try ModelZoo.make("vit-tiny", inputShape: [1, 28, 28], classes: 10, seed: 0)
        #expect(vit(Tensor(zeros: [2, 1, 28, 28])).shape == [2, 10])
    }

    /// Recording shapes only gives exactly the graph a real step records, for every model of the zoo.
    @Test(arguments: [("mlp", [1, 28, 28]), ("small-cnn", [1, 28, 28]), ("resnet18", [3, 64, 64]), ("resnet50", [3, 64, 64]),
                      ("vit-tiny", [3, 32, 32]), ("occupancy", [4, 3, 32, 32])])
    func shapeOnlyRecordingEqualsARealStep(model: String, input: [Int]) throws {
        let real = try recordedGraph(model, input: input, classes: 10, batch: 2, shapeOnly: false)
        let shapes = try recordedGraph(model, input: input, classes: 10, batch: 2, shapeOnly: true)
        #expect(real == shapes)
        #expect(real.ops.count > 10)
    }

    @Test func shapeOnlyRecordingScalesToLargeBatches() throws {
        let g = try recordedGraph("resnet50", input: [3, 224, 224], batch: 4096)
        #expect(abs(forwardMACs(g) / 4096 - 4.09e9) / 4.09e9 < 0.01)
        #expect(g.summary.activationBytes > 500 << 30)   // what a real step would need: far more than this machine
    }

    @Test func parametersAreNamedByPath() throws {
        let net = try ModelZoo.make("resnet18", inputShape: [3, 32, 32], classes: 10, seed: 0)
        let names = net.parameters.map(\.0)
        #expect(names.contains("layer1.layers.0.conv1.weight"))
        #expect(names.contains("fc.bias"))
        #expect(net.stateTensors.map(\.0).contains("stem.layers.1.runningMean"))
        #expect(Set(names).count == names.count)
    }
}
