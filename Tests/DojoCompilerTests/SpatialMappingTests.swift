import DojoCompiler
import DojoGraph
import DojoMachine
import Testing

@Suite("Spatial mapping on a D1 mesh")
struct SpatialMappingTests {
    let mapper: SpatialMapper
    let system: DojoSystem

    init() throws {
        guard case .dojo(let d) = try Presets.load("d1").system else { throw MappingTestError.notDojo }
        system = d
        mapper = SpatialMapper(system: d)
    }

    enum MappingTestError: Error { case notDojo }

    @Test("rectangles of working nodes on the 18 × 20 mesh with 354 nodes")
    func rectangles() {
        let r = mapper.region
        #expect(r == MeshRegion(rows: 18, cols: 20, nodes: 354))
        #expect(r.diameterHops == 36)
        #expect(r.bisectionLinks == 18)
        #expect(r.maxCols(rows: 18) == 19)   // 18 × 20 = 360 > 354 working nodes
        #expect(r.maxCols(rows: 17) == 20)
        #expect(r.maxCols(rows: 20) == 17)   // 20 rows only lie along the 20 columns: 18 wide at most, 354 / 20
        #expect(r.maxCols(rows: 21) == 0)
        #expect(SpatialMapper.fewest(20, for: 100) == 20)
        #expect(SpatialMapper.fewest(19, for: 100) == 17)  // ⌈100 / 19⌉ = 6 rows each: 17 nodes suffice
        #expect(SpatialMapper.fewest(5, for: 8) == 4)
    }

    @Test("the mesh traffic of a GEMM is the SUMMA volume, computed by hand")
    func summaVolume() {
        // 64 × 64 × 64 BF16 on a 4 × 4 grid filling a 4 × 4 region: each A element goes to the 3 other nodes of its
        // grid row, each B element to the 3 others of its column: 3 × 64 × 64 × 2 B + 3 × 64 × 64 × 2 B = 49,152 B.
        let square = SpatialMapper(region: MeshRegion(rows: 4, cols: 4), node: mapper.node)
        let op = GEMMOperands(m: 64, n: 64, k: 64, elementBytes: 2)
        let m = square.gemm(op, rows: 4, cols: 4, panelDepth: 64)
        #expect(m.meshBytes == 49_152)
        #expect(m.ingestBytesPerNode == 3_072)      // (16 × 64 × 2) × 3/4 from A plus the same from B
        #expect(SpatialMapper.summaVolume(m: 64, n: 64, k: 64, rows: 4, cols: 4, elementBytes: 2) == 49_152)
        // 128 × 64 output, k = 32, FP32, on 4 grid rows × 2 columns: (2 − 1) × 128 × 32 × 4 + (4 − 1) × 32 × 64 × 4
        // = 16,384 + 24,576 = 40,960 B.
        let tall = SpatialMapper(region: MeshRegion(rows: 4, cols: 2), node: mapper.node)
        let op2 = GEMMOperands(m: 128, n: 64, k: 32, elementBytes: 4)
        #expect(tall.gemm(op2, rows: 4, cols: 2, panelDepth: 32).meshBytes == 40_960)
        #expect(SpatialMapper.summaVolume(m: 128, n: 64, k: 32, rows: 4, cols: 2, elementBytes: 4) == 40_960)
        // One node holding everything moves nothing.
        #expect(square.gemm(op, rows: 1, cols: 1, panelDepth: 64).meshBytes == 0)
    }

    @Test("ragged blocks pad to the 8 × 8 matrix block; SIMD pads to 16 lanes")
    func ragged() {
        let op = GEMMOperands(m: 100, n: 30, k: 10, elementBytes: 2)
        let m = mapper.gemm(op, rows: 17, cols: 3, panelDepth: 10)
        #expect(m.blockRows == 6 && m.blockCols == 10)
        #expect(m.paddedBlockRows == 8 && m.paddedBlockCols == 16)
        #expect(m.matrixMACsPerNode == 8 * 16 * 10)
        #expect(m.simdMACsPerNode == min(6 * 16, 16 * 10) * 10)
        #expect(m.nodesUsed == 51)
    }

