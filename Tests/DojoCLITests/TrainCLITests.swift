import Foundation
import Testing

private func tempDir(_ name: String) -> String {
    let d = cliTestsFolder + "/dojo-train-\(name)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Losses per step from a metrics log, as written (exact decimal text of the Float).
private func stepLosses(_ dir: String) -> [Int: String] {
    guard let text = try? String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8) else { return [:] }
    var out: [Int: String] = [:]
    for line in text.split(separator: "\n") {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              obj["type"] as? String == "step", let step = obj["step"] as? Int, let loss = obj["loss"] as? NSNumber else { continue }
        out[step] = loss.stringValue
    }
    return out
}

private let quickMLP = ["train", "--model", "mlp", "--data", "fashion-mnist", "--train-examples", "1024", "--eval-examples", "128",
                        "--batch-size", "64", "--epochs", "2", "--checkpoint-every", "0", "--threads", "2"]
/// Slow enough (about 2 s an epoch) to be interrupted mid-run; augmented, so resuming must restore the data stream.
private let quickCNN = ["train", "--model", "small-cnn", "--data", "fashion-mnist", "--train-examples", "4096", "--eval-examples", "128",
                        "--batch-size", "64", "--epochs", "2", "--checkpoint-every", "0", "--threads", "2", "--augment"]

