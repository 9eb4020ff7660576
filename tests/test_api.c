/*
 * test_api.c - the library's contract, beyond the numbers: several contexts
 * on one model, thread counts, cache truncation, errors that leave state
 * untouched, and the sampler's basic promises.
 *
 * usage: test_api MODEL_DIR
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nemotron.h"

static const int32_t prompt[] = {2, 4, 100, 7, 1500, 31, 999, 12, 5, 600, 7, 7, 42};
#define N_PROMPT ((int)(sizeof prompt / sizeof prompt[0]))

static nt_context *context(nt_model *m, int threads, int n_ctx) {
    nt_context_params p = nt_context_default_params();
    p.n_threads = threads;
    p.n_ctx = n_ctx;
    nt_error err;
    nt_context *ctx = nt_context_new(m, &p, &err);
    CHECK_MSG(ctx != NULL, "%s", err.message);
    return ctx;
}

static int same_floats(const float *a, const float *b, int n) {
    return a && b && memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* Contexts with 1, 2 and 3 threads give bit-identical logits: the thread
 * count changes who computes a row, never how. */
static void test_threads_and_contexts(nt_model *m, int n_vocab) {
    nt_context *c1 = context(m, 1, 64), *c2 = context(m, 2, 64), *c3 = context(m, 3, 64);
    if (!c1 || !c2 || !c3)
        return;
    CHECK(nt_n_threads(c1) == 1 && nt_n_threads(c3) == 3);
    CHECK(nt_eval(c1, prompt, N_PROMPT, NT_LOGITS_ALL, NULL) == NT_OK);
    CHECK(nt_eval(c2, prompt, N_PROMPT, NT_LOGITS_ALL, NULL) == NT_OK);
    CHECK(nt_eval(c3, prompt, N_PROMPT, NT_LOGITS_ALL, NULL) == NT_OK);
    for (int i = 0; i < N_PROMPT; i++) {
        CHECK_MSG(same_floats(nt_logits(c1, i), nt_logits(c2, i), n_vocab),
                  "1 vs 2 threads differ at %d", i);
        CHECK_MSG(same_floats(nt_logits(c1, i), nt_logits(c3, i), n_vocab),
                  "1 vs 3 threads differ at %d", i);
    }
    /* Interleaved use of two contexts does not mix their caches. */
    int32_t a = 17, b = 1999;
    CHECK(nt_eval(c1, &a, 1, NT_LOGITS_LAST, NULL) == NT_OK);
    CHECK(nt_eval(c2, &b, 1, NT_LOGITS_LAST, NULL) == NT_OK);
    CHECK(nt_eval(c3, &a, 1, NT_LOGITS_LAST, NULL) == NT_OK);
    CHECK(same_floats(nt_logits(c1, -1), nt_logits(c3, -1), n_vocab));
    CHECK(!same_floats(nt_logits(c1, -1), nt_logits(c2, -1), n_vocab));
    nt_context_free(c1);
    nt_context_free(c2);
    nt_context_free(c3);
}

