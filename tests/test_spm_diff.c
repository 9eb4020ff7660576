/*
 * test_spm_diff.c - our tokenizer.model rules against SentencePiece itself.
 *
 * usage: test_spm_diff MODEL SCRATCH_DIR [SEED] [COUNT]
 *
 * The fixture cases in test_tokenizer pin down the texts someone thought
 * of; this test looks for the ones nobody did. Each run generates COUNT
 * (default 3000) lines from a seeded PRNG, mixing ASCII words, pieces of
 * the model's own vocabulary (so that long BPE merges happen), punctuation,
 * digits, Latin, Greek, Cyrillic, CJK, Hangul, Arabic and Devanagari
 * letters, emoji (outside the BMP, ZWJ sequences, flags, modifiers),
 * combining marks, C0 and C1 control characters (NUL and DEL included),
 * whitespace runs (tab, U+00A0, U+3000, U+200B, ...), a literal U+2581,
 * the user-defined symbols <extra_id_0>..<extra_id_9> and near misses of
 * them, the spellings of the control and byte pieces (<s>, </s>, <unk>,
 * <0x0A>) as plain text, random code points anywhere in Unicode, runs of
 * one unit (where equal pairs tie and the leftmost must win), lines that
 * are empty, all spaces or padded with spaces, and a few lines longer than
 * the encoder's 4 KB chunks. A second, smaller section puts malformed UTF-8
 * into such lines (SentencePiece reads each malformed byte as one U+FFFD).
 *
 * Debian's spm_encode (sentencepiece 0.1.97) encodes the lines, and every
 * line's ids must equal nt_tokenize's exactly. spm_decode decodes those
 * ids, and nt_detokenize of the same ids must give the same bytes. Then a
 * few hundred random id sequences (byte pieces forming valid and malformed
 * UTF-8, control, unknown and user-defined ids, pieces starting with U+2581)
 * go through spm_decode and nt_detokenize alike. Every decode is also
 * streamed through nt_detokenizer one id at a time (the first STREAM_MAX
 * ids of it): the pieces must join to exactly nt_detokenize's text and
 * none may split a UTF-8 character.
 *
 * Two things about the tools shape the files: spm_encode and spm_decode
 * work line by line (so no generated line holds '\n' or '\r'), and
 * spm_decode reads an empty line as the one id 0 (here <pad>, a control
 * piece, which decodes to nothing, as an empty sequence does). A random id
 * sequence may decode to text with newlines in it (<0x0A>), so in that file
 * every sequence is followed by a marker line, and the decoded text of a
 * sequence is whatever spm_decode printed before the marker's text.
 *
 * The seed is new each run unless given and is printed at the start and in
 * every failure; SEED and COUNT replay a run exactly (each line depends
 * only on the seed, its section and its number). Without spm_encode or
 * spm_decode on PATH the test is skipped (exit 77).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "nemotron.h"

#define SKIP 77
#define DEFAULT_COUNT 3000
#define N_INVALID 200      /* lines with malformed UTF-8 */
#define N_RANDOM_IDS 400   /* random id sequences to decode */
#define MAX_SHOWN 20       /* failures printed in full */

/* ---- PRNG: splitmix64 ---------------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t next64(rng *r) { return mix64(r->s += 0x9e3779b97f4a7c15ull); }

/* Uniform in [0, n) (n small: the modulo bias is irrelevant here). */
static uint32_t below(rng *r, uint32_t n) { return (uint32_t)(next64(r) % n); }

static uint32_t between(rng *r, uint32_t lo, uint32_t hi) { return lo + below(r, hi - lo + 1); }

static int chance(rng *r, uint32_t percent) { return below(r, 100) < percent; }

/* The stream for line i of a section: independent of COUNT and of the
 * other lines, so one line can be regenerated alone. */
static rng line_rng(uint64_t seed, uint32_t section, uint32_t i) {
    rng r = {mix64(seed ^ mix64(((uint64_t)section << 32 | i) + 0x632be59bd9b4e019ull))};
    return r;
}

/* ---- byte buffers ------------------------------------------------------------ */

typedef struct buf {
    char *s;
    size_t n, cap;
} buf;

static void buf_add(buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        b->s = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_cp(buf *b, uint32_t cp) {
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_add(b, o, n);
}

/* ---- UTF-8 (strict: no overlongs, surrogates or code points past U+10FFFF) ---- */

/* Length of the well-formed character at s, 0 if there is none. */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    size_t k;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        k = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return k;
}

static int valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_char((const unsigned char *)s + i, n - i, &cp);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* ---- the generator ---------------------------------------------------------------- */

static const char *const words[] = {
    "the", "and", "of", "to", "in", "is", "that", "for", "it", "with", "as", "on", "be",
    "node", "nodejs", "github", "https", "http", "www", "com", "org", "npm", "install",
    "function", "return", "const", "let", "var", "require", "module", "exports", "async",
    "await", "promise", "callback", "error", "Error", "null", "undefined", "true", "false",
    "README", "LICENSE", "JSON", "API", "URL", "ID", "Hello", "World", "hello", "world",
    "can't", "you're", "it's", "don't", "I", "a", "A", "x", "naïve", "café", "Straße",
    "blacksmith", "Oakvale", "tokenizer", "SentencePiece", "unicode", "über", "résumé",
    "foo_bar", "fooBar", "FOO", "e.g.", "i.e.", "etc.", "v1.2.3", "0x7f", "1e-9", "C++",
    "std::string", "x->y", "a=b", "a==b", "a!==b", "=>", "...", "--flag", "-v", "~/.npmrc",
    "<div>", "</div>", "<br/>", "&amp;", "&#x41;", "{}", "[]", "()", "``", "'''", "\"\"\"",
};

