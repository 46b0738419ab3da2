import DojoCompiler
import DojoGraph
import DojoMachine
import DojoSim
import Testing

/// The CPU model's matrix products: FLOPs at the fitted rate, and, where calibrate fitted one, the operands and result
/// by the byte (`OpRate.forwardByteRate`), over the rank's threads.
@Suite struct CPUCostModelTests {
    static func host(byteRate: Double?) -> CPUCostModel {
        var spec = CPUSpec(model: "t", cores: 2, ranksPerHost: 1, memoryBytes: 8e9, threadEfficiency: 0.9,
                           streamBandwidth: 2e10, opOverhead: 1e-6)
        var rate = OpRate(forwardRate: 1e11, forwardOverhead: 5e-6, backwardRate: 1.2e11, backwardOverhead: 7e-6)
        rate.forwardSpeedup = 1.8
        rate.backwardSpeedup = 1.9
        rate.forwardByteRate = byteRate
        rate.backwardByteRate = byteRate.map { $0 / 2 }
        spec.ops["matmul"] = rate
        return CPUCostModel(cpu: spec)
    }

    /// A 16-row layer with a 1024 × 2048 weight (the occupancy network's lift): 67 MFLOP over 8.4 MB.
    static let lift = OpWork(kind: .matmul, phase: .forward, gemm: GEMMShape(batch: 1, m: 16, n: 1024, k: 2048),
                             flops: 2 * 16 * 1024 * 2048, bytesRead: Double(16 * 2048 + 1024 * 2048) * 4,
                             bytesWritten: 16 * 1024 * 4)

    @Test func bytesPricedBesideFLOPs() {
        let without = Self.host(byteRate: nil).cost(Self.lift, precision: .fp32).seconds
        let with = Self.host(byteRate: 2e10).cost(Self.lift, precision: .fp32).seconds
        let one = 5e-6 + Self.lift.flops / 1e11
        #expect(abs(without - one / 1.8) < 1e-12)
        let bytes = Self.lift.bytesRead + Self.lift.bytesWritten
        #expect(abs(with - (one + bytes / 2e10) / 1.8) < 1e-12)
        // backward: its own byte rate
        var b = Self.lift
        b.phase = .backward
        let back = Self.host(byteRate: 2e10).cost(b, precision: .fp32).seconds
        #expect(abs(back - (7e-6 + b.flops / 1.2e11 + bytes / 1e10) / 1.9) < 1e-12)
        // not a matrix kind: its rate is already in bytes, no byte term
        let add = OpWork(kind: .add, phase: .forward, gemm: nil, flops: 0, bytesRead: 8e6, bytesWritten: 4e6)
        #expect(Self.host(byteRate: 2e10).cost(add, precision: .fp32).seconds == Self.host(byteRate: nil).cost(add, precision: .fp32).seconds)
    }
}