static void test_truncate_and_clear(nt_model *m, int n_vocab) {
    nt_context *ctx = context(m, 2, 64);
    if (!ctx)
        return;
    float *want = malloc((size_t)n_vocab * sizeof *want);
    CHECK(nt_eval(ctx, prompt, N_PROMPT, NT_LOGITS_LAST, NULL) == NT_OK);
    memcpy(want, nt_logits(ctx, -1), (size_t)n_vocab * sizeof *want);
    CHECK(nt_logits(ctx, 0) == NULL); /* only the last row was computed */
    CHECK(nt_logits(ctx, N_PROMPT - 1) == nt_logits(ctx, -1));

    /* Drop the last 5 tokens, re-evaluate them: same logits. */
    nt_error err;
    CHECK(nt_kv_truncate(ctx, N_PROMPT - 5, &err) == NT_OK);
    CHECK(nt_n_past(ctx) == N_PROMPT - 5);
    CHECK(nt_logits(ctx, -1) == NULL);
    CHECK(nt_eval(ctx, prompt + N_PROMPT - 5, 5, NT_LOGITS_LAST, NULL) == NT_OK);
    CHECK(same_floats(want, nt_logits(ctx, -1), n_vocab));

    /* Replace the tail with other tokens: the logits change. */
    int32_t other[2] = {1234, 5};
    CHECK(nt_kv_truncate(ctx, N_PROMPT - 2, NULL) == NT_OK);
    CHECK(nt_eval(ctx, other, 2, NT_LOGITS_LAST, NULL) == NT_OK);
    CHECK(!same_floats(want, nt_logits(ctx, -1), n_vocab));

    CHECK(nt_kv_truncate(ctx, N_PROMPT + 1, &err) == NT_ERR_ARGUMENT);
    CHECK_STR_CONTAINS(err.message, "cannot keep");
    CHECK(nt_kv_truncate(ctx, -1, NULL) == NT_ERR_ARGUMENT);

    nt_kv_clear(ctx);
    CHECK(nt_n_past(ctx) == 0);
    CHECK(nt_eval(ctx, prompt, N_PROMPT, NT_LOGITS_LAST, NULL) == NT_OK);
    CHECK(same_floats(want, nt_logits(ctx, -1), n_vocab));
    free(want);
    nt_context_free(ctx);
}

static void test_bad_input(nt_model *m, int n_vocab) {
    nt_context *ctx = context(m, 2, 8);
    if (!ctx)
        return;
    nt_error err;
    CHECK(nt_eval(ctx, prompt, 5, NT_LOGITS_LAST, NULL) == NT_OK);
    /* Past the context: refused, nothing appended. */
    CHECK(nt_eval(ctx, prompt, 4, NT_LOGITS_LAST, &err) == NT_ERR_CONTEXT_FULL);
    CHECK_STR_CONTAINS(err.message, "do not fit");
    CHECK(nt_n_past(ctx) == 5);
    /* Ids outside the vocabulary: refused, nothing appended. */
    int32_t bad[2] = {3, n_vocab};
    CHECK(nt_eval(ctx, bad, 2, NT_LOGITS_LAST, &err) == NT_ERR_ARGUMENT);
    CHECK_STR_CONTAINS(err.message, "outside the vocabulary");
    int32_t negative = -1;
    CHECK(nt_eval(ctx, &negative, 1, NT_LOGITS_LAST, NULL) == NT_ERR_ARGUMENT);
    CHECK(nt_n_past(ctx) == 5);
    CHECK(nt_eval(ctx, NULL, 1, NT_LOGITS_LAST, NULL) == NT_ERR_ARGUMENT);
    CHECK(nt_eval(ctx, prompt, 1, (nt_logits_mode)9, NULL) == NT_ERR_ARGUMENT);
    /* Exactly full is fine. */
    CHECK(nt_eval(ctx, prompt, 3, NT_LOGITS_NONE, NULL) == NT_OK);
    CHECK(nt_logits(ctx, -1) == NULL);
    CHECK(nt_n_past(ctx) == 8);
    nt_context_free(ctx);

    nt_context_params p = nt_context_default_params();
    p.n_ctx = 1 << 20;
    CHECK(nt_context_new(m, &p, &err) == NULL && err.status == NT_ERR_ARGUMENT);
    CHECK_STR_CONTAINS(err.message, "max_position_embeddings");
    p = nt_context_default_params();
    p.n_threads = -2;
    CHECK(nt_context_new(m, &p, &err) == NULL && err.status == NT_ERR_ARGUMENT);
    p = nt_context_default_params();
    p.simd = (nt_simd)42;
    CHECK(nt_context_new(m, &p, &err) == NULL);
    CHECK(nt_context_new(NULL, NULL, &err) == NULL && err.status == NT_ERR_ARGUMENT);
    CHECK(nt_model_load("/nonexistent/model", NULL, &err) == NULL &&
          err.status == NT_ERR_IO);
    CHECK_STR_CONTAINS(err.message, "/nonexistent/model");
    nt_model_free(NULL);
    nt_context_free(NULL);
}

