/*
 * cmd_quantize.c - `nemotron quantize` and `nemotron convert`: a model to a
 * GGUF file in another storage type (nt_model_quantize does the work).
 *
 * convert is quantize restricted to the float types, under the name
 * llama.cpp users know for "HF checkpoint to GGUF".
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "model/quantize.h"

static void quantize_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron quantize -m MODEL -o OUT.gguf --type TYPE [--awq TEXT]\n"
            "                         [--awq-tokens N] [--pure] [--output-type TYPE]\n"
            "                         [-t N]\n"
            "  MODEL: an HF directory (with tokenizer.model) or a GGUF file\n"
            "  --type         %s\n"
            "  --awq TEXT     find activation-aware scales on this calibration text\n"
            "                 and fold them into the weights before rounding\n"
            "  --awq-tokens N calibration tokens to use (default 2048)\n"
            "  --awq-for T    choose the scales for rounding to T, not --type (with\n"
            "                 --type f32: the folded model, unrounded)\n"
            "  --pure         every matrix in TYPE (no q6_k lm_head or _m mix)\n"
            "  --output-type  the lm_head's type\n"
            "  -t N           threads (default 2)\n",
            nt_quantize_type_names());
}

static void convert_usage(FILE *out) {
    fprintf(out, "usage: nemotron convert -m HF_DIR -o OUT.gguf [--type f16|bf16|f32] "
                 "[-t N]\n"
                 "  writes the model as GGUF (llama.cpp's layout); default bf16, the\n"
                 "  type Nemotron's weights ship in (no rounding)\n");
}

static int run(int argc, char **argv, int is_convert) {
    void (*usage)(FILE *) = is_convert ? convert_usage : quantize_usage;
    const char *command = is_convert ? "convert" : "quantize";
    nt_quantize_params qp = nt_quantize_default_params();
    qp.type = is_convert ? "bf16" : NULL;
    qp.n_threads = 2;
    const char *in = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long long v;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(in = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--type")) {
            if (!(qp.type = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            const char *s = cli_value(argc, argv, &i);
            if (!s || !cli_parse_int(a, s, 1, 1024, &v))
                return EXIT_USAGE;
            qp.n_threads = (int)v;
        } else if (!is_convert && !strcmp(a, "--awq")) {
            if (!(qp.awq_calibration = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (!is_convert && !strcmp(a, "--awq-tokens")) {
            const char *s = cli_value(argc, argv, &i);
            if (!s || !cli_parse_int(a, s, 16, 1 << 24, &v))
                return EXIT_USAGE;
            qp.awq_tokens = (int)v;
        } else if (!is_convert && !strcmp(a, "--awq-for")) {
            if (!(qp.awq_for = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (!is_convert && !strcmp(a, "--pure")) {
            qp.pure = 1;
        } else if (!is_convert && !strcmp(a, "--output-type")) {
            if (!(qp.output_type = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else {
            return cli_help_or_unknown(command, a, usage);
        }
    }
    if (!in || !out || !qp.type) {
        cli_error("%s: needs -m, -o%s", command, is_convert ? "" : " and --type");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (is_convert && strcmp(qp.type, "f16") && strcmp(qp.type, "bf16") &&
        strcmp(qp.type, "f32")) {
        cli_error("convert: --type is f16, bf16 or f32 (use `nemotron quantize` for "
                  "the block types)");
        return EXIT_USAGE;
    }
    double awq_errors[2] = {0, 0};
    if (qp.awq_calibration)
        qp.awq_errors = awq_errors;
    cli_progress_bar bar;
    cli_progress_bar_init(&bar);
    qp.progress = cli_progress;
    qp.progress_user = &bar;
    nt_error err;
    double t0 = cli_now();
    nt_status s = nt_model_quantize(in, out, &qp, &err);
    if (s != NT_OK) {
        if (bar.is_tty && bar.last_percent >= 0 && bar.last_percent < 100)
            fputc('\n', stderr);
        cli_error("%s", err.message);
        return EXIT_FAILURE;
    }
    if (qp.awq_calibration)
        fprintf(stderr,
                "AWQ: sampled output error of the rounded weights %.6g with scales, "
                "%.6g without (%.1f%% less)\n",
                awq_errors[0], awq_errors[1],
                awq_errors[1] > 0 ? 100.0 * (1.0 - awq_errors[0] / awq_errors[1]) : 0.0);
    fprintf(stderr, "wrote %s (%s) in %.1f s\n", out, qp.type, cli_now() - t0);
    return 0;
}

int cmd_quantize(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_convert(int argc, char **argv) { return run(argc, argv, 1); }