static const char punct[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

static const char *const specials[] = {
    "<extra_id_0>", "<extra_id_1>", "<extra_id_2>", "<extra_id_3>", "<extra_id_4>",
    "<extra_id_5>", "<extra_id_6>", "<extra_id_7>", "<extra_id_8>", "<extra_id_9>",
    "<extra_id_0>", "<extra_id_9>", "<s>", "</s>", "<unk>", "<pad>", "<0x0A>", "<0x41>",
    "<0xE2>", "<0xZZ>", "<extra_id_", "<extra_id_10>", "<<extra_id_3>>", "extra_id_0>",
    "<extra_id_0><extra_id_1>", "<extra_id_5 >", "< extra_id_5>", "<EXTRA_ID_0>",
    "<s></s>", "<s><extra_id_2></s>", "\xE2\x96\x81<extra_id_7>", "<extra_id_8>\xE2\x96\x81",
};

static const char *const emoji_seqs[] = {
    "\xF0\x9F\x98\x80",                                       /* 😀 */
    "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB",           /* 👩‍💻 */
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7\xE2\x80\x8D\xF0\x9F\x91\xA6", /* 👨‍👩‍👧‍👦 */
    "\xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x8C\x88", /* 🏳️‍🌈 */
    "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",                       /* 👍🏽 */
    "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7",                       /* 🇫🇷 */
    "1\xEF\xB8\x8F\xE2\x83\xA3",                              /* 1️⃣ */
    "\xE2\x9D\xA4\xEF\xB8\x8F",                               /* ❤️ */
    "\xE2\x98\x83",                                           /* ☃ */
};
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A random Unicode scalar value that is allowed on a line. */
static uint32_t any_cp(rng *r) {
    for (;;) {
        uint32_t cp = chance(r, 60) ? below(r, 0x10000) : below(r, 0x110000);
        if (cp != 0 && cp != '\n' && cp != '\r' && !(cp >= 0xD800 && cp <= 0xDFFF))
            return cp;
    }
}

static void add_range(buf *b, rng *r, uint32_t lo, uint32_t hi, uint32_t min_n, uint32_t max_n) {
    uint32_t n = between(r, min_n, max_n);
    for (uint32_t i = 0; i < n; i++)
        buf_cp(b, between(r, lo, hi));
}

static void add_whitespace(buf *b, rng *r) {
    static const uint32_t ws[] = {' ', ' ', ' ', ' ', '\t', '\t', 0xA0, 0x3000, 0x200B,
                                  0x2002, 0x2009, 0x202F, 0x205F, 0x0B, 0x0C, 0x85,
                                  0x2028, 0x2029, 0xFEFF, 0x1680};
    uint32_t n = between(r, 1, 6);
    for (uint32_t i = 0; i < n; i++)
        buf_cp(b, ws[below(r, COUNT_OF(ws))]);
}

/* A piece of the vocabulary, its U+2581s turned into spaces. */
static void add_vocab_piece(buf *b, rng *r, const nt_tokenizer *tok) {
    size_t len;
    const char *p = nt_tokenizer_piece(tok, (int32_t)below(r, (uint32_t)nt_tokenizer_n_vocab(tok)),
                                       &len);
    for (size_t i = 0; p && i < len;) {
        if (len - i >= 3 && memcmp(p + i, "\xE2\x96\x81", 3) == 0 && !chance(r, 10)) {
            buf_add(b, " ", 1);
            i += 3;
        } else {
            buf_add(b, p + i, 1);
            i++;
        }
    }
}

static void add_part(buf *b, rng *r, const nt_tokenizer *tok) {
    uint32_t k = below(r, 100);
    if (k < 16) {
        buf_str(b, words[below(r, COUNT_OF(words))]);
    } else if (k < 20) {                                   /* random ASCII letters */
        uint32_t n = between(r, 1, 10);
        for (uint32_t i = 0; i < n; i++)
            buf_cp(b, chance(r, 80) ? between(r, 'a', 'z') : between(r, 'A', 'Z'));
    } else if (k < 34) {
        add_vocab_piece(b, r, tok);
    } else if (k < 40) {
        uint32_t n = between(r, 1, 3);
        for (uint32_t i = 0; i < n; i++)
            buf_add(b, &punct[below(r, sizeof punct - 1)], 1);
    } else if (k < 44) {
        add_range(b, r, '0', '9', 1, 8);
    } else if (k < 48) {                                   /* Latin-1, Latin Extended */
        static const char *const latin[] = {"\xC3\xA9", "\xC3\x9F", "\xC3\xB8", "\xC3\x86",
                                            "\xC5\x93", "\xC4\xB1", "\xC5\x81", "\xC7\x85"};
        if (chance(r, 40))
            buf_str(b, latin[below(r, COUNT_OF(latin))]);
        else if (chance(r, 50))
            add_range(b, r, 0xC0, 0xFF, 1, 6);
        else
            add_range(b, r, 0x100, 0x24F, 1, 6);
    } else if (k < 51) {
        add_range(b, r, 0x391, 0x3C9, 1, 8);               /* Greek */
    } else if (k < 54) {
        add_range(b, r, 0x400, 0x45F, 1, 8);               /* Cyrillic */
    } else if (k < 58) {                                   /* CJK */
        if (chance(r, 30))
            buf_str(b, chance(r, 50) ? "\xE6\x96\x87" : "\xE8\xAA\x9E"); /* 文 語 */
        else if (chance(r, 15))
            add_range(b, r, 0xFF01, 0xFF5E, 1, 3);         /* fullwidth forms */
        else
            add_range(b, r, 0x4E00, 0x9FFF, 1, 5);
        if (chance(r, 20))
            buf_cp(b, chance(r, 50) ? 0x3001 : 0x3002);
    } else if (k < 61) {                                   /* Hangul */
        if (chance(r, 30))
            buf_str(b, "\xED\x95\x9C"); /* 한 */
        else if (chance(r, 85))
            add_range(b, r, 0xAC00, 0xD7A3, 1, 4);  /* syllables */
        else
            add_range(b, r, 0x1100, 0x11FF, 1, 4);  /* jamo */
    } else if (k < 63) {                                   /* Arabic, with harakat */
        add_range(b, r, 0x621, 0x64A, 1, 6);
        if (chance(r, 30))
            add_range(b, r, 0x64B, 0x652, 1, 2);
    } else if (k < 65) {                                   /* Devanagari */
        add_range(b, r, 0x905, 0x939, 1, 4);
        if (chance(r, 50))
            add_range(b, r, 0x93E, 0x94D, 1, 2);
    } else if (k < 70) {
        if (chance(r, 50))
            buf_str(b, emoji_seqs[below(r, COUNT_OF(emoji_seqs))]);
        else {
            static const uint32_t lo[] = {0x1F300, 0x1F600, 0x1F680, 0x1F900, 0x2600, 0x2700};
            static const uint32_t hi[] = {0x1F5FF, 0x1F64F, 0x1F6FF, 0x1F9FF, 0x26FF, 0x27BF};
            uint32_t w = below(r, COUNT_OF(lo));
            add_range(b, r, lo[w], hi[w], 1, 3);
        }
    } else if (k < 73) {                                   /* combining marks */
        if (chance(r, 70))
            buf_cp(b, chance(r, 50) ? between(r, 'a', 'z') : between(r, 0x3B1, 0x3C9));
        if (chance(r, 80))
            add_range(b, r, 0x300, 0x36F, 1, 3);
        else
            add_range(b, r, 0x20D0, 0x20FF, 1, 3);
    } else if (k < 77) {                                   /* C0, DEL, C1 */
        uint32_t n = between(r, 1, 3);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t c;
            if (chance(r, 70))
                c = between(r, 1, 0x1F);
            else if (chance(r, 50))
                c = 0x7F;
            else
                c = between(r, 0x80, 0x9F);
            if (chance(r, 5))
                c = 0; /* NUL too: both sides take lengths, not C strings */
            buf_cp(b, c == '\n' || c == '\r' ? 0x1B : c);
        }
    } else if (k < 83) {
        add_whitespace(b, r);
    } else if (k < 86) {
        uint32_t n = between(r, 1, 3);
        for (uint32_t i = 0; i < n; i++)
            buf_str(b, "\xE2\x96\x81");
    } else if (k < 93) {
        buf_str(b, specials[below(r, COUNT_OF(specials))]);
    } else if (k < 96) {                                   /* runs: ties between pairs */
        static const char *const units[] = {"=", "-", "_", "*", "#", "~", ".", "a", "ab", "0",
                                            " ", "  ", "\xE2\x96\x81", "\t", "/", "\xE6\x96\x87",
                                            "<extra_id_4>", "\x01", "\xC3\xA9"};
        buf unit = {0};
        if (chance(r, 30))
            add_vocab_piece(&unit, r, tok);
        else
            buf_str(&unit, units[below(r, COUNT_OF(units))]);
        uint32_t n = between(r, 2, chance(r, 20) ? 60 : 12);
        for (uint32_t i = 0; i < n; i++)
            buf_add(b, unit.s, unit.n);
        free(unit.s);
    } else if (k < 98) {
        uint32_t n = between(r, 1, 3);
        for (uint32_t i = 0; i < n; i++)
            buf_cp(b, any_cp(r));
    } else {                                               /* odd code points */
        static const uint32_t odd[] = {0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF, 0x10FFFF, 0xE000,
                                       0xF8FF, 0x1D11E, 0x2581, 0x2580, 0x2582, 0xFDD0};
        buf_cp(b, odd[below(r, COUNT_OF(odd))]);
    }
}

