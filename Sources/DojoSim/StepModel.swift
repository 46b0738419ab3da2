import DojoCompiler
import DojoGraph
import DojoMachine
import Foundation

/// Assumptions of the step model that are not properties of a machine. Each is a parameter (`dojo sim --assume`).
public struct SimOptions: Sendable, Equatable, Codable {
    /// Share of a device's memory a plan may fill; the rest is workspace, fragmentation and the runtime.
    /// ASSUMPTION: 0.9.
    public var memoryHeadroom: Double = 0.9
    /// Share of the data-parallel gradient reduction hidden behind the last micro-batch's backward pass (bucketed
    /// all-reduce as PyTorch DDP and Megatron do). ASSUMPTION: 0.8.
    public var gradientOverlap: Double = 0.8
    /// Seconds every step spends outside the model (framework, host synchronisation). ASSUMPTION: 0.
    public var stepOverhead: Double = 0
    /// Whether chains of elementwise ops after a matrix op run as one kernel (`FusionPlan`): 1 (the default, as
    /// compilers and fused-kernel libraries do) or 0 to price every op as its own kernel.
    public var fusion: Bool = true
    /// Whether attention runs as one fused kernel (FlashAttention, Dao et al. 2022, in every current framework;
    /// on Dojo the scores stay in SRAM): the score matrices (batch × heads × seq²) never go to memory nor are kept
    /// for the backward pass. 0 prices the scores' traffic and memory op by op.
    public var fusedAttention: Bool = true
    /// How fast a fused attention kernel does its products relative to a plain GEMM of the same arithmetic.
    /// ASSUMPTION: 0.6 (FlashAttention-2 reaches 50–73 % of A100 peak forward and less backward, Dao 2023, against
    /// ~70-80 % for large GEMMs; its softmax and masking sit between the products).
    public var attentionEfficiency: Double = 0.6
    /// Which fused attention kernel's published throughput prices attention on a GPU (`AttentionKernel`): fa2 (the
    /// default: FlashAttention-2, the open-source kernel PyTorch's SDPA also runs), cudnn (cuDNN's fused attention,
    /// Transformer Engine's on Hopper), triton (the 2022 Triton FlashAttention), or efficiency (no table:
    /// `attention_efficiency`). GPUs without published figures for the kernel (V100, a machine file's own), and
    /// TF32/FP32 steps (the tables are 16-bit), use `attention_efficiency`.
    public var attentionKernel: AttentionKernel = .fa2
    /// Data-loader worker processes per GPU that decode and augment input on the host CPU (PyTorch's native
    /// ImageNet loader: JPEG decode, random-resized crop, flip). 0 (the default): input reaches the GPU ready or is
    /// decoded on it (DALI), and only its PCIe transfer is priced. With N > 0 each GPU's loader prepares
    /// min(N, the host's hardware threads ÷ the node's GPUs in use) × `calibration.host_decode_rate` samples/s,
    /// prefetched behind the step: a step takes at least its samples' loading time.
    public var loaderWorkers: Int = 0
    /// CPU seconds one host thread takes to prepare one sample for a step (the data loader's decoding, rendering,
    /// augmenting and copying into the batch). 0 (the default): not priced. On a CPU machine (`dojo machine calibrate`)
    /// the loader runs on the cores its rank computes on, prefetched: every step does its samples' preparation too, so
    /// it takes that work ÷ the rank's threads longer (each rank prepares its own share of the batch; the ranks of a
    /// pipeline replica each prepare the replica's). It depends on the data, not the machine: `dojo validate --local`
    /// measures it for each plan's data. GPU machines price the host loader with `loader_workers` instead.
    public var hostInputSeconds: Double = 0
    /// Whether convolutions keep their activations channels-last (NHWC), the layout tensor-core kernels compute in.
    /// nil (the default): by precision, as NVIDIA's training recipes set it — channels-last with 16- and 8-bit mixed
    /// precision, channels-first (NCHW) in FP32 and TF32 (DeepLearningExamples' ResNet-50 configurations turn NHWC
    /// on only with AMP). Channels-first convolutions on tensor cores (TF32, or FP16/BF16 set channels-first) pay a
    /// layout transpose of their input and output around every pass (cuDNN's tensor-core kernels take NHWC); on CUDA
    /// cores (FP32) nothing.
    /// ASSUMPTION, settable: `channels_last=1` or `0` (which makes FP16/BF16 convolutions pay the transposes too).
    public var channelsLast: Bool? = nil
    /// Bytes per parameter read and written every micro-batch outside the model's own ops: gradients accumulated
    /// into a separate buffer, clipped or checked for overflow at each micro-batch rather than once a step.
    /// 0 (the default): the backward GEMMs accumulate into the gradient buffer (β = 1; Megatron's
    /// gradient_accumulation_fusion, PyTorch's in-place `.grad` accumulation) and clipping and loss-scale checks
    /// run once per step with the optimizer. Set from a source's code where it does otherwise.
    public var microBatchGradientBytes: Double = 0
    /// Kernels per parameter tensor launched every micro-batch for that work (each pays the device's launch
    /// overhead). 0 (the default), as above.
    public var microBatchGradientKernels: Double = 0
    /// Bytes per element of the attention score matrices in the elementwise passes between attention's two
    /// products (scale, mask, softmax, dropout and their gradients) when attention is not fused. 0 (the default):
    /// the precision's own. TensorFlow's automatic mixed precision (the graph rewrite) keeps Softmax in FP32 (it is
    /// on the rewrite's deny list), so those passes move 4-byte scores there; set from a source's code.
    public var scoreBytes: Double = 0
    /// Whether unfused attention runs as eager code writes it: the scale and the padding mask as kernels of their own,
    /// each reading and writing the score matrices (`scores / sqrt(d)` then `+ attention_mask`, the mask's gradient
    /// being the identity), instead of the scale fused into the scores' product and no mask pass. false (the default):
    /// as compilers (XLA) and fused-kernel libraries run it. Set from a source's code where it does otherwise; applies
    /// only with `fused_attention=0`.
    public var eagerAttention: Bool = false
    /// Sequences each sample packs, attending only within themselves (packed samples, as MLPerf BERT's: Krell et al.
    /// 2021 pack without cross-contamination, and the packed attention kernels compute only each sequence's block of
    /// the scores). The score products, the passes between them and the scores kept cost 1/N of a whole sample's: N
    /// sequences of equal length (ASSUMPTION when N > 1; unequal lengths cost more). 1 (the default): one sequence a
    /// sample.
    public var attentionSegments: Double = 1
    /// Fused attention under a causal mask (a decoder's, recorded on its softmax: `OpAttributes.causal`) skips the
    /// blocks of the score matrix above the diagonal (FlashAttention-2, Dao 2023, §3.1.1: "skip the computation of
    /// blocks where all column indices are more than row indices", 1.7–1.8× faster than without): of q queries by q
    /// keys it computes the lower triangle in blocks of this many queries, (q + block) / 2q of the scores (128 is
    /// FlashAttention-2's block of queries on A100/H100). 0 (the default): every score priced. Applies only where no
    /// published kernel table prices attention (`attention_kernel=efficiency`, or a GPU without figures): the tables'
    /// causal figures are measured with the skipping.
    public var causalBlock: Double = 0
    /// FP8 steps: whether the layers' FP8 GEMMs pay Transformer Engine's cast and transpose kernels of their own
    /// (the transpose of the input's FP8 copy for the weight gradient, 1 byte a value read and 1 written, priced
    /// with the forward GEMM; the output gradient cast to FP8 and transposed, 2 read and 2 written, with the
    /// backward one). true (the default, `fp8_cast_kernels=1`): as TE's LayerNormLinear and LayerNormMLP run (the
    /// input's cast itself inside the layer norm or activation kernel that produces it). 0: casts fused into the
    /// GEMMs' own loads.
    public var fp8CastKernels: Bool = true
    /// Kernels each parameter tensor's optimizer update launches every step, each paying the device's launch
    /// overhead: an eager per-parameter optimizer written op by op in Python (BERT's `BertAdam`: a clip, the two
    /// moments, the update, the weight decay and the step, about 19 kernels a tensor). 0 (the default): one fused
    /// update per tensor (multi-tensor Adam, Megatron's and apex's FusedAdam, XLA).
    public var optimizerKernels: Double = 0
    /// Bytes per parameter that update moves when it runs op by op (each kernel reads and writes whole tensors;
    /// `BertAdam` about 128). 0 (the default): the fused update's own bytes (master weight, gradient and both moments
    /// read, three of them written).
    public var optimizerBytes: Double = 0
    /// Passes a training batch norm makes over its input: 2 reads it once for the statistics and once to normalise
    /// (backward: once for the reductions, once for the input's gradient), as PyTorch's CUDA kernels do
    /// (aten/src/ATen/native/cuda/Normalization.cuh: batch_norm_collect_statistics then batch_norm_transform_input;
    /// batch_norm_backward_reduce then batch_norm_backward_elemt), cuDNN's non-persistent spatial batch norm (what
    /// TensorFlow's FusedBatchNorm calls by default) and XLA's reduce-then-normalise fusions; 1 keeps a tile of the
    /// input on chip between the two (MXNet's NHWC FP16 kernel, NhwcBatchNormAddRelu: DRAM traffic "footprint ×
    /// (2 + add)"). nil (the default): by machine, 2 on GPUs, 1 on the CPU engine and on Dojo (ASSUMPTION there:
    /// its tile stays in cache or SRAM).
    public var batchNormPasses: Double? = nil
    /// Data-parallel ranks a sharded optimizer (ZeRO, a distributed optimizer) splits its state over: groups of this
    /// many consecutive replicas each hold one copy (InternEvo's `zero1=8`, "within 8 GPUs in a single node").
    /// 0 (the default): all of them. Applies to ZeRO-1/2; ZeRO-3 (`zero=3`) shards the weights over all replicas.
    public var zeroGroup: Int = 0
    /// How a sharded optimizer's updated parameters reach every rank of its group. false (the default): one
    /// all-gather, the second half of the reduction priced as an all-reduce behind the backward pass (Megatron's
    /// distributed optimizer, DeepSpeed ZeRO, PyTorch's ZeroRedundancyOptimizer). 1: one broadcast from each rank of
    /// the group in turn (InternEvo's `HybridZeroOptimizer.broadcast_params`), each a ring over the whole group
    /// (`Collectives.broadcastTime`), behind the next step's first forward pass (its `overlap_sync_param`).
    public var paramBroadcast: Bool = false

