/*
 * kquant.h - what GGML's "k-quants" (q4_k, q5_k, q6_k) share: super-blocks
 * of 256 weights split into sub-blocks, each with its own small integer
 * scale, which a float per super-block scales in turn.
 */
#ifndef NT_TYPES_KQUANT_H
#define NT_TYPES_KQUANT_H

#include "types/dtype.h"

#define NT_QK_K 256

/*
 * q4_k and q5_k: 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit
 * min, packed into 12 bytes: bytes 0-3 hold scales 0-3 (low 6 bits), bytes
 * 4-7 mins 0-3; scales and mins 4-7 keep their low 4 bits in bytes 8-11
 * (scale low nibble, min high nibble) and their top 2 bits in the spare
 * top bits of bytes 0-3 (scales) and 4-7 (mins).
 */
static inline void nt_kquant_scale_min(const uint8_t *s, int j, int *scale,
                                       int *min) {
    if (j < 4) {
        *scale = s[j] & 63;
        *min = s[j + 4] & 63;
    } else {
        *scale = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* ---- writing k-quants exactly as llama.cpp does (kquant_search.c) ------- */

/*
 * Round to nearest, ties to even, the way GGML's k-quant code rounds:
 * adding 1.5 * 2^23 leaves no room for a fraction in the float's mantissa,
 * so the addition itself rounds (to nearest even, the FPU's default) and
 * the integer is left in the low mantissa bits, offset by 2^22. Exact for
 * |x| < 2^22; other inputs give GGML's garbage, which is what a byte-exact
 * copy of its files needs too.
 */
static inline int nt_nearest_int(float x) {
    float shifted = x + 12582912.0f;
    return (int)(nt_f32_to_bits(shifted) & 0x7fffffu) - 0x400000;
}

/*
 * The scale half of writing a q4_k or q5_k super-block (GGML's reference
 * quantizer, no importance weights): fits each sub-block of 32 values of
 * x[0..256) to scale * q - min with integer q in [0, nmax], searching
 * nstep + 1 scales from (nmax + rmin) / range upwards in steps of 0.1 / range;
 * rounds the 8 scales and 8 mins to 6 bits relative to the largest of
 * each, packed into scales[12] (see nt_kquant_scale_min) under the
 * half-float super-block factors *d and *dmin; and leaves in q[0..256) each
 * value rounded against its sub-block's rounded scale and min.
 */
void nt_kquant_quantize_scale_min(const float *x, int nmax, float rmin, int nstep,
                                  uint8_t scales[12], uint16_t *d, uint16_t *dmin,
                                  uint8_t q[NT_QK_K]);

/*
 * GGML's fit of n values to scale * (q - nmax) with q in [0, 2 * nmax)
 * (q6_k's sub-blocks of 16, no importance weights): tries 19 scales near
 * max|x| / nmax and keeps the one that minimizes the x^2-weighted squared
 * error. Writes q to L and returns the scale; 0 (and q = 0) for an all-zero
 * block.
 */
float nt_kquant_fit_symmetric(int n, int nmax, const float *x, int8_t *L);

#endif
