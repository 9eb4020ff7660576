/*
 * q4_k.c - GGML's Q4_K: super-blocks of 256 weights in 8 sub-blocks of 32,
 * w = d * scale_j * q - dmin * min_j with 4-bit q and 6-bit scale_j, min_j
 * (see kquant.h). Each 32 bytes of qs hold two sub-blocks: the first in
 * the low nibbles, the next in the high nibbles. 144 bytes per 256 weights
 * (4.5 bits per weight).
 */
#include "types/kquant45.h"

typedef struct block_q4_k {
    uint16_t d, dmin;     /* f16 */
    uint8_t scales[12];
    uint8_t qs[128];
} block_q4_k;

/* GGML's reference quantizer (kquant_search.c); q packed two sub-blocks
   per 32 bytes. */
static void q4_k_from_f32(const float *src, void *dst, int64_t n) {
    block_q4_k *b = dst;
    for (int64_t i = 0; i < n / NT_QK_K; i++, src += NT_QK_K) {
        uint8_t q[NT_QK_K];
        nt_kquant_quantize_scale_min(src, 15, -1.0f, 20, b[i].scales, &b[i].d,
                                     &b[i].dmin, q);
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++)
                b[i].qs[j * 32 + l] = (uint8_t)(q[j * 64 + l] | q[j * 64 + 32 + l] << 4);
    }
}

/* Where super-block b keeps its fields. */
static inline nt_kq45_block q4_k_describe(const block_q4_k *b) {
    return (nt_kq45_block){b->d, b->dmin, b->scales, b->qs, NULL};
}

NT_KQ45_ROW_FUNCTIONS(q4_k, block_q4_k, q4_k_describe)

const nt_dtype_traits nt_dtype_q4_k_traits = {
    .name = "q4_k",
    .block_elems = NT_QK_K,
    .block_bytes = sizeof(block_q4_k),
    .gguf_type = 12,
    .to_f32 = {[NT_ISA_GENERIC] = q4_k_to_f32_generic},
    .to_u8 = {[NT_ISA_GENERIC] = q4_k_to_u8},
    .u8_group = 32,
    .gemm_min_rows = 32,
    .dot_q8 = NT_KQ45_DOT_Q8(q4_k),
    .from_f32 = q4_k_from_f32,
};
