import DojoGraph
import DojoNN
import DojoTensor
import Foundation

/// What the CLI asks of an ONNX file: the input shapes it runs at, the network, and one training step's Graph IR.
public enum ONNXImport {
    /// Each graph input's shape, batch first: the batch is `batch` (a fixed batch in the file must equal it; a
    /// dynamic one is 1 when `batch` is nil); the rest is `examples[NAME]` (one example's shape, `--input NAME=SHAPE`)
    /// or the file's fixed dimensions. A dynamic dimension nothing sets is an error that names the flag that sets it.
    public static func inputShapes(_ model: ONNXModel, batch: Int?, examples: [String: [Int]]) throws -> [String: [Int]] {
        for name in examples.keys where !model.inputs.contains(where: { $0.name == name }) {
            throw ONNXError("\(model.path): --input names '\(name)', which is not an input of the graph (inputs: \(model.inputs.map(\.name).joined(separator: ", ")))")
        }
        var shapes: [String: [Int]] = [:]
        for i in model.inputs {
            guard let first = i.dimensions.first else {
                throw ONNXError("\(model.path): input '\(i.name)' is a scalar; this import feeds inputs with a batch dimension")
            }
            let b: Int
            switch first {
            case .fixed(let v):
                if let batch, batch != v {
                    throw ONNXError("\(model.path): input '\(i.name)' has a fixed batch of \(v), not \(batch) (export with "
                                    + "dynamic_axes={'\(i.name)': {0: 'batch'}} to vary it)")
                }
                b = v
            case .named: b = batch ?? 1
            }
            let rest = i.dimensions.dropFirst()
            if let e = examples[i.name] {
                guard e.count == rest.count else {
                    throw ONNXError("\(model.path): --input \(i.name)=\(e.map(String.init).joined(separator: "x")) has \(e.count) dimensions; "
                                    + "one example of '\(i.name)' has \(rest.count) (the batch is --batch)")
                }
                shapes[i.name] = [b] + e
                continue
            }
            var shape = [b]
            for (k, d) in rest.enumerated() {
                switch d {
                case .fixed(let v): shape.append(v)
                case .named(let p):
                    let dims = rest.map { d -> String in if case .fixed(let v) = d { return "\(v)" }; return "N" }.joined(separator: "x")
                    throw ONNXError("\(model.path): input '\(i.name)' dimension \(k + 1) is dynamic ('\(p)'); give one example's shape "
                                    + "with --input \(i.name)=\(dims) (N: a size)")
                }
            }
            shapes[i.name] = shape
        }
        for (name, shape) in shapes where shape.count > 32 || shape.contains(where: { $0 < 1 || $0 > 1 << 24 }) || product(shape, limit: 1 << 36) == nil {
            throw ONNXError("\(model.path): input '\(name)' of shape \(shape): sizes must be 1…2^24, at most 2^36 values in all")
        }
        return shapes
    }

    /// The first input's shape and its batch.
    public static func batch(of shapes: [String: [Int]], _ model: ONNXModel) -> Int {
        shapes[model.inputs[0].name]?.first ?? 1
    }

    /// The optimizer of an imported network's recipe: SGD with momentum for a network with batch norm (the CNNs'
    /// recipe), AdamW otherwise (the transformers', ViT's patch convolution included) (ASSUMPTION, as the zoo's
    /// recipes; `--optimizer` chooses).
    public static func defaultOptimizer(_ model: ONNXModel) -> GraphRecorder.OptimizerChoice {
        model.nodes.contains { $0.opType == "BatchNormalization" } ? .sgd : .adamw
    }

    /// One training step (forward, loss, backward, optimizer update) of the file's network at `shapes`, recorded
    /// shape-only: the Graph IR the compiler and simulator price, at any size, without the weights in memory.
    public static func recordGraph(_ model: ONNXModel, shapes: [String: [Int]], optimizer: GraphRecorder.OptimizerChoice? = nil,
                                   name: String? = nil) throws -> Graph {
        try Engine.$shapeOnly.withValue(true) {
            let net = try ONNXNetwork(model, inputShapes: shapes, weights: false)
            let first = model.inputs[0]
            let x = Tensor(uninitializedShape: shapes[first.name] ?? [])
            let classes = net.outputShape.last ?? 1
            let (tape, _) = TrainingStep.run(net, task: net.task, input: x, classes: classes,
                                             optimizer: (optimizer ?? defaultOptimizer(model)).make(), learningRate: 0)
            return tape.graph(model: name ?? modelName(model.path), batch: batch(of: shapes, model))
        }
    }

    /// "resnet18.onnx" for /path/to/resnet18.onnx.
    public static func modelName(_ path: String) -> String {
        (path as NSString).lastPathComponent
    }
}
