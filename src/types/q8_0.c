/*
 * q8_0.c - GGML's Q8_0: blocks of 32 weights, w = d * q with a half-float
 * scale d and int8 q. 34 bytes per block (8.5 bits per weight).
 */
#include <stddef.h>

#include "types/q8_x86.h"

typedef struct block_q8_0 {
    uint16_t d;     /* f16 */
    int8_t q[32];
} block_q8_0;

static void q8_0_to_f32_generic(const void *src, float *dst, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        float d = nt_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++)
            dst[i * 32 + j] = d * (float)b[i].q[j];
    }
}

#include <math.h>

/* GGML's reference rounding: d = max|x| / 127, q = round(x / d). */
static void q8_0_from_f32(const float *src, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        const float *x = src + i * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = nt_f32_to_f16(d);
        for (int j = 0; j < 32; j++)
            b[i].q[j] = (int8_t)roundf(x[j] * id);
    }
}

/* The reference: exact integer sums per block, then the two scales. */
static void q8_0_dot_q8_generic(int64_t n, const void *row, const nt_q8_rows *x,
                                int m, float *out) {
    const block_q8_0 *b = row;
    for (int r = 0; r < m; r++) {
        const int8_t *xq = x->q + (int64_t)r * x->ld;
        const float *xd = x->d + (int64_t)r * x->ld / 32;
        float sum = 0.0f;
        for (int64_t i = 0; i < n / 32; i++) {
            int32_t acc = 0;
            for (int j = 0; j < 32; j++)
                acc += (int32_t)b[i].q[j] * xq[i * 32 + j];
            sum += nt_f16_to_f32(b[i].d) * xd[i] * (float)acc;
        }
        out[r] += sum;
    }
}

#if NT_HAVE_X86
/* Two blocks per step, each into its own accumulator, to hide FMA latency. */
NT_TARGET_AVX2 static void q8_0_dot_q8_avx2(int64_t n, const void *row,
                                            const nt_q8_rows *x, int m, float *out) {
    const block_q8_0 *b = row;
    int64_t nb = n / 32;
    for (int r = 0; r < m; r++) {
        const int8_t *xq = x->q + (int64_t)r * x->ld;
        const float *xd = x->d + (int64_t)r * x->ld / 32;
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t i = 0; i < nb; i++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)b[i].q);
            __m256i a = _mm256_loadu_si256((const __m256i *)(xq + i * 32));
            __m256 p = _mm256_cvtepi32_ps(nt_dot_s8s8_avx2(w, a));
            float d = nt_f16_to_f32_f16c(b[i].d) * xd[i];
            acc[i & 1] = _mm256_fmadd_ps(p, _mm256_set1_ps(d), acc[i & 1]);
        }
        out[r] += nt_hsum_ps_avx2(_mm256_add_ps(acc[0], acc[1]));
    }
}

/* For VNNI's unsigned-by-signed products: u = q + 128, the sign bit
 * flipped, with w = d * (u - 128). */
NT_TARGET_AVX2 static inline __m256i q8_0_codes(const uint8_t *block) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(block + offsetof(block_q8_0, q)));
    return _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80));
}

NT_TARGET_AVX512VNNI static inline __m512i q8_0_pair_codes(const uint8_t *b0) {
    __m512i q = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + offsetof(block_q8_0, q)))),
        _mm256_loadu_si256((const __m256i *)(b0 + sizeof(block_q8_0) + offsetof(block_q8_0, q))),
        1);
    return _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
}

NT_TARGET_AVX512VNNI static void q8_0_dot_q8_vnni(int64_t n, const void *row,
                                                  const nt_q8_rows *x, int m, float *out) {
    nt_block32_dot_q8_vnni(n, row, sizeof(block_q8_0), 128.0f, q8_0_pair_codes, q8_0_codes,
                           x, m, out);
}
#endif

/* u = q + 128: the sign bit flipped. */
static void q8_0_to_u8(const void *src, int64_t n, uint8_t *u, float *a, float *c) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        float d = nt_f16_to_f32(b[i].d);
        a[i] = d;
        c[i] = -128.0f * d;
        for (int j = 0; j < 32; j++)
            u[i * 32 + j] = (uint8_t)b[i].q[j] ^ 0x80u;
    }
}

const nt_dtype_traits nt_dtype_q8_0_traits = {
    .name = "q8_0",
    .block_elems = 32,
    .block_bytes = sizeof(block_q8_0),
    .gguf_type = 8,
    .to_f32 = {[NT_ISA_GENERIC] = q8_0_to_f32_generic},
    .dot_q8 = {
        [NT_ISA_GENERIC] = q8_0_dot_q8_generic,
#if NT_HAVE_X86
        [NT_ISA_AVX2] = q8_0_dot_q8_avx2,
        [NT_ISA_AVX512VNNI] = q8_0_dot_q8_vnni,
#endif
    },
    .from_f32 = q8_0_from_f32,
    .to_u8 = {[NT_ISA_GENERIC] = q8_0_to_u8},
    .u8_group = 32,
    .gemm_min_rows = 12,
};
