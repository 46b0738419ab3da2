import Foundation

/// The size of a transformer in the zoo: what the keys of a model spec set.
public struct TransformerConfig: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        /// GPT-2/GPT-3 decoder: learned positions, pre-LayerNorm, causal attention, GELU MLP, tied output layer.
        case gpt
        /// BERT encoder with its masked-language-model head, post-LayerNorm.
        case bert
        /// Llama 2 decoder: rotary positions, pre-RMSNorm, causal (grouped-query) attention, SwiGLU, untied output.
        case llama
        /// Vision Transformer classifier: patch embedding, class token, learned positions, pre-LayerNorm.
        case vit

        /// The spec keys that apply to this family.
        public var keys: [String] {
            switch self {
            case .gpt: return ["layers", "hidden", "heads", "ffn", "seq", "vocab"]
            case .bert: return ["layers", "hidden", "heads", "ffn", "seq", "vocab", "predict", "dropout"]
            case .llama: return ["layers", "hidden", "heads", "kv-heads", "ffn", "seq", "vocab"]
            case .vit: return ["layers", "hidden", "heads", "ffn", "image", "patch"]
            }
        }
    }

    public var family: Family
    public var layers: Int
    /// d_model.
    public var hidden: Int
    public var heads: Int
    /// Key/value heads (grouped-query attention); `heads` unless set (Llama only).
    public var kvHeads: Int?
    /// Width of the feed-forward layer; nil: the family's rule from `hidden` (see `ffnWidth`).
    public var ffn: Int?
    /// Language models: tokens per example, and the learned positions (GPT, BERT) or rotary context (Llama).
    public var seq: Int
    public var vocab: Int
    /// ViT: image side (nil: the data's, 224 by default) and patch side (nil: ModelZoo.defaultPatch — the largest divisor of the side up to side/7, at most 16).
    public var image: Int?
    public var patch: Int?
    /// BERT: positions of each sequence the masked-language-model head runs on (the masked ones: BERT masks 15 %,
    /// 20 of 128 and 76-80 of 512 in the published recipes), as Google's `gather_indexes` and NVIDIA's
    /// `dense_seq_output` do; nil: every position (the loss at every token).
    public var predict: Int?
    /// BERT: dropout in percent after attention and after the MLP, and on the attention probabilities, in training
    /// (Devlin et al.: 10); nil: none.
    public var dropout: Int?

    public init(family: Family, layers: Int, hidden: Int, heads: Int, kvHeads: Int? = nil, ffn: Int? = nil, seq: Int = 0,
                vocab: Int = 0, image: Int? = nil, patch: Int? = nil, predict: Int? = nil, dropout: Int? = nil) {
        self.family = family; self.layers = layers; self.hidden = hidden; self.heads = heads; self.kvHeads = kvHeads
        self.ffn = ffn; self.seq = seq; self.vocab = vocab; self.image = image; self.patch = patch
        self.predict = predict; self.dropout = dropout
    }

    /// The feed-forward width: `ffn` when set, else 4·hidden (GPT, BERT, ViT), or for Llama 2/3 of 4·hidden
    /// rounded up to a multiple of 256 (Meta's llama `model.py`: `multiple_of` = 256; 4096 → 11008).
    public var ffnWidth: Int {
        if let ffn { return ffn }
        switch family {
        case .llama: let h = 2 * (4 * hidden) / 3; return (h + 255) / 256 * 256
        default: return 4 * hidden
        }
    }

    public var keyValueHeads: Int { kvHeads ?? heads }
    public var isLanguageModel: Bool { family != .vit }
}

/// A model named by a spec: `NAME[:key=value,...]`, e.g. `gpt-175b`, `bert-large:seq=128`, `vit-b16:image=384`,
/// `gpt:layers=24,hidden=2048,heads=16,seq=4096,vocab=131072`. NAME is a zoo entry; keys change a
/// transformer's size (see `TransformerConfig.Family.keys`). Built with `ModelZoo.make`, recorded with `GraphRecorder`.
public struct ModelSpec: Sendable, Equatable, CustomStringConvertible {
    /// Every key the syntax knows.
    public static let allKeys = ["layers", "hidden", "heads", "kv-heads", "ffn", "seq", "vocab", "image", "patch", "predict", "dropout"]

    /// The zoo entry it starts from.
    public let entry: ModelZoo.Entry
    /// The keys given, in the order of `allKeys`.
    public let overrides: [(key: String, value: Int)]
    /// The resolved size of a transformer (nil for the CNNs and the MLP).
    public let transformer: TransformerConfig?

    public static func == (a: ModelSpec, b: ModelSpec) -> Bool {
        a.entry.name == b.entry.name && a.transformer == b.transformer
            && a.overrides.map(\.key) == b.overrides.map(\.key) && a.overrides.map(\.value) == b.overrides.map(\.value)
    }

