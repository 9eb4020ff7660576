/*
 * test_unicode.c - UTF-8 coding and Unicode normalization against the
 * Unicode conformance suite.
 *
 * Usage: test_unicode NormalizationTest.txt
 *
 * The file is the Unicode Character Database's normalization test for the
 * version unicode_tables.h was generated from (a copy lives in
 * tests/fixtures/unicode). Every line is checked with the invariants the
 * file's header states for all four forms (c2 == toNFC(c1) and so on), and
 * every code point not listed in its Part 1 must be left alone by all four
 * forms. The same lines, joined into one large text, must normalize to the
 * joined expected columns, which exercises the quick-check path, the pieces
 * it hands to the full algorithm and the output buffer's growth.
 *
 * Also checked: the UTF-8 decoder against an independent reference on every
 * 1-, 2- and 3-byte sequence and on edge cases of longer ones; invalid bytes
 * passed through unchanged; the output-to-input byte map; long runs of
 * combining marks (which must be sorted stably and in linear time); the
 * White_Space property. Last, a speed print (never an assertion) for 10 MB
 * of ASCII and 10 MB of mixed-script text.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime() */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "tokenizer/unicode.h"

static const nt_unicode_form ALL_FORMS[4] = {NT_UNICODE_NFC, NT_UNICODE_NFKC, NT_UNICODE_NFD,
                                             NT_UNICODE_NFKD};
static const char *const FORM_NAME[4] = {"NFC", "NFKC", "NFD", "NFKD"};

/* Failures are counted in full but printed only up to this many. */
#define MAX_PRINTED_FAILURES 40
static int printed_failures;

static void hex_dump(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%s%02X", i ? " " : "", (unsigned char)s[i]);
}

/* One counted check that `form` maps `in` to exactly `want`. */
static void expect_form(const char *where, nt_unicode_form form, const char *in, size_t in_len,
                        const char *want, size_t want_len)
{
    size_t got_len = 0;
    char *got = nt_unicode_normalize(in, in_len, form, &got_len);
    if (got != NULL && got_len == want_len && memcmp(got, want, want_len) == 0 &&
        got[got_len] == '\0') {
        check_passed_count++;
    } else {
        check_failed_count++;
        if (printed_failures++ < MAX_PRINTED_FAILURES) {
            fprintf(stderr, "%s: %s(", where, FORM_NAME[form]);
            hex_dump(stderr, in, in_len);
            fprintf(stderr, ") = ");
            if (got)
                hex_dump(stderr, got, got_len);
            else
                fprintf(stderr, "NULL");
            fprintf(stderr, ", want ");
            hex_dump(stderr, want, want_len);
            fputc('\n', stderr);
        }
    }
    free(got);
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * An independent reference decoder: read the sequence the lead byte
 * announces, then reject it unless it is the shortest encoding of a
 * non-surrogate code point up to U+10FFFF.
 */
static int reference_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (len == 0)
        return 0;
    int n;
    uint32_t c;
    if (s[0] < 0x80)
        n = 1, c = s[0];
    else if ((s[0] & 0xE0) == 0xC0)
        n = 2, c = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0)
        n = 3, c = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0)
        n = 4, c = s[0] & 0x07;
    else
        return 0;
    if ((size_t)n > len)
        return 0;
    for (int k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[k] & 0x3F);
    }
    int shortest = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (n != shortest || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
        return 0;
    *cp = c;
    return n;
}

static void check_decode(const char *bytes, size_t len, int want_n, uint32_t want_cp)
{
    uint32_t cp = 0xDEADBEEF;
    int n = nt_utf8_decode(bytes, len, &cp);
    CHECK_MSG(n == want_n && (n == 0 || cp == want_cp), "decode(%zu bytes from %02X) = %d, U+%04X; want %d, U+%04X",
              len, len ? (unsigned char)bytes[0] : 0, n, (unsigned)cp, want_n, (unsigned)want_cp);
}

