/*
 * bf16.c - bfloat16 weights, as HF checkpoints ship them.
 *
 * Widening bf16 to f32 is a 16-bit shift, exact, so computing on bf16
 * weights in f32 gives the same numbers as an f32 copy of the model at half
 * the memory traffic.
 */
#include "types/half_x86.h"

#if NT_HAVE_X86
#include <immintrin.h>
#endif

static void bf16_to_f32_generic(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = nt_bf16_to_f32(s[i]);
}

#if NT_HAVE_X86
NT_TARGET_AVX2 static void bf16_to_f32_avx2(const void *src, float *dst,
                                            int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(s + i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
    }
    for (; i < n; i++)
        dst[i] = nt_bf16_to_f32(s[i]);
}

NT_TARGET_AVX512 static void bf16_to_f32_avx512(const void *src, float *dst,
                                                int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(s + i));
        __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(w));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m256i h = _mm256_maskz_loadu_epi16(m, s + i);
        __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(w));
    }
}

NT_TARGET_AVX512 static inline __m512 bf16x16_widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

NT_TARGET_AVX512 static void bf16_dot_rows_avx512(int64_t n, const void *row,
                                                  const float *x, int64_t ldx,
                                                  int m, float *out) {
    nt_half_dot_rows_avx512(n, row, x, ldx, m, out, bf16x16_widen);
}
#endif

static void bf16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = nt_f32_to_bf16(src[i]);
}

const nt_dtype_traits nt_dtype_bf16_traits = {
    .name = "bf16",
    .block_elems = 1,
    .block_bytes = 2,
    .gguf_type = 30,
    .from_f32 = bf16_from_f32,
    .to_f32 = {
        [NT_ISA_GENERIC] = bf16_to_f32_generic,
#if NT_HAVE_X86
        [NT_ISA_AVX2] = bf16_to_f32_avx2,
        [NT_ISA_AVX512] = bf16_to_f32_avx512,
#endif
    },
#if NT_HAVE_X86
    .dot_rows = {[NT_ISA_AVX512] = bf16_dot_rows_avx512},
#endif
};
