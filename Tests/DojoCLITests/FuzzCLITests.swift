import DojoCompiler
import DojoData
import DojoGraph
import DojoMachine
import DojoNN
import DojoNumerics
import DojoSim
import Foundation
import Testing

// Issue 12's fuzz harness: generated bad input — flag values, machine YAML and `--set`, validation CSV rows, plans,
// checkpoint headers and metadata, IDX headers — given to the library entry points in this process and to the `dojo`
// binary, each checked for: no crash, finished within a bound, an error that names the problem (one `Error:` line
// and a non-zero exit from the binary; a typed error that names the file from a library), nothing half-written, and
// no silent acceptance of a value no run can have. A fixed seed makes `make test` repeat the same cases (over 5,000);
// `make fuzz` runs many more with a new seed (FUZZ_SEED, FUZZ_SCALE). Before each case the harness writes it to
// FuzzLog.path, so a case that crashes the test process is there to replay.

enum Fuzz {
    static let environment = ProcessInfo.processInfo.environment
    static let seed: UInt64 = environment["FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_261_203
    /// Multiplies every case count (`make fuzz`: 20).
    static let scale: Double = environment["FUZZ_SCALE"].flatMap { Double($0) }.map { max(0.01, $0) } ?? 1
    static func count(_ n: Int) -> Int { max(1, Int((Double(n) * scale).rounded())) }

    /// Numbers a user can type, from plausible to absurd.
    static let numbers = ["0", "-0", "-1", "1", "2", "3", "7", "64", "1000", "2147483647", "2147483648", "4294967296",
                          "9007199254740993", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                          "99999999999999999999", "1e3", "1.5", "0.5", "-2.5", "1e-320", "1e308", "-1e308", "1e400", "nan",
                          "NaN", "inf", "-inf", "Infinity", "0x10", "1_000", "1,000", "１", "٣", "", " ", "abc", "1e", "--1"]
    /// Text a user can type where a name or path goes.
    /// (No system file: a wrong output path must never be able to replace /dev/null or /etc/passwd, even through a
    /// bug of the tool. `fifo` and `link` are a named pipe and a symbolic link each command-line case makes in its
    /// own folder.)
    static let texts = ["", " ", "ü", "\u{202E}x", "a,b", ",", "=", "x=y=z", "fifo", "link", "missing/x", "sub", "sub/",
                        "/proc/x", "/nonexistent-dir/x", "/nonexistent/f", "-", "--", "*", "💥", String(repeating: "a", count: 3000),
                        "tile", "dgx-h100", "exapodx2", "mlp", "gpt-175b", "resnet50"]
    static let units = ["", "GHz", "MHz", "THz", "MB", "GiB", "TB", "TB/s", "GB/s", "W", "kW", "ns", "us", "s", "%", "flops"]
}

/// SplitMix64 with the picks the generators need.
struct FuzzRandom {
    var g: SplitMix64
    init(_ seed: UInt64, _ stream: UInt64) { g = SplitMix64(seed: SplitMix64.mix(seed, stream)) }
    mutating func int(_ n: Int) -> Int { n <= 1 ? 0 : Int(g.next() % UInt64(n)) }
    mutating func chance(_ p: Double) -> Bool { Double(g.next() >> 11) / Double(1 << 53) < p }
    mutating func pick<T>(_ xs: [T]) -> T { xs[int(xs.count)] }
}

/// The case now running, on disk, so that a crash of the test process leaves its reproduction behind.
enum FuzzLog {
    static let path = NSTemporaryDirectory() + "dojo-fuzz-current-case.txt"
    static func current(_ what: String, _ i: Int, _ input: String) {
        try? Data("seed \(Fuzz.seed) scale \(Fuzz.scale): \(what) case \(i)\n\(input)\n".utf8).write(to: URL(fileURLWithPath: path))
    }
}

/// Collects the failures of one generator (at most a few printed in full) and how the cases ended.
struct FuzzTally {
    var name: String
    var cases = 0, errors = 0, accepted = 0
    var failures: [String] = []
    init(_ name: String) { self.name = name }
    mutating func fail(_ i: Int, _ input: String, _ why: String) {
        failures.append("\(name) case \(i) (seed \(Fuzz.seed)): \(why)\n  input: \(input.prefix(600))")
    }
    /// A case refused with an error: it must name what it is about (`naming`: its start; `mentioning`: anywhere)
    /// and leak nothing of Foundation or Swift.
    mutating func refused(_ i: Int, _ input: String, _ message: String, naming prefix: String? = nil, mentioning part: String? = nil) {
        errors += 1
        if let prefix, !message.hasPrefix(prefix) { fail(i, input, "the error does not start with '\(prefix)': \(message)") }
        if let part, !message.contains(part) { fail(i, input, "the error does not name \(part): \(message)") }
        if let leak = fuzzLeak(message) { fail(i, input, "the error leaks '\(leak)': \(message)") }
    }

