/// Tesla Dojo, level by level. Every stored property is a parameter of the machine file (its key in the doc
/// comment); every total is computed (see `Totals.swift`). Bandwidths are per direction unless a name says
/// otherwise. Figures and their sources: `docs/SOURCES.md`; the presets carry a source or an
/// ASSUMPTION beside every value.

/// A compute node ("core"): a CPU with its own SRAM, matrix and SIMD units and a mesh router. Section `node`.
public struct DojoNode: Sendable, Equatable {
    /// `clock`: 2 GHz (S2, S9, S7).
    public var clockHz: Double
    /// `matrix_flops_per_cycle`: BF16 and CFP8 FLOP per cycle, 512 = 256 MAC (S2, S26; 362 T / 354 / 2 GHz). CFP16/FP16
    /// is ASSUMED to run at the same rate.
    public var matrixFlopsPerCycle: Double
    /// `fp32_flops_per_cycle`: 32 = one 512-bit FMA vector (S26, S7: 64 GFLOPS per node).
    public var fp32FlopsPerCycle: Double
    /// `matrix_block`: the side of the output block the matrix unit computes at once: 8 (S2, S10: 8×8×4 multiply,
    /// "four 8×8 units"). A node's share of a GEMM is padded to multiples of it.
    public var matrixBlock: Double
    /// `sram_bytes`: 1.25 MB (S2).
    public var sramBytes: Double
    /// `sram_load_bandwidth`: 400 GB/s (S9, S10) by default; port arithmetic gives 256 GB/s (§12: a parameter).
    public var sramLoadBandwidth: Double
    /// `sram_store_bandwidth`: 270 GB/s (S9, S10); port arithmetic gives 128 GB/s.
    public var sramStoreBandwidth: Double
    /// `link_bytes_per_cycle`: 64 B per cycle per direction to each of 4 neighbours (S9, S10).
    public var linkBytesPerCycle: Double
    /// `hop_latency_cycles`: 1 (S7, S9: "single cycle per hop"); the router pipeline is not public.
    public var hopLatencyCycles: Double
    /// `threads`: 4-way SMT (S2, S9).
    public var threads: Int
    /// `accumulator`: `fp32` or `bf16`; the matrix unit's accumulate width is not public (ASSUMPTION: fp32, S5 p7).
    public var accumulator: String

    /// Mesh links per node (a 2D mesh: north, south, east, west).
    public static let meshLinks = 4

    /// Bytes per second on one link in one direction: 64 B × 2 GHz = 128 GB/s.
    public var linkBandwidth: Double { linkBytesPerCycle * clockHz }
}

/// The D1 die: a 2D mesh of nodes with SerDes on its four edges. Section `d1`.
public struct D1Chip: Sendable, Equatable {
    /// `nodes`: 354 working nodes (S1, S2, S19).
    public var nodes: Int
    /// `mesh_rows`, `mesh_cols`: the mesh shape is not public. ASSUMPTION 18 × 20 = 360 sites with 6 disabled
    /// (HC34: software routes around dead nodes, S16). Must hold at least `nodes`.
    public var meshRows: Int
    public var meshCols: Int
    /// `routing`: `dimension-order` or `adaptive`; not public (ASSUMPTION: dimension-order, X then Y).
    public var routing: String
    /// `serdes_channels`: 576 (S9, S7). `serdes_rate`: 112 Gb/s each (S7, S8).
    public var serdesChannels: Int
    public var serdesRate: Double
    /// `edge_bandwidth`: per die edge per direction, 2 TB/s (S9; §10 reconciles with "4 TB/s" counting both ways).
    public var edgeBandwidth: Double
    /// `die_to_die_latency`: about 100 ns (S2).
    public var dieToDieLatency: Double
    /// `tdp`: 400 W (S7, S9).
    public var tdp: Double

    /// Die edges (a square die with SerDes on all four).
    public static let edges = 4
}

