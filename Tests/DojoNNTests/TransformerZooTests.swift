import DojoData
import DojoGraph
import DojoNN
import DojoTensor
import Foundation
import Testing

/// Parameters of a zoo model, built on shapes only (no memory, no initialisation: any size at once).
func parameterCount(_ spec: String, input: [Int]? = nil, classes: Int = 1000) throws -> Int {
    let shape = try input ?? ModelZoo.resolve(spec).defaultInputShape
    return try Engine.$shapeOnly.withValue(true) { try ModelZoo.make(spec, inputShape: shape, classes: classes, seed: 0).parameterCount }
}

/// Forward FLOPs of the matrix ops (matmul, conv) of a recorded step.
func forwardMatrixFlops(_ g: Graph) -> Double {
    g.ops.filter { $0.phase == .forward && $0.kind.isMatrixOp }.reduce(0) { $0 + $1.flops }
}

func backwardMatrixFlops(_ g: Graph) -> Double {
    g.ops.filter { $0.phase == .backward && $0.kind.isMatrixOp }.reduce(0) { $0 + $1.flops }
}

/// Forward FLOPs of the attention products (QKᵀ and attention·V): matmuls with no parameter operand.
func attentionFlops(_ g: Graph) -> Double {
    let parameters = Set(g.tensors.filter { $0.role == .parameter }.map(\.id))
    return g.ops.filter { $0.phase == .forward && $0.kind == .matmul && !$0.inputs.contains(where: parameters.contains) }
        .reduce(0) { $0 + $1.flops }
}

func relativeError(_ a: Double, _ b: Double) -> Double { abs(a - b) / abs(b) }

/// The transformer models of the zoo at their published sizes: parameters against the publications, forward FLOPs
/// against the analytic formulas (a multiply-add is 2 FLOPs; B sequences of T tokens, L layers, width D, FFN F,
/// vocabulary V, H heads, KV key/value heads of hd = D/H):
///   GPT    2BT·[L(4D² + 2DF) + DV] + 4BLT²D            (QKV 6D², out 2D², MLP 4DF per token and layer; QKᵀ and
///                                                        attention·V 2T²D each per sequence and layer; tied head DV)
///   BERT   2BT·[L(4D² + 2DF) + D² + DV] + 4BLT²D       (plus the MLM head's dense D² and decoder DV)
///   Llama  2BT·[L(2D² + 2D·KV·hd + 3DF) + DV] + 4BLT²D (Q and out D² each, K and V D·KV·hd each, SwiGLU 3DF)
///   ViT    N = (I/P)² + 1 tokens: patch conv 2(N−1)D·3P² (+ its bias, (N−1)D) + L[2N(4D² + 2DF) + 4N²D] + head 2DC
@Suite struct TransformerZooTests {
    @Test func vitB16MatchesPublishedCounts() throws {
        // timm vit_base_patch16_224 (Google's ViT-B/16, 1000 classes): 86,567,656 parameters
        #expect(try parameterCount("vit-b16") == 86_567_656)
        for image in [224, 384] {
            let g = try GraphRecorder.record(model: "vit-b16:image=\(image)", batch: 1)
            let n = Double((image / 16) * (image / 16) + 1), d = 768.0, f = 3072.0, l = 12.0
            let patch = 2 * (n - 1) * d * 3 * 256 + (n - 1) * d
            let analytic = patch + l * (2 * n * (4 * d * d + 2 * d * f) + 4 * n * n * d) + 2 * d * 1000
            #expect(relativeError(forwardMatrixFlops(g), analytic) < 1e-12)
            // Liu et al. 2021 (Swin Transformer), Table 1: DeiT-B (the ViT-B/16 network) at 224²: 17.5G "FLOPs",
            // ViT-B/16 at 384²: 55.4G — multiply-adds, attention products included
            let published = image == 224 ? 17.5e9 : 55.4e9
            let macs = forwardMatrixFlops(g) / 2
            #expect(relativeError(macs, published) < 0.01, "ViT-B/16 at \(image): \(macs) multiply-adds")
            if image == 224 {
                // timm's model card for vit_base_patch16_224: 16.9 GMACs, which counts the linear layers and the patch
                // convolution but not the attention products
                #expect(relativeError((forwardMatrixFlops(g) - attentionFlops(g)) / 2, 16.9e9) < 0.01)
            }
        }
    }

