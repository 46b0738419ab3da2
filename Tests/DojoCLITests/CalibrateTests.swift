import Foundation
import Testing

/// Issue 10 §4: `dojo machine calibrate` measures this machine through the engine; `dojo sim` predicts on the file;
/// `dojo validate --local` runs plans for real beside the prediction.
@Suite("dojo machine calibrate and dojo validate --local", .serialized)
struct CalibrateTests {
    /// A small cpu machine file (2 cores, one op kind measured).
    static let smallMachine = """
    name: h
    kind: cpu
    summary: "test"
    count: 1
    cpu:
      model: "x"
      cores: 2
      ranks_per_host: 2
      memory_bytes: 8GB
      thread_efficiency: 0.9
      shared_speed: 1
      step_overhead: 0s
      stream_bandwidth: 10GB/s
      op_overhead: 1us
      ops:
        conv2d:
          forward: {rate: 50GFLOP/s, overhead: 1us, speedup: 1.8}
    network:
      local_bandwidth: 5GB/s
      local_latency: 1us
      host_bandwidth: 0B/s
      host_latency: 0s
    calibration:
      matrix_efficiency: 1
      vector_efficiency: 1
      link_efficiency: 1
      memory_efficiency: 1
    """

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "dojo-cal-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test("calibrate writes a strict cpu machine file, every figure measured; sim predicts on it; validate --local runs ≥ 5 plans beside the prediction")
    func calibrateSimAndValidate() throws {
        guard DistributedTrainTests.mpirun else { Issue.record("Open MPI is not installed (make test installs it)"); return }
        let d = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let file = d + "/host.yaml"
        let cal = runDojo(["machine", "calibrate", "--out", file])
        #expect(cal.status == 0, "\(cal.stderr)")
        #expect(cal.stdout.contains("all-reduce between ranks of a host"), "\(cal.stdout)")
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        #expect(text.contains("kind: cpu"))
        for kind in ["conv2d:", "matmul:", "batchNorm:", "relu:", "maxPool2d:", "sgdUpdate:", "adamwUpdate:"] {
            #expect(text.contains(kind), "the file has no fitted \(kind)")
        }
        // the matrix products' cost by the byte beside the FLOP rate (the linear-layer probe's skinny and large products
        // tell the two apart), forward and backward
        let matmul = text.components(separatedBy: "    matmul:\n").dropFirst().first?.split(separator: "\n").prefix(2) ?? []
        #expect(matmul.count == 2 && matmul.allSatisfy { $0.contains("byte_rate: {value: ") }, "\(matmul)")
        let show = runDojo(["machine", "show", file])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("MEASURED: dojo machine calibrate"), "\(show.stdout)")
        #expect(show.stdout.contains("cpu.ops.conv2d.forward.rate"), "every fitted rate is listed with its provenance")

        let one = runDojo(["sim", "--machine", file, "--model", "small-cnn", "--batch", "64", "--precision", "fp32", "--plan", "dp=1"])
        let two = runDojo(["sim", "--machine", file, "--model", "small-cnn", "--batch", "64", "--precision", "fp32", "--plan", "dp=2"])
        #expect(one.status == 0 && two.status == 0, "\(one.stderr)\(two.stderr)")
        #expect(one.stdout.contains("all 1 rank") && two.stdout.contains("all 2 rank"), "the plan's ranks lay the machine out: \(one.stdout)\(two.stdout)")
        #expect(two.stdout.contains("data-parallel comm"), "\(two.stdout)")
        // the planner searches what the engine runs (no tensor parallelism, ZeRO or sequence parallelism on CPU hosts);
        // a cpu machine has no power figure
        let cmp = runDojo(["compare", "--machines", file + ",tile", "--model", "small-cnn", "--batch", "64", "--precision", "fp32"])
        #expect(cmp.status == 0, "\(cmp.stderr)")
        let hostLine = cmp.stdout.split(separator: "\n").first { $0.hasPrefix(file) } ?? ""
        #expect(hostLine.contains("tp=1") && hostLine.contains("zero=0") && hostLine.contains("sp=0") && !hostLine.contains("inf"), "\(cmp.stdout)")