    @Test("a convolution's A is its input tensor, not the im2col matrix")
    func convolution() {
        // 3 × 3 conv, 64 → 64 channels, 56 × 56, batch 8, BF16: rows = 8 × 56 × 56, k = 576, but each row's inputs are
        // 64 channels of one pixel (neighbours share the rest).
        let gemm = OpWork.gemm(kind: .conv2d, inputs: [[8, 64, 56, 56], [64, 64, 3, 3]], output: [8, 64, 56, 56],
                               attributes: OpAttributes(kernel: [3, 3], stride: [1, 1], padding: [1, 1]))!
        let input = 8.0 * 64 * 56 * 56 * 2, weights = 64.0 * 64 * 9 * 2
        let work = OpWork(kind: .conv2d, phase: .forward, gemm: gemm, flops: gemm.flops, bytesRead: input + weights,
                          bytesWritten: input, weightBytes: weights)
        let op = mapper.operands(work, precision: .bf16)!
        #expect(op.rows == 8 * 56 * 56 && op.k == 576)
        #expect(op.aBytesPerRow == 64 * 2)
        #expect(op.aBytes == input)
        #expect(op.bBytes == weights)
    }

    @Test("working sets fit the reserve; what does not fit on the die goes to HBM")
    func capacity() {
        let op = GEMMOperands(m: 16384, n: 16384, k: 4096, elementBytes: 2)
        let reserve = mapper.node.sramBytes / 4
        let rows = mapper.rowSide(op, count: 18), cols = mapper.colSide(op, count: 19)
        let split = mapper.fewestSplits(op, rows: rows, cols: cols, panelDepth: 64, reserve: reserve, alongRows: true)!
        #expect(mapper.workingBytes(op, rows: rows, cols: cols, panelDepth: 64, rowSplits: split, colSplits: 1) <= reserve)
        #expect(split == 1 || mapper.workingBytes(op, rows: rows, cols: cols, panelDepth: 64, rowSplits: split / 2,
                                                  colSplits: 1) > reserve)
        let m = mapper.gemm(op, rows: 18, cols: 19, panelDepth: 64, rowSplits: split, reserve: reserve)
        #expect(m.fits)
        // A, B and C are 134 + 134 + 537 MB: far more than 354 × 1.25 MB.
        #expect(m.hbmBytes >= op.aBytes + op.bBytes + op.outBytes - mapper.regionSRAMBytes)
        // A small GEMM stays on chip.
        #expect(mapper.gemm(GEMMOperands(m: 512, n: 512, k: 512, elementBytes: 2), rows: 18, cols: 19, panelDepth: 64).hbmBytes == 0)
    }

    @Test("spread ops: SRAM per node, all-to-all for transposes, spill beyond the die")
    func spread() {
        let w = OpWork(kind: .add, phase: .forward, gemm: nil, flops: 1e6, bytesRead: 8e6, bytesWritten: 4e6)
        let t = mapper.spread(w)
        #expect(t.sramLoadBytesPerNode == 8e6 / 354 && t.sramStoreBytesPerNode == 4e6 / 354)
        #expect(t.ingestBytesPerNode == 0 && t.spillBytes == 0)
        let tr = mapper.spread(OpWork(kind: .transpose, phase: .forward, gemm: nil, flops: 0, bytesRead: 8e6, bytesWritten: 8e6))
        #expect(tr.bisectionBytes == 2e6)
        let big = mapper.spread(OpWork(kind: .adamwUpdate, phase: .optimizer, gemm: nil, flops: 1e9, bytesRead: 600e6, bytesWritten: 400e6))
        #expect(big.spillBytes == 1000e6 - 354 * 1.25e6)
    }
}
