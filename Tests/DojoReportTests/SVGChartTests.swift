import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import DojoReport

/// Parses `svg` as XML; returns the element names in document order, or nil when it is not well-formed.
private func elements(_ svg: String) -> [String]? {
    final class Collector: NSObject, XMLParserDelegate {
        var names: [String] = []
        var texts: [String] = []
        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            names.append(elementName)
        }
    }
    let parser = XMLParser(data: Data(svg.utf8))
    let collector = Collector()
    parser.delegate = collector
    return parser.parse() ? collector.names : nil
}

private func close(_ a: [Double], _ b: [Double]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-9 * max(1, abs($1)) }
}

@Suite struct SVGChartTests {
    @Test func niceTickValues() {
        #expect(niceTicks(0, 10) == [0, 2, 4, 6, 8, 10])
        #expect(niceTicks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(niceTicks(0.13, 0.97) == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(niceTicks(-3, 7) == [-4, -2, 0, 2, 4, 6, 8])
        #expect(niceTicks(0, 235) == [0, 50, 100, 150, 200, 250])
        #expect(niceTicks(0.0021, 0.0094) == [0.002, 0.004, 0.006, 0.008, 0.01])
        #expect(niceTicks(5, 5) == [4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6])
        #expect(niceTicks(0, 0) == [-1, -0.5, 0, 0.5, 1])
        #expect(niceTicks(0, 3.3e12) == [0, 1e12, 2e12, 3e12, 4e12])
        #expect(niceTicks(.nan, 1) == [0, 1])
        #expect(niceStep(1) == 1)
        #expect(niceStep(0.3) == 0.5)
        #expect(niceStep(2.1) == 5)
        #expect(niceStep(7) == 10)
        #expect(niceStep(15) == 20)
        #expect(close(logTicks(0.05, 3), [0.01, 0.1, 1, 10]))
        #expect(close(logTicks(1.5, 40), [1, 2, 5, 10, 20, 50]))
        #expect(close(logTicks(0.2, 0.3), [0.1, 0.2, 0.5, 1]))
        #expect(formatTick(0.2, step: 0.2) == "0.2")
        #expect(formatTick(0.25, step: 0.05) == "0.25")
        #expect(formatTick(2000, step: 500) == "2,000")
        #expect(formatTick(150, step: 50) == "150")
        #expect(formatTick(3e12, step: 1e12) == "3T")
        #expect(formatTick(2.5e6, step: 5e5) == "2.5M")
        #expect(formatTick(1e-5, step: 1e-5) == "1e-5")
        #expect(formatTick(0, step: 1) == "0")
    }

    @Test func pointsMapToPixels() throws {
        var chart = SVGChart(title: "loss", xLabel: "step", yLabel: "loss")
        chart.addSeries(name: "train", color: "#123456", points: [(0, 0), (5, 0.5), (10, 1)])
        let l = chart.layout(width: 720, height: 400)
        // Margins: 72 left, 24 right, 34 title + 22 legend on top, 52 at the bottom → plot 624 × 292 at (72, 56).
        #expect(l.plotX == 72 && l.plotY == 56 && l.plotWidth == 624 && l.plotHeight == 292)
        #expect(l.x.ticks == [0, 2, 4, 6, 8, 10] && l.y.ticks == [0, 0.2, 0.4, 0.6, 0.8, 1])
        let p = try #require(l.pixel(x: 5, y: 0.5))
        #expect(p.x == 384 && p.y == 202)
        #expect(l.pixel(x: .nan, y: 1) == nil)
        let svg = chart.svg()
        #expect(svg.contains("<path d=\"M72 348 L384 202 L696 56\" stroke=\"#123456\""))
        #expect(elements(svg) != nil)
    }

    @Test func wellFormedWithEverything() throws {
        var chart = SVGChart(title: "Training <resnet> & \"friends\"", xLabel: "step", yLabel: "loss", logY: true,
                             y2Label: "accuracy", y2Unit: "%")
        chart.addSeries(name: "train loss", points: (1...200).map { (Double($0), 2.3 / Double($0).squareRoot()) })
        chart.addSeries(name: "eval loss", points: [(50, 0.5), (100, .nan), (150, 0.3), (200, 0), (210, -1)], dashed: true)
        chart.addSeries(name: "eval acc", points: [(50, 71.5), (100, 80.2), (150, .infinity), (200, 84.1)], axis: .right)
        chart.addSeries(name: "empty", points: [])
        let svg = chart.svg(width: 800, height: 450)
        let names = try #require(elements(svg))
        #expect(names.first == "svg")
        #expect(names.filter { $0 == "path" }.count == 3) // the empty series draws nothing
        #expect(svg.contains("Training &lt;resnet&gt; &amp; &quot;friends&quot;"))
        #expect(svg.contains("accuracy (%)"))
        #expect(svg.contains(">loss (log scale)</text>"))
        #expect(!svg.contains("nan") && !svg.contains("inf"))
        // The NaN breaks the eval line in two pieces; zero and negative values are off a log axis.
        let evalPath = try #require(svg.split(separator: "\n").first { $0.contains("stroke-dasharray=\"6 4\"") })
        #expect(evalPath.components(separatedBy: " M").count == 2)
        let l = chart.layout(width: 800, height: 450)
        #expect(l.y.log && l.y2 != nil)
        #expect(l.pixel(x: 100, y: 0) == nil)
        let y2 = try #require(l.y2)
        #expect(y2.ticks.first! <= 71.5 && y2.ticks.last! >= 84.1)
        // On the right axis, 84.1 sits between the plot's bottom and top.
        let p = try #require(l.pixel(x: 200, y: 84.1, axis: .right))
        #expect(p.y > l.plotY && p.y < l.plotY + l.plotHeight)
    }

