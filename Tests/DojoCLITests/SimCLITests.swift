import Foundation
import Testing

/// `dojo sim`, `dojo compare`, `dojo sweep` and `dojo train --predict` through the built binary: each command's
/// report with real content, and every kind of wrong input a user makes (one line `Error: …` naming the problem,
/// non-zero exit, no usage dump, no crash).
@Suite("dojo sim / compare / sweep / train --predict")
struct SimCLITests {
    /// A fresh temporary directory and its cleanup.
    func tempDir() throws -> (url: URL, remove: () -> Void) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sim-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return (dir, { try? FileManager.default.removeItem(at: dir) })
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// The value after `label` at the start of a line of the report ("MFU         40.7% of …" → "40.7% of …").
    func field(_ report: String, _ label: String) -> String? {
        report.split(separator: "\n").first { $0.hasPrefix(label + " ") }
            .map { $0.dropFirst(label.count).trimmingCharacters(in: .whitespaces) }
    }

    /// The `--plan` text of a plan as the JSON prints it.
    func planText(_ p: [String: Any]) -> String {
        func i(_ k: String) -> Int { p[k] as? Int ?? -1 }
        func b(_ k: String) -> Int { (p[k] as? Bool ?? false) ? 1 : 0 }
        return "dp=\(i("dataParallel")),tp=\(i("tensorParallel")),pp=\(i("pipelineParallel")),mb=\(i("microBatch")),"
            + "micro=\(i("microBatches")),vp=\(i("virtualStages")),recompute=\(p["recompute"] as? String ?? "?"),"
            + "zero=\(b("shardOptimizer")),sp=\(b("sequenceParallel"))"
    }

    // MARK: happy paths

    @Test("sim: plan line, step time, throughput, MFU in (0, 100 %), breakdown, memory, costliest ops, family verdicts")
    func simText() throws {
        let r = runDojo(["sim", "--model", "resnet50", "--batch", "4096", "--machine", "exapod"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.stdout
        #expect(out.hasPrefix("resnet50 on exapod ("), "\(out)")
        #expect(out.contains("of 3,000 D1), global batch 4,096, bf16"))
        let plan = try #require(field(out, "plan"))
        #expect(plan.range(of: #"^dp=\d+,tp=\d+,pp=\d+,mb=\d+,micro=\d+,vp=1,recompute=(none|selective|op|full),zero=[01],sp=[01]  \(.+\)$"#,
                           options: .regularExpression) != nil, "\(plan)")
        let step = try #require(field(out, "step"))
        #expect(step.range(of: #"^[0-9.]+ [mµn]?s$"#, options: .regularExpression) != nil, "\(step)")
        #expect(!step.hasPrefix("0 "))
        #expect(field(out, "throughput")?.contains("samples/s") == true)
        let mfu = try #require(field(out, "MFU"))
        let percent = try #require(Double(mfu.prefix { $0 != "%" }))
        #expect(percent > 0 && percent < 100, "\(mfu)")
        #expect(mfu.contains("of 362 TFLOP/s per D1"))
        for s in ["where the step goes", "compute", "memory per D1 (busiest)", "SRAM", "DIP HBM usable",
                  "costliest ops", "conv2d", "plan family", "data parallel", "tensor + pipeline", "chosen", "plans evaluated"] {
            #expect(out.contains(s), "missing \(s)")
        }
        #expect(r.stderr.isEmpty)
    }

