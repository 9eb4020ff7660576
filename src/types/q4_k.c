/*
 * q4_k.c - GGML's Q4_K: super-blocks of 256 weights in 8 sub-blocks of 32,
 * w = d * scale_j * q - dmin * min_j with 4-bit q and 6-bit scale_j, min_j
 * (see kquant.h). Each 32 bytes of qs hold two sub-blocks: the first in
 * the low nibbles, the next in the high nibbles. 144 bytes per 256 weights
 * (4.5 bits per weight).
 */
#include "types/kquant.h"

typedef struct block_q4_k {
    uint16_t d, dmin;     /* f16 */
    uint8_t scales[12];
    uint8_t qs[128];
} block_q4_k;

static void q4_k_to_f32_generic(const void *src, float *dst, int64_t n) {
    const block_q4_k *b = src;
    for (int64_t i = 0; i < n / NT_QK_K; i++, dst += NT_QK_K) {
        float d = nt_f16_to_f32(b[i].d), dmin = nt_f16_to_f32(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            nt_kquant_scale_min(b[i].scales, j, &sc, &m);
            const uint8_t *q = b[i].qs + (j / 2) * 32;
            int shift = (j & 1) * 4;
            for (int l = 0; l < 32; l++)
                dst[j * 32 + l] = d * (float)sc * (float)((q[l] >> shift) & 15) -
                                  dmin * (float)m;
        }
    }
}

const nt_dtype_traits nt_dtype_q4_k_traits = {
    .name = "q4_k",
    .block_elems = NT_QK_K,
    .block_bytes = sizeof(block_q4_k),
    .gguf_type = 12,
    .to_f32 = {[NT_ISA_GENERIC] = q4_k_to_f32_generic},
};
