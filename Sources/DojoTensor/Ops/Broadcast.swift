import CDojoKernels
import DojoGraph

/// Strides of `shape` seen from a broadcast `outShape` (0 along broadcast dimensions).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let n = outShape.count, offset = n - shape.count
    var strides = [Int](repeating: 0, count: n)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i + offset] = shape[i] == 1 && outShape[i + offset] != 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}

/// Visits the output of a broadcast binary op row by row: for each run along the last dimension, the offsets
/// of the run's start in a and b and their strides along the run (0 or 1). `rows`: only these rows (a thread's share).
func forEachBroadcastRow(_ outShape: [Int], _ aStrides: [Int], _ bStrides: [Int], rows only: Range<Int>? = nil,
                         _ body: (_ out: Int, _ a: Int, _ b: Int, _ len: Int, _ sa: Int, _ sb: Int) -> Void) {
    guard let last = outShape.last else { body(0, 0, 0, 1, 0, 0); return }
    let rows = elementCount(outShape) / max(last, 1)
    if last == 0 || rows == 0 { return }
    let range = only ?? 0..<rows
    if range.isEmpty { return }
    let n = outShape.count
    // the index of the first row, and its offsets in a and b
    var idx = [Int](repeating: 0, count: n)
    var oa = 0, ob = 0, rest = range.lowerBound
    for d in stride(from: n - 2, through: 0, by: -1) {
        idx[d] = rest % outShape[d]; rest /= outShape[d]
        oa += idx[d] * aStrides[d]; ob += idx[d] * bStrides[d]
    }
    for r in range {
        body(r * last, oa, ob, last, aStrides[n - 1], bStrides[n - 1])
        var d = n - 2
        while d >= 0 {
            idx[d] += 1; oa += aStrides[d]; ob += bStrides[d]
            if idx[d] < outShape[d] { break }
            oa -= aStrides[d] * idx[d]; ob -= bStrides[d] * idx[d]; idx[d] = 0
            d -= 1
        }
    }
}

extension Tensor {
    /// Sums this tensor down to `target`, undoing a broadcast (the backward of broadcasting).
    public func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let out = Tensor(zeros: target)
        if out.isShapeOnly || isShapeOnly { return out }
        // A sum over leading dimensions (a bias's or a position table's gradient): columns split over the threads,
        // each summing its columns down every row (CDojoKernels: 64 columns at a time in registers), from the BF16
        // codes a rounded gradient carries when it has them (the same values, half the bytes read)
        let kept = Array(target.drop(while: { $0 == 1 }))
        if !kept.isEmpty, Array(shape.suffix(kept.count)) == kept {
            let inner = elementCount(kept), outer = count / max(inner, 1)
            let dst = SendablePointer(out.pointer)
            let codes = storage.bf16Codes, src = SendableRaw(codes.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(pointer))
            parallelChunks(inner, minimumPerThread: max(64, (1 << 15) / max(outer, 1))) { c in
                if codes != nil {
                    dojo_column_sums_bf16(src.p.assumingMemoryBound(to: UInt16.self), outer, inner, c.lowerBound, c.upperBound, dst.p)
                } else {
                    dojo_column_sums_f32(src.p.assumingMemoryBound(to: Float.self), outer, inner, c.lowerBound, c.upperBound, dst.p)
                }
            }
            return out
        }
        let strides = broadcastStrides(target, to: shape)
        let zeros = [Int](repeating: 0, count: shape.count)
        let src = pointer, dst = out.pointer
        forEachBroadcastRow(shape, strides, zeros) { o, a, _, len, sa, _ in
            if sa == 0 {
                var acc: Float = 0
                for j in 0..<len { acc += src[o + j] }
                dst[a] += acc
            } else {
                for j in 0..<len { dst[a + j] += src[o + j] }
            }
        }
        return out
    }
}
