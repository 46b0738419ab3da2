import ArgumentParser
import DojoCompiler
import DojoMachine
import DojoTensor
import DojoNN
import DojoReport
import DojoSim
import Foundation

/// `dojo sim`: what one training step of a model costs on a machine.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Predict a training step on a Dojo machine or a GPU cluster: plan, step time, MFU, breakdown.",
        discussion: """
        Records one training step of the model as the Graph IR (shapes only), prices every op on one device \
        (a D1 die's 2D mesh of nodes, or a GPU's roofline), and searches data, tensor and pipeline parallelism, \
        micro-batching, recomputation and optimizer sharding for the fastest plan that fits in memory. Prints the \
        plan, the step time, samples/s, MFU, where the time goes, memory per device, the ten costliest ops and why \
        each family of plans lost. Machines: dojo machines (presets, NAMExN, or a YAML file). \
        Examples: dojo sim --model resnet50 --batch 4096 --machine exapod; \
        dojo sim --model gpt-175b --batch 1536 --machine dgx-h100x64 --precision fp8 --plan tp=8,pp=8.
        """)

    @OptionGroup var workload: WorkloadOptions

    @Option(name: .long, help: "Machine: a preset (dojo machines), NAMExN, or a YAML file.")
    var machine: String = "tile"

    @Option(name: .customLong("set"), help: ArgumentHelp("Change a machine parameter: KEY=VALUE, e.g. node.sram_bytes=2.5MB (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(name: .long, help: "Write a Chrome/Perfetto trace of the simulated step to this file.")
    var trace: String?

    @Flag(name: .long, help: "Print the prediction as JSON.")
    var json = false

    @Flag(name: .long, help: "With a cpu machine file of this host (dojo machine calibrate) and a one-rank plan (--plan dp=1): also run the step here with the engine, op by op, and print each group of ops' measured time beside its predicted time (the median of 5 steps after warm-up; fp32, bf16 or cfp8).")
    var measure = false

    func validate() throws {
        if measure {
            if workload.onnx != nil { throw CLIError("--measure runs a zoo model's step on this host; an --onnx model is priced only") }
            guard [.fp32, .bf16, .cfp8].contains(workload.resolvedPrecision) else {
                throw CLIError("--measure runs the step in the engine's formats: --precision fp32, bf16 or cfp8 (got \(workload.precision))")
            }
        }
        if let trace { try UserFiles.checkWritable(trace, what: "--trace") }
        if machine.contains(",") {
            throw CLIError("--machine \(machine): dojo sim takes one machine; compare several with dojo compare --machines \(machine)")
        }
        for o in overrides { _ = try splitKeyValue(o, flag: "--set") }
    }

    func run() throws {
        let m = try resolveMachine(machine, overrides: overrides)
        if measure, m.kind != "cpu" {
            throw CLIError("--measure compares the prediction with this host's engine: --machine must be a cpu machine file from dojo machine calibrate (\(machine) is a \(m.kind) machine)")
        }
        let (sim, p) = try predictWorkload(workload, machine: m)
        var measured: MeasuredComparison? = nil
        if measure {
            // (a plan that names dp lays the machine out for its ranks: one rank then has every core, as the step run
            // here; a one-rank plan the planner chose would be priced at the file's ranks per host)
            let spec = try workload.planSpec()
            guard spec.dataParallel == 1, p.plan.devices == 1, p.plan.microBatches == 1 else {
                throw CLIError("--measure runs the step here as one rank: give --plan dp=1 (the prediction's plan \(p.planText) has \(p.plan.devices) ranks and \(p.plan.microBatches) micro-batches)")
            }
            measured = try MeasuredComparison.run(workload, simulator: sim, prediction: p)
        }
        if let trace {
            let data = sim.timeline(p.plan).chromeTraceJSON(title: "\(p.model) on \(p.machine)")
            try UserFiles.write(data, to: trace, what: "--trace")
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            var data = try enc.encode(p)
            if let measured, var o = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
                o["measured"] = try JSONSerialization.jsonObject(with: try enc.encode(measured))
                data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .prettyPrinted])
            }
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(renderPrediction(p, machine: m, requested: workload.resolvedPrecision))
        if let measured { print("\n" + measured.render()) }
        if let trace { print("\ntrace written to \(trace) (open in ui.perfetto.dev or chrome://tracing)") }
    }
}

