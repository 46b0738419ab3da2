/// A DPU shape: `w × h` tiles. Placements may rotate it (a 2×3 request fits as 3 wide × 2 high).
public struct Shape: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let w: Int, h: Int
    public init(_ w: Int, _ h: Int) { self.w = w; self.h = h }
    public var tiles: Int { w * h }
    public var description: String { "\(w)x\(h)" }
    public static func < (a: Shape, b: Shape) -> Bool { (a.tiles, a.w, a.h) < (b.tiles, b.w, b.h) }
    /// Parses `WxH` (also `W×H`).
    public init?(parsing s: String) {
        let parts = s.replacingOccurrences(of: "×", with: "x").lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0 else { return nil }
        self.init(w, h)
    }
}

/// What a job asks for: a number of tiles (mapped to the smallest allowed shape holding them) or a shape.
public enum DPURequest: Sendable, Hashable, CustomStringConvertible {
    case tiles(Int)
    case shape(Shape)
    public var description: String {
        switch self { case .tiles(let n): return "\(n) tiles"; case .shape(let s): return "shape \(s)" }
    }
}

/// A placed DPU: a rectangle of tiles in one pod's grid.
public struct Placement: Sendable, Hashable, CustomStringConvertible {
    public let pod: Int, x: Int, y: Int, w: Int, h: Int
    public init(pod: Int, x: Int, y: Int, w: Int, h: Int) { self.pod = pod; self.x = x; self.y = y; self.w = w; self.h = h }
    public var tiles: Int { w * h }
    public var description: String { "pod \(pod) (\(x),\(y)) \(w)x\(h)" }
    public func overlaps(_ o: Placement) -> Bool {
        pod == o.pod && x < o.x + o.w && o.x < x + w && y < o.y + o.h && o.y < y + h
    }
    public func contains(x cx: Int, y cy: Int) -> Bool { cx >= x && cx < x + w && cy >= y && cy < y + h }
}

/// The allowed DPU shapes, like TPU slice topologies. Users may change the list.
public struct ShapeCatalog: Sendable, Equatable {
    public var shapes: [Shape]
    /// 1×1, 1×2, 2×2, 2×3 (a tray), 2×4, 4×3 (a cabinet), 4×6, 4×12, 4×30 (an ExaPOD).
    public static let standard = ShapeCatalog([Shape(1, 1), Shape(1, 2), Shape(2, 2), Shape(2, 3), Shape(2, 4),
                                               Shape(4, 3), Shape(4, 6), Shape(4, 12), Shape(4, 30)])
    public init(_ shapes: [Shape]) { self.shapes = shapes.sorted() }

    func fits(_ s: Shape, _ inv: Inventory) -> Bool {
        (s.w <= inv.width && s.h <= inv.height) || (s.h <= inv.width && s.w <= inv.height)
    }

    /// The shape a request gets on `inv`, or `.rejected` with the reason when it can never fit.
    public func resolve(_ r: DPURequest, on inv: Inventory) throws -> Shape {
        let list = shapes.map(\.description).joined(separator: ", ")
        switch r {
        case .tiles(let n):
            guard n > 0 else { throw ClusterError.invalidRequest("a DPU needs at least 1 tile, got \(n)") }
            if n > inv.width * inv.height {
                throw ClusterError.rejected("\(n) tiles is more than one \(inv.width)x\(inv.height) grid of \(inv.machineName) holds (\(inv.width * inv.height))")
            }
            guard let s = shapes.first(where: { $0.tiles >= n && fits($0, inv) }) else {
                throw ClusterError.rejected("no allowed shape holds \(n) tiles on \(inv.machineName) (allowed: \(list))")
            }
            return s
        case .shape(let s):
            guard shapes.contains(s) || shapes.contains(Shape(s.h, s.w)) else {
                throw ClusterError.rejected("shape \(s) is not an allowed shape (allowed: \(list))")
            }
            guard fits(s, inv) else {
                throw ClusterError.rejected("shape \(s) does not fit a \(inv.width)x\(inv.height) grid of \(inv.machineName)")
            }
            return s
        }
    }
}

