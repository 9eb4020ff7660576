/*
 * q8_act.c - activations rounded to 8 bits for the integer dot products
 * (the format is described in dtype.h).
 */
#include <math.h>

#include "types/dtype.h"

static void quantize_q8_generic(const float *x, int64_t n, int8_t *q, float *d,
                                int16_t *s) {
    for (int64_t b = 0; b < n / NT_Q8_BLOCK; b++) {
        const float *xb = x + b * NT_Q8_BLOCK;
        float amax = 0.0f;
        for (int j = 0; j < NT_Q8_BLOCK; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        float scale = amax / 127.0f;
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        d[b] = scale;
        for (int h = 0; h < 2; h++) {
            int sum = 0;
            for (int j = h * 16; j < h * 16 + 16; j++) {
                int v = (int)lrintf(xb[j] * inv);
                q[b * NT_Q8_BLOCK + j] = (int8_t)v;
                sum += v;
            }
            s[b * 2 + h] = (int16_t)sum;
        }
    }
}

const nt_quantize_q8_fn nt_quantize_q8_table[NT_ISA_COUNT] = {
    [NT_ISA_GENERIC] = quantize_q8_generic,
};
