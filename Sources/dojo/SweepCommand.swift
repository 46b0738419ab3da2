import ArgumentParser
import DojoCompiler
import DojoMachine
import DojoReport
import DojoSim
import Foundation

/// `dojo sweep`: vary one machine parameter and watch the predicted throughput.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Vary a machine parameter and predict throughput at each value (table and SVG chart).",
        discussion: """
        --vary KEY=FROM..TO takes --steps values between the ends (same unit at both ends; --log for geometric \
        steps), or KEY=V1,V2,V3 takes those values. KEY is any parameter of the machine file (dojo machine show \
        NAME lists them with their sources), e.g. node.sram_bytes, d1.edge_bandwidth, dip.hbm_bandwidth, \
        calibration.matrix_efficiency. Every value gets its own fastest plan. Example: \
        dojo sweep --machine tile --vary node.sram_bytes=0.5MB..4MB --model resnet50 --batch 1024
        """)

    @OptionGroup var workload: WorkloadOptions

    @Option(name: .long, help: "Machine: a preset, NAMExN or a YAML file.")
    var machine: String = "tile"

    @Option(name: .long, help: ArgumentHelp("KEY=FROM..TO or KEY=V1,V2,…", valueName: "key=range"))
    var vary: String

    @Option(name: .long, help: "Values between FROM and TO (at least 2).")
    var steps: Int = 8

    @Flag(name: .long, help: "Space the values geometrically (FROM and TO > 0).")
    var log = false

    @Option(name: .long, help: "Write a line chart of samples/s against the parameter to this SVG file.")
    var svg: String?

    @Flag(name: .long, help: "Print JSON: {parameter, points: [{value, prediction or error}]}.")
    var json = false

    func validate() throws {
        if let svg { try UserFiles.checkWritable(svg, what: "--svg") }
        guard steps >= 2 else { throw CLIError("--steps must be at least 2, got \(steps)") }
        guard steps <= 100 else { throw CLIError("--steps is \(steps), more than 100 (each value is a simulation of its own, up to a second each; 100 points draw any curve)") }
        _ = try sweepValues(vary, steps: steps, log: log)
    }

    struct Point: Codable {
        var value: String
        var number: Double
        var prediction: Prediction?
        var error: String?
    }

    func run() throws {
        let (key, values, unit) = try sweepValues(vary, steps: steps, log: log)
        let base = try resolveMachine(machine)
        // Every value must make a valid machine (a bad key or value is the user's: the machine's message names the
        // file and key path) before anything is simulated.
        let machines = try values.map { v -> Machine in
            do { return try base.with([key: v.text]) } catch {
                throw CLIError("--vary \(key)=\(v.text): \(error)")
            }
        }
        var points: [Point] = []
        for ((text, number), m) in zip(values, machines) {
            do {
                let (_, p) = try predictWorkload(workload, machine: m)
                points.append(Point(value: text, number: number, prediction: p, error: nil))
            } catch let e as PlanError {
                points.append(Point(value: text, number: number, prediction: nil, error: "\(e)"))
            }
        }
        let xLabel = unit.isEmpty ? key : "\(key) (\(unit))"
        if let svg {
            var chart = SVGChart(title: "\(workload.modelName) on \(machine): predicted throughput vs \(key)",
                                 xLabel: xLabel, yLabel: "samples/s")
            let xy = points.compactMap { p in p.prediction.map { (x: p.number, y: $0.samplesPerSecond) } }.sorted { $0.x < $1.x }
            chart.addSeries(name: "samples/s", points: xy)
            try UserFiles.write(Data(chart.svg().utf8), to: svg, what: "--svg")
        }
        let anyFits = points.contains { $0.prediction != nil }
        if json {
            struct Doc: Codable { var parameter: String; var unit: String; var machine: String; var model: String; var points: [Point] }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try enc.encode(Doc(parameter: key, unit: unit, machine: machine, model: workload.modelName, points: points)), as: UTF8.self))
        } else {
            var out = "\(workload.modelName), global batch \(formatThousands(workload.batch)), \(workload.resolvedPrecision.rawValue) on \(machine), varying \(key)\n\n"
            var t = TextTable(headers: [key, "step", "samples/s", "MFU", "bound", "plan"],
                              alignments: [.right, .right, .right, .right, .left, .left])
            let baseline = points.first?.prediction?.samplesPerSecond
            for p in points {
                if let r = p.prediction {
                    let rel = baseline.map { String(format: " (%.2f×)", r.samplesPerSecond / $0) } ?? ""
                    t.addRow([p.value, formatSI(r.stepSeconds, unit: "s"), formatRate(r.samplesPerSecond) + rel, formatPercent(r.mfu), r.bound, r.planText])
                } else {
                    t.addRow([p.value, "-", "no plan fits", "-", "-", "-"])
                }
            }
            out += t.render()
            for p in points where p.error != nil { out += "\n\(key)=\(p.value): \(p.error!)\n" }
            if let svg { out += "\nchart written to \(svg)\n" }
            print(String(out.dropLast()))
        }
        if !anyFits { throw CLIError("no plan fits at any value of \(key) (reasons above)") }
    }
}

