import COneDNN
import DojoNumerics

/// What the CPU gives the engine's kernels (issue 14 §2), as oneDNN reports it at start-up, and which build of the
/// formats' loops runs (CDojoKernels: baseline x86-64 or AVX2). `dojo bench` prints it.
public enum CPUFeatures {
    /// oneDNN's name for the instruction set its kernels use here ("avx2", "avx512_core_bf16", …).
    public static var oneDNNISA: String {
        let isa = dnnl_get_effective_cpu_isa()
        let names: [(dnnl_cpu_isa_t, String)] = [
            (dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"), (dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"),
            (dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"), (dnnl_cpu_isa_avx512_core, "avx512_core"),
            (dnnl_cpu_isa_avx2_vnni, "avx2_vnni"), (dnnl_cpu_isa_avx2, "avx2"), (dnnl_cpu_isa_avx, "avx"),
            (dnnl_cpu_isa_sse41, "sse41"),
        ]
        return names.first { $0.0.rawValue == isa.rawValue }?.1 ?? "isa 0x\(String(isa.rawValue, radix: 16))"
    }

    /// Whether oneDNN has native BF16 arithmetic here (AVX512_BF16 or AMX): only then would BF16 GEMMs and
    /// convolutions on values exact in BF16 be faster than FP32 ones; elsewhere the engine keeps FP32 kernels.
    public static var hasNativeBF16: Bool {
        let isa = dnnl_get_effective_cpu_isa().rawValue
        return isa & dnnl_cpu_isa_avx512_core_bf16.rawValue == dnnl_cpu_isa_avx512_core_bf16.rawValue
            || isa & dnnl_cpu_isa_avx512_core_amx.rawValue == dnnl_cpu_isa_avx512_core_amx.rawValue
    }

    /// One line for a report.
    public static var summary: String {
        let bf16 = !hasNativeBF16 ? "no AVX512_BF16/AMX: BF16/CFP8 GEMMs run in FP32"
            : BF16Gemm.isAvailable ? "native BF16: BF16/CFP8 GEMMs run on BF16 kernels" : "native BF16, BF16 kernels off (DOJO_BF16_KERNELS=0)"
        return "CPU: oneDNN ISA \(oneDNNISA) (\(bf16));"
            + " format loops: \(NumberFormat.kernelBuild) build"
    }
}
