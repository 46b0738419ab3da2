import CDojoKernels
import COneDNN
import Foundation
import Synchronization

/// GEMMs on BF16 operands with FP32 accumulation and an FP32 result, through oneDNN's matmul primitive (issue 14
/// §2). Values a Dojo format made (BF16, and CFP8 1-4-3/1-5-2 at any bias) are exact in BF16, and the product of two
/// BF16 values is exact in FP32: on such operands this GEMM computes the same sums as the FP32 one (in another
/// order: the last bits may differ), at the rate of the CPU's BF16 dot-product instructions (AVX512_BF16, AMX) and
/// with half the operand bytes. Only where oneDNN reports native BF16 (`CPUFeatures.hasNativeBF16`); elsewhere its
/// BF16 kernels emulate the arithmetic and are slower than FP32, so the engine keeps FP32 GEMMs.
public enum BF16Gemm {
    /// Whether GEMMs on operands exact in BF16 run on BF16 kernels: native BF16 here, not turned off with
    /// `DOJO_BF16_KERNELS=0` (to compare both paths on the same machine) nor by `Engine.bf16Kernels`.
    public static var isEnabled: Bool { isAvailable && Engine.bf16Kernels }

    /// Native BF16 here, and not turned off in the environment.
    public static let isAvailable: Bool = {
        if let v = ProcessInfo.processInfo.environment["DOJO_BF16_KERNELS"], v == "0" { return false }
        return CPUFeatures.hasNativeBF16
    }()

