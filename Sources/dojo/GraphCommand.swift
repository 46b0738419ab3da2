import ArgumentParser
import DojoGraph
import DojoNN
import DojoReport
import DojoTensor
import Foundation

/// `dojo graph`: runs one real training step of a zoo model and prints the Graph IR it recorded.
struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Record one training step of a model as the Graph IR: per-op table and totals.",
        discussion: """
        Runs one forward and backward pass and an SGD update, recording every op with its shapes, FLOPs and \
        bytes. By default only shapes flow (no arithmetic, no activation memory), so any batch size works; \
        --compute runs the step for real on random inputs. FLOPs count a multiply-add as 2 (published "MACs" are half). The JSON form \
        (--json) is what the Dojo compiler and simulator read.
        """)

    @Option(name: .long, help: "Model: \(ModelZoo.names.joined(separator: ", ")).")
    var model: String

    @Option(name: .long, help: "Batch size.")
    var batch: Int = 1

    @Option(name: .long, help: "Input shape of one example, e.g. 3x224x224 (default: the model's usual size).")
    var input: String?

    @Option(name: .long, help: "Classes of a classifier.")
    var classes: Int = 1000

    @Option(name: .long, help: "Write the graph as JSON to this file ('-' for standard output).")
    var json: String?

    @Flag(name: .long, help: "Print every op, not only the forward pass.")
    var all = false

    @Flag(name: .long, help: "Run the step's arithmetic for real (default: record shapes only, which is exact for the IR and takes milliseconds at any batch).")
    var compute = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard classes >= 1 else { throw ValidationError("--classes must be at least 1, got \(classes)") }
        if let input, parseShape(input) == nil { throw ValidationError("--input '\(input)' is not a shape like 3x224x224") }
        do { _ = try ModelZoo.entry(model) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        let shape = input.flatMap(parseShape) ?? ModelDefaults.inputShape(for: model)
        let net: Module
        do { net = try ModelZoo.make(model, inputShape: shape, classes: classes, seed: 0) } catch {
            throw ValidationError("\(error)")
        }
        let graph = try Engine.$shapeOnly.withValue(!compute) {
            try recordStep(net, model: model, inputShape: shape, batch: batch, classes: classes)
        }
        if let json {
            let data = try graph.jsonData()
            if json == "-" { FileHandle.standardOutput.write(data); print(); return }
            do { try data.write(to: URL(fileURLWithPath: json)) } catch {
                throw ValidationError("cannot write \(json): \(error.localizedDescription)")
            }
        }
        printTable(graph)
    }

    func printTable(_ g: Graph) {
        var table = TextTable(headers: ["#", "phase", "op", "scope", "output", "GFLOP", "MB read", "MB written"])
        for op in g.ops where all || op.phase == .forward {
            let out = op.outputs.first.flatMap { g.tensor($0) }?.shape.map(String.init).joined(separator: "×") ?? ""
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
        print("backward FLOPs      \(formatSI(s.backwardFlops, unit: "FLOP"))")
        print("optimizer FLOPs     \(formatSI(s.optimizerFlops, unit: "FLOP"))")
        print("activation memory   \(formatBytes(s.activationBytes)) (every forward output, kept for the backward pass)")
    }
}

/// One SGD training step on random data under a tape; returns the recorded graph.
func recordStep(_ net: Module, model: String, inputShape: [Int], batch: Int, classes: Int) throws -> Graph {
    var rng = RandomSource(seed: 1)
    let x = Tensor.randomNormal([batch] + inputShape, generator: &rng)
    let tape = try trainingStep(net, task: try ModelZoo.entry(model).task, input: x, classes: classes,
                                optimizer: SGD(momentum: 0.9), learningRate: 0)
    return tape.graph(model: model, batch: batch)
}

/// Forward, loss, backward and an optimizer update of `net` on `input` (labels i mod classes, or an empty
/// occupancy grid), recorded on the returned tape.
func trainingStep(_ net: Module, task: Task, input x: Tensor, classes: Int, optimizer: Optimizer, learningRate: Float) throws -> Tape {
    let tape = Tape()
    let batch = x.shape[0]
    let loss: Tensor = tape.record {
        Module.$context.withValue(ForwardContext(training: true)) {
            let y = net(x)
            switch task {
            case .classification:
                return y.crossEntropy(labels: (0..<batch).map { Int32($0 % classes) })
            case .occupancy:
                return y.binaryCrossEntropyWithLogits(targets: Tensor(zeros: y.shape), positiveWeight: 2)
            }
        }
    }
    let grads = tape.backward(from: loss)
    optimizer.step(net.parameters, gradients: grads, learningRate: learningRate, tape: tape)
    return tape
}
