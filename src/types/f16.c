/*
 * f16.c - IEEE half-precision weights.
 */
#include "types/dtype.h"

#if NT_HAVE_X86
#include <immintrin.h>
#endif

static void f16_to_f32_generic(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = nt_f16_to_f32(s[i]);
}

#if NT_HAVE_X86
NT_TARGET_AVX2 static void f16_to_f32_avx2(const void *src, float *dst,
                                           int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i,
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++)
        dst[i] = nt_f16_to_f32(s[i]);
}

NT_TARGET_AVX512 static void f16_to_f32_avx512(const void *src, float *dst,
                                               int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(
                                      (const __m256i *)(s + i))));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m256i h = _mm256_maskz_loadu_epi16(m, s + i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(h));
    }
}
#endif

#if NT_HAVE_X86
/*
 * Decoding widens each weight in registers (F16C), as bf16.c does: no
 * buffer round trip, four accumulators per activation row.
 */
NT_TARGET_AVX512 static float f16_dot_avx512(int64_t n, const uint16_t *w, const float *x) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(),
           s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int64_t i = 0;
#define F16X16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(F16X16(w + i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(F16X16(w + i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(F16X16(w + i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(F16X16(w + i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(F16X16(w + i), _mm512_loadu_ps(x + i), s0);
#undef F16X16
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i)),
                             _mm512_maskz_loadu_ps(m, x + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

NT_TARGET_AVX512 static void f16_dot_rows_avx512(int64_t n, const void *row, const float *x,
                                                 int64_t ldx, int m, float *out) {
    for (int i = 0; i < m; i++)
        out[i] += f16_dot_avx512(n, row, x + (int64_t)i * ldx);
}
#endif

static void f16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = nt_f32_to_f16(src[i]);
}

const nt_dtype_traits nt_dtype_f16_traits = {
    .name = "f16",
    .block_elems = 1,
    .block_bytes = 2,
    .gguf_type = 1,
    .from_f32 = f16_from_f32,
    .to_f32 = {
        [NT_ISA_GENERIC] = f16_to_f32_generic,
#if NT_HAVE_X86
        [NT_ISA_AVX2] = f16_to_f32_avx2,
        [NT_ISA_AVX512] = f16_to_f32_avx512,
#endif
    },
#if NT_HAVE_X86
    .dot_rows = {[NT_ISA_AVX512] = f16_dot_rows_avx512},
#endif
};
