/// Peak FLOP/s per precision. On Dojo `bf16` is BF16 and `fp8` is CFP8 (same rate, S1), `fp16` is CFP16 (ASSUMED
/// the matrix rate) and `tf32` is 0; on GPUs the dense tensor-core rates. A precision a machine lacks is 0.
public struct PeakRates: Sendable, Equatable, Codable {
    public var fp32: Double
    public var tf32: Double
    public var fp16: Double
    public var bf16: Double
    public var fp8: Double

    public static func * (r: PeakRates, k: Double) -> PeakRates {
        PeakRates(fp32: r.fp32 * k, tf32: r.tf32 * k, fp16: r.fp16 * k, bf16: r.bf16 * k, fp8: r.fp8 * k)
    }

    /// The 16-bit matrix rate: BF16 where there is one, else FP16 (V100).
    public var half: Double { bf16 > 0 ? bf16 : fp16 }
}

/// Derived totals of one unit of a level (one D1, one tile, one DGX node…), and how many units the machine has.
public struct LevelTotals: Sendable, Equatable, Codable {
    /// "node", "D1", "tile", "tray", "cabinet", "ExaPOD", "GPU", "DGX node" (a server of PCIe cards: "server"), or "system"
    /// for `count` > 1.
    public var level: String
    /// Units of this level in the whole machine.
    public var units: Int
    /// Dojo compute nodes in one unit (GPUs for GPU machines).
    public var nodes: Int
    /// D1 dies (or GPUs) in one unit; 0 below the chip.
    public var chips: Int
    public var peak: PeakRates
    /// On-chip SRAM (Dojo) or L2 (GPU).
    public var sramBytes: Double
    public var hbmBytes: Double
    public var hbmBandwidth: Double
    /// Bandwidth out of one unit per direction, and what it is (mesh links, die edges, tile edges, TTPoE, NVLink, IB).
    public var offBandwidth: Double
    public var offBandwidthVia: String
    /// Bandwidth across the unit's narrowest halving cut, per direction; nil for a single node or GPU.
    public var bisectionBandwidth: Double?
    public var power: Double
    /// Worst-case one-way latency across one unit when idle (Dojo; nil for GPUs): a node its hop, a D1 its mesh
    /// diameter, a tile the diameter of its dies' meshes and die crossings, above the tile a TTPoE crossing.
    public var diameterLatency: Double?
    /// Dojo only: tiles and DIPs in one unit.
    public var tiles: Int
    public var dips: Double
}

extension Machine {
    /// Totals for one unit of every level, bottom up, ending with the whole machine.
    public var levels: [LevelTotals] {
        switch system {
        case .dojo(let d): return d.levels
        case .gpu(let g): return g.levels
        case .cpu(let c): return c.levels
        }
    }

    /// The whole machine.
    public var total: LevelTotals { levels.last! }
}

