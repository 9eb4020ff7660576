/*
 * q6_k.c - GGML's Q6_K: super-blocks of 256 weights in 16 sub-blocks of 16,
 * w = d * scale_j * (q - 32) with 6-bit q and int8 scale_j. Each half of
 * 128 weights keeps the low 4 bits of its q in 64 bytes of ql (weights
 * l and l+64 in byte l's low and high nibble, l < 64) and the top 2 bits in
 * 32 bytes of qh (weights l, l+32, l+64, l+96 in bits 0-1, 2-3, 4-5, 6-7
 * of byte l). 210 bytes per 256 weights (6.5625 bits per weight).
 */
#include <math.h>

#include "types/kquant.h"
#include "types/q8_x86.h"

typedef struct block_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;           /* f16 */
} block_q6_k;

static void q6_k_to_f32_generic(const void *src, float *dst, int64_t n) {
    const block_q6_k *b = src;
    for (int64_t i = 0; i < n / NT_QK_K; i++, dst += NT_QK_K) {
        float d = nt_f16_to_f32(b[i].d);
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = b[i].ql + half * 64, *qh = b[i].qh + half * 32;
            const int8_t *sc = b[i].scales + half * 8;
            float *y = dst + half * 128;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

/*
 * GGML's reference quantizer: fit each sub-block of 16 on its own
 * (kquant_search.c), express the 16 scales as int8 steps of the largest
 * (which maps to -128), then round every value again against the scale a
 * reader will use.
 */
static void q6_k_from_f32(const float *src, void *dst, int64_t n) {
    block_q6_k *b = dst;
    for (int64_t i = 0; i < n / NT_QK_K; i++, src += NT_QK_K) {
        int8_t q[NT_QK_K]; /* 0..63, the stored value (w = d * sc * (q - 32)) */
        float scale[16], max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int j = 0; j < 16; j++) {
            scale[j] = nt_kquant_fit_symmetric(16, 32, src + 16 * j, q + 16 * j);
            if (fabsf(scale[j]) > max_abs_scale) {
                max_abs_scale = fabsf(scale[j]);
                max_scale = scale[j];
            }
        }
        if (max_abs_scale < 1e-15f) { /* GGML's GROUP_MAX_EPS: all zeros */
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float iscale = -128.0f / max_scale;
        b[i].d = nt_f32_to_f16(1.0f / iscale);
        for (int j = 0; j < 16; j++) {
            int sc = nt_nearest_int(iscale * scale[j]);
            b[i].scales[j] = (int8_t)(sc < 127 ? sc : 127);
        }
        float d = nt_f16_to_f32(b[i].d);
        for (int j = 0; j < 16; j++) {
            float step = d * (float)b[i].scales[j];
            if (step == 0.0f)
                continue; /* keeps the fit's q */
            for (int l = 0; l < 16; l++) {
                int v = nt_nearest_int(src[16 * j + l] / step);
                q[16 * j + l] = (int8_t)((v < -32 ? -32 : v > 31 ? 31 : v) + 32);
            }
        }
        /* the layout described at the top of this file */
        for (int half = 0; half < 2; half++) {
            const int8_t *qq = q + half * 128;
            uint8_t *ql = b[i].ql + half * 64, *qh = b[i].qh + half * 32;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((qq[l] & 15) | (qq[l + 64] & 15) << 4);
                ql[l + 32] = (uint8_t)((qq[l + 32] & 15) | (qq[l + 96] & 15) << 4);
                qh[l] = (uint8_t)(qq[l] >> 4 | (qq[l + 32] >> 4) << 2 |
                                  (qq[l + 64] >> 4) << 4 | (qq[l + 96] >> 4) << 6);
            }
        }
    }
}

/* Groups of 16, one per scale: a = d * scale, c = -32 * a. */
static void q6_k_to_u8(const void *src, int64_t n, uint8_t *u, float *a, float *c) {
    const block_q6_k *b = src;
    for (int64_t i = 0; i < n / NT_QK_K; i++, u += NT_QK_K, a += 16, c += 16) {
        float d = nt_f16_to_f32(b[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + h * 64, *qh = b[i].qh + h * 32;
            for (int g = 0; g < 4; g++) {
                for (int l = 0; l < 32; l++)
                    u[h * 128 + g * 32 + l] =
                        (uint8_t)(((ql[l + (g & 1) * 32] >> ((g / 2) * 4)) & 15) |
                                  ((qh[l] >> (2 * g)) & 3) << 4);
                for (int s = 0; s < 2; s++) {
                    a[h * 8 + g * 2 + s] = d * (float)b[i].scales[h * 8 + g * 2 + s];
                    c[h * 8 + g * 2 + s] = -32.0f * a[h * 8 + g * 2 + s];
                }
            }
        }
    }
}

/*
 * Activation block 8i + 4h + g meets weights 32g..32g+31 of half h, two
 * sub-blocks of 16: sum(scale * (q - 32) * xq) = sum(scale * q * xq) - 32 *
 * (scale_a * sum_a + scale_b * sum_b), with the activation sums per 16.
 */
static void q6_k_dot_q8_generic(int64_t n, const void *row, const nt_q8_rows *x,
                                int m, float *out) {
    const block_q6_k *b = row;
    for (int r = 0; r < m; r++) {
        const int8_t *xq = x->q + (int64_t)r * x->ld;
        const float *xd = x->d + (int64_t)r * x->ld / 32;
        const int16_t *xs = x->s + (int64_t)r * x->ld / 16;
        float sum = 0.0f;
        for (int64_t i = 0; i < n / NT_QK_K; i++) {
            float d = nt_f16_to_f32(b[i].d);
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = b[i].ql + h * 64, *qh = b[i].qh + h * 32;
                const int8_t *sc = b[i].scales + h * 8;
                for (int g = 0; g < 4; g++) {
                    int64_t xb = i * 8 + h * 4 + g;
                    int32_t acc = 0;
                    for (int l = 0; l < 32; l++) {
                        int q = ((ql[l + (g & 1) * 32] >> ((g / 2) * 4)) & 15) |
                                ((qh[l] >> (2 * g)) & 3) << 4;
                        acc += sc[2 * g + l / 16] * q * (int32_t)xq[xb * 32 + l];
                    }
                    acc -= 32 * (sc[2 * g] * xs[2 * xb] + sc[2 * g + 1] * xs[2 * xb + 1]);
                    sum += d * xd[xb] * (float)acc;
                }
            }
        }
        out[r] += sum;
    }
}

#if NT_HAVE_X86
NT_TARGET_AVX2 static void q6_k_dot_q8_avx2(int64_t n, const void *row,
                                            const nt_q8_rows *x, int m, float *out) {
    const block_q6_k *b = row;
    const __m256i low4 = _mm256_set1_epi8(15), low2 = _mm256_set1_epi8(3);
    for (int r = 0; r < m; r++) {
        const int8_t *xq = x->q + (int64_t)r * x->ld;
        const float *xd = x->d + (int64_t)r * x->ld / 32;
        const int16_t *xs = x->s + (int64_t)r * x->ld / 16;
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        float offset = 0.0f;
        for (int64_t i = 0; i < n / NT_QK_K; i++) {
            float d = nt_f16_to_f32_f16c(b[i].d);
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = b[i].ql + h * 64;
                const int8_t *sc = b[i].scales + h * 8;
                __m256i qh = _mm256_loadu_si256((const __m256i *)(b[i].qh + h * 32));
                __m256i ql0 = _mm256_loadu_si256((const __m256i *)ql);
                __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
                __m256i lows[4] = {
                    _mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4)};
                for (int g = 0; g < 4; g++) {
                    __m256i top = _mm256_and_si256(
                        _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * g)), low2);
                    __m256i q = _mm256_or_si256(lows[g], _mm256_slli_epi16(top, 4));
                    int64_t xb = i * 8 + h * 4 + g;
                    __m256i a = _mm256_loadu_si256((const __m256i *)(xq + xb * 32));
                    __m256i scales = _mm256_set_m128i(_mm_set1_epi16(sc[2 * g + 1]),
                                                      _mm_set1_epi16(sc[2 * g]));
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), scales);
                    float dd = d * xd[xb];
                    acc[g & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dd),
                                                 acc[g & 1]);
                    offset += dd * (float)(sc[2 * g] * xs[2 * xb] +
                                           sc[2 * g + 1] * xs[2 * xb + 1]);
                }
            }
        }
        out[r] += nt_hsum_ps_avx2(_mm256_add_ps(acc[0], acc[1])) - 32.0f * offset;
    }
}
#endif

