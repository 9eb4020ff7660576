/*
 * cmd_bench.c - `nemotron bench`: prefill and decode speed, the way
 * llama.cpp's llama-bench measures them.
 *
 *   ppN  evaluate N prompt tokens in one go from an empty cache
 *   tgN  generate N tokens one at a time from an empty cache
 *
 * Each test runs once to warm up, then -r times; the median is reported
 * (and the spread). Token ids are pseudo-random: speed does not depend on
 * them.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"

static void bench_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron bench -m MODEL_DIR [-p 512] [-n 128] [-t N] [-r 5] "
            "[--json] [options]\n"
            "  -p N        prompt tokens (0: skip the prefill test)\n"
            "  -n N        generated tokens (0: skip the decode test)\n"
            "  -r N        repetitions (median reported; default 5)\n"
            "  --json      one JSON object on stdout instead of a table\n"
            "  -t N, -b N, --no-mmap, --simd NAME   as for `nemotron run`\n");
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One timed run: n tokens in steps of `step` (n for prefill, 1 for decode). */
static int timed_run(nt_context *ctx, const int32_t *tokens, int n, int step,
                     double *seconds) {
    nt_error err;
    nt_kv_clear(ctx);
    double t0 = cli_now();
    for (int i = 0; i < n; i += step) {
        int k = n - i < step ? n - i : step;
        if (nt_eval(ctx, tokens + i, k, NT_LOGITS_LAST, &err) != NT_OK) {
            cli_error("%s", err.message);
            return 0;
        }
    }
    *seconds = cli_now() - t0;
    return 1;
}

typedef struct bench_result {
    const char *name;  /* "pp" or "tg" */
    int n;
    double median_tps;
    double min_tps, max_tps;
    double *tps;
    int reps;
} bench_result;

static int run_test(nt_context *ctx, const int32_t *tokens, int n, int step,
                    int reps, bench_result *r) {
    double s;
    char stage[32];
    cli_progress_bar bar;
    cli_progress_bar_init(&bar);
    snprintf(stage, sizeof stage, "%s%d", r->name, n);
    cli_progress(stage, 0.0, &bar);
    if (!timed_run(ctx, tokens, n, step, &s)) /* warm-up */
        return 0;
    r->tps = calloc((size_t)reps, sizeof *r->tps);
    double *sorted = calloc((size_t)reps, sizeof *sorted);
    if (!r->tps || !sorted) {
        free(sorted);
        cli_error("out of memory");
        return 0;
    }
    for (int i = 0; i < reps; i++) {
        if (!timed_run(ctx, tokens, n, step, &s)) {
            free(sorted);
            return 0;
        }
        r->tps[i] = sorted[i] = n / s;
        cli_progress(stage, (double)(i + 1) / reps, &bar);
    }
    r->reps = reps;
    r->median_tps = median(sorted, reps);
    r->min_tps = sorted[0];
    r->max_tps = sorted[reps - 1];
    free(sorted);
    return 1;
}

