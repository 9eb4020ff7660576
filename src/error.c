/*
 * error.c - filling nt_error, and the few small utilities with no better home.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

const char *nt_status_string(nt_status status) {
    switch (status) {
    case NT_OK: return "ok";
    case NT_ERR_ARGUMENT: return "invalid argument";
    case NT_ERR_IO: return "i/o error";
    case NT_ERR_FORMAT: return "malformed input";
    case NT_ERR_UNSUPPORTED: return "unsupported";
    case NT_ERR_NO_MEMORY: return "out of memory";
    case NT_ERR_CONTEXT_FULL: return "context full";
    }
    return "unknown status";
}

nt_status nt_fail(nt_error *err, nt_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

void nt_error_clear(nt_error *err) {
    if (err) {
        err->status = NT_OK;
        err->message[0] = '\0';
    }
}

void nt_error_prefix(nt_error *err, const char *fmt, ...) {
    if (!err)
        return;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the message right to make room, then copy the prefix in. */
    size_t plen = strlen(prefix), mlen = strlen(err->message);
    if (plen >= sizeof err->message)
        plen = sizeof err->message - 1;
    if (plen + mlen >= sizeof err->message)
        mlen = sizeof err->message - 1 - plen;
    memmove(err->message + plen, err->message, mlen);
    memcpy(err->message, prefix, plen);
    err->message[plen + mlen] = '\0';
}

void *nt_alloc_aligned(size_t size) {
    void *p = NULL;
    if (size == 0)
        size = 64;
    /* Round up: aligned_alloc wants a multiple of the alignment. */
    size = (size + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, size) != 0)
        return NULL;
    return p;
}

void nt_free_aligned(void *p) { free(p); }

double nt_time_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
