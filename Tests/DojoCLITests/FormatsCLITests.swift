import Foundation
import Testing

/// `dojo formats` through the built binary.
@Suite("dojo formats")
struct FormatsCLITests {
    /// Data lines of an output (comment lines start with "#").
    func dataLines(_ s: String) -> [[Substring]] {
        s.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: " ") }
    }

    @Test("the binary is found")
    func binaryFound() {
        #expect(dojoExecutableURL != nil)
    }

    @Test("list (and plain `dojo formats`) shows every format with layout and default bias")
    func list() {
        for args in [["formats"], ["formats", "list"]] {
            let r = runDojo(args)
            #expect(r.status == 0, "\(r.stderr)")
            for name in ["bf16", "cfp8-143", "cfp8-152", "shp", "uhp"] { #expect(r.stdout.contains(name)) }
            #expect(r.stdout.contains("1-4-3"))
            #expect(r.stdout.contains("0-6-10"))
            #expect(r.stdout.contains("480.0"))          // cfp8-143 max at bias 7
            #expect(r.stdout.contains("131008.0"))       // shp max at bias 15
        }
        let help = runDojo(["formats", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("ASSUMPTION"))
    }

    @Test("table prints every code with its exact value and class")
    func table() {
        let r = runDojo(["formats", "table", "--format", "cfp8-143", "--bias", "7"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = dataLines(r.stdout)
        #expect(lines.count == 256)
        #expect(lines[0] == ["0x00", "0", "zero"])
        #expect(lines[1] == ["0x01", "0.0009765625", "denormal"])      // 0.001 × 2^-7 as printed
        #expect(lines[0x08] == ["0x08", "0.015625", "normal"])
        #expect(lines[0x7F] == ["0x7f", "480", "normal"])
        #expect(lines[0x80] == ["0x80", "-0", "zero"])
        #expect(lines[0xFF] == ["0xff", "-480", "normal"])
        let ieee = runDojo(["formats", "table", "--format", "cfp8-143", "--bias", "7", "--denormals", "ieee"])
        #expect(dataLines(ieee.stdout)[1] == ["0x01", "0.001953125", "denormal"])
        // Bias 63 prints 2^-62 exactly.
        let b63 = runDojo(["formats", "table", "--format", "cfp8-143", "--bias", "63"])
        #expect(dataLines(b63.stdout)[8][1] == "0." + String(repeating: "0", count: 18) + "21684043449710088680149056017398834228515625")
        let bf = runDojo(["formats", "table", "--format", "bf16"])
        let bfl = dataLines(bf.stdout)
        #expect(bfl.count == 65536)
        #expect(bfl[0x7F80] == ["0x7f80", "inf", "inf"])
        #expect(bfl[0x7FC0][2] == "nan")
        #expect(bfl[0x3F80] == ["0x3f80", "1", "normal"])
        let uhp = runDojo(["formats", "table", "--format", "uhp"])
        #expect(dataLines(uhp.stdout).count == 65536)
    }

    @Test("convert prints input, code, value and flags; negative numbers are values")
    func convert() {
        let r = runDojo(["formats", "convert", "--format", "bf16", "-1.5", "0.1", "3.4e38", "nan"])
        #expect(r.status == 0, "\(r.stderr)")
        let l = dataLines(r.stdout)
        #expect(l.count == 4)
        #expect(l[0] == ["-1.5", "-1.5", "0xbfc0", "-1.5", "none"])
        #expect(l[1] == ["0.1", "0.100000001490116119384765625", "0x3dcd", "0.10009765625", "none"])
        #expect(l[2][2] == "0x7f80" && l[2][4] == "overflow")
        #expect(l[3][3] == "nan" && l[3][4] == "invalid")
        let c = runDojo(["formats", "convert", "--format", "cfp8-152", "--bias", "15", "1e6", "1.375", "1e-9", "--", "-0.00001"])
        #expect(c.status == 0, "\(c.stderr)")
        let cl = dataLines(c.stdout)
        #expect(cl[0] == ["1e6", "1000000", "0x7f", "114688", "overflow"])
        #expect(cl[1] == ["1.375", "1.375", "0x3e", "1.5", "none"])
        #expect(cl[2][2] == "0x00" && cl[2][4] == "underflow")
        #expect(cl[3][2] == "0x81" && cl[3][4] == "underflow")      // -1e-5 → -1 × 2^-17 (as printed)
        let u = runDojo(["formats", "convert", "--format", "uhp", "-2"])
        #expect(dataLines(u.stdout)[0] == ["-2", "-2", "0x0000", "0", "invalid"])
    }

    @Test("stochastic conversion is reproducible with a seed")
    func stochastic() {
        let args = ["formats", "convert", "--format", "cfp8-143", "--rounding", "stochastic", "--seed", "7"]
            + (0..<40).map { _ in "1.0625" }
        let a = runDojo(args), b = runDojo(args)
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout == b.stdout)
        let codes = Set(dataLines(a.stdout).map { String($0[2]) })
        #expect(codes == ["0x38", "0x39"])          // 1.0625 lies halfway between 1 and 1.125
        let other = runDojo(Array(args.prefix(7)) + ["8"] + (0..<40).map { _ in "1.0625" })
        #expect(other.status == 0)
        #expect(other.stdout != a.stdout)
    }

    @Test("bad input: clear message on stderr, non-zero exit", arguments: [
        (["formats", "convert", "--format", "fp4", "1"], "valid formats: bf16, cfp8-143, cfp8-152, shp, uhp"),
        (["formats", "table", "--format", "nope"], "unknown format 'nope'"),
        (["formats", "convert", "--format", "cfp8-143", "--bias", "70", "1"], "bias 70 is out of range 0…63 for cfp8-143"),
        (["formats", "table", "--format", "shp", "--bias", "-3"], "bias -3 is out of range 0…63 for shp"),
        (["formats", "convert", "--format", "bf16", "--bias", "3", "1"], "fixed at 127"),
        (["formats", "convert", "--format", "shp", "abc"], "'abc' is not a number"),
        (["formats", "convert", "--format", "shp", "--seed", "3", "1"], "--seed needs --rounding stochastic"),
        (["formats", "convert", "--format", "shp", "--rounding", "up", "1"], "unknown rounding 'up'"),
        (["formats", "convert", "--format", "shp", "--denormals", "x", "1"], "unknown denormal scale 'x'"),
        (["formats", "convert", "--format", "shp"], "at least one number"),
    ])
    func badInput(_ args: [String], _ message: String) {
        let r = runDojo(args)
        #expect(r.status != 0)
        #expect(r.status != -1, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }
}
