/// Every kind of op the engine runs and the compiler and simulator price. Each kind's rules are one value,
/// `definition` (OpDefinition.swift): the engine's recording, the compiler and the simulator read it, and the
/// functions here (FLOPs, backward FLOPs and traffic) and in ShapeRules.swift apply its rule classes. The switch that
/// writes the definitions names each kind (no `default:`): a new kind does not compile until it gives every rule
/// (issue 13 §1).
///
/// Convention: a multiply-add counts as 2 FLOPs; published "MACs" figures are half the FLOPs reported here.
public enum OpKind: String, Codable, Sendable, CaseIterable {
    // dense linear algebra (`convTranspose2d`: the adjoint of a convolution, upsampling by its stride)
    case matmul, conv2d, convTranspose2d
    // pooling and normalisation
    case maxPool2d, avgPool2d, globalAvgPool, batchNorm, layerNorm
    // elementwise
    case add, sub, mul, div, scale, relu, gelu, sigmoid, tanh, exp, log, sqrt, neg, dropout, quantize
    // reductions and softmax
    case sum, mean, softmax, logSoftmax
    // data movement (no arithmetic)
    case reshape, transpose, concat, slice, embedding, broadcast
    // losses
    case crossEntropy, bceWithLogits, mse
    // the optimizer's update of one parameter
    case sgdUpdate, adamwUpdate

    /// Whether this op multiplies matrices (priced on Dojo's matrix unit rather than its SIMD unit): it has a GEMM view.
    public var isMatrixOp: Bool { definition.gemm != nil }

    /// Forward FLOPs of one op from its operand shapes (`definition.flops`). `inputs[0]` is the data input.
    public func flops(inputs: [[Int]], outputs: [[Int]], attributes a: OpAttributes) -> Double {
        let outCount = Double(outputs.first.map(elementCount) ?? 0)
        let inCount = Double(inputs.first.map(elementCount) ?? 0)
        switch definition.flops {
        case .matrixProduct:
            // [..., m, k] x [..., k, n] -> [..., m, n]
            guard let out = outputs.first, let x = inputs.first, !x.isEmpty else { return 0 }
            let k = Double(a.transposeA == true ? x[x.count - 2] : x[x.count - 1])
            return 2 * Double(elementCount(out)) * k
        case .convolution:
            // weights [OC, IC/groups, KH, KW]: each output element is IC/groups*KH*KW multiply-adds
            guard inputs.count > 1 else { return 0 }
            let perOutput = Double(inputs[1].dropFirst().reduce(1, *))
            let bias = inputs.count > 2 ? outCount : 0
            return 2 * outCount * perOutput + bias
        case .transposedConvolution:
            // weights [IC, OC/groups, KH, KW]: each input element spreads into OC/groups*KH*KW multiply-adds
            guard inputs.count > 1 else { return 0 }
            let perInput = Double(inputs[1].dropFirst().reduce(1, *))
            let bias = inputs.count > 2 ? outCount : 0
            return 2 * inCount * perInput + bias
        case .window:
            let k = a.kernel ?? [1, 1]
            return outCount * Double(k.reduce(1, *))
        case .perInput(let f):
            return inCount * f
        case .perOutput(let f):
            return outCount * f
        case .none:
            return 0
        }
    }

    /// Backward FLOPs, given the forward FLOPs and which inputs needed a gradient (`definition.gradient`).
    /// Matrix ops: one pass the size of the forward pass per input that needs a gradient (data, weights);
    /// the bias gradient is a reduction over the output. Other ops: twice their forward arithmetic (assumption).
    public func backwardFlops(forward: Double, inputs: [[Int]], outputs: [[Int]], needsGradient: [Bool]) -> Double {
        let outCount = Double(outputs.first.map(elementCount) ?? 0)
        switch definition.gradient {
        case .matrix:
            let hasBias = inputs.count > 2
            let core = forward - (hasBias ? outCount : 0)
            var total = core * Double(needsGradient.prefix(2).filter { $0 }.count)
            if hasBias, needsGradient.count > 2, needsGradient[2] { total += outCount }
            return total
        case .view, .movement, .fill, .scatter, .none:
            return 0
        case .passThrough:
            // a broadcast operand's gradient is a sum over the broadcast dimensions, sub's right operand's a negation:
            // one operation per output value; a gradient passed on (`passesGradient`) none
            let out = outputs.first ?? []
            return Double(needsGradient.indices.filter { needsGradient[$0] && $0 < inputs.count && !passesGradient($0, inputs, out) }.count) * outCount
        case .linear, .general:
            return 2 * forward
        }
    }
}

