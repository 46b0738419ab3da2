// See include/dojo_kernels.h. Each loop is written once (the *_body functions, always inlined) and compiled twice:
// in a function for baseline x86-64 and in one with AVX2/FMA enabled; clang vectorises both (8 lanes of 32 bits with
// AVX2, 4 with SSE2, and AVX2's narrowing packs and 32-bit multiplies that SSE2 lacks). Where clang's AVX2 code was
// still slow (CFP8 packing narrowed 8 codes at a time, rounding, the transpose, BF16's one-pass loops that kept each
// chunk in a stack buffer), an AVX2 version is written by hand beside the body, which stays the baseline build and
// handles the edges.
#include "dojo_kernels.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define CHUNK 64
#define INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__) || defined(__i386__)
#define DOJO_X86 1
#define AVX2 __attribute__((target("avx2,fma,bmi,bmi2,f16c")))
#else
#define DOJO_X86 0
#endif

static int best_level = -1;
static int current_level = -1;

static void init_levels(void) {
    if (__atomic_load_n(&best_level, __ATOMIC_ACQUIRE) >= 0) return;
    int best = 0;
#if DOJO_X86
    // every extension the AVX2 functions are compiled with (AVX2 below)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
        __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c")) best = 1;
#endif
    const char *env = getenv("DOJO_KERNELS");
    int level = (env && strcmp(env, "baseline") == 0) ? 0 : best;
    __atomic_store_n(&current_level, level, __ATOMIC_RELAXED);
    __atomic_store_n(&best_level, best, __ATOMIC_RELEASE);
}

int dojo_kernels_best_level(void) { init_levels(); return __atomic_load_n(&best_level, __ATOMIC_ACQUIRE); }

int dojo_kernels_level(void) {
    init_levels();
    return __atomic_load_n(&current_level, __ATOMIC_RELAXED);
}

void dojo_kernels_set_level(int level) {
    int best = dojo_kernels_best_level();
    __atomic_store_n(&current_level, level < 0 ? 0 : (level > best ? best : level), __ATOMIC_RELAXED);
}

static inline int use_avx2(void) {
    int l = __atomic_load_n(&current_level, __ATOMIC_RELAXED);
    if (__builtin_expect(l < 0, 0)) l = dojo_kernels_level();
    return l == 1;
}

// AVX-512BW where the CPU has it and the AVX2 build is in use (the table lookup below; DOJO_KERNELS=baseline turns it
// off with the rest)
static int avx512bw_supported = -1;
static inline int use_avx512bw(void) {
    int l = __atomic_load_n(&avx512bw_supported, __ATOMIC_RELAXED);
    if (__builtin_expect(l < 0, 0)) {
        l = 0;
#if DOJO_X86
        __builtin_cpu_init();
        l = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
        __atomic_store_n(&avx512bw_supported, l, __ATOMIC_RELAXED);
    }
    return l && use_avx2();
}

// MARK: bodies

INLINE long round_cfp_body(uint32_t *restrict p, long n, const dojo_cfp_params *f, uint32_t *top) {
    const uint32_t mask = f->mag_mask, minN = f->min_normal_bits, range = f->range, signMask = f->sign_mask;
    const uint32_t low = f->low_mask, halfm1 = f->low_mask >> 1, sh = f->shift;
    uint32_t largest = *top;
    long start = 0;
    for (; start < n; start += CHUNK) {
        long m = n - start < CHUNK ? n - start : CHUNK;
        uint32_t *restrict s = p + start;
        uint32_t special = 0;
        for (long j = 0; j < m; j++) {
            uint32_t v = s[j] & mask;
            special |= (uint32_t)(v != 0) & (uint32_t)((v - minN) > range);
        }
        if (special) break;
        for (long j = 0; j < m; j++) {
            uint32_t b = s[j], a = b & 0x7FFFFFFFu;
            largest = a > largest ? a : largest;
            uint32_t r = a + halfm1 + ((a >> sh) & 1u);
            s[j] = (r & ~low) | (b & signMask);
        }
    }
    *top = largest;
    return start < n ? start : n;
}

INLINE long pack_cfp8_body(const uint32_t *restrict src, long n, uint8_t *restrict out, const dojo_cfp_params *f) {
    const uint32_t minN = f->min_normal_bits, range = f->range, low = f->low_mask, sh = f->shift, adj = f->bias_adj;
    const uint32_t signShift = f->sign_shift;
    long start = 0;
    for (; start < n; start += CHUNK) {
        long m = n - start < CHUNK ? n - start : CHUNK;
        const uint32_t *restrict s = src + start;
        uint8_t *restrict d = out + start;
        uint32_t special = 0, inexact = 0;
        for (long j = 0; j < m; j++) {
            uint32_t b = s[j], a = b & 0x7FFFFFFFu;
            uint32_t isSpecial = (uint32_t)(a != 0) & (uint32_t)((a - minN) > range);
            special |= isSpecial;
            inexact |= isSpecial ? 0 : (a & low);
            uint32_t code = a != 0 ? (a - adj) >> sh : 0;
            d[j] = (uint8_t)(code | ((b & 0x80000000u) >> signShift));
        }
        if (inexact) return -1;
        if (special) break;
    }
    return start < n ? start : n;
}

// Nearest-even to a signed CFP8 format and the codes written, in one pass: round_cfp_body's rounding, then
// pack_cfp8_body's code of the rounded magnitude, without the rounded values ever stored. Stops, as both do, at the
// first chunk holding a value outside zero and the normal range.
INLINE long round_cfp8_codes_body(const uint32_t *restrict src, long n, uint8_t *restrict out, const dojo_cfp_params *f,
                                  uint32_t *top) {
    const uint32_t minN = f->min_normal_bits, range = f->range, low = f->low_mask, halfm1 = f->low_mask >> 1, sh = f->shift;
    const uint32_t adj = f->bias_adj, signShift = f->sign_shift;
    uint32_t largest = *top;
    long start = 0;
    if (f->mag_mask != 0x7FFFFFFFu) return 0;   // unsigned formats: the caller's path
    for (; start < n; start += CHUNK) {
        long m = n - start < CHUNK ? n - start : CHUNK;
        const uint32_t *restrict s = src + start;
        uint8_t *restrict d = out + start;
        uint32_t special = 0;
        for (long j = 0; j < m; j++) {
            uint32_t a = s[j] & 0x7FFFFFFFu;
            special |= (uint32_t)(a != 0) & (uint32_t)((a - minN) > range);
        }
        if (special) break;
        for (long j = 0; j < m; j++) {
            uint32_t b = s[j], a = b & 0x7FFFFFFFu;
            largest = a > largest ? a : largest;
            uint32_t r = (a + halfm1 + ((a >> sh) & 1u)) & ~low;
            uint32_t code = a != 0 ? (r - adj) >> sh : 0;
            d[j] = (uint8_t)(code | ((b & 0x80000000u) >> signShift));
        }
    }
    *top = largest;
    return start < n ? start : n;
}

INLINE void unpack_cfp8_body(const uint8_t *restrict codes, long n, uint32_t *restrict out, const dojo_cfp_params *f) {
    const uint32_t mm = f->code_mag_mask, mbits = f->mantissa_bits, sh = f->shift, adj = f->bias_adj;
    const uint32_t signShift = f->sign_shift;
    const float unit = f->denormal_unit;
    for (long j = 0; j < n; j++) {
        uint32_t c = codes[j];
        uint32_t mag = c & mm;
        uint32_t sign = (c & ~mm & 0x80u) << signShift;
        float dv = (float)(int32_t)mag * unit;
        uint32_t den;
        memcpy(&den, &dv, 4);
        uint32_t normal = (mag << sh) + adj;
        out[j] = ((mag >> mbits) == 0 ? den : normal) | sign;
    }
}

// BF16's round-to-nearest-even of FP32 bits u, and the values it leaves to the caller (nonzero FP32 subnormals, values
// near BF16's largest, infinities, NaNs): the one rule every BF16 rounding loop below uses.
#define BF16_MIN_NORMAL_BITS 0x00800000u   // FP32's smallest normal
#define BF16_MAX_BITS 0x7F7F0000u          // BF16's largest
#define BF16_SPECIAL(u) ((uint32_t)((((u) & 0x7FFFFFFFu) - 1u) < BF16_MIN_NORMAL_BITS - 1u) | \
                         (uint32_t)(((u) & 0x7FFFFFFFu) > BF16_MAX_BITS))
#define BF16_RNE(u) (((u) + 0x7FFFu + (((u) >> 16) & 1u)) & 0xFFFF0000u)

INLINE int round_bf16_body(uint32_t *restrict u, long n) {
    uint32_t special = 0;
    for (long j = 0; j < n; j++) special |= BF16_SPECIAL(u[j]);
    if (special) return 0;
    for (long j = 0; j < n; j++) u[j] = BF16_RNE(u[j]);
    return 1;
}

INLINE int pack_bf16_body(const uint32_t *restrict src, long n, uint16_t *restrict out) {
    uint32_t low = 0;
    for (long j = 0; j < n; j++) {
        uint32_t b = src[j];
        low |= b & 0xFFFFu;
        out[j] = (uint16_t)(b >> 16);
    }
    return low == 0;
}

