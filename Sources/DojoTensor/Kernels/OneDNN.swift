// Thin wrappers around oneDNN 2.6's C API: engine, streams, memories, primitives, NCHW <-> blocked staging, and a
// thread-safe cache of per-geometry primitive sets. See research/onednn-from-swift.md for the recipe and pitfalls.
import COneDNN
import Synchronization

/// Which implementation a kernel call uses.
public enum KernelBackend: String, Sendable {
    /// The fastest implementation available (oneDNN primitives for convolution and pooling; see each kernel).
    case oneDNN
    /// Straightforward pure-Swift loops: the truth the fast path is tested against.
    case reference
}

/// oneDNN errors here are programmer errors: shapes were validated by the caller.
@inline(__always)
func dnnlCheck(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
    if status != dnnl_success {
        fatalError("oneDNN: \(what()) failed with status \(status.rawValue) (2 = invalid arguments, 3 = unimplemented)")
    }
}

/// The process-wide CPU engine.
final class DnnlEngine: @unchecked Sendable {
    static let shared = DnnlEngine()
    let engine: dnnl_engine_t

    private init() {
        var e: dnnl_engine_t?
        dnnlCheck(dnnl_engine_create(&e, dnnl_cpu, 0), "engine creation")
        engine = e!
    }

    deinit { dnnl_engine_destroy(engine) }
}

/// An in-order stream; each cached primitive set owns one and is used by one thread at a time (under its lock).
final class DnnlStream: @unchecked Sendable {
    let stream: dnnl_stream_t

    init() {
        var s: dnnl_stream_t?
        dnnlCheck(dnnl_stream_create(&s, DnnlEngine.shared.engine, dnnl_stream_default_flags.rawValue), "stream creation")
        stream = s!
    }

    func wait() { dnnlCheck(dnnl_stream_wait(stream), "stream wait") }

    deinit { dnnl_stream_destroy(stream) }
}

/// A memory descriptor for `dims` with a format tag (`dnnl_format_tag_any` lets the primitive choose).
func dnnlMD(_ dims: [Int], _ tag: dnnl_format_tag_t, _ dt: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
    var md = dnnl_memory_desc_t()
    let d = dims.map { dnnl_dim_t($0) }
    dnnlCheck(dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, dt, tag), "memory descriptor \(dims)")
    return md
}

func dnnlEqual(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
    var a = a, b = b
    return dnnl_memory_desc_equal(&a, &b) != 0
}

/// A oneDNN memory object: either library-allocated (`owned`) or a placeholder whose buffer is swapped in per call.
final class DnnlMemory: @unchecked Sendable {
    let mem: dnnl_memory_t
    let md: dnnl_memory_desc_t

    /// `owned`: oneDNN allocates the buffer; otherwise the memory has no buffer until `set(_:)`.
    init(_ md: dnnl_memory_desc_t, owned: Bool) {
        var m: dnnl_memory_t?, d = md
        let handle: UnsafeMutableRawPointer? = owned ? UnsafeMutableRawPointer(bitPattern: -1) : nil
        dnnlCheck(dnnl_memory_create(&m, &d, DnnlEngine.shared.engine, handle), "memory creation")
        mem = m!
        self.md = md
    }

    @inline(__always)
    func set(_ p: UnsafeRawPointer) {
        dnnlCheck(dnnl_memory_set_data_handle(mem, UnsafeMutableRawPointer(mutating: p)), "set data handle")
    }

    /// The buffer the memory holds now.
    var data: UnsafeMutableRawPointer {
        var p: UnsafeMutableRawPointer?
        dnnlCheck(dnnl_memory_get_data_handle(mem, &p), "get data handle")
        return p!
    }

    var byteCount: Int {
        var d = md
        return dnnl_memory_desc_get_size(&d)
    }

    deinit { dnnl_memory_destroy(mem) }
}

/// A primitive descriptor and its primitive.
final class DnnlPrimitive: @unchecked Sendable {
    let pd: dnnl_primitive_desc_t
    let prim: dnnl_primitive_t

