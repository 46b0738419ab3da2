import DojoCompiler
import DojoGraph
import DojoMachine

/// The cost of one op on one D1 die (or a rectangle of its mesh), from the machine's parameters and calibration.
///
/// GEMMs and convolutions (implicit GEMM) are laid out by `SpatialMapper` (DojoCompiler): output-stationary SUMMA on
/// an R × C rectangle of nodes, k streamed in double-buffered panels, the block split in sub-blocks when its
/// accumulators do not fit, tensors that do not fit on the die streamed from DIP HBM. This model searches every
/// rectangle, panel depth and split for the fastest (exactly: it prunes only layouts that provably lose), and
/// prices each as
///
///     time = max(compute, SRAM, mesh, HBM) + latency
///
/// where compute, SRAM ports, mesh links and HBM overlap (double buffering) and the latency term does not: the mesh
/// diameter (the op's data dependency crossing the region, S7/S9 hop latency) plus the first panels' transfer.
/// Other ops are spread over every working node: SIMD arithmetic at the FP32 rate, SRAM ports, mesh traffic for data
/// movement and cross-node reductions. Formulas and assumptions: docs/ARCHITECTURE.md, "Cost of one op".
public struct D1CostModel: OpCostModel {
    /// Where an op's tensors go when they do not fit in the die's SRAM.
    public enum OffChip: String, Sendable, Codable {
        /// The die's share of its tile's DIP HBM (tiles and above).
        case dipHBM
        /// A die alone (a `top: d1` machine has no DIPs): over its die edges to neighbouring dies (ASSUMPTION).
        case dieEdges
    }

    public let mapper: SpatialMapper
    public let calibration: Calibration
    /// Per working node: matrix-unit FLOP/s (BF16/CFP8/CFP16), SIMD FP32 FLOP/s, SRAM load and store bytes/s, and
    /// one mesh link's bytes/s per direction (also the router ↔ SRAM port, one 64 B packet per cycle: S9, S10).
    public let matrixFlopsPerNode: Double
    public let fp32FlopsPerNode: Double
    public let sramLoadBandwidth: Double
    public let sramStoreBandwidth: Double
    public let linkBandwidth: Double
    /// One mesh hop, seconds (`hop_latency_cycles` / `clock`).
    public let hopSeconds: Double
    /// Bytes/s to off-chip memory for the region, and over what.
    public let offChipBandwidth: Double
    public let offChip: OffChip

    /// The die of `system` (any level: a tile's, a tray's…), or a `region` of its mesh. Off-chip bandwidth is the
    /// die's share of its tile's DIPs: DIPs per tile (a tray's DIPs over its tiles, else the tile's own) ×
    /// min(`dip.hbm_bandwidth`, `dip.ttp_bandwidth`) / dies per tile (S11: 5 DIPs × 800 GB/s per tile; §10: 20 DIPs
    /// per 6-tile tray), scaled to the region's share of the die's nodes. Without DIPs (a lone D1) it is the four
    /// die edges (`d1.edge_bandwidth`, S9), an ASSUMPTION that neighbours hold the data.
    public init(system: DojoSystem, calibration: Calibration, region: MeshRegion? = nil) {
        let n = system.node
        mapper = SpatialMapper(system: system, region: region)
        self.calibration = calibration
        matrixFlopsPerNode = n.matrixFlopsPerCycle * n.clockHz
        fp32FlopsPerNode = n.fp32FlopsPerCycle * n.clockHz
        sramLoadBandwidth = n.sramLoadBandwidth
        sramStoreBandwidth = n.sramStoreBandwidth
        linkBandwidth = n.linkBandwidth
        hopSeconds = n.hopLatencyCycles / n.clockHz
        let share = Double(mapper.region.nodes) / Double(system.d1.nodes)
        if let dip = system.dip, let tile = system.tile {
            let dipsPerTile = system.tray.map { Double($0.dips) / Double($0.tiles) } ?? Double(tile.dips)
            offChipBandwidth = dipsPerTile * min(dip.hbmBandwidth, dip.ttpBandwidth) / Double(tile.chips) * share
            offChip = .dipHBM
        } else {
            offChipBandwidth = Double(D1Chip.edges) * system.d1.edgeBandwidth * share
            offChip = .dieEdges
        }
    }