/* One valid line (no '\n' or '\r'). */
static void make_line(buf *b, rng *r, const nt_tokenizer *tok) {
    b->n = 0;
    buf_add(b, "", 0);
    uint32_t mode = below(r, 100);
    if (mode < 3)
        return; /* empty */
    if (mode < 6) {
        uint32_t n = between(r, 1, chance(r, 20) ? 40 : 12);
        for (uint32_t i = 0; i < n; i++)
            buf_add(b, " ", 1);
        return;
    }
    if (mode < 8) {
        add_whitespace(b, r);
        return;
    }
    /* 1%: past the 4 KB chunk size, so that long texts are cut in chunks */
    size_t target = mode < 9 ? between(r, 4096, 12288) : 0;
    uint32_t parts = between(r, 1, chance(r, 10) ? 80 : 16);
    if (chance(r, 15)) {
        uint32_t n = between(r, 1, 4);
        for (uint32_t i = 0; i < n; i++)
            buf_add(b, " ", 1);
    }
    for (uint32_t i = 0; i < parts || b->n < target; i++) {
        add_part(b, r, tok);
        uint32_t sep = below(r, 100);
        if (sep < 55)
            buf_add(b, " ", 1);
        else if (sep < 60)
            buf_add(b, "  ", 2);
        else if (sep < 68)
            add_whitespace(b, r);
    }
    if (chance(r, 20) && b->n > 0 && b->s[b->n - 1] == ' ')
        b->n--, b->s[b->n] = '\0'; /* often no trailing space at all */
    if (chance(r, 15)) {
        uint32_t n = between(r, 1, 4);
        for (uint32_t i = 0; i < n; i++)
            buf_add(b, " ", 1);
    }
}

