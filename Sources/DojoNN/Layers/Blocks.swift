import DojoTensor

/// ResNet's basic block: two 3×3 convolutions with batch norm, and a projected shortcut when the shape changes.
public final class BasicBlock: Module {
    public static let expansion = 1
    let conv1: Conv2d, bn1: BatchNorm2d, relu1 = ReLU(), conv2: Conv2d, bn2: BatchNorm2d, relu2 = ReLU()
    let downsample: Sequential?
    public init(_ inChannels: Int, _ channels: Int, stride: Int, generator: inout RandomSource) {
        conv1 = Conv2d(inChannels, channels, kernel: 3, stride: stride, padding: 1, bias: false, generator: &generator)
        bn1 = BatchNorm2d(channels)
        conv2 = Conv2d(channels, channels, kernel: 3, padding: 1, bias: false, generator: &generator)
        bn2 = BatchNorm2d(channels)
        downsample = stride != 1 || inChannels != channels
            ? Sequential([Conv2d(inChannels, channels, kernel: 1, stride: stride, bias: false, generator: &generator), BatchNorm2d(channels)])
            : nil
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let y = bn2(conv2(relu1(bn1(conv1(x)))))
        return relu2(y + (downsample?(x) ?? x))
    }
}

/// ResNet's bottleneck block (1×1 reduce, 3×3, 1×1 expand ×4), stride on the 3×3 as in torchvision.
public final class Bottleneck: Module {
    public static let expansion = 4
    let conv1: Conv2d, bn1: BatchNorm2d, relu1 = ReLU(), conv2: Conv2d, bn2: BatchNorm2d, relu2 = ReLU()
    let conv3: Conv2d, bn3: BatchNorm2d, relu3 = ReLU()
    let downsample: Sequential?
    public init(_ inChannels: Int, _ channels: Int, stride: Int, generator: inout RandomSource) {
        let out = channels * Bottleneck.expansion
        conv1 = Conv2d(inChannels, channels, kernel: 1, bias: false, generator: &generator)
        bn1 = BatchNorm2d(channels)
        conv2 = Conv2d(channels, channels, kernel: 3, stride: stride, padding: 1, bias: false, generator: &generator)
        bn2 = BatchNorm2d(channels)
        conv3 = Conv2d(channels, out, kernel: 1, bias: false, generator: &generator)
        bn3 = BatchNorm2d(out)
        downsample = stride != 1 || inChannels != out
            ? Sequential([Conv2d(inChannels, out, kernel: 1, stride: stride, bias: false, generator: &generator), BatchNorm2d(out)])
            : nil
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let y = bn3(conv3(relu2(bn2(conv2(relu1(bn1(conv1(x))))))))
        return relu3(y + (downsample?(x) ?? x))
    }
}

/// Multi-head self-attention over [B, T, D] with a fused QKV projection.
public final class MultiHeadSelfAttention: Module {
    let qkv: Linear, proj: Linear
    public let heads: Int
    public init(dimension: Int, heads: Int, generator: inout RandomSource) {
        precondition(dimension % heads == 0, "attention: dimension \(dimension) is not divisible by \(heads) heads")
        qkv = Linear(dimension, 3 * dimension, generator: &generator)
        proj = Linear(dimension, dimension, generator: &generator)
        self.heads = heads
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let b = x.shape[0], t = x.shape[1], d = x.shape[2], hd = d / heads
        let parts = qkv(x).reshaped([b, t, 3, heads, hd]).permuted([2, 0, 3, 1, 4])   // [3, B, H, T, hd]
        func part(_ i: Int) -> Tensor { parts.slice(axis: 0, i..<(i + 1)).reshaped([b * heads, t, hd]) }
        let q = part(0), k = part(1), v = part(2)
        let attention = q.matmul(k, transposeB: true).scaled(by: 1 / Float(hd).squareRoot()).softmax()
        let y = attention.matmul(v).reshaped([b, heads, t, hd]).permuted([0, 2, 1, 3]).reshaped([b, t, d])
        return proj(y)
    }
}

/// A pre-norm transformer encoder block: x + MHSA(LN(x)), then x + MLP(LN(x)).
public final class TransformerBlock: Module {
    let norm1: LayerNorm, attention: MultiHeadSelfAttention, norm2: LayerNorm, fc1: Linear, act = GELU(), fc2: Linear
    public init(dimension: Int, heads: Int, mlpRatio: Int = 4, generator: inout RandomSource) {
        norm1 = LayerNorm(dimension)
        attention = MultiHeadSelfAttention(dimension: dimension, heads: heads, generator: &generator)
        norm2 = LayerNorm(dimension)
        fc1 = Linear(dimension, dimension * mlpRatio, generator: &generator)
        fc2 = Linear(dimension * mlpRatio, dimension, generator: &generator)
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let h = x + attention(norm1(x))
        return h + fc2(act(fc1(norm2(h))))
    }
}

/// Cuts an image into non-overlapping patches and embeds each: [B, C, H, W] → [B, T, D], T = (H/p)·(W/p).
public final class PatchEmbedding: Module {
    let projection: Conv2d
    public let patchSize: Int
    public init(channels: Int, dimension: Int, patchSize: Int, generator: inout RandomSource) {
        projection = Conv2d(channels, dimension, kernel: patchSize, stride: patchSize, generator: &generator)
        self.patchSize = patchSize
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let y = projection(x)                                  // [B, D, h, w]
        return y.reshaped([y.shape[0], y.shape[1], -1]).permuted([0, 2, 1])
    }
}
