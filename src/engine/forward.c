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

/* Which strategy the products of a step's rows [r0, r0 + m) take. */
static nt_matmul_strategy rows_strategy(const nt_step *step, int prefill) {
    if (step->kernels == NT_STEP_BY_SIZE)
        return NT_MATMUL_BY_SIZE;
    return prefill ? NT_MATMUL_GEMM : NT_MATMUL_EACH_ROW;
}

/*
 * y = x W^T for the step's rows. By role, the reply rows (first) and the
 * prompt rows are two products with their own strategies; the weights are
 * then read twice in a step that has both, the price of batch invariance.
 */
static void step_matmul(nt_context *ctx, const nt_step *step, int n_reply,
                        const float *x, int64_t ldx, nt_matmul_target *targets,
                        int n_targets) {
    const nt_exec *ex = &ctx->exec;
    int n = step->n;
    if (step->kernels == NT_STEP_BY_SIZE || n_reply == 0 || n_reply == n) {
        nt_matmul_with(ex, x, n, ldx, targets, n_targets,
                       rows_strategy(step, n_reply == 0));
        return;
    }
    nt_matmul_with(ex, x, n_reply, ldx, targets, n_targets, NT_MATMUL_EACH_ROW);
    nt_matmul_target rest[4];
    for (int t = 0; t < n_targets; t++) {
        rest[t] = targets[t];
        rest[t].y += (int64_t)n_reply * targets[t].w->rows;
    }
    nt_matmul_with(ex, x + (int64_t)n_reply * ldx, n - n_reply, ldx, rest, n_targets,
                   NT_MATMUL_GEMM);
}

void nt_forward_step(nt_context *ctx, const nt_step *step, float *logits) {
    const nt_model *m = ctx->model;
    const nt_hparams *hp = &m->hp;
    const nt_kernels *k = &ctx->kernels;
    int64_t H = hp->n_embd, q_dim = (int64_t)hp->n_head * hp->head_dim,
            kv_dim = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    int n = step->n, half_rot = hp->n_rot / 2;
    const int32_t *tokens = step->tokens;

    /* Per row: position and map; the rows attended to row by row; by
     * role, how many reply rows lead the step. */
    int n_rows_attn = 0, n_reply = 0;
    for (int r = 0; r < step->n_runs; r++) {
        const nt_step_run *run = &step->runs[r];
        int gemm = nt_attention_run_uses_gemm(ctx, run, step->kernels);
        for (int i = 0; i < run->n; i++) {
            ctx->row_pos[run->row0 + i] = run->pos0 + i;
            ctx->row_map[run->row0 + i] = &run->map;
            if (!gemm)
                ctx->attn_rows[n_rows_attn++] = run->row0 + i;
        }
        if (!run->prefill && n_reply == run->row0)
            n_reply += run->n;
    }

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
        step_matmul(ctx, step, n_reply, ctx->xn, H, qkv, 3);

        float *kc = ctx->k_cache + (int64_t)l * ctx->n_slots * kv_dim;
        float *vc = ctx->v_cache + (int64_t)l * ctx->n_slots * kv_dim;
        for (int i = 0; i < n; i++) {
            const float *c = ctx->rope_cos + (int64_t)ctx->row_pos[i] * half_rot;
            const float *s = ctx->rope_sin + (int64_t)ctx->row_pos[i] * half_rot;
            rope_heads(ctx->q + i * q_dim, hp->n_head, hp->head_dim, hp->n_rot, c, s);
            rope_heads(ctx->k + i * kv_dim, hp->n_head_kv, hp->head_dim, hp->n_rot,
                       c, s);
            int64_t slot = nt_kv_map_slot(ctx->row_map[i], ctx->row_pos[i]);
            memcpy(kc + slot * kv_dim, ctx->k + i * kv_dim, (size_t)kv_dim * sizeof(float));
            memcpy(vc + slot * kv_dim, ctx->v + i * kv_dim, (size_t)kv_dim * sizeof(float));
        }

        nt_attention_rows(ctx, l, ctx->attn_rows, n_rows_attn);
        for (int r = 0; r < step->n_runs; r++)
            if (nt_attention_run_uses_gemm(ctx, &step->runs[r], step->kernels))
                nt_attention_run(ctx, l, &step->runs[r]);

        nt_matmul_target o = {&L->wo, L->bo, ctx->xn};
        if (ctx->capture)
            ctx->capture(ctx->capture_user, l, NT_CAPTURE_O_IN, ctx->att, n, q_dim);
        step_matmul(ctx, step, n_reply, ctx->att, q_dim, &o, 1);
        elementwise(ctx, add_task, ctx->x, ctx->xn, n, H);

        layer_norm(ctx, ctx->x, ctx->xn, n, &L->ffn_norm);
        nt_matmul_target up = {&L->w_up, L->b_up, ctx->ff};
        if (ctx->capture)
            ctx->capture(ctx->capture_user, l, NT_CAPTURE_FFN_IN, ctx->xn, n, H);
        step_matmul(ctx, step, n_reply, ctx->xn, H, &up, 1);
        elementwise(ctx, relu_squared_task, ctx->ff, NULL, n, F);
        nt_matmul_target down = {&L->w_down, L->b_down, ctx->xn};
        if (ctx->capture)
            ctx->capture(ctx->capture_user, l, NT_CAPTURE_DOWN_IN, ctx->ff, n, F);
        step_matmul(ctx, step, n_reply, ctx->ff, F, &down, 1);
        elementwise(ctx, add_task, ctx->x, ctx->xn, n, H);
    }

    int rows = step->n_logit_rows;
    if (rows > 0) {
        /* the step's last rows, or the listed ones gathered to the front */
        const float *x = ctx->x + (int64_t)(n - rows) * H;
        if (step->logit_rows) {
            for (int i = 0; i < rows; i++)
                if (step->logit_rows[i] != i)
                    memcpy(ctx->x + i * H, ctx->x + (int64_t)step->logit_rows[i] * H,
                           (size_t)H * sizeof(float));
            x = ctx->x;
        }
        layer_norm(ctx, x, ctx->xn, rows, &m->out_norm);
        nt_matmul_target head = {&m->lm_head, NULL, logits};
        nt_matmul_with(&ctx->exec, ctx->xn, rows, H, &head, 1,
                       step->kernels == NT_STEP_BY_ROLE ? NT_MATMUL_EACH_ROW
                                                        : NT_MATMUL_BY_SIZE);
    }
}

void nt_forward(nt_context *ctx, const int32_t *tokens, int n, int logits_from,
                float *logits) {
    static const int32_t block0 = 0;
    nt_step_run run = {0, n, ctx->n_past, {&block0, ctx->n_ctx}, 1};
    nt_step step = {tokens, n, &run, 1, NT_STEP_BY_SIZE, NULL,
                    logits_from < n ? n - logits_from : 0};
    nt_forward_step(ctx, &step, logits);
    ctx->n_past += n;
}
