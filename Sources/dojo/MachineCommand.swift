import ArgumentParser
import DojoMachine
import DojoReport
import Foundation

/// `dojo machine show NAME|FILE`: a machine's derived totals at every level and its parameters with sources.
struct MachineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "machine",
        abstract: "Show a machine description (derived totals per level, every parameter with its source), or calibrate this machine into one.",
        subcommands: [Show.self, Calibrate.self],
        defaultSubcommand: Show.self)
}

extension MachineCommand {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Derived totals at each level (FLOP/s, bytes, B/s, W) and the parameters with their sources.",
            discussion: """
            NAME is a preset (dojo machines lists them), optionally scaled: dgx-h100x8, exapodx2. FILE is a YAML \
            machine file in the presets' format; decoding is strict: unknown or missing keys and impossible values \
            are errors naming the key path. Sizes use decimal prefixes (1 MB = 1e6 B) or binary ones (MiB); rates \
            take units (2GHz, 128GB/s, 400Gb/s). Bandwidths are per direction.
            """)

        @Argument(help: "A preset name (optionally xN) or a YAML machine file.")
        var machine: String

        @Option(name: .customLong("set"), help: ArgumentHelp(
            "Change a parameter: KEY=VALUE, e.g. node.sram_bytes=2.5MB (repeatable).", valueName: "key=value"))
        var overrides: [String] = []

        @Flag(name: .long, help: "Print JSON: {name, kind, summary, hypothetical, file, levels, calibration, parameters, checks}.")
        var json = false

        func run() throws {
            // A MachineError's description names the file and key path; ArgumentParser prints it as "Error: …"
            // and exits with status 1.
            var m = try Machine.resolve(machine)
            var changes: [String: String] = [:]
            for o in overrides {
                guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
                    throw ValidationError("--set '\(o)' is not KEY=VALUE (e.g. node.sram_bytes=2.5MB)")
                }
                changes[String(o[..<eq])] = String(o[o.index(after: eq)...])
            }
            if !changes.isEmpty { m = try m.with(changes) }
            if json {
                print(try machineJSON(m))
            } else {
                print(render(m))
            }
        }
    }
}

/// The text report of `dojo machine show`.
func render(_ m: Machine) -> String {
    var out = "\(m.name): \(m.summary)\n"
    if m.hypothetical { out += "HYPOTHETICAL: not a machine anyone has published; see the ASSUMPTIONs below.\n" }
    out += "from \(m.file)\n\n"
    let levels = m.levels
    var table = TextTable(headers: ["per unit"] + levels.map(\.level),
                          alignments: [.left] + levels.map { _ in .right })
    func row(_ name: String, _ f: (LevelTotals) -> String) { table.addRow([name] + levels.map(f)) }
    func bytes(_ x: Double) -> String { x > 0 ? formatSI(x, unit: "B") : "—" }
    func rate(_ x: Double, _ unit: String) -> String { x > 0 ? formatSI(x, unit: unit) : "—" }
    row("units in machine") { formatThousands($0.units) }
    let isDojo = m.kind == "dojo"
    if isDojo {
        row("nodes") { formatThousands($0.nodes) }
        row("D1 dies") { $0.chips > 0 ? formatThousands($0.chips) : "—" }
        row("tiles") { $0.tiles > 0 ? formatThousands($0.tiles) : "—" }
        row("DIPs") { $0.dips > 0 ? formatFixed($0.dips, $0.dips == $0.dips.rounded() ? 0 : 2) : "—" }
        row("peak BF16/CFP8") { rate($0.peak.bf16, "FLOP/s") }
        row("peak FP32") { rate($0.peak.fp32, "FLOP/s") }
    } else {
        row("GPUs") { formatThousands($0.chips) }
        row("peak FP32") { rate($0.peak.fp32, "FLOP/s") }
        row("peak TF32") { rate($0.peak.tf32, "FLOP/s") }
        row("peak FP16") { rate($0.peak.fp16, "FLOP/s") }
        row("peak BF16") { rate($0.peak.bf16, "FLOP/s") }
        row("peak FP8") { rate($0.peak.fp8, "FLOP/s") }
    }
    row(isDojo ? "SRAM" : "L2") { bytes($0.sramBytes) }
    row("HBM") { bytes($0.hbmBytes) }
    row("HBM bandwidth") { rate($0.hbmBandwidth, "B/s") }
    row("off-unit bandwidth") { rate($0.offBandwidth, "B/s") }
    row("  via") { $0.offBandwidthVia }
    row("bisection bandwidth") { $0.bisectionBandwidth.map { rate($0, "B/s") } ?? "—" }
    row("power") { rate($0.power, "W") }
    if isDojo { row("latency across (idle)") { $0.diameterLatency.map { formatSI($0, unit: "s") } ?? "—" } }
    out += table.render() + "\n"
    out += "Bandwidths per direction. Bytes in decimal units (1 MB = 1e6 B), as Tesla and NVIDIA publish them.\n\n"
    let checks = m.checks
    if !checks.isEmpty {
        var t = TextTable(headers: ["published figure", "published", "derived", "derived/published", "source"],
                          alignments: [.left, .right, .right, .right, .left])
        for c in checks {
            let q = c.key.split(separator: ".").last.map(String.init) ?? ""
            t.addRow([c.key, quantityText(c.published, q), quantityText(c.derived, q), formatFixed(c.ratio, 3), c.source])
        }
        out += t.render() + "\n\n"
    }
    var params = TextTable(headers: ["parameter", "value", "source or ASSUMPTION"], alignments: [.left, .right, .left])
    for p in m.parameters { params.addRow([p.path, p.value, p.provenance.text]) }
    out += params.render()
    return out
}

/// A total in its unit, by the quantity's name.
func quantityText(_ x: Double, _ quantity: String) -> String {
    switch quantity {
    case "nodes", "chips", "tiles": return abs(x) < 1e15 ? formatThousands(Int(x.rounded())) : formatSI(x, unit: "")
    case "sram_bytes", "hbm_bytes": return formatSI(x, unit: "B")
    case "hbm_bandwidth", "off_bandwidth", "bisection_bandwidth": return formatSI(x, unit: "B/s")
    case "power": return formatSI(x, unit: "W")
    default: return formatSI(x, unit: "FLOP/s")
    }
}

private struct MachineJSON: Encodable {
    var name, kind, summary: String
    var hypothetical: Bool
    var file: String
    var levels: [LevelTotals]
    var calibration: [String: Double]
    var parameters: [Parameter]
    var checks: [Check]

    struct Check: Encodable {
        var key: String
        var published, derived, ratio: Double
        var source: String
    }
}

/// The JSON form of `dojo machine show --json`.
func machineJSON(_ m: Machine) throws -> String {
    let c = m.calibration
    let doc = MachineJSON(name: m.name, kind: m.kind, summary: m.summary, hypothetical: m.hypothetical, file: m.file,
                          levels: m.levels,
                          calibration: ["matrix_efficiency": c.matrixEfficiency, "vector_efficiency": c.vectorEfficiency,
                                        "link_efficiency": c.linkEfficiency, "memory_efficiency": c.memoryEfficiency],
                          parameters: m.parameters,
                          checks: m.checks.map { .init(key: $0.key, published: $0.published, derived: $0.derived,
                                                       ratio: $0.ratio, source: $0.source) })
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try enc.encode(doc), as: UTF8.self)
}
