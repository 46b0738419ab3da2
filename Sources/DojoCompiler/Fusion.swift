import DojoGraph

/// Operator fusion, as every training compiler does it (XLA, TensorRT, cuDNN's fused kernels, and Dojo's compiler,
/// which keeps a producer's output in SRAM for its consumers): an elementwise or data-movement op whose input
/// comes straight from a matrix op or another fused op runs in that producer's epilogue, so its
/// tensor never makes a round trip through memory. Bias adds, activations, scales, dropout and residual adds after
/// a matmul or convolution; transposes and slices that only re-index a GEMM operand. Reductions (softmax,
/// norms, losses) start a kernel of their own, and what follows a normalisation is not fused (ASSUMPTION: as in
/// PyTorch eager with Megatron/APEX fused kernels; cuDNN/MXNet BN+ReLU fusion is left out). A fused op's backward pass
/// fuses with its forward op's.
public struct FusionPlan: Sendable, Equatable {
    /// Whether each op (by id) runs inside another op's kernel.
    public var fused: [Bool]

    /// Kinds that can run in a producer's epilogue.
    public static let epilogueKinds: Set<OpKind> = [
        .add, .sub, .mul, .div, .scale, .relu, .gelu, .sigmoid, .tanh, .neg, .dropout, .quantize,
        .reshape, .transpose, .slice, .broadcast,
    ]
    /// Kinds whose output an epilogue can continue from.
    public static let rootKinds: Set<OpKind> = [.matmul, .conv2d]

    /// No fusion: every op is its own kernel.
    public static func none(_ g: Graph) -> FusionPlan { FusionPlan(fused: Array(repeating: false, count: g.ops.count)) }

    init(fused: [Bool]) { self.fused = fused }

    public init(graph g: Graph) {
        var fused = Array(repeating: false, count: g.ops.count)
        var producer: [Int: Int] = [:]   // tensor id → forward op id that wrote it
        for op in g.ops where op.phase == .forward {
            if FusionPlan.epilogueKinds.contains(op.kind) {
                let fromKernel = op.inputs.contains { t in
                    guard let p = producer[t] else { return false }
                    return FusionPlan.rootKinds.contains(g.ops[p].kind) || fused[p]
                }
                fused[op.id] = fromKernel
            }
            for t in op.outputs { producer[t] = op.id }
        }
        for op in g.ops where op.phase == .backward {
            if let f = op.forward, f < fused.count { fused[op.id] = fused[f] }
        }
        self.fused = fused
    }

    /// How many ops are fused away.
    public var count: Int { fused.filter { $0 }.count }
}
