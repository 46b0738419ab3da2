import DojoGraph
import DojoReport
import Foundation
import Yams

/// Calibration knobs for the simulator (issue 3 §5): the fraction of a peak that real work reaches. They live in
/// the machine file, not in code, and do not change the peak totals. Section `calibration`; all ASSUMPTIONS.
public struct Calibration: Sendable, Equatable {
    /// `matrix_efficiency`: of the matrix (tensor-core) peak on large GEMMs.
    public var matrixEfficiency: Double
    /// `vector_efficiency`: of the SIMD/FP32 peak on elementwise and normalisation ops.
    public var vectorEfficiency: Double
    /// `link_efficiency`: of a link's bandwidth that collectives reach (protocol overhead).
    public var linkEfficiency: Double
    /// `memory_efficiency`: of SRAM/HBM bandwidth that streaming ops reach.
    public var memoryEfficiency: Double
    /// `fp8_efficiency` (optional; default `matrix_efficiency`): of the 8-bit matrix peak that 8-bit GEMMs reach.
    public var fp8Efficiency: Double
    /// `simt_efficiency` (optional; default `matrix_efficiency`): of the FP32 (CUDA-core) peak that GEMMs run without
    /// tensor cores reach (FP32 training; TF32 on a GPU without TF32).
    public var simtEfficiency: Double
    /// `host_decode_rate` (optional; default 0 = not modelled): samples per second one host data-loader worker (one
    /// hardware thread) prepares when input is decoded on the host (JPEG decode and augmentation for images).
    public var hostDecodeRate: Double = 0

    public init(matrixEfficiency: Double, vectorEfficiency: Double, linkEfficiency: Double, memoryEfficiency: Double,
                fp8Efficiency: Double? = nil, simtEfficiency: Double? = nil) {
        self.matrixEfficiency = matrixEfficiency; self.vectorEfficiency = vectorEfficiency
        self.linkEfficiency = linkEfficiency; self.memoryEfficiency = memoryEfficiency
        self.fp8Efficiency = fp8Efficiency ?? matrixEfficiency
        self.simtEfficiency = simtEfficiency ?? matrixEfficiency
    }
}

/// What a machine is made of.
public enum MachineSystem: Sendable, Equatable {
    case dojo(DojoSystem)
    case gpu(GPUCluster)
    /// CPU hosts running the engine, as `dojo machine calibrate` measured them.
    case cpu(CPUCluster)
}

/// A machine description: a Dojo system (with how many of its top level) or a GPU cluster, read from a YAML
/// preset or a user's file. Totals per level are computed (`levels`, `total`), never stored.
public struct Machine: Sendable, Equatable {
    /// `name`, `summary`: what the listing shows.
    public var name: String
    public var summary: String
    /// `hypothetical`: true for machines nobody has published figures for (the `d2` tile).
    public var hypothetical: Bool
    public var system: MachineSystem
    public var calibration: Calibration
    /// Every parameter read, with its key path, value as written, and source or assumption.
    public var parameters: [Parameter]
    /// The file it came from (a preset's is `presets/NAME.yaml`).
    public var file: String
    /// Published figures to compare with the derived totals (`published:`, optional): `checks` pairs them.
    public var published: [PublishedFigure] = []
    /// The YAML it was read from and the scale applied since (`with(_:)` re-reads it with overrides).
    public private(set) var yaml: String = ""
    public private(set) var scale: Int = 1

    /// `dojo`, `gpu` or `cpu`.
    public var kind: String {
        switch system {
        case .dojo: return "dojo"
        case .gpu: return "gpu"
        case .cpu: return "cpu"
        }
    }

    /// The same machine with `n` times its top level (nodes of a GPU cluster, units of a Dojo top level).
    public func scaled(by n: Int) -> Machine {
        var m = self
        switch system {
        case .dojo(var d):
            d.count *= n
            m.system = .dojo(d)
        case .gpu(var g):
            g.nodes *= n
            m.system = .gpu(g)
        case .cpu(var c):
            c.hosts *= n
            m.system = .cpu(c)
        }
        if n != 1 { m.name += "x\(n)" }
        m.scale *= n
        return m
    }