INLINE void unpack_bf16_body(const uint16_t *restrict codes, long n, uint32_t *restrict out) {
    for (long j = 0; j < n; j++) out[j] = (uint32_t)codes[j] << 16;
}

INLINE void transpose_body(const float *restrict src, long lds, float *restrict dst, long ldd, long r0, long r1, long c0,
                           long c1) {
    enum { T = 32 };
    for (long rb = r0; rb < r1; rb += T) {
        long re = rb + T < r1 ? rb + T : r1;
        for (long cb = c0; cb < c1; cb += T) {
            long ce = cb + T < c1 ? cb + T : c1;
            for (long c = cb; c < ce; c++) {
                float *restrict d = dst + c * ldd;
                for (long r = rb; r < re; r++) d[r] = src[r * lds + c];
            }
        }
    }
}

INLINE uint32_t max_magnitude_body(const uint32_t *restrict p, long n) {
    uint32_t top = 0;
    for (long j = 0; j < n; j++) {
        uint32_t a = p[j] & 0x7FFFFFFFu;
        top = a > top ? a : top;
    }
    return top;
}


// MARK: GELU (tanh form) as DojoTensor's FastGELU computes it, operation for operation and without contraction into
// fused multiply-adds (the results are FastGELU's bit for bit), so that the AVX2 build only widens the lanes.
#pragma STDC FP_CONTRACT OFF

INLINE float gelu_tanh_rational(float a) {
    float x = (-9.0f >= a) ? -9.0f : a;   // Swift.max(a, -9), NaN kept
    x = (9.0f < x) ? 9.0f : x;            // Swift.min(x, 9)
    float x2 = x * x;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = x * p;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    return p / q;
}

INLINE void gelu_tanh_body(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float t = gelu_tanh_rational(0.7978845608f * (v + 0.044715f * v * v * v));
        y[i] = 0.5f * v * (1.0f + t);
    }
}

INLINE void gelu_tanh_backward_body(const float *x, const float *dy, float *dx, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i], v2 = v * v;
        float t = gelu_tanh_rational(0.7978845608f * (v + 0.044715f * v2 * v));
        float d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * 0.7978845608f * (1.0f + (3.0f * 0.044715f) * v2);
        dx[i] = dy[i] * d;
    }
}


// MARK: layer normalisation over rows of d values (DojoTensor's layerNorm). The row sums run in 16 partial sums,
// which the vectoriser keeps in registers (a loop of one running sum stays scalar: the order of a float sum is fixed).

INLINE float sum16(const float *a) {
    float s = 0;
    for (int k = 0; k < 16; k++) s += a[k];
    return s;
}

INLINE void layer_norm_rows_body(const float *x, float *y, float *stats, const float *gamma, const float *beta,
                                 long rows, long d, float eps) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        float acc[16] = {0};
        long j = 0;
        for (; j + 16 <= d; j += 16)
            for (int k = 0; k < 16; k++) acc[k] += xr[j + k];
        float sum = sum16(acc);
        for (; j < d; j++) sum += xr[j];
        float mean = sum / (float)d;
        float vacc[16] = {0};
        j = 0;
        for (; j + 16 <= d; j += 16)
            for (int k = 0; k < 16; k++) { float c = xr[j + k] - mean; vacc[k] += c * c; }
        float v = sum16(vacc);
        for (; j < d; j++) { float c = xr[j] - mean; v += c * c; }
        float is = 1.0f / __builtin_sqrtf(v / (float)d + eps);
        stats[2 * r] = mean;
        stats[2 * r + 1] = is;
        for (j = 0; j < d; j++) yr[j] = (xr[j] - mean) * is * gamma[j] + beta[j];
    }
}

INLINE void layer_norm_backward_rows_body(const float *gy, const float *x, const float *stats, const float *gamma,
                                          float *dx, long rows, long d) {
    for (long r = 0; r < rows; r++) {
        const float *g = gy + r * d, *xr = x + r * d;
        float *o = dx + r * d;
        float mean = stats[2 * r], is = stats[2 * r + 1];
        float a1[16] = {0}, a2[16] = {0};
        long j = 0;
        for (; j + 16 <= d; j += 16)
            for (int k = 0; k < 16; k++) {
                float gh = g[j + k] * gamma[j + k];
                a1[k] += gh;
                a2[k] += gh * ((xr[j + k] - mean) * is);
            }
        float sum1 = sum16(a1), sum2 = sum16(a2);
        for (; j < d; j++) { float gh = g[j] * gamma[j]; sum1 += gh; sum2 += gh * ((xr[j] - mean) * is); }
        float sc = is / (float)d, fd = (float)d;
        for (j = 0; j < d; j++) o[j] = sc * (fd * g[j] * gamma[j] - sum1 - (xr[j] - mean) * is * sum2);
    }
}

INLINE void layer_norm_param_grads_body(const float *gy, const float *x, const float *stats, float *dgamma, float *dbeta,
                                        long rows, long d, long c0, long c1) {
    for (long r = 0; r < rows; r++) {
        const float *g = gy + r * d, *xr = x + r * d;
        float mean = stats[2 * r], is = stats[2 * r + 1];
        for (long j = c0; j < c1; j++) { dgamma[j] += g[j] * ((xr[j] - mean) * is); dbeta[j] += g[j]; }
    }
}


// MARK: softmax over rows (DojoTensor's softmax and log-softmax). exp by Cephes' expf (range reduction by ln 2 in two
// parts and a degree-6 polynomial, within 2 ulp of libm's over the range softmax takes), written so that it vectorises.

INLINE float exp_vec(float x) {
    const float hi = 88.3762626647949f, lo = -87.3365447504f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    float fx = xc * 1.44269504088896341f;
    float n = (fx + 12582912.0f) - 12582912.0f;     // round to nearest (|fx| < 2^22)
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * (r * r) + r + 1.0f;
    int32_t k = (int32_t)n;
    uint32_t bits = (uint32_t)(k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    float v = e * scale;
    v = x < lo ? 0.0f : v;          // below FP32's smallest normal result (and −∞): 0
    v = x > hi ? __builtin_inff() : v;
    return x != x ? x : v;          // NaN stays NaN
}

INLINE void softmax_rows_body(const float *x, float *y, long rows, long n, long row0, int causal, int take_log) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        long visible = causal ? (row0 + r) % n + 1 : n;
        float pm[16];
        for (int k = 0; k < 16; k++) pm[k] = -__builtin_inff();
        long i = 0;
        for (; i + 16 <= visible; i += 16)
            for (int k = 0; k < 16; k++) { float v = xr[i + k]; pm[k] = v >= pm[k] ? v : pm[k]; }
        float m = -__builtin_inff();
        for (int k = 0; k < 16; k++) m = pm[k] >= m ? pm[k] : m;
        for (; i < visible; i++) { float v = xr[i]; m = v >= m ? v : m; }
        float ps[16] = {0};
        i = 0;
        for (; i + 16 <= visible; i += 16)
            for (int k = 0; k < 16; k++) { float e = exp_vec(xr[i + k] - m); yr[i + k] = e; ps[k] += e; }
        float sum = sum16(ps);
        for (; i < visible; i++) { float e = exp_vec(xr[i] - m); yr[i] = e; sum += e; }
        for (i = visible; i < n; i++) yr[i] = 0;
        if (take_log) {
            float ls = __builtin_logf(sum) + m;
            for (i = 0; i < n; i++) yr[i] = xr[i] - ls;
        } else {
            float inv = 1.0f / sum;
            for (i = 0; i < n; i++) yr[i] *= inv;
        }
    }
}

INLINE void softmax_backward_rows_body(const float *gy, const float *y, float *dx, long rows, long n, int take_log) {
    for (long r = 0; r < rows; r++) {
        const float *g = gy + r * n, *yr = y + r * n;
        float *o = dx + r * n;
        float acc[16] = {0};
        long i = 0;
        if (take_log) {
            for (; i + 16 <= n; i += 16) for (int k = 0; k < 16; k++) acc[k] += g[i + k];
            float s = sum16(acc);
            for (; i < n; i++) s += g[i];
            for (i = 0; i < n; i++) o[i] = g[i] - exp_vec(yr[i]) * s;
        } else {
            for (; i + 16 <= n; i += 16) for (int k = 0; k < 16; k++) acc[k] += g[i + k] * yr[i + k];
            float dot = sum16(acc);
            for (; i < n; i++) dot += g[i] * yr[i];
            for (i = 0; i < n; i++) o[i] = yr[i] * (g[i] - dot);
        }
    }
}


// MARK: ReLU's backward from its output's codes: dx = dy · (1 where the code is a positive value, else 0), the product
// as DojoTensor's loop forms it (dy times 1.0 or 0.0), so the results are its bit for bit.

