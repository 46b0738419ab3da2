import CDojoKernels
import DojoGraph
import DojoNN
import DojoNumerics
import DojoTensor
import Foundation
import Testing

/// Issue 14 §2: rounding fused into the kernel that writes a tensor (batch norm's output, batch norm's and an
/// elementwise op's input gradient) gives bit for bit what a rounding pass after the kernel gives, for BF16 (with
/// the inline nearest-even path and values it must hand to the full rounding) and for CFP8 with a fixed bias.
@Suite struct FusedRoundingTests {
    /// A rounding to `nf` that can run span by span (`fused`) or only as a pass of its own.
    static func rounding(_ nf: NumberFormat, dtype: DType, fused: Bool) -> TensorRounding {
        let span: @Sendable (UnsafeMutablePointer<Float>, Int, Int) -> (UInt8, Float) = { p, n, _ in
            (nf.roundInPlace(UnsafeMutableBufferPointer(start: p, count: n), threads: 1).rawValue, 0)
        }
        return TensorRounding(dtype: dtype, pass: { src, buf in
            if let src { buf.baseAddress!.update(from: src, count: buf.count) }
            _ = nf.roundInPlace(buf, threads: 1)
            return nf
        }, begin: { fused ? RoundingTask(bf16NearestEven: nf.format == .bf16, numberFormat: nf, span: span, done: { _ in }) : nil })
    }

    static func values(_ shape: [Int], seed: UInt64) -> Tensor {
        var g = RandomSource(seed: seed)
        let t = Tensor.randomNormal(shape, generator: &g)
        // values the inline BF16 path must leave to the full rounding: subnormals, near the largest, a tie
        if t.count > 40 { t.pointer[3] = 1e-40; t.pointer[17] = 3.3e38; t.pointer[40] = Float(bitPattern: 0x3F80_8000) }
        return t
    }

    static func bits(_ t: Tensor) -> [UInt32] { t.array.map(\.bitPattern) }

