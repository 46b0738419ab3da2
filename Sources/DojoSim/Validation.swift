import DojoCompiler
import DojoMachine
import Foundation

// `dojo validate`: published GPU training measurements (Validation/gpu-training.csv, every row with its source;
// Validation/README.md explains each column and caveat) read into cases the simulator can run, and the
// comparison of its predictions with them. The simulator itself is a closure (`Validation.evaluate`): nothing
// here depends on how it works.

/// What a measurement measures, and so how a predicted step becomes the same quantity.
public enum ValidationMetric: Sendable, Equatable, Hashable {
    /// Samples (images or sequences) per second for the whole system: global batch ÷ step time.
    case samplesPerSecond
    /// Tokens per second per GPU: samples/s × sequence length ÷ GPUs.
    case tokensPerSecondPerGPU
    /// Achieved TFLOP/s per GPU: the source's FLOP count of one step ÷ step time ÷ GPUs.
    case teraflopsPerGPU(FlopConvention)
    /// Seconds per global step (iteration) of the global batch.
    case secondsPerStep
    /// Time to train: `TrainingWork.samples` ÷ predicted samples/s, in the row's unit (`secondsPerUnit`).
    case timeToTrain(TrainingWork, secondsPerUnit: Double)

    /// Throughput and step-time rows are scored together; time-to-train rows apart (they also depend on
    /// convergence, which varies from run to run).
    public var kind: MetricKind {
        if case .timeToTrain = self { return .timeToTrain }
        return .throughput
    }

    /// How a prediction becomes this quantity, in words.
    public var conversion: String {
        switch self {
        case .samplesPerSecond: return "global batch ÷ step time"
        case .tokensPerSecondPerGPU: return "global batch × sequence ÷ step time ÷ GPUs"
        case .teraflopsPerGPU(let c): return "FLOPs per step ÷ step time ÷ GPUs, FLOPs = \(c.formula)"
        case .secondsPerStep: return "step time"
        case let .timeToTrain(w, unit):
            return "\(w.basis) ÷ (global batch ÷ step time)" + (unit == 60 ? " in minutes" : unit == 3600 ? " in hours" : "")
        }
    }
}

/// How much training a time-to-train row stands for, in samples, and where that number comes from.
public struct TrainingWork: Sendable, Equatable, Hashable {
    public var samples: Double
    /// "1,211,105,280 tokens ÷ 2,048 per sequence (model_detail)".
    public var basis: String
    public init(samples: Double, basis: String) { self.samples = samples; self.basis = basis }
}

/// Throughput (and step time) or time to train.
public enum MetricKind: String, Sendable, Codable { case throughput, timeToTrain }

/// One published measurement, ready to simulate: the machine, the model as a zoo model spec, the precision,
/// the global batch and the published parallelism, and what was measured.
public struct ValidationCase: Sendable, Equatable {
    public var id: String
    /// The data file and the line the row starts on.
    public var file: String
    public var line: Int
    /// The `system`, `gpu` and `model` columns as published.
    public var system: String
    public var gpuName: String
    public var modelName: String

    // The machine.
    /// A machine preset (`dgx-a100`), `nodes` of it, with `machineOverrides` (key path → value, as
    /// `Machine.with` takes them; e.g. `gpu.hbm_bytes: 16GB` for a V100 16GB).
    public var machinePreset: String
    public var nodes: Int
    public var machineOverrides: [String: String]
    /// GPUs the measurement used: can be fewer than the nodes hold (1 GPU of a DGX).
    public var gpus: Int

    // The work.
    /// The model in the zoo's `NAME[:key=value,...]` syntax (`bert-large:seq=128`); nil when the zoo has no such
    /// model (then `unsupported` says why and the case is skipped).
    public var modelSpec: String?
    /// Transformer hyper-parameters (GPT, BERT, Llama): what the FLOP conventions and token counts need.
    public var transformer: TransformerShape?
    public var precision: Precision
    public var globalBatch: Int
    /// The published parallelism; nil fields are the planner's choice.
    public var plan: PlanSpec
    /// TP × PP when the source gives only the product (Megatron-LM 2021: "(TPxPP)=8"); the planner splits it.
    public var modelParallel: Int?

    // The measurement.
    public var metric: ValidationMetric
    public var measured: Double
    public var unit: String
    public var source: String
    /// Why the case cannot be simulated (no zoo model, …); nil when it can.
    public var unsupported: String?
    /// Every assumption made in reading the row (heads not given, precision not stated, derived values, …).
    public var notes: [String]
    /// Step-model assumptions (`SimOptions` keys, as `dojo sim --assume` takes them) that the run's source fixes:
    /// its software, not its machine (e.g. `loader_workers` for PyTorch's native JPEG loader). Empty: the defaults.
    public var assumptions: [String: String] = [:]

    /// The machine spec as `dojo machine show` takes it: `dgx-a100x32`.
    public var machineSpec: String { nodes > 1 ? "\(machinePreset)x\(nodes)" : machinePreset }

    /// The machine in a line: `dgx-v100 (1 of 8 GPUs) gpu.hbm_bytes=16GB`.
    public var machineDescription: String {
        var s = machineSpec
        if gpus < nodes * 8 { s += " (\(gpus) of \(nodes * 8) GPUs)" }
        for (k, v) in machineOverrides.sorted(by: { $0.key < $1.key }) { s += " \(k)=\(v)" }
        return s
    }

    /// The machine: the preset, scaled to `nodes`, with the overrides. Throws a `MachineError` for an override
    /// the preset does not have.
    public func machine() throws -> Machine {
        let m = try Presets.load(machinePreset).scaled(by: nodes)
        return machineOverrides.isEmpty ? m : try m.with(machineOverrides)
    }

    /// The plan in the `--plan` syntax, with the model-parallel product when only that is known.
    public var planDescription: String {
        var s = plan.description
        if let mp = modelParallel { s += (s.isEmpty ? "" : ",") + "tp×pp=\(mp)" }
        return s
    }

    public var kind: MetricKind { metric.kind }

    /// Tokens per sequence, for language models.
    public var sequenceLength: Int? { transformer?.sequence }

    /// Training FLOPs of `sequences` sequences by `convention` (nil for models that are not transformers).
    public func trainingFlops(sequences: Double, convention: FlopConvention) -> Double? {
        transformer?.trainingFlops(sequences: sequences, convention)
    }