@Suite(.serialized) struct TrainCLITests {
    /// Issue 12 (states): a killed run's temporary checkpoint is removed by the next run in that folder (not one whose
    /// writer is alive), and "Wrote …" names only files that exist.
    @Test func leftoversAreCleanedAndWroteNamesOnlyWhatExists() throws {
        let d = tempDir("leftovers")
        defer { try? FileManager.default.removeItem(atPath: d) }
        let first = runDojo(quickMLP + ["--steps", "3", "--out", d])
        #expect(first.status == 0, "\(first.stderr)")
        let dead = d + "/.checkpoint.safetensors.tmp-2147483000-7", alive = d + "/.checkpoint.safetensors.tmp-\(getpid())-7"
        for f in [dead, alive] { #expect(FileManager.default.createFile(atPath: f, contents: Data(count: 1000))) }
        try? FileManager.default.removeItem(atPath: d + "/graph.json")
        // Resumed with nothing left to do: no step runs, so no graph is recorded, and the line must not claim one.
        let again = runDojo(quickMLP + ["--steps", "3", "--out", d, "--resume"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dead), "the killed run's temporary checkpoint is removed")
        #expect(FileManager.default.fileExists(atPath: alive), "a live writer's temporary file is left alone")
        #expect(again.stdout.contains("Wrote ") && !again.stdout.contains("graph.json"), "\(again.stdout)")
    }

    @Test func wrongInputsGiveClearErrors() throws {
        let cases: [([String], String)] = [
            (["train", "--model", "alexnet"], "unknown model 'alexnet'"),
            (["train", "--data", "imagenet"], "unknown data set 'imagenet'"),
            (["train", "--batch-size", "0"], "--batch-size must be at least 1"),
            (["train", "--precision", "fp8"], "unknown precision 'fp8'"),
            (["train", "--optimizer", "lion"], "unknown optimizer 'lion'"),
            (["train", "--lr", "0"], "--lr must be a positive number"),
            (["train", "--threads", "100000"], "--threads must be 1…1024"),
            // a negative number is a value, not a flag: the bound names it
            (["train", "--ranks", "-1"], "--ranks must be 1…1024, got -1"),
            (["train", "--steps", "-5"], "--steps must be at least 1, got -5"),
            (["train", "--batch-size", "-64"], "--batch-size must be at least 1, got -64"),
            (["train", "--momentum", "nan"], "--momentum must be a number in [0, 1)"),
            (["train", "--momentum", "2"], "--momentum must be a number in [0, 1)"),
            (["train", "--weight-decay=-1"], "--weight-decay must be 0 or more"),
            (["train", "--positive-weight=-2"], "--positive-weight must be a positive number"),
            (["train", "--epochs", "9223372036854775807"], "--epochs must be at most 1,000,000,000"),
            (["train", "--model", "small-cnn", "--data", "fashion-mnist", "--data-dir", "/nonexistent/fmnist"], "dataset-fashion-mnist"),
            (["train", "--model", "occupancy", "--data", "fashion-mnist"], "occupancy"),
            // sizes that cannot fit are refused with the figure, before anything is made (issue 14 §3)
            (["train", "--model", "mlp", "--data", "scenes", "--train-examples", "1000000000", "--batch-size", "100000000"],
             "8 bytes an example for each epoch's order, batches being assembled), more than half of the"),
            (["graph", "--model", "resnet51"], "unknown model 'resnet51'"),
            (["graph", "--model", "resnet18", "--input", "3xbig"], "not a shape"),
        ]
        for (args, message) in cases {
            let r = runDojo(args)
            #expect(r.status != 0, "\(args) should fail")
            #expect(r.stderr.contains(message), "\(args): stderr was \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error"), "\(args) crashed")
        }
    }

    /// A new run into folders that hold another one is refused (nothing of the old run changes) unless --force;
    /// --resume continues it (issue 12: it silently replaced the checkpoint and metrics).
    @Test func aFolderThatHoldsARunIsNotOverwritten() throws {
        let dir = tempDir("held")
        var r = runDojo(quickMLP + ["--out", dir, "--steps", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        let checkpoint = try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint.safetensors"))
        let metrics = try Data(contentsOf: URL(fileURLWithPath: dir + "/metrics.jsonl"))
        r = runDojo(quickMLP + ["--out", dir, "--steps", "5", "--seed", "7"])
        #expect(r.status != 0 && r.stderr.contains("hold another run (its checkpoint is at step 3)") && r.stderr.contains("--force"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint.safetensors")) == checkpoint)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/metrics.jsonl")) == metrics)
        // only the checkpoint in another --checkpoint-dir is enough
        let other = tempDir("held-out")
        r = runDojo(quickMLP + ["--out", other, "--checkpoint-dir", dir, "--steps", "5"])
        #expect(r.status != 0 && r.stderr.contains(dir + "/checkpoint.safetensors holds another run"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: other + "/metrics.jsonl"))
        r = runDojo(quickMLP + ["--out", dir, "--steps", "5", "--force", "--resume"])
        #expect(r.status != 0 && r.stderr.contains("give one of them"), "\(r.stderr)")
        r = runDojo(quickMLP + ["--out", dir, "--steps", "5", "--resume"])
        #expect(r.status == 0 && r.stdout.contains("resuming at step 3"), "\(r.stdout)\(r.stderr)")
        r = runDojo(quickMLP + ["--out", dir, "--steps", "2", "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.filter { $0.contains("\"type\":\"step\"") }.count == 2, "the replaced run's metrics are gone: \(lines)")
    }

    @Test func badCheckpointsAreRejected() throws {
        let dir = tempDir("ckpt")
        var r = runDojo(quickMLP + ["--out", dir, "--resume"])
        #expect(r.status != 0 && r.stderr.contains("no checkpoint at"), "\(r.stderr)")
        try Data("not a checkpoint at all".utf8).write(to: URL(fileURLWithPath: dir + "/checkpoint.safetensors"))
        r = runDojo(quickMLP + ["--out", dir, "--resume"])
        #expect(r.status != 0 && r.stderr.contains(dir + "/checkpoint.safetensors"), "\(r.stderr)")
        // a real checkpoint of the MLP, then resumed as another model
        r = runDojo(quickMLP + ["--out", dir, "--steps", "3", "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        r = runDojo(["train", "--model", "small-cnn", "--data", "fashion-mnist", "--out", dir, "--resume"])
        #expect(r.status != 0 && r.stderr.contains("checkpoint of model 'mlp', not 'small-cnn'"), "\(r.stderr)")
        // truncated
        let path = dir + "/checkpoint.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        r = runDojo(quickMLP + ["--out", dir, "--resume"])
        #expect(r.status != 0 && r.stderr.contains(path), "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
    }

    /// SIGINT mid-run saves a checkpoint and exits 130; `--resume` then reproduces the uninterrupted run's
    /// losses exactly.
    @Test func interruptAndResumeMatchAnUninterruptedRun() throws {
        let straight = tempDir("straight"), broken = tempDir("broken")
        let r = runDojo(quickCNN + ["--out", straight])
        #expect(r.status == 0, "\(r.stderr)")
        let reference = stepLosses(straight)
        #expect(reference.count == 128)

        guard let exe = dojoExecutableURL else { Issue.record("no dojo binary"); return }
        let p = Process()
        p.executableURL = exe
        p.arguments = quickCNN + ["--out", broken]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while stepLosses(broken).count < 3 && p.isRunning && Date() < deadline { usleep(2000) }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        #expect(p.terminationStatus == 130, "interrupted run should exit 130")
        let before = stepLosses(broken).count
        #expect(before >= 3 && before < 128, "interrupted after \(before) steps")
        #expect(FileManager.default.fileExists(atPath: broken + "/checkpoint.safetensors"))

        let resumed = runDojo(["train", "--out", broken, "--resume", "--threads", "2"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resuming at step"))
        let after = stepLosses(broken)
        #expect(after.count == reference.count, "resumed run logged \(after.count) steps, the uninterrupted one \(reference.count)")
        let differing = reference.keys.sorted().filter { after[$0] != reference[$0] }
        #expect(differing.isEmpty, "losses differ at steps \(differing.prefix(5))")
    }
}

/// A SIGTERM while 2 threads compute used to run its handler on whichever thread it landed on; about one stop in five
/// of the occupancy net then ended in a corrupted heap ("corrupted double-linked list", a crash in the next forward
/// pass) and no checkpoint. Signals are now taken on a thread of their own (sigwait). Each stop here must say where
/// its checkpoint is and exit 143.
@Suite struct StopSignalTests {
    @Test func sigtermDuringMultithreadedTrainingStopsCleanlyEveryTime() throws {
        guard dojoExecutableURL != nil else { Issue.record("no dojo binary"); return }
        for attempt in 0..<6 {
            let dir = NSTemporaryDirectory() + "dojo-stop-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let (p, err) = try startTrain(["--model", "occupancy", "--data", "scenes", "--train-examples", "2048", "--eval-examples", "64",
                           "--epochs", "1", "--threads", "2"], out: dir)
            let deadline = Date().addingTimeInterval(60)
            // stop at a different step each time
            while stepCount(dir) < 3 + 9 * attempt && p.isRunning && Date() < deadline { usleep(2000) }
            kill(p.processIdentifier, SIGTERM)
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 143, "attempt \(attempt): exit \(p.terminationStatus): \(text.suffix(400))")
            #expect(text.contains("interrupted at step") && text.contains("checkpoint saved"), "attempt \(attempt): \(text.suffix(400))")
            #expect(!text.contains("crashed") && !text.contains("corrupted"), "attempt \(attempt): \(text.suffix(400))")
        }
    }

    /// Issue 14 §3: a stop asked while a (here endless: 10^8 scenes) evaluation runs ends it at the next batch, with a
    /// checkpoint of the steps trained (it used to run on for minutes). Alone it stops well within a second; under
    /// `make test`, where it overlaps `dojo validate --local`'s MPI plans on the same 2 cores, it took 6.3 and 6.7 s
    /// (2026-12-07), so the bound is 10 s: still far from the minutes it is here to catch.
    @Test func sigtermDuringEvaluationStopsWithinASecond() throws {
        try stopDuringEvaluation(["--train-examples", "64", "--epochs", "1"], within: 10)
    }

    /// The same over 2 ranks: rank 0 evaluates alone while the other waits in the next step's stop vote; rank 0 ends
    /// the evaluation and joins that vote (epochs 2), or stops at the end (epochs 1). It used to evaluate on.
    @Test(arguments: ["1", "2"]) func sigtermDuringEvaluationOverRanksStops(epochs: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/mpirun") else { Issue.record("no mpirun"); return }
        try stopDuringEvaluation(["--train-examples", "32", "--batch-size", "16", "--epochs", epochs, "--ranks", "2", "--threads", "1"], within: 10)
    }

    /// Trains the occupancy net with an endless evaluation and `arguments`, sends SIGTERM well into the evaluation
    /// (after step 2): exit 143 within `seconds`, "interrupted at step 2", a checkpoint.
    func stopDuringEvaluation(_ arguments: [String], within seconds: Double) throws {
        guard dojoExecutableURL != nil else { Issue.record("no dojo binary"); return }
        let dir = NSTemporaryDirectory() + "dojo-stop-eval-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (p, err) = try startTrain(["--model", "occupancy", "--data", "scenes", "--eval-examples", "100000000"] + arguments, out: dir)
        let deadline = Date().addingTimeInterval(90)
        while stepCount(dir) < 2 && p.isRunning && Date() < deadline { usleep(5000) }
        usleep(1_500_000)   // well into the evaluation
        #expect(p.isRunning)
        let t0 = Date()
        kill(p.processIdentifier, SIGTERM)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let took = Date().timeIntervalSince(t0)
        #expect(took < seconds, "stopped \(took) s after SIGTERM")
        #expect(p.terminationStatus == 143 && text.contains("interrupted at step 2") && text.contains("checkpoint saved"), "\(text.suffix(600))")
        #expect(FileManager.default.fileExists(atPath: dir + "/checkpoint.safetensors"))
    }

    /// A stop while the run still sets up (reading data, building the model) ends it at once: nothing to save.
    @Test func sigtermDuringSetupStopsAtOnce() throws {
        guard dojoExecutableURL != nil else { Issue.record("no dojo binary"); return }
        let dir = NSTemporaryDirectory() + "dojo-stop-setup-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (p, err) = try startTrain(["--model", "resnet18", "--data", "fashion-mnist"], out: dir)
        usleep(150_000)
        let t0 = Date()
        kill(p.processIdentifier, SIGTERM)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(Date().timeIntervalSince(t0) < 3)
        #expect(p.terminationStatus == 143, "\(text)")
        // set-up usually takes longer than 0.15 s; if training had begun, the stop saves a checkpoint instead
        #expect(text.contains("interrupted before training started; nothing was saved") || text.contains("checkpoint saved"), "\(text)")
    }

    /// Starts `dojo train ARGUMENTS --out DIR` with stdout discarded; its stderr comes back through the pipe.
    func startTrain(_ arguments: [String], out dir: String) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = dojoExecutableURL
        p.arguments = ["train"] + arguments + ["--out", dir]
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        return (p, err)
    }

    func stepCount(_ dir: String) -> Int {
        guard let text = try? String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").filter { $0.contains("\"type\":\"step\"") }.count
    }
}

