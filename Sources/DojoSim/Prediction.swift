import DojoCompiler
import DojoGraph
import DojoMachine
import Foundation

/// What `dojo sim` reports: the plan, the step time and what it means, where the time goes, memory, the costliest
/// ops, and how the search decided.
public struct Prediction: Sendable, Codable {
    public var model: String
    public var machine: String
    public var device: String
    public var devices: Int
    public var devicesUsed: Int
    public var precision: Precision
    public var globalBatch: Int
    public var plan: ResolvedPlan
    public var planText: String
    public var stepSeconds: Double
    public var samplesPerSecond: Double
    public var tokensPerSecond: Double?
    /// Model FLOPs (the recorded forward and backward pass, no recomputation) per second over the peak of the
    /// devices used at this precision.
    public var mfu: Double
    public var modelFlopsPerStep: Double
    public var peakFlopsPerDevice: Double
    public var breakdown: Breakdown
    public var memory: MemoryUse
    public var topOps: [OpReport]
    public var families: [FamilyReport]
    public var plansEvaluated: Int
    /// The bound of the step: the largest part of the breakdown.
    public var bound: String
}

extension StepSimulator {
    /// Searches (within `spec`) and reports the chosen plan. A fully given plan is evaluated as given.
    public func predict(_ spec: PlanSpec = PlanSpec(), deviceLimit: Int? = nil) throws -> Prediction {
        let result = try search(spec, deviceLimit: deviceLimit)
        return prediction(result.best, families: result.families, evaluated: result.evaluated)
    }

    func prediction(_ e: PlanEvaluation, families: [FamilyReport], evaluated: Int) -> Prediction {
        let g = workload.globalBatch
        let flops = modelFlopsPerSample * Double(g)
        let peak = costModel.peakFlops(workload.precision)
        let sps = Double(g) / e.stepSeconds
        let bound = e.breakdown.parts.max { $0.1 < $1.1 }?.0 ?? "compute"
        return Prediction(model: workload.graph.model, machine: machine.name, device: topology.deviceName,
                          devices: topology.devices, devicesUsed: e.plan.devices, precision: workload.precision,
                          globalBatch: g, plan: e.plan, planText: e.plan.spec.description, stepSeconds: e.stepSeconds,
                          samplesPerSecond: sps, tokensPerSecond: workload.tokensPerSample.map { sps * Double($0) },
                          mfu: flops / (e.stepSeconds * Double(e.plan.devices) * peak), modelFlopsPerStep: flops,
                          peakFlopsPerDevice: peak, breakdown: e.breakdown, memory: e.memory,
                          topOps: costliestOps(e.plan), families: families, plansEvaluated: evaluated, bound: bound)
    }
}