    /// The value a simulated step predicts for this case's metric, in the case's unit. Samples per second are
    /// `step.globalBatch ÷ step.stepSeconds`; per-GPU figures divide by `step.devices`.
    public func predictedValue(_ step: SimulatedStep) throws -> Double {
        guard step.stepSeconds.isFinite, step.stepSeconds > 0 else {
            throw ValidationRunError("the simulator returned a step time of \(step.stepSeconds) s")
        }
        guard step.globalBatch > 0, step.devices > 0 else {
            throw ValidationRunError("the simulator returned global batch \(step.globalBatch) on \(step.devices) devices")
        }
        let samplesPerSecond = Double(step.globalBatch) / step.stepSeconds
        switch metric {
        case .samplesPerSecond:
            return samplesPerSecond
        case .tokensPerSecondPerGPU:
            guard let s = sequenceLength else { throw ValidationRunError("tokens/s needs a sequence length") }
            return samplesPerSecond * Double(s) / Double(step.devices)
        case .teraflopsPerGPU(let convention):
            guard let t = transformer else { throw ValidationRunError("TFLOP/s needs transformer hyper-parameters") }
            return t.trainingFlops(sequences: samplesPerSecond, convention) / Double(step.devices) / 1e12
        case .secondsPerStep:
            return Double(globalBatch) / samplesPerSecond
        case let .timeToTrain(work, unit):
            return work.samples / samplesPerSecond / unit
        }
    }

    /// The step time (seconds per global batch, on `gpus` GPUs) that the measurement implies: what a perfect
    /// simulator returns. For time-to-train rows, the average step over the training work.
    public var measuredStepSeconds: Double? {
        let b = Double(globalBatch)
        switch metric {
        case .samplesPerSecond:
            return b / measured
        case .tokensPerSecondPerGPU:
            guard let s = sequenceLength else { return nil }
            return b * Double(s) / (measured * Double(gpus))
        case .teraflopsPerGPU(let c):
            guard let t = transformer else { return nil }
            return t.trainingFlops(sequences: b, c) / (measured * 1e12 * Double(gpus))
        case .secondsPerStep:
            return measured
        case let .timeToTrain(work, unit):
            return b * measured * unit / work.samples
        }
    }
}

extension ValidationCase {
    /// A case made in code (tests, sweeps); `Validation.cases(from:)` makes them from a CSV file.
    public init(id: String, machinePreset: String, nodes: Int = 1, machineOverrides: [String: String] = [:], gpus: Int,
                modelSpec: String?, transformer: TransformerShape? = nil, precision: Precision, globalBatch: Int,
                plan: PlanSpec = PlanSpec(), modelParallel: Int? = nil, metric: ValidationMetric, measured: Double,
                unit: String, source: String = "", unsupported: String? = nil, notes: [String] = [],
                system: String = "", gpuName: String = "", modelName: String = "", file: String = "", line: Int = 0) {
        self.init(id: id, file: file, line: line, system: system, gpuName: gpuName, modelName: modelName,
                  machinePreset: machinePreset, nodes: nodes, machineOverrides: machineOverrides, gpus: gpus,
                  modelSpec: modelSpec, transformer: transformer, precision: precision, globalBatch: globalBatch,
                  plan: plan, modelParallel: modelParallel, metric: metric, measured: measured, unit: unit,
                  source: source, unsupported: unsupported, notes: notes)
    }
}

/// What the simulator says about one case: the time of one global step of `globalBatch` samples on `devices`
/// devices, the plan it chose, and anything worth saying.
public struct SimulatedStep: Sendable, Equatable {
    public var stepSeconds: Double
    public var globalBatch: Int
    public var devices: Int
    /// The plan it ran, in the `--plan` syntax.
    public var plan: String
    public var note: String?

    public init(stepSeconds: Double, globalBatch: Int, devices: Int, plan: String, note: String? = nil) {
        self.stepSeconds = stepSeconds; self.globalBatch = globalBatch; self.devices = devices
        self.plan = plan; self.note = note
    }
}

/// A case that could not be evaluated, with the reason.
public struct ValidationRunError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The outcome of one case.
public struct ValidationResult: Sendable, Equatable {
    public enum Status: String, Sendable, Codable {
        /// Predicted and compared.
        case ok
        /// Not simulated: the data says it cannot be (no zoo model); `message` says why.
        case skipped
        /// The simulator threw or returned nonsense; `message` says what.
        case failed
    }

    public var id: String
    public var kind: MetricKind
    public var status: Status
    public var predicted: Double?
    public var measured: Double
    public var unit: String
    /// predicted ÷ measured − 1 (signed; −0.0909 is a prediction 9.09% low).
    public var error: Double?
    public var message: String?
    /// The case's model spec (or the published model name), machine and published plan.
    public var model: String
    public var machine: String
    public var plan: String
    /// What the simulator returned.
    public var simulated: SimulatedStep?
}

/// Every case's outcome and the error statistics.
public struct ValidationReport: Sendable, Equatable {
    public var cases: [ValidationResult]

    public init(cases: [ValidationResult]) { self.cases = cases }

    private func errors(_ kind: MetricKind) -> [Double] {
        cases.filter { $0.kind == kind && $0.status == .ok }.compactMap { $0.error.map(abs) }
    }

    /// Mean of |error| over the throughput and step-time cases that were predicted; nil when none was.
    public var meanAbsError: Double? { mean(errors(.throughput)) }
    /// Largest |error| over the same cases.
    public var maxAbsError: Double? { errors(.throughput).max() }
    /// The same over the time-to-train cases (kept apart: they also depend on convergence).
    public var timeToTrainMeanAbsError: Double? { mean(errors(.timeToTrain)) }
    public var timeToTrainMaxAbsError: Double? { errors(.timeToTrain).max() }

    public func count(_ status: ValidationResult.Status) -> Int { cases.filter { $0.status == status }.count }

    private func mean(_ xs: [Double]) -> Double? { xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }

    /// `{"cases": [{"id", "predicted", "measured", "unit", "error", …}], "mean_abs_error": …, …}`: predicted,
    /// error and the statistics are null where there is nothing to report. Extra keys per case: kind, status,
    /// message, model, machine, plan, simulated_plan, simulated_step_seconds; at the top: max_abs_error,
    /// time_to_train_mean_abs_error, time_to_train_max_abs_error, counts.
    public func json() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try enc.encode(ReportJSON(self)), as: UTF8.self)
    }
}

private struct ReportJSON: Encodable {
    var report: ValidationReport
    init(_ r: ValidationReport) { report = r }

