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

/*
 * Lane k of the result is the sum of the eight lanes of v[k]: eight
 * blocks' integer dot products side by side, so that their scales apply
 * as one vector instead of eight scalar steps.
 */
NT_TARGET_AVX2 static inline __m256i nt_sum8x8_epi32_avx2(const __m256i v[8]) {
    __m256i s01 = _mm256_hadd_epi32(v[0], v[1]), s23 = _mm256_hadd_epi32(v[2], v[3]);
    __m256i s45 = _mm256_hadd_epi32(v[4], v[5]), s67 = _mm256_hadd_epi32(v[6], v[7]);
    __m256i s0123 = _mm256_hadd_epi32(s01, s23), s4567 = _mm256_hadd_epi32(s45, s67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(s0123, s4567, 0x20),
                            _mm256_permute2x128_si256(s0123, s4567, 0x31));
}

/* Eight half floats `stride` bytes apart, as floats (a gather). */
NT_TARGET_AVX512VNNI static inline __m256 nt_gather_f16x8(const void *p, int stride) {
    __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                     _mm256_set1_epi32(stride));
    __m256i w = _mm256_i32gather_epi32((const int *)p, idx, 1);
    return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(w));
}

/*
 * The same for an even stride of at most 36 bytes, where the eight lie in
 * the first 256 bytes: picked out of the loaded bytes with word permutes,
 * which costs a few instructions where a gather costs dozens.
 */
NT_TARGET_AVX512VNNI static inline __attribute__((always_inline)) __m256
nt_f16x8_at(const uint8_t *p, const int stride) {
    int16_t idx[32] = {0};
    for (int k = 0; k < 8; k++)
        idx[k] = (int16_t)(k * stride / 2 % 64);
    __m512i words = _mm512_loadu_si512(idx);
    __m512i d = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), words,
                                          _mm512_loadu_si512(p + 64));
    if (7 * stride >= 128) { /* the last ones are in bytes 128 .. 255 */
        __mmask32 far = 0;
        for (int k = 0; k < 8; k++)
            far |= (__mmask32)(k * stride >= 128) << k;
        d = _mm512_mask_blend_epi16(far, d,
                                    _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 128), words,
                                                              _mm512_loadu_si512(p + 192)));
    }
    return _mm256_cvtph_ps(_mm512_castsi512_si128(d));
}

/*
 * Lane k (k < 8) of the result is the sum of block k's eight lanes, where
 * p01 holds blocks 0 and 1 (lanes 0-7 and 8-15), p23 blocks 2 and 3, ...
 */
NT_TARGET_AVX512VNNI static inline __m256i nt_sum8_pairs_epi32(__m512i p01, __m512i p23,
                                                               __m512i p45, __m512i p67) {
    /* 128-bit lane i: four partial sums of block i (lo) or 4 + i (hi) */
    __m512i lo = _mm512_add_epi32(_mm512_shuffle_i64x2(p01, p23, 0x88),
                                  _mm512_shuffle_i64x2(p01, p23, 0xDD));
    __m512i hi = _mm512_add_epi32(_mm512_shuffle_i64x2(p45, p67, 0x88),
                                  _mm512_shuffle_i64x2(p45, p67, 0xDD));
    __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi32(lo, hi), _mm512_unpackhi_epi32(lo, hi));
    u = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, _MM_PERM_BADC));
    /* now int32 0 of lane i is block i's sum and int32 1 block 4 + i's */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castsi512_si256(_mm512_permutexvar_epi32(order, u));
}

/* A block's 32 codes as unsigned bytes, given the block's first byte. */
typedef __m256i (*nt_codes32_fn)(const uint8_t *block);
/* Two consecutive blocks' codes, in the order of their 64 activations. */
typedef __m512i (*nt_codes64_fn)(const uint8_t *block);

/*
 * dot_q8 with VNNI for blocks of 32 with w = d * (u - offset): `bytes` per
 * block (even, at most 36), the f16 d first, the unsigned codes u from
 * `pair` (two blocks) and `codes` (one; both inlined). Eight blocks per
 * step: four dpbusd of two blocks each, reduced to the eight blocks' sums
 * with lane shuffles, then the eight scales (picked out with permutes) and
 * the offsets as three vector operations. Per block that leaves half a
 * load of activations, unpacking the codes and half a dpbusd.
 */
NT_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void
nt_block32_rows_vnni(int64_t n, const uint8_t *b, const int bytes, float offset,
                     nt_codes64_fn pair, nt_codes32_fn codes, const nt_q8_rows *x,
                     int r0, const int R, float *out) {
    int64_t nb = n / 32, n8 = nb / 8 * 8;
    __m256 acc[4], off[4];
    for (int r = 0; r < R; r++)
        acc[r] = off[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n8; i += 8) {
        const uint8_t *s = b + i * bytes;
        __m512i c[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            c[k] = pair(s + 2 * k * bytes);
        __m256 d = nt_f16x8_at(s, bytes);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const int8_t *xq = x->q + (int64_t)(r0 + r) * x->ld;
            const float *xd = x->d + (int64_t)(r0 + r) * x->ld / 32;
            const float *xds = x->ds + (int64_t)(r0 + r) * x->ld / 32;
            __m512i p[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                p[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c[k],
                                           _mm512_loadu_si512(xq + (i + 2 * k) * 32));
            __m256 sums = _mm256_cvtepi32_ps(nt_sum8_pairs_epi32(p[0], p[1], p[2], p[3]));
            acc[r] = _mm256_fmadd_ps(sums, _mm256_mul_ps(d, _mm256_loadu_ps(xd + i)), acc[r]);
            off[r] = _mm256_fmadd_ps(d, _mm256_loadu_ps(xds + i), off[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        const int8_t *xq = x->q + (int64_t)(r0 + r) * x->ld;
        const float *xd = x->d + (int64_t)(r0 + r) * x->ld / 32;
        const float *xds = x->ds + (int64_t)(r0 + r) * x->ld / 32;
        float sum = nt_hsum_ps_avx2(acc[r]) - offset * nt_hsum_ps_avx2(off[r]);
        for (int64_t i = n8; i < nb; i++) {
            int32_t dot = nt_hsum_epi32_avx2(_mm256_dpbusd_epi32(
                _mm256_setzero_si256(), codes(b + i * bytes),
                _mm256_loadu_si256((const __m256i *)(xq + i * 32))));
            uint16_t dh;
            memcpy(&dh, b + i * bytes, sizeof dh);
            sum += nt_f16_to_f32_f16c(dh) * (xd[i] * (float)dot - offset * xds[i]);
        }
        out[r0 + r] += sum;
    }
}

/*
 * Up to four activation rows share each step's unpacked codes and scales:
 * with several rows (a batch of replies) the unpacking is paid once. Each
 * row goes through exactly the operations it would alone, in the same
 * order, so its result does not depend on m or on its place (the
 * scheduler's batch invariance rests on this; test_types checks it).
 */
NT_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void
nt_block32_dot_q8_vnni(int64_t n, const void *row, const int bytes, float offset,
                       nt_codes64_fn pair, nt_codes32_fn codes, const nt_q8_rows *x,
                       int m, float *out) {
    int r = 0;
    for (; r + 4 <= m; r += 4)
        nt_block32_rows_vnni(n, row, bytes, offset, pair, codes, x, r, 4, out);
    for (; r < m; r++)
        nt_block32_rows_vnni(n, row, bytes, offset, pair, codes, x, r, 1, out);
}

#endif
#endif
