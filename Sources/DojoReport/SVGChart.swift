// Charts as standalone SVG text: line charts (loss curves, throughput sweeps) and grouped bar charts
// (Dojo vs GPU comparisons). No dependencies; the output opens in any browser.
import Foundation

// MARK: Ticks

/// Tick positions for an axis from `lower` to `upper`: steps of 1, 2 or 5 × 10^k, at most about `maxCount`
/// intervals, the first tick ≤ `lower` and the last ≥ `upper`. A zero-width range is widened first.
public func niceTicks(_ lower: Double, _ upper: Double, maxCount: Int = 6) -> [Double] {
    guard lower.isFinite, upper.isFinite else { return [0, 1] }
    var lo = min(lower, upper), hi = max(lower, upper)
    if hi - lo < max(abs(lo), abs(hi)) * 1e-12 || hi == lo {
        let pad = lo == 0 ? 1 : abs(lo) * 0.1
        lo -= pad
        hi += pad
    }
    let step = niceStep((hi - lo) / Double(max(1, maxCount)))
    let first = (lo / step).rounded(.down), last = (hi / step).rounded(.up)
    var ticks: [Double] = []
    var k = first
    while k <= last + 0.5 {
        ticks.append(cleaned(k * step, step: step))
        k += 1
    }
    return ticks
}

/// The smallest of 1, 2, 5 × 10^k that is ≥ `rough`.
public func niceStep(_ rough: Double) -> Double {
    guard rough > 0, rough.isFinite else { return 1 }
    let magnitude = pow(10, (log10(rough)).rounded(.down))
    let fraction = rough / magnitude
    let nice: Double = fraction <= 1 + 1e-9 ? 1 : fraction <= 2 + 1e-9 ? 2 : fraction <= 5 + 1e-9 ? 5 : 10
    return nice * magnitude
}

/// Removes floating-point noise (0.30000000000000004 → 0.3) by rounding to a fraction of the step.
private func cleaned(_ v: Double, step: Double) -> Double {
    let decimals = max(0, -Int((log10(step)).rounded(.down)) + 1)
    guard decimals < 15 else { return v }
    let scale = pow(10, Double(decimals))
    let r = (v * scale).rounded() / scale
    return r == 0 ? 0 : r
}

/// Ticks for a log axis: every power of ten from below `lower` to above `upper` (both > 0); when the range
/// spans fewer than three decades, 2 and 5 × 10^k in between too, from the last tick ≤ `lower` to the first
/// ≥ `upper` (when that leaves at least four ticks).
public func logTicks(_ lower: Double, _ upper: Double) -> [Double] {
    guard lower > 0, upper > 0, lower.isFinite, upper.isFinite else { return [1, 10] }
    let lo = (log10(min(lower, upper))).rounded(.down)
    var hi = (log10(max(lower, upper))).rounded(.up)
    if hi == lo { hi += 1 }
    var ticks: [Double] = []
    let fine = hi - lo < 3
    var e = lo
    while e <= hi {
        let p = pow(10, e)
        ticks.append(p)
        if fine, e < hi { ticks.append(2 * p); ticks.append(5 * p) }
        e += 1
    }
    // With 2s and 5s, end at the first tick beyond the data rather than at the next power of ten.
    if fine {
        let first = ticks.lastIndex { $0 <= min(lower, upper) * (1 + 1e-12) } ?? 0
        let last = ticks.firstIndex { $0 >= max(lower, upper) * (1 - 1e-12) } ?? ticks.count - 1
        if last - first >= 3 { return Array(ticks[first...last]) }
    }
    return ticks
}

/// The text of a tick label: as few decimals as the step needs; SI prefixes (k, M, G, T) from 10^5 up;
/// exponent form for tiny values.
public func formatTick(_ value: Double, step: Double) -> String {
    if value == 0 { return "0" }
    let maxAbs = abs(value)
    if maxAbs >= 1e5 || (step >= 1e5) {
        let s = formatSI(value, unit: "", significant: 3)
        // Trim trailing zeros of the mantissa: "2.00M" → "2M", "2.50M" → "2.5M".
        return trimZeros(s)
    }
    if maxAbs < 1e-3 {
        let exponent = Int(log10(maxAbs).rounded(.down))
        let mantissa = value / pow(10, Double(exponent))
        return trimZeros(formatFixed(mantissa, 2)) + "e\(exponent)"
    }
    let decimals = step > 0 ? max(0, -Int((log10(step) + 1e-9).rounded(.down))) : 2
    let text = formatFixed(value, min(decimals, 6))
    if abs(value) >= 1000, decimals == 0 { return formatThousands(Int(value.rounded())) }
    return text
}

