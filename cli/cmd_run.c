/*
 * cmd_run.c - `nemotron run`: generate from token ids.
 *
 * With a text prompt (-p) the reply streams to stdout as text, each piece
 * as soon as it is whole UTF-8; with --ids the generated ids stream,
 * separated by spaces. Either way a pipe sees each token at once, and the
 * timings go to stderr.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"

static void run_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron run -m MODEL_DIR --ids \"2 4 100 7\" [options]\n"
            "  -n N            tokens to generate (default 32)\n"
            "%s"
            "  --ignore-eos    keep going past the end-of-sequence token\n"
            "  -t N            threads (default: all CPUs)\n"
            "  -c N            context size (default: prompt + N)\n"
            "  -b N            prompt tokens per forward step (default 512)\n"
            "  --no-mmap       read the weights into memory instead of mapping\n"
            "  --simd NAME     kernels: auto, generic, avx2, avx512, avx512vnni\n",
            CLI_SAMPLER_USAGE);
}

int cmd_run(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    const char *ids_text = NULL, *prompt = NULL;
    int add_bos = 0;
    long long n_predict = 32;
    cli_sampler_opts so;
    cli_sampler_opts_init(&so, 0.0f, 1.0f);
    int ignore_eos = 0;
    for (int i = 0; i < argc; i++) {
        int r = cli_parse_model_opt(&mo, argc, argv, &i);
        if (r == 0)
            r = cli_parse_sampler_opt(&so, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "--ids") == 0) {
            if (!(ids_text = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "-p") == 0 || strcmp(a, "--prompt") == 0) {
            if (!(prompt = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--bos") == 0) {
            add_bos = 1;
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--n-predict") == 0) {
            if (!(v = cli_value(argc, argv, &i)) ||
                !cli_parse_int(a, v, 0, 1 << 24, &n_predict))
                return EXIT_USAGE;
        } else if (strcmp(a, "--ignore-eos") == 0) {
            ignore_eos = 1;
        } else {
            return cli_help_or_unknown("run", a, run_usage);
        }
    }
    if (!ids_text == !prompt) {
        cli_error("run: give a prompt as -p TEXT or as --ids \"2 4 100 7\" (one of them)");
        return EXIT_USAGE;
    }
    int32_t *ids = NULL;
    int n_ids = 0;
    nt_tokenizer *tok = NULL;
    nt_error err;
    if (ids_text) {
        n_ids = cli_parse_ids(ids_text, &ids);
        if (n_ids < 0)
            return EXIT_USAGE;
    } else {
        if (!mo.model_path) {
            cli_error("no model given (-m MODEL_DIR)");
            return EXIT_USAGE;
        }
        tok = nt_tokenizer_load(mo.model_path, &err);
        size_t n = 0;
        if (!tok || nt_tokenize(tok, prompt, strlen(prompt), add_bos ? NT_TOKENIZE_BOS : 0,
                                &ids, &n, &err) != NT_OK) {
            cli_error("%s", err.message);
            nt_tokenizer_free(tok);
            return 1;
        }
        if (n == 0 || n > INT32_MAX / 2) {
            cli_error("run: the prompt is empty");
            nt_tokenizer_free(tok);
            free(ids);
            return EXIT_USAGE;
        }
        n_ids = (int)n;
    }

    double load_s = 0;
    nt_model *model = cli_load_model(&mo, &load_s);
    if (!model) {
        nt_tokenizer_free(tok);
        free(ids);
        return 1;
    }
    nt_model_info info;
    nt_model_get_info(model, &info);
    long long want = (long long)n_ids + n_predict;
    nt_context *ctx = cli_new_context(model, &mo, want > (1 << 24) ? 0 : (int)want);
    nt_sampler *sampler = ctx ? nt_sampler_new(&so.params, &err) : NULL;
    if (ctx && !sampler)
        cli_error("%s", err.message);
    nt_detokenizer *stream = tok && sampler ? nt_detokenizer_new(tok, NT_DETOKENIZE_SKIP_SPECIAL, &err) : NULL;
    int status = 1;
    if (!sampler || (tok && !stream))
        goto done;

    double t0 = cli_now();
    if (nt_eval(ctx, ids, n_ids, NT_LOGITS_LAST, &err) != NT_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    double t1 = cli_now();
    int n_gen = 0;
    const char *stop = "limit";
    for (; n_gen < n_predict; n_gen++) {
        int32_t next = nt_sampler_sample(sampler, nt_logits(ctx, -1), info.n_vocab);
        if (next == info.eos_id && !ignore_eos && stream) {
            n_gen++;
            stop = "end of sequence";
            break;
        }
        if (stream) {
            size_t len;
            const char *text = nt_detokenizer_push(stream, next, &len, &err);
            if (!text) {
                putchar('\n');
                cli_error("%s", err.message);
                goto done;
            }
            fwrite(text, 1, len, stdout);
        } else {
            printf(n_gen ? " %d" : "%d", (int)next);
        }
        fflush(stdout);
        if (next == info.eos_id && !ignore_eos) {
            n_gen++;
            stop = "end of sequence";
            break;
        }
        if (n_gen + 1 == n_predict)
            continue; /* the last token needs no forward pass */
        if (nt_n_past(ctx) >= nt_n_ctx(ctx)) {
            n_gen++;
            stop = "context full";
            break;
        }
        if (nt_eval(ctx, &next, 1, NT_LOGITS_LAST, &err) != NT_OK) {
            putchar('\n');
            cli_error("%s", err.message);
            goto done;
        }
    }
    double t2 = cli_now();
    if (stream) {
        size_t len;
        const char *rest = nt_detokenizer_flush(stream, &len, &err);
        if (rest)
            fwrite(rest, 1, len, stdout);
    }
    putchar('\n');
    fflush(stdout);
    int n_decoded = n_gen > 0 ? n_gen - 1 : 0; /* forward passes after the prompt */
    fprintf(stderr,
            "load: %.2f s | prompt: %d tokens, %.2f tokens/s | generation: %d "
            "tokens, %.2f tokens/s | stop: %s | threads: %d, kernels: %s\n",
            load_s, n_ids, n_ids / (t1 - t0), n_gen,
            n_decoded > 0 ? n_decoded / (t2 - t1) : 0.0, stop, nt_n_threads(ctx),
            nt_simd_name(nt_context_simd(ctx)));
    status = 0;
done:
    nt_detokenizer_free(stream);
    nt_tokenizer_free(tok);
    nt_sampler_free(sampler);
    nt_context_free(ctx);
    nt_model_free(model);
    free(ids);
    return status;
}
