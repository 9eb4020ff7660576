/*
 * test_tokenizer.c - tokenizers against the reference libraries' output.
 *
 * usage: test_tokenizer FIXTURE_DIR SCRATCH_DIR
 *
 * FIXTURE_DIR/tokenizer holds cases made by SentencePiece 0.1.97 from the
 * .model file and by HF tokenizers.js from the two tokenizer.json layouts
 * (see the shared fixtures' README). For every case: the ids must be
 * identical, decoding the reference ids must give the reference's text,
 * and the streaming decoder fed one id at a time must produce exactly the
 * full decode, never splitting a UTF-8 character.
 *
 * Then the contract around that: the flags (bos, special tokens as text,
 * skipping special tokens), and tokenizer.json files that are malformed or
 * use components we do not implement, which must be refused by name.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "json.h"
#include "nemotron.h"
#include "tokenizer/tokenizer_impl.h"

/* A chunk must not end inside a character. */
static int whole_characters(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (i + k > n)
            return 0;
        i += k;
    }
    return 1;
}

static void check_streaming(const nt_tokenizer *tok, const int32_t *ids, size_t n,
                            const char *full, size_t full_len, const char *what,
                            int line) {
    nt_error err;
    nt_detokenizer *d = nt_detokenizer_new(tok, 0, &err);
    char *joined = malloc(full_len + 1);
    size_t at = 0;
    int ok = d && joined, fits = 1;
    for (size_t i = 0; ok && i <= n; i++) {
        size_t len;
        const char *piece = i < n ? nt_detokenizer_push(d, ids[i], &len, &err)
                                  : nt_detokenizer_flush(d, &len, &err);
        if (!piece) {
            ok = 0;
            break;
        }
        CHECK_MSG(whole_characters(piece, len),
                  "%s line %d: streamed chunk %zu splits a character", what, line, i);
        if (at + len > full_len) {
            fits = 0;
            break;
        }
        memcpy(joined + at, piece, len);
        at += len;
    }
    CHECK_MSG(ok && fits && at == full_len && memcmp(joined, full, full_len) == 0,
              "%s line %d: streamed text differs from the full decode (%s)", what, line,
              ok ? "" : err.message);
    free(joined);
    nt_detokenizer_free(d);
}