    @Test func bertLargeMatchesPublishedCounts() throws {
        let d = 1024, l = 24, v = 30522, f = 4096
        // What bert-large counts: word (V·D), position (512·D) and token-type (2·D) embeddings, the embedding layer
        // norm, 24 layers of 12D² + 13D, and the MLM head (dense D² + D, layer norm 2D, a bias per word; its decoder
        // weight is the word embedding, tied). Not the pooler (D² + D) nor the next-sentence head: the loss is MLM.
        let embeddings = v * d + 512 * d + 2 * d + 2 * d
        let layers = l * (12 * d * d + 13 * d)
        let mlmHead = d * d + d + 2 * d + v
        #expect(try parameterCount("bert-large") == embeddings + layers + mlmHead)
        #expect(embeddings + layers + mlmHead == 335_174_458)
        // Hugging Face's BertModel (with pooler, without heads) for bert-large-uncased has 335,141,888 parameters;
        // ours is that less the pooler plus the MLM head. Devlin et al. 2019 (§3) round BERT-Large to 340M.
        #expect(embeddings + layers + d * d + d == 335_141_888)
        #expect(relativeError(Double(embeddings + layers + mlmHead), 340e6) < 0.015)
        // BERT-Base: Devlin et al. 110M
        #expect(relativeError(Double(try parameterCount("bert-base")), 110e6) < 0.01)

        for seq in [512, 128] {
            let g = try GraphRecorder.record(model: "bert-large:seq=\(seq)", batch: 2)
            let (B, T, D, L, F, V) = (2.0, Double(seq), Double(d), Double(l), Double(f), Double(v))
            let analytic = 2 * B * T * (L * (4 * D * D + 2 * D * F) + D * D + D * V) + 4 * B * L * T * T * D
            #expect(relativeError(forwardMatrixFlops(g), analytic) < 1e-12)
        }
    }

    /// Brown et al. 2020, Table 2.1 (names) and Table D.1 (parameters in millions, "Params (M)").
    @Test(arguments: [("gpt-125m", 125e6, 125e6), ("gpt-350m", 350e6, 356e6), ("gpt-760m", 760e6, 760e6),
                      ("gpt-1.3b", 1.3e9, 1_320e6), ("gpt-2.7b", 2.7e9, 2_650e6), ("gpt-6.7b", 6.7e9, 6_660e6),
                      ("gpt-13b", 13e9, 12_850e6), ("gpt-175b", 175e9, 174_600e6)])
    func gpt3SizesMatchThePaper(model: String, name: Double, tableD1: Double) throws {
        let n = Double(try parameterCount(model))
        #expect(relativeError(n, name) < 0.02, "\(model): \(n) parameters")
        #expect(relativeError(n, tableD1) < 0.005, "\(model): \(n) parameters vs Table D.1 \(tableD1)")
    }

    @Test func gptForwardFlopsFollowTheFormula() throws {
        let g = try GraphRecorder.record(model: "gpt-1.3b", batch: 2)
        let (B, T, D, L, V) = (2.0, 2048.0, 2048.0, 24.0, 50257.0), F = 4 * D
        let analytic = 2 * B * T * (L * (4 * D * D + 2 * D * F) + D * V) + 4 * B * L * T * T * D
        #expect(relativeError(forwardMatrixFlops(g), analytic) < 1e-12)
        #expect(relativeError(attentionFlops(g), 4 * B * L * T * T * D) < 1e-12)
        // every matrix op's operands both need a gradient: the backward pass is twice the forward
        #expect(relativeError(backwardMatrixFlops(g), 2 * forwardMatrixFlops(g)) < 1e-12)
    }

