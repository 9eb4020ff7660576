/*
 * threadpool.h - a fixed set of worker threads that run one task at a time.
 *
 * The forward pass is a sequence of steps (a matrix product, the attention,
 * a norm), each split across all threads and finished before the next
 * begins. nt_pool_run() runs fn(arg, i, n) for every i < n, the calling
 * thread taking i = 0, and returns when all are done. Workers spin briefly
 * between steps (a step of decoding is tens of microseconds) and then sleep.
 */
#ifndef NT_THREADPOOL_H
#define NT_THREADPOOL_H

#include "internal.h"

typedef struct nt_pool nt_pool;
typedef void (*nt_pool_fn)(void *arg, int ith, int nth);

nt_pool *nt_pool_new(int n_threads, nt_error *err);
void nt_pool_free(nt_pool *pool);
int nt_pool_size(const nt_pool *pool);
void nt_pool_run(nt_pool *pool, nt_pool_fn fn, void *arg);

/* Splits [0, n) into nth nearly equal parts, in units of `grain`. */
static inline void nt_split_range(int64_t n, int64_t grain, int ith, int nth,
                                  int64_t *begin, int64_t *end) {
    int64_t units = (n + grain - 1) / grain;
    int64_t b = units * ith / nth, e = units * (ith + 1) / nth;
    *begin = b * grain < n ? b * grain : n;
    *end = e * grain < n ? e * grain : n;
}

#endif
