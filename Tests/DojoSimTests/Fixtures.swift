import DojoCompiler
import DojoGraph
import DojoMachine
import DojoSim

/// A cost model simple enough to check by hand: matrix FLOPs at `peak`, everything else at `bandwidth`.
struct HandCostModel: OpCostModel {
    var peak: Double = 100e12
    var bandwidth: Double = 1e12
    func peakFlops(_ precision: Precision) -> Double { peak }
    func cost(_ w: OpWork, precision: Precision) -> OpCost {
        let c = w.kind.isMatrixOp ? w.flops / peak : 0
        let m = (w.bytesRead + w.bytesWritten) / bandwidth
        let s = max(c, m)
        return OpCost(seconds: s, bound: c >= m ? .compute : .hbm, computeSeconds: c, memorySeconds: m,
                      utilisation: s > 0 ? w.flops / s / peak : 0)
    }
}

/// The training step of an MLP of `layers` layers of width `width` (matmul → relu per layer, then a summed loss),
/// with backward ops that name their forward op and an AdamW update per weight, as the engine records it.
func mlpGraph(layers: Int, width: Int, batch: Int) -> Graph {
    var g = Graph(model: "mlp\(layers)x\(width)", batch: batch)
    func tensor(_ shape: [Int], _ role: TensorInfo.Role) -> Int {
        g.tensors.append(TensorInfo(id: g.tensors.count, shape: shape, role: role)); return g.tensors.count - 1
    }
    var x = tensor([batch, width], .input)
    var forward: [(op: Int, inputs: [Int], out: Int)] = []
    var weights: [Int] = []
    for l in 0..<layers {
        let w = tensor([width, width], .parameter); weights.append(w)
        let y = tensor([batch, width], .activation)
        let f = OpKind.matmul.flops(inputs: [[batch, width], [width, width]], outputs: [[batch, width]], attributes: OpAttributes())
        g.ops.append(Op(id: g.ops.count, kind: .matmul, phase: .forward, scope: "layer\(l).fc", inputs: [x, w], outputs: [y],
                        attributes: OpAttributes(), flops: f, bytesRead: (batch * width + width * width) * 4, bytesWritten: batch * width * 4))
        forward.append((g.ops.count - 1, [x, w], y))
        let r = tensor([batch, width], .activation)
        g.ops.append(Op(id: g.ops.count, kind: .relu, phase: .forward, scope: "layer\(l).act", inputs: [y], outputs: [r],
                        attributes: OpAttributes(), flops: Double(batch * width), bytesRead: batch * width * 4, bytesWritten: batch * width * 4))
        forward.append((g.ops.count - 1, [y], r))
        x = r
    }
    let loss = tensor([1], .activation)
    g.ops.append(Op(id: g.ops.count, kind: .sum, phase: .forward, scope: "loss", inputs: [x], outputs: [loss],
                    attributes: OpAttributes(), flops: Double(batch * width), bytesRead: batch * width * 4, bytesWritten: 4))
    forward.append((g.ops.count - 1, [x], loss))
    for f in forward.reversed() {
        let op = g.ops[f.op]
        let grad = tensor(g.tensors[f.out].shape, .gradient)
        let outs = f.inputs.map { tensor(g.tensors[$0].shape, .gradient) }
        let flops = op.kind.backwardFlops(forward: op.flops, inputs: f.inputs.map { g.tensors[$0].shape },
                                          outputs: [g.tensors[f.out].shape], needsGradient: f.inputs.map { _ in true })
        g.ops.append(Op(id: g.ops.count, kind: op.kind, phase: .backward, scope: op.scope, inputs: [grad] + f.inputs, outputs: outs,
                        attributes: OpAttributes(), flops: flops, bytesRead: op.bytesRead + op.bytesWritten,
                        bytesWritten: op.bytesRead, forward: f.op))
    }
    for w in weights {
        let n = width * width
        g.ops.append(Op(id: g.ops.count, kind: .adamwUpdate, phase: .optimizer, scope: nil, inputs: [w], outputs: [w],
                        attributes: OpAttributes(), flops: Double(14 * n), bytesRead: n * 4 * 4, bytesWritten: n * 4 * 3))
    }
    return g
}