    @Test func gpt175bRecordsFastWithoutMemory() throws {
        let started = Date()
        let g = try GraphRecorder.record(model: "gpt-175b", batch: 1)
        let seconds = Date().timeIntervalSince(started)
        #expect(seconds < 2, "recording gpt-175b took \(seconds) s")
        #expect(g.summary.parameters == 174_604_259_328)
        #expect(g.summary.parameterBytes == 174_604_259_328 * 4)
        #expect(g.ops.filter { $0.phase == .optimizer && $0.kind == .adamwUpdate }.count == 4 + 96 * 12)
        // Narayanan et al. 2021 (Megatron-LM, §5.1): a step is 96·B·s·l·h²·(1 + s/6h + V/16lh) FLOPs with activation
        // recomputation (an extra forward pass); without it, as here: 72·B·s·l·h²·(1 + s/6h) + 6·B·s·h·V.
        let (B, s, l, h, V) = (1.0, 2048.0, 96.0, 12288.0, 50257.0)
        let megatron = 72 * B * s * l * h * h * (1 + s / (6 * h)) + 6 * B * s * h * V
        let step = forwardMatrixFlops(g) + backwardMatrixFlops(g)
        #expect(relativeError(step, megatron) < 1e-12)
        // Brown et al. 2020, Table D.1: 3.14e23 FLOPs for 300B tokens (6 FLOPs per parameter per token, attention
        // left out); ours counts attention (s/6h ≈ 2.8% more)
        #expect(relativeError(step / s, 3.14e23 / 300e9) < 0.04)

        // at GPT-3's batch (1536 sequences of 2048 tokens, 3.2M tokens: Table 2.1) the recording costs no more: no op
        // loops over rows or elements of a shape-only tensor
        let big = Date()
        let g1536 = try GraphRecorder.record(model: "gpt-175b", batch: 1536)
        #expect(Date().timeIntervalSince(big) < 2)
        #expect(relativeError(forwardMatrixFlops(g1536), 1536 * forwardMatrixFlops(g)) < 1e-12)

        // building it shape-only allocates nothing: every parameter is a shape without storage
        let net = try Engine.$shapeOnly.withValue(true) { try ModelZoo.make("gpt-175b", inputShape: [2048], seed: 0) }
        #expect(net.parameters.allSatisfy { $0.1.isShapeOnly })
        #expect(net.parameterCount == 174_604_259_328)
    }

    @Test func llama2MatchesPublishedCounts() throws {
        // Touvron et al. 2023: 7B and 70B; exact counts of the released checkpoints (Hugging Face meta-llama/Llama-2-7b-hf
        // and -70b-hf safetensors): 6,738,415,616 and 68,976,648,192
        #expect(try parameterCount("llama2-7b") == 6_738_415_616)
        #expect(try parameterCount("llama2-70b") == 68_976_648_192)

        let g = try GraphRecorder.record(model: "llama2-70b", batch: 1)
        let (B, T, D, L, V, F) = (1.0, 4096.0, 8192.0, 80.0, 32000.0, 28672.0), kv = 8.0, hd = 128.0
        let analytic = 2 * B * T * (L * (2 * D * D + 2 * D * kv * hd + 3 * D * F) + D * V) + 4 * B * L * T * T * D
        #expect(relativeError(forwardMatrixFlops(g), analytic) < 1e-12)
        // grouped-query attention: one fused projection to 64 query heads and 8 key and 8 value heads of 128
        let qkv = g.ops.first { $0.phase == .forward && $0.kind == .matmul && $0.scope == "blocks.0.attention.qkv" }
        #expect(qkv.flatMap { g.tensor($0.outputs[0]) }?.shape == [4096, 8192 + 2 * 8 * 128])
        // the 8 query heads of each key/value head share its keys: scores [B·KV, g·T, T]
        #expect(g.ops.contains { $0.phase == .forward && $0.kind == .softmax && g.tensor($0.outputs[0])?.shape == [8, 8 * 4096, 4096] })
    }

