import DojoTensor

/// A token embedding: ids [B, T] (whole numbers as Float32) → vectors [B, T, D]. Table [V, D] initialised
/// Normal(0, 0.02²) as GPT-2 and BERT do. Language models may reuse the table as their output layer (tied).
public final class Embedding: Module {
    public let weight: Tensor
    public init(vocabulary: Int, dimension: Int, generator: inout RandomSource) {
        weight = Tensor.randomNormal([vocabulary, dimension], std: 0.02, generator: &generator).asParameter()
    }
    public override func forward(_ x: Tensor) -> Tensor {
        Tensor.embedding(effective(weight, path + ".weight"), ids: x)
    }
}

/// RMS normalisation over the last dimension with a learned gain (no bias), as in Llama.
public final class RMSNorm: Module {
    public let weight: Tensor
    public let epsilon: Float
    /// ε = 1e-5: Llama 2's `rms_norm_eps` (Hugging Face config of meta-llama/Llama-2-7b-hf).
    public init(_ features: Int, epsilon: Float = 1e-5) {
        weight = Tensor(repeating: 1, shape: [features]).asParameter()
        self.epsilon = epsilon
    }
    public override func forward(_ x: Tensor) -> Tensor { x.rmsNorm(gamma: weight, epsilon: epsilon) }
}

/// The SwiGLU feed-forward of Llama (Shazeer 2020): down(silu(gate(x)) ⊙ up(x)), no biases; silu(z) = z·σ(z).
public final class SwiGLU: Module {
    let gate: Linear, up: Linear, down: Linear
    public init(dimension: Int, hidden: Int, generator: inout RandomSource) {
        gate = Linear(dimension, hidden, bias: false, generator: &generator)
        up = Linear(dimension, hidden, bias: false, generator: &generator)
        down = Linear(hidden, dimension, bias: false, generator: &generator)
    }
    public override func forward(_ x: Tensor) -> Tensor {
        // up before gate, so that the whole gate·σ(gate)·up runs as one fused kernel after the gate's GEMM (its other
        // operand made before that GEMM), keeping only gate and up for its backward pass, as Megatron's fused
        // bias-SwiGLU kernel does (megatron/core/fusions/fused_bias_swiglu.py saves its input only)
        let u = up(x)
        let g = gate(x)
        return down(g * g.sigmoid() * u)
    }
}

/// Llama's decoder block: x + attention(RMSNorm(x)) with causal, rotary, optionally grouped-query attention
/// and no biases; then x + SwiGLU(RMSNorm(x)).
public final class LlamaBlock: Module {
    let norm1: RMSNorm, attention: MultiHeadSelfAttention, norm2: RMSNorm, mlp: SwiGLU
    public init(dimension: Int, heads: Int, kvHeads: Int, ffn: Int, generator: inout RandomSource) {
        norm1 = RMSNorm(dimension)
        attention = MultiHeadSelfAttention(dimension: dimension, heads: heads, kvHeads: kvHeads, causal: true, bias: false,
                                           rotary: true, generator: &generator)
        norm2 = RMSNorm(dimension)
        mlp = SwiGLU(dimension: dimension, hidden: ffn, generator: &generator)
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let h = x + attention(norm1(x))
        return h + mlp(norm2(h))
    }
}

/// BERT's encoder layer (Devlin et al. 2019; post-norm as in the original Transformer):
/// h = LN(x + attention(x)), then LN(h + fc2(GELU(fc1(h)))). Layer-norm ε = 1e-12 as BERT's configuration.
public final class BertLayer: Module {
    let attention: MultiHeadSelfAttention, norm1: LayerNorm, fc1: Linear, act = GELU(), fc2: Linear, norm2: LayerNorm
    let drop1: Dropout, drop2: Dropout
    public init(dimension: Int, heads: Int, ffn: Int, dropout: Float = 0, generator: inout RandomSource) {
        attention = MultiHeadSelfAttention(dimension: dimension, heads: heads, attentionDropout: dropout, generator: &generator)
        drop1 = Dropout(dropout); drop2 = Dropout(dropout)
        norm1 = LayerNorm(dimension, epsilon: 1e-12)
        fc1 = Linear(dimension, ffn, generator: &generator)
        fc2 = Linear(ffn, dimension, generator: &generator)
        norm2 = LayerNorm(dimension, epsilon: 1e-12)
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let h = norm1(x + drop1(attention(x)))
        return norm2(h + drop2(fc2(act(fc1(h)))))
    }
}
