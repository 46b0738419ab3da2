import Foundation

/// Fused attention kernels priced from their published throughput (issue 11 §1: "FlashAttention's published
/// throughput by sequence length and head size") instead of a GEMM's rate times one efficiency.
///
/// Each table is training throughput, forward + backward, in TFLOP/s as FlashAttention counts it: the forward pass
/// 4·seq²·head_dim·heads·batch FLOPs (halved under a causal mask, where the kernel skips the blocks above the
/// diagonal), the backward pass 2.5 times that. Rows: sequence lengths 512, 1k, 2k, 4k, 8k, 16k at batch·seq = 16k,
/// hidden 2048, FP16/BF16 (the papers' benchmark setting). Between lengths the rate is interpolated in log2(seq),
/// between head dimensions linearly; outside the measured range it is the nearest measured value.
///
/// Sources (docs/SOURCES.md, A1-A3):
/// - A1 FlashAttention-2 (Dao, arXiv 2307.08691v1), Fig. 4 (A100 80GB SXM4) and Fig. 7 (H100 80GB SXM5), the numbers
///   printed on the bars (flash-attention @0251105a, assets/flash2_a100_fwd_bwd_benchmark.png and
///   flash2_h100_fwd_bwd_benchmark.png). The A100 non-causal head-dim-128 value at 512 is behind the figure's legend:
///   151 is read from the bar's height (ASSUMPTION within ±1).
/// - A2 FlashAttention-3 (Shah et al., arXiv 2407.08608v2), Figs. 5 and 6: cuDNN 9.1.1's forward and backward
///   TFLOP/s on H100 SXM5. Forward + backward is derived as 3.5 / (1/fwd + 2.5/bwd). The paper gives the backward
///   pass without a causal mask only: the causal rows are the non-causal forward + backward times the causal
///   forward's share of the non-causal forward at the same length (ASSUMPTION: the mask slows the backward pass as
///   much as the forward).
/// - A3 NVIDIA cudnn-frontend's SDPA training benchmark on a B200 (`benchmark/sdpa_benchmark_training`, its B200
///   CSV: cuDNN 9.13.1 through PyTorch's SDPA, and flash-attn 2.7.4, forward and backward TFLOP/s counted as
///   FlashAttention counts them), causal, head dimension 128, BF16, at the Llama-3.1-405B layer: batch 1, 128 query
///   and 8 key/value heads, free clock. Its layer is not FlashAttention's setting (batch·seq = 16k, hidden 2048):
///   ASSUMPTION, read as if it were; at short lengths a single sequence gives the GPU less parallel work than the
///   papers' batches, so the rates there are low for that setting. Combined as A2's; the other three rows, which A3
///   does not measure, are its causal head-dim-128 row times the H100 table's ratio of that row to each (cuDNN's for
///   cuDNN, FlashAttention-2's for FA2) at the same length (ASSUMPTION: the mask and the head size change the rate on a
///   B200 as on an H100).
public enum AttentionKernel: String, Sendable, CaseIterable, Codable {
    /// FlashAttention-2 (flash-attn 2.x, PyTorch's scaled_dot_product_attention flash backend): A100, H100 and B200.
    case fa2
    /// cuDNN's fused attention (cuDNN 9, what Transformer Engine, NeMo and NVIDIA's MLPerf runs use on Hopper and
    /// newer): H100 (A2) and B200 (A3); on an A100 FlashAttention-2's figures (no published cuDNN figures for it).
    case cudnn
    /// The Triton FlashAttention of 2022 (flash-attn's `flash_attn_triton.py`, llm-foundry's `attn_impl: triton`): A100
    /// (FlashAttention-2's Fig. 4 measures it beside FA2); no published figures on other GPUs.
    case triton
    /// No table: the products priced as a GEMM with 1/`attention_efficiency` the arithmetic.
    case efficiency

    static let lengths: [Double] = [512, 1024, 2048, 4096, 8192, 16384]

    /// TFLOP/s by (causal, head dim) for one GPU and kernel.
    struct Table { var nonCausal64, nonCausal128, causal64, causal128: [Double] }

