/*
 * q8_act.c - activations rounded to 8 bits for the integer dot products
 * (the format is described in dtype.h).
 */
#include <math.h>

#include "types/q8_x86.h"

static void quantize_q8_generic(const float *x, int64_t n, int8_t *q, float *d,
                                int16_t *s) {
    for (int64_t b = 0; b < n / NT_Q8_BLOCK; b++) {
        const float *xb = x + b * NT_Q8_BLOCK;
        float amax = 0.0f;
        for (int j = 0; j < NT_Q8_BLOCK; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        float scale = amax / 127.0f;
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        d[b] = scale;
        for (int h = 0; h < 2; h++) {
            int sum = 0;
            for (int j = h * 16; j < h * 16 + 16; j++) {
                int v = (int)lrintf(xb[j] * inv);
                q[b * NT_Q8_BLOCK + j] = (int8_t)v;
                sum += v;
            }
            s[b * 2 + h] = (int16_t)sum;
        }
    }
}

#if NT_HAVE_X86
/*
 * The same numbers as the reference: the same scale, the same product
 * x * (127 / amax), and cvtps rounds to nearest even as lrintf does in the
 * default rounding mode.
 */
NT_TARGET_AVX2 static void quantize_q8_avx2(const float *x, int64_t n, int8_t *q,
                                            float *d, int16_t *s) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / NT_Q8_BLOCK; b++) {
        const float *xb = x + b * NT_Q8_BLOCK;
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax),
                               _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float max = _mm_cvtss_f32(m4);
        d[b] = max / 127.0f;
        __m256 inv = _mm256_set1_ps(max > 0.0f ? 127.0f / max : 0.0f);
        __m256i i[4];
        for (int k = 0; k < 4; k++)
            i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv));
        s[b * 2] = (int16_t)nt_hsum_epi32_avx2(_mm256_add_epi32(i[0], i[1]));
        s[b * 2 + 1] = (int16_t)nt_hsum_epi32_avx2(_mm256_add_epi32(i[2], i[3]));
        /* packs interleaves the 128-bit lanes; the permute undoes it */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]),
                                       _mm256_packs_epi32(i[2], i[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + b * NT_Q8_BLOCK), p);
    }
}
#endif

const nt_quantize_q8_fn nt_quantize_q8_table[NT_ISA_COUNT] = {
    [NT_ISA_GENERIC] = quantize_q8_generic,
#if NT_HAVE_X86
    [NT_ISA_AVX2] = quantize_q8_avx2,
#endif
};