    enum Keys: String, CodingKey {
        case cases, mean_abs_error, max_abs_error, time_to_train_mean_abs_error, time_to_train_max_abs_error, counts
    }
    struct Case: Encodable {
        var r: ValidationResult
        enum Keys: String, CodingKey {
            case id, predicted, measured, unit, error, kind, status, message, model, machine, plan
            case simulated_plan, simulated_step_seconds, simulated_note
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(r.id, forKey: .id)
            try c.encode(r.predicted, forKey: .predicted)
            try c.encode(r.measured, forKey: .measured)
            try c.encode(r.unit, forKey: .unit)
            try c.encode(r.error, forKey: .error)
            try c.encode(r.kind.rawValue, forKey: .kind)
            try c.encode(r.status.rawValue, forKey: .status)
            try c.encode(r.message, forKey: .message)
            try c.encode(r.model, forKey: .model)
            try c.encode(r.machine, forKey: .machine)
            try c.encode(r.plan, forKey: .plan)
            try c.encode(r.simulated?.plan, forKey: .simulated_plan)
            try c.encode(r.simulated?.stepSeconds, forKey: .simulated_step_seconds)
            try c.encode(r.simulated?.note, forKey: .simulated_note)
        }
    }
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(report.cases.map(Case.init), forKey: .cases)
        try c.encode(report.meanAbsError, forKey: .mean_abs_error)
        try c.encode(report.maxAbsError, forKey: .max_abs_error)
        try c.encode(report.timeToTrainMeanAbsError, forKey: .time_to_train_mean_abs_error)
        try c.encode(report.timeToTrainMaxAbsError, forKey: .time_to_train_max_abs_error)
        try c.encode(["ok": report.count(.ok), "skipped": report.count(.skipped), "failed": report.count(.failed)],
                     forKey: .counts)
    }
}

/// Reading the validation data and scoring a simulator against it.
public enum Validation {
    /// The file name of the shipped data.
    public static let shippedFile = "gpu-training.csv"

    /// The columns a validation CSV must have, and those it may have. Others are errors (a typo in an optional
    /// column would otherwise be ignored silently).
    public static let requiredColumns = ["id", "gpu", "gpus", "model", "model_detail", "precision", "global_batch",
                                         "parallelism", "metric", "value", "unit", "source"]
    public static let optionalColumns = ["system", "nodes", "interconnect"]

    /// The shipped data's text, compiled into the binary (`EmbeddedValidation`, generated from
    /// `Sources/DojoSim/Validation/` by scripts/embed-data.py).
    public static func shippedCSV() throws -> String { EmbeddedValidation.csv }

    /// The shipped data's README: the source and caveats of every row.
    public static func shippedREADME() -> String { EmbeddedValidation.readme }

    /// The shipped cases (27 published measurements).
    public static func shippedCases() throws -> [ValidationCase] {
        try parseCases(csv: shippedCSV(), file: shippedFile)
    }

    /// Cases from a CSV file in the shipped file's schema.
    public static func loadCases(file path: String) throws -> [ValidationCase] {
        try cases(from: CSVTable(contentsOfFile: path))
    }

    /// Cases from CSV text; `file` names it in errors.
    public static func parseCases(csv text: String, file: String) throws -> [ValidationCase] {
        try cases(from: CSVTable(parsing: text, file: file))
    }

    /// Cases from a parsed table: checks the header, then reads each row (`ValidationDataError` naming the line
    /// and column of the first bad value).
    public static func cases(from table: CSVTable) throws -> [ValidationCase] {
        let missing = requiredColumns.filter { table.index(of: $0) == nil }
        guard missing.isEmpty else {
            throw ValidationDataError(file: table.file, line: 1, message:
                "missing column\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", ")) in the header "
                + "(a validation CSV has columns \((requiredColumns + optionalColumns).joined(separator: ", ")))")
        }
        let known = Set(requiredColumns + optionalColumns)
        if let (i, name) = table.header.enumerated().first(where: { !known.contains($0.element) }) {
            throw ValidationDataError(file: table.file, line: 1, column: i + 1, columnName: name, message:
                "unknown column (known: \((requiredColumns + optionalColumns).joined(separator: ", ")))")
        }
        guard table.records.count <= 2_000 else {
            throw ValidationDataError(file: table.file, message: "\(table.records.count) rows; at most 2,000 (each is a simulation of its own, up to seconds each)")
        }
        guard !table.records.isEmpty else {
            throw ValidationDataError(file: table.file, message: "no cases: the file has a header and no rows")
        }
        var out: [ValidationCase] = []
        var seen: [String: Int] = [:]
        for record in table.records {
            let row = Row(table: table, record: record)
            let c = try readCase(row)
            if let first = seen[c.id] {
                throw row.fail("id", "id '\(c.id)' is already used on line \(first)")
            }
            seen[c.id] = record.line
            out.append(c)
        }
        borrowHeads(&out)
        return out
    }

    /// Runs `simulate` on every supported case and compares its prediction with the measurement. A case whose
    /// model the zoo lacks is skipped; one whose simulation throws (or returns a step time that is not positive)
    /// is failed with the message. Never throws: every case gets a result.
    public static func evaluate(_ cases: [ValidationCase],
                                simulate: (ValidationCase) throws -> SimulatedStep) -> ValidationReport {
        var results: [ValidationResult] = []
        for c in cases {
            var r = ValidationResult(id: c.id, kind: c.kind, status: .ok, predicted: nil, measured: c.measured,
                                     unit: c.unit, error: nil, message: nil, model: c.modelSpec ?? c.modelName,
                                     machine: c.machineDescription, plan: c.planDescription, simulated: nil)
            if let why = c.unsupported {
                r.status = .skipped
                r.message = why
                results.append(r)
                continue
            }
            do {
                let step = try simulate(c)
                r.simulated = step
                let p = try c.predictedValue(step)
                guard p.isFinite else { throw ValidationRunError("the prediction is not a finite number") }
                r.predicted = p
                r.error = p / c.measured - 1
                if step.devices != c.gpus {
                    r.message = "simulated on \(step.devices) devices; the measurement used \(c.gpus) GPUs"
                }
            } catch {
                r.status = .failed
                r.message = "\(error)"
            }
            results.append(r)
        }
        return ValidationReport(cases: results)
    }
}

// MARK: - Reading a row

/// One record with its column names, for messages that name the line and column.
private struct Row {
    var table: CSVTable
    var record: CSVTable.Record

    var line: Int { record.line }

    subscript(_ column: String) -> String {
        guard let i = table.index(of: column) else { return "" }
        return record.fields[i].trimmingCharacters(in: .whitespaces)
    }

    func fail(_ column: String, _ message: String) -> ValidationDataError {
        ValidationDataError(file: table.file, line: record.line, column: table.index(of: column).map { $0 + 1 },
                            columnName: column, message: message)
    }

    /// A whole number in 1...max (`why` says where the bound comes from).
    func positiveInt(_ column: String, max: Int, why: String) throws -> Int {
        let text = self[column]
        let digits = text.replacingOccurrences(of: ",", with: "")
        guard let n = Int(digits), n >= 1 else {
            if !digits.isEmpty, digits.allSatisfy(\.isNumber) { throw fail(column, "\(text) is more than \(max) (\(why))") }
            throw fail(column, "expected a whole number ≥ 1, got '\(text)'")
        }
        guard n <= max else { throw fail(column, "\(text) is more than \(max) (\(why))") }
        return n
    }

    func positiveNumber(_ column: String) throws -> Double {
        let text = self[column]
        guard let x = Double(text.replacingOccurrences(of: ",", with: "")), x.isFinite, x > 0 else {
            throw fail(column, "expected a positive number, got '\(text)'")
        }
        return x
    }