    static let fa2A100 = Table(nonCausal64: [132, 153, 162, 171, 175, 176], nonCausal128: [151, 173, 187, 196, 201, 203],
                               causal64: [88, 119, 140, 156, 165, 171], causal128: [99, 133, 155, 173, 182, 189])
    /// "FlashAttention Triton" in A1's Fig. 4 (A100).
    static let tritonA100 = Table(nonCausal64: [90, 102, 98, 98, 100, 100], nonCausal128: [78, 85, 90, 93, 95, 95],
                                  causal64: [59, 75, 79, 76, 79, 80], causal128: [50, 61, 68, 74, 78, 80])
    static let fa2H100 = Table(nonCausal64: [215, 254, 274, 288, 294, 296], nonCausal128: [248, 294, 320, 326, 335, 338],
                               causal64: [141, 192, 232, 257, 273, 284], causal128: [163, 221, 265, 294, 308, 328])
    /// cuDNN 9.1.1 on H100 (A2): forward and backward as published, combined below.
    static let cudnnH100Forward = Table(nonCausal64: [335, 373, 395, 408, 412, 413], nonCausal128: [497, 574, 617, 609, 600, 595],
                                        causal64: [225, 288, 334, 363, 379, 388], causal128: [315, 410, 484, 518, 529, 539])
    static let cudnnH100Backward = (nonCausal64: [266.0, 348, 395, 417, 432, 433], nonCausal128: [305.0, 408, 465, 499, 518, 516])
    static let cudnnH100: Table = {
        let f = cudnnH100Forward, b = cudnnH100Backward
        func both(_ fwd: [Double], _ bwd: [Double]) -> [Double] { zip(fwd, bwd).map { 3.5 / (1 / $0 + 2.5 / $1) } }
        let nc64 = both(f.nonCausal64, b.nonCausal64), nc128 = both(f.nonCausal128, b.nonCausal128)
        return Table(nonCausal64: nc64, nonCausal128: nc128,
                     causal64: (0..<6).map { nc64[$0] * f.causal64[$0] / f.nonCausal64[$0] },
                     causal128: (0..<6).map { nc128[$0] * f.causal128[$0] / f.nonCausal128[$0] })
    }()

    /// cuDNN 9.13.1 and flash-attn 2.7.4 on a B200 (A3), causal, head dimension 128: forward and backward as published
    /// at 512 … 16k (the CSV's pyt_cudnn and flash_attention rows).
    static let cudnnB200Causal128 = (forward: [83.991, 254.501, 478.921, 855.678, 1171.278, 1332.415],
                                     backward: [134.164, 308.529, 371.486, 701.265, 942.509, 1074.776])
    static let fa2B200Causal128 = (forward: [63.936, 154.417, 254.381, 342.990, 399.925, 425.128],
                                   backward: [81.393, 104.860, 198.845, 273.484, 318.004, 336.635])
    /// A B200 table from its measured causal head-dim-128 row, the other rows in the H100 table's proportions (A3).
    static func b200(_ measured: (forward: [Double], backward: [Double]), like h100: Table) -> Table {
        let c128 = zip(measured.forward, measured.backward).map { 3.5 / (1 / $0 + 2.5 / $1) }
        func scaled(_ row: [Double]) -> [Double] { (0..<c128.count).map { c128[$0] * row[$0] / h100.causal128[$0] } }
        return Table(nonCausal64: scaled(h100.nonCausal64), nonCausal128: scaled(h100.nonCausal128),
                     causal64: scaled(h100.causal64), causal128: c128)
    }
    static let cudnnB200 = b200(cudnnB200Causal128, like: cudnnH100)
    static let fa2B200 = b200(fa2B200Causal128, like: fa2H100)

    /// The published table for a GPU (by its model name), nil where none was published (V100: FlashAttention-2 needs
    /// Ampere or newer). An H200 takes the H100's figures (the same SMs and clocks, more memory bandwidth: ASSUMPTION).
    static func table(_ kernel: AttentionKernel, gpu model: String) -> Table? {
        let m = model.uppercased()
        switch kernel {
        case .efficiency: return nil
        case .triton: return m.contains("A100") ? tritonA100 : nil
        case .fa2, .cudnn:
            if m.contains("B200") { return kernel == .cudnn ? cudnnB200 : fa2B200 }
            if m.contains("H100") || m.contains("H200") { return kernel == .cudnn ? cudnnH100 : fa2H100 }
            if m.contains("A100") { return fa2A100 }
            return nil
        }
    }

