/*
 * matmul.c - see matmul.h.
 *
 * Two strategies, chosen by the number of activation rows m:
 *
 *   few rows (decoding; see gemm_min_rows): each thread takes a range of
 *   weight rows and computes every dot product of each row with the m
 *   activation rows, reading each weight once. The cost is memory
 *   bandwidth, and for many rows the kernels' arithmetic.
 *
 *   otherwise (prefill): each thread takes panels of NT_GEMM_NR weight rows.
 *   A panel is converted to float32 and transposed k-major in blocks of
 *   NT_MATMUL_KC columns (it then sits in L2), and the GEMM tile kernel
 *   sweeps all m rows of x past it. The conversion is paid once per panel,
 *   not once per activation row. Quantized weights, where the CPU has an
 *   integer GEMM kernel (VNNI), are instead unpacked to bytes, whole rows at
 *   a time (kernels.h's panel, 32 rows), and multiplied by x rounded to 8
 *   bits: four times the multiplies per instruction of float32.
 */
#include "engine/matmul.h"

/*
 * Below this many rows a product takes the decode strategy: the GEMM's
 * packing of every weight costs more than it saves. Quantized types say
 * their own (dtype.h's gemm_min_rows): unpacking a q4_0 matrix of the 4B
 * shape (9216 x 3072) to bytes took 2 ms, q4_k's 7 ms, q6_k's 15 ms, where
 * each activation row costs the decode kernels 0.3 ms and the GEMM about a
 * fifth of that, so they break even near 8, 30 and 60 rows.
 */
#define GEMM_MIN_ROWS 4

static int gemm_min_rows(const nt_kernels *k, const nt_matmul_target *targets,
                         int n_targets) {
    int rows = GEMM_MIN_ROWS;
    for (int t = 0; t < n_targets; t++) {
        const nt_dtype_traits *tr = nt_dtype_traits_of(targets[t].w->dtype);
        if (k->to_u8[targets[t].w->dtype] && tr->gemm_min_rows > rows)
            rows = tr->gemm_min_rows;
    }
    return rows;
}

