/*
 * bf16.c - bfloat16 weights, as HF checkpoints ship them.
 *
 * Widening bf16 to f32 is a 16-bit shift, exact, so computing on bf16
 * weights in f32 gives the same numbers as an f32 copy of the model at half
 * the memory traffic.
 */
#include "types/dtype.h"

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

/*
 * Decoding reads every weight once per token, so the dot product widens
 * bf16 in registers instead of through a buffer: 16 weights per load, four
 * independent accumulators per activation row to cover FMA latency.
 */
NT_TARGET_AVX512 static inline __m512 bf16x16_load(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

NT_TARGET_AVX512 static inline __m512 bf16x16_load_partial(const uint16_t *p,
                                                           __mmask16 m) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

NT_TARGET_AVX512 static float bf16_dot_avx512(int64_t n, const uint16_t *w,
                                              const float *x) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(),
           s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(bf16x16_load(w + i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(bf16x16_load(w + i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(bf16x16_load(w + i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(bf16x16_load(w + i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(bf16x16_load(w + i), _mm512_loadu_ps(x + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(bf16x16_load_partial(w + i, m),
                             _mm512_maskz_loadu_ps(m, x + i), s1);
    }
    return _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

NT_TARGET_AVX512 static void bf16_dot_rows_avx512(int64_t n, const void *row,
                                                  const float *x, int64_t ldx,
                                                  int m, float *out) {
    for (int i = 0; i < m; i++)
        out[i] += bf16_dot_avx512(n, row, x + (int64_t)i * ldx);
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
