import CMPI
import DojoNN
import Foundation

/// The distributed runtime over Open MPI: one process per rank, started by `mpirun` (or by `dojo train --ranks N`,
/// which runs mpirun itself). Data-parallel training uses it through DojoNN's `DataParallelGroup`.
public final class MPIGroup: PipelineGroup {
    public let rank: Int
    public let size: Int
    /// Ranks on this host (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE), for sharing its cores between them.
    public let localSize: Int
    /// More ranks on this host than cores this process may run on: waits give the core up at every poll.
    public let oversubscribed: Bool
    /// This rank's host name (for error lines that name the rank and host).
    public let host: String
    /// Every rank's host name, by rank.
    public private(set) var hosts: [String] = []
    /// Seconds without a word from a rank before every rank stops with an error line that names it (a rank that
    /// hangs, or whose host or link stops answering, would otherwise block the others forever). Ranks tell each
    /// other they are alive at most once a second, from inside every collective and from `keepAlive`.
    public var timeout: Double = 120
    /// Where the error line of a hang goes (rank 0's stderr; other ranks keep a copy of theirs, since their output is
    /// silenced).
    public var errorOutput: Int32 = 2
    /// The ranks this group's collectives run over: every rank, or those of a `subgroup`.
    let comm: MPI_Comm?
    /// The group of every rank, for a subgroup: it sends and takes in the heartbeats.
    let parent: MPIGroup?
    /// A duplicate of the world communicator for heartbeats, so they never match a training message.
    var heartbeatComm: MPI_Comm? = nil
    var lastHeard: [Double] = []
    var heartbeatIn: UnsafeMutablePointer<Int64>
    var heartbeatOut: UnsafeMutablePointer<Int64>
    var receives: [MPI_Request?] = []
    var sends: [MPI_Request?] = []
    var lastSent = 0.0
    /// When this rank began listening without a break (calls to `keepAlive` less than 2 s apart): a rank that was busy
    /// without MPI (loading data, a long step) has not heard the others, which is no sign that they stopped.
    var listeningSince = 0.0, lastListened = 0.0
    /// Collectives this rank has entered (sent as the heartbeat: a peer far behind is the one that stopped).
    var collectives: Int64 = 0

    /// Whether this process was started by mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE in every rank).
    public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    /// Initialises MPI (once per process). Errors come back as values instead of aborting, so that they can be
    /// reported with the rank and host.
    public init() throws {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        if flag == 0 {
            // Open MPI's non-blocking all-reduce (libnbc) picks a binomial tree by default, which on 2 ranks summed the
            // occupancy net's 8 MiB of gradients at half the bus bandwidth of the blocking MPI_Allreduce; Rabenseifner's
            // reduce-scatter + all-gather beat it (dojo bench --allreduce; BENCHMARKS). An explicit setting wins.
            setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0)
            guard MPI_Init(nil, nil) == MPI_SUCCESS else { throw MPIError("MPI_Init failed") }
        }
        comm = swmpi_comm_world()
        parent = nil
        MPI_Comm_set_errhandler(swmpi_comm_world(), swmpi_errors_return())
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(swmpi_comm_world(), &r)
        MPI_Comm_size(swmpi_comm_world(), &n)
        rank = Int(r); size = Int(n)
        localSize = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
        oversubscribed = localSize > ProcessInfo.processInfo.activeProcessorCount
        host = ProcessInfo.processInfo.hostName
        heartbeatIn = .allocate(capacity: max(size, 1)); heartbeatIn.initialize(repeating: 0, count: max(size, 1))
        heartbeatOut = .allocate(capacity: max(size, 1)); heartbeatOut.initialize(repeating: 0, count: max(size, 1))
        // Every rank's host name (64 bytes each), for error lines.
        var mine = [CChar](repeating: 0, count: 64)
        for (i, b) in host.utf8.prefix(63).enumerated() { mine[i] = CChar(bitPattern: b) }
        var all = [CChar](repeating: 0, count: 64 * size)
        if MPI_Allgather(&mine, 64, swmpi_char(), &all, 64, swmpi_char(), swmpi_comm_world()) == MPI_SUCCESS {
            hosts = (0..<size).map { r in String(decoding: all[(64 * r)..<(64 * r + 64)].prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        } else {
            hosts = Array(repeating: "?", count: size)
        }
        var dup: MPI_Comm? = nil
        guard MPI_Comm_dup(swmpi_comm_world(), &dup) == MPI_SUCCESS, let dup else { throw MPIError("rank \(rank) on \(host): MPI_Comm_dup failed") }
        heartbeatComm = dup
        let now = Date().timeIntervalSince1970
        lastHeard = Array(repeating: now, count: size)
        receives = Array(repeating: nil, count: size)
        sends = Array(repeating: nil, count: size)
        for p in 0..<size where p != rank { postReceive(p) }
    }

    /// A subgroup: collectives over `comm`; heartbeats through `parent`.
    private init(parent: MPIGroup, comm: MPI_Comm?) {
        self.parent = parent
        self.comm = comm
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &n)
        rank = Int(r); size = Int(n)
        localSize = parent.localSize
        oversubscribed = parent.oversubscribed
        host = parent.host
        heartbeatIn = .allocate(capacity: 1); heartbeatOut = .allocate(capacity: 1)
    }

