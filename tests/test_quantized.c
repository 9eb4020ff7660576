/*
 * test_quantized.c - quantized GGUF models against llama.cpp and against
 * exact math.
 *
 * usage: test_quantized FIXTURE_DIR [SIMD]
 *
 * For each model of reference/quantized.json (files llama.cpp's
 * llama-quantize made from the tiny model), the chat case's logits are
 * computed twice - one batched prefill (the GEMM path) and token by token
 * through the KV cache (the dot-product path) - and each must be
 *   - within 3% relative L2 (over all positions) of the `exact` logits
 *     (float64 math on llama.cpp's gguf-py dequantization of the same
 *     weights) and of llama.cpp's own logits;
 *   - in agreement with the exact logits on the top token at 95% or more of
 *     the positions.
 * A wrong dequantization lands near 100% relative L2, 8-bit activation
 * rounding (which llama.cpp does too) around 1%.
 */
#include <math.h>

#include "check.h"
#include "fixture.h"
#include "json.h"
#include "nemotron.h"

#define SKIP 77
#define MAX_REL_L2 0.03
#define MIN_TOP1 0.95

static nt_simd simd;

static double rel_l2(const float *got, const float *want, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)want[i];
        num += d * d;
        den += (double)want[i] * (double)want[i];
    }
    return isfinite(num) ? sqrt(num / den) : INFINITY;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

static float *read_logits(const char *dir, const char *name, size_t n) {
    size_t len;
    char rel[512];
    snprintf(rel, sizeof rel, "reference/%s", name);
    char *data = fixture_read_in(dir, rel, &len);
    if (!data || len != n * sizeof(float)) {
        fprintf(stderr, "%s/%s: missing or wrong size\n", dir, rel);
        free(data);
        return NULL;
    }
    return (float *)data;
}

/* Logits at every position, by prefill (steps = 0) or token by token. */
static float *run(nt_model *m, const int32_t *ids, int n_ids, int n_vocab,
                  int token_by_token) {
    nt_context_params p = nt_context_default_params();
    p.n_ctx = 256;
    p.n_threads = 2;
    p.simd = simd;
    nt_error err;
    nt_context *ctx = nt_context_new(m, &p, &err);
    CHECK_MSG(ctx != NULL, "%s", err.message);
    if (!ctx)
        return NULL;
    float *out = malloc((size_t)n_ids * (size_t)n_vocab * sizeof *out);
    int ok = 1;
    if (token_by_token) {
        for (int i = 0; i < n_ids && ok; i++) {
            ok = nt_eval(ctx, ids + i, 1, NT_LOGITS_LAST, &err) == NT_OK;
            if (ok)
                memcpy(out + (size_t)i * n_vocab, nt_logits(ctx, 0),
                       (size_t)n_vocab * sizeof *out);
        }
    } else {
        ok = nt_eval(ctx, ids, n_ids, NT_LOGITS_ALL, &err) == NT_OK;
        for (int i = 0; i < n_ids && ok; i++)
            memcpy(out + (size_t)i * n_vocab, nt_logits(ctx, i),
                   (size_t)n_vocab * sizeof *out);
    }
    CHECK_MSG(ok, "nt_eval: %s", err.message);
    nt_context_free(ctx);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

static void check_model(const char *dir, const nt_json *entry) {
    const char *type = nt_json_string(nt_json_get(entry, "type"), NULL);
    const char *gguf = nt_json_string(nt_json_get(entry, "gguf"), NULL);
    const nt_json *jids = nt_json_get(entry, "ids");
    int64_t n_vocab64 = 0;
    nt_json_int64(nt_json_at(nt_json_get(entry, "shape"), 1), &n_vocab64);
    int n_ids = (int)nt_json_count(jids), n_vocab = (int)n_vocab64;
    CHECK(type && gguf && n_ids > 0 && n_vocab > 0);
    if (!type || !gguf || n_ids <= 0 || n_vocab <= 0)
        return;
    int32_t *ids = malloc((size_t)n_ids * sizeof *ids);
    for (int i = 0; i < n_ids; i++) {
        int64_t v = 0;
        nt_json_int64(nt_json_at(jids, (size_t)i), &v);
        ids[i] = (int32_t)v;
    }
    size_t n = (size_t)n_ids * (size_t)n_vocab;
    float *exact = read_logits(dir, nt_json_string(nt_json_get(entry, "exact"), NULL), n);
    float *llama = read_logits(dir, nt_json_string(nt_json_get(entry, "llamacpp"), NULL), n);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, gguf);
    nt_error err;
    nt_model_params mp = nt_model_default_params();
    nt_model *m = nt_model_load(path, &mp, &err);
    CHECK_MSG(m != NULL, "%s", err.message);
    CHECK(exact && llama);
    if (m && exact && llama) {
        nt_model_info info;
        nt_model_get_info(m, &info);
        CHECK_MSG(info.n_vocab == n_vocab, "%s: n_vocab %d", type, info.n_vocab);
        for (int by_token = 0; by_token < 2; by_token++) {
            float *got = run(m, ids, n_ids, n_vocab, by_token);
            if (!got)
                continue;
            double e = rel_l2(got, exact, n), l = rel_l2(got, llama, n);
            int agree = 0;
            for (int i = 0; i < n_ids; i++)
                agree += argmax(got + (size_t)i * n_vocab, n_vocab) ==
                         argmax(exact + (size_t)i * n_vocab, n_vocab);
            double top1 = (double)agree / n_ids;
            const char *how = by_token ? "token by token" : "prefill";
            printf("%-7s %-14s (%s): rel L2 vs exact %.4f, vs llama.cpp %.4f, "
                   "top-1 agreement %.3f\n",
                   type, how, info.weight_type, e, l, top1);
            CHECK_MSG(e < MAX_REL_L2, "%s %s: rel L2 vs exact %.4f", type, how, e);
            CHECK_MSG(l < MAX_REL_L2, "%s %s: rel L2 vs llama.cpp %.4f", type, how, l);
            CHECK_MSG(top1 >= MIN_TOP1, "%s %s: top-1 agreement %.3f", type, how, top1);
            free(got);
        }
    }
    nt_model_free(m);
    free(exact);
    free(llama);
    free(ids);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_quantized FIXTURE_DIR [SIMD]\n");
        return 2;
    }
    const char *dir = argv[1];
    if (argc > 2) {
        int s = nt_simd_parse(argv[2]);
        if (s < 0) {
            fprintf(stderr, "unknown SIMD %s\n", argv[2]);
            return 2;
        }
        simd = (nt_simd)s;
        if (simd != NT_SIMD_AUTO && (int)simd > (int)nt_simd_best()) {
            printf("kernels %s: not supported on this CPU, skipped\n", argv[2]);
            return SKIP;
        }
    }
    size_t len;
    char *text = fixture_read_in(dir, "reference/quantized.json", &len);
    CHECK(text != NULL);
    if (!text)
        return check_summary();
    char jerr[256];
    nt_json_doc *doc = nt_json_parse(text, len, jerr, sizeof jerr);
    free(text);
    CHECK_MSG(doc != NULL, "quantized.json: %s", jerr);
    if (!doc)
        return check_summary();
    const nt_json *root = nt_json_root(doc);
    CHECK(nt_json_count(root) >= 5);
    for (size_t i = 0; i < nt_json_count(root); i++)
        check_model(dir, nt_json_at(root, i));
    nt_json_free(doc);
    return check_summary();
}
