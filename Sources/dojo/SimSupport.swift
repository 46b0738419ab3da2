import ArgumentParser
import DojoCompiler
import DojoGraph
import DojoMachine
import DojoNN
import DojoONNX
import DojoReport
import DojoSim
import DojoTensor
import Foundation

/// The options every prediction command shares: what to train, how, and under which assumptions.
///
/// Every user error of the prediction commands is a `CLIError`: ArgumentParser prints it as one line
/// `Error: …` and exits 1 (a `ValidationError` would add the usage text after it).
struct WorkloadOptions: ParsableArguments {
    @Option(name: .long, help: "Model: a zoo name or spec (dojo models), e.g. resnet50, gpt-175b, gpt:layers=24,hidden=2048.")
    var model: String = "resnet50"

    @Option(name: .long, help: "An ONNX file to price instead of a zoo model (torch.onnx.export, opsets 13–21; dojo graph --onnx shows what is read).")
    var onnx: String?

    @Option(name: .customLong("input"), help: ArgumentHelp("With --onnx: one example's shape for a dynamic input, [NAME=]SHAPE (repeatable).", valueName: "shape"))
    var onnxInputs: [String] = []

    @Option(name: .long, help: "Global batch: samples per training step over all devices.")
    var batch: Int = 256

    @Option(name: .long, help: "Precision: fp32, tf32, fp16, bf16, cfp8 (Dojo; FP8 on a GPU) or fp8.")
    var precision: String = "bf16"

    @Option(name: .long, help: ArgumentHelp("Fix parts of the plan: dp=,tp=,pp=,mb=,micro=,vp=,recompute=none|selective|op|full,zero=0|1|3 (3: FSDP, parameters sharded too),sp=0|1; the rest is searched.", valueName: "plan"))
    var plan: String?

    @Option(name: .long, help: "Use at most this many devices (D1 dies or GPUs) of the machine.")
    var devices: Int?

    @Option(name: .customLong("assume"), help: ArgumentHelp("Change a step-model assumption: \(SimOptions.keys.joined(separator: ", ")) (repeatable).", valueName: "key=value"))
    var assumptions: [String] = []

    func validate() throws {
        do { try Limits.check(batch, "--batch", max: Limits.batch, why: "the most samples a step may have") } catch { throw CLIError("\(error)") }
        guard Precision(name: precision) != nil else {
            throw CLIError("--precision '\(precision)' is not one of fp32, tf32, fp16, bf16, cfp8, fp8")
        }
        if onnx == nil, !onnxInputs.isEmpty { throw CLIError("--input applies to --onnx models (a zoo model's input is part of its spec)") }
        if onnx != nil { _ = try GraphCache.shared.graph(self) }
        if let devices, devices < 1 || devices > Limits.devices { throw CLIError("--devices must be 1…\(Limits.devices) (the most devices a machine may have), got \(devices)") }
        try checkPlanShape(try planSpec(), batch: batch)
        _ = try simOptions()
    }

    var resolvedPrecision: Precision { Precision(name: precision) ?? .bf16 }

    /// The model as reports name it: the zoo spec, or the ONNX file's name.
    var modelName: String { onnx.map(ONNXImport.modelName) ?? model }

    /// The precision a machine runs the step in: Dojo's CFP8 is an 8-bit format, and on a GPU the same step runs
    /// in the GPU's FP8 (with its hybrid BF16 attention products), as `dojo train` does.
    func precision(on machine: Machine) -> Precision {
        var p = resolvedPrecision
        if p == .cfp8 && machine.kind == "gpu" { p = .fp8 }
        // A GPU without FP8 units (V100, A100) runs the step in its 16-bit format: priced, and shown, as that (it was
        // priced with FP8's bytes and efficiency on BF16's rate: 25 % faster than bf16 on hardware without FP8).
        if p == .fp8, machine.kind == "gpu", machine.total.peak.fp8 == 0 { p = machine.total.peak.bf16 > 0 ? .bf16 : .fp16 }
        return p
    }