/// How the allocator picks among the rectangles that fit.
public enum Fit: String, Sendable, CaseIterable {
    /// The first rectangle in (pod, x, y) order.
    case first
    /// The rectangle whose border touches the most occupied, failed or edge tiles (least fragmentation);
    /// ties go to the first in (pod, x, y) order.
    case best
}

/// Tile occupancy and contiguous-rectangle search. A tile is usable when healthy and free.
public struct Allocator: Sendable {
    public private(set) var inventory: Inventory
    /// The job on each tile, or -1.
    public private(set) var owner: [Int]
    public var fit: Fit
    /// Per pod, a (w+1)×(h+1) prefix sum of blocked tiles (occupied or failed).
    private var prefix: [[Int32]]
    private var dirty = true

    public init(inventory: Inventory, fit: Fit = .best) {
        self.inventory = inventory
        self.owner = Array(repeating: -1, count: inventory.count)
        self.fit = fit
        self.prefix = Array(repeating: [], count: inventory.pods)
        rebuild()
    }

    public var freeCount: Int {
        var n = 0
        for t in inventory.tiles where t.health == .healthy && owner[t.id] < 0 { n += 1 }
        return n
    }

    func blocked(_ id: Int) -> Bool { owner[id] >= 0 || inventory.tiles[id].health == .failed }

    private mutating func rebuild() {
        let W = inventory.width, H = inventory.height
        for p in 0..<inventory.pods {
            var s = [Int32](repeating: 0, count: (W + 1) * (H + 1))
            for y in 0..<H {
                var row: Int32 = 0
                for x in 0..<W {
                    row += blocked(inventory.id(pod: p, x: x, y: y)) ? 1 : 0
                    s[(y + 1) * (W + 1) + x + 1] = s[y * (W + 1) + x + 1] + row
                }
            }
            prefix[p] = s
        }
        dirty = false
    }

    private func blockedIn(_ p: Int, _ x: Int, _ y: Int, _ w: Int, _ h: Int) -> Int32 {
        let W1 = inventory.width + 1, s = prefix[p]
        return s[(y + h) * W1 + x + w] - s[y * W1 + x + w] - s[(y + h) * W1 + x] + s[y * W1 + x]
    }

    /// Tiles on the border of a rectangle that are blocked or off the grid (the best-fit score).
    private func contact(_ p: Int, _ x: Int, _ y: Int, _ w: Int, _ h: Int) -> Int {
        let W = inventory.width, H = inventory.height
        var c = 0
        for i in x..<(x + w) {
            c += (y == 0 || blocked(inventory.id(pod: p, x: i, y: y - 1))) ? 1 : 0
            c += (y + h == H || blocked(inventory.id(pod: p, x: i, y: y + h))) ? 1 : 0
        }
        for j in y..<(y + h) {
            c += (x == 0 || blocked(inventory.id(pod: p, x: x - 1, y: j))) ? 1 : 0
            c += (x + w == W || blocked(inventory.id(pod: p, x: x + w, y: j))) ? 1 : 0
        }
        return c
    }

    /// Every rectangle of usable tiles for `shape` (both orientations), in (pod, x, y) order.
    public func placements(_ shape: Shape) -> [Placement] {
        var out: [Placement] = []
        forEachPlacement(shape) { out.append($0); return true }
        return out
    }

    /// Calls `body` for each free rectangle until it returns false.
    func forEachPlacement(_ shape: Shape, _ body: (Placement) -> Bool) {
        let W = inventory.width, H = inventory.height
        let orients = shape.w == shape.h ? [(shape.w, shape.h)] : [(shape.w, shape.h), (shape.h, shape.w)]
        for p in 0..<inventory.pods {
            for x in 0..<W { for y in 0..<H {
                for (w, h) in orients where x + w <= W && y + h <= H {
                    if blockedIn(p, x, y, w, h) == 0 {
                        if !body(Placement(pod: p, x: x, y: y, w: w, h: h)) { return }
                    }
                }
            } }
        }
    }

