import CDojoKernels
import DojoGraph
import Foundation

extension Tensor {
    /// Sum over one axis; [outer, n, inner] → [outer, inner] (or keeping a 1 there).
    private func sumKernel(axis: Int, keepDim: Bool) -> Tensor {
        let n = shape[axis]
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        var outShape = shape
        if keepDim { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        let out = Tensor(zeros: outShape)
        if out.isShapeOnly || isShapeOnly { return out }
        let src = SendablePointer(pointer), dst = SendablePointer(out.pointer)
        parallelChunks(outer, minimumPerThread: max(1, (1 << 15) / max(1, n * inner))) { range in
            for o in range {
                let d = dst.p + o * inner
                if inner == 1 {
                    var acc: Float = 0
                    let s = src.p + o * n
                    for r in 0..<n { acc += s[r] }
                    d[0] = acc
                } else {
                    for r in 0..<n {
                        let s = src.p + (o * n + r) * inner
                        for i in 0..<inner { d[i] += s[i] }
                    }
                }
            }
        }
        return out
    }

    /// Sum over `axes` (all axes when nil).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = (axes ?? Array(0..<rank)).map { $0 < 0 ? $0 + rank : $0 }.sorted(by: >)
        var r = self
        for a in ax { r = r.sumKernel(axis: a, keepDim: true) }
        var outShape = shape
        for a in ax { outShape[a] = 1 }
        let kept = r.shape == outShape ? r : Tensor(shape: outShape, storage: r.storage)
        let finalShape = keepDims ? outShape : shape.enumerated().filter { !ax.contains($0.offset) }.map(\.element)
        let out = Tensor(shape: finalShape, storage: kept.storage)
        Tape.note(.sum, inputs: [self], output: out, attributes: OpAttributes(axes: ax, keepDims: keepDims ? true : nil)) { [inShape = shape] g, _ in
            [expand(Tensor(shape: outShape, storage: g.storage), to: inShape)]
        }
        return out
    }

    /// Mean over `axes` (all axes when nil).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = axes ?? Array(0..<rank)
        let n = ax.reduce(1) { $0 * shape[$1 < 0 ? $1 + rank : $1] }
        return sum(axes: ax, keepDims: keepDims).scaled(by: 1 / Float(max(n, 1)))
    }

    /// Softmax over the last axis.
    public func softmax() -> Tensor { softmaxKernel(log: false, causal: false) }
    /// Log-softmax over the last axis.
    public func logSoftmax() -> Tensor { softmaxKernel(log: true, causal: false) }

    /// Softmax over the last axis of attention scores [..., queries, keys]; with `causal`, query i sees only keys
    /// 0...i (the rest get probability 0), where i is the row's index modulo the number of keys, so query rows may
    /// stack several groups of `keys` positions (grouped-query attention). Recorded as a plain softmax: same shapes,
    /// same cost (an implementation may skip the masked half; the IR does not assume it).
    /// `roundOutput`: the probabilities rounded (and in training coded) block by block as the rows are written, while
    /// they are in cache (then the output carries the format, and the caller records the rounding without running it:
    /// attention's probabilities in Dojo's formats).
    public func softmax(causal: Bool, roundOutput: TensorRounding? = nil) -> Tensor {
        if causal { precondition(rank >= 2 && shape[rank - 2] % max(shape[rank - 1], 1) == 0,
                                 "causal softmax needs [..., k·keys, keys] scores, got \(shape)") }
        return softmaxKernel(log: false, causal: causal, roundOutput: roundOutput)
    }

    private func softmaxKernel(log takeLog: Bool, causal: Bool, roundOutput: TensorRounding? = nil) -> Tensor {
        let n = shape.last ?? 1, rows = count / max(n, 1)
        let out = Tensor(uninitializedShape: shape)
        let skip = out.isShapeOnly || isShapeOnly
        let src = SendablePointer(pointer), dst = SendablePointer(out.pointer)
        let task = skip || Engine.backend != .oneDNN ? nil : roundOutput?.begin()
        let codes = CodesWriter(task, count: count)
        // rows of about 4,096 values: the unit of work a thread takes, and the block rounded or decoded while in cache
        let block = max(1, 4096 / max(n, 1))
        if !skip { parallelChunks(rows, minimumPerThread: block) { range in
            // keys 0..<visible take part; with a causal mask, query (r mod n) sees keys up to itself. CDojoKernels'
            // loop: the row's maximum and sum in 16 partial results, exp by a polynomial that vectorises. With a
            // rounding: about 4,096 values of rows at a time, rounded and coded while in cache.
            guard let task else {
                let lo = range.lowerBound
                dojo_softmax_rows_f32(src.p + lo * n, dst.p + lo * n, range.count, n, lo, causal ? 1 : 0, takeLog ? 1 : 0)
                return
            }
            var tally = RoundingTask.Tally()
            var r0 = range.lowerBound
            while r0 < range.upperBound {
                let c = min(block, range.upperBound - r0), at = r0 * n
                dojo_softmax_rows_f32(src.p + at, dst.p + at, c, n, r0, causal ? 1 : 0, takeLog ? 1 : 0)
                task.round(dst.p + at, count: c * n, offset: at, into: &tally)
                codes?.write(dst.p + at, count: c * n, offset: at)
                r0 += c
            }
            task.merge(tally)
        } }
        if let task {
            out.finishRounding(task, of: roundOutput)
            codes?.finish(out)
        }
        Tape.note(takeLog ? .logSoftmax : .softmax, inputs: [self], output: out,
                  attributes: causal ? OpAttributes(causal: true) : OpAttributes()) { [out] g, _ in
            let r = Tensor(uninitializedShape: g.shape)
            if r.isShapeOnly || g.isShapeOnly { return [r] }
            // probabilities held packed (attention's, in a Dojo format): rows decoded a block at a time into a thread's
            // buffer as they are read, not brought back whole
            let packed = out.storage.packedValues
            let pg = g.pointer, py = packed == nil ? out.pointer : nil, pr = r.pointer
            parallelChunks(rows, minimumPerThread: block) { range in
                guard let packed else {
                    let lo = range.lowerBound
                    dojo_softmax_backward_rows_f32(pg + lo * n, py! + lo * n, pr + lo * n, range.count, n, takeLog ? 1 : 0)
                    return
                }
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * n)
                defer { scratch.deallocate() }
                var r0 = range.lowerBound
                while r0 < range.upperBound {
                    let c = min(block, range.upperBound - r0)
                    packed.read(r0 * n, count: c * n, into: scratch)
                    dojo_softmax_backward_rows_f32(pg + r0 * n, scratch, pr + r0 * n, c, n, takeLog ? 1 : 0)
                    r0 += c
                }
            }
            return [r]
        }
        return out
    }
}