    deinit { heartbeatIn.deallocate(); heartbeatOut.deallocate() }

    public func subgroup(color: Int) throws -> DataParallelGroup {
        var sub: MPI_Comm? = nil
        collectives += 1
        let rc = MPI_Comm_split(comm, Int32(color), Int32(rank), &sub)
        guard rc == MPI_SUCCESS, let sub else { throw MPIError("rank \(rank) on \(host): MPI_Comm_split failed (\(rc))") }
        MPI_Comm_set_errhandler(sub, swmpi_errors_return())
        return MPIGroup(parent: parent ?? self, comm: sub)
    }

    public func startSend(_ buffer: UnsafeRawPointer, bytes: Int, to peer: Int, tag: Int) throws -> Int {
        guard bytes <= Int(Int32.max) else { throw MPIError("rank \(rank) on \(host): a message of \(bytes) bytes is more than MPI counts") }
        var r: MPI_Request? = nil
        let rc = MPI_Isend(buffer, Int32(bytes), swmpi_uint8(), Int32(peer), Int32(tag), comm, &r)
        guard rc == MPI_SUCCESS, let r else { throw MPIError("rank \(rank) on \(host): MPI_Isend of \(bytes) bytes to rank \(peer) failed (\(rc))") }
        nextHandle += 1
        requests[nextHandle] = r
        return nextHandle
    }

    public func receive(_ buffer: UnsafeMutableRawPointer, bytes: Int, from peer: Int, tag: Int) throws {
        guard bytes <= Int(Int32.max) else { throw MPIError("rank \(rank) on \(host): a message of \(bytes) bytes is more than MPI counts") }
        var r: MPI_Request? = nil
        let rc = MPI_Irecv(buffer, Int32(bytes), swmpi_uint8(), Int32(peer), Int32(tag), comm, &r)
        guard rc == MPI_SUCCESS else { throw MPIError("rank \(rank) on \(host): MPI_Irecv of \(bytes) bytes from rank \(peer) failed (\(rc))") }
        try waitPolling(&r, what: "receiving \(bytes) bytes from rank \(peer)")
    }

    func postReceive(_ p: Int) {
        var r: MPI_Request? = nil
        if MPI_Irecv(heartbeatIn + p, 1, swmpi_int64(), Int32(p), 7, heartbeatComm, &r) == MPI_SUCCESS { receives[p] = r }
    }

