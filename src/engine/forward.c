/*
 * forward.c - one step of the Nemotron transformer over a batch of tokens.
 *
 * The math is HF's NemotronForCausalLM, in float32 (weights widened from
 * their stored dtype as they are used):
 *
 *   x = embed[token]
 *   for each layer:
 *       h = LayerNorm1P(x)                    (x - mean) / sqrt(var + eps)
 *                                              * (1 + w) + b
 *       q, k, v = h Wq^T, h Wk^T, h Wv^T
 *       rotate the first n_rot dims of each q and k head (NeoX halves)
 *       a = softmax(q k^T / sqrt(head_dim), causal) v   per head; KV heads
 *                                              shared by n_head / n_head_kv
 *       x = x + a Wo^T
 *       h = LayerNorm1P(x)
 *       x = x + relu(h Wup^T)^2 Wdown^T
 *   logits = LayerNorm1P(x) Whead^T
 */
#include <math.h>
#include <string.h>

#include "engine/attention.h"
#include "engine/context.h"

/* Below this many rows, a step runs on the calling thread alone: waking the
 * others costs more than the work. */
#define PARALLEL_MIN_ROWS 8

/* ---- row-wise steps ------------------------------------------------------ */

static void layer_norm_row(const float *x, float *y, int n, const nt_norm *norm,
                           float eps) {
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    double mean = sum / n;
    double var = 0.0;
    for (int i = 0; i < n; i++) {
        double d = x[i] - mean;
        var += d * d;
    }
    var /= n;
    float inv = (float)(1.0 / sqrt(var + (double)eps));
    float fmean = (float)mean;
    for (int i = 0; i < n; i++)
        y[i] = (x[i] - fmean) * inv * norm->scale[i] + norm->shift[i];
}

typedef struct norm_job {
    const float *x;
    float *y;
    int n_rows, n;
    const nt_norm *norm;
    float eps;
} norm_job;

static void norm_task(void *arg, int ith, int nth) {
    const norm_job *j = arg;
    int64_t r0, r1;
    nt_split_range(j->n_rows, 1, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++)
        layer_norm_row(j->x + r * j->n, j->y + r * j->n, j->n, j->norm, j->eps);
}

static void layer_norm(nt_context *ctx, const float *x, float *y, int n_rows,
                       const nt_norm *norm) {
    const nt_hparams *hp = &ctx->model->hp;
    norm_job job = {x, y, n_rows, hp->n_embd, norm, hp->norm_eps};
    if (n_rows < PARALLEL_MIN_ROWS)
        norm_task(&job, 0, 1);
    else
        nt_pool_run(ctx->exec.pool, norm_task, &job);
}

typedef struct elementwise_job {
    const nt_kernels *kernels;
    float *a;
    const float *b;
    int64_t n;
} elementwise_job;

static void add_task(void *arg, int ith, int nth) {
    const elementwise_job *j = arg;
    int64_t i0, i1;
    nt_split_range(j->n, 64, ith, nth, &i0, &i1);
    for (int64_t i = i0; i < i1; i++)
        j->a[i] += j->b[i];
}

static void relu_squared_task(void *arg, int ith, int nth) {
    const elementwise_job *j = arg;
    int64_t i0, i1;
    nt_split_range(j->n, 64, ith, nth, &i0, &i1);
    j->kernels->relu_squared(i1 - i0, j->a + i0);
}

static void elementwise(nt_context *ctx, nt_pool_fn fn, float *a, const float *b,
                        int n_rows, int64_t row_len) {
    elementwise_job job = {&ctx->kernels, a, b, (int64_t)n_rows * row_len};
    if (n_rows < PARALLEL_MIN_ROWS)
        fn(&job, 0, 1);
    else
        nt_pool_run(ctx->exec.pool, fn, &job);
}

/* ---- rotary embedding ---------------------------------------------------- */

/* NeoX style: dims i and i + n_rot/2 form a pair, for i < n_rot / 2. */
static void rope_heads(float *v, int n_heads, int head_dim, int n_rot,
                       const float *cos_row, const float *sin_row) {
    int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *p = v + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            float a = p[i], b = p[i + half];
            p[i] = a * cos_row[i] - b * sin_row[i];
            p[i + half] = b * cos_row[i] + a * sin_row[i];
        }
    }
}

