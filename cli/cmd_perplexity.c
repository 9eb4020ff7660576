/*
 * cmd_perplexity.c - `nemotron perplexity`: how well a model predicts a
 * text, measured the way llama.cpp's llama-perplexity measures it, and,
 * with --kl-base, how far its predictions are from another model's (a
 * quantized file against the bf16 original, say), the way llama-perplexity
 * --kl-divergence does.
 *
 * The method (llama.cpp's, so the figures compare with its):
 *
 *   - The whole file is tokenized with the model's tokenizer, BOS first,
 *     special tokens written in the text read as plain text.
 *   - The tokens are cut into windows of --ctx tokens, one after the
 *     other, without overlap; the tokens after the last whole window are
 *     not used. Each window's first token is replaced by BOS (the first
 *     window's already is) and the window is evaluated from an empty cache.
 *   - Only the second half is scored: the logits at positions ctx/2 ...
 *     ctx-2 each predict the next token of the window, so every scored
 *     token has at least ctx/2 tokens of context. That is ctx/2 - 1 tokens
 *     per window (the last position would predict the next window's first
 *     token, which is replaced by BOS, so it is not scored).
 *   - PPL = exp(mean NLL), NLL = -log p(token) from a log-softmax in
 *     double; its error is PPL times the standard error of the mean NLL.
 *   - With a base: KL(base || model) of the two log-softmaxes at each
 *     scored position (double), its mean and standard error, and the
 *     fraction of positions where the two most likely tokens are the same.
 *
 * The arithmetic is the library's (src/score.c). Only the scored half of a
 * window is evaluated with logits, in steps of at most -b tokens, so memory
 * holds at most ctx/2 - 1 (or -b) rows of logits per model: about 250 MiB
 * each at the defaults and Nemotron's 256k vocabulary. tokens/s counts the
 * tokens a model evaluates (ctx - 1 a window) over the time it spends in
 * nt_eval.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "score.h"
#include "threadpool.h"

#define PPL_DEFAULT_CTX 512
#define PPL_MIN_CTX 16
#define PPL_MAX_FILE ((size_t)1 << 30)

static void perplexity_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron perplexity -m MODEL -f TEXT [--ctx 512] [--kl-base OTHER_MODEL] "
            "[--json] [options]\n"
            "  -f, --file TEXT      the text to score (all of it is tokenized, BOS first)\n"
            "  --ctx N, -c N        window size in tokens: even, at least %d (default %d);\n"
            "                       each window's second half is scored, as llama-perplexity\n"
            "  --kl-base MODEL      also run the windows through MODEL (same vocabulary)\n"
            "                       and report KL(MODEL || -m model) and the same-top rate\n"
            "  --json               one JSON object on stdout instead of text\n"
            "  -t N, -b N, --no-mmap, --simd NAME   as for `nemotron run`\n",
            PPL_MIN_CTX, PPL_DEFAULT_CTX);
}

/* One model under evaluation. */
typedef struct ppl_model {
    const char *path;
    nt_model *model;
    nt_context *ctx;
    nt_model_info info;
    double eval_seconds;
} ppl_model;

static int load_ppl_model(ppl_model *m, const cli_model_opts *mo, const char *path,
                          int n_ctx) {
    cli_model_opts o = *mo;
    o.model_path = path;
    o.n_ctx = n_ctx;
    m->path = path;
    m->model = cli_load_model(&o, NULL);
    if (!m->model)
        return 0;
    nt_model_get_info(m->model, &m->info);
    return 1;
}

static int new_ppl_context(ppl_model *m, const cli_model_opts *mo, int n_ctx) {
    cli_model_opts o = *mo;
    o.n_ctx = n_ctx;
    m->ctx = cli_new_context(m->model, &o, n_ctx);
    return m->ctx != NULL;
}

static void free_ppl_model(ppl_model *m) {
    nt_context_free(m->ctx);
    nt_model_free(m->model);
}

/* A piece for a message: at most 40 bytes, control characters as '?'. */
static void printable_piece(const nt_tokenizer *tok, int32_t id, char *out, size_t cap) {
    size_t len = 0, n = 0;
    const char *p = nt_tokenizer_piece(tok, id, &len);
    if (!p)
        p = "", len = 0;
    for (; n < len && n + 1 < cap && n < 40; n++)
        out[n] = (unsigned char)p[n] < 0x20 ? '?' : p[n];
    out[n] = '\0';
}