    func report() {
        print("fuzz \(name): \(cases) cases, \(errors) refused with an error, \(accepted) accepted, \(failures.count) failures")
        for f in failures.prefix(12) { print("FUZZ FAILURE " + f); Issue.record(Comment(rawValue: f)) }
        if failures.count > 12 { Issue.record(Comment(rawValue: "\(name): \(failures.count - 12) more failures")) }
    }
}

/// Words that must never reach a user: Foundation and Swift internals instead of a sentence.
func fuzzLeak(_ text: String) -> String? {
    for bad in ["Error Domain=", "NSCocoaErrorDomain", "The operation could not be completed", "Fatal error", "Program crashed",
                "DecodingError", "EncodingError", "Swift.", "Optional(", "keyNotFound(", "typeMismatch(", "dataCorrupted("]
    where text.contains(bad) { return bad }
    return nil
}

// MARK: - The binary, bounded

/// Runs `dojo` in `directory` with a time bound; a run past it is killed (its whole process group).
func runDojoBounded(_ args: [String], in directory: String, timeout: Double) -> (status: Int32, signaled: Bool, timedOut: Bool, stdout: String, stderr: String) {
    guard let exe = dojoExecutableURL else { return (-1, false, false, "", "no dojo executable") }
    let out = directory + "/.fuzz-stdout", err = directory + "/.fuzz-stderr"
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    _ = FileManager.default.createFile(atPath: err, contents: nil)
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: directory)
    var env = ProcessInfo.processInfo.environment
    env["OMP_NUM_THREADS"] = "1"
    p.environment = env
    guard let o = FileHandle(forWritingAtPath: out), let e = FileHandle(forWritingAtPath: err) else { return (-1, false, false, "", "no output files") }
    p.standardOutput = o; p.standardError = e; p.standardInput = FileHandle.nullDevice
    let done = DispatchSemaphore(value: 0)
    p.terminationHandler = { _ in done.signal() }
    do { try p.run() } catch { return (-1, false, false, "", "cannot run: \(error)") }
    var timedOut = false
    if done.wait(timeout: .now() + timeout) == .timedOut {
        timedOut = true
        kill(p.processIdentifier, SIGKILL)
        done.wait()
    }
    try? o.close(); try? e.close()
    let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: err)
    return (p.terminationStatus, p.terminationReason == .uncaughtSignal, timedOut, stdout, stderr)
}

/// The files under `directory` (relative paths), leaving out the harness's own.
func fuzzFiles(_ directory: String) -> Set<String> {
    Set((FileManager.default.subpaths(atPath: directory) ?? []).filter { !$0.hasPrefix(".fuzz-") })
}

/// A flag of a command: what its values mean, so the harness knows which generated values no run can accept.
struct FuzzFlag {
    enum Kind {
        /// A whole number with its least valid value and a most valid value (beyond: an error).
        case count(min: Int, max: Int)
        /// A number in a range (ends included unless open).
        case real(min: Double, max: Double)
        /// One of these words.
        case word([String])
        /// Free text or a path: no value is known to be wrong in advance.
        case text([String])
    }
    var name: String
    var kind: Kind

    /// A value, and whether it is certainly wrong (then the run must fail).
    func value(_ r: inout FuzzRandom) -> (String, wrong: Bool) {
        switch kind {
        case let .count(lo, hi):
            if r.chance(0.25) { let v = lo + r.int(min(hi - lo + 1, 50)); return ("\(v)", false) }
            let s = r.pick(Fuzz.numbers)
            guard let v = Int(s) else { return (s, true) }
            return (s, v < lo || v > hi)
        case let .real(lo, hi):
            if r.chance(0.2) { return ("\(lo + (min(hi, lo + 10) - lo) * Double(r.int(1000)) / 1000)", false) }
            let s = r.pick(Fuzz.numbers)
            if s.hasPrefix("0x") { return (s, false) }   // a hex float to Swift, not to everyone
            guard let v = Double(s) else { return (s, true) }
            return (s, !(v >= lo && v <= hi))
        case let .word(words):
            if r.chance(0.5) { return (r.pick(words), false) }
            let s = r.pick(Fuzz.texts + Fuzz.numbers)
            return (s, !words.contains(s))
        case let .text(examples):
            return (r.chance(0.4) ? r.pick(examples) : r.pick(Fuzz.texts + Fuzz.numbers), false)
        }
    }
}

/// A command line to vary: fixed arguments that make a quick valid run, and the flags to fuzz.
struct FuzzCommand {
    var base: [String]
    var flags: [FuzzFlag]
    /// Cases of this command per make test.
    var weight: Int
}

