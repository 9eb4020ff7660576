/*
 * test_hf_loading.c - the ways a tokenizer.json's vocabulary and merge
 * rules get read (src/tokenizer/hf_model.c) all give the same tokenizer.
 *
 * usage: test_hf_loading FIXTURE_DIR SCRATCH_DIR
 *
 * The loader overlaps work with the parse when the file has HF's layout
 * (model.vocab before model.merges, added tokens repeating vocabulary
 * pieces) and does the same steps in sequence otherwise. Each variant of
 * the fixture must encode every case text exactly as the fixture does
 * (test_tokenizer checks the fixture itself against tokenizers.js). A
 * generated vocabulary with tens of thousands of rules, several of the
 * loader's blocks, is checked against a plain BPE written here, in both
 * layouts; and a repeated rule takes the later rank, as tokenizers.js gives
 * ([a b], [b c], [a b] makes "abc" a + bc).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "json.h"
#include "nemotron.h"

static int write_file(const char *path, const char *text, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return 0;
    int ok = fwrite(text, 1, len, fp) == len;
    return fclose(fp) == 0 && ok;
}

static int32_t *encode(nt_tokenizer *tok, const char *text, size_t len, size_t *n) {
    nt_error err;
    int32_t *ids = NULL;
    *n = 0;
    if (nt_tokenize(tok, text, len, 0, &ids, n, &err) != NT_OK) {
        fprintf(stderr, "encode failed: %s\n", err.message);
        return NULL;
    }
    return ids ? ids : malloc(sizeof *ids); /* NULL says failure */
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return a && b && na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* ---- variants of the fixture ------------------------------------------------ */

/* Every case text of the fixture encodes alike with `variant`. */
static void check_variant(const char *fixture_dir, const char *variant_text, size_t len,
                          const char *scratch, const char *what) {
    char path[4096], cases[4096];
    snprintf(path, sizeof path, "%s/%s.tokenizer.json", scratch, what);
    CHECK_MSG(write_file(path, variant_text, len), "cannot write %s", path);
    snprintf(cases, sizeof cases, "%s/tokenizer/metaspace.cases.jsonl", fixture_dir);
    char original_path[4096];
    snprintf(original_path, sizeof original_path, "%s/tokenizer/metaspace.tokenizer.json",
             fixture_dir);
    nt_error err;
    nt_tokenizer *original = nt_tokenizer_load(original_path, &err);
    nt_tokenizer *variant = nt_tokenizer_load(path, &err);
    CHECK_MSG(variant != NULL, "%s: %s", what, err.message);
    size_t cases_len;
    char *lines = fixture_read_file(cases, &cases_len);
    int n = 0, same = 0;
    for (char *p = lines; original && variant && p && *p;) {
        char *nl = strchr(p, '\n');
        size_t line_len = nl ? (size_t)(nl - p) : strlen(p);
        nt_json_doc *doc = nt_json_parse(p, line_len, NULL, 0);
        p = nl ? nl + 1 : p + line_len;
        size_t text_len, na, nb;
        const char *text = nt_json_string(nt_json_get(nt_json_root(doc), "text"), &text_len);
        if (text) {
            int32_t *a = encode(original, text, text_len, &na);
            int32_t *b = encode(variant, text, text_len, &nb);
            n++;
            same += same_ids(a, na, b, nb);
            if (!same_ids(a, na, b, nb))
                fprintf(stderr, "%s: \"%.60s\" encodes otherwise\n", what, text);
            free(a);
            free(b);
        }
        nt_json_free(doc);
    }
    printf("%s: %d of %d case texts encode alike\n", what, same, n);
    CHECK(n == 256 && same == n);
    free(lines);
    nt_tokenizer_free(original);
    nt_tokenizer_free(variant);
}

/* Replaces the first `from` in text (of *len bytes) with `to`. */
static char *replace(char *text, size_t *len, const char *from, const char *to) {
    char *hit = text ? strstr(text, from) : NULL;
    CHECK_MSG(hit != NULL, "fixture lacks \"%s\"", from);
    if (!hit)
        return text;
    size_t a = strlen(from), b = strlen(to), at = (size_t)(hit - text);
    char *out = malloc(*len - a + b + 1);
    memcpy(out, text, at);
    memcpy(out + at, to, b);
    memcpy(out + at + b, hit + a, *len - at - a + 1);
    *len = *len - a + b;
    free(text);
    return out;
}