/* A valid line with malformed UTF-8 put in at a few places (it may land
 * inside a character, which is malformed too). Never '\n' or '\r': every
 * inserted byte is >= 0x80. */
static void make_invalid_line(buf *b, rng *r, const nt_tokenizer *tok) {
    static const char *const bad[] = {
        "\x80", "\xBF", "\x80\x80", "\xC3", "\xE2\x96", "\xF0\x9F\x98", "\xC0\x80",
        "\xC1\xBF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xED\xBF\xBF", "\xF4\x90\x80\x80",
        "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80", "\xFE", "\xFF", "\xFF\xFE",
        "\xC3\x28", "\xE2\x28\xA1", "\xF0\x28\x8C\x28", "\xEF\xBF\xBD",
    };
    buf line = {0};
    do
        make_line(&line, r, tok);
    while (line.n == 0 && chance(r, 70));
    uint32_t n_bad = between(r, 1, 4);
    size_t *at = malloc(n_bad * sizeof *at);
    for (uint32_t i = 0; i < n_bad; i++)
        at[i] = line.n ? below(r, (uint32_t)line.n + 1) : 0;
    b->n = 0;
    buf_add(b, "", 0);
    for (size_t pos = 0; pos <= line.n; pos++) {
        for (uint32_t i = 0; i < n_bad; i++)
            if (at[i] == pos)
                buf_str(b, bad[below(r, COUNT_OF(bad))]);
        if (pos < line.n)
            buf_add(b, line.s + pos, 1);
    }
    free(at);
    free(line.s);
}

/* Random ids: runs of byte pieces (valid, truncated and malformed UTF-8),
 * control, unknown and user-defined ids, pieces starting with U+2581, and
 * any id at all. */
typedef struct id_kit {
    int32_t *space_ids;  /* pieces that start with U+2581 */
    size_t n_space_ids;
    int32_t space;       /* the piece U+2581 alone, or -1 */
    int32_t byte0;       /* <0x00>; the byte pieces follow in order */
} id_kit;

static size_t make_random_ids(int32_t *ids, size_t cap, rng *r, const nt_tokenizer *tok,
                              const id_kit *kit) {
    static const int32_t control[] = {0, 2, 3};
    size_t n = 0;
    uint32_t parts = chance(r, 5) ? 0 : between(r, 1, 24);
    int32_t n_vocab = nt_tokenizer_n_vocab(tok);
    const int32_t *space_ids = kit->space_ids;
    size_t n_space_ids = kit->n_space_ids;
    int32_t byte0 = kit->byte0;
    /* The decoder drops the dummy prefix's space from the first piece that
     * starts with U+2581, control ids before it or not; and after a first
     * piece that is U+2581 alone, from no other. */
    if (parts > 0 && n_space_ids > 0 && chance(r, 30)) {
        uint32_t n_control = chance(r, 50) ? 0 : between(r, 1, 2);
        for (uint32_t i = 0; i < n_control; i++)
            ids[n++] = control[below(r, 3)];
        if (kit->space >= 0 && chance(r, 50))
            ids[n++] = kit->space;
        ids[n++] = space_ids[below(r, (uint32_t)n_space_ids)];
    }
    for (uint32_t i = 0; i < parts && n + 8 < cap; i++) {
        uint32_t k = below(r, 100);
        if (k < 30) {
            ids[n++] = (int32_t)below(r, (uint32_t)n_vocab);
        } else if (k < 55 && byte0 >= 0) {
            buf c = {0};
            if (chance(r, 60)) {
                buf_cp(&c, any_cp(r));
                if (chance(r, 30) && c.n > 1)
                    c.n = between(r, 1, (uint32_t)c.n - 1); /* truncated */
            } else {
                uint32_t m = between(r, 1, 4);
                for (uint32_t j = 0; j < m; j++) {
                    unsigned char x = (unsigned char)below(r, 256);
                    buf_add(&c, (const char *)&x, 1);
                }
            }
            for (size_t j = 0; j < c.n; j++)
                ids[n++] = byte0 + (unsigned char)c.s[j];
            free(c.s);
        } else if (k < 65) {
            ids[n++] = control[below(r, 3)];
        } else if (k < 70) {
            ids[n++] = 1; /* <unk> */
        } else if (k < 76) {
            ids[n++] = (int32_t)between(r, 4, 13);
        } else if (n_space_ids > 0) {
            ids[n++] = space_ids[below(r, (uint32_t)n_space_ids)];
        }
    }
    return n;
}