let fuzzCommands: [FuzzCommand] = {
    let models = ["mlp", "small-cnn", "resnet18", "resnet50", "occupancy", "vit-b16", "bert-large", "gpt-125m", "gpt-175b", "llama2-7b",
                  "gpt:layers=2,hidden=64,heads=2,seq=32,vocab=100"]
    let machines = ["tile", "d1", "tray", "cabinet", "exapod", "d2", "dgx-a100", "dgx-h100", "dgx-v100", "dgx-h100x4", "exapodx2"]
    let plan = FuzzFlag(name: "--plan", kind: .text(["dp=2", "dp=2,tp=2", "pp=2,micro=4", "dp=4,pp=2,vp=2", "tp=0", "dp=1,zero=1", "mb=3", "dp=99999999999999999999", "vp=1025,pp=2", "dp=2,dp=4", ""]))
    let set = FuzzFlag(name: "--set", kind: .text(["node.clock=3GHz", "node.clock=0", "count=2", "count=9223372036854775807", "d1.mesh_rows=2147483648", "node.sram_bytes=1e308MB", "bogus=1", "calibration.matrix_efficiency=2", "=", "node.clock"]))
    let assume = FuzzFlag(name: "--assume", kind: .text(["memory_headroom=0.9", "memory_headroom=0", "step_overhead=1e308", "gradient_overlap=nan", "loader_workers=9223372036854775807", "fusion=2", "x=1"]))
    let batch = FuzzFlag(name: "--batch", kind: .count(min: 1, max: 1 << 40))
    return [
        FuzzCommand(base: ["sim", "--model", "mlp"], flags: [
            FuzzFlag(name: "--model", kind: .word(models)), batch, FuzzFlag(name: "--precision", kind: .word(["fp32", "bf16", "fp16", "fp8", "cfp8", "tf32"])),
            plan, FuzzFlag(name: "--devices", kind: .count(min: 1, max: 1 << 32)), assume,
            FuzzFlag(name: "--machine", kind: .text(machines)), set, FuzzFlag(name: "--trace", kind: .text(["t.json", "sub", "/proc/x", ""]))], weight: 130),
        FuzzCommand(base: ["compare", "--model", "mlp"], flags: [
            FuzzFlag(name: "--machines", kind: .text(["tile,dgx-h100", "tile,,d1", "tilex99999999999999999999", "tile,tile", "exapodx1000000"])),
            batch, FuzzFlag(name: "--model", kind: .word(models)), FuzzFlag(name: "--svg", kind: .text(["c.svg", "sub", "", "/proc/x"]))], weight: 40),
        FuzzCommand(base: ["sweep", "--model", "mlp", "--vary", "node.clock=1GHz..2GHz", "--steps", "3"], flags: [
            FuzzFlag(name: "--vary", kind: .text(["node.clock=1GHz..3GHz", "count=1..9223372036854775807", "node.sram_bytes=1MB,,2MB", "node.sram_bytes=-1MB..2MB", "x=1..2", "count=1e20..1e308", "node.clock=1GHz..1GB"])),
            FuzzFlag(name: "--steps", kind: .count(min: 2, max: 100)), batch, FuzzFlag(name: "--svg", kind: .text(["s.svg", "sub", ""]))], weight: 40),
        FuzzCommand(base: ["machine", "show"], flags: [
            FuzzFlag(name: "--set", kind: .text(["node.clock=2GHz", "count=0", "tile.chip_rows=2147483648", "node.clock=1e308THz", "count=2147483648"]))], weight: 30),
        FuzzCommand(base: ["graph", "--model", "mlp"], flags: [
            FuzzFlag(name: "--model", kind: .text(models + ["gpt:layers=1000000000", "gpt:hidden=2147483648", "vit:patch=0", "bert-large:seq=99999999999", "gpt:layers=2,layers=3"])),
            FuzzFlag(name: "--batch", kind: .count(min: 1, max: 1 << 24)), FuzzFlag(name: "--json", kind: .text(["g.json", "sub", ""]))], weight: 40),
        FuzzCommand(base: ["formats", "convert", "--format", "bf16", "1.5"], flags: [
            FuzzFlag(name: "--format", kind: .word(["bf16", "cfp8-143", "cfp8-152", "shp", "uhp", "fp32"])),
            FuzzFlag(name: "--bias", kind: .count(min: 0, max: 63)), FuzzFlag(name: "--rounding", kind: .word(["nearest", "stochastic"]))], weight: 30),
        FuzzCommand(base: ["formats", "bench", "--format", "bf16", "--count", "64", "--repeats", "1"], flags: [
            FuzzFlag(name: "--count", kind: .count(min: 1, max: 1 << 27)), FuzzFlag(name: "--threads", kind: .count(min: 1, max: 1024)),
            FuzzFlag(name: "--repeats", kind: .count(min: 1, max: 1000))], weight: 20),
        FuzzCommand(base: ["scenes", "--out", "s.png"], flags: [
            FuzzFlag(name: "--index", kind: .count(min: 0, max: 999_999_000)), FuzzFlag(name: "--count", kind: .count(min: 1, max: 1000)),
            FuzzFlag(name: "--cameras", kind: .count(min: 1, max: 8)), FuzzFlag(name: "--image-size", kind: .count(min: 8, max: 256)),
            FuzzFlag(name: "--grid-size", kind: .count(min: 2, max: 128)), FuzzFlag(name: "--scale", kind: .count(min: 1, max: 16)),
            FuzzFlag(name: "--out", kind: .text(["x.png", "sub", "", "/proc/x"]))], weight: 30),
        FuzzCommand(base: ["train", "--model", "mlp", "--data", "fashion-mnist", "--steps", "2", "--batch-size", "8", "--train-examples", "64",
                           "--eval-examples", "32", "--threads", "1", "--machine", "tile", "--out", "run"], flags: [
            FuzzFlag(name: "--steps", kind: .count(min: 1, max: 1_000_000_000)), FuzzFlag(name: "--batch-size", kind: .count(min: 1, max: 1_000_000_000)),
            FuzzFlag(name: "--lr", kind: .real(min: 1e-30, max: 3e38)), FuzzFlag(name: "--momentum", kind: .real(min: 0, max: 0.99)),
            FuzzFlag(name: "--weight-decay", kind: .real(min: 0, max: 3e38)), FuzzFlag(name: "--warmup", kind: .count(min: 0, max: 1_000_000_000)),
            FuzzFlag(name: "--precision", kind: .word(["fp32", "bf16", "cfp8"])), FuzzFlag(name: "--optimizer", kind: .word(["sgd", "adamw"])),
            FuzzFlag(name: "--schedule", kind: .word(["cosine", "constant"])), FuzzFlag(name: "--seed", kind: .text(["0", "18446744073709551615"])),
            FuzzFlag(name: "--threads", kind: .count(min: 1, max: 1024)), FuzzFlag(name: "--checkpoint-every", kind: .count(min: 0, max: 1_000_000_000)),
            FuzzFlag(name: "--train-examples", kind: .count(min: 1, max: 1_000_000_000)), FuzzFlag(name: "--eval-examples", kind: .count(min: 1, max: 1_000_000_000)),
            FuzzFlag(name: "--out", kind: .text(["run2", "/proc/x", "", "sub/../proc/y"])), FuzzFlag(name: "--checkpoint-dir", kind: .text(["ck", "/proc/x", ""])),
            FuzzFlag(name: "--data-dir", kind: .text(["/etc/passwd", "sub", ""])), FuzzFlag(name: "--machine", kind: .text(machines)),
            FuzzFlag(name: "--plan", kind: .text(["dp=2", "pp=2", "dp=0", "tp=2"])), FuzzFlag(name: "--positive-weight", kind: .text(["2", "-1"]))], weight: 45),
        FuzzCommand(base: ["cluster", "replay", "/work/shared/data/traces/openb_pod_list_default.csv", "--jobs", "40", "--gang-jobs", "3", "--policy", "fifo"], flags: [
            FuzzFlag(name: "--jobs", kind: .count(min: 0, max: 10_000_000)), FuzzFlag(name: "--gang-jobs", kind: .count(min: 0, max: 10_000)),
            FuzzFlag(name: "--time-scale", kind: .real(min: 1e-3, max: 1e6)), FuzzFlag(name: "--mtbf-hours", kind: .text(["0", "1", "100", "1000"])),
            FuzzFlag(name: "--policy", kind: .word(["fifo", "fifo-backfill", "opendojo"])), FuzzFlag(name: "--machine", kind: .text(["tile", "tray", "exapod", "dgx-h100"]))], weight: 25),
        FuzzCommand(base: ["validate", "--only", "dle-resnet50-a100-1g"], flags: [
            FuzzFlag(name: "--only", kind: .text(["zzz", "dle", ""])), FuzzFlag(name: "--set", kind: .text(["calibration.matrix_efficiency=0.5", "bogus=1", "count=0"])),
            FuzzFlag(name: "--cases", kind: .text(["/nonexistent.csv", "fifo", "sub", ""]))], weight: 15),
    ]
}()

