import DojoMachine

/// A tile's health. A failed tile leaves the pool until it is repaired.
public enum TileHealth: String, Sendable, Equatable, Codable {
    case healthy, failed
}

/// One training tile of the inventory: where it sits in the mesh and in the machine, and its health.
public struct Tile: Sendable, Equatable {
    /// Index in `Inventory.tiles` (pod-major, then row `y`, then column `x`).
    public let id: Int
    /// Which tile grid (ExaPOD) it belongs to, and its mesh coordinates in that grid.
    public let pod: Int, x: Int, y: Int
    /// Machine-wide cabinet and tray indices.
    public let cabinet: Int, tray: Int
    public var health: TileHealth
}

/// The tiles of a Dojo machine laid out as 2-D meshes, one grid per ExaPOD.
///
/// ASSUMPTION (no public source gives the mesh between trays and cabinets): a tray's tiles form its
/// `tile_rows × tile_cols` block (2 × 3); the trays of a cabinet are stacked vertically (a cabinet is
/// 4 rows × 3 columns); the cabinets of an ExaPOD stand side by side, so an ExaPOD is one grid of
/// 4 rows × 30 columns (120 tiles). `exapodx2` gives two such grids; a DPU never spans two grids.
/// A bare tray is a 2 × 3 grid, a cabinet 4 × 3, `cabinetxN` N cabinets side by side, `tilexN` one row of N.
public struct Inventory: Sendable, Equatable {
    /// Grid width (columns, x) and height (rows, y) of each pod, and the number of pods.
    public let width: Int, height: Int, pods: Int
    public private(set) var tiles: [Tile]
    /// For the record: DIPs and host cores per tray (a DPU's data path), and the machine's name.
    public let dipsPerTray: Int, hostCoresPerTray: Int, traysPerCabinet: Int
    public let machineName: String

    /// A plain grid (tests, hypothetical machines): `pods` grids of `width × height` tiles, trays of 2 × 3.
    public init(width: Int, height: Int, pods: Int = 1, name: String = "grid") {
        precondition(width > 0 && height > 0 && pods > 0)
        self.width = width; self.height = height; self.pods = pods
        self.dipsPerTray = 20; self.hostCoresPerTray = 512; self.traysPerCabinet = max(1, height / 2)
        self.machineName = name
        var t: [Tile] = []
        for p in 0..<pods { for y in 0..<height { for x in 0..<width {
            let cab = p * max(1, width / 3) + x / 3
            t.append(Tile(id: t.count, pod: p, x: x, y: y, cabinet: cab, tray: cab * traysPerCabinet + y / 2, health: .healthy))
        } } }
        tiles = t
    }

    /// The inventory of a Dojo machine description (`Machine.resolve("exapod")`).
    public init(machine m: Machine) throws {
        guard case .dojo(let d) = m.system else {
            throw ClusterError.invalidMachine("\(m.name) is a GPU cluster; the scheduler places DPUs on Dojo tiles")
        }
        guard d.top >= .tile, let tile = d.tile else {
            throw ClusterError.invalidMachine("\(m.name) has no training tiles (its top level is \(d.top.title))")
        }
        _ = tile
        let trayRows = d.tray?.tileRows ?? 1, trayCols = d.tray?.tileCols ?? d.count
        var trays = 1, cabinets = 1, pods = 1
        switch d.top {
        case .tile: trays = 1
        case .tray: trays = d.count
        case .cabinet: trays = d.cabinet!.trays; cabinets = d.count
        case .exapod: trays = d.cabinet!.trays; cabinets = d.exapod!.cabinets; pods = d.count
        default: break
        }
        let w = (d.top == .tile ? d.count : trayCols) * cabinets, h = (d.top == .tile ? 1 : trayRows) * trays
        self.width = w; self.height = h; self.pods = pods
        self.dipsPerTray = d.tray?.dips ?? d.tile?.dips ?? 0
        self.hostCoresPerTray = d.tray?.hostCores ?? 0
        self.traysPerCabinet = trays
        self.machineName = m.name
        var t: [Tile] = []
        for p in 0..<pods { for y in 0..<h { for x in 0..<w {
            let cab = p * cabinets + x / trayCols
            let tray = d.top == .tile ? 0 : cab * trays + y / trayRows
            t.append(Tile(id: t.count, pod: p, x: x, y: y, cabinet: d.top >= .cabinet ? cab : 0, tray: tray, health: .healthy))
        } } }
        tiles = t
    }

    public var count: Int { tiles.count }
    public var trayCount: Int { Set(tiles.map(\.tray)).count }
    public var healthyCount: Int { tiles.reduce(0) { $0 + ($1.health == .healthy ? 1 : 0) } }
    /// The tile at mesh coordinates `(x, y)` of `pod`.
    public func id(pod: Int, x: Int, y: Int) -> Int { (pod * height + y) * width + x }
    public func tile(pod: Int, x: Int, y: Int) -> Tile { tiles[id(pod: pod, x: x, y: y)] }
    mutating func setHealth(_ id: Int, _ h: TileHealth) { tiles[id].health = h }
}

/// Errors of the cluster core; each reads as one sentence.
public enum ClusterError: Error, Equatable, CustomStringConvertible {
    case invalidMachine(String)
    /// A request that can never be placed on this machine, with the reason.
    case rejected(String)
    case invalidRequest(String)
    case unknownJob(Int)
    case unknownTenant(String)
    case unknownTile(Int)

    public var description: String {
        switch self {
        case .invalidMachine(let s): return s
        case .rejected(let s): return "rejected: \(s)"
        case .invalidRequest(let s): return "invalid request: \(s)"
        case .unknownJob(let j): return "unknown job \(j)"
        case .unknownTenant(let t): return "unknown tenant '\(t)'"
        case .unknownTile(let t): return "unknown tile \(t)"
        }
    }
}
