/// One definition per op kind (issue 13 §1, as MLX keeps a primitive's shape, evaluation and gradient together):
/// every rule the project has about a kind — its operands, shape rule, FLOP and byte counts, how its gradient is
/// computed and what it costs, its GEMM view, how tensor parallelism divides it, its traffic on Dojo's mesh and
/// whether it fuses — is a field of one value, `OpKind.definition`, written in one switch that names each kind.
/// A new kind does not compile until that switch gives every field. The shape inference, the FLOP and traffic
/// counts (DojoGraph), the compiler (GEMM view, sharding, fusion, the mesh mapping) and the simulator ask the
/// definition and switch over its rule classes, never over the kinds themselves.
public struct OpDefinition: Sendable, Equatable {
    /// How many operands an op of this kind takes (data input first), as the engine records it.
    public var operands: ClosedRange<Int>
    /// How its output shape follows from its operands (`OpKind.outputShape`).
    public var shape: ShapeRule
    /// Its forward arithmetic (`OpKind.flops`).
    public var flops: FlopRule
    /// Bytes its forward pass moves, in the Graph IR.
    public var bytes: ByteRule
    /// How its gradient is computed: backward FLOPs and traffic (`backwardFlops`, `backwardTraffic`).
    public var gradient: GradientRule
    /// What its backward pass reads of its forward values: the activation memory a step keeps for it.
    public var saved: SavedValues
    /// The GEMM it is, for the matrix ops (priced on Dojo's matrix unit and GPUs' tensor cores).
    public var gemm: GEMMView?
    /// How tensor (intra-layer) parallelism divides it.
    public var tensorParallel: TensorParallelClass
    /// What it moves across Dojo's mesh besides its own part of its tensors.
    public var meshTraffic: MeshTrafficClass
    /// Its place in a fused kernel.
    public var fusion: FusionRole

    public init(operands: ClosedRange<Int>, shape: ShapeRule, flops: FlopRule, bytes: ByteRule = .operands,
                gradient: GradientRule, saved: SavedValues, gemm: GEMMView? = nil, tensorParallel: TensorParallelClass,
                meshTraffic: MeshTrafficClass, fusion: FusionRole) {
        self.operands = operands; self.shape = shape; self.flops = flops; self.bytes = bytes; self.gradient = gradient
        self.saved = saved
        self.gemm = gemm; self.tensorParallel = tensorParallel; self.meshTraffic = meshTraffic; self.fusion = fusion
    }

    public enum ShapeRule: Sendable, Equatable {
        /// [..., m, k] · [..., k, n] (either transposed by the attributes)
        case matrixProduct
        /// NCHW input, OIHW weight, optional bias: a window over the padded input
        case convolution
        /// the adjoint of a convolution: IOHW weight, output padding below the stride from `attributes.shape`
        case transposedConvolution
        /// pooling: a window (`attributes.kernel`) over NCHW
        case window
        /// NCHW → NC
        case globalPool
        /// the input's shape; scale and shift per channel (dimension 1)
        case channelNormalization
        /// the input's shape; scale (and shift) per feature (the last dimension)
        case featureNormalization
        /// two operands broadcast (NumPy's rule), or one and a constant (`attributes.scalar`)
        case broadcastBinary
        /// the input's shape
        case sameAsInput
        /// `attributes.axes` removed (or kept as 1s)
        case reduction
        /// `attributes.shape`, the same number of elements
        case reshape
        /// `attributes.axes` as a permutation
        case permutation
        /// operands joined along `attributes.axes[0]`
        case concatenation
        /// part of one axis, the result in `attributes.shape`
        case slice
        /// rows of a [vocabulary, dimension] table, by an index operand or `attributes.shape`
        case lookup
        /// the input broadcast to `attributes.shape`
        case broadcastTo
        /// a scalar loss of [batch, classes] logits
        case classLoss
        /// a scalar loss of predictions and targets of one shape
        case pairLoss
    }

    public enum FlopRule: Sendable, Equatable {
        /// 2 per multiply-add of the product
        case matrixProduct
        /// 2 per multiply-add of each output element's window, plus the bias
        case convolution
        /// 2 per multiply-add of each input element spread into its window, plus the bias
        case transposedConvolution
        /// one per window element per output
        case window
        /// this many per input element (reductions, normalisations, losses, optimizer updates)
        case perInput(Double)
        /// this many per output element (elementwise)
        case perOutput(Double)
        /// no arithmetic (data movement)
        case none
    }

    public enum ByteRule: Sendable, Equatable {
        /// reads every operand, writes the output
        case operands
        /// reads the rows it gathers and the indices, never the whole table
        case gathered
        /// a view: moves nothing
        case view
    }

