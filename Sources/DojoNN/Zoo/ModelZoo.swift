import DojoTensor

/// What a model is asked to predict, which decides its output and loss.
public enum Task: String, Sendable {
    /// One class per example: logits [B, classes], softmax cross-entropy.
    case classification
    /// One occupancy probability per BEV cell: logits [B, G, G], binary cross-entropy.
    case occupancy
    /// A distribution over the vocabulary at every token: logits [B, T, V], softmax cross-entropy at every token
    /// (next-token prediction for decoders; for BERT, masked-LM treated as predicting every token).
    case languageModeling = "language-modeling"
}

public struct ModelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// The model zoo: every network buildable at any input size that fits it. Transformers also take a size
/// (`ModelSpec`: `NAME[:key=value,...]`); every function here that takes a model name takes a spec.
public enum ModelZoo {
    /// A ViT's default patch side: the largest divisor of the image side up to side ÷ 7 (about 7 × 7 patches or more),
    /// at most 16 — 16 on 224 × 224 (ViT-B/16), 4 on 28 × 28; a patch always divides the image.
    public static func defaultPatch(image h: Int) -> Int {
        let limit = max(1, min(16, h / 7))
        return (1...limit).reversed().first { h % $0 == 0 } ?? 1
    }

    public struct Entry: Sendable {
        public let name: String
        public let summary: String
        public let task: Task
        /// The training recipe used when a user names none: optimizer, peak learning rate, epochs.
        public let optimizer: String
        public let learningRate: Float
        public let epochs: Int
        /// A transformer's size (its spec keys change it); nil for the rest.
        public let transformer: TransformerConfig?

        init(name: String, summary: String, task: Task, optimizer: String, learningRate: Float, epochs: Int,
             transformer: TransformerConfig? = nil) {
            self.name = name; self.summary = summary; self.task = task; self.optimizer = optimizer
            self.learningRate = learningRate; self.epochs = epochs; self.transformer = transformer
        }
    }

