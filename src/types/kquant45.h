/*
 * kquant45.h - what q4_k and q5_k share: everything but the fifth bit.
 *
 * Both split a super-block of 256 weights into 8 sub-blocks of 32 with
 * w = d * scale_j * q - dmin * min_j (6-bit scale_j and min_j, see
 * kquant.h). The low 4 bits of q sit in qs, two sub-blocks per 32 bytes
 * (sub-block j in the low nibbles of qs[(j / 2) * 32 ..] when j is even,
 * the high nibbles when odd); q5_k keeps bit 4 of weight l of sub-block j
 * in bit j of qh[l]. Each function here takes one super-block's fields,
 * with qh NULL for q4_k.
 */
#ifndef NT_TYPES_KQUANT45_H
#define NT_TYPES_KQUANT45_H

#include "types/kquant.h"
#include "types/q8_x86.h"

typedef struct nt_kq45_block {
    uint16_t d, dmin;        /* f16 */
    const uint8_t *scales;   /* 12 bytes */
    const uint8_t *qs;       /* 128 bytes */
    const uint8_t *qh;       /* 32 bytes, or NULL (q4_k) */
} nt_kq45_block;

/* The 32 codes of sub-block j. */
static inline void nt_kq45_codes(const nt_kq45_block *b, int j, uint8_t u[32]) {
    const uint8_t *q = b->qs + (j / 2) * 32;
    int shift = (j & 1) * 4;
    for (int l = 0; l < 32; l++)
        u[l] = (uint8_t)(((q[l] >> shift) & 15) | (b->qh ? ((b->qh[l] >> j) & 1) << 4 : 0));
}

static inline void nt_kq45_to_f32(const nt_kq45_block *b, float *dst) {
    float d = nt_f16_to_f32(b->d), dmin = nt_f16_to_f32(b->dmin);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        uint8_t u[32];
        nt_kquant_scale_min(b->scales, j, &sc, &mn);
        nt_kq45_codes(b, j, u);
        for (int l = 0; l < 32; l++)
            dst[j * 32 + l] = d * (float)sc * (float)u[l] - dmin * (float)mn;
    }
}

/* to_u8 (dtype.h) for one super-block: a = d * scale_j, c = -dmin * min_j. */
static inline void nt_kq45_to_u8(const nt_kq45_block *b, uint8_t *u, float *a, float *c) {
    float d = nt_f16_to_f32(b->d), dmin = nt_f16_to_f32(b->dmin);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        nt_kquant_scale_min(b->scales, j, &sc, &mn);
        a[j] = d * (float)sc;
        c[j] = -dmin * (float)mn;
        nt_kq45_codes(b, j, u + j * 32);
    }
}

/*
 * One super-block against activation blocks xb .. xb + 7: sub-block j
 * gives d * scale_j * sum(q * xq) * xd minus dmin * min_j * sum(xq) * xd.
 */
static inline float nt_kq45_dot_generic(const nt_kq45_block *b, const int8_t *xq,
                                        const float *xd, const int16_t *xs) {
    float d = nt_f16_to_f32(b->d), dmin = nt_f16_to_f32(b->dmin), sum = 0.0f;
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        uint8_t u[32];
        nt_kquant_scale_min(b->scales, j, &sc, &mn);
        nt_kq45_codes(b, j, u);
        int32_t acc = 0;
        for (int l = 0; l < 32; l++)
            acc += u[l] * (int32_t)xq[j * 32 + l];
        sum += d * (float)sc * xd[j] * (float)acc -
               dmin * (float)mn * xd[j] * (float)(xs[2 * j] + xs[2 * j + 1]);
    }
    return sum;
}

#if NT_HAVE_X86
/* The fifth bits of a sub-block: bit j of each qh byte, moved to bit 4
 * (16-bit shifts are fine because the mask keeps one bit of each byte). */
NT_TARGET_AVX2 static inline __m256i nt_kq45_high_avx2(__m256i qh, int j) {
    __m256i bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)),
                                   _mm256_set1_epi8(1));
    return _mm256_slli_epi16(bit, 4);
}

/* The same sum, the scaled products into acc[0..1], the min terms into
 * *mins (to subtract once at the end). */