private func trimZeros(_ s: String) -> String {
    // Split number and suffix.
    var number = ""
    var suffix = Substring(s)
    while let c = suffix.first, c.isNumber || c == "." || c == "-" { number.append(c); suffix = suffix.dropFirst() }
    if number.contains(".") {
        while number.hasSuffix("0") { number.removeLast() }
        if number.hasSuffix(".") { number.removeLast() }
    }
    return number + suffix
}

/// Escapes text for XML content and attribute values.
public func xmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        case _ where c.value < 0x20 && c != "\n" && c != "\t": out += " " // not allowed in XML 1.0
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// A colour-blind-friendly default palette (Tableau 10).
public let chartPalette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

private func num(_ v: Double) -> String {
    let s = formatFixed(v, 2)
    var t = Substring(s)
    if t.contains(".") {
        while t.hasSuffix("0") { t = t.dropLast() }
        if t.hasSuffix(".") { t = t.dropLast() }
    }
    return String(t)
}

/// An axis label with its unit: "loss", "time (s)".
private func axisTitle(_ label: String, _ unit: String?) -> String {
    guard let unit, !unit.isEmpty else { return label }
    return label.isEmpty ? unit : "\(label) (\(unit))"
}

// MARK: Line chart

/// One line of a chart.
public struct ChartSeries: Sendable {
    public enum Axis: Sendable, Equatable { case left, right }
    public var name: String
    /// A CSS colour; nil picks the next colour of `chartPalette`.
    public var color: String?
    public var points: [(x: Double, y: Double)]
    public var axis: Axis
    public var dashed: Bool
    /// Draw a dot at every point (default: when the series has at most 40 points).
    public var markers: Bool?

    public init(name: String, color: String? = nil, points: [(x: Double, y: Double)], axis: Axis = .left,
                dashed: Bool = false, markers: Bool? = nil) {
        self.name = name
        self.color = color
        self.points = points
        self.axis = axis
        self.dashed = dashed
        self.markers = markers
    }

    public init(name: String, color: String? = nil, x: [Double], y: [Double], axis: Axis = .left, dashed: Bool = false) {
        self.init(name: name, color: color, points: Array(zip(x, y)).map { (x: $0.0, y: $0.1) }, axis: axis, dashed: dashed)
    }
}

/// The numeric range and ticks of one axis.
public struct AxisScale: Sendable, Equatable {
    public var lower: Double
    public var upper: Double
    public var ticks: [Double]
    public var log: Bool

    /// Where `value` falls between lower (0) and upper (1); nil when it cannot be shown (≤ 0 on a log axis).
    public func fraction(_ value: Double) -> Double? {
        guard value.isFinite else { return nil }
        if log {
            guard value > 0 else { return nil }
            return (log10(value) - log10(lower)) / (log10(upper) - log10(lower))
        }
        return (value - lower) / (upper - lower)
    }

    static func linear(_ values: [Double], includeZero: Bool = false, fixed: ClosedRange<Double>? = nil) -> AxisScale {
        var lo = values.min() ?? 0, hi = values.max() ?? 1
        if includeZero { lo = min(lo, 0); hi = max(hi, 0) }
        if let fixed {
            let ticks = niceTicks(fixed.lowerBound, fixed.upperBound).filter {
                $0 >= fixed.lowerBound - 1e-12 * abs(fixed.upperBound - fixed.lowerBound)
                    && $0 <= fixed.upperBound + 1e-12 * abs(fixed.upperBound - fixed.lowerBound)
            }
            return AxisScale(lower: fixed.lowerBound, upper: fixed.upperBound, ticks: ticks, log: false)
        }
        let ticks = niceTicks(lo, hi)
        return AxisScale(lower: ticks.first!, upper: ticks.last!, ticks: ticks, log: false)
    }

    static func logarithmic(_ values: [Double]) -> AxisScale {
        let positive = values.filter { $0 > 0 }
        let ticks = logTicks(positive.min() ?? 1, positive.max() ?? 10)
        return AxisScale(lower: ticks.first!, upper: ticks.last!, ticks: ticks, log: true)
    }

    var step: Double { ticks.count > 1 ? ticks[1] - ticks[0] : max(abs(upper - lower), 1) }

    func label(_ v: Double) -> String {
        log ? formatTick(v, step: v) : formatTick(v, step: step)
    }
}