    /// How the backward pass of an op of this kind is computed, which sets its FLOPs and traffic.
    public enum GradientRule: Sendable, Equatable {
        /// one product the size of the forward pass per operand that needs a gradient (data and weights); the bias
        /// gradient a reduction over the output
        case matrix
        /// the gradient of a same-shape operand is the output's gradient itself (no kernel); a broadcast operand's
        /// a sum over its broadcast dimensions, a negated right operand's (sub) a negation: one operation per output value
        case passThrough(rightNegated: Bool)
        /// the output's gradient times a constant: reads only that gradient (scale, negation)
        case linear
        /// the output's gradient scattered into the table's rows, without reading the table
        case scatter
        /// the output's gradient written into its part of the input's gradient (the slices of one tensor fill
        /// disjoint parts of one buffer, as a split's backward concatenates them)
        case fill
        /// re-indexing the output's gradient (transpose, concatenation, broadcast's sum): no arithmetic counted
        case movement
        /// a view of the output's gradient: nothing moves
        case view
        /// twice the forward arithmetic (ASSUMPTION), reading the output's gradient and the forward values it needs
        case general
        /// no backward pass (optimizer updates)
        case none
    }

    /// The forward values an op's backward pass reads, as PyTorch's autograd saves them (Korthikanti et al. 2022,
    /// arXiv 2205.05198 §4.1, count a transformer layer's activation memory this way): a product keeps both
    /// operands (weights are not activations), a normalisation or GELU its input, ReLU, softmax and the exponentials
    /// their result; adds, scales, views and data movement nothing (their gradients need only the incoming one).
    public struct SavedValues: Sendable, Equatable {
        /// Operand indices kept.
        public var inputs: [Int]
        /// Whether the result is kept.
        public var output: Bool
        /// Whether a one-byte mask per result element is kept (dropout's).
        public var mask: Bool
        public init(inputs: [Int] = [], output: Bool = false, mask: Bool = false) {
            self.inputs = inputs; self.output = output; self.mask = mask
        }
        public static let nothing = SavedValues()
        public static let input = SavedValues(inputs: [0])
        public static let operands = SavedValues(inputs: [0, 1])
        public static let result = SavedValues(output: true)
    }

    public enum GEMMView: Sendable, Equatable {
        /// `batch` products of [m, k] · [k, n] from the operands
        case matrixProduct
        /// implicit GEMM: m = N·OH·OW, n = OC/groups, k = IC/groups·KH·KW, batch = groups
        case convolution
        /// each input position times the weight: m = N·H·W, n = OC/groups·KH·KW, k = IC/groups, batch = groups
        case transposedConvolution
    }

    public enum TensorParallelClass: Sendable, Equatable {
        /// with a weight: the weight split by output columns (or by rows after a split input, then all-reduced);
        /// without one, split with a split input
        case weightSplit
        /// with a table: vocabulary-parallel (each device holds a slice of the rows; partial outputs all-reduced);
        /// without one, needs whole features
        case vocabulary
        /// needs whole features (or is the loss): a split input is gathered first; `sequenceSplit`: divided along
        /// the sequence under sequence parallelism (Korthikanti et al. 2022's layer norms)
        case wholeFeatures(sequenceSplit: Bool)
        /// follows its input: split when the input is split (per-channel parameters with it)
        case followsInput
    }

    public enum MeshTrafficClass: Sendable, Equatable {
        /// a view: nothing moves
        case none
        /// each node works on its own part (elementwise, row-wise, pooling, slices, concatenation, updates)
        case local
        /// every output element comes from another node (a transpose of a 2D-distributed tensor, an embedding's
        /// rows from the table's shards): half the data crosses the bisection, both ways
        case allToAll
        /// every node needs the whole (small) input
        case multicast
        /// statistics or a loss combined across nodes: a reduction tree and a broadcast back
        case reduction
    }

    public enum FusionRole: Sendable, Equatable {
        /// a fused chain can start from its output (matrix ops)
        case root
        /// joins the chain of its producer (elementwise and data movement)
        case epilogue
        /// its own kernel (reductions, normalisations, losses, transcendental ops left unfused)
        case alone
    }
}