/* ---- reporting -------------------------------------------------------------------- */

static uint64_t g_seed;
static int g_count;
static int g_shown;

/* Text for a human: control, invisible and confusable characters and
 * malformed bytes escaped, at most `max` bytes of it. */
static void print_text(const char *s, size_t n, size_t max, int quoted) {
    if (quoted)
        fputc('"', stderr);
    for (size_t i = 0; i < n;) {
        if (i >= max) {
            fprintf(stderr, "%s... (%zu bytes in all)", quoted ? "\"" : "", n);
            return;
        }
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t k = utf8_char((const unsigned char *)s + i, n - i, &cp);
        if (k == 0) {
            fprintf(stderr, "\\x%02X", c);
            i++;
        } else if (c == '\\' || c == '"') {
            fprintf(stderr, "\\%c", c);
            i++;
        } else if (c == '\t') {
            fputs("\\t", stderr);
            i++;
        } else if (cp < 0x20 || cp == 0x7F) {
            fprintf(stderr, "\\x%02X", c);
            i++;
        } else if (cp < 0x80) {
            fputc(c, stderr);
            i++;
        } else if (cp < 0xA1 || cp == 0xAD || (cp >= 0x300 && cp <= 0x36F) ||
                   (cp >= 0x2000 && cp <= 0x206F) || cp == 0x3000 || cp == 0x1680 ||
                   (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0xFEFF || cp >= 0xFFF0) {
            fprintf(stderr, "\\u{%X}", cp); /* invisible or confusing */
            i += k;
        } else {
            fwrite(s + i, 1, k, stderr);
            i += k;
        }
    }
    if (quoted)
        fputc('"', stderr);
}

static void print_escaped(const char *s, size_t n, size_t max) { print_text(s, n, max, 1); }

static void print_ids(const nt_tokenizer *tok, const char *label, const int32_t *ids, size_t n,
                      size_t from) {
    fprintf(stderr, "  %s (%zu ids):", label, n);
    if (from > 0)
        fprintf(stderr, " ...");
    for (size_t i = from; i < n && i < from + 24; i++) {
        size_t len;
        const char *p = nt_tokenizer_piece(tok, ids[i], &len);
        fprintf(stderr, " %d", ids[i]);
        if (p) {
            fputc('(', stderr);
            print_text(p, len, 64, 0);
            fputc(')', stderr);
        }
    }
    fprintf(stderr, "%s\n", n > from + 24 ? " ..." : "");
}

/* Counts a comparison; the first MAX_SHOWN failures get a header line and
 * 1 is returned so that the caller prints the details. */
static int record(int ok, const char *section, int line, const char *what) {
    if (ok) {
        check_passed_count++;
        return 0;
    }
    check_failed_count++;
    if (g_shown++ >= MAX_SHOWN) {
        if (g_shown == MAX_SHOWN + 1)
            fprintf(stderr, "(further failures are counted, not shown)\n");
        return 0;
    }
    fprintf(stderr, "FAIL seed %llu %s line %d: %s (replay: test_spm_diff MODEL DIR %llu %d)\n",
            (unsigned long long)g_seed, section, line, what, (unsigned long long)g_seed,
            g_count);
    return 1;
}

/* ---- running the tools ----------------------------------------------------------- */

/* path in single quotes for sh */
static void shell_quote(buf *b, const char *s) {
    buf_add(b, "'", 1);
    for (; *s; s++) {
        if (*s == '\'')
            buf_str(b, "'\\''");
        else
            buf_add(b, s, 1);
    }
    buf_add(b, "'", 1);
}

static int run_tool(const char *tool, const char *model, const char *format_flag,
                    const char *in, const char *out) {
    buf cmd = {0};
    buf_str(&cmd, tool);
    buf_str(&cmd, " --model=");
    shell_quote(&cmd, model);
    buf_str(&cmd, " ");
    buf_str(&cmd, format_flag);
    buf_str(&cmd, " < ");
    shell_quote(&cmd, in);
    buf_str(&cmd, " > ");
    shell_quote(&cmd, out);
    int rc = system(cmd.s);
    int ok = rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
    if (!ok)
        fprintf(stderr, "seed %llu: `%s` failed (status %d)\n", (unsigned long long)g_seed, cmd.s,
                rc);
    free(cmd.s);
    return ok;
}

static int mkdirs(const char *path) {
    if (!*path)
        return 0;
    char *p = strdup(path);
    int ok = p != NULL;
    for (char *q = p + 1; ok && *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        ok = mkdir(p, 0777) == 0 || errno == EEXIST;
        *q = '/';
    }
    ok = ok && (mkdir(p, 0777) == 0 || errno == EEXIST);
    free(p);
    return ok;
}

static char *join(const char *dir, const char *name) {
    buf b = {0};
    buf_str(&b, dir);
    buf_str(&b, "/");
    buf_str(&b, name);
    return b.s;
}

/* One line without its '\n' (NULs kept); 0 at the end of the file. */
static int read_line(FILE *fp, buf *b) {
    static char *line;
    static size_t cap;
    ssize_t n = getline(&line, &cap, fp);
    b->n = 0;
    buf_add(b, "", 0);
    if (n < 0) {
        free(line);
        line = NULL;
        cap = 0;
        return 0;
    }
    if (n > 0 && line[n - 1] == '\n')
        n--;
    buf_add(b, line, (size_t)n);
    return 1;
}

/* Space-separated ids; -1 if the line is not that. */
static long parse_ids(const char *s, int32_t **ids, size_t *cap) {
    size_t n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX)
            return -1;
        if (n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            *ids = realloc(*ids, *cap * sizeof **ids);
            if (!*ids)
                return -1;
        }
        (*ids)[n++] = (int32_t)v;
        s = end;
        if (*s == ' ')
            s++;
        else if (*s)
            return -1;
    }
    return (long)n;
}