static void test_utf8_edges(void)
{
    check_decode("", 0, 0, 0);
    check_decode("A", 1, 1, 'A');
    check_decode("\x7F", 1, 1, 0x7F);
    check_decode("\0", 1, 1, 0);
    /* lone continuation bytes and impossible bytes */
    check_decode("\x80", 1, 0, 0);
    check_decode("\xBF", 1, 0, 0);
    check_decode("\xFE", 1, 0, 0);
    check_decode("\xFF", 1, 0, 0);
    /* overlongs */
    check_decode("\xC0\x80", 2, 0, 0);
    check_decode("\xC1\xBF", 2, 0, 0);
    check_decode("\xE0\x80\x80", 3, 0, 0);
    check_decode("\xE0\x9F\xBF", 3, 0, 0);
    check_decode("\xF0\x80\x80\x80", 4, 0, 0);
    check_decode("\xF0\x8F\xBF\xBF", 4, 0, 0);
    /* boundaries */
    check_decode("\xC2\x80", 2, 2, 0x80);
    check_decode("\xDF\xBF", 2, 2, 0x7FF);
    check_decode("\xE0\xA0\x80", 3, 3, 0x800);
    check_decode("\xEF\xBF\xBF", 3, 3, 0xFFFF);
    check_decode("\xF0\x90\x80\x80", 4, 4, 0x10000);
    check_decode("\xF4\x8F\xBF\xBF", 4, 4, 0x10FFFF);
    /* surrogates */
    check_decode("\xED\x9F\xBF", 3, 3, 0xD7FF);
    check_decode("\xED\xA0\x80", 3, 0, 0);
    check_decode("\xED\xBF\xBF", 3, 0, 0);
    check_decode("\xEE\x80\x80", 3, 3, 0xE000);
    /* beyond U+10FFFF, and the old 5- and 6-byte forms */
    check_decode("\xF4\x90\x80\x80", 4, 0, 0);
    check_decode("\xF5\x80\x80\x80", 4, 0, 0);
    check_decode("\xF7\xBF\xBF\xBF", 4, 0, 0);
    check_decode("\xF8\x88\x80\x80\x80", 5, 0, 0);
    check_decode("\xFC\x84\x80\x80\x80\x80", 6, 0, 0);
    /* truncated: by len, and by a non-continuation byte */
    check_decode("\xE2\x82\xAC", 2, 0, 0);
    check_decode("\xE2\x82\xAC", 3, 3, 0x20AC);
    check_decode("\xF0\x9F\x98\x80", 3, 0, 0);
    check_decode("\xF0\x9F\x98\x80", 4, 4, 0x1F600);
    check_decode("\xC3" "A", 2, 0, 0);
    check_decode("\xE2\x82" "A", 3, 0, 0);
    check_decode("\xF0\x9F\x98" "A", 4, 0, 0);
    /* only the first sequence is decoded */
    check_decode("\xC3\xA9xyz", 5, 2, 0xE9);
    CHECK(nt_utf8_decode(NULL, 0, NULL) == 0);

    char out[4];
    CHECK(nt_utf8_encode(0, out) == 1 && out[0] == 0);
    CHECK(nt_utf8_encode(0x7F, out) == 1 && out[0] == 0x7F);
    CHECK(nt_utf8_encode(0x80, out) == 2 && memcmp(out, "\xC2\x80", 2) == 0);
    CHECK(nt_utf8_encode(0x7FF, out) == 2 && memcmp(out, "\xDF\xBF", 2) == 0);
    CHECK(nt_utf8_encode(0x800, out) == 3 && memcmp(out, "\xE0\xA0\x80", 3) == 0);
    CHECK(nt_utf8_encode(0xD7FF, out) == 3 && memcmp(out, "\xED\x9F\xBF", 3) == 0);
    CHECK(nt_utf8_encode(0xD800, out) == 0);
    CHECK(nt_utf8_encode(0xDBFF, out) == 0);
    CHECK(nt_utf8_encode(0xDC00, out) == 0);
    CHECK(nt_utf8_encode(0xDFFF, out) == 0);
    CHECK(nt_utf8_encode(0xE000, out) == 3 && memcmp(out, "\xEE\x80\x80", 3) == 0);
    CHECK(nt_utf8_encode(0xFFFF, out) == 3 && memcmp(out, "\xEF\xBF\xBF", 3) == 0);
    CHECK(nt_utf8_encode(0x10000, out) == 4 && memcmp(out, "\xF0\x90\x80\x80", 4) == 0);
    CHECK(nt_utf8_encode(0x10FFFF, out) == 4 && memcmp(out, "\xF4\x8F\xBF\xBF", 4) == 0);
    CHECK(nt_utf8_encode(0x110000, out) == 0);
    CHECK(nt_utf8_encode(0xFFFFFFFF, out) == 0);
}

/* Every 1-3 byte string and every code point, against the reference. */
static void test_utf8_exhaustive(void)
{
    long mismatches = 0;
    unsigned char b[4];
    for (uint32_t v = 0; v < (1u << 24); v++) {
        b[0] = (unsigned char)(v >> 16);
        b[1] = (unsigned char)(v >> 8);
        b[2] = (unsigned char)v;
        for (size_t len = 1; len <= 3; len++) {
            if (len < 3 && (v & ((1u << (8 * (3 - len))) - 1)) != 0)
                continue; /* shorter strings: each once */
            uint32_t got = 0, want = 0;
            int gn = nt_utf8_decode((const char *)b, len, &got);
            int wn = reference_decode(b, len, &want);
            if (gn != wn || (gn && got != want))
                mismatches++;
        }
    }
    /* 4-byte sequences: every lead byte with every second byte and a
     * spread of the last two */
    for (uint32_t lead = 0xF0; lead <= 0xFF; lead++) {
        for (uint32_t second = 0; second < 256; second++) {
            for (uint32_t rest = 0; rest < 256; rest += 7) {
                b[0] = (unsigned char)lead;
                b[1] = (unsigned char)second;
                b[2] = (unsigned char)(0x80 | (rest & 0x3F));
                b[3] = (unsigned char)rest;
                uint32_t got = 0, want = 0;
                int gn = nt_utf8_decode((const char *)b, 4, &got);
                int wn = reference_decode(b, 4, &want);
                if (gn != wn || (gn && got != want))
                    mismatches++;
            }
        }
    }
    CHECK_MSG(mismatches == 0, "%ld byte strings decode differently from the reference", mismatches);

    long round_trip_failures = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        char out[4];
        int n = nt_utf8_encode(cp, out);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            round_trip_failures += n != 0;
            continue;
        }
        uint32_t back = 0;
        if (n == 0 || nt_utf8_decode(out, (size_t)n, &back) != n || back != cp)
            round_trip_failures++;
    }
    CHECK_MSG(round_trip_failures == 0, "%ld code points do not round-trip", round_trip_failures);
}

