import DojoCompiler
import DojoGraph

/// What limits an op or a step: the resource whose time is the longest.
public enum Bound: String, Sendable, Codable, CaseIterable {
    /// Matrix unit / tensor cores, or the SIMD unit.
    case compute
    /// A node's SRAM load/store ports (Dojo).
    case sram
    /// Moving operands and partial sums over the on-chip 2D mesh (Dojo).
    case mesh
    /// Spilling to / streaming from DIP HBM (Dojo) or GPU HBM.
    case hbm
    /// Chip-to-chip links and network (collectives).
    case network
    /// Fixed latencies: kernel launch, mesh diameter, synchronisation.
    case latency
    /// The host feeding input (PCIe, data loading).
    case host
}

/// The predicted cost of one op on one device.
public struct OpCost: Sendable, Equatable, Codable {
    /// Time of the op in seconds, with compute and transfers overlapped as the model allows.
    public var seconds: Double
    public var bound: Bound
    /// The time each resource alone would take, seconds (for breakdowns).
    public var computeSeconds: Double
    public var memorySeconds: Double
    public var transferSeconds: Double
    public var latencySeconds: Double
    /// Achieved FLOP/s over the device's peak FLOP/s at the step's precision (0…1).
    public var utilisation: Double

    public init(seconds: Double, bound: Bound, computeSeconds: Double, memorySeconds: Double = 0,
                transferSeconds: Double = 0, latencySeconds: Double = 0, utilisation: Double) {
        self.seconds = seconds; self.bound = bound; self.computeSeconds = computeSeconds
        self.memorySeconds = memorySeconds; self.transferSeconds = transferSeconds
        self.latencySeconds = latencySeconds; self.utilisation = utilisation
    }

    public static let zero = OpCost(seconds: 0, bound: .latency, computeSeconds: 0, utilisation: 0)
}

/// Prices one op on one device (a D1 die, or one GPU). Pure: the same work gives the same cost.
public protocol OpCostModel: Sendable {
    /// Peak FLOP/s of the device for matrix work at `precision`.
    func peakFlops(_ precision: Precision) -> Double
    /// The cost of `work` on one device at `precision`.
    func cost(_ work: OpWork, precision: Precision) -> OpCost
}