typedef struct matmul_job {
    const nt_exec *ex;
    const float *x;
    int m;
    int gemm;      /* 1: the prefill strategy, 0: the decode strategy */
    int each_row;  /* decode strategy: one kernel call per activation row */
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

/* Activation rows per call of an 8-bit kernel, and weight rows per tile,
 * when many rows decode together (a batch of replies). */
#define Q8_ROW_GROUP 4
#define Q8_WEIGHT_TILE 8

/*
 * The 8-bit kernels share each block's unpacking among up to four
 * activation rows. With more rows, sweeping all of them past each weight
 * row would cycle m rows of activations through L1 for every weight row;
 * instead a tile of weight rows meets one group of four activation rows at
 * a time, so both stay in L1. Each row's sums are those it gets alone
 * (dtype.h), so the tiling changes no result.
 */
static void dot_q8_tiled(const matmul_job *job, const nt_matmul_target *t, int64_t r0,
                         int64_t r1, float *acc) {
    const nt_matrix *w = t->w;
    const nt_q8_rows *q = job->xq;
    nt_dot_q8_fn dot_q8 = job->ex->kernels->dtype_dot_q8[w->dtype];
    int64_t K = w->cols, N = w->rows;
    int m = job->m;
    for (int64_t rt = r0; rt < r1; rt += Q8_WEIGHT_TILE) {
        int nt = (int)(r1 - rt < Q8_WEIGHT_TILE ? r1 - rt : Q8_WEIGHT_TILE);
        memset(acc, 0, (size_t)nt * (size_t)m * sizeof *acc);
        for (int i0 = 0; i0 < m; i0 += Q8_ROW_GROUP) {
            int g = m - i0 < Q8_ROW_GROUP ? m - i0 : Q8_ROW_GROUP;
            nt_q8_rows xi = {q->q + (int64_t)i0 * q->ld, q->d + (int64_t)i0 * q->ld / 32,
                             q->s + (int64_t)i0 * q->ld / 16, q->ds + (int64_t)i0 * q->ld / 32,
                             q->ld};
            for (int j = 0; j < nt; j++)
                dot_q8(K, (const char *)w->data + (uint64_t)(rt + j) * w->row_bytes, &xi, g,
                       acc + (int64_t)j * m + i0);
        }
        for (int j = 0; j < nt; j++) {
            float b = t->bias ? t->bias[rt + j] : 0.0f;
            for (int i = 0; i < m; i++)
                t->y[(int64_t)i * N + rt + j] = acc[(int64_t)j * m + i] + b;
        }
    }
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
    if (dot_q8 && job->m > Q8_ROW_GROUP &&
        (size_t)job->m * Q8_WEIGHT_TILE + NT_MATMUL_KC <= job->ex->scratch_stride / 2) {
        dot_q8_tiled(job, t, r0, r1, acc);
        return;
    }
    /* Float kernels work on several activation rows at once and may sum a
     * row differently by its place among them; each_row calls them per
     * row. The 8-bit kernels promise each row the same sums (dtype.h). */
    int step = job->each_row && !dot_q8 ? 1 : job->m;
    for (int64_t r = r0; r < r1; r++) {
        const char *wr = (const char *)w->data + (uint64_t)r * w->row_bytes;
        for (int i = 0; i < job->m; i++)
            acc[i] = 0.0f;
        for (int i0 = 0; i0 < job->m; i0 += step) {
            int m = job->m - i0 < step ? job->m - i0 : step;
            if (dot_q8) {
                const nt_q8_rows *q = job->xq;
                nt_q8_rows xi = {q->q + (int64_t)i0 * q->ld, q->d + (int64_t)i0 * q->ld / 32,
                                 q->s + (int64_t)i0 * q->ld / 16,
                                 q->ds + (int64_t)i0 * q->ld / 32, q->ld};
                dot_q8(K, wr, &xi, m, acc + i0);
            } else if (native) {
                native(K, wr, job->x + (int64_t)i0 * job->ldx, job->ldx, m, acc + i0);
            } else {
                for (int64_t c = 0; c < K; c += NT_MATMUL_KC) {
                    int64_t n = K - c < NT_MATMUL_KC ? K - c : NT_MATMUL_KC;
                    k->dot_rows(n, row_as_f32(k, w, r, c, n, buf),
                                job->x + (int64_t)i0 * job->ldx + c, job->ldx, m, acc + i0);
                }
            }
        }
        float b = t->bias ? t->bias[r] : 0.0f;
        for (int i = 0; i < job->m; i++)
            t->y[(int64_t)i * N + r] = acc[i] + b;
    }
}

/* y[i][r0 .. r0 + nr) += bias[r0 .. r0 + nr) for the m rows of a GEMM. */
static void add_bias(const nt_matmul_target *t, int m, int64_t r0, int nr) {
    if (!t->bias)
        return;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < nr; j++)
            t->y[(int64_t)i * t->w->rows + r0 + j] += t->bias[r0 + j];
}

/* The integer prefill for rows [r0, r0 + NT_GEMM_NR): int8 panels. */
static void gemm_panel_q8(const matmul_job *job, const nt_matmul_target *t,
                          int64_t r0, float *scratch) {
    const nt_kernels *k = job->ex->kernels;
    const nt_matrix *w = t->w;
    const nt_dtype_traits *tr = nt_dtype_traits_of(w->dtype);
    int64_t K = w->cols, N = w->rows, groups = K / tr->u8_group;
    /* scratch: panel bytes (aligned), row bytes, then four scale arrays */
    uint8_t *pu = (uint8_t *)scratch, *u = pu + NT_Q8_PANEL_ROWS * K;
    float *a = (float *)(u + NT_Q8_PANEL_ROWS * K);
    float *c = a + NT_Q8_PANEL_ROWS * groups;
    float *pa = c + NT_Q8_PANEL_ROWS * groups, *pc = pa + NT_Q8_PANEL_ROWS * groups;
    for (int64_t r = r0; r < r0 + NT_GEMM_NR && r < N; r += NT_Q8_PANEL_ROWS) {
        int nr = (int)(N - r < NT_Q8_PANEL_ROWS ? N - r : NT_Q8_PANEL_ROWS);
        for (int j = 0; j < nr; j++)
            k->to_u8[w->dtype]((const char *)w->data + (uint64_t)(r + j) * w->row_bytes, K,
                      u + j * K, a + j * groups, c + j * groups);
        nt_q8_panel panel;
        nt_q8_panel_pack(k->pack_panel, u, a, c, K, tr->u8_group, nr, &panel, pu, pa, pc);
        for (int i = 0; i < job->m; i += NT_Q8_GEMM_MR) {
            int rows = job->m - i < NT_Q8_GEMM_MR ? job->m - i : NT_Q8_GEMM_MR;
            k->gemm_q8_tile(rows, job->xq, i, &panel, t->y + (int64_t)i * N + r, N, nr);
        }
        add_bias(t, job->m, r, nr);
    }
}

