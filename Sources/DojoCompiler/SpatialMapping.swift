import DojoGraph
import DojoMachine

// How one op is laid out on a D1's 2D mesh of nodes: geometry and traffic in bytes, never times. The simulator
// (`DojoSim.D1CostModel`) turns these into seconds with the machine's rates and picks the fastest layout.
//
// Assumptions (each documented in docs/ARCHITECTURE.md, "Cost of one op"):
// - GEMMs are output-stationary SUMMA on an R × C rectangle of nodes: each node owns an (m/R) × (n/C) output block;
//   A's row panels are multicast along grid rows and B's column panels along grid columns.
// - An op's inputs start in the block layout of the op's grid (the compiler lays producers out for their consumers):
//   each computing node holds its blocks of A and B as far as its SRAM allows; the rest comes over the mesh.
// - The mesh's disabled sites lie outside any rectangle of at most `nodes` sites (§11: how spares are mapped is not
//   public; S16: software routes around dead nodes).

/// A rectangle of a D1's mesh that an op may use: `rows` × `cols` sites, of which `nodes` work.
public struct MeshRegion: Sendable, Equatable, Hashable, Codable {
    public var rows: Int
    public var cols: Int
    public var nodes: Int

    /// `nodes` defaults to every site of the rectangle.
    public init(rows: Int, cols: Int, nodes: Int? = nil) {
        precondition(rows > 0 && cols > 0, "a mesh region has at least one row and one column")
        self.rows = rows
        self.cols = cols
        self.nodes = min(nodes ?? rows * cols, rows * cols)
    }

    /// The whole die: its mesh with its working nodes (18 × 20 sites, 354 nodes in the D1 preset).
    public static func whole(_ chip: D1Chip) -> MeshRegion {
        MeshRegion(rows: chip.meshRows, cols: chip.meshCols, nodes: chip.nodes)
    }

    /// Hops from one corner to the opposite one.
    public var diameterHops: Int { rows + cols - 2 }

    /// Links a cut halving the region crosses, per direction: the cut across its longer side.
    public var bisectionLinks: Int { min(rows, cols) }

    /// The longest side: the most grid rows a rectangle can have (in either orientation).
    public var longSide: Int { max(rows, cols) }

    /// The most columns a rectangle of `r` grid rows can have: it lies either way round in the region and holds
    /// only working nodes (r × C ≤ nodes). 0 when `r` rows do not fit.
    @inlinable public func maxCols(rows r: Int) -> Int {
        guard r >= 1 else { return 0 }
        let fit = max(r <= rows ? cols : 0, r <= cols ? rows : 0)
        return min(fit, nodes / r)
    }
}

/// What a node brings to a mapping (from the machine's `node` section).
public struct MappingNode: Sendable, Equatable {
    /// `node.sram_bytes`.
    public var sramBytes: Double
    /// `node.matrix_block`: output blocks are padded to multiples of it on the matrix unit.
    public var matrixBlock: Double
    /// FP32 SIMD lanes: `fp32_flops_per_cycle` / 2 (one FMA is 2 FLOP). A GEMM on the SIMD unit pads one side of
    /// its block to a multiple of it.
    public var simdLanes: Double
    /// Bytes of one accumulator element: `node.accumulator` (fp32: 4, bf16: 2).
    public var accumulatorBytes: Double

    public init(sramBytes: Double, matrixBlock: Double, simdLanes: Double, accumulatorBytes: Double) {
        self.sramBytes = sramBytes; self.matrixBlock = matrixBlock
        self.simdLanes = simdLanes; self.accumulatorBytes = accumulatorBytes
    }

    public init(_ node: DojoNode) {
        self.init(sramBytes: node.sramBytes, matrixBlock: node.matrixBlock,
                  simdLanes: max(1, (node.fp32FlopsPerCycle / 2).rounded(.down)),
                  accumulatorBytes: node.accumulator == "bf16" ? 2 : 4)
    }
}

