/*
 * awq.c - activation-aware weight quantization (AWQ, Lin et al. 2023).
 *
 * Rounding a weight row to 4 bits spreads the error evenly over its
 * columns, but the columns do not matter evenly: a few input channels
 * carry activations many times larger than the rest, and the error in
 * their weights dominates the output error. AWQ scales those columns up
 * before rounding (so they are rounded relatively finer) and scales the
 * activations that feed them down by the same factor, which the model
 * absorbs exactly into the operation before (see quantize.h for where
 * each scale is folded). The function computed is unchanged; only the
 * rounding error moves.
 *
 * The scale of input channel j is s_j = mean|x_j|^alpha, normalized so
 * that sqrt(max s * min s) = 1; alpha is searched per layer and per group
 * of matrices sharing an input (q/k/v; o; up; down) on a grid of
 * ALPHA_STEPS values in [0, 1], keeping the one whose rounded weights give
 * the least output error on calibration activations:
 *
 *     err(alpha) = sum over sampled activation rows x and weight rows w of
 *                  (x . (w - Q(w * s) / s))^2
 *
 * where Q rounds to the matrix's target type and back. alpha = 0 is plain
 * rounding, so the search never picks worse than round-to-nearest on its
 * sample. Two samplings keep this affordable on a 4B model: SAMPLE_ROWS
 * activation rows per layer (a reservoir sample over all calibration
 * tokens; the channel means use every token) and EVAL_ROWS evenly spaced
 * weight rows per matrix (rows round independently, so a subset estimates
 * the whole matrix's error without bias).
 *
 * Activations come from one float32 forward pass of the unquantized model
 * over the calibration text, in windows of WINDOW tokens; since the scales
 * are exact, the scaled model's activations at each layer are the same.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/context.h"
#include "model/quantize.h"

#define SAMPLE_ROWS 64
#define EVAL_ROWS 256
#define ALPHA_STEPS 11
#define WINDOW 512
#define DEFAULT_TOKENS 2048

/* ---- collecting activation statistics ------------------------------------- */

typedef struct point_stats {
    double *sum_abs;      /* [dim]: sum of |x_j| over every token */
    float *sample;        /* [SAMPLE_ROWS][dim]: a reservoir of rows */
    int64_t seen;         /* tokens seen */
    int n_sample;
} point_stats;

typedef struct collector {
    int64_t dim[NT_CAPTURE_COUNT];
    point_stats *stats;   /* [n_layer][NT_CAPTURE_COUNT] */
    uint64_t rng;
    int failed;
} collector;

static uint64_t next_random(uint64_t *state) {
    /* splitmix64: enough for choosing reservoir slots, and reproducible */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void on_capture(void *user, int layer, nt_capture_point point, const float *x,
                       int n_rows, int64_t n_cols) {
    collector *c = user;
    point_stats *ps = &c->stats[layer * NT_CAPTURE_COUNT + point];
    for (int r = 0; r < n_rows; r++) {
        const float *row = x + (int64_t)r * n_cols;
        for (int64_t j = 0; j < n_cols; j++)
            ps->sum_abs[j] += fabsf(row[j]);
        int64_t slot = ps->n_sample < SAMPLE_ROWS
                           ? ps->n_sample++
                           : (int64_t)(next_random(&c->rng) % (uint64_t)(ps->seen + 1));
        if (slot < SAMPLE_ROWS)
            memcpy(ps->sample + slot * n_cols, row, (size_t)n_cols * sizeof *row);
        ps->seen++;
    }
}

/* ---- the search ---------------------------------------------------------------- */

/* One matrix of a group: its weights, target type and how the group's
 * scale vector maps to its columns. */
typedef struct group_member {
    const nt_matrix *w;
    nt_dtype type;
    const int32_t *col_to_scale;  /* NULL: column j uses scale j */
} group_member;

/* Scales for `alpha` from channel means, normalized. */
static void make_scales(const double *mean_abs, int64_t n, double alpha, float *s) {
    double hi = 0.0;
    for (int64_t j = 0; j < n; j++)
        hi = mean_abs[j] > hi ? mean_abs[j] : hi;
    double floor_v = hi > 0.0 ? hi * 1e-5 : 1.0;
    double lo_s = INFINITY, hi_s = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double v = pow(mean_abs[j] > floor_v ? mean_abs[j] : floor_v, alpha);
        s[j] = (float)v;
        lo_s = v < lo_s ? v : lo_s;
        hi_s = v > hi_s ? v : hi_s;
    }
    double norm = sqrt(lo_s * hi_s);
    for (int64_t j = 0; j < n; j++)
        s[j] = (float)(s[j] / norm);
}