    public init() {}

    /// Ranks `plan`'s optimizer state (and its update) is split over: 1 without ZeRO, every data-parallel replica
    /// with ZeRO-3, `zero_group` of them (or all) with ZeRO-1/2.
    func optimizerShards(_ plan: ResolvedPlan) -> Int {
        let d = plan.dataParallel
        guard plan.shardOptimizer else { return 1 }
        return plan.shardParameters || zeroGroup == 0 ? d : min(zeroGroup, d)
    }

    public static let keys = ["memory_headroom", "gradient_overlap", "step_overhead", "fusion", "fused_attention", "attention_efficiency",
                              "attention_kernel", "loader_workers", "host_input_seconds", "channels_last", "micro_batch_gradient_bytes", "micro_batch_gradient_kernels",
                              "score_bytes", "eager_attention", "attention_segments", "causal_block", "fp8_cast_kernels",
                              "optimizer_kernels", "optimizer_bytes", "batch_norm_passes", "zero_group", "param_broadcast"]

    /// Sets an assumption by key (`memory_headroom=0.85`); unknown keys and values out of range are errors.
    /// The keys a user set (`--assume`), which machine-specific defaults leave alone.
    public private(set) var setKeys: Set<String> = []

    /// Every assumption with its value and where it comes from: "set" for a key in `setKeys` (a user's --assume, or
    /// what a validation row's source fixes), else the default's reason. `dojo validate --verbose` prints them.
    public var knobs: [(key: String, value: String, why: String)] {
        func num(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e9 ? String(Int(x)) : String(x) }
        let values: [String: String] = [
            "memory_headroom": num(memoryHeadroom), "gradient_overlap": num(gradientOverlap), "step_overhead": num(stepOverhead),
            "fusion": fusion ? "1" : "0", "fused_attention": fusedAttention ? "1" : "0",
            "attention_efficiency": num(attentionEfficiency), "attention_kernel": attentionKernel.rawValue,
            "loader_workers": String(loaderWorkers), "host_input_seconds": num(hostInputSeconds),
            "channels_last": channelsLast.map { $0 ? "1" : "0" } ?? "by precision",
            "micro_batch_gradient_bytes": num(microBatchGradientBytes), "micro_batch_gradient_kernels": num(microBatchGradientKernels),
            "score_bytes": scoreBytes == 0 ? "by precision" : num(scoreBytes),
            "eager_attention": eagerAttention ? "1" : "0",
            "attention_segments": num(attentionSegments),
            "causal_block": num(causalBlock),
            "fp8_cast_kernels": fp8CastKernels ? "1" : "0",
            "optimizer_kernels": num(optimizerKernels), "optimizer_bytes": num(optimizerBytes),
            "batch_norm_passes": batchNormPasses.map(num) ?? "by machine",
            "zero_group": zeroGroup == 0 ? "all" : String(zeroGroup), "param_broadcast": paramBroadcast ? "1" : "0",
        ]
        let reasons: [String: String] = [
            "memory_headroom": "ASSUMPTION: the rest of a device's memory is workspace, fragmentation and the runtime",
            "gradient_overlap": "ASSUMPTION: bucketed all-reduce behind the backward pass, as PyTorch DDP and Megatron do",
            "step_overhead": "ASSUMPTION: no time outside the model",
            "fusion": "elementwise chains after a matrix op as one kernel, as compilers and fused-kernel libraries do",
            "fused_attention": "FlashAttention (Dao et al. 2022) in every current framework",
            "attention_efficiency": "ASSUMPTION from FlashAttention-2's 50-73 % of A100 peak forward (Dao 2023) against 70-80 % for large GEMMs; used where attention_kernel has no published figures",
            "attention_kernel": attentionKernel.source,
            "loader_workers": "input reaches the GPU decoded (DALI) unless the source says otherwise",
            "host_input_seconds": "CPU hosts: the data's preparation not priced unless measured (dojo validate --local measures it)",
            "channels_last": "channels-last in 16/8-bit, channels-first in FP32/TF32, as NVIDIA's ResNet-50 recipes set it",
            "micro_batch_gradient_bytes": "gradients accumulate inside the backward pass; clipping and overflow checks once a step",
            "micro_batch_gradient_kernels": "no per-parameter kernels between micro-batches",
            "score_bytes": "unfused attention's score passes in the precision's own format",
            "eager_attention": "unfused attention's scale in its product's kernel, no mask pass (as XLA and fused-kernel libraries)",
            "attention_segments": "one sequence a sample: attention over all of its tokens",
            "causal_block": "where attention_kernel has no figures, every score of a causal mask priced (128: skip the blocks above the diagonal as FlashAttention-2 does); the tables' causal figures include it",
            "fp8_cast_kernels": "FP8 steps: Transformer Engine's transpose of each GEMM input's FP8 copy and cast-transpose of each output gradient, kernels of their own (TransformerEngine v1.8, pytorch/module/layernorm_linear.py line 584 tex.fp8_transpose, module/base.py lines 705-717 fp8_cast_transpose_bgrad_fused / fp8_cast_transpose_fused); from compute capability 10.0 (B200) no transposes, the output gradient's cast only (TransformerEngine create_transpose = columnwise_usage && !non_tn_fp8_gemm_supported())",
            "optimizer_kernels": "one fused optimizer update per parameter tensor (multi-tensor Adam, FusedAdam, XLA)",
            "optimizer_bytes": "the fused update's bytes: master weight, gradient and moments read, weight and moments written",
            "batch_norm_passes": "GPUs 2: statistics, then normalise (PyTorch's Normalization.cuh kernels, cuDNN's non-persistent batch norm, XLA); CPU engine and Dojo 1 (ASSUMPTION: the tile stays in cache or SRAM)",
            "zero_group": "a sharded optimizer splits its state over all data-parallel ranks",
            "param_broadcast": "a sharded optimizer's parameters return by an all-gather, priced with the reduction behind the backward pass",
        ]
        return SimOptions.keys.map { k in (k, values[k] ?? "?", setKeys.contains(k) ? "set for this case" : reasons[k] ?? "") }
    }

