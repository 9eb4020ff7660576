/*
 * context.c - creating contexts and evaluating tokens in them.
 *
 * Memory: the KV cache is sized for n_ctx tokens up front but allocated
 * zero-filled by the system (calloc of a large block maps fresh pages), so
 * only the pages of positions actually written become resident. Scratch is
 * sized for one step of n_batch tokens; longer evaluations run in steps.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/attention.h"
#include "engine/context.h"

#define DEFAULT_BATCH 512

nt_context_params nt_context_default_params(void) {
    nt_context_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

/* cos/sin of pos * theta^(-2i / n_rot), as HF's rotary embedding defines the
 * frequencies, computed in double and rounded once. */
static void fill_rope_tables(nt_context *ctx) {
    const nt_hparams *hp = &ctx->model->hp;
    int half = hp->n_rot / 2;
    for (int i = 0; i < half; i++) {
        double inv_freq = pow((double)hp->rope_theta, -2.0 * i / hp->n_rot);
        for (int p = 0; p < ctx->n_ctx; p++) {
            double a = p * inv_freq;
            ctx->rope_cos[(int64_t)p * half + i] = (float)cos(a);
            ctx->rope_sin[(int64_t)p * half + i] = (float)sin(a);
        }
    }
}

static float *alloc_floats(size_t n, int *ok) {
    float *p = nt_alloc_aligned(n * sizeof(float));
    if (!p)
        *ok = 0;
    return p;
}

static nt_context *context_new(nt_model *model, const nt_context_params *params,
                               int n_slots, nt_error *err);

nt_context *nt_context_new(nt_model *model, const nt_context_params *params,
                           nt_error *err) {
    return context_new(model, params, 0, err);
}

nt_context *nt_context_new_pooled(nt_model *model, const nt_context_params *params,
                                  int n_slots, nt_error *err) {
    if (n_slots < 1) {
        nt_fail(err, NT_ERR_ARGUMENT, "a KV pool of %d positions", n_slots);
        return NULL;
    }
    return context_new(model, params, n_slots, err);
}

