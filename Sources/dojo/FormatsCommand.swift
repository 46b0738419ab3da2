import ArgumentParser
import DojoNumerics
import Dispatch

/// `dojo formats`: Tesla's number formats, their codes, and conversions into them.
struct FormatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "formats",
        abstract: "Tesla's number formats: BF16, CFP8 (1-4-3, 1-5-2) and CFP16 (SHP, UHP).",
        discussion: """
        Formats as Tesla's CFloat whitepaper defines them: normal value (-1)^s × 1.m × 2^(E-bias) for \
        E = 1…all-ones (the all-ones exponent is an ordinary normal value), zero at E=0 m=0, denormals \
        ±0.m × 2^(-bias) as printed (--denormals ieee gives 2^(1-bias)), no Inf or NaN: overflow clamps to \
        ±max. The CFP bias is a 6-bit value 0…63.

        ASSUMPTION: the whitepaper gives no default bias. When --bias is not given we use \
        cfp8-143: 7, cfp8-152: 15, shp: 15, uhp: 31 (the "31" of the UHP table text). BF16's bias is fixed at 127.
        """,
        subcommands: [List.self, Table.self, Convert.self, Bench.self],
        defaultSubcommand: List.self
    )
}

/// --format, --bias, --denormals, shared by the subcommands.
struct FormatOptions: ParsableArguments {
    @Option(help: "The format: \(Format.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: String

    @Option(parsing: .unconditional, help: "Exponent bias 0…63 (CFP formats only). Default (an assumption): cfp8-143 7, cfp8-152 15, shp 15, uhp 31.")
    var bias: Int?

    @Option(help: "Denormal scale: as-printed (0.m × 2^-bias, the whitepaper) or ieee (0.m × 2^(1-bias)).")
    var denormals: String = DenormalScale.asPrinted.rawValue

    func numberFormat() throws -> NumberFormat {
        guard let f = Format(rawValue: format) else {
            throw ValidationError(NumericsError.unknownFormat(format).description)
        }
        guard let scale = DenormalScale(rawValue: denormals) else {
            throw ValidationError(NumericsError.unknownDenormalScale(denormals).description)
        }
        do {
            return try NumberFormat(f, bias: bias, denormalScale: scale)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func validate() throws {
        _ = try numberFormat()
    }
}

/// Hex code padded to the format's width: 0x3c, 0x7bff.
private func hex(_ code: UInt16, bits: Int) -> String {
    let s = String(code, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, bits / 4 - s.count)) + s
}

extension FormatsCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the formats with their layout, default bias and range at that bias.")

        func run() throws {
            print("format    layout                              bias                 min positive   min normal     max")
            for f in Format.allCases {
                let nf = try NumberFormat(f)
                let biasText = f == .bf16 ? "127 (fixed)" : "\(f.defaultBias) (0…63; assumed)"
                func col(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(1, w - s.count)) }
                print(col(f.rawValue, 10) + col(f.layout, 36) + col(biasText, 21)
                      + col("\(nf.minPositive)", 15) + col("\(nf.minNormal)", 15) + "\(nf.maxMagnitude)")
            }
            print("CFP ranges are for as-printed denormals (0.m × 2^-bias); min positive doubles with --denormals ieee.")
        }
    }

    struct Table: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every code of a format: hex code, exact decimal value, class.")

        @OptionGroup var options: FormatOptions

        func run() throws {
            let nf = try options.numberFormat()
            var out = "# \(nf): \(nf.codeCount) codes\n# code value class\n"
            for c in 0..<nf.codeCount {
                let code = UInt16(c)
                out += "\(hex(code, bits: nf.bitWidth)) \(exactDecimal(nf.decode(code))) \(nf.classify(code).rawValue)\n"
                if out.utf8.count > 1 << 16 {
                    print(out, terminator: "")
                    out = ""
                }
            }
            print(out, terminator: "")
        }
    }

    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert FP32 numbers into a format: input, code, the value it becomes, flags.",
            discussion: "Negative numbers are read as values: dojo formats convert --format bf16 -1.5")

        @OptionGroup var options: FormatOptions

        @Option(help: "Rounding: nearest (to nearest, ties to even) or stochastic.")
        var rounding: String = "nearest"

        @Option(help: "Seed for stochastic rounding (default 0). The i-th number uses RNG index i.")
        var seed: UInt64?

        @Argument(parsing: .allUnrecognized, help: "FP32 numbers (decimal, hex float, inf, nan).")
        var values: [String] = []

        /// The numbers, without a `--` terminator the user may have put before negative numbers.
        private var numbers: [String] { values.filter { $0 != "--" } }

        func validate() throws {
            guard rounding == "nearest" || rounding == "stochastic" else {
                throw ValidationError("unknown rounding '\(rounding)'; valid: nearest, stochastic")
            }
            if seed != nil && rounding != "stochastic" {
                throw ValidationError("--seed needs --rounding stochastic")
            }
            if numbers.isEmpty { throw ValidationError("give at least one number to convert") }
            for v in numbers where Float(v) == nil {
                if v.hasPrefix("--") { throw ValidationError("unknown option '\(v)'") }
                throw ValidationError("'\(v)' is not a number")
            }
        }

        func run() throws {
            let nf = try options.numberFormat()
            let mode: Rounding = rounding == "stochastic" ? .stochastic(seed: seed ?? 0) : .nearestEven
            print("# \(nf), rounding \(rounding)\(rounding == "stochastic" ? " (seed \(seed ?? 0))" : "")")
            print("# input fp32 code value flags")
            for (i, v) in numbers.enumerated() {
                let x = Float(v)!
                let e = nf.encode(x, rounding: mode, index: UInt64(i))
                print("\(v) \(exactDecimal(x)) \(hex(e.code, bits: nf.bitWidth)) \(exactDecimal(nf.decode(e.code))) \(e.flags)")
            }
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure bulk conversion throughput (elements/s) on this machine.")

        @OptionGroup var options: FormatOptions

        @Option(help: "Number of FP32 elements.")
        var count: Int = 1 << 24

        @Option(help: "Threads.")
        var threads: Int = 2

        @Option(help: "Repetitions; the best is reported.")
        var repeats: Int = 5

        func validate() throws {
            guard count > 0 else { throw ValidationError("--count must be positive") }
            // values, codes and decoded values: 9 bytes each
            guard count <= 1 << 27 else { throw ValidationError("--count is \(count), more than \(1 << 27) (it would need \(max(1, count / (1 << 27))) GiB or more of memory, and minutes)") }
            guard (1...1024).contains(threads) else { throw ValidationError("--threads must be 1…1024, got \(threads)") }
            guard (1...1000).contains(repeats) else { throw ValidationError("--repeats must be 1…1000, got \(repeats)") }
            guard Double(count) * Double(repeats) <= Double(1 << 30) else {
                throw ValidationError("--count \(count) × --repeats \(repeats) is more than \(1 << 30) conversions per measurement (minutes); fewer of either")
            }
        }

        func run() throws {
            let nf = try options.numberFormat()
            // Gaussian-like data scaled to 1/4 of the format's max: mostly normal values, like a tensor.
            var src = [Float](repeating: 0, count: count)
            var state: UInt64 = 1
            let scale = nf.maxMagnitude / 4
            for i in 0..<count {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let u = Float(state >> 40) / Float(1 << 24) + Float((state >> 16) & 0xFFFFFF) / Float(1 << 24) - 1
                src[i] = nf.format.isSigned ? u * scale : abs(u) * scale   // UHP is unsigned
            }
            var buf = src
            var codes = [UInt16](repeating: 0, count: count)
            func best(_ name: String, _ body: () -> Void) {
                var t = Double.infinity
                for _ in 0..<repeats {
                    buf = src
                    buf.withUnsafeMutableBufferPointer { $0[0] = src[0] }   // copy-on-write outside the timing
                    let start = DispatchTime.now().uptimeNanoseconds
                    body()
                    t = min(t, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
                }
                let rate = Double(count) / t
                print("\(name): \(count) elements in \(String(format3(t))) s = \(String(format3(rate / 1e6))) M elements/s")
            }
            print("# \(nf), \(threads) thread(s), best of \(repeats)")
            best("copy (baseline)") { buf.withUnsafeMutableBufferPointer { b in src.withUnsafeBufferPointer { s in _ = b.initialize(from: s) } } }
            best("roundInPlace nearest") { buf.withUnsafeMutableBufferPointer { _ = nf.roundInPlace($0, threads: threads) } }
            best("roundInPlace stochastic") { buf.withUnsafeMutableBufferPointer { _ = nf.roundInPlace($0, rounding: .stochastic(seed: 1), threads: threads) } }
            best("encode nearest (UInt16 codes)") {
                src.withUnsafeBufferPointer { s in codes.withUnsafeMutableBufferPointer { _ = nf.encode(s, into: $0, threads: threads) } }
            }
            best("decode (UInt16 codes)") {
                codes.withUnsafeBufferPointer { c in buf.withUnsafeMutableBufferPointer { _ = nf.decode(c, into: $0, threads: threads) } }
            }
            // what training does with a tensor it saves for backward (issue 14 §2): the values rounded once, then packed
            // into 1- or 2-byte codes and unpacked again, in spans of 4096 as the kernels read them (one thread)
            if let bytes = nf.packedBytes {
                var exact = src
                exact.withUnsafeMutableBufferPointer { _ = nf.roundInPlace($0, threads: threads) }
                let packed = UnsafeMutableRawPointer.allocate(byteCount: count * bytes, alignment: 64)
                defer { packed.deallocate() }
                var ok = true
                best("pack (\(bytes)-byte codes, spans of 4096; \(NumberFormat.kernelBuild) build)") {
                    exact.withUnsafeBufferPointer { s in
                        var i = 0
                        while i < count {
                            let n = min(4096, count - i)
                            ok = nf.packExactly(s.baseAddress! + i, count: n, into: packed + i * bytes) && ok
                            i += n
                        }
                    }
                }
                guard ok else { throw CLIError("formats bench: a rounded value did not pack (an engine bug)") }
                best("unpack (spans of 4096)") {
                    buf.withUnsafeMutableBufferPointer { b in
                        let unpacker = NumberFormat.Unpacker(nf)
                        var i = 0
                        while i < count {
                            let n = min(4096, count - i)
                            unpacker.unpack(packed, offset: i, count: n, into: b.baseAddress! + i)
                            i += n
                        }
                    }
                }
            }
        }
    }
}

/// A number with 3 significant decimals after the point, without Foundation.
private func format3(_ x: Double) -> String {
    let r = (x * 1000).rounded() / 1000
    return "\(r)"
}
