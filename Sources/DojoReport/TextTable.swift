// Aligned text tables for the command line: a header, a separator line, and rows; text columns left,
// number columns right.
import Foundation

/// A table of text cells rendered with aligned columns:
/// ```
/// model     params  step time
/// --------  ------  ---------
/// resnet18  11.7 M    41.2 ms
/// ```
public struct TextTable: Sendable, Equatable {
    public enum Alignment: Sendable, Equatable {
        case left, right
        /// Right when every non-empty cell of the column reads as a number ("9,812", "-0.5", "84.1%",
        /// "3.20 TFLOP/s"), left otherwise.
        case auto
    }

    public var headers: [String]
    public var alignments: [Alignment]
    public var rows: [[String]]
    /// Spaces between columns.
    public var gap: Int

    public init(headers: [String], alignments: [Alignment]? = nil, gap: Int = 2) {
        self.headers = headers
        self.alignments = alignments ?? Array(repeating: .auto, count: headers.count)
        self.rows = []
        self.gap = gap
    }

    /// Appends a row; missing cells are empty, extra cells add columns without a header.
    public mutating func addRow(_ cells: [String]) { rows.append(cells) }

    /// Appends a row from any values, each converted with `String(describing:)`.
    public mutating func addRow(_ cells: Any...) { rows.append(cells.map { String(describing: $0) }) }

    /// True when `cell` starts like a number: an optional sign or currency, then a digit (or a point and a digit).
    public static func looksNumeric(_ cell: String) -> Bool {
        var chars = Substring(cell.trimmingCharacters(in: .whitespaces))
        if chars.first == "-" || chars.first == "+" || chars.first == "−" { chars = chars.dropFirst() }
        if chars.first == "$" { chars = chars.dropFirst() }
        if chars.first == "." { chars = chars.dropFirst() }
        guard let c = chars.first else { return false }
        return c.isASCII && c.isNumber
    }

    /// The resolved alignment of each column.
    public func columnAlignments() -> [Alignment] {
        let count = max(headers.count, rows.map(\.count).max() ?? 0)
        return (0..<count).map { col in
            let a = col < alignments.count ? alignments[col] : .auto
            guard a == .auto else { return a }
            let cells = rows.compactMap { col < $0.count ? $0[col] : nil }.filter { !$0.isEmpty }
            return !cells.isEmpty && cells.allSatisfy(TextTable.looksNumeric) ? .right : .left
        }
    }

    /// The table as lines of text (each ending in "\n"); no trailing spaces.
    public func render() -> String {
        let aligns = columnAlignments()
        let count = aligns.count
        guard count > 0 else { return "" }
        func cell(_ row: [String], _ col: Int) -> String { col < row.count ? row[col] : "" }
        var widths = [Int](repeating: 0, count: count)
        for row in [headers] + rows {
            for col in 0..<count { widths[col] = max(widths[col], cell(row, col).count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for col in 0..<count {
                let text = cells[col]
                let pad = String(repeating: " ", count: widths[col] - text.count)
                parts.append(aligns[col] == .right ? pad + text : text + pad)
            }
            var s = parts.joined(separator: String(repeating: " ", count: gap))
            while s.last == " " { s.removeLast() }
            return s + "\n"
        }
        var out = ""
        if !headers.isEmpty {
            out += line((0..<count).map { cell(headers, $0) })
            out += line(widths.map { String(repeating: "-", count: $0) })
        }
        for row in rows { out += line((0..<count).map { cell(row, $0) }) }
        return out
    }
}