    /// The same machine with some parameters changed, by key path: `["node.sram_bytes": "2.5MB"]`. Values are
    /// written as in a file; decoding is as strict as for a file (an unknown path or a bad value is an error).
    /// What `dojo sweep --vary` and `dojo machine show --set` use.
    public func with(_ overrides: [String: String]) throws -> Machine {
        let base: Machine
        do { base = try Machine.decode(yaml: yaml, file: file, overrides: overrides) } catch let e as MachineError {
            // An error about a key the user set is theirs: said of the --set, not of the file it changed.
            if let path = e.keyPath, let key = overrides.keys.sorted().first(where: { path == $0 || path.hasPrefix($0 + ".") || $0.hasPrefix(path + ".") }) {
                throw e.from("--set \(key)=\(overrides[key]!) (on \(name))")
            }
            // The presets decode as shipped: any other error follows from the --set values too.
            if !overrides.isEmpty, file.hasPrefix("presets/") {
                throw e.from(overrides.keys.sorted().map { "--set \($0)=\(overrides[$0]!)" }.joined(separator: ", ") + " (on \(name))")
            }
            throw e
        }
        var m = base.scaled(by: scale)
        m.name = name
        return m
    }
}

// MARK: - Reading

extension Machine {
    /// Reads a machine description from YAML text; `file` names it in error messages.
    public static func decode(yaml text: String, file: String, overrides: [String: String] = [:]) throws -> Machine {
        var node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            // Yams appends the whole file as context; the first line says what and where.
            let first = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            throw MachineError.invalidYAML(file: file, reason: first)
        }
        guard var node else { throw MachineError.invalidYAML(file: file, reason: "the file is empty") }
        for (path, value) in overrides.sorted(by: { $0.key < $1.key }) {
            node = try override(node, path.split(separator: ".", omittingEmptySubsequences: false).map(String.init),
                                value: value, file: file, full: path)
        }
        var root = try Section(file: file, path: "", node: node)
        let name = try root.string("name")
        let kind = try root.choice("kind", ["dojo", "gpu", "cpu"])
        let summary = try root.string("summary")
        let hypothetical = root.has("hypothetical") ? try root.bool("hypothetical") : false
        let count = try root.int("count")
        guard count <= Limits.devices else {
            throw MachineError.invalidValue(file: file, path: "count", reason: "\(count) is more than \(Limits.devices) (the most devices a machine may have)")
        }
        var sections: [Section] = []
        func read<T>(_ key: String, _ body: (inout Section) throws -> T) throws -> T {
            var s = try root.section(key)
            let v = try body(&s)
            try s.finish()
            sections.append(s)
            return v
        }
        let system: MachineSystem
        if kind == "dojo" {
            let topName = try root.choice("top", DojoLevel.allCases.map(\.rawValue))
            let top = DojoLevel(rawValue: topName)!
            // Sections above the top level are not part of this machine.
            for level in DojoLevel.allCases where level > top && root.has(level.rawValue) {
                throw MachineError.invalidValue(file: file, path: level.rawValue,
                                                reason: "section not used when top is \(top.rawValue); remove it or raise top")
            }
            if top < .tile, root.has("dip") {
                throw MachineError.invalidValue(file: file, path: "dip", reason: "DIPs attach to tiles; set top to tile or higher")
            }
            let node = try read("node", readNode)
            let d1 = try read("d1", readD1)
            // Sites of the mesh are laid out one by one (the compiler's grid): at most 2^20, a 1024 × 1024 mesh.
            guard Double(d1.meshRows) * Double(d1.meshCols) <= Double(1 << 20) else {
                throw MachineError.invalidValue(file: file, path: "d1.mesh_rows",
                    reason: "mesh \(d1.meshRows) × \(d1.meshCols) is more than \(1 << 20) sites (a 1024 × 1024 mesh; the D1 has 18 × 20)")
            }
            guard d1.meshRows * d1.meshCols >= d1.nodes else {
                throw MachineError.invalidValue(file: file, path: "d1.mesh_rows",
                    reason: "mesh \(d1.meshRows) × \(d1.meshCols) = \(d1.meshRows * d1.meshCols) sites is smaller than d1.nodes = \(d1.nodes)")
            }
            var sys = DojoSystem(top: top, count: count, node: node, d1: d1)
            if top >= .tile {
                sys.dip = try read("dip", readDIP)
                sys.tile = try read("tile", readTile)
            }
            if top >= .tray { sys.tray = try read("tray", readTray) }
            if top >= .cabinet { sys.cabinet = try read("cabinet", readCabinet) }
            if top >= .exapod { sys.exapod = try read("exapod", readExaPOD) }
            system = .dojo(sys)
        } else if kind == "cpu" {
            for key in ["top", "node", "d1", "dip", "tile", "tray", "cabinet", "exapod", "gpu", "server"] where root.has(key) {
                throw MachineError.invalidValue(file: file, path: key, reason: "not a key of a cpu machine (cpu, network, count)")
            }
            let cpu = try read("cpu", readCPU)
            let network = try read("network", readNetwork)
            if count > 1 && network.hostBandwidth <= 0 {
                throw MachineError.invalidValue(file: file, path: "network.host_bandwidth", reason: "must be positive for \(count) hosts (measure it with dojo machine calibrate --hostfile)")
            }
            system = .cpu(CPUCluster(cpu: cpu, network: network, hosts: count))
        } else {
            for key in ["top", "node", "d1", "dip", "tile", "tray", "cabinet", "exapod"] where root.has(key) {
                throw MachineError.invalidValue(file: file, path: key, reason: "not a key of a gpu machine (gpu, server, count)")
            }
            let gpu = try read("gpu", readGPU)
            let server = try read("server", readServer)
            if server.overPCIe && gpu.pcieBandwidthBidirectional <= 0 {
                throw MachineError.invalidValue(file: file, path: "server.interconnect",
                    reason: "pcie needs the cards' link: set gpu.pcie_bandwidth (both directions, e.g. 64GB/s for PCIe Gen4 x16)")
            }
            system = .gpu(GPUCluster(gpu: gpu, server: server, nodes: count))
        }
        // Every count multiplies into the machine's totals: the whole must stay countable.
        var units: Double
        switch system {
        case .dojo(let d):
            units = Double(d.count) * Double(d.d1.nodes)
            if let t = d.tile { units *= Double(t.chips) }
            if let t = d.tray { units *= Double(t.tiles) }
            if let c = d.cabinet { units *= Double(c.trays) }
            if let e = d.exapod { units *= Double(e.cabinets) }
        case .gpu(let g): units = Double(g.nodes) * Double(g.server.gpus)
        case .cpu(let c): units = Double(c.hosts) * Double(c.cpu.ranksPerHost)
        }
        var devices = units
        if case .dojo(let d) = system { devices = units / Double(max(1, d.d1.nodes)) }
        guard devices <= Double(Limits.devices) else {
            throw MachineError.invalidValue(file: file, path: "count", reason: "the counts multiply to \(devices) devices; at most \(Limits.devices) (the most devices a machine may have)")
        }
        guard units <= Double(Limits.devices) * 1024 else {
            throw MachineError.invalidValue(file: file, path: "count", reason: "the counts multiply to \(units) compute units; at most \(Limits.devices) devices (× 1024 nodes each) fit the totals")
        }
        let calibration = try read("calibration", readCalibration)
        var published: [PublishedFigure] = []
        if root.has("published") {
            published = try readPublished(try root.section("published"), levels: levelKeys(system))
        }
        try root.finish(allowed: ["hypothetical", "published"].filter { !root.has($0) })
        return Machine(name: name, summary: summary, hypothetical: hypothetical, system: system,
                       calibration: calibration,
                       parameters: root.parameters + sections.flatMap(\.parameters), file: file, published: published,
                       yaml: text, scale: 1)
    }

    /// Reads a machine file from disk; errors name the file as the user gave it.
    public static func load(file path: String) throws -> Machine {
        let data: Data
        do { data = try UserFiles.read(path, what: "machine file", limit: 1 << 24) } catch {
            throw MachineError.unreadable(file: path, reason: error.problem)
        }
        guard !data.contains(0), let text = String(data: data, encoding: .utf8) else {
            throw MachineError.unreadable(file: path, reason: "not a machine file: not UTF-8 text")
        }
        return try decode(yaml: text, file: (path as NSString).lastPathComponent)
    }
}

