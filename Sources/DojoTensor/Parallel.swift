import Dispatch
import Foundation

/// How many threads the engine's own loops (elementwise ops, reductions) use; oneDNN kernels follow
/// `OMP_NUM_THREADS` / `ComputeThreads`. Set once at start-up, before training.
public enum EngineThreads {
    nonisolated(unsafe) public static var count: Int = max(1, ProcessInfoCores.active)
}

enum ProcessInfoCores {
    static var active: Int { ProcessInfo.processInfo.activeProcessorCount }
}

/// Runs `body` over `0..<count` in contiguous chunks, on several threads when the work is large enough.
/// Chunks are fixed by `count` and the thread count, so results never depend on timing.
@inline(__always)
func parallelChunks(_ count: Int, minimumPerThread: Int = 1 << 15, _ body: @escaping @Sendable (Range<Int>) -> Void) {
    let threads = min(EngineThreads.count, max(1, count / minimumPerThread))
    if threads <= 1 { body(0..<count); return }
    let chunk = (count + threads - 1) / threads
    DispatchQueue.concurrentPerform(iterations: threads) { t in
        let lo = t * chunk, hi = min(count, lo + chunk)
        if lo < hi { body(lo..<hi) }
    }
}
