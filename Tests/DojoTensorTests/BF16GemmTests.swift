import DojoGraph
import DojoNumerics
import Testing
@_spi(Testing) import DojoTensor

/// Issue 14 §2: GEMMs on operands exact in BF16 run on oneDNN's BF16 matmul (FP32 accumulation) where the CPU has
/// native BF16, and give the FP32 GEMM's sums. Checked only on such a CPU (`BF16Gemm.isAvailable`).
@Suite("BF16 GEMMs on values exact in BF16", .enabled(if: BF16Gemm.isAvailable))
struct BF16GemmTests {
    /// `n` values in [-1, 1) cut to BF16 (exact in it), and their BF16 bits.
    static func bf16Values(_ n: Int, _ g: inout TestRNG) -> ([Float], [UInt16]) {
        let v = g.array(n).map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) }
        return (v, v.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) })
    }

    /// Every layout the engine asks for (plain, either operand transposed, batched, a shared right operand, C += A·B)
    /// against the reference triple loop (in Double), matrix by matrix.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)], [(1, 1), (5, 5), (5, 1)])
    func againstReference(_ t: (Bool, Bool), _ batches: (Int, Int)) {
        let (ta, tb) = t, (batch, batchB) = batches
        let (m, n, k) = (37, 29, 300)
        var g = TestRNG(UInt64(batch * 4 + (ta ? 2 : 0) + (tb ? 1 : 0)))
        let (a, a16) = Self.bf16Values(batch * m * k, &g), (b, b16) = Self.bf16Values(batchB * k * n, &g)
        let c0 = g.array(batch * m * n)
        for beta: Float in [0, 1] {
            var fast = c0, slow = c0
            a16.withUnsafeBufferPointer { pa in b16.withUnsafeBufferPointer { pb in fast.withUnsafeMutableBufferPointer { pc in
                BF16Gemm.run(batch: batch, batchB: batchB, transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: pa.baseAddress!,
                             lda: ta ? m : k, b: pb.baseAddress!, ldb: tb ? k : n, beta: beta, c: pc.baseAddress!, ldc: n)
            } } }
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in slow.withUnsafeMutableBufferPointer { pc in
                for i in 0..<batch {
                    GemmKernel.reference(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 1, a: pa.baseAddress! + i * m * k,
                                         lda: ta ? m : k, b: pb.baseAddress! + (batchB == 1 ? 0 : i * k * n), ldb: tb ? k : n,
                                         beta: beta, c: pc.baseAddress! + i * m * n, ldc: n)
                }
            } } }
            // exact products summed in FP32 (300 of them) against Double sums
            #expect(relativeError(fast, slow) < 1e-5, "transposes \(t) batches \(batches) β \(beta)")
        }
    }

    /// With a bias added to every row (a Linear layer's), batched and not.
    @Test(arguments: [1, 3])
    func withBias(_ batch: Int) {
        let (m, n, k) = (19, 33, 70)
        var g = TestRNG(UInt64(40 + batch))
        let (a, a16) = Self.bf16Values(batch * m * k, &g), (b, b16) = Self.bf16Values(k * n, &g), bias = g.array(n)
        var fast = [Float](repeating: 0, count: batch * m * n), slow = fast
        a16.withUnsafeBufferPointer { pa in b16.withUnsafeBufferPointer { pb in fast.withUnsafeMutableBufferPointer { pc in
            BF16Gemm.run(batch: batch, batchB: 1, transposeA: false, transposeB: false, m: m, n: n, k: k, a: pa.baseAddress!, lda: k,
                         b: pb.baseAddress!, ldb: n, bias: bias, c: pc.baseAddress!, ldc: n)
        } } }
        for i in 0..<batch * m { for j in 0..<n { slow[i * n + j] = bias[j] } }
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in slow.withUnsafeMutableBufferPointer { pc in
            GemmKernel.reference(transposeA: false, transposeB: false, m: batch * m, n: n, k: k, alpha: 1, a: pa.baseAddress!, lda: k,
                                 b: pb.baseAddress!, ldb: n, beta: 1, c: pc.baseAddress!, ldc: n)
        } } }
        #expect(relativeError(fast, slow) < 1e-5)
    }

    /// A tensor product whose operands a Dojo format made runs on BF16 kernels and gives the FP32 GEMM's values (to
    /// FP32 summation order); one value not exact in BF16 sends it back to the FP32 GEMM, bit for bit as with BF16
    /// kernels off; and an operand without a format is never tried.
    @Test func tensorProductsUseBF16KernelsOnlyOnExactValues() {
        var g = TestRNG(9)
        let (av, _) = Self.bf16Values(64 * 48, &g), (bv, _) = Self.bf16Values(48 * 40, &g)
        func product(_ a: [Float], formatA: DType?, bf16: Bool) -> (values: [Float], calls: Int) {
            let x = Tensor(a, shape: [64, 48]), w = Tensor(bv, shape: [40, 48])
            x.format = formatA; w.format = .bf16
            let counter = BF16Gemm.Counter()
            let y = BF16Gemm.$counter.withValue(counter) { Engine.$bf16Kernels.withValue(bf16) { x.matmul(w, transposeB: true) } }
            return (y.array, counter.count)
        }
        let fast = product(av, formatA: .bf16, bf16: true), fp32 = product(av, formatA: .bf16, bf16: false)
        #expect(fast.calls >= 1 && fp32.calls == 0)
        #expect(relativeError(fast.values, fp32.values) < 1e-6)
        var inexact = av
        inexact[100] = 1 + 0x1p-20    // not exact in BF16
        let back = product(inexact, formatA: .bf16, bf16: true), reference = product(inexact, formatA: .bf16, bf16: false)
        #expect(back.values.map(\.bitPattern) == reference.values.map(\.bitPattern))
        #expect(product(av, formatA: nil, bf16: true).values.map(\.bitPattern) == fp32.values.map(\.bitPattern))
    }
}