    func nonEmpty(_ column: String) throws -> String {
        let text = self[column]
        guard !text.isEmpty else { throw fail(column, "empty") }
        return text
    }
}

/// A GPU as the `gpu` column names it → the preset that has it, and overrides for variants.
private struct GPUEntry {
    var names: [String]
    var preset: String
    var overrides: [String: String]
    var note: String?
}

private let knownGPUs: [GPUEntry] = [
    GPUEntry(names: ["A100-SXM4-80GB", "A100 SXM4 80GB"], preset: "dgx-a100", overrides: [:]),
    GPUEntry(names: ["A100-SXM4-40GB", "A100 SXM4 40GB"], preset: "dgx-a100", overrides: ["gpu.hbm_bytes": "40GB"],
             note: "A100 40GB: the dgx-a100 preset (80GB) with gpu.hbm_bytes = 40GB; its HBM bandwidth is kept"),
    GPUEntry(names: ["V100-SXM2-32GB", "V100 SXM2 32GB"], preset: "dgx-v100", overrides: [:]),
    GPUEntry(names: ["V100-SXM2-16GB", "V100 SXM2 16GB"], preset: "dgx-v100", overrides: ["gpu.hbm_bytes": "16GB"],
             note: "V100 16GB (DGX-1 16GB): the dgx-v100 preset (32GB) with gpu.hbm_bytes = 16GB; same 900 GB/s HBM2 and NVLink"),
    GPUEntry(names: ["H100-SXM5-80GB", "H100 SXM5 80GB", "H100-SXM (DGX H100)"], preset: "dgx-h100", overrides: [:]),
    GPUEntry(names: ["H100"], preset: "dgx-h100", overrides: [:],
             note: "gpu 'H100' without a variant: H100 SXM5 80GB as in a DGX H100 (ASSUMPTION)"),
]

/// The first capture of `pattern` in `text` as a number (commas allowed), or nil.
/// A count read from model_detail by `pattern`: nil when absent, an error naming it when it is not in 1...max.
private func firstCount(_ pattern: String, in text: String, row: Row, what: String, max: Int) throws -> Int? {
    guard let x = firstNumber(pattern, in: text) else { return nil }
    guard x >= 1, x <= Double(max) else {
        throw row.fail("model_detail", "\(what) \(x < 1e15 ? String(Int(x)) : "\(x)") is not a count in 1…\(max)")
    }
    return Int(x)
}

private func firstNumber(_ pattern: String, in text: String) -> Double? {
    captures(pattern, in: text).first.flatMap { Double($0.replacingOccurrences(of: ",", with: "")) }
}

/// The captures of a match of `pattern` (case-insensitive) in `text`, or nil when it does not match.
private func groups(_ pattern: String, _ text: String) -> [String]? {
    guard let re = try? Regex(pattern).ignoresCase(), let m = text.firstMatch(of: re) else { return nil }
    return (1..<m.output.count).map { m.output[$0].substring.map(String.init) ?? "" }
}

/// The captures of the first match of `pattern` (case-insensitive) in `text`; empty when none.
private func captures(_ pattern: String, in text: String) -> [String] {
    groups(pattern, text) ?? []
}

private func readCase(_ row: Row) throws -> ValidationCase {
    var notes: [String] = []
    let id = try row.nonEmpty("id")
    let detail = row["model_detail"]
    let modelName = try row.nonEmpty("model")
    let source = try row.nonEmpty("source")

    // The machine.
    let gpuName = try row.nonEmpty("gpu")
    guard let gpu = knownGPUs.first(where: { $0.names.contains { $0.caseInsensitiveCompare(gpuName) == .orderedSame } }) else {
        throw row.fail("gpu", "unknown GPU '\(gpuName)' (known: \(knownGPUs.flatMap(\.names).joined(separator: ", ")))")
    }
    if let n = gpu.note { notes.append(n) }
    let gpus = try row.positiveInt("gpus", max: Limits.devices, why: "the most devices a machine may have")
    let nodes: Int
    if row["nodes"].isEmpty {
        nodes = (gpus + 7) / 8
        notes.append("nodes not stated: \(nodes) nodes of 8 GPUs (ASSUMPTION: the GPUs sit in DGX-like 8-GPU nodes)")
    } else {
        nodes = try row.positiveInt("nodes", max: Limits.devices / 8, why: "the most devices a machine may have, 8 a node")
        guard nodes <= gpus else {
            throw row.fail("nodes", "\(nodes) nodes for \(gpus) GPU\(gpus == 1 ? "" : "s"): every node holds at least one of them")
        }
        guard gpus <= nodes * 8 else {
            throw row.fail("nodes", "\(nodes) node\(nodes == 1 ? "" : "s") of 8 GPUs cannot hold \(gpus) GPUs")
        }
    }
    if gpus < nodes * 8 { notes.append("\(gpus) of the \(nodes * 8) GPUs used") }
    if modelName.localizedCaseInsensitiveContains("ResNet-50") && source.contains("DeepLearningExamples") && gpus > 1 {
        notes.append("the data README: these runs used PyTorch's native JPEG loader, whose CPU decoding may bound the multi-GPU figures (the DLE README's own AMP scaling is 6.72× on 8 A100, 6.93× on 8 V100)")
    }
    if row["system"].localizedCaseInsensitiveContains("HGX") {
        notes.append("HGX H100 system modelled as DGX H100 (same GPUs, NVSwitch and 8× 400 Gb/s NICs per node per the MLPerf system JSON)")
    }

    // The model.
    var model = try readModel(row, name: modelName, detail: detail, notes: &notes)
    if source.contains("DeepLearningExamples"), model.spec?.hasPrefix("bert-large:seq=") == true,
       detail.localizedCaseInsensitiveContains("phase 2"), let s = model.shape?.sequence {
        // DLE's phase 2 reads LDDL data binned by length (run_pretraining.sh: phase2_bin_size 64), and LDDL pads
        // each batch only to its longest sequence: the GPUs compute on about the real length rounded up to its bin,
        // not on `s`. Real length: padding is over half the tokens of Wikipedia at 512 (Krell et al. 2021, arXiv
        // 2107.02027), so about s/2 (ASSUMPTION: exactly half); plus half a bin on average.
        let padded = min(s, s / 2 + binSizeDLEPhase2 / 2)
        model.spec = "bert-large:seq=\(padded)"
        notes.append("bert-large:seq=\(padded): DLE's phase 2 bins sequences by length (LDDL, bin size \(binSizeDLEPhase2)) and pads a batch only to its longest; Wikipedia at \(s) is over half padding (Krell et al. 2021), so a batch is about \(s / 2) + \(binSizeDLEPhase2 / 2) tokens long (ASSUMPTION); sequences/s is unchanged by it")
    }
    let globalBatch = try row.positiveInt("global_batch", max: Limits.batch, why: "the most samples a step may have")

    // Precision.
    let precision = try readPrecision(row, preset: gpu.preset, notes: &notes)

    // Parallelism.
    var (plan, modelParallel) = try readPlan(row, gpus: gpus, globalBatch: globalBatch, detail: detail, notes: &notes)
    // What the data README (§6) says of NVIDIA's MLPerf v3.0 GPT-3 runs and the rows do not repeat.
    if modelName.localizedCaseInsensitiveContains("GPT-3 175B (MLPerf)") && source.contains("training_results_v3.0") {
        if plan.virtualStages == nil { plan.virtualStages = 12 }
        if plan.shardOptimizer == nil { plan.shardOptimizer = true }
        if plan.microBatch == nil { plan.microBatch = 1 }
        try deriveMicroBatches(&plan, row: row, globalBatch: globalBatch, notes: &notes)
        notes.append("vp=12 (interleave 12), distributed optimizer (zero=1), micro-batch 1: the data README's §6 on NVIDIA's MLPerf v3.0 GPT-3 configuration")
    }
    if modelName.localizedCaseInsensitiveContains("Megatron-LM") && !modelName.localizedCaseInsensitiveContains("GPT-3")
        && plan.recompute == nil && source.contains("cases_april2021") {
        plan.recompute = .full
        notes.append("recompute=full: Narayanan et al. 2021 train with activation recomputation (their FLOP count includes it) (ASSUMPTION for the planner)")
    }

    // What the sources say of the runs' software, as step-model assumptions (SimOptions keys).
    var assumptions: [String: String] = [:]
    sourceAssumptions(modelName: modelName, source: source, detail: detail, preset: gpu.preset,
                      assumptions: &assumptions, notes: &notes)

    // The measurement.
    let measured = try row.positiveNumber("value")
    // No training measurement in any unit the schema knows comes near 10^12 (sequences/s, tokens/s/GPU, TFLOP/s/GPU,
    // seconds or minutes): beyond it the row is a typo, not a run.
    guard measured <= 1e12 else { throw row.fail("value", "\(row["value"]) is more than 10^12 (no training measurement in these units is that large)") }
    let unit = try row.nonEmpty("unit")
    let metric = try readMetric(row, unit: unit, model: model, modelName: modelName, detail: detail, notes: &notes)

    return ValidationCase(
        id: id, file: row.table.file, line: row.line, system: row["system"], gpuName: gpuName, modelName: modelName,
        machinePreset: gpu.preset, nodes: nodes, machineOverrides: gpu.overrides, gpus: gpus,
        modelSpec: model.spec, transformer: model.shape, precision: precision, globalBatch: globalBatch,
        plan: plan, modelParallel: modelParallel, metric: metric, measured: measured, unit: unit, source: source,
        unsupported: model.unsupported, notes: notes, assumptions: assumptions)
}