NT_TARGET_AVX2 static inline void nt_kq45_dot_avx2(const nt_kq45_block *b,
                                                   const int8_t *xq, const float *xd,
                                                   const int16_t *xs, __m256 acc[2],
                                                   float *mins) {
    const __m256i low4 = _mm256_set1_epi8(15);
    float d = nt_f16_to_f32_f16c(b->d), dmin = nt_f16_to_f32_f16c(b->dmin);
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++)
        nt_kquant_scale_min(b->scales, j, &sc[j], &mn[j]);
    __m256i qh = b->qh ? _mm256_loadu_si256((const __m256i *)b->qh) : _mm256_setzero_si256();
    float m = 0.0f;
    for (int j = 0; j < 8; j += 2) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + j * 16));
        __m256i lo = _mm256_and_si256(q, low4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if (b->qh) {
            lo = _mm256_or_si256(lo, nt_kq45_high_avx2(qh, j));
            hi = _mm256_or_si256(hi, nt_kq45_high_avx2(qh, j + 1));
        }
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(xq + j * 32));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(xq + j * 32 + 32));
        acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nt_dot_u8s8_avx2(lo, a0)),
                                 _mm256_set1_ps(d * (float)sc[j] * xd[j]), acc[0]);
        acc[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nt_dot_u8s8_avx2(hi, a1)),
                                 _mm256_set1_ps(d * (float)sc[j + 1] * xd[j + 1]), acc[1]);
        m += (float)mn[j] * xd[j] * (float)(xs[2 * j] + xs[2 * j + 1]) +
             (float)mn[j + 1] * xd[j + 1] * (float)(xs[2 * j + 2] + xs[2 * j + 3]);
    }
    *mins += dmin * m;
}

/*
 * The 8 six-bit scales as bytes 0-7 and the 8 mins as bytes 8-15 (the
 * layout is nt_kquant_scale_min's), with 32-bit lanes w0 w1 w2 of the
 * packed bytes:
 *   scales 0-3 = w0 & 0x3f..            mins 0-3 = w1 & 0x3f..
 *   scales 4-7 = (w2 & 0x0f..) | (w0 >> 6 & 0x03..) << 4
 *   mins 4-7   = (w2 >> 4 & 0x0f..) | (w1 >> 6 & 0x03..) << 4
 * Reads 16 bytes from `packed`: the 12 and 4 bytes of the block's next
 * field. Built in a register: going through memory, four 32-bit stores
 * read back as one 128-bit load stall on store forwarding.
 */
NT_TARGET_AVX2 static inline __m128i nt_kq45_scales_mins(const uint8_t *packed) {
    __m128i w = _mm_loadu_si128((const __m128i *)packed);
    __m128i low = _mm_srlv_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(2, 1, 2, 0)),
                                 _mm_setr_epi32(0, 0, 0, 4));
    low = _mm_and_si128(low, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    __m128i top = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(1, 1, 0, 0)), 6),
                                _mm_setr_epi32(0, 0x03030303, 0, 0x03030303));
    return _mm_or_si128(low, _mm_slli_epi32(top, 4));
}

/* Bit j0 of each qh byte in the low 256 bits, bit j1 in the high, moved
 * to bit 4 (qh is broadcast to both halves). */
NT_TARGET_AVX512VNNI static inline __m512i nt_kq45_high_vnni(__m512i qh, int j0, int j1) {
    __m512i counts = _mm512_inserti64x4(_mm512_set1_epi16((short)j0), _mm256_set1_epi16((short)j1), 1);
    __m512i bit = _mm512_and_si512(_mm512_srlv_epi16(qh, counts), _mm512_set1_epi8(1));
    return _mm512_slli_epi16(bit, 4);
}

/*
 * VNNI: one super-block's eight integer dot products, two sub-blocks per
 * 512-bit dpbusd (their codes put in the order of their activations):
 * p[k] holds sub-blocks 2k and 2k + 1 in lanes 0-7 and 8-15.
 */
