import DojoTensor

/// A multi-layer perceptron on flattened inputs.
public final class MLP: Module {
    let flatten = Flatten(), body: Sequential
    public init(inputFeatures: Int, hidden: [Int] = [256, 128], classes: Int, generator: inout RandomSource) {
        var layers: [Module] = []
        var width = inputFeatures
        for h in hidden { layers.append(Linear(width, h, generator: &generator)); layers.append(ReLU()); width = h }
        layers.append(Linear(width, classes, generator: &generator))
        body = Sequential(layers)
    }
    public override func forward(_ x: Tensor) -> Tensor { body(flatten(x)) }
}

/// The small CNN of the benchmarks: (conv3×3 32 → BN → ReLU → maxpool2) → (conv3×3 64 → BN → ReLU → maxpool2) → FC.
public final class SmallCNN: Module {
    let features: Sequential, flatten = Flatten(), classifier: Linear
    public init(channels: Int, height: Int, width: Int, classes: Int, generator: inout RandomSource) {
        features = Sequential([
            Conv2d(channels, 32, kernel: 3, padding: 1, generator: &generator), BatchNorm2d(32), ReLU(), MaxPool2d(kernel: 2),
            Conv2d(32, 64, kernel: 3, padding: 1, generator: &generator), BatchNorm2d(64), ReLU(), MaxPool2d(kernel: 2),
        ])
        classifier = Linear(64 * (height / 4) * (width / 4), classes, generator: &generator)
    }
    public override func forward(_ x: Tensor) -> Tensor { classifier(flatten(features(x))) }
}

/// ResNet (He et al. 2016) as in torchvision: 7×7/2 stem, 3×3/2 max-pool, four stages, global pooling, FC.
public final class ResNet: Module {
    let stem: Sequential, layer1: Sequential, layer2: Sequential, layer3: Sequential, layer4: Sequential
    let pool = GlobalAvgPool(), fc: Linear
    public enum Depth: Int, Sendable { case r18 = 18, r34 = 34, r50 = 50, r101 = 101 }

    public init(depth: Depth, channels: Int, classes: Int, width: Int = 64, generator: inout RandomSource) {
        let bottleneck = depth == .r50 || depth == .r101
        let blocks: [Int]
        switch depth {
        case .r18: blocks = [2, 2, 2, 2]
        case .r34, .r50: blocks = [3, 4, 6, 3]
        case .r101: blocks = [3, 4, 23, 3]
        }
        stem = Sequential([Conv2d(channels, width, kernel: 7, stride: 2, padding: 3, bias: false, generator: &generator),
                           BatchNorm2d(width), ReLU(), MaxPool2d(kernel: 3, stride: 2, padding: 1)])
        var inCh = width
        func stage(_ ch: Int, _ n: Int, _ stride: Int, _ g: inout RandomSource) -> Sequential {
            var layers: [Module] = []
            for i in 0..<n {
                if bottleneck {
                    layers.append(Bottleneck(inCh, ch, stride: i == 0 ? stride : 1, generator: &g)); inCh = ch * Bottleneck.expansion
                } else {
                    layers.append(BasicBlock(inCh, ch, stride: i == 0 ? stride : 1, generator: &g)); inCh = ch
                }
            }
            return Sequential(layers)
        }
        layer1 = stage(width, blocks[0], 1, &generator)
        layer2 = stage(width * 2, blocks[1], 2, &generator)
        layer3 = stage(width * 4, blocks[2], 2, &generator)
        layer4 = stage(width * 8, blocks[3], 2, &generator)
        fc = Linear(inCh, classes, generator: &generator)
    }
    public override func forward(_ x: Tensor) -> Tensor {
        fc(pool(layer4(layer3(layer2(layer1(stem(x)))))))
    }
}

/// Vision Transformer (Dosovitskiy et al. 2021): patch embedding, class token, learned positions, pre-norm blocks.
/// ViT-Tiny is dimension 192, depth 12, 3 heads; ViT-Base 768, 12, 12; the MLP is `ffn` wide (default 4·dimension).
public final class VisionTransformer: Module {
    let patches: PatchEmbedding
    let classToken: Tensor, positions: Tensor
    let blocks: [Module], norm: LayerNorm, head: Linear
    public init(channels: Int, imageSize: Int, patchSize: Int, dimension: Int = 192, depth: Int = 12, heads: Int = 3,
                ffn: Int? = nil, classes: Int, generator: inout RandomSource) {
        precondition(imageSize % patchSize == 0, "ViT: image size \(imageSize) is not a multiple of the patch size \(patchSize)")
        patches = PatchEmbedding(channels: channels, dimension: dimension, patchSize: patchSize, generator: &generator)
        let tokens = (imageSize / patchSize) * (imageSize / patchSize) + 1
        classToken = Tensor.randomNormal([1, 1, dimension], std: 0.02, generator: &generator).asParameter()
        positions = Tensor.randomNormal([1, tokens, dimension], std: 0.02, generator: &generator).asParameter()
        var bs: [Module] = []
        for _ in 0..<depth { bs.append(TransformerBlock(dimension: dimension, heads: heads, ffn: ffn, generator: &generator)) }
        blocks = bs
        norm = LayerNorm(dimension)
        head = Linear(dimension, classes, generator: &generator)
    }
    public override func forward(_ x: Tensor) -> Tensor {
        var h = embed(x)
        for block in blocks { h = block(h) }
        return head(Self.classRow(norm(h)))
    }
    /// Patches, the class token in front, plus the positions: [B, T, D] (also the first layer of a pipeline's chain).
    func embed(_ x: Tensor) -> Tensor {
        let p = patches(x)                                                    // [B, T, D]
        let b = p.shape[0], d = p.shape[2]
        let cls = classToken + Tensor(zeros: [b, 1, d])                       // the token, once per image
        return Tensor.concatenate([cls, p], axis: 1) + positions
    }
    /// The class token's row of every example: [B, D].
    static func classRow(_ h: Tensor) -> Tensor { h.slice(axis: 1, 0..<1).reshaped([h.shape[0], h.shape[2]]) }
}