    /// The share of the dense 16-bit peak the best GEMM reaches in a published measurement of the same GPU (M1:
    /// Bekman's "Maximum Achievable Matmul FLOPS", BF16: A100 SXM 271.2 of 312, H100 SXM 794.5 of 989), the
    /// benchmark `calibration.matrix_efficiency` is a share of.
    static func matmulBenchmarkShare(gpu model: String) -> Double? {
        let m = model.uppercased()
        if m.contains("B200") { return 1745.0 / 2250 }   // M1: B200 SXM BF16
        if m.contains("H100") || m.contains("H200") { return 794.5 / 989 }
        if m.contains("A100") { return 271.2 / 312 }
        return nil
    }

    /// The rate a training step reaches: the published kernel rate scaled as the machine's GEMMs are, by
    /// `calibration.matrix_efficiency` over what a GEMM benchmark reaches on the GPU (M1). A benchmark shows a kernel at
    /// its best (fixed clocks, one shape repeated); the same step loses the same share on its attention as on its GEMMs
    /// (ASSUMPTION). FLOP/s, or nil when no table applies.
    public static func stepRate(_ kernel: AttentionKernel, gpu model: String, matrixEfficiency: Double, causal: Bool,
                                headDimension: Int, sequence: Double) -> Double? {
        guard let r = throughput(kernel, gpu: model, causal: causal, headDimension: headDimension, sequence: sequence),
              let share = matmulBenchmarkShare(gpu: model) else { return nil }
        return r * 1e12 * matrixEfficiency / share
    }

    /// Forward + backward TFLOP/s (FlashAttention's count) for attention over `sequence` keys with heads of
    /// `headDimension`, or nil when this kernel has no published figures on that GPU.
    public static func throughput(_ kernel: AttentionKernel, gpu model: String, causal: Bool, headDimension: Int,
                                  sequence: Double) -> Double? {
        guard let t = table(kernel, gpu: model), sequence > 0, headDimension > 0 else { return nil }
        let (r64, r128) = causal ? (t.causal64, t.causal128) : (t.nonCausal64, t.nonCausal128)
        func along(_ row: [Double]) -> Double {
            let x = log2(min(max(sequence, lengths[0]), lengths[lengths.count - 1]))
            for i in 1..<lengths.count where x <= log2(lengths[i]) {
                let x0 = log2(lengths[i - 1]), w = (x - x0) / (log2(lengths[i]) - x0)
                return row[i - 1] + w * (row[i] - row[i - 1])
            }
            return row[row.count - 1]
        }
        let w = min(max((Double(headDimension) - 64) / 64, 0), 1)
        return along(r64) + w * (along(r128) - along(r64))
    }

    /// The source line `dojo validate --verbose` prints for the kernel.
    public var source: String {
        switch self {
        case .fa2: return "FlashAttention-2's published forward+backward TFLOP/s by sequence length, head dimension and causal mask (Dao 2023, Figs. 4 and 7: A100, H100; NVIDIA cudnn-frontend's SDPA benchmark: B200, causal, head dim 128); GPUs without figures: attention_efficiency"
        case .cudnn: return "cuDNN 9.1.1's published forward and backward TFLOP/s on H100 (Shah et al. 2024, FlashAttention-3 Figs. 5-6); cuDNN 9.13.1's on B200 (NVIDIA cudnn-frontend's SDPA benchmark, causal, head dim 128); on an A100, FlashAttention-2's (Dao 2023, Fig. 4); GPUs without figures: attention_efficiency"
        case .triton: return "the Triton FlashAttention's published forward+backward TFLOP/s on A100 (Dao 2023, Fig. 4, \"FlashAttention Triton\"); other GPUs: attention_efficiency"
        case .efficiency: return "no table: the products as a GEMM with 1/attention_efficiency the arithmetic"
        }
    }
}