/// `node` with the parameter at `path` set to `value` (a bare scalar: its provenance becomes the user's).
private func override(_ node: Node, _ path: [String], value: String, file: String, full: String) throws -> Node {
    guard case .mapping(var m) = node, let key = path.first else {
        throw MachineError.invalidValue(file: file, path: full, reason: "not a parameter of this machine")
    }
    guard let child = m[key] else {
        // a parameter this file leaves out (an optional one, left to its default) is added; the strict decoder then
        // refuses a key its section does not take, naming the ones it does
        if path.count == 1 { m[key] = Node(value); return .mapping(m) }
        throw MachineError.unknownKey(file: file, path: full, allowed: m.keys.compactMap(\.string).sorted())
    }
    if path.count > 1 {
        m[key] = try override(child, Array(path.dropFirst()), value: value, file: file, full: full)
    } else {
        if case .mapping(let inner) = child, inner["value"] == nil {
            throw MachineError.invalidValue(file: file, path: full, reason: "is a section, not a parameter")
        }
        m[key] = Node(value)
    }
    return .mapping(m)
}

/// The level keys a `published:` figure may name for this system (before any scaling).
private func levelKeys(_ system: MachineSystem) -> [String] {
    switch system {
    case .dojo(let d):
        let all = ["node", "d1", "tile", "tray", "cabinet", "exapod"]
        return Array(all.prefix(DojoLevel.allCases.firstIndex(of: d.top)! + 1)) + (d.count > 1 ? ["system"] : [])
    case .gpu(let g):
        return ["gpu", "dgx_node"] + (g.nodes > 1 ? ["system"] : [])
    case .cpu(let c):
        return ["rank", "host"] + (c.hosts > 1 ? ["system"] : [])
    }
}