/* ---- the checks -------------------------------------------------------------------- */

/* nt_detokenize of ids against what spm_decode printed. */
static int check_decode(const nt_tokenizer *tok, const int32_t *ids, size_t n, const buf *want,
                        const char *section, int line) {
    nt_error err;
    size_t len = 0;
    char *text = nt_detokenize(tok, ids, n, 0, &len, &err);
    int ok = text && len == want->n && memcmp(text, want->s, len) == 0;
    if (record(ok, section, line, "nt_detokenize differs from spm_decode")) {
        print_ids(tok, "ids", ids, n, 0);
        fprintf(stderr, "  spm_decode:    ");
        print_escaped(want->s, want->n, 400);
        fprintf(stderr, "\n  nt_detokenize: ");
        if (text)
            print_escaped(text, len, 400);
        else
            fprintf(stderr, "(failed: %s)", err.message);
        fputc('\n', stderr);
    }
    free(text);
    return ok;
}

/* The streaming decoder: whole characters only, joining to nt_detokenize.
 * It decodes all its ids again at each id that is no byte piece, which is
 * quadratic, so a long sequence is streamed up to its first STREAM_MAX ids
 * (a prefix is as good a sequence as any). */
#define STREAM_MAX 600
static int check_stream(const nt_tokenizer *tok, const int32_t *ids, size_t n,
                        const char *section, int line) {
    if (n > STREAM_MAX)
        n = STREAM_MAX;
    nt_error err;
    size_t full_len = 0;
    char *full = nt_detokenize(tok, ids, n, 0, &full_len, &err);
    nt_detokenizer *d = nt_detokenizer_new(tok, 0, &err);
    buf joined = {0};
    buf_add(&joined, "", 0);
    const char *why = NULL;
    size_t at = 0;
    if (!full || !d)
        why = "nt_detokenize or nt_detokenizer_new failed";
    else if (!valid_utf8(full, full_len))
        why = "nt_detokenize's text is not valid UTF-8";
    for (size_t i = 0; !why && i <= n; i++) {
        size_t len;
        const char *p = i < n ? nt_detokenizer_push(d, ids[i], &len, &err)
                              : nt_detokenizer_flush(d, &len, &err);
        at = i;
        if (!p)
            why = i < n ? "nt_detokenizer_push failed" : "nt_detokenizer_flush failed";
        else if (!valid_utf8(p, len))
            why = "a streamed piece splits a UTF-8 character";
        else
            buf_add(&joined, p, len);
    }
    if (!why && (joined.n != full_len || memcmp(joined.s, full, full_len) != 0))
        why = "the streamed pieces do not join to nt_detokenize's text";
    if (record(!why, section, line, why ? why : "")) {
        print_ids(tok, "ids", ids, n, 0);
        fprintf(stderr, "  at id index %zu; err: %s\n  full:   ", at, err.message);
        if (full)
            print_escaped(full, full_len, 400);
        fprintf(stderr, "\n  joined: ");
        print_escaped(joined.s, joined.n, 400);
        fputc('\n', stderr);
    }
    nt_detokenizer_free(d);
    free(joined.s);
    free(full);
    return !why;
}

typedef struct tally {
    int lines, ids, decoded, streamed;
} tally;

