/*
 * q8_x86.h - what the x86 integer dot products of every quantized type
 * share: the 8-bit multiply-add and the reductions.
 *
 * AVX2 has no signed-by-signed byte multiply; maddubs multiplies unsigned
 * bytes by signed bytes and adds neighbouring pairs into int16 (saturating,
 * which cannot happen here: weights are below 64 or made unsigned with
 * abs/sign, so a pair stays under 2 * 128 * 127). That is why the types
 * store weights as unsigned codes plus an offset, and why the activation
 * format carries its sums: the offset costs one scalar multiply per block.
 */
#ifndef NT_TYPES_Q8_X86_H
#define NT_TYPES_Q8_X86_H

#include "types/dtype.h"

#if NT_HAVE_X86
#include <immintrin.h>

/* Eight int32 sums of four products u[i] * s[i] each (u unsigned, s signed). */
NT_TARGET_AVX2 static inline __m256i nt_dot_u8s8_avx2(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* The same for signed w: |w| times s with w's sign moved onto s. */
NT_TARGET_AVX2 static inline __m256i nt_dot_s8s8_avx2(__m256i w, __m256i s) {
    return nt_dot_u8s8_avx2(_mm256_abs_epi8(w), _mm256_sign_epi8(s, w));
}

NT_TARGET_AVX2 static inline float nt_hsum_ps_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

NT_TARGET_AVX2 static inline int nt_hsum_epi32_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* A half float, converted by the F16C instruction (exact, like nt_f16_to_f32). */
NT_TARGET_AVX2 static inline float nt_f16_to_f32_f16c(uint16_t h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* 16 bytes of nibbles as 32 bytes: the low nibbles, then the high ones. */
NT_TARGET_AVX2 static inline __m256i nt_nibbles_avx2(const uint8_t *p) {
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_and_si256(both, _mm256_set1_epi8(15));
}

#endif
#endif
