/*
 * test_forward.c - the forward pass against llama.cpp's reference logits.
 *
 * usage: test_forward MODEL FIXTURE_DIR [SIMD]
 *
 * For every case (single, chat, long) the logits at every position must be
 * within 1e-4 of the reference, computed three ways:
 *   (a) the whole prompt in one batched prefill (and again in odd-sized
 *       steps on another thread count, short and long enough for the
 *       GEMM attention of prefill),
 *   (b) token by token through the KV cache,
 *   (c) a prefix in one prefill, the rest token by token;
 * and greedy generation after the chat prompt must give the fixture's 24
 * tokens. SIMD (generic, avx2, avx512, auto) picks the kernels; a set this
 * CPU lacks skips the test (exit 77).
 */
#include "check.h"
#include "fixture.h"
#include "nemotron.h"

#define TOLERANCE 1e-4
#define SKIP 77

static nt_simd simd;

static nt_context *new_context(nt_model *m, int threads, int batch) {
    nt_context_params p = nt_context_default_params();
    p.n_ctx = 512;
    p.n_threads = threads;
    p.n_batch = batch;
    p.simd = simd;
    nt_error err;
    nt_context *ctx = nt_context_new(m, &p, &err);
    CHECK_MSG(ctx != NULL, "%s", err.message);
    return ctx;
}

/* Compares `n` positions of logits starting at position `first`. */
static void expect_logits(const fixture_case *c, int first, const float *got,
                          const char *how) {
    double d = max_abs_diff(got, c->logits + (size_t)first * c->n_vocab, c->n_vocab);
    CHECK_MSG(d < TOLERANCE, "%s: %s: position %d: max |diff| %.3g", c->name, how,
              first, d);
}

static void batched(nt_model *m, const fixture_case *c, int threads, int batch) {
    nt_context *ctx = new_context(m, threads, batch);
    if (!ctx)
        return;
    nt_error err;
    CHECK_MSG(nt_eval(ctx, c->ids, c->n_ids, NT_LOGITS_ALL, &err) == NT_OK, "%s",
              err.message);
    char how[64];
    snprintf(how, sizeof how, "prefill (threads %d, batch %d)", threads, batch);
    for (int i = 0; i < c->n_ids; i++)
        expect_logits(c, i, nt_logits(ctx, i), how);
    CHECK(nt_n_past(ctx) == c->n_ids);
    nt_context_free(ctx);
}

static void prefix_then_steps(nt_model *m, const fixture_case *c, int prefix) {
    nt_context *ctx = new_context(m, 2, 0);
    if (!ctx)
        return;
    nt_error err;
    const char *how = prefix ? "prefix prefill then decode" : "token by token";
    if (prefix > 0) {
        CHECK(nt_eval(ctx, c->ids, prefix, NT_LOGITS_ALL, &err) == NT_OK);
        for (int i = 0; i < prefix; i++)
            expect_logits(c, i, nt_logits(ctx, i), how);
    }
    for (int i = prefix; i < c->n_ids; i++) {
        CHECK(nt_eval(ctx, &c->ids[i], 1, NT_LOGITS_LAST, &err) == NT_OK);
        expect_logits(c, i, nt_logits(ctx, -1), how);
    }
    nt_context_free(ctx);
}

static void greedy(nt_model *m, const fixture_case *c) {
    nt_context *ctx = new_context(m, 2, 0);
    nt_sampler *s = nt_sampler_new(NULL, NULL);
    if (!ctx || !s)
        return;
    int32_t tok;
    CHECK(nt_eval(ctx, c->ids, c->greedy_prompt_len, NT_LOGITS_LAST, NULL) == NT_OK);
    for (int i = 0; i < c->n_greedy; i++) {
        tok = nt_sampler_sample(s, nt_logits(ctx, -1), c->n_vocab);
        CHECK_MSG(tok == c->greedy[i], "greedy token %d: got %d, want %d", i, tok,
                  c->greedy[i]);
        CHECK(nt_eval(ctx, &tok, 1, NT_LOGITS_LAST, NULL) == NT_OK);
    }
    nt_sampler_free(s);
    nt_context_free(ctx);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_forward MODEL FIXTURE_DIR [SIMD]\n");
        return 2;
    }
    simd = NT_SIMD_AUTO;
    if (argc > 3) {
        int s = nt_simd_parse(argv[3]);
        if (s < 0) {
            fprintf(stderr, "unknown kernel set %s\n", argv[3]);
            return 2;
        }
        simd = (nt_simd)s;
        if (simd > nt_simd_best() && simd != NT_SIMD_AUTO) {
            printf("this CPU cannot run %s kernels: skipped\n", argv[3]);
            return SKIP;
        }
    }
    fixture_case cases[8];
    int n_cases = fixture_load_cases(argv[2], cases, 8);
    CHECK(n_cases == 3);

    nt_error err;
    nt_model *m = nt_model_load(argv[1], NULL, &err);
    CHECK_MSG(m != NULL, "%s", err.message);
    if (!m)
        return check_summary();

    for (int i = 0; i < n_cases; i++) {
        const fixture_case *c = &cases[i];
        batched(m, c, 2, 0);
        batched(m, c, 3, 7);
        batched(m, c, 3, 17); /* steps long enough for attention's GEMM */
        prefix_then_steps(m, c, 0);
        prefix_then_steps(m, c, c->n_ids / 2);
        if (c->n_greedy > 0)
            greedy(m, c);
    }
    printf("kernels: %s\n", nt_simd_name(simd == NT_SIMD_AUTO ? nt_simd_best() : simd));
    nt_model_free(m);
    fixture_free_cases(cases, n_cases);
    return check_summary();
}