    /// The model of a Dojo machine's die; nil for a GPU machine.
    public init?(machine: Machine, region: MeshRegion? = nil) {
        guard case .dojo(let system) = machine.system else { return nil }
        self.init(system: system, calibration: machine.calibration, region: region)
    }

    /// Working nodes of the region.
    public var nodes: Int { mapper.region.nodes }

    /// Peak FLOP/s of the region at `precision`: the matrix unit for BF16, CFP8, FP16 (CFP16: ASSUMED the matrix
    /// rate) and FP8; the SIMD unit for FP32 and TF32 (Dojo has no TF32: it runs as FP32).
    public func peakFlops(_ precision: Precision) -> Double {
        Double(nodes) * (usesMatrixUnit(precision) ? matrixFlopsPerNode : fp32FlopsPerNode)
    }

    func usesMatrixUnit(_ p: Precision) -> Bool { p != .fp32 && p != .tf32 }

    public func cost(_ work: OpWork, precision: Precision) -> OpCost {
        if work.kind.definition.bytes == .view || work.isFree { return .zero }
        if work.kind.isMatrixOp, work.phase == .backward, let passes = backwardPasses(work, precision) { return passes.cost }
        if work.kind.isMatrixOp, let op = mapper.operands(work, precision: precision), let best = bestGEMM(op, precision) {
            return opCost(work, precision, best.terms)
        }
        return opCost(work, precision, spreadTerms(work, precision, mapper.spread(work)))
    }

    /// A backward GEMM as its passes with their own shapes (`OpWork.gemmPasses`: the input's gradient and the weights'),
    /// each mapped on the mesh as a GEMM of its own and run one after the other, as the GPU model prices them: the
    /// op's time is the passes' times added, its terms (for breakdowns) each resource's added. Nil when a pass has no
    /// layout (the op is then priced as before).
    func backwardPasses(_ work: OpWork, _ precision: Precision) -> (cost: OpCost, terms: Terms)? {
        var terms = Terms(), seconds = 0.0
        for pass in work.gemmPasses {
            guard let op = mapper.operands(pass, precision: precision), let best = bestGEMM(op, precision) else { return nil }
            seconds += best.terms.total
            terms.compute += best.terms.compute; terms.sram += best.terms.sram; terms.mesh += best.terms.mesh
            terms.hbm += best.terms.hbm; terms.latency += best.terms.latency
        }
        let cost = OpCost(seconds: seconds, bound: terms.bound, computeSeconds: terms.compute, memorySeconds: max(terms.sram, terms.hbm),
                          transferSeconds: terms.mesh, latencySeconds: terms.latency,
                          utilisation: seconds > 0 ? work.flops / seconds / peakFlops(precision) : 0)
        return (cost, terms)
    }

    /// The cost with its parts: every term's seconds and, for a GEMM, the layout chosen.
    public func estimate(_ work: OpWork, precision: Precision) -> D1Estimate {
        if work.kind.definition.bytes == .view || work.isFree { return D1Estimate(cost: .zero) }
        if work.kind.isMatrixOp, work.phase == .backward, let passes = backwardPasses(work, precision) {
            return D1Estimate(cost: passes.cost, terms: passes.terms)
        }
        if work.kind.isMatrixOp, let op = mapper.operands(work, precision: precision), let best = bestGEMM(op, precision) {
            let p = best.layout
            let mapping = mapper.gemm(op, rows: p.rows, cols: p.cols, panelDepth: p.panelDepth, rowSplits: p.rowSplits,
                                      colSplits: p.colSplits, reserve: p.reserve)
            return D1Estimate(cost: opCost(work, precision, best.terms), terms: best.terms, mapping: mapping)
        }
        let traffic = mapper.spread(work)
        let terms = spreadTerms(work, precision, traffic)
        return D1Estimate(cost: opCost(work, precision, terms), terms: terms, traffic: traffic)
    }

