import DojoGraph

/// The layers of a graph in forward order and the points between them where a pipeline may be cut. A layer is
/// the root of an op's scope (`blocks.3`, `layer2.1`, `head`); cutting inside a layer is never needed.
public struct LayerIndex: Sendable {
    /// Forward ops in order (ids).
    public var forwardOps: [Int]
    /// For each op id, its position among the forward ops (backward ops: their forward op's; optimizer ops: the
    /// first forward op that reads the parameter); -1 when none.
    public var position: [Int]
    /// Positions (indices into `forwardOps`) where a new layer starts; always starts with 0.
    public var cuts: [Int]

    public init(graph g: Graph) {
        forwardOps = g.ops.filter { $0.phase == .forward }.map(\.id)
        position = Array(repeating: -1, count: g.ops.count)
        for (i, id) in forwardOps.enumerated() { position[id] = i }
        // first forward position reading each tensor (ids are positions in recorded graphs; others fall back)
        let maxID = g.tensors.reduce(-1) { max($0, $1.id) }
        var firstUse = Array(repeating: -1, count: maxID + 1)
        for (i, id) in forwardOps.enumerated() {
            for t in g.ops[id].inputs where t >= 0 && t <= maxID && firstUse[t] < 0 { firstUse[t] = i }
        }
        for op in g.ops {
            switch op.phase {
            case .forward: break
            case .backward: if let f = op.forward, f < position.count { position[op.id] = position[f] }
            case .optimizer:
                let t = op.inputs.first ?? -1
                position[op.id] = t >= 0 && t <= maxID && firstUse[t] >= 0 ? firstUse[t] : max(0, forwardOps.count - 1)
            }
        }
        let root = LayerIndex.layerName(scope:)
        var cuts = [0]
        var last: String? = nil
        var lastScope: String? = nil, lastRoot: String? = nil
        for (i, id) in forwardOps.enumerated() {
            let scope = g.ops[id].scope
            let r: String?
            if scope == lastScope { r = lastRoot } else { r = root(scope); lastScope = scope; lastRoot = r }
            guard let r else { continue }
            if let l = last, l != r { cuts.append(i) }
            last = r
        }
        self.cuts = cuts
    }

    /// Layers a pipeline can be cut into.
    public var layerCount: Int { cuts.count }

    /// The layer an op's scope belongs to: its first component, down to the index of a numbered child when one
    /// follows within the next two components (`blocks.3.attn` → `blocks.3`, `layer2.layers.1.conv1` →
    /// `layer2.layers.1` in a `Sequential`, `head.fc` → `head`); nil for ops of the model itself.
    public static func layerName(scope: String?) -> String? {
        guard let s = scope, !s.isEmpty else { return nil }
        let parts = s.split(separator: ".")
        for k in 1..<min(parts.count, 3) where Int(parts[k]) != nil { return parts[0...k].joined(separator: ".") }
        return String(parts[0])
    }

    /// Forward and backward FLOPs of each forward position (a backward op counts at its forward op's): the weights
    /// pipeline stages are balanced by.
    public func flopsPerPosition(_ g: Graph) -> [Double] {
        var flops = Array(repeating: 0.0, count: forwardOps.count)
        for (i, id) in forwardOps.enumerated() { flops[i] += g.ops[id].flops }
        for op in g.ops where op.phase == .backward {
            let p = op.id < position.count ? position[op.id] : -1
            if p >= 0 { flops[p] += op.flops }
        }
        return flops
    }

    /// The compiler's split of `g` into `stages` pipeline stages, balanced by FLOPs at layer starts: each stage's
    /// first layer, by name (the simulator prices this split; `dojo train --plan pp=N` runs it). Nil when the graph
    /// has fewer layers than stages.
    public func stageLayers(_ g: Graph, stages: Int) -> [String]? {
        guard let starts = partition(weights: flopsPerPosition(g), stages: stages) else { return nil }
        return starts.map { p in
            // the first op of a stage may belong to the model itself (a reshape): name the first layer that follows
            var i = p
            while i < forwardOps.count, LayerIndex.layerName(scope: g.ops[forwardOps[i]].scope) == nil { i += 1 }
            return i < forwardOps.count ? LayerIndex.layerName(scope: g.ops[forwardOps[i]].scope)! : ""
        }
    }

    /// Cuts `weights` (one per forward position) into `stages` contiguous stages at layer starts, minimising the
    /// heaviest stage. Returns the first position of every stage, or nil when there are fewer layers than stages.
    public func partition(weights: [Double], stages: Int) -> [Int]? {
        guard stages >= 1, stages <= cuts.count else { return nil }
        if stages == 1 { return [0] }
        var prefix = [0.0]
        prefix.reserveCapacity(weights.count + 1)
        for w in weights { prefix.append(prefix.last! + w) }
        let total = prefix.last!
        func greedy(_ cap: Double) -> [Int]? {
            var starts = [0]
            var start = 0
            var lastCut = 0
            for c in cuts.dropFirst() {
                if prefix[c] - prefix[start] > cap {
                    // the stage must end at the previous cut
                    let end = lastCut > start ? lastCut : c
                    starts.append(end)
                    start = end
                    if starts.count > stages { return nil }
                }
                lastCut = c
            }
            if prefix[weights.count] - prefix[start] > cap && lastCut > start {
                starts.append(lastCut)
            }
            return starts.count <= stages ? starts : nil
        }
        var lo = total / Double(stages), hi = total
        var best = greedy(hi) ?? [0]
        for _ in 0..<40 {
            let mid = (lo + hi) / 2
            if let s = greedy(mid) { best = s; hi = mid } else { lo = mid }
        }
        // Use every stage: split the largest stages at further cuts until there are `stages`.
        while best.count < stages {
            var widest = -1, widestW = -1.0
            for (k, s) in best.enumerated() {
                let e = k + 1 < best.count ? best[k + 1] : weights.count
                let inner = cuts.filter { $0 > s && $0 < e }
                if !inner.isEmpty, prefix[e] - prefix[s] > widestW { widest = k; widestW = prefix[e] - prefix[s] }
            }
            guard widest >= 0 else { return nil }
            let s = best[widest], e = widest + 1 < best.count ? best[widest + 1] : weights.count
            let inner = cuts.filter { $0 > s && $0 < e }
            let mid = inner.min { abs(prefix[$0] - prefix[s] - (prefix[e] - prefix[s]) / 2) < abs(prefix[$1] - prefix[s] - (prefix[e] - prefix[s]) / 2) }!
            best.insert(mid, at: widest + 1)
        }
        return best
    }
}