    public mutating func set(_ key: String, _ value: String) throws {
        if key == "attention_kernel" {
            guard let k = AttentionKernel(rawValue: value.lowercased()) else {
                throw SimError.badOption("attention_kernel=\(value): must be \(AttentionKernel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            attentionKernel = k
            setKeys.insert(key)
            return
        }
        guard let v = Double(value), v.isFinite else { throw SimError.badOption("\(key)=\(value): not a number") }
        defer { setKeys.insert(key) }
        /// A switch: 0 or 1.
        func flag() throws -> Bool {
            guard v == 0 || v == 1 else { throw SimError.badOption("\(key)=\(value): must be 0 or 1") }
            return v == 1
        }
        switch key {
        case "memory_headroom":
            guard v > 0, v <= 1 else { throw SimError.badOption("memory_headroom=\(value): must be in (0, 1]") }
            memoryHeadroom = v
        case "gradient_overlap":
            guard v >= 0, v <= 1 else { throw SimError.badOption("gradient_overlap=\(value): must be in [0, 1]") }
            gradientOverlap = v
        case "step_overhead":
            guard v >= 0, v <= 86_400 else { throw SimError.badOption("step_overhead=\(value): must be 0…86400 seconds") }
            stepOverhead = v
        case "fusion":
            fusion = try flag()
        case "attention_efficiency":
            guard v > 0, v <= 1 else { throw SimError.badOption("attention_efficiency=\(value): must be in (0, 1]") }
            attentionEfficiency = v
        case "fused_attention":
            fusedAttention = try flag()
        case "loader_workers":
            guard v >= 0, v == v.rounded(), v <= 1e6 else { throw SimError.badOption("loader_workers=\(value): must be a whole number 0…1,000,000") }
            loaderWorkers = Int(v)
        case "host_input_seconds":
            guard v >= 0, v <= 3_600 else { throw SimError.badOption("host_input_seconds=\(value): must be 0…3600 seconds a sample") }
            hostInputSeconds = v
        case "channels_last":
            channelsLast = try flag()
        case "micro_batch_gradient_bytes":
            guard v >= 0, v <= 1_000 else { throw SimError.badOption("micro_batch_gradient_bytes=\(value): must be 0…1000 bytes per parameter") }
            microBatchGradientBytes = v
        case "micro_batch_gradient_kernels":
            guard v >= 0, v <= 1_000, v == v.rounded() else { throw SimError.badOption("micro_batch_gradient_kernels=\(value): must be a whole number 0…1000") }
            microBatchGradientKernels = v
        case "score_bytes":
            guard v == 0 || v == 1 || v == 2 || v == 4 else { throw SimError.badOption("score_bytes=\(value): must be 0 (the precision's), 1, 2 or 4") }
            scoreBytes = v
        case "attention_segments":
            guard v >= 1e-6, v <= 1_000_000 else { throw SimError.badOption("attention_segments=\(value): must be 1e-6…1,000,000 (sequences a sample; below 1, a context-parallel share: keys 1/v times the sample's tokens)") }
            attentionSegments = v
        case "eager_attention":
            eagerAttention = try flag()
        case "fp8_cast_kernels":
            fp8CastKernels = try flag()
        case "optimizer_kernels":
            guard v >= 0, v <= 1_000, v == v.rounded() else { throw SimError.badOption("optimizer_kernels=\(value): must be a whole number 0…1000") }
            optimizerKernels = v
        case "optimizer_bytes":
            guard v >= 0, v <= 10_000 else { throw SimError.badOption("optimizer_bytes=\(value): must be 0…10000 bytes per parameter") }
            optimizerBytes = v
        case "batch_norm_passes":
            guard v == 1 || v == 2 else { throw SimError.badOption("batch_norm_passes=\(value): must be 1 (the input kept on chip) or 2 (statistics, then normalise)") }
            batchNormPasses = v
        case "zero_group":
            guard v >= 0, v <= Double(Limits.devices), v == v.rounded() else { throw SimError.badOption("zero_group=\(value): must be a whole number of data-parallel ranks, 0 (all of them) to \(Limits.devices)") }
            zeroGroup = Int(v)
        case "param_broadcast":
            paramBroadcast = try flag()
        case "causal_block":
            guard v >= 0, v <= 1_000_000 else { throw SimError.badOption("causal_block=\(value): must be 0 (every score computed) or a block of queries up to 1,000,000") }
            causalBlock = v
        default:
            throw SimError.badOption("unknown assumption '\(key)' (keys: \(SimOptions.keys.joined(separator: ", ")))")
        }
    }
}

public enum SimError: Error, Sendable, Equatable, CustomStringConvertible {
    case badOption(String)
    case noPlan(String)
    case badWorkload(String)
    public var description: String {
        switch self {
        case .badOption(let m): return "assumption: \(m)"
        case .noPlan(let m): return m
        case .badWorkload(let m): return m
        }
    }
}

/// What to simulate: one training step of a recorded graph at a global batch and precision.
public struct Workload: Sendable {
    /// One training step recorded at `graph.batch` samples (any batch: the model scales it).
    public var graph: Graph
    public var globalBatch: Int
    public var precision: Precision
    /// Tokens in one sample, for sequence models (reports tokens/s).
    public var tokensPerSample: Int?

    public init(graph: Graph, globalBatch: Int, precision: Precision, tokensPerSample: Int? = nil) {
        self.graph = graph; self.globalBatch = globalBatch; self.precision = precision
        self.tokensPerSample = tokensPerSample
    }
}

/// A plan with every choice made.
public struct ResolvedPlan: Sendable, Equatable, Hashable, Codable {
    public var dataParallel: Int
    public var tensorParallel: Int
    public var pipelineParallel: Int
    public var microBatch: Int
    public var microBatches: Int
    public var virtualStages: Int
    public var recompute: PlanSpec.Recompute
    public var shardOptimizer: Bool
    public var sequenceParallel: Bool
    /// ZeRO-3 / FSDP: parameters sharded over the data-parallel replicas too (`PlanSpec.shardParameters`).
    public var shardParameters: Bool = false

    public var devices: Int { dataParallel * tensorParallel * pipelineParallel }

    public init(dataParallel: Int, tensorParallel: Int, pipelineParallel: Int, microBatch: Int, microBatches: Int,
                virtualStages: Int = 1, recompute: PlanSpec.Recompute = .none, shardOptimizer: Bool = false,
                sequenceParallel: Bool = false, shardParameters: Bool = false) {
        self.dataParallel = dataParallel; self.tensorParallel = tensorParallel; self.pipelineParallel = pipelineParallel
        self.microBatch = microBatch; self.microBatches = microBatches; self.virtualStages = virtualStages
        self.recompute = recompute; self.shardOptimizer = shardOptimizer || shardParameters
        self.sequenceParallel = sequenceParallel; self.shardParameters = shardParameters
    }

    /// The `--plan` form, which reproduces it.
    public var spec: PlanSpec {
        PlanSpec(dataParallel: dataParallel, tensorParallel: tensorParallel, pipelineParallel: pipelineParallel,
                 microBatch: microBatch, microBatches: microBatches, virtualStages: virtualStages, recompute: recompute,
                 shardOptimizer: shardOptimizer, sequenceParallel: sequenceParallel,
                 shardParameters: shardParameters ? true : nil)
    }

    /// Which family of plans it belongs to.
    public var family: String {
        switch (tensorParallel > 1, pipelineParallel > 1) {
        case (false, false): return "data parallel"
        case (true, false): return "tensor parallel"
        case (false, true): return "pipeline"
        case (true, true): return "tensor + pipeline"
        }
    }
}

/// Where a step's time goes, seconds, each part exposed (not hidden behind another).
public struct Breakdown: Sendable, Equatable, Codable {
    /// Ops of the slowest pipeline stage, all micro-batches (forward, backward, recomputation).
    public var compute: Double = 0
    /// Tensor-parallel collectives inside layers.
    public var tensorParallel: Double = 0
    /// Pipeline point-to-point sends and the fill/drain bubble.
    public var pipeline: Double = 0
    /// The data-parallel gradient reduction not hidden behind the backward pass.
    public var dataParallel: Double = 0
    /// The optimizer's update.
    public var optimizer: Double = 0
    /// Spilled state moved to and from bulk memory (Dojo's DIP HBM), not hidden behind compute.
    public var hbm: Double = 0
    /// Input from the host not hidden behind compute.
    public var input: Double = 0
    /// Per-step overhead (an assumption).
    public var overhead: Double = 0

    public var total: Double { compute + tensorParallel + pipeline + dataParallel + optimizer + hbm + input + overhead }
    /// Everything that is communication between devices.
    public var communication: Double { tensorParallel + pipeline + dataParallel }

    public var parts: [(String, Double)] {
        [("compute", compute), ("tensor-parallel comm", tensorParallel), ("pipeline (bubble + sends)", pipeline),
         ("data-parallel comm (exposed)", dataParallel), ("optimizer", optimizer), ("HBM spill (exposed)", hbm),
         ("input (exposed)", input), ("overhead", overhead)]
    }
}

/// Memory of the busiest device, bytes.
public struct MemoryUse: Sendable, Equatable, Codable {
    public var weights: Double
    public var gradients: Double
    public var optimizerState: Double
    public var activations: Double
    /// What the device can hold: fast memory (SRAM / GPU HBM) and bulk memory (Dojo DIP HBM share), times headroom.
    public var fastCapacity: Double
    public var bulkCapacity: Double
    /// Bytes that do not fit in fast memory and live in bulk memory.
    public var spilled: Double
    public var total: Double { weights + gradients + optimizerState + activations }
    public var capacity: Double { fastCapacity + bulkCapacity }
    public var fits: Bool { total <= capacity }
}

/// The result of simulating one plan.
public struct PlanEvaluation: Sendable, Equatable {
    public var plan: ResolvedPlan
    public var stepSeconds: Double
    public var breakdown: Breakdown
    public var memory: MemoryUse
    /// The pipeline stage whose time per micro-batch sets the pace (0 without a pipeline).
    public var slowestStage: Int = 0
    public var fits: Bool { memory.fits }
}

/// Simulates training steps of one workload on one machine: per-op costs from the machine's cost model, tensor
/// parallelism by `TensorSharding`, pipeline stages at layer boundaries, collectives on the machine's hierarchy,
/// memory per device, and Dojo's spill of state to DIP HBM. Plans are evaluated in microseconds: everything that
/// does not depend on the plan is computed once, per-op costs once per (tensor-parallel ways, micro-batch).
public final class StepSimulator: @unchecked Sendable {
    public let workload: Workload
    public let machine: Machine
    public let topology: DeviceTopology
    public let costModel: any OpCostModel
    public let collectives: Collectives
    public let options: SimOptions

    let graph: Graph
    let layers: LayerIndex
    let works: [OpWork]
    /// Chains of elementwise ops fused into one kernel each (priced as one pass over what enters and leaves).
    public let fusion: FusionPlan
    let nF: Int
    /// Passes a batch norm makes over its input (`SimOptions.batchNormPasses`, resolved by machine).
    let batchNormPasses: Double
    /// Per forward position: parameter elements first used there, and the bytes of the activations saved for the
    /// backward pass that it wrote (FP32, recorded batch; `OpDefinition.saved`).
    let paramElements: [Double]
    let activationBytes: [Double]
    /// Per forward position: elements of dropout masks kept for the backward pass (one byte each).
    let dropoutMaskElements: [Double]
    /// Per forward position: bytes of the op's results (FP32, recorded batch): what a pipeline stage sends on.
    let outputBytesRecorded: [Double]
    /// Per forward position: whether it is an attention-score op (dropped and recomputed by selective recompute).
    let attentionScore: [Bool]
    /// Keys of the graph's causal attention (its softmax under a causal mask: `OpAttributes.causal`), nil without one.
    let causalKeys: Int?
    /// Fused attention's rate from its kernel's published figures (`AttentionKernel`), FLOP/s as FlashAttention counts
    /// them (a causal mask's skipped half not counted), and the share of the recorded products' FLOPs that count: nil
    /// when no table applies (then `attention_efficiency`).
    let attentionRate: (flopsPerSecond: Double, counted: Double)?
    /// Per forward position: whether it reads or writes a score matrix (attention's two products and the ops between).
    let touchesScores: [Bool]
    /// Per forward position, under `recompute=op` (PyTorch's per-op selective checkpointing as torchtitan applies it to
    /// each transformer block, `selective_ac_option = 'op'`): whether the op runs again in the backward pass, whether its
    /// output is kept (a weight product counted odd in its layer, or the fused attention kernel's output), and whether
    /// its layer is checkpointed at all (each layer with attention; every layer of a graph without any).
    let opPolicyRecomputed: [Bool]
    let opPolicyKeepsOutput: [Bool]
    let opPolicyCheckpointed: [Bool]
    let adam: Bool
    let inputBytesPerSample: Double
    /// FLOPs of the step as recorded (forward + backward), per sample: the "model FLOPs" of MFU.
    public let modelFlopsPerSample: Double
    let flopsPerPosition: [Double]

    private var shardings: [Bool: TensorSharding] = [:]
    private var tables: [TableKey: CostTable] = [:]
    private var partitions: [Int: [Int]] = [:]
    private var memo: [OpWork: OpCost] = [:]
    private var memoHybrid: [OpWork: OpCost] = [:]

    public init(workload: Workload, machine: Machine, costModel: any OpCostModel, options: SimOptions = SimOptions()) throws {
        guard workload.globalBatch >= 1 else { throw SimError.badWorkload("batch must be at least 1, got \(workload.globalBatch)") }
        guard workload.graph.batch >= 1 else { throw SimError.badWorkload("the graph was recorded at batch \(workload.graph.batch)") }
        self.workload = workload
        self.machine = machine
        self.topology = DeviceTopology(machine: machine)
        self.costModel = costModel
        self.collectives = Collectives(topology: topology)
        var options = options
        if case .cpu(let c) = machine.system {
            // OpenDojo's engine runs op by op: nothing is fused; its trainer's own work per step was measured.
            options.fusion = false; options.fusedAttention = false
            options.stepOverhead += c.cpu.stepOverhead
            // Open MPI has no progress thread: a non-blocking sum advances only inside MPI calls, and its shared-memory
            // transport copies with the ranks' own cores, so backward hides little of it (ASSUMPTION; --assume
            // gradient_overlap=X still changes it).
            if !options.setKeys.contains("gradient_overlap") { options.gradientOverlap = 0 }
        }
        self.options = options
        batchNormPasses = options.batchNormPasses ?? (costModel is GPUCostModel ? 2 : 1)
        let g = workload.graph
        graph = g
        layers = LayerIndex(graph: g)
        works = g.ops.map { op in
            guard workload.precision == .fp8 else { return OpWork(op: op, graph: g, precision: workload.precision) }
            // FP8 training as NVIDIA Transformer Engine runs it: only the layers' GEMMs compute in FP8. The values
            // between kernels stay BF16 (layer norm, GELU, softmax, residual adds read and write 2 bytes); a layer's
            // GEMM reads FP8 casts of its input and weight (the casts fused into the kernels that produce them) and
            // writes its output in BF16.
            var w = OpWork(op: op, graph: g, precision: .bf16)
            if w.kind.isMatrixOp && w.weightBytes > 0 && op.phase != .optimizer { w.bytesRead /= 2; w.weightBytes /= 2 }
            return w
        }

        nF = layers.forwardOps.count
        let tensors = TensorLookup(g)
        var params = Array(repeating: 0.0, count: nF)
        var acts = Array(repeating: 0.0, count: nF), outs = acts
        var maskElements = Array(repeating: 0.0, count: nF)
        var score = Array(repeating: false, count: nF)
        var flops = Array(repeating: 0.0, count: nF)
        var seen = Set<Int>()
        var softmaxShapes = Set<[Int]>()
        var touches = Array(repeating: false, count: layers.forwardOps.count)
        for op in g.ops where op.kind == .softmax { if let o = op.outputs.first, let t = tensors[o] { softmaxShapes.insert(t.shape) } }
        for (i, id) in layers.forwardOps.enumerated() {
            let op = g.ops[id]
            for t in op.inputs where tensors[t]?.role == .parameter && !seen.contains(t) {
                seen.insert(t); params[i] += Double(elementCount(tensors[t]!.shape))
            }
            if op.kind.definition.bytes != .view { outs[i] = op.outputs.reduce(0) { $0 + Double(tensors[$1]?.bytes ?? 0) } }
            if let o = op.outputs.first, let shape = tensors[o]?.shape, softmaxShapes.contains(shape) { score[i] = true }
            if op.kind == .matmul, op.inputs.contains(where: { tensors[$0].map { softmaxShapes.contains($0.shape) } ?? false }) {
                touches[i] = true
            }
        }
        // Saved activations: the values the backward pass reads, each counted once and charged to the forward op that
        // wrote it (a reshape's result is its input). Korthikanti et al. 2022 (arXiv 2205.05198, sec. 4.1) count a
        // transformer layer this way: 34·s·b·h + 5·a·s²·b bytes in 16-bit, from what each op's gradient needs.
        var producer: [Int: Int] = [:], alias: [Int: Int] = [:], saved = Set<Int>()
        for (i, id) in layers.forwardOps.enumerated() {
            let op = g.ops[id]
            for o in op.outputs {
                if op.kind.definition.bytes == .view, let x = op.inputs.first { alias[o] = alias[x] ?? x } else { producer[o] = i }
            }
        }
        // With fusion, a value made inside a fused chain and read only there is not kept: the chain's backward kernel
        // recomputes it from what entered the chain, which is kept instead (as Megatron's fused bias-GELU and
        // bias-SwiGLU kernels keep their input only).
        let chains = options.fusion ? FusionPlan(graph: g) : FusionPlan.none(g)
        var readOutsideChain = Set<Int>()
        for id in layers.forwardOps {
            for t in g.ops[id].inputs {
                let r = alias[t] ?? t
                if let p = producer[r], chains.chainOf[layers.forwardOps[p]] != chains.chainOf[id] || chains.chainOf[id] < 0 {
                    readOutsideChain.insert(r)
                }
            }
        }
        var chainInputs = Array(repeating: [Int](), count: chains.chains.count)
        for (c, chain) in chains.chains.enumerated() {
            for id in chain.ops {
                for t in g.ops[id].inputs {
                    let r = alias[t] ?? t
                    if let p = producer[r], chains.chainOf[layers.forwardOps[p]] != c, !chainInputs[c].contains(r) { chainInputs[c].append(r) }
                }
            }
        }
        // a value some gradient needs: a parameter's, or one computed from the inputs (a constant table has neither)
        func differentiable(_ t: Int) -> Bool {
            let r = alias[t] ?? t
            return producer[r] != nil || tensors[r]?.role == .parameter
        }
        for (i, id) in layers.forwardOps.enumerated() {
            let op = g.ops[id]
            let keep = op.kind.definition.saved
            var inputs = keep.inputs.filter { $0 < op.inputs.count }
            if op.kind == .mul && op.inputs.count == 2 {
                // a product keeps one factor for the other's gradient: none for a constant's (RoPE's x·cos keeps cos only,
                // as autograd saves a factor only when the other one needs a gradient)
                inputs = inputs.filter { differentiable(op.inputs[1 - $0]) }
            }
            var ids = inputs.map { op.inputs[$0] }
            if keep.output { ids += op.outputs }
            for t in ids {
                let r = alias[t] ?? t
                guard let p = producer[r], tensors[r]?.role != .parameter else { continue }
                let c = chains.chainOf[layers.forwardOps[p]]
                if c >= 0 && !readOutsideChain.contains(r) {
                    // kept instead: what enters the chain, to recompute it from
                    for t in chainInputs[c] where saved.insert(t).inserted { acts[producer[t]!] += Double(tensors[t]?.bytes ?? 0) }
                    continue
                }
                guard saved.insert(r).inserted else { continue }
                acts[p] += Double(tensors[r]?.bytes ?? 0)
            }
            // dropout keeps its mask, one byte an element (PyTorch's bool mask; Korthikanti et al.'s count): a quarter
            // of the FP32 bytes recorded, before the precision's scale (applied to acts) is undone in `table`
            if op.kind.definition.saved.mask, let o = op.outputs.first { maskElements[i] += Double(tensors[o].map { elementCount($0.shape) } ?? 0) }
        }
        flops = layers.flopsPerPosition(g)
        paramElements = params
        activationBytes = acts
        dropoutMaskElements = maskElements
        outputBytesRecorded = outs
        attentionScore = score
        causalKeys = g.ops.first { $0.kind == .softmax && $0.attributes.causal == true }
            .flatMap { $0.outputs.first.flatMap { tensors[$0]?.shape.last } }
        // the attention's keys (the scores' last dimension) and head dimension (the scores' product's inner one)
        var rate: (Double, Double)?
        let forwardOps = layers.forwardOps, causal = causalKeys != nil
        if options.fusedAttention, workload.precision.bytes <= 2, case .gpu(let cluster) = machine.system,
           let i = score.indices.first(where: { score[$0] && g.ops[forwardOps[$0]].kind == .matmul }),
           let x = g.ops[forwardOps[i]].inputs.first.flatMap({ tensors[$0]?.shape.last }),
           let keys = g.ops[forwardOps[i]].outputs.first.flatMap({ tensors[$0]?.shape.last }) {
            // packed samples attend within each sequence (keys ÷ segments); a context-parallel share was recorded at
            // its own length already
            let sequence = Double(keys) / max(1, options.attentionSegments)
            if let r = AttentionKernel.stepRate(options.attentionKernel, gpu: cluster.gpu.model,
                                                matrixEfficiency: machine.calibration.matrixEfficiency, causal: causal,
                                                headDimension: x, sequence: sequence) {
                // the kernel's published rate at the part's own clocks, scaled as the other compute under a power limit
                rate = (r * cluster.gpu.clockScale, causal ? 0.5 : 1)
            }
        }
        attentionRate = rate
        let plan = chains
        // eager attention: the scale after the scores' product is a kernel of its own (and its gradient too)
        fusion = options.eagerAttention && !options.fusedAttention
            ? plan.unfusing(Set(zip(layers.forwardOps, score).filter(\.1).map(\.0)))
            : plan
        for i in touches.indices where score[i] { touches[i] = true }
        touchesScores = touches
        // torchtitan's per-op policy (torchtitan/parallelisms/parallelize_llama.py, _apply_ac_to_transformer_block):
        // in each block it saves the outputs of `aten.mm` except every second one (counted in the order they run) and
        // of the SDPA kernel, and recomputes every other op from the block's input. Counted here on the graph's own
        // products (ASSUMPTION: where the graph fuses products the source runs apart, as Q, K and V in one, the count
        // falls on other ones).
        var opRecomputed = Array(repeating: false, count: nF), opKeeps = opRecomputed, opLayer = opRecomputed
        let hasScores = score.contains(true)
        let bounds = layers.cuts + [nF]
        for l in 0..<layers.cuts.count {
            let range = bounds[l]..<bounds[l + 1]
            guard !hasScores || range.contains(where: { touches[$0] }) else { continue }
            var products = 0
            for i in range {
                opLayer[i] = true
                let w = works[forwardOps[i]]
                if w.isFree || w.kind.definition.bytes == .view { continue }
                if touches[i] && options.fusedAttention {
                    // inside the attention kernel: its output (the product with the probabilities) is kept
                    opKeeps[i] = w.kind.isMatrixOp && !score[i]
                    continue
                }
                if w.kind.isMatrixOp && w.weightBytes > 0 {
                    products += 1
                    if products % 2 == 1 { opKeeps[i] = true; continue }
                }
                opRecomputed[i] = true
            }
        }
        opPolicyRecomputed = opRecomputed
        opPolicyKeepsOutput = opKeeps
        opPolicyCheckpointed = opLayer
        flopsPerPosition = flops
        adam = g.ops.contains { $0.kind == .adamwUpdate }
        inputBytesPerSample = Double(g.tensors.filter { $0.role == .input }.reduce(0) { $0 + $1.bytes }) / Double(g.batch)
        modelFlopsPerSample = flops.reduce(0, +) / Double(g.batch)
    }

    // MARK: per-op cost tables

    struct TableKey: Hashable { var tp: Int; var microBatch: Int; var sp: Bool }

    /// Per forward position, for one (tensor-parallel ways, micro-batch): seconds and bytes, with prefix sums.
    struct CostTable {
        var forward: Prefix
        var backward: Prefix
        var optimizer: Prefix
        /// The fixed-latency part of the optimizer's ops (not divided when ZeRO shards the update).
        var optimizerLatency: Prefix
        /// Per-micro-batch work on the gradients outside the model's ops (`micro_batch_gradient_*`).
        var microBatchGradient: Prefix
        var tpComm: Prefix
        var score: Prefix
        /// Forward seconds of the ops `recompute=op` runs again, and the bytes it keeps (of checkpointed layers: the
        /// kept outputs; of the others: their activations).
        var opRecompute: Prefix
        var opKept: Prefix
        var activation: Prefix
        var scoreActivation: Prefix
        var params: Prefix
        var paramsSplit: Prefix
        /// Output bytes of each position per device (for pipeline sends and layer inputs).
        var outputBytes: [Double]
        /// Per-op seconds (op id) for reports.
        var opSeconds: [Double]
        var opCost: [OpCost]

        /// Seconds of forward work a backward pass over positions a..<b runs again under `recompute`, and of
        /// tensor-parallel communication with it: the one rule the step model and the timeline share.
        func recomputed(_ recompute: PlanSpec.Recompute, _ a: Int, _ b: Int) -> (compute: Double, comm: Double) {
            switch recompute {
            case .none: return (0, 0)
            case .selective: return (score.sum(a, b), 0)
            // torchtitan's save list keeps the reduce-scatters' outputs, not the all-gathers' (with sequence
            // parallelism, half a layer's tensor-parallel traffic): the all-gathers run again before the ops they feed
            case .op: return (opRecompute.sum(a, b), tpComm.sum(a, b) / 2)
            case .full: return (forward.sum(a, b), tpComm.sum(a, b))
            }
        }
    }

    struct Prefix {
        var sums: [Double]
        init(_ values: [Double]) {
            var s = [0.0]; s.reserveCapacity(values.count + 1)
            for v in values { s.append(s.last! + v) }
            sums = s
        }
        func sum(_ from: Int, _ to: Int) -> Double { sums[to] - sums[from] }
    }

    func sharding(sp: Bool) -> TensorSharding {
        if let s = shardings[sp] { return s }
        let s = TensorSharding(graph: graph, sequenceParallel: sp)
        shardings[sp] = s
        return s
    }

    func cost(_ w: OpWork) -> OpCost {
        if w.isFree { return .zero }
        // FP8 training is hybrid (NVIDIA Transformer Engine): the layers' GEMMs run in FP8, the products of two
        // activations (attention's scores and context) stay in BF16 (their works are in BF16 bytes already).
        if workload.precision == .fp8, w.kind.isMatrixOp, w.weightBytes == 0 {
            if let c = memoHybrid[w] { return c }
            let c = costModel.cost(w, precision: .bf16)
            memoHybrid[w] = c
            return c
        }
        if let c = memo[w] { return c }
        var c = costModel.cost(w, precision: workload.precision)
        let channelsFirstOnTensorCores = workload.precision == .tf32 ? !(options.channelsLast ?? false)
            : (workload.precision == .fp16 || workload.precision == .bf16) && options.channelsLast == false
        if w.kind == .conv2d || w.kind == .convTranspose2d, channelsFirstOnTensorCores, w.gemm != nil,
           let gpu = costModel as? GPUCostModel, workload.precision != .tf32 || gpu.gpu.tf32 > 0 {   // (V100: FP16 tensor cores, no TF32)
            // Channels-first activations on tensor cores (TF32 by default, FP16/BF16 when channels_last=0): the input
            // and output of each pass are transposed to channels-last and back, each a read and a write in a kernel of
            // its own.
            let moved = max(0, w.bytesRead - w.weightBytes) + w.bytesWritten
            let t = costModel.cost(OpWork(kind: .transpose, phase: w.phase, gemm: nil, passes: 1, flops: 0,
                                          bytesRead: moved, bytesWritten: moved), precision: workload.precision)
            if c.seconds > 0 { c.utilisation *= c.seconds / (c.seconds + t.seconds) }
            c.seconds += t.seconds; c.memorySeconds += t.memorySeconds; c.latencySeconds += t.latencySeconds
        }
        if workload.precision == .fp8, options.fp8CastKernels, w.kind.isMatrixOp, w.weightBytes > 0, w.phase != .optimizer,
           let g = w.gemm {
            // Transformer Engine's FP8 GEMMs take their operands cast and transposed, each a kernel of its own. Forward:
            // the FP8 copy of the input (cast inside the layer norm or activation that produces it, as LayerNormLinear
            // and LayerNormMLP do) is transposed for the weight gradient, 1 byte a value read and 1 written. Backward:
            // the BF16 output gradient is cast to FP8 and transposed (`fp8_cast_transpose_fused`), 2 bytes a value
            // read and 2 written (the copy and its transpose).
            // From compute capability 10.0 (Blackwell) FP8 GEMMs take operands in any layout and TE makes no
            // transposed copies (`create_transpose = columnwise_usage && !non_tn_fp8_gemm_supported()`): no forward
            // kernel, and the backward one only casts the output gradient (2 bytes read, 1 written).
            let forward = w.phase == .forward
            let anyLayout = ((costModel as? GPUCostModel)?.gpu.computeCapability ?? 0) >= 10
            let values = g.batch * g.m * (forward ? g.k : g.n)
            if !(anyLayout && forward) {
                let t = costModel.cost(OpWork(kind: .transpose, phase: w.phase, gemm: nil, passes: 1, flops: 0,
                                              bytesRead: (forward ? 1 : 2) * values,
                                              bytesWritten: (forward ? 1 : anyLayout ? 1 : 2) * values),
                                       precision: .bf16)
                if c.seconds > 0 { c.utilisation *= c.seconds / (c.seconds + t.seconds) }
                c.seconds += t.seconds; c.memorySeconds += t.memorySeconds; c.latencySeconds += t.latencySeconds
            }
        }
        memo[w] = c
        return c
    }

    /// One parameter tensor's optimizer update run op by op (`optimizer_kernels`, `optimizer_bytes`): its bytes
    /// (`optimizer_bytes` a parameter, else the fused update's) shared by that many kernels, each paying the
    /// device's launch overhead.
    func eagerOptimizerCost(_ w: OpWork) -> OpCost {
        let k = max(1, options.optimizerKernels)
        let elementBytes = workload.precision == .fp8 ? Precision.bf16.bytes : workload.precision.bytes
        let parameters = w.weightBytes / elementBytes
        let bytes = options.optimizerBytes > 0 ? parameters * options.optimizerBytes : w.bytesRead + w.bytesWritten
        var c = cost(OpWork(kind: .add, phase: .optimizer, gemm: nil, flops: w.flops / k,
                            bytesRead: bytes / 2 / k, bytesWritten: bytes / 2 / k))
        c.seconds *= k; c.computeSeconds *= k; c.memorySeconds *= k; c.latencySeconds *= k
        return c
    }

    func table(tp: Int, microBatch: Int, sp: Bool) -> CostTable {
        let key = TableKey(tp: tp, microBatch: microBatch, sp: sp && tp > 1)
        if let t = tables[key] { return t }
        let shard = tp > 1 ? sharding(sp: key.sp) : TensorSharding.replicated(graph)
        let factor = Double(microBatch) / Double(graph.batch)
        let ways = Double(tp)
        let bytesScale = workload.precision.bytes / 4
        // the values moved between kernels and devices: BF16 in FP8 training (Transformer Engine, above)
        let valueScale = workload.precision == .fp8 ? Precision.bf16.bytes / 4 : bytesScale
        var fwd = Array(repeating: 0.0, count: nF), bwd = fwd, opt = fwd, optLat = fwd, comm = fwd, score = fwd
        var act = fwd, scoreAct = fwd, params = fwd, paramsSplit = fwd, out = fwd
        var opSeconds = Array(repeating: 0.0, count: graph.ops.count)
        var opCosts = Array(repeating: OpCost.zero, count: graph.ops.count)
        for op in graph.ops {
            let p = layers.position[op.id]
            guard p >= 0 else { continue }
            let split = shard.split[op.id]
            var work = works[op.id]
            if op.kind == .batchNorm && batchNormPasses == 2 {
                // a two-pass batch norm reads its input (backward: the input and the output's gradient) twice
                work.bytesRead *= 2
            }
            if options.attentionSegments != 1 && touchesScores[p] {
                // packed sequences attend within themselves: only their blocks of the scores are computed (below 1:
                // a context-parallel share, whose queries attend to 1/segments times its own tokens)
                let r = 1 / options.attentionSegments
                work.flops *= r; work.passes *= r; work.bytesRead *= r; work.bytesWritten *= r
            }
            if !options.fusedAttention && options.scoreBytes > 0 && touchesScores[p] && !work.kind.isMatrixOp {
                // the score passes in another format than the precision's (TensorFlow AMP's FP32 softmax)
                let r = options.scoreBytes / (valueScale * 4)
                work.bytesRead *= r; work.bytesWritten *= r
            }
            if options.fusedAttention && touchesScores[p], let keys = causalKeys, options.causalBlock > 0, attentionRate == nil {
                // under a causal mask the fused kernel skips the blocks above the diagonal: (q + block) / 2q of them
                let r = min(1, (Double(keys) + options.causalBlock) / (2 * Double(keys)))
                work.flops *= r; work.passes *= r; work.bytesRead *= r; work.bytesWritten *= r
            }
            if options.fusedAttention && touchesScores[p] {
                // One fused attention kernel: the products and the softmax keep their arithmetic, the scores never
                // reach memory; the backward pass recomputes the scores (one more product per score product).
                work.bytesRead = 0; work.bytesWritten = 0
                if op.phase == .backward && work.kind.isMatrixOp && attentionScore[p] {
                    work.flops *= 1.5; work.passes *= 1.5
                }
                if work.kind.isMatrixOp && attentionRate == nil {
                    // priced as a GEMM with 1/attention_efficiency the arithmetic
                    work.flops /= options.attentionEfficiency; work.passes /= options.attentionEfficiency
                }
            }
            var c: OpCost
            if options.fusedAttention && touchesScores[p], let rate = attentionRate {
                // the kernel's published rate, over the FLOPs it counts; the passes between the products run inside it
                if work.kind.isMatrixOp {
                    let flops = work.scaled(batch: factor, split: split, ways: ways).flops * rate.counted
                    let t = flops / rate.flopsPerSecond
                    c = OpCost(seconds: t, bound: .compute, computeSeconds: t,
                               utilisation: rate.flopsPerSecond / costModel.peakFlops(workload.precision) / rate.counted)
                } else {
                    c = .zero
                }
            } else {
                c = fusion.isFused(op.id) || work.isFree ? OpCost.zero : cost(work.scaled(batch: factor, split: split, ways: ways))
            }
            if op.phase == .optimizer && (options.optimizerKernels > 0 || options.optimizerBytes > 0) {
                c = eagerOptimizerCost(work.scaled(batch: factor, split: split, ways: ways))
            }
            if options.eagerAttention && !options.fusedAttention && op.phase == .forward && op.kind == .scale && attentionScore[p] {
                // eager attention's padding-mask add after the scale: one more pass reading and writing the scores (the
                // mask, batch × seq, is small); its gradient is the identity, no backward kernel
                c.seconds *= 2; c.computeSeconds *= 2; c.memorySeconds *= 2; c.latencySeconds *= 2
            }
            opSeconds[op.id] = c.seconds
            opCosts[op.id] = c
            switch op.phase {
            case .forward:
                fwd[p] += c.seconds
                if attentionScore[p] { score[p] += c.seconds }
                let divided = split == .none ? 1 : ways
                act[p] = (activationBytes[p] * bytesScale + dropoutMaskElements[p]) * factor / divided
                out[p] = outputBytesRecorded[p] * factor * valueScale / divided
                if attentionScore[p] {
                    // fused attention keeps no score matrix for the backward pass (it recomputes the scores there)
                    act[p] /= options.attentionSegments
                    if options.fusedAttention { act[p] = 0 } else { scoreAct[p] = act[p] }
                }
                if tp > 1 {
                    let ar = shard.allReduceBytes[op.id] * factor * valueScale
                    let ag = shard.allGatherBytes[op.id] * factor * valueScale
                    // With sequence parallelism an all-reduce becomes a reduce-scatter and an all-gather: same volume.
                    comm[p] += collectives.time(.allReduce, bytes: ar, size: tp) + collectives.time(.allGather, bytes: ag, size: tp)
                }
            case .backward:
                bwd[p] += c.seconds
            case .optimizer:
                opt[p] += c.seconds
                optLat[p] += min(c.seconds, c.latencySeconds)
            }
        }
        // Each fused chain is one kernel: it reads what enters it and writes what leaves it once; its backward
        // kernel reads the incoming gradient and the saved input and writes one gradient (twice the arithmetic).
        for chain in fusion.chains {
            guard let first = chain.ops.first else { continue }
            let p = layers.position[first]
            guard p >= 0, !(options.fusedAttention && touchesScores[p]) else { continue }
            let split = shard.split[first]
            var chainScale = !options.fusedAttention && options.scoreBytes > 0 && touchesScores[p] ? options.scoreBytes / 4 : valueScale
            if touchesScores[p] { chainScale /= options.attentionSegments }
            let f = OpWork(kind: .add, phase: .forward, gemm: nil, flops: chain.flops,
                           bytesRead: chain.bytesIn * chainScale, bytesWritten: chain.bytesOut * chainScale)
            let b = OpWork(kind: .add, phase: .backward, gemm: nil, flops: 2 * chain.flops,
                           bytesRead: (chain.bytesIn + chain.bytesOut) * chainScale, bytesWritten: chain.bytesIn * chainScale)
            let cf = cost(f.scaled(batch: factor, split: split, ways: ways))
            let cb = cost(b.scaled(batch: factor, split: split, ways: ways))
            fwd[p] += cf.seconds
            bwd[p] += cb.seconds
            if attentionScore[p] { score[p] += cf.seconds }
            opSeconds[first] += cf.seconds
            opCosts[first] = cf
        }
        // Parameters per device, by forward position (split ones divided among the tensor-parallel devices), and the
        // work on each one's gradient every micro-batch outside the model's ops: `micro_batch_gradient_kernels`
        // kernels sharing `micro_batch_gradient_bytes` per parameter on this device.
        var gradWork = Array(repeating: 0.0, count: nF)
        let perMicroBatch = options.microBatchGradientBytes > 0 || options.microBatchGradientKernels > 0
        if tp > 1 || perMicroBatch {
            let tensors = TensorLookup(graph)
            let k = max(1, options.microBatchGradientKernels)
            var seen = Set<Int>()
            for (i, id) in layers.forwardOps.enumerated() {
                for t in graph.ops[id].inputs where tensors[t]?.role == .parameter && !seen.contains(t) {
                    seen.insert(t)
                    let whole = Double(elementCount(tensors[t]!.shape))
                    let split = tp > 1 && shard.splitParameters.contains(t)
                    let n = split ? whole / ways : whole
                    if tp > 1 { if split { paramsSplit[i] += n } else { params[i] += n } }
                    if perMicroBatch {
                        let half = n * options.microBatchGradientBytes / 2 / k
                        let c = cost(OpWork(kind: .add, phase: .backward, gemm: nil, flops: 0, bytesRead: half, bytesWritten: half))
                        gradWork[i] += options.microBatchGradientKernels > 0 ? k * c.seconds : c.seconds - c.latencySeconds
                    }
                }
            }
        }
        if tp == 1 { params = paramElements }
        let opRecompute = (0..<nF).map { opPolicyRecomputed[$0] ? fwd[$0] : 0 }
        let opKept = (0..<nF).map { !opPolicyCheckpointed[$0] ? act[$0] : opPolicyKeepsOutput[$0] ? out[$0] : 0 }
        let t = CostTable(forward: Prefix(fwd), backward: Prefix(bwd), optimizer: Prefix(opt), optimizerLatency: Prefix(optLat),
                          microBatchGradient: Prefix(gradWork), tpComm: Prefix(comm),
                          score: Prefix(score), opRecompute: Prefix(opRecompute), opKept: Prefix(opKept),
                          activation: Prefix(act), scoreActivation: Prefix(scoreAct),
                          params: Prefix(params), paramsSplit: Prefix(paramsSplit), outputBytes: out,
                          opSeconds: opSeconds, opCost: opCosts)
        tables[key] = t
        return t
    }

    /// Stage starts (forward positions) for `stages` pipeline stages, balanced by FLOPs at layer boundaries.
    func stageStarts(_ stages: Int) -> [Int]? {
        if let s = partitions[stages] { return s }
        guard let s = layers.partition(weights: flopsPerPosition, stages: stages) else { return nil }
        partitions[stages] = s
        return s
    }

    /// Layers a pipeline can be cut into.
    public var layerCount: Int { layers.layerCount }

    // MARK: evaluating a plan

    /// Simulates one step under `plan`. Returns nil when the plan cannot be laid out (fewer layers than stages).
    public func evaluate(_ plan: ResolvedPlan) -> PlanEvaluation? {
        let (t, p, d, mb, m) = (plan.tensorParallel, plan.pipelineParallel, plan.dataParallel, plan.microBatch, plan.microBatches)
        guard let starts = stageStarts(p) else { return nil }
        let tab = table(tp: t, microBatch: mb, sp: plan.sequenceParallel)
        let v = Double(max(1, plan.virtualStages))
        let prec = workload.precision
        var stageTimes: [Double] = []
        var worst = (time: -1.0, compute: 0.0, comm: 0.0, p2p: 0.0, backward: 0.0, stage: 0)
        var memWorst: MemoryUse? = nil
        var memWorstTotal = -1.0
        var optWorst = 0.0
        var dpWorst = 0.0
        var hbmWorst = 0.0
        var cpuWork = 0.0   // CPU hosts: one replica's seconds of work over its stages
        var optHereByStage: [Double] = [], backwardByStage: [Double] = []
        let fast = topology.fastMemoryBytes * options.memoryHeadroom
        let bulk = topology.bulkMemoryBytes * options.memoryHeadroom
        for s in 0..<p {
            let a = starts[s], b = s + 1 < p ? starts[s + 1] : nF
            let f = tab.forward.sum(a, b), bw = tab.backward.sum(a, b), comm = tab.tpComm.sum(a, b)
            let (recompute, recomputeComm) = tab.recomputed(plan.recompute, a, b)
            // pipeline sends: forward activation out, its gradient back (per micro-batch), chunked by virtual stages
            let sendBytes = s + 1 < p ? tab.outputBytes[b - 1] : 0
            let p2p = p > 1 ? 2 * v * collectives.sendTime(bytes: sendBytes, stride: t) : 0
            let compute = f + bw + recompute + tab.microBatchGradient.sum(a, b)
            let tpc = 2 * comm + recomputeComm
            let time = compute + tpc + p2p
            stageTimes.append(time)
            if time > worst.time { worst = (time, compute, tpc, p2p, bw, s) }

            // memory of this stage's devices
            let paramsHere = tab.params.sum(a, b) + tab.paramsSplit.sum(a, b)
            let shards = options.optimizerShards(plan)
            let shard = Double(shards)
            // ZeRO-3 / FSDP: each device keeps 1/d of the weights and gathers one layer at a time, the next one
            // prefetched while the current one computes (two layers' full weights resident).
            var gathered = 0.0
            if plan.shardParameters && d > 1 {
                let cuts = layers.cuts.filter { $0 >= a && $0 < b }
                for (k, c) in cuts.enumerated() {
                    let e = k + 1 < cuts.count ? cuts[k + 1] : b
                    gathered = max(gathered, tab.params.sum(c, e) + tab.paramsSplit.sum(c, e))
                }
                gathered = min(paramsHere, 2 * (gathered > 0 ? gathered : paramsHere))
            }
            let weights = plan.shardParameters && d > 1 ? (paramsHere / Double(d) + gathered) * prec.bytes : paramsHere * prec.bytes
            let grads = paramsHere * prec.bytes / shard
            let state = paramsHere * (prec.stateBytesPerParameter(adam: adam) - 2 * prec.bytes) / shard
            let inflight = Double(min(m, p - s))
            var acts: Double
            switch plan.recompute {
            case .none: acts = tab.activation.sum(a, b) * inflight
            case .selective: acts = (tab.activation.sum(a, b) - tab.scoreActivation.sum(a, b)) * inflight
            case .full, .op:
                // keep each (checkpointed) layer's input, and under `op` the outputs it keeps; rebuild one layer's
                // activations at a time in the backward pass
                var inputs = 0.0, largest = 0.0
                let cuts = layers.cuts.filter { $0 >= a && $0 < b }
                for (k, c) in cuts.enumerated() {
                    let e = k + 1 < cuts.count ? cuts[k + 1] : b
                    if plan.recompute == .op && !opPolicyCheckpointed[c] { continue }
                    inputs += c > 0 ? tab.outputBytes[c - 1] : inputBytesPerSample * Double(mb) * prec.bytes / 4
                    largest = max(largest, tab.activation.sum(c, e) - (plan.recompute == .op ? tab.opKept.sum(c, e) : 0))
                }
                acts = (inputs + (plan.recompute == .op ? tab.opKept.sum(a, b) : 0)) * inflight + largest
            }
            let total = weights + grads + state + acts
            let spilled = max(0, total - fast)
            let mem = MemoryUse(weights: weights, gradients: grads, optimizerState: state, activations: acts,
                                fastCapacity: fast, bulkCapacity: bulk, spilled: spilled)
            if total > memWorstTotal { memWorstTotal = total; memWorst = mem }

            // optimizer: its ops on this stage's parameters (sharded over data-parallel replicas with ZeRO)
            let optLatency = tab.optimizerLatency.sum(a, b)
            let optHere = (tab.optimizer.sum(a, b) - optLatency) / shard + optLatency
            optWorst = max(optWorst, optHere)
            optHereByStage.append(optHere)
            backwardByStage.append(bw)

            // data-parallel gradient reduction, hidden in part behind the last micro-batch's backward pass
            if d > 1 && plan.shardParameters {
                // ZeRO-3 / FSDP (Rajbhandari et al. 2020, §5: 1.5× the traffic of data parallelism): every micro-batch
                // all-gathers the stage's weights for its forward and again for its backward pass, and the gradients
                // are reduce-scattered once; prefetching hides the gathers behind the micro-batches' compute.
                let bytes = paramsHere * prec.bytes
                let gather = collectives.time(.allGather, bytes: bytes, size: d, stride: t * p)
                let scatter = collectives.time(.reduceScatter, bytes: bytes, size: d, stride: t * p)
                let traffic = 2 * Double(m) * gather + scatter
                let o = options.gradientOverlap
                dpWorst = max(dpWorst, max(traffic * (1 - o), traffic - o * Double(m) * compute))
            } else if d > 1 {
                let gradBytes = paramsHere * prec.bytes
                let ar = collectives.time(.allReduce, bytes: gradBytes, size: d, stride: t * p)
                var exposed = max(ar * (1 - options.gradientOverlap), ar - options.gradientOverlap * bw)
                if topology.kind == .cpu {
                    // The engine packs the gradients into its buckets and back (twice their bytes, read and written).
                    exposed += 4 * gradBytes / topology.bulkMemoryBandwidth
                }
                if options.paramBroadcast && shards > 1 {
                    // one broadcast from each rank of the group, of its shard of the updated weights, hidden behind
                    // the next step's first forward pass, which waits for each layer's weights as they arrive
                    let g = shards
                    let each = collectives.broadcastTime(bytes: paramsHere * prec.bytes / Double(g), size: g, stride: t * p)
                    exposed += max(0, Double(g) * each - f)
                }
                dpWorst = max(dpWorst, exposed)
            }
            cpuWork += (Double(m) * compute + (tab.optimizer.sum(a, b) - optLatency) + optLatency)

            // Dojo: state beyond SRAM lives in DIP HBM. Optimizer state spills first (moved once per step, exposed),
            // then stashed activations (written and read once, hidden behind compute), then weights (read in the
            // forward and backward pass of every micro-batch, hidden behind compute).
            if topology.kind == .d1, spilled > 0, topology.bulkMemoryBandwidth > 0 {
                var left = spilled
                let o = min(left, state + grads); left -= o
                let ac = min(left, acts); left -= ac
                let w = min(left, weights)
                let bwHBM = topology.bulkMemoryBandwidth
                let exposedState = 2 * o / bwHBM
                let hidden = (2 * ac + 2 * Double(m) * w) / bwHBM
                let busy = Double(m) * compute
                hbmWorst = max(hbmWorst, exposedState + max(0, hidden - busy))
            }
        }
        guard let memory = memWorst else { return nil }
        let schedule = OneFOneBSchedule(stages: p, microBatches: m, virtualStages: plan.virtualStages)
        let bubble = schedule.bubble(stageTimes: stageTimes)
        var br = Breakdown()
        br.compute = Double(m) * worst.compute
        br.tensorParallel = Double(m) * worst.comm
        br.pipeline = Double(m) * worst.p2p + bubble
        br.dataParallel = dpWorst
        br.optimizer = optWorst
        if topology.kind == .cpu && p > 1 {
            // (CPU hosts, where each stage's optimizer is the engine's own loop on that stage's rank; the published GPU
            // validation keeps the slowest stage's update after the pipeline drains)
            // 1F1B: stage s finishes its last backward before stage 0 does (`drainLead`), so its update overlaps that
            // much of the earlier stages' work.
            let lead = schedule.drainLead(backward: backwardByStage)
            br.optimizer = max(0, zip(optHereByStage, lead).map { $0 - $1 }.max() ?? 0)
        }
        br.hbm = hbmWorst
        // input: each replica's samples over its share of host bandwidth, prefetched behind compute
        if topology.hostBandwidth > 0 {
            let bytes = inputBytesPerSample * Double(mb * m) * prec.bytes / 4
            let inputTime = bytes / (topology.hostBandwidth * Double(t * p))
            br.input = max(0, inputTime - Double(m) * worst.time)
        }
        br.overhead = options.stepOverhead
        // CPU hosts: each rank's loader prepares its replica's share of the batch on the cores the rank computes on
        // (`host_input_seconds`), prefetched, so the cores do that work as well as the step's.
        var loaderWork = 0.0
        if case .cpu(let c) = machine.system, options.hostInputSeconds > 0 {
            loaderWork = Double(mb * m) * options.hostInputSeconds
            br.input += loaderWork / max(1, c.cpu.threadsPerRank)
        }
        // CPU hosts running more ranks than cores: the cores do every rank's work, so a step takes at least the host's
        // work over its cores (waiting ranks leave theirs to the others).
        if case .cpu(let c) = machine.system, c.cpu.threadsPerRank < 1 {
            let perHost = Double(min(plan.devices, c.devices)) / Double(c.hosts)
            let bound = (cpuWork / Double(p) + loaderWork) * perHost / Double(c.cpu.cores) + br.dataParallel + br.overhead
            br.compute += max(0, bound - br.total)
        }
        // Host data loading (decode and augmentation on the CPU), prefetched: it bounds the step from below.
        if options.loaderWorkers > 0, case .gpu(let g) = machine.system, machine.calibration.hostDecodeRate > 0 {
            let onNode = max(1, min(plan.devices, g.server.gpus))
            var workers = Double(options.loaderWorkers)
            if g.server.hostThreads > 0 { workers = min(workers, Double(g.server.hostThreads) / Double(onNode)) }
            // each replica's samples, loaded by the workers of its t × p GPUs
            let loading = Double(mb * m) / (workers * Double(t * p) * machine.calibration.hostDecodeRate)
            br.input = max(br.input, loading - (br.total - br.input))
        }
        return PlanEvaluation(plan: plan, stepSeconds: br.total, breakdown: br, memory: memory, slowestStage: worst.stage)
    }

    /// The `n` costliest ops of a step under `plan` on a device of the slowest pipeline stage: seconds over the
    /// step's micro-batches, with the same op of repeated layers (`blocks.*.fc1`) summed into one row that says how
    /// many it covers.
    public func costliestOps(_ plan: ResolvedPlan, count n: Int = 10) -> [OpReport] {
        let tab = table(tp: plan.tensorParallel, microBatch: plan.microBatch, sp: plan.sequenceParallel)
        let starts = stageStarts(plan.pipelineParallel) ?? [0]
        let s = min(evaluate(plan)?.slowestStage ?? 0, starts.count - 1)
        let range = starts[s]..<(s + 1 < starts.count ? starts[s + 1] : nF)
        let m = Double(plan.microBatches)
        struct Key: Hashable { var kind: OpKind; var phase: Phase; var scope: String }
        var rows: [Key: OpReport] = [:]
        var flops: [Key: Double] = [:]
        for op in graph.ops where tab.opSeconds[op.id] > 0 && range.contains(layers.position[op.id]) {
            let c = tab.opCost[op.id]
            let times = op.phase == .optimizer ? 1.0 / Double(options.optimizerShards(plan)) : m
            let key = Key(kind: op.kind, phase: op.phase, scope: op.phase == .optimizer ? "" : OpReport.scopeGroup(op.scope))
            let seconds = tab.opSeconds[op.id] * times
            if var r = rows[key] {
                r.seconds += seconds; r.count += 1
                if seconds > 0 { flops[key, default: 0] += c.utilisation * seconds }
                rows[key] = r
            } else {
                rows[key] = OpReport(id: op.id, kind: op.kind.rawValue, phase: op.phase.rawValue, scope: key.scope,
                                     seconds: seconds, bound: c.bound, utilisation: c.utilisation, count: 1)
                flops[key] = c.utilisation * seconds
            }
        }
        var out = Array(rows.values)
        for i in out.indices {
            let key = Key(kind: OpKind(rawValue: out[i].kind)!, phase: Phase(rawValue: out[i].phase)!, scope: out[i].scope)
            if out[i].seconds > 0 { out[i].utilisation = (flops[key] ?? 0) / out[i].seconds }   // time-weighted
        }
        out.sort { $0.seconds > $1.seconds || ($0.seconds == $1.seconds && $0.id < $1.id) }
        return Array(out.prefix(n))
    }

    /// Per-op seconds of one micro-batch under `plan`, by op id (for traces).
    func opSeconds(_ plan: ResolvedPlan) -> [Double] {
        table(tp: plan.tensorParallel, microBatch: plan.microBatch, sp: plan.sequenceParallel).opSeconds
    }

    /// Stage starts for a plan (forward positions), for traces.
    func stages(_ plan: ResolvedPlan) -> [Int] { stageStarts(plan.pipelineParallel) ?? [0] }
    var forwardOps: [Int] { layers.forwardOps }
    func position(_ op: Int) -> Int { layers.position[op] }
}

/// One op of the costliest-ops table.
public struct OpReport: Sendable, Equatable, Codable {
    public var id: Int
    public var kind: String
    public var phase: String
    public var scope: String
    public var seconds: Double
    public var bound: Bound
    public var utilisation: Double
    /// How many ops of the step the row sums (the same op in repeated layers).
    public var count: Int = 1

    /// The row an op of `scope` belongs to: its layer path with every index a `*` (`blocks.3.fc1` → `blocks.*.fc1`).
    public static func scopeGroup(_ scope: String?) -> String {
        (scope ?? "").split(separator: ".").map { Int($0) == nil ? String($0) : "*" }.joined(separator: ".")
    }
}
