import Foundation
/// Engine-wide choices that ops read when they run.
public enum Engine {
    /// Which kernels run matmul, convolution, pooling and batch norm: oneDNN (fast) or the pure-Swift references.
    /// Tests run a model both ways and compare.
    @TaskLocal public static var backend: KernelBackend = .oneDNN

    /// Shape-only execution: tensors made inside get no memory and ops skip their kernels, but every op still
    /// runs its shape logic and records itself on the tape. The Graph IR of ResNet-50 at batch 4096 costs
    /// milliseconds this way; parameters made outside stay real.
    @TaskLocal public static var shapeOnly = false

    /// Whether GEMMs on operands exact in BF16 may run on BF16 kernels where the CPU has native BF16
    /// (`BF16Gemm.isEnabled`); off: FP32 GEMMs everywhere. Tests run a step both ways and compare.
    @TaskLocal public static var bf16Kernels = true

    /// The memory this process may use: the machine's, or less where its cgroup (a container, a job's sandbox) sets
    /// `memory.max`.
    public static var usableMemoryBytes: UInt64 {
        var limit = ProcessInfo.processInfo.physicalMemory
        if let line = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8))?.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            let path = "/sys/fs/cgroup" + line.dropFirst(3) + "/memory.max"
            if let text = try? String(contentsOfFile: path, encoding: .utf8), let max = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                limit = min(limit, max)
            }
        }
        return limit
    }
}

/// Errors a user's input can cause inside the engine (shapes that do not fit).
public struct ShapeError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
