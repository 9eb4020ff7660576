/*
 * test_csv.c - the CSV reader of `nemotron eval` (cli/csv.c): RFC 4180
 * quoting, line endings, line numbers, and each malformed input refused
 * with its line. Texts are parsed from copies of exactly their length, so
 * a sanitizer build catches a read past the end; every truncation of the
 * valid texts must parse or fail cleanly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "csv.h"

/* CHECK_STR_CONTAINS on a char array (not a pointer) trips -Waddress. */
#define CHECK_ERR_CONTAINS(err, needle)   \
    do {                                  \
        const char *err_ = (err);         \
        CHECK_STR_CONTAINS(err_, needle); \
    } while (0)

static int parse(const char *text, size_t len, csv_table *t, char *err, size_t err_size) {
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    memcpy(copy, text, len);
    int ok = csv_parse("t.csv", copy, len, t, err, err_size);
    free(copy); /* the table must not point into the text */
    return ok;
}

/*
 * `want` lists the records: fields separated by '|', records by '#', each
 * record preceded by its line number and ':' ("1:a|b#3:c|d").
 */
static void check_table(const char *name, const char *text, size_t len, const char *want) {
    csv_table t;
    char err[256] = "";
    if (!parse(text, len, &t, err, sizeof err)) {
        CHECK_MSG(0, "%s: refused: %s", name, err);
        return;
    }
    char got[4096];
    size_t n = 0;
    got[0] = '\0';
    for (size_t r = 0; r < t.n_records; r++) {
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%d:", r ? "#" : "", t.line[r]);
        for (size_t f = 0; f < csv_n_fields(&t, r); f++)
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%s", f ? "|" : "",
                                  csv_record(&t, r)[f]);
    }
    CHECK_MSG(strcmp(got, want) == 0, "%s: got [%s], want [%s]", name, got, want);
    csv_free(&t);
}

static void check_refused(const char *name, const char *text, size_t len, const char *msg) {
    csv_table t;
    char err[256] = "";
    int ok = parse(text, len, &t, err, sizeof err);
    CHECK_MSG(!ok, "%s: accepted", name);
    if (ok)
        csv_free(&t);
    else
        CHECK_ERR_CONTAINS(err, msg);
}

#define TABLE(name, text, want) check_table(name, text, sizeof(text) - 1, want)
#define REFUSED(name, text, msg) check_refused(name, text, sizeof(text) - 1, msg)

int main(void) {
    /* plain records, with and without a final newline */
    TABLE("plain", "a,b,c\nd,e,f\n", "1:a|b|c#2:d|e|f");
    TABLE("no final newline", "a,b,c\nd,e,f", "1:a|b|c#2:d|e|f");
    TABLE("empty text", "", "");
    TABLE("one field", "x", "1:x");
    /* empty fields: leading, trailing, between; quoted empty */
    TABLE("empty fields", ",a,,b,\n", "1:|a||b|");
    TABLE("quoted empty", "\"\",\"\"\n", "1:|");
    TABLE("trailing comma at the end", "a,", "1:a|");
    /* quoting: commas, doubled quotes, line breaks inside quotes */
    TABLE("quoted comma", "\"a, b\",c\n", "1:a, b|c");
    TABLE("doubled quotes", "\"He said \"\"hi\"\"\",x\n", "1:He said \"hi\"|x");
    TABLE("only a quote", "\"\"\"\"\n", "1:\"");
    TABLE("newline inside quotes", "\"one\ntwo\",x\nnext,y\n", "1:one\ntwo|x#3:next|y");
    TABLE("CRLF inside quotes kept", "\"one\r\ntwo\",x\r\nnext,y\r\n",
          "1:one\r\ntwo|x#3:next|y");
    /* line endings: CRLF, lone CR, blank lines skipped but counted */
    TABLE("CRLF", "a,b\r\nc,d\r\n", "1:a|b#2:c|d");
    TABLE("lone CR", "a,b\rc,d", "1:a|b#2:c|d");
    TABLE("blank lines", "\n\na,b\n\n\r\nc,d\n\n", "3:a|b#6:c|d");
    /* a byte order mark is not part of the first field */
    TABLE("BOM", "\xEF\xBB\xBF" "a,b\n", "1:a|b");
    /* a quote inside an unquoted field is a character (pandas reads it so) */
    TABLE("quote mid-field", "5\" tall,b\n", "1:5\" tall|b");
    /* UTF-8 passes through */
    TABLE("utf-8", "\"caf\xC3\xA9, na\xC3\xAFve\",\xE2\x88\x9A" "2\n", "1:caf\xC3\xA9, na\xC3\xAFve|\xE2\x88\x9A" "2");
    /* the record's first line, after records spanning lines */
    TABLE("lines after multi-line records", "\"a\n\nb\",\"c\nd\"\nx\n", "1:a\n\nb|c\nd#5:x");

    /* refused, with the line */
    REFUSED("unterminated quote", "a,b\nc,\"d\ne,f\n", "t.csv:2: a quoted field opened on this line never ends");
    REFUSED("unterminated at the end", "a,\"", "t.csv:1: a quoted field");
    REFUSED("text after closing quote", "a,b\n\"c\"d,e\n", "t.csv:2: text after the closing quote");
    REFUSED("text after closing quote, later line", "\"x\ny\"z\n", "t.csv:2: text after the closing quote");
    REFUSED("NUL unquoted", "a,b\nc\0d,e\n", "t.csv:2: a NUL byte");
    REFUSED("NUL quoted", "\"c\0d\",e\n", "t.csv:1: a NUL byte");

    /* every prefix of a text with every construct parses or fails cleanly */
    static const char all[] = "\xEF\xBB\xBF\"q, \"\"x\"\"\ny\",b,,\r\n\r\nc\rd,\"\",e\"f\n";
    for (size_t len = 0; len <= sizeof all - 1; len++) {
        csv_table t;
        char err[256];
        if (parse(all, len, &t, err, sizeof err)) {
            for (size_t r = 0; r < t.n_records; r++)
                CHECK(csv_n_fields(&t, r) >= 1);
            csv_free(&t);
        }
    }
    TABLE("everything", all, "1:q, \"x\"\ny|b||#4:c#5:d||e\"f");

    /* files */
    csv_table t;
    char err[256] = "";
    CHECK(!csv_read_file("/nonexistent/x.csv", &t, err, sizeof err));
    CHECK_ERR_CONTAINS(err, "/nonexistent/x.csv: cannot open");
    return check_summary();
}