/// Parses `KEY=FROM..TO` (with `steps` values, linear or geometric) or `KEY=V1,V2,…` into the key, the values as
/// machine-file text with their numbers, and the unit they share ("MB", "" for plain numbers).
func sweepValues(_ spec: String, steps: Int, log: Bool) throws -> (key: String, values: [(text: String, number: Double)], unit: String) {
    let (key, rest) = try splitKeyValue(spec, flag: "--vary")
    func split(_ s: String) -> (Double, String)? {
        // the longest prefix that is a number; the rest is the unit
        let t = s.trimmingCharacters(in: .whitespaces)
        var end = t.endIndex
        while end > t.startIndex {
            if let v = Double(t[..<end]), v.isFinite { return (v, String(t[end...]).trimmingCharacters(in: .whitespaces)) }
            end = t.index(before: end)
        }
        return nil
    }
    if rest.contains("..") {
        let ends = rest.components(separatedBy: "..")
        guard ends.count == 2, let (a, ua) = split(ends[0]), let (b, ub) = split(ends[1]) else {
            throw CLIError("--vary \(spec): expected KEY=FROM..TO with numbers, e.g. node.sram_bytes=0.5MB..4MB")
        }
        guard ua == ub else { throw CLIError("--vary \(spec): give both ends in the same unit ('\(ua)' vs '\(ub)')") }
        if log { guard a > 0, b > 0 else { throw CLIError("--vary \(spec): --log needs both ends above 0") } }
        // whole numbers stay whole (counts); beyond 2^53 they are floating point (a rate of 1e20…1e308)
        let integral = ua.isEmpty && a == a.rounded() && b == b.rounded() && !ends[0].contains(".") && !ends[1].contains(".")
            && !ends[0].lowercased().contains("e") && !ends[1].lowercased().contains("e") && abs(a) < 0x1p53 && abs(b) < 0x1p53
        var out: [(text: String, number: Double)] = []
        for i in 0..<steps {
            let f = Double(i) / Double(steps - 1)
            var v = log ? a * pow(b / a, f) : a + (b - a) * f
            if integral { v = v.rounded() }
            let text = integral ? String(Int(v)) : formatValue(v) + ua
            if out.last?.text != text { out.append((text, v)) }
        }
        return (key, out, ua)
    }
    let items = rest.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
    guard !items.allSatisfy(\.isEmpty) else { throw CLIError("--vary \(spec): no values; give KEY=FROM..TO or KEY=V1,V2,…") }
    if items.contains(where: \.isEmpty) { throw CLIError("--vary \(spec): an empty value between commas") }
    guard items.count <= 100 else { throw CLIError("--vary \(spec): \(items.count) values; at most 100 (each is a simulation of its own)") }
    var values: [(text: String, number: Double)] = []
    var units: [String] = []
    for item in items {
        guard let (v, u) = split(item) else { throw CLIError("--vary \(spec): '\(item)' is not a number with an optional unit") }
        values.append((item, v)); units.append(u)
    }
    if let u = units.first, let other = units.first(where: { $0 != u }) {
        throw CLIError("--vary \(spec): give every value in the same unit ('\(u)' vs '\(other)')")
    }
    return (key, values, units.first ?? "")
}

/// A number as a machine file writes it: up to 4 significant digits, no exponent for ordinary sizes.
private func formatValue(_ v: Double) -> String {
    var s = String(format: "%.4g", v)
    // no exponent, except for very small values (%.6f printed 1e-7 as 0)
    if s.contains("e") && abs(v) >= 1e-4 { s = String(format: "%.6f", v) }
    if s.contains("e") { return s }
    if s.contains(".") { while s.hasSuffix("0") { s.removeLast() }; if s.hasSuffix(".") { s.removeLast() } }
    return s
}
