/*
 * attention.c - see attention.h.
 *
 * Two strategies, chosen by the number of tokens in the step:
 *
 *   decoding (a few tokens): per token and head, the scores are dot
 *   products of q with every cached key (rows kv_dim apart), then the
 *   output is the sum of the values weighted by the softmax. The cost is
 *   reading the cache once.
 *
 *   prefill: many queries meet the same keys, which makes both halves
 *   matrix products per KV head, S = Q K^T and O = P V. The keys and values
 *   of each KV head are packed once per layer into the panels of the float
 *   GEMM tile (kernels.h: k-major, NT_GEMM_NR columns), and a unit of work
 *   is a block of NT_ATTENTION_QUERY_BLOCK positions times the heads that
 *   share the KV head, run through the same tile as the weights' products.
 *   (Done row by row, attention was a quarter of a 512-token prefill for 2%
 *   of its arithmetic.)
 *
 * Both compute the same sums in float32, in a different order.
 */
#include <math.h>
#include <string.h>

#include "engine/attention.h"
#include "engine/context.h"

/* From this many tokens on, the step packs the keys and runs the GEMM. */
#define GEMM_MIN_TOKENS 16

static int key_panels(int n_ctx) {
    return (n_ctx + NT_GEMM_NR - 1) / NT_GEMM_NR;
}

static int value_chunks(const nt_hparams *hp) {
    return (hp->head_dim + NT_GEMM_NR - 1) / NT_GEMM_NR;
}

size_t nt_attention_scratch_floats(const nt_hparams *hp, int n_ctx) {
    size_t group = (size_t)(hp->n_head / hp->n_head_kv);
    size_t scores = group * NT_ATTENTION_QUERY_BLOCK * (size_t)key_panels(n_ctx) *
                    NT_GEMM_NR;
    return scores > (size_t)n_ctx ? scores : (size_t)n_ctx;
}

/* Per KV head: its key panels (head_dim x NT_GEMM_NR each), then its value
 * panels (all positions x NT_GEMM_NR, one per chunk of NT_GEMM_NR dims). */
size_t nt_attention_panel_floats(const nt_hparams *hp, int n_ctx) {
    size_t positions = (size_t)key_panels(n_ctx) * NT_GEMM_NR;
    return (size_t)hp->n_head_kv * positions *
           ((size_t)hp->head_dim + (size_t)value_chunks(hp) * NT_GEMM_NR);
}

typedef struct attention_job {
    nt_context *ctx;
    int layer;
    /* the row strategy: these rows of the step (positions and maps in
       ctx->row_pos and ctx->row_map) */
    const int32_t *rows;
    int n_rows;
    /* the GEMM strategy: one run */
    const nt_step_run *run;
} attention_job;

static const float *layer_keys(const nt_context *ctx, int layer) {
    const nt_hparams *hp = &ctx->model->hp;
    return ctx->k_cache + (int64_t)layer * ctx->n_slots * hp->n_head_kv * hp->head_dim;
}

static const float *layer_values(const nt_context *ctx, int layer) {
    const nt_hparams *hp = &ctx->model->hp;
    return ctx->v_cache + (int64_t)layer * ctx->n_slots * hp->n_head_kv * hp->head_dim;
}

/* The thread's scores: at the end of its scratch, after matmul's. */
static float *thread_scores(const nt_context *ctx, int ith, size_t floats) {
    return ctx->thread_scratch + (size_t)(ith + 1) * ctx->exec.scratch_stride - floats;
}

/* Turns row[0 .. n_keys) of raw scores into probabilities. */
static void softmax_scaled(float *row, int n_keys, float scale) {
    float max = -INFINITY;
    for (int t = 0; t < n_keys; t++) {
        row[t] *= scale;
        if (row[t] > max)
            max = row[t];
    }
    double sum = 0.0;
    for (int t = 0; t < n_keys; t++) {
        row[t] = expf(row[t] - max);
        sum += row[t];
    }
    float inv = (float)(1.0 / sum);
    for (int t = 0; t < n_keys; t++)
        row[t] *= inv;
}

/* ---- decoding: row by row ------------------------------------------------ */

