import COneDNN
import Synchronization

/// A contiguous, 64-byte aligned buffer of Float32 values. Tensors share a storage when one is a reshaped view of
/// another. Mutation goes through the owning code (optimizers update parameters in place).
///
/// **Packed values** (issue 14 §2: what backward reads kept in Dojo's formats, 1 or 2 bytes a value, not 4). A
/// storage whose values a rounding made exact in a format (`packFormat`) can be packed: `packAway()` encodes them
/// into codes (once) and frees the FP32 buffer. Reading `pointer` brings the FP32 values back from the codes (and
/// keeps both until the next `packAway()`). The tape packs a formatted tensor once the forward op that read it is
/// done, and again after the last backward op that read it, so a step's saved activations take 1 byte a value in
/// CFP8 and 2 in BF16. Once it has a `packFormat`, a storage is read-only: the codes are not rewritten when its
/// values would change (a rounding that writes a tensor in place does so before it sets the format).
public final class Storage: @unchecked Sendable {
    /// The FP32 values. Unpacks them (from `packFormat`'s codes) when `packAway()` freed them.
    public var pointer: UnsafeMutablePointer<Float> {
        let bits = resident.load(ordering: .acquiring)
        if bits != 0 { return UnsafeMutablePointer(bitPattern: bits).unsafelyUnwrapped }
        return unpack()
    }
    /// The FP32 values' address when they are in memory now (nil while only the codes hold them); unpacks nothing.
    public var residentAddress: UInt? {
        let bits = resident.load(ordering: .acquiring)
        return bits == 0 ? nil : bits
    }
    private let resident: Atomic<UInt>
    /// Bytes this storage holds now: its FP32 values when they are in memory, and its codes when it has them.
    public var bytesHeld: Int {
        if isShapeOnly || owner != nil { return 0 }
        let codeBytes = packing.withLock { state in state.codes == nil ? 0 : count * (state.format?.packedBytes ?? 0) }
        return (residentAddress == nil ? 0 : count * 4) + codeBytes
    }
    /// Whether the FP32 buffer is freed and the values are held as codes only.
    public var isPacked: Bool { resident.load(ordering: .acquiring) == 0 }
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
            resident = Atomic(64)
            return
        }
        isShapeOnly = false
        resident = Atomic(UInt(bitPattern: Storage.allocateValues(count)))
    }

    /// A fresh FP32 buffer of `count` values, counted in `liveBytes`.
    private static func allocateValues(_ count: Int) -> UnsafeMutablePointer<Float> {
        Storage.count(bytes: count * 4)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    private static func count(bytes: Int) {
        let now = Storage.live.add(bytes, ordering: .relaxed).newValue
        if bytes > 0 { _ = Storage.peak.max(now, ordering: .relaxed) }
    }

    /// A storage that holds its values as codes only from the start (packed, no FP32 buffer): `codes` are the codes
    /// (`packedBytes` each) of `count` values exact in `format`, written by a kernel in place of its FP32 output (a
    /// convolution, batch norm, ReLU or max pooling in Dojo's formats, in training); taken, counted and freed here.
    /// Reading `pointer` decodes them, as for a storage packed later.
    public init(codes: UnsafeMutableRawPointer, count: Int, format: NumberFormat) {
        precondition(count >= 0 && format.packedBytes != nil, "Storage(codes:): \(format.format.rawValue) has no packed codes")
        _ = Storage.allocatorTuned
        self.count = count
        owner = nil
        isShapeOnly = false
        resident = Atomic(0)
        let address = UInt(bitPattern: codes)
        packing.withLock { state in
            state.format = format
            state.codes = UnsafeMutableRawPointer(bitPattern: address)
        }
        Storage.count(bytes: count * format.packedBytes!)
    }

    /// A storage over memory someone else owns (`owner`, kept alive by this storage): a view, never freed here and
    /// not counted in `liveBytes`. Summed gradients handed out straight from the buffers MPI summed them in.
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        precondition(count >= 0)
        self.resident = Atomic(UInt(bitPattern: pointer))
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
        if let codes, let bytes = packFormat?.packedBytes {
            Storage.live.subtract(count * bytes, ordering: .relaxed)
            codes.deallocate()
        }
        if let address = residentAddress {
            Storage.live.subtract(count * 4, ordering: .relaxed)
            UnsafeMutableRawPointer(bitPattern: address)!.deallocate()
        }
    }

    // MARK: Packed values

    /// The format every value is exact in, set by the rounding that made them so (nil: FP32 values, never packed).
    /// Setting it on a borrowed or shape-only storage does nothing.
    public var packFormat: NumberFormat? {
        get { packing.withLock { $0.format } }
        set {
            guard !isShapeOnly, owner == nil else { return }
            packing.withLock { state in
                guard state.format != newValue else { return }
                precondition(state.codes == nil, "the packing format of a storage already packed cannot change")
                state.format = newValue
            }
        }
    }
    private struct Packing {
        var format: NumberFormat?
        var codes: UnsafeMutableRawPointer?
    }
    private let packing = Mutex(Packing())
    private var codes: UnsafeMutableRawPointer? { packing.withLock { $0.codes } }

    /// Whether an entry of a recording tape holds this storage for its backward (its kind's `OpDefinition.saved`):
    /// only such values are worth packing. One nothing saves is freed as soon as the forward ops reading it are done,
    /// and packing it would cost a pass over it for nothing (or one to bring it back, when a later op reads it).
    public var heldForBackward: Bool {
        get { held.load(ordering: .relaxed) }
        set { held.store(newValue, ordering: .relaxed) }
    }
    private let held = Atomic<Bool>(false)

    /// Storages smaller than this are never packed (the codes would save less than the bookkeeping costs).
    public static let packMinimum = 4096

    /// Frees the FP32 buffer, keeping the values as codes of `packFormat` (encoded the first time). Does nothing and
    /// returns false when the storage has no `packFormat`, is small, borrowed or shape-only, or when a value is not
    /// exact in the format (then the format is dropped: the values stay FP32 for good).
    @discardableResult
    public func packAway() -> Bool {
        guard let values = releaseValues() else { return isPacked && packFormat != nil }   // packed before, or not packable
        Storage.live.subtract(count * 4, ordering: .relaxed)
        UnsafeMutableRawPointer(values).deallocate()
        return true
    }

    /// Packs the values as `packAway` does, but hands their FP32 buffer to a new storage instead of freeing it: an op
    /// whose output has this storage's size, and which reads each input value before it writes the output at the same
    /// place (an elementwise op, batch norm's normalising pass), writes its output over its input's memory when the
    /// input is kept packed anyway (as its codes, readable as before). One activation-sized buffer less alive at once,
    /// in Dojo's formats only: an FP32 input is kept as it is. Nil (nothing changes) when the values are not in
    /// memory or cannot be packed.
    public func packAwayYieldingBuffer() -> Storage? {
        guard let values = releaseValues() else { return nil }
        // the buffer's bytes move to the new storage, which counts and frees them
        return Storage(adopting: values, count: count)
    }

    private init(adopting values: UnsafeMutablePointer<Float>, count: Int) {
        self.count = count
        owner = nil
        isShapeOnly = false
        resident = Atomic(UInt(bitPattern: values))
    }

    /// Encodes the codes (the first time) and gives up the FP32 buffer, returning it; nil when the values are not in
    /// memory or cannot be packed (no format, small, borrowed, shape-only, or a value not exact: the format dropped).
    private func releaseValues() -> UnsafeMutablePointer<Float>? {
        guard !isShapeOnly, owner == nil, count >= Storage.packMinimum else { return nil }
        return packing.withLock { state -> UnsafeMutablePointer<Float>? in
            guard let format = state.format, let bytes = format.packedBytes else { return nil }
            let address = resident.load(ordering: .acquiring)
            if address == 0 { return nil }
            let values = UnsafeMutablePointer<Float>(bitPattern: address)!
            if state.codes == nil {
                let codes = UnsafeMutableRawPointer.allocate(byteCount: count * bytes, alignment: 64)
                if !Storage.encode(values, count: count, format: format, bytes: bytes, into: codes) {
                    codes.deallocate()
                    state.format = nil
                    return nil
                }
                Storage.count(bytes: count * bytes)
                state.codes = codes
            }
            resident.store(0, ordering: .releasing)
            return values
        }
    }

    /// The codes and their decoder while the values are held as codes only (nil while the FP32 values are in memory,
    /// or for a storage never packed): a kernel may decode the spans it reads (`PackedValues.read`) instead of bringing
    /// every value back at once. The codes never change and live as long as the storage.
    public var packedValues: PackedValues? {
        packing.withLock { state in
            guard resident.load(ordering: .acquiring) == 0, let codes = state.codes, let format = state.format else { return nil }
            return PackedValues(codes: UnsafeRawPointer(codes), unpacker: NumberFormat.Unpacker(format))
        }
    }

    /// The codes and their format when the storage has them, whether or not its FP32 values are in memory too: a
    /// kernel that works on codes (max pooling, ReLU) reads them instead of the 4-byte values. They
    /// never change and live as long as the storage.
    public var codesAndFormat: (codes: UnsafeRawPointer, format: NumberFormat)? {
        let found: (UInt, NumberFormat)? = packing.withLock { state in
            guard let format = state.format, format.packedBytes != nil, let codes = state.codes else { return nil }
            return (UInt(bitPattern: codes), format)
        }
        return found.flatMap { address, format in UnsafeRawPointer(bitPattern: address).map { ($0, format) } }
    }

    /// The BF16 codes when the storage has them (its `packFormat` is BF16 and it was packed once): the values' BF16
    /// bits, which a BF16 GEMM reads as they are. They never change and live as long as the storage.
    public var bf16Codes: UnsafePointer<UInt16>? {
        let address: UInt? = packing.withLock { state in
            guard state.format?.format == .bf16, let codes = state.codes else { return nil }
            return UInt(bitPattern: codes)
        }
        return address.flatMap { UnsafePointer<UInt16>(bitPattern: $0) }
    }

    /// Codes a kernel wrote for these values while it wrote them (`packFormat`'s, `packedBytes` each, exact: each
    /// span through `NumberFormat.packExactly`), taken as this storage's packed form and freed with it: packing the
    /// storage later only frees the FP32 buffer, with no encoding pass over values no longer in cache.
    public func adoptCodes(_ codes: UnsafeMutableRawPointer) {
        precondition(adoptCodesIfNone(codes), "codes adopted by a storage without a packed format, or with codes already")
    }

    /// Takes `codes` as this storage's packed form (as `adoptCodes`) when it has none yet and can hold them; false
    /// (the caller keeps them) otherwise. A BF16 GEMM's operand cut from a BF16 storage is such codes.
    public func adoptCodesIfNone(_ codes: UnsafeMutableRawPointer) -> Bool {
        let address = UInt(bitPattern: codes)   // (a raw pointer does not cross into the lock's closure)
        return packing.withLock { state in
            guard let bytes = state.format?.packedBytes, state.codes == nil, !isShapeOnly, owner == nil else { return false }
            Storage.count(bytes: count * bytes)
            state.codes = UnsafeMutableRawPointer(bitPattern: address)
            return true
        }
    }

    /// Watches, in the task that sets it, which storages are brought back whole from their codes: a test's check that a
    /// kernel decodes the spans it reads (`packedValues`) instead. Reads through `pointer` on this task's thread only
    /// (a kernel's worker threads do not see it).
    @TaskLocal public static var unpackWatch: UnpackWatch?
    public final class UnpackWatch: Sendable {
        private let counts = Mutex<[Int]>([])
        public init() {}
        /// The value counts of the storages unpacked while watched, in order.
        public var unpacked: [Int] { counts.withLock { $0 } }
        func note(_ count: Int) { counts.withLock { $0.append(count) } }
    }

    /// Brings the FP32 values back from the codes (once, whichever thread asks first).
    private func unpack() -> UnsafeMutablePointer<Float> {
        Storage.unpackWatch?.note(count)
        return unpackOnce()
    }

    private func unpackOnce() -> UnsafeMutablePointer<Float> {
        packing.withLock { state in
            let address = resident.load(ordering: .acquiring)
            if address != 0 { return UnsafeMutablePointer(bitPattern: address)! }
            guard let format = state.format, let codes = state.codes, let bytes = format.packedBytes else {
                preconditionFailure("a storage without FP32 values and without codes")
            }
            let values = Storage.allocateValues(count)
            let n = count, src = SendablePointer(codes.assumingMemoryBound(to: UInt8.self)), dst = SendablePointer(values)
            parallelChunks(n, minimumPerThread: 1 << 16) { range in
                format.unpack(UnsafeRawPointer(src.p + range.lowerBound * bytes), count: range.count, into: dst.p + range.lowerBound)
            }
            resident.store(UInt(bitPattern: values), ordering: .releasing)
            return values
        }
    }

    private static func encode(_ values: UnsafeMutablePointer<Float>, count n: Int, format: NumberFormat, bytes: Int,
                               into codes: UnsafeMutableRawPointer) -> Bool {
        let src = SendablePointer(values), dst = SendablePointer(codes.assumingMemoryBound(to: UInt8.self))
        let failed = Atomic<Bool>(false)
        parallelChunks(n, minimumPerThread: 1 << 16) { range in
            if !format.packExactly(UnsafePointer(src.p + range.lowerBound), count: range.count,
                                   into: UnsafeMutableRawPointer(dst.p + range.lowerBound * bytes)) {
                failed.store(true, ordering: .relaxed)
            }
        }
        return !failed.load(ordering: .relaxed)
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// A packed storage's codes, for a kernel that decodes the spans it reads (`Storage.packedValues`).
public struct PackedValues: @unchecked Sendable {
    let codes: UnsafeRawPointer
    let unpacker: NumberFormat.Unpacker
    /// Values `offset..<offset+count` into `dst`.
    @inline(__always)
    public func read(_ offset: Int, count: Int, into dst: UnsafeMutablePointer<Float>) {
        unpacker.unpack(codes, offset: offset, count: count, into: dst)
    }
    /// The codes themselves when they are BF16 (each value's upper half: kernels can read them as they are), else nil.
    public var bf16Codes: UnsafePointer<UInt16>? {
        unpacker.format.format == .bf16 ? codes.assumingMemoryBound(to: UInt16.self) : nil
    }
}

/// A raw pointer that may cross into worker threads; the code that makes one guarantees exclusive ranges.
public struct SendablePointer<T>: @unchecked Sendable {
    public let p: UnsafeMutablePointer<T>
    public init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}

/// A read-only raw pointer that may cross into worker threads (codes that never change).
public struct SendableRaw: @unchecked Sendable {
    public let p: UnsafeRawPointer
    public init(_ p: UnsafeRawPointer) { self.p = p }
}