INLINE void relu_backward_codes16_body(const uint16_t *codes, const float *dy, float *dx, long n) {
    // dx may be dy itself (the gradient written over in place): each value is read before its own place is written
#pragma clang loop vectorize(assume_safety)
    for (long j = 0; j < n; j++) {
        uint32_t bits = ((((uint32_t)(uint16_t)(codes[j] - 1u)) - 0x7F80u) >> 31) * 0x3F800000u;  // BF16 1...+inf
        float m;
        memcpy(&m, &bits, 4);
        dx[j] = dy[j] * m;
    }
}

/// 2×2 stride-2 max pooling's backward over planes [0, planes) of h × w inputs (argmax: each output's input index in its
/// plane): each pair of input rows zeroed while in L1 and each dy stored at its window's maximum (windows do not
/// overlap: a store, not a sum), so dx is written in one pass; a row no window covers (h odd) is zeroed. The zeroing
/// of the whole gradient first and then a scatter into it went over memory twice (small-cnn: a 12.8 MB gradient).
INLINE void maxpool2x2_backward_body(const float *dy, const int32_t *argmax, float *dx, long planes, long h, long w) {
    long oh = h / 2, ow = w / 2;
    for (long p = 0; p < planes; p++) {
        const float *d = dy + p * oh * ow;
        const int32_t *a = argmax + p * oh * ow;
        float *x = dx + p * h * w;
        for (long r = 0; r < oh; r++) {
            memset(x + 2 * r * w, 0, (size_t)(2 * w) * sizeof(float));
            const float *dr = d + r * ow;
            const int32_t *ar = a + r * ow;
            for (long c = 0; c < ow; c++) x[ar[c]] = dr[c];
        }
        if (h & 1) memset(x + (h - 1) * w, 0, (size_t)w * sizeof(float));
    }
}

INLINE void relu_backward_codes8_body(const uint8_t *codes, const float *dy, float *dx, long n) {
#pragma clang loop vectorize(assume_safety)
    for (long j = 0; j < n; j++) {
        uint32_t bits = ((((uint32_t)(uint8_t)(codes[j] - 1u)) - 0x7Fu) >> 31) * 0x3F800000u;      // 8-bit 1...0x7F
        float m;
        memcpy(&m, &bits, 4);
        dx[j] = dy[j] * m;
    }
}


// MARK: batch norm's span loops (DojoTensor's SwiftBatchNorm): sums in 16 partial results, spans of s values.

INLINE void bn_shifted_sums_body(const float *p, long s, float k, float *sum, float *sq) {
    float a[16] = {0}, q[16] = {0};
    long i = 0;
    for (; i + 16 <= s; i += 16)
        for (int j = 0; j < 16; j++) { float d = p[i + j] - k; a[j] += d; q[j] += d * d; }
    float sa = sum16(a), sb = sum16(q);
    for (; i < s; i++) { float d = p[i] - k; sa += d; sb += d * d; }
    *sum = sa; *sq = sb;
}

INLINE void bn_affine_body(const float *x, float *y, long s, float a, float b) {
#pragma clang loop vectorize(assume_safety)
    for (long i = 0; i < s; i++) y[i] = x[i] * a + b;
}

INLINE void bn_backward_sums_body(const float *x, const float *dy, long s, float m, float *sumDy, float *sumDyXc) {
    float a[16] = {0}, b[16] = {0};
    long i = 0;
    for (; i + 16 <= s; i += 16)
        for (int j = 0; j < 16; j++) { float d = dy[i + j]; a[j] += d; b[j] += d * (x[i + j] - m); }
    float sa = sum16(a), sb = sum16(b);
    for (; i < s; i++) { sa += dy[i]; sb += dy[i] * (x[i] - m); }
    *sumDy = sa; *sumDyXc = sb;
}

INLINE void bn_backward_dx_body(const float *x, const float *dy, float *dx, long s, float a, float b, float c) {
#pragma clang loop vectorize(assume_safety)
    for (long i = 0; i < s; i++) dx[i] = a * dy[i] + b * x[i] + c;
}

// The same sums with x held as BF16 codes (its values' upper halves), read as they are: the values are exact, the
// arithmetic and its order the same, so the results are bit for bit those of decoding x first.
INLINE float bf16_value(uint16_t c) {
    uint32_t u = (uint32_t)c << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

INLINE void bn_shifted_sums_bf16x_body(const uint16_t *p, long s, float k, float *sum, float *sq) {
    float a[16] = {0}, q[16] = {0};
    long i = 0;
    for (; i + 16 <= s; i += 16)
        for (int j = 0; j < 16; j++) { float d = bf16_value(p[i + j]) - k; a[j] += d; q[j] += d * d; }
    float sa = sum16(a), sb = sum16(q);
    for (; i < s; i++) { float d = bf16_value(p[i]) - k; sa += d; sb += d * d; }
    *sum = sa; *sq = sb;
}

INLINE void bn_backward_sums_bf16x_body(const uint16_t *x, const float *dy, long s, float m, float *sumDy, float *sumDyXc) {
    float a[16] = {0}, b[16] = {0};
    long i = 0;
    for (; i + 16 <= s; i += 16)
        for (int j = 0; j < 16; j++) { float d = dy[i + j]; a[j] += d; b[j] += d * (bf16_value(x[i + j]) - m); }
    float sa = sum16(a), sb = sum16(b);
    for (; i < s; i++) { sa += dy[i]; sb += dy[i] * (bf16_value(x[i]) - m); }
    *sumDy = sa; *sumDyXc = sb;
}


// MARK: batch norm with a BF16 output: the affine (or the input gradient), rounded to nearest even and (forward) coded,
// in one pass over a span in cache instead of three; bit for bit the affine, `dojo_round_bf16_if_normal` and
// `dojo_pack_bf16` one after the other. A span holding a value those would leave to their callers (an FP32 subnormal,
// a value near BF16's largest, an infinity, a NaN) returns 0, with the caller's three passes to redo it.


// The chunk loop they share, written once: VALUE(j) is the value at lo + j, STORE(j, u) keeps its rounded bits u; a
// chunk holding a special value returns SPECIAL(lo) (nothing of it stored), the end DONE.
#define BF16_ONE_PASS(VALUE, STORE, SPECIAL, DONE)                                    \
    float v[256];                                                                     \
    for (long lo = 0; lo < s; lo += 256) {                                            \
        long m = s - lo < 256 ? s - lo : 256;                                         \
        uint32_t special = 0;                                                         \
        for (long j = 0; j < m; j++) {                                                \
            v[j] = VALUE(j);                                                          \
            uint32_t u;                                                               \
            memcpy(&u, &v[j], 4);                                                     \
            special |= BF16_SPECIAL(u);                                               \
        }                                                                             \
        if (special) return SPECIAL(lo);                                              \
        for (long j = 0; j < m; j++) { uint32_t u; memcpy(&u, &v[j], 4); STORE(j, BF16_RNE(u)); } \
    }                                                                                 \
    return DONE;
#define BF16_FAILED(lo) 0

INLINE int bn_affine_bf16_codes_body(const float *x, long s, float a, float b, uint16_t *codes) {
#define AFFINE(j) (x[lo + (j)] * a + b)
#define CODE(j, u) (codes[lo + (j)] = (uint16_t)((u) >> 16))
    BF16_ONE_PASS(AFFINE, CODE, BF16_FAILED, 1)
#undef AFFINE
#undef CODE
}

/// BF16 nearest-even of x[0..<s] and the codes written, in one pass, the rounded values never stored: bit for bit
/// `dojo_round_bf16_if_normal` and then `dojo_pack_bf16`.
INLINE int round_bf16_codes_body(const float *x, long s, uint16_t *codes) {
#define VALUE(j) (x[lo + (j)])
#define CODE(j, u) (codes[lo + (j)] = (uint16_t)((u) >> 16))
    BF16_ONE_PASS(VALUE, CODE, BF16_FAILED, 1)
#undef VALUE
#undef CODE
}

INLINE int bn_affine_bf16_codes_bf16x_body(const uint16_t *x, long s, float a, float b, uint16_t *codes) {
#define AFFINE(j) (bf16_value(x[lo + (j)]) * a + b)
#define CODE(j, u) (codes[lo + (j)] = (uint16_t)((u) >> 16))
    BF16_ONE_PASS(AFFINE, CODE, BF16_FAILED, 1)
#undef AFFINE
#undef CODE
}

INLINE long bn_backward_dx_bf16_bf16x_body(const uint16_t *x, const float *dy, float *dx, long s, float a, float b, float c) {
#define DX(j) (a * dy[lo + (j)] + b * bf16_value(x[lo + (j)]) + c)
#define ROUNDED(j, u) do { uint32_t r_ = (u); memcpy(&dx[lo + (j)], &r_, 4); } while (0)
#define AT(lo) (lo)
    BF16_ONE_PASS(DX, ROUNDED, AT, s)
#undef AT
#undef DX
#undef ROUNDED
}

/// Returns how many values it wrote: s, or the start of the chunk that held a special value (dx from there on not
/// written, so dy there is intact when dx is dy).
INLINE long bn_backward_dx_bf16_body(const float *x, const float *dy, float *dx, long s, float a, float b, float c) {
#define DX(j) (a * dy[lo + (j)] + b * x[lo + (j)] + c)
#define ROUNDED(j, u) do { uint32_t r_ = (u); memcpy(&dx[lo + (j)], &r_, 4); } while (0)
#define AT(lo) (lo)
    BF16_ONE_PASS(DX, ROUNDED, AT, s)
#undef AT
#undef DX
#undef ROUNDED
}

// MARK: AVX2 by hand where the compiler's vectorisation narrows or branches poorly (64 values a chunk, as above)

#if DOJO_X86
// The range test of a chunk, from two accumulators instead of a test per value: every |value| (the bits the format's
// sign rule keeps, m) is zero or in the normal range exactly when the largest m is at most the largest normal and the
// smallest m − 1 (a zero wraps to all ones) is at least the smallest normal − 1.
typedef struct { __m256i hi, lo; } cfp_range;

AVX2 static inline cfp_range cfp_range_start(void) {
    cfp_range r = {_mm256_setzero_si256(), _mm256_set1_epi32(-1)};
    return r;
}

AVX2 static inline void cfp_range_add(cfp_range *r, __m256i m, __m256i one) {
    r->hi = _mm256_max_epu32(r->hi, m);
    r->lo = _mm256_min_epu32(r->lo, _mm256_sub_epi32(m, one));
}

/// Whether the chunk held a value outside zero and [min_normal, max_bits] (|bits|, unsigned).
AVX2 static inline int range_special(cfp_range r, uint32_t min_normal, uint32_t max_bits) {
    const __m256i hi_ok = _mm256_set1_epi32((int)max_bits), lo_ok = _mm256_set1_epi32((int)(min_normal - 1));
    // hi > max_bits, or lo < min_normal − 1 (unsigned): max(hi, max_bits) != max_bits, min(lo, lo_ok) != lo_ok
    __m256i over = _mm256_xor_si256(_mm256_max_epu32(r.hi, hi_ok), hi_ok);
    __m256i under = _mm256_xor_si256(_mm256_min_epu32(r.lo, lo_ok), lo_ok);
    __m256i any = _mm256_or_si256(over, under);
    return !_mm256_testz_si256(any, any);
}

/// Whether the chunk held a value outside zero and the format's normal range.
AVX2 static inline int cfp_range_special(cfp_range r, const dojo_cfp_params *f) {
    return range_special(r, f->min_normal_bits, f->min_normal_bits + f->range);
}

/// *top raised to the largest of the 8 lanes (unsigned |value| bits).
AVX2 static inline void cfp_raise_top(__m256i largest, uint32_t *top) {
    __m128i m = _mm_max_epu32(_mm256_castsi256_si128(largest), _mm256_extracti128_si256(largest, 1));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4E));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xB1));
    uint32_t t = (uint32_t)_mm_cvtsi128_si32(m);
    *top = t > *top ? t : *top;
}