static void attention_rows_task(void *arg, int ith, int nth) {
    const attention_job *j = arg;
    nt_context *ctx = j->ctx;
    const nt_hparams *hp = &ctx->model->hp;
    const nt_kernels *k = &ctx->kernels;
    int hd = hp->head_dim, n_head = hp->n_head;
    int group = hp->n_head / hp->n_head_kv;
    int64_t kv_dim = (int64_t)hp->n_head_kv * hd, q_dim = (int64_t)n_head * hd;
    const float *kc = layer_keys(ctx, j->layer), *vc = layer_values(ctx, j->layer);
    float *scores = thread_scores(ctx, ith, (size_t)ctx->n_ctx);
    float scale = (float)(1.0 / sqrt((double)hd));

    int64_t w0, w1;
    nt_split_range((int64_t)j->n_rows * n_head, 1, ith, nth, &w0, &w1);
    for (int64_t w = w0; w < w1; w++) {
        int i = j->rows[w / n_head], h = (int)(w % n_head);
        const nt_kv_map *map = ctx->row_map[i];
        int bt = map->block_tokens;
        int n_keys = ctx->row_pos[i] + 1; /* causal: positions 0 .. its own */
        const float *q = ctx->q + (int64_t)i * q_dim + (int64_t)h * hd;
        int64_t kv_off = (int64_t)(h / group) * hd;
        /* q against every key, a block at a time: within a block the
         * keys are rows kv_dim apart */
        memset(scores, 0, (size_t)n_keys * sizeof *scores);
        for (int t0 = 0; t0 < n_keys; t0 += bt) {
            int cnt = n_keys - t0 < bt ? n_keys - t0 : bt;
            int64_t slot0 = nt_kv_map_slot(map, t0);
            k->dot_rows(hd, q, kc + slot0 * kv_dim + kv_off, kv_dim, cnt, scores + t0);
        }
        softmax_scaled(scores, n_keys, scale);
        float *out = ctx->att + (int64_t)i * q_dim + (int64_t)h * hd;
        memset(out, 0, (size_t)hd * sizeof *out);
        for (int t = 0; t < n_keys; t++)
            k->axpy(hd, scores[t], vc + nt_kv_map_slot(map, t) * kv_dim + kv_off, out);
    }
}

/* ---- prefill: blocks through the GEMM tile ------------------------------- */

static float *key_panel(const nt_context *ctx, int hk, int b) {
    const nt_hparams *hp = &ctx->model->hp;
    size_t per_head = (size_t)key_panels(ctx->n_ctx) * NT_GEMM_NR *
                      ((size_t)hp->head_dim + (size_t)value_chunks(hp) * NT_GEMM_NR);
    return ctx->kv_panels + (size_t)hk * per_head + (size_t)b * hp->head_dim * NT_GEMM_NR;
}

static float *value_panel(const nt_context *ctx, int hk, int c) {
    const nt_hparams *hp = &ctx->model->hp;
    size_t positions = (size_t)key_panels(ctx->n_ctx) * NT_GEMM_NR;
    return key_panel(ctx, hk, 0) + positions * (size_t)hp->head_dim +
           (size_t)c * positions * NT_GEMM_NR;
}

/* Packs positions [b * NT_GEMM_NR, +NT_GEMM_NR) of every KV head for
 * units b < the panels up to the last position of the step. */
static void pack_kv_task(void *arg, int ith, int nth) {
    const attention_job *j = arg;
    nt_context *ctx = j->ctx;
    const nt_hparams *hp = &ctx->model->hp;
    int hd = hp->head_dim, chunks = value_chunks(hp);
    int64_t kv_dim = (int64_t)hp->n_head_kv * hd;
    const float *kc = layer_keys(ctx, j->layer), *vc = layer_values(ctx, j->layer);
    const nt_step_run *run = j->run;
    int n_keys = run->pos0 + run->n;
    int64_t u0, u1;
    nt_split_range((int64_t)hp->n_head_kv * key_panels(n_keys), 1, ith, nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++) {
        int hk = (int)(u % hp->n_head_kv), b = (int)(u / hp->n_head_kv);
        const void *rows[NT_GEMM_NR];
        int64_t slots[NT_GEMM_NR];
        for (int r = 0; r < NT_GEMM_NR; r++) {
            int t = b * NT_GEMM_NR + r;
            slots[r] = t < n_keys ? nt_kv_map_slot(&run->map, t) : 0;
            rows[r] = t < n_keys ? kc + slots[r] * kv_dim + (int64_t)hk * hd : NULL;
        }
        ctx->kernels.pack_panel(rows, hd, key_panel(ctx, hk, b));
        for (int c = 0; c < chunks; c++) {
            int cols = hd - c * NT_GEMM_NR < NT_GEMM_NR ? hd - c * NT_GEMM_NR : NT_GEMM_NR;
            float *dst = value_panel(ctx, hk, c) + (size_t)b * NT_GEMM_NR * NT_GEMM_NR;
            for (int r = 0; r < NT_GEMM_NR; r++, dst += NT_GEMM_NR) {
                int t = b * NT_GEMM_NR + r;
                if (t < n_keys)
                    memcpy(dst, vc + slots[r] * kv_dim + (int64_t)hk * hd + c * NT_GEMM_NR,
                           (size_t)cols * sizeof(float));
                memset(dst + (t < n_keys ? cols : 0), 0,
                       (size_t)(NT_GEMM_NR - (t < n_keys ? cols : 0)) * sizeof(float));
            }
        }
    }
}