    /// Counts the products run on BF16 kernels by the task that installs it (`BF16Gemm.$counter.withValue`).
    public final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        public init() {}
        public var count: Int { value.load(ordering: .relaxed) }
        func add() { value.add(1, ordering: .relaxed) }
    }
    @TaskLocal public static var counter: Counter?

    /// C = op(A)·op(B) + beta·C for `batch` matrices (row-major, op(X) = X or Xᵀ): A is [batch, m, k] ([batch, k, m]
    /// transposed), B [batchB, k, n] ([batchB, n, k] transposed; `batchB` 1: shared by every matrix of A), C
    /// [batch, m, n]; `lda`, `ldb`, `ldc` are row strides, matrices packed one after another. One oneDNN primitive
    /// per geometry, cached; it runs over every compute thread. `bias` (n values) is added to every row.
    public static func run(batch: Int = 1, batchB: Int = 1, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                           a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
                           beta: Float = 0, bias: UnsafePointer<Float>? = nil, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(batchB == 1 || batchB == batch, "BF16Gemm: batchB \(batchB) for batch \(batch)")
        // matrices packed one after another: batch strides of a whole matrix each
        let sa = (transposeA ? k : m) * lda, sb = (transposeB ? n : k) * ldb, sc = m * ldc
        run(batches: (1, batch), transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
            a: a, aStrides: (batch * sa, sa), lda: lda, b: b, bStrides: batchB == 1 ? (0, 0) : (batch * sb, sb), ldb: ldb,
            beta: beta, bias: bias, c: c, cStrides: (batch * sc, sc), ldc: ldc)
    }

    /// The same over a grid of `batches.0 × batches.1` matrices lying anywhere in memory: matrix (i, j) of A at
    /// `a + i·aStrides.0 + j·aStrides.1` (likewise B and C), rows `ld` apart. B's strides (0, 0): one B shared by every
    /// matrix. Attention's products read the heads of a fused projection and write merged heads this way, in place
    /// (matrix (batch, head) of Q is a [tokens, head dim] block of the projection's [tokens, 3·dim] rows), instead of a
    /// permute and three slices copied first and a permute after.
    public static func run(batches: (Int, Int), transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                           a: UnsafePointer<UInt16>, aStrides: (Int, Int), lda: Int,
                           b: UnsafePointer<UInt16>, bStrides: (Int, Int), ldb: Int,
                           beta: Float = 0, bias: UnsafePointer<Float>? = nil,
                           c: UnsafeMutablePointer<Float>, cStrides: (Int, Int), ldc: Int) {
        if m == 0 || n == 0 || batches.0 == 0 || batches.1 == 0 { return }
        let shared = bStrides == (0, 0)
        let key = Key(batches: [batches.0, batches.1], shareB: shared, transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                      lda: lda, ldb: ldb, ldc: ldc, aStrides: [aStrides.0, aStrides.1],
                      bStrides: shared ? [0, 0] : [bStrides.0, bStrides.1], cStrides: [cStrides.0, cStrides.1],
                      beta: beta, bias: bias != nil, bf16Output: false)
        let p = cache.get(key) { MatmulPrimitives(key) }
        p.run(a: a, b: b, bias: bias, c: UnsafeMutableRawPointer(c))
        counter?.add()
    }

    /// C = A·op(B) + bias with C written as BF16, rounded to nearest even by the CPU's conversion (AVX512_BF16's
    /// `vcvtneps2bf16`) from the FP32 sums: the codes of the result rounded to BF16, in one write of 2 bytes a value
    /// instead of an FP32 result, a rounding pass over it and its codes written after. The conversion is the BF16
    /// format's round-to-nearest-even except at its edges: a sum beyond BF16's largest becomes an infinity (the
    /// caller checks with `allFinite` and takes the FP32 path for such a tensor, whose rounding raises the flags), and
    /// values below BF16's smallest normal may become zero (the CPU's BF16 arithmetic treats them so throughout).
    /// [m, k]·[k, n] (or ·[n, k]ᵀ), row-major, packed rows.
    public static func runIntoBF16(transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>,
                                   bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<UInt16>) {
        if m == 0 || n == 0 { return }
        let key = Key(batches: [1, 1], shareB: true, transposeA: false, transposeB: transposeB, m: m, n: n, k: k,
                      lda: k, ldb: transposeB ? k : n, ldc: n, aStrides: [m * k, m * k], bStrides: [0, 0], cStrides: [m * n, m * n],
                      beta: 0, bias: bias != nil, bf16Output: true)
        let p = cache.get(key) { MatmulPrimitives(key) }
        p.run(a: a, b: b, bias: bias, c: UnsafeMutableRawPointer(c))
        counter?.add()
    }

    /// Whether no BF16 code in `codes[0..<count]` is an infinity or a NaN (exponent bits all ones), over the compute
    /// threads.
    public static func allFinite(_ codes: UnsafePointer<UInt16>, count: Int) -> Bool {
        let found = Atomic<Bool>(false), base = SendablePointer(UnsafeMutablePointer(mutating: codes))
        parallelChunks(count, minimumPerThread: 1 << 16) { r in
            // four codes a 64-bit word: a code's exponent bits masked (at most 0x7F80) plus 0x0080 carry into its top
            // bit only when they are all ones, never into the next code's
            let p = base.p + r.lowerBound, words = r.count / 4
            var special: UInt64 = 0
            let w = UnsafeRawPointer(p)
            for i in 0..<words {
                let v = w.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) & 0x7F80_7F80_7F80_7F80
                special |= (v &+ 0x0080_0080_0080_0080) & 0x8000_8000_8000_8000
            }
            for j in (words * 4)..<r.count where p[j] & 0x7F80 == 0x7F80 { special = 1 }
            if special != 0 { found.store(true, ordering: .relaxed) }
        }
        return !found.load(ordering: .relaxed)
    }

    struct Key: Hashable, Sendable {
        let batches: [Int]
        let shareB: Bool
        let transposeA, transposeB: Bool
        let m, n, k, lda, ldb, ldc: Int
        let aStrides, bStrides, cStrides: [Int]
        let beta: Float
        let bias: Bool
        /// C in BF16 (`runIntoBF16`), else FP32
        let bf16Output: Bool
    }

    static let cache = DnnlCache<Key, MatmulPrimitives>()

    final class MatmulPrimitives: DnnlExecutable, @unchecked Sendable {
        let main: DnnlPrimitive
        let a, b, c: DnnlMemory
        let bias: DnnlMemory?

        init(_ key: Key) {
            let (m, n, k) = (key.m, key.n, key.k)
            // [batch0, batch1, rows, columns] with batch strides and a row stride; a transposed operand is the same
            // memory read by columns; a shared B has batch dimensions of 1 (broadcast)
            func md(_ batches: [Int], _ batchStrides: [Int], _ rows: Int, _ columns: Int, transposed: Bool, ld: Int,
                    _ dt: dnnl_data_type_t) -> dnnl_memory_desc_t {
                var d = dnnl_memory_desc_t()
                let dims = (batches + [rows, columns]).map { dnnl_dim_t($0) }
                let strides = (batchStrides + (transposed ? [1, ld] : [ld, 1])).map { dnnl_dim_t($0) }
                dnnlCheck(dnnl_memory_desc_init_by_strides(&d, 4, dims, dt, strides), "BF16 GEMM operand \(dims) strides \(strides)")
                return d
            }
            // a broadcast batch dimension gets the stride of a whole operand (any value would do; oneDNN wants it set)
            var ad = md(key.batches, key.aStrides, m, k, transposed: key.transposeA, ld: key.lda, dnnl_bf16)
            let bBatches = key.shareB ? [1, 1] : key.batches
            let bWhole = (key.transposeB ? n : k) * key.ldb
            var bd = md(bBatches, key.shareB ? [bWhole, bWhole] : key.bStrides, k, n, transposed: key.transposeB, ld: key.ldb, dnnl_bf16)
            var cd = md(key.batches, key.cStrides, m, n, transposed: false, ld: key.ldc, key.bf16Output ? dnnl_bf16 : dnnl_f32)
            var desc = dnnl_matmul_desc_t()
            if key.bias {
                var biasMD = dnnlMD([1, 1, 1, n], dnnl_abcd)
                dnnlCheck(dnnl_matmul_desc_init(&desc, &ad, &bd, &biasMD, &cd), "BF16 matmul \(key)")
                bias = DnnlMemory(biasMD, owned: false)
            } else {
                dnnlCheck(dnnl_matmul_desc_init(&desc, &ad, &bd, nil, &cd), "BF16 matmul \(key)")
                bias = nil
            }
            main = DnnlPrimitive(op: &desc, sum: key.beta == 0 ? nil : key.beta, "BF16 matmul")
            a = DnnlMemory(ad, owned: false)
            b = DnnlMemory(bd, owned: false)
            c = DnnlMemory(cd, owned: false)
        }

        func run(a pa: UnsafePointer<UInt16>, b pb: UnsafePointer<UInt16>, bias pbias: UnsafePointer<Float>?, c pc: UnsafeMutableRawPointer) {
            exclusive {
                a.set(pa); b.set(pb); c.set(pc)
                var args = [dnnlArg(DNNL_ARG_SRC, a), dnnlArg(DNNL_ARG_WEIGHTS, b), dnnlArg(DNNL_ARG_DST, c)]
                if let bias, let pbias { bias.set(pbias); args.append(dnnlArg(DNNL_ARG_BIAS, bias)) }
                main.run(stream, args)
                stream.wait()
            }
        }

        /// The implementation oneDNN chose (`brg:avx512_core_bf16`, …).
        var implementation: String { main.implementation }
    }
}

