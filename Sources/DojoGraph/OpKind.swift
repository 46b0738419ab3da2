/// Every kind of op the engine runs and the compiler and simulator price. One place holds what each kind costs
/// (FLOPs of its forward and backward pass), so the engine's recording and the simulator read one definition.
/// Every switch over the kinds here and in the compiler names each kind (no `default:`): a new kind does not
/// compile until each rule says what it is (issue 13 §1).
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

    /// Whether this op multiplies matrices (priced on Dojo's matrix unit rather than its SIMD unit).
    public var isMatrixOp: Bool { self == .matmul || self == .conv2d || self == .convTranspose2d }

    /// Arithmetic per output element (or per input element for reductions) of the forward pass, for the
    /// elementwise-like kinds. Assumption: counts of a straightforward implementation (GELU's tanh form ≈ 14).
    var elementwiseFlops: Double {
        switch self {
        case .add, .sub, .mul, .div, .scale, .relu, .neg, .sum, .mean: return 1
        case .dropout: return 2
        case .sqrt, .exp, .log: return 4
        case .sigmoid, .tanh, .quantize: return 4
        case .softmax, .logSoftmax: return 5
        case .crossEntropy, .bceWithLogits: return 6
        case .mse: return 3
        case .batchNorm, .layerNorm: return 8
        case .gelu: return 14
        case .sgdUpdate: return 4      // weight decay, momentum, (Nesterov), step
        case .adamwUpdate: return 14   // two moments, bias correction, sqrt, divide, decay, step
        // no per-element arithmetic of this kind (matrix ops and pooling count theirs in `flops`; data movement none)
        case .matmul, .conv2d, .convTranspose2d, .maxPool2d, .avgPool2d, .globalAvgPool, .reshape, .transpose, .concat, .slice,
             .embedding, .broadcast:
            return 0
        }
    }

    /// Forward FLOPs of one op from its operand shapes. `inputs[0]` is the data input.
    public func flops(inputs: [[Int]], outputs: [[Int]], attributes a: OpAttributes) -> Double {
        let outCount = Double(outputs.first.map(elementCount) ?? 0)
        let inCount = Double(inputs.first.map(elementCount) ?? 0)
        switch self {
        case .matmul:
            // [..., m, k] x [..., k, n] -> [..., m, n]
            guard let out = outputs.first, let x = inputs.first, !x.isEmpty else { return 0 }
            let k = Double(a.transposeA == true ? x[x.count - 2] : x[x.count - 1])
            return 2 * Double(elementCount(out)) * k
        case .conv2d:
            // weights [OC, IC/groups, KH, KW]: each output element is IC/groups*KH*KW multiply-adds
            guard inputs.count > 1 else { return 0 }
            let w = inputs[1]
            let perOutput = Double(w.dropFirst().reduce(1, *))
            let bias = inputs.count > 2 ? outCount : 0
            return 2 * outCount * perOutput + bias
        case .convTranspose2d:
            // weights [IC, OC/groups, KH, KW]: each input element spreads into OC/groups*KH*KW multiply-adds
            guard inputs.count > 1 else { return 0 }
            let perInput = Double(inputs[1].dropFirst().reduce(1, *))
            let bias = inputs.count > 2 ? outCount : 0
            return 2 * inCount * perInput + bias
        case .maxPool2d, .avgPool2d:
            let k = a.kernel ?? [1, 1]
            return outCount * Double(k.reduce(1, *))
        case .globalAvgPool, .sum, .mean:
            return inCount
        case .softmax, .logSoftmax, .crossEntropy, .bceWithLogits, .mse, .batchNorm, .layerNorm:
            return inCount * elementwiseFlops
        case .sgdUpdate, .adamwUpdate:
            return inCount * elementwiseFlops
        case .reshape, .transpose, .concat, .slice, .embedding, .broadcast:
            return 0
        case .add, .sub, .mul, .div, .scale, .relu, .gelu, .sigmoid, .tanh, .exp, .log, .sqrt, .neg, .dropout, .quantize:
            return outCount * elementwiseFlops
        }
    }

    /// Backward FLOPs, given the forward FLOPs and which inputs needed a gradient.
    /// Matrix ops: one pass the size of the forward pass per input that needs a gradient (data, weights);
    /// the bias gradient is a reduction over the output. Other ops: twice their forward arithmetic (assumption).
    public func backwardFlops(forward: Double, inputs: [[Int]], outputs: [[Int]], needsGradient: [Bool]) -> Double {
        let outCount = Double(outputs.first.map(elementCount) ?? 0)
        switch self {
        case .matmul:
            return forward * Double(needsGradient.prefix(2).filter { $0 }.count)
        case .conv2d, .convTranspose2d:
            let hasBias = inputs.count > 2
            let core = forward - (hasBias ? outCount : 0)
            var total = core * Double(needsGradient.prefix(2).filter { $0 }.count)
            if hasBias, needsGradient.count > 2, needsGradient[2] { total += outCount }
            return total
        case .reshape, .transpose, .concat, .slice, .broadcast, .embedding:
            return 0
        case .sgdUpdate, .adamwUpdate:
            return 0
        case .add, .sub:
            // a broadcast operand's gradient is a sum over the broadcast dimensions, sub's right operand's a negation:
            // one operation per output value; a gradient passed on (`passesGradient`) none
            let out = outputs.first ?? []
            return Double(needsGradient.indices.filter { needsGradient[$0] && $0 < inputs.count && !passesGradient($0, inputs, out) }.count) * outCount
        case .maxPool2d, .avgPool2d, .globalAvgPool, .batchNorm, .layerNorm, .mul, .div, .scale, .relu, .gelu,
             .sigmoid, .tanh, .exp, .log, .sqrt, .neg, .dropout, .quantize, .sum, .mean, .softmax, .logSoftmax,
             .crossEntropy, .bceWithLogits, .mse:
            return 2 * forward
        }
    }
}

