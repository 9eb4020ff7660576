/*
 * kernels.h - the float32 building blocks of the forward pass, per
 * instruction set, and the resolved set a context runs with.
 *
 * Matrix products come in two shapes:
 *
 *   dot_rows   one weight row against a few activation rows. Decoding one
 *              token is all dot products; the cost is reading the weights.
 *   gemm_tile  a tile of up to gemm_mr activation rows times a packed panel
 *              of NT_GEMM_NR weight rows converted to float32 and laid out
 *              k-major ("outer product" form, no horizontal sums). Prefill
 *              is compute-bound, and the panel, packed once, is reused by
 *              every tile of the batch.
 */
#ifndef NT_KERNELS_KERNELS_H
#define NT_KERNELS_KERNELS_H

#include <stdint.h>

#include "kernels/isa.h"
#include "types/dtype.h"

/* Weight rows per packed panel: two AVX-512 or four AVX2 registers wide. */
#define NT_GEMM_NR 32

/* out[i] += dot(w[0..n), x + i*ldx [0..n)) for i < m */
typedef void (*nt_f32_dot_rows_fn)(int64_t n, const float *w, const float *x,
                                   int64_t ldx, int m, float *out);

/*
 * y[i][j] (+)= sum_k x[i*ldx + k] * panel[k*NT_GEMM_NR + j]
 * for i < m (m <= gemm_mr) and j < nr (nr <= NT_GEMM_NR);
 * "+=" when accumulate, "=" otherwise.
 */
typedef void (*nt_gemm_tile_fn)(int m, int64_t k, const float *x, int64_t ldx,
                                const float *panel, float *y, int64_t ldy,
                                int nr, int accumulate);

/*
 * panel[p * NT_GEMM_NR + j] = rows[j][p] for p < k, j < NT_GEMM_NR, on
 * 32-bit elements: the transpose that packs weight rows (already float32)
 * for gemm_tile, and the four-byte groups and scales of an int8 panel
 * (nt_q8_panel_pack). rows[j] == NULL stands for a row of zeros (past the
 * matrix's end). Elements are moved as bits, never as float values.
 */
typedef void (*nt_pack_panel_fn)(const void *const *rows, int64_t k, void *panel);

typedef float (*nt_f32_dot_fn)(int64_t n, const float *a, const float *b);
/* y += alpha * x */
typedef void (*nt_f32_axpy_fn)(int64_t n, float alpha, const float *x,
                               float *y);
/* x[i] = f(x[i]) for i < n */
typedef void (*nt_f32_map_fn)(int64_t n, float *x);

/*
 * The integer GEMM of quantized weights (gemm_q8.c). A panel holds
 * NT_Q8_PANEL_ROWS weight rows of k weights, unpacked by their type's to_u8
 * into unsigned bytes u with a scale a and offset c per group of `group`
 * weights, interleaved four bytes at a time:
 *   u[((kk / 4) * NT_Q8_PANEL_ROWS + j) * 4 + kk % 4] = weight kk of row j
 *   a[g * NT_Q8_PANEL_ROWS + j], c[g * NT_Q8_PANEL_ROWS + j]   (group g)
 * u must be 64-byte aligned.
 */
#define NT_Q8_PANEL_ROWS 32
#define NT_Q8_GEMM_MR 8

typedef struct nt_q8_panel {
    const uint8_t *u;
    const float *a, *c;
    int64_t k;
    int group;  /* 16 or 32 */
} nt_q8_panel;

/* y[i * ldy + j] = dot(activation row row0 + i, panel row j), i < m <=
 * NT_Q8_GEMM_MR, j < nr. */
typedef void (*nt_gemm_q8_tile_fn)(int m, const nt_q8_rows *x, int64_t row0,
                                   const nt_q8_panel *p, float *y, int64_t ldy,
                                   int nr);

void nt_gemm_q8_tile_reference(int m, const nt_q8_rows *x, int64_t row0,
                               const nt_q8_panel *p, float *y, int64_t ldy, int nr);

/* Builds a panel (pu: NT_Q8_PANEL_ROWS * k bytes, pa and pc: NT_Q8_PANEL_ROWS
 * * k / group floats) from nr <= NT_Q8_PANEL_ROWS rows unpacked by to_u8,
 * row j at u + j * k, a + j * k / group, with the context's pack_panel
 * (the layout is that transpose, on four-byte groups). */
void nt_q8_panel_pack(nt_pack_panel_fn pack, const uint8_t *u, const float *a,
                      const float *c, int64_t k, int group, int nr, nt_q8_panel *p,
                      uint8_t *pu, float *pa, float *pc);

/* Per-instruction-set tables (NULL: fall back to a lower set). */
extern const nt_gemm_q8_tile_fn nt_gemm_q8_tile_table[NT_ISA_COUNT];
extern const nt_f32_dot_rows_fn nt_f32_dot_rows_table[NT_ISA_COUNT];
extern const nt_gemm_tile_fn nt_gemm_tile_table[NT_ISA_COUNT];
extern const int nt_gemm_mr_table[NT_ISA_COUNT];
extern const nt_pack_panel_fn nt_pack_panel_table[NT_ISA_COUNT];
extern const nt_f32_dot_fn nt_f32_dot_table[NT_ISA_COUNT];
extern const nt_f32_axpy_fn nt_f32_axpy_table[NT_ISA_COUNT];
extern const nt_f32_map_fn nt_f32_relu_squared_table[NT_ISA_COUNT];

/* Everything a context calls, resolved once for its instruction set. */
typedef struct nt_kernels {
    nt_isa isa;
    nt_f32_dot_rows_fn dot_rows;
    nt_gemm_tile_fn gemm_tile;
    int gemm_mr;
    nt_pack_panel_fn pack_panel;
    nt_f32_dot_fn dot;
    nt_f32_axpy_fn axpy;
    nt_f32_map_fn relu_squared;
    nt_to_f32_fn to_f32[NT_DTYPE_COUNT];
    nt_dot_rows_fn dtype_dot_rows[NT_DTYPE_COUNT]; /* NULL: convert + dot_rows */
    nt_dot_q8_fn dtype_dot_q8[NT_DTYPE_COUNT];     /* NULL: not quantized */
    nt_to_u8_fn to_u8[NT_DTYPE_COUNT];             /* NULL: no integer prefill */
    nt_quantize_q8_fn quantize_q8;
    nt_gemm_q8_tile_fn gemm_q8_tile;               /* NULL: prefill in float */
} nt_kernels;

void nt_kernels_init(nt_kernels *k, nt_isa isa);

#endif