extension DojoSystem {
    var levels: [LevelTotals] {
        let n = node
        let nodePeak = PeakRates(fp32: n.fp32FlopsPerCycle * n.clockHz, tf32: 0,
                                 fp16: n.matrixFlopsPerCycle * n.clockHz, bf16: n.matrixFlopsPerCycle * n.clockHz,
                                 fp8: n.matrixFlopsPerCycle * n.clockHz)
        var out: [LevelTotals] = []
        let nodeT = LevelTotals(level: "node", units: 0, nodes: 1, chips: 0, peak: nodePeak, sramBytes: n.sramBytes,
                                hbmBytes: 0, hbmBandwidth: 0,
                                offBandwidth: Double(DojoNode.meshLinks) * n.linkBandwidth, offBandwidthVia: "4 mesh links",
                                bisectionBandwidth: nil, power: d1.tdp / Double(d1.nodes),
                                diameterLatency: n.hopLatencyCycles / n.clockHz, tiles: 0, dips: 0)
        out.append(nodeT)
        let hop = n.hopLatencyCycles / n.clockHz
        let chipDiameter = Double(d1.meshRows + d1.meshCols - 2) * hop
        // D1: its mesh's narrowest cut crosses min(rows, cols) links.
        let chipT = LevelTotals(level: "D1", units: 0, nodes: d1.nodes, chips: 1, peak: nodePeak * Double(d1.nodes),
                                sramBytes: n.sramBytes * Double(d1.nodes), hbmBytes: 0, hbmBandwidth: 0,
                                offBandwidth: Double(D1Chip.edges) * d1.edgeBandwidth, offBandwidthVia: "4 die edges (SerDes)",
                                bisectionBandwidth: Double(min(d1.meshRows, d1.meshCols)) * n.linkBandwidth,
                                power: d1.tdp, diameterLatency: chipDiameter, tiles: 0, dips: 0)
        out.append(chipT)
        if let tile, let dip {
            // A tile in a tray shares the tray's DIPs (20 for 6 tiles: 3.33 each, §10); a lone tile has its own.
            let dipsPerTile = tray.map { Double($0.dips) / Double($0.tiles) } ?? Double(tile.dips)
            let dies = Double(tile.chips)
            let lone = tray == nil
            var t = chipT.scaled(dies, level: "tile")
            t.chips = tile.chips
            t.tiles = 1
            t.dips = dipsPerTile
            t.hbmBytes = dipsPerTile * dip.hbmBytes
            t.hbmBandwidth = dipsPerTile * min(dip.hbmBandwidth, dip.ttpBandwidth)
            t.offBandwidth = Double(TrainingTile.edges) * tile.edgeBandwidth
            t.offBandwidthVia = "4 tile edges"
            // The tile's narrowest cut crosses min(rows, cols) die edges (5 × 2 TB/s = 10 TB/s, S3).
            t.bisectionBandwidth = Double(min(tile.chipRows, tile.chipCols)) * d1.edgeBandwidth
            t.power = dies * d1.tdp + tile.otherPower + (lone ? dipsPerTile * dip.power : 0)
            // Corner to corner: (rows + cols − 1) dies' meshes and (rows + cols − 2) die-to-die crossings.
            let dieSpan = Double(tile.chipRows + tile.chipCols)
            t.diameterLatency = (dieSpan - 1) * chipDiameter + (dieSpan - 2) * d1.dieToDieLatency
            out.append(t)
            if let tray {
                var r = t.scaled(Double(tray.tiles), level: "tray")
                r.dips = Double(tray.dips)
                r.hbmBytes = Double(tray.dips) * dip.hbmBytes
                r.hbmBandwidth = Double(tray.dips) * min(dip.hbmBandwidth, dip.ttpBandwidth)
                r.offBandwidth = Double(tray.dips) * dip.ethernetBandwidth
                r.offBandwidthVia = "DIP Ethernet (TTPoE)"
                r.bisectionBandwidth = Double(min(tray.tileRows, tray.tileCols)) * tray.tileLinkBandwidth
                r.power = Double(tray.tiles) * t.power + Double(tray.dips) * dip.power + tray.otherPower
                // Across the tray over the tile edges (tile_rows + tile_cols − 1 tiles corner to corner) or over the
                // Z-plane (one TTPoE crossing plus a tile at each end), whichever is shorter.
                let tileLatency = t.diameterLatency ?? 0
                r.diameterLatency = min(Double(tray.tileRows + tray.tileCols - 1) * tileLatency,
                                        dip.ttpoeLatency + 2 * tileLatency)
                out.append(r)
                // Above the tray everything meets over the TTPoE Z-plane.
                func zplane(_ below: LevelTotals, _ k: Int, _ level: String, other: Double) -> LevelTotals {
                    var c = below.scaled(Double(k), level: level)
                    c.offBandwidth = below.offBandwidth * Double(k)
                    c.bisectionBandwidth = Double(k / 2) * below.offBandwidth * dip.fabricBisectionFraction
                    c.power = Double(k) * below.power + other
                    // ASSUMPTION: a transfer between trays crosses the Z-plane once, plus a tile at each end.
                    c.diameterLatency = dip.ttpoeLatency + 2 * (t.diameterLatency ?? 0)
                    return c
                }
                if let cabinet {
                    let c = zplane(r, cabinet.trays, "cabinet", other: cabinet.otherPower)
                    out.append(c)
                    if let exapod {
                        var p = zplane(c, exapod.cabinets, "ExaPOD", other: exapod.otherPower)
                        // The ExaPOD's cut halves its trays, not just its cabinets.
                        let trays = exapod.cabinets * cabinet.trays
                        p.bisectionBandwidth = Double(trays / 2) * r.offBandwidth * dip.fabricBisectionFraction
                        out.append(p)
                    }
                }
            }
        }
        // Units of each level in the whole machine.
        let topIndex = out.count - 1
        var units = count
        for i in stride(from: topIndex, through: 0, by: -1) {
            out[i].units = units
            if i > 0 {
                let per: Int
                switch out[i].level {
                case "D1": per = d1.nodes
                case "tile": per = tile!.chips
                case "tray": per = tray!.tiles
                case "cabinet": per = cabinet!.trays
                case "ExaPOD": per = exapod!.cabinets
                default: per = 1
                }
                units *= per
            }
        }
        if count > 1 {
            let top = out[topIndex]
            var s = top.scaled(Double(count), level: "system")
            s.units = 1
            s.dips = top.dips * Double(count)
            s.offBandwidth = top.offBandwidth * Double(count)
            if top.level == "D1" || top.level == "tile" {
                // ASSUMPTION: several dies or lone tiles are joined edge to edge in a row, so a cut crosses one edge.
                s.bisectionBandwidth = top.level == "D1" ? d1.edgeBandwidth : tile!.edgeBandwidth
                s.offBandwidth = top.offBandwidth * Double(count) // their free edges
            } else {
                s.bisectionBandwidth = Double(count / 2) * top.offBandwidth * (dip?.fabricBisectionFraction ?? 1)
            }
            s.power = top.power * Double(count)
            s.diameterLatency = top.level == "D1" || top.level == "tile"
                ? Double(count) * (top.diameterLatency ?? 0) + Double(count - 1) * d1.dieToDieLatency
                : dip.map { $0.ttpoeLatency + 2 * (out[2].diameterLatency ?? 0) }
            out.append(s)
        }
        return out
    }
}

