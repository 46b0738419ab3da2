import DojoGraph
import Foundation
import DojoTensor

/// How a forward pass runs: training or evaluation, the dropout generator, and the precision policy.
public final class ForwardContext: @unchecked Sendable {
    public let training: Bool
    public var generator: RandomSource
    public let precision: PrecisionPolicy?
    /// Batch statistics over every rank of a data-parallel run (nil: this process's examples only).
    public let batchNormSync: BatchNormSync?
    public init(training: Bool, seed: UInt64 = 0, precision: PrecisionPolicy? = nil, batchNormSync: BatchNormSync? = nil) {
        self.training = training; self.generator = RandomSource(seed: seed); self.precision = precision
        self.batchNormSync = batchNormSync
    }
}

/// A layer or a network. Parameters, buffers (running statistics) and sub-modules are found by reflection on
/// stored properties, PyTorch-style, and named by their path (`layer1.0.conv1.weight`), which names them in
/// checkpoints and in the Graph IR.
open class Module {
    @TaskLocal public static var context = ForwardContext(training: false)

    /// This module's path in its network ("" for the root); set by `finalizeNames()`.
    public private(set) var path: String = ""

    public init() {}

    /// Subclasses compute their output here; callers use `module(x)`.
    open func forward(_ x: Tensor) -> Tensor {
        preconditionFailure("\(type(of: self)) does not define forward(_:)")
    }

    /// Runs `forward` under this module's name, and lets the precision policy round a leaf layer's output.
    public final func callAsFunction(_ x: Tensor) -> Tensor {
        Tape.$scope.withValue(path) {
            let y = forward(x)
            if let policy = Module.context.precision, isLeaf {
                // A layer that only picks or moves its input's values (ReLU, max pooling, flatten) keeps an input
                // already in the format in it: rounding again would change nothing but cost a pass over the output,
                // and one over its gradient (which the next rounded layer down rounds: for BF16 the same result).
                if keepsFormat, let f = x.format, f == policy.activationType {
                    y.format = f
                    // its values are among the input's (or zero): exact in the same format and bias, so packable
                    if y.storage !== x.storage, let nf = x.storage.packFormat { y.storage.packFormat = nf }
                    return y
                }
                // a fresh output (not the input, a view of it, or a parameter) is rounded where it lies; one whose
                // kernel already rounded it as it wrote it (`PrecisionPolicy.outputRounding`: it is in the format) is
                // only recorded
                let fresh = y.storage !== x.storage && y.role != .parameter
                return policy.activation(y, site: path, exclusive: fresh,
                                         alreadyRounded: fresh && y.format != nil && y.format == policy.activationType)
            }
            return y
        }
    }

    /// A value a composite layer computes between its children (attention's probabilities and its heads' merged
    /// output, the operands of its GEMMs), rounded by the precision policy as a leaf layer's output is, at the site
    /// `name` below this layer's path; unchanged in FP32. `y` must be fresh (nothing else reads it unrounded): it is
    /// rounded where it lies.
    public final func activation(_ y: Tensor, _ name: String) -> Tensor {
        guard let policy = Module.context.precision else { return y }
        return policy.activation(y, site: path + "." + name, exclusive: true)
    }

    /// Direct children, in declaration order, with their names.
    public var children: [(String, Module)] {
        var out: [(String, Module)] = []
        for child in Mirror(reflecting: self).allChildren {
            guard let label = child.label?.trimmingCharacters(in: ["_"]) else { continue }
            if let m = child.value as? Module { out.append((label, m)) }
            else if let ms = child.value as? [Module] { for (i, m) in ms.enumerated() { out.append(("\(label).\(i)", m)) } }
        }
        return out
    }

    var isLeaf: Bool { children.isEmpty }

    /// Whether every output value is one of the input's values or zero, so that an input exact in a number format
    /// gives an output exact in it (ReLU, max pooling, reshapes).
    open var keepsFormat: Bool { false }

    /// Own tensors with their names: parameters (`Tensor.role == .parameter`) and buffers (running statistics):
    /// the stored `Tensor` properties, then `namedTensors`.
    var ownTensors: [(String, Tensor)] {
        Mirror(reflecting: self).allChildren.compactMap { child in
            guard let label = child.label?.trimmingCharacters(in: ["_"]), let t = child.value as? Tensor else { return nil }
            return (label, t)
        } + namedTensors
    }

    /// Tensors a module holds in a collection rather than in stored properties, with their names (a network read
    /// from a file: its initializers by their names in the file). Empty unless a subclass says otherwise.
    open var namedTensors: [(String, Tensor)] { [] }

    /// Every tensor of the network by path: parameters and buffers. This is the checkpoint's content.
    public var stateTensors: [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        func walk(_ m: Module, _ prefix: String) {
            for (n, t) in m.ownTensors { out.append((prefix.isEmpty ? n : "\(prefix).\(n)", t)) }
            for (n, c) in m.children { walk(c, prefix.isEmpty ? n : "\(prefix).\(n)") }
        }
        walk(self, "")
        return out
    }

    /// The trainable parameters by path.
    public var parameters: [(String, Tensor)] { stateTensors.filter { $0.1.role == .parameter } }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.1.count } }

    /// Names every module and tensor by its path; call once after building a network.
    public func finalizeNames() {
        func walk(_ m: Module, _ prefix: String) {
            m.path = prefix
            for (n, t) in m.ownTensors { t.name = prefix.isEmpty ? n : "\(prefix).\(n)" }
            for (n, c) in m.children { walk(c, prefix.isEmpty ? n : "\(prefix).\(n)") }
        }
        walk(self, "")
    }
}

extension Mirror {
    /// Children of this type and of its superclasses.
    var allChildren: [Mirror.Child] {
        var out = Array(children)
        var s = superclassMirror
        while let m = s { out.append(contentsOf: m.children); s = m.superclassMirror }
        return out
    }
}

/// Applies modules in order.
public final class Sequential: Module {
    public let layers: [Module]
    public init(_ layers: [Module]) { self.layers = layers }
    public override func forward(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }
}
