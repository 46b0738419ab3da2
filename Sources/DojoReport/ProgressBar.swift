// A terminal progress line for training:
//   epoch 2/3 [#########.......] 140/235 loss 0.4213 acc 84.1% 9,812 samples/s ETA 0:12
// redrawn in place on a terminal (at most ~10 times a second), or printed as plain lines every N steps
// when standard output is a file or a pipe.
import Foundation

/// Everything one progress line shows; `render()` is a pure function of it.
public struct ProgressLine: Sendable, Equatable {
    /// Text before the bar, e.g. "epoch 2/3" (may be empty).
    public var label: String
    public var completed: Int
    public var total: Int
    /// Characters inside the brackets.
    public var barWidth: Int
    /// Named values after the counter, in order, already formatted: [("loss", "0.4213"), ("acc", "84.1%")].
    public var metrics: [ProgressMetric]
    /// Items per second, shown with thousands separators and `rateUnit` (omitted when nil).
    public var rate: Double?
    public var rateUnit: String
    /// Seconds left (omitted when nil); after `finish`, the elapsed time is shown instead.
    public var eta: Double?
    public var elapsed: Double?

    public init(label: String = "", completed: Int, total: Int, barWidth: Int = 16, metrics: [ProgressMetric] = [],
                rate: Double? = nil, rateUnit: String = "samples/s", eta: Double? = nil, elapsed: Double? = nil) {
        self.label = label
        self.completed = completed
        self.total = total
        self.barWidth = barWidth
        self.metrics = metrics
        self.rate = rate
        self.rateUnit = rateUnit
        self.eta = eta
        self.elapsed = elapsed
    }

    /// The bar itself: `[#########.......]`, '#' for the completed fraction (floored), '.' for the rest.
    public func bar() -> String {
        guard barWidth > 0 else { return "" }
        let fraction = total > 0 ? min(1, max(0, Double(completed) / Double(total))) : 0
        let filled = Int((fraction * Double(barWidth)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled) + "]"
    }

    /// The whole line, without a newline or carriage return.
    public func render() -> String {
        var parts: [String] = []
        if !label.isEmpty { parts.append(label) }
        if barWidth > 0 { parts.append(bar()) }
        parts.append(total > 0 ? "\(completed)/\(total)" : "\(completed)")
        for m in metrics { parts.append("\(m.name) \(m.value)") }
        if let rate, rate.isFinite, rate >= 0 {
            let text = rate >= 100 ? formatThousands(Int(rate.rounded())) : formatSignificant(rate, 3)
            parts.append("\(text) \(rateUnit)")
        }
        if let elapsed {
            parts.append("in \(formatDuration(elapsed))")
        } else if let eta {
            parts.append("ETA \(formatDuration(eta))")
        }
        return parts.joined(separator: " ")
    }
}

/// One named value on a progress line.
public struct ProgressMetric: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
    /// A number with `decimals` digits, e.g. `ProgressMetric("loss", 0.42128, decimals: 4)` → "loss 0.4213".
    public init(_ name: String, _ value: Double, decimals: Int = 4) {
        self.init(name, formatFixed(value, decimals))
    }
    /// A fraction as a percentage, e.g. `ProgressMetric(percent: "acc", 0.8412)` → "acc 84.1%".
    public init(percent name: String, _ fraction: Double, decimals: Int = 1) {
        self.init(name, formatPercent(fraction, decimals: decimals))
    }
}

/// Draws a `ProgressLine` as work goes on. Not thread-safe: drive it from the training loop.
///
/// ```swift
/// let bar = ProgressBar(total: 235, label: "epoch 2/3")
/// for step in 1...235 { ...; bar.update(completed: step, items: step * 256, metrics: [.init("loss", loss)]) }
/// bar.finish()
/// ```
public final class ProgressBar {
    public private(set) var line: ProgressLine
    /// True: redraw in place with "\r"; false: print a plain line every `lineEvery` steps and at the end.
    public let isTerminal: Bool
    public let lineEvery: Int
    /// Minimum seconds between two redraws on a terminal.
    public let minInterval: Double

    private let output: (String) -> Void
    private let clock: () -> Double
    private var start: Double
    private var lastDraw: Double = -.infinity
    private var lastPrintedStep = 0
    private var lastLength = 0
    private var finished = false

    /// - Parameters:
    ///   - isTerminal: nil means `isatty(1)`.
    ///   - lineEvery: steps between plain lines when not on a terminal; nil means about 10 lines a run.
    ///   - output: where text goes (default: standard output, flushed after every write).
    ///   - clock: seconds from any fixed origin (default: a monotonic clock); injectable for tests.
    public init(total: Int, label: String = "", barWidth: Int = 16, rateUnit: String = "samples/s",
                isTerminal: Bool? = nil, lineEvery: Int? = nil, minInterval: Double = 0.1,
                output: ((String) -> Void)? = nil, clock: (() -> Double)? = nil) {
        self.line = ProgressLine(label: label, completed: 0, total: total, barWidth: barWidth, rateUnit: rateUnit)
        self.isTerminal = isTerminal ?? (isatty(1) == 1)
        self.lineEvery = max(1, lineEvery ?? max(1, total / 10))
        self.minInterval = minInterval
        self.output = output ?? writeStandardOutput
        let clock = clock ?? monotonicSeconds
        self.clock = clock
        self.start = clock()
    }

    /// Records progress: `completed` steps of `total`, `items` processed in all (for the rate; defaults to
    /// steps), and the metrics to show. Draws when due.
    public func update(completed: Int, items: Int? = nil, metrics: [ProgressMetric]? = nil) {
        guard !finished else { return }
        let now = clock()
        let elapsed = now - start
        line.completed = completed
        if let metrics { line.metrics = metrics }
        let done = Double(items ?? completed)
        line.rate = elapsed > 0 && done > 0 ? done / elapsed : nil
        line.eta = completed > 0 && line.total > 0 && elapsed > 0
            ? elapsed * Double(max(0, line.total - completed)) / Double(completed) : nil
        if isTerminal {
            if now - lastDraw >= minInterval || completed >= line.total {
                draw()
                lastDraw = now
            }
        } else if completed - lastPrintedStep >= lineEvery || (completed >= line.total && lastPrintedStep < completed) {
            output(line.render() + "\n")
            lastPrintedStep = completed
        }
    }

    /// Starts over for another pass (e.g. the next epoch): new label and total, counter and clock reset.
    public func reset(label: String, total: Int? = nil) {
        line = ProgressLine(label: label, completed: 0, total: total ?? line.total, barWidth: line.barWidth,
                            rateUnit: line.rateUnit)
        start = clock()
        lastDraw = -.infinity
        lastPrintedStep = 0
        lastLength = 0
        finished = false
    }

    /// Ends the line: draws the final state with the elapsed time and a newline.
    public func finish() {
        guard !finished else { return }
        finished = true
        line.elapsed = clock() - start
        if isTerminal {
            draw()
            output("\n")
        } else {
            output(line.render() + "\n")
        }
    }

    private func draw() {
        let text = line.render()
        // Blank out what is left of a longer previous line.
        let pad = max(0, lastLength - text.count)
        output("\r" + text + String(repeating: " ", count: pad))
        lastLength = text.count
    }
}

/// Writes through the same buffered stream as `print`, so progress lines and other output stay in order,
/// then flushes (fflush(NULL) flushes every output stream, standard output included).
private func writeStandardOutput(_ text: String) {
    print(text, terminator: "")
    fflush(nil)
}

/// Seconds on a monotonic clock.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
