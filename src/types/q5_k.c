/*
 * q5_k.c - GGML's Q5_K: Q4_K's layout plus a fifth bit per weight. Bit j
 * of qh[l] is the fifth bit of weight l of sub-block j. 176 bytes per 256
 * weights (5.5 bits per weight).
 */
#include "types/kquant45.h"

typedef struct block_q5_k {
    uint16_t d, dmin;     /* f16 */
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} block_q5_k;

/* GGML's reference quantizer (kquant_search.c): the low 4 bits as in
   q4_k, the fifth bit of sub-block j's weight l in bit j of qh[l]. */
static void q5_k_from_f32(const float *src, void *dst, int64_t n) {
    block_q5_k *b = dst;
    for (int64_t i = 0; i < n / NT_QK_K; i++, src += NT_QK_K) {
        uint8_t q[NT_QK_K];
        nt_kquant_quantize_scale_min(src, 31, -0.5f, 15, b[i].scales, &b[i].d,
                                     &b[i].dmin, q);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0; j < 8; j++)
            for (int l = 0; l < 32; l++)
                b[i].qh[l] |= (uint8_t)((q[j * 32 + l] >> 4) << j);
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++)
                b[i].qs[j * 32 + l] =
                    (uint8_t)((q[j * 64 + l] & 15) | (q[j * 64 + 32 + l] & 15) << 4);
    }
}

/* Where super-block b keeps its fields. */
static inline nt_kq45_block q5_k_describe(const block_q5_k *b) {
    return (nt_kq45_block){b->d, b->dmin, b->scales, b->qs, b->qh};
}

NT_KQ45_ROW_FUNCTIONS(q5_k, block_q5_k, q5_k_describe)

const nt_dtype_traits nt_dtype_q5_k_traits = {
    .name = "q5_k",
    .block_elems = NT_QK_K,
    .block_bytes = sizeof(block_q5_k),
    .gguf_type = 13,
    .to_f32 = {[NT_ISA_GENERIC] = q5_k_to_f32_generic},
    .to_u8 = {[NT_ISA_GENERIC] = q5_k_to_u8},
    .u8_group = 32,
    .gemm_min_rows = 32,
    .dot_q8 = NT_KQ45_DOT_Q8(q5_k),
    .from_f32 = q5_k_from_f32,
};