@Suite("fuzz: bad input is an error that names it, never a crash, hang, or silent acceptance", .serialized)
struct FuzzCLITests {
    // MARK: machine files and --set, in this process

    /// Mutated preset YAML (values, units, lines deleted, duplicated, renamed, truncated): decoding throws a
    /// MachineError naming the file, or gives a machine whose totals are finite and positive, on which a quick
    /// prediction either answers with a finite step or says why not.
    @Test func machineFiles() throws {
        var r = FuzzRandom(Fuzz.seed, 1)
        var t = FuzzTally("machine YAML")
        let (graph, _) = (try GraphRecorder.record(model: "mlp", batch: 1, optimizer: .sgd, inputShape: [1, 28, 28], classes: 10), 0)
        for i in 0..<Fuzz.count(1500) {
            let name = r.pick(Presets.names)
            var lines = Presets.yaml(name)!.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for _ in 0..<(1 + r.int(3)) {
                let k = r.int(lines.count)
                switch r.int(8) {
                case 0: lines.remove(at: k)
                case 1: lines.insert(lines[k], at: k)
                case 2: lines[k] = lines[k].replacingOccurrences(of: ":", with: "x:", options: [], range: lines[k].range(of: ":"))
                case 3: lines.insert(r.pick(["count: 0", "top: exapod", "  extra: 1", "node: {}", "- 1", "kind: cpu", ": :", "\t"]), at: k)
                default:
                    // a scalar value: `value: X` inside a {…}, or `key: X`
                    let line = lines[k]
                    let v = r.pick(Fuzz.numbers) + (r.chance(0.5) ? r.pick(Fuzz.units) : "")
                    if let range = line.range(of: #"value: [^,}]*"#, options: .regularExpression) {
                        lines[k] = line.replacingCharacters(in: range, with: "value: \(v)")
                    } else if let range = line.range(of: #":\s.*$"#, options: .regularExpression) {
                        lines[k] = line.replacingCharacters(in: range, with: ": \(v)")
                    }
                }
            }
            var text = lines.joined(separator: "\n")
            if r.chance(0.05) { text = String(text.prefix(r.int(text.count))) }
            FuzzLog.current("machine YAML", i, text)
            if let m = machineCase(i, text, naming: "fuzz.yaml", tally: &t, { try Machine.decode(yaml: text, file: "fuzz.yaml") }), i % 8 == 0 {
                predictQuickly(graph: graph, on: m, tally: &t, case: i, input: text)
            }
        }
        t.report()
    }

