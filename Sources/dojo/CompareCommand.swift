import ArgumentParser
import DojoCompiler
import DojoMachine
import DojoReport
import DojoSim
import Foundation

/// `dojo compare`: one model on several machines, side by side.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Predict the same training step on several machines, side by side (table and SVG chart).",
        discussion: """
        Each machine gets its own fastest plan. Example: \
        dojo compare --model resnet50 --batch 4096 --machines tile,tray,exapod,dgx-h100x8 --svg compare.svg
        """)

    @OptionGroup var workload: WorkloadOptions

    @Option(name: .long, help: "Comma-separated machines: presets, NAMExN or YAML files.")
    var machines: String = "tile,tray,dgx-a100,dgx-h100"

    @Option(name: .long, help: "Write a bar chart of samples/s per machine to this SVG file.")
    var svg: String?

    @Flag(name: .long, help: "Print JSON: {model, batch, precision, machines: [prediction or error]}.")
    var json = false

    struct Row: Codable {
        var machine: String
        var prediction: Prediction?
        var error: String?
        var powerWatts: Double
    }

    var machineNames: [String] {
        machines.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func validate() throws {
        if let svg { try UserFiles.checkWritable(svg, what: "--svg") }
        guard !machineNames.isEmpty else { throw CLIError("--machines is empty; name at least one (dojo machines lists them)") }
    }

    func run() throws {
        let names = machineNames
        // A machine name that does not resolve is the user's typo: stop before simulating anything.
        let resolved = try names.map { try resolveMachine($0) }
        var rows: [Row] = []
        for (name, m) in zip(names, resolved) {
            do {
                let (_, p) = try predictWorkload(workload, machine: m)
                rows.append(Row(machine: name, prediction: p, error: nil, powerWatts: m.total.power))
            } catch let e as PlanError {
                rows.append(Row(machine: name, prediction: nil, error: "\(e)", powerWatts: m.total.power))
            }
        }
        let anyFits = rows.contains { $0.prediction != nil }
        if let svg, anyFits {   // (a chart of nothing is not written: the run fails below)
            var chart = SVGBarChart(title: "\(workload.modelName), batch \(formatThousands(workload.batch)), \(workload.resolvedPrecision.rawValue): predicted training throughput",
                                    categories: rows.map { $0.prediction == nil ? "\($0.machine) (no plan fits)" : $0.machine },
                                    yLabel: "samples/s", valueLabels: { formatSI($0) })
            chart.addSeries(name: "samples/s", values: rows.map { $0.prediction?.samplesPerSecond ?? .nan })
            try UserFiles.write(Data(chart.svg().utf8), to: svg, what: "--svg")
        }
        if json {
            struct Doc: Codable { var model: String; var batch: Int; var precision: String; var machines: [Row] }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            let doc = Doc(model: workload.modelName, batch: workload.batch, precision: workload.resolvedPrecision.rawValue, machines: rows)
            print(String(decoding: try enc.encode(doc), as: UTF8.self))
        } else {
            print(renderComparison(rows, workload: workload, svg: anyFits ? svg : nil))
        }
        if !anyFits { throw CLIError("no plan fits on any of \(names.joined(separator: ", ")) (reasons above)") }
    }

    func renderComparison(_ rows: [Row], workload: WorkloadOptions, svg: String?) -> String {
        var out = "\(workload.modelName), global batch \(formatThousands(workload.batch)), \(workload.resolvedPrecision.rawValue)"
        if workload.resolvedPrecision == .cfp8, rows.contains(where: { $0.prediction?.precision == .fp8 }) {
            out += " (fp8 on GPUs)"
        }
        out += "\n\n"
        var t = TextTable(headers: ["machine", "devices used", "plan", "step", "samples/s", "MFU", "bound", "machine power", "samples/s per kW"],
                          alignments: [.left, .right, .left, .right, .right, .right, .left, .right, .right])
        for r in rows {
            if let p = r.prediction {
                t.addRow([r.machine, "\(formatThousands(p.devicesUsed)) \(p.device)", p.planText, formatSI(p.stepSeconds, unit: "s"),
                          formatRate(p.samplesPerSecond), formatPercent(p.mfu), p.bound,
                          r.powerWatts > 0 ? formatSI(r.powerWatts, unit: "W") : "-",   // a cpu machine file has no power figure
                          r.powerWatts > 0 ? formatRate(p.samplesPerSecond / (r.powerWatts / 1000)) : "-"])
            } else {
                t.addRow([r.machine, "-", "no plan fits", "-", "-", "-", "-", formatSI(r.powerWatts, unit: "W"), "-"])
            }
        }
        out += t.render()
        for r in rows where r.error != nil { out += "\n\(r.machine): \(r.error!)\n" }
        if let svg { out += "\nchart written to \(svg)\n" }
        return String(out.dropLast())
    }
}

/// A rate for a table: SI prefixes from 1 up (12.3k, 1.36M), three significant digits below (0.177), never "177m".
func formatRate(_ x: Double) -> String {
    guard x.isFinite, abs(x) < 1, x != 0 else { return formatSI(x) }
    return String(format: "%.3g", x)
}