/* The output error of rounding the members with column scales s. */
static double group_error(const group_member *mem, int n_mem, const float *s,
                          const point_stats *ps, float *w, float *ws, void *qbuf) {
    double total = 0.0;
    for (int k = 0; k < n_mem; k++) {
        const nt_matrix *m = mem[k].w;
        const nt_dtype_traits *src = nt_dtype_traits_of(m->dtype);
        const nt_dtype_traits *dst = nt_dtype_traits_of(mem[k].type);
        int64_t K = m->cols;
        int64_t step = m->rows > EVAL_ROWS ? m->rows / EVAL_ROWS : 1;
        for (int64_t r = 0; r < m->rows; r += step) {
            src->to_f32[NT_ISA_GENERIC]((const char *)m->data + (uint64_t)r * m->row_bytes,
                                        w, K);
            for (int64_t j = 0; j < K; j++) {
                float sj = s[mem[k].col_to_scale ? mem[k].col_to_scale[j] : j];
                ws[j] = w[j] * sj;
            }
            dst->from_f32(ws, qbuf, K);
            dst->to_f32[NT_ISA_GENERIC](qbuf, ws, K);
            for (int64_t j = 0; j < K; j++) {
                float sj = s[mem[k].col_to_scale ? mem[k].col_to_scale[j] : j];
                ws[j] = w[j] - ws[j] / sj;   /* the weight error, unscaled */
            }
            for (int i = 0; i < ps->n_sample; i++) {
                const float *x = ps->sample + (int64_t)i * K;
                double d = 0.0;
                for (int64_t j = 0; j < K; j++)
                    d += (double)x[j] * ws[j];
                total += d * d;
            }
        }
    }
    return total;
}

/*
 * Finds the best scales for one group; mean_abs has n_scale channels.
 * Writes them to best (n_scale floats).
 */
static double search_group(const group_member *mem, int n_mem, const double *mean_abs,
                           int64_t n_scale, const point_stats *ps, float *best,
                           float *s, float *w, float *ws, void *qbuf,
                           double *rtn_error) {
    double best_err = INFINITY, best_alpha = 0.0;
    for (int a = 0; a < ALPHA_STEPS; a++) {
        double alpha = (double)a / (ALPHA_STEPS - 1);
        make_scales(mean_abs, n_scale, alpha, s);
        double e = group_error(mem, n_mem, s, ps, w, ws, qbuf);
        if (a == 0)
            *rtn_error = e;
        if (e < best_err) {
            best_err = e;
            best_alpha = alpha;
            memcpy(best, s, (size_t)n_scale * sizeof *s);
        }
    }
    (void)best_alpha;
    return best_err;
}

/* ---- folding and the whole run ------------------------------------------- */

void nt_awq_scales_free(nt_awq_scales *awq) {
    if (!awq)
        return;
    free(awq->attn_in); /* one block for all six per-layer pointer lists */
    free(awq->attn_norm);
    free(awq->ffn_norm);
    free(awq->bv);
    free(awq->b_up);
    free(awq->arena);
    memset(awq, 0, sizeof *awq);
}

