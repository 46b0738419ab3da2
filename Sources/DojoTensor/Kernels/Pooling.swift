// 2-D max and average pooling on NCHW tensors, forward and backward.
import CDojoKernels
import COneDNN

/// The shape of a 2-D pooling window. Padding is symmetric; `outHeight = (height + 2·padH − kernelH) / strideH + 1`
/// (floor, as PyTorch's default `ceil_mode=False`).
public struct Pool2dGeometry: Hashable, Sendable {
    public var batch, channels, height, width, kernelH, kernelW, strideH, strideW, padH, padW: Int

    /// Strides default to the kernel size (PyTorch's default).
    public init(batch: Int, channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
                strideH: Int? = nil, strideW: Int? = nil, padH: Int = 0, padW: Int = 0) {
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.strideH = strideH ?? kernelH
        self.strideW = strideW ?? kernelW
        self.padH = padH
        self.padW = padW
    }

    public var outHeight: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    public var outWidth: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    public var inputCount: Int { batch * channels * height * width }
    public var outputCount: Int { batch * channels * outHeight * outWidth }

    func validate() {
        precondition(batch > 0 && channels > 0 && height > 0 && width > 0 && kernelH > 0 && kernelW > 0
                     && strideH > 0 && strideW > 0 && padH >= 0 && padW >= 0,
                     "Pool2dGeometry: sizes must be positive: \(self)")
        precondition(2 * padH <= kernelH && 2 * padW <= kernelW,
                     "Pool2dGeometry: padding must be at most half the kernel: \(self)")
        precondition(height + 2 * padH >= kernelH && width + 2 * padW >= kernelW,
                     "Pool2dGeometry: kernel larger than padded input: \(self)")
    }
}

/// What max-pool backward needs from the forward pass: where each output's maximum came from. Produced by
/// `MaxPool2dKernel.forward`; the backward pass uses the implementation that produced it.
public final class PoolWorkspace: @unchecked Sendable {
    public let geometry: Pool2dGeometry
    /// oneDNN's workspace memory (its own argmax encoding), for the `.oneDNN` path.
    let dnnl: DnnlMemory?
    /// Reference path: for each output, the flat index `ih * width + iw` of its maximum within its input plane.
    let argmax: UnsafeMutablePointer<Int32>?

    init(_ g: Pool2dGeometry, dnnl: DnnlMemory) {
        geometry = g
        self.dnnl = dnnl
        argmax = nil
    }

    init(reference g: Pool2dGeometry) {
        geometry = g
        dnnl = nil
        argmax = .allocate(capacity: max(g.outputCount, 1))
    }

    /// Which implementation produced this workspace.
    public var backend: KernelBackend { dnnl != nil ? .oneDNN : .reference }

    deinit { argmax?.deallocate() }
}

/// Max pooling; padded positions never win. `.oneDNN` is the fastest implementation on these CPUs: the engine's own
/// loops over channel planes on `ComputeThreads.count` threads (`maxPoolPlanes`), with its own workspace (each
/// output's argmax) and a scatter for backward. oneDNN's primitives need the channel-blocked layout, and the reorders
/// around them cost more than the pooling: on the AVX-512 VM of 2026-12-05, small-cnn's two pools (b128, 28×28×32
/// and 14×14×64) took 2.3 ms forward and 2.2 ms backward through oneDNN, 1.1 and 1.1 ms in these loops; on AVX2,
/// oneDNN's took 4.5 and 4.2 ms on 128×32×28×28 before reorders. The primitives stay (`poolPrimitives`), tested.
public enum MaxPool2dKernel {
    public static func forward(_ g: Pool2dGeometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               backend: KernelBackend = .oneDNN) -> PoolWorkspace {
        g.validate()
        switch backend {
        case .reference:
            let ws = PoolWorkspace(reference: g)
            ReferenceKernels.maxPoolForward(g, x: x, y: y, argmax: ws.argmax!)
            return ws
        case .oneDNN:
            let ws = PoolWorkspace(reference: g)
            let argmax = SendablePointer(ws.argmax!)
            ComputeThreads.parallelChunks(g.batch * g.channels, elements: g.inputCount) { planes in
                maxPoolPlanes(g, x: x, y: y, argmax: argmax.p, planes: planes)
            }
            return ws
        }
    }