    /// `op`: pointer to an op descriptor (`&convDesc`); `hint`: the forward primitive for backward passes.
    /// The primitive uses a scratchpad this object owns (`dnnl_scratchpad_mode_user`), passed by `run`.
    /// `sum`: the destination's prior values times this are added to the result (a sum post-op: C = op + sum·C).
    init(op: UnsafeRawPointer, hint: DnnlPrimitive? = nil, sum: Float? = nil, _ what: @autoclosure () -> String) {
        var p: dnnl_primitive_desc_t?, q: dnnl_primitive_t?, attr: dnnl_primitive_attr_t?
        dnnlCheck(dnnl_primitive_attr_create(&attr), "attributes")
        defer { dnnl_primitive_attr_destroy(attr) }
        dnnlCheck(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode")
        if let sum {
            var ops: dnnl_post_ops_t?
            dnnlCheck(dnnl_post_ops_create(&ops), "post-ops")
            defer { dnnl_post_ops_destroy(ops) }
            dnnlCheck(dnnl_post_ops_append_sum(ops, sum), "sum post-op")
            dnnlCheck(dnnl_primitive_attr_set_post_ops(attr, ops), "post-ops attribute")
        }
        dnnlCheck(dnnl_primitive_desc_create(&p, op, attr, DnnlEngine.shared.engine, hint?.pd), "\(what()) descriptor")
        dnnlCheck(dnnl_primitive_create(&q, p), "\(what()) primitive")
        pd = p!
        prim = q!
        // A scratchpad per primitive, owned here. With the library-managed scratchpad of this Debian build,
        // primitives created on one thread and run on another (Swift tasks hop threads) corrupted the heap.
        var spMD = dnnl_primitive_desc_query_md(p, dnnl_query_scratchpad_md, 0)!.pointee
        scratchpad = dnnl_memory_desc_get_size(&spMD) > 0 ? DnnlMemory(spMD, owned: true) : nil
    }

    let scratchpad: DnnlMemory?

    init(reorder src: dnnl_memory_desc_t, _ dst: dnnl_memory_desc_t) {
        var p: dnnl_primitive_desc_t?, q: dnnl_primitive_t?, s = src, d = dst, attr: dnnl_primitive_attr_t?
        let e = DnnlEngine.shared.engine
        dnnlCheck(dnnl_primitive_attr_create(&attr), "attributes")
        defer { dnnl_primitive_attr_destroy(attr) }
        dnnlCheck(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode")
        dnnlCheck(dnnl_reorder_primitive_desc_create(&p, &s, e, &d, e, attr), "reorder descriptor")
        dnnlCheck(dnnl_primitive_create(&q, p), "reorder primitive")
        pd = p!
        prim = q!
        var spMD = dnnl_primitive_desc_query_md(p, dnnl_query_scratchpad_md, 0)!.pointee
        scratchpad = dnnl_memory_desc_get_size(&spMD) > 0 ? DnnlMemory(spMD, owned: true) : nil
    }

    func md(_ q: dnnl_query_t, _ i: Int32 = 0) -> dnnl_memory_desc_t {
        dnnl_primitive_desc_query_md(pd, q, i)!.pointee
    }

    /// The implementation oneDNN chose, e.g. `jit:avx512_core`.
    var implementation: String {
        var s: UnsafePointer<CChar>?
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s)
        return s.map { String(cString: $0) } ?? "?"
    }

    func run(_ stream: DnnlStream, _ args: [dnnl_exec_arg_t]) {
        var args = args
        if let sp = scratchpad { args.append(dnnlArg(DNNL_ARG_SCRATCHPAD, sp)) }
        let status = args.withUnsafeBufferPointer {
            dnnl_primitive_execute(prim, stream.stream, Int32($0.count), $0.baseAddress)
        }
        dnnlCheck(status, "execute \(implementation)")
    }

    deinit {
        dnnl_primitive_destroy(prim)
        dnnl_primitive_desc_destroy(pd)
    }
}

@inline(__always)
func dnnlArg(_ a: Int32, _ m: DnnlMemory) -> dnnl_exec_arg_t { dnnl_exec_arg_t(arg: a, memory: m.mem) }

/// A plain user buffer (swapped in per call) and, if the primitive wants another layout, a library-owned buffer in
/// that layout plus the reorder in the needed direction (user -> primitive for inputs, back for outputs).
final class DnnlStaged: @unchecked Sendable {
    let user: DnnlMemory
    let prim: DnnlMemory
    let reorder: DnnlPrimitive?
    let isInput: Bool

