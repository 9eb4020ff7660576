/*
 * cmd_tokenize.c - `nemotron tokenize` and `nemotron detokenize`.
 *
 * tokenize reads text on stdin and prints its ids as one JSON array (or,
 * with --pieces, the pieces as a JSON array of strings); detokenize reads a
 * JSON array of ids on stdin and prints the text. Verification tools
 * outside the tests rely on these formats: keep them stable.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "json.h"

static void tokenize_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron tokenize -m MODEL_DIR|tokenizer.json|tokenizer.model "
            "[--bos] [--no-special] [--pieces] < text\n"
            "  prints the ids as a JSON array\n"
            "  --bos         begin with the bos token\n"
            "  --no-special  special tokens written in the text stay text\n"
            "  --pieces      print the pieces instead of the ids\n");
}

static void detokenize_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron detokenize -m MODEL_DIR|tokenizer.json|tokenizer.model "
            "[--skip-special] < ids.json\n"
            "  reads a JSON array of ids, prints the text\n");
}

static nt_tokenizer *load_tokenizer(const char *path) {
    if (!path) {
        cli_error("no tokenizer given (-m MODEL_DIR or a tokenizer file)");
        return NULL;
    }
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(path, &err);
    if (!tok)
        cli_error("%s", err.message);
    return tok;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL;
    unsigned flags = 0;
    int pieces = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
            if (!(path = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--bos") == 0) {
            flags |= NT_TOKENIZE_BOS;
        } else if (strcmp(a, "--no-special") == 0) {
            flags |= NT_TOKENIZE_NO_SPECIAL;
        } else if (strcmp(a, "--pieces") == 0) {
            pieces = 1;
        } else {
            return cli_help_or_unknown("tokenize", a, tokenize_usage);
        }
    }
    nt_tokenizer *tok = load_tokenizer(path);
    if (!tok)
        return 1;
    size_t len;
    char *text = cli_read_stdin(&len);
    int32_t *ids = NULL;
    size_t n = 0;
    nt_error err;
    int status = 1;
    if (text && nt_tokenize(tok, text, len, flags, &ids, &n, &err) != NT_OK)
        cli_error("%s", err.message);
    else if (text) {
        putchar('[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputs(", ", stdout);
            if (pieces) {
                size_t plen;
                const char *p = nt_tokenizer_piece(tok, ids[i], &plen);
                cli_print_json_string(stdout, p);
            } else {
                printf("%d", (int)ids[i]);
            }
        }
        puts("]");
        status = 0;
    }
    free(ids);
    free(text);
    nt_tokenizer_free(tok);
    return status;
}

int cmd_detokenize(int argc, char **argv) {
    const char *path = NULL;
    unsigned flags = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
            if (!(path = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--skip-special") == 0) {
            flags |= NT_DETOKENIZE_SKIP_SPECIAL;
        } else {
            return cli_help_or_unknown("detokenize", a, detokenize_usage);
        }
    }
    nt_tokenizer *tok = load_tokenizer(path);
    if (!tok)
        return 1;
    size_t len;
    char *text = cli_read_stdin(&len);
    char jerr[256];
    nt_json_doc *doc = text ? nt_json_parse(text, len, jerr, sizeof jerr) : NULL;
    const nt_json *arr = nt_json_root(doc);
    int32_t *ids = NULL;
    int status = 1;
    if (text && !doc) {
        cli_error("detokenize: standard input is not JSON: %s", jerr);
    } else if (doc && nt_json_kind_of(arr) != NT_JSON_ARRAY) {
        cli_error("detokenize: expected a JSON array of token ids");
    } else if (doc) {
        size_t n = nt_json_count(arr);
        ids = malloc((n + 1) * sizeof *ids);
        int ok = ids != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            int64_t v;
            ok = nt_json_int64(nt_json_at(arr, i), &v) && v >= 0 && v <= INT32_MAX;
            if (!ok)
                cli_error("detokenize: element %zu is not a token id", i);
            else
                ids[i] = (int32_t)v;
        }
        nt_error err;
        size_t out_len;
        char *out = ok ? nt_detokenize(tok, ids, n, flags, &out_len, &err) : NULL;
        if (ok && !out)
            cli_error("%s", err.message);
        if (out) {
            fwrite(out, 1, out_len, stdout);
            putchar('\n');
            status = 0;
        }
        free(out);
    }
    free(ids);
    nt_json_free(doc);
    free(text);
    nt_tokenizer_free(tok);
    return status;
}
