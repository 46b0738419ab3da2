import DojoGraph
import DojoNN
import DojoTensor
import Foundation

/// An ONNX graph as an engine network: each node runs as the engine's op (convolution on oneDNN, GEMMs, layer
/// norm, …), so the same network trains for real (`dojo train --onnx`), records the Graph IR shape-only for the
/// compiler and simulator (`dojo graph/sim/compare --onnx`), and its forward pass can be checked against PyTorch or
/// onnxruntime on the same input.
///
/// Parameters: every float initializer a node reads with more than one value or at a layer's weight position
/// (`ONNXPlan.weightInitializers`), by its name in the file, except batch norm's running statistics (buffers) and a
/// causal mask the import recognises. ASSUMPTION: any other one-value float initializer is a constant (an
/// exporter's 0.5 or √2), not a trained scalar. An Identity of a parameter (PyTorch's exporter
/// shares equal initializers that way: two zero biases become one initializer and an Identity) becomes a parameter
/// of its own under the Identity's output name, as the module it came from has it.
///
/// Patterns read as one engine op (`ONNXPatterns`): GELU's erf form (Div, Erf, Add, Mul, Mul) → exact GELU; layer
/// norm decomposed (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add, as opsets before 17 export it) →
/// layer norm; an additive causal mask before a softmax → causal softmax; Transpose of a 2-D weight into MatMul →
/// a product with the transposed weight.
public final class ONNXNetwork: Module {
    public let model: ONNXModel
    /// Each graph input's shape as this network was built for (batch included).
    public let inputShapes: [String: [Int]]
    /// What the network learns, from its input and output: token ids in and [batch, tokens, vocabulary] out is a
    /// language model; [batch, classes] out a classifier; any other float output is scored per element with binary
    /// cross-entropy (the occupancy grid's loss).
    public private(set) var task: Task = .classification
    /// The output's shape at `inputShapes`.
    public private(set) var outputShape: [Int] = []
    /// Parameters and buffers by name, in the file's order.
    let stateOrder: [String]
    let state: [String: Tensor]
    /// Initializers that are not parameters.
    let constants: [String: ONNXConstant]
    let plan: ONNXPlan

    /// MatMul inputs read as a weight transposed (input name → weight name).
    public var transposedWeights: [String: String] { plan.transposedWeights }
    /// Float initializers read as constants by a pattern (causal masks), not parameters.
    public var constantInitializerNames: Set<String> { plan.constantInitializers }

    public override var namedTensors: [(String, Tensor)] { stateOrder.map { ($0, state[$0]!) } }

    /// Builds the network for `model` at the given input shapes and checks every node on them (shape-only: no
    /// arithmetic). - weights: load the initializers' values (false: shapes only, for recording the Graph IR of a
    /// model of any size).
    public init(_ model: ONNXModel, inputShapes: [String: [Int]], weights: Bool = true) throws {
        self.model = model
        self.inputShapes = inputShapes
        let plan = try ONNXPlan(model)
        self.plan = plan
        var state: [String: Tensor] = [:], order: [String] = [], constants: [String: ONNXConstant] = [:]
        let values = Dictionary(model.initializers, uniquingKeysWith: { a, _ in a })
        func make(_ c: ONNXConstant, role: TensorInfo.Role) -> Tensor {
            let t: Tensor
            if weights, case .raw(let d) = c.values {
                t = Tensor(uninitializedShape: c.shape)
                d.withUnsafeBytes { b in UnsafeMutableRawPointer(t.pointer).copyMemory(from: b.baseAddress!, byteCount: c.count * 4) }
            } else if weights, c.isFloat { t = Tensor(c.floats, shape: c.shape) }
            else { t = Engine.$shapeOnly.withValue(!weights) { Tensor(zeros: c.shape) } }
            return role == .parameter ? t.asParameter() : t.asBuffer()
        }
        let read = Set(model.nodes.flatMap(\.inputs))   // an initializer no node reads is not a parameter
        for (name, c) in model.initializers {
            if c.isFloat, c.count > 1 || plan.weightInitializers.contains(name), !plan.constantInitializers.contains(name), read.contains(name) {
                guard c.shape.count <= 32 else { throw ONNXError("\(model.path): initializer '\(name)' has rank \(c.shape.count); at most 32") }
                state[name] = make(c, role: plan.buffers.contains(name) ? .state : .parameter)
                order.append(name)
            } else {
                constants[name] = c
            }
        }
        for (copy, source) in plan.parameterCopies {
            guard let c = values[source] else { continue }
            state[copy] = make(c, role: .parameter)
            order.append(copy)
        }
        if weights {
            for name in order {
                let t = state[name]!
                if !(0..<t.count).allSatisfy({ t.pointer[$0].isFinite }) { throw ONNXError("\(model.path): initializer '\(name)' holds NaN or infinite values") }
            }
        }
        self.state = state; self.stateOrder = order; self.constants = constants
        // the task, from what goes in and what comes out (checked on shapes)
        guard let first = model.inputs.first, let shape = inputShapes[first.name] else {
            throw ONNXError("\(model.path): no shape for input '\(model.inputs.first?.name ?? "?")'")
        }
        super.init()
        finalizeNames()
        let out = try Engine.$shapeOnly.withValue(true) { try self.run(self.feeds(Tensor(zeros: shape))) }
        outputShape = out.shape
        try checkBatch(input: shape, output: outputShape)
        if first.isTokenIDs {
            guard outputShape.count == 3, outputShape.prefix(2) == shape.prefix(2) else {
                throw ONNXError("\(model.path): token ids \(shape) in, \(outputShape) out; a language model gives [batch, tokens, vocabulary]")
            }
            task = .languageModeling
        } else if outputShape.count == 2 {
            task = .classification
        } else {
            task = .occupancy
        }
    }

