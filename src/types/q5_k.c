/*
 * q5_k.c - GGML's Q5_K: Q4_K's layout plus a fifth bit per weight. Bit j
 * of qh[l] is the fifth bit of weight l of sub-block j. 176 bytes per 256
 * weights (5.5 bits per weight).
 */
#include "types/kquant.h"

typedef struct block_q5_k {
    uint16_t d, dmin;     /* f16 */
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} block_q5_k;

static void q5_k_to_f32_generic(const void *src, float *dst, int64_t n) {
    const block_q5_k *b = src;
    for (int64_t i = 0; i < n / NT_QK_K; i++, dst += NT_QK_K) {
        float d = nt_f16_to_f32(b[i].d), dmin = nt_f16_to_f32(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            nt_kquant_scale_min(b[i].scales, j, &sc, &m);
            const uint8_t *q = b[i].qs + (j / 2) * 32;
            int shift = (j & 1) * 4;
            for (int l = 0; l < 32; l++) {
                int v = ((q[l] >> shift) & 15) | ((b[i].qh[l] >> j) & 1) << 4;
                dst[j * 32 + l] = d * (float)sc * (float)v - dmin * (float)m;
            }
        }
    }
}

const nt_dtype_traits nt_dtype_q5_k_traits = {
    .name = "q5_k",
    .block_elems = NT_QK_K,
    .block_bytes = sizeof(block_q5_k),
    .gguf_type = 13,
    .to_f32 = {[NT_ISA_GENERIC] = q5_k_to_f32_generic},
};
