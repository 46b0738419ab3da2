import DojoTensor

/// The trainer's view of data-parallel training across processes (the distributed runtime, DojoDistributed,
/// implements it over MPI). Without one, training runs in one process: the default path.
///
/// Each rank trains its share of every global batch (`Batch.shard`); the global batch, sample order, learning-rate
/// schedule and initial weights are those of one process with the same batch size. Gradients are weighted by each
/// rank's share of the batch and summed over the ranks, so every rank applies the gradient of the global batch's
/// mean loss, and the replicas stay identical. Batch norm uses each rank's own statistics (as PyTorch's DDP without
/// SyncBatchNorm); an MLP or any model without batch norm matches one process up to the order of float sums.
public protocol DataParallelGroup: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Sums `count` floats at `buffer` over every rank, in place (every rank calls it with the same count).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// The largest of every rank's `value` (stop requests, so that all ranks stop at the same step).
    func allReduceMax(_ value: Int32) throws -> Int32
}

extension DataParallelGroup {
    /// Weights this rank's gradients by `weight`, sums them over the ranks in buckets of at most `bucket` floats, and
    /// puts the sums back (a parameter this rank has no gradient for — an empty share — contributes zeros).
    public func allReduceGradients(_ parameters: [(String, Tensor)], _ grads: inout Gradients, weight: Float,
                                   bucket: Int = 4 << 20) throws {
        var start = 0
        while start < parameters.count {
            var end = start, floats = 0
            while end < parameters.count && (floats == 0 || floats + parameters[end].1.count <= bucket) {
                floats += parameters[end].1.count; end += 1
            }
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: floats)
            defer { buffer.deallocate() }
            var o = 0
            for (_, p) in parameters[start..<end] {
                if let g = grads[p] {
                    for i in 0..<p.count { buffer[o + i] = g.pointer[i] * weight }
                } else {
                    buffer.advanced(by: o).initialize(repeating: 0, count: p.count)
                }
                o += p.count
            }
            try allReduceSum(buffer, count: floats)
            o = 0
            for (_, p) in parameters[start..<end] {
                let g = grads[p] ?? Tensor(zeros: p.shape)
                for i in 0..<p.count { g.pointer[i] = buffer[o + i] }
                grads[p] = g
                o += p.count
            }
            start = end
        }
    }
}