/// `dojo sim --measure`: the predicted step beside the same step run on this host with the engine, op by op, grouped
/// as the costliest-ops table groups them (kind, direction, layer path with indices as `*`).
struct MeasuredComparison: Encodable {
    struct Row: Encodable {
        var kind: String, phase: String, scope: String
        var ops: Int
        var predicted_s: Double?, measured_s: Double?
    }
    var rows: [Row]
    /// The forward and backward ops, summed.
    var ops_predicted_s: Double, ops_measured_s: Double
    /// The rest of the step: optimizer, loss bookkeeping, step overhead (and input, predicted).
    var rest_predicted_s: Double, rest_measured_s: Double
    var step_predicted_s: Double, step_measured_s: Double
    var steps: Int

    static func run(_ w: WorkloadOptions, simulator sim: StepSimulator, prediction p: Prediction) throws -> MeasuredComparison {
        let resolved = try ModelZoo.resolve(w.model)
        let optimizer: GraphRecorder.OptimizerChoice = resolved.entry.optimizer == "sgd" ? .sgd : .adamw
        let policy: PrecisionPolicy? = w.resolvedPrecision == .bf16 ? PrecisionPolicy(mode: .bf16)
            : w.resolvedPrecision == .cfp8 ? PrecisionPolicy(mode: .cfp8) : nil
        // CFP8: until every rounding site has the history delayed scaling takes its bias from, sites scan first
        let warmUp = policy.map { max(3, $0.historyLength) } ?? 3
        let steps = 5
        let step: GraphRecorder.MeasuredStep
        do { step = try GraphRecorder.measure(model: w.model, batch: w.batch, optimizer: optimizer, precision: policy, steps: steps, warmUp: warmUp) }
        catch let e as ModelError { throw CLIError("--measure: \(e)") }
        struct Key: Hashable { var kind: String, phase: String, scope: String }
        var rows: [Key: Row] = [:]
        for r in sim.costliestOps(p.plan, count: Int.max) where r.phase != "optimizer" {
            rows[Key(kind: r.kind, phase: r.phase, scope: r.scope)] = Row(kind: r.kind, phase: r.phase, scope: r.scope, ops: r.count, predicted_s: r.seconds)
        }
        var opsMeasured = 0.0
        for op in step.graph.ops where op.phase != .optimizer {
            let t = step.seconds[op.id]
            opsMeasured += t
            let key = Key(kind: op.kind.rawValue, phase: op.phase.rawValue, scope: OpReport.scopeGroup(op.scope))
            var r = rows[key] ?? Row(kind: key.kind, phase: key.phase, scope: key.scope, ops: 0)
            if r.predicted_s == nil { r.ops += 1 }   // (a group the prediction has counts its ops already)
            r.measured_s = (r.measured_s ?? 0) + t
            rows[key] = r
        }
        let opsPredicted = rows.values.compactMap(\.predicted_s).reduce(0, +)
        let sorted = rows.values.sorted { max($0.predicted_s ?? 0, $0.measured_s ?? 0) > max($1.predicted_s ?? 0, $1.measured_s ?? 0) }
        return MeasuredComparison(rows: sorted, ops_predicted_s: opsPredicted, ops_measured_s: opsMeasured,
                                  rest_predicted_s: p.stepSeconds - opsPredicted, rest_measured_s: max(0, step.stepSeconds - opsMeasured),
                                  step_predicted_s: p.stepSeconds, step_measured_s: step.stepSeconds, steps: steps)
    }

    func render(top: Int = 15) -> String {
        func s(_ v: Double?) -> String { v.map { formatSI($0, unit: "s") } ?? "-" }
        func ratio(_ a: Double?, _ b: Double?) -> String {
            guard let a, let b, b > 0 else { return "-" }
            return formatFixed(a / b, 2)
        }
        var t = TextTable(headers: ["measured here", "phase", "scope", "ops", "predicted", "measured", "predicted ÷ measured"])
        for r in rows.prefix(top) {
            t.addRow([r.kind, r.phase, r.scope.isEmpty ? "-" : r.scope, String(r.ops), s(r.predicted_s), s(r.measured_s), ratio(r.predicted_s, r.measured_s)])
        }
        if rows.count > top {
            let rest = rows.dropFirst(top)
            let pr = rest.compactMap(\.predicted_s).reduce(0, +), me = rest.compactMap(\.measured_s).reduce(0, +)
            t.addRow(["\(rest.count) more groups", "", "", String(rest.map(\.ops).reduce(0, +)), s(pr), s(me), ratio(pr, me)])
        }
        t.addRow(["forward and backward ops", "", "", "", s(ops_predicted_s), s(ops_measured_s), ratio(ops_predicted_s, ops_measured_s)])
        t.addRow(["optimizer and the rest", "", "", "", s(rest_predicted_s), s(rest_measured_s), ratio(rest_predicted_s, rest_measured_s)])
        t.addRow(["step", "", "", "", s(step_predicted_s), s(step_measured_s), ratio(step_predicted_s, step_measured_s)])
        return t.render() + "(measured: the median of \(steps) steps run here after warm-up, each op timed; a forward op's time includes the glue since the op before it)"
    }
}