    /// `--plan` parsed; a syntax error names the flag and the part.
    func planSpec() throws -> PlanSpec {
        guard let plan else { return PlanSpec() }
        do { return try PlanSpec(parsing: plan) } catch let PlanError.syntax(m) {
            throw CLIError("--plan \(plan): \(m)")
        }
    }

    func simOptions() throws -> SimOptions {
        var o = SimOptions()
        for a in assumptions {
            let (k, v) = try splitKeyValue(a, flag: "--assume")
            do { try o.set(k, v) } catch let SimError.badOption(m) {
                // SimOptions says "KEY=VALUE: why" or "unknown assumption 'KEY' (keys: …)"
                let prefix = "\(k)=\(v):"
                let why = m.hasPrefix(prefix) ? m.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces) : m
                throw CLIError("--assume \(a): \(why)")
            }
        }
        return o
    }

    /// The fixed parts of `--plan` as written, for messages (`dp=3`, `mb=4`).
    var planText: String { plan ?? "" }
}

/// Checks the parts of a plan that depend only on the global batch (`PlanSpec.checkArithmetic`, shared with the
/// validation importer), as a `--plan` error.
func checkPlanShape(_ s: PlanSpec, batch: Int) throws {
    do { try s.checkArithmetic(globalBatch: batch) } catch let PlanError.inconsistent(m) {
        throw CLIError("--plan \(m)")
    }
}

/// Checks a plan against the model's layers: a pipeline stage (or, interleaved, a model chunk) needs a layer.
func checkPlanLayers(_ s: PlanSpec, simulator sim: StepSimulator, model: String) throws {
    let layers = sim.layerCount
    if let p = s.pipelineParallel, p > layers {
        throw CLIError("--plan pp=\(p): \(model) has only \(layers) layers to place on pipeline stages")
    }
    if let p = s.pipelineParallel, let v = s.virtualStages, Limits.product(p, v) > layers {
        throw CLIError("--plan pp=\(p),vp=\(v): \(Limits.product(p, v)) model chunks, but \(model) has only \(layers) layers")
    }
}

/// Checks a plan against a machine's devices (at most `deviceLimit` of them); a `PlanError`, so that compare and
/// sweep report it for that machine and go on.
func checkPlanDevices(_ s: PlanSpec, simulator sim: StepSimulator, deviceLimit: Int?, batch: Int) throws {
    let total = sim.topology.devices
    let n = min(total, deviceLimit ?? total)
    let has = n < total ? "--devices allows \(formatThousands(n))" : "\(sim.machine.name) has \(formatThousands(n))"
    let device = sim.topology.deviceName
    let fixed: [(String, Int)] = [("dp", s.dataParallel), ("tp", s.tensorParallel), ("pp", s.pipelineParallel)].compactMap { k, v in v.map { (k, $0) } }
    let product = fixed.reduce(1) { Limits.product($0, $1.1) }
    if product > n {
        let names = fixed.map(\.0).joined(separator: " × "), values = fixed.map { formatThousands($0.1) }.joined(separator: " × ")
        let lhs = fixed.count == 1 ? "\(fixed[0].0)=\(fixed[0].1) needs" : "\(names) = \(values) ="
        throw PlanError.inconsistent("\(lhs) \(formatThousands(product)) \(device), but \(has)")
    }
    if s.dataParallel == nil, let mb = s.microBatch, let m = s.microBatches {
        let d = batch / Limits.product(mb, m)
        let need = Limits.product(d, s.tensorParallel ?? 1, s.pipelineParallel ?? 1)
        if need > n {
            throw PlanError.inconsistent("mb=\(mb),micro=\(m) leaves \(formatThousands(d)) data-parallel replicas of the global batch "
                                         + "\(formatThousands(batch)), \(formatThousands(need)) \(device) in all, but \(has)")
        }
    }
}