/// Nearest-even on FP32 bits to the format's mantissa (`keep` the bits kept, `half_m1` half a unit less one): the
/// rounded bits, their dropped bits cleared (a value in the normal range never carries into the sign bit).
AVX2 static inline __m256i cfp_round_bits(__m256i b, __m128i shift, __m256i one, __m256i half_m1, __m256i keep) {
    __m256i odd = _mm256_and_si256(_mm256_srl_epi32(b, shift), one);
    return _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(b, half_m1), odd), keep);
}

/// For |bits| m (the bits the format's sign rule keeps), the lanes the denormal paths below leave to the caller (all
/// ones: m ≥ the largest + 1, that is NaN, infinity or an unsigned negative; or 1 ≤ m ≤ FP32's largest subnormal), and in
/// *den the lanes below the format's smallest normal (1 ≤ m < the smallest normal).
AVX2 static inline __m256i cfp_denormal_lanes(__m256i m, const dojo_cfp_params *f, __m256i *den) {
    const __m256i one = _mm256_set1_epi32(1), over_min = _mm256_set1_epi32((int)(f->min_normal_bits + f->range + 1));
    const __m256i fp32_sub = _mm256_set1_epi32(0x007FFFFE), den_max = _mm256_set1_epi32((int)(f->min_normal_bits - 2));
    __m256i m1 = _mm256_sub_epi32(m, one);
    *den = _mm256_cmpeq_epi32(_mm256_min_epu32(m1, den_max), m1);
    return _mm256_or_si256(_mm256_cmpeq_epi32(_mm256_max_epu32(m, over_min), m), _mm256_cmpeq_epi32(_mm256_min_epu32(m1, fp32_sub), m1));
}

/// The codes of a chunk (8 vectors) of which some value lies below the smallest normal: such a value is exact when it
/// is a whole number q of the format's unit below 2^M (the as-printed scale stops at 2^M − 1; IEEE's 2^M is the
/// smallest normal, not below it), and its code is q. codes[k] keeps the other lanes' codes. Returns 1, or 0 when a
/// value is one the caller's scalar path takes (beyond the largest, NaN, an FP32 subnormal), or -1 when a value below
/// the smallest normal is not exact.
AVX2 static int pack_chunk_denormals(const uint32_t *restrict s, const dojo_cfp_params *f, __m256i codes[8]) {
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), sign_bit = _mm256_set1_epi32((int)0x80000000u);
    const __m256 inv_unit = _mm256_set1_ps(1.0f / f->denormal_unit), top = _mm256_set1_ps((float)(1u << f->mantissa_bits));
    const __m128i sign_shift = _mm_cvtsi32_si128((int)f->sign_shift);
    __m256i out[8], bad = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(s + 8 * k));
        __m256i a = _mm256_and_si256(b, abs_mask), den;
        __m256i other = cfp_denormal_lanes(a, f, &den);
        if (!_mm256_testz_si256(other, other)) return 0;
        __m256 y = _mm256_mul_ps(_mm256_castsi256_ps(a), inv_unit);
        __m256 q = _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        // not a whole number of units, or as many as the smallest normal or more (the as-printed gap): not exact
        __m256 limit = f->as_printed ? _mm256_sub_ps(top, _mm256_set1_ps(1)) : _mm256_sub_ps(top, _mm256_set1_ps(0.5f));
        __m256 off = _mm256_or_ps(_mm256_cmp_ps(y, q, _CMP_NEQ_UQ), _mm256_cmp_ps(q, limit, _CMP_GT_OQ));
        bad = _mm256_or_si256(bad, _mm256_and_si256(_mm256_castps_si256(off), den));
        __m256i code = _mm256_or_si256(_mm256_cvttps_epi32(q), _mm256_srl_epi32(_mm256_and_si256(b, sign_bit), sign_shift));
        out[k] = _mm256_blendv_epi8(codes[k], code, den);
    }
    if (!_mm256_testz_si256(bad, bad)) return -1;
    for (int k = 0; k < 8; k++) codes[k] = out[k];
    return 1;
}

AVX2 static long pack_cfp8_avx2_hand(const uint32_t *restrict src, long n, uint8_t *restrict out, const dojo_cfp_params *f) {
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), sign_bit = _mm256_set1_epi32((int)0x80000000u);
    const __m256i one = _mm256_set1_epi32(1), low = _mm256_set1_epi32((int)f->low_mask);
    // the code's magnitude is (|bits| >> shift) − (bias_adj >> shift) for a normal value (bias_adj has no bits below
    // the shift), and that difference is negative for zero: clamped to 0
    const __m256i code_base = _mm256_set1_epi32((int)(f->bias_adj >> f->shift));
    const __m128i shift = _mm_cvtsi32_si128((int)f->shift), sign_shift = _mm_cvtsi32_si128((int)f->sign_shift);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    long start = 0;
    for (; start + CHUNK <= n; start += CHUNK) {
        cfp_range range = cfp_range_start();
        __m256i bits = _mm256_setzero_si256(), codes[8];
        for (int k = 0; k < 8; k++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(src + start + 8 * k));
            __m256i a = _mm256_and_si256(b, abs_mask);
            cfp_range_add(&range, a, one);
            bits = _mm256_or_si256(bits, b);
            __m256i mag = _mm256_max_epi32(_mm256_sub_epi32(_mm256_srl_epi32(a, shift), code_base), _mm256_setzero_si256());
            codes[k] = _mm256_or_si256(mag, _mm256_srl_epi32(_mm256_and_si256(b, sign_bit), sign_shift));
        }
        // a value below the smallest normal: coded here (exact or not); another special value goes to the caller's
        // scalar path, which checks exactness itself. Otherwise any bit below the mantissa is a value not exact.
        if (cfp_range_special(range, f)) {
            // the normal lanes' exactness: their bits below the format's mantissa (denormal lanes are checked apart)
            __m256i normal_bits = _mm256_setzero_si256();
            const __m256i min_normal = _mm256_set1_epi32((int)f->min_normal_bits);
            for (int k = 0; k < 8; k++) {
                __m256i b = _mm256_loadu_si256((const __m256i *)(src + start + 8 * k));
                __m256i a = _mm256_and_si256(b, abs_mask);
                __m256i is_normal = _mm256_cmpeq_epi32(_mm256_max_epu32(a, min_normal), a);
                normal_bits = _mm256_or_si256(normal_bits, _mm256_and_si256(b, is_normal));
            }
            int r = pack_chunk_denormals(src + start, f, codes);
            if (r == 0) return start;
            if (r < 0 || !_mm256_testz_si256(normal_bits, low)) return -1;
        } else if (!_mm256_testz_si256(bits, low)) {
            return -1;
        }
        for (int k = 0; k < 8; k += 4) {
            // codes are 0…255: two saturating packs give bytes in 32-bit groups ordered 0,2,4,6 | 1,3,5,7 by source
            __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(codes[k], codes[k + 1]),
                                                _mm256_packus_epi32(codes[k + 2], codes[k + 3]));
            _mm256_storeu_si256((__m256i *)(out + start + 8 * k), _mm256_permutevar8x32_epi32(bytes, order));
        }
    }
    if (start == n) return n;
    long r = pack_cfp8_body(src + start, n - start, out + start, f);
    return r < 0 ? -1 : start + r;
}