    /// An op spread over every working node: SIMD arithmetic (matrix ops without a GEMM shape at the matrix rate),
    /// SRAM ports, mesh traffic, spill, and the diameter plus any cross-node reduction.
    func spreadTerms(_ work: OpWork, _ precision: Precision, _ t: SpreadTraffic) -> Terms {
        let w = Double(nodes)
        let e = calibration
        var terms = Terms()
        let rate = work.kind.isMatrixOp ? peakFlops(precision) * e.matrixEfficiency : w * fp32FlopsPerNode * e.vectorEfficiency
        terms.compute = work.flops / rate
        terms.sram = max(t.sramLoadBytesPerNode / (sramLoadBandwidth * e.memoryEfficiency),
                         t.sramStoreBytesPerNode / (sramStoreBandwidth * e.memoryEfficiency))
        let link = linkBandwidth * e.linkEfficiency
        terms.mesh = max(t.ingestBytesPerNode / link, t.bisectionBytes / (Double(mapper.region.bisectionLinks) * link))
        terms.hbm = t.spillBytes / offChipRate
        terms.latency = (Double(mapper.region.diameterHops) + t.reductionHops) * hopSeconds
        return terms
    }

    /// Seconds of each resource for one op.
    public struct Terms: Sendable, Equatable, Codable {
        public var compute = 0.0
        public var sram = 0.0
        public var mesh = 0.0
        public var hbm = 0.0
        /// Not overlapped: mesh diameter, pipeline fill, reductions.
        public var latency = 0.0

        public init() {}

        /// max(compute, SRAM, mesh, HBM) + latency.
        @inlinable public var total: Double { max(max(compute, sram), max(mesh, hbm)) + latency }

        /// The largest term.
        public var bound: Bound {
            var b = Bound.compute, v = compute
            if sram > v { b = .sram; v = sram }
            if mesh > v { b = .mesh; v = mesh }
            if hbm > v { b = .hbm; v = hbm }
            if latency > v { b = .latency }
            return b
        }
    }

    /// Bytes/s off chip as streaming reaches it: DIP HBM at `memory_efficiency`, die edges at `link_efficiency`.
    public var offChipRate: Double {
        offChipBandwidth * (offChip == .dipHBM ? calibration.memoryEfficiency : calibration.linkEfficiency)
    }

    private func opCost(_ work: OpWork, _ precision: Precision, _ terms: Terms) -> OpCost {
        let seconds = terms.total
        return OpCost(seconds: seconds, bound: terms.bound, computeSeconds: terms.compute,
                      memorySeconds: max(terms.sram, terms.hbm), transferSeconds: terms.mesh,
                      latencySeconds: terms.latency,
                      utilisation: seconds > 0 ? work.flops / seconds / peakFlops(precision) : 0)
    }

    // MARK: GEMM search

    /// A layout's parameters: the grid, panel depth, sub-blocks and the SRAM reserved for the working set.
    struct Layout {
        var rows: Int, cols: Int, panelDepth: Double, rowSplits: Int, colSplits: Int, reserve: Double
    }

    /// Panel depths tried, shallowest first: shallow panels mean a short pipeline fill and a small working set,
    /// deep ones fewer accumulator reloads through the SRAM ports.
    @inline(__always) static func panelDepth(_ i: Int) -> Double {
        switch i {
        case 0: return 16
        case 1: return 64
        case 2: return 256
        default: return .infinity
        }
    }

    /// Shares of a computing node's SRAM tried as the reserve for the op's working set (the rest holds tensors):
    /// ½, ¼, … 1/32. A smaller reserve leaves more room on the chip but needs more sub-blocks.
    static let reserveShares = 5
    @inline(__always) static func reserveShare(_ i: Int) -> Double { 1 / Double(2 << i) }

    /// Seconds per unit of each resource for a GEMM at one precision (reciprocals, so that pricing a layout
    /// multiplies).
    struct Rates {
        var matrixPerMAC: Double, simdPerMAC: Double, loadPerByte: Double, storePerByte: Double
        var linkPerByte: Double, hbmPerByte: Double, diameter: Double
    }

    func rates(_ precision: Precision) -> Rates {
        let e = calibration
        return Rates(matrixPerMAC: usesMatrixUnit(precision) ? 2 / (matrixFlopsPerNode * e.matrixEfficiency) : .infinity,
                     simdPerMAC: 2 / (fp32FlopsPerNode * e.matrixEfficiency),
                     loadPerByte: 1 / (sramLoadBandwidth * e.memoryEfficiency),
                     storePerByte: 1 / (sramStoreBandwidth * e.memoryEfficiency),
                     linkPerByte: 1 / (linkBandwidth * e.linkEfficiency), hbmPerByte: 1 / offChipRate,
                     diameter: Double(mapper.region.diameterHops) * hopSeconds)
    }