    /// dx is overwritten. `backend` is ignored when the workspace came from the other implementation: the
    /// workspace decides.
    public static func backward(_ g: Pool2dGeometry, dy: UnsafePointer<Float>, workspace: PoolWorkspace,
                                dx: UnsafeMutablePointer<Float>, backend: KernelBackend = .oneDNN) {
        g.validate()
        precondition(workspace.geometry == g, "MaxPool2dKernel.backward: workspace is for \(workspace.geometry), not \(g)")
        if let argmax = workspace.argmax {
            if backend == .reference {
                ReferenceKernels.maxPoolBackward(g, dy: dy, argmax: argmax, dx: dx)
            } else if g.kernelH == 2 && g.kernelW == 2 && g.strideH == 2 && g.strideW == 2 && g.padH == 0 && g.padW == 0 {
                // every input in at most one window: dx written once, no zeroing pass before the scatter (the zeroing of
                // a 12.8 MB input gradient was most of small-cnn's first pool backward)
                let d = SendablePointer(UnsafeMutablePointer(mutating: dy)), a = SendablePointer(argmax)
                let x = SendablePointer(dx)
                let inPlane = g.height * g.width, outPlane = g.outHeight * g.outWidth
                ComputeThreads.parallelChunks(g.batch * g.channels, elements: g.inputCount) { planes in
                    dojo_maxpool2x2_backward(d.p + planes.lowerBound * outPlane, a.p + planes.lowerBound * outPlane,
                                             x.p + planes.lowerBound * inPlane, planes.count, g.height, g.width)
                }
            } else {
                ComputeThreads.parallelChunks(g.batch * g.channels, elements: g.inputCount) { planes in
                    ReferenceKernels.maxPoolBackward(g, dy: dy, argmax: argmax, dx: dx, planes: planes)
                }
            }
        } else {
            poolPrimitives(g, max: true).backward(dy: dy, workspace: workspace.dnnl, dx: dx)
        }
    }
}

/// A value max pooling compares: FP32 values themselves, or the codes of a sign-magnitude Dojo format (BF16, CFP8:
/// sign bit on top, then a magnitude that grows with the code) compared by a key that orders them as their values.
protocol MaxPoolElement {
    associatedtype Key: Comparable
    /// The element every other one beats or ties: the window's start, as the reference's −∞.
    static var lowest: Self { get }
    static func key(_ v: Self) -> Key
}
extension Float: MaxPoolElement {
    static var lowest: Float { -.infinity }
    @inline(__always) static func key(_ v: Float) -> Float { v }
}
/// Sign-magnitude codes: a positive code with the sign bit set above every negative one, a negative one negated
/// (a larger magnitude, a smaller key). −0 and +0 get the same key (equal values: the first wins, as in FP32); the
/// all-ones code (the most negative value) is the lowest.
extension UInt16: MaxPoolElement {
    static var lowest: UInt16 { 0xFFFF }
    @inline(__always) static func key(_ v: UInt16) -> UInt16 { (v ^ ((0 &- (v &>> 15)) | 0x8000)) &+ (v &>> 15) }
}
extension UInt8: MaxPoolElement {
    static var lowest: UInt8 { 0xFF }
    @inline(__always) static func key(_ v: UInt8) -> UInt8 { (v ^ ((0 &- (v &>> 7)) | 0x80)) &+ (v &>> 7) }
}

