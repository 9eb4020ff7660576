/*
 * bench_tokenizer.c - how fast a tokenizer loads, encodes and decodes.
 *
 * usage: bench_tokenizer TOKENIZER CORPUS
 *
 * TOKENIZER is a tokenizer.model, a tokenizer.json or a model directory;
 * CORPUS a text file. Encoding is timed two ways: a call per line, which is
 * what spm_encode does (it encodes each input line on its own), and the
 * whole file as one text. Peak RSS is read after each phase, so that memory
 * growth with the text's length shows. Prints a table and one JSON line.
 * A benchmark, not a test: it asserts nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nemotron.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER CORPUS\n");
        return 2;
    }
    FILE *fp = fopen(argv[2], "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 1;
    }
    fseek(fp, 0, SEEK_END);
    size_t size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = malloc(size + 1);
    if (!text || fread(text, 1, size, fp) != size) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }
    fclose(fp);
    text[size] = '\0';
    double rss_start = peak_rss_mib();

    nt_error err;
    double loads[5];
    nt_tokenizer *tok = NULL;
    for (int i = 0; i < 5; i++) {
        double t0 = now();
        nt_tokenizer *t = nt_tokenizer_load(argv[1], &err);
        loads[i] = now() - t0;
        if (!t) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        if (tok)
            nt_tokenizer_free(tok);
        tok = t;
    }
    qsort(loads, 5, sizeof loads[0], compare_doubles);
    double rss_loaded = peak_rss_mib();

    /* A call per line, as spm_encode. */
    size_t n_lines = 0, n_ids_lines = 0;
    double t0 = now();
    for (char *p = text; p < text + size;) {
        char *nl = memchr(p, '\n', (size_t)(text + size - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(text + size - p);
        int32_t *ids;
        size_t n;
        if (nt_tokenize(tok, p, len, 0, &ids, &n, &err) != NT_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        n_ids_lines += n;
        free(ids);
        n_lines++;
        p += len + 1;
    }
    double t_lines = now() - t0;
    double rss_lines = peak_rss_mib();

    /* The whole file as one text. */
    int32_t *ids;
    size_t n_ids;
    t0 = now();
    if (nt_tokenize(tok, text, size, 0, &ids, &n_ids, &err) != NT_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double t_whole = now() - t0;
    double rss_whole = peak_rss_mib();

    t0 = now();
    size_t out_len;
    char *decoded = nt_detokenize(tok, ids, n_ids, 0, &out_len, &err);
    double t_decode = now() - t0;
    if (!decoded) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double mb = (double)size / 1e6;
    printf("tokenizer %s (%s, %d pieces), corpus %s (%.2f MB, %zu lines)\n", argv[1],
           nt_tokenizer_format(tok), nt_tokenizer_n_vocab(tok), argv[2], mb, n_lines);
    printf("| phase | time | speed | peak RSS |\n|---|---|---|---|\n");
    printf("| load (best of 5 / median) | %.1f / %.1f ms | | %.1f MiB |\n", loads[0] * 1e3,
           loads[2] * 1e3, rss_loaded);
    printf("| encode, a call per line | %.3f s | %.2f MB/s, %zu ids | %.1f MiB |\n", t_lines,
           mb / t_lines, n_ids_lines, rss_lines);
    printf("| encode, whole file | %.3f s | %.2f MB/s, %zu ids (%.1f MiB of ids) | %.1f MiB |\n",
           t_whole, mb / t_whole, n_ids, (double)n_ids * 4 / (1 << 20), rss_whole);
    printf("| decode, whole file | %.3f s | %.2f MB/s | |\n", t_decode,
           (double)out_len / 1e6 / t_decode);
    printf("{\"load_ms_best\": %.2f, \"load_ms_median\": %.2f, \"encode_lines_mb_s\": %.3f, "
           "\"encode_whole_mb_s\": %.3f, \"decode_mb_s\": %.3f, \"rss_start_mib\": %.1f, "
           "\"rss_after_lines_mib\": %.1f, \"rss_after_whole_mib\": %.1f, \"ids_whole\": %zu}\n",
           loads[0] * 1e3, loads[2] * 1e3, mb / t_lines, mb / t_whole,
           (double)out_len / 1e6 / t_decode, rss_start, rss_lines, rss_whole, n_ids);
    free(decoded);
    free(ids);
    free(text);
    nt_tokenizer_free(tok);
    return 0;
}