/// A chunk (8 vectors) of which some value lies below the smallest normal, rounded again with the format's denormals:
/// r[k] keeps the normal-range rounding of the other lanes. Returns 0 (r unchanged) when a value is one this path leaves
/// to the caller: beyond the largest (or NaN, infinite, unsigned negative) or an FP32 subnormal. Sets *underflow when a
/// denormal result is not exact: the scalar codec's `encodeSmall` for nearest-even, lane by lane in floating point
/// (y = |x|/unit is exact, a power-of-two scaling of an FP32 normal; rint is ties-to-even).
AVX2 static int round_chunk_denormals(const uint32_t *restrict s, const dojo_cfp_params *f, __m256i r[8], uint32_t *underflow) {
    const __m256i mask = _mm256_set1_epi32((int)f->mag_mask), abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i sign_mask = _mm256_set1_epi32((int)f->sign_mask);
    const __m256 unit = _mm256_set1_ps(f->denormal_unit), inv_unit = _mm256_set1_ps(1.0f / f->denormal_unit);
    const float topf = (float)(1u << f->mantissa_bits);
    const __m256 top = _mm256_set1_ps(topf), below_top = _mm256_set1_ps(topf - 1), halfway = _mm256_set1_ps((3 * topf - 1) / 2);
    const __m256 gap_low = _mm256_mul_ps(below_top, unit), gap_high = _mm256_mul_ps(_mm256_set1_ps(2 * topf), unit);
    __m256i out[8], under = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(s + 8 * k));
        __m256i den, other = cfp_denormal_lanes(_mm256_and_si256(b, mask), f, &den);
        if (!_mm256_testz_si256(other, other)) return 0;
        __m256 y = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_and_si256(b, abs_mask)), inv_unit);
        __m256 q = _mm256_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 inexact = _mm256_cmp_ps(y, q, _CMP_NEQ_UQ);
        __m256 v = _mm256_mul_ps(q, unit), flag;
        if (f->as_printed) {
            // y ≥ 2^M − 1: the gap up to the smallest normal (2^(M+1) units), rounded to one end, a tie up
            __m256 gap = _mm256_cmp_ps(y, below_top, _CMP_GE_OQ), up = _mm256_cmp_ps(y, halfway, _CMP_GE_OQ);
            __m256 vg = _mm256_blendv_ps(gap_low, gap_high, up);
            __m256 fg = _mm256_andnot_ps(up, _mm256_cmp_ps(y, below_top, _CMP_NEQ_UQ));
            v = _mm256_blendv_ps(v, vg, gap);
            flag = _mm256_blendv_ps(inexact, fg, gap);
        } else {
            // 2^M units is the smallest normal: no underflow there
            flag = _mm256_and_ps(inexact, _mm256_cmp_ps(q, top, _CMP_LT_OQ));
        }
        __m256i bits = _mm256_or_si256(_mm256_castps_si256(v), _mm256_and_si256(b, sign_mask));
        out[k] = _mm256_blendv_epi8(r[k], bits, den);
        under = _mm256_or_si256(under, _mm256_and_si256(_mm256_castps_si256(flag), den));
    }
    for (int k = 0; k < 8; k++) r[k] = out[k];
    if (!_mm256_testz_si256(under, under)) *underflow = 1;
    return 1;
}

AVX2 static long round_cfp_avx2_hand(uint32_t *restrict p, long n, const dojo_cfp_params *f, uint32_t *top, uint32_t *underflow) {
    const __m256i mask = _mm256_set1_epi32((int)f->mag_mask), abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i one = _mm256_set1_epi32(1), half_m1 = _mm256_set1_epi32((int)(f->low_mask >> 1));
    const __m256i keep = _mm256_set1_epi32((int)~f->low_mask);
    const __m128i shift = _mm_cvtsi32_si128((int)f->shift);
    const int is_signed = f->mag_mask == 0x7FFFFFFFu;
    __m256i largest = _mm256_set1_epi32((int)*top);
    long start = 0;
    for (; start + CHUNK <= n; start += CHUNK) {
        cfp_range range = cfp_range_start();
        __m256i big = largest, r[8];
        for (int k = 0; k < 8; k++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(p + start + 8 * k));
            // the range test on the bits kept by the format's sign rule (unsigned formats: a negative is special)
            __m256i a = _mm256_and_si256(b, abs_mask);
            cfp_range_add(&range, is_signed ? a : _mm256_and_si256(b, mask), one);
            big = _mm256_max_epu32(big, a);
            // nearest-even on the bits with their sign
            r[k] = cfp_round_bits(b, shift, one, half_m1, keep);
        }
        if (cfp_range_special(range, f) && !round_chunk_denormals(p + start, f, r, underflow)) break;
        largest = big;
        for (int k = 0; k < 8; k++) _mm256_storeu_si256((__m256i *)(p + start + 8 * k), r[k]);
    }
    cfp_raise_top(largest, top);
    if (start + CHUNK <= n || start == n) return start;   // stopped at a special chunk, or done
    return start + round_cfp_body(p + start, n - start, f, top);
}

/// round_cfp8_codes_body by hand: round_cfp_avx2_hand's rounding and pack_cfp8_avx2_hand's codes, 64 values a chunk;
/// a chunk holding a value outside zero and the normal range stops it (denormals included: the caller rounds and
/// codes that chunk).
AVX2 static long round_cfp8_codes_avx2_hand(const uint32_t *restrict src, long n, uint8_t *restrict out, const dojo_cfp_params *f,
                                            uint32_t *top) {
    if (f->mag_mask != 0x7FFFFFFFu) return 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), sign_bit = _mm256_set1_epi32((int)0x80000000u);
    const __m256i one = _mm256_set1_epi32(1), half_m1 = _mm256_set1_epi32((int)(f->low_mask >> 1));
    const __m256i keep = _mm256_set1_epi32((int)~f->low_mask);
    const __m256i code_base = _mm256_set1_epi32((int)(f->bias_adj >> f->shift));
    const __m128i shift = _mm_cvtsi32_si128((int)f->shift), sign_shift = _mm_cvtsi32_si128((int)f->sign_shift);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i largest = _mm256_set1_epi32((int)*top);
    long start = 0;
    int stopped = 0;
    for (; start + CHUNK <= n; start += CHUNK) {
        cfp_range range = cfp_range_start();
        __m256i big = largest, codes[8];
        for (int k = 0; k < 8; k++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(src + start + 8 * k));
            __m256i a = _mm256_and_si256(b, abs_mask);
            cfp_range_add(&range, a, one);
            big = _mm256_max_epu32(big, a);
            __m256i r = cfp_round_bits(a, shift, one, half_m1, keep);
            __m256i mag = _mm256_max_epi32(_mm256_sub_epi32(_mm256_srl_epi32(r, shift), code_base), _mm256_setzero_si256());
            codes[k] = _mm256_or_si256(mag, _mm256_srl_epi32(_mm256_and_si256(b, sign_bit), sign_shift));
        }
        if (cfp_range_special(range, f)) { stopped = 1; break; }
        largest = big;
        for (int k = 0; k < 8; k += 4) {
            __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(codes[k], codes[k + 1]),
                                                _mm256_packus_epi32(codes[k + 2], codes[k + 3]));
            _mm256_storeu_si256((__m256i *)(out + start + 8 * k), _mm256_permutevar8x32_epi32(bytes, order));
        }
    }
    cfp_raise_top(largest, top);
    if (stopped || start == n) return start;
    return start + round_cfp8_codes_body(src + start, n - start, out + start, f, top);
}