/// A CFP8 tensor's BF16 bits for the BF16 kernels, looked up from its 1-byte codes: every code of both CFP8 layouts at
/// any bias is exact in BF16, and the bits are those of the values the codes stand for.
@Suite("CFP8 codes to BF16 bits", .enabled(if: BF16Gemm.isAvailable))
struct CFP8ToBF16Tests {
    @Test(arguments: [Format.cfp8_143, .cfp8_152], [0, 9, 31, 63])
    func tableAndOperand(_ f: Format, _ bias: Int) throws {
        let nf = try NumberFormat(f, bias: bias)
        let table = try #require(BF16Operand.bf16Table(nf), "a \(f) code at bias \(bias) is not exact in BF16")
        // the table against each code decoded alone
        for code in 0..<256 {
            var c = UInt8(code), v: Float = 0
            NumberFormat.Unpacker(nf).unpack(&c, count: 1, into: &v)
            #expect(UInt32(table[code]) << 16 == v.bitPattern, "code \(code)")
        }
        // a tensor held as codes only (as batch norm and ReLU write them), 70,000 of them over every code
        let n = 70_000
        let codes = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        for i in 0..<n { codes.storeBytes(of: UInt8(truncatingIfNeeded: i &* 37), toByteOffset: i, as: UInt8.self) }
        let t = Tensor(shape: [n], storage: Storage(codes: codes, count: n, format: nf))
        t.format = f == .cfp8_143 ? .cfp8_143 : .cfp8_152
        let values = t.array
        let operand = try #require(BF16Operand.of(t), "BF16 kernels off, or no BF16 arithmetic here")
        #expect((0..<n).allSatisfy { UInt32(operand.bits[$0]) << 16 == values[$0].bitPattern })
    }
}

/// The convolution's three passes on BF16 operands give the FP32 kernels' values on the same (BF16-exact) values.
@Suite("BF16 convolutions on values exact in BF16", .enabled(if: BF16Gemm.isAvailable))
struct BF16ConvTests {
    @Test(arguments: [1, 2])
    func threePassesMatchFP32(_ stride: Int) {
        let g = Conv2dGeometry(batch: 3, inChannels: 16, height: 11, width: 11, outChannels: 32, kernelH: 3, kernelW: 3,
                               strideH: stride, strideW: stride, padH: 1, padW: 1)
        var r = TestRNG(UInt64(stride))
        let (x, x16) = BF16GemmTests.bf16Values(g.inputCount, &r), (w, w16) = BF16GemmTests.bf16Values(g.weightCount, &r)
        let (dy, dy16) = BF16GemmTests.bf16Values(g.outputCount, &r), bias = r.array(g.outChannels)
        var y = [Float](repeating: 0, count: g.outputCount), y32 = y
        var dx = [Float](repeating: 0, count: g.inputCount), dx32 = dx
        var dw = [Float](repeating: 0, count: g.weightCount), dw32 = dw
        var db = [Float](repeating: 0, count: g.outChannels), db32 = db
        Conv2dKernel.forwardBF16(g, x: x16, weight: w16, bias: bias, y: &y)
        Conv2dKernel.forward(g, x: x, weight: w, bias: bias, y: &y32)
        Conv2dKernel.backwardDataBF16(g, dy: dy16, weight: w16, dx: &dx)
        Conv2dKernel.backwardData(g, dy: dy, weight: w, dx: &dx32)
        Conv2dKernel.backwardWeightsBF16(g, x: x16, dy: dy16, dWeight: &dw, dBias: &db)
        Conv2dKernel.backwardWeights(g, x: x, dy: dy, dWeight: &dw32, dBias: &db32)
        #expect(relativeError(y, y32) < 1e-5)
        #expect(relativeError(dx, dx32) < 1e-5)
        #expect(relativeError(dw, dw32) < 1e-5)
        #expect(relativeError(db, db32) < 1e-5)
    }

    /// Both gradients in one call (dy reordered once into the layout both passes read) are the two passes' own, bit
    /// for bit, on BF16 operands.
    @Test func bothGradientsAtOnce() {
        let g = Conv2dGeometry(batch: 4, inChannels: 32, height: 14, width: 14, outChannels: 64, kernelH: 3, kernelW: 3,
                               strideH: 1, strideW: 1, padH: 1, padW: 1)
        var r = TestRNG(7)
        let (_, x16) = BF16GemmTests.bf16Values(g.inputCount, &r), (_, w16) = BF16GemmTests.bf16Values(g.weightCount, &r)
        let (_, dy16) = BF16GemmTests.bf16Values(g.outputCount, &r)
        var dx = [Float](repeating: 0, count: g.inputCount), dxBoth = dx
        var dw = [Float](repeating: 0, count: g.weightCount), dwBoth = dw
        var db = [Float](repeating: 0, count: g.outChannels), dbBoth = db
        Conv2dKernel.backwardDataBF16(g, dy: dy16, weight: w16, dx: &dx)
        Conv2dKernel.backwardWeightsBF16(g, x: x16, dy: dy16, dWeight: &dw, dBias: &db)
        Conv2dKernel.backwardBF16(g, dy: dy16, weight: w16, x: x16, dx: &dxBoth, dWeight: &dwBoth, dBias: &dbBoth)
        #expect(dx.map(\.bitPattern) == dxBoth.map(\.bitPattern))
        #expect(dw.map(\.bitPattern) == dwBoth.map(\.bitPattern))
        #expect(db.map(\.bitPattern) == dbBoth.map(\.bitPattern))
        #expect(dx.contains { $0 != 0 } && dw.contains { $0 != 0 })
    }
}
