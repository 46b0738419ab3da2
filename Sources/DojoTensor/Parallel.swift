import COneDNN

private final class ChunkJob {
    let count: Int, threads: Int
    let body: (Range<Int>) -> Void
    init(count: Int, threads: Int, body: @escaping (Range<Int>) -> Void) { self.count = count; self.threads = threads; self.body = body }
}

/// Runs `body` over `0..<count` split into `threads` contiguous chunks, inside one OpenMP parallel region: the
/// engine's own loops use the same thread pool as oneDNN's primitives, so the two never compete for cores.
/// Chunks depend only on `count` and `threads`, so results never depend on timing.
func ompChunks(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    if threads <= 1 || count <= 1 { body(0..<count); return }
    withoutActuallyEscaping(body) { body in
        let job = ChunkJob(count: count, threads: min(threads, count), body: body)
        withExtendedLifetime(job) {
            GOMP_parallel({ context in
                let job = Unmanaged<ChunkJob>.fromOpaque(context!).takeUnretainedValue()
                let t = Int(omp_get_thread_num()), n = Int(omp_get_num_threads())
                let lo = job.count * t / n, hi = job.count * (t + 1) / n
                if lo < hi { job.body(lo..<hi) }
            }, Unmanaged.passUnretained(job).toOpaque(), UInt32(job.threads), 0)
        }
    }
}

/// Elementwise work over `count` elements: one chunk per thread once each gets at least `minimumPerThread`.
@inline(__always)
func parallelChunks(_ count: Int, minimumPerThread: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
    ompChunks(count, threads: min(ComputeThreads.count, max(1, count / minimumPerThread)), body)
}
