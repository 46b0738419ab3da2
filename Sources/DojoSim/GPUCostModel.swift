import DojoCompiler
import DojoGraph
import DojoMachine

/// The cost of one op on one GPU: a roofline with the size-dependent efficiency of GEMMs, as Calculon models it
/// (there as a step table of efficiency by GFLOP; here from its causes, so that more work is never cheaper):
///
///     time = kernels × launch_overhead + max(compute, HBM)
///
/// - compute, GEMMs: the output is cut into tiles (× batch) of one of cuBLAS's shapes (`tileShapes`, around a
///   `gemm_tile`² base; the fastest for the shape), run in waves of `sms` tiles; each SM computes at peak / sms ×
///   `matrix_efficiency`, times a tile's operand reuse relative to the base tile's when it is smaller (tensor cores
///   only); a ragged last wave and padded edge tiles are paid in full (tile and wave quantisation). When there are fewer tiles than SMs, k may be split s ways (split-K, s a power of two with
///   s × tiles ≤ sms), at the cost of s FP32 partial outputs written and read back.
/// - compute, other ops: FLOPs at the FP32 (CUDA-core) rate × `vector_efficiency`.
/// - HBM: the op's bytes read and written at `hbm_bandwidth` × `memory_efficiency`; L2 is not modelled (each
///   operand is assumed to cross HBM once, as a well-tiled kernel's does).
/// - launch: `launch_overhead` per kernel (a backward GEMM of 2 passes is 2 kernels), not overlapped.
/// - a backward GEMM's passes are priced with their own shapes (`OpWork.gemmPasses`): the input's gradient [m, k] over n
///   and the weights' [k, n] over m, each its own roofline, added.
///
/// Compute rates (not HBM) are the data sheet's times `gpu.clockScale`, below 1 under a `power_limit` below the TDP.
///
/// Matrix rate by precision: fp32 → `fp32` (PyTorch trains FP32 without TF32 by default since 1.12), tf32 → `tf32`,
/// fp16 → `fp16`, bf16 → `bf16`, fp8 and cfp8 → `fp8`; a rate the GPU lacks falls back to the next wider format it
/// has (V100: bf16 runs as fp16, ASSUMED with loss scaling; A100: fp8 as bf16).
public struct GPUCostModel: OpCostModel {
    public let gpu: GPUSpec
    public let calibration: Calibration

    public init(gpu: GPUSpec, calibration: Calibration) {
        self.gpu = gpu
        self.calibration = calibration
    }

    /// The model of a GPU machine's GPU; nil for a Dojo machine.
    public init?(machine: Machine) {
        guard case .gpu(let cluster) = machine.system else { return nil }
        self.init(gpu: cluster.gpu, calibration: machine.calibration)
    }

    public func peakFlops(_ precision: Precision) -> Double {
        let g = gpu
        let half = g.bf16 > 0 ? g.bf16 : g.fp16
        switch precision {
        case .fp32: return g.fp32
        case .tf32: return g.tf32 > 0 ? g.tf32 : g.fp32
        case .fp16: return g.fp16 > 0 ? g.fp16 : g.fp32
        case .bf16: return half > 0 ? half : g.fp32
        case .fp8, .cfp8: return g.fp8 > 0 ? g.fp8 : (half > 0 ? half : g.fp32)
        }
    }

    public func cost(_ work: OpWork, precision: Precision) -> OpCost {
        if work.kind.definition.bytes == .view || work.isFree { return .zero }
        let e = calibration
        let bytes = work.bytesRead + work.bytesWritten
        let hbm = gpu.hbmBandwidth * e.memoryEfficiency
        var compute: Double
        var memory = bytes / hbm
        var kernels = 1.0
        let busy: Double
        if work.kind.isMatrixOp, work.gemm != nil {
            // each GEMM the op runs, with its own shape (a backward pass: the input's and the weights' gradients)
            let shapes = work.gemmPasses
            kernels = Double(shapes.count)
            compute = 0
            memory = 0
            var roofs = 0.0
            for pass in shapes {
                guard let g = pass.gemm else { continue }
                let (c, mem) = tiled(g, bytes: pass.bytesRead + pass.bytesWritten, precision: precision)
                // each pass its own roofline
                compute += c; memory += mem; roofs += max(c, mem)
            }
            busy = roofs
        } else {
            let rate = gpu.clockScale * (work.kind.isMatrixOp ? peakFlops(precision) * matrixEfficiency(precision)
                : gpu.fp32 * e.vectorEfficiency)
            compute = work.flops / rate
            busy = max(compute, memory)
        }
        let latency = kernels * gpu.launchOverhead
        let seconds = busy + latency
        let bound: Bound = latency >= busy ? .latency : (compute >= memory ? .compute : .hbm)
        return OpCost(seconds: seconds, bound: bound, computeSeconds: compute, memorySeconds: memory,
                      latencySeconds: latency, utilisation: seconds > 0 ? work.flops / seconds / peakFlops(precision) : 0)
    }
}