extension MaxPool2dKernel {
    /// Max pooling over the codes of a packed Dojo format (`bytes` each: 2 for BF16, 1 for CFP8): each output's code
    /// is its window's largest value's code, so the output is exact in the same format and bias without a rounding,
    /// and the pass moves 1 or 2 bytes a value instead of 4. Same windows, ties and padding as `forward`; the
    /// workspace is the engine's own (`backward` scatters with it).
    public static func forward(_ g: Pool2dGeometry, codes x: UnsafeRawPointer, bytes: Int, into y: UnsafeMutableRawPointer) -> PoolWorkspace {
        g.validate()
        precondition(bytes == 1 || bytes == 2, "MaxPool2dKernel.forward(codes:): codes of 1 or 2 bytes, not \(bytes)")
        let ws = PoolWorkspace(reference: g)
        let argmax = SendablePointer(ws.argmax!), xs = UInt(bitPattern: x), ys = UInt(bitPattern: y)
        ComputeThreads.parallelChunks(g.batch * g.channels, elements: g.inputCount * bytes / 4) { planes in
            if bytes == 2 {
                maxPoolCodePlanes(g, x: UnsafePointer<UInt16>(bitPattern: xs)!, y: UnsafeMutablePointer<UInt16>(bitPattern: ys)!,
                                  argmax: argmax.p, planes: planes)
            } else {
                maxPoolCodePlanes(g, x: UnsafePointer<UInt8>(bitPattern: xs)!, y: UnsafeMutablePointer<UInt8>(bitPattern: ys)!,
                                  argmax: argmax.p, planes: planes)
            }
        }
        return ws
    }

