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

    func run() throws {
        let names = machines.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("--machines is empty; name at least one (dojo machines lists them)") }
        // A machine name that does not resolve is the user's typo: stop before simulating anything.
        let resolved = try names.map { try resolveMachine($0) }
        var rows: [Row] = []
        for (name, m) in zip(names, resolved) {
            do {
                let sim = try makeSimulator(workload, machine: m)
                let p = try sim.predict(try workload.planSpec(), deviceLimit: workload.devices)
                rows.append(Row(machine: name, prediction: p, error: nil, powerWatts: m.total.power))
            } catch let e as PlanError {
                rows.append(Row(machine: name, prediction: nil, error: "\(e)", powerWatts: m.total.power))
            }
        }
        if let svg {
            var chart = SVGBarChart(title: "\(workload.model), batch \(workload.batch), \(workload.resolvedPrecision.rawValue): predicted training throughput",
                                    categories: rows.map(\.machine), yLabel: "samples/s",
                                    valueLabels: { formatSI($0) })
            chart.addSeries(name: "samples/s", values: rows.map { $0.prediction?.samplesPerSecond ?? .nan })
            do { try chart.svg().write(toFile: svg, atomically: true, encoding: .utf8) } catch {
                throw ValidationError("cannot write --svg \(svg): \(error.localizedDescription)")
            }
        }
        if json {
            struct Doc: Codable { var model: String; var batch: Int; var precision: String; var machines: [Row] }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            let doc = Doc(model: workload.model, batch: workload.batch, precision: workload.resolvedPrecision.rawValue, machines: rows)
            print(String(decoding: try enc.encode(doc), as: UTF8.self))
            return
        }
        print("\(workload.model), global batch \(formatThousands(workload.batch)), \(workload.resolvedPrecision.rawValue)\n")
        var t = TextTable(headers: ["machine", "devices", "plan", "step", "samples/s", "MFU", "bound", "power", "samples/s per kW"])
        for r in rows {
            if let p = r.prediction {
                t.addRow([r.machine, "\(formatThousands(p.devicesUsed)) \(p.device)", p.planText, formatSI(p.stepSeconds, unit: "s"),
                          formatSI(p.samplesPerSecond), formatPercent(p.mfu), p.bound, formatSI(r.powerWatts, unit: "W"),
                          formatSI(p.samplesPerSecond / (r.powerWatts / 1000))])
            } else {
                t.addRow([r.machine, "-", "no plan fits", "-", "-", "-", "-", formatSI(r.powerWatts, unit: "W"), "-"])
            }
        }
        print(t.render())
        for r in rows where r.error != nil { print("\n\(r.machine): \(r.error!)") }
        if let svg { print("\nchart written to \(svg)") }
    }
}
