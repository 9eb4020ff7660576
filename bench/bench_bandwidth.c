/*
 * bench_bandwidth.c - how fast this machine reads memory, the ceiling of
 * decoding speed (every weight is read once per token).
 *
 * usage: bench_bandwidth [threads] [MiB] [repetitions]
 * Each thread sums its own contiguous part of one buffer (as the decode
 * matvec splits weight rows); the buffer is far larger than the caches.
 * Prints the median and the range of the repetitions in GB/s (1e9 bytes).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct part {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} part;

static void *read_part(void *arg) {
    part *t = arg;
    /* four independent chains so the adds never wait on each other */
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= t->n; i += 4) {
        s0 += t->p[i];
        s1 += t->p[i + 1];
        s2 += t->p[i + 2];
        s3 += t->p[i + 3];
    }
    t->sum = s0 + s1 + s2 + s3;
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 2048;
    int reps = argc > 3 ? atoi(argv[3]) : 7;
    if (threads < 1 || threads > 256 || mib < 64 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: bench_bandwidth [threads 1..256] [MiB >= 64] [reps 1..100]\n");
        return 2;
    }
    size_t n = mib * 1024 * 1024 / sizeof(uint64_t);
    uint64_t *buf = malloc(n * sizeof *buf);
    if (!buf) {
        fprintf(stderr, "bench_bandwidth: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = i;
    double gbs[100];
    uint64_t check = 0;
    for (int r = 0; r < reps; r++) {
        pthread_t tid[256];
        part parts[256];
        double t0 = now();
        for (int t = 0; t < threads; t++) {
            size_t lo = n / (size_t)threads * (size_t)t;
            size_t hi = t == threads - 1 ? n : n / (size_t)threads * (size_t)(t + 1);
            parts[t] = (part){buf + lo, hi - lo, 0};
            pthread_create(&tid[t], NULL, read_part, &parts[t]);
        }
        for (int t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            check += parts[t].sum;
        }
        gbs[r] = (double)(n * sizeof *buf) / (now() - t0) / 1e9;
    }
    qsort(gbs, (size_t)reps, sizeof gbs[0], cmp_double);
    printf("read bandwidth, %d threads, %zu MiB: median %.1f GB/s (%.1f..%.1f) [%llu]\n",
           threads, mib, gbs[reps / 2], gbs[0], gbs[reps - 1],
           (unsigned long long)(check & 1));
    free(buf);
    return 0;
}
