/*
 * file.c - reading a whole file into memory.
 *
 * config.json, the shard index, tokenizer.model and tokenizer_config.json
 * are read whole. Growing chunks rather than the file's size, so that
 * pipes and /proc files work too; a limit, so that a wrong path (a weight
 * file, /dev/zero) is refused instead of filling memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char *nt_read_file(const char *path, size_t max, size_t *len, nt_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        nt_fail(err, NT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                nt_fail(err, NT_ERR_FORMAT, "%s: larger than %zu bytes", path, max);
                break;
            }
            /* one byte past max tells a file of exactly max from a longer one */
            size_t grown = cap ? cap * 2 : (size_t)1 << 16;
            if (grown > max + 1)
                grown = max + 1;
            char *bigger = realloc(buf, grown + 1);
            if (!bigger) {
                nt_fail(err, NT_ERR_NO_MEMORY, "%s: out of memory reading it", path);
                break;
            }
            buf = bigger;
            cap = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp)) {
                nt_fail(err, NT_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
                break;
            }
            fclose(fp);
            buf[n] = '\0';
            *len = n;
            return buf;
        }
    }
    fclose(fp);
    free(buf);
    return NULL;
}