static void test_sampler(int n_vocab) {
    float *logits = calloc((size_t)n_vocab, sizeof *logits);
    logits[7] = 5.0f;
    logits[9] = 5.0f; /* a tie: greedy takes the lower id */
    logits[100] = 4.0f;
    nt_sampler *greedy = nt_sampler_new(NULL, NULL);
    CHECK(nt_sampler_sample(greedy, logits, n_vocab) == 7);
    CHECK(nt_sampler_sample(greedy, NULL, n_vocab) == -1);

    /* top-k 2 at any temperature picks only among the two best. */
    nt_sampler_params p = nt_sampler_default_params();
    p.temperature = 1.5f;
    p.top_k = 2;
    p.seed = 11;
    nt_sampler *topk = nt_sampler_new(&p, NULL);
    int seen7 = 0, seen9 = 0, other = 0;
    for (int i = 0; i < 400; i++) {
        int32_t t = nt_sampler_sample(topk, logits, n_vocab);
        seen7 += t == 7;
        seen9 += t == 9;
        other += t != 7 && t != 9;
    }
    CHECK(other == 0 && seen7 > 150 && seen9 > 150);

    /* top-p: with p just above the mass of {7, 9}, only those two. */
    p.top_k = 0;
    p.temperature = 1.0f;
    double z = 2 * exp(5.0) + exp(4.0) + (n_vocab - 3);
    p.top_p = (float)(2 * exp(5.0) / z) * 0.999f;
    nt_sampler *topp = nt_sampler_new(&p, NULL);
    other = 0;
    for (int i = 0; i < 400; i++) {
        int32_t t = nt_sampler_sample(topp, logits, n_vocab);
        other += t != 7 && t != 9;
    }
    CHECK(other == 0);

    /* The same seed draws the same sequence; another seed another one. */
    p.top_p = 1.0f;
    p.temperature = 3.0f;
    nt_sampler *a = nt_sampler_new(&p, NULL), *b = nt_sampler_new(&p, NULL);
    p.seed = 12;
    nt_sampler *c = nt_sampler_new(&p, NULL);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 64; i++) {
        int32_t x = nt_sampler_sample(a, logits, n_vocab);
        same_ab &= x == nt_sampler_sample(b, logits, n_vocab);
        same_ac &= x == nt_sampler_sample(c, logits, n_vocab);
    }
    CHECK(same_ab);
    CHECK(!same_ac);

    nt_error err;
    p.top_p = 0.0f;
    CHECK(nt_sampler_new(&p, &err) == NULL && err.status == NT_ERR_ARGUMENT);
    nt_sampler_free(greedy);
    nt_sampler_free(topk);
    nt_sampler_free(topp);
    nt_sampler_free(a);
    nt_sampler_free(b);
    nt_sampler_free(c);
    free(logits);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_api MODEL_DIR\n");
        return 2;
    }
    nt_error err;
    nt_model *m = nt_model_load(argv[1], NULL, &err);
    CHECK_MSG(m != NULL, "%s", err.message);
    if (!m)
        return check_summary();
    nt_model_info info;
    nt_model_get_info(m, &info);
    CHECK(info.n_layer == 2 && info.n_head == 4 && info.n_head_kv == 2);
    CHECK(info.head_dim == 128 && info.n_rot == 64 && info.n_vocab == 2048);
    CHECK(strcmp(info.weight_type, "bf16") == 0);
    CHECK(info.n_params == 6820864ull); /* 13641728 bytes of bf16 */

    test_threads_and_contexts(m, info.n_vocab);
    test_truncate_and_clear(m, info.n_vocab);
    test_bad_input(m, info.n_vocab);
    test_sampler(info.n_vocab);
    nt_model_free(m);
    return check_summary();
}
