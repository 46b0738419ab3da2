import CDojoKernels
import DojoGraph
import Foundation

extension Tensor {
    /// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p). The mask comes
    /// from `generator`, so a seed reproduces it.
    public func dropout(probability p: Float, generator: inout RandomSource) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
        if p == 0 { return self }
        let mask = Tensor(uninitializedShape: shape)
        let keep = 1 / (1 - p)
        for i in 0..<(mask.isShapeOnly ? 0 : count) { mask.pointer[i] = generator.nextFloat() < p ? 0 : keep }
        let out = zipKernel(MultiplyElements.self, self, mask)
        Tape.note(.dropout, inputs: [self], output: out, attributes: OpAttributes(probability: Double(p))) { g, _ in
            [zipKernel(MultiplyElements.self, g, mask)]
        }
        return out
    }

    /// Rows of a table [V, D] picked by indices → [indices.count, D] (then reshape as needed).
    public static func embedding(_ table: Tensor, indices: [Int32]) -> Tensor {
        precondition(table.rank == 2, "embedding table must be [vocabulary, dimension], got \(table.shape)")
        let v = table.shape[0], d = table.shape[1]
        let out = Tensor(uninitializedShape: [indices.count, d])
        for (i, idx) in indices.enumerated() {
            precondition(idx >= 0 && Int(idx) < v, "embedding index \(idx) outside 0..<\(v)")
            if !out.isShapeOnly { (out.pointer + i * d).update(from: table.pointer + Int(idx) * d, count: d) }
        }
        Tape.note(.embedding, inputs: [table], output: out, attributes: OpAttributes(shape: [indices.count, d])) { g, _ in
            let r = Tensor(zeros: table.shape)
            for (i, idx) in (!r.isShapeOnly && !g.isShapeOnly ? indices : []).enumerated() {
                let dst = r.pointer + Int(idx) * d, src = g.pointer + i * d
                for j in 0..<d { dst[j] += src[j] }
            }
            return [r]
        }
        return out
    }

    /// Layer normalisation over the last dimension with learned gain and bias of that size.
    /// `roundOutput`: the output rounded by that rounding as the kernel writes it, a block of rows at a time while it
    /// is in cache (when the rounding can run span by span now); the output then carries the format and the caller
    /// records the rounding without running it.
    public func layerNorm(gamma: Tensor, beta: Tensor, epsilon: Float = 1e-5, roundOutput: TensorRounding? = nil) -> Tensor {
        let d = shape.last ?? 1, rows = count / max(d, 1)
        precondition(gamma.shape == [d] && beta.shape == [d], "layerNorm: gamma \(gamma.shape), beta \(beta.shape) for width \(d)")
        // per row: the mean and 1/σ (backward recomputes x̂ from them and x, the value the kind saves, rather than
        // keeping x̂ as well: one activation-sized tensor less per normalisation)
        let stats = Tensor(uninitializedShape: [rows, 2])
        // in training in a Dojo format, an input in no format (the FP32 residual stream) is kept for backward as a BF16
        // copy, written as the forward reads each block (2 bytes a value, not 4; the statistics stay exact FP32)
        let copy = roundOutput != nil && !isShapeOnly && storage.packFormat == nil
            && (requiresGrad || gamma.requiresGrad || beta.requiresGrad) ? BF16Copy(count: count) : nil
        if !isShapeOnly, Engine.backend == .oneDNN, BF16Gemm.isEnabled, Tape.current?.packsSavedValues == true,
           count >= Storage.packMinimum, let task = roundOutput?.begin(),
           let out = layerNormIntoCodes(gamma: gamma, beta: beta, stats: stats, epsilon: epsilon, task: task, rounding: roundOutput, copy: copy) {
            return recordLayerNorm(out, gamma: gamma, beta: beta, stats: stats, epsilon: epsilon, saved: copy?.tensor(shape: shape))
        }
        let task = !isShapeOnly && Engine.backend == .oneDNN ? roundOutput?.begin() : nil
        let out = Tensor(uninitializedShape: shape)
        let px = pointer, py = out.pointer, ps = stats.pointer, pg = gamma.pointer, pb = beta.pointer
        // in training, the rounded values' codes written too while they are in cache: the layer reading this output
        // keeps it for its backward (packed: only the FP32 buffer is freed) and its product reads BF16 codes as they are
        let codes = out.isShapeOnly || isShapeOnly ? nil : CodesWriter(task, count: count)
        if !out.isShapeOnly && !isShapeOnly { parallelChunks(rows, minimumPerThread: max(1, (1 << 14) / max(d, 1))) { range in
            // blocks of rows of at least 2,048 values (CDojoKernels' loop: row sums in 16 partial sums, 8 lanes with
            // AVX2), each rounded and coded while it is in cache
            var tally = RoundingTask.Tally()
            let block = max(1, (2048 + d - 1) / d)
            var lo = range.lowerBound
            while lo < range.upperBound {
                let hi = min(range.upperBound, lo + block)
                dojo_layer_norm_rows_f32(px + lo * d, py + lo * d, ps + 2 * lo, pg, pb, hi - lo, d, epsilon)
                copy?.write(px + lo * d, count: (hi - lo) * d, offset: lo * d)
                if let task {
                    task.round(py + lo * d, count: (hi - lo) * d, offset: lo * d, into: &tally)
                    codes?.write(py + lo * d, count: (hi - lo) * d, offset: lo * d)
                }
                lo = hi
            }
            task?.merge(tally)
        } }
        if let task { out.finishRounding(task, of: roundOutput) }
        codes?.finish(out)
        return recordLayerNorm(out, gamma: gamma, beta: beta, stats: stats, epsilon: epsilon, saved: copy?.tensor(shape: shape))
    }

    /// In training in a Dojo format on BF16 kernels, layer normalisation's output written as codes only: nothing in
    /// training reads its FP32 values (the next layer's products read BF16 codes; the backward reads the input and the
    /// statistics). Each block of rows is normalised into a scratch buffer in cache, rounded by `task` and coded. Only
    /// with BF16 kernels (otherwise the next product would decode the codes back) and a packing tape (the caller
    /// checks); nil (the FP32 output runs) when a value cannot be coded.
    private func layerNormIntoCodes(gamma: Tensor, beta: Tensor, stats: Tensor, epsilon: Float, task: RoundingTask,
                                    rounding: TensorRounding?, copy: BF16Copy?) -> Tensor? {
        guard let codes = CodesWriter(task, count: count) else { return nil }
        let d = shape.last ?? 1, rows = count / max(d, 1)
        let px = pointer, ps = stats.pointer, pg = gamma.pointer, pb = beta.pointer
        task.roundIntoCodes(units: rows, width: d, blockUnits: max(1, (2048 + d - 1) / d),
                            minimumPerThread: max(1, (1 << 14) / max(d, 1)), codes: codes) { lo, n, py, _ in
            dojo_layer_norm_rows_f32(px + lo * d, py, ps + 2 * lo, pg, pb, n, d, epsilon)
            copy?.write(px + lo * d, count: n * d, offset: lo * d)
        }
        guard let s = codes.codesOnlyStorage(count: count) else { return nil }
        let out = Tensor(shape: shape, storage: s)
        out.finishRounding(task, of: rounding)
        return out
    }

    /// Records layer normalisation's output `out` (of this input, with its rows' statistics) on the tape: its backward
    /// recomputes x̂ from the input and the statistics — from `saved`, the input's BF16 copy, when there is one.
    private func recordLayerNorm(_ out: Tensor, gamma: Tensor, beta: Tensor, stats: Tensor, epsilon: Float, saved: Tensor? = nil) -> Tensor {
        let d = shape.last ?? 1, rows = count / max(d, 1)
        Tape.note(.layerNorm, inputs: [self, gamma, beta], output: out, attributes: OpAttributes(epsilon: Double(epsilon)),
                  substitutes: saved.map { [0: $0] } ?? [:]) { [x = saved ?? self, stats, gamma] g, needs in
            let dx = Tensor(uninitializedShape: g.shape), dg = Tensor(zeros: [d]), db = Tensor(zeros: [d])
            if dx.isShapeOnly || g.isShapeOnly || x.isShapeOnly { return [needs[0] ? dx : nil, needs[1] ? dg : nil, needs[2] ? db : nil] }
            let pgy = g.pointer, pdx = dx.pointer, pdg = dg.pointer, pdb = db.pointer
            let px = x.pointer, ps = stats.pointer, pg = gamma.pointer   // the tensors, not just their pointers, are kept
            // dx row by row (rows over the threads), then dγ and dβ column by column (columns over the threads);
            // x̂ = (x − mean)/σ recomputed where it is read
            parallelChunks(rows, minimumPerThread: max(1, (1 << 14) / max(d, 1))) { range in
                let lo = range.lowerBound
                dojo_layer_norm_backward_rows_f32(pgy + lo * d, px + lo * d, ps + 2 * lo, pg, pdx + lo * d, range.count, d)
            }
            parallelChunks(d, minimumPerThread: max(1, (1 << 15) / max(rows, 1))) { columns in
                dojo_layer_norm_param_grads_f32(pgy, px, ps, pdg, pdb, rows, d, columns.lowerBound, columns.upperBound)
            }
            return [needs[0] ? dx : nil, needs[1] ? dg : nil, needs[2] ? db : nil]
        }
        return out
    }
}