@Suite struct ScenesCLITests {
    @Test func writesAPNGPerScene() throws {
        let dir = cliTestsFolder + "/dojo-scenes-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = runDojo(["scenes", "--index", "2", "--count", "2", "--out", dir + "/s.png"])
        #expect(r.status == 0, "\(r.stderr)")
        for i in [2, 3] {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/s-\(i).png"))
            #expect(data.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        }
        #expect(r.stdout.contains("cells occupied"))
        let bad = runDojo(["scenes", "--cameras", "0"])
        #expect(bad.status != 0 && bad.stderr.contains("cameras"), "\(bad.stderr)")
        let badPath = runDojo(["scenes", "--out", "/nonexistent/dir/x.png"])
        #expect(badPath.status != 0 && badPath.stderr.contains("/nonexistent/dir/x.png"), "\(badPath.stderr)")
    }
}

/// Issue 14 §2: Dojo's formats keep the accuracy. The small CNN trained 3 epochs on 8,192 Fashion-MNIST images in
/// bf16 and in cfp8 (delayed scaling from its 17th step on) ends within 1 point of fp32 on 2,000 test images
/// (the full 60,000 × 3 epochs gives 90.6 / 90.6 / 90.4 %, docs/BENCHMARKS.md).
@Suite struct PrecisionAccuracyTests {
    @Test func bf16AndCfp8StayWithinOnePointOfFp32() throws {
        func accuracy(_ precision: String) throws -> Double {
            let d = tempDir("acc-\(precision)")
            defer { try? FileManager.default.removeItem(atPath: d) }
            let r = runDojo(["train", "--model", "small-cnn", "--data", "fashion-mnist", "--train-examples", "8192", "--eval-examples", "2000",
                             "--epochs", "3", "--precision", precision, "--checkpoint-every", "0", "--out", d])
            #expect(r.status == 0, "\(precision): \(r.stderr)")
            let text = try String(contentsOfFile: d + "/metrics.jsonl", encoding: .utf8)
            let evals = text.split(separator: "\n").compactMap { line -> Double? in
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["type"] as? String == "eval" else { return nil }
                return (o["eval_accuracy"] as? NSNumber)?.doubleValue
            }
            return try #require(evals.last)
        }
        let fp32 = try accuracy("fp32"), bf16 = try accuracy("bf16"), cfp8 = try accuracy("cfp8")
        print("small-cnn, 3 epochs of 8,192: fp32 \(fp32), bf16 \(bf16), cfp8 \(cfp8)")
        #expect(fp32 > 0.8, "fp32 learns: \(fp32)")
        #expect(abs(bf16 - fp32) <= 0.01, "bf16 \(bf16) vs fp32 \(fp32)")
        #expect(abs(cfp8 - fp32) <= 0.01, "cfp8 \(cfp8) vs fp32 \(fp32)")
    }
}
