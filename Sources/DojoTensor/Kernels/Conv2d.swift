// 2-D convolution (NCHW activations, [OC, IC/groups, KH, KW] weights), forward and both backward passes.
import CDojoKernels
import COneDNN
import Synchronization

/// The shape of a 2-D convolution. Padding is symmetric (`padH` top and bottom, `padW` left and right).
public struct Conv2dGeometry: Hashable, Sendable {
    public var batch, inChannels, height, width, outChannels, kernelH, kernelW, strideH, strideW, padH, padW, groups: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernelH: Int, kernelW: Int, strideH: Int = 1, strideW: Int = 1, padH: Int = 0, padW: Int = 0,
                groups: Int = 1) {
        self.batch = batch
        self.inChannels = inChannels
        self.height = height
        self.width = width
        self.outChannels = outChannels
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.strideH = strideH
        self.strideW = strideW
        self.padH = padH
        self.padW = padW
        self.groups = groups
    }

    public var outHeight: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    public var outWidth: Int { (width + 2 * padW - kernelW) / strideW + 1 }

    /// Element counts of x, y and the weights.
    public var inputCount: Int { batch * inChannels * height * width }
    public var outputCount: Int { batch * outChannels * outHeight * outWidth }
    public var weightCount: Int { outChannels * (inChannels / groups) * kernelH * kernelW }

    /// Multiply-adds × 2 of one pass (forward, backward-data and backward-weights each cost this much).
    public var flops: Double {
        2.0 * Double(outputCount) * Double(inChannels / groups) * Double(kernelH * kernelW)
    }

    func validate() {
        precondition(batch > 0 && inChannels > 0 && height > 0 && width > 0 && outChannels > 0
                     && kernelH > 0 && kernelW > 0 && strideH > 0 && strideW > 0 && padH >= 0 && padW >= 0
                     && groups > 0, "Conv2dGeometry: sizes must be positive: \(self)")
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2dGeometry: channels must divide by groups: \(self)")
        precondition(height + 2 * padH >= kernelH && width + 2 * padW >= kernelW,
                     "Conv2dGeometry: kernel larger than padded input: \(self)")
    }
}

/// What a forward convolution did with its output: `rounded` by the rounding it was given (else the caller rounds
/// it), its `codes` when it wrote them (the caller owns them), and `onlyCodes`: the FP32 output left unwritten, the
/// codes the only copy of the values.
public struct ConvForwardResult {
    public var rounded: Bool
    public var codes: UnsafeMutableRawPointer?
    public var onlyCodes: Bool
}

/// Convolution kernels. `.oneDNN` runs cached oneDNN primitives in the layouts oneDNN prefers, reordering from and
/// to the caller's NCHW/OIHW buffers around each call; `.reference` runs direct loops. Outputs are overwritten.
public enum Conv2dKernel {
    /// `round`: the output rounded as it is written, when the primitive makes it in a channel-blocked layout: the
    /// reorder into NCHW then runs here, and rounds each block of planes while it is in cache. `withCodes` (with
    /// `round`): the rounded values' codes written too, in the rounding's format (`packedBytes` a value). Returns
    /// whether it rounded (false: the caller rounds the output in a pass of its own) and the codes, when it wrote them
    /// (the caller owns them: `Storage.adoptCodes`). `codesOnly` (with `withCodes`): the codes written in place of the
    /// FP32 output, which is then left unwritten (`onlyCodes` in the result says it was; when a value could not be
    /// coded, the FP32 output is written after all, with no codes).
    @discardableResult
    public static func forward(_ g: Conv2dGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                               backend: KernelBackend = .oneDNN, round: RoundingTask? = nil,
                               withCodes: Bool = false, codesOnly: Bool = false, inputID: Int? = nil) -> ConvForwardResult {
        forward(g, x: UnsafeRawPointer(x), weight: UnsafeRawPointer(weight), bf16: false, bias: bias, y: y, backend: backend,
                round: round, withCodes: withCodes, codesOnly: codesOnly, inputID: inputID)
    }