extension OpKind {
    /// Whether the gradient of operand `i` is the output's gradient itself: an operand of add, or sub's left one, of
    /// the output's shape (no kernel, no arithmetic; PyTorch's and the engine's backward hand the same tensor on).
    func passesGradient(_ i: Int, _ inputs: [[Int]], _ output: [Int]) -> Bool {
        guard case .passThrough(let rightNegated) = definition.gradient else { return false }
        return (!rightNegated || i == 0) && inputs[i] == output
    }

    /// Values the backward pass of one op reads and writes (the kernel's traffic, in elements), by its gradient rule:
    /// the gradient of its output and the forward values it needs, and a gradient for each input that needs one. A
    /// same-shape operand of an add passes the output's gradient on untouched, a view moves nothing, an embedding's
    /// gradient scatters the output's gradient into the table without reading it, and a slice's gradient fills its
    /// part of the input's. Summing two gradients of one tensor is an op of its own (`accumulates`: 2 read,
    /// 1 written), except the slices' parts of one gradient.
    public func backwardTraffic(inputs: [[Int]], output: [Int], needsGradient: [Bool]) -> (read: Int, written: Int) {
        let out = elementCount(output)
        let needed = inputs.indices.filter { $0 < needsGradient.count && needsGradient[$0] }
        let each = needed.reduce(0) { $0 + elementCount(inputs[$1]) }
        switch definition.gradient {
        case .view, .none:
            return (0, 0)
        case .passThrough:
            var read = 0, written = 0
            for i in needed where !passesGradient(i, inputs, output) {
                read += out; written += elementCount(inputs[i])
            }
            return (read, written)
        case .linear:
            return (needed.isEmpty ? 0 : out, each)
        case .scatter:
            return (out, each)
        case .fill:
            return needed.isEmpty ? (0, 0) : (out, out)
        case .matrix, .movement, .general:
            return (out + each, each)
        }
    }
}

/// Number of elements of a shape.
public func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

/// The attributes an op kind may carry; only those that apply are set, so the JSON form stays small.
public struct OpAttributes: Codable, Sendable, Equatable {
    public var kernel: [Int]?
    public var stride: [Int]?
    public var padding: [Int]?
    public var groups: Int?
    public var transposeA: Bool?
    public var transposeB: Bool?
    public var axes: [Int]?
    public var probability: Double?
    public var epsilon: Double?
    public var dtype: DType?
    public var scalar: Double?
    /// The result's shape, for the kinds whose operands cannot say it (reshape, slice, broadcast, an embedding by a
    /// list of indices): what `OpKind.outputShape` checks them against.
    public var shape: [Int]?
    /// A reduction keeps its axes as 1s.
    public var keepDims: Bool?
    /// A backward `add` that sums two gradients of one tensor (a value the forward pass read twice, as a residual
    /// stream): its own kernel, never part of its forward op's fused chain.
    public var accumulates: Bool?
    /// A softmax over attention scores under a causal mask (query i sees keys 0...i): recorded at the full cost, as
    /// an implementation that computes every score pays it; a kernel that skips the masked blocks (FlashAttention)
    /// computes about half (the step model's `causal_block`).
    public var causal: Bool?

    public init(kernel: [Int]? = nil, stride: [Int]? = nil, padding: [Int]? = nil, groups: Int? = nil,
                transposeA: Bool? = nil, transposeB: Bool? = nil, axes: [Int]? = nil, probability: Double? = nil,
                epsilon: Double? = nil, dtype: DType? = nil, scalar: Double? = nil, shape: [Int]? = nil, keepDims: Bool? = nil,
                accumulates: Bool? = nil, causal: Bool? = nil) {
        self.kernel = kernel; self.stride = stride; self.padding = padding; self.groups = groups
        self.transposeA = transposeA; self.transposeB = transposeB; self.axes = axes
        self.probability = probability; self.epsilon = epsilon; self.dtype = dtype; self.scalar = scalar
        self.shape = shape; self.keepDims = keepDims; self.accumulates = accumulates; self.causal = causal
    }
}