extension OpKind {
    /// Values the backward pass of one op reads and writes (the kernel's traffic, in elements): the gradient of its
    /// output and the forward values it needs, and a gradient for each input that needs one. A same-shape operand of
    /// an add passes the output's gradient on untouched (no kernel; PyTorch's and the engine's add backward hand the
    /// same tensor on), a reshape moves nothing, and an embedding's gradient scatters the output's gradient into the
    /// table without reading it, and a slice's gradient fills its part of the input's. Summing two gradients of one
    /// tensor is an op of its own (`accumulates`: 2 read, 1 written), except the slices' parts of one gradient.
    /// Whether the gradient of operand `i` is the output's gradient itself: an operand of add, or sub's left one, of
    /// the output's shape (no kernel, no arithmetic; PyTorch's and the engine's backward hand the same tensor on).
    func passesGradient(_ i: Int, _ inputs: [[Int]], _ output: [Int]) -> Bool {
        (self == .add || (self == .sub && i == 0)) && inputs[i] == output
    }

    public func backwardTraffic(inputs: [[Int]], output: [Int], needsGradient: [Bool]) -> (read: Int, written: Int) {
        let out = elementCount(output)
        let needed = inputs.indices.filter { $0 < needsGradient.count && needsGradient[$0] }
        switch self {
        case .reshape:
            return (0, 0)
        case .add, .sub:
            var read = 0, written = 0
            for i in needed where !passesGradient(i, inputs, output) {
                read += out; written += elementCount(inputs[i])
            }
            return (read, written)
        case .scale, .neg:
            return (needed.isEmpty ? 0 : out, needed.reduce(0) { $0 + elementCount(inputs[$1]) })
        case .embedding:
            return (out, needed.reduce(0) { $0 + elementCount(inputs[$1]) })
        case .slice:
            // the output's gradient written into its place in the input's gradient (the slices of one tensor fill
            // disjoint parts of one buffer, as a split's backward concatenates them)
            return needed.isEmpty ? (0, 0) : (out, out)
        case .matmul, .conv2d, .convTranspose2d, .maxPool2d, .avgPool2d, .globalAvgPool, .batchNorm, .layerNorm, .mul, .div,
             .relu, .gelu, .sigmoid, .tanh, .exp, .log, .sqrt, .dropout, .quantize, .sum, .mean, .softmax, .logSoftmax,
             .transpose, .concat, .broadcast, .crossEntropy, .bceWithLogits, .mse, .sgdUpdate, .adamwUpdate:
            let each = needed.reduce(0) { $0 + elementCount(inputs[$1]) }
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

    public init(kernel: [Int]? = nil, stride: [Int]? = nil, padding: [Int]? = nil, groups: Int? = nil,
                transposeA: Bool? = nil, transposeB: Bool? = nil, axes: [Int]? = nil, probability: Double? = nil,
                epsilon: Double? = nil, dtype: DType? = nil, scalar: Double? = nil, shape: [Int]? = nil, keepDims: Bool? = nil,
                accumulates: Bool? = nil) {
        self.kernel = kernel; self.stride = stride; self.padding = padding; self.groups = groups
        self.transposeA = transposeA; self.transposeB = transposeB; self.axes = axes
        self.probability = probability; self.epsilon = epsilon; self.dtype = dtype; self.scalar = scalar
        self.shape = shape; self.keepDims = keepDims; self.accumulates = accumulates
    }
}
