/*
 * block32.h - what GGML's blocks of 32 weights (q4_0, q4_1, q5_0, q5_1)
 * share: GGML's reference rounding and the bit layout, and the pieces of
 * their generic dot products on 8-bit activations. All of them keep
 * the low 4 bits of weight j (j < 16) in the low nibble of qs[j] and those
 * of weight j + 16 in its high nibble; the 5-bit types add bit 4 of weight
 * j as bit j of the 32-bit little-endian qh.
 */
#ifndef NT_TYPES_BLOCK32_H
#define NT_TYPES_BLOCK32_H

#include <float.h>

#include "types/dtype.h"

/* q[0..32) into qs (the low 4 bits) and, for the 5-bit types (qh not
   NULL), bit 4 into qh. As in GGML, only 5-bit codes are masked: 4-bit
   ones are below 16. */
static inline void nt_block32_pack(const uint8_t q[32], uint8_t qs[16], uint8_t *qh) {
    if (!qh) {
        for (int j = 0; j < 16; j++)
            qs[j] = (uint8_t)(q[j] | q[j + 16] << 4);
        return;
    }
    uint32_t bits = 0;
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
    for (int j = 0; j < 32; j++)
        bits |= (uint32_t)(q[j] >> 4 & 1) << j;
    for (int k = 0; k < 4; k++)
        qh[k] = (uint8_t)(bits >> (8 * k));
}

/*
 * One block of q4_0 (half = 8, qh NULL) or q5_0 (half = 16) from x[0..32),
 * rounded as GGML's reference does: the value of largest magnitude, sign
 * included, maps to q = 0, so w = d * (q - half) with q in [0, 2 * half);
 * each q is the product plus half + 0.5, truncated through a signed byte,
 * capped.
 */
static inline void nt_block32_write_symmetric(const float *x, int half, uint16_t *d,
                                              uint8_t qs[16], uint8_t *qh) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
        if (x[j] > amax || -x[j] > amax) {
            amax = x[j] > 0 ? x[j] : -x[j];
            max = x[j];
        }
    float scale = max / (float)-half, id = scale != 0.0f ? 1.0f / scale : 0.0f;
    float offset = (float)half + 0.5f;
    int top = 2 * half - 1;
    uint8_t q[32];
    for (int j = 0; j < 32; j++) {
        int v = (int)(int8_t)(x[j] * id + offset);
        q[j] = (uint8_t)(v < top ? v : top);
    }
    *d = nt_f32_to_f16(scale);
    nt_block32_pack(q, qs, qh);
}

/*
 * One block of q4_1 (top = 15, qh NULL) or q5_1 (top = 31) from x[0..32),
 * rounded as GGML's reference does: the block's range in top steps, w = d *
 * q + m with q in [0, top]; each q is v + 0.5 truncated through a byte.
 * GGML caps q4_1's at 15 and not q5_1's, which cannot pass 31 anyway (v
 * exceeds top by a few ulps at most while 1 / d is finite): both are capped.
 */
static inline void nt_block32_write_range(const float *x, int top, uint16_t *d,
                                          uint16_t *m, uint8_t qs[16], uint8_t *qh) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < lo)
            lo = x[j];
        if (x[j] > hi)
            hi = x[j];
    }
    float scale = (hi - lo) / (float)top, id = scale != 0.0f ? 1.0f / scale : 0.0f;
    uint8_t q[32];
    for (int j = 0; j < 32; j++) {
        int v = (int)(int8_t)((x[j] - lo) * id + 0.5f);
        q[j] = (uint8_t)(v < top ? v : top);
    }
    *d = nt_f32_to_f16(scale);
    *m = nt_f32_to_f16(lo);
    nt_block32_pack(q, qs, qh);
}

/* ---- everything else, one implementation told where the fields are ------ */


/* Where a block keeps its fields; d, the f16 scale, is always first. */
typedef struct nt_block32_layout {
    int bytes;  /* per block */
    int qs;     /* offset of the 16 bytes of nibbles */
    int qh;     /* offset of the 4 bytes of fifth bits; -1: none */
    int min;    /* offset of the f16 min m (w = d * q + m); -1: symmetric */
    int half;   /* symmetric types: w = d * (q - half) */
} nt_block32_layout;

static inline float nt_block32_half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return nt_f16_to_f32(h);
}

