/*
 * internal.h - helpers every part of the library uses.
 *
 * Nothing here is visible to users of nemotron.h. The error helpers exist so
 * that every failure path reads the same way:
 *
 *     if (bad)
 *         return nt_fail(err, NT_ERR_FORMAT, "%s: tensor %s: ...", path, name);
 */
#ifndef NT_INTERNAL_H
#define NT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nemotron.h"

/* Weight files are little-endian and read in place. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libnemotron reads little-endian files in place: big-endian hosts are not supported"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NT_PRINTF(fmt_index, first_arg) \
    __attribute__((format(printf, fmt_index, first_arg)))
#else
#define NT_PRINTF(fmt_index, first_arg)
#endif

/* A hint to start loading the cache line at addr; loops over big hash
 * tables use it to overlap the misses of several lookups. */
#if defined(__GNUC__) || defined(__clang__)
#define NT_PREFETCH(addr) __builtin_prefetch(addr)
#else
#define NT_PREFETCH(addr) ((void)0)
#endif

/* Fills `err` (when not NULL) and returns `status`. */
nt_status nt_fail(nt_error *err, nt_status status, const char *fmt, ...)
    NT_PRINTF(3, 4);

/* Clears `err` to NT_OK with an empty message. */
void nt_error_clear(nt_error *err);

/*
 * Prefixes the message already in `err` (if any) with more context:
 * "loading /x/model.safetensors: " + message.
 */
void nt_error_prefix(nt_error *err, const char *fmt, ...) NT_PRINTF(2, 3);

/* 64-byte aligned allocation (cache line, and any SIMD width we use). */
void *nt_alloc_aligned(size_t size);
void nt_free_aligned(void *p);

/* a * b, or SIZE_MAX-like failure: returns 0 and leaves *out alone on overflow. */
static inline int nt_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

static inline int nt_min_int(int a, int b) { return a < b ? a : b; }
static inline int nt_max_int(int a, int b) { return a > b ? a : b; }

/* Monotonic clock in seconds. */
double nt_time_seconds(void);

/*
 * The whole file at path, NUL-terminated, its length in *len; NULL with
 * err set when it cannot be opened or read, or is longer than max bytes.
 */
char *nt_read_file(const char *path, size_t max, size_t *len, nt_error *err);

/* ---- a growing byte buffer ------------------------------------------------ */

typedef struct nt_buf {
    char *s;
    size_t n, cap;
} nt_buf;

static inline int nt_buf_reserve(nt_buf *b, size_t extra) {
    if (extra > (SIZE_MAX >> 2) || b->n > (SIZE_MAX >> 2))
        return 0; /* no buffer gets near this; it also bounds the sums below */
    if (b->n + extra + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p)
        return 0;
    b->s = p;
    b->cap = cap;
    return 1;
}

static inline int nt_buf_add(nt_buf *b, const char *s, size_t n) {
    if (!nt_buf_reserve(b, n))
        return 0;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 1;
}

/* An nt_buf for writers that check for failure once, at the end: an
 * append that cannot grow the buffer is remembered in `failed`. */
typedef struct nt_writer {
    nt_buf buf;
    int failed;
} nt_writer;

static inline void nt_write(nt_writer *w, const char *s, size_t n) {
    if (!w->failed && !nt_buf_add(&w->buf, s, n))
        w->failed = 1;
}

static inline void nt_buf_free(nt_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

#endif