    /// One block of outputs of the 2×2 stride-2 window from a pair of input rows (`upper` above `lower`, two codes
    /// an output; the even and odd halves are each window's columns): writes the codes, and where each came from in
    /// the plane (`start` is the block's first input). Keys as `MaxPoolElement.key`. One function per code width and
    /// block width, on purpose: written generic over the code type, Swift left the vector operations unspecialised
    /// (small-cnn's pools took 90 ms against 1.0), and one 16-wide block with partial stores for shorter rows took 1.6.
    @inline(__always)
    static func maxPoolBlock(_ upper: SIMD32<UInt16>, _ lower: SIMD32<UInt16>, at start: Int, width: Int,
                             y: UnsafeMutablePointer<UInt16>, argmax: UnsafeMutablePointer<Int32>) {
        @inline(__always) func keys(_ v: SIMD16<UInt16>) -> SIMD16<UInt16> {
            let top = SIMD16<UInt16>(repeating: 0x8000)
            return (0 &- v).replacing(with: v | top, where: (v & top) .== SIMD16<UInt16>.zero)
        }
        let a = upper.evenHalf, b = upper.oddHalf, d = lower.evenHalf, e = lower.oddHalf
        var best = keys(a), value = a, which = SIMD16<UInt16>.zero
        var k = keys(b), m = k .> best
        best.replace(with: k, where: m); value.replace(with: b, where: m); which.replace(with: 1, where: m)
        k = keys(d); m = k .> best
        best.replace(with: k, where: m); value.replace(with: d, where: m); which.replace(with: 2, where: m)
        k = keys(e); m = k .> best
        value.replace(with: e, where: m); which.replace(with: 3, where: m)
        UnsafeMutableRawPointer(y).storeBytes(of: value, as: SIMD16<UInt16>.self)
        let lanes = SIMD16<Int32>(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
        let w = SIMD16<Int32>(truncatingIfNeeded: which)
        UnsafeMutableRawPointer(argmax).storeBytes(of: SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: start)) &+ lanes &+ (w & 1) &+ (w &>> 1) &* Int32(truncatingIfNeeded: width), as: SIMD16<Int32>.self)
    }

    @inline(__always)
    static func maxPoolBlock(_ upper: SIMD16<UInt16>, _ lower: SIMD16<UInt16>, at start: Int, width: Int,
                             y: UnsafeMutablePointer<UInt16>, argmax: UnsafeMutablePointer<Int32>, count: Int = 8) {
        @inline(__always) func keys(_ v: SIMD8<UInt16>) -> SIMD8<UInt16> {
            let top = SIMD8<UInt16>(repeating: 0x8000)
            return (0 &- v).replacing(with: v | top, where: (v & top) .== SIMD8<UInt16>.zero)
        }
        let a = upper.evenHalf, b = upper.oddHalf, d = lower.evenHalf, e = lower.oddHalf
        var best = keys(a), value = a, which = SIMD8<UInt16>.zero
        var k = keys(b), m = k .> best
        best.replace(with: k, where: m); value.replace(with: b, where: m); which.replace(with: 1, where: m)
        k = keys(d); m = k .> best
        best.replace(with: k, where: m); value.replace(with: d, where: m); which.replace(with: 2, where: m)
        k = keys(e); m = k .> best
        value.replace(with: e, where: m); which.replace(with: 3, where: m)
        let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
        let w = SIMD8<Int32>(truncatingIfNeeded: which)
        let at = SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: start)) &+ lanes &+ (w & 1) &+ (w &>> 1) &* Int32(truncatingIfNeeded: width)
        if count == 8 {
            UnsafeMutableRawPointer(y).storeBytes(of: value, as: SIMD8<UInt16>.self)
            UnsafeMutableRawPointer(argmax).storeBytes(of: at, as: SIMD8<Int32>.self)
        } else {   // a row of fewer than 8 outputs: the lanes past its end read the next row, and are not kept
            for l in 0..<count { y[l] = value[l]; argmax[l] = at[l] }
        }
    }

    @inline(__always)
    static func maxPoolBlock(_ upper: SIMD32<UInt8>, _ lower: SIMD32<UInt8>, at start: Int, width: Int,
                             y: UnsafeMutablePointer<UInt8>, argmax: UnsafeMutablePointer<Int32>) {
        @inline(__always) func keys(_ v: SIMD16<UInt8>) -> SIMD16<UInt8> {
            let top = SIMD16<UInt8>(repeating: 0x80)
            return (0 &- v).replacing(with: v | top, where: (v & top) .== SIMD16<UInt8>.zero)
        }
        let a = upper.evenHalf, b = upper.oddHalf, d = lower.evenHalf, e = lower.oddHalf
        var best = keys(a), value = a, which = SIMD16<UInt8>.zero
        var k = keys(b), m = k .> best
        best.replace(with: k, where: m); value.replace(with: b, where: m); which.replace(with: 1, where: m)
        k = keys(d); m = k .> best
        best.replace(with: k, where: m); value.replace(with: d, where: m); which.replace(with: 2, where: m)
        k = keys(e); m = k .> best
        value.replace(with: e, where: m); which.replace(with: 3, where: m)
        UnsafeMutableRawPointer(y).storeBytes(of: value, as: SIMD16<UInt8>.self)
        let lanes = SIMD16<Int32>(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
        let w = SIMD16<Int32>(truncatingIfNeeded: which)
        UnsafeMutableRawPointer(argmax).storeBytes(of: SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: start)) &+ lanes &+ (w & 1) &+ (w &>> 1) &* Int32(truncatingIfNeeded: width), as: SIMD16<Int32>.self)
    }

    @inline(__always)
    static func maxPoolBlock(_ upper: SIMD16<UInt8>, _ lower: SIMD16<UInt8>, at start: Int, width: Int,
                             y: UnsafeMutablePointer<UInt8>, argmax: UnsafeMutablePointer<Int32>, count: Int = 8) {
        @inline(__always) func keys(_ v: SIMD8<UInt8>) -> SIMD8<UInt8> {
            let top = SIMD8<UInt8>(repeating: 0x80)
            return (0 &- v).replacing(with: v | top, where: (v & top) .== SIMD8<UInt8>.zero)
        }
        let a = upper.evenHalf, b = upper.oddHalf, d = lower.evenHalf, e = lower.oddHalf
        var best = keys(a), value = a, which = SIMD8<UInt8>.zero
        var k = keys(b), m = k .> best
        best.replace(with: k, where: m); value.replace(with: b, where: m); which.replace(with: 1, where: m)
        k = keys(d); m = k .> best
        best.replace(with: k, where: m); value.replace(with: d, where: m); which.replace(with: 2, where: m)
        k = keys(e); m = k .> best
        value.replace(with: e, where: m); which.replace(with: 3, where: m)
        let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
        let w = SIMD8<Int32>(truncatingIfNeeded: which)
        let at = SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: start)) &+ lanes &+ (w & 1) &+ (w &>> 1) &* Int32(truncatingIfNeeded: width)
        if count == 8 {
            UnsafeMutableRawPointer(y).storeBytes(of: value, as: SIMD8<UInt8>.self)
            UnsafeMutableRawPointer(argmax).storeBytes(of: at, as: SIMD8<Int32>.self)
        } else {   // a row of fewer than 8 outputs: the lanes past its end read the next row, and are not kept
            for l in 0..<count { y[l] = value[l]; argmax[l] = at[l] }
        }
    }

    /// `maxPoolPlanes` for codes, with the 2×2 stride-2 window 16 or 8 outputs at a time (the scalar loop's compare
    /// and select chain on vectors: the same winners, ties to the first); a row of fewer than 8 outputs is one
    /// 8-wide block of which its outputs are kept.
    static func maxPoolCodePlanes<C: FixedWidthInteger & UnsignedInteger & SIMDScalar & MaxPoolElement>(
        _ g: Pool2dGeometry, x: UnsafePointer<C>, y: UnsafeMutablePointer<C>, argmax: UnsafeMutablePointer<Int32>, planes: Range<Int>) {
        guard g.kernelH == 2 && g.kernelW == 2 && g.strideH == 2 && g.strideW == 2 && g.padH == 0 && g.padW == 0 else {
            maxPoolPlanes(g, x: x, y: y, argmax: argmax, planes: planes)
            return
        }
        let oh = g.outHeight, ow = g.outWidth, width = g.width, inPlane = g.height * width, outPlane = oh * ow
        let step = ow >= 16 ? 16 : 8, size = MemoryLayout<C>.stride
        for plane in planes {
            // rows of fewer than 8 outputs load 16 inputs from each row, reading into the rows after it: the last
            // plane, where that would read past the input, goes scalar
            if ow < 8 && (plane + 1) * inPlane + 16 > g.inputCount {
                maxPoolPlanes(g, x: x, y: y, argmax: argmax, planes: plane..<plane + 1)
                continue
            }
            let xp = UnsafeRawPointer(x + plane * inPlane), yp = y + plane * outPlane, ap = argmax + plane * outPlane
            for r in 0..<oh {
                let top = 2 * r * width, below = top + width
                // a block at a time; the last block overlaps the one before it (the same outputs written twice)
                var c = 0
                while c < ow {
                    let c0 = max(0, min(c, ow - step)), i = top + 2 * c0, j = below + 2 * c0, n = min(step, ow)
                    let yo = UnsafeMutableRawPointer(yp + r * ow + c0), ao = ap + r * ow + c0
                    switch (size, step) {
                    case (2, 16): maxPoolBlock(xp.loadUnaligned(fromByteOffset: 2 * i, as: SIMD32<UInt16>.self),
                                               xp.loadUnaligned(fromByteOffset: 2 * j, as: SIMD32<UInt16>.self),
                                               at: i, width: width, y: yo.assumingMemoryBound(to: UInt16.self), argmax: ao)
                    case (2, _): maxPoolBlock(xp.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self),
                                              xp.loadUnaligned(fromByteOffset: 2 * j, as: SIMD16<UInt16>.self),
                                              at: i, width: width, y: yo.assumingMemoryBound(to: UInt16.self), argmax: ao, count: n)
                    case (_, 16): maxPoolBlock(xp.loadUnaligned(fromByteOffset: i, as: SIMD32<UInt8>.self),
                                               xp.loadUnaligned(fromByteOffset: j, as: SIMD32<UInt8>.self),
                                               at: i, width: width, y: yo.assumingMemoryBound(to: UInt8.self), argmax: ao)
                    default: maxPoolBlock(xp.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self),
                                          xp.loadUnaligned(fromByteOffset: j, as: SIMD16<UInt8>.self),
                                          at: i, width: width, y: yo.assumingMemoryBound(to: UInt8.self), argmax: ao, count: n)
                    }
                    c = c0 + step
                }
            }
        }
    }

    /// The windows of `planes`: each output the first largest element of its window (strictly larger wins, scanning
    /// rows then columns, as the reference), and where it lies in its input plane. The 2×2 stride-2 window without
    /// padding (the CNNs' pooling) has a loop of its own, with no bounds to clip.
    @inline(__always)
    static func maxPoolPlanes<E: MaxPoolElement>(_ g: Pool2dGeometry, x: UnsafePointer<E>, y: UnsafeMutablePointer<E>,
                                                argmax: UnsafeMutablePointer<Int32>, planes: Range<Int>) {
        let oh = g.outHeight, ow = g.outWidth, width = g.width, inPlane = g.height * width, outPlane = oh * ow
        @inline(__always) func pick(_ v: E, _ i: Int, _ best: inout E.Key, _ value: inout E, _ at: inout Int) {
            let k = E.key(v), better = k > best
            best = better ? k : best
            value = better ? v : value
            at = better ? i : at
        }
        let lowestKey = E.key(E.lowest)
        if g.kernelH == 2 && g.kernelW == 2 && g.strideH == 2 && g.strideW == 2 && g.padH == 0 && g.padW == 0 {
            for plane in planes {
                let xp = x + plane * inPlane, yp = y + plane * outPlane, ap = argmax + plane * outPlane
                for r in 0..<oh {
                    let top = 2 * r * width, below = top + width
                    for c in 0..<ow {
                        let i = top + 2 * c, j = below + 2 * c
                        var best = lowestKey, value = E.lowest, at = i
                        pick(xp[i], i, &best, &value, &at)
                        pick(xp[i + 1], i + 1, &best, &value, &at)
                        pick(xp[j], j, &best, &value, &at)
                        pick(xp[j + 1], j + 1, &best, &value, &at)
                        yp[r * ow + c] = value
                        ap[r * ow + c] = Int32(truncatingIfNeeded: at)
                    }
                }
            }
            return
        }
        for plane in planes {
            let xp = x + plane * inPlane, yp = y + plane * outPlane, ap = argmax + plane * outPlane
            for r in 0..<oh {
                let h0 = max(r * g.strideH - g.padH, 0), h1 = min(r * g.strideH - g.padH + g.kernelH, g.height)
                for c in 0..<ow {
                    let w0 = max(c * g.strideW - g.padW, 0), w1 = min(c * g.strideW - g.padW + g.kernelW, width)
                    var best = lowestKey, value = E.lowest, at = h0 * width + w0
                    for ih in h0..<h1 {
                        for iw in w0..<w1 { let i = ih * width + iw; pick(xp[i], i, &best, &value, &at) }
                    }
                    yp[r * ow + c] = value
                    ap[r * ow + c] = Int32(truncatingIfNeeded: at)
                }
            }
        }
    }
}

