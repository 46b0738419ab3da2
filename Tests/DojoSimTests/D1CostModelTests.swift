import DojoCompiler
import DojoGraph
import DojoMachine
import DojoSim
import Testing

/// The cost of one op on one D1 die (a tile's die: its off-chip memory is its share of the tile's DIP HBM).
@Suite("D1 op cost")
struct D1CostModelTests {
    let tile: Machine
    let model: D1CostModel

    init() throws {
        tile = try Presets.load("tile")
        model = try #require(D1CostModel(machine: tile))
    }

    @Test("peaks: 354 nodes × 512 FLOP/cycle × 2 GHz BF16/CFP8 (S1: 362 TFLOPS), × 32 FP32 (S7: 22.6 TFLOPS)")
    func peaks() {
        #expect(model.peakFlops(.bf16) == 354 * 512 * 2e9)
        #expect(model.peakFlops(.cfp8) == model.peakFlops(.bf16))
        #expect(model.peakFlops(.fp32) == 354 * 32 * 2e9)
        #expect(model.peakFlops(.tf32) == model.peakFlops(.fp32))   // no TF32 on Dojo: FP32
        // The die's share of the tile's 5 DIPs × min(800 GB/s HBM, 900 GB/s TTP) (S11) over its 25 dies.
        #expect(model.offChip == .dipHBM)
        #expect(relative(model.offChipBandwidth, 5 * 800e9 / 25) < 1e-15)
        // In a tray, 20 DIPs serve 6 tiles (§10).
        let tray = try! #require(D1CostModel(machine: try! Presets.load("tray")))
        #expect(relative(tray.offChipBandwidth, 20.0 / 6 * 800e9 / 25) < 1e-15)
        // A lone D1 has no DIPs: its die edges.
        let d1 = try! #require(D1CostModel(machine: try! Presets.load("d1")))
        #expect(d1.offChip == .dieEdges)
        #expect(d1.offChipBandwidth == 4 * 2e12)
        #expect(D1CostModel(machine: try! Presets.load("dgx-h100")) == nil)
    }

    @Test("a large square BF16 GEMM is compute-bound near matrix_efficiency × 362 TFLOPS")
    func largeGEMM() {
        for size in [4096.0, 8192] {
            let w = gemmWork(size, size, size, .bf16)
            let c = model.cost(w, precision: .bf16)
            let achieved = w.flops / c.seconds
            let ceiling = tile.calibration.matrixEfficiency * model.peakFlops(.bf16)
            #expect(c.bound == .compute)
            #expect(achieved <= ceiling)
            // The best rectangle of the 18 × 20 mesh holds 342 of the 354 nodes (18 × 19): 96.6 %; blocks padded to
            // 8 × 8 lose a little more (4096 / 18 = 227.6 rows → 232).
            #expect(achieved >= 0.94 * ceiling, "\(size): \(achieved / ceiling)")
            #expect(relative(c.utilisation, achieved / model.peakFlops(.bf16)) < 1e-12)
        }
    }

    @Test("an FP32 GEMM runs on the SIMD unit at the FP32 rate")
    func fp32GEMM() {
        let w = gemmWork(4096, 4096, 4096, .fp32)
        let c = model.cost(w, precision: .fp32)
        let ceiling = tile.calibration.matrixEfficiency * 354 * 64e9
        #expect(c.bound == .compute)
        #expect(w.flops / c.seconds <= ceiling)
        #expect(w.flops / c.seconds >= 0.94 * ceiling)
        // 16 times slower than BF16 on the matrix unit.
        let bf16 = model.cost(gemmWork(4096, 4096, 4096, .bf16), precision: .bf16)
        #expect(c.seconds > 15 * bf16.seconds)
    }

    @Test("a tiny GEMM is latency-bound: the mesh diameter dwarfs its arithmetic")
    func tinyGEMM() {
        let c = model.cost(gemmWork(8, 8, 8, .bf16), precision: .bf16)
        #expect(c.bound == .latency || c.bound == .mesh)
        #expect(c.utilisation < 0.001)
        // At least the diameter of the 18 × 20 mesh: 36 hops of one cycle at 2 GHz (S7, S9).
        #expect(c.seconds >= 36 / 2e9)
        #expect(c.latencySeconds >= 36 / 2e9)
    }