/// A (batched) GEMM as the mapping sees it, for one pass: sizes, and the bytes of its operands at the step's
/// precision. Made from an `OpWork` (`SpatialMapper.operands`).
public struct GEMMOperands: Sendable, Equatable {
    /// Output rows of all products stacked: batch × m.
    public var rows: Double
    public var n: Double
    public var k: Double
    public var batch: Double
    /// Bytes of one element at the step's precision.
    public var elementBytes: Double
    /// Bytes of A that hold one output row's inputs: k × elementBytes for a matmul; less for a convolution, whose
    /// implicit-GEMM rows share their input pixels (the input tensor's bytes / rows; halos are not counted).
    public var aBytesPerRow: Double
    /// Bytes of B (all products): batch × k × n × elementBytes.
    public var bBytes: Double
    /// Bytes of the output at the step's precision: rows × n × elementBytes.
    public var outBytes: Double
    /// GEMMs of this shape the op is (OpWork.passes).
    public var passes: Double

    public init(batch: Double = 1, m: Double, n: Double, k: Double, elementBytes: Double, aBytesPerRow: Double? = nil,
                passes: Double = 1) {
        let b = max(1, batch.rounded(.up))
        self.batch = b
        self.rows = b * max(1, m.rounded(.up))
        self.n = max(1, n.rounded(.up))
        self.k = max(1, k.rounded(.up))
        self.elementBytes = elementBytes
        self.aBytesPerRow = aBytesPerRow ?? self.k * elementBytes
        self.bBytes = b * self.k * self.n * elementBytes
        self.outBytes = self.rows * self.n * elementBytes
        self.passes = max(1, passes)
    }

    /// Bytes of A (all products).
    public var aBytes: Double { rows * aBytesPerRow }
    /// Multiply-adds of one pass.
    public var macs: Double { rows * n * k }
}

/// One layout of a GEMM on an R × C rectangle of nodes, with what it moves. Per-node figures are those of the
/// busiest node (the one with the full ceil-sized block); byte counts cover every pass.
public struct GEMMMapping: Sendable, Equatable {
    /// Grid rows (R: the stacked output rows are split R ways) and columns (C: n is split C ways).
    public var rows: Int
    public var cols: Int
    /// Output block of the busiest node, rows × columns, and the same padded to the matrix block.
    public var blockRows: Double
    public var blockCols: Double
    public var paddedBlockRows: Double
    public var paddedBlockCols: Double
    /// Products (batch items) one grid row's rows span: it needs B of each.
    public var itemsPerGridRow: Double
    /// Depth of the k panels streamed through a node (double-buffered), and how many there are.
    public var panelDepth: Double
    public var kSteps: Double
    /// The block is computed in rowSplits × colSplits sub-blocks when its accumulators do not fit at once; each
    /// sub-block receives its A and B panels again.
    public var rowSplits: Int
    public var colSplits: Int
    /// Multiply-adds of one pass on the busiest node: on the matrix unit (block padded to the matrix block) and on
    /// the SIMD unit (one side padded to the lanes).
    public var matrixMACsPerNode: Double
    public var simdMACsPerNode: Double
    /// SRAM a computing node needs for the op's working set: a sub-block's accumulators and two A and B panels.
    public var workingBytesPerNode: Double
    /// Whether the working set fits the node's reserve (and the reserves leave room on the chip).
    public var fits: Bool
    /// Bytes the busiest node receives over the mesh (its A row panels and B column panels less the blocks it
    /// holds), all passes.
    public var ingestBytesPerNode: Double
    /// Every node's ingest: the mesh volume (exact when the blocks divide evenly).
    public var meshBytes: Double
    /// Bytes of the first k panels, which must arrive before the first multiply (pipeline fill).
    public var fillBytesPerNode: Double
    /// SRAM port traffic of the busiest node, all passes: operand loads into the matrix unit (8 × 8 register
    /// blocking: each A and B element loaded once per block-row or block-column of 8), accumulator reloads between
    /// panels, and stores of accumulators and the output.
    public var sramLoadBytesPerNode: Double
    public var sramStoreBytesPerNode: Double
    /// Bytes of the op's tensors that do not fit on the chip with the working sets, and the DIP HBM traffic that
    /// follows (all passes): spilled inputs stream once while the output fits on chip; otherwise the output is
    /// made in chunks and A and B stream once per chunk row or column.
    public var spillBytes: Double
    public var hbmBytes: Double
    /// Passes (GEMMs of this shape).
    public var passes: Double

