import Foundation
import DojoCompiler

/// Collectives on a machine's real hierarchy (`DeviceTopology.levels`): hierarchical algorithms that reduce-scatter
/// up the levels a group spans and all-gather back down, each level as a ring (bandwidth-optimal) with its latency
/// steps taken as a tree's when that is fewer (NCCL's double binary trees; Dojo's mesh can do the same).
public struct Collectives: Sendable {
    public let topology: DeviceTopology
    public init(topology: DeviceTopology) { self.topology = topology }

    public enum Kind: String, Sendable, Codable { case allReduce, reduceScatter, allGather }

    /// Seconds for a group of `size` devices placed `stride` apart to run `kind` on `bytes` per device (the full
    /// buffer each device contributes to an all-reduce or reduce-scatter, or receives in an all-gather).
    public func time(_ kind: Kind, bytes: Double, size: Int, stride: Int = 1) -> Double {
        guard size > 1, bytes > 0 else { return 0 }
        let factor: Double = kind == .allReduce ? 2 : 1
        var t = 0.0
        var share = bytes
        for (level, members) in topology.spread(size: size, stride: stride) {
            let l = topology.levels[level]
            let g = Double(members)
            let steps = min(g - 1, 2 * (g).ceilLog2)
            t += factor * ((g - 1) / g * share / l.bandwidthPerDevice + steps * l.latency)
            share /= g
        }
        return t
    }

    /// Seconds for one device to broadcast `bytes` to a group of `size` devices placed `stride` apart. NCCL broadcasts
    /// on a pipelined ring (its only algorithm for broadcast): the data crosses each link once, so the slowest level
    /// bounds it, each unit taking it in over all its uplinks (ASSUMPTION: NCCL's channels spread over a node's NICs);
    /// and the first chunk makes size − 1 hops, each at its level's step latency.
    public func broadcastTime(bytes: Double, size: Int, stride: Int = 1) -> Double {
        guard size > 1, bytes > 0 else { return 0 }
        let spread = topology.spread(size: size, stride: stride)
        var below = 1.0, above = Double(size)
        var transfer = 0.0, latency = 0.0
        for (level, members) in spread {
            let l = topology.levels[level]
            let g = Double(members)
            above /= g
            transfer = max(transfer, bytes / (l.bandwidthPerDevice * below))
            latency += (g - 1) * above * l.latency
            below *= g
        }
        return transfer + latency
    }

    /// Seconds to send `bytes` from one device to the next stage `stride` devices away (pipeline point-to-point).
    public func sendTime(bytes: Double, stride: Int) -> Double {
        guard bytes > 0 else { return 0 }
        guard let (level, _) = topology.spread(size: 2, stride: stride).first else { return 0 }
        let l = topology.levels[level]
        return bytes / l.bandwidthPerDevice + l.latency
    }
}

extension Double {
    /// ⌈log2(self)⌉ for tree latency steps.
    var ceilLog2: Double { self <= 1 ? 0 : Foundation.log2(self).rounded(.up) }
}
