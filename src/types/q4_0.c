/*
 * q4_0.c - GGML's Q4_0: blocks of 32 weights, w = d * (q - 8) with a
 * half-float scale and 4-bit q. Byte j holds weight j in its low nibble and
 * weight j + 16 in its high nibble. 18 bytes per block (4.5 bits per weight).
 */
#include <stddef.h>

#include "types/block32.h"

typedef struct block_q4_0 {
    uint16_t d;       /* f16 */
    uint8_t qs[16];
} block_q4_0;

static void q4_0_to_f32_generic(const void *src, float *dst, int64_t n) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        float d = nt_f16_to_f32(b[i].d);
        for (int j = 0; j < 16; j++) {
            dst[i * 32 + j] = d * (float)((b[i].qs[j] & 15) - 8);
            dst[i * 32 + j + 16] = d * (float)((b[i].qs[j] >> 4) - 8);
        }
    }
}

/* GGML's reference rounding: the value of largest magnitude maps to -8. */
static void q4_0_from_f32(const float *src, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++)
        nt_block32_write_symmetric(src + i * 32, 8, &b[i].d, b[i].qs, NULL);
}

/* The reference: sum (q - 8) * xq = sum q * xq - 8 * sum xq, per block. */
static void q4_0_dot_q8_generic(int64_t n, const void *row, const nt_q8_rows *x,
                                int m, float *out) {
    const block_q4_0 *b = row;
    for (int r = 0; r < m; r++) {
        const int8_t *xq = x->q + (int64_t)r * x->ld;
        const float *xd = x->d + (int64_t)r * x->ld / 32;
        const int16_t *xs = x->s + (int64_t)r * x->ld / 16;
        float sum = 0.0f;
        for (int64_t i = 0; i < n / 32; i++) {
            int32_t acc = 0;
            for (int j = 0; j < 16; j++)
                acc += (int32_t)(b[i].qs[j] & 15) * xq[i * 32 + j] +
                       (int32_t)(b[i].qs[j] >> 4) * xq[i * 32 + j + 16];
            acc -= 8 * ((int32_t)xs[2 * i] + xs[2 * i + 1]);
            sum += nt_f16_to_f32(b[i].d) * xd[i] * (float)acc;
        }
        out[r] += sum;
    }
}

static const nt_block32_layout q4_0_layout = {
    sizeof(block_q4_0), offsetof(block_q4_0, qs), -1, -1, 8};

static void q4_0_to_u8(const void *src, int64_t n, uint8_t *u, float *a, float *c) {
    nt_block32_to_u8(src, n, q4_0_layout, u, a, c);
}

#if NT_HAVE_X86
NT_TARGET_AVX2 static void q4_0_dot_q8_avx2(int64_t n, const void *row,
                                            const nt_q8_rows *x, int m, float *out) {
    nt_block32_dot_q8_avx2(n, row, q4_0_layout, x, m, out);
}

/*
 * Eight blocks per step: eight integer dot products (VNNI), summed into
 * the eight lanes of one vector, then the eight scales (gathered) and the
 * offsets as three vector operations. Per block that leaves the nibble
 * unpacking and one dpbusd; decoding is then bound by memory, not by
 * per-block scalar work.
 */
NT_TARGET_AVX512VNNI static void q4_0_dot_q8_vnni(int64_t n, const void *row,
                                                  const nt_q8_rows *x, int m, float *out) {
    const block_q4_0 *b = row;
    int64_t nb = n / 32, n8 = nb / 8 * 8;
    for (int r = 0; r < m; r++) {
        const int8_t *xq = x->q + (int64_t)r * x->ld;
        const float *xd = x->d + (int64_t)r * x->ld / 32;
        const float *xds = x->ds + (int64_t)r * x->ld / 32;
        __m256 acc = _mm256_setzero_ps(), off = _mm256_setzero_ps();
        for (int64_t i = 0; i < n8; i += 8) {
            __m256i dots[8];
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++)
                dots[k] = _mm256_dpbusd_epi32(
                    _mm256_setzero_si256(), nt_nibbles_avx2(b[i + k].qs),
                    _mm256_loadu_si256((const __m256i *)(xq + (i + k) * 32)));
            nt_blocks8_scale(dots, &b[i].d, sizeof(block_q4_0), xd + i, xds + i, &acc, &off);
        }
        float sum = nt_hsum_ps_avx2(acc) - 8.0f * nt_hsum_ps_avx2(off);
        for (int64_t i = n8; i < nb; i++) {
            int32_t dot = nt_hsum_epi32_avx2(nt_dot_u8s8_avx2(
                nt_nibbles_avx2(b[i].qs), _mm256_loadu_si256((const __m256i *)(xq + i * 32))));
            sum += nt_f16_to_f32_f16c(b[i].d) * (xd[i] * (float)dot - 8.0f * xds[i]);
        }
        out[r] += sum;
    }
}
#endif

const nt_dtype_traits nt_dtype_q4_0_traits = {
    .name = "q4_0",
    .block_elems = 32,
    .block_bytes = sizeof(block_q4_0),
    .gguf_type = 2,
    .to_f32 = {[NT_ISA_GENERIC] = q4_0_to_f32_generic},
    .dot_q8 = {
        [NT_ISA_GENERIC] = q4_0_dot_q8_generic,
#if NT_HAVE_X86
        [NT_ISA_AVX2] = q4_0_dot_q8_avx2,
        [NT_ISA_AVX512VNNI] = q4_0_dot_q8_vnni,
#endif
    },
    .from_f32 = q4_0_from_f32,
    .to_u8 = q4_0_to_u8,
    .u8_group = 32,
};