    /// Takes in the heartbeats that arrived, sends this rank's (at most once a second), and stops every rank with
    /// one error line when a rank has been silent for longer than `timeout`.
    public func keepAlive() {
        if let parent { parent.keepAlive(); return }
        guard size > 1, heartbeatComm != nil else { return }
        let now = Date().timeIntervalSince1970
        if now - lastListened > 2 { listeningSince = now }
        lastListened = now
        for p in 0..<size where p != rank {
            guard receives[p] != nil else { continue }
            var r = receives[p]
            var flag: Int32 = 0
            if MPI_Test(&r, &flag, swmpi_status_ignore()) == MPI_SUCCESS, flag != 0 {
                lastHeard[p] = now
                postReceive(p)
            } else {
                receives[p] = r
            }
        }
        if now - lastSent >= 1 {
            lastSent = now
            for p in 0..<size where p != rank {
                if sends[p] != nil {   // the last one to this rank still travelling: skip it this time
                    var s = sends[p]
                    var flag: Int32 = 0
                    guard MPI_Test(&s, &flag, swmpi_status_ignore()) == MPI_SUCCESS, flag != 0 else { sends[p] = s; continue }
                    sends[p] = nil
                }
                heartbeatOut[p] = collectives
                var s: MPI_Request? = nil
                if MPI_Isend(heartbeatOut + p, 1, swmpi_int64(), Int32(p), 7, heartbeatComm, &s) == MPI_SUCCESS { sends[p] = s }
            }
        }
        let silent = (0..<size).filter { $0 != rank && now - max(lastHeard[$0], listeningSince) > timeout }
        if !silent.isEmpty {
            let who = silent.map { "rank \($0) of \(size) on \(hosts.indices.contains($0) ? hosts[$0] : "?")" }.joined(separator: ", ")
            let line = "Error: \(who) stopped answering: nothing from \(silent.count == 1 ? "it" : "them") for \(Int(timeout)) s (hung, or its host or link is down; --rank-timeout sets the wait); every rank stops, the last checkpoint is intact: --resume continues\n"
            _ = line.withCString { write(errorOutput, $0, strlen($0)) }
            MPI_Abort(swmpi_comm_world(), 3)
            exit(3)
        }
    }

    /// Waits for a request, taking in and sending heartbeats while it waits (MPI_Wait would block for ever on a
    /// rank that stopped).
    func waitPolling(_ request: inout MPI_Request?, what: String) throws {
        var flag: Int32 = 0
        var spins = 0
        var lastCheck = Date().timeIntervalSince1970
        while true {
            let rc = MPI_Test(&request, &flag, swmpi_status_ignore())
            guard rc == MPI_SUCCESS else { throw MPIError("rank \(rank) on \(host): \(what) failed (\(rc))") }
            if flag != 0 { return }
            spins += 1
            // More ranks than cores here: a waiting rank's polls take the core from a rank with work (a pipeline
            // stage waiting for its neighbour stalled the one it waited for); give it up at every poll, and sleep
            // between polls once the wait is not a short one (a yield alone may hand the core to another poller).
            if oversubscribed { if spins > 2_000 { usleep(20) } else { sched_yield() } }
            if spins % 256 == 0 {
                let now = Date().timeIntervalSince1970
                if now - lastCheck >= 0.05 { lastCheck = now; keepAlive() }
                if spins > 100_000 { usleep(50) }   // a long wait: leave the core to the others
            }
        }
    }