/// The DIP: a PCIe card with HBM between host and tile, speaking TTP to the tile and TTPoE to the Z-plane.
/// Section `dip`.
public struct DIP: Sendable, Equatable {
    /// `hbm_bytes`: 32 GB (S11, S9, S10).
    public var hbmBytes: Double
    /// `hbm_bandwidth`: 800 GB/s (S11, S9).
    public var hbmBandwidth: Double
    /// `ttp_bandwidth`: 900 GB/s DIP ↔ tile (S11, S9).
    public var ttpBandwidth: Double
    /// `pcie_bandwidth`: 32 GB/s, PCIe Gen4 x16 to the host (S11, S9).
    public var pcieBandwidth: Double
    /// `ethernet_bandwidth`: 50 GB/s TTPoE (S9, S10).
    public var ethernetBandwidth: Double
    /// `ttpoe_latency`: 1.3 µs one-way through switches (S15).
    public var ttpoeLatency: Double
    /// `fabric_bisection_fraction`: the share of the DIPs' Ethernet that the switch fabric carries across any
    /// bisection (1 = non-blocking). The Z-plane topology is not public (ASSUMPTION).
    public var fabricBisectionFraction: Double
    /// `power`: not public (ASSUMPTION: counted in the tray's `other_power`, so 0 W here by default).
    public var power: Double
}

/// The training tile: D1 dies on a system-on-wafer. Section `tile`.
public struct TrainingTile: Sendable, Equatable {
    /// `chip_rows` × `chip_cols`: 5 × 5 = 25 D1 (S3, S7, S8).
    public var chipRows: Int
    public var chipCols: Int
    /// `io_dies`: 40 (S3).
    public var ioDies: Int
    /// `edge_bandwidth`: 9 TB/s per tile edge (S3); 4 edges = 36 TB/s off-tile.
    public var edgeBandwidth: Double
    /// `dips`: DIPs on a tile that stands alone: up to 5 on one edge (S11). In a tray the tray's `dips` count.
    public var dips: Int
    /// `other_power`: power beyond the dies: 15 kW per tile (S7, S9) − 25 × 400 W = 5 kW of power delivery, I/O
    /// and wiring (S7).
    public var otherPower: Double

    /// Tile edges.
    public static let edges = 4
    public var chips: Int { chipRows * chipCols }
}

/// The system tray: tiles side by side with their DIPs. Section `tray`.
public struct SystemTray: Sendable, Equatable {
    /// `tile_rows` × `tile_cols`: 2 × 3 = 6 tiles (S9, S18, S19).
    public var tileRows: Int
    public var tileCols: Int
    /// `dips`: 20 (S9).
    public var dips: Int
    /// `tile_link_bandwidth`: bandwidth between neighbouring tiles in a tray. ASSUMPTION: 6.7 TB/s, so that the
    /// 2-tile cut gives the published 13.4 TB/s tray bisection (S9); the tile's own edges are 9 TB/s (S3).
    public var tileLinkBandwidth: Double
    /// `host_cores`: 512 x86 cores (S9). `host_memory`: 8 TB (S9).
    public var hostCores: Int
    public var hostMemory: Double
    /// `other_power`: tray power beyond its tiles: "100+ kW" (S9) − 6 × 15 kW. ASSUMPTION: 10 kW for DIPs, power
    /// conversion and cooling on the tray.
    public var otherPower: Double

    public var tiles: Int { tileRows * tileCols }
}

/// The cabinet: trays with an integrated host assembly. Section `cabinet`.
public struct Cabinet: Sendable, Equatable {
    /// `trays`: 2 (S17, S26, S7).
    public var trays: Int
    /// `other_power`: the host assembly's power; not public (ASSUMPTION: 0 W).
    public var otherPower: Double
}

/// The ExaPOD: cabinets joined by the TTPoE fabric. Section `exapod`.
public struct ExaPOD: Sendable, Equatable {
    /// `cabinets`: 10 (S3, S7, S19).
    public var cabinets: Int
    /// `other_power`: switches and facility share; not public (ASSUMPTION: 0 W).
    public var otherPower: Double
}

/// The levels of a Dojo machine, bottom up.
public enum DojoLevel: String, Sendable, CaseIterable, Codable, Comparable {
    case node, d1, tile, tray, cabinet, exapod

    public static func < (a: DojoLevel, b: DojoLevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// How the level is named in tables.
    public var title: String {
        switch self {
        case .node: return "node"
        case .d1: return "D1"
        case .tile: return "tile"
        case .tray: return "tray"
        case .cabinet: return "cabinet"
        case .exapod: return "ExaPOD"
        }
    }
}

/// A Dojo system: the levels from a node up to `top`, and `count` of the top level.
/// Sections above `top` are absent; `dip` is present from `tile` up.
public struct DojoSystem: Sendable, Equatable {
    public var top: DojoLevel
    public var count: Int
    public var node: DojoNode
    public var d1: D1Chip
    public var dip: DIP?
    public var tile: TrainingTile?
    public var tray: SystemTray?
    public var cabinet: Cabinet?
    public var exapod: ExaPOD?
}
