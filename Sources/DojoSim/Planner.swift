import DojoCompiler
import DojoGraph
import DojoMachine
import Foundation

/// A family of plans the search considered, and what became of it.
public struct FamilyReport: Sendable, Equatable, Codable {
    public var family: String
    /// The family's fastest plan that fits, if any.
    public var best: PlanSpec?
    public var stepSeconds: Double?
    /// Why it was not chosen ("chosen" for the winner).
    public var verdict: String
}

/// The outcome of a plan search.
public struct SearchResult: Sendable {
    public var best: PlanEvaluation
    public var families: [FamilyReport]
    public var evaluated: Int
}

extension StepSimulator {
    /// Every plan the search tries, within what `spec` fixes and at most `deviceLimit` devices.
    public func candidates(_ spec: PlanSpec, deviceLimit: Int? = nil) throws -> [ResolvedPlan] {
        let n = min(topology.devices, deviceLimit ?? topology.devices)
        let batch = workload.globalBatch
        let pow2 = (0..<21).map { 1 << $0 }
        var tps = pow2.filter { $0 <= 64 }
        if topology.kind == .d1 { tps += [5, 25] }
        tps = spec.tensorParallel.map { [$0] } ?? tps.filter { $0 <= n }.sorted()
        let pps = spec.pipelineParallel.map { [$0] } ?? pow2.filter { $0 <= min(n, layerCount) }
        let hasScores = attentionScore.contains(true)
        if spec.recompute == .op && !hasScores {
            throw PlanError.inconsistent("recompute=op is torchtitan's per-op checkpointing of transformer blocks, and this model has no attention; use recompute=none or full")
        }
        let recomputes: [PlanSpec.Recompute] = spec.recompute.map { [$0] } ?? (hasScores ? [.none, .selective, .op, .full] : [.none, .full])
        let fixedDevices = (spec.tensorParallel ?? 1) * (spec.pipelineParallel ?? 1) * (spec.dataParallel ?? 1)
        if fixedDevices > n {
            throw PlanError.inconsistent("dp × tp × pp = \(spec.dataParallel ?? 1) × \(spec.tensorParallel ?? 1) × \(spec.pipelineParallel ?? 1) = \(fixedDevices) devices, but \(deviceLimit == nil ? "the machine has" : "at most") \(n) may be used")
        }
        if let p = spec.pipelineParallel, p > layerCount {
            throw PlanError.inconsistent("pp=\(p) stages, but the model has only \(layerCount) layers to place")
        }
        if let d = spec.dataParallel, batch % d != 0 {
            throw PlanError.inconsistent("global batch \(batch) does not divide among dp=\(d) replicas")
        }
        var out: [ResolvedPlan] = []
        for t in tps {
            for p in pps where t * p <= n {
                let maxD = n / (t * p)
                let d: Int
                if let fixed = spec.dataParallel {
                    guard fixed <= maxD else { continue }
                    d = fixed
                } else {
                    // the most replicas that leave whole micro-batches of any size the plan fixes
                    let perStep = (spec.microBatch ?? 1) * (spec.microBatches ?? 1)
                    guard batch % perStep == 0 else { continue }
                    let room = batch / perStep
                    guard let best = (1...min(maxD, room)).reversed().first(where: { room % $0 == 0 }) else { continue }
                    d = best
                }
                let perReplica = batch / d
                var mbs: [Int]
                if let mb = spec.microBatch {
                    guard perReplica % mb == 0 else { continue }
                    mbs = [mb]
                } else if let micro = spec.microBatches {
                    guard perReplica % micro == 0 else { continue }
                    mbs = [perReplica / micro]
                } else {
                    mbs = pow2.filter { $0 <= perReplica && perReplica % $0 == 0 }
                    if !mbs.contains(perReplica) { mbs.append(perReplica) }
                }
                let zeros = spec.shardOptimizer.map { [$0] } ?? (d > 1 ? [false, true] : [false])
                // interleaving needs a pipeline; sequence parallelism needs tensor parallelism
                if (spec.virtualStages ?? 1) > 1 && p == 1 { continue }
                if spec.sequenceParallel == true && t == 1 { continue }
                for mb in mbs {
                    let m = perReplica / mb
                    if let micro = spec.microBatches, micro != m { continue }
                    for rc in recomputes {
                        for z in zeros {
                            out.append(ResolvedPlan(dataParallel: d, tensorParallel: t, pipelineParallel: p, microBatch: mb,
                                                    microBatches: m, virtualStages: spec.virtualStages ?? 1, recompute: rc,
                                                    shardOptimizer: z, sequenceParallel: spec.sequenceParallel ?? (t > 1),
                                                    shardParameters: z && spec.shardParameters == true && d > 1))
                        }
                    }
                }
            }
        }
        return out
    }

