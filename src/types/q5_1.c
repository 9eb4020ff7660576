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

static const nt_block32_layout q5_1_layout = {
    sizeof(block_q5_1), offsetof(block_q5_1, qs), offsetof(block_q5_1, qh), offsetof(block_q5_1, m), 0};

static void q5_1_to_f32_generic(const void *src, float *dst, int64_t n) {
    nt_block32_to_f32(src, n, q5_1_layout, dst);
}

/* GGML's reference rounding: the block's range [min, max] in 31 steps. */
static void q5_1_from_f32(const float *src, void *dst, int64_t n) {
    block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++)
        nt_block32_write_range(src + i * 32, 31, &b[i].d, &b[i].m, b[i].qs, b[i].qh);
}

static void q5_1_dot_q8_generic(int64_t n, const void *row, const nt_q8_rows *x,
                                int m, float *out) {
    nt_block32_dot_q8(n, row, q5_1_layout, x, m, out);
}

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
    .to_u8 = {[NT_ISA_GENERIC] = q5_1_to_u8},
    .u8_group = 32,
    .gemm_min_rows = 12,
    .from_f32 = q5_1_from_f32,
};