/// Average pooling with padding counted in the divisor (every window divides by kernelH·kernelW), as PyTorch's
/// default `count_include_pad=True`.
public enum AvgPool2dKernel {
    public static func forward(_ g: Pool2dGeometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               backend: KernelBackend = .oneDNN) {
        g.validate()
        switch backend {
        case .reference: ReferenceKernels.avgPoolForward(g, x: x, y: y)
        case .oneDNN: poolPrimitives(g, max: false).avgForward(x: x, y: y)
        }
    }

    /// dx is overwritten.
    public static func backward(_ g: Pool2dGeometry, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                backend: KernelBackend = .oneDNN) {
        g.validate()
        switch backend {
        case .reference: ReferenceKernels.avgPoolBackward(g, dy: dy, dx: dx)
        case .oneDNN: poolPrimitives(g, max: false).backward(dy: dy, workspace: nil, dx: dx)
        }
    }
}

struct PoolKey: Hashable, Sendable {
    var g: Pool2dGeometry
    var max: Bool
}

let poolCache = DnnlCache<PoolKey, PoolPrimitives>()

@_spi(Testing) public func poolPrimitives(_ g: Pool2dGeometry, max: Bool) -> PoolPrimitives {
    poolCache.get(PoolKey(g: g, max: max)) { PoolPrimitives(g, max: max) }
}