    /// A GPT-3 size from Brown et al. 2020 ("Language Models are Few-Shot Learners"), Table 2.1: layers, d_model,
    /// heads, d_ff = 4·d_model, context 2048; vocabulary 50257 (GPT-2's BPE, Radford et al. 2019). Learning rate:
    /// the same table's.
    static func gpt3(_ name: String, _ published: String, layers: Int, hidden: Int, heads: Int, lr: Float, note: String = "") -> Entry {
        Entry(name: name, summary: "GPT-3 \(published) (Brown et al. 2020, Table 2.1): \(layers) layers, d_model \(hidden), \(heads) heads, context 2048\(note)",
              task: .languageModeling, optimizer: "adamw", learningRate: lr, epochs: 1,
              transformer: TransformerConfig(family: .gpt, layers: layers, hidden: hidden, heads: heads, seq: 2048, vocab: 50257))
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
        Entry(name: "vit-tiny", summary: "ViT-Tiny: dimension 192, depth 12, 3 heads (patch: the largest divisor of the image side up to side/7, at most 16)", task: .classification,
              optimizer: "adamw", learningRate: 1e-3, epochs: 3,
              transformer: TransformerConfig(family: .vit, layers: 12, hidden: 192, heads: 3)),
        Entry(name: "occupancy", summary: "multi-camera → shared CNN → BEV lift → occupancy logits per cell", task: .occupancy,
              optimizer: "adamw", learningRate: 1e-3, epochs: 4),
        // ViT-B/16 (Dosovitskiy et al. 2021, Table 1: Base = 12 layers, hidden 768, MLP 3072, 12 heads; patch 16).
        // Recipe: as vit-tiny (an assumption for small data sets; the paper pre-trains with Adam at 8e-4 on JFT).
        Entry(name: "vit-b16", summary: "ViT-Base/16 (Dosovitskiy et al. 2021): 12 layers, hidden 768, 12 heads, patch 16, image 224",
              task: .classification, optimizer: "adamw", learningRate: 1e-3, epochs: 3,
              transformer: TransformerConfig(family: .vit, layers: 12, hidden: 768, heads: 12, image: 224, patch: 16)),
        // BERT (Devlin et al. 2019, §3): Base L=12 H=768 A=12, Large L=24 H=1024 A=16; FFN 4H; WordPiece vocabulary
        // 30522 and 512 positions (google-research/bert's bert_config.json). Adam at 1e-4 (§A.2).
        Entry(name: "bert-base", summary: "BERT-Base (Devlin et al. 2019) + MLM head: 12 layers, hidden 768, 12 heads, seq 512",
              task: .languageModeling, optimizer: "adamw", learningRate: 1e-4, epochs: 1,
              transformer: TransformerConfig(family: .bert, layers: 12, hidden: 768, heads: 12, seq: 512, vocab: 30522)),
        Entry(name: "bert-large", summary: "BERT-Large (Devlin et al. 2019) + MLM head: 24 layers, hidden 1024, 16 heads, seq 512",
              task: .languageModeling, optimizer: "adamw", learningRate: 1e-4, epochs: 1,
              transformer: TransformerConfig(family: .bert, layers: 24, hidden: 1024, heads: 16, seq: 512, vocab: 30522)),
        gpt3("gpt-125m", "Small (125M)", layers: 12, hidden: 768, heads: 12, lr: 6.0e-4),
        gpt3("gpt-350m", "Medium (350M)", layers: 24, hidden: 1024, heads: 16, lr: 3.0e-4),
        gpt3("gpt-760m", "Large (760M)", layers: 24, hidden: 1536, heads: 16, lr: 2.5e-4),
        // Table 2.1 prints 24 heads of 128 for XL, which is 3072, not d_model 2048; 16 heads of 128 (an assumption, as
        // GPT-Neo 1.3B) — the head count changes no parameter and no FLOP, only how attention is split.
        gpt3("gpt-1.3b", "XL (1.3B)", layers: 24, hidden: 2048, heads: 16, lr: 2.0e-4, note: " (16 heads of 128: the table's 24 × 128 is not 2048)"),
        gpt3("gpt-2.7b", "2.7B", layers: 32, hidden: 2560, heads: 32, lr: 1.6e-4),
        gpt3("gpt-6.7b", "6.7B", layers: 32, hidden: 4096, heads: 32, lr: 1.2e-4),
        // Table 2.1 prints d_model 5140 for 13B, which 40 heads of 128 do not divide; 40 × 128 = 5120 (an assumption,
        // as in reproductions such as OPT-13B).
        gpt3("gpt-13b", "13B", layers: 40, hidden: 5120, heads: 40, lr: 1.0e-4, note: " (d_model 5120: the table's 5140 is not 40×128)"),
        gpt3("gpt-175b", "175B", layers: 96, hidden: 12288, heads: 96, lr: 0.6e-4),
        // Llama 2 (Touvron et al. 2023, Table 1 and §2.2; Hugging Face configs of meta-llama/Llama-2-7b-hf and -70b-hf):
        // 7B: 32 layers, 4096 hidden, 32 heads, FFN 11008; 70B: 80 layers, 8192 hidden, 64 heads, 8 key/value heads
        // (grouped-query attention), FFN 28672; context 4096; vocabulary 32000. Peak learning rates: Table 1.
        Entry(name: "llama2-7b", summary: "Llama 2 7B (Touvron et al. 2023): 32 layers, hidden 4096, 32 heads, SwiGLU 11008, RMSNorm, RoPE, seq 4096",
              task: .languageModeling, optimizer: "adamw", learningRate: 3e-4, epochs: 1,
              transformer: TransformerConfig(family: .llama, layers: 32, hidden: 4096, heads: 32, ffn: 11008, seq: 4096, vocab: 32000)),
        Entry(name: "llama2-70b", summary: "Llama 2 70B: 80 layers, hidden 8192, 64 heads, 8 key/value heads (GQA), SwiGLU 28672, seq 4096",
              task: .languageModeling, optimizer: "adamw", learningRate: 1.5e-4, epochs: 1,
              transformer: TransformerConfig(family: .llama, layers: 80, hidden: 8192, heads: 64, kvHeads: 8, ffn: 28672, seq: 4096, vocab: 32000)),
        // The families, to size freely with keys; their defaults are the smallest published member.
        Entry(name: "gpt", summary: "GPT decoder of any size: gpt:layers=…,hidden=…,heads=…,ffn=…,seq=…,vocab=… (defaults: gpt-125m)",
              task: .languageModeling, optimizer: "adamw", learningRate: 6.0e-4, epochs: 1,
              transformer: TransformerConfig(family: .gpt, layers: 12, hidden: 768, heads: 12, seq: 2048, vocab: 50257)),
        Entry(name: "bert", summary: "BERT encoder + MLM head of any size (defaults: bert-base)",
              task: .languageModeling, optimizer: "adamw", learningRate: 1e-4, epochs: 1,
              transformer: TransformerConfig(family: .bert, layers: 12, hidden: 768, heads: 12, seq: 512, vocab: 30522)),
        Entry(name: "llama", summary: "Llama decoder of any size, kv-heads for grouped-query attention (defaults: llama2-7b, FFN from hidden)",
              task: .languageModeling, optimizer: "adamw", learningRate: 3e-4, epochs: 1,
              transformer: TransformerConfig(family: .llama, layers: 32, hidden: 4096, heads: 32, seq: 4096, vocab: 32000)),
        Entry(name: "vit", summary: "Vision Transformer of any size: vit:layers=…,hidden=…,heads=…,ffn=…,image=…,patch=… (defaults: vit-b16)",
              task: .classification, optimizer: "adamw", learningRate: 1e-3, epochs: 3,
              transformer: TransformerConfig(family: .vit, layers: 12, hidden: 768, heads: 12, image: 224, patch: 16)),
    ]