/// `published:` maps `LEVEL.QUANTITY` to `{value, source}`; a source is required.
private func readPublished(_ section: Section, levels: [String]) throws -> [PublishedFigure] {
    var s = section
    var out: [PublishedFigure] = []
    for key in s.keys {
        let path = s.keyPath(key)
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, levels.contains(parts[0]),
              let q = PublishedFigure.quantities.first(where: { $0.0 == parts[1] }) else {
            throw MachineError.invalidValue(file: s.file, path: path,
                reason: "not LEVEL.QUANTITY with LEVEL in \(levels.joined(separator: ", ")) and QUANTITY in "
                    + PublishedFigure.quantities.map(\.0).joined(separator: ", "))
        }
        var inner = try s.section(key)
        let text = try inner.string("value")
        let source = try inner.string("source")
        try inner.finish()
        let value: Double?
        if let dim = q.1 { value = parseQuantity(text, dim) } else { value = Double(text) }
        guard let value else {
            throw MachineError.wrongType(file: s.file, path: join(path, "value"), expected: q.1?.example ?? "a number", got: "'\(text)'")
        }
        guard value > 0 else {
            throw MachineError.invalidValue(file: s.file, path: join(path, "value"), reason: "must be positive, got \(text)")
        }
        out.append(PublishedFigure(key: key, value: value, source: source))
    }
    try s.finish()
    return out
}

private func readNode(_ s: inout Section) throws -> DojoNode {
    DojoNode(clockHz: try s.quantity("clock", .hertz),
             matrixFlopsPerCycle: try s.number("matrix_flops_per_cycle"),
             fp32FlopsPerCycle: try s.number("fp32_flops_per_cycle"),
             matrixBlock: try s.whole("matrix_block", most: 1024),
             sramBytes: try s.quantity("sram_bytes", .bytes),
             sramLoadBandwidth: try s.quantity("sram_load_bandwidth", .bytesPerSecond),
             sramStoreBandwidth: try s.quantity("sram_store_bandwidth", .bytesPerSecond),
             linkBytesPerCycle: try s.quantity("link_bytes_per_cycle", .bytes),
             hopLatencyCycles: try s.number("hop_latency_cycles", positive: false),
             threads: try s.int("threads"),
             accumulator: try s.choice("accumulator", ["fp32", "bf16"]))
}