    @Test("sim --json: the keys, samples/s × step = batch, MFU in (0, 1], the breakdown adds up, one family chosen")
    func simJSON() throws {
        let r = runDojo(["sim", "--model", "resnet50", "--batch", "4096", "--machine", "exapod", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try json(r.stdout)
        for k in ["model", "machine", "device", "devices", "devicesUsed", "precision", "globalBatch", "plan", "planText",
                  "stepSeconds", "samplesPerSecond", "mfu", "modelFlopsPerStep", "peakFlopsPerDevice", "breakdown", "memory",
                  "topOps", "families", "plansEvaluated", "bound"] {
            #expect(o[k] != nil, "missing \(k)")
        }
        let step = try #require(o["stepSeconds"] as? Double)
        let sps = try #require(o["samplesPerSecond"] as? Double)
        #expect(step > 0)
        #expect(abs(sps * step - 4096) < 1e-6 * 4096)
        let mfu = try #require(o["mfu"] as? Double)
        #expect(mfu > 0 && mfu <= 1)
        let used = try #require(o["devicesUsed"] as? Int), all = try #require(o["devices"] as? Int)
        #expect(all == 3000 && used >= 1 && used <= all)
        let plan = try #require(o["plan"] as? [String: Any])
        #expect(planText(plan) == o["planText"] as? String)
        let devs = (plan["dataParallel"] as? Int ?? 0) * (plan["tensorParallel"] as? Int ?? 0) * (plan["pipelineParallel"] as? Int ?? 0)
        #expect(devs == used)
        #expect((plan["dataParallel"] as? Int ?? 0) * (plan["microBatch"] as? Int ?? 0) * (plan["microBatches"] as? Int ?? 0) == 4096)
        let breakdown = try #require(o["breakdown"] as? [String: Double])
        #expect(abs(breakdown.values.reduce(0, +) - step) < 1e-9 * max(1, step) + 1e-12)
        let families = try #require(o["families"] as? [[String: Any]])
        #expect(families.filter { $0["verdict"] as? String == "chosen" }.count == 1)
        let memory = try #require(o["memory"] as? [String: Double])
        #expect((memory["weights"] ?? 0) > 0 && (memory["fastCapacity"] ?? 0) > 0)
        #expect(!(try #require(o["topOps"] as? [[String: Any]])).isEmpty)
    }

    @Test("sim --trace: Chrome trace JSON with stage and lane names, op events, ending at the predicted step")
    func simTrace() throws {
        let (dir, remove) = try tempDir()
        defer { remove() }
        let path = dir.appendingPathComponent("t.json").path
        let r = runDojo(["sim", "--model", "resnet50", "--batch", "4096", "--machine", "exapod", "--trace", path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let step = try #require(try json(r.stdout)["stepSeconds"] as? Double)
        let doc = try json(try String(contentsOfFile: path, encoding: .utf8))
        let events = try #require(doc["traceEvents"] as? [[String: Any]])
        let spans = events.filter { $0["ph"] as? String == "X" }
        #expect(spans.count > 100)
        #expect(events.contains { $0["ph"] as? String == "M" && $0["name"] as? String == "process_name" })
        #expect(spans.contains { ($0["name"] as? String ?? "").hasPrefix("conv2d ") })
        #expect(spans.allSatisfy { ($0["ts"] as? Double ?? -1) >= 0 && ($0["dur"] as? Double ?? -1) >= 0 })
        let end = spans.map { ($0["ts"] as? Double ?? 0) + ($0["dur"] as? Double ?? 0) }.max() ?? 0
        // a data-parallel plan: the timeline is the step model's sum, event by event (µs)
        #expect(abs(end / 1e6 - step) < 0.01 * step, "trace ends at \(end) µs, step \(step) s")

        // a pipeline: one process per stage
        let pipe = dir.appendingPathComponent("p.json").path
        let p = runDojo(["sim", "--model", "gpt-125m", "--batch", "32", "--machine", "dgx-h100", "--plan", "pp=4,tp=2", "--trace", pipe])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(p.stdout.contains("trace written to \(pipe)"))
        let pdoc = try json(try String(contentsOfFile: pipe, encoding: .utf8))
        let stages = Set((pdoc["traceEvents"] as? [[String: Any]] ?? []).compactMap { $0["pid"] as? Int })
        #expect(stages == [0, 1, 2, 3])
    }

    @Test("sim: a fully given plan is honoured exactly")
    func fullPlan() throws {
        let plan = "dp=16,tp=2,pp=2,mb=4,micro=64,vp=1,recompute=selective,zero=1,sp=1"
        let r = runDojo(["sim", "--model", "resnet50", "--batch", "4096", "--machine", "exapod", "--plan", plan])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(field(r.stdout, "plan") == "\(plan)  (tensor + pipeline)", "\(r.stdout)")
        #expect(r.stdout.contains("(64 of 3,000 D1)"))
        // a partial plan: the given keys are kept, the rest searched
        let part = runDojo(["sim", "--model", "gpt-1.3b", "--batch", "64", "--machine", "dgx-h100x4", "--plan", "tp=8,pp=4", "--json"])
        #expect(part.status == 0, "\(part.stderr)")
        let p = try #require(try json(part.stdout)["plan"] as? [String: Any])
        #expect(p["tensorParallel"] as? Int == 8 && p["pipelineParallel"] as? Int == 4)
    }

    @Test("sim --devices 4 uses at most 4 devices of the machine")
    func deviceLimit() throws {
        let r = runDojo(["sim", "--model", "resnet50", "--batch", "4096", "--machine", "exapod", "--devices", "4", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try json(r.stdout)
        let used = try #require(o["devicesUsed"] as? Int)
        #expect(used >= 1 && used <= 4)
        let text = runDojo(["sim", "--model", "resnet50", "--batch", "4096", "--machine", "exapod", "--devices", "4"])
        #expect(text.stdout.contains("of 3,000 D1)"))
        #expect(!text.stdout.contains("(all "))
    }

    @Test("sim --precision cfp8 on a GPU runs as FP8 and says so")
    func cfp8OnGPU() {
        let r = runDojo(["sim", "--model", "gpt-125m", "--batch", "16", "--machine", "dgx-h100", "--precision", "cfp8"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("global batch 16, fp8\n"))
        #expect(r.stdout.contains("cfp8 is Dojo's 8-bit format"))
    }

    @Test("compare: a row per machine with devices, plan and rates; the SVG names every machine and value")
    func compare() throws {
        let (dir, remove) = try tempDir()
        defer { remove() }
        let svg = dir.appendingPathComponent("c.svg").path
        let r = runDojo(["compare", "--model", "resnet50", "--batch", "256", "--machines", "tile,exapod,dgx-h100x8", "--svg", svg])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("resnet50, global batch 256, bf16"))
        for s in ["machine power", "samples/s per kW", "chart written to \(svg)"] { #expect(r.stdout.contains(s), "missing \(s)") }
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(text.contains("<svg"))
        for s in [">tile<", ">exapod<", ">dgx-h100x8<", "samples/s"] { #expect(text.contains(s), "SVG lacks \(s)") }
        let lines = r.stdout.split(separator: "\n").map(String.init)
        for (name, device) in [("tile", "D1"), ("exapod", "D1"), ("dgx-h100x8", "H100")] {
            let row = try #require(lines.first { $0.hasPrefix(name + " ") }, "no row for \(name)")
            let cells = row.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            // machine, devices used, plan, step, samples/s, MFU, bound, machine power, samples/s per kW
            #expect(cells.count == 9, "\(row)")
            guard cells.count == 9 else { continue }
            #expect(cells[1].contains(device) && cells[2].hasPrefix("dp="), "\(row)")
            let mfu = Double(cells[5].dropLast()) ?? -1
            #expect(mfu > 0 && mfu < 100, "\(row)")
            // the SVG labels each bar with the table's value
            #expect(text.contains(">\(cells[4])<"), "SVG lacks \(name)'s \(cells[4])")
        }

        let j = runDojo(["compare", "--model", "resnet50", "--batch", "256", "--machines", "tile,exapod,dgx-h100x8", "--json"])
        #expect(j.status == 0, "\(j.stderr)")
        let rows = try #require(try json(j.stdout)["machines"] as? [[String: Any]])
        #expect(rows.map { $0["machine"] as? String } == ["tile", "exapod", "dgx-h100x8"])
        #expect(rows.allSatisfy { ($0["powerWatts"] as? Double ?? 0) > 0 && $0["prediction"] != nil })
        // the exapod (3,000 D1) beats one tile (25 D1)
        let rates = rows.map { ($0["prediction"] as? [String: Any])?["samplesPerSecond"] as? Double ?? 0 }
        #expect(rates[1] > rates[0])
    }

    @Test("compare: a machine where nothing fits is a row saying so, with the reason; exit 0 while another fits")
    func compareNoFit() {
        let r = runDojo(["compare", "--model", "gpt-175b", "--batch", "1536", "--machines", "d1,dgx-h100x64"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("no plan fits"))
        #expect(r.stdout.contains("d1: no plan fits: even the closest plan"))
        #expect(r.stdout.contains("H100 SXM5 80GB  dp="))
    }

    @Test("sweep: a row per value, the SVG with the parameter and its unit, throughput never falls with more SRAM")
    func sweep() throws {
        let (dir, remove) = try tempDir()
        defer { remove() }
        let svg = dir.appendingPathComponent("s.svg").path
        let r = runDojo(["sweep", "--machine", "tile", "--vary", "node.sram_bytes=0.5MB..4MB", "--model", "resnet50",
                         "--batch", "1024", "--svg", svg])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("varying node.sram_bytes"))
        for v in ["0.5MB", "1MB", "2.5MB", "4MB"] {
            #expect(r.stdout.contains("\n" + String(repeating: " ", count: 15 - v.count) + v + "  "), "no row \(v)")
        }
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(text.contains("<svg"))
        #expect(text.contains("node.sram_bytes (MB)"))
        #expect(text.contains("resnet50 on tile"))

        let j = runDojo(["sweep", "--machine", "tile", "--vary", "node.sram_bytes=0.5MB..4MB", "--steps", "4",
                         "--model", "resnet50", "--batch", "1024", "--json"])
        #expect(j.status == 0, "\(j.stderr)")
        let o = try json(j.stdout)
        #expect(o["parameter"] as? String == "node.sram_bytes" && o["unit"] as? String == "MB")
        let points = try #require(o["points"] as? [[String: Any]])
        #expect(points.map { $0["value"] as? String } == ["0.5MB", "1.667MB", "2.833MB", "4MB"])
        let rates = points.map { ($0["prediction"] as? [String: Any])?["samplesPerSecond"] as? Double ?? 0 }
        #expect(rates.allSatisfy { $0 > 0 })
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $1 >= $0 * (1 - 1e-9) }, "\(rates)")
    }

    @Test("sweep: more matrix efficiency never lowers throughput (a list of values, out of order)")
    func sweepEfficiency() throws {
        let r = runDojo(["sweep", "--machine", "tile", "--vary", "calibration.matrix_efficiency=0.5,0.9,0.6", "--model", "resnet50",
                         "--batch", "1024", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let points = try #require(try json(r.stdout)["points"] as? [[String: Any]])
        #expect(points.map { $0["value"] as? String } == ["0.5", "0.9", "0.6"])
        let byValue = points.map { ($0["number"] as? Double ?? 0, ($0["prediction"] as? [String: Any])?["samplesPerSecond"] as? Double ?? 0) }
            .sorted { $0.0 < $1.0 }
        #expect(byValue.allSatisfy { $0.1 > 0 })
        #expect(zip(byValue, byValue.dropFirst()).allSatisfy { $1.1 > $0.1 }, "\(byValue)")
        let text = runDojo(["sweep", "--machine", "tile", "--vary", "calibration.matrix_efficiency=0.5,0.9", "--model", "resnet50", "--batch", "1024"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("(1.00×)"))
    }

    @Test("train --predict: the predicted cost on each machine before the first epoch ends, and again at the end")
    func trainPredict() throws {
        let (dir, remove) = try tempDir()
        defer { remove() }
        let r = runDojo(["train", "--steps", "3", "--predict", "--machine", "tile,dgx-h100", "--out", dir.path, "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.stdout
        let tables = out.components(separatedBy: "predicted cost of this step (batch 32, fp32) on other machines")
        #expect(tables.count == 3, "\(out)")
        let first = try #require(out.range(of: "predicted cost of this step"))
        let epoch = try #require(out.range(of: "epoch 1: train loss"))
        #expect(first.lowerBound < epoch.lowerBound)
        let lines = out.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("tile ") && $0.contains("D1") && $0.contains("dp=") })
        #expect(lines.contains { $0.hasPrefix("dgx-h100 ") && $0.contains("H100") && $0.contains("dp=") })
    }

    // MARK: wrong input

    /// One wrong input: the arguments and what the one-line message must contain.
    struct Wrong: Sendable, CustomTestStringConvertible {
        var args: [String]
        var message: [String]
        var testDescription: String { args.joined(separator: " ") }
    }

    /// Fails unless `r` is a clean refusal: non-zero exit, one line `Error: …` on stderr containing `message`.
    func expectRefused(_ r: (status: Int32, stdout: String, stderr: String), _ message: [String], _ what: String) {
        #expect(r.status != 0, "\(what): exit 0")
        #expect(r.status != -1, "\(what): \(r.stderr)")
        #expect(r.status < 128, "\(what): killed by signal (crash?)")
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "\(what): expected one line, got:\n\(r.stderr)")
        #expect(r.stderr.hasPrefix("Error: "), "\(what): \(r.stderr)")
        for m in message { #expect(r.stderr.contains(m), "\(what): '\(m)' not in: \(r.stderr)") }
    }

    static let simBase = ["sim", "--model", "resnet50", "--batch", "4096", "--machine", "exapod"]

    static let wrongSim: [Wrong] = [
        Wrong(args: simBase + ["--plan", "dp=3"], message: ["dp=3", "4,096", "does not divide"]),
        Wrong(args: simBase + ["--plan", "xx=1"], message: ["--plan xx=1", "unknown plan key 'xx'", "dp, tp, pp"]),
        Wrong(args: simBase + ["--plan", "tp=0"], message: ["tp=0", "whole number"]),
        Wrong(args: simBase + ["--plan", "recompute=some"], message: ["recompute=some", "none, selective, op or full"]),
        Wrong(args: simBase + ["--plan", "recompute=op"], message: ["recompute=op", "no attention"]),
        Wrong(args: simBase + ["--plan", "dp=4096,tp=2"], message: ["dp × tp = 4,096 × 2 = 8,192 D1", "exapod has 3,000"]),
        Wrong(args: simBase + ["--plan", "tp=4000"], message: ["tp=4000 needs 4,000 D1", "exapod has 3,000"]),
        Wrong(args: simBase + ["--plan", "tp=5000"], message: ["tp=5000 is more than 4096"]),
        Wrong(args: simBase + ["--devices", "4", "--plan", "dp=8"], message: ["dp=8 needs 8 D1", "--devices allows 4"]),
        Wrong(args: simBase + ["--plan", "pp=100"], message: ["pp=100", "resnet50 has only 22 layers"]),
        Wrong(args: simBase + ["--plan", "dp=2,dp=4"], message: ["dp is given twice"]),
        // sizes that overflowed or hung (issue 12): bounded, with the reason (DojoMachine.Limits)
        Wrong(args: ["sim", "--model", "resnet50", "--batch", "10000000000000000", "--machine", "tile"], message: ["--batch is 10000000000000000", "the most samples a step may have"]),
        Wrong(args: ["sim", "--model", "resnet50", "--batch", "4398046511104", "--machine", "tile"], message: ["--batch is 4398046511104"]),
        Wrong(args: ["sim", "--model", "resnet50", "--batch", "64", "--machine", "exapodx10000000000000"], message: ["would make exapod more than 4294967296 devices", "at most ×1431655"]),
        Wrong(args: simBase + ["--plan", "pp=4,vp=6"], message: ["24 model chunks", "only 22 layers"]),
        Wrong(args: simBase + ["--plan", "vp=2"], message: ["vp=2", "give pp=2 or more"]),
        Wrong(args: simBase + ["--plan", "tp=1,sp=1"], message: ["sp=1", "tp=2 or more"]),
        Wrong(args: simBase + ["--plan", "dp=1,zero=1"], message: ["zero=1", "dp=2 or more"]),
        Wrong(args: simBase + ["--plan", "mb=3"], message: ["mb=3", "4,096", "micro-batches of 3"]),
        Wrong(args: simBase + ["--plan", "micro=5"], message: ["micro=5", "5 micro-batches"]),
        Wrong(args: simBase + ["--plan", "dp=2,mb=2,micro=512"], message: ["dp × mb × micro = 2,048", "global batch is 4,096"]),
        Wrong(args: simBase + ["--precision", "int4"], message: ["--precision 'int4'", "fp32, tf32, fp16, bf16, cfp8, fp8"]),
        Wrong(args: ["sim", "--model", "nosuch"], message: ["unknown model 'nosuch'", "resnet50"]),
        Wrong(args: ["sim", "--model", "gpt:layers=x"], message: ["gpt:layers=x", "'layers'", "whole number"]),
        Wrong(args: ["sim", "--machine", "nosuch"], message: ["unknown machine 'nosuch'", "exapod", "dgx-h100"]),
        Wrong(args: ["sim", "--machine", "tile,exapod"], message: ["one machine", "dojo compare --machines tile,exapod"]),
        Wrong(args: ["sim", "--machine", "tile", "--set", "node.sram_bytes=-1"], message: ["--set node.sram_bytes=-1 (on tile): node.sram_bytes: must be positive, got -1"]),
        Wrong(args: ["sim", "--machine", "tile", "--set", "node.sram_bytes"], message: ["--set 'node.sram_bytes' is not KEY=VALUE"]),
        Wrong(args: ["sim", "--machine", "tile", "--set", "no.such=1"], message: ["no.such: unknown key"]),
        Wrong(args: ["sim", "--assume", "fusion=2"], message: ["--assume fusion=2", "must be 0 or 1"]),
        Wrong(args: ["sim", "--assume", "speed=2"], message: ["unknown assumption 'speed'", "memory_headroom", "fusion"]),
        Wrong(args: ["sim", "--assume", "memory_headroom=lots"], message: ["memory_headroom=lots", "not a number"]),
        Wrong(args: ["sim", "--batch", "0"], message: ["--batch must be at least 1, got 0"]),
        Wrong(args: ["sim", "--devices", "0"], message: ["--devices must be 1…4294967296", "got 0"]),
        Wrong(args: ["sim", "--trace", "/nonexistent-dir/t.json"], message: ["--trace /nonexistent-dir/t.json: its folder /nonexistent-dir does not exist"]),
    ]

    @Test("sim: wrong input is one line naming the problem, non-zero exit", arguments: wrongSim)
    func simWrong(_ w: Wrong) {
        let r = runDojo(w.args)
        expectRefused(r, w.message, w.testDescription)
        #expect(r.stdout.isEmpty, "\(w.testDescription): printed \(r.stdout)")
    }

    @Test("sim: a micro-batch fixed without dp finds the replicas that leave whole micro-batches")
    func fixedMicroBatch() {
        let r = runDojo(Self.simBase + ["--plan", "tp=1,pp=1,mb=4"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("plan        dp=1024,tp=1,pp=1,mb=4,micro=1"), "\(r.stdout)")
    }

    @Test("sim: a model that cannot fit says what does not fit and by how much")
    func noFit() {
        let r = runDojo(["sim", "--model", "gpt-175b", "--batch", "1536", "--machine", "d1"])
        expectRefused(r, ["no plan fits", "closest plan", "per D1", "weights 349 GB", "optimizer state 2.1 TB",
                          "398 MB usable", "× too much"], "gpt-175b on d1")
    }

    @Test("sim --machine FILE: an unknown key and an impossible value name the file and the key")
    func badMachineFile() throws {
        let (dir, remove) = try tempDir()
        defer { remove() }
        let good = """
        name: big-sram
        kind: dojo
        summary: D1 with 2.5 MB per node
        top: d1
        count: 1
        node: {clock: 2GHz, matrix_flops_per_cycle: 512, fp32_flops_per_cycle: 32, matrix_block: 8, sram_bytes: 2.5MB,
               sram_load_bandwidth: 400GB/s, sram_store_bandwidth: 270GB/s, link_bytes_per_cycle: 64B,
               hop_latency_cycles: 1, threads: 4, accumulator: fp32}
        d1: {nodes: 354, mesh_rows: 18, mesh_cols: 20, routing: dimension-order, serdes_channels: 576,
             serdes_rate: 112Gb/s, edge_bandwidth: 2TB/s, die_to_die_latency: 100ns, tdp: 400W}
        calibration: {matrix_efficiency: 0.8, vector_efficiency: 0.7, link_efficiency: 0.9, memory_efficiency: 0.9}
        """
        let files: [(String, String, [String])] = [
            ("good.yaml", good, []),
            ("unknown.yaml", good.replacingOccurrences(of: "threads: 4", with: "threads: 4, cache: 1MB"), ["unknown.yaml: node.cache: unknown key"]),
            ("impossible.yaml", good.replacingOccurrences(of: "mesh_rows: 18", with: "mesh_rows: 2"),
             ["impossible.yaml: d1.mesh_rows", "smaller than d1.nodes = 354"]),
            ("negative.yaml", good.replacingOccurrences(of: "clock: 2GHz", with: "clock: -2GHz"), ["negative.yaml: node.clock: must be positive"]),
        ]
        for (name, text, message) in files {
            let path = dir.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let r = runDojo(["sim", "--model", "resnet50", "--batch", "64", "--machine", path])
            if message.isEmpty {
                #expect(r.status == 0, "\(r.stderr)")
                #expect(r.stdout.hasPrefix("resnet50 on big-sram (all 1 D1)"), "\(r.stdout)")
            } else {
                expectRefused(r, message, name)
            }
        }
        expectRefused(runDojo(["sim", "--machine", dir.path]), ["is a directory"], "a directory")
    }

    static let wrongCompare: [Wrong] = [
        Wrong(args: ["compare", "--machines", "tile,nosuch"], message: ["unknown machine 'nosuch'"]),
        Wrong(args: ["compare", "--machines", ","], message: ["--machines is empty"]),
        Wrong(args: ["compare", "--machines", "tile", "--plan", "dp=3"], message: ["dp=3", "does not divide"]),
        Wrong(args: ["compare", "--machines", "tile", "--model", "nosuch"], message: ["unknown model 'nosuch'"]),
        Wrong(args: ["compare", "--machines", "tile,dgx-h100", "--svg", "/nonexistent-dir/c.svg"], message: ["--svg /nonexistent-dir/c.svg: its folder /nonexistent-dir does not exist"]),
    ]

    @Test("compare: wrong input is one line naming the problem, before anything is simulated", arguments: wrongCompare)
    func compareWrong(_ w: Wrong) {
        let r = runDojo(w.args)
        expectRefused(r, w.message, w.testDescription)
    }

    @Test("compare: when no machine fits, the table and the reasons, then exit 1")
    func compareNothingFits() {
        let r = runDojo(["compare", "--model", "gpt-175b", "--batch", "1536", "--machines", "d1,tile"])
        expectRefused(r, ["no plan fits on any of d1, tile"], "nothing fits")
        #expect(r.stdout.contains("tile: no plan fits: even the closest plan"))
    }

    static let sweepBase = ["sweep", "--machine", "tile", "--model", "resnet50", "--batch", "1024", "--vary"]

    static let wrongSweep: [Wrong] = [
        Wrong(args: sweepBase + ["node.sram_bytes=4MB..1GHz"], message: ["same unit", "'MB' vs 'GHz'"]),
        Wrong(args: sweepBase + ["node.sram_bytes=1MB,512kB"], message: ["same unit", "'MB' vs 'kB'"]),
        Wrong(args: sweepBase + ["no.such=1..2"], message: ["--vary no.such=1", "no.such: unknown key"]),
        Wrong(args: sweepBase + ["node.sram_bytes=2GHz..4GHz"], message: ["node.sram_bytes: expected bytes"]),
        Wrong(args: sweepBase + ["calibration.matrix_efficiency=0.5..1.5"], message: ["calibration.matrix_efficiency: must be in (0, 1]"]),
        Wrong(args: sweepBase + ["node.sram_bytes=abc"], message: ["'abc' is not a number"]),
        Wrong(args: sweepBase + ["node.sram_bytes"], message: ["--vary 'node.sram_bytes' is not KEY=VALUE"]),
        Wrong(args: sweepBase + ["node.sram_bytes=1MB..2MB", "--steps", "1"], message: ["--steps must be at least 2"]),
        Wrong(args: sweepBase + ["node.sram_bytes=1MB..2MB", "--steps", "100000000000"], message: ["--steps is 100000000000, more than 100"]),
        Wrong(args: sweepBase + ["node.sram_bytes=-1MB..2MB", "--log"], message: ["--log needs both ends above 0"]),
        Wrong(args: sweepBase + ["count=1..9223372036854775807"], message: ["the most any count in a machine may be"]),
        Wrong(args: sweepBase + ["node.sram_bytes=1e20..1e308"], message: ["node.sram_bytes"]),
        Wrong(args: sweepBase + ["count=1..100000000000"], message: ["more than 2147483648, the most any count in a machine may be"]),
    ]

    @Test("sweep: wrong input is one line naming the problem", arguments: wrongSweep)
    func sweepWrong(_ w: Wrong) {
        let r = runDojo(w.args)
        expectRefused(r, w.message, w.testDescription)
        #expect(r.stdout.isEmpty, "\(w.testDescription): printed \(r.stdout)")
    }

    @Test("train --predict --machine nosuch fails before training")
    func trainWrong() throws {
        let (dir, remove) = try tempDir()
        defer { remove() }
        let out = dir.appendingPathComponent("run").path
        let r = runDojo(["train", "--steps", "3", "--predict", "--machine", "nosuch", "--out", out])
        expectRefused(r, ["--machine", "unknown machine 'nosuch'"], "train --machine nosuch")
        #expect(r.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: out), "it started training")
    }
}
