// See include/dojo_kernels.h. Each loop is written once (the *_body functions, always inlined) and compiled twice:
// in a function for baseline x86-64 and in one with AVX2/FMA enabled; clang vectorises both (8 lanes of 32 bits with
// AVX2, 4 with SSE2, and AVX2's narrowing packs and 32-bit multiplies that SSE2 lacks).
#include "dojo_kernels.h"

#include <stdlib.h>
#include <string.h>

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
    if (best_level >= 0) return;
    int best = 0;
#if DOJO_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = 1;
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

INLINE int round_bf16_body(uint32_t *restrict u, long n) {
    uint32_t special = 0;
    for (long j = 0; j < n; j++) {
        uint32_t a = u[j] & 0x7FFFFFFFu;
        special |= (uint32_t)((a - 1u) < 0x007FFFFFu) | (uint32_t)(a > 0x7F7F0000u);
    }
    if (special) return 0;
    for (long j = 0; j < n; j++) {
        uint32_t v = u[j];
        u[j] = (v + 0x7FFFu + ((v >> 16) & 1u)) & 0xFFFF0000u;
    }
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

INLINE uint32_t max_magnitude_body(const uint32_t *restrict p, long n) {
    uint32_t top = 0;
    for (long j = 0; j < n; j++) {
        uint32_t a = p[j] & 0x7FFFFFFFu;
        top = a > top ? a : top;
    }
    return top;
}

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

BOTH(long, round_cfp, (uint32_t *p, long n, const dojo_cfp_params *f, uint32_t *top), (p, n, f, top))
BOTH(long, pack_cfp8, (const uint32_t *src, long n, uint8_t *out, const dojo_cfp_params *f), (src, n, out, f))
BOTH(void, unpack_cfp8, (const uint8_t *codes, long n, uint32_t *out, const dojo_cfp_params *f), (codes, n, out, f))
BOTH(int, round_bf16, (uint32_t *p, long n), (p, n))
BOTH(int, pack_bf16, (const uint32_t *src, long n, uint16_t *out), (src, n, out))
BOTH(void, unpack_bf16, (const uint16_t *codes, long n, uint32_t *out), (codes, n, out))
BOTH(uint32_t, max_magnitude, (const uint32_t *p, long n), (p, n))

long dojo_round_cfp_nearest(uint32_t *p, long n, const dojo_cfp_params *f, uint32_t *top) {
    return DISPATCH(round_cfp, (p, n, f, top));
}
long dojo_pack_cfp8(const uint32_t *src, long n, uint8_t *out, const dojo_cfp_params *f) {
    return DISPATCH(pack_cfp8, (src, n, out, f));
}
void dojo_unpack_cfp8(const uint8_t *codes, long n, uint32_t *out, const dojo_cfp_params *f) {
    DISPATCH(unpack_cfp8, (codes, n, out, f));
}
int dojo_round_bf16_if_normal(uint32_t *p, long n) { return DISPATCH(round_bf16, (p, n)); }
int dojo_pack_bf16(const uint32_t *src, long n, uint16_t *out) { return DISPATCH(pack_bf16, (src, n, out)); }
void dojo_unpack_bf16(const uint16_t *codes, long n, uint32_t *out) { DISPATCH(unpack_bf16, (codes, n, out)); }
uint32_t dojo_max_magnitude_bits(const uint32_t *p, long n) { return DISPATCH(max_magnitude, (p, n)); }
