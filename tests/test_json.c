/*
 * test_json.c - tests of the JSON parser (src/json.c).
 *
 * Valid documents must give the right tree; every malformed one, every
 * truncation of a valid one and thousands of randomly damaged ones must
 * fail cleanly (or, for damaged ones, succeed) without crashing or reading
 * outside the text. Texts are copied into buffers of exactly their length
 * so that a sanitizer build catches any read past the end.
 */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

/* CHECK_STR_CONTAINS on a char array (not a pointer) trips -Waddress. */
#define CHECK_ERR_CONTAINS(err, needle)   \
    do {                                  \
        const char *err_ = (err);         \
        CHECK_STR_CONTAINS(err_, needle); \
    } while (0)

/* Parses `len` bytes from a private copy of exactly that size. */
static nt_json_doc *parse_exact(const char *text, size_t len, char *err,
                                size_t err_size) {
    char *copy = malloc(len ? len : 1);
    nt_json_doc *doc;
    if (copy == NULL) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    memcpy(copy, text, len);
    doc = nt_json_parse(copy, len, err, err_size);
    free(copy);  /* the tree must not point into the text */
    return doc;
}

static nt_json_doc *parse_str(const char *text, char *err, size_t err_size) {
    return parse_exact(text, strlen(text), err, err_size);
}

/* Parses `text`, which must be valid; NULL (and a failed check) if not. */
static nt_json_doc *parse_ok(const char *text) {
    char err[256];
    nt_json_doc *doc = parse_str(text, err, sizeof err);
    CHECK_MSG(doc != NULL, "parse of %s failed: %s", text, err);
    return doc;
}

static int str_is(const nt_json *v, const char *expect, size_t expect_len) {
    size_t len = 12345;
    const char *s = nt_json_string(v, &len);
    return s != NULL && len == expect_len && memcmp(s, expect, len) == 0 &&
           s[len] == '\0';
}

static int int_is(const nt_json *v, int64_t expect) {
    int64_t x = 0;
    return nt_json_int64(v, &x) && x == expect;
}

/* ------------------------------------------------------------------------ */

static void test_kinds(void) {
    nt_json_doc *doc = parse_ok(
        "{\"n\":null,\"f\":false,\"t\":true,\"i\":42,\"d\":-1.5,"
        "\"s\":\"hi\",\"a\":[1,2],\"o\":{}}");
    const nt_json *root = nt_json_root(doc);
    static const char *keys[] = {"n", "f", "t", "i", "d", "s", "a", "o"};
    static const nt_json_kind kinds[] = {
        NT_JSON_NULL, NT_JSON_FALSE, NT_JSON_TRUE, NT_JSON_NUMBER,
        NT_JSON_NUMBER, NT_JSON_STRING, NT_JSON_ARRAY, NT_JSON_OBJECT};
    size_t i;

    CHECK(nt_json_kind_of(root) == NT_JSON_OBJECT);
    CHECK(nt_json_count(root) == 8);
    for (i = 0; i < 8; i++) {
        size_t len = 99;
        const char *k = nt_json_key_at(root, i, &len);
        CHECK_MSG(k != NULL && strcmp(k, keys[i]) == 0 && len == 1,
                  "key %zu is %s", i, k ? k : "(null)");
        CHECK(nt_json_kind_of(nt_json_at(root, i)) == kinds[i]);
        CHECK(nt_json_get(root, keys[i]) == nt_json_at(root, i));
    }
    CHECK(nt_json_key_at(root, 8, NULL) == NULL);
    CHECK(nt_json_at(root, 8) == NULL);

    CHECK(nt_json_is_null(nt_json_get(root, "n")));
    CHECK(!nt_json_is_null(nt_json_get(root, "f")));
    CHECK(nt_json_is_bool(nt_json_get(root, "f")));
    CHECK(nt_json_is_bool(nt_json_get(root, "t")));
    CHECK(!nt_json_is_bool(nt_json_get(root, "n")));
    CHECK(nt_json_bool(nt_json_get(root, "t")) == 1);
    CHECK(nt_json_bool(nt_json_get(root, "f")) == 0);
    CHECK(int_is(nt_json_get(root, "i"), 42));
    CHECK(nt_json_number(nt_json_get(root, "i")) == 42.0);
    CHECK(nt_json_number(nt_json_get(root, "d")) == -1.5);
    CHECK(str_is(nt_json_get(root, "s"), "hi", 2));
    CHECK(nt_json_count(nt_json_get(root, "a")) == 2);
    CHECK(int_is(nt_json_at(nt_json_get(root, "a"), 1), 2));
    CHECK(nt_json_count(nt_json_get(root, "o")) == 0);
    CHECK(nt_json_kind_of(nt_json_get(root, "o")) == NT_JSON_OBJECT);
    CHECK(nt_json_get(root, "missing") == NULL);
    CHECK(nt_json_get(root, "") == NULL);

    CHECK(strcmp(nt_json_kind_name(NT_JSON_NULL), "null") == 0);
    CHECK(strcmp(nt_json_kind_name(NT_JSON_FALSE), "false") == 0);
    CHECK(strcmp(nt_json_kind_name(NT_JSON_TRUE), "true") == 0);
    CHECK(strcmp(nt_json_kind_name(NT_JSON_NUMBER), "number") == 0);
    CHECK(strcmp(nt_json_kind_name(NT_JSON_STRING), "string") == 0);
    CHECK(strcmp(nt_json_kind_name(NT_JSON_ARRAY), "array") == 0);
    CHECK(strcmp(nt_json_kind_name(NT_JSON_OBJECT), "object") == 0);
    nt_json_free(doc);
}

