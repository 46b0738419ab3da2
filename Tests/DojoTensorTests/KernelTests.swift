import DojoNumerics
import Testing
@_spi(Testing) import DojoTensor

// MARK: - Helpers

/// SplitMix64: deterministic test data.
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in uniform() * scale } }
}

/// max |a − b| / max(max |b|, tiny).
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var diff: Float = 0, mag: Float = 0
    for i in a.indices {
        diff = max(diff, abs(a[i] - b[i]))
        mag = max(mag, abs(b[i]))
    }
    return diff / max(mag, 1e-30)
}

func dot(_ a: [Float], _ b: [Float]) -> Double {
    var s: Double = 0
    for i in a.indices { s += Double(a[i]) * Double(b[i]) }
    return s
}

func bitsEqual(_ a: [Float], _ b: [Float]) -> Bool { a.map(\.bitPattern) == b.map(\.bitPattern) }

// MARK: - Convolution

struct ConvRun {
    var y, dx, dw, db: [Float]
}

func runConv(_ g: Conv2dGeometry, x: [Float], w: [Float], b: [Float]?, dy: [Float], backend: KernelBackend) -> ConvRun {
    var y = [Float](repeating: .nan, count: g.outputCount)
    var dx = [Float](repeating: .nan, count: g.inputCount)
    var dw = [Float](repeating: .nan, count: g.weightCount)
    var db = [Float](repeating: .nan, count: b == nil ? 0 : g.outChannels)
    if let b {
        b.withUnsafeBufferPointer { bp in
            Conv2dKernel.forward(g, x: x, weight: w, bias: bp.baseAddress!, y: &y, backend: backend)
        }
        db.withUnsafeMutableBufferPointer { dbp in
            Conv2dKernel.backwardWeights(g, x: x, dy: dy, dWeight: &dw, dBias: dbp.baseAddress!, backend: backend)
        }
    } else {
        Conv2dKernel.forward(g, x: x, weight: w, bias: nil, y: &y, backend: backend)
        Conv2dKernel.backwardWeights(g, x: x, dy: dy, dWeight: &dw, dBias: nil, backend: backend)
    }
    Conv2dKernel.backwardData(g, dy: dy, weight: w, dx: &dx, backend: backend)
    return ConvRun(y: y, dx: dx, dw: dw, db: db)
}

let convShapes: [Conv2dGeometry] = [
    Conv2dGeometry(batch: 3, inChannels: 5, height: 11, width: 9, outChannels: 7, kernelH: 3, kernelW: 3,
                   strideH: 2, strideW: 2, padH: 1, padW: 1),
    Conv2dGeometry(batch: 2, inChannels: 3, height: 7, width: 13, outChannels: 17, kernelH: 5, kernelW: 3,
                   strideH: 1, strideW: 2, padH: 2, padW: 0),
    Conv2dGeometry(batch: 2, inChannels: 19, height: 10, width: 10, outChannels: 33, kernelH: 3, kernelW: 3,
                   padH: 1, padW: 1),
    Conv2dGeometry(batch: 2, inChannels: 16, height: 6, width: 5, outChannels: 24, kernelH: 1, kernelW: 1),  // 1×1
    Conv2dGeometry(batch: 2, inChannels: 8, height: 9, width: 7, outChannels: 12, kernelH: 3, kernelW: 3,
                   strideH: 2, strideW: 1, padH: 1, padW: 1, groups: 2),
    Conv2dGeometry(batch: 2, inChannels: 16, height: 8, width: 11, outChannels: 16, kernelH: 3, kernelW: 3,
                   padH: 1, padW: 1, groups: 16),  // depthwise
    Conv2dGeometry(batch: 3, inChannels: 1, height: 13, width: 11, outChannels: 32, kernelH: 3, kernelW: 3,
                   padH: 1, padW: 1),  // 1-channel input
    Conv2dGeometry(batch: 2, inChannels: 4, height: 10, width: 9, outChannels: 6, kernelH: 2, kernelW: 2,
                   strideH: 3, strideW: 2),  // output sizes that do not divide evenly
]

