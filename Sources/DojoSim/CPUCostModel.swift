import DojoCompiler
import DojoGraph
import DojoMachine

/// The cost of one op of OpenDojo's own engine on one rank of a CPU host, from what `dojo machine calibrate`
/// measured of the same engine (`cpu.ops`: per op kind and direction, a fixed cost and a rate, one thread):
///
///     time = (overhead + work ÷ rate [+ bytes ÷ byte_rate]) ÷ speed-up(threads) ÷ shared_speed
///
/// - work: FLOPs for convolutions and matrix products, bytes read and written (as the Graph IR counts them) for
///   every other op; a kind calibrate did not see falls back to `stream_bandwidth` and `op_overhead` (matrix kinds
///   to the measured matrix product).
/// - bytes ÷ byte_rate: a matrix kind's operands and result, by the byte, where calibrate fitted that term (`OpRate`).
/// - `add`: a linear layer's bias add (of a parameter) is done inside the GEMM forward and is column sums backward; a
///   residual add is a pass forward and hands its gradient through backward. calibrate fits `add` forward over the
///   residual adds and backward over the bias adds; the other direction of each is its fixed cost (`fixedCost`).
/// - threads: the rank's share of its host's cores (cores ÷ ranks per host); between one and every core, the kind's
///   measured speed-up on every core, by linear steps. With more ranks than cores an op runs at one thread's speed
///   while it runs, and the step model bounds the step by the host's total work over its cores (a pipeline rank that
///   waits leaves its core to the others).
/// - shared_speed: what ranks computing at once on one host lose to each other (measured), when a host runs several.
/// Precision does not change the rates: the engine computes in FP32 and rounds to BF16/CFP8 in separate ops, which
/// the graph holds and this model prices like any other.
public struct CPUCostModel: OpCostModel {
    public let cpu: CPUSpec

    public init(cpu: CPUSpec) { self.cpu = cpu }

    public func peakFlops(_ precision: Precision) -> Double {
        cpu.rate(max(cpu.ops["conv2d"]?.forwardRate ?? 0, cpu.ops["matmul"]?.forwardRate ?? 0, 1))
    }

    public func cost(_ work: OpWork, precision: Precision) -> OpCost {
        let measured = cpu.ops[work.kind.rawValue]
        if work.isFree && measured == nil { return .zero }
        // an add does work in one direction only: forward a residual's pass, backward a bias's column sums; two
        // gradients summed are an addition of two tensors, as a residual's forward pass
        var work = work
        if work.accumulates { work.phase = .forward; work.weightBytes = 0 }
        else if work.kind == .add && (work.weightBytes > 0) != (work.phase == .backward) { return fixedCost(work, measured) }
        let matrix = work.kind.isMatrixOp
        let backward = work.phase == .backward
        let x = matrix ? work.flops : work.bytesRead + work.bytesWritten
        var rate = cpu.streamBandwidth, overhead = cpu.opOverhead, byteRate: Double? = nil
        var speedup = max(1, Double(cpu.cores) * cpu.threadEfficiency)
        if let r = measured {
            if backward, let b = r.backwardRate {
                rate = b; overhead = r.backwardOverhead ?? cpu.opOverhead; speedup = r.backwardSpeedup; byteRate = r.backwardByteRate
            } else { rate = r.forwardRate; overhead = r.forwardOverhead; speedup = r.forwardSpeedup; byteRate = r.forwardByteRate }
        } else if matrix, let r = cpu.ops["matmul"] ?? cpu.ops["conv2d"] {
            rate = backward ? (r.backwardRate ?? r.forwardRate) : r.forwardRate
            byteRate = backward && r.backwardRate != nil ? r.backwardByteRate : r.forwardByteRate
        }
        // a matrix kind's operands and result by the byte, where calibrate fitted that term (OpRate)
        let bytes = matrix ? (byteRate.map { (work.bytesRead + work.bytesWritten) / $0 } ?? 0) : 0
        let one = overhead + x / rate + bytes
        // threads: between one and every core, the measured speed-up by linear steps; below one, a share of a core
        let t = cpu.threadsPerRank
        // (more ranks than cores: each op at one thread's speed; the step model bounds the host's total work by its cores)
        var seconds = t > 1 ? one / (1 + (speedup - 1) * (min(t, Double(cpu.cores)) - 1) / Double(max(cpu.cores - 1, 1))) : one
        if cpu.ranksPerHost > 1 { seconds /= cpu.sharedSpeed }
        let latency = min(seconds, overhead)
        let compute = matrix ? seconds - latency : 0, memory = matrix ? 0 : seconds - latency
        let bound: Bound = latency >= seconds - latency ? .latency : (matrix ? .compute : .hbm)
        return OpCost(seconds: seconds, bound: bound, computeSeconds: compute, memorySeconds: memory, latencySeconds: latency,
                      utilisation: seconds > 0 ? work.flops / seconds / peakFlops(precision) : 0)
    }

    /// An add in the direction where it does no work of its own: a linear layer's bias add forward (the engine writes
    /// the bias into the GEMM's output before the product: the product's measured time holds it) and a residual add
    /// backward (its gradient handed through). calibrate fits `add` over the other direction of each.
    func fixedCost(_ work: OpWork, _ measured: OpRate?) -> OpCost {
        let overhead = work.phase == .backward ? (measured?.backwardOverhead ?? cpu.opOverhead) : (measured?.forwardOverhead ?? cpu.opOverhead)
        let seconds = cpu.ranksPerHost > 1 ? overhead / cpu.sharedSpeed : overhead
        return OpCost(seconds: seconds, bound: .latency, computeSeconds: 0, latencySeconds: seconds, utilisation: 0)
    }
}