/* ------------------------------------------------------------------------ */
/* Normalization: hand-written cases                                         */
/* ------------------------------------------------------------------------ */

#define EXPECT(form, in, want) \
    expect_form(__FILE__ ":" CHECK_STRINGIFY(__LINE__), form, in, sizeof(in) - 1, want, sizeof(want) - 1)
#define CHECK_STRINGIFY(x) CHECK_STRINGIFY2(x)
#define CHECK_STRINGIFY2(x) #x

static void expect_all_forms(const char *where, const char *in, size_t len)
{
    for (int f = 0; f < 4; f++)
        expect_form(where, ALL_FORMS[f], in, len, in, len);
}

static void test_basic_cases(void)
{
    size_t n = 99;
    char *empty = nt_unicode_normalize(NULL, 0, NT_UNICODE_NFC, &n);
    CHECK(empty != NULL && n == 0 && empty[0] == '\0');
    free(empty);
    CHECK(nt_unicode_normalize("a", 1, (nt_unicode_form)17, &n) == NULL);

    EXPECT(NT_UNICODE_NFC, "plain ascii", "plain ascii");
    EXPECT(NT_UNICODE_NFC, "with\0nul", "with\0nul");
    /* an ASCII base letter followed by a combining mark composes */
    EXPECT(NT_UNICODE_NFC, "Cafe\xCC\x81!", "Caf\xC3\xA9!");
    EXPECT(NT_UNICODE_NFKC, "Cafe\xCC\x81", "Caf\xC3\xA9");
    EXPECT(NT_UNICODE_NFD, "Caf\xC3\xA9", "Cafe\xCC\x81");
    /* ... also at the end of a long ASCII run (the 8-byte scan) */
    EXPECT(NT_UNICODE_NFC, "abcdefghijklmnopqrstuvwxyze\xCC\x81", "abcdefghijklmnopqrstuvwxyz\xC3\xA9");
    /* '<' + U+0338 COMBINING LONG SOLIDUS OVERLAY = U+226E NOT LESS-THAN */
    EXPECT(NT_UNICODE_NFC, "a<\xCC\xB8" "b", "a\xE2\x89\xAE" "b");
    /* canonical order: U+0301 (230) after U+0316 (220) */
    EXPECT(NT_UNICODE_NFD, "a\xCC\x81\xCC\x96", "a\xCC\x96\xCC\x81");
    EXPECT(NT_UNICODE_NFC, "a\xCC\x81\xCC\x96", "\xC3\xA1\xCC\x96");
    /* singletons: U+212B ANGSTROM SIGN -> U+00C5, U+2126 OHM -> U+03A9 */
    EXPECT(NT_UNICODE_NFC, "\xE2\x84\xAB", "\xC3\x85");
    EXPECT(NT_UNICODE_NFC, "\xE2\x84\xA6", "\xCE\xA9");
    /* compatibility: U+FB01 LATIN SMALL LIGATURE FI, U+2460 CIRCLED DIGIT
     * ONE, U+FF21 FULLWIDTH A, U+00A0 NO-BREAK SPACE, U+2075 SUPERSCRIPT FIVE */
    EXPECT(NT_UNICODE_NFC, "\xEF\xAC\x81", "\xEF\xAC\x81");
    EXPECT(NT_UNICODE_NFKC, "\xEF\xAC\x81 \xE2\x91\xA0\xEF\xBC\xA1\xC2\xA0x\xE2\x81\xB5", "fi 1A x5");
    EXPECT(NT_UNICODE_NFKD, "\xEF\xAC\x81", "fi");
    /* U+FDFA, the longest compatibility decomposition (18 code points) */
    EXPECT(NT_UNICODE_NFKC, "\xEF\xB7\xBA",
           "\xD8\xB5\xD9\x84\xD9\x89 \xD8\xA7\xD9\x84\xD9\x84\xD9\x87 \xD8\xB9\xD9\x84\xD9\x8A\xD9\x87 "
           "\xD9\x88\xD8\xB3\xD9\x84\xD9\x85");
    /* U+1E9B LONG S WITH DOT ABOVE: canonical and compatibility differ */
    EXPECT(NT_UNICODE_NFD, "\xE1\xBA\x9B", "\xC5\xBF\xCC\x87");
    EXPECT(NT_UNICODE_NFKC, "\xE1\xBA\x9B", "\xE1\xB9\xA1");
    /* Hangul: U+D55C <-> U+1112 U+1161 U+11AB, and LV + T composes */
    EXPECT(NT_UNICODE_NFD, "\xED\x95\x9C", "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB");
    EXPECT(NT_UNICODE_NFC, "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", "\xED\x95\x9C");
    EXPECT(NT_UNICODE_NFC, "\xED\x95\x98\xE1\x86\xAB", "\xED\x95\x9C");
    /* trailing consonants are U+11A8..U+11C2 only: U+11A7 (a vowel) and
     * U+11C3 stay after U+AC00; an LVT syllable takes no second T */
    EXPECT(NT_UNICODE_NFC, "\xEA\xB0\x80\xE1\x86\xA8", "\xEA\xB0\x81");
    EXPECT(NT_UNICODE_NFC, "\xEA\xB0\x80\xE1\x87\x82", "\xEA\xB0\x9B");
    EXPECT(NT_UNICODE_NFC, "\xEA\xB0\x80\xE1\x86\xA7", "\xEA\xB0\x80\xE1\x86\xA7");
    EXPECT(NT_UNICODE_NFC, "\xEA\xB0\x80\xE1\x87\x83", "\xEA\xB0\x80\xE1\x87\x83");
    EXPECT(NT_UNICODE_NFC, "\xEA\xB0\x81\xE1\x86\xA8", "\xEA\xB0\x81\xE1\x86\xA8");
    /* L + V needs an L (U+1100..U+1112) and a V (U+1161..U+1175) */
    EXPECT(NT_UNICODE_NFC, "\xE1\x84\x92\xE1\x85\xB5", "\xED\x9E\x88");
    EXPECT(NT_UNICODE_NFC, "\xE1\x84\x93\xE1\x85\xA1", "\xE1\x84\x93\xE1\x85\xA1");
    EXPECT(NT_UNICODE_NFC, "\xE1\x84\x80\xE1\x85\xB6", "\xE1\x84\x80\xE1\x85\xB6");
    /* U+320E PARENTHESIZED HANGUL KIYEOK A: a Hangul syllable inside a
     * compatibility decomposition */
    EXPECT(NT_UNICODE_NFKD, "\xE3\x88\x8E", "(\xE1\x84\x80\xE1\x85\xA1)");
    EXPECT(NT_UNICODE_NFKC, "\xE3\x88\x8E", "(\xEA\xB0\x80)");
    /* composition exclusion: U+0958 DEVANAGARI QA stays decomposed */
    EXPECT(NT_UNICODE_NFC, "\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC");
    /* a combining mark at the very start has nothing to compose with */
    EXPECT(NT_UNICODE_NFC, "\xCC\x81" "a", "\xCC\x81" "a");
    /* a blocked mark: U+0301 after U+0301 (same class) does not compose */
    EXPECT(NT_UNICODE_NFC, "e\xCC\x81\xCC\x81", "\xC3\xA9\xCC\x81");
    /* text from other scripts passes unchanged */
    expect_all_forms("scripts", "\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\x8D", 11);
}

