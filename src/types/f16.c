/*
 * f16.c - IEEE half-precision weights.
 */
#include "types/half_x86.h"

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
NT_TARGET_AVX512 static inline __m512 f16x16_widen(__m256i h) {
    return _mm512_cvtph_ps(h);
}

NT_TARGET_AVX512 static void f16_dot_rows_avx512(int64_t n, const void *row, const float *x,
                                                 int64_t ldx, int m, float *out) {
    nt_half_dot_rows_avx512(n, row, x, ldx, m, out, f16x16_widen);
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