/// 8 codes at a time: a normal's bits are its magnitude shifted into FP32's place plus the exponent's offset; a
/// denormal (and zero) is its magnitude times the value of code 1, an exact product.
AVX2 static void unpack_cfp8_avx2_hand(const uint8_t *restrict codes, long n, uint32_t *restrict out, const dojo_cfp_params *f) {
    const __m256i mm = _mm256_set1_epi32((int)f->code_mag_mask), adj = _mm256_set1_epi32((int)f->bias_adj);
    const __m256i first_normal = _mm256_set1_epi32((int)(1u << f->mantissa_bits));
    const __m256i sign_code = _mm256_set1_epi32((int)(~f->code_mag_mask & 0x80u));
    const __m256 unit = _mm256_set1_ps(f->denormal_unit);
    const __m128i shift = _mm_cvtsi32_si128((int)f->shift), sign_shift = _mm_cvtsi32_si128((int)f->sign_shift);
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(codes + j)));
        __m256i mag = _mm256_and_si256(c, mm);
        __m256i normal = _mm256_add_epi32(_mm256_sll_epi32(mag, shift), adj);
        __m256i den = _mm256_castps_si256(_mm256_mul_ps(_mm256_cvtepi32_ps(mag), unit));
        __m256i is_den = _mm256_cmpgt_epi32(first_normal, mag);
        __m256i v = _mm256_blendv_epi8(normal, den, is_den);
        __m256i sign = _mm256_sll_epi32(_mm256_and_si256(c, sign_code), sign_shift);
        _mm256_storeu_si256((__m256i *)(out + j), _mm256_or_si256(v, sign));
    }
    if (j < n) unpack_cfp8_body(codes + j, n - j, out + j, f);
}

// BF16_ONE_PASS by hand (the batch norm's affine and input gradient, and a span's rounding into codes): 8 vectors a
// chunk kept in registers, the chunk's range tested from two accumulators (BF16_SPECIAL: nonzero FP32 subnormals and
// |bits| above 0x7F7F0000) before anything of it is stored; bit for bit the bodies above, which take the tail.
enum { BF16_ROUND, BF16_AFFINE, BF16_BN_DX };

/// 16 BF16 codes, in order, from two vectors of rounded FP32 bits.
AVX2 static inline __m256i bf16_codes16(__m256i r0, __m256i r1) {
    // packus works within 128-bit lanes: 0-3 | 8-11 | 4-7 | 12-15 by source, put back in order by the 64-bit permute
    return _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm256_srli_epi32(r0, 16), _mm256_srli_epi32(r1, 16)), 0xD8);
}

/// One chunk of `vectors` vectors (8, or 1 at a span's end) at x + lo: returns 0 (nothing stored) when it held a
/// special value. `vectors` is a constant where this is inlined, so the chunk stays in registers.
AVX2 static inline __attribute__((always_inline)) int bf16_one_pass_chunk(
    int kind, const int vectors, const float *restrict x, const uint16_t *restrict xc, const float *dy, long lo, float a,
    float b, float c, uint16_t *restrict codes, float *out) {
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), one = _mm256_set1_epi32(1);
    const __m256i half_m1 = _mm256_set1_epi32(0x7FFF), keep = _mm256_set1_epi32((int)0xFFFF0000u);
    const __m128i shift = _mm_cvtsi32_si128(16);
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), vc = _mm256_set1_ps(c);
    cfp_range range = cfp_range_start();
    __m256i r[8];
    for (int k = 0; k < vectors; k++) {
        // x, or its BF16 codes widened to the FP32 bits they stand for (xc: a constant NULL or not where inlined)
        __m256 xv = xc ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(xc + lo + 8 * k))), 16))
                       : _mm256_loadu_ps(x + lo + 8 * k), v;
        if (kind == BF16_ROUND) v = xv;
        else if (kind == BF16_AFFINE) v = _mm256_add_ps(_mm256_mul_ps(xv, va), vb);
        else v = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(va, _mm256_loadu_ps(dy + lo + 8 * k)), _mm256_mul_ps(vb, xv)), vc);
        __m256i u = _mm256_castps_si256(v);
        cfp_range_add(&range, _mm256_and_si256(u, abs_mask), one);
        r[k] = cfp_round_bits(u, shift, one, half_m1, keep);
    }
    if (range_special(range, BF16_MIN_NORMAL_BITS, BF16_MAX_BITS)) return 0;
    if (kind == BF16_BN_DX) {
        for (int k = 0; k < vectors; k++) _mm256_storeu_si256((__m256i *)(out + lo + 8 * k), r[k]);
    } else if (vectors == 8) {
        for (int k = 0; k < 8; k += 2) _mm256_storeu_si256((__m256i *)(codes + lo + 8 * k), bf16_codes16(r[k], r[k + 1]));
    } else {
        __m256i p = _mm256_srli_epi32(r[0], 16);
        _mm_storeu_si128((__m128i *)(codes + lo), _mm_packus_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
    }
    return 1;
}

/// Returns how many values it did (a multiple of 8, the rest left to the body); *stopped set when it stopped at a
/// chunk holding a special value (the chunks before it written, none of it).
AVX2 static inline __attribute__((always_inline)) long bf16_one_pass_avx2(int kind, const float *restrict x,
                                                                          const uint16_t *restrict xc, const float *dy,
                                                                          long s, float a, float b, float c,
                                                                          uint16_t *restrict codes, float *out, int *stopped) {
    long lo = 0;
    *stopped = 1;
    for (; lo + CHUNK <= s; lo += CHUNK)
        if (!bf16_one_pass_chunk(kind, 8, x, xc, dy, lo, a, b, c, codes, out)) return lo;
    for (; lo + 8 <= s; lo += 8)
        if (!bf16_one_pass_chunk(kind, 1, x, xc, dy, lo, a, b, c, codes, out)) return lo;
    *stopped = 0;
    return lo;
}

AVX2 static int round_bf16_codes_avx2_hand(const float *x, long s, uint16_t *codes) {
    int stopped;
    long done = bf16_one_pass_avx2(BF16_ROUND, x, NULL, NULL, s, 0, 0, 0, codes, NULL, &stopped);
    return stopped ? 0 : round_bf16_codes_body(x + done, s - done, codes + done);
}

AVX2 static int bn_affine_bf16_codes_avx2_hand(const float *x, long s, float a, float b, uint16_t *codes) {
    int stopped;
    long done = bf16_one_pass_avx2(BF16_AFFINE, x, NULL, NULL, s, a, b, 0, codes, NULL, &stopped);
    return stopped ? 0 : bn_affine_bf16_codes_body(x + done, s - done, a, b, codes + done);
}

AVX2 static long bn_backward_dx_bf16_avx2_hand(const float *x, const float *dy, float *dx, long s, float a, float b, float c) {
    int stopped;
    long done = bf16_one_pass_avx2(BF16_BN_DX, x, NULL, dy, s, a, b, c, NULL, dx, &stopped);
    return stopped ? done : done + bn_backward_dx_bf16_body(x + done, dy + done, dx + done, s - done, a, b, c);
}

AVX2 static int bn_affine_bf16_codes_bf16x_avx2_hand(const uint16_t *x, long s, float a, float b, uint16_t *codes) {
    int stopped;
    long done = bf16_one_pass_avx2(BF16_AFFINE, NULL, x, NULL, s, a, b, 0, codes, NULL, &stopped);
    return stopped ? 0 : bn_affine_bf16_codes_bf16x_body(x + done, s - done, a, b, codes + done);
}

AVX2 static long bn_backward_dx_bf16_bf16x_avx2_hand(const uint16_t *x, const float *dy, float *dx, long s, float a, float b, float c) {
    int stopped;
    long done = bf16_one_pass_avx2(BF16_BN_DX, NULL, x, dy, s, a, b, c, NULL, dx, &stopped);
    return stopped ? done : done + bn_backward_dx_bf16_bf16x_body(x + done, dy + done, dx + done, s - done, a, b, c);
}