/* Bytes that are not UTF-8 come out as they went in and block composition. */
static void test_invalid_bytes(void)
{
    static const char *const invalid[] = {
        "\xFF", "\x80", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "\xF0\x9F\x98",
        "\xC3", "x\xFE\xFFy",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        expect_all_forms("invalid", invalid[i], strlen(invalid[i]));

    /* U+0301 cannot reach the 'e' across an invalid byte */
    EXPECT(NT_UNICODE_NFC, "e\xFF\xCC\x81", "e\xFF\xCC\x81");
    /* but composes right after one */
    EXPECT(NT_UNICODE_NFC, "\xFF" "e\xCC\x81", "\xFF\xC3\xA9");
    /* a truncated sequence, then text that changes */
    EXPECT(NT_UNICODE_NFC, "\xE2\x82" "e\xCC\x81", "\xE2\x82\xC3\xA9");
    EXPECT(NT_UNICODE_NFD, "\xE2\x82\xC3\xA9\xCC", "\xE2\x82" "e\xCC\x81\xCC");
    EXPECT(NT_UNICODE_NFKC, "\xEF\xAC\x81\xC0\xEF\xAC\x81", "fi\xC0" "fi");
    /* a surrogate encoded in UTF-8 is three invalid bytes */
    EXPECT(NT_UNICODE_NFD, "\xED\xA0\x80\xC3\xA9", "\xED\xA0\x80" "e\xCC\x81");
    /* reordering stops at an invalid byte */
    EXPECT(NT_UNICODE_NFD, "a\xCC\x81\x80\xCC\x96", "a\xCC\x81\x80\xCC\x96");
}

/* Normalizes with a map and checks output and every map entry. */
static void expect_map(const char *where, nt_unicode_form form, const char *in, size_t in_len,
                       const char *want, size_t want_len, const size_t *want_map)
{
    size_t got_len = 0, *map = NULL;
    char *got = nt_unicode_normalize_map(in, in_len, form, &got_len, &map);
    int ok = got != NULL && map != NULL && got_len == want_len && memcmp(got, want, want_len) == 0;
    for (size_t k = 0; ok && k < want_len; k++)
        ok = map[k] == want_map[k];
    CHECK_MSG(ok, "%s: %s map differs", where, FORM_NAME[form]);
    if (!ok && got && map) {
        for (size_t k = 0; k < got_len; k++)
            fprintf(stderr, " %02X->%zu", (unsigned char)got[k], map[k]);
        fputc('\n', stderr);
    }
    free(got);
    free(map);
}

#define EXPECT_MAP(form, in, want, ...)                                                         \
    do {                                                                                         \
        static const size_t want_map_[] = {__VA_ARGS__};                                        \
        expect_map(__FILE__ ":" CHECK_STRINGIFY(__LINE__), form, in, sizeof(in) - 1, want,     \
                   sizeof(want) - 1, want_map_);                                                 \
    } while (0)

static void test_byte_map(void)
{
    /* unchanged text maps byte for byte */
    EXPECT_MAP(NT_UNICODE_NFC, "ab\xC3\xA9z", "ab\xC3\xA9z", 0, 1, 2, 3, 4);
    /* a composition maps to its starter */
    EXPECT_MAP(NT_UNICODE_NFC, "Cafe\xCC\x81 ok", "Caf\xC3\xA9 ok", 0, 1, 2, 3, 3, 6, 7, 8);
    /* a decomposition maps to the character decomposed */
    EXPECT_MAP(NT_UNICODE_NFD, "x\xC3\xA9y", "xe\xCC\x81y", 0, 1, 1, 1, 3);
    EXPECT_MAP(NT_UNICODE_NFKC, "x\xEF\xAC\x81y", "xfiy", 0, 1, 1, 4);
    /* reordered marks keep their own bytes */
    EXPECT_MAP(NT_UNICODE_NFD, "a\xCC\x81\xCC\x96", "a\xCC\x96\xCC\x81", 0, 3, 4, 1, 2);
    EXPECT_MAP(NT_UNICODE_NFC, "a\xCC\x81\xCC\x96", "\xC3\xA1\xCC\x96", 0, 0, 3, 4);
    /* a character rebuilt as itself maps byte for byte */
    EXPECT_MAP(NT_UNICODE_NFC, "\xC3\xA9\xCC\x81", "\xC3\xA9\xCC\x81", 0, 1, 2, 3);
    /* Hangul both ways */
    EXPECT_MAP(NT_UNICODE_NFD, "\xED\x95\x9C", "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", 0, 0, 0, 0, 0,
               0, 0, 0, 0);
    EXPECT_MAP(NT_UNICODE_NFC, "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", "\xED\x95\x9C", 0, 0, 0);
    /* invalid bytes map to themselves */
    EXPECT_MAP(NT_UNICODE_NFKC, "\xFF\xEF\xAC\x81\xE2\x82", "\xFF" "fi\xE2\x82", 0, 1, 1, 4, 5);

    size_t n = 1, *map = (size_t *)&n;
    char *out = nt_unicode_normalize_map("", 0, NT_UNICODE_NFD, &n, &map);
    CHECK(out != NULL && n == 0 && map != NULL);
    free(out);
    free(map);
    out = nt_unicode_normalize_map("abc", 3, NT_UNICODE_NFD, &n, NULL);
    CHECK(out != NULL && n == 3 && strcmp(out, "abc") == 0);
    free(out);
}

static size_t put_repeated(char *buf, const char *piece, size_t piece_len, size_t times)
{
    for (size_t i = 0; i < times; i++)
        memcpy(buf + i * piece_len, piece, piece_len);
    return piece_len * times;
}

/* Long runs of combining marks: stable order, linear time, no overflow. */
static void test_long_runs(void)
{
    const size_t pairs = 50000;
    char *in = malloc(2 + 4 * pairs), *want = malloc(2 + 4 * pairs);
    if (in == NULL || want == NULL) {
        CHECK(!"out of memory");
        free(in);
        free(want);
        return;
    }
    /* "a" + (U+0301 U+0316) x pairs */
    in[0] = 'a';
    size_t in_len = 1 + put_repeated(in + 1, "\xCC\x81\xCC\x96", 4, pairs);
    /* NFD: all U+0316 (220) first, then all U+0301 (230), each group in order */
    want[0] = 'a';
    size_t want_len = 1 + put_repeated(want + 1, "\xCC\x96", 2, pairs);
    want_len += put_repeated(want + want_len, "\xCC\x81", 2, pairs);
    expect_form("long run NFD", NT_UNICODE_NFD, in, in_len, want, want_len);
    /* NFC: the first U+0301 composes with 'a', the rest stay */
    memcpy(want, "\xC3\xA1", 2);
    want_len = 2 + put_repeated(want + 2, "\xCC\x96", 2, pairs);
    want_len += put_repeated(want + want_len, "\xCC\x81", 2, pairs - 1);
    expect_form("long run NFC", NT_UNICODE_NFC, in, in_len, want, want_len);

    /* the map follows each mark through the counting sort */
    size_t out_len = 0, *map = NULL;
    char *out = nt_unicode_normalize_map(in, in_len, NT_UNICODE_NFD, &out_len, &map);
    int ok = out != NULL && map != NULL && out_len == in_len;
    for (size_t k = 0; ok && k < pairs; k++) {
        ok = map[1 + 2 * k] == 1 + 4 * k + 2 && map[2 + 2 * k] == 1 + 4 * k + 3 &&
             map[1 + 2 * pairs + 2 * k] == 1 + 4 * k;
    }
    CHECK_MSG(ok, "map through a long reordered run");
    free(out);
    free(map);
    free(in);
    free(want);
}

static void test_whitespace(void)
{
    static const uint32_t space[] = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680,
                                     0x2000, 0x2005, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    static const uint32_t not_space[] = {0x00, 0x08, 0x0E, 0x1F, 0x21, 'a', 0x84, 0x86, 0x9F,
                                         0x180E, 0x200B, 0x200C, 0x2060, 0xFEFF, 0x3001, 0x110000};
    for (size_t i = 0; i < sizeof space / sizeof space[0]; i++)
        CHECK_MSG(nt_unicode_is_whitespace(space[i]), "U+%04X is White_Space", (unsigned)space[i]);
    for (size_t i = 0; i < sizeof not_space / sizeof not_space[0]; i++)
        CHECK_MSG(!nt_unicode_is_whitespace(not_space[i]), "U+%04X is not White_Space",
                  (unsigned)not_space[i]);
    int count = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++)
        count += nt_unicode_is_whitespace(cp);
    CHECK_MSG(count == 25, "%d White_Space code points, want 25", count);

    CHECK(nt_unicode_combining_class('a') == 0);
    CHECK(nt_unicode_combining_class(0x0301) == 230);
    CHECK(nt_unicode_combining_class(0x0316) == 220);
    CHECK(nt_unicode_combining_class(0x1D16D) == 226);
    CHECK(nt_unicode_combining_class(0xAC00) == 0);
    CHECK(nt_unicode_combining_class(0x110000) == 0);
}