int cmd_bench(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    long long n_prompt = 512, n_gen = 128, reps = 5;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        int r = cli_parse_model_opt(&mo, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "-p") == 0) {
            if (!(v = cli_value(argc, argv, &i)) ||
                !cli_parse_int(a, v, 0, 1 << 20, &n_prompt))
                return EXIT_USAGE;
        } else if (strcmp(a, "-n") == 0) {
            if (!(v = cli_value(argc, argv, &i)) ||
                !cli_parse_int(a, v, 0, 1 << 20, &n_gen))
                return EXIT_USAGE;
        } else if (strcmp(a, "-r") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, 1000, &reps))
                return EXIT_USAGE;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else {
            return cli_help_or_unknown("bench", a, bench_usage);
        }
    }
    if (n_prompt == 0 && n_gen == 0) {
        cli_error("bench: nothing to measure (-p 0 -n 0)");
        return EXIT_USAGE;
    }

    double load_s = 0;
    nt_model *model = cli_load_model(&mo, &load_s);
    if (!model)
        return 1;
    nt_model_info info;
    nt_model_get_info(model, &info);
    int longest = (int)(n_prompt > n_gen ? n_prompt : n_gen);
    if (mo.n_batch == 0 && n_prompt > 0)
        mo.n_batch = (int)n_prompt; /* the prompt in one step, as llama-bench */
    nt_context *ctx = cli_new_context(model, &mo, longest);
    int32_t *tokens = malloc((size_t)longest * sizeof *tokens);
    bench_result pp = {"pp", (int)n_prompt, 0, 0, 0, NULL, 0};
    bench_result tg = {"tg", (int)n_gen, 0, 0, 0, NULL, 0};
    int status = 1;
    if (!ctx || !tokens)
        goto done;
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < longest; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tokens[i] = (int32_t)(x % (uint64_t)info.n_vocab);
    }
    if (n_prompt > 0 && !run_test(ctx, tokens, (int)n_prompt, (int)n_prompt, (int)reps, &pp))
        goto done;
    if (n_gen > 0 && !run_test(ctx, tokens, (int)n_gen, 1, (int)reps, &tg))
        goto done;

    double rss_gib = (double)cli_peak_rss_bytes() / (1u << 30);
    double size_gib = (double)info.weight_bytes / (1u << 30);
    if (json) {
        printf("{\"model\": ");
        cli_print_json_string(stdout, mo.model_path);
        printf(", \"weight_type\": \"%s\", \"n_params\": %llu, "
               "\"weight_bytes\": %llu, \"decode_bytes\": %llu, \"n_threads\": %d, "
               "\"kernels\": \"%s\", "
               "\"mmap\": %s, \"n_prompt\": %lld, \"n_gen\": %lld, \"reps\": %lld, "
               "\"load_s\": %.3f, \"peak_rss_bytes\": %llu",
               info.weight_type, (unsigned long long)info.n_params,
               (unsigned long long)info.weight_bytes,
               (unsigned long long)info.decode_bytes, nt_n_threads(ctx),
               nt_simd_name(nt_context_simd(ctx)), mo.use_mmap ? "true" : "false",
               n_prompt, n_gen, reps, load_s, (unsigned long long)cli_peak_rss_bytes());
        bench_result *all[] = {&pp, &tg};
        for (int t = 0; t < 2; t++) {
            bench_result *r = all[t];
            if (r->n == 0)
                continue;
            printf(", \"%s_tps\": %.4f, \"%s_tps_samples\": [", r->name,
                   r->median_tps, r->name);
            for (int i = 0; i < r->reps; i++)
                printf("%s%.4f", i ? ", " : "", r->tps[i]);
            printf("]");
        }
        printf("}\n");
    } else {
        printf("| model | size | params | threads | kernels | test | t/s (median, "
               "min..max) |\n|---|---|---|---|---|---|---|\n");
        bench_result *all[] = {&pp, &tg};
        for (int t = 0; t < 2; t++) {
            bench_result *r = all[t];
            if (r->n == 0)
                continue;
            printf("| nemotron %s | %.2f GiB | %.2f B | %d | %s | %s%d | %.2f "
                   "(%.2f..%.2f) |\n",
                   info.weight_type, size_gib, (double)info.n_params * 1e-9,
                   nt_n_threads(ctx), nt_simd_name(nt_context_simd(ctx)), r->name,
                   r->n, r->median_tps, r->min_tps, r->max_tps);
        }
        printf("\nload: %.2f s (%s), peak RSS: %.2f GiB, repetitions: %lld\n",
               load_s, mo.use_mmap ? "mmap" : "read", rss_gib, reps);
    }
    status = 0;
done:
    free(pp.tps);
    free(tg.tps);
    free(tokens);
    nt_context_free(ctx);
    nt_model_free(model);
    return status;
}