@Test(arguments: convShapes.indices, [true, false])
func convOneDNNMatchesReference(_ index: Int, _ withBias: Bool) {
    let g = convShapes[index]
    var rng = TestRNG(UInt64(index * 2 + (withBias ? 1 : 0)))
    let x = rng.array(g.inputCount), w = rng.array(g.weightCount, scale: 0.5), dy = rng.array(g.outputCount)
    let b: [Float]? = withBias ? rng.array(g.outChannels) : nil
    let ref = runConv(g, x: x, w: w, b: b, dy: dy, backend: .reference)
    let fast = runConv(g, x: x, w: w, b: b, dy: dy, backend: .oneDNN)
    #expect(relativeError(fast.y, ref.y) < 1e-4, "forward \(g)")
    #expect(relativeError(fast.dx, ref.dx) < 1e-4, "backwardData \(g)")
    #expect(relativeError(fast.dw, ref.dw) < 1e-4, "backwardWeights \(g)")
    if withBias { #expect(relativeError(fast.db, ref.db) < 1e-4, "backwardBias \(g)") }
    #expect(ref.y.allSatisfy { $0.isFinite } && ref.dx.allSatisfy { $0.isFinite } && ref.dw.allSatisfy { $0.isFinite })
}

/// Both gradients in one call (dy reordered once where both passes want the same layout) are the two passes' own,
/// bit for bit, and the reference's.
@Test(arguments: convShapes.indices.filter { convShapes[$0].groups == 1 }, [true, false])
func convBothGradientsAtOnce(_ index: Int, _ withBias: Bool) {
    let g = convShapes[index]
    var rng = TestRNG(UInt64(100 + index))
    let x = rng.array(g.inputCount), w = rng.array(g.weightCount, scale: 0.5), dy = rng.array(g.outputCount)
    let separate = runConv(g, x: x, w: w, b: withBias ? rng.array(g.outChannels) : nil, dy: dy, backend: .oneDNN)
    let ref = runConv(g, x: x, w: w, b: nil, dy: dy, backend: .reference)
    var dx = [Float](repeating: 0, count: g.inputCount), dw = [Float](repeating: 0, count: g.weightCount)
    var db = [Float](repeating: 0, count: g.outChannels)
    if withBias {
        db.withUnsafeMutableBufferPointer { Conv2dKernel.backward(g, dy: dy, weight: w, x: x, dx: &dx, dWeight: &dw, dBias: $0.baseAddress!) }
        #expect(db.map(\.bitPattern) == separate.db.map(\.bitPattern), "bias gradient \(g)")
    } else {
        Conv2dKernel.backward(g, dy: dy, weight: w, x: x, dx: &dx, dWeight: &dw, dBias: nil)
    }
    #expect(dx.map(\.bitPattern) == separate.dx.map(\.bitPattern), "x's gradient \(g)")
    #expect(dw.map(\.bitPattern) == separate.dw.map(\.bitPattern), "weight gradient \(g)")
    #expect(relativeError(dx, ref.dx) < 1e-4 && relativeError(dw, ref.dw) < 1e-4, "against the reference \(g)")
}

/// The weight gradient reads the input as the forward pass reordered it while that buffer still holds it (the same
/// `inputID`): the same bits as reordering it again; after another input of the same geometry went through the forward
/// pass, the input's own values (not the other's); and without an `inputID`, its own values.
@Test func convWeightGradientReusesTheForwardReorder() {
    // 19 → 33 channels: the input is reordered into channel blocks; a geometry no other test uses (so that no forward
    // pass has run on it before the first weight gradient, without clearing caches other tests use at the same time)
    let g = Conv2dGeometry(batch: 3, inChannels: 19, height: 10, width: 7, outChannels: 33, kernelH: 3, kernelW: 3, padH: 1, padW: 1)
    var rng = TestRNG(55)
    let x1 = rng.array(g.inputCount), x2 = rng.array(g.inputCount), w = rng.array(g.weightCount, scale: 0.5)
    let dy = rng.array(g.outputCount)
    func weightGradient(after forwardInputs: [([Float], Int?)], id: Int? = 1) -> [Float] {
        var y = [Float](repeating: 0, count: g.outputCount), dw = [Float](repeating: 0, count: g.weightCount)
        for (x, xid) in forwardInputs { Conv2dKernel.forward(g, x: x, weight: w, bias: nil, y: &y, inputID: xid) }
        Conv2dKernel.backwardWeights(g, x: x1, dy: dy, dWeight: &dw, dBias: nil, inputID: id)
        return dw
    }
    #expect(!Conv2dKernel.isCached(g, pass: .forward, bias: false))
    let alone = weightGradient(after: [])
    let reused = weightGradient(after: [(x1, 1)])
    let replaced = weightGradient(after: [(x1, 1), (x2, 2)])
    let unnamed = weightGradient(after: [(x2, 1)], id: nil)   // a wrong name, but the weight gradient names none
    #expect(reused.map(\.bitPattern) == alone.map(\.bitPattern))
    #expect(replaced.map(\.bitPattern) == alone.map(\.bitPattern))
    #expect(unnamed.map(\.bitPattern) == alone.map(\.bitPattern))
    // the forward's buffer is read when the names match (x2's values under x1's name give x2's gradient: the name is
    // what is trusted)
    let misnamed = weightGradient(after: [(x2, 1)])
    #expect(misnamed.map(\.bitPattern) != alone.map(\.bitPattern))
    let ref = runConv(g, x: x1, w: w, b: nil, dy: dy, backend: .reference)
    #expect(relativeError(alone, ref.dw) < 1e-4)
}

@Test func convReferenceSmallCaseByHand() {
    // 1×1×3×3 input, one 2×2 kernel, no padding: every output is a hand-checkable dot product.
    let g = Conv2dGeometry(batch: 1, inChannels: 1, height: 3, width: 3, outChannels: 1, kernelH: 2, kernelW: 2)
    let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9], w: [Float] = [1, 0, -1, 2]
    var y = [Float](repeating: 0, count: 4)
    let bias: [Float] = [0.5]
    Conv2dKernel.forward(g, x: x, weight: w, bias: bias, y: &y, backend: .reference)
    // y00 = 1·1 + 0·2 − 1·4 + 2·5 = 7, y01 = 2 − 5 + 12 = 9, y10 = 4 − 7 + 16 = 13, y11 = 5 − 8 + 18 = 15; +0.5
    #expect(y == [7.5, 9.5, 13.5, 15.5])
}

