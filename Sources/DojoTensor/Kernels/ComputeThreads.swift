import COneDNN

/// The number of threads compute kernels use. oneDNN (OpenMP build) has no global setter: the count is per OS
/// thread, read when a primitive is created, and kept by that primitive. Call `set` on the thread that runs the
/// kernels, before the first kernel call for a geometry (or launch with `OMP_NUM_THREADS`).
public enum ComputeThreads {
    /// `omp_set_num_threads(n)` on the calling thread; affects primitives created afterwards from this thread and
    /// the pure-Swift parallel kernels called from it.
    public static func set(_ n: Int) {
        precondition(n >= 1, "ComputeThreads.set: need at least one thread, got \(n)")
        omp_set_num_threads(Int32(n))
    }

    /// `omp_get_max_threads()` on the calling thread.
    public static var count: Int { Int(omp_get_max_threads()) }

    /// Runs `body` over disjoint chunks of `0..<count` on up to `count` threads of the OpenMP pool (1 for fewer than ~16K
    /// `elements` of work). The chunks are disjoint, so the raw pointers the body captures are used without overlap.
    public static func parallelChunks(_ count: Int, elements: Int, _ body: (Range<Int>) -> Void) {
        ompChunks(count, threads: min(Self.count, count, max(1, elements / 16384)), body)
    }
}