    /// A sum over every rank, in place, waited for with heartbeats.
    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: MPI_Datatype?, size: Int, op: MPI_Op?, what: String) throws {
        collectives += 1
        var done = 0
        while done < count {   // MPI counts are Int32
            let n = min(count - done, Int(Int32.max))
            var r: MPI_Request? = nil
            let rc = MPI_Iallreduce(swmpi_in_place(), buffer + done * size, Int32(n), type, op, comm, &r)
            guard rc == MPI_SUCCESS else { throw MPIError("rank \(rank) on \(host): MPI_Iallreduce of \(n) \(what) failed (\(rc))") }
            try waitPolling(&r, what: "MPI_Iallreduce of \(n) \(what)")
            done += n
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try allReduce(buffer, count: count, type: swmpi_float(), size: 4, op: swmpi_sum(), what: "floats")
    }

    /// A plain blocking `MPI_Allreduce` (no heartbeats, no polling): the baseline the training's sums are measured
    /// against (`dojo bench --allreduce`).
    public func bareAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        let rc = MPI_Allreduce(swmpi_in_place(), buffer, Int32(count), swmpi_float(), swmpi_sum(), comm)
        guard rc == MPI_SUCCESS else { throw MPIError("rank \(rank) on \(host): MPI_Allreduce of \(count) floats failed (\(rc))") }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
        try allReduce(buffer, count: count, type: swmpi_double(), size: 8, op: swmpi_sum(), what: "doubles")
    }

    public func allReduceMax(_ value: Int32) throws -> Int32 {
        var v = value
        try allReduce(&v, count: 1, type: swmpi_int(), size: 4, op: swmpi_max(), what: "ints")
        return v
    }

    /// Requests of sums in flight, by handle.
    var requests: [Int: MPI_Request?] = [:]
    var nextHandle = 0

    public func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws -> Int {
        guard count <= Int(Int32.max) else { try allReduceSum(buffer, count: count); return -1 }
        collectives += 1
        var r: MPI_Request? = nil
        let rc = MPI_Iallreduce(swmpi_in_place(), buffer, Int32(count), swmpi_float(), swmpi_sum(), comm, &r)
        guard rc == MPI_SUCCESS, let r else { throw MPIError("rank \(rank) on \(host): MPI_Iallreduce of \(count) floats failed (\(rc))") }
        nextHandle += 1
        requests[nextHandle] = r
        return nextHandle
    }

    /// MPI's sum for BF16 codes (as MPI_UINT16_T): each pair added in FP32 and rounded back to BF16.
    nonisolated(unsafe) static let bf16Sum: MPI_Op? = {
        var op: MPI_Op? = nil
        let fn: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?,
                                UnsafeMutablePointer<MPI_Datatype?>?) -> Void = { input, inout_, len, _ in
            guard let input, let inout_, let len else { return }
            let a = input.assumingMemoryBound(to: UInt16.self), b = inout_.assumingMemoryBound(to: UInt16.self)
            for i in 0..<Int(len.pointee) { b[i] = bf16Bits(floatFromBF16(a[i]) + floatFromBF16(b[i])) }
        }
        MPI_Op_create(fn, 1, &op)
        return op
    }()

    public func startAllReduceSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, count: Int) throws -> Int {
        guard count <= Int(Int32.max), let op = MPIGroup.bf16Sum else { throw MPIError("rank \(rank) on \(host): BF16 sums need MPI_Op_create") }
        collectives += 1
        var r: MPI_Request? = nil
        let rc = MPI_Iallreduce(swmpi_in_place(), buffer, Int32(count), swmpi_uint16(), op, comm, &r)
        guard rc == MPI_SUCCESS, let r else { throw MPIError("rank \(rank) on \(host): MPI_Iallreduce of \(count) BF16 values failed (\(rc))") }
        nextHandle += 1
        requests[nextHandle] = r
        return nextHandle
    }

    public func startAllGather(_ send: UnsafeMutablePointer<UInt8>, count: Int, into receive: UnsafeMutablePointer<UInt8>) throws -> Int {
        guard count <= Int(Int32.max) else { throw MPIError("rank \(rank) on \(host): a gather of \(count) bytes is more than MPI counts") }
        collectives += 1
        var r: MPI_Request? = nil
        let rc = MPI_Iallgather(send, Int32(count), swmpi_uint8(), receive, Int32(count), swmpi_uint8(), comm, &r)
        guard rc == MPI_SUCCESS, let r else { throw MPIError("rank \(rank) on \(host): MPI_Iallgather of \(count) bytes failed (\(rc))") }
        nextHandle += 1
        requests[nextHandle] = r
        return nextHandle
    }

    public func test(_ handle: Int) throws -> Bool {
        guard let found = requests[handle] else { return true }
        var r = found
        var flag: Int32 = 0
        let rc = MPI_Test(&r, &flag, nil)
        guard rc == MPI_SUCCESS else { throw MPIError("rank \(rank) on \(host): MPI_Test failed (\(rc))") }
        if flag != 0 { requests[handle] = nil } else { requests[handle] = r }
        keepAlive()
        return flag != 0
    }

    public func wait(_ handle: Int) throws {
        guard let found = requests.removeValue(forKey: handle) else { return }
        var r = found
        try waitPolling(&r, what: "MPI_Wait")
    }

    public func barrier() throws {
        collectives += 1
        var r: MPI_Request? = nil
        guard MPI_Ibarrier(comm, &r) == MPI_SUCCESS else { throw MPIError("rank \(rank) on \(host): MPI_Ibarrier failed") }
        try waitPolling(&r, what: "MPI_Ibarrier")
    }

    /// Ends MPI (every rank, once, at the end of a run): heartbeats still posted are cancelled first.
    public func finish() {
        guard parent == nil else { return }
        var done: Int32 = 0
        MPI_Finalized(&done)
        guard done == 0 else { return }
        for p in 0..<size where p != rank {
            if receives[p] != nil { var r = receives[p]; MPI_Cancel(&r); MPI_Wait(&r, swmpi_status_ignore()); receives[p] = nil }
            if sends[p] != nil { var s = sends[p]; MPI_Request_free(&s); sends[p] = nil }
        }
        MPI_Finalize()
    }
}

public struct MPIError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