private func readD1(_ s: inout Section) throws -> D1Chip {
    D1Chip(nodes: try s.int("nodes"),
           meshRows: try s.int("mesh_rows"),
           meshCols: try s.int("mesh_cols"),
           routing: try s.choice("routing", ["dimension-order", "adaptive"]),
           serdesChannels: try s.int("serdes_channels"),
           serdesRate: try s.quantity("serdes_rate", .bytesPerSecond),
           edgeBandwidth: try s.quantity("edge_bandwidth", .bytesPerSecond),
           dieToDieLatency: try s.quantity("die_to_die_latency", .seconds, positive: false),
           tdp: try s.quantity("tdp", .watts))
}

private func readDIP(_ s: inout Section) throws -> DIP {
    DIP(hbmBytes: try s.quantity("hbm_bytes", .bytes),
        hbmBandwidth: try s.quantity("hbm_bandwidth", .bytesPerSecond),
        ttpBandwidth: try s.quantity("ttp_bandwidth", .bytesPerSecond),
        pcieBandwidth: try s.quantity("pcie_bandwidth", .bytesPerSecond),
        ethernetBandwidth: try s.quantity("ethernet_bandwidth", .bytesPerSecond),
        ttpoeLatency: try s.quantity("ttpoe_latency", .seconds, positive: false),
        fabricBisectionFraction: try s.fraction("fabric_bisection_fraction"),
        power: try s.quantity("power", .watts, positive: false))
}

private func readTile(_ s: inout Section) throws -> TrainingTile {
    TrainingTile(chipRows: try s.int("chip_rows"),
                 chipCols: try s.int("chip_cols"),
                 ioDies: try s.int("io_dies", min: 0),
                 edgeBandwidth: try s.quantity("edge_bandwidth", .bytesPerSecond),
                 dips: try s.int("dips", min: 0),
                 otherPower: try s.quantity("other_power", .watts, positive: false))
}

private func readTray(_ s: inout Section) throws -> SystemTray {
    SystemTray(tileRows: try s.int("tile_rows"),
               tileCols: try s.int("tile_cols"),
               dips: try s.int("dips", min: 0),
               tileLinkBandwidth: try s.quantity("tile_link_bandwidth", .bytesPerSecond),
               hostCores: try s.int("host_cores", min: 0),
               hostMemory: try s.quantity("host_memory", .bytes, positive: false),
               otherPower: try s.quantity("other_power", .watts, positive: false))
}

private func readCabinet(_ s: inout Section) throws -> Cabinet {
    Cabinet(trays: try s.int("trays"), otherPower: try s.quantity("other_power", .watts, positive: false))
}

private func readExaPOD(_ s: inout Section) throws -> ExaPOD {
    ExaPOD(cabinets: try s.int("cabinets"), otherPower: try s.quantity("other_power", .watts, positive: false))
}

private func readGPU(_ s: inout Section) throws -> GPUSpec {
    var gpu = GPUSpec(model: try s.string("model"),
            fp32: try s.quantity("fp32", .flopsPerSecond),
            tf32: try s.quantity("tf32", .flopsPerSecond, positive: false),
            fp16: try s.quantity("fp16", .flopsPerSecond),
            bf16: try s.quantity("bf16", .flopsPerSecond, positive: false),
            fp8: try s.quantity("fp8", .flopsPerSecond, positive: false),
            hbmBytes: try s.quantity("hbm_bytes", .bytes),
            hbmBandwidth: try s.quantity("hbm_bandwidth", .bytesPerSecond),
            l2Bytes: try s.quantity("l2_bytes", .bytes, positive: false),
            nvlinkBandwidthBidirectional: try s.quantity("nvlink_bandwidth", .bytesPerSecond),
            tdp: try s.quantity("tdp", .watts),
            sms: try s.int("sms"),
            gemmTile: try s.int("gemm_tile"),
            launchOverhead: try s.quantity("launch_overhead", .seconds, positive: false))
    if s.optional("compute_capability") { gpu.computeCapability = try s.number("compute_capability", positive: false) }
    if s.optional("pcie_bandwidth") { gpu.pcieBandwidthBidirectional = try s.quantity("pcie_bandwidth", .bytesPerSecond) }
    if s.optional("power_limit") {
        gpu.powerLimit = try s.quantity("power_limit", .watts)
        guard gpu.powerLimit <= gpu.tdp else {
            throw MachineError.invalidValue(file: s.file, path: s.keyPath("power_limit"),
                reason: "\(Int(gpu.powerLimit)) W is above the part's tdp of \(Int(gpu.tdp)) W: a power limit can only lower the board power (set tdp for a part rated higher)")
        }
    }
    return gpu
}

