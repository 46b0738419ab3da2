import DojoGraph

/// The number format a simulated step computes in. Mixed precision: matrix ops and stored activations in the
/// format, FP32 master weights and optimizer state (`masterBytesPerParameter`).
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32, tf32, fp16, bf16, cfp8, fp8

    /// Bytes of one activation or weight element as the step stores and moves it.
    public var bytes: Double {
        switch self {
        case .fp32, .tf32: return 4
        case .fp16, .bf16: return 2
        case .cfp8, .fp8: return 1
        }
    }

    /// Whether the matrix unit (Dojo) or tensor cores (GPU) run it at a reduced-precision rate.
    public var isReduced: Bool { self != .fp32 }

    /// Bytes per parameter that a mixed-precision step keeps besides the working weights: FP32 master weights and,
    /// for Adam(W), two FP32 moments; gradients in the working format (ASSUMPTION: the usual 16 B/parameter for
    /// 2-byte formats, Rajbhandari et al. "ZeRO", 2020).
    public func stateBytesPerParameter(adam: Bool = true) -> Double {
        let moments: Double = adam ? 8 : 4
        let master: Double = self == .fp32 || self == .tf32 ? 0 : 4
        return bytes /* weights */ + bytes /* gradients */ + master + moments
    }

    /// Parses the names users type: `fp32`, `tf32`, `fp16`, `bf16`, `cfp8`, `fp8`.
    public init?(name: String) {
        switch name.lowercased() {
        case "fp32", "f32", "float32": self = .fp32
        case "tf32": self = .tf32
        case "fp16", "f16", "half", "amp": self = .fp16
        case "bf16", "bfloat16": self = .bf16
        case "cfp8", "cfp8-143", "cfp8-152": self = .cfp8
        case "fp8", "e4m3", "e5m2": self = .fp8
        default: return nil
        }
    }
}

/// A GEMM view of a matrix op: `batch` independent products of an m×k and a k×n matrix.
public struct GEMMShape: Sendable, Equatable, Hashable, Codable {
    public var batch: Double
    public var m: Double
    public var n: Double
    public var k: Double
    public init(batch: Double = 1, m: Double, n: Double, k: Double) {
        self.batch = batch; self.m = m; self.n = n; self.k = k
    }
    public var flops: Double { 2 * batch * m * n * k }
}

/// What one op asks of a device, in the units a cost model prices: FLOPs (matrix or vector), bytes moved at the
/// step's precision, and for matrix ops the GEMM it is. Made from a Graph IR op (`init(op:graph:precision:)`) and
/// scaled by a plan (`scaled(batch:split:)`).
public struct OpWork: Sendable, Equatable, Hashable {
    public var kind: OpKind
    public var phase: Phase
    /// Matrix ops (matmul, conv2d, their backward passes): the forward GEMM, as the implicit-GEMM form for
    /// convolutions (m = N·OH·OW, n = OC/groups, k = IC/groups·KH·KW, batch = groups). A backward pass's GEMMs (the
    /// input's and the weights' gradients, each with its own shape) are `gemmPasses`.
    public var gemm: GEMMShape?
    /// How many GEMMs the op is (1 forward; 1–2 backward: `gemmPasses`).
    public var passes: Double
    /// Arithmetic: 2 per multiply-add (as the IR counts).
    public var flops: Double
    /// Bytes read and written at the step's precision.
    public var bytesRead: Double
    public var bytesWritten: Double
    /// Bytes of parameters among the inputs (weights a matrix op must hold or stream).
    public var weightBytes: Double
    /// Two gradients of one tensor summed (the IR's `accumulates`): an addition of two tensors, whatever op's
    /// backward it is recorded under.
    public var accumulates: Bool

    public init(kind: OpKind, phase: Phase, gemm: GEMMShape?, passes: Double = 1, flops: Double, bytesRead: Double,
                bytesWritten: Double, weightBytes: Double = 0, accumulates: Bool = false) {
        self.kind = kind; self.phase = phase; self.gemm = gemm; self.passes = passes; self.flops = flops
        self.bytesRead = bytesRead; self.bytesWritten = bytesWritten; self.weightBytes = weightBytes
        self.accumulates = accumulates
    }