    @Test(arguments: [Format.bf16, .cfp8_152])
    func batchNormAndReLUFusedEqualAPassAfter(_ f: Format) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 12)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_152
        func run(fused: Bool) -> (y: [UInt32], dx: [UInt32], dr: [UInt32], format: DType?) {
            let x = Self.values([8, 3, 6, 6], seed: 1).requiringGrad()
            let gamma = Self.values([3], seed: 2).requiringGrad(), beta = Self.values([3], seed: 3).requiringGrad()
            let w = Self.values([8, 3, 6, 6], seed: 4)
            let r = Self.rounding(nf, dtype: dtype, fused: fused)
            let tape = Tape()
            var y = Tensor(zeros: [1])
            var format: DType?
            let loss = tape.record { () -> Tensor in
                // x rounded as a layer's output is (its gradient rounded by r), then batch norm with its output rounded
                let xr = x.rounded(to: dtype, r.pass, gradient: r)
                let out = xr.batchNorm(gamma: gamma, beta: beta, runningMean: Tensor(zeros: [3]),
                                       runningVariance: Tensor(repeating: 1, shape: [3]), training: true, roundOutput: fused ? r : nil)
                format = out.format
                y = out.rounded(to: dtype, alreadyRounded: fused, r.pass, gradient: r)
                // an elementwise op whose input gradient is rounded
                return (y.relu() * w).sum()
            }
            let g = tape.backward(from: loss)
            let dr = Self.values([8, 3, 6, 6], seed: 5).requiringGrad()
            let tape2 = Tape()
            let l2 = tape2.record { (dr.rounded(to: dtype, r.pass, gradient: r).negated() * w).sum() }
            return (Self.bits(y), Self.bits(g[x]!), Self.bits(tape2.backward(from: l2)[dr]!), format)
        }
        let fused = run(fused: true), pass = run(fused: false)
        #expect(fused.format == dtype && pass.format == nil)
        #expect(fused.y == pass.y)
        #expect(fused.dx == pass.dx)
        #expect(fused.dr == pass.dr)
        // and the values are in the format: rounding them again changes nothing
        let again = fused.dx.map { Float(bitPattern: $0) }
        var copy = again
        copy.withUnsafeMutableBufferPointer { _ = nf.roundInPlace($0, threads: 1) }
        #expect(copy.map(\.bitPattern) == fused.dx)
    }

    /// A linear layer's output rounded block by block of rows as its GEMM makes it (blocks of 64 rows at least, so
    /// 300 rows make several): every value is in the format (rounding it again changes nothing) and is the rounding
    /// of the product (within half a unit in the last place of the format; the blocks' GEMMs may sum in another order
    /// than one GEMM over all rows, so a value on a rounding boundary may go the other way), as a pass after one GEMM.
    @Test(arguments: [Format.bf16, .cfp8_143])
    func linearRoundedByBlocksIsAPassAfterEachBlock(_ f: Format) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 10)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_143
        var g = RandomSource(seed: 6)
        let x = Tensor.randomNormal([300, 40], generator: &g), w = Tensor.randomNormal([5000, 40], generator: &g)
        let b = Tensor.randomNormal([5000], generator: &g)
        let fusedOut = x.linear(weight: w, bias: b, roundOutput: Self.rounding(nf, dtype: dtype, fused: true))
        let plain = x.linear(weight: w, bias: b).array
        let r = Self.rounding(nf, dtype: dtype, fused: false)
        let passed = Tensor(plain, shape: [300, 5000]).rounded(to: dtype, inPlace: true, r.pass).array
        #expect(fusedOut.format == dtype && fusedOut.storage.packFormat == nf)
        let fused = fusedOut.array
        var again = fused
        again.withUnsafeMutableBufferPointer { _ = nf.roundInPlace($0, threads: 1) }
        #expect(again.map(\.bitPattern) == fused.map(\.bitPattern), "a value rounded by blocks is not in the format")
        let halfUlp: Float = f == .bf16 ? 1.0 / 256 : 1.0 / 16
        // in the normal range (beyond the largest, values clamp; below the smallest normal, the format's own denormal rule)
        let far = zip(fused, plain).filter { abs($1) <= nf.maxMagnitude && abs($1) >= nf.minNormal && abs($0 - $1) > halfUlp * abs($1) * 1.0001 }.count
        #expect(far == 0, "\(far) values rounded by blocks are further than half a unit from the product")
        let same = zip(fused, passed).filter { $0.bitPattern == $1.bitPattern }.count
        #expect(same >= fused.count * 99 / 100, "only \(same) of \(fused.count) values equal a pass after one GEMM")
        #expect(fused != plain, "the rounding changed no value")
    }

    /// A linear layer's input gradient g·W rounded block by block as its GEMM makes it, when the input is a rounded
    /// layer output (here seen through a reshape, as a layer on [batch, tokens, features] sees it): every value is in
    /// the format, and is what a rounding pass after one GEMM gives (up to a value on a rounding boundary: the blocks'
    /// GEMMs may sum in another order).
    @Test(arguments: [Format.bf16, .cfp8_152])
    func linearInputGradientRoundedByBlocks(_ f: Format) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 14)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_152
        func run(fused: Bool) -> [Float] {
            var g = RandomSource(seed: 7)
            let x = Tensor.randomNormal([3, 200, 48], generator: &g).requiringGrad()
            let w = Tensor.randomNormal([700, 48], generator: &g).requiringGrad(), b = Tensor.randomNormal([700], generator: &g)
            let upstream = Tensor.randomNormal([600, 700], generator: &g)
            let r = Self.rounding(nf, dtype: dtype, fused: fused)
            let tape = Tape()
            let loss = tape.record { () -> Tensor in
                let xr = x.rounded(to: dtype, r.pass, gradient: r)
                return (xr.reshaped([-1, 48]).linear(weight: w, bias: b) * upstream).sum()
            }
            return tape.backward(from: loss)[x]!.array
        }
        let fused = run(fused: true), pass = run(fused: false)
        var again = fused
        again.withUnsafeMutableBufferPointer { _ = nf.roundInPlace($0, threads: 1) }
        #expect(again.map(\.bitPattern) == fused.map(\.bitPattern), "a gradient rounded by blocks is not in the format")
        let same = zip(fused, pass).filter { $0.bitPattern == $1.bitPattern }.count
        #expect(same >= fused.count * 99 / 100, "only \(same) of \(fused.count) values equal a pass after one GEMM")
    }

    /// A convolution's output rounded as the reorder from oneDNN's channel-blocked layout into NCHW writes it: the
    /// same bits as the convolution then a rounding pass, in the right places (16 output channels: blocks of 8 or 16;
    /// 12: no whole blocks, so the kernel leaves the rounding to the caller and says so).
    @Test(arguments: [Format.bf16, .cfp8_143])
    func convolutionOutputRoundedAsItIsReordered(_ f: Format) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 9)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_143
        for channels in [16, 12] {
            var g = RandomSource(seed: 8)
            let x = Tensor.randomNormal([5, 3, 11, 9], generator: &g), w = Tensor.randomNormal([channels, 3, 3, 3], generator: &g)
            let b = Tensor.randomNormal([channels], generator: &g)
            let fused = x.conv2d(weight: w, bias: b, padding: (1, 1), roundOutput: Self.rounding(nf, dtype: dtype, fused: true))
            let plain = x.conv2d(weight: w, bias: b, padding: (1, 1))
            let r = Self.rounding(nf, dtype: dtype, fused: false)
            let passed = Tensor(plain.array, shape: plain.shape).rounded(to: dtype, inPlace: true, r.pass).array
            // oneDNN's AVX2 and AVX-512 convolutions write channel blocks of 8 or 16: the fused path must run there
            if channels == 16 && dojo_kernels_best_level() == 1 { #expect(fused.format == dtype, "the reorder did not round") }
            if fused.format == dtype {
                #expect(channels == 16, "no whole channel blocks, yet the kernel says it rounded")
                #expect(fused.storage.packFormat == nf)
                #expect(fused.array.map(\.bitPattern) == passed.map(\.bitPattern), "\(channels) channels")
                // recorded for training, the kernel writes the codes in place of the FP32 values (the output is
                // larger than `Storage.packMinimum`), and the values read back from those codes are the same
                let tape = Tape()
                let recorded = tape.record {
                    x.conv2d(weight: w, bias: b, padding: (1, 1), roundOutput: Self.rounding(nf, dtype: dtype, fused: true))
                }
                #expect(recorded.count >= Storage.packMinimum)
                #expect(recorded.storage.isPacked && recorded.storage.bytesHeld == recorded.count * nf.packedBytes!, "codes only")
                #expect(recorded.format == dtype && recorded.storage.packFormat == nf)
                #expect(recorded.array.map(\.bitPattern) == passed.map(\.bitPattern))
                // a smaller output gets both: the FP32 values and their codes (packing then only frees the FP32 buffer)
                let small = Tensor.randomNormal([1, 3, 11, 9], generator: &g)
                let smallOut = Tape().record {
                    small.conv2d(weight: w, bias: b, padding: (1, 1), roundOutput: Self.rounding(nf, dtype: dtype, fused: true))
                }
                #expect(smallOut.count < Storage.packMinimum && smallOut.storage.bytesHeld == smallOut.count * (4 + nf.packedBytes!))
            } else {
                #expect(fused.array.map(\.bitPattern) == plain.array.map(\.bitPattern), "unrounded output differs")
            }
        }
    }

    /// GELU (the engine's own loop): its output rounded block by block as the loop writes it, and its input's gradient
    /// as backward writes it, with the input kept packed (it is what backward reads) and decoded a block at a time,
    /// give bit for bit a rounding pass after each with nothing packed.
    /// With `specials`, a few values near BF16's largest in the middle of the tensor, which BF16's inline rounding
    /// leaves to the full one, block by block, with the same bits.
    @Test(arguments: [Format.bf16, .cfp8_152], [false, true])
    func geluFusedEqualsAPassAfter(_ f: Format, _ specials: Bool) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 12)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_152
        func run(fused: Bool) -> (y: [UInt32], dx: [UInt32], format: DType?, packed: Bool) {
            Tape.$packsByDefault.withValue(fused) {
                let x = Self.values([3, 5_000], seed: 9).requiringGrad(), w = Self.values([3, 5_000], seed: 10)
                if specials && f == .bf16 { for i in [4_100, 9_999, 12_345] { x.pointer[i] = 3.395e38 } }
                let r = Self.rounding(nf, dtype: dtype, fused: fused)
                let tape = Tape()
                var y = Tensor(zeros: [1]), format: DType?, packed = false
                let loss = tape.record { () -> Tensor in
                    let xr = x.rounded(to: dtype, r.pass, gradient: r)
                    let out = xr.gelu(roundOutput: fused ? r : nil)
                    format = out.format
                    packed = xr.storage.isPacked
                    y = out.rounded(to: dtype, inPlace: !fused, alreadyRounded: fused, r.pass, gradient: r)
                    return (y * w).sum()
                }
                return (Self.bits(y), Self.bits(tape.backward(from: loss)[x]!), format, packed)
            }
        }
        let fused = run(fused: true), pass = run(fused: false)
        #expect(fused.format == dtype && pass.format == nil)
        #expect(fused.packed && !pass.packed, "GELU's input is what its backward reads: kept packed")
        #expect(fused.y == pass.y)
        #expect(fused.dx == pass.dx)
    }

    /// Layer norm's output rounded a block of rows at a time as the kernel writes it: bit for bit a pass after it.
    @Test(arguments: [Format.bf16, .cfp8_143])
    func layerNormFusedEqualsAPassAfter(_ f: Format) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 11)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_143
        let x = Self.values([37, 100], seed: 11), gamma = Self.values([100], seed: 12), beta = Self.values([100], seed: 13)
        let fused = x.layerNorm(gamma: gamma, beta: beta, roundOutput: Self.rounding(nf, dtype: dtype, fused: true))
        let plain = x.layerNorm(gamma: gamma, beta: beta)
        let passed = plain.rounded(to: dtype, inPlace: true, Self.rounding(nf, dtype: dtype, fused: false).pass)
        #expect(fused.format == dtype && fused.storage.packFormat == nf)
        #expect(Self.bits(fused) == Self.bits(passed))
        #expect(Self.bits(fused) != Self.bits(x.layerNorm(gamma: gamma, beta: beta)), "the rounding changed no value")
    }

    /// In training, a ReLU whose input is in a Dojo format writes its output as codes only (1 or 2 bytes a value, no
    /// FP32 buffer), max pooling pools those codes into an output held as codes only, and the next layer reads them;
    /// the values, and the gradients through both (ReLU's derivative read from the codes), are bit for bit those of
    /// the FP32 loops on the same values (a tape that does not pack runs them). Sizes above `Storage.packMinimum`;
    /// 36 columns pool to 18 outputs a row (the 16-wide vector loop and its overlapping last block).
    @Test(arguments: [Format.bf16, .cfp8_143, .cfp8_152])
    func reluAndMaxPoolingWorkOnCodes(_ f: Format) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 9)
        let dtype: DType = f == .bf16 ? .bf16 : (f == .cfp8_143 ? .cfp8_143 : .cfp8_152)
        let bytes = try #require(nf.packedBytes)
        func run(packs: Bool) -> (r: [UInt32], p: [UInt32], dx: [UInt32], held: (Int, Int), packed: Bool) {
            let x = Self.values([4, 8, 32, 36], seed: 31).requiringGrad()
            // ties inside windows, and −0 against +0 (the first of equals wins, +0 above −0)
            x.pointer[0] = 0.5; x.pointer[1] = 0.5; x.pointer[36] = 0.5; x.pointer[37] = 0.25
            x.pointer[2] = -0.0; x.pointer[3] = 0; x.pointer[38] = -0.0; x.pointer[39] = -0.0
            x.pointer[100] = -3; x.pointer[101] = -2; x.pointer[136] = -5; x.pointer[137] = -2
            let w = Self.values([4, 8, 16, 18], seed: 32)
            let r = Self.rounding(nf, dtype: dtype, fused: true)
            let tape = Tape()
            tape.packsSavedValues = packs
            var relu = Tensor(zeros: [1]), pooled = relu
            let loss = tape.record { () -> Tensor in
                let xr = x.rounded(to: dtype, r.pass, gradient: r)
                relu = xr.relu()
                pooled = relu.maxPool2d(kernel: (2, 2))
                return (pooled * w).sum()
            }
            let held = (relu.storage.bytesHeld, pooled.storage.bytesHeld), packed = relu.storage.isPacked && pooled.storage.isPacked
            let g = tape.backward(from: loss)
            return (Self.bits(relu), Self.bits(pooled), Self.bits(g[x]!), held, packed)
        }
        let codes = run(packs: true), plain = run(packs: false)
        #expect(codes.packed && !plain.packed, "ReLU's and the pooling's outputs held as codes only")
        #expect(codes.held == (4 * 8 * 32 * 36 * bytes, 4 * 8 * 16 * 18 * bytes))
        func differing(_ a: [UInt32], _ b: [UInt32]) -> String {
            let d = a.indices.filter { a[$0] != b[$0] }
            return d.isEmpty ? "" : "\(d.count) differ, first at \(d[0]): \(Float(bitPattern: a[d[0]])) for \(Float(bitPattern: b[d[0]]))"
        }
        #expect(differing(codes.r, plain.r) == "", "ReLU")
        #expect(differing(codes.p, plain.p) == "", "max pooling")
        #expect(differing(codes.dx, plain.dx) == "", "the input's gradient")
        #expect(plain.p.contains(Float(0).bitPattern) && plain.r.contains(Float(-0.0).bitPattern) == false)
    }

    /// A CNN block in training (convolution, batch norm, ReLU, max pooling, a residual add) in a Dojo format: the
    /// convolution and batch norm write their rounded outputs as codes only, batch norm and the add read their inputs
    /// from those codes, and the loss and every gradient (input, weights, bias, γ, β) are bit for bit those of the same block on FP32 buffers
    /// (a tape that does not pack).
    @Test(arguments: [Format.bf16, .cfp8_143])
    func aConvolutionBlockRunsOnCodes(_ f: Format) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 9)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_143
        func run(packs: Bool) -> (loss: UInt32, grads: [[UInt32]], codesOnly: [Bool]) {
            let x = Self.values([4, 3, 20, 24], seed: 41).requiringGrad()
            let w = Self.values([16, 3, 3, 3], seed: 42).requiringGrad(), b = Self.values([16], seed: 43).requiringGrad()
            let gamma = Self.values([16], seed: 44).requiringGrad(), beta = Self.values([16], seed: 45).requiringGrad()
            let weights = Self.values([4, 16, 10, 12], seed: 46)
            let r = Self.rounding(nf, dtype: dtype, fused: true)
            let tape = Tape()
            tape.packsSavedValues = packs
            var codesOnly: [Bool] = []
            let loss = tape.record { () -> Tensor in
                let wr = w.rounded(to: dtype, r.pass)
                let y = x.conv2d(weight: wr, bias: b, padding: (1, 1), roundOutput: r)
                let yr = y.rounded(to: dtype, alreadyRounded: y.format == dtype, r.pass, gradient: r)
                let z = yr.batchNorm(gamma: gamma, beta: beta, runningMean: Tensor(zeros: [16]),
                                     runningVariance: Tensor(repeating: 1, shape: [16]), training: true, roundOutput: r)
                let zr = z.rounded(to: dtype, alreadyRounded: z.format == dtype, r.pass, gradient: r)
                codesOnly = [y.storage.isPacked, z.storage.isPacked]
                // and a residual add of two outputs held as codes (read a block at a time from them)
                let residual = (zr + yr) * Self.values([4, 16, 20, 24], seed: 47)
                return (zr.relu().maxPool2d(kernel: (2, 2)) * weights).sum() + residual.sum()
            }
            let g = tape.backward(from: loss)
            return (loss.item.bitPattern, [x, w, b, gamma, beta].map { Self.bits(g[$0]!) }, codesOnly)
        }
        let codes = run(packs: true), plain = run(packs: false)
        #expect(codes.codesOnly == [true, true] && plain.codesOnly == [false, false])
        #expect(codes.loss == plain.loss)
        for (i, name) in ["input", "weight", "bias", "gamma", "beta"].enumerated() {
            let d = codes.grads[i].indices.filter { codes.grads[i][$0] != plain.grads[i][$0] }
            #expect(d.isEmpty, "\(name)'s gradient: \(d.count) of \(codes.grads[i].count) values differ")
        }
    }

    /// Attention's softmax rounds its probabilities as it writes their rows (in training, with their codes): the same
    /// bits as the softmax and a rounding pass after it, causal and not.
    @Test(arguments: [Format.bf16, .cfp8_143])
    func softmaxRoundsItsRowsAsItWritesThem(_ f: Format) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 4)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_143
        let r = Self.rounding(nf, dtype: dtype, fused: true)
        let x = Self.values([24, 50, 50], seed: 51)
        for causal in [false, true] {
            var p: Tensor? = nil
            _ = Tape().record { () -> Tensor in
                p = x.softmax(causal: causal, roundOutput: r)
                return p!.sum()
            }
            let out = try #require(p)
            #expect(out.format == dtype && out.storage.codesAndFormat != nil, "rounded and coded as written")
            let reference = x.softmax(causal: causal).rounded(to: dtype, r.pass)
            #expect(Self.bits(out) == Self.bits(reference), "causal \(causal)")
        }
    }

    /// In training, layer norm and GELU write their rounded output's codes as they write it (the storage holds the
    /// FP32 values and the codes: packing it then frees the FP32 values only), and the codes decode to those values.
    @Test(arguments: [Format.bf16, .cfp8_143])
    func layerNormAndGELUWriteTheirCodesWhenTraining(_ f: Format) throws {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 11)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_143
        let bytes = try #require(nf.packedBytes)
        let x = Self.values([64, 100], seed: 21), gamma = Self.values([100], seed: 22), beta = Self.values([100], seed: 23)
        let r = Self.rounding(nf, dtype: dtype, fused: true)
        var outputs: [Tensor] = []
        _ = Tape().record { () -> Tensor in
            let y = x.layerNorm(gamma: gamma, beta: beta, roundOutput: r)
            let z = x.gelu(roundOutput: r)
            outputs = [y, z]
            return y.sum()
        }
        for t in outputs {
            let values = Self.bits(t)
            // (on BF16 kernels layer norm writes its codes only, and the sum brought the FP32 values back from them:
            // `BF16ProductCodesTests.layerNormWritesCodesOnlyInTraining`)
            #expect(t.storage.bytesHeld == t.count * (4 + bytes), "FP32 values and \(bytes)-byte codes")
            #expect(t.storage.packAway() && t.storage.isPacked)
            #expect(Self.bits(t) == values)
        }
        // outside a tape that packs, no codes are written
        let plain = x.layerNorm(gamma: gamma, beta: beta, roundOutput: r)
        #expect(plain.storage.bytesHeld == plain.count * 4)
    }
}

