import Foundation
import Testing
import DojoReport

@Suite struct FormatTests {
    @Test func durations() {
        #expect(formatDuration(0) == "0:00")
        #expect(formatDuration(12) == "0:12")
        #expect(formatDuration(12.4) == "0:12")
        #expect(formatDuration(59.6) == "1:00")
        #expect(formatDuration(754) == "12:34")
        #expect(formatDuration(3600) == "1:00:00")
        #expect(formatDuration(3725) == "1:02:05")
        #expect(formatDuration(100 * 3600 + 61) == "100:01:01")
        #expect(formatDuration(-1) == "--:--")
        #expect(formatDuration(.nan) == "--:--")
        #expect(formatDuration(.infinity) == "--:--")
    }

    @Test func thousands() {
        #expect(formatThousands(0) == "0")
        #expect(formatThousands(999) == "999")
        #expect(formatThousands(1000) == "1,000")
        #expect(formatThousands(9812) == "9,812")
        #expect(formatThousands(1_234_567) == "1,234,567")
        #expect(formatThousands(-1_234_567) == "-1,234,567")
        #expect(formatThousands(Int.min) == "-9,223,372,036,854,775,808")
        #expect(formatThousands(123456, separator: " ") == "123 456")
    }

    @Test func siUnits() {
        #expect(formatSI(3.2e12, unit: "FLOP/s") == "3.20 TFLOP/s")
        #expect(formatSI(1.1e18, unit: "FLOP/s") == "1.10 EFLOP/s")
        #expect(formatSI(362e12, unit: "FLOP/s") == "362 TFLOP/s")
        #expect(formatSI(0.00042, unit: "s") == "420 µs")
        #expect(formatSI(0.0412, unit: "s") == "41.2 ms")
        #expect(formatSI(999.7, unit: "W") == "1.00 kW")
        #expect(formatSI(999.4, unit: "W") == "999 W")
        #expect(formatSI(9.996, unit: "s") == "10.0 s")
        #expect(formatSI(0, unit: "W") == "0 W")
        #expect(formatSI(-2.5e9, unit: "B/s") == "-2.50 GB/s")
        #expect(formatSI(1500) == "1.50k")
        #expect(formatSI(3.2e12, unit: "FLOP/s", significant: 2) == "3.2 TFLOP/s")
    }

    @Test func bytes() {
        #expect(formatBytes(1_610_612_736) == "1.50 GiB")
        #expect(formatBytes(0) == "0 B")
        #expect(formatBytes(512) == "512 B")
        #expect(formatBytes(1023) == "1023 B")
        #expect(formatBytes(1024) == "1.00 KiB")
        #expect(formatBytes(1536) == "1.50 KiB")
        #expect(formatBytes(1_310_720) == "1.25 MiB") // one D1 node's SRAM
        #expect(formatBytes(1024 * 1024 - 1) == "1.00 MiB")
        #expect(formatBytes(Double(1 << 40) * 13) == "13.0 TiB")
    }

    @Test func fixedAndPercent() {
        #expect(formatFixed(0.42128, 4) == "0.4213")
        #expect(formatFixed(-0.00001, 2) == "0.00")
        #expect(formatFixed(2.5, 0) == "2")
        #expect(formatFixed(.nan, 2) == "nan")
        #expect(formatPercent(0.8412) == "84.1%")
        #expect(formatPercent(1) == "100.0%")
        #expect(formatPercent(0.5, decimals: 0) == "50%")
    }
}
