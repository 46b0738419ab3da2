/// The hyper-parameters of a transformer that published FLOP counts are written in: what the validation cases
/// need to turn a predicted step time into "achieved TFLOP/s per GPU" the way each source counted it.
public struct TransformerShape: Sendable, Equatable, Hashable, Codable {
    public var layers: Int
    public var hidden: Int
    public var heads: Int
    /// Key/value heads (grouped-query attention); `heads` when every head has its own.
    public var kvHeads: Int
    /// Width of the MLP's inner layer (4 × hidden in GPT and BERT).
    public var ffnHidden: Int
    /// A gated MLP (SwiGLU: three matrices instead of two).
    public var gatedMLP: Bool
    /// Tokens per sequence.
    public var sequence: Int
    public var vocabulary: Int
    /// Input and output embeddings share one matrix (GPT, BERT) or not (Llama).
    public var tiedEmbeddings: Bool
    /// Learned position embeddings (GPT, BERT) rather than rotary ones (Llama).
    public var learnedPositions: Bool

    public init(layers: Int, hidden: Int, heads: Int, kvHeads: Int? = nil, ffnHidden: Int? = nil, gatedMLP: Bool = false,
                sequence: Int, vocabulary: Int, tiedEmbeddings: Bool = true, learnedPositions: Bool = true) {
        self.layers = layers; self.hidden = hidden; self.heads = heads; self.kvHeads = kvHeads ?? heads
        self.ffnHidden = ffnHidden ?? 4 * hidden; self.gatedMLP = gatedMLP; self.sequence = sequence
        self.vocabulary = vocabulary; self.tiedEmbeddings = tiedEmbeddings; self.learnedPositions = learnedPositions
    }

    /// A GPT (Megatron-LM's): 4 × hidden MLP with GELU, learned positions, tied embeddings.
    public static func gpt(layers: Int, hidden: Int, heads: Int, sequence: Int, vocabulary: Int) -> TransformerShape {
        TransformerShape(layers: layers, hidden: hidden, heads: heads, sequence: sequence, vocabulary: vocabulary)
    }

    /// GPT-3 175B: Brown et al. 2020 (arXiv 2005.14165) Table 2.1: 96 layers, d_model 12,288, 96 heads of 128,
    /// context 2,048; vocabulary 50,257 (the GPT-2 byte-pair encoding, Radford et al. 2019).
    public static let gpt3_175B = TransformerShape.gpt(layers: 96, hidden: 12288, heads: 96, sequence: 2048, vocabulary: 50257)

    /// Llama 2 70B: Touvron et al. 2023 (arXiv 2307.09288) — grouped-query attention, SwiGLU, RoPE, 4,096 context;
    /// the sizes (80 layers, hidden 8,192, 64 heads, 8 key/value heads, FFN 28,672, vocabulary 32,000, untied
    /// embeddings) are those of Meta's released `params.json` / Hugging Face `config.json`.
    public static func llama2_70B(sequence: Int = 4096) -> TransformerShape {
        TransformerShape(layers: 80, hidden: 8192, heads: 64, kvHeads: 8, ffnHidden: 28672, gatedMLP: true,
                         sequence: sequence, vocabulary: 32000, tiedEmbeddings: false, learnedPositions: false)
    }

    /// BERT-Large: Devlin et al. 2018 (arXiv 1810.04805): 24 layers, hidden 1,024, 16 heads; WordPiece vocabulary
    /// 30,522 (the uncased vocabulary NVIDIA's DeepLearningExamples use).
    public static func bertLarge(sequence: Int) -> TransformerShape {
        TransformerShape(layers: 24, hidden: 1024, heads: 16, sequence: sequence, vocabulary: 30522)
    }