    @inlinable init(rows: Int, cols: Int, blockRows: Double, blockCols: Double, paddedBlockRows: Double,
                    paddedBlockCols: Double, itemsPerGridRow: Double, panelDepth: Double, kSteps: Double,
                    rowSplits: Int, colSplits: Int, matrixMACsPerNode: Double, simdMACsPerNode: Double,
                    workingBytesPerNode: Double, fits: Bool, ingestBytesPerNode: Double, meshBytes: Double,
                    fillBytesPerNode: Double, sramLoadBytesPerNode: Double, sramStoreBytesPerNode: Double,
                    spillBytes: Double, hbmBytes: Double, passes: Double) {
        self.rows = rows; self.cols = cols; self.blockRows = blockRows; self.blockCols = blockCols
        self.paddedBlockRows = paddedBlockRows; self.paddedBlockCols = paddedBlockCols
        self.itemsPerGridRow = itemsPerGridRow; self.panelDepth = panelDepth; self.kSteps = kSteps
        self.rowSplits = rowSplits; self.colSplits = colSplits; self.matrixMACsPerNode = matrixMACsPerNode
        self.simdMACsPerNode = simdMACsPerNode; self.workingBytesPerNode = workingBytesPerNode; self.fits = fits
        self.ingestBytesPerNode = ingestBytesPerNode; self.meshBytes = meshBytes; self.fillBytesPerNode = fillBytesPerNode
        self.sramLoadBytesPerNode = sramLoadBytesPerNode; self.sramStoreBytesPerNode = sramStoreBytesPerNode
        self.spillBytes = spillBytes; self.hbmBytes = hbmBytes; self.passes = passes
    }

    /// Nodes computing.
    public var nodesUsed: Int { rows * cols }
}

/// Lays ops out on a region of a D1 mesh.
public struct SpatialMapper: Sendable, Equatable {
    public var region: MeshRegion
    public var node: MappingNode

    public init(region: MeshRegion, node: MappingNode) {
        self.region = region
        self.node = node
    }

    /// The whole die of `system`, or a `region` of it.
    public init(system: DojoSystem, region: MeshRegion? = nil) {
        self.init(region: region ?? .whole(system.d1), node: MappingNode(system.node))
    }

    /// SRAM of every working node of the region.
    public var regionSRAMBytes: Double { Double(region.nodes) * node.sramBytes }

    /// The GEMM of a matrix op at `precision` (nil when the op has none). A's bytes per row come from the op's
    /// activation input (its bytes read per pass less its weights), between one element and k elements per row.
    @inlinable public func operands(_ work: OpWork, precision: Precision) -> GEMMOperands? {
        guard let g = work.gemm else { return nil }
        var op = GEMMOperands(batch: g.batch, m: g.m, n: g.n, k: g.k, elementBytes: precision.bytes, passes: work.passes)
        let activation = work.bytesRead / op.passes - work.weightBytes
        if activation > 0 {
            op.aBytesPerRow = min(op.k * op.elementBytes, max(op.elementBytes, activation / op.rows))
        }
        return op
    }

    /// Grid rows: `count` nodes sharing the op's stacked output rows, with the products each grid row spans.
    @inlinable @inline(__always) public func rowSide(_ op: GEMMOperands, count: Int) -> GridSide {
        side(op.rows, count: count, items: min(op.batch, up(op.batch / Double(count))))
    }

    /// Grid columns: `count` nodes sharing the output's n columns.
    @inlinable @inline(__always) public func colSide(_ op: GEMMOperands, count: Int) -> GridSide {
        side(op.n, count: count, items: 1)
    }