    @Test("an elementwise op streams through every node's SRAM ports: bytes / (nodes × bandwidth × memory_efficiency)")
    func elementwise() {
        let n = 50e6
        let e = tile.calibration.memoryEfficiency
        // A copy (a slice): no arithmetic, SRAM-bound. Loads through the 400 GB/s load ports, stores through the
        // 270 GB/s store port (S9, S10), on all 354 nodes.
        let copy = model.cost(OpWork(kind: .slice, phase: .forward, gemm: nil, flops: 0, bytesRead: 2 * n, bytesWritten: 2 * n),
                              precision: .bf16)
        let copyTime = max(2 * n / (354 * 400e9 * e), 2 * n / (354 * 270e9 * e))
        #expect(copy.bound == .sram)
        #expect(relative(copy.memorySeconds, copyTime) < 1e-12)
        #expect(relative(copy.seconds, copyTime + 36 / 2e9) < 1e-12)   // plus the mesh diameter
        // An add of two BF16 tensors: the same SRAM time formula…
        let w = elementwiseWork(.add, elements: n, inputs: 2, .bf16)
        let c = model.cost(w, precision: .bf16)
        let expected = max(2 * n * 2 / (354 * 400e9 * e), n * 2 / (354 * 270e9 * e))
        #expect(relative(c.memorySeconds, expected) < 1e-12)
        // …but the SIMD unit (64 GFLOP/s per node, S26, at vector_efficiency) is slower than 400 GB/s of loads: a
        // 512-bit unit consumes at most 128 B per cycle for a two-input op, the SRAM gives 200 (S9).
        #expect(c.computeSeconds == n / (354 * 64e9 * tile.calibration.vectorEfficiency))
        #expect(c.bound == .compute)
        // The same add reading 4-byte elements moves twice the bytes (fewer elements: 600 MB would not fit on the die).
        let fp32 = model.cost(elementwiseWork(.add, elements: n / 2, inputs: 2, .fp32), precision: .fp32)
        #expect(relative(fp32.memorySeconds, expected) < 1e-12)
        // 600 MB do not fit in 442.5 MB: the rest streams from HBM, which then bounds the op.
        let spilling = model.cost(elementwiseWork(.add, elements: n, inputs: 2, .fp32), precision: .fp32)
        #expect(spilling.bound == .hbm)
        #expect(relative(spilling.memorySeconds, (600e6 - 354 * 1.25e6) / (160e9 * e)) < 1e-12)
    }

    @Test("a GEMM whose operands exceed the die's 440 MB streams from DIP HBM and is HBM-bound")
    func spillsToHBM() {
        let w = gemmWork(65536, 4096, 1024, .bf16)
        let operands = w.bytesRead + w.bytesWritten
        #expect(operands > 440e6)
        let e = model.estimate(w, precision: .bf16)
        #expect(e.cost.bound == .hbm)
        let mapping = try! #require(e.mapping)
        // At least what does not fit crosses HBM.
        #expect(mapping.hbmBytes >= operands - 354 * 1.25e6)
        #expect(relative(e.terms.hbm, mapping.hbmBytes / (160e9 * tile.calibration.memoryEfficiency)) < 1e-12)
    }

    @Test("twice the SRAM per node never makes an op slower, and speeds up one that spills")
    func doublingSRAM() throws {
        let big = try #require(D1CostModel(machine: try tile.with(["node.sram_bytes": "2.5MB"])))
        var works = [gemmWork(65536, 4096, 1024, .bf16), gemmWork(8192, 8192, 8192, .bf16),
                     gemmWork(2048, 2048, 128, batch: 128, .bf16, weights: false), gemmWork(8, 8, 8, .bf16),
                     convWork(batch: 256, inChannels: 128, outChannels: 128, size: 28, kernel: 3, .bf16),
                     elementwiseWork(.add, elements: 150e6, .bf16), elementwiseWork(.relu, elements: 1e6, inputs: 1, .bf16)]
        var random = TestRandom(state: 7)
        for _ in 0..<40 {
            works.append(gemmWork(random.size(1e5), random.size(2e4), random.size(2e4), batch: random.size(8), .bf16))
        }
        for w in works {
            let small = model.cost(w, precision: .bf16).seconds, large = big.cost(w, precision: .bf16).seconds
            #expect(large <= small * (1 + 1e-12), "\(w.gemm.map { "\($0)" } ?? "\(w.kind)"): \(large) > \(small)")
        }
        let spilling = works[0]
        #expect(big.cost(spilling, precision: .bf16).seconds < 0.5 * model.cost(spilling, precision: .bf16).seconds)
    }

