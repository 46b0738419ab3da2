// Pure-Swift reference kernels: direct loops written for clarity, the truth the oneDNN path is tested against.
// Single-threaded; raw pointers and no allocation in inner loops, so they are usable on small problems.

enum ReferenceKernels {
    // MARK: Convolution

    /// The outputs o in 0..<outSize whose input index o·stride − pad + k lies in 0..<inSize.
    @inline(__always)
    static func validOutputs(_ outSize: Int, stride: Int, pad: Int, k: Int, inSize: Int) -> Range<Int> {
        let lo = max(0, (pad - k + stride - 1) / stride)  // smallest o with o·stride ≥ pad − k (pad − k may be < 0)
        let hiInclusive = (inSize - 1 + pad - k) >= 0 ? (inSize - 1 + pad - k) / stride : -1
        let hi = min(outSize, hiInclusive + 1)
        return lo < hi ? lo..<hi : 0..<0
    }

    /// y[n, oc, oh, ow] = bias[oc] + Σ_{ic in group, kh, kw} w[oc, ic', kh, kw] · x[n, ic, oh·sh − ph + kh, ow·sw − pw + kw]
    static func convForward(_ g: Conv2dGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let oh = g.outHeight, ow = g.outWidth, icg = g.inChannels / g.groups, ocg = g.outChannels / g.groups
        let inPlane = g.height * g.width, outPlane = oh * ow, kArea = g.kernelH * g.kernelW
        for n in 0..<g.batch {
            for oc in 0..<g.outChannels {
                let yp = y + (n * g.outChannels + oc) * outPlane
                yp.update(repeating: bias?[oc] ?? 0, count: outPlane)
                let group = oc / ocg
                for i in 0..<icg {
                    let ic = group * icg + i
                    let xp = x + (n * g.inChannels + ic) * inPlane
                    let wp = weight + (oc * icg + i) * kArea
                    for kh in 0..<g.kernelH {
                        for kw in 0..<g.kernelW {
                            let w = wp[kh * g.kernelW + kw]
                            let cols = validOutputs(ow, stride: g.strideW, pad: g.padW, k: kw, inSize: g.width)
                            for r in validOutputs(oh, stride: g.strideH, pad: g.padH, k: kh, inSize: g.height) {
                                let ih = r * g.strideH - g.padH + kh
                                let xrow = xp + ih * g.width, yrow = yp + r * ow, off = kw - g.padW
                                for c in cols { yrow[c] += w * xrow[c * g.strideW + off] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// dx[n, ic, ih, iw] = Σ over the outputs that read x[n, ic, ih, iw] of w · dy (the transpose of `convForward`).
    static func convBackwardData(_ g: Conv2dGeometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                 dx: UnsafeMutablePointer<Float>) {
        let oh = g.outHeight, ow = g.outWidth, icg = g.inChannels / g.groups, ocg = g.outChannels / g.groups
        let inPlane = g.height * g.width, outPlane = oh * ow, kArea = g.kernelH * g.kernelW
        dx.update(repeating: 0, count: g.inputCount)
        for n in 0..<g.batch {
            for oc in 0..<g.outChannels {
                let dyp = dy + (n * g.outChannels + oc) * outPlane
                let group = oc / ocg
                for i in 0..<icg {
                    let ic = group * icg + i
                    let dxp = dx + (n * g.inChannels + ic) * inPlane
                    let wp = weight + (oc * icg + i) * kArea
                    for kh in 0..<g.kernelH {
                        for kw in 0..<g.kernelW {
                            let w = wp[kh * g.kernelW + kw]
                            let cols = validOutputs(ow, stride: g.strideW, pad: g.padW, k: kw, inSize: g.width)
                            for r in validOutputs(oh, stride: g.strideH, pad: g.padH, k: kh, inSize: g.height) {
                                let ih = r * g.strideH - g.padH + kh
                                let dxrow = dxp + ih * g.width, dyrow = dyp + r * ow, off = kw - g.padW
                                for c in cols { dxrow[c * g.strideW + off] += w * dyrow[c] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// dW[oc, ic', kh, kw] = Σ_{n, oh, ow} dy[n, oc, oh, ow] · x[n, ic, oh·sh − ph + kh, ow·sw − pw + kw];
    /// dBias[oc] = Σ_{n, oh, ow} dy[n, oc, oh, ow].
    static func convBackwardWeights(_ g: Conv2dGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                    dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?) {
        let oh = g.outHeight, ow = g.outWidth, icg = g.inChannels / g.groups, ocg = g.outChannels / g.groups
        let inPlane = g.height * g.width, outPlane = oh * ow, kArea = g.kernelH * g.kernelW
        for oc in 0..<g.outChannels {
            let group = oc / ocg
            if let dBias {
                var s: Double = 0
                for n in 0..<g.batch {
                    let dyp = dy + (n * g.outChannels + oc) * outPlane
                    for j in 0..<outPlane { s += Double(dyp[j]) }
                }
                dBias[oc] = Float(s)
            }
            for i in 0..<icg {
                let ic = group * icg + i
                for kh in 0..<g.kernelH {
                    for kw in 0..<g.kernelW {
                        let cols = validOutputs(ow, stride: g.strideW, pad: g.padW, k: kw, inSize: g.width)
                        var s: Double = 0
                        for n in 0..<g.batch {
                            let xp = x + (n * g.inChannels + ic) * inPlane
                            let dyp = dy + (n * g.outChannels + oc) * outPlane
                            for r in validOutputs(oh, stride: g.strideH, pad: g.padH, k: kh, inSize: g.height) {
                                let ih = r * g.strideH - g.padH + kh
                                let xrow = xp + ih * g.width, dyrow = dyp + r * ow, off = kw - g.padW
                                var rowSum: Float = 0
                                for c in cols { rowSum += dyrow[c] * xrow[c * g.strideW + off] }
                                s += Double(rowSum)
                            }
                        }
                        dWeight[(oc * icg + i) * kArea + kh * g.kernelW + kw] = Float(s)
                    }
                }
            }
        }
    }

    // MARK: Pooling

    /// y = max over the in-bounds part of each window; argmax = flat in-plane index of the first maximum.
    static func maxPoolForward(_ g: Pool2dGeometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               argmax: UnsafeMutablePointer<Int32>, planes: Range<Int>? = nil) {
        let oh = g.outHeight, ow = g.outWidth, inPlane = g.height * g.width, outPlane = oh * ow
        for plane in planes ?? 0..<(g.batch * g.channels) {
            let xp = x + plane * inPlane, yp = y + plane * outPlane, ap = argmax + plane * outPlane
            for r in 0..<oh {
                let h0 = max(r * g.strideH - g.padH, 0), h1 = min(r * g.strideH - g.padH + g.kernelH, g.height)
                for c in 0..<ow {
                    let w0 = max(c * g.strideW - g.padW, 0), w1 = min(c * g.strideW - g.padW + g.kernelW, g.width)
                    var best = -Float.infinity, at = h0 * g.width + w0
                    for ih in h0..<h1 {
                        for iw in w0..<w1 {
                            // Branch-free select: on random data a branch here mispredicts half the time.
                            let i = ih * g.width + iw, v = xp[i], better = v > best
                            best = better ? v : best
                            at = better ? i : at
                        }
                    }
                    yp[r * ow + c] = best
                    ap[r * ow + c] = Int32(at)
                }
            }
        }
    }

    /// dx = 0, then each dy is added at its window's argmax.
    static func maxPoolBackward(_ g: Pool2dGeometry, dy: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
                                dx: UnsafeMutablePointer<Float>, planes: Range<Int>? = nil) {
        let inPlane = g.height * g.width, outPlane = g.outHeight * g.outWidth
        let range = planes ?? 0..<(g.batch * g.channels)
        (dx + range.lowerBound * inPlane).update(repeating: 0, count: range.count * inPlane)
        for plane in range {
            let dxp = dx + plane * inPlane, dyp = dy + plane * outPlane, ap = argmax + plane * outPlane
            for j in 0..<outPlane { dxp[Int(ap[j])] += dyp[j] }
        }
    }

    /// y = (sum over the in-bounds part of each window) / (kernelH · kernelW): padding counts in the divisor.
    static func avgPoolForward(_ g: Pool2dGeometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let oh = g.outHeight, ow = g.outWidth, inPlane = g.height * g.width, outPlane = oh * ow
        let scale = 1 / Float(g.kernelH * g.kernelW)
        for plane in 0..<(g.batch * g.channels) {
            let xp = x + plane * inPlane, yp = y + plane * outPlane
            for r in 0..<oh {
                let h0 = max(r * g.strideH - g.padH, 0), h1 = min(r * g.strideH - g.padH + g.kernelH, g.height)
                for c in 0..<ow {
                    let w0 = max(c * g.strideW - g.padW, 0), w1 = min(c * g.strideW - g.padW + g.kernelW, g.width)
                    var s: Float = 0
                    for ih in h0..<h1 { for iw in w0..<w1 { s += xp[ih * g.width + iw] } }
                    yp[r * ow + c] = s * scale
                }
            }
        }
    }

    /// dx = 0, then each dy / (kernelH · kernelW) is added over the in-bounds part of its window.
    static func avgPoolBackward(_ g: Pool2dGeometry, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let oh = g.outHeight, ow = g.outWidth, inPlane = g.height * g.width, outPlane = oh * ow
        let scale = 1 / Float(g.kernelH * g.kernelW)
        dx.update(repeating: 0, count: g.inputCount)
        for plane in 0..<(g.batch * g.channels) {
            let dxp = dx + plane * inPlane, dyp = dy + plane * outPlane
            for r in 0..<oh {
                let h0 = max(r * g.strideH - g.padH, 0), h1 = min(r * g.strideH - g.padH + g.kernelH, g.height)
                for c in 0..<ow {
                    let w0 = max(c * g.strideW - g.padW, 0), w1 = min(c * g.strideW - g.padW + g.kernelW, g.width)
                    let d = dyp[r * ow + c] * scale
                    for ih in h0..<h1 { for iw in w0..<w1 { dxp[ih * g.width + iw] += d } }
                }
            }
        }
    }

    // MARK: Batch normalisation (x viewed as [N, C, S]; statistics in Double)

    static func batchNormForwardTraining(n: Int, c: Int, s: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                         beta: UnsafePointer<Float>, epsilon: Float, y: UnsafeMutablePointer<Float>,
                                         mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>) {
        let count = Double(n * s)
        for ch in 0..<c {
            var sum: Double = 0
            for i in 0..<n { for j in 0..<s { sum += Double(x[(i * c + ch) * s + j]) } }
            let m = sum / count
            var sq: Double = 0
            for i in 0..<n { for j in 0..<s { let d = Double(x[(i * c + ch) * s + j]) - m; sq += d * d } }
            let v = sq / count  // biased
            mean[ch] = Float(m)
            variance[ch] = Float(v)
            let invStd = 1 / (v + Double(epsilon)).squareRoot()
            for i in 0..<n {
                for j in 0..<s {
                    let k = (i * c + ch) * s + j
                    y[k] = Float((Double(x[k]) - m) * invStd * Double(gamma[ch]) + Double(beta[ch]))
                }
            }
        }
    }

    static func batchNormForwardInference(n: Int, c: Int, s: Int, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                          beta: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                                          variance: UnsafePointer<Float>, epsilon: Float, y: UnsafeMutablePointer<Float>) {
        for ch in 0..<c {
            let invStd = 1 / (Double(variance[ch]) + Double(epsilon)).squareRoot()
            for i in 0..<n {
                for j in 0..<s {
                    let k = (i * c + ch) * s + j
                    y[k] = Float((Double(x[k]) - Double(mean[ch])) * invStd * Double(gamma[ch]) + Double(beta[ch]))
                }
            }
        }
    }

    /// With x̂ = (x − mean)·invStd and M = N·S: dBeta = Σ dy, dGamma = Σ dy·x̂,
    /// dx = gamma·invStd·(dy − dBeta/M − x̂·dGamma/M).
    static func batchNormBackward(n: Int, c: Int, s: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                  gamma: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
                                  epsilon: Float, dx: UnsafeMutablePointer<Float>, dGamma: UnsafeMutablePointer<Float>,
                                  dBeta: UnsafeMutablePointer<Float>) {
        let count = Double(n * s)
        for ch in 0..<c {
            let m = Double(mean[ch]), invStd = 1 / (Double(variance[ch]) + Double(epsilon)).squareRoot()
            var sumDy: Double = 0, sumDyXhat: Double = 0
            for i in 0..<n {
                for j in 0..<s {
                    let k = (i * c + ch) * s + j
                    sumDy += Double(dy[k])
                    sumDyXhat += Double(dy[k]) * (Double(x[k]) - m) * invStd
                }
            }
            dBeta[ch] = Float(sumDy)
            dGamma[ch] = Float(sumDyXhat)
            let g = Double(gamma[ch]) * invStd
            for i in 0..<n {
                for j in 0..<s {
                    let k = (i * c + ch) * s + j
                    let xhat = (Double(x[k]) - m) * invStd
                    dx[k] = Float(g * (Double(dy[k]) - sumDy / count - xhat * sumDyXhat / count))
                }
            }
        }
    }
}