    /// `first` for the first graph input, zeros of their built shapes for any other.
    func feeds(_ first: Tensor) -> [String: Tensor] {
        var f: [String: Tensor] = [:]
        for (k, i) in model.inputs.enumerated() { f[i.name] = k == 0 ? first : Tensor(zeros: inputShapes[i.name] ?? []) }
        return f
    }

    /// One forward pass with its first graph input fed `x` (`inputShapes` decided which shapes were checked; other
    /// shapes are checked as they run and stop the process with the message if they do not fit — call
    /// `check(inputShape:)` first).
    public override func forward(_ x: Tensor) -> Tensor {
        do { return try run(feeds(x)) } catch { preconditionFailure("\(error)") }
    }

    /// Checks the network on an input of `inputShape` (the first input's; shape-only, milliseconds).
    public func check(inputShape: [Int]) throws {
        try Engine.$shapeOnly.withValue(true) {
            try checkBatch(input: inputShape, output: try run(feeds(Tensor(zeros: inputShape))).shape)
        }
    }

    /// The loss scores one output per example: the output's first dimension must be the input's batch.
    func checkBatch(input: [Int], output: [Int]) throws {
        guard let b = input.first, output.first == b, output.count >= 2 else {
            throw ONNXError("\(model.path): input \(input) gives output \(output), whose first dimension is not the batch \(input.first ?? 0) "
                            + "(a reshape that folds the batch, like x.view(-1, n), or a reduction over it): the loss needs one output per example")
        }
    }

    /// Runs the graph on `feeds` (one tensor per graph input; token ids as whole-number floats) and returns the
    /// first graph output.
    public func run(_ feeds: [String: Tensor]) throws -> Tensor {
        var env: [String: ONNXValue] = [:]
        for (name, c) in constants { env[name] = .constant(c) }
        for (name, t) in state { env[name] = .tensor(t) }
        for i in model.inputs {
            guard let t = feeds[i.name] else { throw ONNXError("\(model.path): no value fed for input '\(i.name)'") }
            env[i.name] = .tensor(t)
        }
        let context = ONNXExecution(model: model, state: state, training: Module.context.training, transposed: plan.transposedWeights)
        for step in plan.steps {
            try Tape.$scope.withValue(step.scope) {
                let outs = try context.execute(step, env: env)
                for (name, v) in zip(step.outputs, outs) where !name.isEmpty { env[name] = v }
            }
        }
        let name = model.outputs[0]
        guard let v = env[name] else { throw ONNXError("\(model.path): graph output '\(name)' was not computed") }
        switch v {
        case .tensor(let t): return t
        case .constant(let c): return Tensor(c.floats, shape: c.shape)
        }
    }
}