/* ------------------------------------------------------------------------ */
/* NormalizationTest.txt                                                     */
/* ------------------------------------------------------------------------ */

typedef struct test_line {
    int line_no;
    int part;
    char *col[5];
    size_t len[5];
} test_line;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, 65536, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* "0044 0307" -> UTF-8; returns the malloc'd string or NULL. */
static char *parse_column(const char *s, const char *end, size_t *len)
{
    char *out = malloc((size_t)(end - s) * 2 + 4);
    size_t n = 0;
    if (out == NULL)
        return NULL;
    while (s < end) {
        if (*s == ' ') {
            s++;
            continue;
        }
        char *stop;
        unsigned long cp = strtoul(s, &stop, 16);
        if (stop == s || cp > 0x10FFFF) {
            free(out);
            return NULL;
        }
        n += (size_t)nt_utf8_encode((uint32_t)cp, out + n);
        s = stop;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

static test_line *parse_tests(char *text, size_t *count)
{
    size_t cap = 1024, n = 0;
    test_line *lines = malloc(cap * sizeof *lines);
    int part = -1, line_no = 0;
    for (char *p = text; lines && *p;) {
        char *eol = strchr(p, '\n');
        if (eol == NULL)
            eol = p + strlen(p);
        line_no++;
        if (*p == '@') {
            part = atoi(p + 5); /* "@PartN" */
        } else if (*p != '#' && p != eol) {
            if (n == cap) {
                test_line *grown = realloc(lines, (cap *= 2) * sizeof *lines);
                if (grown == NULL) {
                    free(lines);
                    return NULL;
                }
                lines = grown;
            }
            test_line *t = &lines[n];
            t->line_no = line_no;
            t->part = part;
            char *field = p;
            int ok = 1;
            for (int c = 0; c < 5; c++) {
                char *semi = memchr(field, ';', (size_t)(eol - field));
                t->col[c] = semi ? parse_column(field, semi, &t->len[c]) : NULL;
                if (t->col[c] == NULL) {
                    for (int k = 0; k < c; k++)
                        free(t->col[k]);
                    ok = 0;
                    break;
                }
                field = semi + 1;
            }
            CHECK_MSG(ok, "NormalizationTest.txt line %d does not parse", line_no);
            if (ok)
                n++;
        }
        p = *eol ? eol + 1 : eol;
    }
    *count = n;
    return lines;
}

static void check_conformance_line(const test_line *t)
{
    char where[64];
    snprintf(where, sizeof where, "NormalizationTest.txt:%d", t->line_no);
    const char *const *c = (const char *const *)t->col;
    const size_t *l = t->len;
    /* NFC: c2 == toNFC(c1) == toNFC(c2) == toNFC(c3); c4 == toNFC(c4) == toNFC(c5) */
    for (int i = 0; i < 3; i++)
        expect_form(where, NT_UNICODE_NFC, c[i], l[i], c[1], l[1]);
    for (int i = 3; i < 5; i++)
        expect_form(where, NT_UNICODE_NFC, c[i], l[i], c[3], l[3]);
    /* NFD: c3 == toNFD(c1) == toNFD(c2) == toNFD(c3); c5 == toNFD(c4) == toNFD(c5) */
    for (int i = 0; i < 3; i++)
        expect_form(where, NT_UNICODE_NFD, c[i], l[i], c[2], l[2]);
    for (int i = 3; i < 5; i++)
        expect_form(where, NT_UNICODE_NFD, c[i], l[i], c[4], l[4]);
    /* NFKC: c4 == toNFKC(c1..c5); NFKD: c5 == toNFKD(c1..c5) */
    for (int i = 0; i < 5; i++) {
        expect_form(where, NT_UNICODE_NFKC, c[i], l[i], c[3], l[3]);
        expect_form(where, NT_UNICODE_NFKD, c[i], l[i], c[4], l[4]);
    }

    /* The map: same output; entries inside the input; the identity where
     * the form leaves the text alone. */
    static const int want_col[4] = {1, 3, 2, 4};
    for (int f = 0; f < 4; f++) {
        size_t out_len = 0, *map = NULL;
        char *out = nt_unicode_normalize_map(c[0], l[0], ALL_FORMS[f], &out_len, &map);
        const char *want = c[want_col[f]];
        size_t want_len = l[want_col[f]];
        int ok = out != NULL && out_len == want_len && memcmp(out, want, want_len) == 0;
        int identity = ok && out_len == l[0] && memcmp(out, c[0], l[0]) == 0;
        for (size_t k = 0; ok && k < out_len; k++)
            ok = map[k] < l[0] && (!identity || map[k] == k);
        if (ok) {
            check_passed_count++;
        } else {
            check_failed_count++;
            if (printed_failures++ < MAX_PRINTED_FAILURES)
                fprintf(stderr, "%s: %s with map: wrong output or map\n", where, FORM_NAME[f]);
        }
        free(out);
        free(map);
    }
}

/* All test lines' c1 joined by `sep`, or their column `col` likewise. */
static char *join_column(const test_line *lines, size_t n, int col, const char *sep, size_t *len)
{
    size_t total = 0, sep_len = strlen(sep);
    for (size_t i = 0; i < n; i++)
        total += lines[i].len[col] + sep_len;
    char *out = malloc(total + 1), *p = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, lines[i].col[col], lines[i].len[col]);
        p += lines[i].len[col];
        memcpy(p, sep, sep_len);
        p += sep_len;
    }
    *len = total;
    return out;
}

