import DojoTensor
import Foundation

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

/// Multi-head self-attention over [B, T, D] with a fused QKV projection. Under a precision policy the probabilities
/// and the heads' merged output (the operands of its second and third GEMMs) are rounded like a layer's output.
///
/// Options for language models: `causal` (a query sees only the keys up to its own position: same shapes and
/// cost), `kvHeads` < `heads` (grouped-query attention, Ainslie et al. 2023: each key/value head serves
/// heads/kvHeads query heads), `bias: false` (Llama), and `rotary` positions (RoPE, Su et al. 2021, base 10000,
/// the "rotate half" layout of Llama's Hugging Face implementation).
public final class MultiHeadSelfAttention: Module {
    let qkv: Linear, proj: Linear
    public let heads: Int, kvHeads: Int, causal: Bool, rotary: Bool
    /// Dropout on the attention probabilities in training (BERT's 0.1); 0: none.
    let probabilityDropout: Dropout
    public init(dimension: Int, heads: Int, kvHeads: Int? = nil, causal: Bool = false, bias: Bool = true, rotary: Bool = false,
                attentionDropout: Float = 0, generator: inout RandomSource) {
        probabilityDropout = Dropout(attentionDropout)
        let kv = kvHeads ?? heads
        precondition(dimension % heads == 0, "attention: dimension \(dimension) is not divisible by \(heads) heads")
        precondition(kv >= 1 && heads % kv == 0, "attention: \(heads) heads are not divisible into \(kv) key/value heads")
        precondition(!rotary || (dimension / heads) % 2 == 0, "attention: rotary positions need an even head dimension")
        let hd = dimension / heads
        qkv = Linear(dimension, dimension + 2 * kv * hd, bias: bias, generator: &generator)
        proj = Linear(dimension, dimension, bias: bias, generator: &generator)
        self.heads = heads; self.kvHeads = kv; self.causal = causal; self.rotary = rotary
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let b = x.shape[0], t = x.shape[1], d = x.shape[2], hd = d / heads
        let scale = 1 / Float(hd).squareRoot()
        if kvHeads == heads && !rotary {
            // q, k and v read where they lie in the projection's output, the heads merged as the product writes them
            let y = Tensor.attentionHeads(qkv: qkv(x), heads: heads) { scores in
                probabilityDropout(probabilities(scores.scaled(by: scale)))
            }
            return proj(activation(y, "context"))
        }
        // grouped query heads and/or rotary positions: q [B, T, H, hd], k and v [B, T, KV, hd]
        let kv = kvHeads, g = heads / kvHeads
        let all = qkv(x).reshaped([b, t, heads + 2 * kv, hd])
        var q = all.slice(axis: 2, 0..<heads), k = all.slice(axis: 2, heads..<(heads + kv))
        let v = all.slice(axis: 2, (heads + kv)..<(heads + 2 * kv))
        if rotary {
            let (cos, sin) = rotaryTables(positions: t, headDimension: hd)
            q = rotate(q, cos, sin); k = rotate(k, cos, sin)
        }
        // the g query heads of one key/value head stacked as rows: [B·KV, g·T, hd] against [B·KV, T, hd]
        let qg = q.reshaped([b, t, kv, g, hd]).permuted([0, 2, 3, 1, 4]).reshaped([b * kv, g * t, hd])
        let kg = k.permuted([0, 2, 1, 3]).reshaped([b * kv, t, hd])
        let vg = v.permuted([0, 2, 1, 3]).reshaped([b * kv, t, hd])
        let attention = probabilityDropout(probabilities(qg.matmul(kg, transposeB: true).scaled(by: scale)))
        let y = attention.matmul(vg).reshaped([b, kv, g, t, hd]).permuted([0, 3, 1, 2, 4]).reshaped([b, t, d])
        return proj(activation(y, "context"))
    }

    /// The softmax of scaled scores, rounded to the format (a Dojo format's activation site "probabilities") as the
    /// softmax writes its rows where the rounding can run that way now, else in a pass after it.
    func probabilities(_ scaled: Tensor) -> Tensor {
        guard let policy = Module.context.precision else { return scaled.softmax(causal: causal) }
        let site = path + ".probabilities", rounding = policy.outputRounding(site: site)
        let p = scaled.softmax(causal: causal, roundOutput: rounding)
        return policy.activation(p, site: site, exclusive: true, alreadyRounded: rounding != nil && p.format == rounding?.dtype)
    }

    /// RoPE: x·cos + rotate_half(x)·sin over the last dimension of [B, T, heads, hd].
    func rotate(_ x: Tensor, _ cos: Tensor, _ sin: Tensor) -> Tensor {
        let hd = x.shape[3], half = hd / 2
        let x1 = x.slice(axis: 3, 0..<half), x2 = x.slice(axis: 3, half..<hd)
        let rotated = Tensor.concatenate([x2.negated(), x1], axis: 3)
        return x * cos + rotated * sin
    }
}

/// cos and sin of RoPE's angles, [T, 1, hd] (broadcast over heads): angle(p, j) = p / 10000^(2j/hd) for
/// j < hd/2, repeated for the second half. Constants: under `Engine.shapeOnly` they are shapes only.
func rotaryTables(positions t: Int, headDimension hd: Int) -> (cos: Tensor, sin: Tensor) {
    if Engine.shapeOnly { return (Tensor(uninitializedShape: [t, 1, hd]), Tensor(uninitializedShape: [t, 1, hd])) }
    var c = [Float](repeating: 0, count: t * hd), s = c
    let half = hd / 2
    for p in 0..<t {
        for j in 0..<half {
            let angle = Double(p) / Foundation.pow(10000, Double(2 * j) / Double(hd))
            c[p * hd + j] = Float(Foundation.cos(angle)); c[p * hd + j + half] = c[p * hd + j]
            s[p * hd + j] = Float(Foundation.sin(angle)); s[p * hd + j + half] = s[p * hd + j]
        }
    }
    return (Tensor(c, shape: [t, 1, hd]), Tensor(s, shape: [t, 1, hd]))
}

/// A pre-norm transformer block: x + MHSA(LN(x)), then x + MLP(LN(x)) with a GELU MLP of width `ffn`
/// (default `mlpRatio`·dimension). ViT's encoder block, and with `causal` the GPT-2/GPT-3 decoder block.
public final class TransformerBlock: Module {
    let norm1: LayerNorm, attention: MultiHeadSelfAttention, norm2: LayerNorm, fc1: Linear, act = GELU(), fc2: Linear
    public init(dimension: Int, heads: Int, mlpRatio: Int = 4, ffn: Int? = nil, causal: Bool = false, generator: inout RandomSource) {
        let width = ffn ?? dimension * mlpRatio
        norm1 = LayerNorm(dimension)
        attention = MultiHeadSelfAttention(dimension: dimension, heads: heads, causal: causal, generator: &generator)
        norm2 = LayerNorm(dimension)
        fc1 = Linear(dimension, width, generator: &generator)
        fc2 = Linear(width, dimension, generator: &generator)
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