/// The reference backward passes are the exact adjoints of the reference forward: for L(x, w) = ⟨conv(x, w), r⟩,
/// compare the central difference of L along a random direction (in Double, using the perturbation actually
/// representable in Float; L is linear in each argument, so the difference has no truncation error) with ⟨grad, d⟩.
@Test(arguments: [
    Conv2dGeometry(batch: 2, inChannels: 4, height: 5, width: 6, outChannels: 6, kernelH: 3, kernelW: 2,
                   strideH: 2, strideW: 1, padH: 1, padW: 1, groups: 2),
    Conv2dGeometry(batch: 1, inChannels: 3, height: 4, width: 4, outChannels: 2, kernelH: 3, kernelW: 3, padH: 1, padW: 1),
])
func convReferenceBackwardMatchesFiniteDifferences(_ g: Conv2dGeometry) {
    var rng = TestRNG(99)
    let x = rng.array(g.inputCount), w = rng.array(g.weightCount), r = rng.array(g.outputCount)
    let b = rng.array(g.outChannels)
    func loss(_ x: [Float], _ w: [Float]) -> Double {
        var y = [Float](repeating: 0, count: g.outputCount)
        Conv2dKernel.forward(g, x: x, weight: w, bias: b, y: &y, backend: .reference)
        return dot(y, r)
    }
    var dx = [Float](repeating: 0, count: g.inputCount), dw = [Float](repeating: 0, count: g.weightCount)
    var db = [Float](repeating: 0, count: g.outChannels)
    Conv2dKernel.backwardData(g, dy: r, weight: w, dx: &dx, backend: .reference)
    db.withUnsafeMutableBufferPointer { dbp in
        Conv2dKernel.backwardWeights(g, x: x, dy: r, dWeight: &dw, dBias: dbp.baseAddress!, backend: .reference)
    }
    for trial in 0..<3 {
        let h: Float = 0.25
        let d = rng.array(g.inputCount), e = rng.array(g.weightCount)
        let xp = zip(x, d).map { $0 + h * $1 }, xm = zip(x, d).map { $0 - h * $1 }
        let wp = zip(w, e).map { $0 + h * $1 }, wm = zip(w, e).map { $0 - h * $1 }
        let fdX = loss(xp, w) - loss(xm, w), fdW = loss(x, wp) - loss(x, wm)
        let dX = zip(xp, xm).map { $0 - $1 }, dW = zip(wp, wm).map { $0 - $1 }
        let anX = dot(dx, dX), anW = dot(dw, dW)
        #expect(abs(fdX - anX) <= 1e-4 * max(1, abs(anX)), "trial \(trial) x: fd \(fdX) vs \(anX)")
        #expect(abs(fdW - anW) <= 1e-4 * max(1, abs(anW)), "trial \(trial) w: fd \(fdW) vs \(anW)")
    }
    // dL/dbias[oc] = Σ r over that channel.
    let plane = g.outHeight * g.outWidth
    for oc in 0..<g.outChannels {
        var s: Double = 0
        for n in 0..<g.batch { for j in 0..<plane { s += Double(r[(n * g.outChannels + oc) * plane + j]) } }
        #expect(abs(Double(db[oc]) - s) < 1e-5)
    }
}

@Test func convCacheReusesPrimitivesAndIsBitIdentical() {
    let g = Conv2dGeometry(batch: 2, inChannels: 6, height: 9, width: 9, outChannels: 10, kernelH: 3, kernelW: 3,
                           padH: 1, padW: 1)
    var rng = TestRNG(7)
    let x = rng.array(g.inputCount), w = rng.array(g.weightCount), dy = rng.array(g.outputCount), b = rng.array(10)
    #expect(!Conv2dKernel.isCached(g, pass: .forward, bias: true))
    let first = runConv(g, x: x, w: w, b: b, dy: dy, backend: .oneDNN)
    for pass in [Conv2dKernel.ConvPass.forward, .backwardData, .backwardWeights] {
        #expect(Conv2dKernel.isCached(g, pass: pass, bias: true))
    }
    let cached = Conv2dKernel.cachedPrimitiveCount
    let second = runConv(g, x: x, w: w, b: b, dy: dy, backend: .oneDNN)
    #expect(Conv2dKernel.cachedPrimitiveCount >= cached)
    #expect(bitsEqual(first.y, second.y) && bitsEqual(first.dx, second.dx))
    #expect(bitsEqual(first.dw, second.dw) && bitsEqual(first.db, second.db))
    // Other buffers through the same cached primitives.
    let x2 = rng.array(g.inputCount)
    let third = runConv(g, x: x2, w: w, b: b, dy: dy, backend: .oneDNN)
    let ref = runConv(g, x: x2, w: w, b: b, dy: dy, backend: .reference)
    #expect(relativeError(third.y, ref.y) < 1e-4 && relativeError(third.dw, ref.dw) < 1e-4)
    #expect(!bitsEqual(third.y, first.y))
    #expect(KernelCaches.count >= 3)
}