static void test_top_level_scalars(void) {
    nt_json_doc *doc;

    doc = parse_ok("42");
    CHECK(int_is(nt_json_root(doc), 42));
    nt_json_free(doc);

    doc = parse_ok(" \t\r\n\"x\" \n");
    CHECK(str_is(nt_json_root(doc), "x", 1));
    nt_json_free(doc);

    doc = parse_ok("null");
    CHECK(nt_json_is_null(nt_json_root(doc)));
    nt_json_free(doc);

    doc = parse_ok("true");
    CHECK(nt_json_bool(nt_json_root(doc)));
    nt_json_free(doc);

    doc = parse_ok("false ");
    CHECK(nt_json_kind_of(nt_json_root(doc)) == NT_JSON_FALSE);
    nt_json_free(doc);

    doc = parse_ok("[]");
    CHECK(nt_json_kind_of(nt_json_root(doc)) == NT_JSON_ARRAY);
    CHECK(nt_json_count(nt_json_root(doc)) == 0);
    CHECK(nt_json_at(nt_json_root(doc), 0) == NULL);
    nt_json_free(doc);

    doc = parse_ok("{ }");
    CHECK(nt_json_kind_of(nt_json_root(doc)) == NT_JSON_OBJECT);
    CHECK(nt_json_count(nt_json_root(doc)) == 0);
    nt_json_free(doc);

    doc = parse_ok("\"\"");
    CHECK(str_is(nt_json_root(doc), "", 0));
    nt_json_free(doc);

    doc = parse_ok(" [ 1 , [ ] , { } , \"\" ] ");
    CHECK(nt_json_count(nt_json_root(doc)) == 4);
    nt_json_free(doc);
}

static void test_nesting(void) {
    nt_json_doc *doc = parse_ok(
        "{\"a\":{\"b\":{\"c\":[1,[2,[3,{\"d\":\"deep\"}]]]}},\"e\":[[],[[]]]}");
    const nt_json *root = nt_json_root(doc);
    const nt_json *c = nt_json_get(nt_json_get(nt_json_get(root, "a"), "b"),
                                   "c");
    const nt_json *inner;

    CHECK(nt_json_count(c) == 2);
    CHECK(int_is(nt_json_at(c, 0), 1));
    inner = nt_json_at(nt_json_at(c, 1), 1);
    CHECK(int_is(nt_json_at(inner, 0), 3));
    CHECK(str_is(nt_json_get(nt_json_at(inner, 1), "d"), "deep", 4));
    CHECK(nt_json_count(nt_json_get(root, "e")) == 2);
    CHECK(nt_json_count(nt_json_at(nt_json_get(root, "e"), 0)) == 0);
    CHECK(nt_json_count(nt_json_at(nt_json_get(root, "e"), 1)) == 1);
    /* Chaining through missing members stays NULL. */
    CHECK(nt_json_get(nt_json_get(nt_json_get(root, "x"), "y"), "z") == NULL);
    CHECK(nt_json_at(nt_json_get(root, "x"), 0) == NULL);
    nt_json_free(doc);
}

static void test_escapes(void) {
    nt_json_doc *doc;
    const nt_json *root;
    size_t len;
    const char *s;

    doc = parse_ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
    CHECK(str_is(nt_json_root(doc), "\"\\/\b\f\n\r\t", 8));
    nt_json_free(doc);

    /* BMP escapes in 1, 2 and 3 UTF-8 bytes, and a surrogate pair. */
    doc = parse_ok("\"\\u0041\\u00e9\\u20AC\\ud83d\\uDE00!\"");
    CHECK(str_is(nt_json_root(doc),
                 "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80!", 11));
    nt_json_free(doc);

    /* The extremes: U+FFFF and U+10FFFF. */
    doc = parse_ok("[\"\\uffff\",\"\\udbff\\udfff\",\"\\ud800\\udc00\"]");
    CHECK(str_is(nt_json_at(nt_json_root(doc), 0), "\xEF\xBF\xBF", 3));
    CHECK(str_is(nt_json_at(nt_json_root(doc), 1), "\xF4\x8F\xBF\xBF", 4));
    CHECK(str_is(nt_json_at(nt_json_root(doc), 2), "\xF0\x90\x80\x80", 4));
    nt_json_free(doc);

    /* An embedded NUL is kept, in values and in keys. */
    doc = parse_ok("{\"a\\u0000b\":\"x\\u0000y\\u0000\",\"a\":1}");
    root = nt_json_root(doc);
    s = nt_json_string(nt_json_at(root, 0), &len);
    CHECK(s != NULL && len == 4 && memcmp(s, "x\0y\0", 5) == 0);
    s = nt_json_key_at(root, 0, &len);
    CHECK(s != NULL && len == 3 && memcmp(s, "a\0b", 4) == 0);
    CHECK(nt_json_getn(root, "a\0b", 3) == nt_json_at(root, 0));
    CHECK(nt_json_get(root, "a") == nt_json_at(root, 1));  /* not "a\0b" */
    CHECK(nt_json_getn(root, "a\0c", 3) == NULL);
    nt_json_free(doc);

    /* Raw UTF-8 passes through; escapes mix with it. */
    doc = parse_ok("\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\\n\"");
    CHECK(str_is(nt_json_root(doc),
                 "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\n", 16));
    nt_json_free(doc);

    /* Escapes in keys decode before lookup. */
    doc = parse_ok("{\"caf\\u00e9\":1,\"tab\\tkey\":2}");
    CHECK(int_is(nt_json_get(nt_json_root(doc), "caf\xC3\xA9"), 1));
    CHECK(int_is(nt_json_get(nt_json_root(doc), "tab\tkey"), 2));
    nt_json_free(doc);

    /* DEL (0x7F) needs no escape. */
    doc = parse_ok("\"\x7F\"");
    CHECK(str_is(nt_json_root(doc), "\x7F", 1));
    nt_json_free(doc);
}

/* ------------------------------------------------------------------------ */

typedef struct number_case {
    const char *text;
    double value;
    int is_int;
    int64_t int_value;
} number_case;