/// Pixel geometry of a chart: the plot rectangle and the scales; maps data to SVG coordinates.
public struct ChartLayout: Sendable {
    public var width: Double
    public var height: Double
    /// The plot area: left, top, width, height in pixels.
    public var plotX: Double
    public var plotY: Double
    public var plotWidth: Double
    public var plotHeight: Double
    public var x: AxisScale
    public var y: AxisScale
    public var y2: AxisScale?

    /// The pixel position of a data point; nil when it cannot be drawn (NaN, infinite, ≤ 0 on a log axis).
    public func pixel(x xv: Double, y yv: Double, axis: ChartSeries.Axis = .left) -> (x: Double, y: Double)? {
        let scale = axis == .right ? (y2 ?? y) : y
        guard let fx = x.fraction(xv), let fy = scale.fraction(yv) else { return nil }
        return (plotX + fx * plotWidth, plotY + plotHeight - fy * plotHeight)
    }
}

/// A line chart: several series over a shared x axis, a left y axis (linear or log), an optional right y
/// axis, grid lines, a legend, a title and axis titles with units.
public struct SVGChart: Sendable {
    public var title: String
    public var xLabel: String
    public var xUnit: String?
    public var yLabel: String
    public var yUnit: String?
    public var logY: Bool
    /// The right axis, used by series with `axis: .right` (e.g. accuracy in % next to a loss).
    public var y2Label: String?
    public var y2Unit: String?
    /// Fixed ranges instead of ones fitted to the data.
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?
    public var y2Range: ClosedRange<Double>?
    public var series: [ChartSeries]

    public init(title: String, xLabel: String = "", xUnit: String? = nil, yLabel: String = "", yUnit: String? = nil,
                logY: Bool = false, y2Label: String? = nil, y2Unit: String? = nil, series: [ChartSeries] = []) {
        self.title = title
        self.xLabel = xLabel
        self.xUnit = xUnit
        self.yLabel = yLabel
        self.yUnit = yUnit
        self.logY = logY
        self.y2Label = y2Label
        self.y2Unit = y2Unit
        self.series = series
    }

    public mutating func addSeries(_ s: ChartSeries) { series.append(s) }

    public mutating func addSeries(name: String, color: String? = nil, points: [(x: Double, y: Double)],
                                   axis: ChartSeries.Axis = .left, dashed: Bool = false) {
        series.append(ChartSeries(name: name, color: color, points: points, axis: axis, dashed: dashed))
    }

    private var hasRightAxis: Bool { y2Label != nil || series.contains { $0.axis == .right } }

    /// The geometry for a given size: margins, then scales fitted to the finite points.
    public func layout(width: Int = 720, height: Int = 400) -> ChartLayout {
        func finite(_ axis: ChartSeries.Axis?) -> [(x: Double, y: Double)] {
            series.filter { axis == nil || $0.axis == axis }.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        }
        let all = finite(nil)
        let left = finite(.left).filter { !logY || $0.y > 0 }
        let right = finite(.right)
        let xs = all.filter { !logY || $0.y > 0 || series.isEmpty }.map(\.x)
        // The x axis spans the data exactly (a loss curve ends at its last step); y is widened to nice ticks.
        let xTight: ClosedRange<Double>? = {
            guard let lo = xs.min(), let hi = xs.max(), hi > lo else { return nil }
            return lo...hi
        }()
        let xScale = AxisScale.linear(xs, fixed: xRange ?? xTight)
        let yScale = logY ? AxisScale.logarithmic(left.map(\.y)) : AxisScale.linear(left.map(\.y), fixed: yRange)
        let y2Scale = hasRightAxis ? AxisScale.linear(right.map(\.y), fixed: y2Range) : nil

        let top = 34.0 + (legendEntries.isEmpty ? 0 : 22)
        let leftMargin = 72.0
        let rightMargin = hasRightAxis ? 72.0 : 24.0
        let bottom = 52.0
        return ChartLayout(width: Double(width), height: Double(height), plotX: leftMargin, plotY: top,
                           plotWidth: max(10, Double(width) - leftMargin - rightMargin),
                           plotHeight: max(10, Double(height) - top - bottom),
                           x: xScale, y: yScale, y2: y2Scale)
    }

    private var legendEntries: [(name: String, color: String, dashed: Bool)] {
        series.enumerated().filter { !$0.element.name.isEmpty }.map {
            ($0.element.name, color(of: $0.offset), $0.element.dashed)
        }
    }

