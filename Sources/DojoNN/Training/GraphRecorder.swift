import DojoGraph
import DojoTensor
import Foundation

/// One training step of a model: forward, loss, backward and an optimizer update, recorded on a tape.
public enum TrainingStep {
    /// Runs the step of `net` on `input` and returns the tape (its `graph(model:batch:)` is the step's Graph IR) and
    /// the loss. Labels: `labels` when given, else synthetic ones (example i → class i mod classes; token i → id
    /// i mod vocabulary); occupancy targets are an empty grid. Works under `Engine.shapeOnly` (shapes only).
    /// - profile: time each op's forward and backward (`Tape.profiling`).
    /// - precision: Dojo's formats as `dojo train --precision` applies them (weights, activations and gradients rounded).
    public static func run(_ net: Module, task: Task, input x: Tensor, labels: [Int32]? = nil, classes: Int,
                           optimizer: Optimizer, learningRate: Float, profile: Bool = false,
                           precision: PrecisionPolicy? = nil) -> (tape: Tape, loss: Tensor) {
        let tape = Tape()
        tape.profiling = profile
        let batch = x.shape[0]
        let loss: Tensor = tape.record {
            Module.$context.withValue(ForwardContext(training: true, precision: precision)) {
                let y = net(x)
                switch task {
                case .classification:
                    return y.crossEntropy(labels: labels ?? (0..<batch).map { Int32($0 % classes) })
                case .occupancy:
                    return y.binaryCrossEntropyWithLogits(targets: Tensor(zeros: y.shape), positiveWeight: 2)
                case .languageModeling:
                    let v = y.shape[y.rank - 1], n = y.count / max(v, 1)
                    return y.reshaped([n, v]).crossEntropy(labels: labels ?? (0..<n).map { Int32($0 % v) })
                }
            }
        }
        let grads = tape.backward(from: loss)
        if let precision { for (path, p) in net.parameters { if let g = grads[p] { precision.roundGradient(g, site: path) } } }
        optimizer.step(net.parameters, gradients: grads, learningRate: learningRate, tape: tape)
        return (tape, loss)
    }
}

/// Records the Graph IR of one training step of a zoo model at any size, without the memory: the model is built
/// and run under `Engine.shapeOnly`, so parameters, gradients, optimizer state and activations are shapes only
/// and no arithmetic runs. This is what the simulator prices.
public enum GraphRecorder {
    public enum OptimizerChoice: String, Sendable, CaseIterable {
        /// AdamW: two state tensors per parameter.
        case adamw
        /// SGD with momentum 0.9: one state tensor per parameter.
        case sgd

        public func make() -> Optimizer { self == .adamw ? AdamW() : SGD(momentum: 0.9) }
    }

    /// The Graph IR of one training step (forward, loss, backward, optimizer update) of `spec`
    /// (`NAME[:key=value,...]`, see `ModelSpec`) at `batch` examples.
    /// - inputShape: one example without the batch dimension (default: the spec's `defaultInputShape`:
    ///   [seq] tokens for language models).
    /// - classes: the classifiers' classes (ViT, CNNs).
    /// - compute: run the step's arithmetic for real on random inputs (the same graph; needs the memory — refused
    ///   with a `ModelError` when the step would not fit in this machine's memory).
    /// Errors: `ModelError` for a bad spec or sizes that do not fit the model.
    public static func record(model spec: String, batch: Int, optimizer: OptimizerChoice = .adamw, inputShape: [Int]? = nil,
                              classes: Int = 1000, compute: Bool = false) throws -> Graph {
        let resolved = try ModelZoo.resolve(spec)
        guard batch >= 1 else { throw ModelError("batch must be at least 1, got \(batch)") }
        // Shape-only recording still holds a label per example (and takes time in proportion): a sane maximum.
        guard batch <= 1 << 24 else { throw ModelError("batch \(batch) is more than \(1 << 24) examples to record a step at (a graph scales to any batch in dojo sim: record a smaller one)") }
        guard classes >= 1 else { throw ModelError("classes must be at least 1, got \(classes)") }
        let shape = inputShape ?? resolved.defaultInputShape
        try checkSize(resolved, shape: shape, batch: batch, classes: classes)
        if compute {
            try checkFitsForReal(resolved, shape: shape, batch: batch, classes: classes, optimizer: optimizer,
                                 or: " Record it shape-only (the same graph, no memory).")
        }
        return try Engine.$shapeOnly.withValue(!compute) {
            try step(resolved, shape: shape, batch: batch, classes: classes, optimizer: optimizer)
        }
    }

    /// Refuses a step run for real that would not fit in this machine's memory (estimated from its shape-only record):
    /// weights, gradients and up to two optimizer states, plus every activation kept for the backward pass. `or`: what
    /// the message suggests instead.
    static func checkFitsForReal(_ spec: ModelSpec, shape: [Int], batch: Int, classes: Int, optimizer: OptimizerChoice, or: String) throws {
        let estimate = try Engine.$shapeOnly.withValue(true) {
            try step(spec, shape: shape, batch: batch, classes: classes, optimizer: optimizer)
        }.summary
        let need = Double(estimate.parameterBytes) * 4 + Double(estimate.activationBytes)
        let have = Double(Engine.usableMemoryBytes)
        guard need < 0.8 * have else {
            throw ModelError("running a step of \(spec) at batch \(batch) for real needs about \(Int(need / 1e9)) GB; "
                             + "this machine has \(Int(have / 1e9)) GB.\(or)")
        }
    }