static void check_fixture_variants(const char *fixture_dir, const char *scratch) {
    size_t len;
    char *json = fixture_read_in(fixture_dir, "tokenizer/metaspace.tokenizer.json", &len);
    if (!json)
        return;

    /* merges before vocab: the worker never starts */
    char *merges = strstr(json, ", \"merges\": [");
    char *vocab = strstr(json, "\"vocab\": {");
    CHECK(merges && vocab && vocab < merges && strcmp(json + len - 2, "}}") == 0);
    if (merges && vocab && vocab < merges) {
        size_t merges_len = len - 2 - (size_t)(merges + 2 - json); /* "merges": [...] */
        char *moved = malloc(len + 1);
        size_t at = (size_t)(vocab - json);
        memcpy(moved, json, at);
        memcpy(moved + at, merges + 2, merges_len);
        memcpy(moved + at + merges_len, ", ", 2);
        memcpy(moved + at + merges_len + 2, vocab, (size_t)(merges - vocab));
        memcpy(moved + at + merges_len + 2 + (size_t)(merges - vocab), "}}", 3);
        check_variant(fixture_dir, moved, len, scratch, "merges-first");
        free(moved);
    }

    /* model.vocab without the special tokens: ids 0-3 are left for the
     * added tokens to fill, so there is no table of model.vocab alone */
    size_t gaps_len = len;
    char *gaps = malloc(len + 1);
    memcpy(gaps, json, len + 1);
    gaps = replace(gaps, &gaps_len, "\"vocab\": {\"<pad>\": 0, \"<unk>\": 1, \"<s>\": 2, "
                                    "\"</s>\": 3, ", "\"vocab\": {");
    check_variant(fixture_dir, gaps, gaps_len, scratch, "vocab-gaps");
    free(gaps);

    /* an added token with an id beyond model.vocab: the vocabulary is
     * built afresh rather than adopted */
    size_t extra_len = len;
    char *extra = malloc(len + 1);
    memcpy(extra, json, len + 1);
    extra = replace(extra, &extra_len, "\"added_tokens\": [",
                    "\"added_tokens\": [{\"id\": 2048, \"content\": \"<zz_new>\", "
                    "\"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                    "\"normalized\": false, \"special\": true}, ");
    check_variant(fixture_dir, extra, extra_len, scratch, "added-beyond");
    free(extra);

    /* cut short anywhere, the worker possibly running: a clean refusal */
    char path[4096];
    snprintf(path, sizeof path, "%s/cut.tokenizer.json", scratch);
    int refused = 0, cuts = 0;
    for (size_t cut = 1; cut < len; cut += len / 61 + 1, cuts++) {
        CHECK(write_file(path, json, cut));
        nt_error err;
        nt_tokenizer *tok = nt_tokenizer_load(path, &err);
        refused += tok == NULL && err.status == NT_ERR_FORMAT &&
                   strstr(err.message, "not valid JSON") != NULL;
        nt_tokenizer_free(tok);
    }
    printf("truncated: %d of %d cuts refused\n", refused, cuts);
    CHECK(refused == cuts);
    free(json);
}

/* ---- a generated vocabulary, several blocks of rules -------------------------- */

enum { N_CHARS = 94, N_PAIRS = N_CHARS * N_CHARS, N_QUADS = 20000 };

typedef struct synth {
    char (*piece)[5];           /* by id: chars, then pairs, then quads */
    int n_pieces;
    int (*rule)[2];             /* merges in rank order: piece ids */
    int n_rules;
} synth;

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void make_synth(synth *s) {
    s->piece = calloc(N_CHARS + N_PAIRS + N_QUADS, sizeof *s->piece);
    s->rule = calloc(N_PAIRS + N_QUADS, sizeof *s->rule);
    for (int c = 0; c < N_CHARS; c++)
        s->piece[c][0] = (char)('!' + c);
    int n = N_CHARS;
    for (int a = 0; a < N_CHARS; a++)
        for (int b = 0; b < N_CHARS; b++, n++) {
            s->piece[n][0] = (char)('!' + a);
            s->piece[n][1] = (char)('!' + b);
        }
    /* the pair rules in a shuffled order, so ranks are not ids */
    for (int i = 0; i < N_PAIRS; i++) {
        s->rule[i][0] = (N_CHARS + i) / N_CHARS - 1;
        s->rule[i][1] = (N_CHARS + i) % N_CHARS;
    }
    uint64_t seed = 12345;
    for (int i = N_PAIRS - 1; i > 0; i--) {
        int j = (int)(lcg(&seed) % (uint64_t)(i + 1));
        int t0 = s->rule[i][0], t1 = s->rule[i][1];
        s->rule[i][0] = s->rule[j][0];
        s->rule[i][1] = s->rule[j][1];
        s->rule[j][0] = t0;
        s->rule[j][1] = t1;
    }
    s->n_rules = N_PAIRS;
    for (int q = 0; q < N_QUADS; q++, n++) {
        /* (left, right) differ for every q below N_PAIRS^2: 977 is prime
         * to N_PAIRS */
        int left = N_CHARS + q % N_PAIRS;
        int right = N_CHARS + (q / N_PAIRS * 977 + q * 13 + 5) % N_PAIRS;
        memcpy(s->piece[n], s->piece[left], 2);
        memcpy(s->piece[n] + 2, s->piece[right], 2);
        s->rule[s->n_rules][0] = left;
        s->rule[s->n_rules][1] = right;
        s->n_rules++;
    }
    s->n_pieces = n;
}

