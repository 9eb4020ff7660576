/*
 * q4_0.c - GGML's Q4_0: blocks of 32 weights, w = d * (q - 8) with a
 * half-float scale and 4-bit q. Byte j holds weight j in its low nibble and
 * weight j + 16 in its high nibble. 18 bytes per block (4.5 bits per weight).
 */
#include "types/dtype.h"

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

const nt_dtype_traits nt_dtype_q4_0_traits = {
    .name = "q4_0",
    .block_elems = 32,
    .block_bytes = sizeof(block_q4_0),
    .gguf_type = 2,
    .to_f32 = {[NT_ISA_GENERIC] = q4_0_to_f32_generic},
};
