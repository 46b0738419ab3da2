import DojoGraph

/// Convolution, pooling and batch norm on NCHW tensors, through the oneDNN kernels (or the pure-Swift
/// references when `Engine.backend` is `.reference`).
extension Tensor {
    /// 2-D convolution. `weight` is [OC, IC/groups, KH, KW]; `bias` is [OC].
    /// `roundOutput`: the output rounded by that rounding as the kernel writes it, when it can (`Conv2dKernel.forward`);
    /// the output then carries the format (`format`, `Storage.packFormat`) and the caller records the rounding without
    /// running it; else it is left to the caller.
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                       groups: Int = 1, roundOutput: TensorRounding? = nil) -> Tensor {
        let attrs = OpAttributes(kernel: weight.rank == 4 ? [weight.shape[2], weight.shape[3]] : nil, stride: [stride.0, stride.1],
                                 padding: [padding.0, padding.1], groups: groups)
        let outShape = OpKind.conv2d.engineShape([shape, weight.shape] + (bias.map { [$0.shape] } ?? []), attrs)   // checks the operands
        let g = Conv2dGeometry(batch: shape[0], inChannels: shape[1], height: shape[2], width: shape[3],
                               outChannels: weight.shape[0], kernelH: weight.shape[2], kernelW: weight.shape[3],
                               strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1, groups: groups)
        var out = Tensor(uninitializedShape: outShape)
        let backend = Engine.backend
        if !out.isShapeOnly && !isShapeOnly {
            let task = backend == .oneDNN ? roundOutput?.begin() : nil
            // in training, the codes written in place of the FP32 values (large outputs; small ones get both), while
            // the values are in cache: the op reading this output (batch norm) reads the codes, and keeps them for its
            // backward
            let codes = Tape.current?.packsSavedValues == true, codesOnly = codes && out.count >= Storage.packMinimum
            // operands exact in BF16 (a Dojo format made them) on a CPU with BF16 arithmetic: the same sums on BF16 kernels
            let operands = backend == .oneDNN && groups == 1 ? BF16Operand.pair(self, weight) : nil
            let done = operands.map { x16, w16 in
                Conv2dKernel.forwardBF16(g, x: x16.bits, weight: w16.bits, bias: bias?.pointer, y: out.pointer, round: task,
                                         withCodes: codes, codesOnly: codesOnly, inputID: serial)
            } ?? Conv2dKernel.forward(g, x: pointer, weight: weight.pointer, bias: bias?.pointer, y: out.pointer,
                                      backend: backend, round: task, withCodes: codes, codesOnly: codesOnly, inputID: serial)
            if done.onlyCodes, let codes = done.codes, let nf = task?.numberFormat {
                out = Tensor(shape: outShape, storage: Storage(codes: codes, count: out.count, format: nf))   // the FP32 buffer, never written, freed
            }
            if done.rounded, let task { out.finishRounding(task, of: roundOutput) }
            if !done.onlyCodes, let codes = done.codes { out.storage.adoptCodes(codes) }
        }
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        Tape.note(.conv2d, inputs: inputs, output: out, attributes: attrs) { [x = self] dy, needs in
            var dx: Tensor? = nil, dw: Tensor? = nil, db: Tensor? = nil
            if dy.isShapeOnly {
                return (bias == nil ? [x, weight] : [x, weight, bias!]).enumerated().map { i, t in needs[i] ? Tensor(uninitializedShape: t.shape) : nil }
            }
            let bf16 = backend == .oneDNN && groups == 1
            // the output gradient's BF16 bits made once for both passes, when either other operand is in a format too
            let wantsWeights = needs[1] || (needs.count > 2 && needs[2])
            let dy16 = bf16 && ((needs[0] && BF16Operand.mayBeExact(weight)) || (wantsWeights && BF16Operand.mayBeExact(x)))
                ? BF16Operand.of(dy) : nil
            func gradients() -> [Tensor?] { bias == nil ? [dx, needs[1] ? dw : nil] : [dx, needs[1] ? dw : nil, needs[2] ? db : nil] }
            // both gradients on oneDNN: one call, dy reordered once for both passes
            if needs[0] && wantsWeights && backend == .oneDNN && groups == 1 {
                dx = Tensor(uninitializedShape: x.shape)
                dw = Tensor(uninitializedShape: weight.shape)
                if bias != nil { db = Tensor(uninitializedShape: [g.outChannels]) }
                if let dy16, BF16Operand.mayBeExact(weight) && BF16Operand.mayBeExact(x),
                   let w16 = BF16Operand.of(weight), let x16 = BF16Operand.of(x) {
                    Conv2dKernel.backwardBF16(g, dy: dy16.bits, weight: w16.bits, x: x16.bits, dx: dx!.pointer, dWeight: dw!.pointer,
                                              dBias: db?.pointer, inputID: x.serial)
                    return gradients()
                }
                if dy16 == nil {
                    Conv2dKernel.backward(g, dy: dy.pointer, weight: weight.pointer, x: x.pointer, dx: dx!.pointer, dWeight: dw!.pointer,
                                          dBias: db?.pointer, inputID: x.serial)
                    return gradients()
                }
                // (one pass on BF16 operands, the other on FP32: each on its own below)
            }
            if needs[0] {
                dx = dx ?? Tensor(uninitializedShape: x.shape)
                if let dy16, let w16 = BF16Operand.of(weight) {
                    Conv2dKernel.backwardDataBF16(g, dy: dy16.bits, weight: w16.bits, dx: dx!.pointer)
                } else {
                    Conv2dKernel.backwardData(g, dy: dy.pointer, weight: weight.pointer, dx: dx!.pointer, backend: backend)
                }
            }
            if wantsWeights {
                dw = dw ?? Tensor(uninitializedShape: weight.shape)
                if bias != nil { db = db ?? Tensor(uninitializedShape: [g.outChannels]) }
                if let dy16, let x16 = BF16Operand.of(x) {
                    Conv2dKernel.backwardWeightsBF16(g, x: x16.bits, dy: dy16.bits, dWeight: dw!.pointer, dBias: db?.pointer,
                                                     inputID: x.serial)
                } else {
                    Conv2dKernel.backwardWeights(g, x: x.pointer, dy: dy.pointer, dWeight: dw!.pointer, dBias: db?.pointer, backend: backend,
                                                 inputID: x.serial)
                }
            }
            return gradients()
        }
        return out
    }

    /// A transposed convolution, the adjoint of `conv2d` (ONNX's ConvTranspose, PyTorch's `ConvTranspose2d`): weight
    /// [IC, OC/groups, KH, KW], each spatial size (in − 1)·stride − 2·padding + kernel + outputPadding
    /// (outputPadding below the stride). Its forward pass is the convolution's backward-data pass over the output's
    /// geometry, its input gradient that convolution's forward pass, and its weight gradient the convolution's weight
    /// gradient with input and output swapped; the bias adds per output channel.
    public func convTranspose2d(weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                                outputPadding: (Int, Int) = (0, 0), groups: Int = 1) -> Tensor {
        var result: [Int]? = nil
        if rank == 4 && weight.rank == 4 {
            result = [shape[0], weight.shape[1] * groups, (shape[2] - 1) * stride.0 - 2 * padding.0 + weight.shape[2] + outputPadding.0,
                      (shape[3] - 1) * stride.1 - 2 * padding.1 + weight.shape[3] + outputPadding.1]
        }
        let attrs = OpAttributes(kernel: weight.rank == 4 ? [weight.shape[2], weight.shape[3]] : nil, stride: [stride.0, stride.1],
                                 padding: [padding.0, padding.1], groups: groups, shape: result)
        let outShape = OpKind.convTranspose2d.engineShape([shape, weight.shape] + (bias.map { [$0.shape] } ?? []), attrs)
        // the convolution this one is the adjoint of: from the output's shape to the input's
        let g = Conv2dGeometry(batch: shape[0], inChannels: outShape[1], height: outShape[2], width: outShape[3],
                               outChannels: shape[1], kernelH: weight.shape[2], kernelW: weight.shape[3],
                               strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1, groups: groups)
        let out = Tensor(uninitializedShape: outShape)
        let backend = Engine.backend
        let plane = outShape[2] * outShape[3], channels = outShape[1]
        if !out.isShapeOnly && !isShapeOnly {
            Conv2dKernel.backwardData(g, dy: pointer, weight: weight.pointer, dx: out.pointer, backend: backend)
            if let bias {
                let py = out.pointer, pb = bias.pointer
                parallelChunks(outShape[0] * channels) { r in
                    for i in r { let b = pb[i % channels]; for j in 0..<plane { py[i * plane + j] += b } }
                }
            }
        }
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        Tape.note(.convTranspose2d, inputs: inputs, output: out, attributes: attrs) { [x = self] dy, needs in
            if dy.isShapeOnly {
                return inputs.enumerated().map { i, t in needs[i] ? Tensor(uninitializedShape: t.shape) : nil }
            }
            var dx: Tensor? = nil, dw: Tensor? = nil, db: Tensor? = nil
            if needs[0] {
                dx = Tensor(uninitializedShape: x.shape)
                Conv2dKernel.forward(g, x: dy.pointer, weight: weight.pointer, bias: nil, y: dx!.pointer, backend: backend)
            }
            if needs[1] {
                dw = Tensor(uninitializedShape: weight.shape)
                Conv2dKernel.backwardWeights(g, x: dy.pointer, dy: x.pointer, dWeight: dw!.pointer, dBias: nil, backend: backend)
            }
            if needs.count > 2 && needs[2] {
                db = Tensor(zeros: [channels])
                let pg = dy.pointer, pd = db!.pointer, n = outShape[0]
                parallelChunks(channels) { r in
                    for c in r {
                        var s: Float = 0
                        for b in 0..<n { let base = (b * channels + c) * plane; for j in 0..<plane { s += pg[base + j] } }
                        pd[c] = s
                    }
                }
            }
            return bias == nil ? [dx, dw] : [dx, dw, db]
        }
        return out
    }

    /// The window's geometry and the op's attributes, the operands checked by the kind's shape rule.
    private func poolGeometry(_ kind: OpKind, _ kernel: (Int, Int), _ stride: (Int, Int), _ padding: (Int, Int)) -> (Pool2dGeometry, OpAttributes) {
        let attrs = OpAttributes(kernel: [kernel.0, kernel.1], stride: [stride.0, stride.1], padding: [padding.0, padding.1])
        _ = kind.engineShape([shape], attrs)
        let g = Pool2dGeometry(batch: shape[0], channels: shape[1], height: shape[2], width: shape[3], kernelH: kernel.0, kernelW: kernel.1,
                               strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1)
        return (g, attrs)
    }

    public func maxPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
        let (g, attrs) = poolGeometry(.maxPool2d, kernel, stride ?? kernel, padding)
        let outShape = [g.batch, g.channels, g.outHeight, g.outWidth]
        let backend = Engine.backend
        let out: Tensor, ws: PoolWorkspace?
        if backend == .oneDNN, !isShapeOnly, !Engine.shapeOnly, let (codes, nf) = storage.codesAndFormat, let bytes = nf.packedBytes {
            // values in a Dojo format held as codes (a ReLU in the format wrote them): pooled as codes, into an output
            // held as codes only, exact in the same format and bias; the next layer reads the codes as they are
            let yc = UnsafeMutableRawPointer.allocate(byteCount: max(g.outputCount, 1) * bytes, alignment: 64)
            ws = MaxPool2dKernel.forward(g, codes: codes, bytes: bytes, into: yc)
            out = Tensor(shape: outShape, storage: Storage(codes: yc, count: g.outputCount, format: nf))
            out.bf16Exact = bf16Exact
        } else {
            out = Tensor(uninitializedShape: outShape)
            ws = out.isShapeOnly || isShapeOnly ? nil : MaxPool2dKernel.forward(g, x: pointer, y: out.pointer, backend: backend)
        }
        Tape.note(.maxPool2d, inputs: [self], output: out, attributes: attrs) { [inShape = shape] dy, _ in
            let dx = Tensor(uninitializedShape: inShape)
            if let ws, !dx.isShapeOnly && !dy.isShapeOnly {
                MaxPool2dKernel.backward(g, dy: dy.pointer, workspace: ws, dx: dx.pointer, backend: backend)
            }
            return [dx]
        }
        return out
    }

    public func avgPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
        let (g, attrs) = poolGeometry(.avgPool2d, kernel, stride ?? kernel, padding)
        let out = Tensor(uninitializedShape: [g.batch, g.channels, g.outHeight, g.outWidth])
        let backend = Engine.backend
        if !out.isShapeOnly && !isShapeOnly { AvgPool2dKernel.forward(g, x: pointer, y: out.pointer, backend: backend) }
        Tape.note(.avgPool2d, inputs: [self], output: out, attributes: attrs) { [inShape = shape] dy, _ in
            let dx = Tensor(uninitializedShape: inShape)
            if !dx.isShapeOnly && !dy.isShapeOnly { AvgPool2dKernel.backward(g, dy: dy.pointer, dx: dx.pointer, backend: backend) }
            return [dx]
        }
        return out
    }

    /// Mean over H and W: [N, C, H, W] → [N, C].
    public func globalAvgPool() -> Tensor {
        precondition(rank == 4, "globalAvgPool needs an NCHW input, got \(shape)")
        let n = shape[0], c = shape[1], s = shape[2] * shape[3]
        let out = Tensor(uninitializedShape: [n, c])
        for i in 0..<(!out.isShapeOnly && !isShapeOnly ? n * c : 0) {
            var acc: Float = 0
            let p = pointer + i * s
            for j in 0..<s { acc += p[j] }
            out.pointer[i] = acc / Float(s)
        }
        Tape.note(.globalAvgPool, inputs: [self], output: out) { [inShape = shape] dy, _ in
            let dx = Tensor(uninitializedShape: inShape)
            for i in 0..<(!dx.isShapeOnly && !dy.isShapeOnly ? n * c : 0) {
                let v = dy.pointer[i] / Float(s)
                (dx.pointer + i * s).update(repeating: v, count: s)
            }
            return [dx]
        }
        return out
    }

    /// Batch normalisation over N (and H, W) per channel. In training it normalises with the batch's statistics
    /// and updates the running ones (unbiased variance, as PyTorch); otherwise it uses the running statistics.
    /// With `sync` (training only), the statistics are those of every rank's examples together (`BatchNormSync`).
    public func batchNorm(gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVariance: Tensor, training: Bool,
                          momentum: Float = 0.1, epsilon: Float = 1e-5, sync: BatchNormSync? = nil,
                          roundOutput: TensorRounding? = nil) -> Tensor {
        precondition(rank == 2 || rank == 4, "batchNorm needs [N, C] or [N, C, H, W], got \(shape)")
        let n = shape[0], c = shape[1], spatial = rank == 4 ? shape[2] * shape[3] : 1
        precondition(gamma.shape == [c] && beta.shape == [c], "batchNorm: gamma \(gamma.shape), beta \(beta.shape) for \(c) channels")
        if training, let sync {
            return syncedBatchNorm(gamma: gamma, beta: beta, runningMean: runningMean, runningVariance: runningVariance,
                                   momentum: momentum, epsilon: epsilon, sync: sync)
        }
        let backend = Engine.backend
        // in training, an input held as codes only (a convolution in a Dojo format wrote them) read from its codes,
        // a channel at a time; else the normalised values written over the input's memory when the input is kept
        // packed anyway (the kernel finds each channel's statistics before it writes that channel)
        let packedX = training && backend == .oneDNN && !isShapeOnly ? storage.packedValues : nil
        let reused = training && backend == .oneDNN && packedX == nil ? outputOverPackedInput(savedByThisOp: true) : nil
        var out = reused ?? Tensor(uninitializedShape: shape)
        let attrs = OpAttributes(epsilon: Double(epsilon))
        let skip = out.isShapeOnly || isShapeOnly
        if !training {
            if !skip { BatchNormKernel.forwardInference(n: n, c: c, spatial: spatial, x: pointer, gamma: gamma.pointer, beta: beta.pointer,
                                             mean: runningMean.pointer, variance: runningVariance.pointer, epsilon: epsilon,
                                             y: out.pointer, backend: backend) }
            Tape.note(.batchNorm, inputs: [self, gamma, beta], output: out, attributes: attrs)
            return out
        }
        let mean = Tensor(uninitializedShape: [c]), variance = Tensor(uninitializedShape: [c])
        if !skip {
            // the output rounded span by span as the kernel writes it (`roundOutput`), when it can be now
            let task = backend == .oneDNN ? roundOutput?.begin() : nil
            // in training, an image's rounded output written as codes only, 1 or 2 bytes a value (the ReLU after it
            // reads them; an op that needs FP32 decodes them): no FP32 buffer written
            let codes = rank == 4 && reused == nil ? CodesWriter(task, count: count) : nil
            func normalise(_ codes: CodesWriter?) {
                BatchNormKernel.forwardTraining(n: n, c: c, spatial: spatial, x: reused != nil || packedX != nil ? out.pointer : pointer,
                                                gamma: gamma.pointer, beta: beta.pointer,
                                                epsilon: epsilon, y: out.pointer, mean: mean.pointer, variance: variance.pointer,
                                                backend: backend, round: task, xPacked: packedX, codes: codes)
            }
            normalise(codes)
            if let codes {
                // (a value that could not be coded: the FP32 output after all)
                if let held = codes.codesOnlyStorage(count: count) { out = Tensor(shape: shape, storage: held) } else { normalise(nil) }
            }
            if let task { out.finishRounding(task, of: roundOutput) }
        }
        let m = Float(n * spatial), unbias = m > 1 ? m / (m - 1) : 1
        for i in 0..<c where !skip && !mean.isShapeOnly {
            runningMean.pointer[i] = (1 - momentum) * runningMean.pointer[i] + momentum * mean.pointer[i]
            runningVariance.pointer[i] = (1 - momentum) * runningVariance.pointer[i] + momentum * variance.pointer[i] * unbias
        }
        Tape.note(.batchNorm, inputs: [self, gamma, beta], output: out, attributes: attrs) { [x = self] dy, needs in
            // each value of dy is read (in the per-channel sums, then once more) before dx is written at its place
            let dx = backend == .oneDNN ? Tape.gradientBuffer(reusing: dy, shape: x.shape) : Tensor(uninitializedShape: x.shape), dg = Tensor(uninitializedShape: [c]), db = Tensor(uninitializedShape: [c])
            if !dx.isShapeOnly && !dy.isShapeOnly && !dg.isShapeOnly {
                // x's gradient rounded span by span as it is written, when x's gradient is rounded (a layer's output)
                x.fusingGradientRounding(into: dx) { task in
                    let fused = backend == .oneDNN && needs[0] ? task : nil
                    // x kept packed is decoded a channel at a time by the kernel, not brought back whole
                    let packed = backend == .oneDNN ? x.storage.packedValues : nil
                    BatchNormKernel.backward(n: n, c: c, spatial: spatial, x: packed == nil ? x.pointer : dy.pointer, dy: dy.pointer,
                                             gamma: gamma.pointer, beta: beta.pointer,
                                             mean: mean.pointer, variance: variance.pointer, epsilon: epsilon,
                                             dx: dx.pointer, dGamma: dg.pointer, dBeta: db.pointer, backend: backend,
                                             round: fused, xPacked: packed)
                    return fused != nil
                }
            }
            return [needs[0] ? dx : nil, needs[1] ? dg : nil, needs[2] ? db : nil]
        }
        return out
    }
}
