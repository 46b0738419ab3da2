/// Engine-wide choices that ops read when they run.
public enum Engine {
    /// Which kernels run matmul, convolution, pooling and batch norm: oneDNN (fast) or the pure-Swift references.
    /// Tests run a model both ways and compare.
    @TaskLocal public static var backend: KernelBackend = .oneDNN
}

/// Errors a user's input can cause inside the engine (shapes that do not fit).
public struct ShapeError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
