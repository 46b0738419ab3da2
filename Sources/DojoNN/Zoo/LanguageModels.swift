import DojoTensor

/// Language models take token ids [B, T] (whole numbers stored as Float32; T at most their context length) and
/// return logits over the vocabulary at every position, [B, T, V]. Their loss is the cross-entropy at every token.

/// The learned positions of the first `t` tokens: [T, D], broadcast over the batch.
private func firstPositions(_ table: Tensor, _ t: Int) -> Tensor {
    precondition(t <= table.shape[0], "\(t) tokens, but the model has \(table.shape[0]) positions")
    return t == table.shape[0] ? table : table.slice(axis: 0, 0..<t)
}

/// A GPT-2/GPT-3 style decoder (Radford et al. 2019; Brown et al. 2020): token and learned position embeddings,
/// pre-norm blocks with causal attention and a GELU MLP, a final layer norm, and the output layer tied to the
/// token embedding (logits = h·Eᵀ, no bias). Dense attention in every layer (GPT-3 alternated dense and locally
/// banded sparse layers; the IR here assumes dense, as Megatron-style reproductions do). No dropout.
public final class GPT: Module {
    let tokens: Embedding
    let positions: Tensor
    let blocks: [Module], norm: LayerNorm
    public init(layers: Int, dimension: Int, heads: Int, ffn: Int, contextLength: Int, vocabulary: Int, generator: inout RandomSource) {
        tokens = Embedding(vocabulary: vocabulary, dimension: dimension, generator: &generator)
        // GPT-2's initialisation (openai/gpt-2 model.py): positions Normal(0, 0.01²), tokens Normal(0, 0.02²)
        positions = Tensor.randomNormal([contextLength, dimension], std: 0.01, generator: &generator).asParameter()
        var bs: [Module] = []
        for _ in 0..<layers {
            bs.append(TransformerBlock(dimension: dimension, heads: heads, ffn: ffn, causal: true, generator: &generator))
        }
        blocks = bs
        norm = LayerNorm(dimension)
    }
    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 2, "\(type(of: self)): expects token ids [batch, tokens], got \(x.shape)")
        var h = tokens(x) + firstPositions(positions, x.shape[1])
        for block in blocks { h = block(h) }
        h = norm(h)
        return Tape.withScope("head") { h.matmul(effective(tokens.weight, "head.weight"), transposeB: true) }
    }
}

/// BERT (Devlin et al. 2019) with its masked-language-model head: word, position and token-type embeddings
/// (every token of segment 0), embedding layer norm, post-norm encoder layers, then the MLM head
/// (dense → GELU → layer norm → decoder tied to the word embedding, plus a bias per word). The pooler and the
/// next-sentence head are left out. The loss is MLM at every token unless `predictions` is set: then the head runs
/// on that many positions of each sequence (the masked ones, taken here as the first: the same shapes and cost as
/// gathering them). `dropout` (BERT: 0.1) after attention and the MLP and on the attention probabilities, in training.
public final class BERT: Module {
    let words: Embedding
    let positions: Tensor, tokenTypes: Tensor
    let embeddingNorm: LayerNorm
    let layers: [Module]
    let transform: Linear, act = GELU(), transformNorm: LayerNorm
    let decoderBias: Tensor
    public let predictions: Int?
    public init(layers count: Int, dimension: Int, heads: Int, ffn: Int, contextLength: Int, vocabulary: Int,
                predictions: Int? = nil, dropout: Float = 0, generator: inout RandomSource) {
        self.predictions = predictions
        words = Embedding(vocabulary: vocabulary, dimension: dimension, generator: &generator)
        positions = Tensor.randomNormal([contextLength, dimension], std: 0.02, generator: &generator).asParameter()
        tokenTypes = Tensor.randomNormal([2, dimension], std: 0.02, generator: &generator).asParameter()
        embeddingNorm = LayerNorm(dimension, epsilon: 1e-12)
        var ls: [Module] = []
        for _ in 0..<count { ls.append(BertLayer(dimension: dimension, heads: heads, ffn: ffn, dropout: dropout, generator: &generator)) }
        layers = ls
        transform = Linear(dimension, dimension, generator: &generator)
        transformNorm = LayerNorm(dimension, epsilon: 1e-12)
        decoderBias = Tensor(zeros: [vocabulary]).asParameter()
    }
    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 2, "BERT: expects token ids [batch, tokens], got \(x.shape)")
        let segment0 = tokenTypes.slice(axis: 0, 0..<1)                       // [1, D]: every token is of segment 0
        var h = embeddingNorm(words(x) + firstPositions(positions, x.shape[1]) + segment0)
        for layer in layers { h = layer(h) }
        if let p = predictions, p < h.shape[1] { h = h.slice(axis: 1, 0..<p) }
        h = transformNorm(act(transform(h)))
        return Tape.withScope("decoder") { h.matmul(effective(words.weight, "decoder.weight"), transposeB: true) + decoderBias }
    }
}

/// Llama 2 (Touvron et al. 2023): token embedding, pre-RMSNorm decoder blocks with rotary positions, causal
/// (grouped-query when kvHeads < heads) attention without biases and a SwiGLU feed-forward, a final RMSNorm and
/// an untied output layer. No learned positions.
public final class Llama: Module {
    let tokens: Embedding
    let blocks: [Module], norm: RMSNorm, head: Linear
    public let contextLength: Int
    public init(layers: Int, dimension: Int, heads: Int, kvHeads: Int, ffn: Int, contextLength: Int, vocabulary: Int,
                generator: inout RandomSource) {
        tokens = Embedding(vocabulary: vocabulary, dimension: dimension, generator: &generator)
        var bs: [Module] = []
        for _ in 0..<layers {
            bs.append(LlamaBlock(dimension: dimension, heads: heads, kvHeads: kvHeads, ffn: ffn, generator: &generator))
        }
        blocks = bs
        norm = RMSNorm(dimension)
        head = Linear(dimension, vocabulary, bias: false, generator: &generator)
        self.contextLength = contextLength
    }
    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] <= contextLength, "Llama: expects token ids [batch, ≤ \(contextLength)], got \(x.shape)")
        var h = tokens(x)
        for block in blocks { h = block(h) }
        return head(norm(h))
    }
}
