import DojoGraph
import DojoTensor
import Foundation

/// Updates parameters in place from their gradients. Its state (momentum, moments) is named by parameter path,
/// so checkpoints can save and restore it exactly.
public protocol Optimizer: AnyObject {
    var name: String { get }
    /// One update; `tape` (when given) records the update ops into the Graph IR.
    func step(_ parameters: [(String, Tensor)], gradients: Gradients, learningRate: Float, tape: Tape?)
    /// Tensors to checkpoint, keyed `<param path>.<state>`.
    var state: [String: Tensor] { get }
    /// The names of the state tensors it keeps for every parameter it has updated (`<param path>.<suffix>` in `state`).
    var stateSuffixes: [String] { get }
    /// Scalars to checkpoint (e.g. AdamW's step count).
    var counters: [String: Int] { get }
    func restore(state: [String: Tensor], counters: [String: Int]) throws
}

public struct OptimizerStateError: Error, CustomStringConvertible {
    public let description: String
}

/// Stochastic gradient descent with momentum (PyTorch's formulation), optional Nesterov and L2 weight decay.
public final class SGD: Optimizer {
    public let momentum: Float, nesterov: Bool, weightDecay: Float
    var buffers: [String: Tensor] = [:]
    public var name: String { "sgd" }
    public init(momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float = 0) {
        self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay
    }
    public func step(_ parameters: [(String, Tensor)], gradients: Gradients, learningRate lr: Float, tape: Tape?) {
        for (path, p) in parameters {
            guard let g = gradients[p] else { continue }
            if g.isShapeOnly {   // recording shapes only: note the update, change nothing
                tape?.noteUpdate(.sgdUpdate, parameter: p, stateTensors: momentum == 0 ? 0 : 1)
                continue
            }
            let w = p.pointer, gp = g.pointer, n = p.count
            if momentum == 0 {
                for i in 0..<n { w[i] -= lr * (gp[i] + weightDecay * w[i]) }
            } else {
                let first = buffers[path] == nil
                let buf = buffers[path] ?? Tensor(zeros: p.shape)
                buffers[path] = buf
                let b = buf.pointer
                for i in 0..<n {
                    let d = gp[i] + weightDecay * w[i]
                    b[i] = first ? d : momentum * b[i] + d
                    w[i] -= lr * (nesterov ? d + momentum * b[i] : b[i])
                }
            }
            tape?.noteUpdate(.sgdUpdate, parameter: p, stateTensors: momentum == 0 ? 0 : 1)
        }
    }
    public var state: [String: Tensor] { Dictionary(uniqueKeysWithValues: buffers.map { ("\($0.key).momentum", $0.value) }) }
    public var stateSuffixes: [String] { momentum == 0 ? [] : ["momentum"] }
    public var counters: [String: Int] { [:] }
    public func restore(state: [String: Tensor], counters: [String: Int]) throws {
        buffers = [:]
        for (k, v) in state {
            guard k.hasSuffix(".momentum") else { throw OptimizerStateError(description: "unexpected SGD state \(k)") }
            buffers[String(k.dropLast(".momentum".count))] = v
        }
    }
}

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay.
public final class AdamW: Optimizer {
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    var m: [String: Tensor] = [:], v: [String: Tensor] = [:]
    var steps = 0
    public var name: String { "adamw" }
    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
    }
    public func step(_ parameters: [(String, Tensor)], gradients: Gradients, learningRate lr: Float, tape: Tape?) {
        steps += 1
        let c1 = 1 - Float(pow(Double(beta1), Double(steps))), c2 = 1 - Float(pow(Double(beta2), Double(steps)))
        for (path, p) in parameters {
            guard let g = gradients[p] else { continue }
            if g.isShapeOnly {
                tape?.noteUpdate(.adamwUpdate, parameter: p, stateTensors: 2)
                continue
            }
            let mt = m[path] ?? Tensor(zeros: p.shape), vt = v[path] ?? Tensor(zeros: p.shape)
            m[path] = mt; v[path] = vt
            // the engine's loop (`OptimizerKernels.adamw`: vectorised, over the compute threads), the same bits as
            // `AdamW.reference`, the scalar loop
            OptimizerKernels.adamw(w: p.pointer, g: g.pointer, m: mt.pointer, v: vt.pointer, count: p.count, lr: lr,
                                   weightDecay: weightDecay, beta1: beta1, beta2: beta2, c1: c1, c2: c2, epsilon: epsilon)
            tape?.noteUpdate(.adamwUpdate, parameter: p, stateTensors: 2)
        }
    }
    /// One parameter's update as a scalar loop: what `step` computes, operation by operation.
    public static func reference(w: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                                 v: UnsafeMutablePointer<Float>, count: Int, lr: Float, weightDecay: Float, beta1: Float,
                                 beta2: Float, c1: Float, c2: Float, epsilon: Float) {
        for i in 0..<count {
            w[i] -= lr * weightDecay * w[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            w[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + epsilon)
        }
    }

    public var state: [String: Tensor] {
        var s: [String: Tensor] = [:]
        for (k, t) in m { s["\(k).exp_avg"] = t }
        for (k, t) in v { s["\(k).exp_avg_sq"] = t }
        return s
    }
    public var counters: [String: Int] { ["adamw.step": steps] }
    public var stateSuffixes: [String] { ["exp_avg", "exp_avg_sq"] }
    public func restore(state: [String: Tensor], counters: [String: Int]) throws {
        m = [:]; v = [:]
        for (k, t) in state {
            if k.hasSuffix(".exp_avg") { m[String(k.dropLast(".exp_avg".count))] = t }
            else if k.hasSuffix(".exp_avg_sq") { v[String(k.dropLast(".exp_avg_sq".count))] = t }
            else { throw OptimizerStateError(description: "unexpected AdamW state \(k)") }
        }
        steps = counters["adamw.step"] ?? 0
    }
}

/// Learning rate by step: linear warm-up, then constant or cosine decay to `minimum`.
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Shape: String, Sendable, CaseIterable { case constant, cosine }
    public var base: Float, warmupSteps: Int, totalSteps: Int, shape: Shape, minimum: Float
    public init(base: Float, warmupSteps: Int = 0, totalSteps: Int, shape: Shape = .cosine, minimum: Float = 0) {
        self.base = base; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.shape = shape; self.minimum = minimum
    }
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return base * Float(step + 1) / Float(warmupSteps) }
        switch shape {
        case .constant: return base
        case .cosine:
            let span = max(1, totalSteps - warmupSteps)
            let t = min(1, Float(step - warmupSteps) / Float(span))
            return minimum + (base - minimum) * 0.5 * (1 + Float(cos(Double.pi * Double(t))))
        }
    }
}
