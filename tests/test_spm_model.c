/*
 * test_spm_model.c - tests of the SentencePiece model reader
 * (src/tokenizer/spm_model.c).
 *
 * argv[1] is a SentencePiece model: tests/fixtures/tokenizer/
 * nemo-test-2048.model, trained by Debian's spm_train (see
 * shared/fixtures/README.md). The test
 *   - checks what that file says (pieces, types, trainer and normalizer
 *     settings), and every piece's text and score against SentencePiece's
 *     own `spm_export_vocab` when that program is installed;
 *   - parses every proper prefix of the file and thousands of randomly
 *     damaged copies: each must fail with a message or give a valid model;
 *   - builds synthetic models with a small protobuf encoder, to check the
 *     proto defaults, the skipping of unknown fields, and one error case for
 *     each way a file can be malformed;
 *   - times the parse of a 256000-piece model (printed, not asserted).
 * Inputs are parsed from buffers of exactly their length, so a sanitizer
 * build catches any read past the end.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "rng.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/vocab.h"

#define SYNTH "synthetic.model"

/* CHECK_STR_CONTAINS on a char array (not a pointer) trips -Waddress. */
#define CHECK_ERR_CONTAINS(msg, needle)   \
    do {                                  \
        const char *msg_ = (msg);         \
        CHECK_STR_CONTAINS(msg_, needle); \
    } while (0)

enum { W_VARINT = 0, W_I64 = 1, W_LEN = 2, W_SGROUP = 3, W_EGROUP = 4, W_I32 = 5 };

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- a tiny protobuf encoder ----------------------------------------------- */

typedef struct pbuf {
    unsigned char *data;
    size_t len, cap;
} pbuf;

static void pb_raw(pbuf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            fprintf(stderr, "test: out of memory\n");
            exit(2);
        }
        b->data = grown;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void pb_byte(pbuf *b, unsigned char c) { pb_raw(b, &c, 1); }

static void pb_varint(pbuf *b, uint64_t v) {
    while (v >= 0x80) {
        pb_byte(b, (unsigned char)(v | 0x80));
        v >>= 7;
    }
    pb_byte(b, (unsigned char)v);
}