/* Encodes and decodes one section's lines with the tools and with ours. */
static void run_section(const nt_tokenizer *tok, const char *model, const char *dir,
                        const char *section, const char *prefix, buf *lines, int n_lines,
                        tally *t) {
    buf name = {0};
    buf_str(&name, prefix);
    buf_str(&name, "input.txt");
    char *in = join(dir, name.s);
    name.n = 0;
    buf_str(&name, prefix);
    buf_str(&name, "ids.txt");
    char *ids_path = join(dir, name.s);
    name.n = 0;
    buf_str(&name, prefix);
    buf_str(&name, "decoded.txt");
    char *dec_path = join(dir, name.s);
    free(name.s);
    FILE *fp = fopen(in, "wb");
    for (int i = 0; fp && i < n_lines; i++) {
        fwrite(lines[i].s, 1, lines[i].n, fp);
        fputc('\n', fp);
    }
    int ok = fp && fclose(fp) == 0;
    CHECK_MSG(ok, "seed %llu: cannot write %s", (unsigned long long)g_seed, in);
    ok = ok && run_tool("spm_encode", model, "--output_format=id", in, ids_path);
    ok = ok && run_tool("spm_decode", model, "--input_format=id", ids_path, dec_path);
    CHECK_MSG(ok, "seed %llu: %s: spm_encode/spm_decode did not run", (unsigned long long)g_seed,
              section);
    FILE *ids_fp = ok ? fopen(ids_path, "rb") : NULL, *dec_fp = ok ? fopen(dec_path, "rb") : NULL;
    buf want_ids_line = {0}, want_text = {0};
    int32_t *want = NULL;
    size_t want_cap = 0;
    t->lines = n_lines;
    for (int i = 0; ids_fp && dec_fp && i < n_lines; i++) {
        int line = i + 1;
        if (!read_line(ids_fp, &want_ids_line) || !read_line(dec_fp, &want_text)) {
            CHECK_MSG(0, "seed %llu: %s: spm's output ends at line %d of %d",
                      (unsigned long long)g_seed, section, line, n_lines);
            break;
        }
        long n_want = parse_ids(want_ids_line.s, &want, &want_cap);
        if (n_want < 0) {
            CHECK_MSG(0, "seed %llu: %s line %d: cannot read spm_encode's \"%s\"",
                      (unsigned long long)g_seed, section, line, want_ids_line.s);
            continue;
        }
        nt_error err;
        int32_t *got = NULL;
        size_t n_got = 0;
        nt_status s = nt_tokenize(tok, lines[i].s, lines[i].n, 0, &got, &n_got, &err);
        size_t first = 0;
        while (first < n_got && first < (size_t)n_want && got[first] == want[first])
            first++;
        int same = s == NT_OK && n_got == (size_t)n_want && first == n_got;
        t->ids += same;
        if (record(same, section, line, "nt_tokenize differs from spm_encode")) {
            fprintf(stderr, "  input (%zu bytes): ", lines[i].n);
            print_escaped(lines[i].s, lines[i].n, 600);
            fprintf(stderr, "\n  first difference at id index %zu%s%s\n", first,
                    s == NT_OK ? "" : "; nt_tokenize failed: ", s == NT_OK ? "" : err.message);
            size_t from = first > 8 ? first - 8 : 0;
            print_ids(tok, "spm_encode ", want, (size_t)n_want, from);
            print_ids(tok, "nt_tokenize", got, n_got, from);
        }
        free(got);
        t->decoded += check_decode(tok, want, (size_t)n_want, &want_text, section, line);
        t->streamed += check_stream(tok, want, (size_t)n_want, section, line);
    }
    if (ids_fp)
        fclose(ids_fp);
    if (dec_fp)
        fclose(dec_fp);
    free(want);
    free(want_ids_line.s);
    free(want_text.s);
    free(in);
    free(ids_path);
    free(dec_path);
}

