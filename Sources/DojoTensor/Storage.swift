import COneDNN
import Synchronization

/// A contiguous, 64-byte aligned buffer of Float32 values. Tensors share a storage when one is a reshaped view of
/// another. Mutation goes through the owning code (optimizers update parameters in place).
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// A shape-only storage (made under `Engine.shapeOnly`): no memory behind it; ops skip their kernels.
    /// Its pointer is an unmapped address, so an op that forgot to skip fails loudly instead of corrupting memory.
    public let isShapeOnly: Bool

    /// Bytes of tensor storage alive now, and the most alive at once since the last `resetPeak()`.
    public static var liveBytes: Int { live.load(ordering: .relaxed) }
    public static var peakBytes: Int { peak.load(ordering: .relaxed) }
    public static func resetPeak() { peak.store(live.load(ordering: .relaxed), ordering: .relaxed) }
    private static let live = Atomic<Int>(0)
    /// Keeps large buffers in the heap instead of fresh mmaps, so a training step reuses memory it already
    /// touched rather than faulting in new zeroed pages every op (glibc's default returns them to the kernel).
    /// glibc refuses an mmap threshold above half its arena size (32 MiB on 64-bit: `mallopt` returns 0 and keeps
    /// the default 128 KiB), so the threshold is its largest accepted value; buffers above it still come from
    /// mmap. (1 GiB was asked for before, refused, so every buffer above 128 KiB came from mmap until glibc's dynamic
    /// threshold rose.)
    private static let allocatorTuned: Bool = {
        #if os(Linux)
        var threshold: Int32 = 32 << 20
        while threshold > 1 << 20 && mallopt(M_MMAP_THRESHOLD, threshold) == 0 { threshold /= 2 }
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
        #endif
        return true
    }()
    private static let peak = Atomic<Int>(0)

    public init(count: Int) {
        precondition(count >= 0)
        _ = Storage.allocatorTuned
        self.count = count
        owner = nil
        if Engine.shapeOnly {
            isShapeOnly = true
            pointer = UnsafeMutablePointer(bitPattern: 64)!
            return
        }
        isShapeOnly = false
        let now = Storage.live.add(count * 4, ordering: .relaxed).newValue
        _ = Storage.peak.max(now, ordering: .relaxed)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// A storage over memory someone else owns (`owner`, kept alive by this storage): a view, never freed here and
    /// not counted in `liveBytes`. Summed gradients handed out straight from the buffers MPI summed them in.
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        precondition(count >= 0)
        self.pointer = pointer
        self.count = count
        self.isShapeOnly = false
        self.owner = owner
    }

    /// The owner of a borrowed storage's memory (nil: this storage allocated it).
    private let owner: AnyObject?

    public convenience init(zeros count: Int) {
        self.init(count: count)
        if !isShapeOnly { pointer.initialize(repeating: 0, count: count) }
    }

    deinit {
        if isShapeOnly || owner != nil { return }
        Storage.live.subtract(count * 4, ordering: .relaxed)
        UnsafeMutableRawPointer(pointer).deallocate()
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// A raw pointer that may cross into worker threads; the code that makes one guarantees exclusive ranges.
public struct SendablePointer<T>: @unchecked Sendable {
    public let p: UnsafeMutablePointer<T>
    public init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}