#if NT_HAVE_X86
/*
 * A super-block per step with VNNI: the eight groups of 32 codes (one
 * activation block each) go through dpbusd; horizontal adds leave the 16
 * sub-block sums (a group's lanes 0-3 and 4-7), which meet their int8
 * scales as floats; the -32 offsets are one madd of the 16 scales with the
 * 16 activation sums. Everything per block is vector work.
 */
/*
 * Four vectors of four sub-blocks of 16 weights each (four int32 lanes per
 * sub-block) reduced to one: lane 4i + k is the sum of p[k]'s sub-block i.
 */
NT_TARGET_AVX512VNNI static inline __m512i q6_k_sum16(const __m512i p[4]) {
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]),
                                  _mm512_unpackhi_epi32(p[0], p[1]));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]),
                                  _mm512_unpackhi_epi32(p[2], p[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}

/*
 * VNNI: a super-block is four dpbusd of 64 weights (two groups of 32, in
 * the order of their activations: ql's low nibbles then its high ones),
 * reduced to the sixteen sub-blocks' sums in one vector. Lane 4i + k holds
 * sub-block 4k + i, so the scales and the activations' d are permuted to
 * match. The -32 offset is one multiply-add per super-block on the
 * activations' sums.
 */
NT_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void
q6_k_rows_vnni(int64_t n, const block_q6_k *b, const nt_q8_rows *x, int r0, const int R,
               float *out) {
    const __m512i low4 = _mm512_set1_epi8(15), low2 = _mm512_set1_epi8(3);
    const __m128i scale_of_lane =
        _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i group_of_lane =
        _mm512_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6, 1, 3, 5, 7, 1, 3, 5, 7);
    /* qh's bit pairs of [group 0, group 1] and of [group 2, group 3] */
    const __m512i shift01 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i shift23 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    __m512 acc[4];
    __m256 off[4];
    for (int r = 0; r < R; r++) {
        acc[r] = _mm512_setzero_ps();
        off[r] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < n / NT_QK_K; i++) {
        /* the super-block's codes and scales, once for all R rows */
        __m512i q[4];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(b[i].ql + h * 64);
            __m512i qh = _mm512_broadcast_i64x4(
                _mm256_loadu_si256((const __m256i *)(b[i].qh + h * 32)));
            q[2 * h] = _mm512_or_si512(
                _mm512_and_si512(ql, low4),
                _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, shift01), low2), 4));
            q[2 * h + 1] = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, shift23), low2), 4));
        }
        __m128i sc = _mm_loadu_si128((const __m128i *)b[i].scales);
        __m256 d = _mm256_set1_ps(nt_f16_to_f32_f16c(b[i].d));
        __m512 scales = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc, scale_of_lane)));
        __m256i sc16 = _mm256_cvtepi8_epi16(sc);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const int8_t *xb = x->q + (int64_t)(r0 + r) * x->ld + i * NT_QK_K;
            const float *xd = x->d + (int64_t)(r0 + r) * x->ld / 32;
            const int16_t *xs = x->s + (int64_t)(r0 + r) * x->ld / 16;
            __m512i p[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                p[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[k],
                                           _mm512_loadu_si512(xb + k * 64));
            __m256 dd = _mm256_mul_ps(d, _mm256_loadu_ps(xd + i * 8));
            __m512 dd16 = _mm512_permutexvar_ps(group_of_lane, _mm512_castps256_ps512(dd));
            acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q6_k_sum16(p)), scales),
                                     dd16, acc[r]);
            /* per group: scale_a * sum_a + scale_b * sum_b of the activations */
            __m256i offsets =
                _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(xs + i * 16)));
            off[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(offsets), dd, off[r]);
        }
    }
    for (int r = 0; r < R; r++)
        out[r0 + r] += _mm512_reduce_add_ps(acc[r]) - 32.0f * nt_hsum_ps_avx2(off[r]);
}