static int32_t *json_ids(const nt_json *arr) {
    size_t n = nt_json_count(arr);
    int32_t *ids = malloc((n + 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        int64_t v = -1;
        nt_json_int64(nt_json_at(arr, i), &v);
        ids[i] = (int32_t)v;
    }
    return ids;
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s", label);
    for (size_t i = 0; i < n && i < 24; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 24 ? " ..." : "");
}

static int run_cases(const char *tokenizer_path, const char *cases_path,
                     const char *what) {
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(tokenizer_path, &err);
    CHECK_MSG(tok != NULL, "%s: %s", what, err.message);
    if (!tok)
        return 0;
    size_t len;
    char *text = fixture_read_file(cases_path, &len);
    int n_cases = 0, n_ok = 0, line = 0;
    for (char *p = text; p && *p; line++) {
        char *nl = strchr(p, '\n');
        size_t line_len = nl ? (size_t)(nl - p) : strlen(p);
        char jerr[128];
        nt_json_doc *doc = nt_json_parse(p, line_len, jerr, sizeof jerr);
        p = nl ? nl + 1 : p + line_len;
        if (!doc)
            continue;
        const nt_json *c = nt_json_root(doc);
        size_t text_len, want_len;
        const char *input = nt_json_string(nt_json_get(c, "text"), &text_len);
        const char *want_text = nt_json_string(nt_json_get(c, "decoded"), &want_len);
        const nt_json *want_arr = nt_json_get(c, "ids");
        size_t n_want = nt_json_count(want_arr);
        int32_t *want = json_ids(want_arr);
        n_cases++;

        int32_t *ids = NULL;
        size_t n_ids = 0;
        int ids_ok = nt_tokenize(tok, input, text_len, 0, &ids, &n_ids, &err) == NT_OK &&
                     n_ids == n_want &&
                     (n_ids == 0 || memcmp(ids, want, n_ids * sizeof *ids) == 0);
        if (!ids_ok) {
            fprintf(stderr, "%s line %d: ids differ for \"%.60s\"\n", what, line + 1, input);
            print_ids("got ", ids, n_ids);
            print_ids("want", want, n_want);
        }
        size_t got_len = 0;
        char *got = nt_detokenize(tok, want, n_want, 0, &got_len, &err);
        int text_ok = got && got_len == want_len && memcmp(got, want_text, want_len) == 0;
        if (!text_ok)
            fprintf(stderr, "%s line %d: decode differs:\n  got  \"%.80s\"\n  want \"%.80s\"\n",
                    what, line + 1, got ? got : "(null)", want_text);
        if (got)
            check_streaming(tok, want, n_want, got, got_len, what, line + 1);
        CHECK(ids_ok);
        CHECK(text_ok);
        n_ok += ids_ok && text_ok;
        free(got);
        free(want);
        free(ids);
        nt_json_free(doc);
    }
    printf("%s: %d of %d cases identical (ids and text)\n", what, n_ok, n_cases);
    CHECK(n_cases == 256);
    free(text);
    nt_tokenizer_free(tok);
    return n_ok;
}

static void check_flags(const char *fixture_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/metaspace.tokenizer.json", fixture_dir);
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(path, &err);
    CHECK_MSG(tok != NULL, "%s", err.message);
    if (!tok)
        return;
    CHECK(nt_tokenizer_bos(tok) == 2 && nt_tokenizer_eos(tok) == 3);
    CHECK(nt_tokenizer_n_vocab(tok) == 2048);
    CHECK(strcmp(nt_tokenizer_format(tok), "tokenizer.json") == 0);
    int32_t *ids = NULL;
    size_t n = 0;
    const char *text = "Hi</s>";
    /* Special tokens in text are matched by default, text with NO_SPECIAL. */
    CHECK(nt_tokenize(tok, text, strlen(text), NT_TOKENIZE_BOS, &ids, &n, &err) == NT_OK);
    CHECK(n >= 3 && ids[0] == 2 && ids[n - 1] == 3);
    free(ids);
    CHECK(nt_tokenize(tok, text, strlen(text), NT_TOKENIZE_NO_SPECIAL, &ids, &n, &err) ==
          NT_OK);
    int has_eos = 0;
    for (size_t i = 0; i < n; i++)
        has_eos |= ids[i] == 3;
    CHECK(n > 2 && !has_eos);
    /* Non-special added tokens are still matched with NO_SPECIAL. */
    free(ids);
    CHECK(nt_tokenize(tok, "<extra_id_1>", 12, NT_TOKENIZE_NO_SPECIAL, &ids, &n, &err) ==
          NT_OK);
    CHECK(n == 1 && ids[0] == 5);
    free(ids);
    int32_t seq[] = {2, 527, 816, 3};
    size_t len;
    char *all = nt_detokenize(tok, seq, 4, 0, &len, &err);
    char *skip = nt_detokenize(tok, seq, 4, NT_DETOKENIZE_SKIP_SPECIAL, &len, &err);
    CHECK(all && strcmp(all, "<s> Hell</s>") == 0);
    CHECK(skip && strcmp(skip, "Hell") == 0);
    free(all);
    free(skip);
    int32_t bad = 5000;
    CHECK(nt_detokenize(tok, &bad, 1, 0, &len, &err) == NULL &&
          err.status == NT_ERR_ARGUMENT);
    CHECK(nt_tokenize(tok, "", 0, 0, &ids, &n, &err) == NT_OK && n == 0 && ids == NULL);
    /* Bytes that are not UTF-8 reach an HF tokenizer as U+FFFD, one per
     * ill-formed subsequence, as any HF stack's string conversion does. */
    int32_t *raw = NULL, *replaced = NULL;
    size_t n_raw = 0, n_replaced = 0;
    CHECK(nt_tokenize(tok, "a\xFF\xE6\x96" "b", 5, 0, &raw, &n_raw, &err) == NT_OK);
    CHECK(nt_tokenize(tok, "a\xEF\xBF\xBD\xEF\xBF\xBD" "b", 8, 0, &replaced, &n_replaced,
                      &err) == NT_OK);
    CHECK(n_raw == n_replaced && n_raw > 0 && memcmp(raw, replaced, n_raw * sizeof *raw) == 0);
    free(raw);
    free(replaced);
    nt_tokenizer_free(tok);
}

/* Writes `json` with `from` replaced by `to` and expects loading to fail
 * with `status` and a message containing `needle`. */
static void expect_refused(const char *json, size_t json_len, const char *dir,
                           const char *from, const char *to, nt_status status,
                           const char *needle) {
    const char *hit = strstr(json, from);
    CHECK_MSG(hit != NULL, "fixture lacks \"%s\"", from);
    if (!hit)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/bad.tokenizer.json", dir);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        CHECK_MSG(0, "cannot write %s", path);
        return;
    }
    fwrite(json, 1, (size_t)(hit - json), fp);
    fputs(to, fp);
    fwrite(hit + strlen(from), 1, json_len - (size_t)(hit - json) - strlen(from), fp);
    fclose(fp);
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(path, &err);
    CHECK_MSG(tok == NULL, "\"%s\" -> \"%s\" loaded", from, to);
    if (tok) {
        nt_tokenizer_free(tok);
        return;
    }
    CHECK_MSG(err.status == status, "\"%s\" -> \"%s\": status %d, want %d (%s)", from,
              to, (int)err.status, (int)status, err.message);
    CHECK_STR_CONTAINS(err.message, needle);
    CHECK_STR_CONTAINS(err.message, "bad.tokenizer.json");
}

