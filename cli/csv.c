/*
 * csv.c - see csv.h.
 *
 * The text is copied once and unescaped in place: a field never grows
 * (quotes and doubled quotes only shrink it), so the write position stays
 * at or behind the read position, and each field's end gets its NUL where
 * its separator was read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

typedef struct growing {
    void *data;
    size_t n, cap, elem;
} growing;

static int grow_push(growing *g, const void *item) {
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        void *p = realloc(g->data, cap * g->elem);
        if (!p)
            return 0;
        g->data = p;
        g->cap = cap;
    }
    memcpy((char *)g->data + g->n * g->elem, item, g->elem);
    g->n++;
    return 1;
}

static void fail(char *err, size_t err_size, const char *name, int line,
                 const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static void fail(char *err, size_t err_size, const char *name, int line,
                 const char *fmt, ...) {
    if (!err || !err_size)
        return;
    int n = line > 0 ? snprintf(err, err_size, "%s:%d: ", name, line)
                     : snprintf(err, err_size, "%s: ", name);
    if (n < 0 || (size_t)n >= err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, err_size - (size_t)n, fmt, ap);
    va_end(ap);
}

void csv_free(csv_table *t) {
    if (!t)
        return;
    free(t->buf);
    free(t->fields);
    free(t->first);
    free(t->line);
    memset(t, 0, sizeof *t);
}

int csv_parse(const char *name, const char *text, size_t len, csv_table *out,
              char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    growing fields = {NULL, 0, 0, sizeof(char *)};
    growing first = {NULL, 0, 0, sizeof(size_t)};
    growing lines = {NULL, 0, 0, sizeof(int)};
    char *buf = malloc(len + 1);
    if (!buf || len == SIZE_MAX) {
        free(buf);
        fail(err, err_size, name, 0, "out of memory");
        return 0;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';

    size_t r = 0, w = 0;
    int line = 1;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        r = 3;
    while (r < len) {
        /* empty lines are no records */
        if (buf[r] == '\n' || buf[r] == '\r') {
            r += buf[r] == '\r' && r + 1 < len && buf[r + 1] == '\n' ? 2 : 1;
            line++;
            continue;
        }
        size_t n_before = fields.n;
        if (!grow_push(&first, &n_before) || !grow_push(&lines, &line))
            goto oom;
        for (;;) { /* the fields of one record */
            char *field = buf + w;
            if (!grow_push(&fields, &field))
                goto oom;
            if (r < len && buf[r] == '"') {
                int opened = line;
                r++;
                for (;;) {
                    if (r >= len) {
                        fail(err, err_size, name, opened,
                             "a quoted field opened on this line never ends "
                             "(unterminated quote)");
                        goto bad;
                    }
                    char c = buf[r];
                    if (c == '"') {
                        if (r + 1 < len && buf[r + 1] == '"') {
                            buf[w++] = '"';
                            r += 2;
                            continue;
                        }
                        r++;
                        break;
                    }
                    if (c == '\0') {
                        fail(err, err_size, name, line, "a NUL byte");
                        goto bad;
                    }
                    if (c == '\n' || (c == '\r' && !(r + 1 < len && buf[r + 1] == '\n')))
                        line++;
                    buf[w++] = c;
                    r++;
                }
                if (r < len && buf[r] != ',' && buf[r] != '\n' && buf[r] != '\r') {
                    fail(err, err_size, name, line,
                         "text after the closing quote of a field (a quote inside a "
                         "quoted field is written \"\")");
                    goto bad;
                }
            } else {
                while (r < len && buf[r] != ',' && buf[r] != '\n' && buf[r] != '\r') {
                    if (buf[r] == '\0') {
                        fail(err, err_size, name, line, "a NUL byte");
                        goto bad;
                    }
                    buf[w++] = buf[r++];
                }
            }
            /* read the separator before its place may take the NUL */
            char sep = r < len ? buf[r] : '\0';
            buf[w++] = '\0';
            if (sep == ',') {
                r++;
                continue;
            }
            if (sep == '\r' || sep == '\n') {
                r += sep == '\r' && r + 1 < len && buf[r + 1] == '\n' ? 2 : 1;
                line++;
            }
            break;
        }
    }
    size_t n_fields = fields.n;
    if (!grow_push(&first, &n_fields))
        goto oom;
    out->buf = buf;
    out->fields = fields.data;
    out->first = first.data;
    out->line = lines.data;
    out->n_records = lines.n;
    return 1;
oom:
    fail(err, err_size, name, 0, "out of memory");
bad:
    free(buf);
    free(fields.data);
    free(first.data);
    free(lines.data);
    return 0;
}

int csv_read_file(const char *path, csv_table *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fail(err, err_size, path, 0, "cannot open: %s", strerror(errno));
        return 0;
    }
    size_t n = 0, cap = 1 << 16;
    char *text = malloc(cap);
    while (text) {
        n += fread(text + n, 1, cap - n, fp);
        if (n < cap)
            break;
        char *p = realloc(text, cap *= 2);
        if (!p) {
            free(text);
            text = NULL;
        } else {
            text = p;
        }
    }
    int read_error = ferror(fp);
    fclose(fp);
    if (!text) {
        fail(err, err_size, path, 0, "out of memory");
        return 0;
    }
    if (read_error) {
        free(text);
        fail(err, err_size, path, 0, "read error");
        return 0;
    }
    int ok = csv_parse(path, text, n, out, err, err_size);
    free(text);
    return ok;
}