/// The channel-blocked activation layout oneDNN's jit kernels use on this CPU: nChw16c with AVX-512, nChw8c otherwise.
let dnnlBlockedActivationTag: dnnl_format_tag_t = {
    let isa = dnnl_get_effective_cpu_isa().rawValue, avx512 = dnnl_cpu_isa_avx512_core.rawValue
    return isa & avx512 == avx512 ? dnnl_nChw16c : dnnl_nChw8c
}()

/// Forward and backward pooling primitives for one geometry. oneDNN's plain-NCHW pooling (`simple_nchw`) is
/// 10-40× slower than its jit kernels on the channel-blocked layout, so x, y, dy and dx are reordered to and from
/// that layout around each call (each reorder is one streaming pass over the tensor).
@_spi(Testing) public final class PoolPrimitives: DnnlExecutable, @unchecked Sendable {
    let fwd: DnnlPrimitive, bwd: DnnlPrimitive
    let x: DnnlStaged, y: DnnlStaged, dx: DnnlStaged, dy: DnnlStaged
    let workspaceMD: dnnl_memory_desc_t?

    init(_ g: Pool2dGeometry, max isMax: Bool) {
        let srcDims = [g.batch, g.channels, g.height, g.width], dstDims = [g.batch, g.channels, g.outHeight, g.outWidth]
        var src = dnnlMD(srcDims, dnnlBlockedActivationTag)
        var dst = dnnlMD(dstDims, dnnl_format_tag_any)
        let strides = [dnnl_dim_t(g.strideH), dnnl_dim_t(g.strideW)]
        let kernel = [dnnl_dim_t(g.kernelH), dnnl_dim_t(g.kernelW)]
        let pad = [dnnl_dim_t(g.padH), dnnl_dim_t(g.padW)]
        let alg = isMax ? dnnl_pooling_max : dnnl_pooling_avg_include_padding
        let what = "\(isMax ? "max" : "avg") pooling \(g)"
        var fd = dnnl_pooling_desc_t(), bd = dnnl_pooling_desc_t()
        dnnlCheck(dnnl_pooling_forward_desc_init(&fd, dnnl_forward_training, alg, &src, &dst, strides, kernel, pad, pad),
                  "\(what) forward descriptor")
        fwd = DnnlPrimitive(op: &fd, what)
        var fdst = fwd.md(dnnl_query_dst_md)
        dnnlCheck(dnnl_pooling_backward_desc_init(&bd, alg, &src, &fdst, strides, kernel, pad, pad),
                  "\(what) backward descriptor")
        bwd = DnnlPrimitive(op: &bd, hint: fwd, what)
        let userSrc = dnnlMD(srcDims, dnnl_nchw), userDst = dnnlMD(dstDims, dnnl_nchw)
        x = DnnlStaged(user: userSrc, want: fwd.md(dnnl_query_src_md), input: true)
        y = DnnlStaged(user: userDst, want: fdst, input: false)
        dx = DnnlStaged(user: userSrc, want: bwd.md(dnnl_query_diff_src_md), input: false)
        dy = DnnlStaged(user: userDst, want: bwd.md(dnnl_query_diff_dst_md), input: true)
        if isMax {
            var ws = fwd.md(dnnl_query_workspace_md)
            precondition(dnnl_memory_desc_get_size(&ws) > 0, "\(what): no workspace")
            workspaceMD = ws
        } else {
            workspaceMD = nil
        }
        super.init()
    }

