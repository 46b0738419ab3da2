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

    /// `add` does work in one direction only: a linear layer's bias add inside the GEMM forward (its fixed cost) and as
    /// column sums backward (add's fitted backward rate); a residual add as a pass forward (the forward rate) and its
    /// gradient handed through backward (its fixed cost).
    @Test func addsPricedWhereTheyWork() {
        var spec = CPUSpec(model: "t", cores: 2, ranksPerHost: 1, memoryBytes: 8e9, threadEfficiency: 0.9,
                           streamBandwidth: 2e10, opOverhead: 1e-6)
        var add = OpRate(forwardRate: 3e10, forwardOverhead: 2e-6, backwardRate: 9e10, backwardOverhead: 3e-6)
        add.forwardSpeedup = 1.5
        add.backwardSpeedup = 1.2
        spec.ops["add"] = add
        let model = CPUCostModel(cpu: spec)
        let rows = 800.0, columns = 768.0, bytes = rows * columns * 4
        let bias = OpWork(kind: .add, phase: .forward, gemm: nil, flops: rows * columns, bytesRead: bytes + columns * 4,
                          bytesWritten: bytes, weightBytes: columns * 4)
        #expect(model.cost(bias, precision: .fp32).seconds == 2e-6)
        var biasBack = bias
        biasBack.phase = .backward
        let sums = 3e-6 + (biasBack.bytesRead + biasBack.bytesWritten) / 9e10
        #expect(abs(model.cost(biasBack, precision: .fp32).seconds - sums / 1.2) < 1e-15)
        let residual = OpWork(kind: .add, phase: .forward, gemm: nil, flops: rows * columns, bytesRead: 2 * bytes, bytesWritten: bytes)
        #expect(abs(model.cost(residual, precision: .fp32).seconds - (2e-6 + 3 * bytes / 3e10) / 1.5) < 1e-15)
        var residualBack = residual
        residualBack.phase = .backward
        #expect(model.cost(residualBack, precision: .fp32).seconds == 3e-6)
        // two gradients of one tensor summed (under whichever op's backward, with its weights or not): an addition
        var summed = residualBack
        summed.accumulates = true
        summed.weightBytes = columns * 4
        #expect(model.cost(summed, precision: .fp32).seconds == model.cost(residual, precision: .fp32).seconds)
    }
}