        // --measure: the same step run here op by op beside the prediction, grouped as the costliest-ops table groups them
        let ms = runDojo(["sim", "--machine", file, "--model", "small-cnn", "--batch", "32", "--precision", "fp32", "--plan", "dp=1",
                          "--measure", "--json"])
        #expect(ms.status == 0, "\(ms.stderr)")
        let mj = ((try? JSONSerialization.jsonObject(with: Data(ms.stdout.utf8))) as? [String: Any])?["measured"] as? [String: Any]
        let rows = mj?["rows"] as? [[String: Any]] ?? []
        let conv = rows.first { $0["kind"] as? String == "conv2d" && $0["phase"] as? String == "forward" }
        #expect((conv?["predicted_s"] as? Double ?? 0) > 0 && (conv?["measured_s"] as? Double ?? 0) > 0, "\(rows)")
        let opsMeasured = mj?["ops_measured_s"] as? Double ?? 0, stepMeasured = mj?["step_measured_s"] as? Double ?? 0
        let stepPredicted = mj?["step_predicted_s"] as? Double ?? 0
        #expect(opsMeasured > 0 && opsMeasured <= stepMeasured, "\(mj ?? [:])")
        // small-cnn's two convolutions in one group, on both sides; no group the prediction lacks
        #expect(conv?["ops"] as? Int == 2, "\(conv ?? [:])")
        // every group that takes time here is one the simulator priced (a reshape's view costs only the glue before it)
        #expect(rows.allSatisfy { ($0["measured_s"] as? Double ?? 0) < 0.02 * opsMeasured || $0["predicted_s"] != nil }, "\(rows)")
        // (here other suites share the cores: a broken unit is 1000× off, not 25×; under make test one run measured
        // this step at 10.2× its prediction, every op slowed to a 16 ms time slice)
        #expect(stepPredicted > 0 && abs(log(stepPredicted / stepMeasured)) < log(25.0), "\(mj ?? [:])")
        let table = runDojo(["sim", "--machine", file, "--model", "small-cnn", "--batch", "32", "--precision", "bf16", "--plan", "dp=1", "--measure"])
        #expect(table.status == 0 && table.stdout.contains("predicted ÷ measured") && table.stdout.contains("forward and backward ops"), "\(table.stdout)\(table.stderr)")
        for (args, message) in [(["--plan", "dp=2"], "--measure runs the step here as one rank"),
                                (["--plan", "dp=1", "--precision", "fp16"], "--precision fp32, bf16 or cfp8"),
                                (["--plan", "dp=1", "--machine", "dgx-a100"], "--machine must be a cpu machine file")] {
            var a = ["sim", "--machine", file, "--model", "small-cnn", "--batch", "32", "--precision", "fp32", "--measure"]
            for k in stride(from: 0, to: args.count, by: 2) {
                if let i = a.firstIndex(of: args[k]) { a[i + 1] = args[k + 1] } else { a += [args[k], args[k + 1]] }
            }
            let r = runDojo(a)
            #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr)")
        }

        // Plans of the default list covering its models, rank counts and kinds of parallelism (and, as root, the two
        // over namespace hosts), measured and predicted; the mean error is printed against the goal. The whole list runs
        // in `make bench`: here it shares 2 cores with the suites that time a stop or a server's replies.
        let subset = ["small-cnn 1 rank", "small-cnn dp=2", "occupancy dp=1,pp=2", "occupancy dp=4", "vit-tiny 1 rank", "hosts"]
        let v = runDojo(["validate", "--local", "--machine", file, "--steps", "6", "--rounds", "1", "--json"] + subset.flatMap { ["--only", $0] })
        #expect(v.status == 0, "\(v.stderr)")
        let json = (try? JSONSerialization.jsonObject(with: Data(v.stdout.utf8))) as? [String: Any]
        let cases = json?["cases"] as? [[String: Any]] ?? []
        #expect(cases.count >= 5, "\(v.stdout)")
        #expect(Set(cases.compactMap { $0["model"] as? String }) == ["small-cnn", "occupancy", "vit-tiny"])
        #expect(Set(cases.compactMap { $0["ranks"] as? Int }) == [1, 2, 4])
        #expect(cases.contains { ($0["plan"] as? String)?.contains("pp=2") == true } && cases.contains { $0["plan"] as? String == "dp=2" })
        for c in cases {
            let p = c["predicted"] as? Double ?? 0, m = c["measured"] as? Double ?? 0
            #expect(p > 0 && m > 0 && p < 10 && m < 10, "\(c)")
        }
        let mean = json?["mean_abs_error"] as? Double ?? .nan
        print("validate --local: mean |error| \(mean) over \(cases.count) plans; max \(json?["max_abs_error"] ?? "?")")
        // The goal (≤ 15 %) is measured alone and recorded in docs/BENCHMARKS.md: here other suites share the 2 cores and
        // slow the measured runs by up to 5× (one run, stalled behind the hostile-tenant suite, measured 21× its
        // prediction), so this guards against a broken model only (a wrong unit is 1000× off): the median prediction
        // within 8× of its measurement, every one within 100×.
        #expect(mean.isFinite)
        let ratios = cases.map { c -> Double in abs(log((c["predicted"] as? Double ?? 0) / (c["measured"] as? Double ?? 1))) }.sorted()
        #expect(!ratios.isEmpty && ratios[ratios.count / 2] < log(8.0), "\(cases)")
        #expect(ratios.allSatisfy { $0 < log(100.0) }, "\(cases)")

