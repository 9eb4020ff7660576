/*
 * csv.h - reading CSV files as RFC 4180 writes them (and as pandas'
 * to_csv does): fields separated by commas, records by LF or CRLF, a field
 * in double quotes may hold commas, line breaks and doubled quotes ("").
 *
 * Beyond the RFC, as pandas reads: a lone CR also ends a record, empty
 * lines are skipped, a UTF-8 byte order mark at the start is ignored, and a
 * quote inside an unquoted field is an ordinary character. Refused, with
 * the line: a quoted field that never ends, text after a closing quote
 * (`"a"b,`), NUL bytes.
 */
#ifndef NT_CLI_CSV_H
#define NT_CLI_CSV_H

#include <stddef.h>

typedef struct csv_table {
    char *buf;        /* the text, fields unescaped in place, NUL-terminated */
    char **fields;    /* every field, record after record */
    size_t *first;    /* [n_records + 1]: index in fields of each record's
                         first field; the last entry is the number of fields */
    int *line;        /* [n_records]: the line each record starts on, from 1 */
    size_t n_records;
} csv_table;

/* Fields of record r, and how many. */
static inline size_t csv_n_fields(const csv_table *t, size_t r) {
    return t->first[r + 1] - t->first[r];
}
static inline char *const *csv_record(const csv_table *t, size_t r) {
    return t->fields + t->first[r];
}

/*
 * Parses len bytes of text (copied). On failure returns 0 and writes
 * "NAME:LINE: what" to err; `name` is what messages call the text.
 */
int csv_parse(const char *name, const char *text, size_t len, csv_table *out,
              char *err, size_t err_size);

/* Reads and parses a file; messages name it by its path. */
int csv_read_file(const char *path, csv_table *out, char *err, size_t err_size);

void csv_free(csv_table *t);

#endif
