import CMPI
import DojoNN
import Foundation

/// The distributed runtime over Open MPI: one process per rank, started by `mpirun` (or by `dojo train --ranks N`,
/// which runs mpirun itself). Data-parallel training uses it through DojoNN's `DataParallelGroup`.
public final class MPIGroup: DataParallelGroup {
    public let rank: Int
    public let size: Int
    /// Ranks on this host (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE), for sharing its cores between them.
    public let localSize: Int
    /// This rank's host name (for error lines that name the rank and host).
    public let host: String

    /// Whether this process was started by mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE in every rank).
    public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    /// Initialises MPI (once per process). Errors come back as values instead of aborting, so that they can be
    /// reported with the rank and host.
    public init() throws {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        if flag == 0 {
            guard MPI_Init(nil, nil) == MPI_SUCCESS else { throw MPIError("MPI_Init failed") }
        }
        MPI_Comm_set_errhandler(swmpi_comm_world(), swmpi_errors_return())
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(swmpi_comm_world(), &r)
        MPI_Comm_size(swmpi_comm_world(), &n)
        rank = Int(r); size = Int(n)
        localSize = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
        host = ProcessInfo.processInfo.hostName
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        var done = 0
        while done < count {   // MPI counts are Int32
            let n = min(count - done, Int(Int32.max))
            let rc = MPI_Allreduce(swmpi_in_place(), buffer.advanced(by: done), Int32(n), swmpi_float(), swmpi_sum(), swmpi_comm_world())
            guard rc == MPI_SUCCESS else { throw MPIError("rank \(rank) on \(host): MPI_Allreduce of \(n) floats failed (\(rc))") }
            done += n
        }
    }

    public func allReduceMax(_ value: Int32) throws -> Int32 {
        var v = value
        let rc = MPI_Allreduce(swmpi_in_place(), &v, 1, swmpi_int(), swmpi_max(), swmpi_comm_world())
        guard rc == MPI_SUCCESS else { throw MPIError("rank \(rank) on \(host): MPI_Allreduce failed (\(rc))") }
        return v
    }

    /// Requests of sums in flight, by handle.
    var requests: [Int: MPI_Request?] = [:]
    var nextHandle = 0

    public func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws -> Int {
        guard count <= Int(Int32.max) else { try allReduceSum(buffer, count: count); return -1 }
        var r: MPI_Request? = nil
        let rc = MPI_Iallreduce(swmpi_in_place(), buffer, Int32(count), swmpi_float(), swmpi_sum(), swmpi_comm_world(), &r)
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
        var r: MPI_Request? = nil
        let rc = MPI_Iallreduce(swmpi_in_place(), buffer, Int32(count), swmpi_uint16(), op, swmpi_comm_world(), &r)
        guard rc == MPI_SUCCESS, let r else { throw MPIError("rank \(rank) on \(host): MPI_Iallreduce of \(count) BF16 values failed (\(rc))") }
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
        return flag != 0
    }

    public func wait(_ handle: Int) throws {
        guard let found = requests.removeValue(forKey: handle) else { return }
        var r = found
        let rc = MPI_Wait(&r, nil)
        guard rc == MPI_SUCCESS else { throw MPIError("rank \(rank) on \(host): MPI_Wait failed (\(rc))") }
    }

    public func barrier() { MPI_Barrier(swmpi_comm_world()) }

    /// Ends MPI (every rank, once, at the end of a run).
    public func finish() {
        var done: Int32 = 0
        MPI_Finalized(&done)
        if done == 0 { MPI_Finalize() }
    }
}

public struct MPIError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
