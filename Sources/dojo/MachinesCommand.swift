import ArgumentParser
import DojoMachine
import DojoReport

/// `dojo machines`: the machine presets.
struct MachinesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "machines",
        abstract: "List the machine presets: Dojo levels from a D1 to an ExaPOD, a hypothetical D2 tile, DGX nodes.",
        discussion: """
        Every figure in a preset carries its source (docs/SOURCES.md IDs, NVIDIA data sheets) and every unknown is an \
        ASSUMPTION written as a parameter. Scale a preset with xN (dgx-h100x8, exapodx2); see one with \
        `dojo machine show NAME`.
        """)

    func run() throws {
        var table = TextTable(headers: ["name", "kind", "peak BF16", "summary"], alignments: [.left, .left, .right, .left])
        for m in try Presets.all() {
            table.addRow([m.name, m.kind + (m.hypothetical ? " (hypothetical)" : ""), peakText(m.total.peak), m.summary])
        }
        print(table.render())
        print("Scale with xN (dgx-h100x8, exapodx2). Show one: dojo machine show NAME|FILE [--json].")
    }
}

/// Peak BF16 FLOP/s, or FP16 for GPUs without BF16 (V100), marked.
func peakText(_ p: PeakRates) -> String {
    p.bf16 > 0 ? formatSI(p.bf16, unit: "FLOP/s") : formatSI(p.fp16, unit: "FLOP/s") + " (FP16)"
}
