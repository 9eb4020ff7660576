/*
 * q4_1.c - GGML's Q4_1: blocks of 32 weights, w = d * q + m with half-float
 * d and m and 4-bit q, nibbles laid out as in Q4_0. 20 bytes per block.
 */
#include "types/dtype.h"

typedef struct block_q4_1 {
    uint16_t d, m;    /* f16 */
    uint8_t qs[16];
} block_q4_1;

static void q4_1_to_f32_generic(const void *src, float *dst, int64_t n) {
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        float d = nt_f16_to_f32(b[i].d), m = nt_f16_to_f32(b[i].m);
        for (int j = 0; j < 16; j++) {
            dst[i * 32 + j] = d * (float)(b[i].qs[j] & 15) + m;
            dst[i * 32 + j + 16] = d * (float)(b[i].qs[j] >> 4) + m;
        }
    }
}

const nt_dtype_traits nt_dtype_q4_1_traits = {
    .name = "q4_1",
    .block_elems = 32,
    .block_bytes = sizeof(block_q4_1),
    .gguf_type = 3,
    .to_f32 = {[NT_ISA_GENERIC] = q4_1_to_f32_generic},
};
