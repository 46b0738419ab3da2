import Testing
import DojoReport

/// A fake clock and output for driving a ProgressBar deterministically.
private final class Harness: @unchecked Sendable {
    var now = 100.0
    var written: [String] = []
}

@Suite struct ProgressBarTests {
    @Test func rendersTheTrainingLine() {
        let line = ProgressLine(label: "epoch 2/3", completed: 140, total: 235, barWidth: 16,
                                metrics: [ProgressMetric("loss", 0.42128), ProgressMetric(percent: "acc", 0.8412)],
                                rate: 9812.3, eta: 12.2)
        #expect(line.render() == "epoch 2/3 [#########.......] 140/235 loss 0.4213 acc 84.1% 9,812 samples/s ETA 0:12")
    }

    @Test func barFill() {
        func bar(_ done: Int, _ total: Int, _ width: Int = 10) -> String {
            ProgressLine(completed: done, total: total, barWidth: width).bar()
        }
        #expect(bar(0, 10) == "[..........]")
        #expect(bar(5, 10) == "[#####.....]")
        #expect(bar(9, 10) == "[#########.]")
        #expect(bar(10, 10) == "[##########]")
        #expect(bar(15, 10) == "[##########]")
        #expect(bar(-3, 10) == "[..........]")
        #expect(bar(3, 0) == "[..........]")
        #expect(bar(1, 2, 0) == "")
        #expect(ProgressLine(completed: 7, total: 0, barWidth: 0).render() == "7")
        #expect(ProgressLine(completed: 1, total: 4, barWidth: 4, rate: 2.5, rateUnit: "steps/s").render()
                == "[#...] 1/4 2.50 steps/s")
        #expect(ProgressLine(completed: 4, total: 4, barWidth: 4, eta: 3, elapsed: 3725).render()
                == "[####] 4/4 in 1:02:05")
    }

    @Test func terminalRedrawsInPlaceAtMostTenTimesASecond() {
        let h = Harness()
        let bar = ProgressBar(total: 100, label: "epoch 1/1", barWidth: 10, isTerminal: true,
                              output: { h.written.append($0) }, clock: { h.now })
        for step in 1...100 {
            h.now += 0.01 // 100 steps/s → at most one redraw per 10 steps
            bar.update(completed: step, items: step * 32, metrics: [ProgressMetric("loss", 1.0 / Double(step))])
        }
        #expect(h.written.count >= 9 && h.written.count <= 12)
        #expect(h.written.allSatisfy { $0.hasPrefix("\r") && !$0.contains("\n") })
        #expect(h.written.last!.hasPrefix("\repoch 1/1 [##########] 100/100 loss 0.0100 3,200 samples/s ETA 0:00"))
        bar.finish()
        #expect(h.written.suffix(2).joined() == "\repoch 1/1 [##########] 100/100 loss 0.0100 3,200 samples/s in 0:01 \n")
        bar.finish() // idempotent
        bar.update(completed: 5)
        #expect(h.written.last == "\n")
    }

    @Test func shorterLinesBlankTheRest() {
        let h = Harness()
        let bar = ProgressBar(total: 10, barWidth: 0, isTerminal: true, minInterval: 0,
                              output: { h.written.append($0) }, clock: { h.now })
        bar.update(completed: 1, metrics: [ProgressMetric("loss", "12345.6789")])
        bar.update(completed: 2, metrics: [ProgressMetric("loss", "1.0")])
        let first = h.written[0], second = h.written[1]
        #expect(second.count == first.count)
        #expect(second.hasSuffix("      "))
    }

    @Test func plainLinesWhenNotATerminal() {
        let h = Harness()
        let bar = ProgressBar(total: 235, label: "epoch 1/3", barWidth: 8, isTerminal: false, lineEvery: 50,
                              output: { h.written.append($0) }, clock: { h.now })
        for step in 1...235 {
            h.now += 0.125
            bar.update(completed: step)
        }
        #expect(h.written.count == 5) // steps 50, 100, 150, 200, 235
        #expect(h.written.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\r") })
        #expect(h.written[0] == "epoch 1/3 [#.......] 50/235 8.00 samples/s ETA 0:23\n")
        #expect(h.written[4].hasPrefix("epoch 1/3 [########] 235/235"))
        bar.finish()
        #expect(h.written.count == 6)
        #expect(h.written[5] == "epoch 1/3 [########] 235/235 8.00 samples/s in 0:29\n")

        // A new epoch starts from zero with a fresh clock.
        bar.reset(label: "epoch 2/3")
        h.now += 5
        bar.update(completed: 50)
        #expect(h.written.last == "epoch 2/3 [#.......] 50/235 10.0 samples/s ETA 0:19\n")
    }
}
