import CDojoKernels
import DojoGraph
import DojoNumerics
import DojoTensor
import Foundation
import Testing

/// Issue 14's fast paths against the plain definitions: the fused linear layer, and the loops split over threads
/// (broadcast rows, sums over leading dimensions, permutes, layer norm) on tensors large enough to be split.
@Suite struct FastPathTests {
    /// `x.linear(weight:bias:)` (bias written first, the GEMM adding onto it) equals `x·Wᵀ + b` in values and
    /// gradients, and records the same Graph IR: a matmul then an add.
    @Test func linearEqualsMatmulPlusBias() {
        let x = random([300, 64], seed: 70), w = random([96, 64], seed: 71), b = random([96], seed: 72)
        for t in [x, w, b] { t.requiringGrad() }
        func run(_ fused: Bool) -> (y: [Float], grads: [[Float]], graph: Graph) {
            let tape = Tape()
            var y = Tensor(zeros: [1])
            let loss = tape.record { () -> Tensor in
                y = fused ? x.linear(weight: w, bias: b) : x.matmul(w, transposeB: true) + b
                return (y * y).sum()
            }
            let g = tape.backward(from: loss)
            return (y.array, [x, w, b].map { g[$0]!.array }, tape.graph(model: "linear", batch: 300))
        }
        let fused = run(true), plain = run(false)
        #expect(maxDifference(fused.y, plain.y) <= 1e-4 * maxMagnitude(plain.y))
        for (a, p) in zip(fused.grads, plain.grads) { #expect(maxDifference(a, p) <= 1e-4 * maxMagnitude(p)) }
        #expect(fused.graph.ops.map(\.kind) == plain.graph.ops.map(\.kind))
        #expect(fused.graph.ops.map(\.flops) == plain.graph.ops.map(\.flops))
        #expect(Array(fused.graph.ops.prefix(2).map(\.kind)) == [.matmul, .add])
    }

    /// Row-split broadcasts and leading-dimension sums equal a naive loop (2 × 3 × 5,000 rows split over threads).
    @Test func splitLoopsMatchNaiveOnes() {
        let a = random([2, 3, 5000, 17], seed: 73), row = random([17], seed: 74), col = random([2, 1, 5000, 1], seed: 75)
        let s = a + row, m = a * col
        var worst: Float = 0
        for i in 0..<2 { for j in 0..<3 { for k in 0..<5000 { for l in 0..<17 {
            let f = ((i * 3 + j) * 5000 + k) * 17 + l
            worst = max(worst, abs(s[flat: f] - (a[flat: f] + row[flat: l])))
            worst = max(worst, abs(m[flat: f] - a[flat: f] * col[flat: i * 5000 + k]))
        } } } }
        #expect(worst == 0)
        // the bias gradient's sum over leading dimensions, in Double as the reference
        let summed = a.sumToShape([17])
        for l in 0..<17 {
            var acc = 0.0
            for r in 0..<(a.count / 17) { acc += Double(a[flat: r * 17 + l]) }
            #expect(abs(Double(summed[flat: l]) - acc) <= 1e-3 * max(1, abs(acc)))
        }
        // a permute split by rows equals the index arithmetic
        let p = a.permuted([2, 0, 3, 1])   // [5000, 2, 17, 3]
        var same = true
        for k in stride(from: 0, to: 5000, by: 7) { for i in 0..<2 { for l in 0..<17 { for j in 0..<3 {
            if p[flat: ((k * 2 + i) * 17 + l) * 3 + j] != a[flat: ((i * 3 + j) * 5000 + k) * 17 + l] { same = false }
        } } } }
        #expect(same)
    }

    /// The column sums behind a bias's gradient (CDojoKernels, 64 columns at a time in registers), in both builds,
    /// from FP32 values and from BF16 codes, over column ranges that do not start or end on a strip: bit for bit a
    /// running Float sum down each column in row order, as the loop they replaced added them. `sumToShape` on a
    /// tensor held as BF16 codes only sums the codes and gives the same bits as on its FP32 values.
    @Test func columnSumsAreRunningSumsInRowOrder() throws {
        let rows = 301, cols = 150
        let x = random([rows, cols], seed: 81)
        // the values rounded to BF16 (truncated: any BF16 values will do), and their codes
        let codes = UnsafeMutablePointer<UInt16>.allocate(capacity: rows * cols)
        for i in 0..<(rows * cols) {
            let bits = x[flat: i].bitPattern & 0xFFFF_0000
            x.pointer[i] = Float(bitPattern: bits)
            codes[i] = UInt16(bits >> 16)
        }
        var reference = [Float](repeating: 0, count: cols)
        for c in 0..<cols { var acc: Float = 0; for r in 0..<rows { acc += x[flat: r * cols + c] }; reference[c] = acc }
        defer { NumberFormat.useAVX2Kernels(true) }
        for avx2 in [false, true] {
            NumberFormat.useAVX2Kernels(avx2)
            for (c0, c1) in [(0, cols), (3, 147), (70, 71), (64, 128)] {
                var f32 = [Float](repeating: .nan, count: cols), b16 = f32
                dojo_column_sums_f32(x.pointer, rows, cols, c0, c1, &f32)
                dojo_column_sums_bf16(codes, rows, cols, c0, c1, &b16)
                for c in c0..<c1 {
                    #expect(f32[c].bitPattern == reference[c].bitPattern, "avx2 \(avx2) f32 column \(c)")
                    #expect(b16[c].bitPattern == reference[c].bitPattern, "avx2 \(avx2) bf16 column \(c)")
                }
                #expect(f32[..<c0].allSatisfy(\.isNaN) && f32[c1...].allSatisfy(\.isNaN), "columns outside \(c0)..<\(c1) written")
            }
        }
        let held = Tensor(shape: [rows, cols], storage: Storage(codes: UnsafeMutableRawPointer(codes), count: rows * cols,
                                                                 format: try NumberFormat(.bf16)))
        #expect(held.storage.bf16Codes != nil)
        #expect(held.sumToShape([cols]).array.map(\.bitPattern) == reference.map(\.bitPattern))
        #expect(x.sumToShape([1, cols]).array.map(\.bitPattern) == reference.map(\.bitPattern))
    }

    /// Layer norm split over rows (forward) and columns (γ and β gradients) against a Double reference.
    @Test func layerNormOnManyRowsMatchesDefinition() {
        let x = random([4096, 48], seed: 76), gamma = random([48], seed: 77), beta = random([48], seed: 78)
        gamma.requiringGrad(); beta.requiringGrad()
        let tape = Tape()
        let y = tape.record { x.layerNorm(gamma: gamma, beta: beta) }
        let loss = tape.record { y.sum() }
        let g = tape.backward(from: loss)
        var worst = 0.0, dBeta = [Double](repeating: 0, count: 48), dGamma = dBeta
        for r in 0..<4096 {
            var mean = 0.0, v = 0.0
            for j in 0..<48 { mean += Double(x[flat: r * 48 + j]) }
            mean /= 48
            for j in 0..<48 { let c = Double(x[flat: r * 48 + j]) - mean; v += c * c }
            let inv = 1 / (v / 48 + 1e-5).squareRoot()
            for j in 0..<48 {
                let h = (Double(x[flat: r * 48 + j]) - mean) * inv
                worst = max(worst, abs(h * Double(gamma[flat: j]) + Double(beta[flat: j]) - Double(y[flat: r * 48 + j])))
                dGamma[j] += h; dBeta[j] += 1
            }
        }
        #expect(worst < 1e-4)
        for j in 0..<48 {
            #expect(abs(Double(g[beta]![flat: j]) - dBeta[j]) < 1e-2)
            #expect(abs(Double(g[gamma]![flat: j]) - dGamma[j]) < 1e-2)
        }
    }

    /// Layer norm's loops in CDojoKernels (row sums in 16 partial sums; both builds), at widths with and without a
    /// tail of fewer than 16: the output, x's gradient under a random upstream gradient, and γ's and β's gradients
    /// against a Double reference.
    @Test func layerNormKernelsAgainstDoubleReference() {
        let before = dojo_kernels_level()
        defer { dojo_kernels_set_level(before) }
        for level in 0...dojo_kernels_best_level() {
            dojo_kernels_set_level(Int32(level))
            for d in [5, 16, 48, 192, 200] {
                let rows = 300
                let x = random([rows, d], seed: UInt64(80 + d), std: 3), gamma = random([d], seed: 81), beta = random([d], seed: 82)
                let up = random([rows, d], seed: 83)
                x.requiringGrad(); gamma.requiringGrad(); beta.requiringGrad()
                let tape = Tape()
                let y = tape.record { x.layerNorm(gamma: gamma, beta: beta) }
                let loss = tape.record { (y * up).sum() }
                let g = tape.backward(from: loss)
                var worstY = 0.0, worstDx = 0.0
                var dGamma = [Double](repeating: 0, count: d), dBeta = dGamma
                for r in 0..<rows {
                    let xs = (0..<d).map { Double(x[flat: r * d + $0]) }, gs = (0..<d).map { Double(up[flat: r * d + $0]) }
                    let gm = (0..<d).map { Double(gamma[flat: $0]) }
                    let mean = xs.reduce(0, +) / Double(d)
                    let inv = 1 / (xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d) + 1e-5).squareRoot()
                    let h = xs.map { ($0 - mean) * inv }
                    let gh = (0..<d).map { gs[$0] * gm[$0] }
                    let s1 = gh.reduce(0, +), s2 = (0..<d).reduce(0.0) { $0 + gh[$1] * h[$1] }
                    for j in 0..<d {
                        worstY = max(worstY, abs(h[j] * gm[j] + Double(beta[flat: j]) - Double(y[flat: r * d + j])))
                        let dx = inv / Double(d) * (Double(d) * gh[j] - s1 - h[j] * s2)
                        worstDx = max(worstDx, abs(dx - Double(g[x]![flat: r * d + j])) / max(1, abs(dx)))
                        dGamma[j] += gs[j] * h[j]; dBeta[j] += gs[j]
                    }
                }
                #expect(worstY < 1e-4, "build \(level), width \(d): y off by \(worstY)")
                #expect(worstDx < 1e-4, "build \(level), width \(d): dx off by \(worstDx)")
                for j in 0..<d {
                    #expect(abs(Double(g[gamma]![flat: j]) - dGamma[j]) < 1e-3 * max(1, abs(dGamma[j])), "build \(level), width \(d), dγ[\(j)]")
                    #expect(abs(Double(g[beta]![flat: j]) - dBeta[j]) < 1e-3 * max(1, abs(dBeta[j])), "build \(level), width \(d), dβ[\(j)]")
                }
            }
        }
    }

