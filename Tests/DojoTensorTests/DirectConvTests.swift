import DojoNumerics
import Testing
@_spi(Testing) import DojoTensor

/// The engine's direct loops for stride-1 convolutions of inputs with a few channels (a network's first layer):
/// forward and the weight gradient against the pure-Swift reference and against oneDNN, and the forward's rounding
/// into codes against rounding its FP32 output afterwards.
@Suite struct DirectConvTests {
    static let shapes: [Conv2dGeometry] = [
        Conv2dGeometry(batch: 5, inChannels: 1, height: 28, width: 28, outChannels: 32, kernelH: 3, kernelW: 3, padH: 1, padW: 1),
        Conv2dGeometry(batch: 3, inChannels: 3, height: 13, width: 11, outChannels: 17, kernelH: 3, kernelW: 3, padH: 1, padW: 1),
        Conv2dGeometry(batch: 2, inChannels: 2, height: 7, width: 9, outChannels: 5, kernelH: 5, kernelW: 3, padH: 2, padW: 1),
        Conv2dGeometry(batch: 2, inChannels: 1, height: 9, width: 10, outChannels: 8, kernelH: 7, kernelW: 7, padH: 3, padW: 3),
        Conv2dGeometry(batch: 3, inChannels: 4, height: 6, width: 5, outChannels: 7, kernelH: 1, kernelW: 1),
        Conv2dGeometry(batch: 2, inChannels: 3, height: 8, width: 6, outChannels: 4, kernelH: 3, kernelW: 2),  // no padding
    ]

    @Test(arguments: shapes.indices, [true, false])
    func matchesTheReferenceAndOneDNN(_ index: Int, _ withBias: Bool) {
        let g = Self.shapes[index]
        #expect(DirectConv.handles(g))
        var rng = TestRNG(UInt64(300 + index))
        let x = rng.array(g.inputCount), w = rng.array(g.weightCount, scale: 0.5), dy = rng.array(g.outputCount)
        let b: [Float]? = withBias ? rng.array(g.outChannels) : nil
        var y = [Float](repeating: 0, count: g.outputCount), dw = [Float](repeating: 0, count: g.weightCount)
        var db = [Float](repeating: 0, count: g.outChannels)
        let result = b.withOptionalPointer { DirectConv.forward(g, x: x, weight: w, bias: $0, y: &y) }
        #expect(!result.rounded && result.codes == nil)
        if withBias {
            db.withUnsafeMutableBufferPointer { DirectConv.backwardWeights(g, x: x, dy: dy, dWeight: &dw, dBias: $0.baseAddress!) }
        } else {
            DirectConv.backwardWeights(g, x: x, dy: dy, dWeight: &dw, dBias: nil)
        }
        let ref = runConv(g, x: x, w: w, b: b, dy: dy, backend: .reference)
        #expect(relativeError(y, ref.y) < 1e-5, "forward \(g)")
        #expect(relativeError(dw, ref.dw) < 1e-5, "weight gradient \(g)")
        if withBias { #expect(relativeError(db, ref.db) < 1e-5, "bias gradient \(g)") }
        // oneDNN's blocked kernels on the same shape (the engine's loops off)
        let dnnl = Engine.$directConvolutions.withValue(false) { () -> ConvRun in
            #expect(!DirectConv.handles(g))
            return runConv(g, x: x, w: w, b: b, dy: dy, backend: .oneDNN)
        }
        #expect(relativeError(y, dnnl.y) < 1e-5 && relativeError(dw, dnnl.dw) < 1e-5, "against oneDNN \(g)")
        #expect(y.contains { $0 != 0 } && dw.contains { $0 != 0 })
    }

    /// Strides above 1, groups, many channels and large kernels are not taken.
    @Test func takesOnlyFewChannelsAtStrideOne() {
        let base = Self.shapes[0]
        var strided = base; strided.strideH = 2; strided.strideW = 2
        var wide = base; wide.inChannels = 5
        var grouped = Self.shapes[4]; grouped.groups = 2; grouped.outChannels = 8
        var big = Self.shapes[3]; big.inChannels = 2   // 98 taps
        #expect(!DirectConv.handles(strided) && !DirectConv.handles(wide) && !DirectConv.handles(grouped) && !DirectConv.handles(big))
    }

    /// Rounded into codes as each image is made (BF16 and CFP8): the same codes as the FP32 output rounded and
    /// packed afterwards, with and without the FP32 values written too.
    @Test(arguments: [Format.bf16, .cfp8_143], [true, false])
    func roundsIntoCodesAsAPassAfterWould(_ f: Format, _ codesOnly: Bool) throws {
        let g = Self.shapes[0], nf = try NumberFormat(f, bias: f == .bf16 ? nil : 10)
        var rng = TestRNG(77)
        let x = rng.array(g.inputCount), w = rng.array(g.weightCount, scale: 0.5), b = rng.array(g.outChannels)
        var plain = [Float](repeating: 0, count: g.outputCount)
        _ = DirectConv.forward(g, x: x, weight: w, bias: b, y: &plain)
        _ = nf.roundInPlace(UnsafeMutableBufferPointer(start: &plain, count: plain.count), threads: 1)
        let bytes = try #require(nf.packedBytes)
        var expected = [UInt8](repeating: 0, count: plain.count * bytes)
        #expect(nf.packExactly(plain, count: plain.count, into: &expected))
        let task = RoundingTask(bf16NearestEven: f == .bf16, numberFormat: nf, span: { p, n, _ in
            (nf.roundInPlace(UnsafeMutableBufferPointer(start: p, count: n), threads: 1).rawValue, 0)
        }, done: { _ in })
        var y = [Float](repeating: .nan, count: g.outputCount)
        let result = DirectConv.forward(g, x: x, weight: w, bias: b, y: &y, round: task, withCodes: true, codesOnly: codesOnly)
        let codes = try #require(result.codes)
        defer { codes.deallocate() }
        #expect(result.rounded && result.onlyCodes == codesOnly)
        #expect(Array(UnsafeBufferPointer(start: codes.assumingMemoryBound(to: UInt8.self), count: expected.count)) == expected)
        if !codesOnly { #expect(y.map(\.bitPattern) == plain.map(\.bitPattern)) }
    }
}

extension Optional where Wrapped == [Float] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}