/* Random id sequences through spm_decode and ours. */
static void run_random_ids(const nt_tokenizer *tok, const char *model, const char *dir, tally *t) {
    /* A line of ids that decodes to a line no sequence's text can have
     * (the sequences are at most a few hundred ids of random kinds). */
    static const char marker_ids[] = "4 5 6 7 8 9 10 11 12 13 13 12 11 10 9 8 7 6 5 4";
    int32_t marker[20];
    buf marker_text = {0};
    {
        int32_t *m = NULL;
        size_t cap = 0;
        long n = parse_ids(marker_ids, &m, &cap);
        memcpy(marker, m, (size_t)n * sizeof *m);
        free(m);
        for (long i = 0; i < n; i++) {
            size_t len;
            const char *p = nt_tokenizer_piece(tok, marker[i], &len);
            buf_add(&marker_text, p, len);
        }
    }
    int32_t n_vocab = nt_tokenizer_n_vocab(tok);
    id_kit kit = {malloc((size_t)n_vocab * sizeof(int32_t)), 0,
                  nt_tokenizer_find(tok, "\xE2\x96\x81", 3), nt_tokenizer_find(tok, "<0x00>", 6)};
    for (int32_t id = 0; id < n_vocab; id++) {
        size_t len;
        const char *p = nt_tokenizer_piece(tok, id, &len);
        if (len >= 3 && memcmp(p, "\xE2\x96\x81", 3) == 0)
            kit.space_ids[kit.n_space_ids++] = id;
    }
    if (kit.byte0 >= 0)
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            CHECK_MSG(nt_tokenizer_find(tok, name, 6) == kit.byte0 + b,
                      "byte pieces are not in order at %s", name);
        }

    int32_t **seqs = calloc(N_RANDOM_IDS, sizeof *seqs);
    size_t *lens = calloc(N_RANDOM_IDS, sizeof *lens);
    char *in = join(dir, "random_ids.txt"), *dec_path = join(dir, "random_decoded.txt");
    FILE *fp = fopen(in, "wb");
    for (int i = 0; fp && i < N_RANDOM_IDS; i++) {
        rng r = line_rng(g_seed, 3, (uint32_t)i);
        seqs[i] = malloc(256 * sizeof **seqs);
        lens[i] = make_random_ids(seqs[i], 256, &r, tok, &kit);
        for (size_t k = 0; k < lens[i]; k++)
            fprintf(fp, k ? " %d" : "%d", seqs[i][k]);
        fprintf(fp, "\n%s\n", marker_ids);
    }
    int ok = fp && fclose(fp) == 0;
    CHECK_MSG(ok, "seed %llu: cannot write %s", (unsigned long long)g_seed, in);
    ok = ok && run_tool("spm_decode", model, "--input_format=id", in, dec_path);
    CHECK_MSG(ok, "seed %llu: random ids: spm_decode did not run", (unsigned long long)g_seed);
    FILE *dec_fp = ok ? fopen(dec_path, "rb") : NULL;
    buf want = {0}, line = {0};
    t->lines = N_RANDOM_IDS;
    for (int i = 0; dec_fp && i < N_RANDOM_IDS; i++) {
        /* the text is every line up to the marker's, joined by '\n' */
        want.n = 0;
        buf_add(&want, "", 0);
        int n_read = 0, found = 0;
        while (read_line(dec_fp, &line)) {
            if (line.n == marker_text.n && memcmp(line.s, marker_text.s, line.n) == 0) {
                found = 1;
                break;
            }
            if (n_read++)
                buf_add(&want, "\n", 1);
            buf_add(&want, line.s, line.n);
        }
        if (!found || n_read == 0) {
            CHECK_MSG(0, "seed %llu: random ids: spm_decode's output is out of step at sequence %d",
                      (unsigned long long)g_seed, i + 1);
            break;
        }
        t->decoded += check_decode(tok, seqs[i], lens[i], &want, "random ids", i + 1);
        t->streamed += check_stream(tok, seqs[i], lens[i], "random ids", i + 1);
    }
    if (dec_fp)
        fclose(dec_fp);
    for (int i = 0; i < N_RANDOM_IDS; i++)
        free(seqs[i]);
    free(seqs);
    free(lens);
    free(kit.space_ids);
    free(marker_text.s);
    free(want.s);
    free(line.s);
    free(in);
    free(dec_path);
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: test_spm_diff MODEL SCRATCH_DIR [SEED] [COUNT]\n");
        return 2;
    }
    if (system("command -v spm_encode >/dev/null 2>&1 && command -v spm_decode >/dev/null 2>&1") !=
        0) {
        printf("spm_encode/spm_decode not on PATH (Debian package sentencepiece, see "
               "deps/debian-packages.txt): skipped\n");
        return SKIP;
    }
    const char *model = argv[1], *dir = argv[2];
    if (argc > 3) {
        char *end;
        errno = 0;
        g_seed = strtoull(argv[3], &end, 0);
        if (errno || *end || end == argv[3]) {
            fprintf(stderr, "SEED must be a number, not \"%s\"\n", argv[3]);
            return 2;
        }
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g_seed = mix64((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
                 mix64((uint64_t)getpid());
        g_seed &= (1ull << 53) - 1; /* short enough to type */
    }
    g_count = argc > 4 ? atoi(argv[4]) : DEFAULT_COUNT;
    if (g_count < 1) {
        fprintf(stderr, "COUNT must be positive\n");
        return 2;
    }
    printf("seed %llu, %d lines (replay: test_spm_diff MODEL DIR %llu %d)\n",
           (unsigned long long)g_seed, g_count, (unsigned long long)g_seed, g_count);
    fflush(stdout);
    if (!mkdirs(dir)) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 2;
    }
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(model, &err);
    CHECK_MSG(tok != NULL, "%s", err.message);
    if (!tok)
        return check_summary();

    /* 1: valid UTF-8 lines */
    buf *lines = calloc((size_t)g_count, sizeof *lines);
    for (int i = 0; i < g_count; i++) {
        rng r = line_rng(g_seed, 1, (uint32_t)i);
        make_line(&lines[i], &r, tok);
    }
    tally valid = {0, 0, 0, 0};
    run_section(tok, model, dir, "valid", "", lines, g_count, &valid);
    for (int i = 0; i < g_count; i++)
        free(lines[i].s);
    free(lines);

    /* 2: malformed UTF-8 */
    lines = calloc(N_INVALID, sizeof *lines);
    for (int i = 0; i < N_INVALID; i++) {
        rng r = line_rng(g_seed, 2, (uint32_t)i);
        make_invalid_line(&lines[i], &r, tok);
    }
    tally invalid = {0, 0, 0, 0};
    run_section(tok, model, dir, "malformed-utf8", "malformed_", lines, N_INVALID, &invalid);
    for (int i = 0; i < N_INVALID; i++)
        free(lines[i].s);
    free(lines);

    /* 3: random ids */
    tally random = {0, 0, 0, 0};
    run_random_ids(tok, model, dir, &random);

    printf("valid UTF-8:     %d/%d same ids as spm_encode, %d/%d same text as spm_decode, "
           "%d/%d streamed right\n",
           valid.ids, valid.lines, valid.decoded, valid.lines, valid.streamed, valid.lines);
    printf("malformed UTF-8: %d/%d same ids as spm_encode, %d/%d same text as spm_decode, "
           "%d/%d streamed right\n",
           invalid.ids, invalid.lines, invalid.decoded, invalid.lines, invalid.streamed,
           invalid.lines);
    printf("random ids:      %d/%d same text as spm_decode, %d/%d streamed right\n",
           random.decoded, random.lines, random.streamed, random.lines);
    if (check_failed_count)
        printf("seed %llu: FAILED (replay: test_spm_diff MODEL DIR %llu %d)\n",
               (unsigned long long)g_seed, (unsigned long long)g_seed, g_count);
    nt_tokenizer_free(tok);
    return check_summary();
}
