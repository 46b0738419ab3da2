/// Bounds on the sizes and counts a user can give — flags, machine files, `--set`, sweep ranges — each with its reason,
/// in one place, so every entry point refuses the same impossible values with the same words instead of overflowing
/// (issue 12). Beyond them, products of counts and per-device sizes leave the range where Int arithmetic and Double
/// precision hold.
public enum Limits {
    /// Devices (D1 dies, GPUs, CPU ranks) in one machine: 2^32, about 4.3 billion (1.4 million ExaPODs).
    public static let devices = 1 << 32
    /// Samples in one global batch: 2^40, about 1.1 × 10^12.
    public static let batch = 1 << 40

    /// Tensor-parallel or pipeline-parallel degree: 4096 (no published run splits a layer or a model that far).
    public static let modelParallel = 4096
    /// Interleaved model chunks per pipeline stage: 1024.
    public static let virtualStages = 1024

    /// The product of counts, saturating at Int.max instead of trapping: for checks and messages about counts
    /// that are each bounded but whose product need not be.
    public static func product(_ xs: Int...) -> Int {
        var r = 1
        for x in xs {
            let (m, o) = r.multipliedReportingOverflow(by: x)
            if o { return Int.max }
            r = m
        }
        return r
    }

    /// A count that must lie in `1...max`; the message names it, the bound and why.
    public static func check(_ value: Int, _ what: String, max: Int, why: String) throws(LimitError) {
        guard value >= 1 else { throw LimitError(description: "\(what) must be at least 1, got \(value)") }
        guard value <= max else { throw LimitError(description: "\(what) is \(value), more than \(max) (\(why))") }
    }
}

public struct LimitError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(description: String) { self.description = description }
}
