import DojoData
import DojoTensor
import Foundation

/// One link of a model's chain of layers, as a pipeline cuts it: its name is the layer name the compiler's
/// `LayerIndex` gives the ops it issues (`features.3`, `layer2.1`, `fc`), so the stages the simulator prices and the
/// stages the engine runs are cut at the same places.
public struct PipelineLayer {
    public let name: String
    /// The modules whose tensors (parameters, running statistics) this layer holds.
    public let modules: [Module]
    /// Tensors the layer holds beyond its modules' (a model's own parameters that this layer uses: a ViT's class
    /// token and positions).
    public let tensors: [Tensor]
    public let apply: (Tensor) -> Tensor
    public init(_ name: String, _ modules: [Module], tensors: [Tensor] = [], _ apply: @escaping (Tensor) -> Tensor) {
        self.name = name; self.modules = modules; self.tensors = tensors; self.apply = apply
    }
    /// A module called on its own (its path is the layer's name).
    public init(_ module: Module) {
        self.init(module.path, [module]) { module($0) }
    }
}

/// A model whose forward pass is a chain of layers (the output of one is the input of the next), which pipeline
/// parallelism can cut into stages. Applying every layer in order is the model's forward pass.
public protocol PipelineSplittable: Module {
    var pipelineLayers: [PipelineLayer] { get }
}

/// Point-to-point messages between ranks, and the ranks of one pipeline stage as a group of their own: what
/// pipeline-parallel training needs beyond data parallelism (DojoDistributed implements it over MPI).
public protocol PipelineGroup: DataParallelGroup {
    /// Starts sending `bytes` at `buffer` to `rank` (the buffer must stay until `wait` of the handle returns).
    func startSend(_ buffer: UnsafeRawPointer, bytes: Int, to rank: Int, tag: Int) throws -> Int
    /// Receives `bytes` from `rank` into `buffer`, waiting (and answering heartbeats) until they are there.
    func receive(_ buffer: UnsafeMutableRawPointer, bytes: Int, from rank: Int, tag: Int) throws
    /// The ranks that gave the same `color`, ordered by rank, as a group of their own (every rank calls it).
    func subgroup(color: Int) throws -> DataParallelGroup
}