/* Four activation rows share each super-block's unpacked codes and scales;
 * each row's operations are those it gets alone (dtype.h). */
NT_TARGET_AVX512VNNI static void q6_k_dot_q8_vnni(int64_t n, const void *row,
                                                  const nt_q8_rows *x, int m, float *out) {
    int r = 0;
    for (; r + 4 <= m; r += 4)
        q6_k_rows_vnni(n, row, x, r, 4, out);
    for (; r < m; r++)
        q6_k_rows_vnni(n, row, x, r, 1, out);
}
#endif

const nt_dtype_traits nt_dtype_q6_k_traits = {
    .name = "q6_k",
    .block_elems = NT_QK_K,
    .block_bytes = sizeof(block_q6_k),
    .gguf_type = 14,
    .to_f32 = {[NT_ISA_GENERIC] = q6_k_to_f32_generic},
    .to_u8 = {[NT_ISA_GENERIC] = q6_k_to_u8},
    .u8_group = 16,
    .gemm_min_rows = 64,
    .dot_q8 = {
        [NT_ISA_GENERIC] = q6_k_dot_q8_generic,
#if NT_HAVE_X86
        [NT_ISA_AVX2] = q6_k_dot_q8_avx2,
        [NT_ISA_AVX512VNNI] = q6_k_dot_q8_vnni,
#endif
    },
    .from_f32 = q6_k_from_f32,
};