/* n_slots 0: one sequence, position p in slot p. */
static nt_context *context_new(nt_model *model, const nt_context_params *params,
                               int n_slots, nt_error *err) {
    nt_context_params defaults = nt_context_default_params();
    if (!params)
        params = &defaults;
    nt_error_clear(err);
    if (!model) {
        nt_fail(err, NT_ERR_ARGUMENT, "no model given");
        return NULL;
    }
    const nt_hparams *hp = &model->hp;
    int n_ctx = params->n_ctx > 0 ? params->n_ctx : hp->n_ctx_train;
    if (params->n_ctx < 0 || n_ctx > hp->n_ctx_train) {
        nt_fail(err, NT_ERR_ARGUMENT,
                "context size %d is outside 1..%d (the model's "
                "max_position_embeddings)",
                params->n_ctx, hp->n_ctx_train);
        return NULL;
    }
    int n_batch = params->n_batch > 0 ? params->n_batch : DEFAULT_BATCH;
    if (params->n_batch < 0 || n_batch > 65536) {
        nt_fail(err, NT_ERR_ARGUMENT, "batch size %d is outside 1..65536",
                params->n_batch);
        return NULL;
    }
    n_batch = nt_min_int(n_batch, n_ctx);
    int n_threads = params->n_threads > 0 ? params->n_threads : online_cpus();
    if (params->n_threads < 0 || n_threads > 1024) {
        nt_fail(err, NT_ERR_ARGUMENT, "thread count %d is outside 1..1024",
                params->n_threads);
        return NULL;
    }
    int isa = nt_isa_from_simd(params->simd);
    if (isa < 0) {
        nt_fail(err, NT_ERR_UNSUPPORTED,
                "this CPU cannot run the \"%s\" kernels (best: \"%s\")",
                nt_simd_name(params->simd), nt_simd_name(nt_simd_best()));
        return NULL;
    }

    nt_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory creating a context");
        return NULL;
    }
    ctx->model = model;
    ctx->n_ctx = n_ctx;
    ctx->n_slots = n_slots > 0 ? n_slots : n_ctx;
    ctx->n_batch = n_batch;
    nt_kernels_init(&ctx->kernels, (nt_isa)isa);

    size_t B = (size_t)n_batch, H = (size_t)hp->n_embd;
    size_t q_dim = (size_t)hp->n_head * (size_t)hp->head_dim;
    size_t kv_dim = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    size_t cache_floats = (size_t)hp->n_layer * (size_t)ctx->n_slots * kv_dim;
    int ok = 1;
    ctx->k_cache = calloc(cache_floats, sizeof(float));
    ctx->v_cache = calloc(cache_floats, sizeof(float));
    ctx->tokens = malloc((size_t)n_ctx * sizeof *ctx->tokens);
    ctx->row_pos = malloc(B * sizeof *ctx->row_pos);
    ctx->row_map = malloc(B * sizeof *ctx->row_map);
    ctx->attn_rows = malloc(B * sizeof *ctx->attn_rows);
    if (!ctx->k_cache || !ctx->v_cache || !ctx->tokens || !ctx->row_pos ||
        !ctx->row_map || !ctx->attn_rows)
        ok = 0;
    size_t rope_floats = (size_t)n_ctx * (size_t)(hp->n_rot / 2);
    ctx->rope_cos = alloc_floats(rope_floats, &ok);
    ctx->rope_sin = alloc_floats(rope_floats, &ok);
    ctx->x = alloc_floats(B * H, &ok);
    ctx->xn = alloc_floats(B * H, &ok);
    ctx->q = alloc_floats(B * q_dim, &ok);
    ctx->k = alloc_floats(B * kv_dim, &ok);
    ctx->v = alloc_floats(B * kv_dim, &ok);
    ctx->att = alloc_floats(B * q_dim, &ok);
    ctx->ff = alloc_floats(B * (size_t)hp->n_ff, &ok);
    /* the widest x of any matmul: max(n_embd, q_dim, n_ff) values */
    size_t widest = H > q_dim ? H : q_dim;
    if ((size_t)hp->n_ff > widest)
        widest = (size_t)hp->n_ff;
    /* per thread: matmul scratch, then attention scores */
    size_t stride = (NT_MATMUL_SCRATCH_FLOATS(widest) +
                     nt_attention_scratch_floats(hp, n_ctx) + 15) & ~(size_t)15;
    ctx->thread_scratch = alloc_floats(stride * (size_t)n_threads, &ok);
    /* keys and values packed for prefill's attention (untouched, so not
     * resident, until a step of many tokens) */
    ctx->kv_panels = alloc_floats(nt_attention_panel_floats(hp, n_ctx), &ok);
    /* 8-bit activations: n_batch rows of the widest x */
    ctx->exec.xq_cap = B * ((widest + 31) & ~(size_t)31);
    ctx->exec.xq = nt_alloc_aligned(ctx->exec.xq_cap);
    ctx->exec.xq_d = alloc_floats(ctx->exec.xq_cap / 32, &ok);
    ctx->exec.xq_s = nt_alloc_aligned(ctx->exec.xq_cap / 16 * sizeof(int16_t));
    ctx->exec.xq_ds = alloc_floats(ctx->exec.xq_cap / 32, &ok);
    if (!ctx->exec.xq || !ctx->exec.xq_s)
        ok = 0;
    if (!ok) {
        nt_context_free(ctx);
        nt_fail(err, NT_ERR_NO_MEMORY,
                "out of memory allocating a context of %d tokens", n_ctx);
        return NULL;
    }
    ctx->exec.pool = nt_pool_new(n_threads, err);
    if (!ctx->exec.pool) {
        nt_context_free(ctx);
        return NULL;
    }
    ctx->exec.kernels = &ctx->kernels;
    ctx->exec.scratch = ctx->thread_scratch;
    ctx->exec.scratch_stride = stride;
    fill_rope_tables(ctx);
    return ctx;
}

