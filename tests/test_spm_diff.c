/*
 * test_spm_diff.c - our tokenizer.model rules against SentencePiece itself.
 *
 * usage: test_spm_diff MODEL SCRATCH_DIR [SEED] [COUNT]
 *
 * Generates COUNT (default 3000) lines mixing scripts, emoji, control
 * characters, whitespace runs, U+2581, the model's user-defined symbols and
 * literal control-symbol spellings, encodes them with Debian's spm_encode
 * and with nt_tokenize, and decodes spm's ids with spm_decode and
 * nt_detokenize (and the streaming decoder). Every line must agree. The
 * seed is new each run unless given, and printed, so that a failure can be
 * replayed exactly. Without spm_encode on PATH the test is skipped (77).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "nemotron.h"

#define SKIP 77

static const char *fragments[] = {
    "the", "blacksmith", "Garrick", "sword", "of", "Oakvale", "ID", "42", "3.14",
    "2026", "a", "I", "can't", "you're", ",", ".", "!", "?", "(", ")", "\"", "'",
    "{\"name\": \"x\"}", "<toolcall>", "</toolcall>", "-", "--", "...", "https://x.org/a?b=1",
    "é", "ß", "ø", "Ærø", "naïve", "Ωμέγα", "Привет", "мир", "文", "語", "日本語", "한국어",
    "한", "مرحبا", "नमस्ते", "😀", "👩\u200d💻", "🇫🇷", "e\xCC\x81", "\xCC\x81",
    "\x01", "\x07", "\x1b[0m", "\x7f", "\t", "\t\t", " ", "  ", "   ", "    ", "\xC2\xA0",
    "\xE3\x80\x80", "\xE2\x80\x8B", "\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81",
    "<extra_id_0>", "<extra_id_1>", "<extra_id_9>", "<extra_id_", "<s>", "</s>", "<unk>",
    "<pad>", "<0x0A>", "\xEF\xBB\xBF",
};
#define N_FRAGMENTS (sizeof fragments / sizeof fragments[0])

static uint64_t next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void make_line(uint64_t *rng, char *out, size_t cap) {
    size_t n = 0;
    int parts = (int)(next(rng) % 16);
    for (int i = 0; i < parts; i++) {
        const char *f = fragments[next(rng) % N_FRAGMENTS];
        size_t len = strlen(f);
        const char *sep = next(rng) % 3 ? " " : "";
        if (n + len + 2 >= cap)
            break;
        memcpy(out + n, f, len);
        n += len;
        memcpy(out + n, sep, strlen(sep));
        n += strlen(sep);
    }
    out[n] = '\0';
}

/* Reads one line of space-separated ids; returns the count, -1 at EOF. */
static int read_ids(FILE *fp, int32_t *ids, int max) {
    static char line[1 << 16];
    if (!fgets(line, sizeof line, fp))
        return -1;
    int n = 0;
    for (char *p = line; *p && *p != '\n' && n < max;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        ids[n++] = (int32_t)v;
        p = end;
        while (*p == ' ')
            p++;
    }
    return n;
}