/// A tensor's values as BF16 bits, for the BF16 GEMMs: the storage's own codes when it is packed in BF16, else a
/// copy made by a pass that checks every value is exact in BF16.
public final class BF16Operand: @unchecked Sendable {
    public let bits: UnsafePointer<UInt16>
    private let owned: UnsafeMutablePointer<UInt16>?
    private let keep: Storage

    private init(bits: UnsafePointer<UInt16>, owned: UnsafeMutablePointer<UInt16>?, keep: Storage) {
        self.bits = bits; self.owned = owned; self.keep = keep
    }

    deinit { owned?.deallocate() }

    /// Both operands of a product, or nil unless both are exact in BF16 (neither is converted unless both are in a
    /// Dojo format).
    public static func pair(_ a: Tensor, _ b: Tensor) -> (BF16Operand, BF16Operand)? {
        guard mayBeExact(a), mayBeExact(b) else { return nil }
        guard let x = of(a), let y = of(b) else { return nil }
        return (x, y)
    }

    /// Whether BF16 kernels are on and a Dojo format exact in BF16 made the tensor's values (`format`,
    /// `Storage.packFormat`, `Tensor.bf16Exact`): the pass over an FP32 tensor would almost always find a value that
    /// is not exact.
    static func mayBeExact(_ t: Tensor) -> Bool {
        guard BF16Gemm.isEnabled, !t.isShapeOnly, t.count > 0 else { return false }
        if t.bf16Exact { return true }
        if t.storage.packFormat?.packedBytes != nil { return true }   // BF16 or CFP8 (CFP16's 9-10 bits are not exact in BF16)
        return t.format?.valuesExactInBF16 == true
    }

    /// The BF16 bits of each of a 1-byte format's 256 codes (index: the code), or nil when one of them is not exact in
    /// BF16 (then the values are checked one by one, as for any other storage). CFP8's values all are: its 3 or 2
    /// fraction bits and its exponent range (any bias 0…63) fit in BF16's 7 and 8. Made once per format and bias
    /// (at most 2 × 64 of them), not at every product.
    @_spi(Testing) public static func bf16Table(_ format: NumberFormat) -> [UInt16]? {
        if let known = tables.withLock({ $0[format] }) { return known }
        let table = makeBF16Table(format)
        tables.withLock { $0[format] = table }
        return table
    }
    private static let tables = Mutex<[NumberFormat: [UInt16]?]>([:])