    private func color(of index: Int) -> String {
        series[index].color ?? chartPalette[index % chartPalette.count]
    }

    /// The chart as a standalone SVG document.
    public func svg(width: Int = 720, height: Int = 400) -> String {
        let l = layout(width: width, height: height)
        var s = svgHeader(width: width, height: height, title: title)
        let right = l.plotX + l.plotWidth, bottom = l.plotY + l.plotHeight

        // Grid and ticks.
        s += "<g class=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\">\n"
        for t in l.x.ticks { if let f = l.x.fraction(t), f >= -1e-9, f <= 1 + 1e-9 {
            let px = l.plotX + f * l.plotWidth
            s += "<line x1=\"\(num(px))\" y1=\"\(num(l.plotY))\" x2=\"\(num(px))\" y2=\"\(num(bottom))\"/>\n"
        } }
        for t in l.y.ticks { if let f = l.y.fraction(t), f >= -1e-9, f <= 1 + 1e-9 {
            let py = bottom - f * l.plotHeight
            s += "<line x1=\"\(num(l.plotX))\" y1=\"\(num(py))\" x2=\"\(num(right))\" y2=\"\(num(py))\"/>\n"
        } }
        s += "</g>\n"
        s += "<rect x=\"\(num(l.plotX))\" y=\"\(num(l.plotY))\" width=\"\(num(l.plotWidth))\" height=\"\(num(l.plotHeight))\" fill=\"none\" stroke=\"#444\"/>\n"

        s += "<g class=\"ticks\" font-size=\"11\" fill=\"#333\">\n"
        for t in l.x.ticks { if let f = l.x.fraction(t), f >= -1e-9, f <= 1 + 1e-9 {
            let px = l.plotX + f * l.plotWidth
            s += "<text x=\"\(num(px))\" y=\"\(num(bottom + 16))\" text-anchor=\"middle\">\(xmlEscape(l.x.label(t)))</text>\n"
        } }
        for t in l.y.ticks { if let f = l.y.fraction(t), f >= -1e-9, f <= 1 + 1e-9 {
            let py = bottom - f * l.plotHeight
            s += "<text x=\"\(num(l.plotX - 6))\" y=\"\(num(py + 4))\" text-anchor=\"end\">\(xmlEscape(l.y.label(t)))</text>\n"
        } }
        if let y2 = l.y2 {
            for t in y2.ticks { if let f = y2.fraction(t), f >= -1e-9, f <= 1 + 1e-9 {
                let py = bottom - f * l.plotHeight
                s += "<line x1=\"\(num(right))\" y1=\"\(num(py))\" x2=\"\(num(right + 4))\" y2=\"\(num(py))\" stroke=\"#444\"/>\n"
                s += "<text x=\"\(num(right + 7))\" y=\"\(num(py + 4))\" text-anchor=\"start\">\(xmlEscape(y2.label(t)))</text>\n"
            } }
        }
        s += "</g>\n"

        // Axis titles.
        s += "<g class=\"axis-titles\" font-size=\"12\" fill=\"#222\">\n"
        s += "<text x=\"\(num(l.plotX + l.plotWidth / 2))\" y=\"\(num(l.height - 10))\" text-anchor=\"middle\">\(xmlEscape(axisTitle(xLabel, xUnit)))</text>\n"
        let ly = l.plotY + l.plotHeight / 2
        var yTitle = axisTitle(yLabel, yUnit)
        if logY { yTitle = yTitle.hasSuffix(")") ? String(yTitle.dropLast()) + ", log scale)" : yTitle + " (log scale)" }
        s += "<text x=\"16\" y=\"\(num(ly))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(num(ly)))\">\(xmlEscape(yTitle))</text>\n"
        if l.y2 != nil {
            let rx = l.width - 14
            s += "<text x=\"\(num(rx))\" y=\"\(num(ly))\" text-anchor=\"middle\" transform=\"rotate(90 \(num(rx)) \(num(ly)))\">\(xmlEscape(axisTitle(y2Label ?? "", y2Unit)))</text>\n"
        }
        s += "</g>\n"

        // Series, clipped to the plot area.
        s += "<clipPath id=\"plot\"><rect x=\"\(num(l.plotX))\" y=\"\(num(l.plotY))\" width=\"\(num(l.plotWidth))\" height=\"\(num(l.plotHeight))\"/></clipPath>\n"
        s += "<g class=\"series\" clip-path=\"url(#plot)\" fill=\"none\" stroke-width=\"2\" stroke-linejoin=\"round\">\n"
        for (i, line) in series.enumerated() {
            let c = color(of: i)
            var d = ""
            var penDown = false
            var dots: [(Double, Double)] = []
            for p in line.points {
                guard let px = l.pixel(x: p.x, y: p.y, axis: line.axis) else { penDown = false; continue }
                d += (penDown ? " L" : (d.isEmpty ? "M" : " M")) + "\(num(px.x)) \(num(px.y))"
                penDown = true
                dots.append(px)
            }
            let dash = line.dashed ? " stroke-dasharray=\"6 4\"" : ""
            if !d.isEmpty {
                s += "<path d=\"\(d)\" stroke=\"\(xmlEscape(c))\"\(dash)><title>\(xmlEscape(line.name))</title></path>\n"
            }
            if line.markers ?? (dots.count <= 40) {
                for (x, y) in dots {
                    s += "<circle cx=\"\(num(x))\" cy=\"\(num(y))\" r=\"2.5\" fill=\"\(xmlEscape(c))\" stroke=\"none\"/>\n"
                }
            }
        }
        s += "</g>\n"
        s += legend(legendEntries, x: l.plotX, y: 34 + 12, maxWidth: l.plotWidth)
        s += "</svg>\n"
        return s
    }
}