    @Test("more work of the same shape family is never cheaper (random shapes)")
    func monotone() {
        var random = TestRandom(state: 42)
        for i in 0..<300 {
            let m = random.size(2e5), n = random.size(3e4), k = random.size(3e4), batch = random.size(16)
            let precision: Precision = i % 3 == 0 ? .fp32 : .bf16
            let base = gemmWork(m, n, k, batch: batch, precision, weights: i % 2 == 0)
            let grow = [1 + Double(random.next() % 3), 1 + Double(random.next() % 3), 1 + Double(random.next() % 3)]
            let bigger = gemmWork(m + grow[0] * Double(random.next() % 64), n + grow[1] * Double(random.next() % 64),
                                  k + grow[2] * Double(random.next() % 64), batch: batch + Double(random.next() % 2),
                                  precision, weights: i % 2 == 0)
            let a = model.cost(base, precision: precision).seconds
            let b = model.cost(bigger, precision: precision).seconds
            #expect(b >= a * (1 - 1e-12), "\(base.gemm!) → \(bigger.gemm!): \(a) > \(b)")
        }
        // Elementwise: more elements, more time.
        var last = 0.0
        for n in stride(from: 1e3, to: 3e8, by: 7.7e6) {
            let s = model.cost(elementwiseWork(.mul, elements: n, .bf16), precision: .bf16).seconds
            #expect(s >= last)
            last = s
        }
    }

    @Test("the search finds the fastest layout: the same as trying every one (small regions, spilling shapes)")
    func exhaustive() throws {
        guard case .dojo(let system) = tile.system else { Issue.record("not a Dojo machine"); return }
        let regions = [MeshRegion(rows: 3, cols: 4), MeshRegion(rows: 5, cols: 6, nodes: 28), MeshRegion(rows: 2, cols: 7)]
        var random = TestRandom(state: 3)
        for (i, region) in regions.enumerated() {
            let small = D1CostModel(system: system, calibration: tile.calibration, region: region)
            for j in 0..<12 {
                let precision: Precision = j % 4 == 3 ? .fp32 : .bf16
                // Up to ~80 MB of operands: some spill out of these small regions' SRAM.
                let w = gemmWork(random.size(4096), random.size(4096), random.size(4096), batch: random.size(4), precision,
                                 weights: j % 2 == 0, passes: j % 5 == 0 ? 2 : 1)
                let fast = small.cost(w, precision: precision).seconds
                let slow = try #require(bruteForce(small, w, precision))
                #expect(relative(fast, slow) < 1e-12, "region \(i) shape \(w.gemm!): search \(fast) vs every layout \(slow)")
            }
        }
    }

    /// The best time over every rectangle, reserve share, panel depth and split of either direction, priced with the
    /// formulas of docs/ARCHITECTURE.md from the public rates.
    func bruteForce(_ model: D1CostModel, _ w: OpWork, _ precision: Precision) -> Double? {
        // a backward GEMM: its passes (the input's and the weights' gradients), each searched exhaustively, added
        guard w.phase != .backward else {
            let parts = w.gemmPasses.map { bruteForceOne(model, $0, precision) }
            return parts.contains { $0 == nil } ? nil : parts.reduce(0) { $0 + $1! }
        }
        return bruteForceOne(model, w, precision)
    }

