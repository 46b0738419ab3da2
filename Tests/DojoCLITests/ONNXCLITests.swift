import Foundation
import Testing

/// `--onnx` through the binary, with the fixtures scripts/onnx-fixtures.sh exports (make test does).
@Suite struct ONNXCLITests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".fixtures/onnx").path

    @Test func graphSimAndCompareReadAnExportedResNet() throws {
        let file = Self.fixtures + "/resnet18.onnx"
        #expect(FileManager.default.fileExists(atPath: file), "run scripts/onnx-fixtures.sh")
        let g = runDojo(["graph", "--onnx", file])
        #expect(g.status == 0, "\(g.stderr)")
        #expect(g.stdout.contains("parameters          11,689,512"))
        #expect(g.stdout.contains("forward FLOPs       7.31 GFLOP (3.65 GFLOP per sample"))
        #expect(g.stdout.contains("opset 13, from pytorch"))
        // the zoo's resnet18 and the exported one cost the same on a tile
        let a = runDojo(["sim", "--onnx", file, "--machine", "tile", "--batch", "256"])
        let b = runDojo(["sim", "--model", "resnet18", "--machine", "tile", "--batch", "256"])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let step = { (s: String) in s.split(separator: "\n").first { $0.hasPrefix("step ") }.map(String.init) }
        #expect(step(a.stdout) != nil && step(a.stdout) == step(b.stdout), "\(a.stdout.prefix(400))\n\(b.stdout.prefix(400))")
        #expect(a.stdout.hasPrefix("resnet18.onnx on tile"))
        let c = runDojo(["compare", "--onnx", Self.fixtures + "/gpt_tiny.onnx", "--machines", "tile,dgx-h100", "--batch", "64"])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.hasPrefix("gpt_tiny.onnx, global batch 64"))
    }

    @Test func trainsAnExportedNetworkAndWritesItBack() throws {
        let dir = NSTemporaryDirectory() + "dojo-onnx-train-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = runDojo(["train", "--onnx", Self.fixtures + "/cnn_fmnist.onnx", "--data", "fashion-mnist", "--train-examples", "4096",
                         "--eval-examples", "1000", "--epochs", "2", "--threads", "2", "--out", dir + "/run", "--export-onnx", dir + "/trained.onnx"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("cnn_fmnist.onnx (20,586 parameters) on fashion-mnist"))
        #expect(r.stdout.contains("wrote the trained network to \(dir)/trained.onnx"))
        // it learned: the second epoch's evaluation accuracy, from the metrics log
        let metrics = (try? String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8)) ?? ""
        let accuracies = metrics.split(separator: "\n").compactMap { line -> Double? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["type"] as? String == "eval" else { return nil }
            return (o["eval_accuracy"] as? NSNumber)?.doubleValue
        }
        #expect(accuracies.count == 2 && accuracies.last! > 0.7, "\(accuracies)")
        // the written file reads again, with the same parameters
        let g = runDojo(["graph", "--onnx", dir + "/trained.onnx", "--batch", "8"])
        #expect(g.status == 0 && g.stdout.contains("parameters          20,586"), "\(g.stderr)")
        // the occupancy task: a grid of logits per example, on the driving scenes
        let occ = runDojo(["train", "--onnx", Self.fixtures + "/occupancy_tiny.onnx", "--data", "scenes", "--steps", "3", "--train-examples", "128", "--positive-weight", "3",
                           "--eval-examples", "32", "--threads", "2", "--out", dir + "/occ"])
        #expect(occ.status == 0, "\(occ.stderr)")
        #expect(occ.stdout.contains("occupied IoU"), "\(occ.stdout.suffix(400))")
        // and resumes from its checkpoint only with the same file
        let again = runDojo(["train", "--model", "small-cnn", "--data", "fashion-mnist", "--out", dir + "/run", "--resume"])
        #expect(again.status != 0 && again.stderr.contains("holds a checkpoint of model 'onnx:\(Self.fixtures)/cnn_fmnist.onnx', not 'small-cnn'"), "\(again.stderr)")
    }

    /// The README's ONNX block runs as shown: its export line with Debian's python3 (PyTorch), then every dojo line on
    /// what it exported (`cnn.onnx` is the Fashion-MNIST fixture; the training line for 2 steps on a few examples).
    @Test func theReadmeONNXLinesRunAsShown() throws {
        var root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("README.md").path), root.path != "/" { root.deleteLastPathComponent() }
        let text = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let block = text.components(separatedBy: "### Your own model (ONNX)").dropFirst().first?
            .components(separatedBy: "```sh").dropFirst().first?.components(separatedBy: "```").first ?? ""
        let lines = block.split(separator: "\n").map { String($0) }
        #expect(lines.count >= 5, "\(lines)")
        let dir = NSTemporaryDirectory() + "dojo-onnx-readme-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for line in lines {
            if line.hasPrefix("python3 -c ") {
                let code = String(line.dropFirst("python3 -c ".count).dropFirst().dropLast())
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
                p.arguments = ["-W", "ignore", "-c", code]
                p.currentDirectoryURL = URL(fileURLWithPath: dir)
                p.standardError = FileHandle.nullDevice
                try p.run(); p.waitUntilExit()
                #expect(p.terminationStatus == 0, "\(line)")
                continue
            }
            let command = line.components(separatedBy: "#").first!.trimmingCharacters(in: .whitespaces)
            guard command.hasPrefix("dojo ") else { continue }
            var args: [String] = []
            var words = command.split(separator: " ").dropFirst().map(String.init).makeIterator()
            while let w = words.next() {
                switch w {
                case "resnet18.onnx", "trained.onnx": args.append(dir + "/" + w)
                case "cnn.onnx": args.append(Self.fixtures + "/cnn_fmnist.onnx")
                case "--epochs": _ = words.next(); args += ["--steps", "2", "--train-examples", "256", "--eval-examples", "64", "--out", dir + "/run"]
                default: args.append(w)
                }
            }
            let r = runDojo(args)
            #expect(r.status == 0, "\(command): \(r.stderr)")
            if command.contains("graph") { #expect(r.stdout.contains("parameters          11,689,512"), "\(r.stdout.suffix(600))") }
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/trained.onnx"))
    }

    @Test func wrongONNXInputsAreOneClearError() {
        let cases: [([String], String)] = [
            (["train", "--onnx", Self.fixtures + "/resnet18.onnx", "--data", "fashion-mnist", "--steps", "1"],
             "takes examples of 3x224x224; fashion-mnist gives 1x28x28"),
            (["train", "--onnx", Self.fixtures + "/gpt_tiny.onnx", "--steps", "1"], "takes token ids; no text data set is built in yet"),
            (["train", "--onnx", Self.fixtures + "/cnn_fmnist.onnx", "--data", "scenes", "--steps", "1"], "input 'input' has 4 dimensions; scenes examples are 4x3x32x32 (and a batch)"),
            (["train", "--onnx", Self.fixtures + "/occupancy_tiny.onnx", "--data", "scenes", "--grid-size", "8", "--steps", "1"],
             "the network gives 16x16 per example; scenes needs an occupancy grid of 8x8 logits"),
            (["train", "--model", "mlp", "--export-onnx", "/tmp/x.onnx"], "--export-onnx writes the network of an --onnx run"),
            (["train", "--model", "mlp", "--onnx", Self.fixtures + "/cnn_fmnist.onnx"], "give --model or --onnx, not both"),
            (["train", "--onnx", Self.fixtures + "/cnn_fmnist.onnx", "--export-onnx", Self.fixtures + "/cnn_fmnist.onnx"], "is the file --onnx reads"),
            (["train", "--onnx", Self.fixtures + "/cnn_fmnist.onnx", "--positive-weight", "3", "--steps", "1"], "cnn_fmnist.onnx does not predict occupancy"),
            (["graph", "--onnx", Self.fixtures + "/cnn_fmnist.onnx", "--compute"], "--compute applies to zoo models"),
            (["graph", "--onnx", "/nonexistent.onnx"], "ONNX file /nonexistent.onnx: no such file"),
            (["graph", "--onnx", Self.fixtures + "/resnet18.json"], "not an ONNX model"),
            (["graph", "--onnx", Self.fixtures + "/vit_tiny.onnx", "--batch", "4"], "has a fixed batch of 2, not 4"),
            (["sim", "--onnx", Self.fixtures + "/cnn_fmnist.onnx", "--input", "1x2"], "has 2 dimensions; one example of 'input' has 3"),
            (["sim", "--model", "resnet18", "--input", "3x224x224"], "--input applies to --onnx models"),
            (["sim", "--onnx", Self.fixtures + "/cnn_fmnist.onnx", "--input", "image=1x28x28"], "'image', which is not an input of the graph"),
        ]
        for (args, words) in cases {
            let r = runDojo(args)
            #expect(r.status != 0, "\(args) succeeded")
            #expect(r.stderr.contains(words), "\(args): \(r.stderr)")
            #expect(r.stderr.components(separatedBy: "Error:").count == 2, "\(args): \(r.stderr)")
        }
    }
}
