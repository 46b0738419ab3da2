import Foundation
import Testing
import DojoGraph

@Suite struct OpKindTests {
    @Test func convolutionCountsTwoFlopsPerMultiplyAdd() {
        // ResNet-50's stem: 64 filters of 3x7x7 over a 112x112 output, 118 M multiply-adds per image.
        let f = OpKind.conv2d.flops(inputs: [[1, 3, 224, 224], [64, 3, 7, 7]], outputs: [[1, 64, 112, 112]],
                                    attributes: OpAttributes(kernel: [7, 7], stride: [2, 2], padding: [3, 3]))
        #expect(f == 2 * 64 * 112 * 112 * 3 * 49)
    }

    @Test func matmulBackwardIsOnePassPerGradient() {
        let f = OpKind.matmul.flops(inputs: [[8, 16], [16, 4]], outputs: [[8, 4]], attributes: OpAttributes())
        #expect(f == 2 * 8 * 4 * 16)
        #expect(OpKind.matmul.backwardFlops(forward: f, inputs: [[8, 16], [16, 4]], outputs: [[8, 4]], needsGradient: [false, true]) == f)
        #expect(OpKind.matmul.backwardFlops(forward: f, inputs: [[8, 16], [16, 4]], outputs: [[8, 4]], needsGradient: [true, true]) == 2 * f)
    }

    @Test func jsonRoundTripAndStrictDecoding() throws {
        var g = Graph(model: "tiny", batch: 2)
        g.tensors = [TensorInfo(id: 0, shape: [2, 3], role: .input), TensorInfo(id: 1, name: "w", shape: [3, 4], role: .parameter),
                     TensorInfo(id: 2, shape: [2, 4], role: .activation)]
        g.ops = [Op(id: 0, kind: .matmul, phase: .forward, scope: "fc", inputs: [0, 1], outputs: [2], attributes: OpAttributes(),
                    flops: 48, bytesRead: 72, bytesWritten: 32)]
        let back = try Graph.decode(json: try g.jsonData())
        #expect(back == g)
        #expect(back.summary.parameters == 12)
        #expect(back.summary.forwardFlopsPerSample == 24)

        var bad = g
        bad.ops[0].inputs = [0, 7]
        #expect(throws: GraphError.self) { try Graph.decode(json: try bad.jsonData()) }
        #expect(throws: GraphError.self) { try Graph.decode(json: Data("{\"format\":\"x\"}".utf8)) }
    }
}