public struct PipelineError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Pipeline-parallel training (GPipe's stages with the 1F1B schedule of PipeDream-Flush / Megatron-LM): the model's
/// chain is cut into `stages` contiguous stages at the layers the compiler chose, and each of `replicas` data-parallel
/// replicas of the pipeline trains its share of every global batch in `microBatches` micro-batches. World rank
/// `replica · stages + stage` holds one stage; activations go forward and their gradients back between the ranks of a
/// replica; each stage's gradients are summed over the replicas; each rank updates only its stage's parameters.
///
/// What differs from one process with the same batch: batch norm normalises each micro-batch over its own examples
/// (as GPipe; a run with `replicas × microBatches` data-parallel ranks has the same groups), and sums are taken in
/// another order. Every rank builds the whole model from the same seed; before an evaluation or a checkpoint, each
/// stage's tensors and optimizer state (replica 0's) are copied to every rank (`Trainer.consolidatePipeline`), so rank 0
/// evaluates and saves the whole model and a checkpoint resumes on any plan.
public final class PipelineRuntime {
    public let stages: Int, replicas: Int, microBatches: Int
    public let stage: Int, replica: Int
    let world: PipelineGroup
    /// This stage's ranks in every replica (nil with one replica).
    let stageGroup: DataParallelGroup?
    /// This stage's layers, and every layer's name by stage (for messages).
    let layers: [PipelineLayer]
    public let stageLayerNames: [[String]]
    /// Stage of every state tensor (parameters and buffers) of the model.
    let owner: [ObjectIdentifier: Int]
    /// This stage's parameters, by path, in the model's order.
    public let ownParameters: [(String, Tensor)]
    var sends: [(handle: Int, keep: AnyObject)] = []
    var reductionCache: OverlappedGradientReduction?

    /// `firstLayers`: the name of each stage's first layer (the compiler's split; the first is the model's first layer).
    public init(model: PipelineSplittable, firstLayers: [String], replicas: Int, microBatches: Int, world: PipelineGroup) throws {
        let chain = model.pipelineLayers
        let stages = firstLayers.count
        guard stages >= 1, replicas >= 1, microBatches >= 1 else { throw PipelineError("a pipeline needs at least one stage, replica and micro-batch") }
        guard world.size == stages * replicas else {
            throw PipelineError("the plan needs \(stages * replicas) ranks (dp=\(replicas) × pp=\(stages)); there are \(world.size)")
        }
        var starts: [Int] = []
        for name in firstLayers {
            guard let i = chain.firstIndex(where: { $0.name == name }) else {
                throw PipelineError("the compiler cut the model before layer '\(name)', which is not a layer of its chain (\(chain.map(\.name).joined(separator: ", ")))")
            }
            starts.append(i)
        }
        starts[0] = 0
        guard zip(starts, starts.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw PipelineError("stages must start at increasing layers; got \(firstLayers.joined(separator: ", "))")
        }
        self.stages = stages; self.replicas = replicas; self.microBatches = microBatches
        self.world = world
        stage = world.rank % stages
        replica = world.rank / stages
        let bounds = starts + [chain.count]
        stageLayerNames = (0..<stages).map { s in chain[bounds[s]..<bounds[s + 1]].map(\.name) }
        layers = Array(chain[bounds[stage]..<bounds[stage + 1]])
        var owner: [ObjectIdentifier: Int] = [:]
        for s in 0..<stages {
            for layer in chain[bounds[s]..<bounds[s + 1]] {
                for m in layer.modules { for (_, t) in m.stateTensors { owner[ObjectIdentifier(t)] = s } }
                for t in layer.tensors { owner[ObjectIdentifier(t)] = s }
            }
        }
        if let stray = model.stateTensors.first(where: { owner[ObjectIdentifier($0.1)] == nil }) {
            throw PipelineError("\(stray.0) belongs to no layer of the model's chain, so no stage would train it")
        }
        self.owner = owner
        let mine = stage
        ownParameters = model.parameters.filter { owner[ObjectIdentifier($0.1)] == mine }
        stageGroup = replicas > 1 ? try world.subgroup(color: mine) : nil
    }

    var isFirst: Bool { stage == 0 }
    var isLast: Bool { stage == stages - 1 }

    /// Tags of micro-batch `i`'s messages: its activation's shape, the activation, and its gradient.
    func tag(_ i: Int, _ k: Int) -> Int { (3 * i + k) % 30_000 }

    /// Sends this stage's output of micro-batch `i` to the next stage: its shape (so that the next stage can size it),
    /// then its values.
    func sendActivation(_ y: Tensor, micro i: Int) throws {
        guard y.rank <= 8 else { throw PipelineError("an activation of rank \(y.rank) between stages (at most 8)") }
        let header = HeaderBox(shape: y.shape)
        sends.append((try world.startSend(header.values, bytes: 9 * 8, to: world.rank + 1, tag: tag(i, 0)), header))
        sends.append((try world.startSend(y.pointer, bytes: y.count * 4, to: world.rank + 1, tag: tag(i, 1)), y))
    }

    func receiveActivation(micro i: Int) throws -> Tensor {
        let header = HeaderBox(shape: [])
        try world.receive(header.values, bytes: 9 * 8, from: world.rank - 1, tag: tag(i, 0))
        let rank = Int(header.values[0])
        guard (0...8).contains(rank) else { throw PipelineError("stage \(stage): a malformed activation header from rank \(world.rank - 1)") }
        let shape = (0..<rank).map { Int(header.values[1 + $0]) }
        let x = Tensor(uninitializedShape: shape)
        try world.receive(x.pointer, bytes: x.count * 4, from: world.rank - 1, tag: tag(i, 1))
        return x
    }

    func sendGradient(_ g: Tensor, micro i: Int) throws {
        sends.append((try world.startSend(g.pointer, bytes: g.count * 4, to: world.rank - 1, tag: tag(i, 2)), g))
    }

    func receiveGradient(like y: Tensor, micro i: Int) throws -> Tensor {
        let g = Tensor(uninitializedShape: y.shape)
        try world.receive(g.pointer, bytes: g.count * 4, from: world.rank + 1, tag: tag(i, 2))
        return g
    }

    /// Waits until every message this rank sent has left (their buffers may then go).
    func finishSends() throws {
        for s in sends { try world.wait(s.handle) }
        sends.removeAll()
    }

    final class HeaderBox {
        let values: UnsafeMutablePointer<Int64>
        init(shape: [Int]) {
            values = .allocate(capacity: 9)
            values.initialize(repeating: 0, count: 9)
            values[0] = Int64(shape.count)
            for (i, d) in shape.enumerated() { values[1 + i] = Int64(d) }
        }
        deinit { values.deallocate() }
    }
}

extension Trainer {
    /// One step of pipeline-parallel training (1F1B): this rank's stage of its replica's share of `global`, in
    /// micro-batches. Returns the global batch's mean loss (on every rank) and this stage's gradients, summed over
    /// the micro-batches and the replicas.
    func pipelineStep(_ global: Batch, _ p: PipelineRuntime) throws -> (loss: Float, gradients: Gradients) {
        let shard = global.shard(p.replica, of: p.replicas)
        let m = min(p.microBatches, shard.size)
        let micro = (0..<m).map { shard.shard($0, of: m) }
        var tapes = [Tape?](repeating: nil, count: m)
        var inputs = [Tensor?](repeating: nil, count: m), outputs = [Tensor?](repeating: nil, count: m)
        var sum: [ObjectIdentifier: Tensor] = [:]
        var lossSum: Float = 0
        let seed = mix(config.seed, UInt64(step))

        func forward(_ i: Int) throws {
            let batch = micro[i]
            let x = p.isFirst ? Tensor(batch.inputs, shape: batch.inputShape) : try p.receiveActivation(micro: i).requiringGrad()
            let tape = Tape()
            let ctx = ForwardContext(training: true, seed: mix(seed, UInt64(i)), precision: policy)
            let y = tape.record { Module.$context.withValue(ctx) { () -> Tensor in
                let h = p.layers.reduce(x) { $1.apply($0) }
                return p.isLast ? loss(of: h, batch) : h
            } }
            if !p.isLast { try p.sendActivation(y, micro: i) }
            tapes[i] = tape; inputs[i] = x; outputs[i] = y
        }
        func backward(_ i: Int) throws {
            guard let tape = tapes[i], let y = outputs[i], let x = inputs[i] else { return }
            let g: Gradients
            if p.isLast {
                // the global batch's mean loss: each micro-batch's mean weighted by its share
                let w = Float(micro[i].size) / Float(global.size)
                lossSum += y.item * w
                g = tape.backward(from: y, gradient: Tensor(repeating: w, shape: y.shape))
            } else {
                g = tape.backward(from: y, gradient: try p.receiveGradient(like: y, micro: i))
            }
            if !p.isFirst { try p.sendGradient(g[x] ?? Tensor(zeros: x.shape), micro: i) }
            for (_, t) in p.ownParameters {
                guard let gi = g[t] else { continue }
                if let s = sum[ObjectIdentifier(t)] {
                    let a = s.pointer, b = gi.pointer
                    for k in 0..<s.count { a[k] += b[k] }
                } else if sum.values.contains(where: { $0.storage === gi.storage }) {
                    // one gradient handed to two parameters (an add of two of the same shape): each sums its own copy
                    let c = Tensor(uninitializedShape: gi.shape)
                    if !c.isShapeOnly { c.pointer.update(from: gi.pointer, count: gi.count) }
                    sum[ObjectIdentifier(t)] = c
                } else {
                    sum[ObjectIdentifier(t)] = gi
                }
            }
            tapes[i] = nil; inputs[i] = nil; outputs[i] = nil
        }

        // 1F1B: a stage runs as many forwards as there are stages after it, then alternates one forward and one
        // backward, then finishes the backwards; at most `stages` micro-batches' activations are kept at once.
        let warmup = min(p.stages - p.stage - 1, m)
        for i in 0..<warmup { try forward(i) }
        for i in 0..<(m - warmup) { try forward(warmup + i); try backward(i) }
        for i in max(0, m - warmup)..<m { try backward(i) }
        try p.finishSends()

        var grads = Gradients()
        for (_, t) in p.ownParameters { grads[t] = sum[ObjectIdentifier(t)] ?? Tensor(zeros: t.shape) }
        if let sg = p.stageGroup {
            let reduction: OverlappedGradientReduction
            if let r = p.reductionCache, r.format == gradientReduceFormat { r.reset(); reduction = r } else {
                reduction = OverlappedGradientReduction(group: sg, parameters: p.ownParameters, format: gradientReduceFormat)
                p.reductionCache = reduction
            }
            for (_, t) in p.ownParameters { reduction.ready(t, grads[t]!) }
            try reduction.finish(into: &grads)
            lastPipelineReduction = reduction.exposedSeconds
        }
        try p.world.allReduceSum(&lossSum, count: 1)
        return (lossSum, grads)
    }

    /// Copies every stage's tensors and optimizer state from the ranks that train them (replica 0's) to every rank,
    /// so that each holds the whole model as trained (before an evaluation or a checkpoint). Every rank calls it.
    func consolidatePipeline() throws {
        guard let p = pipeline else { return }
        let state = model.stateTensors
        let suffixes = step > 0 ? optimizer.stateSuffixes : []
        let optimizerState = optimizer.state
        var parts: [(tensor: Tensor, owned: Bool, optimizerName: String?)] = []
        for (_, t) in state {
            parts.append((t, p.replica == 0 && p.owner[ObjectIdentifier(t)] == p.stage, nil))
        }
        for (path, t) in model.parameters {
            for suffix in suffixes {
                let name = "\(path).\(suffix)"
                let owned = p.replica == 0 && p.owner[ObjectIdentifier(t)] == p.stage
                parts.append((owned ? (optimizerState[name] ?? Tensor(zeros: t.shape)) : Tensor(zeros: t.shape), owned, name))
            }
        }
        let total = parts.reduce(0) { $0 + $1.tensor.count }
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(total, 1))
        defer { buffer.deallocate() }
        var offset = 0
        for part in parts {
            if part.owned { (buffer + offset).update(from: part.tensor.pointer, count: part.tensor.count) }
            else { (buffer + offset).initialize(repeating: 0, count: part.tensor.count) }
            offset += part.tensor.count
        }
        try p.world.allReduceSum(buffer, count: total)
        offset = 0
        var restored: [String: Tensor] = [:]
        for part in parts {
            part.tensor.pointer.update(from: buffer + offset, count: part.tensor.count)
            offset += part.tensor.count
            if let name = part.optimizerName { restored[name] = part.tensor }
        }
        if !suffixes.isEmpty { try optimizer.restore(state: restored, counters: optimizer.counters) }
    }
}

