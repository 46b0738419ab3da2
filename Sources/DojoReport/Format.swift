// Number formatting shared by every report: durations, thousands separators, SI and binary units.
// All pure functions of their inputs; no locale (output is the same on every machine).
import Foundation

/// A duration as `m:ss` under an hour and `h:mm:ss` from an hour up (rounded to whole seconds);
/// `--:--` for a negative, NaN or infinite input. `formatDuration(12)` → "0:12", `formatDuration(3725)` → "1:02:05".
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0, seconds < 1e12 else { return "--:--" }
    let total = Int(seconds.rounded())
    let h = total / 3600, m = (total % 3600) / 60, s = total % 60
    let ss = s < 10 ? "0\(s)" : "\(s)"
    if h > 0 {
        let mm = m < 10 ? "0\(m)" : "\(m)"
        return "\(h):\(mm):\(ss)"
    }
    return "\(m):\(ss)"
}

/// An integer with a separator every three digits: `formatThousands(9812)` → "9,812", `-1234567` → "-1,234,567".
public func formatThousands(_ value: Int, separator: String = ",") -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out += separator }
        out.append(c)
    }
    return value < 0 ? "-" + out : out
}

/// A fixed-point number with `decimals` digits after the point (no locale), e.g. `formatFixed(84.06, 1)` → "84.1".
public func formatFixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
    let s = String(format: "%.\(max(0, decimals))f", value)
    // "-0.0" reads badly: drop the sign of a value that rounds to zero.
    if s.hasPrefix("-"), s.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(s.dropFirst()) }
    return s
}

/// `value` with `significant` significant digits (none dropped before the point): 3.2 → "3.20", 98.12 → "98.1", 512 → "512".
func formatSignificant(_ value: Double, _ significant: Int) -> String {
    guard value != 0, value.isFinite else { return formatFixed(value, max(0, significant - 1)) }
    let magnitude = Int(floor(log10(abs(value))))
    let decimals = max(0, significant - 1 - magnitude)
    // Rounding may add a digit (9.996 → "10.00"): format again with one decimal fewer.
    let first = formatFixed(value, decimals)
    if decimals > 0, let v = Double(first), abs(v) >= pow(10, Double(magnitude + 1)) {
        return formatFixed(value, decimals - 1)
    }
    return first
}

private let siPrefixes: [(exponent: Int, symbol: String)] = [
    (-24, "y"), (-21, "z"), (-18, "a"), (-15, "f"), (-12, "p"), (-9, "n"), (-6, "µ"), (-3, "m"),
    (0, ""), (3, "k"), (6, "M"), (9, "G"), (12, "T"), (15, "P"), (18, "E"), (21, "Z"), (24, "Y"),
]

/// A value with an SI prefix and three significant digits: `formatSI(3.2e12, unit: "FLOP/s")` → "3.20 TFLOP/s",
/// `formatSI(0.00042, unit: "s")` → "420 µs", `formatSI(0, unit: "W")` → "0 W".
public func formatSI(_ value: Double, unit: String = "", significant: Int = 3) -> String {
    let space = unit.isEmpty ? "" : " "
    guard value.isFinite else { return formatFixed(value, 0) + space + unit }
    if value == 0 { return "0" + space + unit }
    var index = siPrefixes.firstIndex { $0.exponent == 0 }!
    var scaled = value
    while abs(scaled) >= 1000, index < siPrefixes.count - 1 { scaled /= 1000; index += 1 }
    while abs(scaled) < 1, index > 0 { scaled *= 1000; index -= 1 }
    // Rounding can carry into the next prefix (999.7 → "1000"): move up one.
    if abs(Double(formatSignificant(scaled, significant)) ?? 0) >= 1000, index < siPrefixes.count - 1 {
        scaled /= 1000
        index += 1
    }
    return formatSignificant(scaled, significant) + space + siPrefixes[index].symbol + unit
}

/// A byte count with binary prefixes and three significant digits: `formatBytes(1_610_612_736)` → "1.50 GiB",
/// `formatBytes(512)` → "512 B", `formatBytes(1536)` → "1.50 KiB".
public func formatBytes(_ bytes: Int) -> String { formatBytes(Double(bytes)) }

/// A byte count with binary prefixes (KiB, MiB, GiB, TiB, PiB, EiB) and three significant digits.
public func formatBytes(_ bytes: Double) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    guard bytes.isFinite else { return formatFixed(bytes, 0) + " B" }
    var scaled = bytes
    var index = 0
    while abs(scaled) >= 1024, index < units.count - 1 { scaled /= 1024; index += 1 }
    if index == 0 { return "\(Int(scaled.rounded())) B" }
    if abs(Double(formatSignificant(scaled, 3)) ?? 0) >= 1024, index < units.count - 1 {
        scaled /= 1024
        index += 1
    }
    return formatSignificant(scaled, 3) + " " + units[index]
}

/// A fraction as a percentage with `decimals` digits: `formatPercent(0.8412)` → "84.1%".
public func formatPercent(_ fraction: Double, decimals: Int = 1) -> String {
    formatFixed(fraction * 100, decimals) + "%"
}