    @Test func specsSizeAnyTransformer() throws {
        let spec = try ModelZoo.resolve("gpt:layers=24,hidden=2048,heads=16,seq=4096,vocab=131072")
        #expect(spec.transformer == TransformerConfig(family: .gpt, layers: 24, hidden: 2048, heads: 16, seq: 4096, vocab: 131072))
        #expect(spec.transformer?.ffnWidth == 8192)
        #expect(spec.defaultInputShape == [4096])
        #expect(spec.task == .languageModeling)
        #expect(spec.description == "gpt:layers=24,hidden=2048,heads=16,seq=4096,vocab=131072")
        // 24(12D² + 13D) + V·D + seq·D + 2D
        let d = 2048
        #expect(try parameterCount(spec.description) == 24 * (12 * d * d + 13 * d) + 131072 * d + 4096 * d + 2 * d)
        #expect(try ModelZoo.resolve(" bert-large:seq=128 ").description == "bert-large:seq=128")
        #expect(try ModelZoo.resolve("gpt-175b:seq=2048").transformer?.seq == 2048)
        #expect(try ModelZoo.resolve("vit-b16:image=384").defaultInputShape == [3, 384, 384])
        #expect(try ModelZoo.resolve("llama:hidden=4096").transformer?.ffnWidth == 11008)   // Llama's rule
        #expect(try ModelZoo.entry("gpt-13b:layers=2").name == "gpt-13b")
        // key order in the canonical text is fixed
        #expect(try ModelZoo.resolve("gpt:vocab=100,layers=2").description == "gpt:layers=2,vocab=100")
        // the graph carries the canonical spec
        #expect(try GraphRecorder.record(model: "gpt:vocab=100,layers=1,seq=8", batch: 1).model == "gpt:layers=1,seq=8,vocab=100")
        // language models accept fewer tokens than their context
        let g = try GraphRecorder.record(model: "gpt:layers=1,seq=64,vocab=100", batch: 3, inputShape: [16])
        #expect(g.ops.contains { $0.kind == .softmax && g.tensor($0.outputs[0])?.shape == [3 * 12, 16, 16] })
    }

    @Test(arguments: [
        ("gpt:layerz=2", "unknown key 'layerz'"),
        ("gpt:layers=x", "key 'layers'"),
        ("gpt:layers=0", "key 'layers'"),
        ("gpt:layers=-3", "key 'layers'"),
        ("gpt:hidden=100,heads=3", "key 'heads'"),
        ("gpt:image=224", "key 'image' does not apply"),
        ("vit-b16:vocab=10", "key 'vocab' does not apply"),
        ("vit-b16:image=200", "key 'image'"), ("vit-b16:patch=15", "key 'patch'"),
        ("llama2-70b:kv-heads=5", "key 'kv-heads'"),
        ("llama:hidden=96,heads=32", "key 'heads'"),
        ("resnet50:layers=3", "takes no keys"),
        ("gpt:layers=2,layers=3", "given twice"),
        ("gpt:layers", "not key=value"),
        ("gpt:", "no key=value"),
        ("gpt:hidden=99999999999999999999", "key 'hidden'"),
        ("bert:seq=128,predict=129", "key 'predict': 129 positions of a 128-token sequence"),
        ("bert:dropout=100", "key 'dropout' = 100 is larger"),
        ("gpt:predict=10", "key 'predict' does not apply"),
        ("gpt-176b", "unknown model 'gpt-176b'"),
    ])
    func badSpecsAreRejectedNamingTheKey(spec: String, message: String) {
        do {
            _ = try ModelZoo.resolve(spec)
            Issue.record("\(spec) was accepted")
        } catch let error as ModelError {
            #expect(error.description.contains(message), "\(spec): \(error)")
        } catch {
            Issue.record("\(spec): \(error)")
        }
        #expect(throws: ModelError.self) { _ = try GraphRecorder.record(model: spec, batch: 1) }
        #expect(throws: ModelError.self) { _ = try ModelZoo.make(spec, inputShape: [16], seed: 0) }
    }