static nt_status calibrate(const nt_model *m, const nt_tokenizer *tok, const char *path,
                           const nt_quantize_params *qp, collector *c, nt_error *err) {
    size_t len;
    char *text = nt_read_file(path, (size_t)1 << 30, &len, err);
    if (!text)
        return err ? err->status : NT_ERR_IO;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    nt_status s = nt_tokenize(tok, text, len, NT_TOKENIZE_BOS, &ids, &n_ids, err);
    free(text);
    if (s != NT_OK)
        return s;
    size_t want = qp->awq_tokens > 0 ? (size_t)qp->awq_tokens : DEFAULT_TOKENS;
    if (n_ids > want)
        n_ids = want;
    if (n_ids < 16) {
        free(ids);
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "%s: %zu tokens of calibration text; AWQ needs at least 16 "
                       "(a few thousand is usual)",
                       path, n_ids);
    }
    nt_context_params cp = nt_context_default_params();
    cp.n_ctx = WINDOW;
    cp.n_batch = WINDOW;
    cp.n_threads = qp->n_threads > 0 ? qp->n_threads : 1;
    nt_context *ctx = nt_context_new((nt_model *)m, &cp, err);
    if (!ctx) {
        free(ids);
        return err ? err->status : NT_ERR_NO_MEMORY;
    }
    ctx->capture = on_capture;
    ctx->capture_user = c;
    for (size_t at = 0; s == NT_OK && at < n_ids; at += WINDOW) {
        size_t n = n_ids - at < WINDOW ? n_ids - at : WINDOW;
        nt_kv_clear(ctx);
        s = nt_eval(ctx, ids + at, (int)n, NT_LOGITS_NONE, err);
        if (qp->progress)
            qp->progress("AWQ calibration", (double)(at + n) / (double)n_ids * 0.999,
                         qp->progress_user);
    }
    nt_context_free(ctx);
    free(ids);
    return s;
}