    @inlinable @inline(__always) func side(_ extent: Double, count: Int, items: Double) -> GridSide {
        let block = up(extent / Double(count)), g = node.matrixBlock, lanes = node.simdLanes
        return GridSide(count: count, block: block, padded: up(block / g) * g, lanePadded: up(block / lanes) * lanes,
                        items: items)
    }

    /// The fewest nodes that give `extent` the same block as `count` nodes do: ⌈extent / ⌈extent / count⌉⌉. Only these
    /// are worth trying (more nodes with the same block add traffic and nothing else).
    @inlinable @inline(__always) public static func fewest(_ count: Int, for extent: Double) -> Int {
        Int(up(extent / up(extent / Double(count))))
    }

    /// The layout of `op` on an R × C grid with k panels `panelDepth` deep, the block in rowSplits × colSplits
    /// sub-blocks, and `reserve` bytes of each computing node's SRAM set aside for the working set (the rest of the
    /// region's SRAM holds the op's tensors; default: half a node). Pure arithmetic, no allocation.
    @inlinable public func gemm(_ op: GEMMOperands, rows r: Int, cols c: Int, panelDepth: Double,
                                rowSplits ra: Int = 1, colSplits rb: Int = 1, reserve: Double? = nil) -> GEMMMapping {
        gemm(op, rows: rowSide(op, count: r), cols: colSide(op, count: c), panelDepth: panelDepth,
             rowSplits: ra, colSplits: rb, reserve: reserve ?? node.sramBytes / 2)
    }

    /// The same with the grid's sides worked out.
    @inlinable public func gemm(_ op: GEMMOperands, rows: GridSide, cols: GridSide, panelDepth: Double,
                                rowSplits ra: Int, colSplits rb: Int, reserve: Double) -> GEMMMapping {
        let t = traffic(op, rows: rows, cols: cols, panelDepth: panelDepth, rowSplits: ra, colSplits: rb, reserve: reserve)
        let kb = min(op.k, max(1, panelDepth))
        let reserved = min(reserve, node.sramBytes)
        let working = workingBytes(op, rows: rows, cols: cols, panelDepth: kb, rowSplits: ra, colSplits: rb)
        let used = Double(rows.count * cols.count)
        let splits = Double(ra) * Double(rb)
        let budget = regionSRAMBytes - used * reserved
        let spill = offChipBytes(op, outputsResident: splits == 1 ? 0 : (splits - 1) / splits, budget: budget).spill
        return GEMMMapping(rows: rows.count, cols: cols.count, blockRows: rows.block, blockCols: cols.block,
                           paddedBlockRows: rows.padded, paddedBlockCols: cols.padded, itemsPerGridRow: rows.items,
                           panelDepth: kb, kSteps: kb == op.k ? 1 : up(op.k / kb), rowSplits: ra, colSplits: rb,
                           matrixMACsPerNode: t.matrixMACs, simdMACsPerNode: t.simdMACs, workingBytesPerNode: working,
                           fits: working <= reserved && budget > 0,
                           ingestBytesPerNode: t.ingestBytes, meshBytes: t.ingestBytes * used, fillBytesPerNode: t.fillBytes,
                           sramLoadBytesPerNode: t.sramLoadBytes, sramStoreBytesPerNode: t.sramStoreBytes,
                           spillBytes: spill, hbmBytes: t.hbmBytes, passes: t.passes)
    }