/// A layer's product on BF16 kernels, its output rounded in training: held as the codes only (written by the
/// rounding from the FP32 product, or by the GEMM itself for BF16), so the next product reads them as they are and
/// no FP32 values are kept; the codes decode to the rounded values, and the values are those of the product rounded
/// in a pass of its own.
@Suite(.enabled(if: BF16Gemm.isAvailable)) struct BF16ProductCodesTests {
    /// The format's type, its bytes a code, and a rounding to it that runs span by span (CFP8 at bias 9).
    static func format(_ f: Format) throws -> (dtype: DType, bytes: Int, rounding: TensorRounding) {
        let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 9)
        let dtype: DType = f == .bf16 ? .bf16 : .cfp8_143
        return (dtype, try #require(nf.packedBytes), FusedRoundingTests.rounding(nf, dtype: dtype, fused: true))
    }

    @Test(arguments: [Format.bf16, .cfp8_143])
    func aLayersRoundedOutputCarriesItsCodes(_ f: Format) throws {
        let (dtype, bytes, r) = try Self.format(f)
        let x = FusedRoundingTests.values([300, 64], seed: 31).rounded(to: dtype, r.pass)
        let w = FusedRoundingTests.values([48, 64], seed: 32).rounded(to: dtype, r.pass)
        let b = FusedRoundingTests.values([48], seed: 33)
        var y: Tensor? = nil, held = 0, packed = false
        // (the FP32 product rounded into codes: a BF16 output written by the product itself is the next test's)
        _ = Engine.$bf16Outputs.withValue(false) {
            Tape().record { () -> Tensor in
                let out = x.linear(weight: w, bias: b, roundOutput: r)
                y = out
                held = out.storage.bytesHeld; packed = out.storage.isPacked
                return out.sum()
            }
        }
        let out = try #require(y)
        #expect(out.format == dtype)
        // codes only: the FP32 product read once by the rounding, never rewritten, and freed (the sum decoded them)
        #expect(held == out.count * bytes && packed, "\(bytes)-byte codes only")
        let values = FusedRoundingTests.bits(out)
        // the same values as the product rounded in a pass of its own
        let reference = x.matmul(w, transposeB: true) + b
        let rounded = reference.rounded(to: dtype, r.pass)
        #expect(FusedRoundingTests.bits(rounded) == values)
        // outside a tape, no codes
        let plain = x.linear(weight: w, bias: b, roundOutput: r)
        #expect(plain.storage.bytesHeld == plain.count * 4)
    }

    /// In training on BF16 kernels, a linear layer's output rounded to BF16 is written by its GEMM as BF16 codes only
    /// (2 bytes a value, no FP32 values): the same values, and the same gradients, as the FP32 output rounded after
    /// the product (`Engine.bf16Outputs` off). A sum beyond BF16's range takes the FP32 path, whose rounding raises
    /// the overflow flag.
    @Test(.enabled(if: BF16Gemm.isEnabled, "needs BF16 kernels (AVX512_BF16 or AMX)"))
    func aLinearOutputRoundedToBF16IsWrittenAsCodesByItsProduct() throws {
        let (dtype, _, r) = try Self.format(.bf16)
        var g = RandomSource(seed: 51)
        let x = Tensor.randomNormal([300, 64], generator: &g).rounded(to: dtype, r.pass)
        let w = Tensor.randomNormal([48, 64], generator: &g).rounded(to: dtype, r.pass)
        let b = Tensor.randomNormal([48], generator: &g)
        let up = Tensor.randomNormal([300, 48], generator: &g)
        func run(codes: Bool, x: Tensor) -> (y: [UInt32], held: Int, grads: [[UInt32]]) {
            Engine.$bf16Outputs.withValue(codes) {
                let xs = x.requiringGrad(), ws = w.requiringGrad(), bs = b.requiringGrad()
                var y: Tensor? = nil
                let tape = Tape()
                var held = 0
                let loss = tape.record { () -> Tensor in
                    let out = xs.linear(weight: ws, bias: bs, roundOutput: r)
                    y = out
                    held = out.storage.bytesHeld
                    return (out * up).sum()
                }
                let grads = tape.backward(from: loss)
                return (FusedRoundingTests.bits(y!), held, [xs, ws, bs].map { FusedRoundingTests.bits(grads[$0]!) })
            }
        }
        let on = run(codes: true, x: x), off = run(codes: false, x: x)
        #expect(on.held == 300 * 48 * 2 && off.held == 300 * 48 * 2, "BF16 codes only, written by the GEMM or the rounding")
        #expect(on.y == off.y)
        #expect(on.grads == off.grads)
        // the same values as the product rounded in a pass of its own
        let reference = (x.matmul(w, transposeB: true) + b).rounded(to: dtype, r.pass)
        #expect(on.y == FusedRoundingTests.bits(reference))
        // sums beyond BF16's largest, infinite: the FP32 output and the format's rounding (which raises the overflow
        // flag), as with the GEMM's codes off
        var huge = x.array
        huge[5] = 3e38
        let xb = Tensor(huge, shape: x.shape).rounded(to: dtype, r.pass)
        let overflowing = run(codes: true, x: xb)
        #expect(overflowing.y.contains { Float(bitPattern: $0).isInfinite })
        #expect(overflowing.y == run(codes: false, x: xb).y)
    }

    /// A layer output's gradient rounded to the format in the backward pass writes its codes as it rounds them (in
    /// place, or copied from a gradient something else still reads), and the layer's BF16 products read them: the
    /// weight, bias and input gradients are bit for bit those of the same step with the codes off
    /// (`Engine.gradientCodes`), which converts the FP32 gradient for each product; the codes decode to the gradient.
    @Test(arguments: [Format.bf16, .cfp8_143])
    func aRoundedGradientCarriesItsCodesToTheProducts(_ f: Format) throws {
        let (dtype, _, r) = try Self.format(f)
        func run(codes: Bool, shared: Bool) -> [[UInt32]] {
            Engine.$gradientCodes.withValue(codes) {
                let x = FusedRoundingTests.values([300, 64], seed: 41).rounded(to: dtype, r.pass).requiringGrad()
                let w = FusedRoundingTests.values([48, 64], seed: 42).rounded(to: dtype, r.pass).requiringGrad()
                let b = FusedRoundingTests.values([48], seed: 43).requiringGrad()
                let up = FusedRoundingTests.values([300, 48], seed: 44)
                let tape = Tape()
                let loss = tape.record { () -> Tensor in
                    let y = x.linear(weight: w, bias: b).rounded(to: dtype, inPlace: true, r.pass, gradient: r)
                    // `shared`: the output read twice, so its gradient is a sum nothing else may write over
                    let z = shared ? y * up + y : y * up
                    return z.sum()
                }
                let grads = tape.backward(from: loss)
                return [x, w, b].map { FusedRoundingTests.bits(grads[$0]!) }
            }
        }
        for shared in [false, true] {
            let on = run(codes: true, shared: shared), off = run(codes: false, shared: shared)
            #expect(on == off, "shared: \(shared)")
        }
        // the gradient itself: in the format, its codes beside its values, decoding to them
        try Engine.$gradientCodes.withValue(true) {
            let g = FusedRoundingTests.values([300, 48], seed: 45).requiringGrad()
            let tape = Tape()
            let loss = tape.record { () -> Tensor in
                let y = g.rounded(to: dtype, r.pass, gradient: r)
                return (y * FusedRoundingTests.values([300, 48], seed: 46)).sum()
            }
            let d = try #require(tape.backward(from: loss)[g])
            // BF16 codes in either format (a CFP8 gradient's values are exact in BF16): the products read them as they are
            #expect(d.storage.bytesHeld == d.count * (4 + 2), "FP32 values and 2-byte codes")
            #expect(d.storage.bf16Codes != nil)
            let values = FusedRoundingTests.bits(d)
            #expect(d.storage.packAway() && d.storage.isPacked)
            #expect(FusedRoundingTests.bits(d) == values)
        }
    }

    /// A gradient rounded by the kernel that writes it (GELU's backward loop for GELU's input, a Linear's input-gradient
    /// product for its input) gets BF16 codes written span by span as it is rounded, when BF16 products read it
    /// (`Tensor.fusingGradientRounding(codes:)`): every gradient is the same bit for bit with and without the codes
    /// (`Engine.gradientCodes`), and the rounded gradient carries them (CFP8's too: its values are exact in BF16).
    @Test(arguments: [Format.bf16, .cfp8_143])
    func gradientsRoundedInTheirKernelsCarryBF16Codes(_ f: Format) throws {
        let (dtype, _, r) = try Self.format(f)
        func run(codes: Bool) -> (grads: [[UInt32]], coded: [Bool]) {
            Engine.$gradientCodes.withValue(codes) {
                let x = FusedRoundingTests.values([300, 64], seed: 51).rounded(to: dtype, r.pass).requiringGrad()
                let w1 = FusedRoundingTests.values([96, 64], seed: 52).rounded(to: dtype, r.pass).requiringGrad()
                let b1 = FusedRoundingTests.values([96], seed: 53).requiringGrad()
                let w2 = FusedRoundingTests.values([48, 96], seed: 54).rounded(to: dtype, r.pass).requiringGrad()
                let b2 = FusedRoundingTests.values([48], seed: 55).requiringGrad()
                let up = FusedRoundingTests.values([300, 48], seed: 56)
                var h: Tensor? = nil, a: Tensor? = nil
                let tape = Tape()
                let loss = tape.record { () -> Tensor in
                    // GELU's input (its gradient rounded in GELU's backward loop) and fc2's (rounded after fc2's product)
                    h = x.linear(weight: w1, bias: b1).rounded(to: dtype, inPlace: true, r.pass, gradient: r)
                    a = h!.gelu().rounded(to: dtype, inPlace: true, r.pass, gradient: r)
                    // fc2's output gradient rounded too (a BF16 operand), as a layer's is
                    return (a!.linear(weight: w2, bias: b2).rounded(to: dtype, inPlace: true, r.pass, gradient: r) * up).sum()
                }
                var coded: [Bool] = []
                let grads = tape.backward(from: loss, watching: [a!, h!]) { _, g, _ in coded.append(g.storage.bf16Codes != nil) }
                return ([x, w1, b1, w2, b2].map { FusedRoundingTests.bits(grads[$0]!) }, coded)
            }
        }
        let on = run(codes: true), off = run(codes: false)
        #expect(on.grads == off.grads)
        #expect(off.coded == [false, false])
        if BF16Gemm.isEnabled { #expect(on.coded == [true, true], "the gradients of fc2's and GELU's inputs carry BF16 codes") }
    }

    /// GELU's output in training on BF16 kernels is written as codes only (nothing in training reads its FP32 values:
    /// the next layer's products read the codes), and decodes to the values the FP32 loop and its rounding give; the
    /// next layer's product reads it without decoding it.
    @Test(arguments: [Format.bf16, .cfp8_143])
    func geluWritesCodesOnlyInTraining(_ f: Format) throws {
        let (dtype, bytes, r) = try Self.format(f)
        let x = FusedRoundingTests.values([64, 100], seed: 41)
        let w = FusedRoundingTests.values([24, 100], seed: 42).rounded(to: dtype, r.pass)
        let b = FusedRoundingTests.values([24], seed: 43)
        var states: [Bool] = [], held = 0, product: [UInt32] = []
        var z: Tensor? = nil
        _ = Tape().record { () -> Tensor in
            let out = x.gelu(roundOutput: r)
            states.append(out.storage.isPacked)
            held = out.storage.bytesHeld
            let y = out.linear(weight: w, bias: b)
            states.append(out.storage.isPacked)   // the product read the codes as they are
            product = FusedRoundingTests.bits(y)
            z = out
            return y.sum()
        }
        #expect(states == [true, true])
        #expect(held == 6400 * bytes)
        // outside a tape: the FP32 loop, rounded as it writes
        let plain = x.gelu(roundOutput: r)
        #expect(plain.format == dtype && !plain.storage.isPacked)
        #expect(FusedRoundingTests.bits(try #require(z)) == FusedRoundingTests.bits(plain))
        #expect(product == FusedRoundingTests.bits(plain.linear(weight: w, bias: b)))
    }
}

extension BF16ProductCodesTests {
    /// Layer normalisation's output in training on BF16 kernels is written as codes only (nothing in training reads its
    /// FP32 values: the next layer's products read the codes, its backward reads the input); it decodes to the values
    /// the FP32 path and its rounding give, the next product reads it without decoding it, and the input, γ and β
    /// gradients are those of the FP32 path.
    @Test(arguments: [Format.bf16, .cfp8_143])
    func layerNormWritesCodesOnlyInTraining(_ f: Format) throws {
        let (dtype, bytes, r) = try Self.format(f)
        let x = FusedRoundingTests.values([64, 100], seed: 51).requiringGrad()
        let gamma = FusedRoundingTests.values([100], seed: 52).requiringGrad(), beta = FusedRoundingTests.values([100], seed: 53).requiringGrad()
        let w = FusedRoundingTests.values([24, 100], seed: 54).rounded(to: dtype, r.pass)
        let b = FusedRoundingTests.values([24], seed: 55)
        func run(packs: Bool) -> (out: [UInt32], product: [UInt32], grads: [[UInt32]], states: [Bool], held: Int) {
            Tape.$packsByDefault.withValue(packs) {
                var states: [Bool] = [], held = 0, product: [UInt32] = [], out: [UInt32] = []
                let tape = Tape()
                let loss = tape.record { () -> Tensor in
                    let y = x.layerNorm(gamma: gamma, beta: beta, roundOutput: r)
                    states.append(y.storage.isPacked)
                    held = y.storage.bytesHeld
                    let z = y.linear(weight: w, bias: b)
                    states.append(y.storage.isPacked)   // the product read the codes as they are
                    product = FusedRoundingTests.bits(z)
                    out = FusedRoundingTests.bits(y)
                    return (z * z).sum()
                }
                let grads = tape.backward(from: loss)
                return (out, product, [x, gamma, beta].map { FusedRoundingTests.bits(grads[$0]!) }, states, held)
            }
        }
        let coded = run(packs: true), plain = run(packs: false)
        #expect(coded.states == [true, true])
        #expect(coded.held == 6400 * bytes)
        #expect(plain.states == [false, false] && plain.held >= 6400 * 4)
        #expect(coded.out == plain.out && coded.product == plain.product)
        #expect(coded.grads == plain.grads)
    }
}

/// Issue 14 §2: a transformer block trained in BF16 and in CFP8 takes its GEMMs (the layers' products with their
/// gradients, attention's batched products) to BF16 kernels where the CPU has native BF16, and its loss and weight
/// gradients stay those of the FP32 GEMMs on the same values: the sums differ in order only, so a value on a rounding
/// boundary of the format may round the other way (relative differences of a few 1e-3 at most).
@Suite(.enabled(if: BF16Gemm.isAvailable)) struct BF16KernelTrainingTests {
    @Test(arguments: [PrecisionPolicy.Mode.bf16, .cfp8])
    func aTransformerBlockStepMatchesFP32Kernels(_ mode: PrecisionPolicy.Mode) throws {
        func step(bf16: Bool) -> (loss: Float, grads: [[Float]], calls: Int) {
            var g = RandomSource(seed: 3)
            let block = TransformerBlock(dimension: 32, heads: 2, generator: &g)
            block.finalizeNames()
            let x = Tensor.randomNormal([4, 17, 32], generator: &g)
            let ctx = ForwardContext(training: true, precision: PrecisionPolicy(mode: mode))
            let counter = BF16Gemm.Counter()
            return BF16Gemm.$counter.withValue(counter) { Engine.$bf16Kernels.withValue(bf16) {
                let tape = Tape()
                let loss = tape.record { Module.$context.withValue(ctx) { let y = block(x); return (y * y).mean() } }
                let grads = tape.backward(from: loss)
                return (loss.item, block.parameters.map { grads[$0.1]?.array ?? [] }, counter.count)
            } }
        }
        let fast = step(bf16: true), fp32 = step(bf16: false)
        // 6 products forward (4 layers, attention's 2), 10 backward (the 4 layers' 8, attention's 2 that read no score gradient)
        #expect(fast.calls >= 16, "products on BF16 kernels: \(fast.calls)")
        #expect(fp32.calls == 0)
        #expect(abs(fast.loss - fp32.loss) <= 1e-3 * abs(fp32.loss))
        for (a, b) in zip(fast.grads, fp32.grads) {
            let num = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
            let den = b.map { Double($0) * Double($0) }.reduce(0, +)
            #expect((num / max(den, 1e-30)).squareRoot() < 1e-2)
        }
    }
}
