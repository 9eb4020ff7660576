/*
 * test_quantize.c - files written by nt_model_quantize (`nemotron convert`
 * and `nemotron quantize`) read back to the tensors they should hold.
 *
 * usage: test_quantize FIXTURE_DIR SCRATCH_DIR
 *
 *   - convert to f32, bf16 and f16: every matrix reads back equal to the
 *     source converted value by value (bf16 -> bf16 is the same bytes),
 *     every norm as 1 + w, and the f32 file's logits equal the
 *     safetensors model's;
 *   - quantize to each block type: every matrix reads back as exactly the
 *     bytes the type's from_f32 makes of the source row (so the file holds
 *     what the type's code computes, laid out right);
 *   - quantize model-f32.gguf with the recipes of the llama-quantize
 *     fixtures (q8_0, q4_0, q6_k, q5_k_m, q4_k_m): every matrix holds
 *     llama-quantize's bytes (its reference quantizers, type choices and
 *     layout);
 *   - AWQ: the folded model written unrounded (--type f32 --awq-for T)
 *     computes the original's logits to 1e-4, and its scales are not all 1.
 */
#include <math.h>

#include "check.h"
#include "fixture.h"
#include "model/model.h"
#include "nemotron.h"

static const int32_t ids[] = {2, 4, 100, 7, 1500, 33, 900, 12, 5, 77};
#define N_IDS ((int)(sizeof ids / sizeof ids[0]))

static float *logits_of(nt_model *m) {
    nt_context_params p = nt_context_default_params();
    p.n_ctx = 64;
    nt_error err;
    nt_context *ctx = nt_context_new(m, &p, &err);
    CHECK_MSG(ctx != NULL, "%s", err.message);
    if (!ctx)
        return NULL;
    int nv = m->hp.n_vocab;
    float *out = malloc((size_t)N_IDS * (size_t)nv * sizeof *out);
    CHECK(nt_eval(ctx, ids, N_IDS, NT_LOGITS_ALL, &err) == NT_OK);
    for (int i = 0; i < N_IDS; i++)
        memcpy(out + (size_t)i * nv, nt_logits(ctx, i), (size_t)nv * sizeof *out);
    nt_context_free(ctx);
    return out;
}

static nt_model *load(const char *path) {
    nt_error err;
    nt_model *m = nt_model_load(path, NULL, &err);
    CHECK_MSG(m != NULL, "%s: %s", path, err.message);
    return m;
}

static int write_model(const char *in, const char *out, const char *type,
                       const char *awq_text, const char *awq_for, int pure) {
    nt_quantize_params qp = nt_quantize_default_params();
    qp.type = type;
    qp.pure = pure;
    qp.n_threads = 2;
    qp.awq_calibration = awq_text;
    qp.awq_for = awq_for;
    qp.awq_tokens = 512;
    nt_error err;
    nt_status s = nt_model_quantize(in, out, &qp, &err);
    CHECK_MSG(s == NT_OK, "%s to %s: %s", in, type, err.message);
    return s == NT_OK;
}

#define MAX_MATRICES (1 + 6 * 64 + 1)

/* The model's matrices (of its first 64 layers) into out; returns how many. */
static int matrices_of(const nt_model *m, const nt_matrix **out) {
    int n = 0;
    out[n++] = &m->tok_embd;
    for (int l = 0; l < m->hp.n_layer && l < 64; l++) {
        const nt_layer *x = &m->layers[l];
        out[n++] = &x->wq;
        out[n++] = &x->wk;
        out[n++] = &x->wv;
        out[n++] = &x->wo;
        out[n++] = &x->w_up;
        out[n++] = &x->w_down;
    }
    out[n++] = &m->lm_head;
    return n;
}

/* Every matrix of `got` holds exactly what from_f32 makes of `src`'s rows
 * in got's dtype. */
