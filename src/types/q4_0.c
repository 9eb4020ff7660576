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

/* GGML's reference rounding: the value of largest magnitude maps to -8. */
static void q4_0_from_f32(const float *src, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        const float *x = src + i * 32;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (x[j] > amax || -x[j] > amax) {
                amax = x[j] > 0 ? x[j] : -x[j];
                max = x[j];
            }
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = nt_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int lo = (int)(int8_t)(x[j] * id + 8.5f), hi = (int)(int8_t)(x[j + 16] * id + 8.5f);
            lo = lo < 15 ? lo : 15;
            hi = hi < 15 ? hi : 15;
            b[i].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

/* The reference: sum (q - 8) * xq = sum q * xq - 8 * sum xq, per block. */
static void q4_0_dot_q8_generic(int64_t n, const void *row, const nt_q8_rows *x,
                                int m, float *out) {
    const block_q4_0 *b = row;
    for (int r = 0; r < m; r++) {
        const int8_t *xq = x->q + (int64_t)r * x->ld;
        const float *xd = x->d + (int64_t)r * x->ld / 32;
        const int16_t *xs = x->s + (int64_t)r * x->ld / 16;
        float sum = 0.0f;
        for (int64_t i = 0; i < n / 32; i++) {
            int32_t acc = 0;
            for (int j = 0; j < 16; j++)
                acc += (int32_t)(b[i].qs[j] & 15) * xq[i * 32 + j] +
                       (int32_t)(b[i].qs[j] >> 4) * xq[i * 32 + j + 16];
            acc -= 8 * ((int32_t)xs[2 * i] + xs[2 * i + 1]);
            sum += nt_f16_to_f32(b[i].d) * xd[i] * (float)acc;
        }
        out[r] += sum;
    }
}

const nt_dtype_traits nt_dtype_q4_0_traits = {
    .name = "q4_0",
    .block_elems = 32,
    .block_bytes = sizeof(block_q4_0),
    .gguf_type = 2,
    .to_f32 = {[NT_ISA_GENERIC] = q4_0_to_f32_generic},
    .dot_q8 = {[NT_ISA_GENERIC] = q4_0_dot_q8_generic},
    .from_f32 = q4_0_from_f32,
};
