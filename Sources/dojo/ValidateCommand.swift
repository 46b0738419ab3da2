import ArgumentParser
import DojoMachine
import DojoReport
import DojoSim
import Foundation

/// `dojo validate`: the simulator's predictions beside published GPU training measurements, with the error.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Compare the simulator's predictions with published GPU training measurements.",
        discussion: """
        Runs the simulator on every published measurement in the validation data (27 by default: ResNet-50, \
        BERT-Large, GPT and Llama 2 training on DGX V100, A100 and H100 systems, from NVIDIA's \
        DeepLearningExamples, Megatron-LM, NeMo and MLPerf logs; each row names its source) and prints the \
        predicted and measured value and the error (predicted / measured - 1). Throughput and step-time cases \
        give the mean absolute error; time-to-train cases are scored apart, as they also depend on convergence. \
        Cases whose model the zoo lacks are skipped with the reason. --verbose prints every assumption made in \
        reading each row. Exit status 1 when a case failed to simulate (the report is still printed) or the \
        data is bad (the message names the file, line and column).
        """)

    @Option(name: .customLong("cases"), help: ArgumentHelp(
        "A CSV file in the schema of the shipped data (docs/VALIDATION.md); default: the shipped 27 cases.",
        valueName: "file.csv"))
    var casesFile: String?

    @Option(name: .customLong("only"), help: ArgumentHelp(
        "Run only the cases whose id contains this text (repeatable).", valueName: "text"))
    var only: [String] = []

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Change a machine parameter in every case: KEY=VALUE, e.g. calibration.matrix_efficiency=0.6 (repeatable).",
        valueName: "key=value"))
    var overrides: [String] = []

    @Option(name: .customLong("assume"), help: ArgumentHelp(
        "Change a step-model assumption in every case, over what the case's source says: KEY=VALUE with a dojo sim --assume key (\(SimOptions.keys.joined(separator: ", "))) (repeatable).",
        valueName: "key=value"))
    var assume: [String] = []

    @Option(name: .customLong("leave-out"), help: ArgumentHelp(
        "Instead: re-derive each constant fitted on published rows (\(LeaveOut.knobs.map(\.key).joined(separator: ", "))) without the cases whose source or id contains this text, and report those cases' error with the shipped and the re-derived value.",
        valueName: "source"))
    var leaveOut: String?

    @Flag(name: .long, help: "Print JSON: {cases: [{id, predicted, measured, unit, error, …}], mean_abs_error, …}.")
    var json = false

    @Flag(name: .long, help: "Also print each case's source, metric conversion and every assumption in its mapping.")
    var verbose = false

    @Flag(name: .long, help: "Instead: Tesla's public Dojo claims (one tile replaces 6 GPU boxes; Dojo 2 = 10× Dojo 1) beside the prediction, as soft checks.")
    var dojo = false

    @Flag(name: .long, help: "Instead: run plans for real on this machine with dojo train over MPI (small-cnn and the occupancy network on 1, 2 and 4 ranks, data- and pipeline-parallel; ViT-Tiny on 1 and 2) beside the simulator's prediction on a machine file `dojo machine calibrate` measured (in the same run, unless --machine gives one).")
    var local = false

    @Option(name: .long, help: "With --local: the cpu machine file to predict on. (default: calibrate this machine first)")
    var machine: String?

    @Option(name: .long, help: "With --local: training steps per plan (the median step time after the third is measured). (default: 16)")
    var steps: Int?

    @Option(name: .long, help: "With --local: runs of each plan, the plans in turn; each plan's measured step is the median of its runs (a slow minute of a shared machine lands on one run of each plan, not on every run of one). (default: 3)")
    var rounds: Int?

    func validate() throws {
        if !local && (machine != nil || steps != nil || rounds != nil) { throw ValidationError("--machine, --steps and --rounds go with --local") }
        if let steps, !(5...10_000).contains(steps) { throw ValidationError("--steps must be 5…10000, got \(steps)") }
        if let rounds, !(1...20).contains(rounds) { throw ValidationError("--rounds must be 1…20, got \(rounds)") }
        if let l = leaveOut {
            if l.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--leave-out needs the text of a source (e.g. DeepLearningExamples, mlcommons, NeMo)") }
            if local || dojo || json || verbose { throw ValidationError("--leave-out prints its own table: --local, --dojo, --json and --verbose do not go with it") }
        }
        if local && (casesFile != nil || !overrides.isEmpty || !assume.isEmpty || dojo) { throw ValidationError("--local runs its own plans: --cases, --set, --assume and --dojo do not go with it") }
        if dojo && (casesFile != nil || !overrides.isEmpty || !assume.isEmpty || !only.isEmpty) {
            throw ValidationError("--dojo checks Tesla's public Dojo claims on the presets: --cases, --set, --assume and --only go with the published GPU runs (leave out --dojo)")
        }
        _ = try Self.keyValues(overrides, flag: "--set", example: "calibration.matrix_efficiency=0.6")
        var probe = SimOptions()
        for (k, v) in try Self.keyValues(assume, flag: "--assume", example: "attention_efficiency=0.5") {
            do { try probe.set(k, v) } catch { throw ValidationError("--assume '\(k)=\(v)': \(error)") }
        }
    }

    /// KEY=VALUE options as a dictionary (a later one wins); a malformed one is an error naming the flag.
    static func keyValues(_ items: [String], flag: String, example: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for item in items {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ValidationError("\(flag) '\(item)' is not KEY=VALUE (e.g. \(example))")
            }
            out[String(item[..<eq])] = String(item[item.index(after: eq)...])
        }
        return out
    }

    func run() throws {
        if local {
            let results = try LocalValidation.run(machineFile: machine, steps: steps ?? 16, rounds: rounds ?? 3, only: only, json: json)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys, .prettyPrinted]
                let mean = results.map { abs($0.error) }.reduce(0, +) / Double(max(results.count, 1))
                struct Out: Encodable { var cases: [LocalResult]; var mean_abs_error: Double; var max_abs_error: Double }
                print(String(decoding: try enc.encode(Out(cases: results, mean_abs_error: mean, max_abs_error: results.map { abs($0.error) }.max() ?? 0)), as: UTF8.self))
            } else {
                print(LocalValidation.render(results, machine: machine ?? "this machine (calibrated now)"))
            }
            return
        }
        if dojo {
            let results = checkDojoClaims()
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys, .prettyPrinted]
                print(String(decoding: try enc.encode(["claims": results]), as: UTF8.self))
            } else {
                print(renderClaims(results))
            }
            return
        }
        var cases = try casesFile.map { try Validation.loadCases(file: $0) } ?? Validation.shippedCases()
        if !only.isEmpty {
            cases = cases.filter { c in only.contains { c.id.contains($0) } }
            guard !cases.isEmpty else {
                throw CLIError("--only \(only.joined(separator: ", ")): no case id contains it")
            }
        }
        let changes = try Self.keyValues(overrides, flag: "--set", example: "calibration.matrix_efficiency=0.6")
        let assumed = try Self.keyValues(assume, flag: "--assume", example: "attention_efficiency=0.5")
        // Every case's machine must resolve (a bad --set names the preset file and key path).
        var resolved: Set<String> = []
        for i in cases.indices {
            cases[i].machineOverrides.merge(changes) { _, new in new }
            cases[i].assumptions.merge(assumed) { _, new in new }
            let key = cases[i].machineDescription
            if cases[i].unsupported == nil, resolved.insert(key).inserted { _ = try cases[i].machine() }
        }

        if let text = leaveOut {
            print(try LeaveOut.run(cases, leaving: text))
            return
        }
        let report = Validation.evaluate(cases, simulate: simulateValidationCase)
        if json {
            print(try report.json())
        } else {
            print(renderValidation(report, cases: cases, source: casesFile ?? Validation.shippedFile, verbose: verbose))
        }
        let failed = report.count(.failed)
        if failed > 0 {
            FileHandle.standardError.write(Data("dojo validate: \(failed) of \(cases.count) cases failed to simulate\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// A measured or predicted value: whole numbers with thousands separators from 1,000 up, else 4 significant digits.
func validationNumber(_ x: Double) -> String {
    if abs(x) >= 1000 && abs(x) < 1e15 { return formatThousands(Int(x.rounded())) }
    if !(abs(x) < 1e15) { return String(format: "%.4g", x) }
    return String(format: "%.4g", x)
}

/// A signed error in percent: "+4.2%", "-9.1%".
func validationError(_ e: Double) -> String {
    (e >= 0 ? "+" : "") + formatPercent(e)
}

/// The text report of `dojo validate`.
func renderValidation(_ report: ValidationReport, cases: [ValidationCase], source: String, verbose: Bool) -> String {
    let byID = Dictionary(cases.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    var out = "dojo validate: \(cases.count) published GPU training measurements (\(source))\n\n"
    func table(_ kind: MetricKind) -> String {
        var t = TextTable(headers: ["id", "model", "machine", "plan", "predicted", "measured", "unit", "error"],
                          alignments: [.left, .left, .left, .left, .right, .right, .left, .right])
        for r in report.cases where r.kind == kind {
            let predicted: String
            switch r.status {
            case .ok: predicted = r.predicted.map(validationNumber) ?? "—"
            case .skipped: predicted = "skipped"
            case .failed: predicted = "failed"
            }
            t.addRow([r.id, r.model, r.machine, r.plan.isEmpty ? "—" : r.plan, predicted, validationNumber(r.measured),
                      r.unit, r.error.map(validationError) ?? "—"])
        }
        return t.render()
    }
    let hasTTT = report.cases.contains { $0.kind == .timeToTrain }
    out += "Throughput and step time\n" + table(.throughput)
    if hasTTT { out += "\nTime to train (scored apart: it also depends on convergence)\n" + table(.timeToTrain) }
    out += "\n"

    func summary(_ label: String, _ kind: MetricKind, mean: Double?, max: Double?) -> String {
        let all = report.cases.filter { $0.kind == kind }
        let ok = all.filter { $0.status == .ok }
        guard let mean, let max else {
            return "\(label): mean |error| — (no case predicted, of \(all.count))\n"
        }
        let worst = ok.max { abs($0.error ?? 0) < abs($1.error ?? 0) }?.id ?? ""
        return "\(label): mean |error| \(formatPercent(mean)) over \(ok.count) of \(all.count) cases; max \(formatPercent(max)) (\(worst))\n"
    }
    out += summary("Throughput and step time", .throughput, mean: report.meanAbsError, max: report.maxAbsError)
    if hasTTT {
        out += summary("Time to train", .timeToTrain, mean: report.timeToTrainMeanAbsError, max: report.timeToTrainMaxAbsError)
    }
    for r in report.cases where r.status == .skipped {
        out += "skipped \(r.id): \(r.message ?? "")\n"
    }
    // Failures grouped by message, so a simulator that is not wired is one line, not 26.
    var groups: [(message: String, ids: [String])] = []
    for r in report.cases where r.status == .failed {
        let m = r.message ?? "failed"
        if let i = groups.firstIndex(where: { $0.message == m }) { groups[i].ids.append(r.id) } else { groups.append((m, [r.id])) }
    }
    for g in groups {
        out += "failed (\(g.ids.count)): \(g.message): \(g.ids.joined(separator: ", "))\n"
    }
    let warned = report.cases.filter { $0.status == .ok && $0.message != nil }
    for r in warned { out += "note \(r.id): \(r.message!)\n" }

    if verbose {
        out += "\nHow each case was read (every ASSUMPTION is listed):\n"
        for r in report.cases {
            guard let c = byID[r.id] else { continue }
            out += "\n\(c.id)  (\(c.file):\(c.line))\n"
            out += "  published: \(c.system.isEmpty ? "" : c.system + "; ")\(c.gpus) × \(c.gpuName); \(c.modelName); global batch \(formatThousands(c.globalBatch))\n"
            out += "  machine: \(c.machineDescription); gpus \(c.gpus); model \(c.modelSpec ?? "— (unsupported)"); precision \(c.precision.rawValue); plan \(c.planDescription.isEmpty ? "—" : c.planDescription)\n"
            out += "  metric: \(validationNumber(c.measured)) \(c.unit) = \(c.metric.conversion)\n"
            if let s = c.measuredStepSeconds { out += "  measured step time implied: \(validationNumber(s)) s\n" }
            if let step = r.simulated {
                out += "  simulated: \(validationNumber(step.stepSeconds)) s per step of \(step.globalBatch) on \(step.devices) devices, plan \(step.plan)\(step.note.map { "; \($0)" } ?? "")\n"
            }
            for n in c.notes { out += "  - \(n)\n" }
            if c.unsupported == nil {
                // Every efficiency, overhead and rate the prediction used, with its source or the reason it is assumed.
                if let m = try? c.machine() {
                    for p in m.parameters where p.path.hasPrefix("calibration.")
                        || ((p.path.hasPrefix("gpu.") || p.path.hasPrefix("server.")) && !p.provenance.isSource) {
                        // a value the row's own words set (an override the importer made) says so, as the step-model knobs do
                        let why = p.provenance == .user && c.machineOverrides[p.path] != nil ? "set for this case (the notes above say from what)" : p.provenance.text
                        out += "  knob \(p.path) = \(p.value): \(why)\n"
                    }
                }
                var options = SimOptions()
                for (k, v) in c.assumptions.sorted(by: { $0.key < $1.key }) { try? options.set(k, v) }
                for k in options.knobs { out += "  knob \(k.key) = \(k.value): \(k.why)\n" }
            }
            out += "  source: \(c.source)\n"
        }
    }
    return out
}

/// `dojo validate --leave-out SOURCE`: how much fitting a constant on published rows buys. For each constant that
/// was chosen by looking at validation rows, the value that minimises the mean |error| of the other cases it
/// affects is found again without the cases of SOURCE, and those cases' error is reported with both values.
enum LeaveOut {
    /// The constants chosen with the validation rows in view, and the range a fit searches.
    static let knobs: [(key: String, range: ClosedRange<Double>)] = [
        ("calibration.host_decode_rate", 40...400),
    ]

    static func run(_ all: [ValidationCase], leaving text: String) throws -> String {
        let cases = all.filter { $0.unsupported == nil && $0.kind == .throughput }
        let out = cases.filter { $0.source.localizedCaseInsensitiveContains(text) || $0.id.localizedCaseInsensitiveContains(text) }
        guard !out.isEmpty else {
            throw CLIError("--leave-out \(text): no throughput case's source or id contains it")
        }
        var s = "dojo validate --leave-out \(text): \(out.count) case\(out.count == 1 ? "" : "s") left out of \(cases.count)\n\n"
        var t = TextTable(headers: ["constant", "shipped", "fitted without them", "fitted on", "left-out cases it moves", "their |error| shipped", "re-derived"],
                          alignments: [.left, .right, .right, .right, .right, .right, .right])
        var lines: [String] = []
        for knob in knobs {
            func errors(_ cs: [ValidationCase], _ v: Double?) -> [String: Double] {
                var changed = cs
                if let v { for i in changed.indices { changed[i].machineOverrides[knob.key] = String(v) } }
                let r = Validation.evaluate(changed, simulate: simulateValidationCase)
                var e: [String: Double] = [:]
                for c in r.cases { if let x = c.error { e[c.id] = x } }
                return e
            }
            // The cases this constant moves: their prediction differs at the ends of its range.
            let lo = errors(cases, knob.range.lowerBound), hi = errors(cases, knob.range.upperBound)
            let moved = cases.filter { c in
                guard let a = lo[c.id], let b = hi[c.id] else { return false }
                return abs(a - b) > 1e-9
            }
            let train = moved.filter { c in !out.contains { $0.id == c.id } }
            let test = moved.filter { c in out.contains { $0.id == c.id } }
            // the value as the machine file gives it (the key path the knob is named by)
            let shipped = try (moved.first ?? cases.first).map { try $0.machine() }
                .flatMap { m in m.parameters.first { $0.path == knob.key }.flatMap { Double($0.value) } }
            func mean(_ e: [String: Double], _ cs: [ValidationCase]) -> Double? {
                let xs = cs.compactMap { e[$0.id] }.map(abs)
                return xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count)
            }
            guard !test.isEmpty else {
                t.addRow([knob.key, shipped.map(validationNumber) ?? "—", "—", "\(train.count)", "0", "—", "—"])
                continue
            }
            guard !train.isEmpty else {
                t.addRow([knob.key, shipped.map(validationNumber) ?? "—", "no other case", "0", "\(test.count)",
                       mean(errors(test, nil), test).map { formatPercent($0) } ?? "—", "—"])
                lines.append("\(knob.key): only the left-out cases constrain it, so leaving them out leaves it unconstrained")
                continue
            }
            // Golden-section search of the mean |error| over the other cases (unimodal in practice: a rate or an
            // efficiency moves every prediction one way).
            var a = knob.range.lowerBound, b = knob.range.upperBound
            let g = (sqrt(5.0) - 1) / 2
            func f(_ v: Double) -> Double { mean(errors(train, v), train) ?? .infinity }
            var x1 = b - g * (b - a), x2 = a + g * (b - a)
            var f1 = f(x1), f2 = f(x2)
            for _ in 0..<14 {
                if f1 < f2 { b = x2; x2 = x1; f2 = f1; x1 = b - g * (b - a); f1 = f(x1) }
                else { a = x1; x1 = x2; f1 = f2; x2 = a + g * (b - a); f2 = f(x2) }
            }
            let fitted = (a + b) / 2
            let before = mean(errors(test, nil), test), after = mean(errors(test, fitted), test)
            t.addRow([knob.key, shipped.map(validationNumber) ?? "—", validationNumber(fitted), "\(train.count)", "\(test.count)",
                   before.map { formatPercent($0) } ?? "—", after.map { formatPercent($0) } ?? "—"])
        }
        s += t.render()
        for l in lines { s += "\n" + l }
        s += "\n\nA constant is fitted on the cases it moves (their prediction changes across its range) minus the left-out ones, by the least mean |error|; the left-out cases are then predicted with it."
        return s
    }
}