static void pb_tag(pbuf *b, unsigned field, int wire) {
    pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

static void pb_uint(pbuf *b, unsigned field, uint64_t v) {
    pb_tag(b, field, W_VARINT);
    pb_varint(b, v);
}

/* int32 as protobuf writes it: negative values sign-extended (10 bytes). */
static void pb_int32(pbuf *b, unsigned field, int32_t v) {
    pb_uint(b, field, (uint64_t)(int64_t)v);
}

static void pb_bytes(pbuf *b, unsigned field, const void *p, size_t n) {
    pb_tag(b, field, W_LEN);
    pb_varint(b, n);
    pb_raw(b, p, n);
}

static void pb_str(pbuf *b, unsigned field, const char *s) {
    pb_bytes(b, field, s, strlen(s));
}

static void pb_float(pbuf *b, unsigned field, float f) {
    pb_tag(b, field, W_I32);
    pb_raw(b, &f, 4);  /* little-endian host */
}

static void pb_msg(pbuf *b, unsigned field, const pbuf *sub) {
    pb_bytes(b, field, sub->data, sub->len);
}

static void pb_free(pbuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* A ModelProto.SentencePiece; type 0 leaves the type out (NORMAL). */
static void add_piece_n(pbuf *model, const char *text, size_t len, float score,
                        int type) {
    pbuf sub = {0};
    pb_bytes(&sub, 1, text, len);
    if (score != 0.0f)
        pb_float(&sub, 2, score);
    if (type != 0)
        pb_uint(&sub, 3, (uint64_t)type);
    pb_msg(model, 1, &sub);
    pb_free(&sub);
}

static void add_piece(pbuf *model, const char *text, float score, int type) {
    add_piece_n(model, text, strlen(text), score, type);
}

/* <unk> <s> </s> a b: valid under the default trainer_spec ids. */
static void basic_pieces(pbuf *model) {
    add_piece(model, "<unk>", 0, NT_SPM_UNKNOWN);
    add_piece(model, "<s>", 0, NT_SPM_CONTROL);
    add_piece(model, "</s>", 0, NT_SPM_CONTROL);
    add_piece(model, "a", -1, 0);
    add_piece(model, "b", -2, NT_SPM_NORMAL);
}

/* ---- parsing helpers ------------------------------------------------------- */

/* Parses `len` bytes from a private copy of exactly that size. */
static nt_status parse_exact(const unsigned char *data, size_t len,
                             const char *label, nt_spm_model *m,
                             nt_error *err) {
    unsigned char *copy = xmalloc(len);
    if (len > 0)
        memcpy(copy, data, len);
    nt_status st = nt_spm_model_parse(len > 0 ? copy : NULL, len, label, m, err);
    free(copy);  /* the model must not point into the input */
    return st;
}

/* What every successfully parsed model must satisfy. */
static int model_is_valid(const nt_spm_model *m) {
    if (m->n_pieces <= 0 || m->pieces == NULL || m->unk_surface == NULL ||
        m->normalizer_name == NULL)
        return 0;
    if (m->model_type < 1 || m->model_type > 4)
        return 0;
    if (m->unk_id < 0 || m->unk_id >= m->n_pieces ||
        m->pieces[m->unk_id].type != NT_SPM_UNKNOWN)
        return 0;
    int ids[3] = {m->bos_id, m->eos_id, m->pad_id};
    for (int k = 0; k < 3; k++)
        if (ids[k] < -1 || ids[k] >= m->n_pieces)
            return 0;
    int flags[9] = {m->byte_fallback, m->split_digits,
                    m->treat_whitespace_as_suffix,
                    m->allow_whitespace_only_pieces, m->split_by_whitespace,
                    m->add_dummy_prefix, m->remove_extra_whitespaces,
                    m->escape_whitespaces, m->has_denormalizer_spec};
    for (int k = 0; k < 9; k++)
        if (flags[k] != 0 && flags[k] != 1)
            return 0;
    if ((m->precompiled_charsmap == NULL) != (m->precompiled_charsmap_len == 0))
        return 0;
    int n_unknown = 0;
    for (int i = 0; i < m->n_pieces; i++) {
        const nt_spm_piece *p = &m->pieces[i];
        if (p->text == NULL || p->len == 0 || p->text[p->len] != '\0' ||
            p->type < 1 || p->type > 6)
            return 0;
        n_unknown += p->type == NT_SPM_UNKNOWN;
    }
    return n_unknown == 1;
}

static int model_is_zeroed(const nt_spm_model *m) {
    static const nt_spm_model zero;
    return memcmp(m, &zero, sizeof zero) == 0;
}

/* Parses a synthetic model that must be valid; fills *m. */
static int synth_ok(const pbuf *b, nt_spm_model *m, int line) {
    nt_error err = {NT_OK, ""};
    nt_status st = parse_exact(b->data, b->len, SYNTH, m, &err);
    CHECK_MSG(st == NT_OK, "line %d: parse failed: %s", line, err.message);
    if (st == NT_OK)
        CHECK_MSG(model_is_valid(m), "line %d: invalid model", line);
    return st == NT_OK;
}
#define SYNTH_OK(b, m) synth_ok((b), (m), __LINE__)

/*
 * Parses a synthetic model that must be rejected with NT_ERR_FORMAT and a
 * message that names the input and contains `needle` (and `needle2`, if not
 * NULL).
 */
static void synth_fail(const pbuf *b, const char *needle, const char *needle2,
                       int line) {
    nt_error err = {NT_OK, ""};
    nt_spm_model m;
    nt_status st = parse_exact(b->data, b->len, SYNTH, &m, &err);
    CHECK_MSG(st == NT_ERR_FORMAT, "line %d: status %d (%s), expected a "
              "format error", line, (int)st, err.message);
    CHECK_MSG(model_is_zeroed(&m), "line %d: model not zeroed on failure",
              line);
    CHECK_MSG(strncmp(err.message, SYNTH ": ", strlen(SYNTH) + 2) == 0,
              "line %d: message \"%s\" does not start with the file name", line,
              err.message);
    CHECK_MSG(strstr(err.message, needle) != NULL,
              "line %d: message \"%s\" lacks \"%s\"", line, err.message, needle);
    if (needle2 != NULL)
        CHECK_MSG(strstr(err.message, needle2) != NULL,
                  "line %d: message \"%s\" lacks \"%s\"", line, err.message,
                  needle2);
    nt_spm_model_free(&m);
}
#define SYNTH_FAIL(b, needle) synth_fail((b), (needle), NULL, __LINE__)
#define SYNTH_FAIL2(b, needle, needle2) synth_fail((b), (needle), (needle2), __LINE__)

static int piece_is(const nt_spm_model *m, int i, const char *text, int type) {
    return i >= 0 && i < m->n_pieces && m->pieces[i].len == strlen(text) &&
           memcmp(m->pieces[i].text, text, strlen(text)) == 0 &&
           m->pieces[i].type == type;
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    unsigned char *buf = xmalloc(cap);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            unsigned char *grown = realloc(buf, cap);
            if (grown == NULL)
                exit(2);
            buf = grown;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* ---- the fixture ------------------------------------------------------------ */

static void test_fixture_contents(const nt_spm_model *m) {
    CHECK(m->n_pieces == 2048);
    if (m->n_pieces != 2048)
        return;
    CHECK(model_is_valid(m));

    /* Special pieces and ids: pad 0, unk 1, bos 2, eos 3. */
    CHECK(m->pad_id == 0 && m->unk_id == 1 && m->bos_id == 2 && m->eos_id == 3);
    CHECK(piece_is(m, 0, "<pad>", NT_SPM_CONTROL));
    CHECK(piece_is(m, 1, "<unk>", NT_SPM_UNKNOWN));
    CHECK(piece_is(m, 2, "<s>", NT_SPM_CONTROL));
    CHECK(piece_is(m, 3, "</s>", NT_SPM_CONTROL));
    for (int k = 0; k < 10; k++) {
        char name[32];
        snprintf(name, sizeof name, "<extra_id_%d>", k);
        CHECK_MSG(piece_is(m, 4 + k, name, NT_SPM_USER_DEFINED), "piece %d",
                  4 + k);
    }
    /* The 256 byte pieces follow, in byte order. */
    for (int byte = 0; byte < 256; byte++) {
        char name[16];
        snprintf(name, sizeof name, "<0x%02X>", byte);
        CHECK_MSG(piece_is(m, 14 + byte, name, NT_SPM_BYTE), "piece %d",
                  14 + byte);
    }
    /*
     * Then the merges, NORMAL, scored by rank: piece 270 scores -0 (a
     * negative zero in the file), each later one 1 less.
     */
    int counts[7] = {0}, scores_ok = 1;
    for (int i = 0; i < m->n_pieces; i++) {
        counts[m->pieces[i].type]++;
        if (i < 270 && m->pieces[i].score != 0.0f)
            scores_ok = 0;
        if (i >= 270 && (m->pieces[i].type != NT_SPM_NORMAL ||
                         m->pieces[i].score != (float)-(i - 270)))
            scores_ok = 0;
    }
    CHECK(scores_ok);
    CHECK(counts[NT_SPM_NORMAL] == 1778 && counts[NT_SPM_UNKNOWN] == 1 &&
          counts[NT_SPM_CONTROL] == 3 && counts[NT_SPM_USER_DEFINED] == 10 &&
          counts[NT_SPM_UNUSED] == 0 && counts[NT_SPM_BYTE] == 256);
    CHECK(piece_is(m, 270, "\xE2\x96\x81\xE2\x96\x81", NT_SPM_NORMAL));
    CHECK(signbit(m->pieces[270].score));
    CHECK(piece_is(m, 271, "de", NT_SPM_NORMAL));
    /* Two pieces hold the ESC control character. */
    CHECK(piece_is(m, 1499, "\x1b[", NT_SPM_NORMAL));
    CHECK(piece_is(m, 2047, "\x1b", NT_SPM_NORMAL));

    /* TrainerSpec */
    CHECK(m->model_type == NT_SPM_MODEL_BPE);
    CHECK(m->byte_fallback == 1);
    CHECK(m->split_digits == 1);
    CHECK(m->split_by_whitespace == 1);
    CHECK(m->treat_whitespace_as_suffix == 0);
    CHECK(m->allow_whitespace_only_pieces == 1);
    CHECK(strcmp(m->unk_surface, " \xE2\x81\x87 ") == 0);
    /* NormalizerSpec: identity, dummy prefix, whitespace kept. */
    CHECK(strcmp(m->normalizer_name, "identity") == 0);
    CHECK(m->add_dummy_prefix == 1);
    CHECK(m->remove_extra_whitespaces == 0);
    CHECK(m->escape_whitespaces == 1);
    CHECK(m->precompiled_charsmap == NULL && m->precompiled_charsmap_len == 0);
    CHECK(m->has_denormalizer_spec == 0);
}

/*
 * Every piece's text and score against SentencePiece's own reading of the
 * file: `spm_export_vocab --output_format=vocab` prints piece<TAB>score.
 * Skipped (and said so) when the program is not installed.
 */
static void test_fixture_against_spm(const nt_spm_model *m, const char *path) {
    char cmd[4096];
    if (strchr(path, '\'') != NULL || strlen(path) > 3000) {
        printf("spm_export_vocab comparison: skipped (awkward path)\n");
        return;
    }
    if (system("command -v spm_export_vocab >/dev/null 2>&1") != 0) {
        printf("spm_export_vocab comparison: skipped (spm_export_vocab not "
               "installed; Debian package sentencepiece)\n");
        return;
    }
    snprintf(cmd, sizeof cmd,
             "spm_export_vocab --model='%s' --output_format=vocab 2>/dev/null",
             path);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    char line[4096];
    int n = 0, text_mismatch = 0, score_mismatch = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        char *tab = strrchr(line, '\t');
        if (tab == NULL || n >= m->n_pieces) {
            text_mismatch++;
            n++;
            continue;
        }
        size_t text_len = (size_t)(tab - line);
        float score = strtof(tab + 1, NULL);
        const nt_spm_piece *p = &m->pieces[n];
        if (p->len != text_len || memcmp(p->text, line, text_len) != 0) {
            if (text_mismatch++ < 5)
                fprintf(stderr, "piece %d: ours \"%s\", spm's \"%.*s\"\n", n,
                        p->text, (int)text_len, line);
        }
        if (fabsf(p->score - score) > 1e-5f * fmaxf(1.0f, fabsf(score))) {
            if (score_mismatch++ < 5)
                fprintf(stderr, "piece %d: score ours %g, spm's %g\n", n,
                        (double)p->score, (double)score);
        }
        n++;
    }
    int rc = pclose(f);
    CHECK_MSG(rc == 0, "spm_export_vocab exited with %d", rc);
    CHECK_MSG(n == m->n_pieces, "spm_export_vocab printed %d pieces, we read %d",
              n, m->n_pieces);
    CHECK(text_mismatch == 0);
    CHECK(score_mismatch == 0);
    printf("spm_export_vocab comparison: %d pieces, %d text and %d score "
           "mismatches\n", n, text_mismatch, score_mismatch);
}

/* Each proper prefix fails with a message naming the file, or is valid. */
static void test_prefixes(const unsigned char *data, size_t len) {
    int n_ok = 0, n_bad = 0, n_tried = 0;
    for (size_t cut = 0; cut < len; cut++) {
        nt_error err = {NT_OK, ""};
        nt_spm_model m;
        nt_status st = parse_exact(data, cut, "prefix.model", &m, &err);
        n_tried++;
        if (st == NT_OK) {
            n_ok++;
            CHECK_MSG(model_is_valid(&m), "prefix of %zu bytes: invalid model",
                      cut);
        } else {
            n_bad++;
            CHECK_MSG(st == NT_ERR_FORMAT && model_is_zeroed(&m) &&
                          strncmp(err.message, "prefix.model: ", 14) == 0 &&
                          strlen(err.message) > 20,
                      "prefix of %zu bytes: status %d, message \"%s\"", cut,
                      (int)st, err.message);
        }
        nt_spm_model_free(&m);
    }
    printf("prefixes: %d tried (of %zu), %d parsed, %d rejected\n", n_tried,
           len, n_ok, n_bad);
}

/* Randomly damaged copies fail with a message, or parse to a valid model. */
static void test_mutations(const unsigned char *data, size_t len) {
    uint64_t seed = 0x73656E7465706365ULL;  /* "sentepce" */
    const char *env = getenv("NT_SPM_FUZZ_SEED");
    if (env != NULL)
        seed = strtoull(env, NULL, 0);
    unsigned char *copy = xmalloc(len);
    int n_ok = 0, n_bad = 0;
    for (int iter = 0; iter < 2000; iter++) {
        uint64_t state = seed ^ ((uint64_t)iter * 0xD1B54A32D192ED03ULL);
        memcpy(copy, data, len);
        int n_flips = 1 + (int)(nt_splitmix64(&state) % 4);
        for (int k = 0; k < n_flips; k++) {
            uint64_t r = nt_splitmix64(&state);
            size_t at = (size_t)(r % len);
            switch ((r >> 32) % 3) {
            case 0: copy[at] ^= (unsigned char)(1u << ((r >> 40) % 8)); break;
            case 1: copy[at] = (unsigned char)(r >> 48); break;
            default: copy[at] ^= 0x80; break;  /* varint continuation bits */
            }
        }
        nt_error err = {NT_OK, ""};
        nt_spm_model m;
        nt_status st = parse_exact(copy, len, "mutant.model", &m, &err);
        if (st == NT_OK) {
            n_ok++;
            CHECK_MSG(model_is_valid(&m), "seed 0x%llx iteration %d: invalid "
                      "model", (unsigned long long)seed, iter);
        } else {
            n_bad++;
            CHECK_MSG(st == NT_ERR_FORMAT && model_is_zeroed(&m) &&
                          strncmp(err.message, "mutant.model: ", 14) == 0 &&
                          strlen(err.message) > 20,
                      "seed 0x%llx iteration %d: status %d, message \"%s\"",
                      (unsigned long long)seed, iter, (int)st, err.message);
        }
        nt_spm_model_free(&m);
    }
    free(copy);
    printf("mutations (seed 0x%llx, NT_SPM_FUZZ_SEED overrides): 2000 tried, "
           "%d parsed, %d rejected\n", (unsigned long long)seed, n_ok, n_bad);
}

/* ---- synthetic models: defaults and skipping ------------------------------- */

static void test_defaults(void) {
    nt_spm_model m;
    pbuf b = {0};
    basic_pieces(&b);
    if (SYNTH_OK(&b, &m)) {
        CHECK(m.n_pieces == 5);
        CHECK(piece_is(&m, 0, "<unk>", NT_SPM_UNKNOWN));
        CHECK(piece_is(&m, 3, "a", NT_SPM_NORMAL));  /* type left out */
        CHECK(m.pieces[0].score == 0.0f && m.pieces[3].score == -1.0f &&
              m.pieces[4].score == -2.0f);
        CHECK(m.model_type == NT_SPM_MODEL_UNIGRAM);
        CHECK(m.byte_fallback == 0 && m.split_digits == 0 &&
              m.treat_whitespace_as_suffix == 0 &&
              m.allow_whitespace_only_pieces == 0 &&
              m.split_by_whitespace == 1);
        CHECK(m.unk_id == 0 && m.bos_id == 1 && m.eos_id == 2 && m.pad_id == -1);
        CHECK(strcmp(m.unk_surface, " \xE2\x81\x87 ") == 0);
        CHECK(strcmp(m.normalizer_name, "") == 0);
        CHECK(m.add_dummy_prefix == 1 && m.remove_extra_whitespaces == 1 &&
              m.escape_whitespaces == 1);
        CHECK(m.precompiled_charsmap == NULL && m.precompiled_charsmap_len == 0);
        CHECK(m.has_denormalizer_spec == 0);
        nt_spm_model_free(&m);
        CHECK(model_is_zeroed(&m));
    }

    /* Empty trainer_spec and normalizer_spec messages: the same defaults. */
    pbuf empty = {0};
    pb_msg(&b, 2, &empty);
    pb_msg(&b, 3, &empty);
    if (SYNTH_OK(&b, &m)) {
        CHECK(m.model_type == NT_SPM_MODEL_UNIGRAM && m.split_by_whitespace == 1 &&
              m.unk_id == 0 && m.bos_id == 1 && m.eos_id == 2 && m.pad_id == -1);
        CHECK(m.add_dummy_prefix == 1 && m.remove_extra_whitespaces == 1 &&
              m.escape_whitespaces == 1);
        nt_spm_model_free(&m);
    }
    pb_free(&b);

    /* Every field we read, set away from its default. */
    pbuf ts = {0}, ns = {0}, ds = {0};
    add_piece(&b, "<pad>", 0, NT_SPM_CONTROL);
    add_piece(&b, "<s>", 0, NT_SPM_CONTROL);
    add_piece(&b, "</s>", 0, NT_SPM_CONTROL);
    add_piece(&b, "<unk>", 0, NT_SPM_UNKNOWN);
    add_piece(&b, "x", 0.5f, NT_SPM_USER_DEFINED);
    add_piece(&b, "y", -3.25f, NT_SPM_UNUSED);
    pb_uint(&ts, 3, NT_SPM_MODEL_CHAR);
    pb_uint(&ts, 22, 0);
    pb_uint(&ts, 24, 1);
    pb_uint(&ts, 25, 1);
    pb_uint(&ts, 26, 1);
    pb_int32(&ts, 40, 3);
    pb_int32(&ts, 41, 1);
    pb_int32(&ts, 42, -1);
    pb_int32(&ts, 43, 0);
    pb_str(&ts, 44, "??");
    static const unsigned char charsmap[] = {1, 0, 0, 0, 'a', 0, 0xFF};
    pb_str(&ns, 1, "nmt_nfkc");
    pb_bytes(&ns, 2, charsmap, sizeof charsmap);
    pb_uint(&ns, 3, 0);
    pb_uint(&ns, 4, 0);
    pb_uint(&ns, 5, 0);
    pb_str(&ds, 1, "denorm");
    pb_msg(&b, 2, &ts);
    pb_msg(&b, 3, &ns);
    pb_msg(&b, 5, &ds);
    if (SYNTH_OK(&b, &m)) {
        CHECK(m.model_type == NT_SPM_MODEL_CHAR);
        CHECK(m.split_by_whitespace == 0 && m.treat_whitespace_as_suffix == 1 &&
              m.split_digits == 1 && m.allow_whitespace_only_pieces == 1 &&
              m.byte_fallback == 0);
        CHECK(m.unk_id == 3 && m.bos_id == 1 && m.eos_id == -1 && m.pad_id == 0);
        CHECK(strcmp(m.unk_surface, "??") == 0);
        CHECK(strcmp(m.normalizer_name, "nmt_nfkc") == 0);
        CHECK(m.add_dummy_prefix == 0 && m.remove_extra_whitespaces == 0 &&
              m.escape_whitespaces == 0);
        CHECK(m.precompiled_charsmap_len == sizeof charsmap &&
              m.precompiled_charsmap != NULL &&
              memcmp(m.precompiled_charsmap, charsmap, sizeof charsmap) == 0);
        CHECK(m.has_denormalizer_spec == 1);
        CHECK(piece_is(&m, 4, "x", NT_SPM_USER_DEFINED) &&
              m.pieces[4].score == 0.5f);
        CHECK(piece_is(&m, 5, "y", NT_SPM_UNUSED) && m.pieces[5].score == -3.25f);
        nt_spm_model_free(&m);
    }
    pb_free(&b);
    pb_free(&ts);
    pb_free(&ns);
    pb_free(&ds);
}

/* Sub-messages given twice merge; a scalar given twice: the last wins. */
static void test_merge(void) {
    nt_spm_model m;
    pbuf b = {0}, t1 = {0}, t2 = {0}, n1 = {0}, piece = {0};
    basic_pieces(&b);
    pb_uint(&t1, 3, NT_SPM_MODEL_BPE);
    pb_int32(&t1, 43, 4);
    pb_uint(&t2, 25, 1);
    pb_int32(&t2, 43, 3);
    pb_int32(&t2, 43, -1);
    pb_int32(&t2, 43, 2);
    pb_msg(&b, 2, &t1);
    pb_msg(&b, 2, &t2);
    pb_uint(&n1, 4, 0);
    pb_uint(&n1, 4, 1);
    pb_uint(&n1, 3, 0);
    pb_msg(&b, 3, &n1);
    /* A piece whose text and type are each given twice. */
    pb_str(&piece, 1, "first");
    pb_uint(&piece, 3, NT_SPM_CONTROL);
    pb_str(&piece, 1, "second");
    pb_uint(&piece, 3, NT_SPM_USER_DEFINED);
    pb_msg(&b, 1, &piece);
    if (SYNTH_OK(&b, &m)) {
        CHECK(m.model_type == NT_SPM_MODEL_BPE && m.split_digits == 1);
        CHECK(m.pad_id == 2);
        CHECK(m.remove_extra_whitespaces == 1 && m.add_dummy_prefix == 0);
        CHECK(m.n_pieces == 6 && piece_is(&m, 5, "second", NT_SPM_USER_DEFINED));
        nt_spm_model_free(&m);
    }
    pb_free(&b);
    pb_free(&t1);
    pb_free(&t2);
    pb_free(&n1);
    pb_free(&piece);
}

/* Appends one unknown field of every wire type, groups nested. */
static void add_unknown_fields(pbuf *b, unsigned base) {
    pb_uint(b, base, 12345);
    pb_uint(b, base + 1, UINT64_MAX);  /* a 10-byte varint */
    pb_tag(b, base + 2, W_I64);
    pb_raw(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    pb_str(b, base + 3, "skipped \xFF bytes");  /* not ours to check */
    pb_tag(b, base + 4, W_I32);
    pb_raw(b, "\xFF\xFF\xFF\xFF", 4);
    pb_tag(b, base + 5, W_SGROUP);      /* a group ... */
    pb_uint(b, 1, 7);
    pb_str(b, 2, "in a group");
    pb_tag(b, base + 6, W_SGROUP);      /* ... holding a group */
    pb_tag(b, base + 5, W_SGROUP);      /* (same number, deeper) */
    pb_tag(b, base + 5, W_EGROUP);
    pb_tag(b, base + 6, W_EGROUP);
    pb_tag(b, base + 5, W_EGROUP);
    pb_bytes(b, 536870911, "max", 3);   /* the largest field number */
}

static void test_unknown_fields(void) {
    nt_spm_model m;
    pbuf b = {0}, piece = {0}, ts = {0}, ns = {0};
    add_unknown_fields(&b, 100);
    add_piece(&b, "<unk>", 0, NT_SPM_UNKNOWN);
    add_piece(&b, "<s>", 0, NT_SPM_CONTROL);
    add_piece(&b, "</s>", 0, NT_SPM_CONTROL);
    add_unknown_fields(&piece, 200);
    pb_str(&piece, 1, "p");
    add_unknown_fields(&piece, 4);
    pb_float(&piece, 2, -7.5f);
    pb_msg(&b, 1, &piece);
    /* trainer_spec fields we do not read, then ours, then unknown ones */
    pb_str(&ts, 1, "input.txt");
    pb_uint(&ts, 4, 2048);
    pb_float(&ts, 10, 0.9995f);
    pb_uint(&ts, 35, 0);
    add_unknown_fields(&ts, 300);
    pb_uint(&ts, 25, 1);
    pb_msg(&b, 2, &ts);
    add_unknown_fields(&ns, 7);
    pb_uint(&ns, 3, 0);
    pb_str(&ns, 6, "a\tb\n");  /* normalization_rule_tsv */
    pb_msg(&b, 3, &ns);
    pb_msg(&b, 4, &ns);  /* self_test_data: skipped whole */
    add_unknown_fields(&b, 1000);
    if (SYNTH_OK(&b, &m)) {
        CHECK(m.n_pieces == 4);
        CHECK(piece_is(&m, 3, "p", NT_SPM_NORMAL) && m.pieces[3].score == -7.5f);
        CHECK(m.split_digits == 1 && m.byte_fallback == 0);
        CHECK(m.add_dummy_prefix == 0 && m.remove_extra_whitespaces == 1);
        nt_spm_model_free(&m);
    }
    pb_free(&b);
    pb_free(&piece);
    pb_free(&ts);
    pb_free(&ns);

    /* 64 nested groups are skipped; 65 are refused. */
    for (int depth = 64; depth <= 65; depth++) {
        basic_pieces(&b);
        for (int k = 0; k < depth; k++)
            pb_tag(&b, 50, W_SGROUP);
        for (int k = 0; k < depth; k++)
            pb_tag(&b, 50, W_EGROUP);
        if (depth == 64) {
            if (SYNTH_OK(&b, &m))
                nt_spm_model_free(&m);
        } else {
            SYNTH_FAIL(&b, "nested");
        }
        pb_free(&b);
    }
}

/* self_test_data is not kept, but its shape is checked as protobuf would. */
static void test_self_test_data(void) {
    nt_spm_model m;
    pbuf b = {0}, data = {0}, sample = {0};
    basic_pieces(&b);
    pb_str(&sample, 1, "hello world");
    pb_str(&sample, 2, "\xE2\x96\x81hello \xE2\x96\x81world");
    pb_uint(&sample, 9, 1);  /* unknown: skipped */
    pb_msg(&data, 1, &sample);
    pb_msg(&data, 1, &sample);
    pb_msg(&b, 4, &data);
    if (SYNTH_OK(&b, &m)) {
        CHECK(m.n_pieces == 5);
        nt_spm_model_free(&m);
    }
    pb_free(&b);
    pb_free(&data);
    pb_free(&sample);

    /* samples as a varint; a sample's input as a varint; a cut sample */
    basic_pieces(&b);
    pb_uint(&data, 1, 3);
    pb_msg(&b, 4, &data);
    SYNTH_FAIL2(&b, "self_test_data: ", "field 1 (samples)");
    pb_free(&b);
    pb_free(&data);

    basic_pieces(&b);
    pb_uint(&sample, 1, 3);
    pb_msg(&data, 1, &sample);
    pb_msg(&b, 4, &data);
    SYNTH_FAIL2(&b, "self_test_data: ", "field 1 (input)");
    pb_free(&b);
    pb_free(&data);
    pb_free(&sample);

    basic_pieces(&b);
    pb_tag(&sample, 2, W_LEN);
    pb_varint(&sample, 10);
    pb_raw(&sample, "abc", 3);
    pb_msg(&data, 1, &sample);
    pb_msg(&b, 4, &data);
    pb_uint(&b, 20, 1);
    SYNTH_FAIL2(&b, "self_test_data: ", "field 2 (expected)");
    pb_free(&b);
    pb_free(&data);
    pb_free(&sample);
}

/*
 * Random damage to a small synthetic model that has what the fixture lacks:
 * unknown fields of every wire type, groups, every trainer and normalizer
 * field, a denormalizer_spec and self_test_data.
 */
static void test_synthetic_mutations(void) {
    pbuf b = {0}, ts = {0}, ns = {0}, st = {0}, sample = {0};
    add_unknown_fields(&b, 60);
    basic_pieces(&b);
    add_piece(&b, "\xE2\x96\x81the", -3.5f, NT_SPM_NORMAL);
    add_piece(&b, "<x>", 0, NT_SPM_USER_DEFINED);
    add_piece(&b, "u", 0, NT_SPM_UNUSED);
    pb_uint(&ts, 3, 2);
    pb_uint(&ts, 22, 1);
    pb_uint(&ts, 24, 0);
    pb_uint(&ts, 25, 1);
    pb_uint(&ts, 26, 0);
    add_unknown_fields(&ts, 100);
    pb_int32(&ts, 40, 0);
    pb_int32(&ts, 41, 1);
    pb_int32(&ts, 42, 2);
    pb_int32(&ts, 43, -1);
    pb_str(&ts, 44, " ?? ");
    pb_msg(&b, 2, &ts);
    pb_str(&ns, 1, "identity");
    pb_bytes(&ns, 2, "\x00\x01\x02\x03", 4);
    pb_uint(&ns, 3, 1);
    pb_uint(&ns, 4, 0);
    pb_uint(&ns, 5, 1);
    add_unknown_fields(&ns, 10);
    pb_msg(&b, 3, &ns);
    pb_str(&sample, 1, "in");
    pb_str(&sample, 2, "out");
    pb_msg(&st, 1, &sample);
    pb_msg(&b, 4, &st);
    pb_msg(&b, 5, &ns);

    nt_spm_model m;
    if (SYNTH_OK(&b, &m))
        nt_spm_model_free(&m);

    uint64_t state = 0x53594E5448ULL;  /* "SYNTH" */
    unsigned char *copy = xmalloc(b.len);
    int n_ok = 0, n_bad = 0;
    for (int iter = 0; iter < 4000; iter++) {
        memcpy(copy, b.data, b.len);
        int n_flips = 1 + (int)(nt_splitmix64(&state) % 3);
        for (int k = 0; k < n_flips; k++) {
            uint64_t r = nt_splitmix64(&state);
            size_t at = (size_t)(r % b.len);
            if ((r >> 32) % 2)
                copy[at] ^= (unsigned char)(1u << ((r >> 40) % 8));
            else
                copy[at] = (unsigned char)(r >> 48);
        }
        nt_error err = {NT_OK, ""};
        nt_status status = parse_exact(copy, b.len, "mutant.model", &m, &err);
        if (status == NT_OK) {
            n_ok++;
            CHECK_MSG(model_is_valid(&m), "synthetic mutant %d: invalid", iter);
        } else {
            n_bad++;
            CHECK_MSG(status == NT_ERR_FORMAT && model_is_zeroed(&m) &&
                          strncmp(err.message, "mutant.model: ", 14) == 0,
                      "synthetic mutant %d: status %d, message \"%s\"", iter,
                      (int)status, err.message);
        }
        nt_spm_model_free(&m);
    }
    free(copy);
    printf("synthetic mutations: 4000 tried, %d parsed, %d rejected\n", n_ok,
           n_bad);
    pb_free(&b);
    pb_free(&ts);
    pb_free(&ns);
    pb_free(&st);
    pb_free(&sample);
}

/* Ids written in the 5-byte form some writers use for negative int32s. */
static void test_int32_forms(void) {
    nt_spm_model m;
    pbuf b = {0}, ts = {0};
    basic_pieces(&b);
    pb_uint(&ts, 43, 0xFFFFFFFFu);  /* -1 as uint32 */
    pb_uint(&ts, 42, 0x7FFFFFFFu);
    pb_uint(&ts, 42, 4);
    pb_msg(&b, 2, &ts);
    if (SYNTH_OK(&b, &m)) {
        CHECK(m.pad_id == -1 && m.eos_id == 4);
        nt_spm_model_free(&m);
    }
    pb_free(&b);
    pb_free(&ts);
}

/* Texts SentencePiece accepts that a careless reader might not. */
static void test_valid_texts(void) {
    nt_spm_model m;
    pbuf b = {0}, ts = {0};
    basic_pieces(&b);
    add_piece(&b, "\xC2\x80", 0, 0);              /* U+0080 */
    add_piece(&b, "\xEF\xBF\xBF", 0, 0);          /* U+FFFF */
    add_piece(&b, "\xF0\x9F\x98\x80", 0, 0);      /* U+1F600 */
    add_piece(&b, "\xF4\x8F\xBF\xBF", 0, 0);      /* U+10FFFF */
    add_piece_n(&b, "x\0y", 3, 0, 0);             /* an embedded NUL */
    add_piece(&b, "<s>", 0, NT_SPM_NORMAL);       /* beside CONTROL <s>: */
    add_piece(&b, "a", 0, NT_SPM_CONTROL);        /* separate tables in spm */
    for (int byte = 255; byte >= 0; byte--) {
        char name[16];
        snprintf(name, sizeof name, "<0x%02X>", byte);
        add_piece(&b, name, 0, NT_SPM_BYTE);
    }
    pb_uint(&ts, 35, 1);
    pb_msg(&b, 2, &ts);
    if (SYNTH_OK(&b, &m)) {
        CHECK(m.n_pieces == 12 + 256);
        CHECK(m.pieces[9].len == 3 && memcmp(m.pieces[9].text, "x\0y", 4) == 0);
        CHECK(piece_is(&m, 10, "<s>", NT_SPM_NORMAL));
        CHECK(piece_is(&m, 12, "<0xFF>", NT_SPM_BYTE));
        CHECK(m.byte_fallback == 1);
        nt_spm_model_free(&m);
    }
    pb_free(&b);
    pb_free(&ts);
}

/* ---- synthetic models: errors -------------------------------------------- */

static void test_wire_errors(void) {
    pbuf b = {0}, sub = {0};

    /* An empty file, and one with pieces nowhere. */
    SYNTH_FAIL(&b, "no pieces");
    pb_uint(&b, 20, 1);
    SYNTH_FAIL(&b, "no pieces");
    pb_free(&b);

    /* 11 bytes of 0xFF: a varint that never ends within 64 bits. */
    for (int k = 0; k < 11; k++)
        pb_byte(&b, 0xFF);
    SYNTH_FAIL(&b, "varint longer than 64 bits");
    pb_free(&b);

    /* The same inside a piece, as the value of its type field. */
    basic_pieces(&b);
    pb_tag(&sub, 3, W_VARINT);
    for (int k = 0; k < 11; k++)
        pb_byte(&sub, 0xFF);
    pb_msg(&b, 1, &sub);
    SYNTH_FAIL2(&b, "piece 5: ", "varint longer than 64 bits");
    pb_free(&b);
    pb_free(&sub);

    /* A varint cut off by the end of the file. */
    basic_pieces(&b);
    pb_byte(&b, 0x80);
    SYNTH_FAIL2(&b, "field tag", "truncated");
    pb_free(&b);

    /* Lengths past the end of the file, of the piece, absurd lengths. */
    basic_pieces(&b);
    pb_tag(&b, 1, W_LEN);
    pb_varint(&b, 100);
    pb_raw(&b, "\x0a\x01x", 3);
    SYNTH_FAIL2(&b, "piece 5: ", "truncated");
    pb_free(&b);

    basic_pieces(&b);
    pb_tag(&sub, 1, W_LEN);
    pb_varint(&sub, 50);
    pb_raw(&sub, "abc", 3);
    pb_msg(&b, 1, &sub);
    pb_uint(&b, 20, 1);  /* so that the piece does not end the file */
    SYNTH_FAIL2(&b, "piece 5: ", "past the end of its message");
    pb_free(&b);
    pb_free(&sub);

    basic_pieces(&b);
    pb_tag(&b, 2, W_LEN);
    pb_varint(&b, UINT64_MAX);
    SYNTH_FAIL2(&b, "trainer_spec: ", "truncated");
    pb_free(&b);

    basic_pieces(&b);
    pb_tag(&b, 77, W_LEN);  /* an unknown field */
    pb_varint(&b, (uint64_t)SIZE_MAX - 2);
    SYNTH_FAIL2(&b, "field 77", "truncated");
    pb_free(&b);

    /* Fixed-size values cut short. */
    basic_pieces(&b);
    pb_tag(&sub, 1, W_LEN);
    pb_varint(&sub, 1);
    pb_byte(&sub, 'z');
    pb_tag(&sub, 2, W_I32);
    pb_raw(&sub, "\x00\x00", 2);
    pb_msg(&b, 1, &sub);
    SYNTH_FAIL2(&b, "piece 5: ", "score");
    pb_free(&b);
    pb_free(&sub);

    basic_pieces(&b);
    pb_tag(&b, 9, W_I64);
    pb_raw(&b, "\x00\x00\x00", 3);
    SYNTH_FAIL2(&b, "field 9", "truncated");
    pb_free(&b);

    /* Tags: field number 0, wire types 6 and 7, a tag past 32 bits. */
    basic_pieces(&b);
    pb_tag(&b, 0, W_VARINT);
    pb_varint(&b, 1);
    SYNTH_FAIL(&b, "field number 0");
    pb_free(&b);
    for (int wire = 6; wire <= 7; wire++) {
        basic_pieces(&b);
        pb_tag(&b, 9, wire);
        pb_varint(&b, 1);
        SYNTH_FAIL(&b, "invalid wire type");
        pb_free(&b);
    }
    basic_pieces(&b);
    pb_varint(&b, (uint64_t)1 << 35);
    SYNTH_FAIL(&b, "too large to be a tag");
    pb_free(&b);

    /* Groups: a stray end, a mismatched end, one never closed. */
    basic_pieces(&b);
    pb_tag(&b, 9, W_EGROUP);
    SYNTH_FAIL(&b, "end-group without a start-group");
    pb_free(&b);
    basic_pieces(&b);
    pb_tag(&b, 9, W_SGROUP);
    pb_tag(&b, 10, W_EGROUP);
    SYNTH_FAIL(&b, "does not match");
    pb_free(&b);
    basic_pieces(&b);
    pb_tag(&b, 9, W_SGROUP);
    pb_uint(&b, 1, 1);
    SYNTH_FAIL(&b, "never closed");
    pb_free(&b);
    /* A group may not run past the end of the piece that holds it. */
    basic_pieces(&b);
    pb_str(&sub, 1, "g");
    pb_tag(&sub, 9, W_SGROUP);
    pb_msg(&b, 1, &sub);
    pb_tag(&b, 9, W_EGROUP);
    SYNTH_FAIL2(&b, "piece 5: ", "never closed");
    pb_free(&b);
    pb_free(&sub);
}

static void test_wire_type_errors(void) {
    pbuf b = {0}, sub = {0};

    /* pieces (field 1 of ModelProto) as a varint */
    basic_pieces(&b);
    pb_uint(&b, 1, 5);
    SYNTH_FAIL2(&b, "piece 5: ", "wire type 0");
    pb_free(&b);

    /* trainer_spec as a 32-bit value */
    basic_pieces(&b);
    pb_float(&b, 2, 1.0f);
    SYNTH_FAIL2(&b, "trainer_spec: ", "wire type 5");
    pb_free(&b);

    /* piece text as a varint, score as a varint, type as a string */
    basic_pieces(&b);
    pb_uint(&sub, 1, 7);
    pb_msg(&b, 1, &sub);
    SYNTH_FAIL2(&b, "piece 5: ", "field 1 (piece)");
    pb_free(&b);
    pb_free(&sub);

    basic_pieces(&b);
    pb_str(&sub, 1, "c");
    pb_uint(&sub, 2, 7);
    pb_msg(&b, 1, &sub);
    SYNTH_FAIL2(&b, "piece 5: ", "field 2 (score)");
    pb_free(&b);
    pb_free(&sub);

    basic_pieces(&b);
    pb_str(&sub, 1, "c");
    pb_str(&sub, 3, "1");
    pb_msg(&b, 1, &sub);
    SYNTH_FAIL2(&b, "piece 5: ", "field 3 (type)");
    pb_free(&b);
    pb_free(&sub);

    /* unk_id as a string; add_dummy_prefix as a 64-bit value */
    basic_pieces(&b);
    pb_str(&sub, 40, "0");
    pb_msg(&b, 2, &sub);
    SYNTH_FAIL2(&b, "trainer_spec: ", "field 40 (unk_id)");
    pb_free(&b);
    pb_free(&sub);

    basic_pieces(&b);
    pb_tag(&sub, 3, W_I64);
    pb_raw(&sub, "\x01\x00\x00\x00\x00\x00\x00\x00", 8);
    pb_msg(&b, 3, &sub);
    SYNTH_FAIL2(&b, "normalizer_spec: ", "field 3 (add_dummy_prefix)");
    pb_free(&b);
    pb_free(&sub);

    /* A malformed denormalizer_spec is an error too. */
    basic_pieces(&b);
    pb_uint(&sub, 1, 3);
    pb_msg(&b, 5, &sub);
    SYNTH_FAIL2(&b, "denormalizer_spec: ", "field 1 (name)");
    pb_free(&b);
    pb_free(&sub);
}

static void test_value_errors(void) {
    pbuf b = {0}, sub = {0};

    /* A duplicated piece: both indices named. */
    basic_pieces(&b);
    add_piece(&b, "c", 0, 0);
    add_piece(&b, "a", -5, NT_SPM_USER_DEFINED);
    SYNTH_FAIL2(&b, "pieces 3 and 6", "\"a\"");
    pb_free(&b);
    basic_pieces(&b);
    add_piece(&b, "<unk>", 0, NT_SPM_CONTROL);  /* same table as UNKNOWN */
    SYNTH_FAIL(&b, "pieces 0 and 5");
    pb_free(&b);

    /* Invalid UTF-8, each kind. */
    static const char *const bad_utf8[] = {
        "\x80",                  /* a lone continuation byte */
        "ab\xC3(",               /* a lead byte without its continuation */
        "\xC0\xAF",              /* overlong '/' */
        "\xE0\x80\xAF",          /* overlong, 3 bytes */
        "\xED\xA0\x80",          /* a UTF-16 surrogate */
        "\xF4\x90\x80\x80",      /* past U+10FFFF */
        "\xF8\x88\x80\x80\x80",  /* 5-byte form */
        "x\xE2\x81",             /* cut short at the end */
        "\xFF",
    };
    for (size_t k = 0; k < sizeof bad_utf8 / sizeof bad_utf8[0]; k++) {
        basic_pieces(&b);
        add_piece(&b, bad_utf8[k], 0, 0);
        SYNTH_FAIL2(&b, "piece 5: ", "not valid UTF-8");
        pb_free(&b);
    }

    /* Piece types out of range: 9, 0 and -1. */
    static const int64_t bad_types[] = {9, 0, -1, 7};
    for (size_t k = 0; k < 4; k++) {
        basic_pieces(&b);
        pb_str(&sub, 1, "c");
        pb_uint(&sub, 3, (uint64_t)bad_types[k]);
        pb_msg(&b, 1, &sub);
        SYNTH_FAIL2(&b, "piece 5: ", "is not a piece type");
        pb_free(&b);
        pb_free(&sub);
    }

    /* Empty piece text, and a piece with no text at all. */
    basic_pieces(&b);
    add_piece(&b, "", 0, 0);
    SYNTH_FAIL2(&b, "piece 5: ", "empty");
    pb_free(&b);
    basic_pieces(&b);
    pb_float(&sub, 2, 1.0f);
    pb_msg(&b, 1, &sub);
    SYNTH_FAIL2(&b, "piece 5: ", "empty");
    pb_free(&b);
    pb_free(&sub);

    /* The UNKNOWN piece: missing, twice, not at unk_id. */
    add_piece(&b, "<s>", 0, NT_SPM_CONTROL);
    add_piece(&b, "x", 0, 0);
    SYNTH_FAIL(&b, "no piece has type UNKNOWN");
    pb_free(&b);
    basic_pieces(&b);
    add_piece(&b, "<unk2>", 0, NT_SPM_UNKNOWN);
    SYNTH_FAIL2(&b, "piece 5: ", "UNKNOWN");
    pb_free(&b);
    basic_pieces(&b);
    pb_int32(&sub, 40, 7);
    pb_msg(&b, 2, &sub);
    SYNTH_FAIL(&b, "unk_id is 7 but the UNKNOWN piece is piece 0");
    pb_free(&b);
    pb_free(&sub);
    basic_pieces(&b);
    pb_int32(&sub, 40, -1);
    pb_msg(&b, 2, &sub);
    SYNTH_FAIL(&b, "unk_id is -1");
    pb_free(&b);
    pb_free(&sub);

    /* bos/eos/pad out of range. */
    static const struct { unsigned field; int32_t value; const char *needle; }
        bad_ids[] = {{41, 5, "bos_id 5"}, {42, -2, "eos_id -2"},
                     {43, 1000000, "pad_id 1000000"},
                     {41, INT32_MIN, "bos_id -2147483648"}};
    for (size_t k = 0; k < 4; k++) {
        basic_pieces(&b);
        pb_int32(&sub, bad_ids[k].field, bad_ids[k].value);
        pb_msg(&b, 2, &sub);
        SYNTH_FAIL2(&b, bad_ids[k].needle, "(the model has 5 pieces)");
        pb_free(&b);
        pb_free(&sub);
    }

    /* An id that is not an int32 at all. */
    basic_pieces(&b);
    pb_uint(&sub, 42, (uint64_t)1 << 40);
    pb_msg(&b, 2, &sub);
    SYNTH_FAIL2(&b, "trainer_spec: ", "is not an int32");
    pb_free(&b);
    pb_free(&sub);

    /* model_type out of range. */
    basic_pieces(&b);
    pb_uint(&sub, 3, 7);
    pb_msg(&b, 2, &sub);
    SYNTH_FAIL2(&b, "trainer_spec: ", "not a model type");
    pb_free(&b);
    pb_free(&sub);

    /* Byte pieces: without byte_fallback, misspelled, incomplete. */
    basic_pieces(&b);
    add_piece(&b, "<0x41>", 0, NT_SPM_BYTE);
    SYNTH_FAIL2(&b, "piece 5: ", "byte_fallback is false");
    pb_free(&b);
    static const char *const bad_bytes[] = {"<0xab>", "<0x4>", "<0x041>",
                                            "<0X41>", "A"};
    for (size_t k = 0; k < 5; k++) {
        basic_pieces(&b);
        add_piece(&b, bad_bytes[k], 0, NT_SPM_BYTE);
        pb_uint(&sub, 35, 1);
        pb_msg(&b, 2, &sub);
        SYNTH_FAIL2(&b, "piece 5: ", "not of the form <0xHH>");
        pb_free(&b);
        pb_free(&sub);
    }
    basic_pieces(&b);
    for (int byte = 0; byte < 256; byte++) {
        char name[16];
        snprintf(name, sizeof name, "<0x%02X>", byte);
        if (byte != 0x7F)
            add_piece(&b, name, 0, NT_SPM_BYTE);
    }
    pb_uint(&sub, 35, 1);
    pb_msg(&b, 2, &sub);
    SYNTH_FAIL(&b, "only 255 of the 256 byte pieces exist (<0x7F> is missing)");
    pb_free(&b);
    pb_free(&sub);

    /* C strings: invalid UTF-8, or a NUL that would hide the rest. */
    basic_pieces(&b);
    pb_str(&sub, 44, "\xFE");
    pb_msg(&b, 2, &sub);
    SYNTH_FAIL2(&b, "unk_surface", "not valid UTF-8");
    pb_free(&b);
    pb_free(&sub);
    basic_pieces(&b);
    pb_bytes(&sub, 1, "nf\0kc", 5);
    pb_msg(&b, 3, &sub);
    SYNTH_FAIL2(&b, "normalizer_spec: name", "NUL");
    pb_free(&b);
    pb_free(&sub);
}

/* ---- the duplicate check at scale --------------------------------------------- */

/* piece_hash() in spm_model.c for a NORMAL piece (table 0). */
static uint64_t normal_piece_hash(const char *s, size_t n) {
    return nt_hash_bytes_seeded(s, n, 0);
}

/*
 * 1000 pieces that all land in the same hash slot, so that linear probing
 * goes quadratic and the reader has to fall back to sorting. (If the hash
 * in spm_model.c changes, this still passes but no longer reaches the
 * fallback.) The duplicate must still be found, with the same indices.
 */
static void test_colliding_pieces(void) {
    enum { N_COLLIDING = 1000 };
    const size_t table = 2048;  /* the next power of two >= 2 * 1004 */
    char (*texts)[16] = xmalloc(N_COLLIDING * sizeof *texts);
    int found = 0;
    for (uint32_t i = 0; found < N_COLLIDING; i++) {
        char s[16];
        size_t n = 0;
        s[n++] = 'c';
        for (uint32_t v = i; v != 0 || n == 1; v >>= 4)
            s[n++] = "0123456789abcdef"[v & 15];
        s[n] = '\0';
        if ((normal_piece_hash(s, n) & (table - 1)) == 5)
            memcpy(texts[found++], s, sizeof s);
    }
    for (int with_duplicate = 0; with_duplicate <= 1; with_duplicate++) {
        pbuf b = {0};
        add_piece(&b, "<unk>", 0, NT_SPM_UNKNOWN);
        add_piece(&b, "<s>", 0, NT_SPM_CONTROL);
        add_piece(&b, "</s>", 0, NT_SPM_CONTROL);
        for (int i = 0; i < N_COLLIDING; i++)
            add_piece(&b, texts[i], (float)-i, 0);
        add_piece(&b, with_duplicate ? texts[234] : "unique", 0, 0);
        if (with_duplicate) {
            SYNTH_FAIL(&b, "pieces 237 and 1003");
        } else {
            nt_spm_model m;
            double t0 = nt_time_seconds();
            if (SYNTH_OK(&b, &m)) {
                CHECK(m.n_pieces == N_COLLIDING + 4);
                nt_spm_model_free(&m);
            }
            printf("1004 pieces in one hash slot: %.2f ms\n",
                   (nt_time_seconds() - t0) * 1e3);
        }
        pb_free(&b);
    }
    free(texts);
}

/* A 256000-piece model, the size of real large vocabularies: timed. */
static void test_large_model(void) {
    enum { N = 256000 };
    pbuf b = {0}, ts = {0};
    add_piece(&b, "<unk>", 0, NT_SPM_UNKNOWN);
    add_piece(&b, "<s>", 0, NT_SPM_CONTROL);
    add_piece(&b, "</s>", 0, NT_SPM_CONTROL);
    uint64_t state = 42;
    for (int i = 3; i < N; i++) {
        /* "▁" on some, a unique middle, random lower-case tails */
        char s[64];
        int n = snprintf(s, sizeof s, "%s%x", (i % 3) ? "\xE2\x96\x81" : "",
                         (unsigned)i);
        int tail = (int)(nt_splitmix64(&state) % 6);
        for (int k = 0; k < tail; k++)
            s[n++] = (char)('g' + nt_splitmix64(&state) % 20);
        add_piece_n(&b, s, (size_t)n, -(float)i, 0);
    }
    pb_uint(&ts, 3, NT_SPM_MODEL_BPE);
    pb_msg(&b, 2, &ts);

    double best = 1e30;
    for (int run = 0; run < 3; run++) {
        nt_spm_model m;
        nt_error err = {NT_OK, ""};
        double t0 = nt_time_seconds();
        nt_status st = nt_spm_model_parse(b.data, b.len, SYNTH, &m, &err);
        double t = nt_time_seconds() - t0;
        if (t < best)
            best = t;
        CHECK_MSG(st == NT_OK, "%s", err.message);
        if (st == NT_OK) {
            CHECK(m.n_pieces == N);
            CHECK(m.pieces[N - 1].score == -(float)(N - 1));
        }
        nt_spm_model_free(&m);
    }
    printf("parse of %d pieces (%zu bytes): %.2f ms (best of 3)\n", N, b.len,
           best * 1e3);

    /* A smaller one whose last piece repeats piece 500. */
    b.len = 0;
    add_piece(&b, "<unk>", 0, NT_SPM_UNKNOWN);
    for (int i = 1; i < 1000; i++) {
        char s[16];
        snprintf(s, sizeof s, "p%d", i);
        add_piece(&b, s, 0, 0);
    }
    add_piece(&b, "p500", 0, 0);
    pb_free(&ts);
    pb_int32(&ts, 41, -1);
    pb_int32(&ts, 42, -1);
    pb_msg(&b, 2, &ts);
    SYNTH_FAIL(&b, "pieces 500 and 1000");
    pb_free(&b);
    pb_free(&ts);
}

/* ---- loading files -------------------------------------------------------------- */

static void test_load_errors(void) {
    nt_spm_model m;
    nt_error err = {NT_OK, ""};
    nt_status st = nt_spm_model_load("/nonexistent/dir/tokenizer.model", &m, &err);
    CHECK(st == NT_ERR_IO);
    CHECK_ERR_CONTAINS(err.message, "/nonexistent/dir/tokenizer.model");
    CHECK(model_is_zeroed(&m));
    st = nt_spm_model_load("/", &m, &err);
    CHECK_MSG(st == NT_ERR_IO, "loading a directory: %d %s", (int)st, err.message);
    st = nt_spm_model_load(NULL, &m, &err);
    CHECK(st == NT_ERR_ARGUMENT);
    /* /dev/null: a file that reads as empty. */
    st = nt_spm_model_load("/dev/null", &m, &err);
    CHECK(st == NT_ERR_FORMAT);
    CHECK_ERR_CONTAINS(err.message, "/dev/null: the model has no pieces");
    nt_spm_model_free(NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s tokenizer.model\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    double t0 = nt_time_seconds();

    nt_spm_model m;
    nt_error err = {NT_OK, ""};
    nt_status st = nt_spm_model_load(path, &m, &err);
    CHECK_MSG(st == NT_OK, "%s", err.message);
    if (st == NT_OK) {
        test_fixture_contents(&m);
        test_fixture_against_spm(&m, path);
        nt_spm_model_free(&m);
    }

    size_t len = 0;
    unsigned char *data = read_file(path, &len);
    CHECK(data != NULL && len > 0);
    if (data != NULL && len > 0) {
        test_prefixes(data, len);
        test_mutations(data, len);
    }
    free(data);

    test_defaults();
    test_merge();
    test_unknown_fields();
    test_self_test_data();
    test_synthetic_mutations();
    test_int32_forms();
    test_valid_texts();
    test_wire_errors();
    test_wire_type_errors();
    test_value_errors();
    test_colliding_pieces();
    test_large_model();
    test_load_errors();

    printf("total %.2f s\n", nt_time_seconds() - t0);
    return check_summary();
}