    /// `--set KEY=VALUE` on every preset with generated values: an error that names the --set, or a machine with
    /// finite totals.
    @Test func overrides() throws {
        var r = FuzzRandom(Fuzz.seed, 2)
        var t = FuzzTally("--set")
        let presets = try Presets.names.map { try Presets.load($0) }
        for i in 0..<Fuzz.count(700) {
            let m = r.pick(presets)
            var o: [String: String] = [:]
            for _ in 0..<(1 + r.int(2)) {
                let key = r.chance(0.9) ? r.pick(m.parameters).path : r.pick(["bogus", "node", "count.x", "", "d1.mesh_rows.value"])
                o[key] = r.pick(Fuzz.numbers) + (r.chance(0.4) ? r.pick(Fuzz.units) : "")
            }
            let input = "\(m.name) \(o.sorted { $0.key < $1.key })"
            FuzzLog.current("--set", i, input)
            _ = machineCase(i, input, naming: "--set ", tally: &t) { try m.with(o) }
        }
        t.report()
    }

    /// A machine made from generated input: a MachineError that starts with `prefix`, or a machine whose totals are
    /// finite and not negative (returned).
    func machineCase(_ i: Int, _ input: String, naming prefix: String, tally t: inout FuzzTally, _ make: () throws -> Machine) -> Machine? {
        t.cases += 1
        do {
            let m = try make()
            t.accepted += 1
            let total = m.total
            for (what, x) in [("peak fp32", total.peak.fp32), ("peak bf16", total.peak.bf16), ("memory", total.hbmBytes + total.sramBytes)]
            where !x.isFinite || x < 0 {
                t.fail(i, input, "accepted a machine whose \(what) is \(x)")
            }
            return m
        } catch let e as MachineError {
            t.refused(i, input, e.description, naming: prefix)
        } catch {
            t.errors += 1
            t.fail(i, input, "not a MachineError: \(type(of: error)) \(error)")
        }
        return nil
    }

    /// A prediction of a small step on a fuzzed machine: an answer with a finite positive step time, or an error.
    func predictQuickly(graph: Graph, on m: Machine, tally t: inout FuzzTally, case i: Int, input: String) {
        let start = Date()
        do {
            let sim = try StepSimulator(workload: Workload(graph: graph, globalBatch: 64, precision: .fp32), machine: m, costModel: m.opCostModel())
            let p = try sim.predict()
            if !(p.stepSeconds.isFinite && p.stepSeconds > 0) { t.fail(i, input, "predicted a step of \(p.stepSeconds) s") }
        } catch {
            if let leak = fuzzLeak("\(error)") { t.fail(i, input, "prediction error leaks '\(leak)': \(error)") }
        }
        if Date().timeIntervalSince(start) > 20 { t.fail(i, input, "a prediction took \(Int(Date().timeIntervalSince(start))) s") }
    }

    // MARK: validation CSV rows and plans, in this process