    @_spi(Testing) public func maxForward(_ g: Pool2dGeometry, x xp: UnsafePointer<Float>, y yp: UnsafeMutablePointer<Float>) -> PoolWorkspace {
        let ws = DnnlMemory(workspaceMD!, owned: true)
        exclusive {
            x.pull(xp, stream)
            y.bind(yp)
            fwd.run(stream, [dnnlArg(DNNL_ARG_SRC, x.prim), dnnlArg(DNNL_ARG_DST, y.prim), dnnlArg(DNNL_ARG_WORKSPACE, ws)])
            y.push(stream)
            stream.wait()
        }
        return PoolWorkspace(g, dnnl: ws)
    }

    func avgForward(x xp: UnsafePointer<Float>, y yp: UnsafeMutablePointer<Float>) {
        exclusive {
            x.pull(xp, stream)
            y.bind(yp)
            fwd.run(stream, [dnnlArg(DNNL_ARG_SRC, x.prim), dnnlArg(DNNL_ARG_DST, y.prim)])
            y.push(stream)
            stream.wait()
        }
    }

    func backward(dy dyp: UnsafePointer<Float>, workspace: DnnlMemory?, dx dxp: UnsafeMutablePointer<Float>) {
        exclusive {
            dy.pull(dyp, stream)
            dx.bind(dxp)
            var args = [dnnlArg(DNNL_ARG_DIFF_DST, dy.prim), dnnlArg(DNNL_ARG_DIFF_SRC, dx.prim)]
            if let workspace { args.append(dnnlArg(DNNL_ARG_WORKSPACE, workspace)) }
            bwd.run(stream, args)
            dx.push(stream)
            stream.wait()
        }
    }
}