    /// The forward pass on BF16 operands (`x` and `weight` as BF16 bits: values exact in BF16, `BF16Operand`) with
    /// FP32 accumulation and an FP32 output, on oneDNN's BF16 convolution where the CPU has native BF16
    /// (`BF16Gemm.isEnabled`): the FP32 convolution's sums in another order. The backward passes likewise.
    @discardableResult
    public static func forwardBF16(_ g: Conv2dGeometry, x: UnsafePointer<UInt16>, weight: UnsafePointer<UInt16>,
                                   bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, round: RoundingTask? = nil,
                                   withCodes: Bool = false, codesOnly: Bool = false, inputID: Int? = nil) -> ConvForwardResult {
        forward(g, x: UnsafeRawPointer(x), weight: UnsafeRawPointer(weight), bf16: true, bias: bias, y: y, backend: .oneDNN,
                round: round, withCodes: withCodes, codesOnly: codesOnly, inputID: inputID)
    }

    static func forward(_ g: Conv2dGeometry, x: UnsafeRawPointer, weight: UnsafeRawPointer, bf16: Bool,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, backend: KernelBackend,
                        round: RoundingTask?, withCodes: Bool, codesOnly: Bool, inputID: Int? = nil) -> ConvForwardResult {
        g.validate()
        switch backend {
        case .reference:
            precondition(!bf16, "BF16 operands on the reference kernels")
            ReferenceKernels.convForward(g, x: x.assumingMemoryBound(to: Float.self), weight: weight.assumingMemoryBound(to: Float.self),
                                         bias: bias, y: y)
            return ConvForwardResult(rounded: false, codes: nil, onlyCodes: false)
        case .oneDNN:
            let key = ConvKey(g: g, pass: .forward, bias: bias != nil, bf16: bf16)
            let p = convCache.get(key) { ConvPrimitives(g, .forward, bias: bias != nil, bf16: bf16) }
            return p.forward(x: x, weight: weight, bias: bias, y: y, round: round, withCodes: withCodes, codesOnly: codesOnly,
                             inputID: inputID)
        }
    }

    public static func backwardData(_ g: Conv2dGeometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    dx: UnsafeMutablePointer<Float>, backend: KernelBackend = .oneDNN) {
        g.validate()
        switch backend {
        case .reference: ReferenceKernels.convBackwardData(g, dy: dy, weight: weight, dx: dx)
        case .oneDNN:
            let p = convCache.get(ConvKey(g: g, pass: .backwardData, bias: false)) { ConvPrimitives(g, .backwardData, bias: false) }
            p.backwardData(dy: dy, weight: weight, dx: dx)
        }
    }

    /// `backwardData` on BF16 operands (`forwardBF16`).
    public static func backwardDataBF16(_ g: Conv2dGeometry, dy: UnsafePointer<UInt16>, weight: UnsafePointer<UInt16>,
                                        dx: UnsafeMutablePointer<Float>) {
        g.validate()
        let p = convCache.get(ConvKey(g: g, pass: .backwardData, bias: false, bf16: true)) { ConvPrimitives(g, .backwardData, bias: false, bf16: true) }
        p.backwardData(dy: dy, weight: weight, dx: dx)
    }

    /// `backwardWeights` on BF16 operands (`forwardBF16`); the weight and bias gradients in FP32.
    public static func backwardWeightsBF16(_ g: Conv2dGeometry, x: UnsafePointer<UInt16>, dy: UnsafePointer<UInt16>,
                                           dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?, inputID: Int? = nil) {
        g.validate()
        let p = convCache.get(ConvKey(g: g, pass: .backwardWeights, bias: dBias != nil, bf16: true)) {
            ConvPrimitives(g, .backwardWeights, bias: dBias != nil, bf16: true)
        }
        p.backwardWeights(x: x, dy: dy, dWeight: dWeight, dBias: dBias, inputID: inputID)
    }