/// Simulates the workload on a machine: the graph (recorded once per model), the plan checked against the model and
/// the machine, then the search. Plan problems that depend on the machine are `PlanError`s (compare and sweep
/// report them per machine); the rest are `CLIError`s.
func predictWorkload(_ w: WorkloadOptions, machine: Machine) throws -> (StepSimulator, Prediction) {
    let sim = try makeSimulator(w, machine: machine)
    let spec = try w.planSpec()
    try checkPlanLayers(spec, simulator: sim, model: w.modelName)
    try checkPlanDevices(spec, simulator: sim, deviceLimit: w.devices, batch: w.batch)
    do {
        return (sim, try sim.predict(spec, deviceLimit: w.devices))
    } catch PlanError.doesNotFit(let m) where m.hasPrefix("no plan can be laid out") {
        // The planner gives each tensor × pipeline layout the most data-parallel replicas the batch divides
        // among; a fixed micro-batch size or count may not divide what that leaves. Say so, with a dp that works.
        let n = min(sim.topology.devices, w.devices ?? sim.topology.devices)
        if spec.dataParallel == nil, spec.microBatch != nil || spec.microBatches != nil {
            let tp = spec.tensorParallel ?? 1, pp = spec.pipelineParallel ?? 1
            let unit = Limits.product(spec.microBatch ?? 1, spec.microBatches ?? 1)
            let d = (1...max(1, min(w.batch, n / max(1, Limits.product(tp, pp))))).reversed().first { w.batch % $0 == 0 && (w.batch / $0) % unit == 0 }
            let hint = d.map { "; fix dp as well, e.g. --plan dp=\($0)," + w.planText } ?? ""
            throw PlanError.inconsistent("no layout found for \(w.planText): the planner gives each layout the most data-parallel replicas "
                                         + "the global batch \(formatThousands(w.batch)) divides among on \(formatThousands(n)) \(sim.topology.deviceName), "
                                         + "and \(w.planText) does not divide the samples that leaves each replica\(hint)")
        }
        throw PlanError.inconsistent("no layout of plan '\(w.planText)' for the global batch \(formatThousands(w.batch)) on "
                                     + "\(formatThousands(n)) \(sim.topology.deviceName)")
    }
}

/// Splits KEY=VALUE.
func splitKeyValue(_ s: String, flag: String) throws -> (String, String) {
    guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
        throw CLIError("\(flag) '\(s)' is not KEY=VALUE")
    }
    return (String(s[..<eq]), String(s[s.index(after: eq)...]))
}

/// A machine by preset name, scaled preset or file, with `--set` overrides.
func resolveMachine(_ spec: String, overrides: [String] = []) throws -> Machine {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: spec, isDirectory: &isDirectory), isDirectory.boolValue {
        throw CLIError("machine '\(spec)' is a directory; give a preset (dojo machines), NAMExN or a YAML file")
    }
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
    /// The workload's graph: its ONNX file's (read once) or its zoo model's.
    func graph(_ w: WorkloadOptions) throws -> (Graph, Int?) {
        guard let path = w.onnx else { return try graph(w.model) }
        let key = "onnx:" + ([path] + w.onnxInputs).joined(separator: "\u{0}")
        lock.lock(); defer { lock.unlock() }
        if let g = graphs[key] { return g }
        let (graph, tokens, _) = try recordONNXGraph(path: path, inputs: w.onnxInputs)
        graphs[key] = (graph, tokens)
        return (graph, tokens)
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
func makeSimulator(_ w: WorkloadOptions, machine given: Machine) throws -> StepSimulator {
    var machine = given
    // CPU hosts: a plan that names its ranks runs that many, each with its share of its host's cores.
    if machine.kind == "cpu", let spec = try? w.planSpec(), let dp = spec.dataParallel {
        machine = machine.laidOut(ranks: dp * (spec.tensorParallel ?? 1) * (spec.pipelineParallel ?? 1))
    }
    let (graph, tokens) = try GraphCache.shared.graph(w)
    let workload = Workload(graph: graph, globalBatch: w.batch, precision: w.precision(on: machine), tokensPerSample: tokens)
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
