/// The 1F1B pipeline schedule (Narayanan et al. 2021, PipeDream-Flush): stage s first runs min(m, p − s − 1)
/// warm-up forward passes, then alternates one forward and one backward pass, then drains its last backward passes.
/// One definition for both users: `StepSimulator.evaluate` takes the closed form (every micro-batch at the slowest
/// stage's pace, plus the fill and drain bubble, shortened v times by interleaving), and `StepSimulator.timeline`
/// plays the same order out event by event (so the two differ only by what the closed form leaves out: stages of
/// unequal speed waiting on each other, and the interleaved chunks the playback does not split).
public struct OneFOneBSchedule: Sendable, Equatable {
    public var stages: Int
    public var microBatches: Int
    /// Model chunks per stage (Megatron's interleaved schedule); 1 = plain 1F1B.
    public var virtualStages: Int

    public init(stages: Int, microBatches: Int, virtualStages: Int = 1) {
        self.stages = max(1, stages); self.microBatches = max(1, microBatches); self.virtualStages = max(1, virtualStages)
    }

    /// The passes stage `s` runs, in order: (forward?, micro-batch).
    public func order(stage s: Int) -> [(forward: Bool, microBatch: Int)] {
        let m = microBatches
        let warm = min(m, stages - s - 1)
        var o: [(forward: Bool, microBatch: Int)] = []
        for j in 0..<warm { o.append((true, j)) }
        var nf = warm, nb = 0
        while nb < m {
            if nf < m { o.append((true, nf)); nf += 1 }
            o.append((false, nb)); nb += 1
        }
        return o
    }

    /// The fill and drain bubble of the closed form: while the slowest stage runs its m micro-batches, every other
    /// stage's one-micro-batch time is spent once around them, divided by the chunks interleaving makes:
    /// (Σ stage times − the slowest) ÷ v.
    public func bubble(stageTimes: [Double]) -> Double {
        guard let slowest = stageTimes.max() else { return 0 }
        return (stageTimes.reduce(0, +) - slowest) / Double(virtualStages)
    }

    /// The closed-form time of the pipelined passes: m × the slowest stage's time + the bubble.
    public func closedForm(stageTimes: [Double]) -> Double {
        Double(microBatches) * (stageTimes.max() ?? 0) + bubble(stageTimes: stageTimes)
    }

    /// How long after stage 0's last backward pass stage s finishes its own: never — in 1F1B the last micro-batch's
    /// gradient flows from the last stage down, so stage s finishes Σ_{k<s} backward_k *before* stage 0. Returns
    /// that lead per stage (what an update run on stage s as soon as it is done overlaps with).
    public func drainLead(backward: [Double]) -> [Double] {
        var lead: [Double] = [], before = 0.0
        for b in backward { lead.append(before); before += b }
        return lead
    }

    /// Plays the schedule out: each pass starts when its stage is free and its input has arrived (a forward pass
    /// the previous stage's output `send[s − 1]` after it, a backward pass the next stage's gradient `send[s]` after
    /// it, or its own forward). `run(stage, forward, microBatch, start)` does the pass and returns when it ends.
    /// Returns when each stage is done.
    public func play(send: [Double], run: (Int, Bool, Int, Double) -> Double) -> [Double] {
        let p = stages, m = microBatches
        let orders = (0..<p).map { order(stage: $0) }
        var free = Array(repeating: 0.0, count: p)
        var fDone = Array(repeating: Array(repeating: -1.0, count: m), count: p), bDone = fDone
        var next = Array(repeating: 0, count: p)
        var progressed = true
        while progressed {
            progressed = false
            for s in 0..<p where next[s] < orders[s].count {
                let (isF, j) = orders[s][next[s]]
                var ready = 0.0
                if isF {
                    if s > 0 { guard fDone[s - 1][j] >= 0 else { continue }; ready = fDone[s - 1][j] + send[s - 1] }
                } else {
                    guard fDone[s][j] >= 0 else { continue }
                    if s + 1 < p { guard bDone[s + 1][j] >= 0 else { continue }; ready = bDone[s + 1][j] + send[s] } else { ready = fDone[s][j] }
                }
                let end = run(s, isF, j, max(free[s], ready))
                if isF { fDone[s][j] = end } else { bDone[s][j] = end }
                free[s] = end
                next[s] += 1
                progressed = true
            }
        }
        return free
    }
}