static int conformance(const char *path)
{
    size_t text_len = 0, n = 0;
    char *text = read_file(path, &text_len);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    if (text == NULL)
        return -1;
    test_line *lines = parse_tests(text, &n);
    free(text);
    CHECK_MSG(lines != NULL && n > 5000, "%s: %zu test lines", path, n);
    if (lines == NULL)
        return -1;

    int parts_seen[4] = {0};
    for (size_t i = 0; i < n; i++) {
        if (lines[i].part >= 0 && lines[i].part < 4)
            parts_seen[lines[i].part]++;
        check_conformance_line(&lines[i]);
    }
    CHECK_MSG(parts_seen[0] && parts_seen[1] && parts_seen[2] && parts_seen[3],
              "parts: %d %d %d %d lines", parts_seen[0], parts_seen[1], parts_seen[2], parts_seen[3]);
    printf("NormalizationTest: %zu lines (parts 0-3: %d, %d, %d, %d)\n", n, parts_seen[0],
           parts_seen[1], parts_seen[2], parts_seen[3]);

    /* Invariant 2: code points not in Part 1 are left alone by every form. */
    unsigned char *listed = calloc(0x110000, 1);
    if (listed != NULL) {
        for (size_t i = 0; i < n; i++) {
            uint32_t cp;
            if (lines[i].part == 1 && nt_utf8_decode(lines[i].col[0], lines[i].len[0], &cp) > 0)
                listed[cp] = 1;
        }
        long changed[4] = {0};
        for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
            char buf[4];
            int len = nt_utf8_encode(cp, buf);
            if (len == 0 || listed[cp])
                continue;
            for (int f = 0; f < 4; f++) {
                size_t out_len = 0;
                char *out = nt_unicode_normalize(buf, (size_t)len, ALL_FORMS[f], &out_len);
                if (out == NULL || out_len != (size_t)len || memcmp(out, buf, out_len) != 0) {
                    if (changed[f]++ < 5)
                        fprintf(stderr, "U+%04X changed by %s\n", (unsigned)cp, FORM_NAME[f]);
                }
                free(out);
            }
        }
        for (int f = 0; f < 4; f++)
            CHECK_MSG(changed[f] == 0, "%ld unlisted code points changed by %s", changed[f],
                      FORM_NAME[f]);
        free(listed);
    }

    /* The whole file as one text: lines joined by a newline, and by an
     * invalid byte (a starter too), must normalize line by line. */
    static const char *const separators[] = {"\n", "\xFF", " x "};
    static const int want_col[4] = {1, 3, 2, 4};
    for (size_t s = 0; s < sizeof separators / sizeof separators[0]; s++) {
        size_t in_len = 0;
        char *in = join_column(lines, n, 0, separators[s], &in_len);
        for (int f = 0; in && f < 4; f++) {
            size_t want_len = 0;
            char *want = join_column(lines, n, want_col[f], separators[s], &want_len);
            if (want)
                expect_form("joined file", ALL_FORMS[f], in, in_len, want, want_len);
            free(want);
        }
        free(in);
    }

    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 5; c++)
            free(lines[i].col[c]);
    free(lines);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Speed (printed, never asserted)                                          */
