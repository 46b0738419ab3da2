import Testing
import DojoReport

@Suite struct TextTableTests {
    @Test func alignsTextLeftAndNumbersRight() {
        var t = TextTable(headers: ["model", "params", "step time", "MFU"])
        t.addRow(["resnet18", "11.7 M", "41.2 ms", "38.5%"])
        t.addRow(["occupancy-net", "2,310,114", "1.20 s", "7%"])
        #expect(t.render() == """
            model             params  step time    MFU
            -------------  ---------  ---------  -----
            resnet18          11.7 M    41.2 ms  38.5%
            occupancy-net  2,310,114     1.20 s     7%

            """)
        #expect(t.columnAlignments() == [.left, .right, .right, .right])
    }

    @Test func explicitAlignmentsRaggedRowsAndNoTrailingSpaces() {
        var t = TextTable(headers: ["id", "name"], alignments: [.left, .right])
        t.addRow(["7"])
        t.addRow(["12", "x", "extra"])
        t.addRow("3", "yy")
        let text = t.render()
        #expect(text == """
            id  name
            --  ----  -----
            7
            12     x  extra
            3     yy

            """)
        for line in text.split(separator: "\n") { #expect(line.last != " ") }
    }

    @Test func numericDetection() {
        for s in ["0", "-1.5", "+2", ".5", "9,812", "84.1%", "3.20 TFLOP/s", "$12", "1e-3"] {
            #expect(TextTable.looksNumeric(s), "\(s)")
        }
        for s in ["", "abc", "-", "n/a", "x1", "DGX H100"] { #expect(!TextTable.looksNumeric(s), "\(s)") }
        // A column with one text cell is left-aligned; empty cells don't count.
        var t = TextTable(headers: ["a", "b"])
        t.addRow(["1", ""])
        t.addRow(["n/a", "2"])
        #expect(t.columnAlignments() == [.left, .right])
    }

    @Test func emptyTables() {
        #expect(TextTable(headers: []).render() == "")
        #expect(TextTable(headers: ["x"]).render() == "x\n-\n")
    }
}