static void expect_matrices(const nt_model *src, const nt_model *got, const char *what) {
    const nt_matrix *a[MAX_MATRICES], *b[MAX_MATRICES];
    int n = matrices_of(src, a);
    CHECK(matrices_of(got, b) == n);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const nt_matrix *s = a[i], *g = b[i];
        if (s->rows != g->rows || s->cols != g->cols) {
            bad++;
            continue;
        }
        const nt_dtype_traits *st = nt_dtype_traits_of(s->dtype);
        const nt_dtype_traits *gt = nt_dtype_traits_of(g->dtype);
        float *row = malloc((size_t)s->cols * sizeof *row);
        unsigned char *want = malloc((size_t)g->row_bytes);
        for (int64_t r = 0; r < s->rows; r++) {
            st->to_f32[NT_ISA_GENERIC]((const char *)s->data + (uint64_t)r * s->row_bytes,
                                       row, s->cols);
            gt->from_f32(row, want, s->cols);
            if (memcmp(want, (const char *)g->data + (uint64_t)r * g->row_bytes,
                       (size_t)g->row_bytes) != 0) {
                if (bad < 3)
                    fprintf(stderr, "%s: %s row %lld differs\n", what, g->name,
                            (long long)r);
                bad++;
                break;
            }
        }
        free(row);
        free(want);
    }
    CHECK_MSG(bad == 0, "%s: %d of %d matrices differ", what, bad, n);
    /* norms as applied (1 + w) */
    int norm_bad = 0;
    for (int l = 0; l < src->hp.n_layer; l++)
        for (int j = 0; j < src->hp.n_embd; j++)
            norm_bad += src->layers[l].attn_norm.scale[j] != got->layers[l].attn_norm.scale[j] ||
                        src->layers[l].ffn_norm.shift[j] != got->layers[l].ffn_norm.shift[j];
    CHECK_MSG(norm_bad == 0, "%s: %d norm values differ", what, norm_bad);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_quantize FIXTURE_DIR SCRATCH_DIR\n");
        return 2;
    }
    char src_path[4096], out[4200], mk[4200], text[4200];
    snprintf(src_path, sizeof src_path, "%s/tiny-nemotron", argv[1]);
    snprintf(text, sizeof text, "%s/tokenizer/texts.json", argv[1]);
    snprintf(mk, sizeof mk, "mkdir -p '%s'", argv[2]);
    CHECK(system(mk) == 0);
    nt_model *src = load(src_path);
    if (!src)
        return check_summary();
    float *want = logits_of(src);

    /* conversions */
    static const char *floats[] = {"f32", "bf16", "f16"};
    for (int i = 0; i < 3; i++) {
        snprintf(out, sizeof out, "%s/convert-%s.gguf", argv[2], floats[i]);
        if (!write_model(src_path, out, floats[i], NULL, NULL, 0))
            continue;
        nt_model *got = load(out);
        if (!got)
            continue;
        expect_matrices(src, got, floats[i]);
        CHECK(strcmp(got->weight_type, floats[i]) == 0);
        if (i == 0) {
            float *l = logits_of(got);
            double d = want && l ? max_abs_diff(l, want, N_IDS * src->hp.n_vocab) : 1;
            CHECK_MSG(d == 0.0, "f32 GGUF logits differ by %.3g", d);
            free(l);
        }
        nt_model_free(got);
    }

    /* block types: every one has a quantizer */
    static const char *blocks[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                   "q4_k", "q5_k", "q6_k"};
    const char *awq_for = NULL;
    int n_written = 0;
    for (int i = 0; i < 8; i++) {
        int t = nt_dtype_from_name(blocks[i]);
        if (!nt_dtype_traits_of((nt_dtype)t)->from_f32) {
            CHECK_MSG(0, "%s: no quantizer", blocks[i]);
            continue;
        }
        snprintf(out, sizeof out, "%s/quantize-%s.gguf", argv[2], blocks[i]);
        /* pure: every matrix in this type (the recipe's q6_k lm_head is
           q6_k's own test) */
        if (!write_model(src_path, out, blocks[i], NULL, NULL, 1))
            continue;
        nt_model *got = load(out);
        if (got)
            expect_matrices(src, got, blocks[i]);
        nt_model_free(got);
        if (!awq_for)
            awq_for = blocks[i];
        n_written++;
    }
    printf("block types written and read back: %d of 8\n", n_written);
    CHECK(n_written == 8);

    /* llama-quantize's files (the fixtures, which it made of model-f32.gguf
       without an importance matrix): each recipe writes the same bytes */
    static const char *recipes[] = {"q8_0", "q4_0", "q6_k", "q5_k_m", "q4_k_m"};
    for (int i = 0; i < 5; i++) {
        char in[4200], ref[4200];
        snprintf(in, sizeof in, "%s/model-f32.gguf", src_path);
        snprintf(ref, sizeof ref, "%s/model-%s.gguf", src_path, recipes[i]);
        snprintf(out, sizeof out, "%s/recipe-%s.gguf", argv[2], recipes[i]);
        if (!write_model(in, out, recipes[i], NULL, NULL, 0))
            continue;
        nt_model *got = load(out), *want = load(ref);
        if (got && want) {
            const nt_matrix *a[MAX_MATRICES], *b[MAX_MATRICES];
            int n = matrices_of(want, a), bad = 0;
            CHECK(matrices_of(got, b) == n);
            for (int j = 0; j < n; j++)
                if (a[j]->dtype != b[j]->dtype || a[j]->rows != b[j]->rows ||
                    a[j]->row_bytes != b[j]->row_bytes ||
                    memcmp(a[j]->data, b[j]->data, (size_t)(a[j]->rows * a[j]->row_bytes)) != 0) {
                    if (bad++ < 3)
                        fprintf(stderr, "%s: %s is not llama-quantize's\n", recipes[i],
                                a[j]->name);
                }
            CHECK_MSG(bad == 0, "%s: %d of %d matrices differ from llama-quantize's",
                      recipes[i], bad, n);
        }
        nt_model_free(got);
        nt_model_free(want);
    }

    /* AWQ folded into an unrounded model computes the same function */
    const char *target = awq_for ? awq_for : "f16";
    snprintf(out, sizeof out, "%s/awq-f32.gguf", argv[2]);
    if (write_model(src_path, out, "f32", text, target, 0)) {
        nt_model *got = load(out);
        if (got && want) {
            float *l = logits_of(got);
            double d = l ? max_abs_diff(l, want, N_IDS * src->hp.n_vocab) : 1;
            printf("AWQ (scales for %s) folded, unrounded: max |logit diff| %.3g\n",
                   target, d);
            CHECK_MSG(d < 1e-4, "AWQ-folded logits differ by %.3g", d);
            int moved = 0;
            for (int j = 0; j < src->hp.n_embd; j++)
                moved += got->layers[0].attn_norm.scale[j] != src->layers[0].attn_norm.scale[j] ||
                         got->layers[1].ffn_norm.scale[j] != src->layers[1].ffn_norm.scale[j];
            printf("AWQ: %d of %d norm values rescaled\n", moved, 2 * src->hp.n_embd);
            if (awq_for)
                CHECK_MSG(moved > 0, "AWQ for %s chose no scaling at all", awq_for);
            free(l);
        }
        nt_model_free(got);
    }
    free(want);
    nt_model_free(src);
    return check_summary();
}