/* A JSON string of a piece (only '"' and '\\' need escaping here). */
static void put_piece(FILE *fp, const char *p) {
    fputc('"', fp);
    for (; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', fp);
        fputc(*p, fp);
    }
    fputc('"', fp);
}

/* Writes the tokenizer.json; `bad_rule` >= 0 replaces that rule with one
 * naming a piece that does not exist. */
static int write_synth(const synth *s, const char *path, int merges_first, int bad_rule) {
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return 0;
    fputs("{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": null, "
          "\"pre_tokenizer\": null, \"post_processor\": null, \"decoder\": null, "
          "\"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
          "\"fuse_unk\": false, \"byte_fallback\": false, ", fp);
    for (int part = 0; part < 2; part++) {
        if ((part == 0) == !merges_first) {
            fputs("\"vocab\": {", fp);
            for (int i = 0; i < s->n_pieces; i++) {
                put_piece(fp, s->piece[i]);
                fprintf(fp, ": %d%s", i, i + 1 < s->n_pieces ? ", " : "}");
            }
        } else {
            fputs("\"merges\": [", fp);
            for (int i = 0; i < s->n_rules; i++) {
                fputc('[', fp);
                if (i == bad_rule)
                    fputs("\"~~~\"", fp);
                else
                    put_piece(fp, s->piece[s->rule[i][0]]);
                fputs(", ", fp);
                put_piece(fp, s->piece[s->rule[i][1]]);
                fputs(i + 1 < s->n_rules ? "], " : "]]", fp);
            }
        }
        fputs(part == 0 ? ", " : "}}", fp);
    }
    return fclose(fp) == 0;
}

/* The reference's rules: (left, right) -> rank, open addressing. */
enum { RANK_SLOTS = 1 << 16 };
typedef struct rank_slot {
    int left, right, rank; /* rank -1: empty */
} rank_slot;

static unsigned rank_hash(int left, int right) {
    return ((unsigned)left * 2654435761u ^ (unsigned)right * 40503u) & (RANK_SLOTS - 1);
}

static void rank_put(rank_slot *t, int left, int right, int rank) {
    unsigned i = rank_hash(left, right);
    while (t[i].rank >= 0)
        i = (i + 1) & (RANK_SLOTS - 1);
    t[i] = (rank_slot){left, right, rank};
}

static int rank_of(const rank_slot *t, int left, int right) {
    for (unsigned i = rank_hash(left, right); t[i].rank >= 0; i = (i + 1) & (RANK_SLOTS - 1))
        if (t[i].left == left && t[i].right == right)
            return t[i].rank;
    return -1;
}

/* Plain BPE by rank, the textbook way: merge the best-ranked adjacent
 * pair (the leftmost of equals) until none is a rule. */
static size_t reference_bpe(const rank_slot *rank, const int *made, const char *text,
                            int32_t *ids) {
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++)
        ids[i] = text[i] - '!';
    for (;;) {
        int best = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            int r = rank_of(rank, ids[i], ids[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                at = i;
            }
        }
        if (best < 0)
            return n;
        ids[at] = made[best];
        memmove(&ids[at + 1], &ids[at + 2], (n - at - 2) * sizeof *ids);
        n--;
    }
}

