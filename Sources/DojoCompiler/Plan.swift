import DojoMachine
import DojoReport
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
    /// Recompute activations in the backward pass instead of keeping them: none, selective (attention's scores only,
    /// as Megatron's `--recompute-granularity selective`), op (PyTorch's per-op selective checkpointing as torchtitan's
    /// `selective_ac_option = 'op'` applies it: in each layer every second weight product and every op outside the
    /// fused attention kernel are recomputed), full.
    public var recompute: Recompute?
    /// Shard optimizer state (and gradients) over the data-parallel replicas (ZeRO-1/2).
    public var shardOptimizer: Bool?
    /// Also shard the parameters (ZeRO-3, PyTorch FSDP, JAX FSDP; Rajbhandari et al. 2020): each layer's weights are
    /// all-gathered before its forward and backward pass and its gradients reduce-scattered. Implies `shardOptimizer`.
    /// Written `zero=3` (`zero=1` is ZeRO-1/2).
    public var shardParameters: Bool?
    /// Sequence parallelism with tensor parallelism (layer norms and dropout split along the sequence).
    public var sequenceParallel: Bool?

    public enum Recompute: String, Sendable, Codable, Hashable, CaseIterable { case none, selective, op, full }

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
                    throw PlanError.syntax("recompute=\(value): expected none, selective, op or full")
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

extension PlanSpec {
    /// Checks the arithmetic of the fields that are set, against a global batch and (when given) the devices the plan
    /// must use exactly: each fixed count divides the samples it splits, dp × mb × micro is the global batch, options
    /// have what they act on (interleaving needs a pipeline, sequence parallelism tensor parallelism, ZeRO data
    /// parallelism), DP × TP × PP = devices. Throws `PlanError.inconsistent` naming the keys and numbers. One place
    /// for the CLI's `--plan` and the validation importer.
    public func checkArithmetic(globalBatch batch: Int, devices: Int? = nil) throws {
        let s = self
        let b = formatThousands(batch)
        if let v = s.virtualStages, v > 1 {
            guard let p = s.pipelineParallel, p > 1 else {
                throw PlanError.inconsistent("vp=\(v) interleaves pipeline stages: give pp=2 or more with it")
            }
        }
        if s.sequenceParallel == true, s.tensorParallel == 1 {
            throw PlanError.inconsistent("sp=1 splits layer norms along the sequence within tensor parallelism: it needs tp=2 or more, not tp=1")
        }
        if s.shardOptimizer == true, s.dataParallel == 1 {
            throw PlanError.inconsistent("zero=\(s.shardParameters == true ? 3 : 1) shards \(s.shardParameters == true ? "parameters and " : "")optimizer state over data-parallel replicas: it needs dp=2 or more, not dp=1")
        }
        if let d = s.dataParallel, batch % d != 0 {
            throw PlanError.inconsistent("dp=\(d): the global batch \(b) does not divide among \(formatThousands(d)) data-parallel replicas")
        }
        if let mb = s.microBatch, batch % mb != 0 {
            throw PlanError.inconsistent("mb=\(mb): the global batch \(b) does not divide into micro-batches of \(formatThousands(mb)) samples")
        }
        if let m = s.microBatches, batch % m != 0 {
            throw PlanError.inconsistent("micro=\(m): the global batch \(b) does not divide into \(formatThousands(m)) micro-batches")
        }
        if let mb = s.microBatch, let m = s.microBatches, batch % Limits.product(mb, m) != 0 {
            throw PlanError.inconsistent("mb=\(mb),micro=\(m): \(formatThousands(Limits.product(mb, m))) samples per replica do not divide the global batch \(b)")
        }
        if let d = s.dataParallel {
            let per = batch / d
            if let mb = s.microBatch, per % mb != 0 {
                throw PlanError.inconsistent("dp=\(d),mb=\(mb): each replica gets \(formatThousands(per)) samples, which micro-batches of \(mb) do not divide")
            }
            if let m = s.microBatches, per % m != 0 {
                throw PlanError.inconsistent("dp=\(d),micro=\(m): each replica gets \(formatThousands(per)) samples, which \(m) micro-batches do not divide")
            }
            if let mb = s.microBatch, let m = s.microBatches, Limits.product(mb, m) != per {
                throw PlanError.inconsistent("dp=\(d),mb=\(mb),micro=\(m): dp × mb × micro = \(formatThousands(Limits.product(d, mb, m))) samples, but the global batch is \(b)")
            }
        }
        if let n = devices, let d = s.dataParallel, let t = s.tensorParallel, let p = s.pipelineParallel,
           Limits.product(d, t, p) != n {
            throw PlanError.inconsistent("dp=\(d),tp=\(t),pp=\(p): DP × TP × PP = \(formatThousands(Limits.product(d, t, p))) devices, but the run used \(formatThousands(n))")
        }
    }
}