    /// Whether the op does no arithmetic and moves nothing (a reshape: a view).
    public var isFree: Bool { flops == 0 && bytesRead == 0 && bytesWritten == 0 }

    /// The op `op` of `graph` as work at `precision`. Byte counts of the IR (FP32) are rescaled to the precision's
    /// element size; the optimizer's update keeps its FP32 bytes (master weights and moments are FP32).
    public init(op: Op, graph: Graph, precision: Precision) {
        let forwardOp = op.phase == .backward ? op.forward.flatMap { id in graph.ops.indices.contains(id) ? graph.ops[id] : nil } : op
        let scale = op.phase == .optimizer ? 1 : precision.bytes / 4
        var gemm: GEMMShape?
        var passes: Double = 1
        var weightBytes: Double = 0
        if let f = forwardOp {
            var params = 0
            for t in f.inputs { if let info = graph.tensor(t), info.role == .parameter { params += elementCount(info.shape) } }
            weightBytes = Double(params) * precision.bytes
            // A lookup reads only the rows it gathers (its recorded bytes), never the whole table.
            if op.kind.definition.bytes == .gathered { weightBytes = 0 }
            if op.kind.isMatrixOp {
                let shapes = f.inputs.map { graph.tensor($0)?.shape ?? [] }
                let out = f.outputs.first.flatMap { graph.tensor($0)?.shape } ?? []
                gemm = OpWork.gemm(kind: op.kind, inputs: shapes, output: out, attributes: f.attributes)
            }
            if op.phase == .backward, let g = gemm, g.flops > 0 { passes = max(1, (op.flops / g.flops).rounded()) }
        }
        self.init(kind: op.kind, phase: op.phase, gemm: gemm, passes: passes, flops: op.flops,
                  bytesRead: Double(op.bytesRead) * scale, bytesWritten: Double(op.bytesWritten) * scale,
                  weightBytes: weightBytes, accumulates: op.attributes.accumulates == true)
    }

    /// The GEMM of a forward matmul or convolution, from its shapes.
    public static func gemm(kind: OpKind, inputs: [[Int]], output: [Int], attributes a: OpAttributes) -> GEMMShape? {
        switch kind.definition.gemm {
        case .matrixProduct:
            guard inputs.count >= 2, output.count >= 2, let x = inputs.first, x.count >= 2 else { return nil }
            let m = Double(output[output.count - 2]), n = Double(output[output.count - 1])
            let k = Double(a.transposeA == true ? x[x.count - 2] : x[x.count - 1])
            let batch = Double(output.dropLast(2).reduce(1, *))
            return GEMMShape(batch: batch, m: m, n: n, k: k)
        case .convolution:
            guard inputs.count >= 2, output.count == 4, inputs[1].count == 4 else { return nil }
            let w = inputs[1]
            let groups = Double(a.groups ?? 1)
            let m = Double(output[0] * output[2] * output[3])
            return GEMMShape(batch: groups, m: m, n: Double(w[0]) / groups, k: Double(w[1] * w[2] * w[3]))
        case .transposedConvolution:
            // each input position times the weight gives its output columns (OC/groups × KH × KW), scattered after
            guard inputs.count >= 2, let x = inputs.first, x.count == 4, inputs[1].count == 4 else { return nil }
            let w = inputs[1]
            let groups = Double(a.groups ?? 1)
            return GEMMShape(batch: groups, m: Double(x[0] * x[2] * x[3]), n: Double(w[1] * w[2] * w[3]), k: Double(w[0]) / groups)
        case nil:
            return nil   // not a matrix product
        }
    }
}

/// How tensor (intra-layer) parallelism divides an op among `ways` devices.
public enum SplitAxis: String, Sendable, Codable {
    /// Not divided: every device does the whole op (replicated).
    case none
    /// Output columns (a column-parallel matmul: weights split by output feature).
    case n
    /// The reduction dimension (a row-parallel matmul: partial sums, all-reduced after).
    case k
    /// Independent products or elements (attention heads, elementwise ops on a sharded tensor).
    case batch
}

