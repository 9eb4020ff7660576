/*
 * q4_1.c - GGML's Q4_1: blocks of 32 weights, w = d * q + m with half-float
 * d and m and 4-bit q, nibbles laid out as in Q4_0. 20 bytes per block.
 */
#include <stddef.h>

#include "types/block32.h"

typedef struct block_q4_1 {
    uint16_t d, m;    /* f16 */
    uint8_t qs[16];
} block_q4_1;

static const nt_block32_layout q4_1_layout = {
    sizeof(block_q4_1), offsetof(block_q4_1, qs), -1, offsetof(block_q4_1, m), 0};

static void q4_1_to_f32_generic(const void *src, float *dst, int64_t n) {
    nt_block32_to_f32(src, n, q4_1_layout, dst);
}

/* GGML's reference rounding: the block's range [min, max] in 15 steps. */
static void q4_1_from_f32(const float *src, void *dst, int64_t n) {
    block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++)
        nt_block32_write_range(src + i * 32, 15, &b[i].d, &b[i].m, b[i].qs, NULL);
}

static void q4_1_dot_q8_generic(int64_t n, const void *row, const nt_q8_rows *x,
                                int m, float *out) {
    nt_block32_dot_q8(n, row, q4_1_layout, x, m, out);
}

static void q4_1_to_u8(const void *src, int64_t n, uint8_t *u, float *a, float *c) {
    nt_block32_to_u8(src, n, q4_1_layout, u, a, c);
}

#if NT_HAVE_X86
NT_TARGET_AVX2 static void q4_1_dot_q8_avx2(int64_t n, const void *row,
                                            const nt_q8_rows *x, int m, float *out) {
    nt_block32_dot_q8_avx2(n, row, q4_1_layout, x, m, out);
}
#endif

const nt_dtype_traits nt_dtype_q4_1_traits = {
    .name = "q4_1",
    .block_elems = 32,
    .block_bytes = sizeof(block_q4_1),
    .gguf_type = 3,
    .to_f32 = {[NT_ISA_GENERIC] = q4_1_to_f32_generic},
    .dot_q8 = {
        [NT_ISA_GENERIC] = q4_1_dot_q8_generic,
#if NT_HAVE_X86
        [NT_ISA_AVX2] = q4_1_dot_q8_avx2,
#endif
    },
    .to_u8 = {[NT_ISA_GENERIC] = q4_1_to_u8},
    .u8_group = 32,
    .gemm_min_rows = 12,
    .from_f32 = q4_1_from_f32,
};