static void check_synth(const char *scratch) {
    synth s;
    make_synth(&s);
    /* the rank table of the reference, and the piece each rule makes */
    rank_slot *rank = malloc(RANK_SLOTS * sizeof *rank);
    int *made = malloc((size_t)s.n_rules * sizeof *made);
    for (int i = 0; i < RANK_SLOTS; i++)
        rank[i].rank = -1;
    for (int i = 0; i < s.n_rules; i++) {
        rank_put(rank, s.rule[i][0], s.rule[i][1], i);
        made[i] = i < N_PAIRS ? N_CHARS + s.rule[i][0] * N_CHARS + s.rule[i][1]
                              : N_CHARS + N_PAIRS + (i - N_PAIRS);
    }
    char path[2][4096];
    nt_tokenizer *tok[2];
    for (int order = 0; order < 2; order++) {
        snprintf(path[order], sizeof path[order], "%s/synth-%d.tokenizer.json", scratch, order);
        CHECK(write_synth(&s, path[order], order, -1));
        nt_error err;
        tok[order] = nt_tokenizer_load(path[order], &err);
        CHECK_MSG(tok[order] != NULL, "synth %d: %s", order, err.message);
    }
    int same = 0, n_texts = 300;
    uint64_t seed = 99;
    for (int t = 0; t < n_texts && tok[0] && tok[1]; t++) {
        /* quads and pairs of the vocabulary back to back, and stray chars */
        char text[256];
        size_t len = 0;
        while (len < 200) {
            uint64_t r = lcg(&seed);
            const char *p = r % 3 == 0 ? s.piece[N_CHARS + N_PAIRS + (int)(r / 3 % N_QUADS)]
                            : r % 3 == 1 ? s.piece[N_CHARS + (int)(r / 3 % N_PAIRS)]
                                         : s.piece[r / 3 % N_CHARS];
            len += (size_t)snprintf(text + len, sizeof text - len, "%s", p);
        }
        int32_t want[256];
        size_t n_want = reference_bpe(rank, made, text, want), n0, n1;
        int32_t *got0 = encode(tok[0], text, len, &n0);
        int32_t *got1 = encode(tok[1], text, len, &n1);
        int ok = same_ids(got0, n0, want, n_want) && same_ids(got1, n1, want, n_want);
        CHECK_MSG(ok, "synth text %d: \"%s\"", t, text);
        same += ok;
        free(got0);
        free(got1);
    }
    printf("synth (%d rules, both layouts): %d of %d texts as the reference BPE\n",
           s.n_rules, same, n_texts);
    nt_tokenizer_free(tok[0]);
    nt_tokenizer_free(tok[1]);

    /* a bad rule deep in the list is named by its index, in both layouts */
    for (int order = 0; order < 2; order++) {
        CHECK(write_synth(&s, path[order], order, 25000));
        nt_error err;
        nt_tokenizer *bad = nt_tokenizer_load(path[order], &err);
        CHECK(bad == NULL && err.status == NT_ERR_FORMAT);
        if (!bad)
            CHECK_STR_CONTAINS(err.message, "model.merges[25000] names \"~~~\"");
        nt_tokenizer_free(bad);
    }
    free(rank);
    free(made);
    free(s.piece);
    free(s.rule);
}

/* ---- a repeated rule ------------------------------------------------------------ */

static void check_repeated_rule(const char *scratch) {
    static const char json[] =
        "{\"added_tokens\": [], \"normalizer\": null, \"pre_tokenizer\": null, "
        "\"decoder\": null, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, "
        "\"c\": 2, \"ab\": 3, \"bc\": 4}, \"merges\": [[\"a\", \"b\"], [\"b\", \"c\"], "
        "[\"a\", \"b\"]]}}";
    char path[4096];
    snprintf(path, sizeof path, "%s/repeated.tokenizer.json", scratch);
    CHECK(write_file(path, json, sizeof json - 1));
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(path, &err);
    CHECK_MSG(tok != NULL, "%s", err.message);
    size_t n = 0;
    int32_t *ids = tok ? encode(tok, "abc", 3, &n) : NULL;
    static const int32_t want[] = {0, 4}; /* tokenizers.js 0.2.0 */
    CHECK(same_ids(ids, n, want, 2));
    free(ids);
    nt_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_hf_loading FIXTURE_DIR SCRATCH_DIR\n");
        return 2;
    }
    char mk[4200];
    snprintf(mk, sizeof mk, "mkdir -p '%s'", argv[2]);
    CHECK(system(mk) == 0);
    check_fixture_variants(argv[1], argv[2]);
    check_synth(argv[2]);
    check_repeated_rule(argv[2]);
    return check_summary();
}