extension OpWork {
    /// The GEMMs a matrix op runs, each as work of its own (one pass, its shape, its share of the bytes), as
    /// C[m, n] = A[m, k]·B[k, n] per batch: forward, the op's own shape `passes` times; backward, the input's gradient
    /// dA = dC·Bᵀ ([m, k], reducing over n; B the weights when the op has them) and the weights' dB = Aᵀ·dC ([k, n],
    /// reducing over m, B being dC: no weights read). A convolution's weight gradient (output channels × input
    /// channels·kernel, reduced over every output pixel of the batch) has few output tiles and a long reduction, unlike
    /// its forward pass. One backward pass of an op with weights is the weights' gradient (its input needs none: the
    /// first layer); one of a product of two activations is priced as the forward shape. Empty without a GEMM.
    public var gemmPasses: [OpWork] {
        guard let g = gemm else { return [] }
        let count = max(1, Int(passes.rounded()))
        func pass(_ shape: GEMMShape, weights: Double, of n: Int) -> OpWork {
            OpWork(kind: kind, phase: phase, gemm: shape, passes: 1, flops: shape.flops, bytesRead: bytesRead / Double(n),
                   bytesWritten: bytesWritten / Double(n), weightBytes: weights)
        }
        guard phase == .backward, count <= 2 else { return Array(repeating: pass(g, weights: weightBytes, of: count), count: count) }
        let inputGradient = GEMMShape(batch: g.batch, m: g.m, n: g.k, k: g.n)
        let weightGradient = GEMMShape(batch: g.batch, m: g.k, n: g.n, k: g.m)
        if count == 2 { return [pass(inputGradient, weights: weightBytes, of: 2), pass(weightGradient, weights: 0, of: 2)] }
        return [weightBytes > 0 ? pass(weightGradient, weights: 0, of: 1) : pass(g, weights: 0, of: 1)]
    }
}

extension OpWork {
    /// Whether the batch of samples runs along the GEMM's m (a layer applied to every sample) rather than its batch
    /// count (products of two activations, as attention's).
    public var batchAlongM: Bool { (kind.definition.gemm.map { $0 != .matrixProduct } ?? false) || weightBytes > 0 }

    /// This work for `factor` times the samples (a micro-batch of `factor` × the recorded batch), divided `ways`
    /// ways along `split`. Weights do not grow with the batch; they divide when the split is along n or k.
    public func scaled(batch factor: Double, split: SplitAxis = .none, ways: Double = 1) -> OpWork {
        var w = self
        let divided = split == .none ? 1 : ways
        if phase == .optimizer {
            // One parameter's update: no batch; a sharded parameter updates its shard.
            w.flops /= divided; w.bytesRead /= divided; w.bytesWritten /= divided; w.weightBytes /= divided
            return w
        }
        if var g = gemm {
            if batchAlongM { g.m *= factor } else { g.batch *= factor }
            switch split {
            case .none: break
            case .n: g.n /= ways
            case .k: g.k /= ways
            case .batch: if g.batch >= ways { g.batch /= ways } else { g.n /= ways }
            }
            w.gemm = g
        }
        let weightShare = split == .n || split == .k ? weightBytes / ways : weightBytes
        let activationRead = max(0, bytesRead - weightBytes) * factor / divided
        w.bytesRead = activationRead + weightShare
        // a backward pass writes its weights' gradient once, whatever the batch (the rest it writes grows with it)
        let weightsWritten = phase == .backward ? min(weightBytes, bytesWritten) : 0
        let writtenShare = split == .n || split == .k ? weightsWritten / ways : weightsWritten
        w.bytesWritten = (bytesWritten - weightsWritten) * factor / divided + writtenShare
        w.flops = flops * factor / divided
        w.weightBytes = weightShare
        return w
    }
}
