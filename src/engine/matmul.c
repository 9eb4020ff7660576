/*
 * matmul.c - see matmul.h.
 *
 * Two strategies, chosen by the number of activation rows m:
 *
 *   m < GEMM_MIN_ROWS (decoding): each thread takes a range of weight rows
 *   and computes every dot product of each row with the m activation rows,
 *   reading each weight once. The cost is memory bandwidth.
 *
 *   otherwise (prefill): each thread takes panels of NT_GEMM_NR weight rows.
 *   A panel is converted to float32 and transposed k-major in blocks of
 *   NT_MATMUL_KC columns (it then sits in L2), and the GEMM tile kernel
 *   sweeps all m rows of x past it. The conversion is paid once per panel,
 *   not once per activation row.
 */
#include "engine/matmul.h"

#define GEMM_MIN_ROWS 4

typedef struct matmul_job {
    const nt_exec *ex;
    const float *x;
    int m;
    int64_t ldx;
    const nt_q8_rows *xq;  /* x rounded to 8 bits, when a target needs it */
    const nt_matmul_target *targets;
    int n_targets;
    int64_t total_units;  /* sum over targets of their rows in `grain`s */
    int64_t grain;        /* weight rows per unit of work */
} matmul_job;

/* Maps a unit index to (target, first row of that unit). */
static const nt_matmul_target *locate(const matmul_job *job, int64_t unit,
                                      int64_t *row) {
    for (int t = 0; t < job->n_targets; t++) {
        int64_t units = (job->targets[t].w->rows + job->grain - 1) / job->grain;
        if (unit < units) {
            *row = unit * job->grain;
            return &job->targets[t];
        }
        unit -= units;
    }
    return NULL;
}

static const float *row_as_f32(const nt_kernels *k, const nt_matrix *w,
                               int64_t row, int64_t col, int64_t n, float *buf) {
    const char *p = (const char *)w->data + (uint64_t)row * w->row_bytes;
    if (w->dtype == NT_DTYPE_F32)
        return (const float *)p + col;
    k->to_f32[w->dtype](p + nt_dtype_bytes(w->dtype, (uint64_t)col), buf, n);
    return buf;
}

/* The decode strategy for rows [r0, r1) of one target. */
static void dot_rows_range(const matmul_job *job, const nt_matmul_target *t,
                           int64_t r0, int64_t r1, float *scratch) {
    const nt_kernels *k = job->ex->kernels;
    const nt_matrix *w = t->w;
    float *buf = scratch, *acc = scratch + NT_MATMUL_KC;
    int64_t K = w->cols, N = w->rows;
    nt_dot_rows_fn native = k->dtype_dot_rows[w->dtype];
    nt_dot_q8_fn dot_q8 = job->xq ? k->dtype_dot_q8[w->dtype] : NULL;
    for (int64_t r = r0; r < r1; r++) {
        for (int i = 0; i < job->m; i++)
            acc[i] = 0.0f;
        if (dot_q8) {
            dot_q8(K, (const char *)w->data + (uint64_t)r * w->row_bytes, job->xq,
                   job->m, acc);
        } else if (native) {
            native(K, (const char *)w->data + (uint64_t)r * w->row_bytes, job->x,
                   job->ldx, job->m, acc);
        } else {
            for (int64_t c = 0; c < K; c += NT_MATMUL_KC) {
                int64_t n = K - c < NT_MATMUL_KC ? K - c : NT_MATMUL_KC;
                k->dot_rows(n, row_as_f32(k, w, r, c, n, buf), job->x + c, job->ldx,
                            job->m, acc);
            }
        }
        float b = t->bias ? t->bias[r] : 0.0f;
        for (int i = 0; i < job->m; i++)
            t->y[(int64_t)i * N + r] = acc[i] + b;
    }
}