static void test_numbers(void) {
    static const number_case cases[] = {
        {"0", 0.0, 1, 0},
        {"1", 1.0, 1, 1},
        {"-1", -1.0, 1, -1},
        {"42", 42.0, 1, 42},
        {"100", 100.0, 1, 100},
        {"9223372036854775807", 9223372036854775807.0, 1, INT64_MAX},
        {"-9223372036854775808", -9223372036854775808.0, 1, INT64_MIN},
        {"9223372036854775808", 9223372036854775808.0, 0, 0},
        {"-9223372036854775809", -9223372036854775809.0, 0, 0},
        {"18446744073709551615", 18446744073709551615.0, 0, 0},
        {"18446744073709551616", 18446744073709551616.0, 0, 0},
        {"123456789012345678901234567890", 123456789012345678901234567890.0,
         0, 0},
        {"9007199254740993", 9007199254740993.0, 1, 9007199254740993LL},
        {"12345678901234567", 12345678901234567.0, 1, 12345678901234567LL},
        {"1.0", 1.0, 0, 0},
        {"1e2", 100.0, 0, 0},
        {"1E2", 100.0, 0, 0},
        {"1e+2", 100.0, 0, 0},
        {"-0.0", -0.0, 0, 0},
        {"1e-05", 1e-05, 0, 0},
        {"1e-5", 1e-5, 0, 0},
        {"1e-6", 1e-6, 0, 0},
        {"0.00001", 0.00001, 0, 0},
        {"1.5", 1.5, 0, 0},
        {"-12.5e+3", -12.5e+3, 0, 0},
        {"0.1", 0.1, 0, 0},
        {"0.2", 0.2, 0, 0},
        {"0.30000000000000004", 0.30000000000000004, 0, 0},
        {"10000.0", 10000.0, 0, 0},
        {"500000.0", 500000.0, 0, 0},
        {"1e22", 1e22, 0, 0},
        {"1e23", 1e23, 0, 0},
        {"1e-22", 1e-22, 0, 0},
        {"1e-23", 1e-23, 0, 0},
        {"2.5e-3", 2.5e-3, 0, 0},
        {"0.000001234", 0.000001234, 0, 0},
        {"3.14159265358979323846264338327950288", 3.141592653589793, 0, 0},
        {"0.1000000000000000055511151231257827021181583404541015625", 0.1, 0,
         0},
        {"1.7976931348623157e308", 1.7976931348623157e308, 0, 0},
        {"2.2250738585072014e-308", 2.2250738585072014e-308, 0, 0},
        {"4.9406564584124654e-324", 4.9406564584124654e-324, 0, 0},
        {"5e-324", 5e-324, 0, 0},
        {"1e-400", 0.0, 0, 0},
        {"0e999999999999999999", 0.0, 0, 0},
        {"0.0000000000000000000000000000000000000000000000000001", 1e-52, 0,
         0},
        {"9007199254740992e-10", 9007199254740992e-10, 0, 0},
        {"123456789012345.678", 123456789012345.678, 0, 0},
        {"2.718281828459045", 2.718281828459045, 0, 0},
        {"1.00000000000000011102230246251565404236316680908203125",
         1.00000000000000011102230246251565404236316680908203125, 0, 0},
    };
    size_t i;
    char err[256];

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const number_case *c = &cases[i];
        nt_json_doc *doc = parse_str(c->text, err, sizeof err);
        const nt_json *v = nt_json_root(doc);
        int64_t x = 777;
        CHECK_MSG(doc != NULL, "%s: %s", c->text, err);
        CHECK(nt_json_kind_of(v) == NT_JSON_NUMBER);
        CHECK_MSG(nt_json_number(v) == c->value &&
                      signbit(nt_json_number(v)) == signbit(c->value),
                  "%s parsed as %.17g, expected %.17g", c->text,
                  nt_json_number(v), c->value);
        CHECK_MSG(nt_json_int64(v, &x) == c->is_int, "%s: int flag",
                  c->text);
        if (c->is_int)
            CHECK_MSG(x == c->int_value, "%s: int64 %lld", c->text,
                      (long long)x);
        else
            CHECK(x == 777);  /* untouched */
        nt_json_free(doc);
    }

    /* "-0" is the integer 0, and the double -0. */
    {
        nt_json_doc *doc = parse_ok("-0");
        CHECK(int_is(nt_json_root(doc), 0));
        CHECK(signbit(nt_json_number(nt_json_root(doc))));
        nt_json_free(doc);
    }

    /* Beyond the double range: +-inf, as Python's json gives. */
    {
        nt_json_doc *doc = parse_ok("[1e400,-1e400,1e999999999999]");
        const nt_json *r = nt_json_root(doc);
        CHECK(isinf(nt_json_number(nt_json_at(r, 0))) &&
              nt_json_number(nt_json_at(r, 0)) > 0);
        CHECK(isinf(nt_json_number(nt_json_at(r, 1))) &&
              nt_json_number(nt_json_at(r, 1)) < 0);
        CHECK(isinf(nt_json_number(nt_json_at(r, 2))));
        CHECK(!nt_json_int64(nt_json_at(r, 0), NULL));
        nt_json_free(doc);
    }

    /* A 400-digit mantissa goes through the slow path. */
    {
        char text[512];
        nt_json_doc *doc;
        memset(text, '0', sizeof text);
        text[0] = '1';
        text[1] = '.';
        memcpy(text + 400, "1e2", 4);
        doc = parse_ok(text);
        CHECK(nt_json_number(nt_json_root(doc)) == 100.0);
        nt_json_free(doc);
    }

    /* Numbers inside containers end at the delimiter. */
    {
        nt_json_doc *doc = parse_ok("[1,-2.5,3e1]");
        const nt_json *r = nt_json_root(doc);
        CHECK(int_is(nt_json_at(r, 0), 1));
        CHECK(nt_json_number(nt_json_at(r, 1)) == -2.5);
        CHECK(nt_json_number(nt_json_at(r, 2)) == 30.0);
        nt_json_free(doc);
    }
}

/* The process locale must not change how numbers parse. */
static void test_locale(void) {
    static const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
                                  "fr_FR.utf8", "ru_RU.UTF-8"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (setlocale(LC_NUMERIC, names[i]) != NULL) {
            nt_json_doc *doc = parse_ok(
                "[1.5,3.14159265358979323846,1.25e-300]");
            const nt_json *r = nt_json_root(doc);
            CHECK(nt_json_number(nt_json_at(r, 0)) == 1.5);
            CHECK(nt_json_number(nt_json_at(r, 1)) == 3.141592653589793);
            CHECK(nt_json_number(nt_json_at(r, 2)) == 1.25e-300);
            nt_json_free(doc);
            setlocale(LC_NUMERIC, "C");
            return;
        }
    }
    printf("note: no comma-decimal locale installed; locale test skipped\n");
}

/* ------------------------------------------------------------------------ */