    /// `inputID`: a number that names x's values for as long as they stay the same (a tensor's `serial`): with it, the
    /// weight gradient reads x as the forward pass of the same geometry and the same `inputID` reordered it, when that
    /// buffer still holds it (`ConvPrimitives.stagedInputID`), instead of reordering x again.
    public static func backwardWeights(_ g: Conv2dGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                       dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
                                       backend: KernelBackend = .oneDNN, inputID: Int? = nil) {
        g.validate()
        switch backend {
        case .reference: ReferenceKernels.convBackwardWeights(g, x: x, dy: dy, dWeight: dWeight, dBias: dBias)
        case .oneDNN:
            let p = convCache.get(ConvKey(g: g, pass: .backwardWeights, bias: dBias != nil)) {
                ConvPrimitives(g, .backwardWeights, bias: dBias != nil)
            }
            p.backwardWeights(x: x, dy: dy, dWeight: dWeight, dBias: dBias, inputID: inputID)
        }
    }

    /// Both gradients of one convolution (x's and the weights'), on oneDNN: where both passes want dy in the same
    /// blocked layout, dy is reordered into it once and read by both (each pass alone reorders it for itself).
    /// `bf16`: the operands (dy, the weights, x) are BF16 bits, as `backwardDataBF16` and `backwardWeightsBF16` take them.
    static func backwardBoth(_ g: Conv2dGeometry, bf16: Bool, dy: UnsafeRawPointer, weight: UnsafeRawPointer, x: UnsafeRawPointer,
                             dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
                             inputID: Int?) {
        g.validate()
        let data = convCache.get(ConvKey(g: g, pass: .backwardData, bias: false, bf16: bf16)) {
            ConvPrimitives(g, .backwardData, bias: false, bf16: bf16)
        }
        let weights = convCache.get(ConvKey(g: g, pass: .backwardWeights, bias: dBias != nil, bf16: bf16)) {
            ConvPrimitives(g, .backwardWeights, bias: dBias != nil, bf16: bf16)
        }
        ConvPrimitives.backwardBoth(data: data, weights: weights, dy: dy, weight: weight, x: x, dx: dx, dWeight: dWeight, dBias: dBias,
                                    inputID: inputID)
    }

    /// Both gradients on FP32 operands (`backwardData` and `backwardWeights` in one call, dy reordered once).
    public static func backward(_ g: Conv2dGeometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
                                inputID: Int? = nil) {
        backwardBoth(g, bf16: false, dy: dy, weight: weight, x: x, dx: dx, dWeight: dWeight, dBias: dBias, inputID: inputID)
    }

    /// Both gradients on BF16 operands (`backwardDataBF16` and `backwardWeightsBF16` in one call, dy reordered once).
    public static func backwardBF16(_ g: Conv2dGeometry, dy: UnsafePointer<UInt16>, weight: UnsafePointer<UInt16>, x: UnsafePointer<UInt16>,
                                    dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
                                    inputID: Int? = nil) {
        backwardBoth(g, bf16: true, dy: dy, weight: weight, x: x, dx: dx, dWeight: dWeight, dBias: dBias, inputID: inputID)
    }

    /// Number of cached oneDNN primitive sets (one per geometry, pass and bias/no-bias).
    public static var cachedPrimitiveCount: Int { convCache.count }

    /// Whether the oneDNN primitives for this geometry and pass exist already (`bias` is ignored for backwardData).
    public static func isCached(_ g: Conv2dGeometry, pass: ConvPass, bias: Bool) -> Bool {
        convCache.contains(ConvKey(g: g, pass: pass, bias: pass == .backwardData ? false : bias))
    }

    /// The oneDNN implementations a pass uses for `g` (e.g. `jit:avx512_core`), creating them if needed.
    public static func implementation(_ g: Conv2dGeometry, pass: ConvPass) -> String {
        g.validate()
        return convCache.get(ConvKey(g: g, pass: pass, bias: pass != .backwardData)) {
            ConvPrimitives(g, pass, bias: pass != .backwardData)
        }.main.implementation
    }

    public enum ConvPass: Hashable, Sendable { case forward, backwardData, backwardWeights }
}

struct ConvKey: Hashable, Sendable {
    var g: Conv2dGeometry
    var pass: Conv2dKernel.ConvPass
    var bias: Bool
    /// BF16 operands (x, the weights, dy), FP32 results
    var bf16 = false
}