        // --rounds: each plan run that many times, its measured step the median of the runs
        let r = runDojo(["validate", "--local", "--machine", file, "--steps", "5", "--rounds", "3", "--only", "small-cnn 1 rank", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rc = ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any])?["cases"] as? [[String: Any]] ?? []
        #expect(rc.count == 1, "\(r.stdout)")
        if let c = rc.first, let runs = c["runs"] as? [Double], let m = c["measured"] as? Double {
            #expect(runs.count == 3 && runs.allSatisfy { $0 > 0 })
            #expect(m == runs.sorted()[1], "\(c)")
        } else {
            Issue.record("no runs in \(r.stdout)")
        }
    }

    @Test("bad input: one error line each, nothing written")
    func badInput() throws {
        let d = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try FileManager.default.createSymbolicLink(atPath: d + "/link.yaml", withDestinationPath: "/dev/null")
        for (args, message) in [
            (["machine", "calibrate", "--out", d + "/missing/host.yaml"], "the folder \(d)/missing does not exist"),
            (["machine", "calibrate", "--out", d], "is a folder; give a file name"),
            (["machine", "calibrate", "--out", d + "/h.yaml", "--ranks", "0"], "--ranks must be 1…256, got 0"),
            (["machine", "calibrate", "--out", d + "/h.yaml", "--launcher", "/bin/true"], "--launcher and --network go with --hostfile"),
            (["validate", "--local", "--machine", "dgx-h100"], "is a gpu machine; --local predicts on a cpu machine file"),
            (["validate", "--steps", "8"], "--machine, --steps and --rounds go with --local"),
            (["validate", "--rounds", "2"], "--machine, --steps and --rounds go with --local"),
            (["validate", "--local", "--rounds", "0"], "--rounds must be 1…20, got 0"),
            (["validate", "--local", "--steps", "2"], "--steps must be 5…10000, got 2"),
            (["validate", "--local", "--machine", d + "/nope.yaml"], "nope.yaml"),
            (["formats", "bench", "--format", "bf16", "--count", "9223372036854775807"], "--count is 9223372036854775807, more than 134217728"),
            (["bench", "--only", "small-cnn", "--rounds", "0"], "--rounds must be 1…50, got 0"),
            // checked before anything is measured; special files are never replaced
            (["machine", "calibrate", "--out", "/dev/full"], "--out /dev/full is a device or special file"),
            (["machine", "calibrate", "--out", d + "/link.yaml"], "is a symbolic link"),
            (["machine", "calibrate", "--out", ""], "--out needs a file name"),
            (["machine", "calibrate", "--out", d + "/h.yaml", "--name", "a: b"], "--name must be 1-64 letters"),
            (["machine", "calibrate", "--out", d + "/h.yaml", "--hostfile", d + "/nope"], "cannot read it (no such file)"),
            (["machine", "calibrate", "--out", d + "/h.yaml", "--hostfile", "/etc/hostname", "--network", "300.1.1.0/99"], "--network must be an IPv4 network as CIDR"),
        ] {
            let r = runDojo(args)
            #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stderr.components(separatedBy: "Error:").count == 2, "one error line: \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: d + "/h.yaml"))
        var isDevice = stat()
        #expect(lstat("/dev/full", &isDevice) == 0 && (isDevice.st_mode & S_IFMT) == S_IFCHR, "/dev/full is still a device")
        // A damaged machine file: an op kind the IR does not have, a missing figure.
        let good = CalibrateTests.smallMachine
        try good.write(toFile: d + "/good.yaml", atomically: true, encoding: .utf8)
        let ok = runDojo(["machine", "show", d + "/good.yaml"])
        #expect(ok.status == 0, "\(ok.stderr)")
        for (from, to, message) in [("conv2d:", "convolution:", "cpu.ops.convolution: not an op kind of the Graph IR"),
                                    ("  op_overhead: 1us\n", "", "cpu.op_overhead"),
                                    ("count: 1", "count: 2", "network.host_bandwidth: must be positive for 2 hosts"),
                                    ("speedup: 1.8", "speedup: -1", "speedup"),
                                    ("kind: cpu", "kind: cpu\ntop: tile", "top: not a key of a cpu machine"),
                                    // values that made the step nan or inf: bounded
                                    ("op_overhead: 1us", "op_overhead: 1e308s", "outside 1e-30…1e30"),
                                    ("rate: 50GFLOP/s", "rate: 1e-308FLOP/s", "outside 1e-30…1e30"),
                                    ("shared_speed: 1", "shared_speed: 1e-308", "below 1e-6"),
                                    // a byte rate beside the FLOP rate is for matrix kinds only
                                    ("    conv2d:\n      forward: {rate: 50GFLOP/s, overhead: 1us, speedup: 1.8}",
                                     "    relu:\n      forward: {rate: 5GB/s, overhead: 1us, speedup: 1.8, byte_rate: 1GB/s}",
                                     "cpu.ops.relu.forward.byte_rate: only matrix kinds (conv2d, matmul) take a byte_rate"),
                                    ("speedup: 1.8}", "speedup: 1.8, byte_rate: 0B/s}", "byte_rate")] {
            try good.replacingOccurrences(of: from, with: to).write(toFile: d + "/bad.yaml", atomically: true, encoding: .utf8)
            let r = runDojo(["machine", "show", d + "/bad.yaml"])
            #expect(r.status != 0 && r.stderr.contains(message), "\(from) → \(to): \(r.stderr)")
        }
    }
}

