import DojoCompiler
import DojoGraph
import Testing

@Suite struct WorkTests {
    /// A linear layer's matmul: [B, in] × [in, out] as a GEMM with m = B; scaling the batch grows m, not the weights.
    @Test func matmulGEMMAndScaling() {
        var g = Graph(model: "t", batch: 2)
        g.tensors = [TensorInfo(id: 0, shape: [2, 64], role: .input),
                     TensorInfo(id: 1, shape: [64, 32], role: .parameter),
                     TensorInfo(id: 2, shape: [2, 32], role: .activation)]
        let flops = OpKind.matmul.flops(inputs: [[2, 64], [64, 32]], outputs: [[2, 32]], attributes: OpAttributes())
        g.ops = [Op(id: 0, kind: .matmul, phase: .forward, scope: "fc", inputs: [0, 1], outputs: [2],
                    attributes: OpAttributes(), flops: flops, bytesRead: (128 + 2048) * 4, bytesWritten: 64 * 4)]
        let w = OpWork(op: g.ops[0], graph: g, precision: .bf16)
        #expect(w.gemm == GEMMShape(batch: 1, m: 2, n: 32, k: 64))
        #expect(w.flops == 2 * 2 * 32 * 64)
        #expect(w.weightBytes == 2048 * 2)
        #expect(w.bytesRead == (128 + 2048) * 2)
        let s = w.scaled(batch: 8, split: .n, ways: 4)
        #expect(s.gemm == GEMMShape(batch: 1, m: 16, n: 8, k: 64))
        #expect(s.flops == w.flops * 8 / 4)
        #expect(s.weightBytes == 2048 * 2 / 4)
        let expected: Double = 128.0 * 2 * 8 / 4 + 2048.0 * 2 / 4
        #expect(s.bytesRead == expected)
    }

    /// The same layer's backward pass writes its input's gradient (grows with the batch) and its weights' gradient
    /// (written once, whatever the batch: it was once scaled with the batch, 64× a layer's weights at batch 64).
    @Test func backwardWritesWeightGradientOnce() {
        var g = Graph(model: "t", batch: 2)
        g.tensors = [TensorInfo(id: 0, shape: [2, 64], role: .activation),
                     TensorInfo(id: 1, shape: [64, 32], role: .parameter),
                     TensorInfo(id: 2, shape: [2, 32], role: .activation)]
        let flops = OpKind.matmul.flops(inputs: [[2, 64], [64, 32]], outputs: [[2, 32]], attributes: OpAttributes())
        g.ops = [Op(id: 0, kind: .matmul, phase: .forward, scope: "fc", inputs: [0, 1], outputs: [2],
                    attributes: OpAttributes(), flops: flops, bytesRead: (128 + 2048) * 4, bytesWritten: 64 * 4),
                 // dX = dY·Wᵀ and dW = Xᵀ·dY: reads dY, W and X; writes dX [2, 64] and dW [64, 32]
                 Op(id: 1, kind: .matmul, phase: .backward, scope: "fc", inputs: [2], outputs: [],
                    attributes: OpAttributes(), flops: 2 * flops, bytesRead: (64 + 2048 + 128) * 4,
                    bytesWritten: (128 + 2048) * 4, forward: 0)]
        let w = OpWork(op: g.ops[1], graph: g, precision: .fp32)
        #expect(w.weightBytes == 2048 * 4)
        let s = w.scaled(batch: 8)
        #expect(s.bytesWritten == 128 * 4 * 8 + 2048 * 4)
        #expect(s.bytesRead == (64 + 128) * 4 * 8 + 2048 * 4)
        #expect(s.flops == w.flops * 8)
        // split along n: each part writes its share of dW
        let t = w.scaled(batch: 8, split: .n, ways: 4)
        #expect(t.bytesWritten == 128.0 * 4 * 8 / 4 + 2048.0 * 4 / 4)
        // a forward pass's writes all grow with the batch
        #expect(OpWork(op: g.ops[0], graph: g, precision: .fp32).scaled(batch: 8).bytesWritten == 64 * 4 * 8)
    }

    /// A convolution as an implicit GEMM: m = N·OH·OW, n = OC, k = IC·KH·KW.
    @Test func convolutionAsImplicitGEMM() {
        let g = OpWork.gemm(kind: .conv2d, inputs: [[4, 3, 224, 224], [64, 3, 7, 7]], output: [4, 64, 112, 112],
                            attributes: OpAttributes(kernel: [7, 7], stride: [2, 2], padding: [3, 3]))
        #expect(g == GEMMShape(batch: 1, m: 4 * 112 * 112, n: 64, k: 147))
        // ResNet-50's stem: 118 MMAC per image (published figure for the first layer: 112·112·64·147).
        #expect(g!.flops / 2 / 4 == 118_013_952)
    }

    @Test func precisionBytes() {
        #expect(Precision.bf16.stateBytesPerParameter() == 16)
        #expect(Precision.fp32.stateBytesPerParameter() == 16)
        #expect(Precision(name: "AMP") == .fp16)
        #expect(Precision(name: "int4") == nil)
    }
}