static void test_duplicates_and_order(void) {
    nt_json_doc *doc = parse_ok("{\"a\":1,\"b\":2,\"a\":3,\"c\":{\"a\":4}}");
    const nt_json *root = nt_json_root(doc);
    char *text;
    size_t cap = 64 * 1024, n = 0, i;
    int ok = 1;

    CHECK(nt_json_count(root) == 4);
    CHECK(int_is(nt_json_get(root, "a"), 3));  /* the last one wins */
    CHECK(int_is(nt_json_at(root, 0), 1));     /* but both are there */
    CHECK(strcmp(nt_json_key_at(root, 0, NULL), "a") == 0);
    CHECK(strcmp(nt_json_key_at(root, 1, NULL), "b") == 0);
    CHECK(strcmp(nt_json_key_at(root, 2, NULL), "a") == 0);
    CHECK(strcmp(nt_json_key_at(root, 3, NULL), "c") == 0);
    nt_json_free(doc);

    /* 5000 members keep file order and can each be found. */
    text = malloc(cap);
    CHECK(text != NULL);
    if (text == NULL) return;
    text[n++] = '{';
    for (i = 0; i < 5000; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"k%zu\":%zu",
                              i ? "," : "", (i * 7919) % 5000, i);
    text[n++] = '}';
    doc = parse_exact(text, n, NULL, 0);
    root = nt_json_root(doc);
    CHECK(nt_json_count(root) == 5000);
    for (i = 0; i < 5000 && ok; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%zu", (i * 7919) % 5000);
        ok = strcmp(nt_json_key_at(root, i, NULL), key) == 0 &&
             int_is(nt_json_at(root, i), (int64_t)i) &&
             nt_json_get(root, key) == nt_json_at(root, i);
    }
    CHECK_MSG(ok, "member %zu out of order", i - 1);
    nt_json_free(doc);
    free(text);
}

/* Big containers and strings span several arena blocks. */
static void test_large(void) {
    size_t n_items = 200000, cap = n_items * 16 + 4 * 1024 * 1024 + 64;
    size_t n = 0, i, len;
    char *text = malloc(cap);
    nt_json_doc *doc;
    const nt_json *root, *arr;
    const char *s;
    int ok = 1;

    CHECK(text != NULL);
    if (text == NULL) return;
    n += (size_t)snprintf(text + n, cap - n, "{\"arr\":[");
    for (i = 0; i < n_items; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s%zu", i ? "," : "", i);
    n += (size_t)snprintf(text + n, cap - n, "],\"big\":\"");
    for (i = 0; i < 1000000; i++) text[n++] = (char)('a' + i % 26);
    n += (size_t)snprintf(text + n, cap - n, "\",\"bigesc\":\"");
    for (i = 0; i < 500000; i++) {
        text[n++] = '\\';
        text[n++] = 'n';
    }
    n += (size_t)snprintf(text + n, cap - n, "\"}");

    doc = parse_exact(text, n, NULL, 0);
    root = nt_json_root(doc);
    CHECK(doc != NULL);
    arr = nt_json_get(root, "arr");
    CHECK(nt_json_count(arr) == n_items);
    for (i = 0; i < n_items && ok; i++) ok = int_is(nt_json_at(arr, i),
                                                   (int64_t)i);
    CHECK_MSG(ok, "element %zu", i - 1);
    s = nt_json_string(nt_json_get(root, "big"), &len);
    CHECK(s != NULL && len == 1000000 && s[0] == 'a' && s[25] == 'z' &&
          s[999999] == (char)('a' + 999999 % 26) && s[len] == '\0');
    s = nt_json_string(nt_json_get(root, "bigesc"), &len);
    CHECK(s != NULL && len == 500000 && s[0] == '\n' && s[499999] == '\n' &&
          s[len] == '\0');
    nt_json_free(doc);
    free(text);
}

/* ------------------------------------------------------------------------ */

typedef struct bad_case {
    const char *text;
    size_t len;
} bad_case;

#define BAD(s) {s, sizeof(s) - 1}

static void test_malformed(void) {
    static const bad_case cases[] = {
        BAD(""), BAD(" "), BAD("\n\t\r "), BAD("["), BAD("]"), BAD("{"),
        BAD("}"), BAD(","), BAD(":"),
        /* trailing and missing commas */
        BAD("[1,]"), BAD("{\"a\":1,}"), BAD("[1 2]"), BAD("{\"a\":1 \"b\":2}"),
        BAD("[,]"), BAD("[,1]"), BAD("{,}"), BAD("[1,,2]"),
        BAD("{\"a\":1,,\"b\":2}"), BAD("[1,\n2,\n]"), BAD("[\"a\"\"b\"]"),
        /* objects */
        BAD("{\"a\" 1}"), BAD("{\"a\":}"), BAD("{\"a\"}"), BAD("{a:1}"),
        BAD("{'a':1}"), BAD("{1:1}"), BAD("{\"a\":1:2}"), BAD("{\"a\",1}"),
        BAD("{null:1}"), BAD("{\"a\":[}"), BAD("[{]"), BAD("{]"), BAD("[}"),
        /* numbers */
        BAD("[01]"), BAD("[-01]"), BAD("[00]"), BAD("[1.]"), BAD("[.5]"),
        BAD("[+1]"), BAD("[1e]"), BAD("[1e+]"), BAD("[1E-]"), BAD("[-]"),
        BAD("[--1]"), BAD("[0x10]"), BAD("[1.5.3]"), BAD("[- 1]"),
        BAD("[1e5.5]"), BAD("-"), BAD("1.5e"), BAD("[.]"), BAD("[0.e1]"),
        BAD("[1_000]"),
        /* NaN, Infinity, bad literals */
        BAD("[NaN]"), BAD("[nan]"), BAD("[Infinity]"), BAD("[-Infinity]"),
        BAD("[tru]"), BAD("[nul]"), BAD("[True]"), BAD("[NULL]"),
        BAD("[null1]"), BAD("[truefalse]"), BAD("[undefined]"), BAD("t"),
        BAD("fals"), BAD("nulll"),
        /* comments */
        BAD("// c\n1"), BAD("/* c */ 1"), BAD("1 // c"), BAD("[1 /* c */]"),
        BAD("# c\n1"),
        /* trailing garbage */
        BAD("[1] x"), BAD("1 2"), BAD("{}}"), BAD("[]]"), BAD("[1]]"),
        BAD("{} {}"), BAD("\"a\" \"b\""), BAD("[1]\0"), BAD("1\x01"),
        /* strings */
        BAD("\"abc"), BAD("\""), BAD("'abc'"), BAD("\"\\x\""), BAD("\"\\\""),
        BAD("\"\\"), BAD("\"\\u12\""), BAD("\"\\u12G4\""), BAD("\"\\u\""),
        BAD("\"\\U0041\""), BAD("\"\\ud800\""), BAD("\"\\udc00\""),
        BAD("\"\\ud800\\u0041\""), BAD("\"\\ud800x\""),
        BAD("\"\\ud83d\\ud83d\""), BAD("\"\\ud800\\n\""), BAD("\"\\ud800\\"),
        BAD("\"\\ud800\\u"), BAD("\"\\udfff\\ud800\""),
        BAD("\"a\x01" "b\""), BAD("\"tab\there\""), BAD("\"nl\nx\""),
        BAD("\"\0\""), BAD("\"\x1f\""), BAD("\"\\a\""), BAD("\"\\0\""),
        /* invalid UTF-8, in strings and out of them */
        BAD("\"\x80\""), BAD("\"\xBF\""), BAD("\"\xC0\xAF\""),
        BAD("\"\xC1\xBF\""), BAD("\"\xE0\x80\xAF\""), BAD("\"\xE0\x9F\xBF\""),
        BAD("\"\xED\xA0\x80\""), BAD("\"\xED\xBF\xBF\""),
        BAD("\"\xF0\x80\x80\x80\""), BAD("\"\xF0\x8F\xBF\xBF\""),
        BAD("\"\xF4\x90\x80\x80\""), BAD("\"\xF5\x80\x80\x80\""),
        BAD("\"\xF8\x88\x80\x80\x80\""), BAD("\"\xFE\""), BAD("\"\xFF\""),
        BAD("\"\xC3\""), BAD("\"\xE2\x82\""), BAD("\"\xF0\x9F\x98\""),
        BAD("\"\xC3\xC3\xA9\""), BAD("\"\xE2\x28\xA1\""), BAD("\"\xC3"),
        BAD("\xC3\xA9"), BAD("[\xFF]"),
        /* other bytes where a value belongs */
        BAD("\xEF\xBB\xBF{}"), BAD("\0"), BAD("[\0]"), BAD("\v1"),
        BAD("\f1"), BAD("[1\v]"), BAD("@"), BAD("[\"a\":1]"),
        BAD("{\"a\":1]"), BAD("[1}"), BAD("(1)"),
    };
    size_t i;
    int n_cases = (int)(sizeof cases / sizeof cases[0]);

    CHECK(n_cases >= 40);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        nt_json_doc *doc;
        memset(err, 'X', sizeof err);
        doc = parse_exact(cases[i].text, cases[i].len, err, sizeof err);
        CHECK_MSG(doc == NULL, "case %zu (%.*s) parsed", i,
                  (int)cases[i].len, cases[i].text);
        CHECK_MSG(memchr(err, '\0', sizeof err) != NULL &&
                      strstr(err, "line ") == err && strlen(err) > 20,
                  "case %zu: message \"%.*s\"", i, (int)sizeof err - 1, err);
        nt_json_free(doc);
    }
}

