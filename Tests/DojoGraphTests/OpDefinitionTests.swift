import Testing
import DojoGraph

/// Issue 13 §1: each kind's rules are one value; the rules that must agree with each other do, for every kind, and
/// the rules the FLOP and traffic counts apply follow from it.
@Suite struct OpDefinitionTests {
    @Test func everyKindsRulesAgree() {
        for kind in OpKind.allCases {
            let d = kind.definition
            // a GEMM view is what makes a matrix op: it starts fused chains and its gradient is one product per operand
            #expect((d.gemm != nil) == kind.isMatrixOp, "\(kind)")
            #expect((d.gemm != nil) == (d.fusion == .root), "\(kind)")
            #expect((d.gemm != nil) == (d.gradient == .matrix), "\(kind)")
            #expect((d.gemm != nil) == (d.tensorParallel == .weightSplit), "\(kind)")
            // a view moves nothing forward, backward or across the mesh, and does no arithmetic
            #expect((d.bytes == .view) == (d.meshTraffic == .none), "\(kind)")
            #expect((d.bytes == .view) == (d.gradient == .view), "\(kind)")
            if d.bytes == .view { #expect(d.flops == .none, "\(kind)") }
            #expect(d.operands.lowerBound >= 1, "\(kind)")
            #expect(kind.operandCounts == d.operands)
        }
        #expect(OpKind.allCases.filter { $0.definition.gradient == .none } == [.sgdUpdate, .adamwUpdate])
    }

    @Test func countsFollowTheRules() {
        // elementwise: per output element; a reduction: per input element
        #expect(OpKind.gelu.flops(inputs: [[2, 3]], outputs: [[2, 3]], attributes: OpAttributes()) == 6 * 14)
        #expect(OpKind.sum.flops(inputs: [[4, 5]], outputs: [[4]], attributes: OpAttributes(axes: [1])) == 20)
        #expect(OpKind.reshape.flops(inputs: [[4, 5]], outputs: [[20]], attributes: OpAttributes(shape: [20])) == 0)
        // add hands a same-shape gradient on (nothing read or written); a broadcast bias's gradient is a sum
        #expect(OpKind.add.backwardTraffic(inputs: [[4, 5], [4, 5]], output: [4, 5], needsGradient: [true, true]) == (0, 0))
        #expect(OpKind.add.backwardTraffic(inputs: [[4, 5], [5]], output: [4, 5], needsGradient: [true, true]) == (20, 5))
        // sub's right operand is negated even at the output's shape: one pass over it
        #expect(OpKind.sub.backwardTraffic(inputs: [[4, 5], [4, 5]], output: [4, 5], needsGradient: [true, true]) == (20, 20))
        #expect(OpKind.sub.backwardFlops(forward: 20, inputs: [[4, 5], [4, 5]], outputs: [[4, 5]], needsGradient: [true, true]) == 20)
        // a slice fills its part of the input's gradient; a scale reads only the output's gradient
        #expect(OpKind.slice.backwardTraffic(inputs: [[4, 6]], output: [4, 2], needsGradient: [true]) == (8, 8))
        #expect(OpKind.scale.backwardTraffic(inputs: [[4, 6]], output: [4, 6], needsGradient: [true]) == (24, 24))
        #expect(OpKind.relu.backwardTraffic(inputs: [[4, 6]], output: [4, 6], needsGradient: [true]) == (48, 24))
        // a convolution's backward: one product per operand that needs a gradient, plus the bias's reduction
        let x = [1, 3, 8, 8], w = [4, 3, 3, 3], out = [1, 4, 6, 6]
        let f = OpKind.conv2d.flops(inputs: [x, w, [4]], outputs: [out], attributes: OpAttributes())
        #expect(f == Double(2 * 4 * 36 * 27 + 4 * 36))
        #expect(OpKind.conv2d.backwardFlops(forward: f, inputs: [x, w, [4]], outputs: [out], needsGradient: [false, true, true])
                == Double(2 * 4 * 36 * 27 + 4 * 36))
    }
}
