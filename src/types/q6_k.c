/*
 * q6_k.c - GGML's Q6_K: super-blocks of 256 weights in 16 sub-blocks of 16,
 * w = d * scale_j * (q - 32) with 6-bit q and int8 scale_j. Each half of
 * 128 weights keeps the low 4 bits of its q in 64 bytes of ql (weights
 * l and l+64 in byte l's low and high nibble, l < 64) and the top 2 bits in
 * 32 bytes of qh (weights l, l+32, l+64, l+96 in bits 0-1, 2-3, 4-5, 6-7
 * of byte l). 210 bytes per 256 weights (6.5625 bits per weight).
 */
#include "types/kquant.h"

typedef struct block_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;           /* f16 */
} block_q6_k;

static void q6_k_to_f32_generic(const void *src, float *dst, int64_t n) {
    const block_q6_k *b = src;
    for (int64_t i = 0; i < n / NT_QK_K; i++, dst += NT_QK_K) {
        float d = nt_f16_to_f32(b[i].d);
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = b[i].ql + half * 64, *qh = b[i].qh + half * 32;
            const int8_t *sc = b[i].scales + half * 8;
            float *y = dst + half * 128;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

const nt_dtype_traits nt_dtype_q6_k_traits = {
    .name = "q6_k",
    .block_elems = NT_QK_K,
    .block_bytes = sizeof(block_q6_k),
    .gguf_type = 14,
    .to_f32 = {[NT_ISA_GENERIC] = q6_k_to_f32_generic},
};
