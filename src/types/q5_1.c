/*
 * q5_1.c - GGML's Q5_1: blocks of 32 weights, w = d * q + m with 5-bit q
 * laid out as in Q5_0. 24 bytes per block.
 */
#include "types/dtype.h"

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

const nt_dtype_traits nt_dtype_q5_1_traits = {
    .name = "q5_1",
    .block_elems = 32,
    .block_bytes = sizeof(block_q5_1),
    .gguf_type = 7,
    .to_f32 = {[NT_ISA_GENERIC] = q5_1_to_f32_generic},
};
