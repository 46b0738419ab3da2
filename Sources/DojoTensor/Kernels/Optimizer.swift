import CDojoKernels

/// The optimizers' element loops (DojoNN's optimizers call them).
public enum OptimizerKernels {
    /// AdamW's update of `count` parameters in place (w, and its moments m and v), as DojoNN's `AdamW.reference` computes
    /// it, operation by operation and with the same bits: CDojoKernels' loop (AVX2 where the CPU has it: the scalar
    /// loop's division and square root made it latency-bound, about 6 GB/s on one core), over the compute threads for
    /// large tensors. `c1`, `c2`: the bias corrections 1 − β₁ᵗ and 1 − β₂ᵗ.
    public static func adamw(w: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                             v: UnsafeMutablePointer<Float>, count: Int, lr: Float, weightDecay: Float, beta1: Float, beta2: Float,
                             c1: Float, c2: Float, epsilon: Float) {
        let wp = SendablePointer(w), gp = SendableRaw(UnsafeRawPointer(g)), mp = SendablePointer(m), vp = SendablePointer(v)
        let lrwd = lr * weightDecay, omb1 = 1 - beta1, omb2 = 1 - beta2
        parallelChunks(count, minimumPerThread: 1 << 14) { r in
            dojo_adamw_update(wp.p + r.lowerBound, gp.p.assumingMemoryBound(to: Float.self) + r.lowerBound, mp.p + r.lowerBound,
                              vp.p + r.lowerBound, r.count, lr, lrwd, beta1, omb1, beta2, omb2, c1, c2, epsilon)
        }
    }
}
