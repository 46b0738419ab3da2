import DojoMachine

/// One level of a machine's communication hierarchy: `size` units of the level below joined by links. Bandwidths
/// are what one device gets when every device of a unit communicates across this level at once (its share of the
/// unit's links), per direction.
public struct CommLevel: Sendable, Equatable, Codable {
    /// What the level is ("tile mesh", "tray", "Z-plane", "NVLink", "InfiniBand").
    public var name: String
    /// Units of the level below in one unit of this level (devices, for the lowest level).
    public var size: Int
    /// Devices in one unit of this level (product of the sizes up to here).
    public var devices: Int
    /// Bytes per second one device can send across this level while all devices of its unit do, per direction,
    /// after the machine's link efficiency.
    public var bandwidthPerDevice: Double
    /// Seconds of one step of a collective at this level (a link crossing plus switch/mesh latency).
    public var latency: Double
    /// The links it uses, for reports.
    public var via: String
}

/// The devices a plan spreads work over and how they are connected: D1 dies of a Dojo machine, or GPUs.
/// Derived from a `Machine`; every number comes from its parameters.
public struct DeviceTopology: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable { case d1, gpu, cpu }
    public var kind: Kind
    /// The device's name ("D1", "H100 SXM5 80GB").
    public var deviceName: String
    /// Devices in the machine.
    public var devices: Int
    /// Memory a device computes from at full speed: a D1's SRAM (354 × 1.25 MB), a GPU's HBM.
    public var fastMemoryBytes: Double
    /// Further memory a device can hold state in, more slowly: a D1's share of its tile's DIP HBM; 0 on GPUs.
    public var bulkMemoryBytes: Double
    /// Bytes per second between a device and its bulk memory (a D1's share of its DIPs' HBM/TTP bandwidth);
    /// for a GPU its HBM bandwidth.
    public var bulkMemoryBandwidth: Double
    /// Bytes per second of input a device receives from the host (PCIe share).
    public var hostBandwidth: Double
    /// The communication levels, bottom up (empty for one device).
    public var levels: [CommLevel]
    /// The machine's link efficiency, already applied to `levels`.
    public var linkEfficiency: Double

    /// Memory a device can hold state in, all tiers.
    public var memoryBytes: Double { fastMemoryBytes + bulkMemoryBytes }

    public init(machine: Machine) {
        let eff = machine.calibration.linkEfficiency
        linkEfficiency = eff
        switch machine.system {
        case .cpu(let c):
            kind = .cpu
            deviceName = "rank on \(c.cpu.model)"
            devices = c.devices
            fastMemoryBytes = c.cpu.memoryBytes / Double(max(1, c.cpu.ranksPerHost))
            bulkMemoryBytes = 0
            bulkMemoryBandwidth = c.cpu.streamBandwidth
            // Input is read by each rank's own loader on the rank's cores: no transfer to price here (its preparation
            // is `SimOptions.hostInputSeconds`, added by the step model).
            hostBandwidth = 0
            var lv: [CommLevel] = []
            if c.cpu.ranksPerHost > 1 {
                lv.append(CommLevel(name: "shared memory", size: c.cpu.ranksPerHost, devices: c.cpu.ranksPerHost,
                                    bandwidthPerDevice: c.network.localBandwidth * eff, latency: c.network.localLatency,
                                    via: "MPI on one host"))
            }
            if c.hosts > 1 {
                lv.append(CommLevel(name: "host link", size: c.hosts, devices: c.devices,
                                    bandwidthPerDevice: c.network.hostBandwidth / Double(max(1, c.cpu.ranksPerHost)) * eff,
                                    latency: c.network.hostLatency, via: "MPI over TCP"))
            }
            levels = lv
        case .gpu(let c):
            kind = .gpu
            deviceName = c.gpu.model
            devices = c.nodes * c.server.gpus
            fastMemoryBytes = c.gpu.hbmBytes
            bulkMemoryBytes = 0
            bulkMemoryBandwidth = c.gpu.hbmBandwidth
            // ASSUMPTION: PCIe Gen4/5 x16 per GPU feeds input (32 GB/s); input is rarely the bound.
            hostBandwidth = 32e9
            var lv: [CommLevel] = []
            let g = c.server.gpus
            if g > 1 {
                // NVSwitch: every GPU sends at its full NVLink rate; a cube mesh loses some (bisection fraction); PCIe
                // cards send over their PCIe links through the server's switches.
                lv.append(CommLevel(name: c.peerLink, size: g, devices: g,
                                    bandwidthPerDevice: c.peerBandwidth * c.server.nvlinkBisectionFraction * eff,
                                    latency: 3e-6 /* ASSUMPTION: NCCL intra-node step latency */, via: c.server.interconnect))
            }
            if c.nodes > 1 {
                let perGPU = Double(c.server.nics) * c.server.nicBandwidth / Double(g) * c.server.fabricBisectionFraction
                lv.append(CommLevel(name: "InfiniBand", size: c.nodes, devices: g * c.nodes, bandwidthPerDevice: perGPU * eff,
                                    latency: 6e-6 /* ASSUMPTION: NCCL inter-node step latency */,
                                    via: "\(c.server.nics) NICs per node"))
            }
            levels = lv
        case .dojo(let d):
            kind = .d1
            deviceName = "D1"
            let n = d.node
            let chipSRAM = n.sramBytes * Double(d.d1.nodes)
            fastMemoryBytes = chipSRAM
            let chipDiameter = Double(d.d1.meshRows + d.d1.meshCols - 2) * n.hopLatencyCycles / n.clockHz
            var lv: [CommLevel] = []
            if let tile = d.tile, let dip = d.dip {
                let dipsPerTile = d.tray.map { Double($0.dips) / Double($0.tiles) } ?? Double(tile.dips)
                let chips = Double(tile.chips)
                bulkMemoryBytes = dipsPerTile * dip.hbmBytes / chips
                bulkMemoryBandwidth = dipsPerTile * min(dip.hbmBandwidth, dip.ttpBandwidth) / chips
                hostBandwidth = dipsPerTile * dip.pcieBandwidth / chips
                // On the tile: a ring through the dies over die edges, both directions (2 × the edge's per-direction
                // bandwidth per die).
                lv.append(CommLevel(name: "tile mesh", size: tile.chips, devices: tile.chips,
                                    bandwidthPerDevice: 2 * d.d1.edgeBandwidth * eff,
                                    latency: d.d1.dieToDieLatency + chipDiameter / 2, via: "die edges"))
                var below = tile.chips
                if let tray = d.tray {
                    // Tiles of a tray: a ring over the tile-to-tile links, shared by the tile's dies.
                    lv.append(CommLevel(name: "tray", size: tray.tiles, devices: below * tray.tiles,
                                        bandwidthPerDevice: 2 * tray.tileLinkBandwidth / chips * eff,
                                        latency: d.d1.dieToDieLatency + 5 * chipDiameter, via: "tile edges"))
                    below *= tray.tiles
                    // Trays meet over the TTPoE Z-plane through their DIPs' Ethernet.
                    var trays = 1
                    if let cab = d.cabinet { trays *= cab.trays }
                    if let pod = d.exapod { trays *= pod.cabinets }
                    trays *= d.count
                    if trays > 1 {
                        let perDie = Double(tray.dips) * dip.ethernetBandwidth * dip.fabricBisectionFraction / Double(below)
                        lv.append(CommLevel(name: "Z-plane", size: trays, devices: below * trays,
                                            bandwidthPerDevice: perDie * eff, latency: dip.ttpoeLatency,
                                            via: "DIP Ethernet (TTPoE)"))
                    }
                    devices = below * trays
                } else {
                    // Lone tiles joined edge to edge in a row (ASSUMPTION, as the machine totals).
                    if d.count > 1 {
                        lv.append(CommLevel(name: "tile row", size: d.count, devices: below * d.count,
                                            bandwidthPerDevice: tile.edgeBandwidth / chips * eff,
                                            latency: d.d1.dieToDieLatency + 5 * chipDiameter, via: "tile edges"))
                    }
                    devices = below * d.count
                }
            } else {
                // Bare D1 dies: no DIP; state beyond SRAM has nowhere to go.
                bulkMemoryBytes = 0
                bulkMemoryBandwidth = 0
                hostBandwidth = 0
                if d.count > 1 {
                    lv.append(CommLevel(name: "die row", size: d.count, devices: d.count,
                                        bandwidthPerDevice: d.d1.edgeBandwidth * eff,
                                        latency: d.d1.dieToDieLatency + chipDiameter, via: "die edges"))
                }
                devices = d.count
            }
            levels = lv
        }
    }

    /// Devices in one unit of level `i` (1 below the lowest level).
    public func devicesPerUnit(level i: Int) -> Int { i < 0 ? 1 : levels[i].devices }

    /// How a group of `size` devices placed `stride` apart (device ids g·stride + offset) spreads over the levels:
    /// for each level it crosses, how many members of the group meet there. The product of the counts is `size`.
    public func spread(size: Int, stride: Int) -> [(level: Int, members: Int)] {
        guard size > 1 else { return [] }
        var out: [(Int, Int)] = []
        var covered = 1   // group members within one unit of the level below
        for (i, l) in levels.enumerated() {
            // members of the group inside one unit of this level
            let inside = max(1, min(size, l.devices / max(1, stride)))
            if inside > covered {
                out.append((i, inside / covered))
                covered = inside
            }
            if covered >= size { break }
        }
        if covered < size {
            // More members than the machine has devices at this stride: the top level carries the rest.
            let top = max(0, levels.count - 1)
            if let last = out.last, last.0 == top { out[out.count - 1].1 *= size / covered } else { out.append((top, size / covered)) }
        }
        return out
    }
}