static void check_malformed(const char *fixture_dir, const char *scratch) {
    size_t len;
    char *json = fixture_read_in(fixture_dir, "tokenizer/metaspace.tokenizer.json", &len);
    if (!json)
        return;
    /* Whitespace in the fixture: "key": value, pieces as "a": id. */
    expect_refused(json, len, scratch, "{", "[", NT_ERR_FORMAT, "not valid JSON");
    expect_refused(json, len, scratch, "\"type\": \"BPE\"", "\"type\": \"Unigram\"",
                   NT_ERR_UNSUPPORTED, "Unigram");
    expect_refused(json, len, scratch, "\"type\": \"Metaspace\"",
                   "\"type\": \"ByteLevel\"", NT_ERR_UNSUPPORTED, "ByteLevel");
    expect_refused(json, len, scratch, "\"normalizer\": null",
                   "\"normalizer\": {\"type\": \"Lowercase\"}", NT_ERR_UNSUPPORTED,
                   "Lowercase");
    expect_refused(json, len, scratch, "\"normalizer\": null",
                   "\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": \" +\"}, "
                   "\"content\": \" \"}",
                   NT_ERR_UNSUPPORTED, "Regex");
    /* Replace steps that would lengthen a text without bound: 7 doublings
     * (128-fold) are refused, as are more than 32 steps of any kind. */
    char chain[2400] = "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [";
    for (int i = 0; i < 7; i++)
        strcat(chain, "{\"type\": \"Replace\", \"pattern\": {\"String\": \"a\"}, "
                      "\"content\": \"aa\"},");
    strcpy(chain + strlen(chain) - 1, "]}");
    expect_refused(json, len, scratch, "\"normalizer\": null", chain, NT_ERR_UNSUPPORTED,
                   "more than 64 times longer");
    strcpy(chain, "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [");
    for (int i = 0; i < 33; i++)
        strcat(chain, "{\"type\": \"NFC\"},");
    strcpy(chain + strlen(chain) - 1, "]}");
    expect_refused(json, len, scratch, "\"normalizer\": null", chain, NT_ERR_FORMAT,
                   "more than 32 normalizer steps");
    expect_refused(json, len, scratch, "\"type\": \"Fuse\"", "\"type\": \"WordPiece\"",
                   NT_ERR_UNSUPPORTED, "WordPiece");
    /* merges naming a piece that is not in the vocabulary */
    expect_refused(json, len, scratch, "\"merges\": [", "\"merges\": [[\"qq\", \"zz\"], ",
                   NT_ERR_FORMAT, "qq");
    expect_refused(json, len, scratch, "\"merges\": [", "\"merges\": [[\"d\"], ",
                   NT_ERR_FORMAT, "model.merges[0] is not two pieces");
    /* a merge whose result is not a piece */
    expect_refused(json, len, scratch, "\"merges\": [", "\"merges\": [[\"<s>\", \"</s>\"], ",
                   NT_ERR_FORMAT, "not in the vocabulary");
    /* two pieces with one id, and an id that no piece has */
    expect_refused(json, len, scratch, "\"<unk>\": 1", "\"<unk>\": 0", NT_ERR_FORMAT, "id 0");
    expect_refused(json, len, scratch, "\"<unk>\": 1", "\"<unk>\": 4000", NT_ERR_FORMAT,
                   "no token has id");
    free(json);

    nt_error err;
    CHECK(nt_tokenizer_load("/nonexistent/tokenizer.json", &err) == NULL &&
          err.status == NT_ERR_IO);
    CHECK(nt_tokenizer_load(scratch, &err) == NULL); /* a folder without one */
}

