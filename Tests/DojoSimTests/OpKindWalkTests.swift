import DojoCompiler
import DojoGraph
import DojoMachine
import DojoSim
import DojoTensor
import Foundation
import Testing

/// Issue 13 §1: every op kind walked through its shape rule, the engine, its FLOP rules, the compiler's view of it
/// (GEMM view, sharding, fusion, the mesh mapping) and each cost model (D1, GPU, CPU). The switch below names every
/// kind, so a new kind does not compile until it has a case here too.
@Suite("every op kind: shape rule, engine, FLOPs, compiler and cost models")
struct OpKindWalkTests {
    /// An engine op of `kind` on small random operands, recorded on a tape (nil: the engine has no op of this kind;
    /// the IR keeps it for importers, and it is walked from its rule alone). The tape checks each recorded op
    /// against its kind's shape rule as it records it.
    static func record(_ kind: OpKind) -> Tape? {
        var g = RandomSource(seed: 7)
        func t(_ s: [Int]) -> Tensor { Tensor.randomNormal(s, generator: &g).requiringGrad() }
        func positive(_ s: [Int]) -> Tensor {
            let x = Tensor.randomNormal(s, generator: &g)
            for i in 0..<x.count { x.pointer[i] = abs(x.pointer[i]) + 0.5 }
            return x.requiringGrad()
        }
        let tape = Tape()
        switch kind {
        case .matmul: _ = tape.record { t([2, 3, 4]).matmul(t([5, 4]), transposeB: true) }
        case .conv2d: _ = tape.record { t([2, 3, 8, 8]).conv2d(weight: t([4, 3, 3, 3]), bias: t([4]), stride: (2, 2), padding: (1, 1)) }
        case .convTranspose2d:
            _ = tape.record { t([2, 4, 5, 5]).convTranspose2d(weight: t([4, 3, 3, 3]), bias: t([6]), stride: (2, 2), padding: (1, 1),
                                                              outputPadding: (1, 0), groups: 2) }
        case .maxPool2d: _ = tape.record { t([2, 3, 8, 8]).maxPool2d(kernel: (2, 2)) }
        case .avgPool2d: _ = tape.record { t([2, 3, 8, 8]).avgPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
        case .globalAvgPool: _ = tape.record { t([2, 3, 5, 5]).globalAvgPool() }
        case .batchNorm:
            _ = tape.record { t([4, 3, 5, 5]).batchNorm(gamma: t([3]), beta: t([3]), runningMean: Tensor(zeros: [3]),
                                                        runningVariance: Tensor(repeating: 1, shape: [3]), training: true) }
        case .layerNorm: _ = tape.record { t([2, 3, 6]).layerNorm(gamma: t([6]), beta: t([6])) }
        case .add:
            _ = tape.record { t([2, 3]).adding(t([3])) }
            _ = tape.record { t([2, 3]).shifted(by: 2) }   // with a constant: one operand
        case .sub: _ = tape.record { t([2, 1]).subtracting(t([2, 3])) }
        case .mul: _ = tape.record { t([2, 3]).multiplying(t([2, 3])) }
        case .div: _ = tape.record { t([2, 3]).dividing(positive([1, 3])) }
        case .scale: _ = tape.record { t([2, 3]).scaled(by: 0.5) }
        case .relu: _ = tape.record { t([2, 3]).relu() }
        case .gelu: _ = tape.record { t([2, 3]).gelu() }
        case .sigmoid: _ = tape.record { t([2, 3]).sigmoid() }
        case .tanh: _ = tape.record { t([2, 3]).tanh() }
        case .exp: _ = tape.record { t([2, 3]).exp() }
        case .log: _ = tape.record { positive([2, 3]).log() }
        case .sqrt: _ = tape.record { positive([2, 3]).sqrt() }
        case .neg: _ = tape.record { t([2, 3]).negated() }
        case .dropout:
            var r = RandomSource(seed: 1)
            _ = tape.record { t([4, 8]).dropout(probability: 0.25, generator: &r) }
        case .quantize:
            _ = tape.record { t([2, 3]).rounded(to: .bf16) { src, dst in
                for i in 0..<dst.count { dst[i] = Float(bitPattern: (src.map { $0[i] } ?? dst[i]).bitPattern & 0xFFFF_0000) }
                return nil
            } }
        case .sum: _ = tape.record { t([2, 3, 4]).sum(axes: [1], keepDims: true) }
        case .mean: return nil   // the engine's mean is a sum and a scale (both walked); the kind is the IR's
        case .softmax: _ = tape.record { t([2, 5]).softmax() }
        case .logSoftmax: _ = tape.record { t([2, 5]).logSoftmax() }
        case .reshape: _ = tape.record { t([2, 3, 4]).reshaped([6, -1]) }
        case .transpose: _ = tape.record { t([2, 3, 4]).permuted([2, 0, 1]) }
        case .concat: _ = tape.record { Tensor.concatenate([t([2, 3]), t([2, 5])], axis: 1) }
        case .slice: _ = tape.record { t([2, 6, 3]).slice(axis: 1, 1..<4) }
        case .embedding:
            let ids = Tensor([0, 3, 1, 3, 2, 0], shape: [2, 3])
            _ = tape.record { Tensor.embedding(t([4, 5]), ids: ids) }
            _ = tape.record { Tensor.embedding(t([4, 5]), indices: [2, 0, 3]) }
        case .broadcast: return nil   // importers' kind; the engine broadcasts inside its binary ops
        case .crossEntropy: _ = tape.record { t([4, 3]).crossEntropy(labels: [0, 2, 1, 2]) }
        case .bceWithLogits: _ = tape.record { t([2, 3]).binaryCrossEntropyWithLogits(targets: Tensor(repeating: 1, shape: [2, 3])) }
        case .mse: _ = tape.record { t([2, 3]).meanSquaredError(targets: Tensor(zeros: [2, 3])) }
        case .sgdUpdate, .adamwUpdate:
            let w = t([3, 4])
            let loss = tape.record { Tensor([1, 2], shape: [1, 2]).matmul(Tensor(repeating: 1, shape: [2, 3])).matmul(w).sum() }
            _ = tape.backward(from: loss)
            tape.noteUpdate(kind, parameter: w, stateTensors: kind == .adamwUpdate ? 2 : 1)
        }
        return tape
    }

    /// A CPU host as `dojo machine calibrate` would describe one (figures of the right size; the walk checks that
    /// every kind is priced, not what it costs).
    static let cpu = CPUCostModel(cpu: CPUSpec(model: "walk", cores: 2, ranksPerHost: 1, memoryBytes: 8e9, threadEfficiency: 0.7,
                                               streamBandwidth: 2e10, opOverhead: 2e-6))

    @Test(arguments: OpKind.allCases) func walk(_ kind: OpKind) throws {
        let d1 = try #require(D1CostModel(machine: try Presets.load("tile")))
        let h100 = try #require(GPUCostModel(machine: try Presets.load("dgx-h100")))
        guard let tape = Self.record(kind) else {
            // no engine op: the rule alone (a broadcast of [3] to [2, 3]; a mean over axis 1)
            let out = try kind.outputShape(inputs: [[3]], attributes: OpAttributes(axes: [0], shape: [2, 3]))
            #expect(out == (kind == .broadcast ? [2, 3] : []))
            return
        }
        let graph = tape.graph(model: "walk-\(kind.rawValue)", batch: 2)
        let ops = graph.ops.filter { $0.kind == kind }
        #expect(!ops.isEmpty, "no \(kind.rawValue) op recorded")
        let shapes = Dictionary(graph.tensors.map { ($0.id, $0.shape) }, uniquingKeysWith: { a, _ in a })
        for op in ops {
            // the shape rule gives what the engine made (the tape checked it too)
            if op.phase == .forward {
                let inputs = op.inputs.compactMap { shapes[$0] }, outputs = op.outputs.compactMap { shapes[$0] }
                #expect(try kind.outputShape(inputs: inputs, attributes: op.attributes) == outputs.first, "\(kind.rawValue) \(inputs)")
                #expect(op.flops >= 0 && op.flops.isFinite)
                #expect((op.flops > 0) == (kind.elementwiseOrMatrixFlops), "\(kind.rawValue): \(op.flops) forward FLOPs")
            }
            // the compiler's view and every cost model
            let work = OpWork(op: op, graph: graph, precision: .bf16)
            #expect((work.gemm != nil) == (kind.isMatrixOp && op.phase != .optimizer), "\(kind.rawValue) \(op.phase): GEMM view \(String(describing: work.gemm))")
            let e = d1.estimate(work, precision: .bf16)
            let g = h100.cost(work, precision: .bf16)
            let c = Self.cpu.cost(work, precision: .bf16)
            for (name, s) in [("D1", e.cost.seconds), ("H100", g.seconds), ("CPU", c.seconds)] {
                #expect(s.isFinite && s >= 0, "\(kind.rawValue) \(op.phase) on \(name): \(s) s")
                if !work.isFree { #expect(s > 0, "\(kind.rawValue) \(op.phase) on \(name) is free") }
            }
        }
        // sharding, fusion and the plan's cost of the whole small graph take every kind
        _ = TensorSharding(graph: graph)
        _ = FusionPlan(graph: graph)
    }

    /// Operands that do not fit: one error naming the kind and the problem.
    @Test func rulesRefuseOperandsThatDoNotFit() {
        let cases: [(OpKind, [[Int]], OpAttributes, String)] = [
            (.matmul, [[2, 3], [4, 5]], OpAttributes(), "inner dimensions differ"),
            (.matmul, [[2, 3], [2, 3, 4]], OpAttributes(), "batch"),
            (.matmul, [[2, 3, 4, 5], [6, 5, 7]], OpAttributes(), "same batch dimensions"),   // equal products, other dimensions
            (.conv2d, [[1, 3, 4, 4], [8, 2, 3, 3]], OpAttributes(), "has 3 channels; weight [8, 2, 3, 3] with group 1 needs 2"),
            (.conv2d, [[1, 3, 2, 2], [8, 3, 3, 3]], OpAttributes(), "does not fit"),
            (.conv2d, [[1, 3, 8, 8], [8, 3, 3, 3], [4]], OpAttributes(), "bias [4] for 8 channels"),
            (.convTranspose2d, [[1, 3, 4, 4], [4, 2, 3, 3]], OpAttributes(), "has 3 channels; weight [4, 2, 3, 3] with group 1 needs 4"),
            (.convTranspose2d, [[1, 4, 4, 4], [4, 2, 3, 3]], OpAttributes(stride: [2, 2], shape: [1, 2, 9, 11]),
             "plus an output padding below the stride"),
            (.maxPool2d, [[1, 3, 8]], OpAttributes(kernel: [2, 2]), "NCHW"),
            (.add, [[2, 3], [4]], OpAttributes(), "do not broadcast"),
            (.reshape, [[2, 3]], OpAttributes(shape: [4, 2]), "cannot reshape"),
            (.transpose, [[2, 3]], OpAttributes(axes: [0, 0]), "permutation"),
            (.concat, [[2, 3], [3, 3]], OpAttributes(axes: [1]), "does not fit"),
            (.slice, [[2, 3]], OpAttributes(axes: [1], shape: [2, 4]), "cannot be"),
            (.batchNorm, [[2, 3, 4, 4], [4], [4]], OpAttributes(), "for 3 channels"),
            (.bceWithLogits, [[2, 3], [3, 2]], OpAttributes(), "differ"),
            (.relu, [[2], [2]], OpAttributes(), "takes 1 operand"),
            (.add, [[2]], OpAttributes(), "or 1 and a constant"),
            (.sum, [[2, 3]], OpAttributes(axes: [2]), "axes"),
        ]
        for (kind, inputs, attributes, words) in cases {
            do {
                let out = try kind.outputShape(inputs: inputs, attributes: attributes)
                Issue.record("\(kind.rawValue) \(inputs) gave \(out)")
            } catch {
                #expect(error.description.hasPrefix(kind.rawValue + ":") && error.description.contains(words), "\(error)")
            }
        }
    }
}

extension OpKind {
    /// Whether a forward op of this kind does arithmetic the IR counts (everything but data movement and the updates,
    /// which count theirs over the parameter).
    var elementwiseOrMatrixFlops: Bool {
        switch self {
        case .reshape, .transpose, .concat, .slice, .embedding, .broadcast: return false
        case .matmul, .conv2d, .convTranspose2d, .maxPool2d, .avgPool2d, .globalAvgPool, .batchNorm, .layerNorm, .add, .sub, .mul,
             .div, .scale, .relu, .gelu, .sigmoid, .tanh, .exp, .log, .sqrt, .neg, .dropout, .quantize, .sum, .mean, .softmax, .logSoftmax,
             .crossEntropy, .bceWithLogits, .mse, .sgdUpdate, .adamwUpdate:
            return true
        }
    }
}

/// Issue 11: a training batch norm on a GPU reads its input twice (statistics, then normalise; backward: reductions,
/// then the input's gradient), as PyTorch's CUDA kernels and cuDNN's non-persistent batch norm do; `batch_norm_passes=1`
/// keeps the input on chip between the two (MXNet's NHWC FP16 kernel). The CPU engine and Dojo read it once.
@Suite("batch norm passes")
struct BatchNormPassesTests {
    @Test func twoPassesOnGPUs() throws {
        // shapes only: a ResNet's first stage at batch 32, large enough that the passes are bandwidth-bound
        let tape = Tape()
        Engine.$shapeOnly.withValue(true) {
            let loss = tape.record {
                Tensor(zeros: [32, 64, 112, 112]).requiringGrad()
                    .batchNorm(gamma: Tensor(repeating: 1, shape: [64]).requiringGrad(), beta: Tensor(zeros: [64]).requiringGrad(),
                               runningMean: Tensor(zeros: [64]), runningVariance: Tensor(repeating: 1, shape: [64]), training: true)
                    .sum()
            }
            _ = tape.backward(from: loss)
        }
        let g = tape.graph(model: "bn", batch: 32)
        let m = try Machine.resolve("dgx-a100")
        guard case .gpu(let c) = m.system else { Issue.record("not a GPU machine"); return }
        let w = Workload(graph: g, globalBatch: 32, precision: .fp16)
        let plan = ResolvedPlan(dataParallel: 1, tensorParallel: 1, pipelineParallel: 1, microBatch: 32, microBatches: 1)
        // (the compute part: this one-op step is bound by its input's transfer)
        func step(_ passes: String?) throws -> Double {
            var o = SimOptions()
            if let passes { try o.set("batch_norm_passes", passes) }
            return try #require(try StepSimulator(workload: w, machine: m, costModel: m.opCostModel(), options: o).evaluate(plan)).breakdown.compute
        }
        let byMachine = try step(nil), two = try step("2"), one = try step("1")
        #expect(byMachine == two)
        // the second pass: forward reads x again, backward reads x and the output's gradient again (FP16 values)
        let values = 32.0 * 64 * 112 * 112
        let rate = c.gpu.hbmBandwidth * m.calibration.memoryEfficiency
        #expect(abs((two - one) / (3 * values * 2 / rate) - 1) < 0.02, "\(two - one)")
        // Dojo reads it once unless told
        let d1 = try Machine.resolve("d1")
        let dw = Workload(graph: g, globalBatch: 32, precision: .bf16)
        func d1Step(_ passes: String?) throws -> Double {
            var o = SimOptions()
            if let passes { try o.set("batch_norm_passes", passes) }
            return try #require(try StepSimulator(workload: dw, machine: d1, costModel: d1.opCostModel(), options: o).evaluate(plan)).breakdown.compute
        }
        #expect(try d1Step(nil) == d1Step("1"))
        #expect(try d1Step("2") >= d1Step("1"))   // (a D1 node's SRAM streams it faster than the arithmetic)
        var bad = SimOptions()
        #expect(throws: SimError.self) { try bad.set("batch_norm_passes", "3") }
    }
}