    @Test func inputsThatDoNotFitAreRejected() throws {
        #expect(throws: ModelError.self) { try ModelZoo.make("gpt:layers=1,seq=8", inputShape: [9], seed: 0) }      // more tokens than positions
        #expect(throws: ModelError.self) { try ModelZoo.make("gpt:layers=1", inputShape: [3, 32, 32], seed: 0) }
        #expect(throws: ModelError.self) { try ModelZoo.make("vit-b16", inputShape: [1, 28, 28], seed: 0) }         // 28 is no multiple of 16
        #expect(throws: ModelError.self) { try ModelZoo.make("vit-b16:image=384", inputShape: [3, 224, 224], seed: 0) }
        #expect(try ModelZoo.make("vit-b16:patch=4", inputShape: [1, 28, 28], classes: 10, seed: 0).parameterCount > 0)
        #expect(throws: ModelError.self) { try GraphRecorder.record(model: "gpt-175b", batch: 0) }
        #expect(throws: ModelError.self) { try GraphRecorder.record(model: "gpt-175b", batch: 1, compute: true) }  // 650 GB: refused, not attempted
    }

    /// BERT pretraining as published: the MLM head on the masked positions only (`predict`), dropout on every layer
    /// and the attention probabilities (`dropout`, percent) in training; neither changes the parameters.
    @Test func bertPretrainingKeys() throws {
        let plain = try GraphRecorder.record(model: "bert:layers=2,hidden=32,heads=4,seq=16,vocab=50", batch: 2)
        let g = try GraphRecorder.record(model: "bert:layers=2,hidden=32,heads=4,seq=16,vocab=50,predict=3,dropout=10", batch: 2)
        #expect(g.summary.parameters == plain.summary.parameters)
        // one dropout on the probabilities and two on the layer's outputs, per layer
        #expect(g.ops.filter { $0.phase == .forward && $0.kind == .dropout }.count == 6)
        #expect(!plain.ops.contains { $0.kind == .dropout })
        let decoder = g.ops.first { $0.phase == .forward && $0.scope == "decoder" && $0.kind == .matmul }
        #expect(decoder.map { g.tensor($0.outputs[0])?.shape } == [2, 3, 50])
        #expect(g.summary.forwardFlops < plain.summary.forwardFlops)
        #expect(try ModelZoo.resolve("bert-large:seq=128,predict=19,dropout=10").description == "bert-large:seq=128,predict=19,dropout=10")
    }

    /// Shapes-only recording gives exactly the graph of a step computed for real, for each new family.
    @Test(arguments: ["gpt:layers=2,hidden=32,heads=4,seq=8,vocab=50", "bert:layers=2,hidden=32,heads=4,seq=8,vocab=50",
                      "llama:layers=2,hidden=32,heads=4,kv-heads=2,ffn=48,seq=8,vocab=50", "vit:layers=2,hidden=32,heads=4,image=16,patch=4"])
    func shapeOnlyRecordingEqualsARealStep(spec: String) throws {
        let real = try GraphRecorder.record(model: spec, batch: 2, optimizer: .adamw, classes: 10, compute: true)
        let shapes = try GraphRecorder.record(model: spec, batch: 2, optimizer: .adamw, classes: 10)
        #expect(real == shapes)
        #expect(real.ops.count > 50)
    }
}

