// The hot loops of Dojo's number formats (issue 14 §2), in C so that each is compiled twice: for baseline x86-64
// (SSE2, what the Swift package is built for) and for AVX2, chosen once at start-up from what the CPU reports.
// Every function gives bit for bit what DojoNumerics' Swift loops give (DojoNumericsTests/KernelLevelTests checks
// both builds against them); each handles the common values (zero and the format's normal range) and stops at the
// first 64-value chunk holding another value, which the Swift caller then takes through its scalar path.
#ifndef DOJO_KERNELS_H
#define DOJO_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The build the functions below run: 0 baseline x86-64 (or not x86), 1 AVX2+FMA.
int dojo_kernels_level(void);
/// The highest build this CPU can run (what `dojo_kernels_level` is unless lowered).
int dojo_kernels_best_level(void);
/// Sets the build to run, at most the best (tests run both). Environment: DOJO_KERNELS=baseline starts at 0.
void dojo_kernels_set_level(int level);

/// A CFP format's constants (DojoNumerics' Params).
typedef struct {
    uint32_t mag_mask;        // FP32 bits kept before the range test: 0x7FFFFFFF signed, all ones unsigned
    uint32_t sign_mask;       // 0x80000000 signed, 0 unsigned
    uint32_t min_normal_bits; // FP32 bits of the smallest normal
    uint32_t range;           // max_bits - min_normal_bits
    uint32_t low_mask;        // FP32 mantissa bits dropped
    uint32_t shift;           // 23 - M
    uint32_t bias_adj;        // (127 - bias) << 23
    uint32_t sign_shift;      // 31 - (E + M): the code's sign bit from FP32's
    uint32_t mantissa_bits;   // M
    uint32_t code_mag_mask;   // (1 << (E + M)) - 1
    float denormal_unit;      // the value of denormal code 1
    uint32_t as_printed;      // 1: the whitepaper's denormal scale (denormals stop at (1 − 2^−M)·2^−bias), 0: IEEE's
} dojo_cfp_params;

/// Rounds p[0..<n] (FP32 bits) to nearest-even in the format, in place, raising *top to the largest |value| bits
/// seen (before rounding). Returns how many values it did: n, or the start of the first 64-value chunk holding a
/// value it leaves to the caller (that chunk and the rest untouched): the baseline build takes zero and the normal
/// range only; the AVX2 build also rounds values below the smallest normal (FP32 normals) to the format's denormals,
/// setting *underflow to 1 when one of them was not exact, and leaves FP32 subnormals, values beyond the largest,
/// infinities, NaNs and (unsigned formats) negatives to the caller.
long dojo_round_cfp_nearest(uint32_t *p, long n, const dojo_cfp_params *f, uint32_t *top, uint32_t *underflow);

/// Writes the 8-bit codes of src[0..<n], values exact in the format. Returns n; or the start of the first 64-value
/// chunk holding a value outside zero and the normal range (its codes and the rest unwritten or wrong); or -1 when a
/// value in the normal range is not exact in the format.
long dojo_pack_cfp8(const uint32_t *src, long n, uint8_t *out, const dojo_cfp_params *f);

/// Rounds src[0..<n] (FP32 bits) to nearest-even in a signed 8-bit format and writes the rounded values' codes to
/// out (src unchanged), raising *top to the largest |value| bits seen (before rounding): dojo_round_cfp_nearest and
/// then dojo_pack_cfp8 in one pass, the rounded values never stored. Returns n, or the start of the first 64-value
/// chunk holding a value outside zero and the normal range (a denormal too), which the caller rounds and codes (that
/// chunk's codes and the rest's unwritten); 0 for an unsigned format.
long dojo_round_cfp8_codes(const uint32_t *src, long n, uint8_t *out, const dojo_cfp_params *f, uint32_t *top);

/// BF16 nearest-even of x[0..<n] with the rounded values' codes written to codes (x unchanged), in one pass:
/// dojo_round_bf16_if_normal and then dojo_pack_bf16. Returns 1; or 0 when a value is one those leave to their callers
/// (an FP32 subnormal, near BF16's largest, infinite or NaN), the codes then partly written.
int dojo_round_bf16_codes(const float *x, long n, uint16_t *codes);

