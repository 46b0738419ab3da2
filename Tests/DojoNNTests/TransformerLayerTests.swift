import DojoNN
import DojoTensor
import Testing

/// The language-model layers differentiated end to end against finite differences.
extension LayerGradientTests {
    @Test func languageModelBlocks() {
        var g = RandomSource(seed: 5)
        let causal = MultiHeadSelfAttention(dimension: 8, heads: 2, causal: true, generator: &g)
        causal.finalizeNames()
        check("causal attention", causal, input: [2, 5, 8])
        let grouped = MultiHeadSelfAttention(dimension: 16, heads: 4, kvHeads: 2, causal: true, bias: false, rotary: true, generator: &g)
        grouped.finalizeNames()
        check("grouped-query rotary attention", grouped, input: [2, 5, 16])
        let llama = LlamaBlock(dimension: 16, heads: 4, kvHeads: 2, ffn: 24, generator: &g)
        llama.finalizeNames()
        check("llama block", llama, input: [2, 4, 16])
        let bert = BertLayer(dimension: 8, heads: 2, ffn: 16, generator: &g)
        bert.finalizeNames()
        check("bert layer", bert, input: [2, 3, 8])
        let gpt = TransformerBlock(dimension: 8, heads: 2, ffn: 12, causal: true, generator: &g)
        gpt.finalizeNames()
        check("gpt block", gpt, input: [2, 3, 8])
        let norm = RMSNorm(6)
        norm.finalizeNames()
        check("rms norm", norm, input: [3, 6])
        let swiglu = SwiGLU(dimension: 6, hidden: 10, generator: &g)
        swiglu.finalizeNames()
        check("swiglu", swiglu, input: [2, 6])
    }
}