/* Whether this target's prefill runs on the integer GEMM (given x in
 * 8 bits, which needs whole blocks of 32 columns: whole to_u8 groups). */
static int uses_q8_gemm(const nt_kernels *k, const nt_matrix *w) {
    return k->gemm_q8_tile && k->to_u8[w->dtype];
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
        const void *rows[NT_GEMM_NR];
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
    add_bias(t, job->m, r0, nr);
}

static void matmul_task(void *arg, int ith, int nth) {
    const matmul_job *job = arg;
    float *scratch = job->ex->scratch + (size_t)ith * job->ex->scratch_stride;
    int64_t u0, u1;
    nt_split_range(job->total_units, 1, ith, nth, &u0, &u1);
    for (int64_t u = u0; u < u1;) {
        int64_t row = 0;
        const nt_matmul_target *t = locate(job, u, &row);
        if (job->gemm) {
            if (job->xq && uses_q8_gemm(job->ex->kernels, t->w))
                gemm_panel_q8(job, t, row, scratch);
            else
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

typedef struct quantize_job {
    const nt_exec *ex;
    const float *x;
    int64_t ldx, k;
    int m;
} quantize_job;

static void quantize_task(void *arg, int ith, int nth) {
    const quantize_job *j = arg;
    const nt_exec *ex = j->ex;
    int64_t i0, i1;
    nt_split_range(j->m, 1, ith, nth, &i0, &i1);
    for (int64_t i = i0; i < i1; i++) {
        float *d = ex->xq_d + i * j->k / 32;
        int16_t *s = ex->xq_s + i * j->k / 16;
        ex->kernels->quantize_q8(j->x + i * j->ldx, j->k, ex->xq + i * j->k, d, s);
        nt_q8_block_sums(d, s, j->k, ex->xq_ds + i * j->k / 32);
    }
}

/*
 * Quantized weights multiply x rounded to 8 bits (see dtype.h), as
 * llama.cpp does: integer dot products are several times faster than
 * widening every weight to float. x is rounded once here for all targets:
 * on the calling thread when decoding (a few rows), on all threads for a
 * prefill batch.
 */
static int quantize_x(const nt_exec *ex, const float *x, int m, int64_t ldx,
                      const nt_matmul_target *targets, int n_targets, int gemm,
                      nt_q8_rows *xq) {
    const nt_kernels *k = ex->kernels;
    int64_t K = targets[0].w->cols;
    int needed = 0;
    for (int t = 0; t < n_targets; t++)
        needed |= gemm ? uses_q8_gemm(k, targets[t].w)
                                     : k->dtype_dot_q8[targets[t].w->dtype] != NULL;
    if (!needed || K % NT_Q8_BLOCK != 0 || (size_t)(K * m) > ex->xq_cap)
        return 0;
    quantize_job job = {ex, x, ldx, K, m};
    if (m >= GEMM_MIN_ROWS)  /* enough rows to be worth the threads */
        nt_pool_run(ex->pool, quantize_task, &job);
    else
        quantize_task(&job, 0, 1);
    *xq = (nt_q8_rows){ex->xq, ex->xq_d, ex->xq_s, ex->xq_ds, K};
    return 1;
}

void nt_matmul(const nt_exec *ex, const float *x, int m, int64_t ldx,
               const nt_matmul_target *targets, int n_targets) {
    nt_matmul_with(ex, x, m, ldx, targets, n_targets, NT_MATMUL_BY_SIZE);
}

void nt_matmul_with(const nt_exec *ex, const float *x, int m, int64_t ldx,
                    const nt_matmul_target *targets, int n_targets,
                    nt_matmul_strategy strategy) {
    if (m <= 0)
        return;
    nt_q8_rows xq;
    int gemm = strategy == NT_MATMUL_GEMM ||
               (strategy == NT_MATMUL_BY_SIZE &&
                m >= gemm_min_rows(ex->kernels, targets, n_targets));
    matmul_job job = {ex, x, m, gemm, strategy == NT_MATMUL_EACH_ROW, ldx, NULL,
                      targets, n_targets, 0, gemm ? NT_GEMM_NR : 16};
    if (quantize_x(ex, x, m, ldx, targets, n_targets, gemm, &xq))
        job.xq = &xq;
    for (int t = 0; t < n_targets; t++)
        job.total_units += (targets[t].w->rows + job.grain - 1) / job.grain;
    nt_pool_run(ex->pool, matmul_task, &job);
}