/// LDDL's bin size in DLE BERT's phase 2 (run_pretraining.sh: `phase2_bin_size=${30:-64}`).
private let binSizeDLEPhase2 = 64

/// Software facts of a row's source that the step model takes as assumptions (`SimOptions` keys). Each is read
/// from the source the row cites (its README, scripts or configs), never tuned per row.
private func sourceAssumptions(modelName: String, source: String, detail: String, preset: String,
                               assumptions: inout [String: String], notes: inout [String]) {
    let dle = source.contains("DeepLearningExamples")
    if dle && modelName.localizedCaseInsensitiveContains("ResNet-50") {
        // configs.yml (the file the rows cite for the batch) sets data_backend: pytorch and, per platform,
        // workers: 16 (DGXA100) and 8 (DGX1V): DataLoader processes per GPU decoding JPEGs on the host.
        let workers = preset == "dgx-a100" ? "16" : preset == "dgx-v100" ? "8" : nil
        if let w = workers {
            assumptions["loader_workers"] = w
            notes.append("loader_workers=\(w): PyTorch's native JPEG loader (configs.yml: data_backend pytorch, workers \(w) per GPU on \(preset == "dgx-a100" ? "DGXA100" : "DGX1V")) decodes on the host CPU at calibration.host_decode_rate per worker, at most the host's threads ÷ the node's GPUs in use")
        }
    }
    if dle && modelName.localizedCaseInsensitiveContains("BERT") {
        // DLE's BERT (pytorch:21.11): attention as separate matmul/softmax kernels (FlashAttention came in 2022),
        // and run_pretraining.sh's allreduce_post_accumulation: the gradients are all-reduced after the last
        // micro-batch's backward pass, not overlapped with it.
        assumptions["fused_attention"] = "0"
        assumptions["gradient_overlap"] = "0"
        notes.append("fused_attention=0, gradient_overlap=0: DLE's PyTorch BERT (21.11) computes attention op by op (no FlashAttention before 2022) and all-reduces after accumulation (run_pretraining.sh: allreduce_post_accumulation)")
    }
    if source.contains("cases_april2021") || source.contains("2205.05198") {
        // Megatron-LM 2021-22: its fused softmax still writes the score matrices (Korthikanti et al.'s selective
        // recompute exists to drop them), and its default --DDP-impl local all-reduces after the backward pass.
        assumptions["fused_attention"] = "0"
        assumptions["gradient_overlap"] = "0"
        notes.append("fused_attention=0, gradient_overlap=0: Megatron-LM of 2021-22 materialises the attention scores (fused softmax, no FlashAttention) and its default local DDP (--DDP-impl local) all-reduces gradients after the backward pass")
    }
}

private struct ModelReading {
    var spec: String?
    var shape: TransformerShape?
    var unsupported: String?
}

