import ArgumentParser
import DojoCompiler
import DojoGraph
import DojoMachine
import DojoNN
import DojoReport
import DojoSim
import DojoTensor
import Foundation

/// The options every prediction command shares: what to train, how, and under which assumptions.
struct WorkloadOptions: ParsableArguments {
    @Option(name: .long, help: "Model: a zoo name or spec (dojo models), e.g. resnet50, gpt-175b, gpt:layers=24,hidden=2048.")
    var model: String = "resnet50"

    @Option(name: .long, help: "Global batch: samples per training step over all devices.")
    var batch: Int = 256

    @Option(name: .long, help: "Precision: fp32, tf32, fp16, bf16, cfp8 (Dojo) or fp8 (GPU).")
    var precision: String = "bf16"

    @Option(name: .long, help: ArgumentHelp("Fix parts of the plan: dp=,tp=,pp=,mb=,micro=,vp=,recompute=none|selective|full,zero=0|1,sp=0|1; the rest is searched.", valueName: "plan"))
    var plan: String?

    @Option(name: .long, help: "Use at most this many devices (D1 dies or GPUs) of the machine.")
    var devices: Int?

    @Option(name: .customLong("assume"), help: ArgumentHelp("Change a step-model assumption: \(SimOptions.keys.joined(separator: ", ")) (repeatable).", valueName: "key=value"))
    var assumptions: [String] = []

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard Precision(name: precision) != nil else {
            throw ValidationError("--precision '\(precision)' is not one of fp32, tf32, fp16, bf16, cfp8, fp8")
        }
        if let devices, devices < 1 { throw ValidationError("--devices must be at least 1, got \(devices)") }
        if let plan { do { _ = try PlanSpec(parsing: plan) } catch { throw ValidationError("--plan: \(error)") } }
        _ = try simOptions()
    }

    var resolvedPrecision: Precision { Precision(name: precision) ?? .bf16 }
    func planSpec() throws -> PlanSpec { try plan.map { try PlanSpec(parsing: $0) } ?? PlanSpec() }

    func simOptions() throws -> SimOptions {
        var o = SimOptions()
        for a in assumptions {
            let (k, v) = try splitKeyValue(a, flag: "--assume")
            do { try o.set(k, v) } catch { throw ValidationError("--assume: \(error)") }
        }
        return o
    }
}

/// Splits KEY=VALUE.
func splitKeyValue(_ s: String, flag: String) throws -> (String, String) {
    guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
        throw ValidationError("\(flag) '\(s)' is not KEY=VALUE")
    }
    return (String(s[..<eq]), String(s[s.index(after: eq)...]))
}

/// A machine by preset name, scaled preset or file, with `--set` overrides.
func resolveMachine(_ spec: String, overrides: [String] = []) throws -> Machine {
    var m = try Machine.resolve(spec)
    var changes: [String: String] = [:]
    for o in overrides {
        let (k, v) = try splitKeyValue(o, flag: "--set")
        changes[k] = v
    }
    if !changes.isEmpty { m = try m.with(changes) }
    return m
}

/// Graphs recorded once per model spec in this process (recording is shape-only and cheap, but a sweep or a
/// comparison asks for the same one many times).
final class GraphCache: @unchecked Sendable {
    static let shared = GraphCache()
    private var graphs: [String: (Graph, Int?)] = [:]
    private let lock = NSLock()
    func graph(_ model: String) throws -> (Graph, Int?) {
        lock.lock(); defer { lock.unlock() }
        if let g = graphs[model] { return g }
        let g = try recordSimulationGraph(model)
        graphs[model] = g
        return g
    }
}

/// One training step of `model` (a zoo name or spec) at batch 1, recorded shape-only (no arithmetic, no memory)
/// with the model's own optimizer (SGD with momentum for the CNNs, AdamW for transformers), and the tokens in one
/// sample for language models.
func recordSimulationGraph(_ model: String) throws -> (Graph, Int?) {
    let resolved = try ModelZoo.resolve(model)
    let optimizer: GraphRecorder.OptimizerChoice = resolved.entry.optimizer == "sgd" ? .sgd : .adamw
    let graph = try GraphRecorder.record(model: model, batch: 1, optimizer: optimizer)
    let tokens = resolved.transformer.flatMap { $0.isLanguageModel ? $0.seq : nil }
    return (graph, tokens)
}

/// A simulator for the workload on a machine.
func makeSimulator(_ w: WorkloadOptions, machine: Machine) throws -> StepSimulator {
    let (graph, tokens) = try GraphCache.shared.graph(w.model)
    let workload = Workload(graph: graph, globalBatch: w.batch, precision: w.resolvedPrecision, tokensPerSample: tokens)
    // PlanError, SimError and MachineError describe themselves; ArgumentParser prints "Error: …" and exits 1.
    return try StepSimulator(workload: workload, machine: machine, costModel: machine.opCostModel(), options: try w.simOptions())
}

/// What the step `graph` (recorded by `dojo train` at its own batch) would cost on each machine, at the run's
/// precision: a table for the end of a training run (and its start, with --predict).
func trainingPredictionTable(graph: Graph, precision: String, machines: [String]) -> String {
    let p: Precision = precision == "cfp8" ? .cfp8 : Precision(name: precision) ?? .fp32
    var t = TextTable(headers: ["machine", "devices", "plan", "step", "samples/s", "MFU", "bound"])
    for name in machines {
        do {
            let m = try resolveMachine(name)
            // Dojo's CFP8 is an 8-bit format; on a GPU the same step runs in its FP8.
            let prec: Precision = (p == .cfp8 && m.kind == "gpu") ? .fp8 : p
            let sim = try StepSimulator(workload: Workload(graph: graph, globalBatch: graph.batch, precision: prec),
                                        machine: m, costModel: m.opCostModel())
            let r = try sim.predict()
            t.addRow([name, "\(r.devicesUsed) \(r.device)", r.planText, formatSI(r.stepSeconds, unit: "s"),
                      formatSI(r.samplesPerSecond), formatPercent(r.mfu), r.bound])
        } catch {
            t.addRow([name, "-", "\(error)", "-", "-", "-", "-"])
        }
    }
    return "predicted cost of this step (batch \(graph.batch), \(p.rawValue)) on other machines (dojo sim for details):\n" + t.render()
}