NT_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void
nt_kq45_codes_vnni(const nt_kq45_block *b, __m512i c[4]) {
    const __m512i low4 = _mm512_set1_epi8(15);
    __m512i qh = b->qh ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->qh))
                       : _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        /* sub-blocks 4h .. 4h + 3: [4h, 4h + 2] in the low nibbles, the
         * odd ones in the high */
        __m512i q = _mm512_loadu_si512(b->qs + 64 * h);
        __m512i lo = _mm512_and_si512(q, low4);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
        if (b->qh) {
            lo = _mm512_or_si512(lo, nt_kq45_high_vnni(qh, 4 * h, 4 * h + 2));
            hi = _mm512_or_si512(hi, nt_kq45_high_vnni(qh, 4 * h + 1, 4 * h + 3));
        }
        c[2 * h] = _mm512_shuffle_i64x2(lo, hi, 0x44);
        c[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, 0xEE);
    }
}

NT_TARGET_AVX512VNNI static inline void nt_kq45_dots_vnni(const nt_kq45_block *b,
                                                          const int8_t *xq, __m512i p[4]) {
    __m512i c[4];
    nt_kq45_codes_vnni(b, c);
    for (int k = 0; k < 4; k++)
        p[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c[k], _mm512_loadu_si512(xq + 64 * k));
}

/*
 * One super-block per call: the eight sums reduced with lane shuffles into
 * one vector, then the eight scales and mins as vectors: d * scale * xd
 * times the sums into acc, dmin * min * (xd * sum(xq)) into *mins.
 */
NT_TARGET_AVX512VNNI static inline void nt_kq45_dot_vnni(const nt_kq45_block *b,
                                                         const int8_t *xq, const float *xd,
                                                         const float *xds, __m256 *acc,
                                                         __m256 *mins) {
    __m512i p[4];
    nt_kq45_dots_vnni(b, xq, p);
    __m128i bytes = nt_kq45_scales_mins(b->scales);
    __m256 scales = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
    __m256 mns = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
    __m256 sums = _mm256_cvtepi32_ps(nt_sum8_pairs_epi32(p[0], p[1], p[2], p[3]));
    __m256 a = _mm256_mul_ps(_mm256_mul_ps(scales, _mm256_set1_ps(nt_f16_to_f32_f16c(b->d))),
                             _mm256_loadu_ps(xd));
    *acc = _mm256_fmadd_ps(sums, a, *acc);
    *mins = _mm256_fmadd_ps(_mm256_mul_ps(mns, _mm256_set1_ps(nt_f16_to_f32_f16c(b->dmin))),
                            _mm256_loadu_ps(xds), *mins);
}

/*
 * Two super-blocks per step: their sixteen sums reduced into one 512-bit
 * vector (lanes 0-7 the first's sub-blocks, 8-15 the second's), so the
 * scales, mins and offsets apply as 512-bit operations, half the
 * instructions per super-block of nt_kq45_dot_vnni. What the rows share
 * (codes, scales times d, mins times dmin) is worked out once in
 * nt_kq45_pair_vnni; nt_kq45_pair_row_vnni does one activation row.
 */
typedef struct nt_kq45_pair {
    __m512i c[8];   /* both super-blocks' codes in dpbusd order */
    __m512 a;       /* d * scale per sub-block */
    __m512 mn;      /* dmin * min per sub-block */
} nt_kq45_pair;

NT_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void
nt_kq45_pair_vnni(const nt_kq45_block *b0, const nt_kq45_block *b1, nt_kq45_pair *pr) {
    nt_kq45_codes_vnni(b0, pr->c);
    nt_kq45_codes_vnni(b1, pr->c + 4);
    __m128i sm0 = nt_kq45_scales_mins(b0->scales), sm1 = nt_kq45_scales_mins(b1->scales);
    __m512 scales = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi64(sm0, sm1)));
    __m512 mns = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi64(sm0, sm1)));
    /* d and dmin of both, each repeated over its super-block's eight lanes */
    __m128 dd = _mm_cvtph_ps(_mm_setr_epi16((short)b0->d, (short)b0->dmin, (short)b1->d,
                                            (short)b1->dmin, 0, 0, 0, 0));
    __m512 dv = _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2), _mm512_castps128_ps512(dd));
    __m512 dminv = _mm512_permutexvar_ps(
        _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3), _mm512_castps128_ps512(dd));
    pr->a = _mm512_mul_ps(scales, dv);
    pr->mn = _mm512_mul_ps(mns, dminv);
}