    /// Rows of the shipped validation CSV with one or two fields replaced: a ValidationDataError naming the line and
    /// column, or cases whose counts stay within the limits.
    @Test func validationRows() throws {
        var r = FuzzRandom(Fuzz.seed, 3)
        var t = FuzzTally("validation CSV")
        let table = try CSVTable(parsing: Validation.shippedCSV(), file: "shipped")
        let special: [String: [String]] = [
            "gpus": Fuzz.numbers, "nodes": Fuzz.numbers, "global_batch": Fuzz.numbers, "value": Fuzz.numbers,
            "parallelism": ["DP=99999999999999999999", "TP=0", "DP=8;TP=9223372036854775807;PP=2", "PP=4 (interleaved x99999999999)", "grad-accum 0",
                            "model-parallel (TPxPP)=4294967296", "dp=2,dp=4", "CP=2", "DP=8;DP=16", "microbatch 9223372036854775807", ";;", "dp=4294967296,tp=4096,pp=4096"],
            "model_detail": ["seq 99999999999999999999", "seq 0", "hidden 9999999999, 99 layers, seq 2048", "96 layers, hidden 12288, seq 2048, vocab 0",
                             "micro-batch 0/GPU", "0 accumulation", "1 epochs x 99999999999999999999 images", "9999999999999999 tokens", "as above"],
            "metric": ["vibes", "", "training throughput", "time-to-train", "MLPerf time-to-train"],
            "unit": ["images/s", "hours", "tokens/s/gpu", "TFLOP/s/GPU", "ms", "furlongs", ""],
            "precision": ["fp32", "tf32", "amp", "fp8", "int4", ""], "gpu": ["A100", "H100", "V100", "TPU", ""],
        ]
        for i in 0..<Fuzz.count(1200) {
            var record = r.pick(table.records)
            for _ in 0..<(1 + r.int(2)) {
                let c = r.int(table.header.count)
                let column = table.header[c]
                record.fields[c] = r.pick(special[column] ?? (Fuzz.numbers + Fuzz.texts))
            }
            if r.chance(0.3) { record.fields[table.header.firstIndex(of: "nodes")!] = "" }
            let row = record.fields.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ",")
            let text = table.header.joined(separator: ",") + "\n" + row + "\n"
            FuzzLog.current("validation CSV", i, text)
            t.cases += 1
            do {
                let cases = try Validation.parseCases(csv: text, file: "fuzz.csv")
                t.accepted += 1
                for c in cases {
                    if c.gpus < 1 || c.gpus > Limits.devices || c.nodes < 1 || c.globalBatch < 1 || c.globalBatch > Limits.batch
                        || !(c.measured.isFinite && c.measured > 0) {
                        t.fail(i, text, "accepted gpus \(c.gpus), nodes \(c.nodes), batch \(c.globalBatch), value \(c.measured)")
                    }
                    if c.nodes > c.gpus { t.fail(i, text, "accepted \(c.nodes) nodes for \(c.gpus) GPUs") }
                }
            } catch let e as ValidationDataError {
                t.refused(i, text, e.description, naming: "fuzz.csv")
            } catch {
                t.refused(i, text, "\(error)")
            }
        }
        t.report()
    }

    /// `--plan` text: a PlanError, or a plan whose counts stay within the limits.
    @Test func plans() {
        var r = FuzzRandom(Fuzz.seed, 4)
        var t = FuzzTally("plans")
        let keys = ["dp", "tp", "pp", "mb", "micro", "vp", "recompute", "zero", "sp", "DP", "x", ""]
        for i in 0..<Fuzz.count(800) {
            let text = (0..<(1 + r.int(4))).map { _ in
                r.chance(0.1) ? r.pick(Fuzz.texts) : "\(r.pick(keys))=\(r.pick(Fuzz.numbers + ["none", "full", "selective", "true", "yes"]))"
            }.joined(separator: r.chance(0.9) ? "," : ";")
            FuzzLog.current("plans", i, text)
            t.cases += 1
            do {
                let p = try PlanSpec(parsing: text)
                t.accepted += 1
                for (v, most) in [(p.dataParallel, Limits.devices), (p.tensorParallel, Limits.modelParallel), (p.pipelineParallel, Limits.modelParallel),
                                  (p.virtualStages, Limits.virtualStages), (p.microBatch, Limits.batch), (p.microBatches, Limits.batch)] {
                    if let v, v < 1 || v > most { t.fail(i, text, "accepted \(v) (most \(most))") }
                }
            } catch let e as PlanError {
                t.refused(i, text, e.description)
            } catch {
                t.fail(i, text, "not a PlanError: \(error)")
            }
        }
        t.report()
    }

    // MARK: checkpoints and IDX files, in this process

    /// A real MLP checkpoint with its header (tensor entries, metadata, the configuration inside it), length
    /// prefix or bytes changed, resumed into an MLP trainer: a clear error naming the file, or a resumed run whose
    /// position lies within its own run.
    @Test func checkpoints() throws {
        let dir = NSTemporaryDirectory() + "dojo-fuzz-ckpt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = runDojo(["train", "--model", "mlp", "--data", "fashion-mnist", "--train-examples", "64", "--eval-examples", "32",
                            "--batch-size", "8", "--steps", "5", "--threads", "1", "--machine", "tile", "--out", dir])
        try #require(made.status == 0, "\(made.stderr)")
        let original = try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint.safetensors"))
        let headerLength = Int(original.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: original.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        let body = original.suffix(from: 8 + headerLength)

        let trainSet = try FashionMNIST(split: .train, limit: 64)
        let config = TrainingConfig(model: "mlp", dataset: "fashion-mnist", epochs: 1, maxSteps: 5, batchSize: 8, learningRate: 0.05, seed: 0)
        let trainer = try Trainer(config: config, model: try ModelZoo.make("mlp", inputShape: trainSet.inputShape, classes: 10, seed: 0),
                                  task: .classification, train: try DataLoader(dataset: trainSet, batchSize: 8, shuffle: true, augment: false, seed: 0),
                                  eval: nil, checkpointDirectory: nil)
        var r = FuzzRandom(Fuzz.seed, 5)
        var t = FuzzTally("checkpoints")
        let path = dir + "/fuzzed.safetensors"
        func serialize(_ h: [String: Any]) -> Data {
            let json = (try? JSONSerialization.data(withJSONObject: h, options: [.sortedKeys])) ?? Data("{".utf8)
            var n = UInt64(json.count).littleEndian
            return Data(bytes: &n, count: 8) + json + body
        }
        for i in 0..<Fuzz.count(700) {
            var data: Data
            var what: String
            var h = header
            switch r.int(6) {
            case 0, 1:
                var meta = h["__metadata__"] as! [String: String]
                let key = r.pick(Array(meta.keys.sorted()) + ["format", "step", "epoch", "batch_in_epoch"])
                if key == "config", var cfg = (try? JSONSerialization.jsonObject(with: Data(meta["config"]!.utf8))) as? [String: Any] {
                    let field = r.pick(Array(cfg.keys.sorted()))
                    let raw = r.pick(Fuzz.numbers)
                    cfg[field] = r.chance(0.15) ? nil : (Double(raw).map { $0.isFinite ? $0 as Any : raw as Any } ?? raw as Any)
                    meta["config"] = String(decoding: (try? JSONSerialization.data(withJSONObject: cfg)) ?? Data(), as: UTF8.self)
                    what = "config.\(field)=\(String(describing: cfg[field]))"
                } else {
                    meta[key] = r.chance(0.1) ? nil : r.pick(Fuzz.numbers + Fuzz.texts)
                    what = "metadata \(key)=\(meta[key] ?? "(removed)")"
                }
                h["__metadata__"] = meta
                data = serialize(h)
            case 2:
                let name = r.pick(h.keys.filter { $0 != "__metadata__" }.sorted())
                var entry = h[name] as! [String: Any]
                switch r.int(3) {
                case 0: entry["dtype"] = r.pick(["F16", "BF16", "I64", "F64", "", "F32 "])
                case 1: entry["shape"] = [r.pick([0, -1, 1, 2147483648, Int.max]), 10]
                default: entry["data_offsets"] = [r.pick([0, 8, -8, Int.max, 1 << 40]), r.pick([0, 16, Int.max, 1 << 40])]
                }
                h[name] = entry
                what = "tensor \(name) = \(entry)"
                data = serialize(h)
            case 3:
                data = original
                var n = UInt64(r.pick([0, 1, 7, UInt64(headerLength) + 1, UInt64(headerLength) - 1, UInt64.max, 1 << 62, UInt64(original.count)])).littleEndian
                data.replaceSubrange(0..<8, with: Data(bytes: &n, count: 8))
                what = "header length \(UInt64(littleEndian: n))"
            case 4:
                data = original.prefix(r.int(original.count))
                what = "truncated to \(data.count) bytes"
            default:
                data = original
                for _ in 0..<(1 + r.int(4)) {
                    let k = r.chance(0.7) ? 8 + r.int(headerLength) : r.int(data.count)
                    data[k] = UInt8(r.int(256))
                }
                what = "bytes flipped"
            }
            try data.write(to: URL(fileURLWithPath: path))
            FuzzLog.current("checkpoints", i, what)
            t.cases += 1
            do {
                try trainer.resume(from: path)
                t.accepted += 1
                if trainer.step > trainer.totalSteps { t.fail(i, what, "resumed at step \(trainer.step) of a run of \(trainer.totalSteps)") }
            } catch {
                t.refused(i, what, "\(error)", mentioning: path)
            }
        }
        t.report()
    }

    /// The four Fashion-MNIST IDX files with generated headers (magic, dimensions, counts, truncation, labels out
    /// of range, gzip of any of them, a folder or an empty file in a file's place): a DataError naming the file,
    /// or a data set whose counts and labels are those of the files.
    @Test func idxFiles() throws {
        let dir = NSTemporaryDirectory() + "dojo-fuzz-idx-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = FuzzRandom(Fuzz.seed, 6)
        var t = FuzzTally("IDX files")
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
        let weird: [UInt32] = [0, 1, 3, 27, 28, 29, 255, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 20]
        for i in 0..<Fuzz.count(400) {
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let n = 1 + r.int(6)
            var images: [UInt8] = be32(0x803) + be32(UInt32(n)) + be32(28) + be32(28) + [UInt8](repeating: 7, count: n * 784)
            var labels: [UInt8] = be32(0x801) + be32(UInt32(n)) + (0..<n).map { UInt8($0 % 10) }
            var what = "n=\(n)"
            switch r.int(7) {
            case 0: let k = r.int(4); images.replaceSubrange((4 * k)..<(4 * k + 4), with: be32(r.pick(weird))); what += " images header word \(k)"
            case 1: let k = r.int(2); labels.replaceSubrange((4 * k)..<(4 * k + 4), with: be32(r.pick(weird))); what += " labels header word \(k)"
            case 2: images = Array(images.prefix(r.int(images.count))); what += " images truncated to \(images.count)"
            case 3: labels = Array(labels.prefix(r.int(labels.count))); what += " labels truncated to \(labels.count)"
            case 4: labels[8 + r.int(n)] = UInt8(10 + r.int(246)); what += " a label out of range"
            case 5: images[r.int(16)] = UInt8(r.int(256)); what += " a header byte"
            default: break
            }
            let names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
            for (k, bytes) in [images, labels].enumerated() {
                let p = dir + "/" + names[k]
                switch r.int(10) {
                case 0: try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true); what += " \(names[k]) a folder"
                case 1: _ = FileManager.default.createFile(atPath: p, contents: nil); what += " \(names[k]) empty"
                case 2: _ = FileManager.default.createFile(atPath: p + ".gz", contents: Data([0x1F, 0x8B] + bytes.prefix(20))); what += " \(names[k]).gz corrupt"
                default: _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
                }
            }
            let limit: Int? = r.chance(0.3) ? r.pick([0, -1, 1, 3, Int.max]) : nil
            FuzzLog.current("IDX files", i, what + " limit \(String(describing: limit))")
            t.cases += 1
            do {
                let set = try FashionMNIST(split: .train, directory: dir, limit: limit)
                t.accepted += 1
                if set.count < 1 || set.count > n { t.fail(i, what, "accepted \(set.count) examples of \(n)") }
            } catch {
                t.refused(i, what, error.description, mentioning: error.description.contains("limit") ? "limit" : dir)
            }
        }
        t.report()
    }

    // MARK: the binary

    /// Generated flag values for every command that does not need a server: each run ends on its own within 60 s,
    /// without a signal; a failure has exactly one `Error:` line, says nothing of Foundation, and leaves no file
    /// behind; a value no run can have (a count out of range, NaN, a word the flag does not know) fails.
    @Test func commandLines() throws {
        var r = FuzzRandom(Fuzz.seed, 7)
        var t = FuzzTally("command lines")
        let root = NSTemporaryDirectory() + "dojo-fuzz-cli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hasTrace = FileManager.default.fileExists(atPath: "/work/shared/data/traces/openb_pod_list_default.csv")
        var i = 0
        for command in fuzzCommands where hasTrace || command.base.first != "cluster" {
            for _ in 0..<Fuzz.count(command.weight) {
                let dir = root + "/\(i)"
                try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
                #expect(mkfifo(dir + "/fifo", 0o600) == 0)
                try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "sub/target")
                var args = command.base
                var wrong: [String: String] = [:]
                for _ in 0..<(1 + r.int(2)) {
                    let flag = r.pick(command.flags)
                    let (v, isWrong) = flag.value(&r)
                    // later flags win in ArgumentParser for single values: drop the base's own
                    if let k = args.firstIndex(of: flag.name), k + 1 < args.count, !["--set", "--assume", "--only"].contains(flag.name) {
                        args.removeSubrange(k...(k + 1))
                    }
                    args += r.chance(0.15) ? ["\(flag.name)=\(v)"] : [flag.name, v]
                    // flags that take many values (--set, --assume, --only) keep every wrong one; others the last
                    if isWrong { wrong[flag.name + (["--set", "--assume", "--only"].contains(flag.name) ? v : "")] = "\(flag.name) \(v)" }
                    else if !["--set", "--assume", "--only"].contains(flag.name) { wrong[flag.name] = nil }
                }
                if args.first == "machine" { args.insert(r.pick(["tile", "d1", "dgx-h100", "exapodx3", "fifo", "sub", "nope", ""]), at: 2) }
                let input = args.map { $0.count > 80 ? String($0.prefix(20)) + "…(\($0.count) chars)" : $0 }.joined(separator: " ")
                FuzzLog.current("command lines", i, input)
                let before = fuzzFiles(dir)
                let run = runDojoBounded(args, in: dir, timeout: 60)
                t.cases += 1
                if run.timedOut { t.fail(i, input, "did not finish within 60 s") }
                else if run.signaled || run.status >= 128 || run.status < 0 { t.fail(i, input, "crashed (status \(run.status)): \(run.stderr.suffix(400))") }
                if let leak = fuzzLeak(run.stderr + run.stdout) { t.fail(i, input, "leaks '\(leak)': \(run.stderr.prefix(400))") }
                if run.status == 0 {
                    t.accepted += 1
                    if !wrong.isEmpty { t.fail(i, input, "accepted \(wrong.values.sorted().joined(separator: ", "))") }
                } else if !run.timedOut && !run.signaled {
                    t.errors += 1
                    let errorLines = run.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
                    if errorLines.count != 1 { t.fail(i, input, "\(errorLines.count) 'Error:' lines: \(run.stderr.prefix(400))") }
                    let after = fuzzFiles(dir)
                    // (a run that trained and then failed, its loss gone NaN, keeps its last good checkpoint)
                    if after != before && !run.stderr.contains("the loss became") { t.fail(i, input, "failed but left \(after.subtracting(before).sorted().prefix(5))") }
                }
                try? FileManager.default.removeItem(atPath: dir)
                var st = stat()
                if stat("/dev/null", &st) != 0 || st.st_mode & S_IFMT != S_IFCHR {
                    Issue.record("/dev/null is no longer a device after case \(i): \(input)")
                    return
                }
                i += 1
            }
        }
        t.report()
    }
}