/// 8 × 8 blocks through AVX2 shuffles; edges by the plain loop.
AVX2 static void transpose_avx2_hand(const float *restrict src, long lds, float *restrict dst, long ldd, long r0, long r1,
                                     long c0, long c1) {
    enum { T = 64 };
    for (long rb = r0; rb < r1; rb += T) {
        long re = rb + T < r1 ? rb + T : r1;
        for (long cb = c0; cb < c1; cb += T) {
            long ce = cb + T < c1 ? cb + T : c1;
            long r = rb;
            for (; r + 8 <= re; r += 8) {
                long c = cb;
                for (; c + 8 <= ce; c += 8) {
                    const float *s = src + r * lds + c;
                    __m256 x0 = _mm256_loadu_ps(s), x1 = _mm256_loadu_ps(s + lds), x2 = _mm256_loadu_ps(s + 2 * lds);
                    __m256 x3 = _mm256_loadu_ps(s + 3 * lds), x4 = _mm256_loadu_ps(s + 4 * lds), x5 = _mm256_loadu_ps(s + 5 * lds);
                    __m256 x6 = _mm256_loadu_ps(s + 6 * lds), x7 = _mm256_loadu_ps(s + 7 * lds);
                    __m256 t0 = _mm256_unpacklo_ps(x0, x1), t1 = _mm256_unpackhi_ps(x0, x1);
                    __m256 t2 = _mm256_unpacklo_ps(x2, x3), t3 = _mm256_unpackhi_ps(x2, x3);
                    __m256 t4 = _mm256_unpacklo_ps(x4, x5), t5 = _mm256_unpackhi_ps(x4, x5);
                    __m256 t6 = _mm256_unpacklo_ps(x6, x7), t7 = _mm256_unpackhi_ps(x6, x7);
                    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
                    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
                    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
                    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                    float *d = dst + c * ldd + r;
                    _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
                    _mm256_storeu_ps(d + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
                    _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
                    _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
                    _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
                    _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
                    _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
                    _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
                }
                if (c < ce) transpose_body(src, lds, dst, ldd, r, r + 8, c, ce);
            }
            if (r < re) transpose_body(src, lds, dst, ldd, r, re, cb, ce);
        }
    }
}
#endif

// MARK: the two builds and the dispatch

#if DOJO_X86
#define BOTH(ret, name, params, args)                                  \
    static ret name##_base params { return name##_body args; }         \
    AVX2 static ret name##_avx2 params { return name##_body args; }
#define DISPATCH(name, args) (use_avx2() ? name##_avx2 args : name##_base args)
#else
#define BOTH(ret, name, params, args) static ret name##_base params { return name##_body args; }
#define DISPATCH(name, args) (name##_base args)
#endif

static long round_cfp_base(uint32_t *p, long n, const dojo_cfp_params *f, uint32_t *top) { return round_cfp_body(p, n, f, top); }
static long pack_cfp8_base(const uint32_t *src, long n, uint8_t *out, const dojo_cfp_params *f) { return pack_cfp8_body(src, n, out, f); }
static void unpack_cfp8_base(const uint8_t *codes, long n, uint32_t *out, const dojo_cfp_params *f) { unpack_cfp8_body(codes, n, out, f); }
BOTH(int, round_bf16, (uint32_t *p, long n), (p, n))
BOTH(int, pack_bf16, (const uint32_t *src, long n, uint16_t *out), (src, n, out))
BOTH(void, unpack_bf16, (const uint16_t *codes, long n, uint32_t *out), (codes, n, out))
BOTH(uint32_t, max_magnitude, (const uint32_t *p, long n), (p, n))
BOTH(void, gelu_tanh, (const float *x, float *y, long n), (x, y, n))
// the BF16 one-pass loops: their AVX2 build is written by hand (bf16_one_pass_avx2)
static int bn_affine_bf16_codes_base(const float *x, long s, float a, float b, uint16_t *codes) {
    return bn_affine_bf16_codes_body(x, s, a, b, codes);
}
static long bn_backward_dx_bf16_base(const float *x, const float *dy, float *dx, long s, float a, float b, float c) {
    return bn_backward_dx_bf16_body(x, dy, dx, s, a, b, c);
}
static int round_bf16_codes_base(const float *x, long s, uint16_t *codes) { return round_bf16_codes_body(x, s, codes); }
BOTH(void, bn_shifted_sums, (const float *p, long s, float k, float *sum, float *sq), (p, s, k, sum, sq))
BOTH(void, bn_shifted_sums_bf16x, (const uint16_t *p, long s, float k, float *sum, float *sq), (p, s, k, sum, sq))
BOTH(void, bn_backward_sums_bf16x, (const uint16_t *x, const float *dy, long s, float m, float *sumDy, float *sumDyXc),
     (x, dy, s, m, sumDy, sumDyXc))
BOTH(void, bn_affine, (const float *x, float *y, long s, float a, float b), (x, y, s, a, b))
BOTH(void, bn_backward_sums, (const float *x, const float *dy, long s, float m, float *sumDy, float *sumDyXc),
     (x, dy, s, m, sumDy, sumDyXc))
BOTH(void, bn_backward_dx, (const float *x, const float *dy, float *dx, long s, float a, float b, float c),
     (x, dy, dx, s, a, b, c))
BOTH(void, relu_backward_codes16, (const uint16_t *codes, const float *dy, float *dx, long n), (codes, dy, dx, n))
BOTH(void, maxpool2x2_backward, (const float *dy, const int32_t *argmax, float *dx, long planes, long h, long w), (dy, argmax, dx, planes, h, w))
BOTH(void, relu_backward_codes8, (const uint8_t *codes, const float *dy, float *dx, long n), (codes, dy, dx, n))
BOTH(void, softmax_rows, (const float *x, float *y, long rows, long n, long row0, int causal, int take_log),
     (x, y, rows, n, row0, causal, take_log))
BOTH(void, softmax_backward_rows, (const float *gy, const float *y, float *dx, long rows, long n, int take_log),
     (gy, y, dx, rows, n, take_log))
BOTH(void, layer_norm_rows, (const float *x, float *y, float *stats, const float *gamma, const float *beta, long rows, long d,
                             float eps), (x, y, stats, gamma, beta, rows, d, eps))
BOTH(void, layer_norm_backward_rows, (const float *gy, const float *x, const float *stats, const float *gamma, float *dx,
                                      long rows, long d), (gy, x, stats, gamma, dx, rows, d))
BOTH(void, layer_norm_param_grads, (const float *gy, const float *x, const float *stats, float *dgamma, float *dbeta,
                                    long rows, long d, long c0, long c1), (gy, x, stats, dgamma, dbeta, rows, d, c0, c1))
BOTH(void, gelu_tanh_backward, (const float *x, const float *dy, float *dx, long n), (x, dy, dx, n))
// MARK: column sums (a bias's gradient: the sum over every leading dimension), 64 columns at a time in registers down
// every row: bit for bit a running sum per column in row order starting from zero, without a load and store of the
// sums at every row.
#define COLUMN_SUMS(VALUE)                                                              \
    for (long cb = c0; cb < c1; cb += 64) {                                             \
        long w = c1 - cb;                                                               \
        if (w >= 64) {                                                                  \
            float acc[64] = {0};                                                        \
            for (long r = 0; r < rows; r++)                                             \
                for (int j = 0; j < 64; j++) acc[j] += VALUE(r * ld + cb + j);          \
            for (int j = 0; j < 64; j++) dst[cb + j] = acc[j];                          \
        } else {                                                                        \
            float acc[64] = {0};                                                        \
            for (long r = 0; r < rows; r++)                                             \
                for (long j = 0; j < w; j++) acc[j] += VALUE(r * ld + cb + j);          \
            for (long j = 0; j < w; j++) dst[cb + j] = acc[j];                          \
        }                                                                               \
    }
INLINE void column_sums_body(const float *restrict x, long rows, long ld, long c0, long c1, float *restrict dst) {
#define F32_AT(i) (x[i])
    COLUMN_SUMS(F32_AT)
#undef F32_AT
}
INLINE void column_sums_bf16_body(const uint16_t *restrict x, long rows, long ld, long c0, long c1, float *restrict dst) {
#define BF16_AT(i) (bf16_value(x[i]))
    COLUMN_SUMS(BF16_AT)
#undef BF16_AT
}
BOTH(void, column_sums, (const float *x, long rows, long ld, long c0, long c1, float *dst), (x, rows, ld, c0, c1, dst))
BOTH(void, column_sums_bf16, (const uint16_t *x, long rows, long ld, long c0, long c1, float *dst), (x, rows, ld, c0, c1, dst))
void dojo_column_sums_f32(const float *x, long rows, long ld, long c0, long c1, float *dst) {
    DISPATCH(column_sums, (x, rows, ld, c0, c1, dst));
}
void dojo_column_sums_bf16(const uint16_t *x, long rows, long ld, long c0, long c1, float *dst) {
    DISPATCH(column_sums_bf16, (x, rows, ld, c0, c1, dst));
}

// MARK: AdamW's update (DojoNN's AdamW): the scalar loop's operations, vectorised (division and square root are
// correctly rounded in both; no contraction into fused multiply-adds, so the bits are the loop's).
INLINE void adamw_update_body(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, long n,
                              float lr, float lrwd, float b1, float omb1, float b2, float omb2, float c1, float c2, float eps) {
#pragma clang fp contract(off)
    for (long i = 0; i < n; i++) {
        float wi = w[i] - lrwd * w[i];
        float mi = b1 * m[i] + omb1 * g[i];
        float vi = b2 * v[i] + omb2 * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - lr * (mi / c1) / (__builtin_elementwise_sqrt(vi / c2) + eps);   // (sqrtf sets errno: not vectorised)
    }
}
BOTH(void, adamw_update, (float *w, const float *g, float *m, float *v, long n, float lr, float lrwd, float b1, float omb1,
                          float b2, float omb2, float c1, float c2, float eps), (w, g, m, v, n, lr, lrwd, b1, omb1, b2, omb2, c1, c2, eps))
void dojo_adamw_update(float *w, const float *g, float *m, float *v, long n, float lr, float lrwd, float b1, float omb1,
                       float b2, float omb2, float c1, float c2, float eps) {
    DISPATCH(adamw_update, (w, g, m, v, n, lr, lrwd, b1, omb1, b2, omb2, c1, c2, eps));
}

static void transpose_base(const float *src, long lds, float *dst, long ldd, long r0, long r1, long c0, long c1) {
    transpose_body(src, lds, dst, ldd, r0, r1, c0, c1);
}

long dojo_round_cfp_nearest(uint32_t *p, long n, const dojo_cfp_params *f, uint32_t *top, uint32_t *underflow) {
#if DOJO_X86
    if (use_avx2()) return round_cfp_avx2_hand(p, n, f, top, underflow);
#endif
    return round_cfp_base(p, n, f, top);
}
long dojo_pack_cfp8(const uint32_t *src, long n, uint8_t *out, const dojo_cfp_params *f) {
#if DOJO_X86
    if (use_avx2()) return pack_cfp8_avx2_hand(src, n, out, f);
#endif
    return pack_cfp8_base(src, n, out, f);
}
long dojo_round_cfp8_codes(const uint32_t *src, long n, uint8_t *out, const dojo_cfp_params *f, uint32_t *top) {
#if DOJO_X86
    if (use_avx2()) return round_cfp8_codes_avx2_hand(src, n, out, f, top);
#endif
    return round_cfp8_codes_body(src, n, out, f, top);
}
void dojo_unpack_cfp8(const uint8_t *codes, long n, uint32_t *out, const dojo_cfp_params *f) {
#if DOJO_X86
    if (use_avx2()) { unpack_cfp8_avx2_hand(codes, n, out, f); return; }
#endif
    unpack_cfp8_base(codes, n, out, f);
}
int dojo_round_bf16_if_normal(uint32_t *p, long n) { return DISPATCH(round_bf16, (p, n)); }
int dojo_pack_bf16(const uint32_t *src, long n, uint16_t *out) { return DISPATCH(pack_bf16, (src, n, out)); }
void dojo_unpack_bf16(const uint16_t *codes, long n, uint32_t *out) { DISPATCH(unpack_bf16, (codes, n, out)); }
uint32_t dojo_max_magnitude_bits(const uint32_t *p, long n) { return DISPATCH(max_magnitude, (p, n)); }
void dojo_transpose_f32(const float *src, long lds, float *dst, long ldd, long r0, long r1, long c0, long c1) {
#if DOJO_X86
    if (use_avx2()) { transpose_avx2_hand(src, lds, dst, ldd, r0, r1, c0, c1); return; }
#endif
    transpose_base(src, lds, dst, ldd, r0, r1, c0, c1);
}
void dojo_gelu_tanh_f32(const float *x, float *y, long n) { DISPATCH(gelu_tanh, (x, y, n)); }
void dojo_gelu_tanh_backward_f32(const float *x, const float *dy, float *dx, long n) {
    DISPATCH(gelu_tanh_backward, (x, dy, dx, n));
}
void dojo_layer_norm_rows_f32(const float *x, float *y, float *stats, const float *gamma, const float *beta, long rows,
                              long d, float eps) {
    DISPATCH(layer_norm_rows, (x, y, stats, gamma, beta, rows, d, eps));
}
void dojo_layer_norm_backward_rows_f32(const float *gy, const float *x, const float *stats, const float *gamma, float *dx,
                                       long rows, long d) {
    DISPATCH(layer_norm_backward_rows, (gy, x, stats, gamma, dx, rows, d));
}
void dojo_layer_norm_param_grads_f32(const float *gy, const float *x, const float *stats, float *dgamma, float *dbeta,
                                     long rows, long d, long c0, long c1) {
    DISPATCH(layer_norm_param_grads, (gy, x, stats, dgamma, dbeta, rows, d, c0, c1));
}
void dojo_softmax_rows_f32(const float *x, float *y, long rows, long n, long row0, int causal, int take_log) {
    DISPATCH(softmax_rows, (x, y, rows, n, row0, causal, take_log));
}
void dojo_softmax_backward_rows_f32(const float *gy, const float *y, float *dx, long rows, long n, int take_log) {
    DISPATCH(softmax_backward_rows, (gy, y, dx, rows, n, take_log));
}
float dojo_exp_f32(float x) { return exp_vec(x); }
int dojo_round_bf16_codes(const float *x, long n, uint16_t *codes) {
#if DOJO_X86
    if (use_avx2()) return round_bf16_codes_avx2_hand(x, n, codes);
#endif
    return round_bf16_codes_base(x, n, codes);
}
void dojo_relu_backward_codes16(const uint16_t *codes, const float *dy, float *dx, long n) {
    DISPATCH(relu_backward_codes16, (codes, dy, dx, n));
}
void dojo_maxpool2x2_backward(const float *dy, const int32_t *argmax, float *dx, long planes, long h, long w) {
    DISPATCH(maxpool2x2_backward, (dy, argmax, dx, planes, h, w));
}
void dojo_relu_backward_codes8(const uint8_t *codes, const float *dy, float *dx, long n) {
    DISPATCH(relu_backward_codes8, (codes, dy, dx, n));
}
void dojo_bn_shifted_sums(const float *p, long s, float k, float *sum, float *sq) {
    DISPATCH(bn_shifted_sums, (p, s, k, sum, sq));
}
void dojo_bn_affine(const float *x, float *y, long s, float a, float b) { DISPATCH(bn_affine, (x, y, s, a, b)); }
void dojo_bn_backward_sums(const float *x, const float *dy, long s, float m, float *sumDy, float *sumDyXc) {
    DISPATCH(bn_backward_sums, (x, dy, s, m, sumDy, sumDyXc));
}
void dojo_bn_backward_dx(const float *x, const float *dy, float *dx, long s, float a, float b, float c) {
    DISPATCH(bn_backward_dx, (x, dy, dx, s, a, b, c));
}
void dojo_bn_shifted_sums_bf16x(const uint16_t *x, long s, float k, float *sum, float *sq) {
    DISPATCH(bn_shifted_sums_bf16x, (x, s, k, sum, sq));
}
void dojo_bn_backward_sums_bf16x(const uint16_t *x, const float *dy, long s, float m, float *sumDy, float *sumDyXc) {
    DISPATCH(bn_backward_sums_bf16x, (x, dy, s, m, sumDy, sumDyXc));
}
// The hand-written AVX2 version where the CPU has AVX2, else the plain one: `return HAND_OR(name, plain, args);`.
#if DOJO_X86
#define HAND_OR(name, plain, args) (use_avx2() ? name##_avx2_hand args : plain args)
#else
#define HAND_OR(name, plain, args) (plain args)
#endif
int dojo_bn_affine_bf16_codes_bf16x(const uint16_t *x, long s, float a, float b, uint16_t *codes) {
    return HAND_OR(bn_affine_bf16_codes_bf16x, bn_affine_bf16_codes_bf16x_body, (x, s, a, b, codes));
}
long dojo_bn_backward_dx_bf16_bf16x(const uint16_t *x, const float *dy, float *dx, long s, float a, float b, float c) {
    return HAND_OR(bn_backward_dx_bf16_bf16x, bn_backward_dx_bf16_bf16x_body, (x, dy, dx, s, a, b, c));
}
int dojo_bn_affine_bf16_codes(const float *x, long s, float a, float b, uint16_t *codes) {
    return HAND_OR(bn_affine_bf16_codes, bn_affine_bf16_codes_base, (x, s, a, b, codes));
}
long dojo_bn_backward_dx_bf16(const float *x, const float *dy, float *dx, long s, float a, float b, float c) {
    return HAND_OR(bn_backward_dx_bf16, bn_backward_dx_bf16_base, (x, dy, dx, s, a, b, c));
}

// MARK: a 256-entry table of 16-bit values looked up by 1-byte codes (CFP8 codes to their BF16 bits)

static void lookup_u8_u16_base(const uint8_t *codes, long n, const uint16_t *table, uint16_t *out) {
    for (long i = 0; i < n; i++) out[i] = table[codes[i]];
}

#if DOJO_X86
// 32 codes at a time: widened to 16 bits, each looked up in the four 64-entry quarters of the table (vpermi2w: bits 0-5
// of the code) and the quarter chosen by bits 6 and 7
__attribute__((target("avx512f,avx512bw")))
static void lookup_u8_u16_avx512(const uint8_t *codes, long n, const uint16_t *table, uint16_t *out) {
    __m512i t[8];
    for (int k = 0; k < 8; k++) t[k] = _mm512_loadu_si512((const void *)(table + 32 * k));
    const __m512i bit6 = _mm512_set1_epi16(64), bit7 = _mm512_set1_epi16(128);
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i idx = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(codes + i)));
        __m512i r0 = _mm512_permutex2var_epi16(t[0], idx, t[1]);
        __m512i r1 = _mm512_permutex2var_epi16(t[2], idx, t[3]);
        __m512i r2 = _mm512_permutex2var_epi16(t[4], idx, t[5]);
        __m512i r3 = _mm512_permutex2var_epi16(t[6], idx, t[7]);
        __mmask32 m6 = _mm512_test_epi16_mask(idx, bit6), m7 = _mm512_test_epi16_mask(idx, bit7);
        __m512i lowHalf = _mm512_mask_blend_epi16(m6, r0, r1), highHalf = _mm512_mask_blend_epi16(m6, r2, r3);
        _mm512_storeu_si512((void *)(out + i), _mm512_mask_blend_epi16(m7, lowHalf, highHalf));
    }
    lookup_u8_u16_base(codes + i, n - i, table, out + i);
}
#endif

void dojo_lookup_u8_u16(const uint8_t *codes, long n, const uint16_t *table, uint16_t *out) {
#if DOJO_X86
    if (use_avx512bw()) { lookup_u8_u16_avx512(codes, n, table, out); return; }
#endif
    lookup_u8_u16_base(codes, n, table, out);
}
