import DojoTensor

/// What a model is asked to predict, which decides its output and loss.
public enum Task: String, Sendable {
    /// One class per example: logits [B, classes], softmax cross-entropy.
    case classification
    /// One occupancy probability per BEV cell: logits [B, G, G], binary cross-entropy.
    case occupancy
}

public struct ModelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// The model zoo: every network buildable at any input size that fits it.
public enum ModelZoo {
    public struct Entry: Sendable {
        public let name: String
        public let summary: String
        public let task: Task
        /// The training recipe used when a user names none: optimizer, peak learning rate, epochs.
        public let optimizer: String
        public let learningRate: Float
        public let epochs: Int
    }

    public static let entries: [Entry] = [
        Entry(name: "mlp", summary: "multi-layer perceptron 256-128 on flattened inputs", task: .classification,
              optimizer: "sgd", learningRate: 0.01, epochs: 3),
        Entry(name: "small-cnn", summary: "2×(conv3×3-BN-ReLU-maxpool) + FC, the benchmark CNN", task: .classification,
              optimizer: "sgd", learningRate: 0.01, epochs: 3),
        Entry(name: "resnet18", summary: "ResNet-18 (He et al. 2016), torchvision layout", task: .classification,
              optimizer: "sgd", learningRate: 0.01, epochs: 3),
        Entry(name: "resnet50", summary: "ResNet-50, bottleneck blocks, torchvision layout", task: .classification,
              optimizer: "sgd", learningRate: 0.01, epochs: 3),
        Entry(name: "vit-tiny", summary: "ViT-Tiny: dimension 192, depth 12, 3 heads", task: .classification,
              optimizer: "adamw", learningRate: 1e-3, epochs: 3),
        Entry(name: "occupancy", summary: "multi-camera → shared CNN → BEV lift → occupancy logits per cell", task: .occupancy,
              optimizer: "adamw", learningRate: 1e-3, epochs: 4),
    ]

    public static var names: [String] { entries.map(\.name) }

    public static func entry(_ name: String) throws -> Entry {
        guard let e = entries.first(where: { $0.name == name }) else {
            throw ModelError("unknown model '\(name)'; choose one of: \(names.joined(separator: ", "))")
        }
        return e
    }

    /// Builds `name` for examples of `inputShape` (without the batch dimension).
    /// `classes` for classifiers; `gridSize` for the occupancy network. `patchSize` for ViT (default: image/8, at most 16).
    public static func make(_ name: String, inputShape: [Int], classes: Int = 10, gridSize: Int = 16, patchSize: Int? = nil,
                            seed: UInt64) throws -> Module {
        let entry = try entry(name)
        var g = RandomSource(seed: seed)
        let model: Module
        func image() throws -> (c: Int, h: Int, w: Int) {
            guard inputShape.count == 3 else {
                throw ModelError("\(name) needs image inputs [channels, height, width], the data has examples of shape \(inputShape)")
            }
            return (inputShape[0], inputShape[1], inputShape[2])
        }
        switch entry.name {
        case "mlp":
            model = MLP(inputFeatures: inputShape.reduce(1, *), classes: classes, generator: &g)
        case "small-cnn":
            let (c, h, w) = try image()
            guard h >= 4 && w >= 4 else { throw ModelError("small-cnn needs images of at least 4×4, got \(h)×\(w)") }
            model = SmallCNN(channels: c, height: h, width: w, classes: classes, generator: &g)
        case "resnet18", "resnet50":
            let (c, h, w) = try image()
            guard h >= 32 && w >= 32 else { throw ModelError("\(name) downsamples 32×: it needs images of at least 32×32, got \(h)×\(w)") }
            model = ResNet(depth: name == "resnet18" ? .r18 : .r50, channels: c, classes: classes, generator: &g)
        case "vit-tiny":
            let (c, h, w) = try image()
            guard h == w else { throw ModelError("vit-tiny needs square images, got \(h)×\(w)") }
            let p = patchSize ?? min(16, max(1, h / 8))
            guard h % p == 0 else { throw ModelError("vit-tiny: image size \(h) is not a multiple of the patch size \(p)") }
            model = VisionTransformer(channels: c, imageSize: h, patchSize: p, classes: classes, generator: &g)
        default: // occupancy
            guard inputShape.count == 4, inputShape[1] == 3 else {
                throw ModelError("occupancy needs multi-camera inputs [cameras, 3, height, width], the data has examples of shape \(inputShape)")
            }
            guard inputShape[2] == inputShape[3], inputShape[2] % 8 == 0, inputShape[2] >= 16 else {
                throw ModelError("occupancy needs square camera images with a side that is a multiple of 8 (at least 16), got \(inputShape[2])×\(inputShape[3])")
            }
            guard gridSize % 2 == 0 else { throw ModelError("occupancy needs an even BEV grid size, got \(gridSize)") }
            model = OccupancyNetwork(cameras: inputShape[0], imageSize: inputShape[2], gridSize: gridSize, generator: &g)
        }
        model.finalizeNames()
        return model
    }
}
