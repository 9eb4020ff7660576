/*
 * sampler.c - choosing the next token from logits.
 *
 * Order of operations, as in HF's generate(): temperature scales the
 * logits, top-k keeps the k largest, top-p keeps the smallest prefix of the
 * remaining tokens (sorted by probability) whose probabilities sum to at
 * least p, and one token is drawn from what is left, renormalized.
 *
 * Candidates are ordered by logit, then by id, so that equal logits never
 * make the choice depend on sort stability. Sorting all 256k logits for
 * every token would cost milliseconds, so top-p first selects a prefix of
 * candidates (quickselect) and widens it only while it is too short.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rng.h"

typedef struct candidate {
    float logit;
    int32_t id;
} candidate;

struct nt_sampler {
    nt_sampler_params params;
    uint64_t rng[4];      /* xoshiro256** state */
    candidate *cand;
    int cand_capacity;
};

nt_sampler_params nt_sampler_default_params(void) {
    nt_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    return p;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

nt_sampler *nt_sampler_new(const nt_sampler_params *params, nt_error *err) {
    nt_sampler_params p = params ? *params : nt_sampler_default_params();
    nt_error_clear(err);
    if (isnan(p.temperature) || isnan(p.top_p) || p.top_p <= 0.0f) {
        nt_fail(err, NT_ERR_ARGUMENT,
                "sampler: temperature must be a number and top_p in (0, 1]");
        return NULL;
    }
    nt_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory creating a sampler");
        return NULL;
    }
    s->params = p;
    uint64_t seed = p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = nt_splitmix64(&seed);
    return s;
}

void nt_sampler_free(nt_sampler *s) {
    if (s) {
        free(s->cand);
        free(s);
    }
}

/* a before b: larger logit first, then smaller id. */
static int before(const candidate *a, const candidate *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int compare_candidates(const void *x, const void *y) {
    const candidate *a = x, *b = y;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Rearranges c[0..n) so that its first k are the k best (unordered). */
static void select_best(candidate *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        candidate pivot = c[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (before(&c[i], &pivot)) i++;
            while (before(&pivot, &c[j])) j--;
            if (i <= j) {
                candidate t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

static int32_t argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

int32_t nt_sampler_sample(nt_sampler *s, const float *logits, int n_vocab) {
    if (!s || !logits || n_vocab < 1)
        return -1;
    const nt_sampler_params *p = &s->params;
    if (p->temperature <= 0.0f || p->top_k == 1)
        return argmax(logits, n_vocab);

    if (s->cand_capacity < n_vocab) {
        candidate *c = realloc(s->cand, (size_t)n_vocab * sizeof *c);
        if (!c)
            return argmax(logits, n_vocab); /* degrade, never crash */
        s->cand = c;
        s->cand_capacity = n_vocab;
    }
    candidate *c = s->cand;
    for (int i = 0; i < n_vocab; i++)
        c[i] = (candidate){logits[i] / p->temperature, i};

    int n = n_vocab;
    if (p->top_k > 0 && p->top_k < n) {
        select_best(c, n, p->top_k);
        n = p->top_k;
    }
    float max = c[0].logit;
    for (int i = 1; i < n; i++)
        if (c[i].logit > max)
            max = c[i].logit;
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += exp((double)c[i].logit - max);

    /* Without top-p the candidates are drawn from in array order, which is
     * deterministic; with it, the prefix it keeps, sorted best first. */
    int kept = n;
    if (p->top_p < 1.0f) {
        int width = n < 256 ? n : 256;
        for (;;) {
            if (width < n)
                select_best(c, n, width);
            qsort(c, (size_t)width, sizeof *c, compare_candidates);
            double cum = 0.0;
            int i = 0;
            while (i < width && cum < p->top_p * total)
                cum += exp((double)c[i++].logit - max);
            if (cum >= p->top_p * total || width == n) {
                kept = i > 0 ? i : 1;
                break;
            }
            width = width * 4 < n ? width * 4 : n;
        }
    }

    double mass = 0.0;
    for (int i = 0; i < kept; i++)
        mass += exp((double)c[i].logit - max);
    double u = nt_unit_from_u64(next_u64(s->rng)) * mass, cum = 0.0;
    for (int i = 0; i < kept; i++) {
        cum += exp((double)c[i].logit - max);
        if (u < cum)
            return c[i].id;
    }
    return c[kept - 1].id;
}
