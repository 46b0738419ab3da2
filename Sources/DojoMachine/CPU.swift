/// CPU hosts running OpenDojo's own engine: the machine `dojo machine calibrate` measures, so that `dojo sim` can
/// predict the steps `dojo train` runs on it (and `dojo validate --local` can check the prediction). Every rate is the
/// engine's own, measured through its kernels at the shapes the zoo uses (`measured:` in the file says how and when).
///
/// A device of this machine is one rank: `ranks_per_host` of them share a host's `cores`, each with
/// cores ÷ ranks_per_host compute threads (less than one core each when a host runs more ranks than cores).

/// One host. Section `cpu`.
public struct CPUSpec: Sendable, Equatable {
    /// `model`: the processor's name (from /proc/cpuinfo).
    public var model: String
    /// `cores`: cores (hardware threads the engine uses) per host.
    public var cores: Int
    /// `ranks_per_host`: ranks (devices) per host; `dojo sim --plan` sets it from the plan's ranks.
    public var ranksPerHost: Int
    /// `memory_bytes`: the host's memory.
    public var memoryBytes: Double
    /// `ops`: the engine's measured cost of each op kind it ran in the zoo's small models, forward and backward
    /// (one thread; see `OpRate`). Kinds it did not run fall back to `stream_bandwidth` and `op_overhead`.
    public var ops: [String: OpRate] = [:]
    /// `thread_efficiency`: the share of `threads ×` one thread's rate that `threads` threads reach (convolutions).
    public var threadEfficiency: Double
    /// `shared_speed`: a rank's speed while every rank of its host computes, relative to alone (caches and memory
    /// they share); applies when a host runs more than one rank.
    public var sharedSpeed: Double = 1
    /// `step_overhead`: seconds of a training step outside its ops (the trainer's own work).
    public var stepOverhead: Double = 0
    /// `stream_bandwidth`: bytes per second (read + written) one thread of the engine's elementwise ops moves.
    public var streamBandwidth: Double
    /// `op_overhead`: fixed seconds per op the engine runs (dispatch, the tape's bookkeeping, allocation).
    public var opOverhead: Double

    public init(model: String, cores: Int, ranksPerHost: Int, memoryBytes: Double, threadEfficiency: Double,
                streamBandwidth: Double, opOverhead: Double, ops: [String: OpRate] = [:]) {
        self.model = model; self.cores = cores; self.ranksPerHost = ranksPerHost; self.memoryBytes = memoryBytes
        self.threadEfficiency = threadEfficiency; self.streamBandwidth = streamBandwidth; self.opOverhead = opOverhead
        self.ops = ops
    }

    /// Compute threads of one rank (below 1 when ranks outnumber cores: a share of a core).
    public var threadsPerRank: Double { Double(cores) / Double(max(1, ranksPerHost)) }

    /// The cores each host really has when its `ranksPerHost` ranks computing at once each reach `share` of one rank
    /// alone, or nil when what they lose is contention (caches, memory) on the cores they see. More ranks than cores
    /// take turns on them: each reaches cores ÷ ranks of one alone without anything being shared, so `share` is read
    /// against that. Several hosts that are namespaces on one machine share its cores: below 0.75 of it a host gets
    /// its share of them. The ranks of one host already split its cores between them, so there only a loss no
    /// contention explains (below 0.6: a CPU quota under the cores it shows) means fewer cores; this VM's two ranks
    /// on two cores reach 0.74–0.92, which once flipped the one-rank plans onto one thread at random.
    public static func sharedCores(share: Double, visible: Int, hosts: Int, ranksPerHost: Int = 1) -> Int? {
        let turns = min(1, Double(visible) / Double(max(1, ranksPerHost)))
        let relative = share / turns
        guard relative < (hosts > 1 ? 0.75 : 0.6) else { return nil }
        let cores = max(1, Int((Double(visible) * relative).rounded()))
        return cores < visible ? cores : nil
    }

    /// Rate of `threads` threads given one thread's: linear up to one core, then `thread_efficiency` of linear.
    public func rate(_ oneThread: Double) -> Double {
        let t = threadsPerRank
        return t <= 1 ? oneThread * t : oneThread * t * threadEfficiency
    }
}