    init(user userMD: dnnl_memory_desc_t, want: dnnl_memory_desc_t, input: Bool) {
        user = DnnlMemory(userMD, owned: false)
        isInput = input
        if dnnlEqual(userMD, want) {
            prim = user
            reorder = nil
        } else {
            prim = DnnlMemory(want, owned: true)
            reorder = input ? DnnlPrimitive(reorder: userMD, want) : DnnlPrimitive(reorder: want, userMD)
        }
    }

    /// Whether a reorder runs around the primitive.
    var isReordered: Bool { reorder != nil }

    /// Inputs: swap in the user's buffer and reorder it into the primitive's layout.
    func pull(_ p: UnsafeRawPointer, _ stream: DnnlStream) {
        user.set(p)
        reorder?.run(stream, [dnnlArg(DNNL_ARG_FROM, user), dnnlArg(DNNL_ARG_TO, prim)])
    }

    /// Outputs, before the primitive runs: swap in the user's buffer.
    func bind(_ p: UnsafeMutableRawPointer) { user.set(p) }

    /// Outputs, after the primitive ran: reorder into the user's buffer.
    func push(_ stream: DnnlStream) {
        reorder?.run(stream, [dnnlArg(DNNL_ARG_FROM, prim), dnnlArg(DNNL_ARG_TO, user)])
    }
}

/// A thread-safe dictionary of primitive sets, created once per key. The values serialise their own execution
/// (one oneDNN primitive must not run on two threads at once).
final class DnnlCache<Key: Hashable & Sendable, Value: AnyObject & Sendable>: Sendable {
    private let table = Mutex<[Key: Value]>([:])

    init() {}

    func get(_ key: Key, make: () -> Value) -> Value {
        if let v = table.withLock({ $0[key] }) { return v }
        let made = dnnlGlobalLock.withLock { _ in make() }  // outside the table lock: creation may take a millisecond
        return table.withLock { t in
            if let v = t[key] { return v }
            t[key] = made
            return made
        }
    }

    var count: Int { table.withLock { $0.count } }

    /// The value for `key` when it was made already (nothing is made).
    func existing(_ key: Key) -> Value? { table.withLock { $0[key] } }

    func contains(_ key: Key) -> Bool { table.withLock { $0[key] != nil } }

    func removeAll() { table.withLock { $0.removeAll() } }
}

/// The per-geometry oneDNN primitive sets (primitives, blocked buffers, scratchpads) the kernels keep.
public enum KernelCaches {
    /// Number of cached primitive sets across convolution, pooling, batch norm and elementwise activations.
    public static var count: Int {
        convCache.count + poolCache.count + OneDNNBatchNorm.cache.count + EltwiseKernel.cache.count + BF16Gemm.cache.count
    }

    /// Frees every cached primitive set (e.g. after a model with many shapes is done). Calls in flight keep theirs
    /// alive until they return; later calls re-create what they need.
    public static func removeAll() {
        convCache.removeAll()
        poolCache.removeAll()
        OneDNNBatchNorm.cache.removeAll()
        EltwiseKernel.cache.removeAll()
        BF16Gemm.cache.removeAll()
    }
}

/// Serialises all oneDNN primitive creation and execution in the process: each primitive already uses every
/// compute thread (OpenMP), so concurrent calls would gain nothing, and a cached primitive set (its memories'
/// data handles, its scratchpad) must not be used by two threads at once.
let dnnlGlobalLock = Mutex<Void>(())

/// A base class for cached primitive sets: a stream, and execution under `dnnlGlobalLock`.
@_spi(Testing) public class DnnlExecutable: @unchecked Sendable {
    let stream = DnnlStream()

    func exclusive(_ body: () -> Void) {
        dnnlGlobalLock.withLock { _ in body() }
    }
}