static void attention_blocks_task(void *arg, int ith, int nth) {
    const attention_job *j = arg;
    nt_context *ctx = j->ctx;
    const nt_hparams *hp = &ctx->model->hp;
    const nt_kernels *k = &ctx->kernels;
    const int QB = NT_ATTENTION_QUERY_BLOCK, mr = k->gemm_mr;
    int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv, chunks = value_chunks(hp);
    int64_t q_dim = (int64_t)hp->n_head * hd;
    int64_t ld = (int64_t)key_panels(ctx->n_ctx) * NT_GEMM_NR; /* scores' row stride */
    float *S = thread_scores(ctx, ith, nt_attention_scratch_floats(hp, ctx->n_ctx));
    float scale = (float)(1.0 / sqrt((double)hd));

    const nt_step_run *run = j->run;
    const float *q_run = ctx->q + (int64_t)run->row0 * q_dim;
    float *att_run = ctx->att + (int64_t)run->row0 * q_dim;

    /* Units cost more as positions grow: dealing them out in turn (blocks
     * outer, KV heads inner) gives every thread its share of each block.
     * A query's result does not depend on the others of its block: the
     * keys past its own get probability 0, adding exact zeros. */
    int blocks = (run->n + QB - 1) / QB;
    for (int w = ith; w < blocks * hp->n_head_kv; w += nth) {
        int blk = w / hp->n_head_kv, hk = w % hp->n_head_kv;
        int i0 = blk * QB, i1 = i0 + QB < run->n ? i0 + QB : run->n;
        int n_keys = run->pos0 + i1; /* the block's last query sees this many */
        for (int g = 0; g < group; g++) {
            int h = hk * group + g;
            float *Sg = S + (int64_t)g * QB * ld;
            for (int b = 0; b < key_panels(n_keys); b++) {
                const float *panel = key_panel(ctx, hk, b);
                for (int r = i0; r < i1; r += mr) {
                    int rows = i1 - r < mr ? i1 - r : mr;
                    k->gemm_tile(rows, hd, q_run + r * q_dim + (int64_t)h * hd, q_dim,
                                 panel, Sg + (r - i0) * ld + b * NT_GEMM_NR, ld,
                                 NT_GEMM_NR, 0);
                }
            }
            for (int i = i0; i < i1; i++) {
                float *row = Sg + (i - i0) * ld;
                int own = run->pos0 + i + 1; /* causal */
                softmax_scaled(row, own, scale);
                memset(row + own, 0, (size_t)(n_keys - own) * sizeof *row);
            }
            for (int c = 0; c < chunks; c++) {
                int cols = hd - c * NT_GEMM_NR < NT_GEMM_NR ? hd - c * NT_GEMM_NR : NT_GEMM_NR;
                const float *panel = value_panel(ctx, hk, c);
                for (int r = i0; r < i1; r += mr) {
                    int rows = i1 - r < mr ? i1 - r : mr;
                    k->gemm_tile(rows, n_keys, Sg + (r - i0) * ld, ld, panel,
                                 att_run + r * q_dim + (int64_t)h * hd + c * NT_GEMM_NR,
                                 q_dim, cols, 0);
                }
            }
        }
    }
}

/* Below this many (token, head) rows the row strategy stays on the calling
 * thread alone: waking the others costs more than the work. */
#define PARALLEL_MIN_ROWS 8

void nt_attention_rows(nt_context *ctx, int layer, const int32_t *rows, int n_rows) {
    const nt_hparams *hp = &ctx->model->hp;
    if (n_rows <= 0)
        return;
    attention_job job = {ctx, layer, rows, n_rows, NULL};
    if (n_rows * hp->n_head < PARALLEL_MIN_ROWS && ctx->row_pos[rows[n_rows - 1]] < 256)
        attention_rows_task(&job, 0, 1);
    else
        nt_pool_run(ctx->exec.pool, attention_rows_task, &job);
}

int nt_attention_run_uses_gemm(const nt_context *ctx, const nt_step_run *run,
                               nt_step_kernels kernels) {
    if (!ctx->kv_panels)
        return 0;
    return kernels == NT_STEP_BY_ROLE ? run->prefill : run->n >= GEMM_MIN_TOKENS;
}

void nt_attention_run(nt_context *ctx, int layer, const nt_step_run *run) {
    attention_job job = {ctx, layer, NULL, 0, run};
    nt_pool_run(ctx->exec.pool, pack_kv_task, &job);
    nt_pool_run(ctx->exec.pool, attention_blocks_task, &job);
}