/* Whether the two tokenizers have the same pieces under the same ids;
 * says where they differ if not. */
static int same_vocabulary(const nt_tokenizer *a, const char *a_path,
                           const nt_tokenizer *b, const char *b_path) {
    int na = nt_tokenizer_n_vocab(a), nb = nt_tokenizer_n_vocab(b);
    if (na != nb) {
        cli_error("perplexity: --kl-base needs the same vocabulary: %s has %d tokens, "
                  "%s has %d",
                  a_path, na, b_path, nb);
        return 0;
    }
    for (int32_t id = 0; id < na; id++) {
        size_t la = 0, lb = 0;
        const char *pa = nt_tokenizer_piece(a, id, &la);
        const char *pb = nt_tokenizer_piece(b, id, &lb);
        if (la == lb && (la == 0 || (pa && pb && memcmp(pa, pb, la) == 0)))
            continue;
        char sa[48], sb[48];
        printable_piece(a, id, sa, sizeof sa);
        printable_piece(b, id, sb, sizeof sb);
        cli_error("perplexity: --kl-base needs the same vocabulary: token %d is \"%s\" "
                  "in %s and \"%s\" in %s",
                  (int)id, sa, a_path, sb, b_path);
        return 0;
    }
    if (nt_tokenizer_bos(a) != nt_tokenizer_bos(b)) {
        cli_error("perplexity: --kl-base needs the same vocabulary: BOS is %d in %s and "
                  "%d in %s",
                  (int)nt_tokenizer_bos(a), a_path, (int)nt_tokenizer_bos(b), b_path);
        return 0;
    }
    return 1;
}

/* Evaluates n tokens in m's context, adding the time to m's. */
static int eval_timed(ppl_model *m, const int32_t *tokens, int n, nt_logits_mode mode) {
    nt_error err;
    double t0 = cli_now();
    nt_status s = nt_eval(m->ctx, tokens, n, mode, &err);
    m->eval_seconds += cli_now() - t0;
    if (s != NT_OK) {
        cli_error("%s: %s", m->path, err.message);
        return 0;
    }
    return 1;
}

static void json_number(const char *name, double v) {
    if (isfinite(v))
        printf(", \"%s\": %.17g", name, v);
    else
        printf(", \"%s\": null", name);
}