    /// Softmax's loops in CDojoKernels (both builds): its exp within 2 ulp of libm's over [−87, 88] with 0, +∞ and NaN
    /// at the edges; softmax, causal softmax and log-softmax rows, and their gradients, against a Double reference.
    @Test func softmaxKernelsAgainstDoubleReference() {
        let before = dojo_kernels_level()
        defer { dojo_kernels_set_level(before) }
        var worstUlp: Float = 0
        for i in -870_000...880_000 {
            let x = Float(i) * 1e-4, e = dojo_exp_f32(x), ref = Foundation.exp(x)
            worstUlp = max(worstUlp, abs(e - ref) / ref.ulp)
        }
        #expect(worstUlp <= 2, "exp off by \(worstUlp) ulp")
        #expect(dojo_exp_f32(-.infinity) == 0 && dojo_exp_f32(-100) == 0 && dojo_exp_f32(0) == 1)
        #expect(dojo_exp_f32(100) == .infinity && dojo_exp_f32(.nan).isNaN)
        for level in 0...dojo_kernels_best_level() {
            dojo_kernels_set_level(Int32(level))
            for n in [7, 16, 50, 256] {
                let rows = 2 * n   // two groups of n queries: causal rows see (row mod n) + 1 keys
                let x = random([rows, n], seed: UInt64(90 + n), std: 4), up = random([rows, n], seed: 91)
                for (causal, log) in [(false, false), (true, false), (false, true)] {
                    x.requiringGrad()
                    let tape = Tape()
                    let y = tape.record { log ? x.logSoftmax() : x.softmax(causal: causal) }
                    let loss = tape.record { (y * up).sum() }
                    let g = tape.backward(from: loss)[x]!
                    var worstY = 0.0, worstDx = 0.0
                    for r in 0..<rows {
                        let visible = causal ? r % n + 1 : n
                        let xs = (0..<n).map { Double(x[flat: r * n + $0]) }, gs = (0..<n).map { Double(up[flat: r * n + $0]) }
                        let m = xs[0..<visible].max()!
                        let es = (0..<n).map { $0 < visible ? Foundation.exp(xs[$0] - m) : 0 }
                        let sum = es.reduce(0, +)
                        let p = es.map { $0 / sum }
                        let dot = (0..<n).reduce(0.0) { $0 + gs[$1] * p[$1] }, gsum = gs.reduce(0, +)
                        for j in 0..<n {
                            let want = log ? xs[j] - m - Foundation.log(sum) : p[j]
                            worstY = max(worstY, abs(want - Double(y[flat: r * n + j])) / max(1, abs(want)))
                            let dx = log ? gs[j] - p[j] * gsum : p[j] * (gs[j] - dot)
                            worstDx = max(worstDx, abs(dx - Double(g[flat: r * n + j])) / max(1, abs(dx)))
                        }
                    }
                    #expect(worstY < 1e-5, "build \(level), n \(n), causal \(causal), log \(log): y off by \(worstY)")
                    #expect(worstDx < 1e-5, "build \(level), n \(n), causal \(causal), log \(log): dx off by \(worstDx)")
                }
            }
        }
    }
}