/// The text report of one prediction.
func renderPrediction(_ p: Prediction, machine: Machine, requested: Precision? = nil) -> String {
    var out = ""
    let used = p.devicesUsed == p.devices ? "all \(formatThousands(p.devices))" : "\(formatThousands(p.devicesUsed)) of \(formatThousands(p.devices))"
    out += "\(p.model) on \(p.machine) (\(used) \(p.device)), global batch \(formatThousands(p.globalBatch)), \(p.precision.rawValue)\n"
    if let requested, requested != p.precision {
        out += requested == .cfp8 && p.precision == .fp8
            ? "(cfp8 is Dojo's 8-bit format; a GPU runs the step in its fp8, attention products in bf16)\n"
            : "(\(p.device) has no \(requested.rawValue) units: the step runs, and is priced, in \(p.precision.rawValue))\n"
    }
    if machine.hypothetical { out += "HYPOTHETICAL machine: every figure of it is an assumption (dojo machine show \(machine.name)).\n" }
    out += "plan        \(p.planText)  (\(p.plan.family))\n"
    out += "step        \(formatSI(p.stepSeconds, unit: "s"))\n"
    var rate = "throughput  \(formatSI(p.samplesPerSecond, unit: "samples/s"))"
    if let t = p.tokensPerSecond { rate += ", \(formatSI(t, unit: "tokens/s"))" }
    out += rate + "\n"
    out += "MFU         \(formatPercent(p.mfu)) of \(formatSI(p.peakFlopsPerDevice, unit: "FLOP/s")) per \(p.device) (\(formatSI(p.modelFlopsPerStep, unit: "FLOP")) per step)\n"
    out += "bound       \(p.bound)\n\n"
    var bt = TextTable(headers: ["where the step goes", "time", "share"])
    for (name, v) in p.breakdown.parts where v > 0 {
        bt.addRow([name, formatSI(v, unit: "s"), formatPercent(v / p.stepSeconds)])
    }
    out += bt.render() + "\n"
    let mem = p.memory
    out += "memory per \(p.device) (busiest): weights \(formatSI(mem.weights, unit: "B")), gradients \(formatSI(mem.gradients, unit: "B")), "
    out += "optimizer state \(formatSI(mem.optimizerState, unit: "B")), activations \(formatSI(mem.activations, unit: "B")) = \(formatSI(mem.total, unit: "B"))"
    if mem.bulkCapacity > 0 {
        out += " of \(formatSI(mem.fastCapacity, unit: "B")) SRAM + \(formatSI(mem.bulkCapacity, unit: "B")) DIP HBM usable"
        if mem.spilled > 0 { out += "; \(formatSI(mem.spilled, unit: "B")) spilled to HBM" }
    } else {
        out += " of \(formatSI(mem.fastCapacity, unit: "B")) usable"
    }
    out += "\n\n"
    var ot = TextTable(headers: ["costliest ops", "phase", "scope", "ops", "time/step", "share", "bound", "util"])
    for o in p.topOps {
        ot.addRow([o.kind, o.phase, o.scope.isEmpty ? "(all parameters)" : o.scope, String(o.count), formatSI(o.seconds, unit: "s"),
                   formatPercent(o.seconds / p.stepSeconds), o.bound.rawValue, formatPercent(o.utilisation)])
    }
    out += ot.render() + "\n"
    var ft = TextTable(headers: ["plan family", "best plan", "step", "verdict"])
    for f in p.families {
        ft.addRow([f.family, f.best?.description ?? "-", f.stepSeconds.map { formatSI($0, unit: "s") } ?? "-", f.verdict])
    }
    out += ft.render()
    out += "(\(formatThousands(p.plansEvaluated)) plans evaluated)"
    return out
}