// MARK: the zoo's chains

extension MLP: PipelineSplittable {
    public var pipelineLayers: [PipelineLayer] { [PipelineLayer(flatten)] + body.layers.map { PipelineLayer($0) } }
}

extension SmallCNN: PipelineSplittable {
    public var pipelineLayers: [PipelineLayer] {
        features.layers.map { PipelineLayer($0) } + [PipelineLayer(flatten), PipelineLayer(classifier)]
    }
}

extension ResNet: PipelineSplittable {
    public var pipelineLayers: [PipelineLayer] {
        [stem, layer1, layer2, layer3, layer4].flatMap { $0.layers.map { PipelineLayer($0) } } + [PipelineLayer(pool), PipelineLayer(fc)]
    }
}

/// A ViT as a chain: the patch embedding with the class token and positions (the ops between them belong to no
/// module, so the compiler counts them with the embedding's layer), each block, the final norm with the class token's
/// row taken out, the head. Layer norm, not batch norm: micro-batches change nothing but the order of sums.
extension VisionTransformer: PipelineSplittable {
    public var pipelineLayers: [PipelineLayer] {
        let patches = self.patches, classToken = self.classToken, positions = self.positions, norm = self.norm
        return [PipelineLayer(patches.path, [patches], tensors: [classToken, positions]) { x in self.embed(x) }]
            + blocks.map { PipelineLayer($0) }
            + [PipelineLayer(norm.path, [norm]) { h in Self.classRow(norm(h)) }, PipelineLayer(head)]
    }
}

