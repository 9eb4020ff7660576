/*
 * q5_1.c - GGML's Q5_1: blocks of 32 weights, w = d * q + m with 5-bit q
 * laid out as in Q5_0. 24 bytes per block.
 */
#include <stddef.h>

#include "types/block32.h"

typedef struct block_q5_1 {
    uint16_t d, m;    /* f16 */
    uint8_t qh[4];
    uint8_t qs[16];
} block_q5_1;

static void q5_1_to_f32_generic(const void *src, float *dst, int64_t n) {
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        float d = nt_f16_to_f32(b[i].d), m = nt_f16_to_f32(b[i].m);
        uint32_t qh = (uint32_t)b[i].qh[0] | (uint32_t)b[i].qh[1] << 8 |
                      (uint32_t)b[i].qh[2] << 16 | (uint32_t)b[i].qh[3] << 24;
        for (int j = 0; j < 16; j++) {
            int lo = (b[i].qs[j] & 15) | (int)((qh >> j) & 1) << 4;
            int hi = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            dst[i * 32 + j] = d * (float)lo + m;
            dst[i * 32 + j + 16] = d * (float)hi + m;
        }
    }
}

/* GGML's reference rounding: the block's range [min, max] in 31 steps. */
static void q5_1_from_f32(const float *src, void *dst, int64_t n) {
    block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++)
        nt_block32_write_range(src + i * 32, 31, &b[i].d, &b[i].m, b[i].qs, b[i].qh);
}

/* The reference: w = d * q + m, so sum w * xq = d * sum q * xq + m * sum xq,
   both sums exact per block. */
static float q5_1_block_dot_q8(const void *block, const int8_t *xq, float xd,
                               const int16_t *xs) {
    const block_q5_1 *b = block;
    int32_t acc = nt_block32_dot_nibbles(b->qs, xq) + nt_block32_dot_fifth_bits(b->qh, xq);
    return xd * (nt_f16_to_f32(b->d) * (float)acc +
                 nt_f16_to_f32(b->m) * (float)(xs[0] + xs[1]));
}

static void q5_1_dot_q8_generic(int64_t n, const void *row, const nt_q8_rows *x,
                                int m, float *out) {
    nt_block32_dot_q8(n, row, sizeof(block_q5_1), x, m, out, q5_1_block_dot_q8);
}

static const nt_block32_layout q5_1_layout = {
    sizeof(block_q5_1), offsetof(block_q5_1, qs), offsetof(block_q5_1, qh), offsetof(block_q5_1, m), 0};

static void q5_1_to_u8(const void *src, int64_t n, uint8_t *u, float *a, float *c) {
    nt_block32_to_u8(src, n, q5_1_layout, u, a, c);
}

#if NT_HAVE_X86
NT_TARGET_AVX2 static void q5_1_dot_q8_avx2(int64_t n, const void *row,
                                            const nt_q8_rows *x, int m, float *out) {
    nt_block32_dot_q8_avx2(n, row, q5_1_layout, x, m, out);
}
#endif

const nt_dtype_traits nt_dtype_q5_1_traits = {
    .name = "q5_1",
    .block_elems = 32,
    .block_bytes = sizeof(block_q5_1),
    .gguf_type = 7,
    .to_f32 = {[NT_ISA_GENERIC] = q5_1_to_f32_generic},
    .dot_q8 = {
        [NT_ISA_GENERIC] = q5_1_dot_q8_generic,
#if NT_HAVE_X86
        [NT_ISA_AVX2] = q5_1_dot_q8_avx2,
#endif
    },
    .to_u8 = q5_1_to_u8,
    .u8_group = 32,
    .from_f32 = q5_1_from_f32,
};
