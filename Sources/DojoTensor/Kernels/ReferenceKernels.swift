// Pure-Swift reference kernels: direct loops written for clarity, the truth the oneDNN path is tested against.
// Single-threaded; raw pointers and no allocation in inner loops, so they are usable on small problems.

enum ReferenceKernels {
    // MARK: Convolution

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
                            for r in 0..<oh {
                                let ih = r * g.strideH - g.padH + kh
                                if ih < 0 || ih >= g.height { continue }
                                let xrow = xp + ih * g.width, yrow = yp + r * ow
                                for c in 0..<ow {
                                    let iw = c * g.strideW - g.padW + kw
                                    if iw < 0 || iw >= g.width { continue }
                                    yrow[c] += w * xrow[iw]
                                }
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
                            for r in 0..<oh {
                                let ih = r * g.strideH - g.padH + kh
                                if ih < 0 || ih >= g.height { continue }
                                let dxrow = dxp + ih * g.width, dyrow = dyp + r * ow
                                for c in 0..<ow {
                                    let iw = c * g.strideW - g.padW + kw
                                    if iw < 0 || iw >= g.width { continue }
                                    dxrow[iw] += w * dyrow[c]
                                }
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
                        var s: Double = 0
                        for n in 0..<g.batch {
                            let xp = x + (n * g.inChannels + ic) * inPlane
                            let dyp = dy + (n * g.outChannels + oc) * outPlane
                            for r in 0..<oh {
                                let ih = r * g.strideH - g.padH + kh
                                if ih < 0 || ih >= g.height { continue }
                                let xrow = xp + ih * g.width, dyrow = dyp + r * ow
                                var rowSum: Float = 0
                                for c in 0..<ow {
                                    let iw = c * g.strideW - g.padW + kw
                                    if iw < 0 || iw >= g.width { continue }
                                    rowSum += dyrow[c] * xrow[iw]
                                }
                                s += Double(rowSum)
                            }
                        }
                        dWeight[(oc * icg + i) * kArea + kh * g.kernelW + kw] = Float(s)
                    }
                }
            }
        }
    }
}