    /// What a layout moves and computes, without the rest of its description: the part the simulator prices, for
    /// its search. Same arithmetic as `gemm`.
    @inlinable @inline(__always) public func traffic(_ op: GEMMOperands, rows: GridSide, cols: GridSide, panelDepth: Double,
                                                     rowSplits ra: Int, colSplits rb: Int, reserve: Double) -> GEMMTraffic {
        let R = Double(rows.count), C = Double(cols.count), b = op.elementBytes, k = op.k
        let acc = max(node.accumulatorBytes, b)
        let mb = rows.block, nb = cols.block, pmb = rows.padded, pnb = cols.padded, s = rows.items
        let kb = min(k, max(1, panelDepth))
        let kSteps = kb == k ? 1 : up(k / kb)
        // Mesh: a node needs its rows' A and its columns' B (see `ingestBytes`); the first panels fill the pipeline.
        let ingest = ingestBytes(op, rows: rows, cols: cols, rowSplits: ra, colSplits: rb, reserve: reserve)
        let panels = (mb * op.aBytesPerRow + s * nb * k * b)
        let fill = min(ingest, kb == k ? panels : panels * kb / k)
        // SRAM ports: operands into the matrix unit, accumulators between panels, the output.
        let macs = pmb * pnb * k
        let simd = min(mb * cols.lanePadded, rows.lanePadded * nb) * k
        let accTraffic = (kSteps - 1) * pmb * pnb * acc
        let loads = 2 * macs * b / node.matrixBlock + accTraffic
        let stores = accTraffic + mb * nb * b
        // The chip: inputs and finished outputs share what the reserves leave of the region's SRAM.
        let splits = Double(ra) * Double(rb)
        let budget = regionSRAMBytes - R * C * min(reserve, node.sramBytes)
        let hbm = offChipBytes(op, outputsResident: splits == 1 ? 0 : (splits - 1) / splits, budget: budget).hbm
        let p = op.passes
        return GEMMTraffic(matrixMACs: macs, simdMACs: simd, ingestBytes: ingest * p, fillBytes: fill,
                           sramLoadBytes: loads * p, sramStoreBytes: stores * p, hbmBytes: hbm * p, passes: p)
    }

    /// A computing node's working set: a sub-block's accumulators (padded to the matrix block) and two A and two B
    /// panels (double buffering).
    @inlinable @inline(__always) public func workingBytes(_ op: GEMMOperands, rows: GridSide, cols: GridSide,
                                                          panelDepth kb: Double, rowSplits ra: Int, colSplits rb: Int) -> Double {
        let g = node.matrixBlock, acc = max(node.accumulatorBytes, op.elementBytes)
        let mbS = ra == 1 ? rows.block : up(rows.block / Double(ra))
        let nbS = rb == 1 ? cols.block : up(cols.block / Double(rb))
        let sS = ra == 1 ? rows.items : up(rows.items / Double(ra))
        let pmbS = ra == 1 ? rows.padded : up(mbS / g) * g
        let pnbS = rb == 1 ? cols.padded : up(nbS / g) * g
        let aPanel = kb == op.k ? mbS * op.aBytesPerRow : mbS * op.aBytesPerRow * kb / op.k
        return pmbS * pnbS * acc + 2 * (aPanel + sS * nbS * kb * op.elementBytes)
    }

    /// Bytes the busiest node receives for one pass: A row panels (again for each column sub-block) and B column
    /// panels of every product its grid row spans (again for each row sub-block), less what it holds: its block of
    /// each operand in the grid's block layout (A block / C + B block / R, SUMMA), as far as that fits beside its
    /// reserve; the rest streams in from the nodes that hold it.
    @inlinable @inline(__always) public func ingestBytes(_ op: GEMMOperands, rows: GridSide, cols: GridSide,
                                                         rowSplits ra: Int, colSplits rb: Int, reserve: Double) -> Double {
        let aBlock = rows.block * op.aBytesPerRow, bBlock = rows.items * cols.block * op.k * op.elementBytes
        let need = Double(rb) * aBlock + max(1, Double(ra) / rows.items) * bBlock
        let own = aBlock / Double(cols.count) + bBlock / Double(rows.count)
        return need - min(own, max(0, node.sramBytes - reserve))
    }

