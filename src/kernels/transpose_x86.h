/*
 * transpose_x86.h - a 16x16 transpose of 32-bit elements in AVX-512
 * registers, for packing rows into k-major panels (f32.c's float panels,
 * gemm_q8.c's panels of four-byte groups).
 *
 * Four rounds. Round b pairs rows r and r | 2^b and swaps bit b of the row
 * index with bit b of the column index; after all four, element (r, c)
 * sits at (c, r). Each round is one two-source permute per output row: the
 * low row takes column c from itself where bit b of c is 0, else column
 * c - 2^b of the high row (index 16 + ...); the high row takes column
 * c + 2^b of the low row where bit b of c is 0, else its own column c.
 */
#ifndef NT_KERNELS_TRANSPOSE_X86_H
#define NT_KERNELS_TRANSPOSE_X86_H

#include <immintrin.h>
#include <stdint.h>

#include "kernels/isa.h"

/* Index vectors for round b: [b][0] builds the low row, [b][1] the high. */
static const int32_t nt_transpose16_idx[4][2][16] = {
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
     {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
     {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
     {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
     {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
};

NT_TARGET_AVX512 static inline void nt_transpose16_epi32(__m512i r[16]) {
    for (int b = 0; b < 4; b++) {
        int bit = 1 << b;
        __m512i lo_idx = _mm512_loadu_si512(nt_transpose16_idx[b][0]);
        __m512i hi_idx = _mm512_loadu_si512(nt_transpose16_idx[b][1]);
        for (int row = 0; row < 16; row++) {
            if (row & bit)
                continue;
            __m512i lo = r[row], hi = r[row | bit];
            r[row] = _mm512_permutex2var_epi32(lo, lo_idx, hi);
            r[row | bit] = _mm512_permutex2var_epi32(lo, hi_idx, hi);
        }
    }
}

#endif
