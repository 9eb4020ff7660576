/*
 * matmul.h - y = x * W^T for the model's weight matrices, on all threads.
 *
 * x is m rows of float32 activations; W is a weight matrix in any storage
 * dtype (rows = output features). Several products that share the same x
 * (q, k and v) run as one parallel step, their output rows dealt out to the
 * threads together.
 */
#ifndef NT_ENGINE_MATMUL_H
#define NT_ENGINE_MATMUL_H

#include "kernels/kernels.h"
#include "model/model.h"
#include "threadpool.h"

/* Columns of a weight row converted at a time (and the GEMM's k-block). */
#define NT_MATMUL_KC 1024

/* Floats of per-thread scratch nt_matmul needs for weight rows of k
 * columns: the float panel, or an int8 panel, the rows it is packed from
 * (NT_Q8_PANEL_ROWS * k bytes each) and four arrays of scales (groups of
 * 16 at the smallest: NT_Q8_PANEL_ROWS * k / 16 floats each). */
#define NT_MATMUL_Q8_SCRATCH_FLOATS(k) ((size_t)(k) * NT_Q8_PANEL_ROWS * 3 / 4 + 64)
#define NT_MATMUL_SCRATCH_FLOATS(k)                                              \
    (NT_MATMUL_Q8_SCRATCH_FLOATS(k) > 2 * NT_MATMUL_KC * NT_GEMM_NR + 64          \
         ? NT_MATMUL_Q8_SCRATCH_FLOATS(k)                                         \
         : (size_t)2 * NT_MATMUL_KC * NT_GEMM_NR + 64)

typedef struct nt_exec {
    nt_pool *pool;
    const nt_kernels *kernels;
    float *scratch;           /* n_threads * scratch_stride floats */
    size_t scratch_stride;    /* floats per thread, >= NT_MATMUL_SCRATCH_FLOATS(widest k) */
    /* x rounded to 8 bits for quantized weights (dtype.h's format), room
       for xq_cap values: rows * cols of the largest x */
    int8_t *xq;
    float *xq_d;              /* xq_cap / 32 */
    int16_t *xq_s;            /* xq_cap / 16 */
    float *xq_ds;             /* xq_cap / 32 */
    size_t xq_cap;
} nt_exec;

typedef struct nt_matmul_target {
    const nt_matrix *w;
    const float *bias;  /* NULL: none */
    float *y;           /* m rows of w->rows floats */
} nt_matmul_target;

void nt_matmul(const nt_exec *ex, const float *x, int m, int64_t ldx,
               const nt_matmul_target *targets, int n_targets);

/* Which of matmul.c's two strategies a product takes. */
typedef enum nt_matmul_strategy {
    NT_MATMUL_BY_SIZE = 0, /* by m: the faster (what nt_matmul does) */
    NT_MATMUL_GEMM,        /* the prefill strategy, even for one row */
    NT_MATMUL_EACH_ROW     /* the decode strategy, one activation row per
                              kernel call, so that a row's result does not
                              depend on m or on its place among the rows */
} nt_matmul_strategy;

void nt_matmul_with(const nt_exec *ex, const float *x, int m, int64_t ldx,
                    const nt_matmul_target *targets, int n_targets,
                    nt_matmul_strategy strategy);

#endif