extension OpKind {
    /// Every rule about this kind (see `OpDefinition`). ASSUMPTIONS in the FLOP counts: those of a straightforward
    /// implementation (GELU's tanh form ≈ 14; AdamW: two moments, bias correction, sqrt, divide, decay, step ≈ 14).
    public var definition: OpDefinition {
        typealias D = OpDefinition
        switch self {
        case .matmul:
            return D(operands: 2...2, shape: .matrixProduct, flops: .matrixProduct, gradient: .matrix, saved: .operands, gemm: .matrixProduct,
                     tensorParallel: .weightSplit, meshTraffic: .local, fusion: .root)
        case .conv2d:
            return D(operands: 2...3, shape: .convolution, flops: .convolution, gradient: .matrix, saved: .input, gemm: .convolution,
                     tensorParallel: .weightSplit, meshTraffic: .local, fusion: .root)
        case .convTranspose2d:
            return D(operands: 2...3, shape: .transposedConvolution, flops: .transposedConvolution, gradient: .matrix, saved: .input,
                     gemm: .transposedConvolution, tensorParallel: .weightSplit, meshTraffic: .local, fusion: .root)
        case .maxPool2d, .avgPool2d:
            return D(operands: 1...1, shape: .window, flops: .window, gradient: .general, saved: self == .maxPool2d ? .input : .nothing, tensorParallel: .followsInput,
                     meshTraffic: .local, fusion: .alone)
        case .globalAvgPool:
            return D(operands: 1...1, shape: .globalPool, flops: .perInput(1), gradient: .general, saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .reduction, fusion: .alone)
        case .batchNorm:
            return D(operands: 3...3, shape: .channelNormalization, flops: .perInput(8), gradient: .general, saved: .input,
                     tensorParallel: .followsInput, meshTraffic: .reduction, fusion: .alone)
        case .layerNorm:
            return D(operands: 2...3, shape: .featureNormalization, flops: .perInput(8), gradient: .general, saved: .input,
                     tensorParallel: .wholeFeatures(sequenceSplit: true), meshTraffic: .local, fusion: .alone)
        case .add, .sub:
            // one operand: with a constant (`attributes.scalar`)
            return D(operands: 1...2, shape: .broadcastBinary, flops: .perOutput(1), gradient: .passThrough(rightNegated: self == .sub), saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .epilogue)
        case .mul, .div:
            return D(operands: 1...2, shape: .broadcastBinary, flops: .perOutput(1), gradient: .general, saved: .operands,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .epilogue)
        case .scale, .neg:
            return D(operands: 1...1, shape: .sameAsInput, flops: .perOutput(1), gradient: .linear, saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .epilogue)
        case .relu:
            return D(operands: 1...1, shape: .sameAsInput, flops: .perOutput(1), gradient: .general, saved: .result,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .epilogue)
        case .dropout:
            return D(operands: 1...1, shape: .sameAsInput, flops: .perOutput(2), gradient: .general, saved: D.SavedValues(mask: true),
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .epilogue)
        case .sigmoid, .tanh, .quantize:
            return D(operands: 1...1, shape: .sameAsInput, flops: .perOutput(4), gradient: .general, saved: self == .quantize ? .nothing : .result,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .epilogue)
        case .gelu:
            return D(operands: 1...1, shape: .sameAsInput, flops: .perOutput(14), gradient: .general, saved: .input,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .epilogue)
        case .exp, .log, .sqrt:
            return D(operands: 1...1, shape: .sameAsInput, flops: .perOutput(4), gradient: .general, saved: self == .log ? .input : .result,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .alone)
        case .sum, .mean:
            return D(operands: 1...1, shape: .reduction, flops: .perInput(1), gradient: .general, saved: .nothing,
                     tensorParallel: .wholeFeatures(sequenceSplit: false), meshTraffic: .reduction, fusion: .alone)
        case .softmax, .logSoftmax:
            return D(operands: 1...1, shape: .sameAsInput, flops: .perInput(5), gradient: .general, saved: .result,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .alone)
        case .reshape:
            return D(operands: 1...1, shape: .reshape, flops: .none, bytes: .view, gradient: .view, saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .none, fusion: .epilogue)
        case .transpose:
            return D(operands: 1...1, shape: .permutation, flops: .none, gradient: .movement, saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .allToAll, fusion: .epilogue)
        case .concat:
            return D(operands: 1...Int.max, shape: .concatenation, flops: .none, gradient: .movement, saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .alone)
        case .slice:
            return D(operands: 1...1, shape: .slice, flops: .none, gradient: .fill, saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .epilogue)
        case .embedding:
            return D(operands: 1...2, shape: .lookup, flops: .none, bytes: .gathered, gradient: .scatter, saved: D.SavedValues(inputs: [1]),
                     tensorParallel: .vocabulary, meshTraffic: .allToAll, fusion: .alone)
        case .broadcast:
            return D(operands: 1...1, shape: .broadcastTo, flops: .none, gradient: .movement, saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .multicast, fusion: .epilogue)
        case .crossEntropy:
            return D(operands: 1...1, shape: .classLoss, flops: .perInput(6), gradient: .general, saved: .input,
                     tensorParallel: .followsInput, meshTraffic: .reduction, fusion: .alone)
        case .bceWithLogits:
            return D(operands: 2...2, shape: .pairLoss, flops: .perInput(6), gradient: .general, saved: .input,
                     tensorParallel: .wholeFeatures(sequenceSplit: false), meshTraffic: .reduction, fusion: .alone)
        case .mse:
            return D(operands: 2...2, shape: .pairLoss, flops: .perInput(3), gradient: .general, saved: .input,
                     tensorParallel: .wholeFeatures(sequenceSplit: false), meshTraffic: .reduction, fusion: .alone)
        case .sgdUpdate:
            // weight decay, momentum, (Nesterov), step
            return D(operands: 1...1, shape: .sameAsInput, flops: .perInput(4), gradient: .none, saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .alone)
        case .adamwUpdate:
            return D(operands: 1...1, shape: .sameAsInput, flops: .perInput(14), gradient: .none, saved: .nothing,
                     tensorParallel: .followsInput, meshTraffic: .local, fusion: .alone)
        }
    }
}