// MARK: - Pooling

let poolShapes: [Pool2dGeometry] = [
    Pool2dGeometry(batch: 2, channels: 3, height: 8, width: 6, kernelH: 2, kernelW: 2),                     // k2 s2
    Pool2dGeometry(batch: 2, channels: 5, height: 11, width: 9, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2,
                   padH: 1, padW: 1),                                                                        // k3 s2 p1
    Pool2dGeometry(batch: 3, channels: 17, height: 7, width: 13, kernelH: 2, kernelW: 2),                   // odd: drops a row
    Pool2dGeometry(batch: 1, channels: 4, height: 9, width: 10, kernelH: 3, kernelW: 2, strideH: 1, strideW: 3,
                   padH: 1, padW: 1),
    Pool2dGeometry(batch: 2, channels: 32, height: 16, width: 16, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2,
                   padH: 1, padW: 1),
]

@Test(arguments: poolShapes.indices)
func poolOneDNNMatchesReference(_ index: Int) {
    let g = poolShapes[index]
    var rng = TestRNG(UInt64(100 + index))
    let x = rng.array(g.inputCount), dy = rng.array(g.outputCount)
    var yRef = [Float](repeating: .nan, count: g.outputCount), yFast = yRef
    var dxRef = [Float](repeating: .nan, count: g.inputCount), dxFast = dxRef
    let wsRef = MaxPool2dKernel.forward(g, x: x, y: &yRef, backend: .reference)
    let wsFast = MaxPool2dKernel.forward(g, x: x, y: &yFast, backend: .oneDNN)
    #expect(wsRef.backend == .reference && wsFast.backend == .reference)   // the engine's own loops, threaded
    #expect(yFast == yRef, "max forward \(g)")
    MaxPool2dKernel.backward(g, dy: dy, workspace: wsRef, dx: &dxRef, backend: .reference)
    MaxPool2dKernel.backward(g, dy: dy, workspace: wsFast, dx: &dxFast, backend: .oneDNN)
    #expect(relativeError(dxFast, dxRef) < 1e-6, "max backward \(g)")
    // every value written (none left NaN), each dy placed or summed as the reference does (k2 s2: written once, no
    // zeroing pass)
    #expect(dxFast == dxRef, "max backward \(g): the same values")
    // The oneDNN max-pool primitives themselves (`.oneDNN` runs the engine's own loops, which were faster).
    var yD = [Float](repeating: .nan, count: g.outputCount), dxD = [Float](repeating: .nan, count: g.inputCount)
    let wsD = poolPrimitives(g, max: true).maxForward(g, x: x, y: &yD)
    #expect(wsD.backend == .oneDNN && yD == yRef, "oneDNN max forward \(g)")
    MaxPool2dKernel.backward(g, dy: dy, workspace: wsD, dx: &dxD, backend: .reference)  // the workspace decides
    #expect(relativeError(dxD, dxRef) < 1e-6, "oneDNN max backward \(g)")
    #expect(abs(dxRef.reduce(0, +) - dy.reduce(0, +)) < 1e-3)  // every dy lands somewhere

    AvgPool2dKernel.forward(g, x: x, y: &yRef, backend: .reference)
    AvgPool2dKernel.forward(g, x: x, y: &yFast, backend: .oneDNN)
    #expect(relativeError(yFast, yRef) < 1e-5, "avg forward \(g)")
    AvgPool2dKernel.backward(g, dy: dy, dx: &dxRef, backend: .reference)
    AvgPool2dKernel.backward(g, dy: dy, dx: &dxFast, backend: .oneDNN)
    #expect(relativeError(dxFast, dxRef) < 1e-5, "avg backward \(g)")
}

