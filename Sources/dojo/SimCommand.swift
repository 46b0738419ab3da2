import ArgumentParser
import DojoCompiler
import DojoMachine
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

    func validate() throws {
        if let trace { try UserFiles.checkWritable(trace, what: "--trace") }
        if machine.contains(",") {
            throw CLIError("--machine \(machine): dojo sim takes one machine; compare several with dojo compare --machines \(machine)")
        }
        for o in overrides { _ = try splitKeyValue(o, flag: "--set") }
    }

    func run() throws {
        let m = try resolveMachine(machine, overrides: overrides)
        let (sim, p) = try predictWorkload(workload, machine: m)
        if let trace {
            let data = sim.timeline(p.plan).chromeTraceJSON(title: "\(p.model) on \(p.machine)")
            try UserFiles.write(data, to: trace, what: "--trace")
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try enc.encode(p), as: UTF8.self))
            return
        }
        print(renderPrediction(p, machine: m, requested: workload.resolvedPrecision))
        if let trace { print("\ntrace written to \(trace) (open in ui.perfetto.dev or chrome://tracing)") }
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