    @Test func emptyChartsDoNotCrash() {
        #expect(elements(SVGChart(title: "nothing").svg()) != nil)
        var c = SVGChart(title: "one point")
        c.addSeries(name: "p", points: [(3, 3)])
        let svg = c.svg()
        #expect(elements(svg) != nil)
        #expect(svg.contains("<circle"))
        var allNaN = SVGChart(title: "nan", logY: true)
        allNaN.addSeries(name: "x", points: [(.nan, .nan), (1, -1)])
        #expect(elements(allNaN.svg()) != nil)
        #expect(elements(SVGBarChart(title: "none", categories: []).svg()) != nil)
        #expect(elements(SVGChart(title: "tiny").svg(width: 10, height: 10)) != nil)
    }

    @Test func groupedBars() throws {
        var bars = SVGBarChart(title: "step time", categories: ["ResNet-50", "occupancy"], yLabel: "time", yUnit: "ms",
                               valueLabels: { formatFixed($0, 1) })
        bars.addSeries(name: "Dojo tile", values: [1, 2])
        bars.addSeries(name: "DGX H100", values: [3, 4])
        let l = bars.layout()
        #expect(l.y.ticks == [0, 1, 2, 3, 4])
        let r = try #require(bars.barRect(category: 1, series: 1, layout: l))
        // Group width 624 / 2 = 312, bars 312 × 0.8 / 2 = 124.8 wide, the group's second bar at 72 + 312 + 31.2 + 124.8.
        #expect(abs(r.x - 540) < 1e-9 && abs(r.width - 124.8) < 1e-9)
        #expect(r.y == 56 && r.height == 292)
        let half = try #require(bars.barRect(category: 0, series: 1, layout: l))
        #expect(half.y == 56 + 73 && half.height == 219)
        let svg = bars.svg()
        #expect(elements(svg) != nil)
        #expect(svg.contains(">4.0</text>"))
        // Missing and negative values.
        var mixed = SVGBarChart(title: "delta", categories: ["a", "b", "c"])
        mixed.addSeries(name: "x", values: [-2, .nan, 3])
        let lm = mixed.layout()
        #expect(lm.y.ticks.first! <= -2 && lm.y.ticks.last! >= 3)
        #expect(mixed.barRect(category: 1, series: 0, layout: lm) == nil)
        #expect(mixed.barRect(category: 3, series: 0, layout: lm) == nil)
        #expect(elements(mixed.svg()) != nil)
    }

    /// Writes sample charts to $DOJO_REPORT_SAMPLES (when set) for looking at.
    @Test func writeSamples() throws {
        guard let dir = ProcessInfo.processInfo.environment["DOJO_REPORT_SAMPLES"] else { return }
        var chart = SVGChart(title: "Fashion-MNIST, small CNN", xLabel: "step", yLabel: "loss", logY: false,
                             y2Label: "accuracy", y2Unit: "%")
        let steps: [Double] = (0...700).map(Double.init)
        let loss: [Double] = steps.map { (x: Double) -> Double in 0.3 + 2.0 * exp(-x / 90) + 0.05 * sin(x * 0.7) }
        chart.addSeries(ChartSeries(name: "train loss", x: steps, y: loss))
        let evalSteps: [Double] = [0, 100, 200, 300, 400, 500, 600, 700]
        let evalLoss: [Double] = evalSteps.map { (s: Double) -> Double in 0.35 + 2.0 * exp(-s / 90) }
        let evalAcc: [Double] = evalSteps.map { (s: Double) -> Double in 91 - 80 * exp(-s / 80) }
        chart.addSeries(ChartSeries(name: "eval loss", x: evalSteps, y: evalLoss, dashed: true))
        chart.addSeries(ChartSeries(name: "eval acc", x: evalSteps, y: evalAcc, axis: .right))
        try chart.svg().write(toFile: dir + "/line.svg", atomically: true, encoding: .utf8)
        var logChart = SVGChart(title: "Throughput vs batch", xLabel: "batch size", yLabel: "throughput", yUnit: "FLOP/s", logY: true)
        logChart.addSeries(name: "Dojo tile", points: [(32, 2e13), (64, 6e13), (128, 1.5e14), (256, 3e14)])
        logChart.addSeries(name: "DGX H100", points: [(32, 5e13), (64, 9e13), (128, 2e14), (256, 2.4e14)])
        try logChart.svg().write(toFile: dir + "/log.svg", atomically: true, encoding: .utf8)
        var bars = SVGBarChart(title: "Step time", categories: ["ResNet-50", "occupancy net", "ViT-B"], yLabel: "time", yUnit: "ms",
                               valueLabels: { formatFixed($0, 1) })
        bars.addSeries(name: "Dojo tile", values: [12.5, 30.1, 22])
        bars.addSeries(name: "DGX H100", values: [15.2, 41.7, .nan])
        try bars.svg().write(toFile: dir + "/bars.svg", atomically: true, encoding: .utf8)
    }
}
