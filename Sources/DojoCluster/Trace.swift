import DojoReport
import Foundation

/// One row of Alibaba's `openb_pod_list_default.csv` (cluster-trace-gpu-v2023).
public struct AlibabaTask: Sendable, Equatable {
    public var name: String
    public var cpuMilli: Int, memoryMiB: Int, numGPU: Int, gpuMilli: Int
    public var gpuSpec: String, qos: String, phase: String
    public var creation: Int, deletion: Int, scheduled: Int?
}

/// A malformed trace: names the file, the line and the column.
public struct TraceError: Error, Equatable, CustomStringConvertible {
    public let file: String, line: Int, column: String?, message: String
    public var description: String { "\(file)\(line > 0 ? ":\(line)" : "")\(column.map { " column '\($0)'" } ?? ""): \(message)" }
}

public enum AlibabaTrace {
    public static let header = ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos",
                                "pod_phase", "creation_time", "deletion_time", "scheduled_time"]
    public static let qosClasses = ["LS", "BE", "Burstable", "Guaranteed"]
    public static let phases = ["Running", "Failed", "Pending", "Succeeded"]

    /// Reads the pod list strictly: the exact header, 11 fields a row, integers where integers belong, known QoS
    /// classes and phases, times that do not run backwards.
    public static func read(file path: String) throws -> [AlibabaTask] {
        let data: Data
        do { data = try UserFiles.read(path, what: "trace", limit: 1 << 32) } catch {
            throw TraceError(file: path, line: 0, column: nil, message: "cannot read: \(error.problem)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TraceError(file: path, line: 0, column: nil, message: "not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> [AlibabaTask] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        if lines.last == "" { lines.removeLast() }
        guard let first = lines.first else { throw TraceError(file: file, line: 1, column: nil, message: "empty file; expected the header \(header.joined(separator: ","))") }
        guard first.split(separator: ",", omittingEmptySubsequences: false).map(String.init) == header else {
            throw TraceError(file: file, line: 1, column: nil, message: "header is not \(header.joined(separator: ","))")
        }
        var out: [AlibabaTask] = []
        out.reserveCapacity(lines.count)
        for (i, l) in lines.enumerated().dropFirst() {
            let n = i + 1
            let f = l.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count == header.count else {
                throw TraceError(file: file, line: n, column: nil, message: "\(f.count) fields, expected \(header.count)")
            }
            func int(_ k: Int, min: Int = 0, max: Int = Int.max) throws -> Int {
                guard let v = Int(f[k]) else { throw TraceError(file: file, line: n, column: header[k], message: "'\(f[k])' is not an integer") }
                guard v >= min && v <= max else { throw TraceError(file: file, line: n, column: header[k], message: "\(v) is outside \(min)…\(max)") }
                return v
            }
            guard !f[0].isEmpty else { throw TraceError(file: file, line: n, column: "name", message: "empty name") }
            let qos = String(f[6]), phase = String(f[7])
            guard qosClasses.contains(qos) else { throw TraceError(file: file, line: n, column: "qos", message: "'\(qos)' is not one of \(qosClasses.joined(separator: ", "))") }
            guard phases.contains(phase) else { throw TraceError(file: file, line: n, column: "pod_phase", message: "'\(phase)' is not one of \(phases.joined(separator: ", "))") }
            // Times in seconds from the trace's start: at most 10 years (the published trace spans 149 days).
            let maxTime = 315_360_000
            let creation = try int(8, max: maxTime), deletion = try int(9, max: maxTime)
            let scheduled = f[10].isEmpty ? nil : try int(10, max: maxTime)
            if deletion < creation { throw TraceError(file: file, line: n, column: "deletion_time", message: "\(deletion) is before creation_time \(creation)") }
            if let s = scheduled, s < creation || s > deletion {
                throw TraceError(file: file, line: n, column: "scheduled_time", message: "\(s) is outside creation_time…deletion_time (\(creation)…\(deletion))")
            }
            out.append(AlibabaTask(name: String(f[0]), cpuMilli: try int(1), memoryMiB: try int(2), numGPU: try int(3, max: 1024),
                                   gpuMilli: try int(4, max: 1000), gpuSpec: String(f[5]), qos: qos, phase: phase,
                                   creation: creation, deletion: deletion, scheduled: scheduled))
        }
        return out
    }

    /// QoS classes as tenants (priority, quota share of the machine): Guaranteed 3 / 10%, LS 2 / 40%,
    /// Burstable 1 / 10%, BE 0 / 20%; the generated gang jobs are tenant `train`, priority 1, 20%.
    public static func tenants(tiles: Int) -> [Tenant] {
        let shares: [(String, Double)] = [("Guaranteed", 0.1), ("LS", 0.4), ("Burstable", 0.1), ("BE", 0.2), ("train", 0.2)]
        return shares.map { Tenant($0.0, quota: max(1, Int((Double(tiles) * $0.1).rounded(.down)))) }
    }
    public static func priority(qos: String) -> Int { ["BE": 0, "Burstable": 1, "LS": 2, "Guaranteed": 3][qos] ?? 0 }

    /// The mapping onto Dojo tiles (DECISION, recorded with every result):
    /// - tasks without GPUs (CPU only) and tasks never scheduled (`Pending`, no run time) are left out;
    /// - one GPU, or a fraction of one, is one tile (a tile cannot be shared); `num_gpu` tiles are asked for as a tile
    ///   count, which the shape list rounds up (8 GPUs → 2×4);
    /// - arrival = `creation_time / timeScale` (compressing the 149 days raises the offered load; the trace's own
    ///   scale, one GPU per tile, offers about 17 tiles on average), run time = `deletion_time − scheduled_time`;
    /// - tenant = QoS class, priority from the class (`priority(qos:)`); checkpoint every hour.
    public static func jobs(_ tasks: [AlibabaTask], timeScale: Double = 1) -> [ReplayJob] {
        tasks.compactMap { t in
            guard t.numGPU > 0, let s = t.scheduled else { return nil }
            return ReplayJob(submit: Double(t.creation) / timeScale,
                             spec: JobSpec(tenant: t.qos, name: t.name, priority: priority(qos: t.qos), request: .tiles(t.numGPU),
                                           duration: Double(t.deletion - s)))
        }
    }
}

/// Large gang jobs for the multi-tile case (the trace has only 75 multi-GPU tasks): shapes of a tray and up,
/// uniform arrivals over `span` seconds, log-uniform run times from 10 minutes to 2 days; tenant `train`.
public func generateGangJobs(count: Int, span: Double, seed: UInt64, start: Double = 0,
                             shapes: [Shape] = [Shape(2, 3), Shape(2, 4), Shape(4, 3), Shape(4, 6), Shape(4, 12)],
                             tenant: String = "train", priority: Int = 1) -> [ReplayJob] {
    var rng = SeededRandom(seed: seed)
    return (0..<count).map { i in
        let t = start + rng.unit() * span
        let shape = shapes[rng.below(shapes.count)]
        let d = exp(log(600) + rng.unit() * (log(172_800) - log(600)))
        return ReplayJob(submit: t.rounded(), spec: JobSpec(tenant: tenant, name: "gang-\(i)", priority: priority,
                                                           request: .shape(shape), duration: d.rounded()))
    }
}

/// A synthetic workload for benchmarks and property tests: `count` jobs of allowed shapes with Poisson arrivals at
/// an offered load of about `load` of the machine, tenants `t0…t{tenants-1}`.
public func syntheticJobs(count: Int, tiles: Int, load: Double = 0.9, tenants: Int = 4, seed: UInt64,
                          shapes: [Shape] = [Shape(1, 1), Shape(1, 2), Shape(2, 2), Shape(2, 3), Shape(4, 3), Shape(4, 6)]) -> [ReplayJob] {
    var rng = SeededRandom(seed: seed)
    let meanTiles = Double(shapes.reduce(0) { $0 + $1.tiles }) / Double(shapes.count)
    let meanDur = 3600.0
    let gap = meanTiles * meanDur / (load * Double(tiles))
    var t = 0.0
    return (0..<count).map { i in
        t += rng.exponential(mean: gap)
        let shape = shapes[rng.below(shapes.count)]
        let d = max(60, rng.exponential(mean: meanDur)).rounded()
        return ReplayJob(submit: t.rounded(), spec: JobSpec(tenant: "t\(rng.below(tenants))", name: "job-\(i)",
                                                           priority: rng.below(3), request: .shape(shape), duration: d))
    }
}