let convCache = DnnlCache<ConvKey, ConvPrimitives>()

/// One pass of one convolution geometry: the primitive, its staged memories and prebuilt argument list.
final class ConvPrimitives: DnnlExecutable, @unchecked Sendable {
    let main: DnnlPrimitive
    let src: DnnlStaged, wei: DnnlStaged, dst: DnnlStaged
    let bias: DnnlMemory?
    let args: [dnnl_exec_arg_t]

    /// `bf16`: the operands (x and the weights forward; dy and the weights for the input gradient; x and dy for the
    /// weight gradient) in BF16, the results in FP32.
    init(_ g: Conv2dGeometry, _ pass: Conv2dKernel.ConvPass, bias hasBias: Bool, bf16: Bool = false) {
        let any = dnnl_format_tag_any
        let srcDims = [g.batch, g.inChannels, g.height, g.width]
        let dstDims = [g.batch, g.outChannels, g.outHeight, g.outWidth]
        let weiDims = g.groups == 1
            ? [g.outChannels, g.inChannels, g.kernelH, g.kernelW]
            : [g.groups, g.outChannels / g.groups, g.inChannels / g.groups, g.kernelH, g.kernelW]
        let weiTag = g.groups == 1 ? dnnl_oihw : dnnl_goihw
        let half = bf16 ? dnnl_bf16 : dnnl_f32
        // the data type of each tensor in this pass: the operands in `half`, the result in FP32
        let srcType = bf16 && pass == .backwardData ? dnnl_f32 : half
        let weiType = bf16 && pass == .backwardWeights ? dnnl_f32 : half
        let dstType = bf16 && pass == .forward ? dnnl_f32 : half
        var srcAny = dnnlMD(srcDims, any, srcType), dstAny = dnnlMD(dstDims, any, dstType), weiAny = dnnlMD(weiDims, any, weiType)
        var biasMD = dnnlMD([g.outChannels], dnnl_x)
        let strides = [dnnl_dim_t(g.strideH), dnnl_dim_t(g.strideW)]
        let pad = [dnnl_dim_t(g.padH), dnnl_dim_t(g.padW)]
        let what = "convolution \(pass) \(g)"

        var fd = dnnl_convolution_desc_t()
        let fwdStatus = hasBias && pass != .backwardData
            ? dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                                 &srcAny, &weiAny, &biasMD, &dstAny, strides, pad, pad)
            : dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                                 &srcAny, &weiAny, nil, &dstAny, strides, pad, pad)
        dnnlCheck(fwdStatus, "\(what) forward descriptor")
        let fwd: DnnlPrimitive
        if bf16 && pass != .forward {
            // the backward passes' hint: the forward pass on BF16 source, weights and output
            var hs = dnnlMD(srcDims, any, dnnl_bf16), hw = dnnlMD(weiDims, any, dnnl_bf16), hd = dnnlMD(dstDims, any, dnnl_bf16)
            var hint = dnnl_convolution_desc_t()
            dnnlCheck(hasBias && pass == .backwardWeights
                      ? dnnl_convolution_forward_desc_init(&hint, dnnl_forward_training, dnnl_convolution_direct, &hs, &hw, &biasMD, &hd, strides, pad, pad)
                      : dnnl_convolution_forward_desc_init(&hint, dnnl_forward_training, dnnl_convolution_direct, &hs, &hw, nil, &hd, strides, pad, pad),
                      "\(what) BF16 forward hint")
            fwd = DnnlPrimitive(op: &hint, what)
        } else {
            fwd = DnnlPrimitive(op: &fd, what)
        }

        let userSrc = dnnlMD(srcDims, dnnl_nchw, srcType), userDst = dnnlMD(dstDims, dnnl_nchw, dstType),
            userWei = dnnlMD(weiDims, weiTag, weiType)
        switch pass {
        case .forward:
            main = fwd
            src = DnnlStaged(user: userSrc, want: fwd.md(dnnl_query_src_md), input: true)
            wei = DnnlStaged(user: userWei, want: fwd.md(dnnl_query_weights_md), input: true)
            dst = DnnlStaged(user: userDst, want: fwd.md(dnnl_query_dst_md), input: false)
            bias = hasBias ? DnnlMemory(fwd.md(dnnl_query_weights_md, 1), owned: false) : nil
            var a = [dnnlArg(DNNL_ARG_SRC, src.prim), dnnlArg(DNNL_ARG_WEIGHTS, wei.prim), dnnlArg(DNNL_ARG_DST, dst.prim)]
            if let b = bias { a.append(dnnlArg(DNNL_ARG_BIAS, b)) }
            args = a
        case .backwardData:
            var bd = dnnl_convolution_desc_t()
            dnnlCheck(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &srcAny, &weiAny, &dstAny,
                                                               strides, pad, pad), "\(what) descriptor")
            main = DnnlPrimitive(op: &bd, hint: fwd, what)
            src = DnnlStaged(user: userSrc, want: main.md(dnnl_query_diff_src_md), input: false)   // dx
            wei = DnnlStaged(user: userWei, want: main.md(dnnl_query_weights_md), input: true)
            dst = DnnlStaged(user: userDst, want: main.md(dnnl_query_diff_dst_md), input: true)    // dy
            bias = nil
            args = [dnnlArg(DNNL_ARG_DIFF_DST, dst.prim), dnnlArg(DNNL_ARG_WEIGHTS, wei.prim),
                    dnnlArg(DNNL_ARG_DIFF_SRC, src.prim)]
        case .backwardWeights:
            var wd = dnnl_convolution_desc_t()
            let status = hasBias
                ? dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &srcAny, &weiAny, &biasMD,
                                                              &dstAny, strides, pad, pad)
                : dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &srcAny, &weiAny, nil,
                                                              &dstAny, strides, pad, pad)
            dnnlCheck(status, "\(what) descriptor")
            main = DnnlPrimitive(op: &wd, hint: fwd, what)
            src = DnnlStaged(user: userSrc, want: main.md(dnnl_query_src_md), input: true)
            wei = DnnlStaged(user: userWei, want: main.md(dnnl_query_diff_weights_md), input: false)  // dW
            dst = DnnlStaged(user: userDst, want: main.md(dnnl_query_diff_dst_md), input: true)      // dy
            bias = hasBias ? DnnlMemory(main.md(dnnl_query_diff_weights_md, 1), owned: false) : nil
            var a = [dnnlArg(DNNL_ARG_SRC, src.prim), dnnlArg(DNNL_ARG_DIFF_DST, dst.prim),
                     dnnlArg(DNNL_ARG_DIFF_WEIGHTS, wei.prim)]
            if let b = bias { a.append(dnnlArg(DNNL_ARG_DIFF_BIAS, b)) }
            args = a
        }
        if let b = bias {
            precondition(dnnlEqual(b.md, biasMD), "\(what): oneDNN chose a non-plain bias layout")
        }
        // the forward output in channel blocks of 8 or 16 (nChw8c, nChw16c) with no padded channels: reordered here
        let chosen = dst.prim.md, reordered = dst.isReordered
        dstChannelBlock = pass == .forward && reordered
            ? [8, 16].first { b in g.outChannels % b == 0 && dnnlEqual(chosen, dnnlMD(dstDims, b == 8 ? dnnl_aBcd8b : dnnl_aBcd16b)) }
            : nil
        geometry = g
        self.bf16 = bf16
        super.init()
    }

    /// Forward sets: the `inputID` of the input last reordered into `src`'s buffer (nil when there is no reorder or the
    /// caller named none), so that the weight gradient of the same geometry reads that buffer instead of reordering the
    /// same input again. A layer's input keeps its values from its forward pass to its backward pass (the tape holds
    /// it); another input pulled in between (a layer of the same geometry) replaces the number. Not the input's
    /// address: a BF16 operand converted for the call (from CFP8 codes) lives only as long as the call, and another
    /// input's conversion can take the same address. Read and written under the lock.
    nonisolated(unsafe) var stagedInputID: Int?

    /// The forward set of this geometry whose staged input is the one named `id`, in the layout `want` (nil: x must be
    /// reordered).
    static func stagedInput(_ g: Conv2dGeometry, bf16: Bool, id: Int?, want: dnnl_memory_desc_t) -> DnnlMemory? {
        guard let id else { return nil }
        for bias in [true, false] {
            if let f = convCache.existing(ConvKey(g: g, pass: .forward, bias: bias, bf16: bf16)), f.stagedInputID == id,
               dnnlEqual(f.src.prim.md, want) {
                return f.src.prim
            }
        }
        return nil
    }

    /// The channel block of the forward output's layout when the reorder into NCHW can run here (nil: oneDNN's).
    let dstChannelBlock: Int?
    let geometry: Conv2dGeometry
    let bf16: Bool

    /// Returns whether `round` rounded the output (as the reorder into NCHW wrote it), the codes it wrote, and
    /// whether they are all it wrote (`codesOnly`: y left unwritten; when a value cannot be coded, y is written after all).
    func forward(x: UnsafeRawPointer, weight: UnsafeRawPointer, bias bp: UnsafePointer<Float>?,
                 y: UnsafeMutablePointer<Float>, round: RoundingTask? = nil,
                 withCodes: Bool = false, codesOnly: Bool = false, inputID: Int? = nil) -> ConvForwardResult {
        var result = ConvForwardResult(rounded: false, codes: nil, onlyCodes: false)
        exclusive {
            src.pull(x, stream)
            stagedInputID = src.isReordered ? inputID : nil
            wei.pull(weight, stream)
            if let b = bias, let bp { b.set(bp) }
            dst.bind(y)
            main.run(stream, args)
            if let round, let block = dstChannelBlock {
                stream.wait()
                let bytes = withCodes ? round.numberFormat?.packedBytes : nil
                var codes = bytes.map { UnsafeMutableRawPointer.allocate(byteCount: geometry.outputCount * $0, alignment: 64) }
                let blocked = dst.prim.data.assumingMemoryBound(to: Float.self)
                let only = codesOnly && codes != nil
                if !Self.unblock(geometry, block: block, from: blocked, into: only ? nil : y, round: round, codes: codes) {
                    codes?.deallocate()
                    codes = nil
                    // a value that could not be coded (NaN): the FP32 output after all, from the blocked values still here
                    if only { _ = Self.unblock(geometry, block: block, from: blocked, into: y, round: round, codes: nil) }
                }
                result = ConvForwardResult(rounded: true, codes: codes, onlyCodes: only && codes != nil)
            } else {
                dst.push(stream)
            }
            stream.wait()
        }
        return result
    }

    /// nChw<block>c → NCHW: for each image and block of channels, an [H·W, block] matrix transposed into `block`
    /// planes (which lie one after another in NCHW), then those planes rounded, and coded into `codes` (when given,
    /// in the rounding's format), while they are in cache. Returns false when a value could not be coded.
    static func unblock(_ g: Conv2dGeometry, block: Int, from src: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>?,
                        round: RoundingTask, codes: UnsafeMutableRawPointer?) -> Bool {
        precondition(y != nil || codes != nil, "unblock: no FP32 output and no codes")
        let hw = g.outHeight * g.outWidth, blocks = g.outChannels / block, n = g.batch
        let s = SendablePointer(src), d = y.map { SendablePointer($0) }
        let format = codes == nil ? nil : round.numberFormat, bytes = format?.packedBytes ?? 1
        let out = codes.map { SendablePointer($0.assumingMemoryBound(to: UInt8.self)) }
        let failed = Atomic<Bool>(false)
        parallelChunks(n * blocks, minimumPerThread: max(1, (1 << 14) / max(hw * block, 1))) { range in
            var tally = RoundingTask.Tally()
            // codes only (no y): each block of planes made in a buffer of this thread's, in cache, then coded
            let scratch: UnsafeMutablePointer<Float>? = d == nil ? .allocate(capacity: hw * block) : nil
            defer { scratch?.deallocate() }
            for nb in range {
                let from = s.p + nb * hw * block, to = scratch ?? d!.p + nb * hw * block
                dojo_transpose_f32(from, block, to, hw, 0, hw, 0, block)
                let codesAt = out.map { UnsafeMutableRawPointer($0.p + nb * hw * block * bytes) }
                if d == nil, let format, let codesAt {
                    // codes only: the rounded values themselves are not kept (one pass where the rounding has one)
                    if !round.roundCoding(to, count: hw * block, offset: nb * hw * block, format: format, codes: codesAt, into: &tally) {
                        failed.store(true, ordering: .relaxed)
                    }
                } else {
                    round.round(to, count: hw * block, offset: nb * hw * block, into: &tally)
                    if let format, let codesAt, !format.packExactly(to, count: hw * block, into: codesAt) {
                        failed.store(true, ordering: .relaxed)
                    }
                }
            }
            round.merge(tally)
        }
        return !failed.load(ordering: .relaxed)
    }

    func backwardData(dy: UnsafeRawPointer, weight: UnsafeRawPointer, dx: UnsafeMutablePointer<Float>) {
        exclusive {
            dst.pull(dy, stream)
            wei.pull(weight, stream)
            src.bind(dx)
            main.run(stream, args)
            src.push(stream)
            stream.wait()
        }
    }

    /// The weight gradient (`weights`), then x's (`data`), under one hold of the lock: dy reordered once when both
    /// passes want it in the same layout (the data pass then reads the weight pass's staged copy), else each its own.
    static func backwardBoth(data: ConvPrimitives, weights: ConvPrimitives, dy: UnsafeRawPointer, weight: UnsafeRawPointer,
                             x: UnsafeRawPointer, dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                             dBias: UnsafeMutablePointer<Float>?, inputID: Int?) {
        let shared = data.dst.isReordered && weights.dst.isReordered && dnnlEqual(data.dst.prim.md, weights.dst.prim.md)
        // the data pass's arguments with dy read from the weight pass's staged copy
        let dataArgs = shared
            ? data.args.map { $0.arg == DNNL_ARG_DIFF_DST ? dnnlArg(DNNL_ARG_DIFF_DST, weights.dst.prim) : $0 }
            : data.args
        weights.exclusive {
            let staged = weights.src.isReordered
                ? stagedInput(weights.geometry, bf16: weights.bf16, id: inputID, want: weights.src.prim.md) : nil
            if staged == nil { weights.src.pull(x, weights.stream) }
            weights.dst.pull(dy, weights.stream)
            weights.wei.bind(dWeight)
            if let b = weights.bias, let dBias { b.set(dBias) }
            weights.main.run(weights.stream, staged.map { m in weights.args.map { $0.arg == DNNL_ARG_SRC ? dnnlArg(DNNL_ARG_SRC, m) : $0 } } ?? weights.args)
            weights.wei.push(weights.stream)
            weights.stream.wait()
            if !shared { data.dst.pull(dy, data.stream) }
            data.wei.pull(weight, data.stream)
            data.src.bind(dx)
            data.main.run(data.stream, dataArgs)
            data.src.push(data.stream)
            data.stream.wait()
        }
    }

    func backwardWeights(x: UnsafeRawPointer, dy: UnsafeRawPointer, dWeight: UnsafeMutablePointer<Float>,
                         dBias: UnsafeMutablePointer<Float>?, inputID: Int? = nil) {
        exclusive {
            // x as the forward pass reordered it, when its buffer still holds it
            let staged = src.isReordered ? Self.stagedInput(geometry, bf16: bf16, id: inputID, want: src.prim.md) : nil
            if staged == nil { src.pull(x, stream) }
            dst.pull(dy, stream)
            wei.bind(dWeight)
            if let b = bias, let dBias { b.set(dBias) }
            main.run(stream, staged.map { m in args.map { $0.arg == DNNL_ARG_SRC ? dnnlArg(DNNL_ARG_SRC, m) : $0 } } ?? args)
            wei.push(stream)
            stream.wait()
        }
    }
}