private func readServer(_ s: inout Section) throws -> GPUServer {
    GPUServer(model: try s.string("model"),
              gpus: try s.int("gpus"),
              interconnect: try s.choice("interconnect", ["nvswitch", "hybrid-cube-mesh", "pcie"]),
              nvlinkBisectionFraction: try s.fraction("nvlink_bisection_fraction"),
              nics: try s.int("nics"),
              nicBandwidth: try s.quantity("nic_bandwidth", .bytesPerSecond),
              power: try s.quantity("power", .watts),
              fabricBisectionFraction: try s.fraction("fabric_bisection_fraction"),
              hostCores: s.optional("host_cores") ? try s.int("host_cores", min: 0) : 0,
              hostThreads: s.optional("host_threads") ? try s.int("host_threads", min: 0) : 0)
}

private func readCPU(_ s: inout Section) throws -> CPUSpec {
    var spec = CPUSpec(model: try s.string("model"),
                       cores: try s.int("cores"),
                       ranksPerHost: try s.int("ranks_per_host"),
                       memoryBytes: try s.quantity("memory_bytes", .bytes),
                       threadEfficiency: try s.fraction("thread_efficiency"),
                       streamBandwidth: try s.quantity("stream_bandwidth", .bytesPerSecond),
                       opOverhead: try s.quantity("op_overhead", .seconds, positive: false))
    spec.sharedSpeed = try s.fraction("shared_speed")
    spec.stepOverhead = try s.quantity("step_overhead", .seconds, positive: false)
    if s.has("ops") {
        var ops = try s.section("ops")
        for kind in ops.keys {
            guard let k = OpKind(rawValue: kind) else {
                throw MachineError.invalidValue(file: ops.file, path: ops.keyPath(kind), reason: "not an op kind of the Graph IR (\(OpKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            var entry = try ops.section(kind)
            let unit: Dimension = k.isMatrixOp ? .flopsPerSecond : .bytesPerSecond
            func phase(_ name: String) throws -> (Double, Double, Double, Double?) {
                var p = try entry.section(name)
                let r = (try p.quantity("rate", unit), try p.quantity("overhead", .seconds, positive: false), try p.number("speedup"))
                guard r.2 > 0 else { throw MachineError.invalidValue(file: p.file, path: p.keyPath("speedup"), reason: "must be positive, got \(r.2)") }
                // a matrix kind's cost by the byte of its operands and result (see OpRate)
                var byteRate: Double? = nil
                if p.has("byte_rate") {
                    guard k.isMatrixOp else {
                        throw MachineError.invalidValue(file: p.file, path: p.keyPath("byte_rate"), reason: "only matrix kinds (conv2d, matmul) take a byte_rate beside their FLOP rate; \(kind)'s rate is already in bytes")
                    }
                    byteRate = try p.quantity("byte_rate", .bytesPerSecond)
                }
                try p.finish()
                entry.absorb(p)
                return (r.0, r.1, r.2, byteRate)
            }
            let f = try phase("forward")
            let b = entry.has("backward") ? try phase("backward") : nil
            try entry.finish()
            ops.absorb(entry)
            var rate = OpRate(forwardRate: f.0, forwardOverhead: f.1, backwardRate: b?.0, backwardOverhead: b?.1)
            rate.forwardSpeedup = f.2
            rate.backwardSpeedup = b?.2 ?? 1
            rate.forwardByteRate = f.3
            rate.backwardByteRate = b?.3
            spec.ops[kind] = rate
        }
        try ops.finish()
        s.absorb(ops)
    }
    return spec
}

private func readNetwork(_ s: inout Section) throws -> CPUNetwork {
    CPUNetwork(localBandwidth: try s.quantity("local_bandwidth", .bytesPerSecond),
               localLatency: try s.quantity("local_latency", .seconds, positive: false),
               hostBandwidth: try s.quantity("host_bandwidth", .bytesPerSecond, positive: false),
               hostLatency: try s.quantity("host_latency", .seconds, positive: false))
}

private func readCalibration(_ s: inout Section) throws -> Calibration {
    var c = Calibration(matrixEfficiency: try s.fraction("matrix_efficiency"),
                        vectorEfficiency: try s.fraction("vector_efficiency"),
                        linkEfficiency: try s.fraction("link_efficiency"),
                        memoryEfficiency: try s.fraction("memory_efficiency"),
                        fp8Efficiency: s.optional("fp8_efficiency") ? try s.fraction("fp8_efficiency") : nil,
                        simtEfficiency: s.optional("simt_efficiency") ? try s.fraction("simt_efficiency") : nil)
    if s.optional("host_decode_rate") { c.hostDecodeRate = try s.number("host_decode_rate") }
    return c
}

// MARK: - Presets

/// The machines that ship with OpenDojo, as YAML files in the package's resources.
public enum Presets {
    /// Preset names in listing order.
    public static let names = ["d1", "tile", "tray", "cabinet", "exapod", "d2", "dgx-v100", "dgx-a100", "dgx-h100", "dgx-h200", "dgx-b200", "pcie-a100", "pcie-h100"]

    /// The YAML text of a preset, or nil. The presets are compiled into the binary (`EmbeddedPresets`, generated
    /// from `Sources/DojoMachine/Presets/*.yaml` by scripts/embed-data.py), so a copied `dojo` needs no other file.
    public static func yaml(_ name: String) -> String? {
        guard names.contains(name) else { return nil }
        return EmbeddedPresets.texts[name]
    }

    /// A preset by name.
    public static func load(_ name: String) throws -> Machine {
        guard let text = yaml(name) else { throw MachineError.unknownMachine(name, known: names) }
        return try Machine.decode(yaml: text, file: "presets/\(name).yaml")
    }

    /// Every preset.
    public static func all() throws -> [Machine] { try names.map(load) }
}

extension Machine {
    /// A preset name (`tile`), a scaled preset (`dgx-h100x8`, `exapod x2`, `tile×4`), or a YAML file path
    /// (optionally scaled the same way: `my.yaml x2`).
    public static func resolve(_ spec: String) throws -> Machine {
        let s = spec.trimmingSpaces()
        if Presets.names.contains(s) { return try Presets.load(s) }
        if FileManager.default.fileExists(atPath: s) { return try load(file: s) }
        // NAMExN / NAME xN / NAME×N
        var digits = ""
        var rest = Substring(s)
        while let c = rest.last, c.isASCII, c.isNumber { digits.insert(c, at: digits.startIndex); rest.removeLast() }
        if !digits.isEmpty, let x = rest.last, x == "x" || x == "×" {
            rest.removeLast()
            let base = String(rest).trimmingSpaces()
            guard let n = Int(digits), n > 0 else {
                throw MachineError.invalidValue(file: spec, path: "count", reason: "the scale must be a positive integer, got \(digits)")
            }
            func scale(_ m: Machine) throws -> Machine {
                // the scaled machine's devices must stay countable (Limits.devices)
                let unit = Double(max(1, m.total.chips)), most = Double(Limits.devices) / unit
                guard Double(n) <= most else {
                    throw MachineError.invalidValue(file: spec, path: "count", reason: "×\(n) would make \(m.name) more than \(Limits.devices) devices (\(m.total.chips) each); at most ×\(Int(most))")
                }
                return m.scaled(by: n)
            }
            if Presets.names.contains(base) { return try scale(Presets.load(base)) }
            if FileManager.default.fileExists(atPath: base) { return try scale(load(file: base)) }
        }
        throw MachineError.unknownMachine(spec, known: Presets.names)
    }
}