/// dst[c] = the sum of x[r * ld + c] over rows r = 0..<rows, added in row order from zero (bit for bit a running sum
/// down each column), for columns c0..<c1; from FP32 values or from BF16 codes.
void dojo_column_sums_f32(const float *x, long rows, long ld, long c0, long c1, float *dst);
void dojo_column_sums_bf16(const uint16_t *x, long rows, long ld, long c0, long c1, float *dst);

/// FP32 bits of n 8-bit codes of a signed CFP format (normals, denormals, zeros).
void dojo_unpack_cfp8(const uint8_t *codes, long n, uint32_t *out, const dojo_cfp_params *f);

/// BF16 round-to-nearest-even of p[0..<n] in place when no value is an FP32 subnormal, near BF16's largest, infinite
/// or NaN: returns 1; else returns 0 and changes nothing.
int dojo_round_bf16_if_normal(uint32_t *p, long n);

/// The upper halves of src[0..<n] as BF16 codes; returns 1 when every lower half was zero (the values exact in BF16).
int dojo_pack_bf16(const uint32_t *src, long n, uint16_t *out);

/// out[i] = table[codes[i]] for a 256-entry table (a CFP8 tensor's BF16 bits from its codes); 32 codes at a time with
/// AVX-512BW where the CPU has it (and DOJO_KERNELS is not "baseline").
void dojo_lookup_u8_u16(const uint8_t *codes, long n, const uint16_t *table, uint16_t *out);

/// FP32 bits of n BF16 codes.
void dojo_unpack_bf16(const uint16_t *codes, long n, uint32_t *out);

/// The largest |value| bits of p[0..<n] (non-negative FP32 bits order as their values; above 0x7F800000 a NaN).
uint32_t dojo_max_magnitude_bits(const uint32_t *p, long n);

/// dst[c * ldd + r] = src[r * lds + c] for rows r0..<r1 and columns c0..<c1 of src (FP32), in 32 × 32 tiles: the
/// explicit transpose before a GEMM whose transposed operand oneDNN's sgemm reads slowly (DojoTensor's GemmKernel).
void dojo_transpose_f32(const float *src, long lds, float *dst, long ldd, long r0, long r1, long c0, long c1);

/// AdamW's update of n parameters, in the order of DojoNN's loop, each operation rounded as it is there (no fused
/// multiply-add): w −= (lr·wd)·w; m = b1·m + omb1·g; v = b2·v + (omb2·g)·g; w −= (lr·(m / c1)) / (√(v / c2) + eps).
/// `omb1` = 1 − b1 and `omb2` = 1 − b2 as the caller computes them in Float; `lrwd` = lr·wd.
void dojo_adamw_update(float *w, const float *g, float *m, float *v, long n, float lr, float lrwd, float b1, float omb1,
                       float b2, float omb2, float c1, float c2, float eps);

/// y[i] = GELU(x[i]), the tanh form through the rational tanh DojoTensor's FastGELU uses, bit for bit its values.
void dojo_gelu_tanh_f32(const float *x, float *y, long n);

/// dx[i] = dy[i] · GELU'(x[i]), bit for bit FastGELU.derivative(x[i]) times dy[i].
void dojo_gelu_tanh_backward_f32(const float *x, const float *dy, float *dx, long n);

/// Layer normalisation of `rows` rows of d values: y = (x − mean)·(1/σ)·γ + β, stats[2r] = the row's mean and
/// stats[2r+1] = 1/σ = 1/√(var + eps) (biased variance). Row sums in 16 partial sums (the same in both builds).
void dojo_layer_norm_rows_f32(const float *x, float *y, float *stats, const float *gamma, const float *beta, long rows,
                              long d, float eps);

/// Its input gradient for `rows` rows: dx = (1/σ)/d · (d·gy·γ − Σ gy·γ − x̂·Σ gy·γ·x̂), x̂ = (x − mean)/σ.
void dojo_layer_norm_backward_rows_f32(const float *gy, const float *x, const float *stats, const float *gamma, float *dx,
                                       long rows, long d);

/// Adds the rows' contributions to dγ[j] (gy·x̂) and dβ[j] (gy) for the columns c0..<c1.
void dojo_layer_norm_param_grads_f32(const float *gy, const float *x, const float *stats, float *dgamma, float *dbeta,
                                     long rows, long d, long c0, long c1);