    /// Spilled bytes and the HBM traffic of one pass when the op's inputs and `outputsResident` of its output must
    /// share `budget` bytes of SRAM: spilled inputs stream once while the output fits in half the budget; otherwise
    /// the output is made in chunks of half the budget, arranged in a square, with A and B streamed once per chunk
    /// column or row and the output written once.
    @inlinable @inline(__always) public func offChipBytes(_ op: GEMMOperands, outputsResident: Double, budget: Double) -> (spill: Double, hbm: Double) {
        let need = op.aBytes + op.bBytes + op.outBytes * outputsResident
        let spill = max(0, need - max(0, budget))
        guard spill > 0 else { return (0, 0) }
        if op.outBytes <= budget / 2 { return (spill, spill) }
        let chunks = budget > 0 ? up(op.outBytes / (budget / 2)) : op.rows
        let side = up(chunks.squareRoot())
        return (spill, max(spill, op.outBytes + (op.aBytes + op.bBytes) * side))
    }

    /// The fewest splits (a power of two, of the rows if `alongRows`, else of the columns) that fit the working set
    /// in `reserve` bytes; nil when even one-row (one-column) sub-blocks do not. The working set only shrinks as the
    /// splits grow, so this starts from an estimate and steps to the fewest.
    @inlinable @inline(__always) public func fewestSplits(_ op: GEMMOperands, rows: GridSide, cols: GridSide,
                                                          panelDepth kb: Double, reserve: Double, alongRows: Bool) -> Int? {
        @inline(__always) func working(_ split: Int) -> Double {
            alongRows ? workingBytes(op, rows: rows, cols: cols, panelDepth: kb, rowSplits: split, colSplits: 1)
                      : workingBytes(op, rows: rows, cols: cols, panelDepth: kb, rowSplits: 1, colSplits: split)
        }
        let whole = working(1)
        if whole <= reserve { return 1 }
        let limit = alongRows ? rows.block : cols.block
        // What does not shrink with the split: one sub-block's panels of the other operand.
        let fixed = alongRows ? 2 * cols.block * kb * op.elementBytes : 2 * rows.block * op.aBytesPerRow * kb / op.k
        var split = 1
        if reserve > fixed {
            let estimate = min(limit, (whole - fixed) / (reserve - fixed))
            while Double(split) * 2 <= estimate { split *= 2 }
        } else {
            while Double(split) < limit { split *= 2 }
        }
        // Step down while the half still fits, then up until it fits.
        while split > 1 && working(split / 2) <= reserve { split /= 2 }
        while working(split) > reserve {
            if Double(split) >= limit { return nil }
            split *= 2
        }
        return split
    }

    /// The analytic SUMMA volume of an m × k by k × n product on an R × C grid whose blocks divide evenly, every
    /// operand starting in block layout on the grid: A is sent to the C − 1 other nodes of its grid row and B to
    /// the R − 1 others of its grid column. Bytes.
    public static func summaVolume(m: Double, n: Double, k: Double, rows r: Int, cols c: Int, elementBytes: Double) -> Double {
        (Double(c - 1) * m * k + Double(r - 1) * k * n) * elementBytes
    }

    /// The traffic of an op that is not a GEMM: elementwise, normalisation, reduction, pooling, optimizer updates
    /// and data movement, with its tensors spread evenly over the region's working nodes.
    @inlinable public func spread(_ work: OpWork) -> SpreadTraffic {
        let w = Double(region.nodes)
        let read = work.bytesRead, written = work.bytesWritten
        var t = SpreadTraffic(sramLoadBytesPerNode: read / w, sramStoreBytesPerNode: written / w,
                              ingestBytesPerNode: 0, bisectionBytes: 0, reductionHops: 0,
                              spillBytes: max(0, read + written - regionSRAMBytes))
        switch work.kind.definition.meshTraffic {
        case .none:
            // A view: nothing moves.
            t.sramLoadBytesPerNode = 0; t.sramStoreBytesPerNode = 0; t.spillBytes = 0
        case .allToAll:
            // All-to-all: every output element comes from another node (a transpose of a 2D-distributed tensor;
            // an embedding's rows from the table's shards). Half the data crosses the bisection, both ways.
            t.ingestBytesPerNode = written / w * (1 - 1 / w)
            t.bisectionBytes = written / 4
        case .multicast:
            // Every node needs the whole (small) input: a multicast over the mesh.
            t.ingestBytesPerNode = read
        case .reduction:
            // Statistics or a loss combined across nodes: a reduction tree and a broadcast back.
            t.reductionHops = 2 * Double(region.diameterHops)
        case .local:
            // Elementwise, row-wise (softmax, layer norm: a row on one node), pooling, slices and concatenation
            // (each node copies its own part), optimizer updates.
            break
        }
        return t
    }
}