    func bruteForceOne(_ model: D1CostModel, _ w: OpWork, _ precision: Precision) -> Double? {
        let mapper = model.mapper
        guard let op = mapper.operands(w, precision: precision) else { return nil }
        let e = model.calibration
        let reduced = precision != .fp32 && precision != .tf32
        let link = model.linkBandwidth * e.linkEfficiency
        var best = Double.infinity
        for r in 1...mapper.region.longSide {
            let cMax = mapper.region.maxCols(rows: r)
            guard cMax >= 1 else { continue }
            for c in 1...cMax {
                for share in [0.5, 0.25, 0.125, 0.0625, 0.03125] {
                    for depth in [16.0, 64, 256, op.k] {
                        for alongRows in [true, false] {
                            var split = 1
                            while split <= 1 << 20 {
                                let m = mapper.gemm(op, rows: r, cols: c, panelDepth: min(depth, op.k),
                                                    rowSplits: alongRows ? split : 1, colSplits: alongRows ? 1 : split,
                                                    reserve: share * mapper.node.sramBytes)
                                if m.fits {
                                    let matrix = reduced ? m.matrixMACsPerNode * 2 / (model.matrixFlopsPerNode * e.matrixEfficiency) : .infinity
                                    let simd = m.simdMACsPerNode * 2 / (model.fp32FlopsPerNode * e.matrixEfficiency)
                                    let compute = m.passes * min(matrix, simd)
                                    let sram = max(m.sramLoadBytesPerNode / (model.sramLoadBandwidth * e.memoryEfficiency),
                                                   m.sramStoreBytesPerNode / (model.sramStoreBandwidth * e.memoryEfficiency))
                                    let latency = Double(mapper.region.diameterHops) * model.hopSeconds + m.fillBytesPerNode / link
                                    let total = max(compute, sram, m.ingestBytesPerNode / link, m.hbmBytes / model.offChipRate) + latency
                                    best = min(best, total)
                                }
                                if Double(split) >= (alongRows ? m.blockRows : m.blockCols) { break }
                                split *= 2
                            }
                        }
                    }
                }
            }
        }
        return best < .infinity ? best : nil
    }

    @Test("a region of the mesh: its nodes' peak, and a GEMM takes longer on fewer nodes")
    func region() throws {
        guard case .dojo(let system) = tile.system else { Issue.record("not a Dojo machine"); return }
        let half = D1CostModel(system: system, calibration: tile.calibration, region: MeshRegion(rows: 9, cols: 20))
        #expect(half.nodes == 180)
        #expect(half.peakFlops(.bf16) == 180 * 512 * 2e9)
        #expect(relative(half.offChipBandwidth, model.offChipBandwidth * 180 / 354) < 1e-12)
        let w = gemmWork(4096, 4096, 4096, .bf16)
        let ratio = half.cost(w, precision: .bf16).seconds / model.cost(w, precision: .bf16).seconds
        #expect(ratio > 1.8 && ratio < 2.1, "\(ratio)")
    }

    @Test("data movement: a reshape is free, a transpose crosses the mesh's bisection, a broadcast multicasts")
    func dataMovement() {
        #expect(model.cost(OpWork(kind: .reshape, phase: .forward, gemm: nil, flops: 0, bytesRead: 4e6, bytesWritten: 4e6),
                           precision: .bf16) == .zero)
        let bytes = 100e6
        let t = model.cost(OpWork(kind: .transpose, phase: .forward, gemm: nil, flops: 0, bytesRead: bytes, bytesWritten: bytes),
                           precision: .bf16)
        // A quarter of the bytes cross the 18-link cut each way.
        #expect(t.bound == .mesh)
        #expect(relative(t.transferSeconds, bytes / 4 / (18 * 128e9 * tile.calibration.linkEfficiency)) < 1e-12)
        let slice = model.cost(OpWork(kind: .slice, phase: .forward, gemm: nil, flops: 0, bytesRead: bytes, bytesWritten: bytes),
                               precision: .bf16)
        #expect(slice.bound == .sram)
        #expect(slice.seconds < t.seconds)
        let b = model.cost(OpWork(kind: .broadcast, phase: .forward, gemm: nil, flops: 0, bytesRead: 1e6, bytesWritten: 100e6),
                           precision: .bf16)
        #expect(relative(b.transferSeconds, 1e6 / (128e9 * tile.calibration.linkEfficiency)) < 1e-12)
        // A batch norm's statistics cross the mesh and back: more latency than a ReLU of the same size.
        let bn = model.cost(elementwiseWork(.batchNorm, elements: 1e3, inputs: 1, .bf16), precision: .bf16)
        let relu = model.cost(elementwiseWork(.relu, elements: 1e3, inputs: 1, .bf16), precision: .bf16)
        #expect(bn.latencySeconds > relu.latencySeconds)
    }

    @Test("a backward GEMM of two passes costs about twice the forward")
    func passes() {
        let forward = model.cost(gemmWork(4096, 4096, 4096, .bf16), precision: .bf16).seconds
        let backward = model.cost(gemmWork(4096, 4096, 4096, .bf16, passes: 2), precision: .bf16).seconds
        #expect(relative(backward, 2 * forward) < 0.01)
    }
}