private func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }
private func maxMagnitude(_ a: [Float]) -> Float { a.reduce(0) { max($0, abs($1)) } }

/// ReLU's backward from its output's codes (CDojoKernels, both builds): every BF16 code and every 8-bit code, against
/// dy · (1 or 0) as the definition gives it (1 for a positive value, +∞ included; 0 for zeros, negatives and NaNs),
/// written to another buffer and over dy in place.
@Suite struct ReluCodesKernelTests {
    @Test func everyCodeBothBuildsInPlaceAndNot() {
        let before = dojo_kernels_level()
        defer { dojo_kernels_set_level(before) }
        let codes16 = (0...0xFFFF).map { UInt16($0) }, codes8 = (0...0xFF).map { UInt8($0) }
        func dy(_ n: Int) -> [Float] { (0..<n).map { i in [Float(-2.5), 3, .infinity, -0.0, 1e-40][i % 5] } }
        func want(positive: Bool, _ g: Float) -> Float { g * (positive ? 1 : 0) }
        for level in 0...dojo_kernels_best_level() {
            dojo_kernels_set_level(Int32(level))
            let g16 = dy(codes16.count)
            var out = [Float](repeating: 7, count: codes16.count), inPlace = g16
            dojo_relu_backward_codes16(codes16, g16, &out, codes16.count)
            inPlace.withUnsafeMutableBufferPointer { p in dojo_relu_backward_codes16(codes16, p.baseAddress!, p.baseAddress!, p.count) }
            var wrong = 0
            for (i, c) in codes16.enumerated() {
                let v = Float(bitPattern: UInt32(c) << 16), w = want(positive: v > 0, g16[i])
                if out[i].bitPattern != w.bitPattern && !(out[i].isNaN && w.isNaN) { wrong += 1 }
                if inPlace[i].bitPattern != w.bitPattern && !(inPlace[i].isNaN && w.isNaN) { wrong += 1 }
            }
            let g8 = dy(codes8.count)
            var out8 = [Float](repeating: 7, count: codes8.count)
            dojo_relu_backward_codes8(codes8, g8, &out8, codes8.count)
            for (i, c) in codes8.enumerated() {
                let w = want(positive: c >= 1 && c <= 0x7F, g8[i])
                if out8[i].bitPattern != w.bitPattern && !(out8[i].isNaN && w.isNaN) { wrong += 1 }
            }
            #expect(wrong == 0, "build \(level): \(wrong) values differ")
        }
    }
}