private func svgHeader(width: Int, height: Int, title: String) -> String {
    var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"Helvetica, Arial, sans-serif\">\n"
    s += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
    s += "<text x=\"\(num(Double(width) / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\" fill=\"#111\">\(xmlEscape(title))</text>\n"
    return s
}

/// A horizontal legend row: a swatch and the name of each entry.
private func legend(_ entries: [(name: String, color: String, dashed: Bool)], x: Double, y: Double, maxWidth: Double) -> String {
    guard !entries.isEmpty else { return "" }
    var s = "<g class=\"legend\" font-size=\"12\" fill=\"#222\">\n"
    var cx = x
    for e in entries {
        let dash = e.dashed ? " stroke-dasharray=\"4 3\"" : ""
        s += "<line x1=\"\(num(cx))\" y1=\"\(num(y - 4))\" x2=\"\(num(cx + 18))\" y2=\"\(num(y - 4))\" stroke=\"\(xmlEscape(e.color))\" stroke-width=\"3\"\(dash)/>\n"
        s += "<text x=\"\(num(cx + 22))\" y=\"\(num(y))\">\(xmlEscape(e.name))</text>\n"
        cx += 22 + Double(e.name.count) * 7 + 16
    }
    s += "</g>\n"
    return s
}

// MARK: Bar chart

