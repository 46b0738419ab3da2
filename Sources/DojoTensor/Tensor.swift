@_exported import DojoNumerics
import DojoGraph
import Foundation
import Synchronization

/// A dense Float32 tensor (row-major; images NCHW). A tensor made by an op while a `Tape` is active remembers
/// how it was made, so the tape can run the backward pass and record the Graph IR.
public final class Tensor: @unchecked Sendable, CustomStringConvertible {
    public let shape: [Int]
    public let storage: Storage
    public var count: Int { storage.count }
    /// True for parameters and for every tensor computed from one while a tape records.
    public internal(set) var requiresGrad: Bool
    /// A name for the IR and checkpoints (parameters are named by their module path).
    public var name: String?
    /// What the IR calls this tensor.
    public var role: TensorInfo.Role
    /// The number format every value is known to be exact in (set by `rounded(to:)`, passed on by layers that only
    /// pick or move values); nil: FP32.
    public var format: DType?
    /// How this tensor's gradient is rounded (set by `rounded(to:)` with a gradient rounding): the kernel that makes
    /// that gradient may round it span by span while it writes it (`RoundingTask`) instead of a pass after it.
    public var gradientRounding: TensorRounding?
    /// Set on a gradient a kernel already rounded by `gradientRounding` of the tensor (by its `serial`) whose gradient
    /// it is, so the rounding op does not round it again.
    public var roundedAsGradientOf: Int?
    /// Every value is exact in BF16 because a Dojo format made it and ops since only moved it or scaled it by a power
    /// of two (`Tape.keepsValues`), or a rounding to a format wrote this gradient: a product reading it may run on BF16
    /// kernels (`BF16Operand`). A hint only: those kernels check each value. Unlike `format`, it says nothing about
    /// the bias, so the precision policy never skips a rounding for it.
    public var bf16Exact = false

    /// A number no other tensor of this process has: what the tape's IR knows a gradient by after the gradient is
    /// gone (an `ObjectIdentifier` of a freed tensor is reused).
    public let serial: Int
    private static let serials = Atomic<Int>(0)

    public init(shape: [Int], storage: Storage, requiresGrad: Bool = false, role: TensorInfo.Role = .activation) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(elementCount(shape) == storage.count, "shape \(shape) does not match \(storage.count) elements")
        self.shape = shape; self.storage = storage; self.requiresGrad = requiresGrad; self.role = role
        serial = Tensor.serials.add(1, ordering: .relaxed).newValue
    }

    /// Uninitialised memory; the caller fills every element.
    public convenience init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: Storage(count: elementCount(shape)))
    }

    public convenience init(zeros shape: [Int]) {
        self.init(shape: shape, storage: Storage(zeros: elementCount(shape)))
    }

    public convenience init(repeating value: Float, shape: [Int]) {
        let s = Storage(count: elementCount(shape))
        if !s.isShapeOnly { s.pointer.initialize(repeating: value, count: s.count) }
        self.init(shape: shape, storage: s)
    }

    public convenience init(_ values: [Float], shape: [Int]) {
        precondition(values.count == elementCount(shape), "\(values.count) values for shape \(shape)")
        let s = Storage(count: values.count)
        if !s.isShapeOnly { values.withUnsafeBufferPointer { s.pointer.initialize(from: $0.baseAddress!, count: values.count) } }
        self.init(shape: shape, storage: s)
    }

    public convenience init(scalar: Float) { self.init([scalar], shape: []) }

    /// A trainable parameter: gradients flow to it and optimizers update it in place.
    public static func parameter(_ values: [Float], shape: [Int], name: String? = nil) -> Tensor {
        let t = Tensor(values, shape: shape)
        t.requiresGrad = true; t.role = .parameter; t.name = name
        return t
    }

    /// Marks a leaf tensor as wanting a gradient (parameters already do).
    @discardableResult public func requiringGrad() -> Tensor { requiresGrad = true; return self }

    /// Normal(0, std²) values from a seeded generator.
    public static func randomNormal(_ shape: [Int], std: Float = 1, generator: inout RandomSource) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        if t.isShapeOnly { return t }
        let p = t.storage.pointer
        for i in 0..<t.count { p[i] = generator.nextNormal() * std }
        return t
    }

    /// Uniform values in [low, high) from a seeded generator.
    public static func randomUniform(_ shape: [Int], low: Float, high: Float, generator: inout RandomSource) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        if t.isShapeOnly { return t }
        let p = t.storage.pointer
        for i in 0..<t.count { p[i] = low + (high - low) * generator.nextFloat() }
        return t
    }

    public var rank: Int { shape.count }
    /// True for tensors made under `Engine.shapeOnly`, or computed from one: ops skip their kernels for them.
    public var isShapeOnly: Bool { storage.isShapeOnly }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var array: [Float] { Array(storage.buffer) }
    /// The single value of a one-element tensor.
    public var item: Float { precondition(count == 1, "item of a tensor with \(count) elements"); return storage.pointer[0] }
    public subscript(flat i: Int) -> Float {
        get { storage.pointer[i] }
        set { storage.pointer[i] = newValue }
    }

    /// A copy that shares nothing with this tensor and is not part of any recorded computation.
    public func detachedCopy() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        if !t.isShapeOnly && !isShapeOnly { t.pointer.update(from: pointer, count: count) }
        return t
    }

    /// Overwrites this tensor's values (shapes must hold the same number of elements).
    public func assign(from other: Tensor) {
        precondition(other.count == count, "assign \(other.shape) to \(shape)")
        pointer.update(from: other.pointer, count: count)
    }

    public var description: String {
        let preview = (0..<min(count, 8)).map { String(storage.pointer[$0]) }.joined(separator: ", ")
        return "Tensor(\(shape)\(name.map { " \($0)" } ?? ""): [\(preview)\(count > 8 ? ", …" : "")])"
    }
}

/// Seeded, reproducible random numbers for initialisation and dropout: the project's one generator.
public typealias RandomSource = SplitMix64