/// Tokens counting up: input t, t+1, …; the target at each position is the next token (mod the vocabulary).
struct CountingTokens: Dataset {
    let vocabulary: Int, length: Int, count: Int
    var name: String { "counting-tokens" }
    var inputShape: [Int] { [length] }
    var targetShape: [Int] { [length] }
    var classNames: [String] { [] }
    func example(at index: Int) -> Example {
        let start = (index * 7) % vocabulary
        return Example(input: (0..<length).map { Float((start + $0) % vocabulary) }, label: -1,
                       target: (0..<length).map { Float((start + $0 + 1) % vocabulary) })
    }
}

@Suite(.serialized) struct LanguageModelTrainingTests {
    /// The new layers compute and differentiate correctly: tiny members of each family learn next-token prediction
    /// with real arithmetic through the `Trainer` (AdamW), and the loss falls.
    @Test(arguments: [("gpt:layers=2,hidden=64,heads=4,seq=16,vocab=100", "fp32"),
                      ("gpt:layers=2,hidden=64,heads=4,seq=16,vocab=100", "bf16"),
                      ("bert:layers=2,hidden=64,heads=4,seq=16,vocab=100", "fp32"),
                      ("llama:layers=2,hidden=64,heads=4,kv-heads=2,ffn=128,seq=16,vocab=100", "fp32")])
    func tinyLanguageModelsLearn(spec: String, precision: String) throws {
        let data = CountingTokens(vocabulary: 100, length: 16, count: 128)
        let config = TrainingConfig(model: spec, dataset: data.name, epochs: 3, batchSize: 16, learningRate: 1e-2, schedule: "constant",
                                    optimizer: "adamw", weightDecay: 0, precision: precision, seed: 3, checkpointEvery: 0, augment: false)
        let net = try ModelZoo.make(spec, inputShape: data.inputShape, seed: 3)
        let trainer = try Trainer(config: config, model: net, task: try ModelZoo.entry(spec).task,
                                  train: try DataLoader(dataset: data, batchSize: 16, shuffle: true, augment: false, seed: 3),
                                  eval: try DataLoader(dataset: CountingTokens(vocabulary: 100, length: 16, count: 32), batchSize: 16,
                                                       shuffle: false, augment: false, seed: 0),
                                  checkpointDirectory: nil)
        var losses: [Float] = []
        trainer.onStep = { losses.append($0.loss) }
        let reports = try trainer.run()
        #expect(losses.count == 24)
        #expect(abs(losses[0] - Float(Foundation.log(100.0))) < 1, "first loss \(losses[0]) vs ln 100")
        let first = losses.prefix(3).reduce(0, +) / 3, last = losses.suffix(3).reduce(0, +) / 3
        #expect(last < 0.5 * first, "\(spec) \(precision): loss \(first) → \(last)")
        #expect((reports.last?.eval?.accuracy ?? 0) > 0.5, "\(spec): token accuracy \(reports.last?.eval?.accuracy ?? 0)")
        #expect(trainer.recordedGraph?.ops.contains { $0.kind == .embedding } == true)
    }

    /// A causal model's output at a position does not depend on later tokens; BERT's does.
    @Test func causalAttentionSeesNoFuture() throws {
        for (spec, causal) in [("gpt:layers=2,hidden=32,heads=4,seq=8,vocab=20", true),
                               ("llama:layers=2,hidden=32,heads=4,kv-heads=2,seq=8,vocab=20", true),
                               ("bert:layers=2,hidden=32,heads=4,seq=8,vocab=20", false)] {
            let net = try ModelZoo.make(spec, inputShape: [8], seed: 1)
            let a = net(Tensor([1, 2, 3, 4, 5, 6, 7, 8], shape: [1, 8]))
            let b = net(Tensor([1, 2, 3, 4, 5, 6, 7, 19], shape: [1, 8]))
            let v = 20, before = 7 * v
            let same = (0..<before).allSatisfy { a[flat: $0] == b[flat: $0] }
            #expect(same == causal, "\(spec): earlier positions \(same ? "unchanged" : "changed") by the last token")
            #expect((before..<(8 * v)).contains { a[flat: $0] != b[flat: $0] })
        }
    }
}