/* ---- the step ------------------------------------------------------------ */

void nt_forward(nt_context *ctx, const int32_t *tokens, int n, int logits_from,
                float *logits) {
    const nt_model *m = ctx->model;
    const nt_hparams *hp = &m->hp;
    const nt_kernels *k = &ctx->kernels;
    const nt_exec *ex = &ctx->exec;
    int64_t H = hp->n_embd, q_dim = (int64_t)hp->n_head * hp->head_dim,
            kv_dim = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    int pos0 = ctx->n_past, half_rot = hp->n_rot / 2;

    for (int i = 0; i < n; i++) {
        const char *row = (const char *)m->tok_embd.data +
                          (uint64_t)tokens[i] * m->tok_embd.row_bytes;
        k->to_f32[m->tok_embd.dtype](row, ctx->x + i * H, H);
    }

    for (int l = 0; l < hp->n_layer; l++) {
        const nt_layer *L = &m->layers[l];

        layer_norm(ctx, ctx->x, ctx->xn, n, &L->attn_norm);
        nt_matmul_target qkv[3] = {
            {&L->wq, L->bq, ctx->q}, {&L->wk, L->bk, ctx->k}, {&L->wv, L->bv, ctx->v}};
        if (ctx->capture)
            ctx->capture(ctx->capture_user, l, NT_CAPTURE_ATTN_IN, ctx->xn, n, H);
        nt_matmul(ex, ctx->xn, n, H, qkv, 3);

        float *kc = ctx->k_cache + ((int64_t)l * ctx->n_ctx + pos0) * kv_dim;
        float *vc = ctx->v_cache + ((int64_t)l * ctx->n_ctx + pos0) * kv_dim;
        for (int i = 0; i < n; i++) {
            const float *c = ctx->rope_cos + (int64_t)(pos0 + i) * half_rot;
            const float *s = ctx->rope_sin + (int64_t)(pos0 + i) * half_rot;
            rope_heads(ctx->q + i * q_dim, hp->n_head, hp->head_dim, hp->n_rot, c, s);
            rope_heads(ctx->k + i * kv_dim, hp->n_head_kv, hp->head_dim, hp->n_rot,
                       c, s);
        }
        memcpy(kc, ctx->k, (size_t)(n * kv_dim) * sizeof(float));
        memcpy(vc, ctx->v, (size_t)(n * kv_dim) * sizeof(float));

        nt_attention(ctx, l, n, pos0);

        nt_matmul_target o = {&L->wo, L->bo, ctx->xn};
        if (ctx->capture)
            ctx->capture(ctx->capture_user, l, NT_CAPTURE_O_IN, ctx->att, n, q_dim);
        nt_matmul(ex, ctx->att, n, q_dim, &o, 1);
        elementwise(ctx, add_task, ctx->x, ctx->xn, n, H);

        layer_norm(ctx, ctx->x, ctx->xn, n, &L->ffn_norm);
        nt_matmul_target up = {&L->w_up, L->b_up, ctx->ff};
        if (ctx->capture)
            ctx->capture(ctx->capture_user, l, NT_CAPTURE_FFN_IN, ctx->xn, n, H);
        nt_matmul(ex, ctx->xn, n, H, &up, 1);
        elementwise(ctx, relu_squared_task, ctx->ff, NULL, n, F);
        nt_matmul_target down = {&L->w_down, L->b_down, ctx->xn};
        if (ctx->capture)
            ctx->capture(ctx->capture_user, l, NT_CAPTURE_DOWN_IN, ctx->ff, n, F);
        nt_matmul(ex, ctx->ff, n, F, &down, 1);
        elementwise(ctx, add_task, ctx->x, ctx->xn, n, H);
    }
    ctx->n_past += n;

    if (logits_from < n) {
        int rows = n - logits_from;
        layer_norm(ctx, ctx->x + logits_from * H, ctx->xn, rows, &m->out_norm);
        nt_matmul_target head = {&m->lm_head, NULL, logits};
        nt_matmul(ex, ctx->xn, rows, H, &head, 1);
    }
}