    public static var names: [String] { entries.map(\.name) }

    /// The entry a model name or spec starts from (the spec is checked: bad keys throw).
    public static func entry(_ name: String) throws -> Entry { try resolve(name).entry }

    /// Builds `name` (a zoo name or a spec `NAME[:key=value,...]`) for examples of `inputShape` (without the batch
    /// dimension): `classes` for classifiers; `gridSize` for the occupancy network; `patchSize` for a ViT whose spec
    /// sets none (default: the largest divisor of the image side up to side/7, at most 16). Language models take [tokens], at most their `seq`.
    /// Under `Engine.shapeOnly` the parameters get no memory and no initialisation: any size builds at once.
    public static func make(_ name: String, inputShape: [Int], classes: Int = 10, gridSize: Int = 16, patchSize: Int? = nil,
                            seed: UInt64) throws -> Module {
        let spec = try resolve(name)
        var g = RandomSource(seed: seed)
        let model: Module
        func image() throws -> (c: Int, h: Int, w: Int) {
            guard inputShape.count == 3 else {
                throw ModelError("\(name) needs image inputs [channels, height, width], the data has examples of shape \(inputShape)")
            }
            return (inputShape[0], inputShape[1], inputShape[2])
        }
        if let t = spec.transformer {
            model = try makeTransformer(t, spec: spec, inputShape: inputShape, classes: classes, patchSize: patchSize,
                                        image: image, generator: &g)
            model.finalizeNames()
            return model
        }
        switch spec.entry.name {
        case "mlp":
            model = MLP(inputFeatures: inputShape.reduce(1, *), classes: classes, generator: &g)
        case "small-cnn":
            let (c, h, w) = try image()
            guard h >= 4 && w >= 4 else { throw ModelError("small-cnn needs images of at least 4×4, got \(h)×\(w)") }
            model = SmallCNN(channels: c, height: h, width: w, classes: classes, generator: &g)
        case "resnet18", "resnet50":
            let (c, h, w) = try image()
            // Five stride-2 stages, each rounding up (padding): 28×28 Fashion-MNIST ends in 1×1 maps, as 32×32 does;
            // below 16×16 the last stages would only see single pixels.
            guard h >= 16 && w >= 16 else { throw ModelError("\(name) downsamples 32×: it needs images of at least 16×16, got \(h)×\(w)") }
            model = ResNet(depth: name == "resnet18" ? .r18 : .r50, channels: c, classes: classes, generator: &g)
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

    static func makeTransformer(_ t: TransformerConfig, spec: ModelSpec, inputShape: [Int], classes: Int, patchSize: Int?,
                                image: () throws -> (c: Int, h: Int, w: Int), generator g: inout RandomSource) throws -> Module {
        let name = spec.description
        if t.isLanguageModel {
            guard inputShape.count == 1, inputShape[0] >= 1, inputShape[0] <= t.seq else {
                throw ModelError("\(name) is a language model: it needs examples of [tokens] with at most \(t.seq) tokens (key 'seq'), "
                                 + "the data has examples of shape \(inputShape)")
            }
        }
        switch t.family {
        case .gpt:
            return GPT(layers: t.layers, dimension: t.hidden, heads: t.heads, ffn: t.ffnWidth, contextLength: t.seq,
                       vocabulary: t.vocab, generator: &g)
        case .bert:
            return BERT(layers: t.layers, dimension: t.hidden, heads: t.heads, ffn: t.ffnWidth, contextLength: t.seq,
                        vocabulary: t.vocab, predictions: t.predict, dropout: Float(t.dropout ?? 0) / 100, generator: &g)
        case .llama:
            return Llama(layers: t.layers, dimension: t.hidden, heads: t.heads, kvHeads: t.keyValueHeads, ffn: t.ffnWidth,
                         contextLength: t.seq, vocabulary: t.vocab, generator: &g)
        case .vit:
            let (c, h, w) = try image()
            guard h == w else { throw ModelError("\(name) needs square images, got \(h)×\(w)") }
            if spec.overrides.contains(where: { $0.key == "image" }), let side = t.image, side != h {
                throw ModelError("\(name): key 'image' is \(side) but the data has \(h)×\(w) images")
            }
            let p = spec.overrides.first(where: { $0.key == "patch" })?.value ?? patchSize ?? t.patch ?? ModelZoo.defaultPatch(image: h)
            guard p >= 1, h % p == 0 else {
                throw ModelError("\(name): image size \(h) is not a multiple of the patch size \(p) (set one with key 'patch')")
            }
            return VisionTransformer(channels: c, imageSize: h, patchSize: p, dimension: t.hidden, depth: t.layers, heads: t.heads,
                                     ffn: t.ffnWidth, classes: classes, generator: &g)
        }
    }
}