private func readModel(_ row: Row, name: String, detail: String, notes: inout [String]) throws -> ModelReading {
    let lower = name.lowercased()
    if detail.lowercased().hasPrefix("as above") {
        notes.append("model_detail '\(detail)' refers to another row of the data's larger collection; the model is read from the model column")
    }
    let seq = try firstCount(#"seq (\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "seq", max: 1 << 20)
    if lower.contains("resnet-50") || lower.contains("resnet50") {
        notes.append("resnet50: ResNet-50 v1.5 at 224×224 (ImageNet), 1,000 classes")
        return ModelReading(spec: "resnet50", shape: nil)
    }
    if lower.contains("bert-large") {
        guard let s = seq else {
            return ModelReading(unsupported: "BERT-Large without a sequence length ('seq N') in model_detail")
        }
        if detail.localizedCaseInsensitiveContains("packed") {
            // The data's README: "sequences/s counts variable-length real sequences; it is not comparable to DLE's
            // padded seq-512 throughput". The zoo's BERT has one fixed length, and the run's length mix is not given.
            return ModelReading(unsupported: "packed variable-length sequences (MLPerf): the throughput counts real sequences shorter than \(s) whose length mix the source does not give (its README: not comparable to padded seq-\(s) throughput)")
        }
        notes.append("bert-large: 24 layers, hidden 1,024, 16 heads, vocab 30,522 (Devlin et al. 2018), seq \(s)")
        return ModelReading(spec: "bert-large:seq=\(s)", shape: .bertLarge(sequence: s))
    }
    if lower.contains("llama 2 70b") || lower.contains("llama2-70b") || lower.contains("llama-2-70b") {
        let s = seq ?? 4096
        if seq == nil { notes.append("sequence length not stated: 4,096 (Llama 2's context)") }
        notes.append("llama2-70b: 80 layers, hidden 8,192, 64 heads (8 key/value), SwiGLU FFN 28,672, vocab 32,000, seq \(s)")
        return ModelReading(spec: "llama2-70b:seq=\(s)", shape: .llama2_70B(sequence: s))
    }
    if lower.contains("gpt") {
        let hidden = try firstCount(#"hidden (\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "hidden", max: 1 << 20)
        let layers = try firstCount(#"(\d+) layers"#, in: detail, row: row, what: "layers", max: 1 << 16)
        let heads = try firstCount(#"(\d+) heads"#, in: detail, row: row, what: "heads", max: 1 << 16)
        let vocab = try firstCount(#"vocab (\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "vocab", max: 1 << 24)
        if lower.contains("gpt-3 175b") {
            let g = TransformerShape.gpt3_175B
            let agrees = (hidden ?? g.hidden) == g.hidden && (layers ?? g.layers) == g.layers
                && (heads ?? g.heads) == g.heads && (seq ?? g.sequence) == g.sequence
            if agrees {
                var shape = g
                if let v = vocab { shape.vocabulary = v }
                notes.append("gpt-175b: GPT-3 175B (Brown et al. 2020): 96 layers, hidden 12,288, 96 heads, seq 2,048, vocab \(formatCount(Double(shape.vocabulary)))")
                return ModelReading(spec: shape == g ? "gpt-175b" : gptSpec(shape), shape: shape)
            }
            notes.append("model_detail's sizes differ from GPT-3 175B's: read as a generic GPT")
        }
        guard let h = hidden, let l = layers else {
            return ModelReading(unsupported: "GPT without 'hidden N' and 'N layers' in model_detail")
        }
        guard let s = seq else {
            return ModelReading(unsupported: "GPT without a sequence length ('seq N') in model_detail")
        }
        var shape = TransformerShape.gpt(layers: l, hidden: h, heads: heads ?? max(1, h / 128), sequence: s,
                                         vocabulary: vocab ?? 51200)
        if heads == nil {
            notes.append("heads not stated: hidden ÷ 128 = \(shape.heads) (ASSUMPTION: head size 128; heads do not change the FLOP counts)")
        }
        if vocab == nil {
            notes.append("vocabulary not stated: 51,200, the Megatron-LM README's (@2e90a342) for its GPT runs (ASSUMPTION)")
            shape.vocabulary = 51200
        }
        return ModelReading(spec: gptSpec(shape), shape: shape)
    }
    if lower.contains("mask r-cnn") || lower.contains("maskrcnn") {
        return ModelReading(unsupported: "no Mask R-CNN in the model zoo (detection heads, RoI align, variable image sizes)")
    }
    return ModelReading(unsupported: "no zoo model for '\(name)'")
}

private func gptSpec(_ t: TransformerShape) -> String {
    "gpt:layers=\(t.layers),hidden=\(t.hidden),heads=\(t.heads),seq=\(t.sequence),vocab=\(t.vocabulary)"
}

/// Where a GPT row leaves the heads out and another row of the same file gives them for the same shape (hidden
/// and layers), take them from that row: Megatron-LM's 529.6B model (hidden 20,480, 105 layers) has 128 heads,
/// not hidden ÷ 128 = 160.
private func borrowHeads(_ cases: inout [ValidationCase]) {
    let assumed = "heads not stated: hidden ÷ 128"
    for i in cases.indices {
        guard let t = cases[i].transformer, let k = cases[i].notes.firstIndex(where: { $0.hasPrefix(assumed) }) else { continue }
        let donor = cases.first { d in
            guard let u = d.transformer, d.id != cases[i].id else { return false }
            return u.hidden == t.hidden && u.layers == t.layers && !d.notes.contains { $0.hasPrefix(assumed) }
                && d.transformer?.heads != nil && d.modelSpec != nil
        }
        guard let donor, let heads = donor.transformer?.heads, heads != t.heads else { continue }
        var shape = t
        shape.heads = heads
        shape.kvHeads = heads
        cases[i].transformer = shape
        cases[i].modelSpec = gptSpec(shape)
        cases[i].notes[k] = "heads not stated: \(heads), as row \(donor.id) (line \(donor.line)) gives for the same hidden and layers (hidden ÷ 128 would be \(t.heads))"
    }
}

private func readPrecision(_ row: Row, preset: String, notes: inout [String]) throws -> Precision {
    let text = try row.nonEmpty("precision")
    let p = text.lowercased()
    if p.contains("fp8") {
        if p.contains("hybrid") { notes.append("FP8 hybrid: E4M3 forward, E5M2 gradients (Transformer Engine); fp8") }
        return .fp8
    }
    if p.contains("bf16") || p.contains("bfloat16") { return .bf16 }
    if p.contains("fp16") || p.contains("amp") { return .fp16 }
    if p.contains("tf32") { return .tf32 }
    if p.contains("fp32") { return .fp32 }
    if p.contains("not stated") {
        let guess: Precision = preset == "dgx-v100" ? .fp16 : .bf16
        notes.append("precision not stated: \(guess.rawValue) (ASSUMPTION: the usual mixed precision on this GPU; the README's MFU implies a 16-bit peak)")
        return guess
    }
    if p.contains("mixed") {
        notes.append("precision '\(text)': the format is not stated; fp16 (ASSUMPTION: Transformer Engine may also run some GEMMs in FP8)")
        return .fp16
    }
    throw row.fail("precision", "unknown precision '\(text)' (expected FP32, TF32, FP16/AMP, BF16, FP8, Mixed or 'not stated')")
}

private func readPlan(_ row: Row, gpus: Int, globalBatch: Int, detail: String,
              notes: inout [String]) throws -> (PlanSpec, Int?) {
    var plan = PlanSpec()
    var modelParallel: Int?
    let text = row["parallelism"]
    // A degree of parallelism is at most the GPUs; a micro-batch or an accumulation count at most the batch.
    func count(_ text: String, _ what: String) throws -> Int {
        let bound = what.contains("micro") || what.contains("accumulation") ? globalBatch : gpus
        guard let n = Int(text), n >= 1, n <= bound else {
            throw row.fail("parallelism", "\(what)=\(text) is not a count in 1…\(bound) (\(bound == gpus ? "gpus" : "global_batch"))")
        }
        return n
    }
    func set(_ field: WritableKeyPath<PlanSpec, Int?>, _ text: String, _ what: String) throws {
        try set(field, try count(text, what), what)
    }
    func set(_ field: WritableKeyPath<PlanSpec, Int?>, _ value: Int, _ what: String) throws {
        if let old = plan[keyPath: field], old != value {
            throw row.fail("parallelism", "\(what) given twice (\(old) and \(value))")
        }
        plan[keyPath: field] = value
    }
    for raw in text.split(separator: ";") {
        let part = raw.trimmingCharacters(in: .whitespaces)
        if part.isEmpty { continue }
        if let c = groups(#"^DP=(\d+)( \(derived\))?$"#, part) {
            try set(\.dataParallel, c[0], "DP")
            if !c[1].isEmpty { notes.append("DP = GPUs ÷ (TP × PP), derived in the data (not published)") }
        } else if let c = groups(#"^TP=(\d+)$"#, part) {
            try set(\.tensorParallel, c[0], "TP")
        } else if let c = groups(#"^PP=(\d+)(?: \(interleaved x(\d+)([^)]*)\))?$"#, part) {
            try set(\.pipelineParallel, c[0], "PP")
            if !c[1].isEmpty {
                try set(\.virtualStages, c[1], "VP")
                notes.append("vp=\(c[1]): interleaved pipeline\(c[2]) (as the row says)")
            }
        } else if let c = groups(#"^VP=(\d+)$"#, part) {
            try set(\.virtualStages, c[0], "VP")
        } else if let c = groups(#"^CP=(\d+)$"#, part) {
            guard c[0] == "1" else {
                throw row.fail("parallelism", "context parallelism CP=\(c[0]) is not modelled (only CP=1)")
            }
        } else if let c = groups(#"^(?:grad-accum|gradient accumulation) (\d+)$"#, part) {
            try set(\.microBatches, c[0], "gradient accumulation")
        } else if let c = groups(#"^(?:microbatch|micro-batch|MBS)[ =](\d+)$"#, part) {
            try set(\.microBatch, c[0], "micro-batch")
        } else if let c = groups(#"^model-parallel \(TPxPP\)=(\d+)$"#, part) {
            modelParallel = try count(c[0], "model-parallel (TPxPP)")
            notes.append("only TP × PP = \(c[0]) is published; the planner splits it")
        } else if let p = try? PlanSpec(parsing: part) {
            // The `--plan` syntax (dp=64,tp=8,…) for user files.
            for (field, name) in [(\PlanSpec.dataParallel, "dp"), (\.tensorParallel, "tp"), (\.pipelineParallel, "pp"),
                                  (\.microBatch, "mb"), (\.microBatches, "micro"), (\.virtualStages, "vp")] {
                if let v = p[keyPath: field] { try set(field, "\(v)", name) }
            }
            plan.recompute = p.recompute ?? plan.recompute
            plan.shardOptimizer = p.shardOptimizer ?? plan.shardOptimizer
            plan.sequenceParallel = p.sequenceParallel ?? plan.sequenceParallel
        } else {
            throw row.fail("parallelism", "cannot read '\(part)' (expected DP=, TP=, PP=, VP=, CP=1, grad-accum N, "
                           + "microbatch N, model-parallel (TPxPP)=N, or dp=…,tp=… as in --plan; separated by ';')")
        }
    }

    // What model_detail adds: micro-batch, accumulation, recomputation, sequence parallelism.
    let lower = detail.lowercased()
    if let mb = try firstCount(#"micro-batch (\d+)/GPU"#, in: detail, row: row, what: "micro-batch", max: globalBatch)
        ?? firstCount(#"\bMBS (\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "MBS", max: globalBatch) {
        try setFromDetail(&plan, \.microBatch, mb, "micro-batch", row: row)
    }
    if let acc = try firstCount(#"(\d+) accumulation"#, in: detail, row: row, what: "accumulation", max: globalBatch) {
        try setFromDetail(&plan, \.microBatches, acc, "accumulation steps", row: row)
    }
    if lower.contains("full activation recompute") || lower.contains("full recompute") { plan.recompute = .full }
    else if lower.contains("selective recompute") { plan.recompute = .selective }
    if lower.contains("no sequence parallel") { plan.sequenceParallel = false }
    else if lower.contains("sequence parallel") { plan.sequenceParallel = true }

    // Arithmetic the row implies.
    // Products of counts up to 2^32 each: saturating, so a wrong row is an error, not an overflow trap.
    let product = Limits.product(plan.tensorParallel ?? 1, plan.pipelineParallel ?? 1)
    if let dp = plan.dataParallel {
        if let mp = modelParallel {
            guard Limits.product(dp, mp) == gpus else {
                throw row.fail("parallelism", "DP × (TP×PP) = \(dp) × \(mp), but gpus = \(gpus)")
            }
        } else if plan.tensorParallel != nil && plan.pipelineParallel != nil {
            guard Limits.product(dp, product) == gpus else {
                throw row.fail("parallelism", "DP × TP × PP = \(dp) × \(product), but gpus = \(gpus)")
            }
        } else if plan.tensorParallel == nil && plan.pipelineParallel == nil {
            if dp == gpus {
                plan.tensorParallel = 1; plan.pipelineParallel = 1
            } else if gpus % dp == 0 {
                modelParallel = gpus / dp
                notes.append("TP × PP = GPUs ÷ DP = \(gpus / dp), split by the planner")
            } else {
                throw row.fail("parallelism", "DP=\(dp) does not divide gpus = \(gpus)")
            }
        } else {
            // One of TP, PP given: the other follows.
            guard Limits.product(dp, product) <= gpus, gpus % (dp * product) == 0 else {
                throw row.fail("parallelism", "DP × \(plan.tensorParallel != nil ? "TP" : "PP") = \(dp) × \(product) does not divide gpus = \(gpus)")
            }
            if plan.tensorParallel == nil { plan.tensorParallel = gpus / (dp * product) }
            else { plan.pipelineParallel = gpus / (dp * product) }
        }
    } else if plan.tensorParallel != nil && plan.pipelineParallel != nil {
        guard gpus % product == 0 else {
            throw row.fail("parallelism", "TP × PP = \(product) does not divide gpus = \(gpus)")
        }
        plan.dataParallel = gpus / product
        notes.append("dp = GPUs ÷ (TP × PP) = \(gpus / product) (derived)")
    }
    if let dp = plan.dataParallel, globalBatch % dp != 0 {
        throw row.fail("global_batch", "global batch \(globalBatch) does not divide among DP = \(dp) replicas")
    }
    try deriveMicroBatches(&plan, row: row, globalBatch: globalBatch, notes: &notes)
    return (plan, modelParallel)
}

private func setFromDetail(_ plan: inout PlanSpec, _ field: WritableKeyPath<PlanSpec, Int?>, _ value: Int, _ what: String,
                   row: Row) throws {
    if let old = plan[keyPath: field], old != value {
        throw row.fail("model_detail", "\(what) \(value) disagrees with the parallelism column's \(old)")
    }
    plan[keyPath: field] = value
}

/// micro-batch × micro-batches × DP = global batch: fills the one that is missing, checks them when all are given.
private func deriveMicroBatches(_ plan: inout PlanSpec, row: Row, globalBatch: Int, notes: inout [String]) throws {
    guard let dp = plan.dataParallel else { return }
    let perReplica = globalBatch / dp
    switch (plan.microBatch, plan.microBatches) {
    case let (mb?, nil):
        guard perReplica % mb == 0 else {
            throw row.fail("global_batch", "global batch \(globalBatch) ÷ DP \(dp) = \(perReplica) is not a multiple of the micro-batch \(mb)")
        }
        plan.microBatches = perReplica / mb
        notes.append("micro = global batch ÷ (DP × micro-batch) = \(perReplica / mb) (derived)")
    case let (nil, n?):
        guard perReplica % n == 0 else {
            throw row.fail("global_batch", "global batch \(globalBatch) ÷ DP \(dp) = \(perReplica) does not split into \(n) micro-batches")
        }
        plan.microBatch = perReplica / n
        notes.append("mb = global batch ÷ (DP × accumulation) = \(perReplica / n) (derived)")
    case let (mb?, n?):
        guard mb <= perReplica, n <= perReplica, mb * n == perReplica else {
            throw row.fail("global_batch", "micro-batch \(mb) × \(n) micro-batches × DP \(dp) is not the global batch \(globalBatch)")
        }
    case (nil, nil):
        break
    }
}

private func readMetric(_ row: Row, unit: String, model: ModelReading, modelName: String, detail: String,
                notes: inout [String]) throws -> ValidationMetric {
    let metric = try row.nonEmpty("metric")
    let m = metric.lowercased(), u = unit.lowercased()
    // Free text, but it must say what was measured (a metric named 'vibes' was scored as throughput).
    let words = ["throughput", "time", "tflop", "step", "iteration", "mfu", "samples", "images", "sequences", "tokens", "speed"]
    guard words.contains(where: { m.contains($0) }) else {
        throw row.fail("metric", "'\(metric)' does not say what was measured (expected words such as training throughput, time per iteration, time-to-train, achieved TFLOP/s)")
    }
    if m.contains("time-to-train") || m.contains("time to train") {
        let perUnit: Double
        switch u {
        case "s", "sec", "seconds": perUnit = 1
        case "min", "minutes": perUnit = 60
        case "h", "hours": perUnit = 3600
        default: throw row.fail("unit", "a time-to-train needs a time unit (seconds, minutes, hours), got '\(unit)'")
        }
        let work: TrainingWork
        if let tokens = firstNumber(#"([0-9][0-9,]*) tokens"#, in: detail) {
            guard let s = model.shape?.sequence else {
                throw row.fail("model_detail", "a time-to-train in tokens needs a language model with a sequence length")
            }
            work = TrainingWork(samples: tokens / Double(s), basis: "\(formatCount(tokens)) tokens ÷ \(s) per sequence (model_detail)")
        } else if let c = groups(#"(\d+) epochs x ([0-9][0-9,]*) images"#, detail),
                  let e = Double(c[0]), let n = Double(c[1].replacingOccurrences(of: ",", with: "")) {
            work = TrainingWork(samples: e * n, basis: "\(c[0]) epochs × \(c[1]) images (model_detail)")
        } else {
            throw row.fail("model_detail", "a time-to-train row needs the work trained: 'N tokens' or 'E epochs x N images'")
        }
        guard work.samples.isFinite, work.samples >= 1, work.samples <= 1e18 else {
            throw row.fail("model_detail", "the work trained (\(work.basis)) is not 1…10^18 samples")
        }
        notes.append("time-to-train: \(work.basis) at the predicted throughput; evaluation pauses and start-up are not modelled, and the official score averages several runs whose work varies")
        return .timeToTrain(work, secondsPerUnit: perUnit)
    }
    // The words of the metric must fit its unit (a row worded as throughput but in TFLOP/s/GPU was scored as FLOPs).
    let fits: [String: [String]] = ["tflop/s/gpu": ["tflop", "mfu", "flop"], "tokens/s/gpu": ["throughput", "tokens", "speed"]]
    let samplesWords = ["throughput", "samples", "images", "sequences", "speed"], stepWords = ["time", "step", "iteration"]
    let expected = fits[u] ?? (["images/s", "sequences/s", "samples/s", "img/s", "seq/s"].contains(u) ? samplesWords
                                : ["s", "sec", "seconds", "s per global step", "s per step", "s per iteration", "seconds per step"].contains(u) ? stepWords : [])
    if !expected.isEmpty && !expected.contains(where: { m.contains($0) }) {
        throw row.fail("metric", "'\(metric)' does not say it measures what the unit '\(unit)' is (expected a word such as \(expected.joined(separator: ", ")))")
    }
    switch u {
    case "images/s", "sequences/s", "samples/s", "img/s", "seq/s":
        return .samplesPerSecond
    case "tokens/s/gpu":
        return .tokensPerSecondPerGPU
    case "tflop/s/gpu":
        let lowerName = modelName.lowercased()
        let convention: FlopConvention
        if lowerName.contains("megatron-core") || m.contains("mfu") {
            convention = .megatronModel
            notes.append("TFLOP/s counted as Megatron-Core's num_floating_point_operations (NeMo and Korthikanti et al.'s MFU count the same): \(convention.formula)")
        } else if lowerName.contains("megatron-lm") {
            convention = .megatronRecompute
            notes.append("TFLOP/s counted as the source does (arXiv 2104.04473, appendix): \(convention.formula)")
        } else {
            convention = .sixN
            notes.append("TFLOP/s: the source's FLOP count is not known; 6·N·tokens (ASSUMPTION)")
        }
        if model.shape == nil && model.unsupported == nil {
            throw row.fail("unit", "TFLOP/s/GPU needs a transformer model (GPT, BERT, Llama)")
        }
        return .teraflopsPerGPU(convention)
    case "s", "sec", "seconds", "s per global step", "s per step", "s per iteration", "seconds per step":
        return .secondsPerStep
    default:
        throw row.fail("unit", "unknown unit '\(unit)' (known: images/s, sequences/s, samples/s, tokens/s/GPU, "
                       + "TFLOP/s/GPU, s, s per global step; minutes or hours for a time-to-train metric)")
    }
}

private func formatCount(_ x: Double) -> String {
    guard abs(x) < 1e18 else { return String(format: "%.4g", x) }
    let digits = String(Int(x.rounded()))
    var out = ""
    for (i, ch) in digits.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return String(out.reversed())
}
