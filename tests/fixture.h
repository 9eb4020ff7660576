/*
 * fixture.h - reading the reference cases in tests/fixtures/tiny-nemotron.
 *
 * cases.json lists, per case, the prompt ids and a float32 file of the
 * logits llama.cpp computed for every position (see the fixture README).
 */
#ifndef NT_TESTS_FIXTURE_H
#define NT_TESTS_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

typedef struct fixture_case {
    char name[32];
    int n_ids;
    int32_t *ids;
    int n_vocab;
    float *logits;        /* [n_ids][n_vocab] */
    int greedy_prompt_len;
    int n_greedy;
    int32_t greedy[64];
} fixture_case;

static inline char *fixture_read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

/* The file at dir/relative (see fixture_read_file). */
static inline char *fixture_read_in(const char *dir, const char *relative, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, relative);
    return fixture_read_file(path, len);
}

static inline int fixture_write_file(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return 0;
    int ok = fwrite(data, 1, len, fp) == len;
    return fclose(fp) == 0 && ok;
}

/* Loads every case of dir/reference/cases.json; returns the count. */
static inline int fixture_load_cases(const char *dir, fixture_case *cases, int max) {
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/cases.json", dir);
    size_t len;
    char *text = fixture_read_file(path, &len);
    if (!text)
        return 0;
    char err[256];
    nt_json_doc *doc = nt_json_parse(text, len, err, sizeof err);
    free(text);
    if (!doc) {
        fprintf(stderr, "%s: %s\n", path, err);
        return 0;
    }
    const nt_json *root = nt_json_root(doc);
    int n = 0;
    for (size_t i = 0; i < nt_json_count(root) && n < max; i++) {
        const nt_json *c = nt_json_at(root, i);
        fixture_case *fc = &cases[n];
        memset(fc, 0, sizeof *fc);
        snprintf(fc->name, sizeof fc->name, "%s",
                 nt_json_string(nt_json_get(c, "name"), NULL));
        const nt_json *ids = nt_json_get(c, "ids");
        fc->n_ids = (int)nt_json_count(ids);
        fc->ids = malloc((size_t)fc->n_ids * sizeof *fc->ids);
        for (int k = 0; k < fc->n_ids; k++) {
            int64_t v = 0;
            nt_json_int64(nt_json_at(ids, (size_t)k), &v);
            fc->ids[k] = (int32_t)v;
        }
        int64_t v = 0;
        nt_json_int64(nt_json_at(nt_json_get(c, "shape"), 1), &v);
        fc->n_vocab = (int)v;
        fc->greedy_prompt_len = 0;
        if (nt_json_int64(nt_json_get(c, "greedy_prompt_len"), &v))
            fc->greedy_prompt_len = (int)v;
        const nt_json *greedy = nt_json_get(c, "greedy");
        for (size_t k = 0; k < nt_json_count(greedy) && k < 64; k++) {
            nt_json_int64(nt_json_at(greedy, k), &v);
            fc->greedy[fc->n_greedy++] = (int32_t)v;
        }
        snprintf(path, sizeof path, "%s/reference/%s", dir,
                 nt_json_string(nt_json_get(c, "logits"), NULL));
        char *data = fixture_read_file(path, &len);
        if (!data || len != (size_t)fc->n_ids * (size_t)fc->n_vocab * sizeof(float)) {
            fprintf(stderr, "%s: missing or wrong size\n", path);
            free(data);
            continue;
        }
        fc->logits = (float *)data;
        n++;
    }
    nt_json_free(doc);
    return n;
}

static inline void fixture_free_cases(fixture_case *cases, int n) {
    for (int i = 0; i < n; i++) {
        free(cases[i].ids);
        free(cases[i].logits);
    }
}

static inline double max_abs_diff(const float *a, const float *b, int n) {
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) /* NaN counts as infinitely wrong */
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

#endif