/* ------------------------------------------------------------------------ */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench(const char *name, const char *buf, size_t len)
{
    printf("speed, %s (%.1f MB):", name, (double)len / 1e6);
    for (int f = 0; f < 4; f++) {
        double best = 1e30;
        size_t out_len = 0;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_seconds();
            char *out = nt_unicode_normalize(buf, len, ALL_FORMS[f], &out_len);
            double dt = now_seconds() - t0;
            CHECK(out != NULL);
            free(out);
            if (dt < best)
                best = dt;
        }
        printf(" %s %.0f MB/s%s", FORM_NAME[f], (double)len / 1e6 / best,
               out_len == len ? "" : " (changed)");
    }
    double t0 = now_seconds();
    size_t out_len = 0, *map = NULL;
    char *out = nt_unicode_normalize_map(buf, len, NT_UNICODE_NFC, &out_len, &map);
    double dt = now_seconds() - t0;
    CHECK(out != NULL && map != NULL);
    free(out);
    free(map);
    printf("; NFC with map %.0f MB/s\n", (double)len / 1e6 / dt);
}

static void test_speed(void)
{
    const size_t size = 10u << 20;
    char *ascii = malloc(size), *mixed = malloc(size);
    if (ascii == NULL || mixed == NULL) {
        free(ascii);
        free(mixed);
        return;
    }
    static const char *const words[] = {"the", "model", "tokenizer", "reads", "text", "and",
                                        "returns", "ids,", "quickly.", "Normalization", "of",
                                        "UTF-8", "input", "(mostly", "ASCII)", "is", "cheap\n"};
    uint32_t rng = 12345;
    size_t n = 0;
    while (n < size) {
        rng = rng * 1103515245u + 12345u;
        const char *w = words[(rng >> 16) % (sizeof words / sizeof words[0])];
        size_t wl = strlen(w);
        if (n + wl + 1 > size)
            break;
        memcpy(ascii + n, w, wl);
        n += wl;
        ascii[n++] = ' ';
    }
    memset(ascii + n, ' ', size - n);

    static const char mixed_text[] =
        "The quick brown fox jumps over the lazy dog. "
        "Élève déjà à l'école, où naïve coïncidence. Straße, Grüße aus Köln. "
        "Съешь же ещё этих мягких французских булок, да выпей чаю. "
        "Ξεσκεπάζω τὴν ψυχοφθόρα βδελυγμία. 我能吞下玻璃而不伤身体。"
        "いろはにほへと ちりぬるを。ガギグゲゴ、パピプペポ。다람쥐 헌 쳇바퀴에 타고파. "
        "राक्षसों के राजा रावण का सर्वनाश करने वाले श्रीराम, अयोध्या के महाराज दशरथ के बड़े सपुत्र थे। "
        "صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت. Tiếng Việt có dấu. 👍🏽 🎉 "
        "Cafe\xCC\x81 ﬁ ① ｆｕｌｌ\n";
    size_t piece = sizeof mixed_text - 1;
    n = 0;
    while (n + piece <= size) {
        memcpy(mixed + n, mixed_text, piece);
        n += piece;
    }
    memset(mixed + n, ' ', size - n);

    bench("ASCII", ascii, size);
    bench("mixed scripts", mixed, size);
    free(ascii);
    free(mixed);
}

int main(int argc, char **argv)
{
    test_utf8_edges();
    test_utf8_exhaustive();
    test_basic_cases();
    test_invalid_bytes();
    test_byte_map();
    test_long_runs();
    test_whitespace();
    if (argc < 2) {
        fprintf(stderr, "usage: %s NormalizationTest.txt\n", argv[0]);
        check_failed_count++;
    } else {
        conformance(argv[1]);
    }
    test_speed();
    return check_summary();
}
