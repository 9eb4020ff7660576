/*
 * q8_0.c - GGML's Q8_0: blocks of 32 weights, w = d * q with a half-float
 * scale d and int8 q. 34 bytes per block (8.5 bits per weight).
 */
#include "types/dtype.h"

typedef struct block_q8_0 {
    uint16_t d;     /* f16 */
    int8_t q[32];
} block_q8_0;

static void q8_0_to_f32_generic(const void *src, float *dst, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        float d = nt_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++)
            dst[i * 32 + j] = d * (float)b[i].q[j];
    }
}

const nt_dtype_traits nt_dtype_q8_0_traits = {
    .name = "q8_0",
    .block_elems = 32,
    .block_bytes = sizeof(block_q8_0),
    .gguf_type = 8,
    .to_f32 = {[NT_ISA_GENERIC] = q8_0_to_f32_generic},
};
