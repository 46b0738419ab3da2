import Foundation
import Testing

/// Issue 10 §2: pipeline-parallel training from the compiler's stage split (`dojo train --plan dp=D,pp=P`), 1F1B
/// micro-batches over MPI.
@Suite("dojo train --plan: pipeline stages over MPI", .serialized)
struct PipelineTrainTests {
    typealias D = DistributedTrainTests

    static let mlp = ["train", "--model", "mlp", "--data", "fashion-mnist", "--train-examples", "1024", "--eval-examples", "128",
                      "--batch-size", "64", "--steps", "12", "--checkpoint-every", "0", "--threads", "1", "--no-augment"]

    static func worst(_ a: [Int: Double], _ b: [Int: Double]) -> Double {
        a.keys.map { abs(a[$0]! - (b[$0] ?? .nan)) / abs(a[$0]!) }.max() ?? .nan
    }

    @Test("mlp --plan pp=2 (2 and 4 micro-batches) follows 1 process within 1e-5 per step, bit-identical run to run, rank 0 writes the whole model")
    func pipelineMatchesOneProcess() throws {
        guard D.mpirun else { Issue.record("Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev; make test does)"); return }
        let d = D.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let one = runDojo(Self.mlp + ["--out", d + "/one"])
        #expect(one.status == 0, "\(one.stderr)")
        let pp = runDojo(Self.mlp + ["--plan", "pp=2", "--out", d + "/pp"])
        #expect(pp.status == 0, "\(pp.stderr)")
        #expect(pp.stdout.contains("over 2 ranks (dp=1 × pp=2: 2 micro-batches of 32 per replica, 1F1B)"), "\(pp.stdout)")
        #expect(pp.stdout.contains("pipeline stages (the compiler's split): 0: flatten"), "\(pp.stdout)")
        let again = runDojo(Self.mlp + ["--plan", "pp=2", "--out", d + "/again"])
        let four = runDojo(Self.mlp + ["--plan", "pp=2,micro=4", "--out", d + "/four"])
        #expect(again.status == 0 && four.status == 0, "\(again.stderr)\(four.stderr)")
        let a = D.losses(d + "/one"), b = D.losses(d + "/pp")
        #expect(a.count == 12 && b.count == 12)
        let w2 = Self.worst(a, b), w4 = Self.worst(a, D.losses(d + "/four"))
        #expect(w2 <= 1e-5 && w4 <= 1e-5, "largest relative difference per step: 2 micro-batches \(w2), 4: \(w4)")
        #expect(b == D.losses(d + "/again"), "two pipeline runs give the same losses bit for bit")
        // The evaluation and the checkpoint hold the whole model as trained (both stages).
        let evalOne = try String(contentsOfFile: d + "/one/metrics.jsonl", encoding: .utf8).split(separator: "\n").last { $0.contains("\"eval\"") }
        let evalPP = try String(contentsOfFile: d + "/pp/metrics.jsonl", encoding: .utf8).split(separator: "\n").last { $0.contains("\"eval\"") }
        func accuracy(_ line: Substring?) -> Double? {
            line.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }?["eval_accuracy"] as? Double
        }
        #expect(accuracy(evalOne) != nil && accuracy(evalOne) == accuracy(evalPP), "eval: \(String(describing: evalOne)) vs \(String(describing: evalPP))")
        print("pipeline pp=2: largest relative loss difference vs 1 process over 12 steps: \(w2) (2 micro-batches), \(w4) (4)")
    }

    @Test("a ViT --plan pp=2 and dp=2,pp=2 follows 1 process within 1e-5 per step (the embedding's class token and positions train on stage 0)")
    func transformerPipeline() throws {
        guard D.mpirun else { Issue.record("Open MPI is not installed"); return }
        let d = D.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let vit = ["train", "--model", "vit:layers=4,hidden=32,heads=2,image=28,patch=7", "--data", "fashion-mnist", "--train-examples", "1024",
                   "--eval-examples", "64", "--batch-size", "32", "--steps", "12", "--checkpoint-every", "0", "--threads", "1", "--no-augment"]
        let one = runDojo(vit + ["--out", d + "/one"])
        let pp = runDojo(vit + ["--plan", "pp=2", "--out", d + "/pp"])
        let four = runDojo(vit + ["--plan", "dp=2,pp=2", "--out", d + "/four"])
        #expect(one.status == 0 && pp.status == 0 && four.status == 0, "\(one.stderr)\(pp.stderr)\(four.stderr)")
        #expect(pp.stdout.contains("pipeline stages (the compiler's split): 0: patches…"), "\(pp.stdout)")
        let a = D.losses(d + "/one")
        #expect(a.count == 12)
        let w2 = Self.worst(a, D.losses(d + "/pp")), w4 = Self.worst(a, D.losses(d + "/four"))
        #expect(w2 <= 1e-5 && w4 <= 1e-5, "largest relative difference per step: pp=2 \(w2), dp=2,pp=2 \(w4)")
        // rank 0 evaluates the whole model as trained (the last stage's blocks and head copied to it)
        func evalLoss(_ run: String) throws -> Double? {
            let line = try String(contentsOfFile: d + "/\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n").last { $0.contains("\"eval\"") }
            return line.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }?["eval_loss"] as? Double
        }
        let e1 = try evalLoss("one"), e2 = try evalLoss("pp")
        #expect(e1 != nil && e2 != nil && abs(e1! - e2!) <= 1e-4 * abs(e1!), "eval loss \(String(describing: e1)) vs \(String(describing: e2))")
        print("ViT pipeline: largest relative loss difference vs 1 process over 12 steps: pp=2 \(w2), dp=2,pp=2 \(w4)")
    }

    @Test("small-cnn --plan dp=2,pp=2 follows --ranks 4 (the same batch-norm groups) within 1e-5; a pp=2 checkpoint resumes on 2 data-parallel ranks")
    func replicatedPipelineAndResume() throws {
        guard D.mpirun else { Issue.record("Open MPI is not installed"); return }
        let d = D.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let cnn = ["train", "--model", "small-cnn", "--data", "fashion-mnist", "--train-examples", "512", "--eval-examples", "64",
                   "--batch-size", "64", "--steps", "6", "--checkpoint-every", "0", "--threads", "1", "--no-augment"]
        let pp = runDojo(cnn + ["--plan", "dp=2,pp=2", "--out", d + "/pp"])
        let dp = runDojo(cnn + ["--ranks", "4", "--out", d + "/dp"])
        #expect(pp.status == 0 && dp.status == 0, "\(pp.stderr)\(dp.stderr)")
        let w = Self.worst(D.losses(d + "/dp"), D.losses(d + "/pp"))
        #expect(D.losses(d + "/pp").count == 6 && w <= 1e-5, "largest relative difference per step \(w)")
        print("pipeline dp=2,pp=2 vs data-parallel 4 ranks (small-cnn): largest relative loss difference over 6 steps \(w)")

        // An MLP checkpoint written by a 2-stage pipeline at step 6 resumes on 2 data-parallel ranks: the losses are
        // those of an uninterrupted run.
        // (a constant learning rate: the first part's schedule would otherwise end at its 6 steps)
        let constant = Self.mlp + ["--schedule", "constant"]
        let whole = runDojo(constant + ["--out", d + "/whole"])
        let first = runDojo(constant.map { $0 == "12" ? "6" : $0 } + ["--plan", "pp=2", "--out", d + "/split"])
        #expect(whole.status == 0 && first.status == 0, "\(whole.stderr)\(first.stderr)")
        let rest = runDojo(constant + ["--ranks", "2", "--resume", "--out", d + "/split"])
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(rest.stdout.contains("resuming at step 6"), "\(rest.stdout)")
        let a = D.losses(d + "/whole"), b = D.losses(d + "/split")
        #expect(b.count == 12, "\(b.keys.sorted())")
        let wr = Self.worst(a, b)
        #expect(wr <= 1e-5, "resumed on another plan: largest relative difference per step \(wr)")
    }

    @Test("bad plans: each one error line, non-zero exit, nothing written")
    func badPlans() {
        let d = D.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let cases: [([String], String)] = [
            (["--plan", "tp=2"], "tensor-parallel plans are priced by `dojo sim --plan` only"),
            (["--plan", "dp=2,pp=2", "--ranks", "3"], "needs dp × pp = 4 ranks, but --ranks is 3"),
            (["--plan", "pp=2", "--batch-size", "63"], "--batch-size 63 does not divide into 1 replica × 2 micro-batches"),
            (["--plan", "pp=2,mb=5"], "--plan mb=5: --batch-size 64 is not a whole number of micro-batches"),
            (["--plan", "pp=7,micro=1"], "mlp has 6 layers to cut at; give at most pp=6"),
            (["--plan", "pp=2", "--sync-batchnorm"], "--sync-batchnorm does not go with pipeline stages"),
            (["--plan", "micro=2"], "micro-batches go with pipeline stages"),
            (["--plan", "pp=2,micro=2,mb=4"], "give micro (micro-batches per step) or mb (examples per micro-batch), not both"),
            (["--plan", "pp=two"], "pp=two: expected a whole number ≥ 1"),
            (["--plan", "zero=1"], "zero is priced by `dojo sim --plan` only"),
            (["--plan", "dp=2,dp=4"], "dp is given twice"),
            (["--plan", ""], "the plan is empty"),
            (["--plan", ","], "the plan is empty"),
        ]
        for (i, (args, message)) in cases.enumerated() {
            let out = d + "/bad\(i)"
            let r = runDojo(Self.mlp + args + ["--out", out])
            #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stderr.components(separatedBy: "Error:").count == 2, "one error line: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out + "/checkpoint.safetensors"), "\(args) left a checkpoint")
        }
        guard D.mpirun else { return }
        // a ViT of 2 blocks has 5 layers to cut at (embedding, 2 blocks, norm, head)
        let vit = runDojo(["train", "--model", "vit:layers=2,hidden=32,heads=2,image=28,patch=7", "--data", "fashion-mnist", "--train-examples", "64",
                           "--steps", "1", "--batch-size", "48", "--plan", "pp=6", "--out", d + "/vit"])
        #expect(vit.status != 0 && vit.stderr.contains("has 5 layers to cut at; give at most pp=5"), "\(vit.stderr)")
    }
}
