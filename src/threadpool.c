/*
 * threadpool.c - see threadpool.h.
 *
 * One task is published at a time by bumping `generation`. Workers wait for
 * the generation to change, run their share, and count themselves out in
 * `pending`; the caller runs share 0 and waits for `pending` to reach zero.
 * Waiting is a short spin (steps come in quick succession while a model
 * runs), then a condition variable, so idle contexts cost no CPU.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "threadpool.h"

#define SPIN_ROUNDS 20000

struct nt_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* workers: a new generation, or stop */
    pthread_cond_t done;      /* caller: pending reached zero */
    atomic_uint generation;
    atomic_int pending;
    atomic_int stop;
    nt_pool_fn fn;            /* written before generation is bumped */
    void *arg;
};

typedef struct worker_start {
    nt_pool *pool;
    int index;
} worker_start;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *p) {
    worker_start start = *(worker_start *)p;
    free(p);
    nt_pool *pool = start.pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation,
                                           memory_order_acquire)) == seen &&
               !atomic_load(&pool->stop) && spins < SPIN_ROUNDS) {
            cpu_relax();
            spins++;
        }
        if (gen == seen && !atomic_load(&pool->stop)) {
            pthread_mutex_lock(&pool->lock);
            while ((gen = atomic_load(&pool->generation)) == seen &&
                   !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->lock);
            pthread_mutex_unlock(&pool->lock);
        }
        if (atomic_load(&pool->stop))
            return NULL;
        seen = gen;
        pool->fn(pool->arg, start.index, pool->n_threads);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) ==
            1) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
}

nt_pool *nt_pool_new(int n_threads, nt_error *err) {
    if (n_threads < 1 || n_threads > 1024) {
        nt_fail(err, NT_ERR_ARGUMENT, "thread count %d is outside 1..1024",
                n_threads);
        return NULL;
    }
    nt_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory creating a thread pool");
        return NULL;
    }
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    if (!pool->threads) {
        nt_pool_free(pool);
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory creating a thread pool");
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_start *ws = malloc(sizeof *ws);
        int rc = -1;
        if (ws) {
            ws->pool = pool;
            ws->index = i;
            rc = pthread_create(&pool->threads[i], NULL, worker_main, ws);
        }
        if (rc != 0) {
            free(ws);
            pool->n_threads = i; /* join only the ones that started */
            nt_pool_free(pool);
            nt_fail(err, NT_ERR_NO_MEMORY, "could not start thread %d of %d: %s",
                    i, n_threads, rc > 0 ? strerror(rc) : "out of memory");
            return NULL;
        }
    }
    return pool;
}

void nt_pool_free(nt_pool *pool) {
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; pool->threads && i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}

int nt_pool_size(const nt_pool *pool) { return pool->n_threads; }

void nt_pool_run(nt_pool *pool, nt_pool_fn fn, void *arg) {
    if (pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store(&pool->pending, pool->n_threads - 1);
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    fn(arg, 0, pool->n_threads);

    int spins = 0;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0 &&
           spins < SPIN_ROUNDS) {
        cpu_relax();
        spins++;
    }
    if (atomic_load(&pool->pending) > 0) {
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->pending) > 0)
            pthread_cond_wait(&pool->done, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
}