extension GPUCluster {
    var levels: [LevelTotals] {
        let g = gpu
        let gpuT = LevelTotals(level: "GPU", units: nodes * server.gpus, nodes: 1, chips: 1,
                               peak: PeakRates(fp32: g.fp32, tf32: g.tf32, fp16: g.fp16, bf16: g.bf16, fp8: g.fp8),
                               sramBytes: g.l2Bytes, hbmBytes: g.hbmBytes, hbmBandwidth: g.hbmBandwidth,
                               offBandwidth: peerBandwidth, offBandwidthVia: peerLink, bisectionBandwidth: nil,
                               power: g.tdp, diameterLatency: nil, tiles: 0, dips: 0)
        var nodeT = gpuT.scaled(Double(server.gpus), level: server.overPCIe ? "server" : "DGX node")
        nodeT.units = nodes
        nodeT.offBandwidth = Double(server.nics) * server.nicBandwidth
        nodeT.offBandwidthVia = "InfiniBand NICs"
        nodeT.bisectionBandwidth = Double(server.gpus / 2) * peerBandwidth * server.nvlinkBisectionFraction
        nodeT.power = server.power
        guard nodes > 1 else { return [gpuT, nodeT] }
        var c = nodeT.scaled(Double(nodes), level: "system")
        c.units = 1
        c.bisectionBandwidth = Double(nodes / 2) * nodeT.offBandwidth * server.fabricBisectionFraction
        c.power = nodeT.power * Double(nodes)
        return [gpuT, nodeT, c]
    }
}