    /// The fastest plan that fits, within what `spec` fixes, with a verdict for every family of plans.
    public func search(_ spec: PlanSpec = PlanSpec(), deviceLimit: Int? = nil) throws -> SearchResult {
        var spec = spec
        if case .cpu = machine.system {
            // CPU hosts run OpenDojo's own engine, which trains data- and pipeline-parallel plans: what a plan leaves
            // open is searched among those (a user can still ask for the others by name).
            spec.tensorParallel = spec.tensorParallel ?? 1
            spec.virtualStages = spec.virtualStages ?? 1
            spec.recompute = spec.recompute ?? PlanSpec.Recompute.none
            spec.shardOptimizer = spec.shardOptimizer ?? false
            spec.sequenceParallel = spec.sequenceParallel ?? false
        }
        let plans = try candidates(spec, deviceLimit: deviceLimit)
        var bestByFamily: [String: PlanEvaluation] = [:]
        var closestByFamily: [String: PlanEvaluation] = [:]   // least memory over, among those that do not fit
        var tried: Set<String> = []
        var evaluated = 0
        for plan in plans {
            guard let e = evaluate(plan) else { continue }
            evaluated += 1
            let f = plan.family
            tried.insert(f)
            if e.fits {
                if let b = bestByFamily[f], b.stepSeconds <= e.stepSeconds { continue }
                bestByFamily[f] = e
            } else {
                let over = e.memory.total / e.memory.capacity
                if let c = closestByFamily[f], c.memory.total / c.memory.capacity <= over { continue }
                closestByFamily[f] = e
            }
        }
        let order = ["data parallel", "tensor parallel", "pipeline", "tensor + pipeline"]
        guard let best = bestByFamily.values.min(by: { $0.stepSeconds < $1.stepSeconds || ($0.stepSeconds == $1.stepSeconds && $0.plan.devices < $1.plan.devices) }) else {
            let closest = closestByFamily.values.min { $0.memory.total / $0.memory.capacity < $1.memory.total / $1.memory.capacity }
            if let c = closest {
                throw PlanError.doesNotFit(noFitMessage(c))
            }
            let n = min(topology.devices, deviceLimit ?? topology.devices)
            throw PlanError.doesNotFit("no plan can be laid out for batch \(workload.globalBatch) on \(n) \(topology.deviceName) devices")
        }
        var families: [FamilyReport] = []
        for f in order {
            if let b = bestByFamily[f] {
                let verdict = b.plan == best.plan ? "chosen"
                    : String(format: "slower: %.2f× the chosen plan's step time", b.stepSeconds / best.stepSeconds)
                families.append(FamilyReport(family: f, best: b.plan.spec, stepSeconds: b.stepSeconds, verdict: verdict))
            } else if let c = closestByFamily[f] {
                families.append(FamilyReport(family: f, best: nil, stepSeconds: nil, verdict: "does not fit: " + noFitMessage(c)))
            } else if !tried.contains(f) {
                let why: String
                let tensor = f.hasPrefix("tensor"), pipe = f.hasSuffix("pipeline")
                if tensor && spec.tensorParallel == 1 { why = "excluded by tp=1" }
                else if pipe && spec.pipelineParallel == 1 { why = "excluded by pp=1" }
                else if !tensor && (spec.tensorParallel ?? 1) > 1 { why = "excluded by tp=\(spec.tensorParallel!)" }
                else if !pipe && (spec.pipelineParallel ?? 1) > 1 { why = "excluded by pp=\(spec.pipelineParallel!)" }
                else { why = topology.devices == 1 ? "needs more than one device" : "no layout for this batch, model and device count" }
                families.append(FamilyReport(family: f, best: nil, stepSeconds: nil, verdict: "not possible: " + why))
            }
        }
        return SearchResult(best: best, families: families, evaluated: evaluated)
    }

    func noFitMessage(_ e: PlanEvaluation) -> String {
        let m = e.memory
        let what = topology.kind == .d1 ? (topology.bulkMemoryBytes > 0 ? "SRAM + DIP HBM share" : "SRAM; a bare D1 has no DIP") : "HBM"
        return "even the closest plan (\(e.plan.spec.description)) needs \(formatBytesSI(m.total)) per \(topology.deviceName) "
            + "(weights \(formatBytesSI(m.weights)), gradients \(formatBytesSI(m.gradients)), optimizer state \(formatBytesSI(m.optimizerState)), "
            + "activations \(formatBytesSI(m.activations))) but one has \(formatBytesSI(m.capacity)) usable (\(what)): "
            + String(format: "%.1f× too much", m.total / m.capacity)
    }
}

/// Bytes with a decimal prefix, as machine figures are written (1 GB = 1e9 B).
func formatBytesSI(_ b: Double) -> String {
    let units = [(1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")]
    for (s, u) in units where b >= s { return String(format: "%.3g %@", b / s, u) }
    return String(format: "%.0f B", b)
}
