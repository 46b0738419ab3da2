import DojoCompiler
import DojoMachine
import DojoReport
import DojoSim
import Foundation

/// Tesla's public performance claims about Dojo (`docs/SOURCES.md` §9) set beside what the
/// simulator predicts for the same comparison. Soft checks: reported, never tuned to — the claims name no model,
/// batch or software, so each check states the workload it assumes.
struct DojoClaim {
    var claim: String
    var source: String
    var claimed: Double
    /// Machines compared (numerator, denominator), the workload, and how the ratio reads.
    var dojo: String
    var other: String
    var model: String
    var batch: Int
    var precision: Precision
    var note: String
}

let dojoClaims: [DojoClaim] = [
    DojoClaim(claim: "one tile replaces 6 GPU boxes", source: "S17: AI Day 2022", claimed: 1,
              dojo: "tile", other: "dgx-a100x6", model: "resnet50", batch: 2048, precision: .bf16,
              note: "ratio = tile ÷ 6 DGX A100 throughput (≥ 1 means the claim holds); ASSUMPTION: a 2022 GPU box is a DGX A100, the workload a ResNet-50 vision backbone"),
    DojoClaim(claim: "one tile replaces 6 GPU boxes", source: "S17: AI Day 2022", claimed: 1,
              dojo: "tile", other: "dgx-a100x6", model: "vit-b16", batch: 2048, precision: .bf16,
              note: "the same with a ViT-B/16 backbone"),
    DojoClaim(claim: "Dojo 2 = 10× Dojo 1", source: "S25 [secondary]", claimed: 10,
              dojo: "d2", other: "tile", model: "resnet50", batch: 2048, precision: .bf16,
              note: "ratio = hypothetical d2 tile ÷ D1 tile throughput; the d2 preset is built from this claim's peak, so this checks what the rest of the machine lets through"),
    DojoClaim(claim: "Dojo 2 = 10× Dojo 1", source: "S25 [secondary]", claimed: 10,
              dojo: "d2", other: "tile", model: "gpt-1.3b", batch: 256, precision: .bf16,
              note: "the same on a 1.3B-parameter language model"),
]

struct ClaimResult: Codable {
    var claim: String
    var source: String
    var model: String
    var comparison: String
    var claimed: Double
    var predicted: Double?
    var error: String?
    var note: String
}

/// Predicts each claim's comparison.
func checkDojoClaims() -> [ClaimResult] {
    dojoClaims.map { c in
        var r = ClaimResult(claim: c.claim, source: c.source, model: "\(c.model) b\(c.batch) \(c.precision.rawValue)",
                            comparison: "\(c.dojo) ÷ \(c.other)", claimed: c.claimed, predicted: nil, error: nil, note: c.note)
        do {
            func rate(_ name: String) throws -> Double {
                let m = try Machine.resolve(name)
                let (graph, tokens) = try GraphCache.shared.graph(c.model)
                let sim = try StepSimulator(workload: Workload(graph: graph, globalBatch: c.batch, precision: c.precision,
                                                               tokensPerSample: tokens),
                                            machine: m, costModel: m.opCostModel())
                return try sim.predict().samplesPerSecond
            }
            r.predicted = try rate(c.dojo) / rate(c.other)
        } catch {
            r.error = "\(error)"
        }
        return r
    }
}

func renderClaims(_ results: [ClaimResult]) -> String {
    var t = TextTable(headers: ["Tesla's claim", "source", "workload", "comparison", "claimed", "predicted"])
    for r in results {
        t.addRow([r.claim, r.source, r.model, r.comparison, formatFixed(r.claimed, 1) + "×",
                  r.predicted.map { formatFixed($0, 2) + "×" } ?? "no plan: \(r.error ?? "")"])
    }
    var out = "Dojo: Tesla's public claims beside the prediction (soft checks: reported, not tuned to)\n" + t.render() + "\n"
    for (i, r) in results.enumerated() { out += "  \(i + 1). \(r.note)\n" }
    out += "The peak identities (D1 362 TFLOPS, tile 9 PFLOPS, ExaPOD 1.1 EFLOPS, SRAM, bandwidths) are checked by dojo machine show and its tests."
    return out
}