NT_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void
nt_kq45_pair_row_vnni(const nt_kq45_pair *pr, const int8_t *xq, const float *xd,
                      const float *xds, __m512 *acc, __m512 *mins) {
    __m512i p[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
        p[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), pr->c[k],
                                   _mm512_loadu_si512(xq + 64 * k));
    /* 128-bit lane i: four partial sums of sub-block i (lo) or 4 + i (hi) */
    __m512i lo0 = _mm512_add_epi32(_mm512_shuffle_i64x2(p[0], p[1], 0x88),
                                   _mm512_shuffle_i64x2(p[0], p[1], 0xDD));
    __m512i hi0 = _mm512_add_epi32(_mm512_shuffle_i64x2(p[2], p[3], 0x88),
                                   _mm512_shuffle_i64x2(p[2], p[3], 0xDD));
    __m512i lo1 = _mm512_add_epi32(_mm512_shuffle_i64x2(p[4], p[5], 0x88),
                                   _mm512_shuffle_i64x2(p[4], p[5], 0xDD));
    __m512i hi1 = _mm512_add_epi32(_mm512_shuffle_i64x2(p[6], p[7], 0x88),
                                   _mm512_shuffle_i64x2(p[6], p[7], 0xDD));
    __m512i u0 = _mm512_add_epi32(_mm512_unpacklo_epi32(lo0, hi0), _mm512_unpackhi_epi32(lo0, hi0));
    __m512i u1 = _mm512_add_epi32(_mm512_unpacklo_epi32(lo1, hi1), _mm512_unpackhi_epi32(lo1, hi1));
    /* lane i: sub-blocks i and 4 + i of the first, then of the second */
    __m512i w = _mm512_add_epi32(_mm512_unpacklo_epi64(u0, u1), _mm512_unpackhi_epi64(u0, u1));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512 sums = _mm512_cvtepi32_ps(_mm512_permutexvar_epi32(order, w));
    *acc = _mm512_fmadd_ps(sums, _mm512_mul_ps(pr->a, _mm512_loadu_ps(xd)), *acc);
    *mins = _mm512_fmadd_ps(pr->mn, _mm512_loadu_ps(xds), *mins);
}
#endif

/*
 * The per-row functions of a type, from a function that describes its
 * super-block i: everything else about q4_k and q5_k is the same.
 */
#define NT_KQ45_ROW_FUNCTIONS(prefix, block_type, describe)                          \
    static void prefix##_to_f32_generic(const void *src, float *dst, int64_t n) {    \
        for (int64_t i = 0; i < n / NT_QK_K; i++) {                                  \
            nt_kq45_block kb = describe((const block_type *)src + i);                \
            nt_kq45_to_f32(&kb, dst + i * NT_QK_K);                                  \
        }                                                                            \
    }                                                                                \
    static void prefix##_to_u8(const void *src, int64_t n, uint8_t *u, float *a,     \
                               float *c) {                                           \
        for (int64_t i = 0; i < n / NT_QK_K; i++) {                                  \
            nt_kq45_block kb = describe((const block_type *)src + i);                \
            nt_kq45_to_u8(&kb, u + i * NT_QK_K, a + i * 8, c + i * 8);               \
        }                                                                            \
    }                                                                                \
    static void prefix##_dot_q8_generic(int64_t n, const void *row,                  \
                                        const nt_q8_rows *x, int m, float *out) {    \
        for (int r = 0; r < m; r++) {                                                \
            const int8_t *xq = x->q + (int64_t)r * x->ld;                            \
            const float *xd = x->d + (int64_t)r * x->ld / 32;                        \
            const int16_t *xs = x->s + (int64_t)r * x->ld / 16;                      \
            float sum = 0.0f;                                                        \
            for (int64_t i = 0; i < n / NT_QK_K; i++) {                              \
                nt_kq45_block kb = describe((const block_type *)row + i);            \
                sum += nt_kq45_dot_generic(&kb, xq + i * NT_QK_K, xd + i * 8,        \
                                           xs + i * 16);                             \
            }                                                                        \
            out[r] += sum;                                                           \
        }                                                                            \
    }                                                                                \
    NT_KQ45_ROW_AVX2(prefix, block_type, describe)