/// Max pooling on the codes of a packed format (BF16, CFP8 at two biases) picks the same windows' winners as the
/// reference on the decoded values: the same values (as codes, decoded) and the same argmax (the scatters of one dy
/// agree bit for bit), negatives, ±0 and ties included (values drawn from a few levels, so windows tie often). The
/// geometries take every path: 2×2 stride 2 with 20, 14 and 7 outputs a row (16-wide vectors, 8-wide, scalar), and
/// windows with padding and other strides (the general loop).
@Test(arguments: [Format.bf16, .cfp8_143, .cfp8_152])
func maxPoolOnCodesMatchesReference(_ f: Format) throws {
    let nf = try NumberFormat(f, bias: f == .bf16 ? nil : 8)
    let bytes = try #require(nf.packedBytes)
    let shapes = [Pool2dGeometry(batch: 2, channels: 3, height: 12, width: 40, kernelH: 2, kernelW: 2),
                  Pool2dGeometry(batch: 3, channels: 5, height: 28, width: 28, kernelH: 2, kernelW: 2),
                  Pool2dGeometry(batch: 2, channels: 4, height: 15, width: 15, kernelH: 2, kernelW: 2),
                  Pool2dGeometry(batch: 2, channels: 3, height: 11, width: 9, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1),
                  Pool2dGeometry(batch: 1, channels: 2, height: 9, width: 10, kernelH: 3, kernelW: 2, strideH: 1, strideW: 3, padH: 1, padW: 1)]
    var rng = TestRNG(77)
    for g in shapes {
        let levels: [Float] = [-2, -0.75, -0.0, 0, 0.375, 1.5, 3]
        let x = (0..<g.inputCount).map { i in i % 3 == 0 ? levels[Int(rng.next() % 7)] : rng.uniform() * 4 }
        var codes = [UInt8](repeating: 0, count: g.inputCount * bytes)
        var exact = x
        exact.withUnsafeMutableBufferPointer { _ = nf.roundInPlace($0, threads: 1) }
        #expect(codes.withUnsafeMutableBytes { nf.packExactly(exact, count: exact.count, into: $0.baseAddress!) })
        var yRef = [Float](repeating: .nan, count: g.outputCount)
        let wsRef = MaxPool2dKernel.forward(g, x: exact, y: &yRef, backend: .reference)
        var yCodes = [UInt8](repeating: 0xAA, count: g.outputCount * bytes)
        let ws = codes.withUnsafeBytes { c in yCodes.withUnsafeMutableBytes { MaxPool2dKernel.forward(g, codes: c.baseAddress!, bytes: bytes, into: $0.baseAddress!) } }
        var y = [Float](repeating: .nan, count: g.outputCount)
        yCodes.withUnsafeBytes { nf.unpack($0.baseAddress!, count: g.outputCount, into: &y) }
        let wrong = y.indices.filter { y[$0].bitPattern != yRef[$0].bitPattern }
        #expect(wrong.isEmpty, "values \(g): \(wrong.count) differ, first at \(wrong.first.map { "\($0): \(y[$0]) for \(yRef[$0])" } ?? "")")
        let dy = rng.array(g.outputCount)
        var dxRef = [Float](repeating: .nan, count: g.inputCount), dx = dxRef
        MaxPool2dKernel.backward(g, dy: dy, workspace: wsRef, dx: &dxRef, backend: .reference)
        MaxPool2dKernel.backward(g, dy: dy, workspace: ws, dx: &dx)
        let moved = dx.indices.filter { dx[$0].bitPattern != dxRef[$0].bitPattern }
        #expect(moved.isEmpty, "argmax \(g): \(moved.count) gradients differ, first at \(moved.first.map { "\($0): \(exact[$0])" } ?? "")")
    }
}

@Test func poolReferenceByHand() {
    // 1×1×3×3, k2 s1 p0 max; k3 s2 p1 avg counts the padding (divides by 9).
    let x: [Float] = [1, 5, 2, 7, 3, 4, 0, 9, 6]
    let gm = Pool2dGeometry(batch: 1, channels: 1, height: 3, width: 3, kernelH: 2, kernelW: 2, strideH: 1, strideW: 1)
    var y = [Float](repeating: 0, count: 4)
    let ws = MaxPool2dKernel.forward(gm, x: x, y: &y, backend: .reference)
    #expect(y == [7, 5, 9, 9])
    var dx = [Float](repeating: -1, count: 9)
    MaxPool2dKernel.backward(gm, dy: [1, 2, 3, 4], workspace: ws, dx: &dx, backend: .reference)
    #expect(dx == [0, 2, 0, 1, 0, 0, 0, 7, 0])
    let ga = Pool2dGeometry(batch: 1, channels: 1, height: 3, width: 3, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2,
                            padH: 1, padW: 1)
    var ya = [Float](repeating: 0, count: 4)
    AvgPool2dKernel.forward(ga, x: x, y: &ya, backend: .oneDNN)
    #expect(abs(ya[0] - (1 + 5 + 7 + 3) / 9) < 1e-6 && abs(ya[3] - (3 + 4 + 9 + 6) / 9) < 1e-6)
}