/// Softmax (or, with take_log, log-softmax) of `rows` rows of n values; row r is the (row0 + r)-th of the tensor, and with
/// `causal` it sees only its first ((row0 + r) mod n) + 1 values (the rest get 0). exp is `dojo_exp_f32`'s.
void dojo_softmax_rows_f32(const float *x, float *y, long rows, long n, long row0, int causal, int take_log);

/// Its gradient from the output y: dx = y·(gy − Σ gy·y); log-softmax: dx = gy − exp(y)·Σ gy.
void dojo_softmax_backward_rows_f32(const float *gy, const float *y, float *dx, long rows, long n, int take_log);

/// e^x as the softmax loops compute it (Cephes' expf; 0 below −87.34, +∞ above 88.38, NaN kept).
float dojo_exp_f32(float x);

/// ReLU's backward from its output held as 2-byte BF16 codes: dx[j] = dy[j] · 1.0 where codes[j] is 1...0x7F80 (a
/// positive value, +∞ included), else dy[j] · 0.0. dx may be dy (in place); otherwise they must not overlap.
void dojo_relu_backward_codes16(const uint16_t *codes, const float *dy, float *dx, long n);

/// The same from 1-byte codes of a signed 8-bit format: 1.0 where the code is 1...0x7F.
void dojo_relu_backward_codes8(const uint8_t *codes, const float *dy, float *dx, long n);

/// Batch norm's span loops with x held as BF16 codes (its values' upper halves), read as they are: bit for bit
/// dojo_unpack_bf16 and then dojo_bn_shifted_sums, dojo_bn_backward_sums, dojo_bn_affine_bf16_codes,
/// dojo_bn_backward_dx_bf16 (same returns).
void dojo_bn_shifted_sums_bf16x(const uint16_t *x, long s, float k, float *sum, float *sq);
void dojo_bn_backward_sums_bf16x(const uint16_t *x, const float *dy, long s, float m, float *sumDy, float *sumDyXc);
int dojo_bn_affine_bf16_codes_bf16x(const uint16_t *x, long s, float a, float b, uint16_t *codes);
long dojo_bn_backward_dx_bf16_bf16x(const uint16_t *x, const float *dy, float *dx, long s, float a, float b, float c);

/// 2×2 stride-2 unpadded max pooling's backward over `planes` planes of h × w inputs (argmax: each output's input
/// index within its plane): writes every value of dx once (dy at the window's maximum, 0 elsewhere).
void dojo_maxpool2x2_backward(const float *dy, const int32_t *argmax, float *dx, long planes, long h, long w);

/// Batch norm over a span of s values: Σ (p − k) and Σ (p − k)² (16 partial sums).
void dojo_bn_shifted_sums(const float *p, long s, float k, float *sum, float *sq);
/// y = x·a + b over s values (y may be x).
void dojo_bn_affine(const float *x, float *y, long s, float a, float b);
/// Σ dy and Σ dy·(x − m) over s values (16 partial sums).
void dojo_bn_backward_sums(const float *x, const float *dy, long s, float m, float *sumDy, float *sumDyXc);
/// dx = a·dy + b·x + c over s values (dx may be dy).
void dojo_bn_backward_dx(const float *x, const float *dy, float *dx, long s, float a, float b, float c);

/// The BF16 codes of x·a + b rounded to nearest even over s values, bit for bit `dojo_bn_affine`,
/// `dojo_round_bf16_if_normal` and `dojo_pack_bf16` in turn. Returns 0 (codes partly written) when a value is one
/// `dojo_round_bf16_if_normal` leaves to its caller (FP32 subnormal, near BF16's largest, infinite, NaN); else 1.
int dojo_bn_affine_bf16_codes(const float *x, long s, float a, float b, uint16_t *codes);
/// dx = a·dy + b·x + c rounded to BF16's nearest even in FP32, bit for bit `dojo_bn_backward_dx` then
/// `dojo_round_bf16_if_normal`. Returns how many values it wrote: s, or fewer when it stopped at a chunk holding a
/// value the latter leaves to its caller; dx[k] for k at and after that count is not written, so the caller finishes
/// the span from there (dx may be dy: dy is intact there).
long dojo_bn_backward_dx_bf16(const float *x, const float *dy, float *dx, long s, float a, float b, float c);

#ifdef __cplusplus
}
#endif

#endif