void nt_context_free(nt_context *ctx) {
    if (!ctx)
        return;
    nt_pool_free(ctx->exec.pool);
    free(ctx->k_cache);
    free(ctx->v_cache);
    free(ctx->tokens);
    free(ctx->row_pos);
    free(ctx->row_map);
    free(ctx->attn_rows);
    float *bufs[] = {ctx->rope_cos, ctx->rope_sin, ctx->x,  ctx->xn,
                     ctx->q,        ctx->k,        ctx->v,  ctx->att,
                     ctx->ff,       ctx->thread_scratch, ctx->kv_panels,
                     ctx->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        nt_free_aligned(bufs[i]);
    nt_free_aligned(ctx->exec.xq);
    nt_free_aligned(ctx->exec.xq_d);
    nt_free_aligned(ctx->exec.xq_s);
    nt_free_aligned(ctx->exec.xq_ds);
    free(ctx);
}

nt_status nt_eval(nt_context *ctx, const int32_t *tokens, int n_tokens,
                  nt_logits_mode mode, nt_error *err) {
    nt_error_clear(err);
    if (!ctx || (!tokens && n_tokens > 0) || n_tokens < 0)
        return nt_fail(err, NT_ERR_ARGUMENT, "nt_eval: invalid arguments");
    if (mode != NT_LOGITS_LAST && mode != NT_LOGITS_ALL && mode != NT_LOGITS_NONE)
        return nt_fail(err, NT_ERR_ARGUMENT, "nt_eval: unknown logits mode %d",
                       (int)mode);
    const nt_hparams *hp = &ctx->model->hp;
    if (n_tokens > ctx->n_ctx - ctx->n_past)
        return nt_fail(err, NT_ERR_CONTEXT_FULL,
                       "%d tokens do not fit: %d of the context's %d are in use",
                       n_tokens, ctx->n_past, ctx->n_ctx);
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return nt_fail(err, NT_ERR_ARGUMENT,
                           "token %d (at index %d) is outside the vocabulary of %d",
                           (int)tokens[i], i, hp->n_vocab);

    size_t rows = mode == NT_LOGITS_ALL ? (size_t)n_tokens
                  : mode == NT_LOGITS_LAST && n_tokens > 0 ? 1
                                                           : 0;
    size_t need = rows * (size_t)hp->n_vocab;
    if (need > ctx->logits_capacity) {
        float *p = nt_alloc_aligned(need * sizeof(float));
        if (!p)
            return nt_fail(err, NT_ERR_NO_MEMORY,
                           "out of memory for the logits of %zu tokens", rows);
        nt_free_aligned(ctx->logits);
        ctx->logits = p;
        ctx->logits_capacity = need;
    }

    if (n_tokens > 0)
        memcpy(ctx->tokens + ctx->n_past, tokens, (size_t)n_tokens * sizeof *tokens);
    for (int done = 0; done < n_tokens;) {
        int n = nt_min_int(ctx->n_batch, n_tokens - done);
        int last_step = done + n == n_tokens;
        int from = n;  /* no logits */
        float *out = ctx->logits;
        if (mode == NT_LOGITS_ALL) {
            from = 0;
            out = ctx->logits + (size_t)done * (size_t)hp->n_vocab;
        } else if (mode == NT_LOGITS_LAST && last_step) {
            from = n - 1;
        }
        nt_forward(ctx, tokens + done, n, from, out);
        done += n;
    }
    ctx->last_n_tokens = n_tokens;
    ctx->n_logits_rows = (int)rows;
    ctx->logits_first = mode == NT_LOGITS_ALL ? 0 : n_tokens - 1;
    return NT_OK;
}

const float *nt_logits(const nt_context *ctx, int i) {
    if (!ctx || ctx->n_logits_rows == 0)
        return NULL;
    if (i == -1)
        i = ctx->last_n_tokens - 1;
    int row = i - ctx->logits_first;
    if (i < 0 || row < 0 || row >= ctx->n_logits_rows)
        return NULL;
    return ctx->logits + (size_t)row * (size_t)ctx->model->hp.n_vocab;
}

int nt_n_past(const nt_context *ctx) { return ctx->n_past; }
const int32_t *nt_kv_tokens(const nt_context *ctx) { return ctx->tokens; }
int nt_n_ctx(const nt_context *ctx) { return ctx->n_ctx; }
int nt_n_threads(const nt_context *ctx) { return nt_pool_size(ctx->exec.pool); }
nt_simd nt_context_simd(const nt_context *ctx) {
    return nt_isa_to_simd(ctx->kernels.isa);
}

nt_status nt_kv_truncate(nt_context *ctx, int n_keep, nt_error *err) {
    nt_error_clear(err);
    if (!ctx || n_keep < 0 || n_keep > ctx->n_past)
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "cannot keep %d tokens of a cache holding %d", n_keep,
                       ctx ? ctx->n_past : 0);
    ctx->n_past = n_keep;
    ctx->n_logits_rows = 0;
    return NT_OK;
}

void nt_kv_clear(nt_context *ctx) {
    if (!ctx)
        return;
    ctx->n_past = 0;
    ctx->n_logits_rows = 0;
}