extension OccupancyNetwork: PipelineSplittable {
    public var pipelineLayers: [PipelineLayer] {
        let cameras = self.cameras, grid = gridSize, half = gridSize / 2, bev = bevChannels
        var chain: [PipelineLayer] = []
        for (i, layer) in backbone.layers.enumerated() {
            if i == 0 {   // the cameras' images as one batch of images
                chain.append(PipelineLayer(layer.path, [layer]) { x in layer(x.reshaped([x.shape[0] * cameras, 3, x.shape[3], x.shape[4]])) })
            } else {
                chain.append(PipelineLayer(layer))
            }
        }
        let lift = self.lift, activation = liftActivation
        chain.append(PipelineLayer(lift.path, [lift]) { f in lift(f.reshaped([f.shape[0] / cameras, -1])) })
        chain.append(PipelineLayer(activation.path, [activation]) { h in activation(h).reshaped([h.shape[0], bev, half, half]) })
        let head = bevHead.layers
        for (i, layer) in head.enumerated() {
            if i == head.count - 1 {   // depth-to-space, as in forward
                chain.append(PipelineLayer(layer.path, [layer]) { x in
                    let b = x.shape[0]
                    return layer(x).reshaped([b, 2, 2, half, half]).permuted([0, 3, 1, 4, 2]).reshaped([b, grid, grid])
                })
            } else {
                chain.append(PipelineLayer(layer))
            }
        }
        return chain
    }
}