/// `--assume host_input_seconds`: on a CPU machine each rank's loader prepares its share of the batch on the cores
/// the rank computes on, and the step grows by that work over the rank's threads.
@Suite("Host input on a CPU machine")
struct HostInputTests {
    @Test("the data's preparation is priced on each rank's cores: its share of the batch over its threads")
    func pricedOnTheRanksCores() throws {
        let d = CalibrateTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let yaml = CalibrateTests.smallMachine
        try yaml.write(toFile: d + "/h.yaml", atomically: true, encoding: .utf8)
        func step(_ plan: String, _ assume: [String]) throws -> (Double, Double) {
            let r = runDojo(["sim", "--machine", d + "/h.yaml", "--model", "small-cnn", "--batch", "64", "--precision", "fp32",
                             "--plan", plan, "--json"] + assume.flatMap { ["--assume", $0] })
            #expect(r.status == 0, "\(r.stderr)")
            let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let input = (o?["breakdown"] as? [String: Any])?["input"] as? Double ?? -1
            return (o?["stepSeconds"] as? Double ?? 0, input)
        }
        // one rank, two threads: 64 samples × 1 ms ÷ 2 = 32 ms; two data-parallel ranks, one thread each: 32 × 1 ms;
        // two pipeline stages of one replica: each prepares the replica's 64 samples on its one thread
        for (plan, extra) in [("dp=1,pp=1", 0.032), ("dp=2,pp=1", 0.032), ("dp=1,pp=2,micro=2", 0.064)] {
            let (base, noInput) = try step(plan, [])
            let (priced, input) = try step(plan, ["host_input_seconds=0.001"])
            #expect(noInput == 0, "\(plan)")
            #expect(abs(input - extra) < 1e-9, "\(plan): input \(input)")
            #expect(abs(priced - base - extra) < 1e-6, "\(plan): \(base) → \(priced)")
        }
        let bad = runDojo(["sim", "--machine", d + "/h.yaml", "--model", "small-cnn", "--assume", "host_input_seconds=-1"])
        #expect(bad.status != 0 && bad.stderr.contains("host_input_seconds=-1: must be 0…3600 seconds a sample"), "\(bad.stderr)")
    }
}
