/// Quantities with units, as machine files write them.
///
/// A value is a plain number in base units (bytes, B/s, Hz, FLOP/s, W, s) or a number followed by a unit, with or
/// without a space: `1.25MB`, `1.25 MiB`, `2GHz`, `128GB/s`, `400Gb/s`, `362 TFLOP/s`, `15kW`, `100ns`.
/// Prefixes are decimal as Tesla and NVIDIA use them (k = 1e3, M = 1e6, G = 1e9, T = 1e12, P = 1e15, E = 1e18);
/// binary prefixes are accepted too (KiB = 1024, MiB, GiB, TiB, PiB). A lower-case `b` means bits (`Gb/s`, `Gbps`):
/// the value is divided by 8. Time also takes m, u, µ, n.
public enum Dimension: String, Sendable, CaseIterable {
    case bytes, bytesPerSecond = "bytes/s", hertz = "Hz", flopsPerSecond = "FLOP/s", watts = "W", seconds = "s"

    /// Base unit spellings and their factor to base units (bits/s → bytes/s is 1/8).
    var bases: [(String, Double)] {
        switch self {
        case .bytes: return [("B", 1)]
        case .bytesPerSecond: return [("B/s", 1), ("Bps", 1), ("b/s", 0.125), ("bps", 0.125), ("bit/s", 0.125)]
        case .hertz: return [("Hz", 1)]
        case .flopsPerSecond: return [("FLOP/s", 1), ("FLOPS", 1), ("flop/s", 1), ("flops", 1)]
        case .watts: return [("W", 1)]
        case .seconds: return [("s", 1)]
        }
    }

    /// An example for error messages.
    var example: String {
        switch self {
        case .bytes: return "bytes (e.g. 1.25MB, 32 GiB)"
        case .bytesPerSecond: return "bytes per second (e.g. 128GB/s, 400Gb/s)"
        case .hertz: return "a frequency (e.g. 2GHz)"
        case .flopsPerSecond: return "FLOP/s (e.g. 362 TFLOP/s)"
        case .watts: return "watts (e.g. 15kW)"
        case .seconds: return "seconds (e.g. 100ns, 1.3us)"
        }
    }
}

private let decimalPrefixes: [String: Double] = [
    "": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 1024, "Mi": 1_048_576, "Gi": 1_073_741_824, "Ti": 1_099_511_627_776, "Pi": 1_125_899_906_842_624,
]
private let smallPrefixes: [String: Double] = ["m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12]

/// Parses `text` as a quantity of `dimension`; nil when it is not one (the caller reports the key path).
public func parseQuantity(_ text: String, _ dimension: Dimension) -> Double? {
    let s = text.trimmingSpaces()
    guard !s.isEmpty else { return nil }
    // The longest prefix that is a number: "1.1EFLOP/s" → 1.1 and "EFLOP/s"; "1e6" → 1e6.
    let chars = Array(s)
    var split = 0
    var number = 0.0
    for end in stride(from: chars.count, through: 1, by: -1) {
        let head = String(chars[0..<end])
        if head.last == " " { continue }
        if let v = Double(head), head.first != "+" || head.count > 1 {
            split = end
            number = v
            break
        }
    }
    guard split > 0, number.isFinite else { return nil }
    let unit = String(chars[split...]).trimmingSpaces()
    if unit.isEmpty { return number }
    for (base, factor) in dimension.bases where unit.hasSuffix(base) {
        let prefix = String(unit.dropLast(base.count))
        if let p = decimalPrefixes[prefix] { return number * p * factor }
        if dimension == .seconds, let p = smallPrefixes[prefix] { return number * p * factor }
    }
    return nil
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