/* Messages say what and where. */
static void test_messages(void) {
    static const struct {
        const char *text;
        const char *where;
        const char *what;
    } cases[] = {
        {"{\n  \"a\": 1\n  \"b\": 2}", "line 3, column 3: ",
         "expected ',' or '}' after object member"},
        {"[1,\n 2\n 3]", "line 3, column 2: ",
         "expected ',' or ']' after array element"},
        {"[1,]", "line 1, column 4: ", "trailing comma"},
        {"{\"a\":1,}", "line 1, column 8: ", "trailing comma"},
        {"[01]", "line 1, column 2: ", "leading zeros"},
        {"", "line 1, column 1: ", "end of input"},
        {"{\"a\":", "line 1, column 6: ", "end of input"},
        {"[\"abc", "line 1, column 6: ", "end of input"},
        {"\r\n\r\n  [x]", "line 3, column 4: ", "'x'"},
        {"{\"a\" 1}", "line 1, column 6: ", "expected ':'"},
        {"{1:2}", "line 1, column 2: ", "expected a string key"},
        {"[NaN]", "line 1, column 2: ", "NaN"},
        {"[1] // x", "line 1, column 5: ", "comments"},
        {"\"\\ud800\"", "line 1, column 2: ", "surrogate"},
        {"\"\\udc00\"", "line 1, column 2: ", "lone low surrogate"},
        {"\"a\xC3(\"", "line 1, column 3: ", "UTF-8"},
        {"\"a\tb\"", "line 1, column 3: ", "control character 0x09"},
        {"\"\\q\"", "line 1, column 2: ", "invalid escape"},
        {"[1] 2", "line 1, column 5: ", "after the JSON value"},
        {"[tru]", "line 1, column 2: ", "expected 'true'"},
        {"[1.]", "line 1, column 4: ", "decimal point"},
        {"[1e+]", "line 1, column 5: ", "exponent"},
        {"\xEF\xBB\xBF[]", "line 1, column 1: ", "byte order mark"},
        {"{'a':1}", "line 1, column 2: ", "double quotes"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        nt_json_doc *doc = parse_str(cases[i].text, err, sizeof err);
        CHECK(doc == NULL);
        CHECK_MSG(strstr(err, cases[i].where) == err,
                  "case %zu: \"%s\" does not start with \"%s\"", i, err,
                  cases[i].where);
        CHECK_ERR_CONTAINS(err, cases[i].what);
        nt_json_free(doc);
    }
}

/* The error buffer may be NULL, empty or short. */
static void test_error_buffer(void) {
    char small[8];
    char one[1] = {'X'};
    CHECK(parse_str("[1,]", NULL, 0) == NULL);
    CHECK(parse_str("[1,]", NULL, 100) == NULL);
    CHECK(parse_str("[1,]", one, 0) == NULL && one[0] == 'X');
    CHECK(parse_str("[1,]", one, 1) == NULL && one[0] == '\0');
    memset(small, 'X', sizeof small);
    CHECK(parse_str("[1,]", small, sizeof small) == NULL);
    CHECK(memchr(small, '\0', sizeof small) != NULL);
    CHECK(strncmp(small, "line 1,", 7) == 0);

    /* Success clears the buffer. */
    {
        char err[64] = "stale";
        nt_json_doc *doc = parse_str("[]", err, sizeof err);
        CHECK(doc != NULL && err[0] == '\0');
        nt_json_free(doc);
    }
    /* A NULL text is an empty text when len is 0, an error otherwise. */
    {
        char err[64];
        CHECK(nt_json_parse(NULL, 0, err, sizeof err) == NULL);
        CHECK_ERR_CONTAINS(err, "line 1");
        CHECK(nt_json_parse(NULL, 5, err, sizeof err) == NULL);
        CHECK_ERR_CONTAINS(err, "line 1");
    }
}

/* ------------------------------------------------------------------------ */

/* Every feature, with no trailing whitespace, so that every proper prefix
 * is invalid. */
static const char sample_doc[] =
    "{\"name\": \"nemotron\", \"layers\": 32, \"eps\": 1e-05,\n"
    " \"theta\": 10000.0, \"neg\": -12.5E+3, \"big\": 9223372036854775807,\n"
    " \"ok\": true, \"no\": false, \"none\": null,\n"
    " \"list\": [1, 2.5, \"three\", [4, {\"five\": 5}], [], {}],\n"
    " \"esc\": \"q\\\"b\\\\s\\/n\\nt\\tu\\u00e9\\ud83d\\ude00z\\u0000\",\n"
    " \"utf8\": \"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\",\n"
    " \"\": 0, \"nested\": {\"a\": {\"b\": [null, -0, 0.5e-3]}}}";

static void test_sample(void) {
    nt_json_doc *doc = parse_exact(sample_doc, sizeof sample_doc - 1, NULL, 0);
    const nt_json *root = nt_json_root(doc);
    int64_t x = 0;

    CHECK(doc != NULL);
    CHECK(nt_json_count(root) == 14);
    CHECK(str_is(nt_json_get(root, "name"), "nemotron", 8));
    CHECK(int_is(nt_json_get(root, "layers"), 32));
    CHECK(nt_json_number(nt_json_get(root, "eps")) == 1e-05);
    CHECK(!nt_json_int64(nt_json_get(root, "eps"), &x));
    CHECK(nt_json_number(nt_json_get(root, "theta")) == 10000.0);
    CHECK(!nt_json_int64(nt_json_get(root, "theta"), &x));
    CHECK(nt_json_number(nt_json_get(root, "neg")) == -12500.0);
    CHECK(int_is(nt_json_get(root, "big"), INT64_MAX));
    CHECK(nt_json_bool(nt_json_get(root, "ok")));
    CHECK(str_is(nt_json_get(root, "esc"),
                 "q\"b\\s/n\nt\tu\xC3\xA9\xF0\x9F\x98\x80z\0", 19));
    CHECK(int_is(nt_json_get(root, ""), 0));
    CHECK(nt_json_number(nt_json_at(nt_json_get(nt_json_get(nt_json_get(
              root, "nested"), "a"), "b"), 2)) == 0.5e-3);
    nt_json_free(doc);
}

static void test_truncations(void) {
    size_t len = sizeof sample_doc - 1, i;
    int all_failed = 1, all_said_line = 1;
    size_t bad = 0;
    for (i = 0; i < len; i++) {
        char err[256];
        nt_json_doc *doc;
        err[0] = '\0';
        doc = parse_exact(sample_doc, i, err, sizeof err);
        if (doc != NULL) {
            all_failed = 0;
            bad = i;
            nt_json_free(doc);
        } else if (strstr(err, "line") == NULL) {
            all_said_line = 0;
            bad = i;
        }
    }
    CHECK_MSG(all_failed, "prefix of %zu bytes parsed", bad);
    CHECK_MSG(all_said_line, "prefix of %zu bytes: no position", bad);
}

static void test_depth(void) {
    size_t n = 100000, i;
    char *text = malloc(2 * n + 16);
    char err[256];
    nt_json_doc *doc;
    const nt_json *v;

    CHECK(text != NULL);
    if (text == NULL) return;

    /* Exactly the limit: fine. */
    for (i = 0; i < NT_JSON_MAX_DEPTH; i++) {
        text[i] = '[';
        text[NT_JSON_MAX_DEPTH + i] = ']';
    }
    doc = parse_exact(text, 2 * NT_JSON_MAX_DEPTH, err, sizeof err);
    CHECK_MSG(doc != NULL, "%s", err);
    for (v = nt_json_root(doc), i = 1; nt_json_count(v) == 1; i++)
        v = nt_json_at(v, 0);
    CHECK(i == NT_JSON_MAX_DEPTH && nt_json_kind_of(v) == NT_JSON_ARRAY);
    nt_json_free(doc);

    /* One more: fails. */
    for (i = 0; i <= NT_JSON_MAX_DEPTH; i++) {
        text[i] = '[';
        text[NT_JSON_MAX_DEPTH + 1 + i] = ']';
    }
    doc = parse_exact(text, 2 * (NT_JSON_MAX_DEPTH + 1), err, sizeof err);
    CHECK(doc == NULL);
    CHECK_ERR_CONTAINS(err, "line 1, column 513");
    CHECK_ERR_CONTAINS(err, "nested deeper than 512");

    /* Objects count too. */
    {
        size_t k = 0;
        for (i = 0; i < NT_JSON_MAX_DEPTH + 1; i++) {
            memcpy(text + k, "{\"a\":", 5);
            k += 5;
        }
        text[k++] = '1';
        for (i = 0; i < NT_JSON_MAX_DEPTH + 1; i++) text[k++] = '}';
        doc = parse_exact(text, k, err, sizeof err);
        CHECK(doc == NULL);
        CHECK_ERR_CONTAINS(err, "nested");
        /* One level less is fine. */
        doc = parse_exact(text + 5, k - 6, err, sizeof err);
        CHECK_MSG(doc != NULL, "%s", err);
        nt_json_free(doc);
    }

    /* Hostile depth fails cleanly, without deep recursion. */
    memset(text, '[', n);
    doc = parse_exact(text, n, err, sizeof err);
    CHECK(doc == NULL);
    CHECK_ERR_CONTAINS(err, "nested");
    free(text);
}

static void test_null_accessors(void) {
    const nt_json *v = NULL;
    size_t len = 5;
    int64_t x = 9;
    nt_json_doc *doc;

    nt_json_free(NULL);
    CHECK(nt_json_root(NULL) == NULL);
    CHECK(nt_json_kind_of(NULL) == NT_JSON_NULL);
    CHECK(nt_json_count(NULL) == 0);
    CHECK(nt_json_at(NULL, 0) == NULL);
    CHECK(nt_json_key_at(NULL, 0, &len) == NULL && len == 0);
    CHECK(nt_json_get(NULL, "a") == NULL);
    CHECK(nt_json_getn(NULL, "a", 1) == NULL);
    CHECK(nt_json_string(NULL, NULL) == NULL);
    len = 5;
    CHECK(nt_json_string(v, &len) == NULL && len == 0);
    CHECK(nt_json_number(NULL) == 0.0);
    CHECK(nt_json_int64(NULL, &x) == 0 && x == 9);
    CHECK(nt_json_is_null(NULL) == 0);
    CHECK(nt_json_is_bool(NULL) == 0);
    CHECK(nt_json_bool(NULL) == 0);
    CHECK(strcmp(nt_json_kind_name((nt_json_kind)99), "invalid") == 0);

    /* Accessors applied to the wrong kind give the neutral value too. */
    doc = parse_ok("[\"s\", 1.5, {\"k\": 1}]");
    v = nt_json_root(doc);
    CHECK(nt_json_get(v, "k") == NULL);           /* array, not object */
    CHECK(nt_json_key_at(v, 0, NULL) == NULL);
    CHECK(nt_json_count(nt_json_at(v, 0)) == 0);  /* a string */
    CHECK(nt_json_at(nt_json_at(v, 0), 0) == NULL);
    CHECK(nt_json_number(nt_json_at(v, 0)) == 0.0);
    CHECK(nt_json_int64(nt_json_at(v, 0), &x) == 0 && x == 9);
    CHECK(nt_json_int64(nt_json_at(v, 1), &x) == 0 && x == 9);
    CHECK(nt_json_string(nt_json_at(v, 1), NULL) == NULL);
    CHECK(nt_json_bool(nt_json_at(v, 1)) == 0);
    CHECK(nt_json_get(nt_json_at(v, 2), NULL) == NULL);
    CHECK(int_is(nt_json_get(nt_json_at(v, 2), "k"), 1));
    nt_json_free(doc);
}

/* ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s) {  /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Reads every value of a tree, checking what must hold for any tree. */
static int walk(const nt_json *v, int depth) {
    size_t i, n, len;
    int ok = depth <= NT_JSON_MAX_DEPTH;
    switch (nt_json_kind_of(v)) {
    case NT_JSON_STRING: {
        const char *s = nt_json_string(v, &len);
        return ok && s != NULL && s[len] == '\0';
    }
    case NT_JSON_NUMBER: {
        int64_t x;
        if (nt_json_int64(v, &x)) ok = ok && (double)x == nt_json_number(v);
        return ok;
    }
    case NT_JSON_ARRAY:
        n = nt_json_count(v);
        for (i = 0; i < n && ok; i++) ok = walk(nt_json_at(v, i), depth + 1);
        return ok && nt_json_at(v, n) == NULL;
    case NT_JSON_OBJECT:
        n = nt_json_count(v);
        for (i = 0; i < n && ok; i++) {
            const char *k = nt_json_key_at(v, i, &len);
            ok = k != NULL && k[len] == '\0' &&
                 nt_json_getn(v, k, len) != NULL &&
                 walk(nt_json_at(v, i), depth + 1);
        }
        return ok;
    default:
        return ok;
    }
}

static void test_fuzz(void) {
    static const unsigned char interesting[] = {
        '"', '\\', '{', '}', '[', ']', ',', ':', 'u', '0', '-', 'e', '.',
        ' ', '\n', 0x00, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xE2, 0xED,
        0xF0, 0xF4, 0xF5, 0xFF};
    uint64_t seed = 0x6E656D6F74726F6EULL;  /* "nemotron" */
    size_t len = sizeof sample_doc - 1;
    unsigned char *buf = malloc(len);
    int iter, n_ok = 0, n_bad = 0, failures = 0;
    const char *env = getenv("NT_JSON_FUZZ_SEED");

    if (env != NULL) seed = strtoull(env, NULL, 0);
    CHECK(buf != NULL);
    if (buf == NULL) return;
    for (iter = 0; iter < 20000; iter++) {
        uint64_t s = seed ^ ((uint64_t)iter * 0xD1B54A32D192ED03ULL);
        size_t n = len, k, n_mut = 1 + rng_next(&s) % 4;
        char err[256];
        nt_json_doc *doc;

        memcpy(buf, sample_doc, len);
        for (k = 0; k < n_mut; k++) {
            size_t at = rng_next(&s) % n;
            switch (rng_next(&s) % 4) {
            case 0: buf[at] ^= (unsigned char)(1u << (rng_next(&s) % 8));
                break;
            case 1: buf[at] = (unsigned char)rng_next(&s);
                break;
            case 2: buf[at] = interesting[rng_next(&s) % sizeof interesting];
                break;
            default:  /* cut the text short */
                n = at + 1;
                break;
            }
        }
        err[0] = '\0';
        doc = parse_exact((const char *)buf, n, err, sizeof err);
        if (doc != NULL) {
            n_ok++;
            if (!walk(nt_json_root(doc), 0)) {
                failures++;
                CHECK_MSG(0, "fuzz seed 0x%llx iteration %d: bad tree",
                          (unsigned long long)seed, iter);
            }
            nt_json_free(doc);
        } else {
            n_bad++;
            if (strncmp(err, "line ", 5) != 0) {
                failures++;
                CHECK_MSG(0, "fuzz seed 0x%llx iteration %d: message \"%s\"",
                          (unsigned long long)seed, iter, err);
            }
        }
        if (failures > 10) break;
    }
    CHECK(n_ok + n_bad == 20000);
    CHECK(n_ok > 0 && n_bad > 0);  /* the mutations do both */
    printf("fuzz (seed 0x%llx, NT_JSON_FUZZ_SEED overrides): %d parsed, "
           "%d rejected\n", (unsigned long long)seed, n_ok, n_bad);
    free(buf);
}

/* Counts calls; checks each element is ["a<index>", "b"]. */
static int count_elements(void *user, const nt_json_element *e, char *msg, size_t n) {
    (void)msg;
    (void)n;
    size_t *count = user;
    if (e->value != NULL) {
        char want[32];
        snprintf(want, sizeof want, "a%zu", e->index);
        CHECK(e->index == *count && str_is(nt_json_at(e->value, 0), want, strlen(want)) &&
              str_is(nt_json_at(e->value, 1), "b", 1));
    }
    ++*count;
    return 1;
}

/* ---- streaming ------------------------------------------------------------ */

typedef struct stream_log {
    char text[1024];
    size_t len;
    int stop_at;  /* index at which to stop the parse, or -1 */
} stream_log;

/* Logs "name:index key=kind;" per element and "name:end index;" per end. */
static int log_element(stream_log *log, const char *name, const nt_json_element *e,
                       char *msg, size_t msg_size) {
    if (e->value == NULL)
        log->len += (size_t)snprintf(log->text + log->len, sizeof log->text - log->len,
                                     "%s:end %zu;", name, e->index);
    else
        log->len += (size_t)snprintf(log->text + log->len, sizeof log->text - log->len,
                                     "%s:%zu %.*s=%s;", name, e->index, (int)e->key_len,
                                     e->key ? e->key : "", nt_json_kind_name(
                                         nt_json_kind_of(e->value)));
    if (e->value != NULL && (int)e->index == log->stop_at) {
        snprintf(msg, msg_size, "element %zu refused", e->index);
        return 0;
    }
    return 1;
}

static int log_vocab(void *user, const nt_json_element *e, char *msg, size_t n) {
    return log_element(user, "v", e, msg, n);
}

static int log_merges(void *user, const nt_json_element *e, char *msg, size_t n) {
    /* the element's strings are readable during the call */
    if (e->value != NULL && nt_json_kind_of(e->value) == NT_JSON_STRING)
        CHECK(str_is(e->value, "p q", 3));
    return log_element(user, "m", e, msg, n);
}

static void test_streaming(void) {
    static const char doc_text[] =
        "{\"a\": 1, \"model\": {\"vocab\": {\"x\": 1, \"y\": [2, {\"z\": 3}]}, "
        "\"merges\": [\"p q\", [\"r\", \"s\"], []], \"other\": {\"vocab\": {\"no\": 0}}}, "
        "\"list\": [{\"vocab\": [1]}], \"b\": [1, 2]}";
    stream_log log = {"", 0, -1};
    nt_json_stream streams[] = {{"model.vocab", log_vocab, &log},
                                {"model.merges", log_merges, &log}};
    char err[256];
    nt_json_doc *doc = nt_json_parse_streaming(doc_text, sizeof doc_text - 1, streams, 2,
                                               err, sizeof err);
    CHECK_MSG(doc != NULL, "%s", err);
    CHECK_MSG(strcmp(log.text, "v:0 x=number;v:1 y=array;v:end 2;"
                               "m:0 =string;m:1 =array;m:2 =array;m:end 3;") == 0,
              "log: %s", log.text);
    const nt_json *root = nt_json_root(doc), *model = nt_json_get(root, "model");
    /* streamed containers stay in the tree, empty; the rest is as usual */
    CHECK(nt_json_kind_of(nt_json_get(model, "vocab")) == NT_JSON_OBJECT);
    CHECK(nt_json_count(nt_json_get(model, "vocab")) == 0);
    CHECK(nt_json_kind_of(nt_json_get(model, "merges")) == NT_JSON_ARRAY);
    CHECK(nt_json_count(nt_json_get(model, "merges")) == 0);
    CHECK(nt_json_count(nt_json_get(nt_json_get(model, "other"), "vocab")) == 1);
    CHECK(int_is(nt_json_get(root, "a"), 1));
    CHECK(nt_json_count(nt_json_get(root, "b")) == 2);
    CHECK(nt_json_count(nt_json_at(nt_json_get(root, "list"), 0)) == 1);
    nt_json_free(doc);

    /* a callback stops the parse: its message, where the element began */
    stream_log stop = {"", 0, 1};
    nt_json_stream stopping[] = {{"model.merges", log_merges, &stop}};
    doc = nt_json_parse_streaming(doc_text, sizeof doc_text - 1, stopping, 1, err, sizeof err);
    CHECK(doc == NULL);
    CHECK_ERR_CONTAINS(err, "line 1, column 77: element 1 refused");
    CHECK_MSG(strcmp(stop.text, "m:0 =string;m:1 =array;") == 0, "log: %s", stop.text);

    /* an empty streamed container still ends; a path through an array or
     * a scalar never matches */
    static const char empty[] = "{\"model\": {\"vocab\": {}, \"merges\": 5}}";
    stream_log e = {"", 0, -1};
    nt_json_stream es[] = {{"model.vocab", log_vocab, &e}, {"model.merges", log_merges, &e},
                           {"list.vocab", log_vocab, &e}};
    doc = nt_json_parse_streaming(empty, sizeof empty - 1, es, 3, err, sizeof err);
    CHECK(doc != NULL);
    CHECK_MSG(strcmp(e.text, "v:end 0;") == 0, "log: %s", e.text);
    nt_json_free(doc);

    /* every truncation fails cleanly, with any element seen before the cut */
    for (size_t n = 0; n + 1 < sizeof doc_text - 1; n++) {
        stream_log t = {"", 0, -1};
        nt_json_stream ts[] = {{"model.vocab", log_vocab, &t},
                               {"model.merges", log_merges, &t}};
        doc = nt_json_parse_streaming(doc_text, n, ts, 2, err, sizeof err);
        CHECK_MSG(doc == NULL && strncmp(err, "line ", 5) == 0, "prefix %zu: %s", n, err);
        nt_json_free(doc);
    }

    /* many elements: each is handed over, the tree stays small */
    size_t big_n = 200000, big_len = 0;
    char *big = malloc(big_n * 24 + 64); /* an element is at most 20 bytes */
    big_len += (size_t)sprintf(big, "{\"model\": {\"merges\": [");
    for (size_t i = 0; i < big_n; i++)
        big_len += (size_t)sprintf(big + big_len, "%s[\"a%zu\", \"b\"]", i ? ", " : "", i);
    big_len += (size_t)sprintf(big + big_len, "]}}");
    size_t count = 0;
    nt_json_stream bs[] = {{"model.merges", count_elements, &count}};
    doc = nt_json_parse_streaming(big, big_len, bs, 1, err, sizeof err);
    CHECK_MSG(doc != NULL, "%s", err);
    CHECK_MSG(count == big_n + 1, "%zu calls for %zu elements", count, big_n);
    nt_json_free(doc);
    free(big);

    /* too many streams */
    nt_json_stream many[NT_JSON_MAX_STREAMS + 1];
    for (int i = 0; i <= NT_JSON_MAX_STREAMS; i++)
        many[i] = (nt_json_stream){"x", log_vocab, &log};
    CHECK(nt_json_parse_streaming("{}", 2, many, NT_JSON_MAX_STREAMS + 1, err,
                                  sizeof err) == NULL);
    CHECK_ERR_CONTAINS(err, "more than 32 streams");
}

int main(void) {
    test_kinds();
    test_top_level_scalars();
    test_nesting();
    test_escapes();
    test_numbers();
    test_locale();
    test_duplicates_and_order();
    test_large();
    test_malformed();
    test_messages();
    test_error_buffer();
    test_sample();
    test_truncations();
    test_depth();
    test_null_accessors();
    test_fuzz();
    test_streaming();
    return check_summary();
}