/// Batch norm's one-pass BF16 loops (CDojoKernels, both builds) against the three passes they replace: the affine,
/// `dojo_round_bf16_if_normal`, `dojo_pack_bf16`; and the input gradient then its rounding. Spans with a value the
/// rounding leaves to its caller (subnormal, near BF16's largest, infinite, NaN) report it.
@Suite struct BatchNormBF16KernelTests {
    @Test func onePassEqualsThreeBothBuilds() {
        let before = dojo_kernels_level()
        defer { dojo_kernels_set_level(before) }
        var rng = RandomSource(seed: 5)
        let x = Tensor.randomNormal([1000], std: 3, generator: &rng).array, dy = Tensor.randomNormal([1000], generator: &rng).array
        let (a, b, c): (Float, Float, Float) = (0.731, -0.25, 0.0123)
        for level in 0...dojo_kernels_best_level() {
            dojo_kernels_set_level(Int32(level))
            for s in [1, 7, 255, 256, 257, 1000] {
                var fused = [UInt16](repeating: 0, count: s)
                #expect(dojo_bn_affine_bf16_codes(x, s, a, b, &fused) == 1)
                var y = [Float](repeating: 0, count: s), packed = [UInt16](repeating: 1, count: s)
                dojo_bn_affine(x, &y, s, a, b)
                y.withUnsafeMutableBytes { p in #expect(dojo_round_bf16_if_normal(p.baseAddress!.assumingMemoryBound(to: UInt32.self), s) == 1) }
                y.withUnsafeBytes { p in _ = dojo_pack_bf16(p.baseAddress!.assumingMemoryBound(to: UInt32.self), s, &packed) }
                #expect(fused == packed, "build \(level), span \(s): codes differ")
                var dxFused = dy, dx = [Float](repeating: 0, count: s)
                // in place over dy, as batch norm's backward writes it
                dxFused.withUnsafeMutableBufferPointer { p in #expect(dojo_bn_backward_dx_bf16(x, p.baseAddress!, p.baseAddress!, s, a, b, c) == s) }
                dojo_bn_backward_dx(x, dy, &dx, s, a, b, c)
                dx.withUnsafeMutableBytes { p in #expect(dojo_round_bf16_if_normal(p.baseAddress!.assumingMemoryBound(to: UInt32.self), s) == 1) }
                #expect(Array(dxFused[0..<s]).map(\.bitPattern) == dx.map(\.bitPattern), "build \(level), span \(s): dx differs")
            }
            // a special value in a 64-value chunk (300), in the 8-value vectors after the chunks (970), near the end (998)
            for special: Float in [.nan, .infinity, 1e-40, 3.4e38, Float(bitPattern: 0x7F7F_0001)] {
                for at in [300, 970, 998] {
                    var xs = x; xs[at] = special
                    var codes = [UInt16](repeating: 0, count: 1000)
                    #expect(dojo_bn_affine_bf16_codes(xs, 1000, 1, 0, &codes) == 0, "\(special) at \(at)")
                    // in place over dy, as batch norm's backward runs it: the values before the chunk that holds the
                    // special value written and rounded, the rest left as dy was (the caller finishes from there)
                    var inPlace = dy
                    let done = inPlace.withUnsafeMutableBufferPointer { p in dojo_bn_backward_dx_bf16(xs, p.baseAddress!, p.baseAddress!, 1000, 0, 1, 0) }
                    #expect(done <= at && done % 8 == 0 && done > at - 256, "\(special) at \(at): stopped at \(done)")
                    var twoPass = [Float](repeating: 0, count: 1000)
                    dojo_bn_backward_dx(xs, dy, &twoPass, 1000, 0, 1, 0)
                    twoPass.withUnsafeMutableBytes { p in _ = dojo_round_bf16_if_normal(p.baseAddress!.assumingMemoryBound(to: UInt32.self), done) }
                    let head = zip(inPlace[..<done], twoPass[..<done]).filter { $0.bitPattern != $1.bitPattern }.count
                    #expect(head == 0 && Array(inPlace[done...]).map(\.bitPattern) == Array(dy[done...]).map(\.bitPattern),
                            "\(special) at \(at): \(head) values differ before \(done), or dy changed after it")
                }
            }
            // the range's edges are not special: BF16's largest, FP32's smallest normal, zeros of both signs
            var edges = x
            for (i, v) in [Float(bitPattern: 0x7F7F_0000), -Float(bitPattern: 0x7F7F_0000), Float.leastNormalMagnitude, 0, -0.0].enumerated() {
                edges[100 + i] = v; edges[965 + i] = v
            }
            var edgeCodes = [UInt16](repeating: 0, count: 1000)
            #expect(dojo_bn_affine_bf16_codes(edges, 1000, 1, 0, &edgeCodes) == 1)
            #expect(edgeCodes[100] == 0x7F7F && edgeCodes[101] == 0xFF7F && edgeCodes[102] == 0x0080 && edgeCodes[104] == 0)  // −0·1 + 0 is +0
        }
    }

    /// The loops that read x as BF16 codes (`…_bf16x`) give the bits of decoding x first and running the FP32 loops:
    /// sums, the one-pass affine into codes, the one-pass input gradient, and where each stops at a special value.
    @Test func codesOfXEqualDecodingFirstBothBuilds() {
        let before = dojo_kernels_level()
        defer { dojo_kernels_set_level(before) }
        var rng = RandomSource(seed: 9)
        let dy = Tensor.randomNormal([1000], generator: &rng).array
        var xc = Tensor.randomNormal([1000], std: 3, generator: &rng).array.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
        xc[0] = 0x8000; xc[1] = 0   // −0 and +0
        let (a, b, c): (Float, Float, Float) = (0.731, -0.25, 0.0123)
        for level in 0...dojo_kernels_best_level() {
            dojo_kernels_set_level(Int32(level))
            for s in [1, 7, 15, 16, 17, 255, 256, 257, 1000] {
                let codes = Array(xc[0..<s]), x = codes.map { Float(bitPattern: UInt32($0) << 16) }
                var s1: Float = 0, q1: Float = 0, s2: Float = 0, q2: Float = 0
                dojo_bn_shifted_sums_bf16x(codes, s, 0.37, &s1, &q1)
                dojo_bn_shifted_sums(x, s, 0.37, &s2, &q2)
                #expect(s1.bitPattern == s2.bitPattern && q1.bitPattern == q2.bitPattern, "build \(level), span \(s): shifted sums")
                dojo_bn_backward_sums_bf16x(codes, dy, s, -0.2, &s1, &q1)
                dojo_bn_backward_sums(x, dy, s, -0.2, &s2, &q2)
                #expect(s1.bitPattern == s2.bitPattern && q1.bitPattern == q2.bitPattern, "build \(level), span \(s): backward sums")
                var o1 = [UInt16](repeating: 0, count: s), o2 = o1
                #expect(dojo_bn_affine_bf16_codes_bf16x(codes, s, a, b, &o1) == dojo_bn_affine_bf16_codes(x, s, a, b, &o2))
                #expect(o1 == o2, "build \(level), span \(s): affine codes")
                var d1 = [Float](repeating: 0, count: s), d2 = d1
                #expect(dojo_bn_backward_dx_bf16_bf16x(codes, dy, &d1, s, a, b, c) == dojo_bn_backward_dx_bf16(x, dy, &d2, s, a, b, c))
                #expect(d1.map(\.bitPattern) == d2.map(\.bitPattern), "build \(level), span \(s): input gradient")
            }
            // a special value (BF16 infinity, NaN) stops both at the same chunk
            for special: UInt16 in [0x7F80, 0x7FC1] {
                var cs = xc; cs[300] = special
                let x = cs.map { Float(bitPattern: UInt32($0) << 16) }
                var o1 = [UInt16](repeating: 0, count: 1000), o2 = o1
                #expect(dojo_bn_affine_bf16_codes_bf16x(cs, 1000, 1, 0, &o1) == 0 && dojo_bn_affine_bf16_codes(x, 1000, 1, 0, &o2) == 0)
                var d1 = [Float](repeating: 0, count: 1000), d2 = d1
                let done1 = dojo_bn_backward_dx_bf16_bf16x(cs, dy, &d1, 1000, 0, 1, 0), done2 = dojo_bn_backward_dx_bf16(x, dy, &d2, 1000, 0, 1, 0)
                #expect(done1 == done2 && done1 <= 300, "\(special): stopped at \(done1) and \(done2)")
            }
        }
    }
}
