import Foundation
import Testing

/// `dojo validate` through the built binary: the shipped cases, JSON, --verbose, and every kind of bad input.
@Suite("dojo validate")
struct ValidateCLITests {
    static let header = "id,system,gpu,gpus,nodes,interconnect,model,model_detail,precision,global_batch,parallelism,metric,value,unit,source"
    static let good = "t1,DGX A100,A100-SXM4-80GB,8,1,NVSwitch,ResNet-50 v1.5,224px,AMP (FP16 mixed),2048,DP=8,training throughput,16621,images/s,https://example.org"

    /// Writes `text` to a temporary file named `name`; returns its path and a cleanup.
    func file(_ name: String, _ contents: Data) throws -> (path: String, remove: () -> Void) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("validate-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try contents.write(to: url)
        return (url.path, { try? FileManager.default.removeItem(at: dir) })
    }

    func file(_ name: String, lines: [String]) throws -> (path: String, remove: () -> Void) {
        try file(name, Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    @Test("the shipped cases: a table of all 27, the MAE lines, Mask R-CNN skipped with the reason")
    func table() {
        let r = runDojo(["validate"])
        #expect(r.status != -1, "\(r.stderr)")
        for id in ["dle-bert-a100-256g-s128", "meg21-145b-1536g", "sp22-175b-64g-seqsel", "nemo2407-llama2-70b-64g",
                   "mlp30-gpt3-3584g-ttt", "mlp30-maskrcnn-dgxh100-1n"] {
            #expect(r.stdout.contains(id), "\(id) missing")
        }
        for s in ["predicted", "measured", "error", "dgx-a100x192", "gpt-175b", "bert-large:seq=128",
                  "Throughput and step time: mean |error|", "Time to train: mean |error|",
                  "skipped mlp30-maskrcnn-dgxh100-1n: no Mask R-CNN"] {
            #expect(r.stdout.contains(s), "missing \(s)")
        }
        // Every supported case simulates (a case that failed would make the exit status 1).
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("failed"))
    }

    /// The simulator against the published measurements: the accuracy this version reaches (docs/VALIDATION.md),
    /// held so that a change that makes it worse fails. Issue 3 §5's goal: mean |error| ≤ 10 % over the throughput
    /// and step-time cases, none worse than 25 % (this version: 9.0 %, worst 20.7 %). Time-to-train cases are
    /// scored apart (they also depend on convergence) and are not held here.
    @Test("accuracy: throughput MAE ≤ 9.5 %; every throughput or step-time case within 25 %")
    func accuracy() throws {
        let r = runDojo(["validate", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let mae = try #require(obj["mean_abs_error"] as? Double)
        #expect(mae <= 0.095, "mean |error| \(mae)")
        let cases = try #require(obj["cases"] as? [[String: Any]])
        var checked = 0
        for c in cases {
            let id = c["id"] as? String ?? ""
            guard c["kind"] as? String == "throughput", let e = c["error"] as? Double else { continue }
            #expect(abs(e) <= 0.25, "\(id): \(e)")
            checked += 1
        }
        #expect(checked == 23)
    }

    @Test("--json: {cases: [{id, predicted, measured, unit, error}], mean_abs_error}")
    func json() throws {
        let r = runDojo(["validate", "--json"])
        #expect(r.status != -1, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let cases = try #require(obj["cases"] as? [[String: Any]])
        #expect(cases.count == 27)
        #expect(obj.keys.contains("mean_abs_error"))
        for key in ["id", "predicted", "measured", "unit", "error"] {
            #expect(cases.allSatisfy { $0.keys.contains(key) }, "\(key)")
        }
        let meg = try #require(cases.first { $0["id"] as? String == "meg21-145b-1536g" })
        #expect(meg["measured"] as? Double == 148)
        #expect(meg["unit"] as? String == "TFLOP/s/GPU")
    }

    @Test("--verbose prints each case's source, conversion and assumptions; --only picks cases")
    func verbose() {
        let r = runDojo(["validate", "--verbose", "--only", "meg21-530b", "--only", "mc24-1.7b"])
        #expect(r.status != -1, "\(r.stderr)")
        #expect(!r.stdout.contains("dle-bert"))
        for s in ["heads not stated: 128, as row sp22-530b-280g-seqsel", "precision not stated: bf16",
                  "nodes not stated", "96·B·s·l·h²", "72·B·s·l·h²", "source: https://github.com/NVIDIA/Megatron-LM",
                  "measured step time implied"] {
            #expect(r.stdout.contains(s), "missing \(s)")
        }
        let none = runDojo(["validate", "--only", "no-such-case"])
        #expect(none.status != 0 && none.stderr.contains("no case id contains"), "\(none.stderr)")
    }

    @Test("--cases with a file of one's own; a bad --set names the key path")
    func ownFileAndSet() throws {
        let f = try file("mine.csv", lines: [Self.header, Self.good])
        defer { f.remove() }
        let r = runDojo(["validate", "--cases", f.path])
        #expect(r.status != -1, "\(r.stderr)")
        #expect(r.stdout.contains("t1") && r.stdout.contains("mine.csv"))
        #expect(!r.stdout.contains("meg21"))
        let set = runDojo(["validate", "--cases", f.path, "--set", "gpu.sram=1"])
        #expect(set.status != 0)
        #expect(set.stderr.contains("gpu.sram"), "\(set.stderr)")
        let form = runDojo(["validate", "--set", "oops"])
        #expect(form.status != 0 && form.stderr.contains("not KEY=VALUE"), "\(form.stderr)")
    }

    @Test("--assume changes a step-model assumption in every case, over the row's reading; --set takes an optional calibration key on every preset")
    func assumeAndOptionalSet() throws {
        func error(_ args: [String]) throws -> Double {
            let r = runDojo(["validate", "--json", "--only", "dle-bert-a100-8g-s512"] + args)
            #expect(r.status == 0, "\(r.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let cases = json?["cases"] as? [[String: Any]] ?? []
            #expect(cases.count == 1)
            return cases.first?["error"] as? Double ?? .nan
        }
        // the row reads the attention as op by op (fused_attention=0): fused, the same step is faster
        let asRead = try error([]), fused = try error(["--assume", "fused_attention=1"])
        #expect(fused > asRead + 0.01, "fused \(fused) against \(asRead)")
        let verbose = runDojo(["validate", "--verbose", "--only", "dle-bert-a100-8g-s512", "--assume", "fused_attention=1"])
        #expect(verbose.stdout.contains("knob fused_attention = 1"), "\(verbose.stdout)")
        for (bad, says) in [("fusion=2", "must be 0 or 1"), ("bogus=1", "unknown assumption 'bogus'"), ("fusion", "not KEY=VALUE")] {
            let r = runDojo(["validate", "--assume", bad])
            #expect(r.status != 0 && r.stderr.contains(says), "\(bad): \(r.stderr)")
        }
        let local = runDojo(["validate", "--local", "--assume", "fusion=0"])
        #expect(local.status != 0 && local.stderr.contains("--assume"), "\(local.stderr)")
        // fp8_efficiency is optional (the A100 presets leave it to matrix_efficiency): --set gives it everywhere
        let fp8 = runDojo(["validate", "--set", "calibration.fp8_efficiency=0.6"])
        #expect(fp8.status == 0 && fp8.stdout.contains("mean |error|"), "\(fp8.stderr)")
        let typo = runDojo(["validate", "--set", "calibration.fp8_eficiency=0.6"])
        #expect(typo.status != 0 && typo.stderr.contains("unknown key"), "\(typo.stderr)")
    }

    @Test("bad input: a missing file, not a CSV, missing columns, text in a number, an unknown GPU")
    func badInput() throws {
        let missing = runDojo(["validate", "--cases", "/nonexistent/cases.csv"])
        #expect(missing.status != 0 && missing.status != -1)
        #expect(missing.stderr.contains("/nonexistent/cases.csv: no such file"), "\(missing.stderr)")

        let binary = try file("data.csv", Data([0x89, 0x50, 0x4E, 0x47, 0x00, 0x01, 0xFF, 0xFE]))
        defer { binary.remove() }
        let b = runDojo(["validate", "--cases", binary.path])
        #expect(b.status != 0 && b.stderr.contains("data.csv: not a CSV file"), "\(b.stderr)")

        let yaml = try file("machine.yaml", lines: ["name: tile", "kind: dojo"])
        defer { yaml.remove() }
        let y = runDojo(["validate", "--cases", yaml.path])
        #expect(y.status != 0 && y.stderr.contains("machine.yaml:1: missing columns id, gpu"), "\(y.stderr)")

        let noValue = try file("novalue.csv", lines: [
            Self.header.replacingOccurrences(of: ",value,", with: ","),
            Self.good.replacingOccurrences(of: ",16621,", with: ","),
        ])
        defer { noValue.remove() }
        let v = runDojo(["validate", "--cases", noValue.path])
        #expect(v.status != 0 && v.stderr.contains("novalue.csv:1: missing column value"), "\(v.stderr)")

        let text = try file("text.csv", lines: [Self.header, Self.good.replacingOccurrences(of: ",16621,", with: ",fast,")])
        defer { text.remove() }
        let t = runDojo(["validate", "--cases", text.path])
        #expect(t.status != 0)
        #expect(t.stderr.contains("text.csv:2: column 13 (value): expected a positive number, got 'fast'"), "\(t.stderr)")

        let gpu = try file("gpu.csv", lines: [Self.header, Self.good.replacingOccurrences(of: "A100-SXM4-80GB", with: "TPU-v4")])
        defer { gpu.remove() }
        // A GPU without a preset is skipped with the reason (the other rows would still run); exit 0.
        let g = runDojo(["validate", "--cases", gpu.path])
        #expect(g.status == 0, "\(g.stderr)")
        #expect(g.stdout.contains("skipped t1: no machine preset for GPU 'TPU-v4'"), "\(g.stdout)")

        let quote = try file("quote.csv", lines: [Self.header, Self.good.replacingOccurrences(of: ",224px,", with: ",\"224px,")])
        defer { quote.remove() }
        let q = runDojo(["validate", "--cases", quote.path])
        #expect(q.status != 0)
        #expect(q.stderr.contains("quote.csv:2: column 8 (model_detail): the quote that opens this field is never closed"), "\(q.stderr)")
    }
}

/// Issue 11: published GPU runs from other sources than the shipped rows (docs/validation-candidates) are each
/// predicted or skipped with a reason, none failing; the TF32 layout assumption reaches `dojo sim`.
@Suite("dojo validate on other sources")
struct ValidateCandidatesCLITests {
    /// `dojo validate --cases` on a file of docs/validation-candidates: exit 0, none failed, at least `predicted`
    /// of `rows` predicted, every skip with its reason; the counts and the cases.
    func validateHeldOut(_ file: String, rows: Int, predicted: Int) throws -> ([String: Int], [[String: Any]]) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
        let csv = root.appendingPathComponent("docs/validation-candidates/" + file).path
        let r = runDojo(["validate", "--cases", csv, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let counts = try #require(json["counts"] as? [String: Int])
        #expect(counts["failed"] == 0 && (counts["ok"] ?? 0) >= predicted, "\(counts)")
        let cases = try #require(json["cases"] as? [[String: Any]])
        #expect(cases.count == rows)
        for c in cases where c["status"] as? String == "skipped" {
            #expect(!((c["message"] as? String) ?? "").isEmpty, "\(c["id"] ?? "?") skipped without a reason")
        }
        return (counts, cases)
    }

    @Test("the 63 candidate rows: every one predicted or skipped with a reason (LoRA, DALI on the CPU); exit 0")
    func candidates() throws {
        let (counts, cases) = try validateHeldOut("candidate-rows.csv", rows: 63, predicted: 60)
        #expect(cases.first { $0["id"] as? String == "rosetta-vitb16-h100-8g" }?["status"] as? String == "skipped")
        // Names the importer now reads: Llama 2 13B, ViT-B/16; the DGX-2 row; FSDP 175B runs fit.
        #expect(counts["skipped"] == 3, "\(counts)")   // the LoRA row, the two ViT-B/16 rows fed by DALI on the CPU
        for id in ["nemo2407-llama2-13b-16g", "dle-tf-rn50-dgx2-16g-amp", "pax-gpt175b-h100-256g-fp8",
                   "nemo2407-llama3-70b-64g"] {
            let c = try #require(cases.first { $0["id"] as? String == id }, "\(id)")
            #expect(c["status"] as? String == "ok", "\(id): \(c["message"] ?? "")")
        }
    }

    @Test("set2, 39 rows in their sources' own words (T/s/GPU, WPS, TFLOPs per GPU, MPT-7B, BLOOM-176B, Float8): read whole")
    func secondSet() throws {
        let (_, cases) = try validateHeldOut("set2/rows.csv", rows: 39, predicted: 38)
        // context parallelism splits sequences: a global batch of 4 over FSDP=4 × CP=2 is read, CP=16 on a
        // 16-stage pipeline keeps its micro-batches (it was −95 % as CP× data parallelism)
        let cp2 = try #require(cases.first { $0["id"] as? String == "tt-h100-l31-8b-8g-s64k-cp2" })
        #expect(cp2["status"] as? String == "ok", "\(cp2)")
        let cp16 = try #require(cases.first { $0["id"] as? String == "llama3-405b-16384g-cp16" })
        #expect(((cp16["error"] as? Double) ?? -1) > -0.7, "\(cp16)")
        // BLOOM's log prints TFLOPs per GPU: read per GPU (within 30 %), not as the 384 GPUs' total (×384)
        let bloom = try #require(cases.first { $0["id"] as? String == "bloom176b-384g-tflops" })
        #expect(abs((bloom["error"] as? Double) ?? 9) < 0.3, "\(bloom)")
    }

    @Test("set3, 41 rows in their sources' words (launchers, MaxText's mesh, 'DP: 4  TP: 1', imgs_sec, 169k): none fails")
    func thirdSet() throws {
        let (counts, cases) = try validateHeldOut("set3/rows.csv", rows: 41, predicted: 28)
        #expect((counts["skipped"] ?? 0) <= 13, "\(counts)")
        // nanotron's MFU-only rows are skipped saying why, not misread
        let nt = try #require(cases.first { $0["id"] as? String == "nt-1.34b-1n" })
        #expect((nt["message"] as? String)?.contains("a utilisation") == true, "\(nt)")
    }

    @Test("set4, Megatron-Bridge's table in its words (LLAMA3_8B, FP8-CS, FSDP 0/1, Sequence Length), DGX B200 rows: all predicted")
    func fourthSet() throws {
        let (counts, cases) = try validateHeldOut("set4/rows.csv", rows: 7, predicted: 7)
        #expect(counts["skipped"] == 0, "\(counts)")
        // every row within 30 % (the issue's bound for held-out rows); the B200 rows on the dgx-b200 preset
        for c in cases { #expect(abs((c["error"] as? Double) ?? 9) < 0.3, "\(c["id"] ?? "?"): \(c["error"] ?? "none")") }
        let b200 = try #require(cases.first { $0["id"] as? String == "mb2511-b200-llama31-405b-128g" })
        #expect((b200["machine"] as? String)?.hasPrefix("dgx-b200") == true, "\(b200)")
        // their attention priced from cuDNN's published B200 figures (A3), the kernel NeMo's Transformer Engine picks
        // there: within 10 % (−23.6 % and −6.6 % with attention_efficiency, before the figures)
        for id in ["mb2511-b200-llama3-8b-8g", "mb2511-b200-llama31-405b-128g"] {
            let c = try #require(cases.first { $0["id"] as? String == id })
            #expect(abs((c["error"] as? Double) ?? 9) < 0.1, "\(id): \(c["error"] ?? "none")")
        }
    }

    @Test("set5, 36 rows in their sources' words (sentences per second, teraFLOPs per GPU, LLaMA 65B, 'Sequence length 512'): 33 predicted")
    func fifthSet() throws {
        let (counts, cases) = try validateHeldOut("set5/rows.csv", rows: 36, predicted: 33)
        #expect(counts["skipped"] == 3, "\(counts)")   // two Nemotron models the zoo lacks, a LoRA run
        // DLE PyTorch BERT at 512, length-binned as its phase 2 though the row never says "phase 2" (it was −45 %)
        let s512 = try #require(cases.first { $0["id"] as? String == "pt-bert-a100-8g-s512-tf32" })
        #expect(abs((s512["error"] as? Double) ?? 9) < 0.15, "\(s512)")
        for id in ["tf-bert-dgx1-32g-8g-s128-amp", "meglm-175b-1024g-tflops", "llama1-65b-2048g"] {
            let c = try #require(cases.first { $0["id"] as? String == id }, "\(id)")
            #expect(c["status"] as? String == "ok", "\(id): \(c["message"] ?? "")")
        }
    }

    @Test("the sixth held-out set is read whole: 31 of 38 predicted, the rest skipped with reasons, none failing")
    func sixthSet() throws {
        let (counts, cases) = try validateHeldOut("set6/rows.csv", rows: 38, predicted: 31)
        #expect(counts["skipped"] == 7, "\(counts)")   // T5 (×2), 4090/A6000, CPU offload, LoRA, 16 ways on 8 GPUs
        // "Training Model TFLOPS" of a 32-GPU run read per GPU (as a total it was +3,300 %)
        let t = try #require(cases.first { $0["id"] as? String == "megatron-llama-13b-32g-megatron-llama" })
        #expect(abs((t["error"] as? Double) ?? 9) < 0.3, "\(t)")
    }

    @Test("the seventh held-out set is read whole: 32 of 33 predicted, one failing as 'does not fit' (exit 1, said why)")
    func seventhSet() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
        let csv = root.appendingPathComponent("docs/validation-candidates/set7/rows.csv").path
        let r = runDojo(["validate", "--cases", csv, "--json"])
        #expect(r.status == 1)   // a failed case makes the exit status 1
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let counts = try #require(json["counts"] as? [String: Int])
        #expect(counts["ok"] == 32 && counts["failed"] == 1 && (counts["skipped"] ?? 0) == 0, "\(counts)")
        let cases = try #require(json["cases"] as? [[String: Any]])
        let failed = try #require(cases.first { $0["status"] as? String == "failed" })
        #expect(failed["id"] as? String == "mds-longseq-new-256k-32g" && ((failed["message"] as? String) ?? "").contains("no plan fits"))
        // the MLPerf rows read as their logs write them (unpad_fmha=True: packed samples)
        let azure = try #require(cases.first { $0["id"] as? String == "mlp20-azure-bert-nd96amsr-1n" })
        #expect(abs((azure["error"] as? Double) ?? 9) < 0.2, "\(azure)")
    }

    @Test("TF32 convolutions in channels-first layout pay transposes; --assume channels_last=1 removes them")
    func layouts() throws {
        func step(_ extra: [String]) throws -> Double {
            let r = runDojo(["sim", "--model", "resnet50", "--machine", "dgx-a100", "--batch", "256", "--devices", "1", "--json"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return try #require(json["stepSeconds"] as? Double)
        }
        let nchw = try step(["--precision", "tf32"])
        let nhwc = try step(["--precision", "tf32", "--assume", "channels_last=1"])
        let half = try step(["--precision", "fp16"])
        #expect(nchw > 1.3 * nhwc, "\(nchw) \(nhwc)")
        #expect(nhwc > 1.8 * half && nhwc < 2.2 * half, "\(nhwc) \(half)")
        // FP16 set channels-first pays the same transposes (cuDNN's tensor-core kernels take NHWC), on V100 too
        let halfFirst = try step(["--precision", "fp16", "--assume", "channels_last=0"])
        #expect(halfFirst > 1.2 * half, "\(halfFirst) \(half)")
        func v100(_ extra: [String]) throws -> Double {
            let r = runDojo(["sim", "--model", "resnet50", "--machine", "dgx-v100", "--batch", "256", "--devices", "1", "--json", "--precision", "fp16"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return try #require(json["stepSeconds"] as? Double)
        }
        #expect(try v100(["--assume", "channels_last=0"]) > 1.2 * v100([]))
        let bad = runDojo(["sim", "--model", "resnet50", "--assume", "channels_last=2"])
        #expect(bad.status != 0 && bad.stderr.contains("channels_last=2: must be 0 or 1"), "\(bad.stderr)")
    }
}

/// Issue 11 §2: every knob with its source beside the case, and what fitting a constant on published rows buys.
@Suite("dojo validate: knobs and --leave-out")
struct ValidateKnobsCLITests {
    @Test("--verbose prints every knob the case used with its source or the reason it is assumed")
    func knobs() {
        let r = runDojo(["validate", "--verbose", "--only", "dle-rn50-a100-1g"])
        #expect(r.status == 0, "\(r.stderr)")
        for s in ["knob calibration.matrix_efficiency = 0.7: ASSUMPTION", "knob calibration.host_decode_rate = 140: ASSUMPTION",
                  "knob gpu.gemm_tile = 128: ASSUMPTION", "knob loader_workers = 16: set for this case",
                  "knob fused_attention = 1: FlashAttention", "knob channels_last = by precision"] {
            #expect(r.stdout.contains(s), "missing \(s)")
        }
    }

    @Test("--leave-out SOURCE re-fits each fitted constant without that source's cases and reports their error")
    func leaveOut() {
        let r = runDojo(["validate", "--leave-out", "mlcommons"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("cases left out of 23"), "\(r.stdout)")
        // fp8_efficiency is derived (M1's FP8 over BF16 matmul share), not fitted: only host_decode_rate is re-fitted
        #expect(!r.stdout.contains("fp8_efficiency"), "\(r.stdout)")
        // leaving out one of the four DeepLearningExamples ResNet-50 rows re-fits host_decode_rate on the other three
        let one = runDojo(["validate", "--leave-out", "dle-rn50-a100-8g"])
        let line = one.stdout.split(separator: "\n").first { $0.hasPrefix("calibration.host_decode_rate") }.map(String.init) ?? ""
        let cells = line.split(separator: " ").map(String.init)
        #expect(cells.count == 7 && cells[1] == "140" && cells[3] == "3" && cells[4] == "1", "\(line)")
        if cells.count == 7, let fitted = Double(cells[2]) { #expect(fitted >= 40 && fitted <= 400, "\(line)") }
        // A constant only the left-out cases constrain is said to be unconstrained.
        let dle = runDojo(["validate", "--leave-out", "DeepLearningExamples"])
        #expect(dle.status == 0 && dle.stdout.contains("calibration.host_decode_rate: only the left-out cases constrain it"), "\(dle.stdout)")
        let none = runDojo(["validate", "--leave-out", "no-such-source"])
        #expect(none.status != 0 && none.stderr.contains("--leave-out no-such-source: no throughput case's source or id contains it"), "\(none.stderr)")
        let json = runDojo(["validate", "--leave-out", "mlcommons", "--json"])
        #expect(json.status != 0 && json.stderr.contains("--leave-out prints its own table"), "\(json.stderr)")
    }
}