    /// Parameters: the weight matrices of every layer (attention and MLP), the embeddings (twice when untied) and
    /// learned positions. Biases and norms are left out (under 0.1% of any model here). GPT-3 175B: 174.6 × 10⁹;
    /// Llama 2 70B: 68.98 × 10⁹.
    public var parameters: Double {
        let h = Double(hidden), d = Double(hidden / heads)
        let attention = 2 * h * Double(heads) * d + 2 * h * Double(kvHeads) * d
        let mlp = (gatedMLP ? 3 : 2) * h * Double(ffnHidden)
        let embeddings = Double(vocabulary) * h * (tiedEmbeddings ? 1 : 2) + (learnedPositions ? Double(sequence) * h : 0)
        return Double(layers) * (attention + mlp) + embeddings
    }

    /// Floating-point operations (2 per multiply-add) of one training step over `sequences` sequences, counted by
    /// `convention`.
    public func trainingFlops(sequences: Double, _ convention: FlopConvention) -> Double {
        let b = sequences, s = Double(sequence), l = Double(layers), h = Double(hidden), v = Double(vocabulary)
        let n = Double(heads), g = Double(kvHeads), f = Double(ffnHidden)
        // One layer's GEMM FLOPs per token in units of h², as Megatron-LM writes them: attention (Q, K/V, scores,
        // context, output) and the MLP; the forward pass is 2 × 2 × (these terms) × h² per token.
        let attention = 1 + g / n + s / h
        let mlp = f / h * (gatedMLP ? 1.5 : 1)
        let forwardLayers = 4 * b * s * l * h * h * (attention + mlp)
        let forwardLogits = 2 * b * s * h * v
        switch convention {
        case .megatronModel:
            return 3 * (forwardLayers + forwardLogits)
        case .megatronRecompute:
            return 4 * forwardLayers + 3 * forwardLogits
        case .sixN:
            return 6 * parameters * b * s
        case .sixNCausalAttention:
            // MaxText's calculate_tflops_training_per_device: 6·N·tokens plus 12·heads·layers·head_dim·s²·B, halved
            // for the causal mask (heads × head_dim = h)
            return 6 * parameters * b * s + 6 * n * (h / n) * l * s * s * b
        }
    }
}

/// How a source counted the FLOPs behind an "achieved TFLOP/s" figure. Each counts 2 FLOPs per multiply-add and
/// the backward pass as twice the forward.
public enum FlopConvention: String, Sendable, Codable, CaseIterable {
    /// Model FLOPs, no recomputation: Megatron-Core's `num_floating_point_operations` (Megatron-LM
    /// `megatron/training/training.py`), also NeMo's "model TFLOP/s/GPU" and Korthikanti et al.'s MFU:
    /// 12·B·s·l·h²·((1 + g/n + s/h) + (f/h)·(1.5 if SwiGLU) + V/(2·l·h)); for a GPT (g = n, f = 4h)
    /// = 72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h)).
    case megatronModel
    /// Narayanan et al. 2021 (arXiv 2104.04473, appendix "Floating-point operations", eq. 3): with activation
    /// recomputation every layer runs its forward pass twice: 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) for a GPT.
    /// Closer to hardware FLOPs than to model FLOPs.
    case megatronRecompute
    /// 6·N·tokens (Kaplan et al. 2020): N = `TransformerShape.parameters`, attention scores not counted.
    case sixN
    /// 6·N·tokens plus causal attention's scores and context, half of 12·l·h·s² a sequence: MaxText's
    /// `calculate_tflops_training_per_device` (maxtext_utils.py at efb6d9e4: learnable-weight TFLOPs 6·N·s·B plus the
    /// non-causal attention TFLOPs 12·heads·layers·head_dim·s²·B divided by 2 "due to causality in attention").
    case sixNCausalAttention

    public var formula: String {
        switch self {
        case .megatronModel: return "72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h)) (Megatron-Core model FLOPs, no recompute)"
        case .megatronRecompute: return "96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) (Narayanan et al. 2021, counts recompute)"
        case .sixN: return "6·N·tokens"
        case .sixNCausalAttention: return "6·N·tokens + 6·l·h·s·tokens (MaxText: weights plus causal attention)"
        }
    }
}
