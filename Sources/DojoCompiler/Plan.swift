import DojoMachine
import Foundation
/// A parallelism plan, as a user writes it (`--plan dp=64,tp=8,pp=4,mb=2`) or a published run states it (the
/// validation CSV's `parallelism` column). Every field left nil is the planner's choice.
public struct PlanSpec: Sendable, Equatable, Hashable, Codable {
    /// Data-parallel replicas.
    public var dataParallel: Int?
    /// Tensor (intra-layer) parallel ways.
    public var tensorParallel: Int?
    /// Pipeline stages.
    public var pipelineParallel: Int?
    /// Samples per micro-batch on one replica.
    public var microBatch: Int?
    /// Micro-batches per step on one replica (gradient accumulation steps, or pipeline micro-batches).
    public var microBatches: Int?
    /// Interleaved pipeline: model chunks per stage (Megatron's "virtual pipeline"); 1 = plain 1F1B.
    public var virtualStages: Int?
    /// Recompute activations in the backward pass instead of keeping them: none, selective (attention only), full.
    public var recompute: Recompute?
    /// Shard optimizer state (and gradients) over the data-parallel replicas (ZeRO-1/2).
    public var shardOptimizer: Bool?
    /// Also shard the parameters (ZeRO-3, PyTorch FSDP, JAX FSDP; Rajbhandari et al. 2020): each layer's weights are
    /// all-gathered before its forward and backward pass and its gradients reduce-scattered. Implies `shardOptimizer`.
    /// Written `zero=3` (`zero=1` is ZeRO-1/2).
    public var shardParameters: Bool?
    /// Sequence parallelism with tensor parallelism (layer norms and dropout split along the sequence).
    public var sequenceParallel: Bool?

    public enum Recompute: String, Sendable, Codable, Hashable, CaseIterable { case none, selective, full }

    public init(dataParallel: Int? = nil, tensorParallel: Int? = nil, pipelineParallel: Int? = nil,
                microBatch: Int? = nil, microBatches: Int? = nil, virtualStages: Int? = nil,
                recompute: Recompute? = nil, shardOptimizer: Bool? = nil, sequenceParallel: Bool? = nil,
                shardParameters: Bool? = nil) {
        self.dataParallel = dataParallel; self.tensorParallel = tensorParallel; self.pipelineParallel = pipelineParallel
        self.microBatch = microBatch; self.microBatches = microBatches; self.virtualStages = virtualStages
        self.recompute = recompute; self.shardOptimizer = shardParameters == true ? true : shardOptimizer
        self.sequenceParallel = sequenceParallel; self.shardParameters = shardParameters
    }

    /// Keys of the `--plan` syntax, in the order they print.
    public static let keys = ["dp", "tp", "pp", "mb", "micro", "vp", "recompute", "zero", "sp"]

    /// Parses `dp=64,tp=8,pp=4,mb=2,micro=16,vp=3,recompute=selective,zero=1,sp=1`; every key optional.
    public init(parsing text: String) throws {
        self.init()
        var seen = Set<String>()
        let parts = text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }).filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw PlanError.syntax("the plan is empty; give KEY=VALUE pairs (keys: \(PlanSpec.keys.joined(separator: ", ")))") }
        for part in parts {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw PlanError.syntax("'\(part)' is not KEY=VALUE (keys: \(PlanSpec.keys.joined(separator: ", ")))") }
            let key = kv[0].lowercased(), value = kv[1]
            guard seen.insert(key).inserted else { throw PlanError.syntax("\(key) is given twice") }
            func positive() throws -> Int {
                guard let n = Int(value), n >= 1 else {
                    if !value.isEmpty, value.allSatisfy(\.isNumber), !value.allSatisfy({ $0 == "0" }) { throw PlanError.syntax("\(key)=\(value) is too large") }
                    throw PlanError.syntax("\(key)=\(value): expected a whole number ≥ 1")
                }
                // Bounds with their reasons (Limits): beyond them products of the plan's counts overflow.
                let bound: (Int, String) = switch key {
                case "dp": (Limits.devices, "the most devices a machine may have")
                case "tp", "pp": (Limits.modelParallel, "a sane maximum for splitting one model")
                case "vp": (Limits.virtualStages, "a sane maximum of chunks per stage")
                default: (Limits.batch, "the most samples a step may have")
                }
                guard n <= bound.0 else { throw PlanError.syntax("\(key)=\(value) is more than \(bound.0) (\(bound.1))") }
                return n
            }
            func flag() throws -> Bool {
                switch value.lowercased() {
                case "1", "true", "yes", "on": return true
                case "0", "false", "no", "off": return false
                default: throw PlanError.syntax("\(key)=\(value): expected 1 or 0")
                }
            }
            switch key {
            case "dp": dataParallel = try positive()
            case "tp": tensorParallel = try positive()
            case "pp": pipelineParallel = try positive()
            case "mb": microBatch = try positive()
            case "micro": microBatches = try positive()
            case "vp": virtualStages = try positive()
            case "recompute":
                guard let r = Recompute(rawValue: value.lowercased()) else {
                    throw PlanError.syntax("recompute=\(value): expected none, selective or full")
                }
                recompute = r
            case "zero":
                // zero=1 (or 2): optimizer state and gradients sharded; zero=3: the parameters too, as FSDP does.
                switch value.lowercased() {
                case "3": shardOptimizer = true; shardParameters = true
                case "2": shardOptimizer = true
                default:
                    do { shardOptimizer = try flag() } catch {
                        throw PlanError.syntax("zero=\(value): expected 0 (off), 1 or 2 (optimizer state and gradients sharded) or 3 (parameters too, as FSDP)")
                    }
                }
            case "sp": sequenceParallel = try flag()
            default: throw PlanError.syntax("unknown plan key '\(kv[0])' (keys: \(PlanSpec.keys.joined(separator: ", ")))")
            }
        }
    }

    /// The `--plan` form of the fields that are set.
    public var description: String {
        var parts: [String] = []
        if let v = dataParallel { parts.append("dp=\(v)") }
        if let v = tensorParallel { parts.append("tp=\(v)") }
        if let v = pipelineParallel { parts.append("pp=\(v)") }
        if let v = microBatch { parts.append("mb=\(v)") }
        if let v = microBatches { parts.append("micro=\(v)") }
        if let v = virtualStages { parts.append("vp=\(v)") }
        if let v = recompute { parts.append("recompute=\(v.rawValue)") }
        if shardParameters == true { parts.append("zero=3") } else if let v = shardOptimizer { parts.append("zero=\(v ? 1 : 0)") }
        if let v = sequenceParallel { parts.append("sp=\(v ? 1 : 0)") }
        return parts.joined(separator: ",")
    }
}

public enum PlanError: Error, Sendable, Equatable, CustomStringConvertible {
    case syntax(String)
    case doesNotFit(String)
    case inconsistent(String)

    public var description: String {
        switch self {
        case .syntax(let m): return "plan: \(m)"
        case .doesNotFit(let m): return "no plan fits: \(m)"
        case .inconsistent(let m): return "plan: \(m)"
        }
    }
}
