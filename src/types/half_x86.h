/*
 * half_x86.h - the AVX-512 dot product that f16 and bf16 weights share;
 * only the widening of 16 halves to 16 floats differs.
 *
 * Decoding reads every weight once per token, so the dot product widens
 * the weights in registers instead of through a buffer: 16 weights per
 * load, four independent accumulators per activation row to cover FMA
 * latency.
 */
#ifndef NT_TYPES_HALF_X86_H
#define NT_TYPES_HALF_X86_H

#include "types/dtype.h"

#if NT_HAVE_X86
#include <immintrin.h>

/* 16 halves (f16 or bf16) as 16 floats. */
typedef __m512 (*nt_widen16_fn)(__m256i halves);

NT_TARGET_AVX512 static inline __attribute__((always_inline)) float
nt_half_dot_avx512(int64_t n, const uint16_t *w, const float *x, nt_widen16_fn widen) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(),
           s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int64_t i = 0;
#define NT_HALF16(p) widen(_mm256_loadu_si256((const __m256i *)(p)))
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(NT_HALF16(w + i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(NT_HALF16(w + i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(NT_HALF16(w + i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(NT_HALF16(w + i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(NT_HALF16(w + i), _mm512_loadu_ps(x + i), s0);
#undef NT_HALF16
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(widen(_mm256_maskz_loadu_epi16(m, w + i)),
                             _mm512_maskz_loadu_ps(m, x + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* dot_rows (dtype.h) on a row of halves. */
NT_TARGET_AVX512 static inline __attribute__((always_inline)) void
nt_half_dot_rows_avx512(int64_t n, const void *row, const float *x, int64_t ldx, int m,
                        float *out, nt_widen16_fn widen) {
    for (int i = 0; i < m; i++)
        out[i] += nt_half_dot_avx512(n, row, x + (int64_t)i * ldx, widen);
}
#endif

#endif