/// What one layout of a GEMM computes and moves per busiest node (all passes, except the MACs: one pass), for
/// pricing. `GEMMMapping` carries the same figures with the layout's description.
public struct GEMMTraffic: Sendable, Equatable {
    public var matrixMACs: Double
    public var simdMACs: Double
    public var ingestBytes: Double
    public var fillBytes: Double
    public var sramLoadBytes: Double
    public var sramStoreBytes: Double
    public var hbmBytes: Double
    public var passes: Double

    @inlinable public init(matrixMACs: Double, simdMACs: Double, ingestBytes: Double, fillBytes: Double,
                           sramLoadBytes: Double, sramStoreBytes: Double, hbmBytes: Double, passes: Double) {
        self.matrixMACs = matrixMACs; self.simdMACs = simdMACs; self.ingestBytes = ingestBytes; self.fillBytes = fillBytes
        self.sramLoadBytes = sramLoadBytes; self.sramStoreBytes = sramStoreBytes; self.hbmBytes = hbmBytes
        self.passes = passes
    }
}

/// One side of a GEMM's grid: `count` nodes, each with a `block` of output rows (or columns), `padded` to the
/// matrix block.
public struct GridSide: Sendable, Equatable {
    public var count: Int
    public var block: Double
    public var padded: Double

    /// The block padded to the SIMD lanes (an FP32 GEMM on the SIMD unit).
    public var lanePadded: Double
    /// Products (batch items) a grid row spans (1 for columns).
    public var items: Double

    @inlinable public init(count: Int, block: Double, padded: Double, lanePadded: Double, items: Double) {
        self.count = count; self.block = block; self.padded = padded; self.lanePadded = lanePadded; self.items = items
    }
}

/// What a non-GEMM op moves: SRAM traffic per node, mesh traffic, reductions and spill.
public struct SpreadTraffic: Sendable, Equatable {
    public var sramLoadBytesPerNode: Double
    public var sramStoreBytesPerNode: Double
    /// Bytes one node receives over the mesh.
    public var ingestBytesPerNode: Double
    /// Bytes crossing the region's bisection per direction (all-to-all).
    public var bisectionBytes: Double
    /// Hops of a reduction across the region (up and back down).
    public var reductionHops: Double
    /// Bytes of the op's tensors beyond the region's SRAM: streamed from and to DIP HBM once.
    public var spillBytes: Double

    @inlinable init(sramLoadBytesPerNode: Double, sramStoreBytesPerNode: Double, ingestBytesPerNode: Double,
                    bisectionBytes: Double, reductionHops: Double, spillBytes: Double) {
        self.sramLoadBytesPerNode = sramLoadBytesPerNode; self.sramStoreBytesPerNode = sramStoreBytesPerNode
        self.ingestBytesPerNode = ingestBytesPerNode; self.bisectionBytes = bisectionBytes
        self.reductionHops = reductionHops; self.spillBytes = spillBytes
    }
}

/// ⌈x⌉ for the non-negative sizes of a mapping, without a libm call (the baseline x86-64 target has no SSE4.1
/// `roundsd`; ceil through libm costs more than the rest of a layout's arithmetic).
@inlinable @inline(__always) func up(_ x: Double) -> Double {
    // Adding and subtracting 2^52 rounds a non-negative double below 2^52 to an integer (to nearest, with SSE2).
    guard x >= 0, x < 4_503_599_627_370_496 else { return x.rounded(.up) }
    let t = (x + 4_503_599_627_370_496) - 4_503_599_627_370_496
    return t < x ? t + 1 : t
}
