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

#endif
