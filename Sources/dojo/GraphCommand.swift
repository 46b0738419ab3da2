import ArgumentParser
import DojoGraph
import DojoMachine
import DojoNN
import DojoONNX
import DojoReport
import DojoTensor
import Foundation

/// `dojo graph`: records one training step of a zoo model (any size, from its spec) and prints the Graph IR.
struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Record one training step of a model as the Graph IR: per-op table and totals.",
        discussion: """
        Records one forward and backward pass and an optimizer update (the model's recipe: SGD for the CNNs, \
        AdamW for the transformers; --optimizer to choose), with every op's shapes, FLOPs and bytes. By default \
        the model is built and run on shapes only (no parameter or activation memory, no arithmetic), so any model \
        and batch works: gpt-175b records in about a second. --compute runs the step for real on random inputs. \
        FLOPs count a multiply-add as 2 (published "MACs" are half). The JSON form (--json) is what the Dojo \
        compiler and simulator read. Models are specs NAME[:key=value,...]: gpt-175b, bert-large:seq=128, \
        vit-b16:image=384, gpt:layers=24,hidden=2048,heads=16,seq=4096,vocab=131072 (keys: \
        \(ModelSpec.allKeys.joined(separator: ", "))). --onnx reads a network exported from PyTorch \
        (torch.onnx.export, opsets 13–21) instead: the same table, from the file's initializers and nodes.
        """)

    @Option(name: .long, help: "Model spec NAME[:key=value,...]; NAME: \(ModelZoo.names.joined(separator: ", ")).")
    var model: String?

    @Option(name: .long, help: "An ONNX file to record instead of a zoo model (e.g. one torch.onnx.export wrote).")
    var onnx: String?

    @Option(name: .long, help: "Batch size (examples; sequences for language models). Default 1; with --onnx, the file's batch (1 when dynamic).")
    var batch: Int?

    @Option(name: .long, help: "Input shape of one example, e.g. 3x224x224, or tokens for a language model (default: the model's usual size); with --onnx, [NAME=]SHAPE per dynamic input (repeatable).")
    var input: [String] = []

    @Option(name: .long, help: "Classes of a classifier.")
    var classes: Int = 1000

    @Option(name: .long, help: "Optimizer of the update: sgd or adamw (default: the model's recipe).")
    var optimizer: String?

    @Option(name: .long, help: "Write the graph as JSON to this file ('-' for standard output).")
    var json: String?

    @Flag(name: .long, help: "Print every op, not only the forward pass.")
    var all = false

    @Flag(name: .long, help: "Run the step's arithmetic for real (default: record shapes only, which is exact for the IR and takes milliseconds to a second at any size).")
    var compute = false

    func validate() throws {
        if let json, json != "-" { try UserFiles.checkWritable(json, what: "--json") }
        if let batch {
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
            guard batch <= 1 << 24 else { throw ValidationError("--batch is \(batch), more than \(1 << 24) (recording holds a label per example; the graph scales to any batch in dojo sim)") }
        }
        guard classes >= 1 else { throw ValidationError("--classes must be at least 1, got \(classes)") }
        if let optimizer, GraphRecorder.OptimizerChoice(rawValue: optimizer) == nil {
            throw ValidationError("unknown optimizer '\(optimizer)'; choose sgd or adamw")
        }
        switch (model, onnx) {
        case (nil, nil): throw ValidationError("give a model: --model NAME (dojo models) or --onnx FILE")
        case (_?, _?): throw ValidationError("give --model or --onnx, not both")
        case (let model?, nil):
            guard input.count <= 1 else { throw ValidationError("--input is given \(input.count) times; a zoo model has one input") }
            if let input = input.first, parseShape(input) == nil { throw ValidationError("--input '\(input)' is not a shape like 3x224x224") }
            do { _ = try ModelZoo.resolve(model) } catch { throw ValidationError("\(error)") }
        case (nil, _?):
            if classes != 1000 { throw ValidationError("--classes applies to zoo models; an ONNX file's classes are its output's width") }
            if compute { throw ValidationError("--compute applies to zoo models; an ONNX file's step is recorded from shapes (dojo train --onnx runs it for real)") }
        }
    }

    func run() throws {
        if let onnx { return try runONNX(onnx) }
        let model = self.model ?? ""
        let batch = self.batch ?? 1
        let input = self.input.first
        let graph: Graph
        Storage.resetPeak()
        let baseBytes = Storage.liveBytes, started = Date()
        do {
            let spec = try ModelZoo.resolve(model)
            let choice = GraphRecorder.OptimizerChoice(rawValue: optimizer ?? spec.entry.optimizer) ?? .adamw
            graph = try GraphRecorder.record(model: model, batch: batch, optimizer: choice, inputShape: input.flatMap(parseShape),
                                             classes: classes, compute: compute)
        } catch let error as ModelError {
            throw CLIError("\(error)")
        }
        let seconds = Date().timeIntervalSince(started), tensorBytes = Storage.peakBytes - baseBytes
        if try writeJSON(graph) { return }
        let spec = try? ModelZoo.resolve(model)
        let tokens = spec?.task == .languageModeling ? (input.flatMap(parseShape) ?? spec?.defaultInputShape)?.first : nil
        printTable(graph, tokensPerExample: tokens)
        print("recorded in \(formatFixed(seconds, 3)) s, \(formatBytes(tensorBytes)) of tensor memory at most"
              + (compute ? " (computed for real)" : " (shapes only: no parameters, gradients or activations in memory)"))
    }

    func runONNX(_ path: String) throws {
        let started = Date()
        let choice = optimizer.flatMap(GraphRecorder.OptimizerChoice.init(rawValue:))
        let (graph, tokens, model) = try recordONNXGraph(path: path, inputs: input, batch: batch, optimizer: choice)
        let seconds = Date().timeIntervalSince(started)
        if try writeJSON(graph) { return }
        printTable(graph, tokensPerExample: tokens)
        let ins = model.inputs.map { i in "\(i.name) (\(i.elementType))" }.joined(separator: ", ")
        print("read \(path): ONNX IR \(model.irVersion), opset \(model.opset)\(model.producer.isEmpty ? "" : ", from \(model.producer)"), "
              + "\(model.nodes.count) nodes, \(model.initializers.count) initializers; input \(ins); optimizer "
              + "\((choice ?? ONNXImport.defaultOptimizer(model)).rawValue); recorded in \(formatFixed(seconds, 3)) s (shapes only)")
    }

    /// --json: the graph to its file, or to standard output instead of the table (true: nothing else to print).
    func writeJSON(_ graph: Graph) throws -> Bool {
        guard let json else { return false }
        let data = try graph.jsonData()
        if json == "-" { FileHandle.standardOutput.write(data); print(); return true }
        try UserFiles.write(data, to: json, what: "--json")
        return false
    }

    func printTable(_ g: Graph, tokensPerExample: Int?) {
        var table = TextTable(headers: ["#", "phase", "op", "scope", "output", "GFLOP", "MB read", "MB written"])
        let index = Dictionary(g.tensors.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })   // one lookup table, not one per op
        for op in g.ops where all || op.phase == .forward {
            let out = op.outputs.first.flatMap { index[$0] }?.shape.map(String.init).joined(separator: "×") ?? ""
            table.addRow([String(op.id), op.phase.rawValue, op.kind.rawValue, op.scope ?? "", out,
                          String(format: "%.4f", op.flops / 1e9), String(format: "%.2f", Double(op.bytesRead) / 1e6),
                          String(format: "%.2f", Double(op.bytesWritten) / 1e6)])
        }
        print(table.render())
        let s = g.summary
        let macs = g.ops.filter { $0.phase == .forward && $0.kind.isMatrixOp }.reduce(0) { $0 + $1.flops } / 2
        print("")
        print("model \(g.model), batch \(g.batch), \(s.opCount) ops")
        print("parameters          \(s.parameters.formatted()) (\(formatBytes(s.parameterBytes)))")
        print("forward FLOPs       \(formatSI(s.forwardFlops, unit: "FLOP")) (\(formatSI(s.forwardFlopsPerSample, unit: "FLOP")) per sample; \(formatSI(macs / Double(g.batch), unit: "MAC")) per sample in conv/matmul)")
        if let t = tokensPerExample {
            let tokens = Double(g.batch * t)
            print("per token           \(formatSI(s.forwardFlops / tokens, unit: "FLOP")) forward, "
                  + "\(formatSI((s.forwardFlops + s.backwardFlops) / tokens, unit: "FLOP")) forward + backward (\(g.batch * t) tokens)")
        }
        print("backward FLOPs      \(formatSI(s.backwardFlops, unit: "FLOP"))")
        print("optimizer FLOPs     \(formatSI(s.optimizerFlops, unit: "FLOP"))")
        print("activation memory   \(formatBytes(s.activationBytes)) (every forward output, kept for the backward pass)")
    }
}

/// Forward, loss, backward and an optimizer update of `net` on `input`, recorded on the returned tape
/// (the benchmark's step; `TrainingStep.run` in DojoNN).
func trainingStep(_ net: Module, task: Task, input x: Tensor, classes: Int, optimizer: Optimizer, learningRate: Float, profile: Bool = false,
                  precision: PrecisionPolicy? = nil) throws -> Tape {
    TrainingStep.run(net, task: task, input: x, classes: classes, optimizer: optimizer, learningRate: learningRate, profile: profile,
                     precision: precision).tape
}