/* NFC in a tokenizer.json normalizer: "e" + U+0301 becomes U+00E9. */
static void check_nfc(const char *fixture_dir, const char *scratch) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/metaspace.tokenizer.json", fixture_dir);
    size_t len;
    char *json = fixture_read_file(path, &len);
    const char *from = "\"normalizer\": null";
    char *hit = json ? strstr(json, from) : NULL;
    CHECK(hit != NULL);
    if (!hit) {
        free(json);
        return;
    }
    snprintf(path, sizeof path, "%s/nfc.tokenizer.json", scratch);
    FILE *fp = fopen(path, "wb");
    fwrite(json, 1, (size_t)(hit - json), fp);
    fputs("\"normalizer\": {\"type\": \"NFC\"}", fp);
    fputs(hit + strlen(from), fp);
    fclose(fp);
    free(json);
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(path, &err);
    CHECK_MSG(tok != NULL, "%s", err.message);
    if (!tok)
        return;
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK(nt_tokenize(tok, "caf\xC3\xA9", 5, 0, &a, &na, &err) == NT_OK);
    CHECK(nt_tokenize(tok, "cafe\xCC\x81", 6, 0, &b, &nb, &err) == NT_OK);
    CHECK(na == nb && na > 0 && memcmp(a, b, na * sizeof *a) == 0);
    free(a);
    free(b);
    nt_tokenizer_free(tok);
}

/*
 * Long texts are encoded in chunks cut at barrier characters; the ids must
 * not depend on where the cuts fall. The fixture texts joined by newlines
 * are encoded whole, then with cuts at every barrier, then every 4 KB.
 */
static void check_chunking(const char *fixture_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/texts.json", fixture_dir);
    size_t len;
    char *json = fixture_read_file(path, &len);
    nt_json_doc *doc = json ? nt_json_parse(json, len, NULL, 0) : NULL;
    free(json);
    CHECK(doc != NULL);
    if (!doc)
        return;
    nt_buf text = {0};
    for (int round = 0; round < 8; round++)
        for (size_t i = 0; i < nt_json_count(nt_json_root(doc)); i++) {
            size_t n;
            const char *t = nt_json_string(nt_json_at(nt_json_root(doc), i), &n);
            nt_buf_add(&text, t, n);
            nt_buf_add(&text, round % 2 ? "\n" : "\n\n", round % 2 ? 1 : 2);
        }
    nt_json_free(doc);
    static const char *files[] = {"nemo-test-2048.model", "legacy.tokenizer.json",
                                  "metaspace.tokenizer.json"};
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/tokenizer/%s", fixture_dir, files[f]);
        nt_error err;
        nt_tokenizer *tok = nt_tokenizer_load(path, &err);
        if (!tok)
            continue;
        CHECK_MSG(tok->barrier['\n'], "%s: the newline should be a barrier", files[f]);
        int32_t *whole = NULL, *cut = NULL;
        size_t n_whole = 0, n_cut = 0;
        tok->chunk_bytes = SIZE_MAX;
        CHECK(nt_tokenize(tok, text.s, text.n, 0, &whole, &n_whole, &err) == NT_OK);
        size_t sizes[] = {1, 4096};
        for (int k = 0; k < 2; k++) {
            tok->chunk_bytes = sizes[k];
            CHECK(nt_tokenize(tok, text.s, text.n, 0, &cut, &n_cut, &err) == NT_OK);
            CHECK_MSG(n_cut == n_whole && memcmp(cut, whole, n_cut * sizeof *cut) == 0,
                      "%s: chunks of %zu bytes change the ids (%zu vs %zu ids)", files[f],
                      sizes[k], n_cut, n_whole);
            free(cut);
        }
        free(whole);
        nt_tokenizer_free(tok);
    }
    nt_buf_free(&text);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_tokenizer FIXTURE_DIR SCRATCH_DIR\n");
        return 2;
    }
    static const char *formats[][3] = {
        {"spm", "nemo-test-2048.model", "spm.cases.jsonl"},
        {"legacy", "legacy.tokenizer.json", "legacy.cases.jsonl"},
        {"metaspace", "metaspace.tokenizer.json", "metaspace.cases.jsonl"},
        /* llama.cpp's GGUF of the same tokenizer.model: its embedded
           vocabulary must encode as SentencePiece does */
        {"gguf", "../tiny-nemotron/model-q4_0.gguf", "spm.cases.jsonl"},
    };
    int total = 0;
    for (int f = 0; f < 4; f++) {
        char tok_path[4096], cases_path[4096];
        snprintf(tok_path, sizeof tok_path, "%s/tokenizer/%s", argv[1], formats[f][1]);
        snprintf(cases_path, sizeof cases_path, "%s/tokenizer/%s", argv[1], formats[f][2]);
        total += run_cases(tok_path, cases_path, formats[f][0]);
    }
    printf("all formats: %d of 1024\n", total);
    CHECK(total == 1024);
    check_flags(argv[1]);
    char mk[4200];
    snprintf(mk, sizeof mk, "mkdir -p '%s'", argv[2]);
    CHECK(system(mk) == 0);
    check_malformed(argv[1], argv[2]);
    check_nfc(argv[1], argv[2]);
    check_chunking(argv[1]);
    return check_summary();
}