    /// The rectangle the allocator would choose now, or nil. `avoid`: a reserved rectangle not to overlap.
    public func find(_ shape: Shape, avoiding avoid: [Placement] = []) -> Placement? {
        var best: Placement?, bestScore = -1
        forEachPlacement(shape) { pl in
            for a in avoid where a.overlaps(pl) { return true }
            if fit == .first { best = pl; return false }
            let s = contact(pl.pod, pl.x, pl.y, pl.w, pl.h)
            if s > bestScore { best = pl; bestScore = s }
            return true
        }
        return best
    }

    /// Whether `pl` is entirely usable now.
    /// Whether the rectangle lies on a grid and none of its tiles is busy or failed.
    public func isFree(_ pl: Placement) -> Bool { contains(pl) && blockedIn(pl.pod, pl.x, pl.y, pl.w, pl.h) == 0 }

    /// Whether the rectangle lies inside one pod's grid (a placement read from a store may not).
    public func contains(_ pl: Placement) -> Bool {
        pl.pod >= 0 && pl.pod < inventory.pods && pl.w >= 1 && pl.h >= 1 && pl.x >= 0 && pl.y >= 0
            && pl.x <= inventory.width - pl.w && pl.y <= inventory.height - pl.h
    }

    /// Marks `pl` as owned by `job`; the rectangle must be free.
    public mutating func allocate(_ pl: Placement, to job: Int) {
        precondition(isFree(pl), "placement \(pl) is not free")
        for y in pl.y..<(pl.y + pl.h) { for x in pl.x..<(pl.x + pl.w) { owner[inventory.id(pod: pl.pod, x: x, y: y)] = job } }
        rebuild()
    }

    public mutating func release(_ pl: Placement, of job: Int) {
        for y in pl.y..<(pl.y + pl.h) { for x in pl.x..<(pl.x + pl.w) {
            let id = inventory.id(pod: pl.pod, x: x, y: y)
            if owner[id] == job { owner[id] = -1 }
        } }
        rebuild()
    }

    public mutating func setHealth(_ tile: Int, _ h: TileHealth) {
        inventory.setHealth(tile, h)
        rebuild()
    }

    /// Free usable tiles that no placement of `shape` could use (fragmentation seen by that shape).
    public func unusableFreeTiles(for shape: Shape) -> Int {
        var covered = [Bool](repeating: false, count: inventory.count)
        forEachPlacement(shape) { pl in
            for y in pl.y..<(pl.y + pl.h) { for x in pl.x..<(pl.x + pl.w) { covered[inventory.id(pod: pl.pod, x: x, y: y)] = true } }
            return true
        }
        var n = 0
        for t in inventory.tiles where t.health == .healthy && owner[t.id] < 0 && !covered[t.id] { n += 1 }
        return n
    }

    /// Where `shape` could go if the tiles of the jobs for which `evictable` is true were freed: the rectangle
    /// that evicts the fewest tiles, and the jobs it evicts. Nil when no rectangle works.
    public func placementEvicting(_ shape: Shape, evictable: (Int) -> Bool, cost: (Int) -> Double) -> (Placement, [Int])? {
        let W = inventory.width, H = inventory.height
        let orients = shape.w == shape.h ? [(shape.w, shape.h)] : [(shape.w, shape.h), (shape.h, shape.w)]
        var best: (Placement, [Int], Double)?
        for p in 0..<inventory.pods { for x in 0..<W { for y in 0..<H {
            for (w, h) in orients where x + w <= W && y + h <= H {
                var victims: [Int] = [], ok = true
                scan: for j in y..<(y + h) { for i in x..<(x + w) {
                    let id = inventory.id(pod: p, x: i, y: j)
                    if inventory.tiles[id].health == .failed { ok = false; break scan }
                    let o = owner[id]
                    if o >= 0 {
                        if !evictable(o) { ok = false; break scan }
                        if !victims.contains(o) { victims.append(o) }
                    }
                } }
                guard ok, !victims.isEmpty else { continue }
                let c = victims.reduce(0) { $0 + cost($1) }
                if best == nil || c < best!.2 { best = (Placement(pod: p, x: x, y: y, w: w, h: h), victims.sorted(), c) }
            }
        } } }
        return best.map { ($0.0, $0.1) }
    }
}