/* The 32 codes q of a block, in order. */
static inline void nt_block32_codes(const uint8_t *blk, nt_block32_layout L, uint8_t u[32]) {
    uint32_t qh = 0;
    if (L.qh >= 0)
        qh = (uint32_t)blk[L.qh] | (uint32_t)blk[L.qh + 1] << 8 |
             (uint32_t)blk[L.qh + 2] << 16 | (uint32_t)blk[L.qh + 3] << 24;
    for (int j = 0; j < 16; j++) {
        u[j] = (uint8_t)((blk[L.qs + j] & 15) | ((qh >> j) & 1) << 4);
        u[j + 16] = (uint8_t)((blk[L.qs + j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
    }
}

/* to_u8 (dtype.h): u = q, a = d, c = m or -half * d. */
static inline void nt_block32_to_u8(const void *src, int64_t n, nt_block32_layout L,
                                    uint8_t *u, float *a, float *c) {
    for (int64_t i = 0; i < n / 32; i++) {
        const uint8_t *blk = (const uint8_t *)src + i * L.bytes;
        float d = nt_block32_half_at(blk);
        a[i] = d;
        c[i] = L.min >= 0 ? nt_block32_half_at(blk + L.min) : -(float)L.half * d;
        nt_block32_codes(blk, L, u + i * 32);
    }
}

/* to_f32 (dtype.h): w = d * q + m, or d * (q - half). */
static inline void nt_block32_to_f32(const void *src, int64_t n, nt_block32_layout L,
                                     float *dst) {
    for (int64_t i = 0; i < n / 32; i++, dst += 32) {
        const uint8_t *blk = (const uint8_t *)src + i * L.bytes;
        float d = nt_block32_half_at(blk);
        uint8_t u[32];
        nt_block32_codes(blk, L, u);
        if (L.min >= 0) {
            float m = nt_block32_half_at(blk + L.min);
            for (int j = 0; j < 32; j++)
                dst[j] = d * (float)u[j] + m;
        } else {
            for (int j = 0; j < 32; j++)
                dst[j] = d * (float)(u[j] - L.half);
        }
    }
}

/*
 * The reference dot_q8 (dtype.h), exact integer sums per block: sum w * xq
 * = d * sum q * xq + m * sum xq, or d * (sum q * xq - half * sum xq).
 */
static inline void nt_block32_dot_q8(int64_t n, const void *row, nt_block32_layout L,
                                     const nt_q8_rows *x, int m, float *out) {
    for (int r = 0; r < m; r++) {
        const int8_t *xq = x->q + (int64_t)r * x->ld;
        const float *xd = x->d + (int64_t)r * x->ld / 32;
        const int16_t *xs = x->s + (int64_t)r * x->ld / 16;
        float sum = 0.0f;
        for (int64_t i = 0; i < n / 32; i++) {
            const uint8_t *blk = (const uint8_t *)row + i * L.bytes;
            uint8_t u[32];
            nt_block32_codes(blk, L, u);
            int32_t acc = 0;
            for (int j = 0; j < 32; j++)
                acc += (int32_t)u[j] * xq[i * 32 + j];
            int32_t xsum = (int32_t)xs[2 * i] + xs[2 * i + 1];
            float d = nt_block32_half_at(blk);
            if (L.min >= 0)
                sum += xd[i] * (d * (float)acc + nt_block32_half_at(blk + L.min) * (float)xsum);
            else
                sum += d * xd[i] * (float)(acc - L.half * xsum);
        }
        out[r] += sum;
    }
}

#if NT_HAVE_X86
#include "types/q8_x86.h"

/* The fifth bits as bit 4 of 32 bytes: byte j takes bit j of qh. */
NT_TARGET_AVX2 static inline __m256i nt_block32_fifth_bits_avx2(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, sizeof bits);
    __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)bits),
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
                         2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    __m256i mask = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
    return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

/* One block: d * xd * sum(q * xq) into acc, (m or -half * d) * xd * sum(xq)
 * into *off. */
NT_TARGET_AVX2 static inline __attribute__((always_inline)) __m256
nt_block32_block_avx2(const uint8_t *blk, nt_block32_layout L, const int8_t *xq, float xd,
                      const int16_t *xs, __m256 acc, float *off) {
    __m256i u = nt_nibbles_avx2(blk + L.qs);
    if (L.qh >= 0)
        u = _mm256_or_si256(u, nt_block32_fifth_bits_avx2(blk + L.qh));
    __m256i a = _mm256_loadu_si256((const __m256i *)xq);
    uint16_t dh;
    memcpy(&dh, blk, sizeof dh);
    float d = nt_f16_to_f32_f16c(dh) * xd;
    float offset = d * (float)-L.half;
    if (L.min >= 0) {
        memcpy(&dh, blk + L.min, sizeof dh);
        offset = nt_f16_to_f32_f16c(dh) * xd;
    }
    *off += offset * (float)(xs[0] + xs[1]);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(nt_dot_u8s8_avx2(u, a)), _mm256_set1_ps(d),
                           acc);
}

/*
 * dot_q8 for any of the four: two blocks per step, each into its own
 * accumulators, to hide the FMA latency; decoding is bound by reading the
 * weights, so nothing fancier.
 */
NT_TARGET_AVX2 static inline __attribute__((always_inline)) void
nt_block32_dot_q8_avx2(int64_t n, const void *row, nt_block32_layout L,
                       const nt_q8_rows *x, int m, float *out) {
    int64_t nb = n / 32;
    const uint8_t *b = row;
    for (int r = 0; r < m; r++) {
        const int8_t *xq = x->q + (int64_t)r * x->ld;
        const float *xd = x->d + (int64_t)r * x->ld / 32;
        const int16_t *xs = x->s + (int64_t)r * x->ld / 16;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        float off0 = 0.0f, off1 = 0.0f;
        int64_t i = 0;
        for (; i + 2 <= nb; i += 2) {
            acc0 = nt_block32_block_avx2(b + i * L.bytes, L, xq + i * 32, xd[i], xs + 2 * i,
                                         acc0, &off0);
            acc1 = nt_block32_block_avx2(b + (i + 1) * L.bytes, L, xq + i * 32 + 32,
                                         xd[i + 1], xs + 2 * i + 2, acc1, &off1);
        }
        if (i < nb)
            acc0 = nt_block32_block_avx2(b + i * L.bytes, L, xq + i * 32, xd[i], xs + 2 * i,
                                         acc0, &off0);
        out[r] += nt_hsum_ps_avx2(_mm256_add_ps(acc0, acc1)) + off0 + off1;
    }
}
#endif

#endif