extension LevelTotals {
    /// `k` of these as one unit: additive quantities multiplied; the caller sets bandwidths and power.
    func scaled(_ k: Double, level: String) -> LevelTotals {
        LevelTotals(level: level, units: 0, nodes: Int((Double(nodes) * k).rounded()), chips: Int((Double(chips) * k).rounded()),
                    peak: peak * k, sramBytes: sramBytes * k, hbmBytes: hbmBytes * k, hbmBandwidth: hbmBandwidth * k,
                    offBandwidth: offBandwidth, offBandwidthVia: offBandwidthVia, bisectionBandwidth: bisectionBandwidth,
                    power: power * k, diameterLatency: diameterLatency, tiles: Int((Double(tiles) * k).rounded()),
                    dips: dips * k)
    }
}

/// A published figure of a machine (`published:` in a machine file), to set beside the derived total.
public struct PublishedFigure: Sendable, Equatable, Codable {
    /// `LEVEL.QUANTITY`: e.g. `tile.peak_bf16`, `exapod.hbm_bytes`, `dgx_node.power`.
    public var key: String
    public var value: Double
    public var source: String

    /// Quantities that can be compared, with their dimension (nil for a plain count).
    public static let quantities: [(String, Dimension?)] = [
        ("nodes", nil), ("chips", nil), ("tiles", nil), ("peak_bf16", .flopsPerSecond), ("peak_fp32", .flopsPerSecond),
        ("peak_tf32", .flopsPerSecond), ("peak_fp16", .flopsPerSecond), ("peak_fp8", .flopsPerSecond),
        ("sram_bytes", .bytes), ("hbm_bytes", .bytes), ("hbm_bandwidth", .bytesPerSecond),
        ("off_bandwidth", .bytesPerSecond), ("bisection_bandwidth", .bytesPerSecond), ("power", .watts),
    ]

    /// Level names as keys write them: the level's title in lower case with `_` for spaces (`d1`, `exapod`,
    /// `dgx_node`, `gpu`, `system`).
    static func levelKey(_ title: String) -> String {
        title.lowercased().replacingOccurrences(of: " ", with: "_")
    }
}

/// A published figure beside the derived total.
public struct FigureCheck: Sendable, Equatable, Codable {
    public var key: String
    public var published: Double
    public var derived: Double
    public var source: String
    /// derived / published.
    public var ratio: Double { derived / published }
}

extension LevelTotals {
    /// The total named by a `PublishedFigure` quantity.
    public func value(of quantity: String) -> Double? {
        switch quantity {
        case "nodes": return Double(nodes)
        case "chips": return Double(chips)
        case "tiles": return Double(tiles)
        case "peak_bf16": return peak.bf16
        case "peak_fp32": return peak.fp32
        case "peak_tf32": return peak.tf32
        case "peak_fp16": return peak.fp16
        case "peak_fp8": return peak.fp8
        case "sram_bytes": return sramBytes
        case "hbm_bytes": return hbmBytes
        case "hbm_bandwidth": return hbmBandwidth
        case "off_bandwidth": return offBandwidth
        case "bisection_bandwidth": return bisectionBandwidth
        case "power": return power
        default: return nil
        }
    }
}

extension Machine {
    /// Each published figure of the file beside the derived total of the same level.
    public var checks: [FigureCheck] {
        let levels = self.levels
        return published.compactMap { f in
            let parts = f.key.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2,
                  let level = levels.first(where: { PublishedFigure.levelKey($0.level) == parts[0] }),
                  let derived = level.value(of: parts[1]) else { return nil }
            return FigureCheck(key: f.key, published: f.value, derived: derived, source: f.source)
        }
    }
}
