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
    /// Samples per second per GPU: samples/s ÷ GPUs.
    case samplesPerSecondPerGPU
    /// Tokens per second per GPU: samples/s × sequence length ÷ GPUs.
    case tokensPerSecondPerGPU
    /// Tokens per second for the whole system: samples/s × sequence length.
    case tokensPerSecond
    /// Achieved TFLOP/s of the whole system by the source's FLOP count.
    case teraflops(FlopConvention)
    /// Achieved TFLOP/s per GPU: the source's FLOP count of one step ÷ step time ÷ GPUs.
    case teraflopsPerGPU(FlopConvention)
    /// Seconds per global step (iteration) of the global batch.
    case secondsPerStep
    /// Milliseconds per global step.
    case millisecondsPerStep
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
        case .samplesPerSecondPerGPU: return "global batch ÷ step time ÷ GPUs"
        case .tokensPerSecondPerGPU: return "global batch × sequence ÷ step time ÷ GPUs"
        case .tokensPerSecond: return "global batch × sequence ÷ step time"
        case .teraflopsPerGPU(let c): return "FLOPs per step ÷ step time ÷ GPUs, FLOPs = \(c.formula)"
        case .teraflops(let c): return "FLOPs per step ÷ step time, FLOPs = \(c.formula)"
        case .secondsPerStep: return "step time"
        case .millisecondsPerStep: return "step time in ms"
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
    /// GPUs in one node of the machine (8 in a DGX, 16 in a DGX-2).
    public var gpusPerNode: Int = 8

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
    /// Real sequences in one sample the simulator trains: 1, or about 2 for MLPerf BERT's packed samples of 512
    /// tokens. Sample counts in the measurement (samples/s, time-to-train work) are of real sequences.
    public var sequencesPerSample: Double = 1
    /// Context parallelism (Megatron-Core's CP, torchtitan's): each sequence's tokens split over this many GPUs, which
    /// hold the same weights; `plan.dataParallel` counts them (DP × CP replicas). 1: none.
    public var contextParallel: Int = 1

    /// What the simulator trains for this case: the zoo spec, the global batch in its samples, and the step-model
    /// assumptions. With context parallelism (c > 1) each GPU computes 1/c of every sequence's tokens, its queries
    /// against all of the sequence's keys, on the same weights: simulated as samples of s/c tokens, c times as many
    /// (so DP × CP replicas keep the published micro-batches), whose attention covers c times their own tokens
    /// (`attention_segments` = 1/c: the scores of s/c queries by s keys). Throws when c does not divide s.
    public func simulationInputs() throws -> (spec: String, globalBatch: Int, assumptions: [String: String]) {
        guard let spec = modelSpec else { throw ValidationRunError(unsupported ?? "no zoo model for this case") }
        guard contextParallel > 1 else { return (spec, globalBatch, assumptions) }
        guard let s = transformer?.sequence, s % contextParallel == 0 else {
            throw ValidationRunError("CP=\(contextParallel) needs a sequence length it divides (seq \(transformer?.sequence ?? 0))")
        }
        let part = "seq=\(s / contextParallel)"
        let split = spec.contains("seq=") ? spec.replacingOccurrences(of: #"seq=\d+"#, with: part, options: .regularExpression)
            : spec + (spec.contains(":") ? "," : ":") + part
        var a = assumptions
        let segments = Double(a["attention_segments"] ?? "1") ?? 1
        a["attention_segments"] = "\(segments / Double(contextParallel))"
        return (split, Limits.product(globalBatch, contextParallel), a)
    }

    /// The machine spec as `dojo machine show` takes it: `dgx-a100x32`.
    public var machineSpec: String { nodes > 1 ? "\(machinePreset)x\(nodes)" : machinePreset }

    /// The machine in a line: `dgx-v100 (1 of 8 GPUs) gpu.hbm_bytes=16GB`.
    public var machineDescription: String {
        if machinePreset.isEmpty { return "\(gpuName) × \(gpus)" }
        var s = machineSpec
        if gpus < nodes * gpusPerNode { s += " (\(gpus) of \(nodes * gpusPerNode) GPUs)" }
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
        let sequencesPerSecond = samplesPerSecond * sequencesPerSample
        switch metric {
        case .samplesPerSecond:
            return sequencesPerSecond
        case .samplesPerSecondPerGPU:
            return sequencesPerSecond / Double(step.devices)
        case .tokensPerSecondPerGPU, .tokensPerSecond:
            guard let s = sequenceLength else { throw ValidationRunError("tokens/s needs a sequence length") }
            return samplesPerSecond * Double(s) / (metric == .tokensPerSecond ? 1 : Double(step.devices))
        case .teraflopsPerGPU(let convention):
            guard let t = transformer else { throw ValidationRunError("TFLOP/s needs transformer hyper-parameters") }
            return t.trainingFlops(sequences: samplesPerSecond, convention) / Double(step.devices) / 1e12
        case .teraflops(let convention):
            guard let t = transformer else { throw ValidationRunError("TFLOP/s needs transformer hyper-parameters") }
            return t.trainingFlops(sequences: samplesPerSecond, convention) / 1e12
        case .secondsPerStep:
            return Double(globalBatch) / samplesPerSecond
        case .millisecondsPerStep:
            return Double(globalBatch) / samplesPerSecond * 1000
        case let .timeToTrain(work, unit):
            return work.samples / sequencesPerSecond / unit
        }
    }

    /// The step time (seconds per global batch, on `gpus` GPUs) that the measurement implies: what a perfect
    /// simulator returns. For time-to-train rows, the average step over the training work.
    public var measuredStepSeconds: Double? {
        let b = Double(globalBatch)
        switch metric {
        case .samplesPerSecond:
            return b * sequencesPerSample / measured
        case .samplesPerSecondPerGPU:
            return b * sequencesPerSample / (measured * Double(gpus))
        case .tokensPerSecondPerGPU:
            guard let s = sequenceLength else { return nil }
            return b * Double(s) / (measured * Double(gpus))
        case .tokensPerSecond:
            guard let s = sequenceLength else { return nil }
            return b * Double(s) / measured
        case .teraflopsPerGPU(let c):
            guard let t = transformer else { return nil }
            return t.trainingFlops(sequences: b, c) / (measured * 1e12 * Double(gpus))
        case .teraflops(let c):
            guard let t = transformer else { return nil }
            return t.trainingFlops(sequences: b, c) / (measured * 1e12)
        case .secondsPerStep:
            return measured
        case .millisecondsPerStep:
            return measured / 1000
        case let .timeToTrain(work, unit):
            guard work.samples > 0 else { return nil }
            return b * sequencesPerSample * measured * unit / work.samples
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
            let c: ValidationCase
            do { c = try readCase(row) } catch let skip as RowSkip { c = try skippedCase(row, reason: skip.reason) }
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