    static func step(_ spec: ModelSpec, shape: [Int], batch: Int, classes: Int, optimizer: OptimizerChoice) throws -> Graph {
        let net = try ModelZoo.make(spec.description, inputShape: shape, classes: classes, seed: 0)
        let x = input(spec, shape: shape, batch: batch)
        let (tape, _) = TrainingStep.run(net, task: spec.task, input: x, classes: classes, optimizer: optimizer.make(),
                                         learningRate: 0)
        return tape.graph(model: spec.description, batch: batch)
    }

    /// A step's input: random normal values, or token ids spread over the vocabulary for language models.
    static func input(_ spec: ModelSpec, shape: [Int], batch: Int) -> Tensor {
        var rng = RandomSource(seed: 1)
        if spec.task == .languageModeling, let t = spec.transformer {
            let n = batch * shape[0]
            return Engine.shapeOnly ? Tensor(uninitializedShape: [batch] + shape)
                                    : Tensor((0..<n).map { _ in Float(Int(rng.next() % UInt64(t.vocab))) }, shape: [batch] + shape)
        }
        return Tensor.randomNormal([batch] + shape, generator: &rng)
    }

    /// A training step run for real on this host, op by op (`Tape.profiling`): its graph, each op's seconds (forward
    /// ops their forward, backward ops their backward closure; the glue between forward ops counts with the op after
    /// it; optimizer ops and gradient sums 0: their time is in the step's rest and in the closure that made them), the
    /// median over the measured steps, and the median step's seconds.
    public struct MeasuredStep: Sendable {
        public let graph: Graph
        public let seconds: [Double]
        public let stepSeconds: Double
    }

    /// Runs `warmUp` steps, then `steps` profiled ones, of `spec` at `batch` (as `record(compute: true)`, in
    /// `precision`'s formats when given). What `dojo sim --measure` sets beside a prediction on this host.
    public static func measure(model spec: String, batch: Int, optimizer: OptimizerChoice = .adamw, inputShape: [Int]? = nil,
                               classes: Int = 1000, precision: PrecisionPolicy? = nil, steps: Int = 5, warmUp: Int = 3) throws -> MeasuredStep {
        let resolved = try ModelZoo.resolve(spec)
        let shape = inputShape ?? resolved.defaultInputShape
        guard batch >= 1, classes >= 1 else { throw ModelError("batch and classes must be at least 1, got \(batch) and \(classes)") }
        try checkSize(resolved, shape: shape, batch: batch, classes: classes)
        try checkFitsForReal(resolved, shape: shape, batch: batch, classes: classes, optimizer: optimizer, or: " Measure a smaller batch.")
        let net = try ModelZoo.make(resolved.description, inputShape: shape, classes: classes, seed: 0)
        let x = input(resolved, shape: shape, batch: batch)
        let opt = optimizer.make()
        var perStep: [[Double]] = [], walls: [Double] = []
        var graph: Graph? = nil
        for i in 0..<(warmUp + max(1, steps)) {
            let t0 = DispatchTime.now()
            let (tape, _) = TrainingStep.run(net, task: resolved.task, input: x, classes: classes, optimizer: opt, learningRate: 1e-4,
                                             profile: i >= warmUp, precision: precision)
            let wall = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) * 1e-9
            guard i >= warmUp else { continue }
            let g = tape.graph(model: resolved.description, batch: batch)
            let times = tape.seconds(of: g)
            perStep.append(times)
            walls.append(wall)
            graph = graph ?? g
        }
        // the median step, whole: its ops and its wall time come from the same run, so the ops never sum to more than
        // the step (per-op medians taken apart from the wall's median did, on a loaded machine)
        let mid = walls.indices.sorted { walls[$0] < walls[$1] }[walls.count / 2]
        return MeasuredStep(graph: graph!, seconds: perStep[mid], stepSeconds: walls[mid])
    }

    /// Refuses steps whose tensors, or the sum of their bytes in the graph's summary, would not fit in an Int:
    /// a typed error instead of an overflow trap. The bounds are estimates with room to spare (GPT-3 175B at
    /// batch 1536 and 2048 tokens passes).
    static func checkSize(_ spec: ModelSpec, shape: [Int], batch: Int, classes: Int) throws {
        let b = Double(batch), input = b * shape.reduce(1.0) { $0 * Double($1) }
        // CNNs: the stem's activations are a few times the input; some 200 ops
        var largest = input * 16, total = largest * 200 + Double(classes) * 4096
        if let t = spec.transformer {
            let side = Double(shape.last ?? 224), patch = Double(max(t.patch ?? 1, 1))
            let tokens = t.isLanguageModel ? Double(shape.first ?? t.seq) : (side / patch) * (side / patch) + 1
            let (h, d, f, v) = (Double(t.heads), Double(t.hidden), Double(t.ffnWidth), Double(max(t.vocab, classes)))
            largest = max(b * h * tokens * tokens, b * tokens * max(v, f, d), v * d, f * d, input)
            total = Double(t.layers) * (4 * b * h * tokens * tokens + 40 * b * tokens * max(d, f) + 16 * d * max(d, f))
                + 4 * b * tokens * v + 2 * v * d
        }
        guard largest < 0x1p58, total * 4 < 0x1p62 else {
            throw ModelError("\(spec) at batch \(batch) is too large to record: tensors of up to \(largest) elements, "
                             + "about \(total * 4) bytes in all; record a smaller batch (costs scale with it)")
        }
    }
}
