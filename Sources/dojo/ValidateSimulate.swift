import DojoCompiler
import DojoMachine
import DojoSim

/// Simulates a validation case: its model (a zoo spec, recorded shape-only), at its precision, on its GPUs, at its
/// global batch, with every part of the plan its source states; the rest is the planner's choice. When a source
/// gives only the model-parallel product TP × PP, every split of it is tried and the fastest that fits is kept.
func simulateValidationCase(_ c: ValidationCase) throws -> SimulatedStep {
    // (with context parallelism: samples of 1/CP of each sequence, CP times as many: `simulationInputs`)
    let (spec, batch, assumptions) = try c.simulationInputs()
    let machine = try c.machine()
    let (graph, tokens) = try GraphCache.shared.graph(spec)
    var options = SimOptions()
    for (k, v) in assumptions.sorted(by: { $0.key < $1.key }) { try options.set(k, v) }
    let sim = try StepSimulator(workload: Workload(graph: graph, globalBatch: batch, precision: c.precision,
                                                   tokensPerSample: tokens),
                                machine: machine, costModel: machine.opCostModel(), options: options)
    var specs = [c.plan]
    if let mp = c.modelParallel, c.plan.tensorParallel == nil, c.plan.pipelineParallel == nil {
        specs = []
        var t = 1
        while t <= mp {
            if mp % t == 0 {
                var s = c.plan
                s.tensorParallel = t
                s.pipelineParallel = mp / t
                specs.append(s)
            }
            t += 1
        }
    }
    var best: Prediction?
    var lastError: Error?
    for s in specs {
        do {
            let p = try sim.predict(s, deviceLimit: c.gpus)
            if best == nil || p.stepSeconds < best!.stepSeconds { best = p }
        } catch { lastError = error }
    }
    guard let p = best else { throw ValidationRunError("\(lastError.map { "\($0)" } ?? "no plan")") }
    return SimulatedStep(stepSeconds: p.stepSeconds, globalBatch: c.globalBatch, devices: p.devicesUsed, plan: p.planText,
                         note: "bound: \(p.bound), MFU \(Int((p.mfu * 100).rounded()))%")
}