extension GPUCostModel {
    /// One GEMM's compute and HBM seconds on the fastest tile shape and split-K (`cost`'s doc); `bytes` its share of
    /// the op's bytes.
    func tiled(_ g: GEMMShape, bytes: Double, precision: Precision) -> (compute: Double, memory: Double) {
        let e = calibration
        let hbm = gpu.hbmBandwidth * e.memoryEfficiency
        let peak = peakFlops(precision) * matrixEfficiency(precision) * gpu.clockScale
        let sms = Double(gpu.sms), base = Double(gpu.gemmTile)
        let batch = max(1, g.batch.rounded(.up)), m = max(1, g.m.rounded(.up))
        let n = max(1, g.n.rounded(.up)), k = max(1, g.k.rounded(.up))
        let secondsPerTileMAC = 2 * sms / peak
        // Tensor cores are fed from shared memory; CUDA-core (FP32 SIMT) GEMMs are bound by their FMA issue rate.
        let tensorCores = onTensorCores(precision)
        var compute = Double.infinity, memory = bytes / hbm
        for (fm, fn) in GPUCostModel.tileShapes {
            let tm = base * fm, tn = base * fn
            // A tile's operand reuse (multiply-adds per element loaded, tm·tn / (tm + tn)) below the base tile's
            // leaves the tensor cores waiting on shared memory in proportion.
            let reuse = tensorCores ? min(1, (tm * tn / (tm + tn)) / (base / 2)) : 1
            let tiles = batch * (m / tm).rounded(.up) * (n / tn).rounded(.up)
            var s = 1.0
            // Split-K: powers of two while the splits still fill the SMs; each choice's time is a roofline.
            while s == 1 || s * tiles <= sms {
                let waves = (tiles * s / sms).rounded(.up)
                let c = waves * tm * tn * (k / s).rounded(.up) * secondsPerTileMAC / reuse
                let partials = s > 1 ? 2 * s * batch * m * n * 4 : 0
                let mem = (bytes + partials) / hbm
                // the fastest; among equally fast (memory-bound) choices the one with the least compute
                let t = max(c, mem), best = max(compute, memory)
                if compute == .infinity || t < best || (t == best && c < compute) {
                    compute = c
                    memory = mem
                }
                s *= 2
            }
        }
        return (compute, memory)
    }
}

extension GPUCostModel {
    /// Whether a GEMM in this precision runs on tensor cores: not FP32, nor TF32 on a GPU without it (V100).
    func onTensorCores(_ precision: Precision) -> Bool {
        !(precision == .fp32 || (precision == .tf32 && gpu.tf32 == 0))
    }

    /// The share of the precision's matrix peak that large GEMMs reach: `fp8_efficiency` for 8-bit formats,
    /// `simt_efficiency` on CUDA cores, `matrix_efficiency` on tensor cores.
    func matrixEfficiency(_ precision: Precision) -> Double {
        precision.bytes == 1 ? calibration.fp8Efficiency
            : onTensorCores(precision) ? calibration.matrixEfficiency : calibration.simtEfficiency
    }

    /// The output tiles cuBLAS chooses among, as multiples of `gemm_tile` (NVIDIA, "Matrix Multiplication Background
    /// User's Guide" §2.3, "Typical tile dimensions in cuBLAS": 256×128, 128×256, 128×128, 256×64, 64×256, 128×64,
    /// 64×128, 64×64 with the 128 base): the cost model takes the fastest for each GEMM.
    static let tileShapes: [(Double, Double)] = [(2, 1), (1, 2), (1, 1), (2, 0.5), (0.5, 2), (1, 0.5), (0.5, 1), (0.5, 0.5)]
}

extension Machine {
    /// The op cost model of one device of this machine: a D1 die (or a `region` of its mesh) or one GPU.
    public func opCostModel(region: MeshRegion? = nil) -> any OpCostModel {
        switch system {
        case .dojo(let d): return D1CostModel(system: d, calibration: calibration, region: region)
        case .gpu(let g): return GPUCostModel(gpu: g.gpu, calibration: calibration)
        case .cpu(let c): return CPUCostModel(cpu: c.cpu)
        }
    }
}

/// Measures a cost model's speed: nanoseconds per `cost` call over `works`, repeated until `minimumSeconds`
/// have passed (at least once). For benchmarks and test logs; the result is not deterministic.
public func nanosecondsPerCost(_ model: some OpCostModel, works: [OpWork], precision: Precision,
                               minimumSeconds: Double = 0.2) -> Double {
    guard !works.isEmpty else { return 0 }
    let clock = ContinuousClock()
    var calls = 0
    var sink = 0.0
    let start = clock.now
    var elapsed = Duration.zero
    repeat {
        for w in works { sink += model.cost(w, precision: precision).seconds }
        calls += works.count
        elapsed = clock.now - start
    } while Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18 < minimumSeconds
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    // Keep the sum alive so the calls are not optimised away.
    if sink.isNaN { return .nan }
    return seconds / Double(calls) * 1e9
}