/// What one op kind costs on one thread of the engine: `time = overhead + work ÷ rate`, work being FLOPs for
/// matrix products and convolutions and bytes read and written (as the Graph IR counts them) for the rest. Fitted
/// by least squares on the relative error over the ops of that kind in measured training steps (their sizes differ;
/// every op counts alike), for its forward op and
/// for its backward pass (an optimizer update: `forward`).
///
/// A matrix kind may also carry a `byte_rate`: `time = overhead + FLOPs ÷ rate + bytes ÷ byte_rate`, the bytes being
/// its operands and result as the Graph IR counts them. A GEMM's kernel packs its operands and writes its result at
/// a cost by the byte, which a product of few rows or a short reduction (a 16-row layer, a weight gradient over a
/// small batch) cannot spread over many FLOPs: one rate fitted over such products and large ones prices the large
/// ones too slow and the skinny ones too fast.
public struct OpRate: Sendable, Equatable {
    public var forwardRate: Double, forwardOverhead: Double
    public var backwardRate: Double?, backwardOverhead: Double?
    /// `byte_rate` (matrix kinds): bytes of operands and result per second, beside the FLOP rate; nil: none.
    public var forwardByteRate: Double? = nil, backwardByteRate: Double? = nil
    /// `speedup`: on every core of the host (calibrate's `cores` threads) over one thread.
    public var forwardSpeedup: Double = 1, backwardSpeedup: Double = 1
    public init(forwardRate: Double, forwardOverhead: Double, backwardRate: Double? = nil, backwardOverhead: Double? = nil) {
        self.forwardRate = forwardRate; self.forwardOverhead = forwardOverhead
        self.backwardRate = backwardRate; self.backwardOverhead = backwardOverhead
    }
}

/// How ranks talk. Section `network`: MPI between ranks of one host (shared memory) and between hosts (TCP).
public struct CPUNetwork: Sendable, Equatable {
    /// `local_bandwidth`, `local_latency`: all-reduce bus bandwidth per rank and the latency of one step, between
    /// ranks of one host.
    public var localBandwidth: Double
    public var localLatency: Double
    /// `host_bandwidth`, `host_latency` (0 for one host): the same between hosts, per host link.
    public var hostBandwidth: Double
    public var hostLatency: Double
}

/// `count` hosts.
public struct CPUCluster: Sendable, Equatable {
    public var cpu: CPUSpec
    public var network: CPUNetwork
    public var hosts: Int
    /// Ranks in the machine.
    public var devices: Int { hosts * cpu.ranksPerHost }
}

extension CPUCluster {
    var levels: [LevelTotals] {
        let c = cpu
        let conv = c.rate(c.ops["conv2d"]?.forwardRate ?? c.ops["matmul"]?.forwardRate ?? 0)
        let rank = LevelTotals(level: "rank", units: devices, nodes: 1, chips: 1,
                               peak: PeakRates(fp32: conv, tf32: 0, fp16: 0, bf16: 0, fp8: 0),
                               sramBytes: 0, hbmBytes: c.memoryBytes / Double(max(1, c.ranksPerHost)),
                               hbmBandwidth: c.streamBandwidth * max(1, c.threadsPerRank),
                               offBandwidth: network.localBandwidth, offBandwidthVia: "MPI shared memory", bisectionBandwidth: nil,
                               power: 0, diameterLatency: nil, tiles: 0, dips: 0)
        var host = rank.scaled(Double(c.ranksPerHost), level: "host")
        host.units = hosts
        host.hbmBytes = c.memoryBytes
        host.offBandwidth = network.hostBandwidth
        host.offBandwidthVia = "host link (MPI over TCP)"
        guard hosts > 1 else { return [rank, host] }
        var all = host.scaled(Double(hosts), level: "system")
        all.units = 1
        return [rank, host, all]
    }
}

extension Machine {
    /// A cpu machine laid out for a run of `ranks` ranks, as `dojo train --ranks` places them: the fewest per host
    /// that hold them (each with cores ÷ ranks-per-host threads). Other machines are returned unchanged.
    public func laidOut(ranks: Int) -> Machine {
        guard case .cpu(var c) = system, ranks >= 1 else { return self }
        c.cpu.ranksPerHost = max(1, (ranks + c.hosts - 1) / c.hosts)
        var m = self
        m.system = .cpu(c)
        return m
    }
}
