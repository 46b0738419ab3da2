import DojoGraph

/// Tensor parallelism on any graph (Megatron-LM's scheme, generalised): a matrix op with weights whose input is
/// whole splits its weights by output column (its output is then sharded); one whose input is sharded splits by
/// the reduction dimension and all-reduces its output. Ops that work per feature or per head (elementwise,
/// batch-norm, pooling, attention's products, softmax) keep a sharded tensor sharded; an op that needs whole
/// features (layer-norm, a reduction to the loss) all-gathers it first. Backward ops divide as their forward op;
/// the backward pass communicates as much as the forward pass (Megatron's conjugate f/g operators).
public struct TensorSharding: Sendable {
    /// How each op divides, by op id.
    public var split: [SplitAxis]
    /// Bytes (at FP32, for the graph's recorded batch) that the forward pass all-reduces after each op, by op id.
    public var allReduceBytes: [Double]
    /// Bytes (FP32, recorded batch) all-gathered before each op, by op id.
    public var allGatherBytes: [Double]
    /// Parameters (tensor ids) split among the tensor-parallel devices.
    public var splitParameters: Set<Int>

    init(split: [SplitAxis], allReduceBytes: [Double], allGatherBytes: [Double], splitParameters: Set<Int>) {
        self.split = split; self.allReduceBytes = allReduceBytes; self.allGatherBytes = allGatherBytes
        self.splitParameters = splitParameters
    }

    /// No tensor parallelism: nothing divides, nothing communicates.
    public static func replicated(_ g: Graph) -> TensorSharding {
        TensorSharding(split: Array(repeating: .none, count: g.ops.count),
                       allReduceBytes: Array(repeating: 0, count: g.ops.count),
                       allGatherBytes: Array(repeating: 0, count: g.ops.count), splitParameters: [])
    }

    /// Propagates sharding through the forward pass of `g`; `sequenceParallel` also divides the ops between the
    /// all-reduces (layer-norms, residual adds, dropout) along the sequence, as Korthikanti et al. 2022 do.
    public init(graph g: Graph, sequenceParallel: Bool = false) {
        self = TensorSharding.replicated(g)
        let tensors = TensorLookup(g)
        func isParam(_ t: Int) -> Bool { tensors[t]?.role == .parameter }
        func bytes(_ t: Int) -> Double { Double(tensors[t]?.bytes ?? 0) }
        var sharded = Set<Int>()
        for op in g.ops where op.phase == .forward {
            let dataInputs = op.inputs.filter { !isParam($0) }
            let anySharded = dataInputs.contains { sharded.contains($0) }
            let weights = op.inputs.filter(isParam)
            switch op.kind.definition.tensorParallel {
            case .weightSplit where !weights.isEmpty:
                if anySharded {
                    split[op.id] = .k
                    allReduceBytes[op.id] = op.outputs.reduce(0) { $0 + bytes($1) }
                } else {
                    split[op.id] = .n
                    sharded.formUnion(op.outputs)
                }
                splitParameters.formUnion(weights)
            case .weightSplit:
                if anySharded { split[op.id] = .batch; sharded.formUnion(op.outputs) }
            case .vocabulary where !weights.isEmpty:
                // Vocabulary-parallel lookup (Megatron's VocabParallelEmbedding): each device holds a slice of the
                // table's rows, looks up the tokens that fall in it, and the partial outputs are all-reduced.
                split[op.id] = .batch
                allReduceBytes[op.id] = op.outputs.reduce(0) { $0 + bytes($1) }
                splitParameters.formUnion(weights)
            case .vocabulary, .wholeFeatures:
                // Need whole features (or are the loss): gather a sharded input first.
                if anySharded {
                    allGatherBytes[op.id] = dataInputs.filter { sharded.contains($0) }.reduce(0) { $0 + bytes($1) }
                }
                if sequenceParallel, case .wholeFeatures(sequenceSplit: true) = op.kind.definition.tensorParallel { split[op.id] = .batch }
            case .followsInput:
                if anySharded {
                    split[op.id] = .batch
                    sharded.formUnion(op.outputs)
                    // Per-channel parameters (biases, batch-norm scales) of a sharded tensor split with it.
                    splitParameters.formUnion(weights)
                } else if sequenceParallel && !op.kind.isMatrixOp {
                    split[op.id] = .batch
                }
            }
        }
        for op in g.ops where op.phase == .backward {
            if let f = op.forward, f < split.count { split[op.id] = split[f] }
        }
        for op in g.ops where op.phase == .optimizer {
            if op.inputs.contains(where: { splitParameters.contains($0) }) { split[op.id] = .n }
        }
    }

    /// Forward all-reduce plus all-gather bytes (FP32, recorded batch) of the ops in `ids`.
    public func communicatedBytes<S: Sequence>(_ ids: S) -> Double where S.Element == Int {
        ids.reduce(0) { $0 + allReduceBytes[$1] + allGatherBytes[$1] }
    }
}