    /// The seconds of each term of a layout.
    @inline(__always)
    func terms(_ m: GEMMTraffic, _ x: Rates) -> Terms {
        var t = Terms()
        t.compute = m.passes * min(m.matrixMACs * x.matrixPerMAC, m.simdMACs * x.simdPerMAC)
        t.sram = max(m.sramLoadBytes * x.loadPerByte, m.sramStoreBytes * x.storePerByte)
        t.mesh = m.ingestBytes * x.linkPerByte
        t.hbm = m.hbmBytes * x.hbmPerByte
        t.latency = x.diameter + m.fillBytes * x.linkPerByte
        return t
    }

    /// The fastest layout of `op` over every rectangle, reserve share, split direction and panel depth, or nil when
    /// none fits. Exact: a layout is skipped only when a bound shows it cannot beat the best found.
    func bestGEMM(_ op: GEMMOperands, _ precision: Precision) -> (layout: Layout, terms: Terms)? {
        let x = rates(precision)
        let region = mapper.region
        let diameter = x.diameter
        let sram = mapper.node.sramBytes
        let chip = mapper.regionSRAMBytes
        let shallowest = min(op.k, D1CostModel.panelDepth(0))
        var best = Double.infinity
        var bestTerms = Terms()
        // The winner's parameters (`estimate` makes its mapping again; copying mappings in the loop costs more than
        // the arithmetic).
        var bestR = 0, bestC = 0, bestRowSplits = 1, bestColSplits = 1
        var bestDepth = 0.0, bestReserve = 0.0
        // Without a spill at the largest reserve with every node computing, that reserve is the one: a smaller one
        // only adds sub-blocks. Otherwise every reserve is tried, smallest first (usually the best).
        let spills = mapper.offChipBytes(op, outputsResident: 1,
                                         budget: chip - Double(region.nodes) * D1CostModel.reserveShare(0) * sram).spill > 0
        let shares = spills ? D1CostModel.reserveShares : 1
        @inline(__always) func reserve(_ i: Int) -> Double {
            D1CostModel.reserveShare(spills ? D1CostModel.reserveShares - 1 - i : 0) * sram
        }
        let smallestReserve = reserve(0)

        // Grid columns worth trying, most first: the fewest that give each block width (the same for every row count).
        // Per row and reserve: the share of the output that stays on chip with the row's fewest sub-blocks (−1: none
        // fits).
        withUnsafeTemporaryAllocation(of: GridSide.self, capacity: region.longSide) { columns in
        withUnsafeTemporaryAllocation(of: Double.self, capacity: D1CostModel.reserveShares) { resident in
            var columnCount = 0
            var c = region.longSide
            while c >= 1 {
                let fewestC = SpatialMapper.fewest(c, for: op.n)
                columns.initializeElement(at: columnCount, to: mapper.colSide(op, count: fewestC))
                columnCount += 1
                c = fewestC - 1
            }
            // Grid rows from the most down, only the fewest that give each block height.
            var r = region.longSide
            while r >= 1 {
                let fewestR = SpatialMapper.fewest(r, for: op.rows)
                r = fewestR - 1
                let rows = mapper.rowSide(op, count: fewestR)
                let cMax = region.maxCols(rows: fewestR)
                var j = 0
                while j < columnCount && columns[j].count > cMax { j += 1 }
                guard j < columnCount else { continue }
                // The row's widest layout needs the fewest sub-blocks; all but one of them leave their outputs on chip.
                var anyFits = !spills
                if !spills { resident[0] = 0 }
                for i in 0..<shares where spills {
                    resident[i] = -1
                    let byRows = mapper.fewestSplits(op, rows: rows, cols: columns[j], panelDepth: shallowest,
                                                     reserve: reserve(i), alongRows: true)
                    let byCols = mapper.fewestSplits(op, rows: rows, cols: columns[j], panelDepth: shallowest,
                                                     reserve: reserve(i), alongRows: false)
                    if byRows != nil || byCols != nil {
                        let splits = Double(min(byRows ?? Int.max, byCols ?? Int.max))
                        resident[i] = (splits - 1) / splits
                        anyFits = true
                    }
                }
                guard anyFits else { continue }
                while j < columnCount {
                    let cols = columns[j]
                    let fewestC = cols.count
                    j += 1
                    let used = Double(fewestR * fewestC)
                    // Compute only grows as C shrinks: nothing further along this row can win.
                    let compute = op.passes * min(rows.padded * cols.padded * op.k * x.matrixPerMAC,
                                                  min(rows.block * cols.lanePadded, rows.lanePadded * cols.block) * op.k
                                                      * x.simdPerMAC)
                    if compute + diameter >= best { break }
                    // The whole k in one panel, no sub-blocks, the smallest reserve (the most room for a node's own
                    // blocks): the least SRAM and mesh traffic of any layout on R × C.
                    var whole = terms(mapper.traffic(op, rows: rows, cols: cols, panelDepth: op.k, rowSplits: 1,
                                                     colSplits: 1, reserve: smallestReserve), x)
                    // The first panels must arrive before anything starts; the shallowest panels arrive first.
                    let fillFloor = (whole.latency - diameter) * min(1, shallowest / op.k)
                    let floor = max(max(whole.compute, whole.sram), whole.mesh) + diameter + fillFloor
                    if floor >= best { continue }
                    for i in 0..<shares where resident[i] >= 0 {
                        let reserve = reserve(i)
                        let budget = chip - used * reserve
                        // Off chip: at least what the row's fewest sub-blocks leave, on this many computing nodes.
                        let hbmFloor = mapper.offChipBytes(op, outputsResident: resident[i], budget: budget).hbm
                            * op.passes * x.hbmPerByte
                        if max(floor, hbmFloor + diameter + fillFloor) >= best { continue }
                        whole.hbm = mapper.offChipBytes(op, outputsResident: 0, budget: budget).hbm * op.passes * x.hbmPerByte
                        for direction in 0..<2 {
                            let alongRows = direction == 0
                            var splitNeeded = false
                            var previous = -1.0
                            for d in 0..<4 {
                                let kb = min(op.k, D1CostModel.panelDepth(d))
                                if kb == previous { continue }
                                previous = kb
                                guard let split = mapper.fewestSplits(op, rows: rows, cols: cols, panelDepth: kb,
                                                                      reserve: reserve, alongRows: alongRows) else { break }
                                if split > 1 { splitNeeded = true }
                                let ra = alongRows ? split : 1, rb = alongRows ? 1 : split
                                // The whole-k layout above, when it fits without sub-blocks.
                                let t = kb == op.k && split == 1 && reserve == smallestReserve ? whole
                                    : terms(mapper.traffic(op, rows: rows, cols: cols, panelDepth: kb, rowSplits: ra,
                                                           colSplits: rb, reserve: reserve), x)
                                let total = t.total
                                if total < best {
                                    best = total; bestTerms = t
                                    bestR = fewestR; bestC = fewestC; bestRowSplits = ra; bestColSplits = rb
                                    bestDepth = kb; bestReserve = reserve
                                }
                                // Deeper panels only lower the SRAM term; once it is below compute they cannot win.
                                if t.sram <= t.compute { break }
                            }
                            // Without sub-blocks both directions are the same layout.
                            if !splitNeeded { break }
                        }
                    }
                }
            }
            columns.baseAddress!.deinitialize(count: columnCount)
        }
        }
        guard bestR > 0 else { return nil }
        return (Layout(rows: bestR, cols: bestC, panelDepth: bestDepth, rowSplits: bestRowSplits, colSplits: bestColSplits,
                       reserve: bestReserve), bestTerms)
    }
}

/// A D1 cost with its parts.
public struct D1Estimate: Sendable, Equatable {
    public var cost: OpCost
    public var terms: D1CostModel.Terms
    /// The layout of a GEMM (nil for other ops).
    public var mapping: GEMMMapping?
    /// The traffic of other ops (nil for GEMMs).
    public var traffic: SpreadTraffic?

    public init(cost: OpCost, terms: D1CostModel.Terms = .init(), mapping: GEMMMapping? = nil, traffic: SpreadTraffic? = nil) {
        self.cost = cost; self.terms = terms; self.mapping = mapping; self.traffic = traffic
    }
}
