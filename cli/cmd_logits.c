/*
 * cmd_logits.c - `nemotron logits`: the logits of every position of a
 * prompt, as little-endian float32 [positions, vocab]. Verification tools
 * outside the tests read this format: keep it stable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"

static void logits_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron logits -m MODEL_DIR --ids \"2 4 100 7\" -o OUT.f32 "
            "[options]\n"
            "  writes float32 little-endian [positions, vocab]\n"
            "  -t N, -c N, -b N, --no-mmap, --simd NAME   as for `nemotron run`\n");
}

int cmd_logits(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    const char *ids_text = NULL, *out_path = NULL;
    for (int i = 0; i < argc; i++) {
        int r = cli_parse_model_opt(&mo, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i];
        if (strcmp(a, "--ids") == 0) {
            if (!(ids_text = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!(out_path = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else {
            return cli_help_or_unknown("logits", a, logits_usage);
        }
    }
    if (!ids_text || !out_path) {
        cli_error("logits: needs --ids and -o");
        logits_usage(stderr);
        return EXIT_USAGE;
    }
    int32_t *ids;
    int n_ids = cli_parse_ids(ids_text, &ids);
    if (n_ids < 0)
        return EXIT_USAGE;

    nt_model *model = cli_load_model(&mo, NULL);
    nt_context *ctx = model ? cli_new_context(model, &mo, n_ids) : NULL;
    int status = 1;
    FILE *fp = NULL;
    nt_error err;
    if (!ctx)
        goto done;
    nt_model_info info;
    nt_model_get_info(model, &info);
    fp = fopen(out_path, "wb");
    if (!fp) {
        cli_error("%s: cannot create: %s", out_path, strerror(errno));
        goto done;
    }
    /* A step at a time, so that memory holds one step's logits (a 4k
     * prompt's would be 4 GB at the real vocabulary). x86-64 and every
     * other target we build for are little-endian. */
    int step = mo.n_batch > 0 ? mo.n_batch : 512;
    for (int first = 0; first < n_ids; first += step) {
        int n = n_ids - first < step ? n_ids - first : step;
        if (nt_eval(ctx, ids + first, n, NT_LOGITS_ALL, &err) != NT_OK) {
            cli_error("%s", err.message);
            goto done;
        }
        for (int i = 0; i < n; i++)
            if (fwrite(nt_logits(ctx, i), sizeof(float), (size_t)info.n_vocab, fp) !=
                (size_t)info.n_vocab) {
                cli_error("%s: write failed: %s", out_path, strerror(errno));
                goto done;
            }
    }
    if (fclose(fp) != 0) {
        fp = NULL;
        cli_error("%s: write failed: %s", out_path, strerror(errno));
        goto done;
    }
    fp = NULL;
    fprintf(stderr, "wrote %d x %d logits to %s\n", n_ids, info.n_vocab, out_path);
    status = 0;
done:
    if (fp) {
        fclose(fp);
        remove(out_path);
    }
    nt_context_free(ctx);
    nt_model_free(model);
    free(ids);
    return status;
}