#if NT_HAVE_X86
#define NT_KQ45_ROW_AVX2(prefix, block_type, describe)                               \
    NT_TARGET_AVX2 static void prefix##_dot_q8_avx2(int64_t n, const void *row,      \
                                                    const nt_q8_rows *x, int m,      \
                                                    float *out) {                    \
        for (int r = 0; r < m; r++) {                                                \
            const int8_t *xq = x->q + (int64_t)r * x->ld;                            \
            const float *xd = x->d + (int64_t)r * x->ld / 32;                        \
            const int16_t *xs = x->s + (int64_t)r * x->ld / 16;                      \
            __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};              \
            float mins = 0.0f;                                                       \
            for (int64_t i = 0; i < n / NT_QK_K; i++) {                              \
                nt_kq45_block kb = describe((const block_type *)row + i);            \
                nt_kq45_dot_avx2(&kb, xq + i * NT_QK_K, xd + i * 8, xs + i * 16,     \
                                 acc, &mins);                                        \
            }                                                                        \
            out[r] += nt_hsum_ps_avx2(_mm256_add_ps(acc[0], acc[1])) - mins;         \
        }                                                                            \
    }                                                                                \
    /* up to four activation rows share each pair of super-blocks' unpacking; \
     * each row's operations are those it gets alone (dtype.h) */              \
    NT_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void       \
    prefix##_rows_vnni(int64_t n, const void *row, const nt_q8_rows *x, int r0,  \
                       const int R, float *out) {                                \
        __m256 acc[4], mins[4];                                                  \
        __m512 acc2[4], mins2[4];                                                \
        for (int r = 0; r < R; r++) {                                            \
            acc[r] = mins[r] = _mm256_setzero_ps();                              \
            acc2[r] = mins2[r] = _mm512_setzero_ps();                            \
        }                                                                        \
        int64_t nb = n / NT_QK_K, i = 0;                                         \
        for (; i + 2 <= nb; i += 2) {                                            \
            nt_kq45_block k0 = describe((const block_type *)row + i);            \
            nt_kq45_block k1 = describe((const block_type *)row + i + 1);        \
            nt_kq45_pair pr;                                                     \
            nt_kq45_pair_vnni(&k0, &k1, &pr);                                    \
            for (int r = 0; r < R; r++) {                                        \
                int64_t at = (int64_t)(r0 + r) * x->ld;                          \
                nt_kq45_pair_row_vnni(&pr, x->q + at + i * NT_QK_K,              \
                                      x->d + at / 32 + i * 8,                    \
                                      x->ds + at / 32 + i * 8, &acc2[r], &mins2[r]); \
            }                                                                    \
        }                                                                        \
        for (; i < nb; i++) {                                                    \
            nt_kq45_block kb = describe((const block_type *)row + i);            \
            for (int r = 0; r < R; r++) {                                        \
                int64_t at = (int64_t)(r0 + r) * x->ld;                          \
                nt_kq45_dot_vnni(&kb, x->q + at + i * NT_QK_K, x->d + at / 32 + i * 8, \
                                 x->ds + at / 32 + i * 8, &acc[r], &mins[r]);    \
            }                                                                    \
        }                                                                        \
        for (int r = 0; r < R; r++)                                              \
            out[r0 + r] += nt_hsum_ps_avx2(_mm256_sub_ps(acc[r], mins[r])) +     \
                           _mm512_reduce_add_ps(_mm512_sub_ps(acc2[r], mins2[r])); \
    }                                                                            \
    NT_TARGET_AVX512VNNI static void prefix##_dot_q8_vnni(int64_t n, const void *row,\
                                                          const nt_q8_rows *x, int m,\
                                                          float *out) {              \
        int r = 0;                                                               \
        for (; r + 4 <= m; r += 4)                                               \
            prefix##_rows_vnni(n, row, x, r, 4, out);                            \
        for (; r < m; r++)                                                       \
            prefix##_rows_vnni(n, row, x, r, 1, out);                            \
    }
#define NT_KQ45_DOT_Q8(prefix)                                                       \
    {[NT_ISA_GENERIC] = prefix##_dot_q8_generic, [NT_ISA_AVX2] = prefix##_dot_q8_avx2,\
     [NT_ISA_AVX512VNNI] = prefix##_dot_q8_vnni}
#else
#define NT_KQ45_ROW_AVX2(prefix, block_type, describe)
#define NT_KQ45_DOT_Q8(prefix) {[NT_ISA_GENERIC] = prefix##_dot_q8_generic}
#endif

#endif