/* The prefill strategy for one panel: rows [r0, r0 + NT_GEMM_NR). */
static void gemm_panel(const matmul_job *job, const nt_matmul_target *t,
                       int64_t r0, float *scratch) {
    const nt_kernels *k = job->ex->kernels;
    const nt_matrix *w = t->w;
    float *panel = scratch, *rows_f32 = scratch + NT_MATMUL_KC * NT_GEMM_NR;
    int64_t K = w->cols, N = w->rows;
    int nr = (int)(N - r0 < NT_GEMM_NR ? N - r0 : NT_GEMM_NR);
    int mr = k->gemm_mr;
    for (int64_t c = 0; c < K; c += NT_MATMUL_KC) {
        int64_t kc = K - c < NT_MATMUL_KC ? K - c : NT_MATMUL_KC;
        const float *rows[NT_GEMM_NR];
        for (int j = 0; j < NT_GEMM_NR; j++)
            rows[j] = j < nr ? row_as_f32(k, w, r0 + j, c, kc,
                                          rows_f32 + (int64_t)j * NT_MATMUL_KC)
                             : NULL;
        k->pack_panel(rows, kc, panel);
        for (int i = 0; i < job->m; i += mr) {
            int n_rows = job->m - i < mr ? job->m - i : mr;
            k->gemm_tile(n_rows, kc, job->x + (int64_t)i * job->ldx + c, job->ldx,
                         panel, t->y + (int64_t)i * N + r0, N, nr, c > 0);
        }
    }
    if (t->bias)
        for (int i = 0; i < job->m; i++)
            for (int j = 0; j < nr; j++)
                t->y[(int64_t)i * N + r0 + j] += t->bias[r0 + j];
}

static void matmul_task(void *arg, int ith, int nth) {
    const matmul_job *job = arg;
    float *scratch = job->ex->scratch + (size_t)ith * job->ex->scratch_stride;
    int64_t u0, u1;
    nt_split_range(job->total_units, 1, ith, nth, &u0, &u1);
    for (int64_t u = u0; u < u1;) {
        int64_t row = 0;
        const nt_matmul_target *t = locate(job, u, &row);
        if (job->m >= GEMM_MIN_ROWS) {
            gemm_panel(job, t, row, scratch);
            u++;
            continue;
        }
        /* Take this target's consecutive units in one go. */
        int64_t end_row = row;
        while (u < u1) {
            int64_t r = 0;
            if (locate(job, u, &r) != t)
                break;
            end_row = r + job->grain;
            u++;
        }
        if (end_row > t->w->rows)
            end_row = t->w->rows;
        dot_rows_range(job, t, row, end_row, scratch);
    }
}

/*
 * Decoding with quantized weights multiplies them by x rounded to 8 bits
 * (see dtype.h), as llama.cpp does: integer dot products are several times
 * faster than widening every weight to float. x is rounded once here, on
 * the calling thread (it is tiny next to the weights), for all targets.
 */
static int quantize_x(const nt_exec *ex, const float *x, int m, int64_t ldx,
                      const nt_matmul_target *targets, int n_targets,
                      nt_q8_rows *xq) {
    const nt_kernels *k = ex->kernels;
    int64_t K = targets[0].w->cols;
    int needed = 0;
    for (int t = 0; t < n_targets; t++)
        needed |= k->dtype_dot_q8[targets[t].w->dtype] != NULL;
    if (!needed || K % NT_Q8_BLOCK != 0 || (size_t)(K * m) > ex->xq_cap)
        return 0;
    for (int i = 0; i < m; i++)
        k->quantize_q8(x + (int64_t)i * ldx, K, ex->xq + (int64_t)i * K,
                       ex->xq_d + (int64_t)i * K / 32, ex->xq_s + (int64_t)i * K / 16);
    *xq = (nt_q8_rows){ex->xq, ex->xq_d, ex->xq_s, K};
    return 1;
}

void nt_matmul(const nt_exec *ex, const float *x, int m, int64_t ldx,
               const nt_matmul_target *targets, int n_targets) {
    nt_q8_rows xq;
    matmul_job job = {ex, x, m, ldx, NULL, targets, n_targets, 0,
                      m >= GEMM_MIN_ROWS ? NT_GEMM_NR : 16};
    if (m < GEMM_MIN_ROWS && quantize_x(ex, x, m, ldx, targets, n_targets, &xq))
        job.xq = &xq;
    for (int t = 0; t < n_targets; t++)
        job.total_units += (targets[t].w->rows + job.grain - 1) / job.grain;
    nt_pool_run(ex->pool, matmul_task, &job);
}