int cmd_perplexity(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    const char *text_path = NULL, *base_path = NULL;
    long long ctx_arg = 0;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        int r = cli_parse_model_opt(&mo, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) {
            if (!(text_path = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--ctx") == 0) {
            if (!(v = cli_value(argc, argv, &i)) ||
                !cli_parse_int(a, v, 1, 1 << 24, &ctx_arg))
                return EXIT_USAGE;
            mo.n_ctx = (int)ctx_arg;
        } else if (strcmp(a, "--kl-base") == 0) {
            if (!(base_path = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else {
            return cli_help_or_unknown("perplexity", a, perplexity_usage);
        }
    }
    /* -c (the shared option) and --ctx are the same thing here: the window */
    int n_ctx = mo.n_ctx > 0 ? mo.n_ctx : PPL_DEFAULT_CTX;
    if (!mo.model_path || !text_path) {
        cli_error("perplexity: needs a model (-m MODEL) and a text (-f FILE)");
        perplexity_usage(stderr);
        return EXIT_USAGE;
    }
    if (n_ctx < PPL_MIN_CTX || n_ctx % 2 != 0) {
        cli_error("perplexity: --ctx %d: the window must be an even number of tokens, "
                  "at least %d (its second half is scored)",
                  n_ctx, PPL_MIN_CTX);
        return EXIT_USAGE;
    }

    int status = 1;
    nt_error err;
    char *text = NULL;
    int32_t *tokens = NULL, *win = NULL;
    nt_tokenizer *tok = NULL, *base_tok = NULL;
    ppl_model model = {0}, base = {0};
    nt_pool *pool = NULL;
    const float **rows = NULL, **base_rows = NULL;
    nt_score_row *scores = NULL;
    cli_progress_bar bar;
    cli_progress_bar_init(&bar);

    size_t text_len = 0, n_tokens = 0;
    text = nt_read_file(text_path, PPL_MAX_FILE, &text_len, &err);
    if (!text) {
        cli_error("%s", err.message);
        goto done;
    }
    if (text_len == 0) {
        cli_error("perplexity: %s is empty: there is nothing to score", text_path);
        goto done;
    }
    tok = nt_tokenizer_load(mo.model_path, &err);
    if (!tok) {
        cli_error("%s", err.message);
        goto done;
    }
    if (base_path) {
        base_tok = nt_tokenizer_load(base_path, &err);
        if (!base_tok) {
            cli_error("--kl-base: %s", err.message);
            goto done;
        }
        if (!same_vocabulary(tok, mo.model_path, base_tok, base_path))
            goto done;
    }
    if (!load_ppl_model(&model, &mo, mo.model_path, n_ctx) ||
        (base_path && !load_ppl_model(&base, &mo, base_path, n_ctx)))
        goto done;
    ppl_model *both[2] = {&model, base_path ? &base : NULL};
    for (int k = 0; k < 2 && both[k]; k++)
        if (n_ctx > both[k]->info.n_ctx_train) {
            cli_error("perplexity: --ctx %d is longer than the context of %s (%d tokens)",
                      n_ctx, both[k]->path, both[k]->info.n_ctx_train);
            status = EXIT_USAGE;
            goto done;
        }
    int n_vocab = model.info.n_vocab;
    if (base_path && base.info.n_vocab != n_vocab) {
        cli_error("perplexity: --kl-base needs the same vocabulary: %s has %d logits per "
                  "token, %s has %d",
                  mo.model_path, n_vocab, base_path, base.info.n_vocab);
        goto done;
    }
    if (nt_tokenize(tok, text, text_len, NT_TOKENIZE_BOS | NT_TOKENIZE_NO_SPECIAL,
                    &tokens, &n_tokens, &err) != NT_OK) {
        cli_error("%s: %s", text_path, err.message);
        goto done;
    }
    if (n_tokens < (size_t)n_ctx) {
        cli_error("perplexity: %s is %zu tokens long (BOS included), shorter than one "
                  "window: --ctx %d needs at least %d tokens; give a longer text or a "
                  "smaller --ctx",
                  text_path, n_tokens, n_ctx, n_ctx);
        goto done;
    }
    int n_windows = (int)(n_tokens / (size_t)n_ctx);
    int32_t bos = nt_tokenizer_bos(tok);

    if (!new_ppl_context(&model, &mo, n_ctx) ||
        (base_path && !new_ppl_context(&base, &mo, n_ctx)))
        goto done;
    pool = nt_pool_new(nt_n_threads(model.ctx), &err);
    if (!pool) {
        cli_error("%s", err.message);
        goto done;
    }

    const int first = n_ctx / 2;
    const int per_window = n_ctx - 1 - first;
    int step = mo.n_batch > 0 ? mo.n_batch : 512;
    if (step > per_window)
        step = per_window;
    win = malloc((size_t)n_ctx * sizeof *win);
    rows = malloc((size_t)step * sizeof *rows);
    base_rows = malloc((size_t)step * sizeof *base_rows);
    scores = malloc((size_t)step * sizeof *scores);
    if (!win || !rows || !base_rows || !scores) {
        cli_error("out of memory");
        goto done;
    }

    nt_score_stat nll = {0}, nll_base = {0}, kld = {0};
    int64_t n_same_top = 0;
    double t0 = cli_now();
    cli_progress("perplexity", 0.0, &bar);
    for (int w = 0; w < n_windows; w++) {
        memcpy(win, tokens + (size_t)w * (size_t)n_ctx, (size_t)n_ctx * sizeof *win);
        if (bos >= 0)
            win[0] = bos;
        for (int k = 0; k < 2 && both[k]; k++) {
            nt_kv_clear(both[k]->ctx);
            if (!eval_timed(both[k], win, first, NT_LOGITS_NONE))
                goto done;
        }
        /* positions first .. n_ctx-2, predicting win[first+1 .. n_ctx-1] */
        for (int at = first; at < n_ctx - 1; at += step) {
            int n = n_ctx - 1 - at < step ? n_ctx - 1 - at : step;
            for (int k = 0; k < 2 && both[k]; k++)
                if (!eval_timed(both[k], win + at, n, NT_LOGITS_ALL))
                    goto done;
            for (int i = 0; i < n; i++) {
                rows[i] = nt_logits(model.ctx, i);
                base_rows[i] = base_path ? nt_logits(base.ctx, i) : NULL;
            }
            nt_score_rows(pool, rows, base_path ? base_rows : NULL, n, n_vocab,
                          win + at + 1, scores);
            for (int i = 0; i < n; i++) {
                nt_score_stat_add(&nll, scores[i].nll);
                if (base_path) {
                    nt_score_stat_add(&nll_base, scores[i].nll_base);
                    nt_score_stat_add(&kld, scores[i].kl);
                    n_same_top += scores[i].same_top;
                }
            }
            cli_progress("perplexity",
                         (w + (double)(at + n - first) / per_window) / n_windows, &bar);
        }
    }
    double seconds = cli_now() - t0;

    int64_t n_scored = nll.count;
    int64_t n_evaluated = (int64_t)n_windows * (n_ctx - 1);
    double ppl = exp(nt_score_stat_mean(&nll));
    double ppl_err = ppl * nt_score_stat_stderr(&nll);
    double tps = model.eval_seconds > 0 ? (double)n_evaluated / model.eval_seconds : 0;
    double base_ppl = exp(nt_score_stat_mean(&nll_base));
    double base_ppl_err = base_ppl * nt_score_stat_stderr(&nll_base);
    double base_tps = base.eval_seconds > 0 ? (double)n_evaluated / base.eval_seconds : 0;
    double same_top = n_scored > 0 ? (double)n_same_top / (double)n_scored : 0;
    double same_top_err =
        n_scored > 1 ? sqrt(same_top * (1 - same_top) / (double)(n_scored - 1)) : 0;
    if (json) {
        printf("{\"model\": ");
        cli_print_json_string(stdout, mo.model_path);
        printf(", \"weight_type\": ");
        cli_print_json_string(stdout, model.info.weight_type);
        printf(", \"file\": ");
        cli_print_json_string(stdout, text_path);
        printf(", \"n_ctx\": %d, \"n_tokens\": %zu, \"n_windows\": %d, "
               "\"n_scored\": %lld, \"n_threads\": %d",
               n_ctx, n_tokens, n_windows, (long long)n_scored, nt_n_threads(model.ctx));
        json_number("ppl", ppl);
        json_number("ppl_error", ppl_err);
        json_number("nll_mean", nt_score_stat_mean(&nll));
        json_number("nll_stderr", nt_score_stat_stderr(&nll));
        json_number("tokens_per_second", tps);
        json_number("seconds", seconds);
        if (base_path) {
            printf(", \"base\": ");
            cli_print_json_string(stdout, base_path);
            printf(", \"base_weight_type\": ");
            cli_print_json_string(stdout, base.info.weight_type);
            json_number("base_ppl", base_ppl);
            json_number("base_ppl_error", base_ppl_err);
            json_number("base_tokens_per_second", base_tps);
            json_number("kld_mean", nt_score_stat_mean(&kld));
            json_number("kld_error", nt_score_stat_stderr(&kld));
            json_number("same_top", same_top);
            json_number("same_top_error", same_top_err);
        }
        printf("}\n");
    } else {
        printf("model:      %s (%s)\n", mo.model_path, model.info.weight_type);
        printf("text:       %s, %zu tokens (BOS first)\n", text_path, n_tokens);
        printf("windows:    %d of %d tokens, %lld tokens scored (tokens %d..%d of each, "
               "from 0)\n",
               n_windows, n_ctx, (long long)n_scored, first + 1, n_ctx - 1);
        printf("PPL:        %.4f +/- %.5f\n", ppl, ppl_err);
        printf("speed:      %.2f tokens/s (%d threads)\n", tps, nt_n_threads(model.ctx));
        if (base_path) {
            printf("base:       %s (%s)\n", base_path, base.info.weight_type);
            printf("PPL(base):  %.4f +/- %.5f\n", base_ppl, base_ppl_err);
            printf("mean KLD:   %.6f +/- %.6f\n", nt_score_stat_mean(&kld),
                   nt_score_stat_stderr(&kld));
            printf("same top p: %.3f +/- %.3f %%\n", 100.0 * same_top,
                   100.0 * same_top_err);
        }
    }
    status = 0;
done:
    if (status != 0 && bar.is_tty && bar.last_percent >= 0 && bar.last_percent < 100)
        fputc('\n', stderr);
    nt_pool_free(pool);
    free(scores);
    free(base_rows);
    free(rows);
    free(win);
    free_ppl_model(&base);
    free_ppl_model(&model);
    nt_tokenizer_free(base_tok);
    nt_tokenizer_free(tok);
    free(tokens);
    free(text);
    return status;
}
