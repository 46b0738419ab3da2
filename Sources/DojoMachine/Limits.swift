/// Bounds on the sizes and counts a user can give — flags, machine files, `--set`, sweep ranges — each with its reason,
/// in one place, so every entry point refuses the same impossible values with the same words instead of overflowing
/// (issue 12). Beyond them, products of counts and per-device sizes leave the range where Int arithmetic and Double
/// precision hold.
public enum Limits {
    /// Devices (D1 dies, GPUs, CPU ranks) in one machine: 2^32, about 4.3 billion (1.4 million ExaPODs).
    public static let devices = 1 << 32
    /// Samples in one global batch: 2^40, about 1.1 × 10^12.
    public static let batch = 1 << 40

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