    private static func makeBF16Table(_ format: NumberFormat) -> [UInt16]? {
        let codes = (0..<256).map { UInt8($0) }
        var values = [UInt32](repeating: 0, count: 256), table = [UInt16](repeating: 0, count: 256)
        codes.withUnsafeBytes { c in
            values.withUnsafeMutableBytes { v in
                NumberFormat.Unpacker(format).unpack(c.baseAddress!, count: 256, into: v.baseAddress!.assumingMemoryBound(to: Float.self))
            }
        }
        let exact = values.withUnsafeBufferPointer { v in table.withUnsafeMutableBufferPointer { dojo_pack_bf16(v.baseAddress!, 256, $0.baseAddress!) } }
        return exact == 0 ? nil : table
    }

    /// Nil unless `mayBeExact` and every value is exact in BF16 (the caller then runs its FP32 kernel).
    public static func of(_ t: Tensor) -> BF16Operand? {
        guard mayBeExact(t) else { return nil }
        let s = t.storage
        if let codes = s.bf16Codes { return BF16Operand(bits: codes, owned: nil, keep: s) }
        let n = t.count
        let out = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
        let dst = SendablePointer(out)
        if let (codes, format) = s.codesAndFormat, format.packedBytes == 1, let table = bf16Table(format) {
            // 1-byte codes (CFP8), whether or not the FP32 values are in memory too: each code's BF16 bits looked up,
            // one byte read a value instead of 4 (or a decode to FP32 and a pass over that)
            let from = SendableRaw(codes)
            table.withUnsafeBufferPointer { lut in
                let l = SendableRaw(UnsafeRawPointer(lut.baseAddress!))
                parallelChunks(n, minimumPerThread: 1 << 16) { r in
                    let c = from.p.assumingMemoryBound(to: UInt8.self), bits = l.p.assumingMemoryBound(to: UInt16.self)
                    // CDojoKernels' loop: 32 codes at a time with AVX-512BW (vpermi2w over the table's quarters), 6× the
                    // scalar loop's rate on a ViT-Tiny-sized tensor in cache (0.08 against 0.48-0.57 ms for 2.46 M codes)
                    dojo_lookup_u8_u16(c + r.lowerBound, r.count, bits, dst.p + r.lowerBound)
                }
            }
            return BF16Operand(bits: UnsafePointer(out), owned: out, keep: s)
        }
        let inexact = Atomic<Bool>(false)
        if let packed = s.packedValues {
            // held as codes of another packed format whose codes are not all exact in BF16 (none today: CFP8's take the
            // table above): decoded span by span in cache, without the FP32 values back
            parallelChunks(n, minimumPerThread: 1 << 15) { r in
                let span = 2048
                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: span)
                defer { tmp.deallocate() }
                let bits = UnsafeMutableRawPointer(tmp).assumingMemoryBound(to: UInt32.self)
                var i = r.lowerBound
                while i < r.upperBound {
                    let c = min(span, r.upperBound - i)
                    packed.read(i, count: c, into: tmp)
                    if dojo_pack_bf16(bits, c, dst.p + i) == 0 { inexact.store(true, ordering: .relaxed) }
                    i += c
                }
            }
        } else {
            let src = SendablePointer(UnsafeMutableRawPointer(s.pointer).assumingMemoryBound(to: UInt32.self))
            parallelChunks(n, minimumPerThread: 1 << 16) { r in
                if dojo_pack_bf16(src.p + r.lowerBound, r.count, dst.p + r.lowerBound) == 0 { inexact.store(true, ordering: .relaxed) }
            }
        }
        if inexact.load(ordering: .relaxed) { out.deallocate(); return nil }
        // a BF16 storage's bits are its codes: kept as them, for the next product that reads it (a weight's forward and
        // backward, an activation's forward product and its weight gradient) and for the tape's packing, which then
        // only frees the FP32 values
        if s.packFormat?.format == .bf16, s.adoptCodesIfNone(UnsafeMutableRawPointer(out)) {
            return BF16Operand(bits: UnsafePointer(out), owned: nil, keep: s)
        }
        return BF16Operand(bits: UnsafePointer(out), owned: out, keep: s)
    }
}
