import COneDNN
import Foundation

/// How many threads the engine's own loops (elementwise ops, reductions) use. They run on oneDNN's OpenMP
/// thread pool, so this follows `OMP_NUM_THREADS` / `ComputeThreads.set` unless set lower here.
public enum EngineThreads {
    nonisolated(unsafe) public static var count: Int = max(1, Int(omp_get_max_threads()))
}

private final class ChunkJob {
    let count: Int
    let body: (Range<Int>) -> Void
    init(count: Int, body: @escaping (Range<Int>) -> Void) { self.count = count; self.body = body }
}

/// Runs `body` over `0..<count` in contiguous chunks, one per thread of an OpenMP parallel region when the work
/// is large enough. Chunks are fixed by `count` and the thread count, so results never depend on timing.
@inline(__always)
func parallelChunks(_ count: Int, minimumPerThread: Int = 1 << 15, _ body: @escaping @Sendable (Range<Int>) -> Void) {
    let threads = min(EngineThreads.count, max(1, count / minimumPerThread))
    if threads <= 1 { body(0..<count); return }
    let job = ChunkJob(count: count, body: body)
    withExtendedLifetime(job) {
        GOMP_parallel({ context in
            let job = Unmanaged<ChunkJob>.fromOpaque(context!).takeUnretainedValue()
            let t = Int(omp_get_thread_num()), n = Int(omp_get_num_threads())
            let chunk = (job.count + n - 1) / n
            let lo = t * chunk, hi = min(job.count, lo + chunk)
            if lo < hi { job.body(lo..<hi) }
        }, Unmanaged.passUnretained(job).toOpaque(), UInt32(threads), 0)
    }
}
