import DojoGraph

/// Operator fusion, as training compilers and fused-kernel libraries do it (XLA, TensorRT, Megatron/APEX's fused
/// bias-GELU and bias-dropout-add kernels, and Dojo's compiler, which keeps a producer's output in SRAM for its
/// consumers): a chain of elementwise and data-movement ops that starts from a matrix op's output runs as one
/// kernel. The chain reads what enters it once and writes what leaves it once, instead of a round trip through
/// memory per op: bias adds, activations, scales, dropout and residual adds after a matmul or convolution, and the
/// transposes and slices that re-index a GEMM's result for the next one. Reductions (softmax, norms, losses) start
/// kernels of their own, and what follows a normalisation is not fused (ASSUMPTION: as PyTorch with Megatron/APEX
/// fused kernels; cuDNN/MXNet BN+ReLU fusion is left out). A chain's backward ops form the mirror chain.
public struct FusionPlan: Sendable, Equatable {
    /// The chain each op (by id) belongs to, or -1 when it is its own kernel.
    public var chainOf: [Int]
    /// Each chain (forward): its ops in order, and what it moves and computes at the recorded batch in FP32.
    public struct Chain: Sendable, Equatable {
        public var ops: [Int]
        public var flops: Double
        /// Bytes entering the chain (read once) and leaving it (written once), FP32 at the recorded batch.
        public var bytesIn: Double
        public var bytesOut: Double
    }
    public var chains: [Chain]

    /// Kinds that can join a chain (`definition.fusion`).
    public static let epilogueKinds = Set(OpKind.allCases.filter { $0.definition.fusion == .epilogue })
    /// Kinds whose output a chain can start from.
    public static let rootKinds = Set(OpKind.allCases.filter { $0.definition.fusion == .root })

    /// Whether op `id` runs as part of a chain.
    public func isFused(_ id: Int) -> Bool { chainOf[id] >= 0 }
    /// How many ops are fused into chains.
    public var count: Int { chainOf.filter { $0 >= 0 }.count }

    /// No fusion: every op is its own kernel.
    public static func none(_ g: Graph) -> FusionPlan { FusionPlan(chainOf: Array(repeating: -1, count: g.ops.count), chains: []) }

    init(chainOf: [Int], chains: [Chain]) { self.chainOf = chainOf; self.chains = chains }

    /// The same plan with every chain that holds one of these forward ops split back into kernels of their own (the
    /// chain's ops and their gradients; the chain is left empty).
    public func unfusing(_ forwardOps: Set<Int>) -> FusionPlan {
        var plan = self
        let dropped = Set(forwardOps.compactMap { $0 < chainOf.count && chainOf[$0] >= 0 ? chainOf[$0] : nil })
        guard !dropped.isEmpty else { return plan }
        for i in plan.chainOf.indices where dropped.contains(plan.chainOf[i]) { plan.chainOf[i] = -1 }
        for c in dropped { plan.chains[c] = Chain(ops: [], flops: 0, bytesIn: 0, bytesOut: 0) }
        return plan
    }

    public init(graph g: Graph) {
        var chainOf = Array(repeating: -1, count: g.ops.count)
        var chains: [Chain] = []
        let maxID = g.tensors.reduce(-1) { max($0, $1.id) }
        var producer = Array(repeating: -1, count: maxID + 1)   // tensor id → forward op id that wrote it
        var rootOf: [Int] = []                                  // chain → the matrix op whose output starts it
        func bytes(_ t: Int) -> Double { Double(g.tensor(t)?.bytes ?? 0) }
        for op in g.ops where op.phase == .forward {
            defer { for t in op.outputs where t >= 0 && t <= maxID { producer[t] = op.id } }
            guard FusionPlan.epilogueKinds.contains(op.kind) else { continue }
            // join the chain of a fused producer, or start one from a matrix op's output; a chain can take an op only
            // if the op's other inputs exist when the chain's kernel runs (made by its root op or before it, or in the chain):
            // the residual add after a transformer's second matmul reads both the first residual (an earlier chain's
            // output) and its own matmul's, and belongs to the later chain
            var chain = -1
            func admits(_ c: Int) -> Bool {
                op.inputs.allSatisfy { t in
                    guard t >= 0 && t <= maxID, producer[t] >= 0 else { return true }
                    return chainOf[producer[t]] == c || producer[t] <= rootOf[c]
                }
            }
            for t in op.inputs where t >= 0 && t <= maxID {
                let p = producer[t]
                guard p >= 0 else { continue }
                if chainOf[p] >= 0 {
                    if admits(chainOf[p]) { chain = chainOf[p]; break }
                    continue
                }
                if FusionPlan.rootKinds.contains(g.ops[p].kind) {
                    chains.append(Chain(ops: [], flops: 0, bytesIn: 0, bytesOut: 0))
                    rootOf.append(p)
                    if admits(chains.count - 1) { chain = chains.count - 1; break }
                    chains.removeLast(); rootOf.removeLast()
                }
            }
            guard chain >= 0 else { continue }
            chainOf[op.id] = chain
            chains[chain].ops.append(op.id)
            chains[chain].flops += op.flops
        }
        // what enters and leaves each chain: one more pass marks chain outputs read outside their chain
        var used = Array(repeating: false, count: maxID + 1)
        var usedOutside = Array(repeating: false, count: maxID + 1)
        for op in g.ops where op.phase == .forward {
            for t in op.inputs where t >= 0 && t <= maxID {
                let p = producer[t]
                guard p >= 0, chainOf[p] >= 0 else { continue }
                used[t] = true
                if chainOf[op.id] != chainOf[p] { usedOutside[t] = true }
            }
        }
        for (c, chain) in chains.enumerated() {
            var seenIn = Set<Int>()
            for id in chain.ops {
                let op = g.ops[id]
                for t in op.inputs where !seenIn.contains(t) && t >= 0 && t <= maxID {
                    if producer[t] >= 0, chainOf[producer[t]] == c { continue }
                    if g.tensor(t)?.role == .parameter { continue }
                    seenIn.insert(t)
                    chains[c].bytesIn += bytes(t)
                }
                for t in op.outputs where t >= 0 && t <= maxID && (usedOutside[t] || !used[t]) {
                    chains[c].bytesOut += bytes(t)
                }
            }
        }
        for op in g.ops where op.phase == .backward && op.attributes.accumulates != true {
            if let f = op.forward, f < chainOf.count { chainOf[op.id] = chainOf[f] }
        }
        self.chainOf = chainOf
        self.chains = chains
    }
}