/// A grouped bar chart: one group per category, one bar per series in each group.
public struct SVGBarChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var color: String?
        /// One value per category; NaN or infinite values leave a gap.
        public var values: [Double]
        public init(name: String, color: String? = nil, values: [Double]) {
            self.name = name
            self.color = color
            self.values = values
        }
    }

    public var title: String
    public var categories: [String]
    public var series: [Series]
    public var yLabel: String
    public var yUnit: String?
    /// Print each bar's value above it, formatted by this function (nil: no value labels).
    public var valueLabels: (@Sendable (Double) -> String)?

    public init(title: String, categories: [String], series: [Series] = [], yLabel: String = "", yUnit: String? = nil,
                valueLabels: (@Sendable (Double) -> String)? = nil) {
        self.title = title
        self.categories = categories
        self.series = series
        self.yLabel = yLabel
        self.yUnit = yUnit
        self.valueLabels = valueLabels
    }

    public mutating func addSeries(name: String, color: String? = nil, values: [Double]) {
        series.append(Series(name: name, color: color, values: values))
    }

    private func color(of index: Int) -> String { series[index].color ?? chartPalette[index % chartPalette.count] }

    /// The y scale (always including zero) and the plot rectangle.
    public func layout(width: Int = 720, height: Int = 400) -> ChartLayout {
        let values = series.flatMap(\.values).filter(\.isFinite)
        let y = AxisScale.linear(values, includeZero: true)
        let top = 34.0 + (series.isEmpty ? 0 : 22)
        let x = AxisScale(lower: 0, upper: Double(max(1, categories.count)), ticks: [], log: false)
        return ChartLayout(width: Double(width), height: Double(height), plotX: 72, plotY: top,
                           plotWidth: max(10, Double(width) - 72 - 24), plotHeight: max(10, Double(height) - top - 52),
                           x: x, y: y, y2: nil)
    }

    /// The bar for `series` in `category`: left, top, width, height in pixels (nil for a missing value).
    public func barRect(category: Int, series index: Int, layout l: ChartLayout) -> (x: Double, y: Double, width: Double, height: Double)? {
        guard index < series.count, category < series[index].values.count else { return nil }
        let v = series[index].values[category]
        guard v.isFinite, let fv = l.y.fraction(v), let f0 = l.y.fraction(0) else { return nil }
        let groupWidth = l.plotWidth / Double(max(1, categories.count))
        let barWidth = groupWidth * 0.8 / Double(max(1, series.count))
        let x = l.plotX + Double(category) * groupWidth + groupWidth * 0.1 + Double(index) * barWidth
        let bottom = l.plotY + l.plotHeight
        let yv = bottom - fv * l.plotHeight, y0 = bottom - f0 * l.plotHeight
        return (x, min(yv, y0), barWidth, abs(y0 - yv))
    }

    public func svg(width: Int = 720, height: Int = 400) -> String {
        let l = layout(width: width, height: height)
        var s = svgHeader(width: width, height: height, title: title)
        let right = l.plotX + l.plotWidth, bottom = l.plotY + l.plotHeight
        s += "<g class=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\">\n"
        for t in l.y.ticks {
            let py = bottom - (l.y.fraction(t) ?? 0) * l.plotHeight
            s += "<line x1=\"\(num(l.plotX))\" y1=\"\(num(py))\" x2=\"\(num(right))\" y2=\"\(num(py))\"/>\n"
        }
        s += "</g>\n"
        s += "<g class=\"ticks\" font-size=\"11\" fill=\"#333\">\n"
        for t in l.y.ticks {
            let py = bottom - (l.y.fraction(t) ?? 0) * l.plotHeight
            s += "<text x=\"\(num(l.plotX - 6))\" y=\"\(num(py + 4))\" text-anchor=\"end\">\(xmlEscape(l.y.label(t)))</text>\n"
        }
        let groupWidth = l.plotWidth / Double(max(1, categories.count))
        for (i, c) in categories.enumerated() {
            let cx = l.plotX + (Double(i) + 0.5) * groupWidth
            s += "<text x=\"\(num(cx))\" y=\"\(num(bottom + 16))\" text-anchor=\"middle\">\(xmlEscape(c))</text>\n"
        }
        s += "</g>\n"
        s += "<g class=\"bars\" stroke=\"none\">\n"
        for (j, ser) in series.enumerated() {
            for i in categories.indices {
                guard let r = barRect(category: i, series: j, layout: l) else { continue }
                s += "<rect x=\"\(num(r.x))\" y=\"\(num(r.y))\" width=\"\(num(r.width))\" height=\"\(num(r.height))\" fill=\"\(xmlEscape(color(of: j)))\"><title>\(xmlEscape("\(ser.name) / \(categories[i]): \(ser.values[i])"))</title></rect>\n"
                if let valueLabels {
                    let v = ser.values[i]
                    let ty = v >= 0 ? r.y - 3 : r.y + r.height + 11
                    s += "<text x=\"\(num(r.x + r.width / 2))\" y=\"\(num(ty))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#222\">\(xmlEscape(valueLabels(v)))</text>\n"
                }
            }
        }
        s += "</g>\n"
        // The zero line and frame.
        if let f0 = l.y.fraction(0) {
            let py = bottom - f0 * l.plotHeight
            s += "<line x1=\"\(num(l.plotX))\" y1=\"\(num(py))\" x2=\"\(num(right))\" y2=\"\(num(py))\" stroke=\"#444\"/>\n"
        }
        s += "<rect x=\"\(num(l.plotX))\" y=\"\(num(l.plotY))\" width=\"\(num(l.plotWidth))\" height=\"\(num(l.plotHeight))\" fill=\"none\" stroke=\"#444\"/>\n"
        let ly = l.plotY + l.plotHeight / 2
        s += "<text x=\"16\" y=\"\(num(ly))\" text-anchor=\"middle\" font-size=\"12\" fill=\"#222\" transform=\"rotate(-90 16 \(num(ly)))\">\(xmlEscape(axisTitle(yLabel, yUnit)))</text>\n"
        s += legend(series.enumerated().map { ($0.element.name, color(of: $0.offset), false) }, x: l.plotX, y: 34 + 12, maxWidth: l.plotWidth)
        s += "</svg>\n"
        return s
    }
}