/// Reference pool backward vs central differences of L = ⟨pool(x), r⟩. Inputs are a shuffled ramp (distinct values
/// 0.01 apart, so no ties) and the step is small enough that no window's maximum changes: L is then linear
/// along the step and the difference is exact up to Float rounding.
@Test(arguments: [poolShapes[1], poolShapes[3]])
func poolReferenceBackwardMatchesFiniteDifferences(_ g: Pool2dGeometry) {
    var rng = TestRNG(5)
    var x = (0..<g.inputCount).map { Float($0) * 0.01 }
    for i in stride(from: x.count - 1, to: 0, by: -1) { x.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
    let r = rng.array(g.outputCount)
    var dxMax = [Float](repeating: 0, count: g.inputCount), dxAvg = dxMax
    var y0 = [Float](repeating: 0, count: g.outputCount)
    let ws = MaxPool2dKernel.forward(g, x: x, y: &y0, backend: .reference)
    MaxPool2dKernel.backward(g, dy: r, workspace: ws, dx: &dxMax, backend: .reference)
    AvgPool2dKernel.backward(g, dy: r, dx: &dxAvg, backend: .reference)
    func loss(_ x: [Float], max: Bool) -> Double {
        var y = [Float](repeating: 0, count: g.outputCount)
        if max { _ = MaxPool2dKernel.forward(g, x: x, y: &y, backend: .reference) } else {
            AvgPool2dKernel.forward(g, x: x, y: &y, backend: .reference)
        }
        return dot(y, r)
    }
    for _ in 0..<3 {
        let d = rng.array(g.inputCount)
        for isMax in [true, false] {
            // Max: a step far below the value spacing. Avg is linear: a large step keeps Float rounding small.
            let h: Float = isMax ? 0.002 : 0.5
            let xp = zip(x, d).map { $0 + h * $1 }, xm = zip(x, d).map { $0 - h * $1 }
            let step = zip(xp, xm).map { $0 - $1 }
            let fd = loss(xp, max: isMax) - loss(xm, max: isMax)
            let an = dot(isMax ? dxMax : dxAvg, step)
            #expect(abs(fd - an) <= 1e-4 * max(abs(an), 1e-3), "max \(isMax): fd \(fd) vs \(an)")
        }
    }
}

@Test func poolCacheIsBitIdentical() {
    let g = poolShapes[4]
    var rng = TestRNG(55)
    let x = rng.array(g.inputCount), dy = rng.array(g.outputCount)
    var runs: [[Float]] = []
    for _ in 0..<2 {
        var y = [Float](repeating: 0, count: g.outputCount), dx = [Float](repeating: 0, count: g.inputCount)
        let ws = MaxPool2dKernel.forward(g, x: x, y: &y)
        MaxPool2dKernel.backward(g, dy: dy, workspace: ws, dx: &dx)
        runs.append(y + dx)
    }
    #expect(bitsEqual(runs[0], runs[1]))
}

// MARK: - Batch norm

struct BNRun {
    var y, mean, variance, yInf, dx, dGamma, dBeta: [Float]
}

enum BNImpl: CaseIterable { case reference, swift, oneDNNPlain, publicFast }

func runBN(n: Int, c: Int, s: Int, x: [Float], gamma: [Float], beta: [Float], dy: [Float], eps: Float,
           _ impl: BNImpl) -> BNRun {
    var r = BNRun(y: .init(repeating: .nan, count: x.count), mean: .init(repeating: .nan, count: c),
                  variance: .init(repeating: .nan, count: c), yInf: .init(repeating: .nan, count: x.count),
                  dx: .init(repeating: .nan, count: x.count), dGamma: .init(repeating: .nan, count: c),
                  dBeta: .init(repeating: .nan, count: c))
    // Inference uses fixed "running" statistics, independent of the batch.
    let rm = (0..<c).map { Float($0) * 0.1 - 0.3 }, rv = (0..<c).map { 0.5 + Float($0) * 0.05 }
    switch impl {
    case .reference, .publicFast:
        let b: KernelBackend = impl == .reference ? .reference : .oneDNN
        BatchNormKernel.forwardTraining(n: n, c: c, spatial: s, x: x, gamma: gamma, beta: beta, epsilon: eps,
                                        y: &r.y, mean: &r.mean, variance: &r.variance, backend: b)
        BatchNormKernel.forwardInference(n: n, c: c, spatial: s, x: x, gamma: gamma, beta: beta, mean: rm,
                                         variance: rv, epsilon: eps, y: &r.yInf, backend: b)
        BatchNormKernel.backward(n: n, c: c, spatial: s, x: x, dy: dy, gamma: gamma, beta: beta, mean: r.mean,
                                 variance: r.variance, epsilon: eps, dx: &r.dx, dGamma: &r.dGamma, dBeta: &r.dBeta,
                                 backend: b)
    case .swift:
        SwiftBatchNorm.forwardTraining(n: n, c: c, s: s, x: x, gamma: gamma, beta: beta, epsilon: eps, y: &r.y,
                                       mean: &r.mean, variance: &r.variance)
        SwiftBatchNorm.forwardInference(n: n, c: c, s: s, x: x, gamma: gamma, beta: beta, mean: rm, variance: rv,
                                        epsilon: eps, y: &r.yInf)
        SwiftBatchNorm.backward(n: n, c: c, s: s, x: x, dy: dy, gamma: gamma, mean: r.mean, variance: r.variance,
                                epsilon: eps, dx: &r.dx, dGamma: &r.dGamma, dBeta: &r.dBeta)
    case .oneDNNPlain:
        OneDNNBatchNorm.forwardTraining(n: n, c: c, s: s, x: x, gamma: gamma, beta: beta, epsilon: eps, y: &r.y,
                                        mean: &r.mean, variance: &r.variance)
        OneDNNBatchNorm.forwardInference(n: n, c: c, s: s, x: x, gamma: gamma, beta: beta, mean: rm, variance: rv,
                                         epsilon: eps, y: &r.yInf)
        OneDNNBatchNorm.backward(n: n, c: c, s: s, x: x, dy: dy, gamma: gamma, beta: beta, mean: r.mean,
                                 variance: r.variance, epsilon: eps, dx: &r.dx, dGamma: &r.dGamma, dBeta: &r.dBeta)
    }
    return r
}

let bnShapes: [(n: Int, c: Int, s: Int)] = [(3, 5, 11 * 9), (2, 21, 7), (8, 33, 1), (4, 16, 16 * 16), (16, 64, 35), (6, 3, 1)]

@Test(arguments: bnShapes.indices, [BNImpl.swift, .oneDNNPlain, .publicFast])
func batchNormMatchesReference(_ index: Int, _ impl: BNImpl) {
    let (n, c, s) = bnShapes[index]
    var rng = TestRNG(UInt64(200 + index))
    // An offset per channel: the statistics must not lose precision to a large mean.
    let x = (0..<(n * c * s)).map { i in rng.uniform() * 3 + Float((i / s) % c) - 2 }
    let gamma = rng.array(c), beta = rng.array(c), dy = rng.array(n * c * s)
    let ref = runBN(n: n, c: c, s: s, x: x, gamma: gamma, beta: beta, dy: dy, eps: 1e-5, .reference)
    let got = runBN(n: n, c: c, s: s, x: x, gamma: gamma, beta: beta, dy: dy, eps: 1e-5, impl)
    #expect(relativeError(got.mean, ref.mean) < 1e-5, "mean \(impl)")
    #expect(relativeError(got.variance, ref.variance) < 1e-5, "variance \(impl)")
    #expect(relativeError(got.y, ref.y) < 1e-4, "y \(impl)")
    #expect(relativeError(got.yInf, ref.yInf) < 1e-5, "inference y \(impl)")
    #expect(relativeError(got.dx, ref.dx) < 1e-4, "dx \(impl)")
    #expect(relativeError(got.dGamma, ref.dGamma) < 1e-4, "dGamma \(impl)")
    #expect(relativeError(got.dBeta, ref.dBeta) < 1e-5, "dBeta \(impl)")
}

@Test func batchNormReferenceNormalises() {
    let (n, c, s) = (4, 3, 10)
    var rng = TestRNG(9)
    let x = rng.array(n * c * s, scale: 4)
    let r = runBN(n: n, c: c, s: s, x: x, gamma: [1, 1, 1], beta: [0, 0, 0], dy: x, eps: 0, .reference)
    for ch in 0..<c {
        var m: Double = 0, v: Double = 0
        for i in 0..<n { for j in 0..<s { m += Double(r.y[(i * c + ch) * s + j]) } }
        m /= Double(n * s)
        for i in 0..<n { for j in 0..<s { v += pow2(Double(r.y[(i * c + ch) * s + j]) - m) } }
        #expect(abs(m) < 1e-6 && abs(v / Double(n * s) - 1) < 1e-5)
    }
}

func pow2(_ v: Double) -> Double { v * v }

/// Reference BN training backward vs central differences of L = ⟨y, r⟩ (y from training forward, statistics
/// included) w.r.t. x, gamma and beta along random directions. L is smooth; h = 1e-2 keeps the O(h²) error and the
/// Float rounding of the forward (≈ 1e-7·Σ|y·r| / h) both far below the tolerance.
@Test func batchNormReferenceBackwardMatchesFiniteDifferences() {
    let (n, c, s) = (3, 4, 5)
    var rng = TestRNG(77)
    let x = rng.array(n * c * s, scale: 2), gamma = rng.array(c), beta = rng.array(c), r = rng.array(n * c * s)
    let eps: Float = 1e-3
    func loss(_ x: [Float], _ g: [Float], _ b: [Float]) -> Double {
        var y = [Float](repeating: 0, count: x.count), m = [Float](repeating: 0, count: c), v = m
        BatchNormKernel.forwardTraining(n: n, c: c, spatial: s, x: x, gamma: g, beta: b, epsilon: eps, y: &y,
                                        mean: &m, variance: &v, backend: .reference)
        return dot(y, r)
    }
    let ref = runBN(n: n, c: c, s: s, x: x, gamma: gamma, beta: beta, dy: r, eps: eps, .reference)
    let h: Float = 1e-2
    for _ in 0..<3 {
        let dxDir = rng.array(x.count), dgDir = rng.array(c), dbDir = rng.array(c)
        func plus(_ a: [Float], _ d: [Float], _ sign: Float) -> [Float] { zip(a, d).map { $0 + sign * h * $1 } }
        let fdX = (loss(plus(x, dxDir, 1), gamma, beta) - loss(plus(x, dxDir, -1), gamma, beta)) / Double(2 * h)
        let fdG = (loss(x, plus(gamma, dgDir, 1), beta) - loss(x, plus(gamma, dgDir, -1), beta)) / Double(2 * h)
        let fdB = (loss(x, gamma, plus(beta, dbDir, 1)) - loss(x, gamma, plus(beta, dbDir, -1))) / Double(2 * h)
        let anX = dot(ref.dx, dxDir), anG = dot(ref.dGamma, dgDir), anB = dot(ref.dBeta, dbDir)
        #expect(abs(fdX - anX) <= 2e-3 * max(1, abs(anX)), "x: fd \(fdX) vs \(anX)")
        #expect(abs(fdG - anG) <= 2e-3 * max(1, abs(anG)), "gamma: fd \(fdG) vs \(anG)")
        #expect(abs(fdB - anB) <= 2e-3 * max(1, abs(anB)), "beta: fd \(fdB) vs \(anB)")
    }
}

@Test func batchNormIsDeterministic() {
    let (n, c, s) = (8, 32, 196)
    var rng = TestRNG(3)
    let x = rng.array(n * c * s), g = rng.array(c), b = rng.array(c), dy = rng.array(n * c * s)
    let a1 = runBN(n: n, c: c, s: s, x: x, gamma: g, beta: b, dy: dy, eps: 1e-5, .publicFast)
    let a2 = runBN(n: n, c: c, s: s, x: x, gamma: g, beta: b, dy: dy, eps: 1e-5, .publicFast)
    #expect(bitsEqual(a1.y + a1.mean + a1.variance + a1.dx + a1.dGamma, a2.y + a2.mean + a2.variance + a2.dx + a2.dGamma))
}

// MARK: - Threads and concurrency

@Test func computeThreadsSetAndRead() {
    let original = ComputeThreads.count
    #expect(original >= 1)
    ComputeThreads.set(1)
    #expect(ComputeThreads.count == 1)
    ComputeThreads.set(original)
    #expect(ComputeThreads.count == original)
}

/// Several tasks share one cached primitive set (same geometry, different buffers): the cache serialises them.
@Test func convConcurrentCallsOnOneGeometry() async {
    let g = Conv2dGeometry(batch: 2, inChannels: 8, height: 12, width: 10, outChannels: 16, kernelH: 3, kernelW: 3,
                           padH: 1, padW: 1)
    var rng = TestRNG(31)
    let w = rng.array(g.weightCount)
    let inputs = (0..<6).map { _ in rng.array(g.inputCount) }
    let expected = inputs.map { x in
        var y = [Float](repeating: 0, count: g.outputCount)
        Conv2dKernel.forward(g, x: x, weight: w, bias: nil, y: &y, backend: .reference)
        return y
    }
    let results = await withTaskGroup(of: (Int, [Float]).self) { group in
        for (i, x) in inputs.enumerated() {
            group.addTask {
                var y = [Float](repeating: 0, count: g.outputCount)
                for _ in 0..<5 { Conv2dKernel.forward(g, x: x, weight: w, bias: nil, y: &y) }
                return (i, y)
            }
        }
        var out = [[Float]](repeating: [], count: inputs.count)
        for await (i, y) in group { out[i] = y }
        return out
    }
    for i in inputs.indices { #expect(relativeError(results[i], expected[i]) < 1e-4) }
}

// MARK: - Elementwise activations (oneDNN eltwise against the scalar reference)

/// Issue 14: GELU, tanh, logistic and exp through oneDNN's eltwise primitives agree with the scalar libm loops,
/// forward and backward, over values from −10 to 10 (and the saturated tails), and their backward agrees with a
/// central difference of their own forward.
@Test(arguments: EltwiseAlgorithm.allCases)
func eltwiseMatchesReferenceAndFiniteDifferences(_ algorithm: EltwiseAlgorithm) {
    var rng = TestRNG(UInt64(41 + algorithm.rawValue))
    let n = 10_000
    var x = rng.array(n, scale: 10)
    x[0] = 0; x[1] = -30; x[2] = 30; x[3] = 1e-6
    let dy = rng.array(n)
    var fast = [Float](repeating: 0, count: n), ref = fast, dxFast = fast, dxRef = fast
    EltwiseKernel.forward(algorithm, count: n, x: x, y: &fast)
    EltwiseKernel.forward(algorithm, count: n, x: x, y: &ref, backend: .reference)
    EltwiseKernel.backward(algorithm, count: n, x: x, y: ref, dy: dy, dx: &dxFast)
    EltwiseKernel.backward(algorithm, count: n, x: x, y: ref, dy: dy, dx: &dxRef, backend: .reference)
    for i in 0..<n {
        let tol = 2e-6 * max(1, abs(ref[i]))
        #expect(abs(fast[i] - ref[i]) <= tol, "\(algorithm) f(\(x[i])): \(fast[i]) vs \(ref[i])")
        #expect(abs(dxFast[i] - dxRef[i]) <= 2e-5 * max(1, abs(dxRef[i])), "\(algorithm) f'(\(x[i])): \(dxFast[i]) vs \(dxRef[i])")
    }
    // dx against (f(x + h) − f(x − h)) / 2h of the oneDNN forward, on values where f is smooth in Float
    let h: Float = 1e-2
    var probe = (0..<n).map { i in Float(i % 400) / 100 - 2 }    // −2 … 2
    let plus = probe.map { $0 + h }, minus = probe.map { $0 - h }
    var fPlus = [Float](repeating: 0, count: n), fMinus = fPlus, fProbe = fPlus, dx = fPlus
    EltwiseKernel.forward(algorithm, count: n, x: plus, y: &fPlus)
    EltwiseKernel.forward(algorithm, count: n, x: minus, y: &fMinus)
    EltwiseKernel.forward(algorithm, count: n, x: probe, y: &fProbe)
    let ones = [Float](repeating: 1, count: n)
    // (tanh, the logistic and exp read y = f(x) only, GELU x only: `derivativeReadsOutput`)
    EltwiseKernel.backward(algorithm, count: n, x: probe, y: fProbe, dy: ones, dx: &dx)
    for i in 0..<n {
        let fd = (fPlus[i] - fMinus[i]) / (2 * h)
        #expect(abs(fd - dx[i]) <= 2e-3 * max(1, abs(dx[i])), "\(algorithm) at \(probe[i]): finite difference \(fd), backward \(dx[i])")
    }
    probe.removeAll()
}
