import DojoNumerics
import DojoCompiler
import Foundation
import DojoGraph
import DojoMachine
import DojoSim

/// A matmul's work: batch × (m × k by k × n) at `precision`, with B a weight (a linear layer) or an activation.
func gemmWork(_ m: Double, _ n: Double, _ k: Double, batch: Double = 1, _ precision: Precision,
              weights: Bool = true, passes: Double = 1) -> OpWork {
    let b = precision.bytes
    return OpWork(kind: .matmul, phase: passes > 1 ? .backward : .forward,
                  gemm: GEMMShape(batch: batch, m: m, n: n, k: k), passes: passes,
                  flops: 2 * batch * m * n * k * passes,
                  bytesRead: (batch * m * k + batch * k * n) * b * passes, bytesWritten: batch * m * n * b * passes,
                  weightBytes: weights ? batch * k * n * b : 0)
}

/// An elementwise op of `elements` outputs reading `inputs` tensors of the same size.
func elementwiseWork(_ kind: OpKind, elements: Double, inputs: Double = 2, _ precision: Precision,
                     flopsPerElement: Double = 1) -> OpWork {
    OpWork(kind: kind, phase: .forward, gemm: nil, flops: elements * flopsPerElement,
           bytesRead: inputs * elements * precision.bytes, bytesWritten: elements * precision.bytes)
}

/// A convolution's work as the IR records it (NCHW input, OIHW weights), as an implicit GEMM.
func convWork(batch: Int, inChannels: Int, outChannels: Int, size: Int, kernel: Int, stride: Int = 1,
              _ precision: Precision) -> OpWork {
    let out = (size + 2 * (kernel / 2) - kernel) / stride + 1
    let inputs = [[batch, inChannels, size, size], [outChannels, inChannels, kernel, kernel]]
    let output = [batch, outChannels, out, out]
    let gemm = OpWork.gemm(kind: .conv2d, inputs: inputs, output: output,
                           attributes: OpAttributes(kernel: [kernel, kernel], stride: [stride, stride]))!
    let b = precision.bytes
    let weights = Double(outChannels * inChannels * kernel * kernel) * b
    return OpWork(kind: .conv2d, phase: .forward, gemm: gemm, flops: gemm.flops,
                  bytesRead: Double(batch * inChannels * size * size) * b + weights,
                  bytesWritten: Double(batch * outChannels * out * out) * b, weightBytes: weights)
}

/// A seeded generator for test shapes: the project's SplitMix64.
struct TestRandom {
    var generator: SplitMix64
    init(state: UInt64) { generator = SplitMix64(seed: state) }
    mutating func next() -> UInt64 { generator.next() }
    /// A size between 1 and `max`, log-uniform.
    mutating func size(_ max: Double) -> Double {
        let u = Double(next() >> 11) / Double(1 << 53)
        return Swift.max(1, pow(max, u).rounded())
    }
}

/// Relative difference.
func relative(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(a), abs(b), 1e-300) }