    /// The canonical text: the entry's name, then the keys given in a fixed order.
    public var description: String {
        overrides.isEmpty ? entry.name : entry.name + ":" + overrides.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    public var task: Task { entry.task }

    /// The input of one example when a user names no data: [tokens] for language models, [3, image, image] for
    /// ViT (224 unless set), the publications' sizes for the rest.
    public var defaultInputShape: [Int] {
        if let t = transformer {
            if t.isLanguageModel { return [t.seq] }
            let side = t.image ?? 224
            return [3, side, side]
        }
        switch entry.name {
        case "mlp", "small-cnn": return [1, 28, 28]
        case "occupancy": return [4, 3, 32, 32]
        default: return [3, 224, 224]
        }
    }

    /// Parses and checks a spec. Errors (`ModelError`) name the key: unknown, not for this model, repeated,
    /// not a positive whole number, out of range, or heads that do not divide the width.
    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let name: String, rest: String?
        if let colon = trimmed.firstIndex(of: ":") {
            name = String(trimmed[..<colon]); rest = String(trimmed[trimmed.index(after: colon)...])
        } else {
            name = trimmed; rest = nil
        }
        guard let entry = ModelZoo.entries.first(where: { $0.name == name }) else {
            throw ModelError("unknown model '\(name)'; choose one of: \(ModelZoo.names.joined(separator: ", ")) "
                             + "(transformers take keys: NAME:key=value,...)")
        }
        var given: [String: Int] = [:]
        if let rest {
            guard !rest.isEmpty else { throw ModelError("model spec '\(text)': no key=value after ':'") }
            for item in rest.split(separator: ",", omittingEmptySubsequences: false) {
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = pair[0].trimmingCharacters(in: .whitespaces)
                guard pair.count == 2, !key.isEmpty else {
                    throw ModelError("model spec '\(text)': '\(item)' is not key=value")
                }
                guard ModelSpec.allKeys.contains(key) else {
                    throw ModelError("model spec '\(text)': unknown key '\(key)'; keys: \(ModelSpec.allKeys.joined(separator: ", "))")
                }
                guard let family = entry.transformer?.family else {
                    throw ModelError("model spec '\(text)': key '\(key)' does not apply to \(name), which takes no keys "
                                     + "(keys size the transformers: \(ModelZoo.entries.filter { $0.transformer != nil }.map(\.name).joined(separator: ", ")))")
                }
                guard family.keys.contains(key) else {
                    throw ModelError("model spec '\(text)': key '\(key)' does not apply to \(name); its keys: \(family.keys.joined(separator: ", "))")
                }
                guard given[key] == nil else { throw ModelError("model spec '\(text)': key '\(key)' is given twice") }
                let raw = pair[1].trimmingCharacters(in: .whitespaces)
                guard let value = Int(raw), value >= 1 else {
                    throw ModelError("model spec '\(text)': key '\(key)' needs a whole number of at least 1, got '\(raw)'")
                }
                let limit = ModelSpec.limits[key]!
                guard value <= limit else {
                    throw ModelError("model spec '\(text)': key '\(key)' = \(value) is larger than this build handles (\(limit))")
                }
                given[key] = value
            }
        }
        self.entry = entry
        self.overrides = ModelSpec.allKeys.compactMap { k in given[k].map { (k, $0) } }
        guard var t = entry.transformer else { self.transformer = nil; return }
        if let v = given["layers"] { t.layers = v }
        if let v = given["hidden"] { t.hidden = v }
        if let v = given["heads"] { t.heads = v }
        if let v = given["kv-heads"] { t.kvHeads = v }
        if let v = given["ffn"] { t.ffn = v }
        if let v = given["seq"] { t.seq = v }
        if let v = given["vocab"] { t.vocab = v }
        if let v = given["image"] { t.image = v }
        if let v = given["patch"] { t.patch = v }
        if let v = given["predict"] { t.predict = v }
        if let v = given["dropout"] { t.dropout = v }
        // a Llama preset's grouping stays only while it still divides the heads
        if given["heads"] != nil, given["kv-heads"] == nil, let kv = t.kvHeads, t.heads % kv != 0 { t.kvHeads = nil }
        try ModelSpec.check(t, text: text, given: Set(given.keys))
        self.transformer = t
    }

    /// Upper bounds that keep every tensor's element count far inside Int (beyond any published model).
    static let limits: [String: Int] = ["layers": 4096, "hidden": 1 << 17, "heads": 4096, "kv-heads": 4096, "ffn": 1 << 20,
                                        "seq": 1 << 20, "vocab": 1 << 24, "image": 1 << 14, "patch": 1 << 14, "predict": 1 << 20,
                                        "dropout": 99]

    static func check(_ t: TransformerConfig, text: String, given: Set<String>) throws {
        func fail(_ key: String, _ why: String) -> ModelError { ModelError("model spec '\(text)': key '\(key)': \(why)") }
        guard t.hidden % t.heads == 0 else { throw fail("heads", "\(t.heads) heads do not divide hidden \(t.hidden)") }
        guard t.heads <= t.hidden else { throw fail("heads", "\(t.heads) heads for hidden \(t.hidden)") }
        if t.family == .llama {
            guard t.heads % t.keyValueHeads == 0 else {
                throw fail("kv-heads", "\(t.keyValueHeads) key/value heads do not divide \(t.heads) heads")
            }
            guard (t.hidden / t.heads) % 2 == 0 else {
                throw fail("heads", "rotary positions need an even head dimension; hidden \(t.hidden) / \(t.heads) heads = \(t.hidden / t.heads)")
            }
        }
        if let p = t.predict, p > t.seq { throw fail("predict", "\(p) positions of a \(t.seq)-token sequence") }
        if let image = t.image, let patch = t.patch, image % patch != 0 {
            throw fail(given.contains("image") ? "image" : "patch", "image side \(image) is not a multiple of patch \(patch)")
        }
        if t.family == .bert || t.family == .gpt || t.family == .llama {
            guard t.vocab >= 2 else { throw fail("vocab", "a vocabulary needs at least 2 tokens, got \(t.vocab)") }
        }
    }
}

extension ModelZoo {
    /// Resolves a model spec `NAME[:key=value,...]` (see `ModelSpec`); errors name the key.
    public static func resolve(_ spec: String) throws -> ModelSpec { try ModelSpec(spec) }
}