static void print_escaped(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        fprintf(stderr, *p < 0x20 || *p == 0x7f ? "\\x%02x" : "%c", *p);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_spm_diff MODEL SCRATCH_DIR [SEED] [COUNT]\n");
        return 2;
    }
    if (system("command -v spm_encode >/dev/null 2>&1 && command -v spm_decode >/dev/null 2>&1") != 0) {
        printf("spm_encode/spm_decode not found (Debian package sentencepiece): skipped\n");
        return SKIP;
    }
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : (uint64_t)time(NULL);
    int count = argc > 4 ? atoi(argv[4]) : 3000;
    printf("seed %llu (replay: test_spm_diff MODEL DIR %llu %d)\n", (unsigned long long)seed,
           (unsigned long long)seed, count);
    char cmd[16384], in_path[4096], ids_path[4096], dec_path[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", argv[2]);
    if (system(cmd) != 0)
        return 2;
    snprintf(in_path, sizeof in_path, "%s/input.txt", argv[2]);
    snprintf(ids_path, sizeof ids_path, "%s/ids.txt", argv[2]);
    snprintf(dec_path, sizeof dec_path, "%s/decoded.txt", argv[2]);

    char **lines = calloc((size_t)count, sizeof *lines);
    uint64_t rng = seed;
    FILE *fp = fopen(in_path, "wb");
    for (int i = 0; fp && i < count; i++) {
        char buf[2048];
        make_line(&rng, buf, sizeof buf);
        lines[i] = strdup(buf);
        fprintf(fp, "%s\n", buf);
    }
    if (!fp || fclose(fp) != 0)
        return 2;
    snprintf(cmd, sizeof cmd, "spm_encode --model='%s' --output_format=id < '%s' > '%s'",
             argv[1], in_path, ids_path);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "spm_decode --model='%s' --input_format=id < '%s' > '%s'",
             argv[1], ids_path, dec_path);
    CHECK(system(cmd) == 0);

    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(argv[1], &err);
    CHECK_MSG(tok != NULL, "%s", err.message);
    FILE *ids_fp = fopen(ids_path, "rb"), *dec_fp = fopen(dec_path, "rb");
    int shown = 0, ids_ok = 0, text_ok = 0;
    static int32_t want[1 << 14];
    static char want_text[1 << 16];
    for (int i = 0; tok && ids_fp && dec_fp && i < count; i++) {
        int n_want = read_ids(ids_fp, want, (int)(sizeof want / sizeof want[0]));
        if (!fgets(want_text, sizeof want_text, dec_fp) || n_want < 0) {
            CHECK_MSG(0, "seed %llu: spm output ends early at line %d",
                      (unsigned long long)seed, i + 1);
            break;
        }
        want_text[strcspn(want_text, "\n")] = '\0';
        int32_t *ids = NULL;
        size_t n = 0;
        int same = nt_tokenize(tok, lines[i], strlen(lines[i]), 0, &ids, &n, &err) == NT_OK &&
                   n == (size_t)n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
        ids_ok += same;
        if (!same && shown++ < 20) {
            fprintf(stderr, "seed %llu line %d: ids differ for \"", (unsigned long long)seed,
                    i + 1);
            print_escaped(lines[i]);
            fprintf(stderr, "\"\n  spm:");
            for (int k = 0; k < n_want && k < 30; k++)
                fprintf(stderr, " %d", want[k]);
            fprintf(stderr, "\n  ours:");
            for (size_t k = 0; k < n && k < 30; k++)
                fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, "\n");
        }
        free(ids);

        size_t len;
        char *text = nt_detokenize(tok, want, (size_t)n_want, 0, &len, &err);
        int same_text = text && strcmp(text, want_text) == 0;
        text_ok += same_text;
        if (!same_text && shown++ < 20)
            fprintf(stderr, "seed %llu line %d: decode differs:\n  spm:  %s\n  ours: %s\n",
                    (unsigned long long)seed, i + 1, want_text, text ? text : "(null)");
        /* The streaming decoder joins to the same text. */
        nt_detokenizer *d = nt_detokenizer_new(tok, 0, &err);
        char joined[1 << 16];
        size_t at = 0;
        for (int k = 0; d && k <= n_want; k++) {
            size_t piece_len;
            const char *p = k < n_want ? nt_detokenizer_push(d, want[k], &piece_len, &err)
                                       : nt_detokenizer_flush(d, &piece_len, &err);
            if (!p || at + piece_len >= sizeof joined)
                break;
            memcpy(joined + at, p, piece_len);
            at += piece_len;
        }
        CHECK_MSG(text && at == len && memcmp(joined, text, len) == 0,
                  "seed %llu line %d: streamed decode differs", (unsigned long long)seed, i + 1);
        nt_detokenizer_free(d);
        free(text);
    }
    printf("%d of %d lines: same ids as spm_encode; %d of %d: same text as spm_decode\n",
           ids_ok, count, text_ok, count);
    CHECK_MSG(ids_ok == count, "seed %llu: %d lines encode differently",
              (unsigned long long)seed, count - ids_ok);
    CHECK_MSG(text_ok == count, "seed %llu: %d lines decode differently",
              (unsigned long long)seed, count - text_ok);
    if (ids_fp)
        fclose(ids_fp);
    if (dec_fp)
        fclose(dec_fp);
    for (int i = 0; i < count; i++)
        free(lines[i]);
    free(lines);
    nt_tokenizer_free(tok);
    return check_summary();
}
