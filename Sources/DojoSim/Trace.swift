import DojoCompiler
import DojoGraph
import Foundation

/// A simulated step as a timeline: the 1F1B pipeline schedule played out event by event (each stage runs its
/// forward and backward passes of every micro-batch in 1F1B order, waiting for its neighbours' sends), then the
/// data-parallel reduction and the optimizer. Written as a Chrome/Perfetto trace (`chrome://tracing`,
/// ui.perfetto.dev): one process per pipeline stage, threads for compute and communication.
public struct Timeline: Sendable {
    public struct Event: Sendable, Equatable {
        public var name: String
        public var category: String
        public var stage: Int
        public var lane: String
        public var start: Double
        public var duration: Double
    }
    public var events: [Event]
    /// When the last event ends, seconds.
    public var end: Double { events.map { $0.start + $0.duration }.max() ?? 0 }

    /// The Chrome trace JSON (`traceEvents`, times in microseconds).
    public func chromeTraceJSON(title: String) -> Data {
        var out: [[String: Any]] = []
        let stages = Set(events.map(\.stage)).sorted()
        let lanes = ["compute", "tensor-parallel", "pipeline send", "data-parallel", "optimizer", "memory"]
        for s in stages {
            out.append(["name": "process_name", "ph": "M", "pid": s, "args": ["name": "stage \(s)"]])
            for (i, l) in lanes.enumerated() { out.append(["name": "thread_name", "ph": "M", "pid": s, "tid": i, "args": ["name": l]]) }
        }
        for e in events {
            out.append(["name": e.name, "cat": e.category, "ph": "X", "pid": e.stage,
                        "tid": lanes.firstIndex(of: e.lane) ?? 0,
                        "ts": e.start * 1e6, "dur": e.duration * 1e6])
        }
        let doc: [String: Any] = ["traceEvents": out, "displayTimeUnit": "ms", "otherData": ["title": title]]
        return (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])) ?? Data()
    }
}

extension StepSimulator {
    /// Plays one step of `plan` out as events. Op-level events are kept for the first `opDetail` micro-batches.
    public func timeline(_ plan: ResolvedPlan, opDetail: Int = 2) -> Timeline {
        guard let e = evaluate(plan) else { return Timeline(events: []) }
        let starts = stages(plan)
        let p = plan.pipelineParallel, m = plan.microBatches
        let seconds = opSeconds(plan)
        let fwd = forwardOps
        // per stage: op lists in execution order
        var stageOf = Array(repeating: 0, count: fwd.count)
        for s in 0..<p {
            let a = starts[s], b = s + 1 < p ? starts[s + 1] : fwd.count
            for i in a..<b { stageOf[i] = s }
        }
        var fOps = Array(repeating: [Int](), count: p), bOps = fOps, oOps = fOps
        for op in workload.graph.ops {
            let pos = position(op.id)
            guard pos >= 0 else { continue }
            switch op.phase {
            case .forward: fOps[stageOf[pos]].append(op.id)
            case .backward: bOps[stageOf[pos]].append(op.id)
            case .optimizer: oOps[stageOf[pos]].append(op.id)
            }
        }
        let tab = table(tp: plan.tensorParallel, microBatch: plan.microBatch, sp: plan.sequenceParallel)
        func stageSum(_ s: Int, _ prefix: Prefix) -> Double {
            prefix.sum(starts[s], s + 1 < p ? starts[s + 1] : fwd.count)
        }
        let recomputeF: [Double] = (0..<p).map { s in
            let r = tab.recomputed(plan.recompute, starts[s], s + 1 < p ? starts[s + 1] : fwd.count)
            return r.compute + r.comm
        }
        let send: [Double] = (0..<p).map { s in
            s + 1 < p ? Double(max(1, plan.virtualStages)) * collectives.sendTime(bytes: tab.outputBytes[starts[s + 1] - 1], stride: plan.tensorParallel) : 0
        }
        var events: [Timeline.Event] = []
        // The 1F1B order and its dependencies: the schedule the step model's closed form is priced from.
        let schedule = OneFOneBSchedule(stages: p, microBatches: m, virtualStages: plan.virtualStages)
        let free = schedule.play(send: send) { s, isF, j, start in
            var t = start
            let blockStart = t
            let ops = isF ? fOps[s] : bOps[s]
            if !isF && recomputeF[s] > 0 {
                events.append(.init(name: "recompute µb\(j)", category: "recompute", stage: s, lane: "compute", start: t, duration: recomputeF[s]))
                t += recomputeF[s]
            }
            let detail = j < opDetail
            for id in ops where seconds[id] > 0 {
                if detail {
                    let op = workload.graph.ops[id]
                    events.append(.init(name: "\(op.kind.rawValue) \(op.scope ?? "")", category: isF ? "forward" : "backward",
                                        stage: s, lane: "compute", start: t, duration: seconds[id]))
                }
                t += seconds[id]
            }
            let comm = stageSum(s, tab.tpComm)
            if comm > 0 {
                events.append(.init(name: "tensor-parallel all-reduce µb\(j)", category: "communication", stage: s,
                                    lane: "tensor-parallel", start: t, duration: comm))
                t += comm
            }
            if !detail {
                events.append(.init(name: "\(isF ? "forward" : "backward") µb\(j)", category: isF ? "forward" : "backward",
                                    stage: s, lane: "compute", start: blockStart, duration: t - blockStart))
            }
            let sendTime = isF ? send[s] : (s > 0 ? send[s - 1] : 0)
            if sendTime > 0 {
                events.append(.init(name: "send \(isF ? "activation" : "gradient") µb\(j)", category: "communication",
                                    stage: s, lane: "pipeline send", start: t, duration: sendTime))
            }
            return t
        }
        // after the pipeline: exposed gradient reduction, optimizer, spill traffic, input (from the step model)
        let end = free.max() ?? 0
        var t = end
        for s in 0..<p {
            var ts = t
            if e.breakdown.dataParallel > 0 {
                events.append(.init(name: "gradient all-reduce (exposed)", category: "communication", stage: s, lane: "data-parallel", start: ts, duration: e.breakdown.dataParallel))
                ts += e.breakdown.dataParallel
            }
            if e.breakdown.hbm > 0 {
                events.append(.init(name: "DIP HBM spill (exposed)", category: "memory", stage: s, lane: "memory", start: ts, duration: e.breakdown.hbm))
                ts += e.breakdown.hbm
            }
            let starts = stages(plan)
            let a = starts[s], b = s + 1 < p ? starts[s + 1] : fwd.count
            let latency = tab.optimizerLatency.sum(a, b)
            let opt = (tab.optimizer.sum(a, b) - latency) / Double(options.optimizerShards(plan)) + latency
            if opt > 0 {
                events.append(.init(name: "optimizer", category: "optimizer", stage: s, lane: "optimizer", start: ts, duration: opt))
            }
        }
        t += e.breakdown.dataParallel + e.breakdown.hbm + e.breakdown.optimizer
        _ = t
        return Timeline(events: events)
    }
}