nt_status nt_awq_compute(const nt_model *m, const nt_tokenizer *tok,
                         const char *calibration_path, const nt_quantize_params *qp,
                         nt_awq_scales *out, nt_error *err) {
    nt_quantize_params target = *qp;
    if (qp->awq_for)
        target.type = qp->awq_for;
    if (!nt_quantize_type_known(target.type))
        return nt_fail(err, NT_ERR_ARGUMENT, "AWQ: unknown type \"%s\"", target.type);
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int wide = 0; wide < 2; wide++) {
            nt_dtype t = nt_quantize_matrix_type(m, &target, l, wide);
            if (!nt_dtype_traits_of(t)->from_f32)
                return nt_fail(err, NT_ERR_UNSUPPORTED, "AWQ: cannot round to type %s",
                               nt_dtype_traits_of(t)->name);
        }
    const nt_hparams *hp = &m->hp;
    int64_t H = hp->n_embd, hd = hp->head_dim, Q = (int64_t)hp->n_head * hd,
            KV = (int64_t)hp->n_head_kv * hd, F = hp->n_ff;
    int L = hp->n_layer, group = hp->n_head / hp->n_head_kv;
    memset(out, 0, sizeof *out);

    collector c = {{H, Q, H, F}, NULL, 0x5eed, 0};
    size_t per_layer = 0;
    for (int p = 0; p < NT_CAPTURE_COUNT; p++)
        per_layer += (size_t)c.dim[p];
    c.stats = calloc((size_t)L * NT_CAPTURE_COUNT, sizeof *c.stats);
    double *sums = calloc((size_t)L * per_layer, sizeof *sums);
    float *samples = malloc((size_t)L * per_layer * SAMPLE_ROWS * sizeof *samples);
    if (!c.stats || !sums || !samples) {
        free(c.stats);
        free(sums);
        free(samples);
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for AWQ's statistics");
    }
    size_t off = 0;
    for (int l = 0; l < L; l++)
        for (int p = 0; p < NT_CAPTURE_COUNT; p++) {
            c.stats[l * NT_CAPTURE_COUNT + p].sum_abs = sums + off;
            c.stats[l * NT_CAPTURE_COUNT + p].sample = samples + off * SAMPLE_ROWS;
            off += (size_t)c.dim[p];
        }
    nt_status s = calibrate(m, tok, calibration_path, qp, &c, err);

    /* The per-layer vectors, all in one arena. */
    size_t n_floats = (size_t)L * (size_t)(H + 2 * KV + Q + H + 2 * F + 4 * H);
    if (hp->attention_bias)
        n_floats += (size_t)L * (size_t)KV;
    if (hp->mlp_bias)
        n_floats += (size_t)L * (size_t)F;
    float **ptrs = calloc((size_t)L * 8, sizeof *ptrs);
    out->arena = calloc(n_floats, sizeof(float));
    out->attn_norm = calloc((size_t)L, sizeof *out->attn_norm);
    out->ffn_norm = calloc((size_t)L, sizeof *out->ffn_norm);
    int32_t *o_map = malloc((size_t)Q * sizeof *o_map);
    int64_t widest = F > Q ? F : Q;
    widest = widest > H ? widest : H;
    float *work = malloc((size_t)(4 * widest + 256) * sizeof *work);
    double *mean = malloc((size_t)widest * sizeof *mean);
    if (s == NT_OK && (!ptrs || !out->arena || !out->attn_norm || !out->ffn_norm ||
                       !o_map || !work || !mean))
        s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for AWQ's scales");
    if (ptrs) {
        out->attn_in = ptrs;
        out->v_out_inv = ptrs + L;
        out->o_in = ptrs + 2 * L;
        out->ffn_in = ptrs + 3 * L;
        out->up_out_inv = ptrs + 4 * L;
        out->down_in = ptrs + 5 * L;
    }
    if (s == NT_OK && hp->attention_bias && !(out->bv = calloc((size_t)L, sizeof(float *))))
        s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    if (s == NT_OK && hp->mlp_bias && !(out->b_up = calloc((size_t)L, sizeof(float *))))
        s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");

    /* o's columns: query head h, dim d reads kv channel (h / group, d). */
    for (int64_t j = 0; s == NT_OK && j < Q; j++)
        o_map[j] = (int32_t)((j / hd) / group * hd + j % hd);

    double rtn_total = 0.0, awq_total = 0.0;
    float *next = out->arena;
    for (int l = 0; s == NT_OK && l < L; l++) {
        const nt_layer *Ly = &m->layers[l];
        const point_stats *st = &c.stats[l * NT_CAPTURE_COUNT];
        float *sv = work, *w = work + widest, *ws = work + 2 * widest;
        void *qbuf = work + 3 * widest;
        double rtn, best;
#define TAKE(n) (next += (n), next - (n))
        /* q, k, v: one input */
        out->attn_in[l] = TAKE(H);
        for (int64_t j = 0; j < H; j++)
            mean[j] = st[NT_CAPTURE_ATTN_IN].sum_abs[j] / (double)st[0].seen;
        group_member qkv[3] = {
            {&Ly->wq, nt_quantize_matrix_type(m, &target, l, 0), NULL},
            {&Ly->wk, nt_quantize_matrix_type(m, &target, l, 0), NULL},
            {&Ly->wv, nt_quantize_matrix_type(m, &target, l, 1), NULL}};
        best = search_group(qkv, 3, mean, H, &st[NT_CAPTURE_ATTN_IN], out->attn_in[l],
                            sv, w, ws, qbuf, &rtn);
        rtn_total += rtn;
        awq_total += best;
        /* o: its scales live in kv space, averaged over the query heads */
        out->o_in[l] = TAKE(Q);
        float *s_kv = TAKE(KV);
        out->v_out_inv[l] = TAKE(KV);
        for (int64_t k = 0; k < KV; k++)
            mean[k] = 0.0;
        for (int64_t j = 0; j < Q; j++)
            mean[o_map[j]] += st[NT_CAPTURE_O_IN].sum_abs[j] /
                              (double)st[NT_CAPTURE_O_IN].seen / group;
        group_member o = {&Ly->wo, nt_quantize_matrix_type(m, &target, l, 0), o_map};
        best = search_group(&o, 1, mean, KV, &st[NT_CAPTURE_O_IN], s_kv, sv, w, ws,
                            qbuf, &rtn);
        rtn_total += rtn;
        awq_total += best;
        for (int64_t j = 0; j < Q; j++)
            out->o_in[l][j] = s_kv[o_map[j]];
        for (int64_t k = 0; k < KV; k++)
            out->v_out_inv[l][k] = 1.0f / s_kv[k];
        /* up */
        out->ffn_in[l] = TAKE(H);
        for (int64_t j = 0; j < H; j++)
            mean[j] = st[NT_CAPTURE_FFN_IN].sum_abs[j] / (double)st[NT_CAPTURE_FFN_IN].seen;
        group_member up = {&Ly->w_up, nt_quantize_matrix_type(m, &target, l, 0), NULL};
        best = search_group(&up, 1, mean, H, &st[NT_CAPTURE_FFN_IN], out->ffn_in[l], sv,
                            w, ws, qbuf, &rtn);
        rtn_total += rtn;
        awq_total += best;
        /* down: scaled through up's rows, by the square root */
        out->down_in[l] = TAKE(F);
        out->up_out_inv[l] = TAKE(F);
        for (int64_t j = 0; j < F; j++)
            mean[j] = st[NT_CAPTURE_DOWN_IN].sum_abs[j] /
                      (double)st[NT_CAPTURE_DOWN_IN].seen;
        group_member down = {&Ly->w_down, nt_quantize_matrix_type(m, &target, l, 1), NULL};
        best = search_group(&down, 1, mean, F, &st[NT_CAPTURE_DOWN_IN], out->down_in[l],
                            sv, w, ws, qbuf, &rtn);
        rtn_total += rtn;
        awq_total += best;
        for (int64_t j = 0; j < F; j++)
            out->up_out_inv[l][j] = 1.0f / sqrtf(out->down_in[l][j]);

        /* The norms before q/k/v and up take the inverse scales. */
        nt_norm *an = &out->attn_norm[l], *fn = &out->ffn_norm[l];
        an->scale = TAKE(H);
        an->shift = TAKE(H);
        fn->scale = TAKE(H);
        fn->shift = TAKE(H);
        for (int64_t j = 0; j < H; j++) {
            an->scale[j] = Ly->attn_norm.scale[j] / out->attn_in[l][j];
            an->shift[j] = Ly->attn_norm.shift[j] / out->attn_in[l][j];
            fn->scale[j] = Ly->ffn_norm.scale[j] / out->ffn_in[l][j];
            fn->shift[j] = Ly->ffn_norm.shift[j] / out->ffn_in[l][j];
        }
        if (out->bv) {
            out->bv[l] = TAKE(KV);
            for (int64_t k = 0; k < KV; k++)
                out->bv[l][k] = Ly->bv[k] * out->v_out_inv[l][k];
        }
        if (out->b_up) {
            out->b_up[l] = TAKE(F);
            for (int64_t j = 0; j < F; j++)
                out->b_up[l][j] = Ly->b_up[j] * out->up_out_inv[l][j];
        }
#undef TAKE
        if (qp->progress)
            qp->progress("AWQ search", (double)(l + 1) / L * 0.999, qp->progress_user);
    }
    if (s == NT_OK && qp->progress)
        qp->progress("AWQ search", 1.0, qp->progress_user);
    if (s == NT_OK && qp->awq_errors) {
        qp->awq_errors[0] = awq_total;
        qp->awq_errors[1] = rtn_total;
    }
    free(o_map);
    free(work);
    free(mean);
    free(c.stats);
    free(sums);
    free(samples);
    if (s != NT_OK)
        nt_awq_scales_free(out);
    return s;
}
