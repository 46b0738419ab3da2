import DojoGraph
import DojoTensor
import Foundation

/// The weight as the forward pass sees it: rounded by the precision policy when one is active.
@inline(__always) func effective(_ w: Tensor, _ site: String) -> Tensor {
    Module.context.precision?.weight(w, site: site) ?? w
}

/// y = x·Wᵀ + b over the last dimension. Weight [out, in]; initialised as PyTorch does (uniform ±1/√in).
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, generator: inout RandomSource) {
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Tensor.randomUniform([outFeatures, inFeatures], low: -bound, high: bound, generator: &generator).asParameter()
        self.bias = bias ? Tensor.randomUniform([outFeatures], low: -bound, high: bound, generator: &generator).asParameter() : nil
    }
    public override func forward(_ x: Tensor) -> Tensor {
        let inF = weight.shape[1]
        precondition(x.shape.last == inF, "\(path): expects \(inF) input features, got shape \(x.shape)")
        let flat = x.rank == 2 ? x : x.reshaped([-1, inF])
        // the output rounded by the GEMM's blocks as they are made (the policy records it without a pass of its own)
        let y = flat.linear(weight: effective(weight, path + ".weight"), bias: bias,
                            roundOutput: Module.context.precision?.outputRounding(site: path))
        return x.rank == 2 ? y : y.reshaped(Array(x.shape.dropLast()) + [weight.shape[0]])
    }
}

/// 2-D convolution, NCHW; He-normal initialisation (std √(2/fan_in)), suited to ReLU networks.
public final class Conv2d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int), padding: (Int, Int), groups: Int
    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1,
                bias: Bool = true, generator: inout RandomSource) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "Conv2d: channels \(inChannels)→\(outChannels) not divisible by groups \(groups)")
        let fanIn = inChannels / groups * kernel * kernel
        weight = Tensor.randomNormal([outChannels, inChannels / groups, kernel, kernel], std: (2 / Float(fanIn)).squareRoot(),
                                     generator: &generator).asParameter()
        self.bias = bias ? Tensor(zeros: [outChannels]).asParameter() : nil
        self.stride = (stride, stride); self.padding = (padding, padding); self.groups = groups
    }
    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == weight.shape[1] * groups,
                     "\(path): expects [N, \(weight.shape[1] * groups), H, W], got \(x.shape)")
        // under a precision policy the kernel rounds its output as it writes it when it can (one pass, not two)
        return x.conv2d(weight: effective(weight, path + ".weight"), bias: bias, stride: stride, padding: padding, groups: groups,
                        roundOutput: Module.context.precision?.outputRounding(site: path))
    }
}

/// Batch normalisation per channel of [N, C, H, W] or [N, C], with running statistics for evaluation.
public final class BatchNorm2d: Module {
    public let weight: Tensor, bias: Tensor
    public let runningMean: Tensor, runningVar: Tensor
    public let momentum: Float, epsilon: Float
    public init(_ channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        weight = Tensor(repeating: 1, shape: [channels]).asParameter()
        bias = Tensor(zeros: [channels]).asParameter()
        runningMean = Tensor(zeros: [channels]).asBuffer()
        runningVar = Tensor(repeating: 1, shape: [channels]).asBuffer()
        self.momentum = momentum; self.epsilon = epsilon
    }
    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2 && x.shape[1] == weight.count, "\(path): expects \(weight.count) channels, got \(x.shape)")
        // under a precision policy the kernel rounds its output as it writes it (one pass, not two)
        return x.batchNorm(gamma: weight, beta: bias, runningMean: runningMean, runningVariance: runningVar,
                           training: Module.context.training, momentum: momentum, epsilon: epsilon,
                           sync: Module.context.batchNormSync, roundOutput: Module.context.precision?.outputRounding(site: path))
    }
}

/// Layer normalisation over the last dimension.
public final class LayerNorm: Module {
    public let weight: Tensor, bias: Tensor
    public let epsilon: Float
    public init(_ features: Int, epsilon: Float = 1e-5) {
        weight = Tensor(repeating: 1, shape: [features]).asParameter()
        bias = Tensor(zeros: [features]).asParameter()
        self.epsilon = epsilon
    }
    // under a precision policy the kernel rounds its output as it writes it (one pass, not two)
    public override func forward(_ x: Tensor) -> Tensor {
        x.layerNorm(gamma: weight, beta: bias, epsilon: epsilon, roundOutput: Module.context.precision?.outputRounding(site: path))
    }
}

public final class ReLU: Module {
    public override init() {}
    public override func forward(_ x: Tensor) -> Tensor { x.relu() }
    public override var keepsFormat: Bool { true }
}

public final class GELU: Module {
    public override init() {}
    // under a precision policy the loop rounds its output as it writes it (one pass, not two)
    public override func forward(_ x: Tensor) -> Tensor { x.gelu(roundOutput: Module.context.precision?.outputRounding(site: path)) }
}

public final class MaxPool2d: Module {
    public let kernel: Int, stride: Int, padding: Int
    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) { self.kernel = kernel; self.stride = stride ?? kernel; self.padding = padding }
    public override func forward(_ x: Tensor) -> Tensor {
        x.maxPool2d(kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
    }
    public override var keepsFormat: Bool { true }
}

public final class AvgPool2d: Module {
    public let kernel: Int, stride: Int, padding: Int
    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) { self.kernel = kernel; self.stride = stride ?? kernel; self.padding = padding }
    public override func forward(_ x: Tensor) -> Tensor {
        x.avgPool2d(kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
    }
}

/// [N, C, H, W] → [N, C].
public final class GlobalAvgPool: Module {
    public override init() {}
    public override func forward(_ x: Tensor) -> Tensor { x.globalAvgPool() }
}

/// [N, …] → [N, product of the rest].
public final class Flatten: Module {
    public override init() {}
    public override func forward(_ x: Tensor) -> Tensor { x.flattened() }
    public override var keepsFormat: Bool { true }
}

/// Inverted dropout in training; identity in evaluation.
public final class Dropout: Module {
    public let probability: Float
    public init(_ probability: Float) { self.probability = probability }
    public override func forward(_ x: Tensor) -> Tensor {
        let ctx = Module.context
        guard ctx.training, probability > 0 else { return x }
        return x.dropout(probability: probability, generator: &ctx.generator)
    }
}

extension Tensor {
    /// Marks a freshly made tensor as a trainable parameter.
    public func asParameter() -> Tensor { role = .parameter; requiringGrad(); return self }
    /// Marks a freshly made tensor as state that is saved but not trained (running statistics).
    public func asBuffer() -> Tensor { role = .state; return self }
}
