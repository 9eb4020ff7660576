/*
 * sampler.c - choosing the next token from logits.
 *
 * The steps and their order are documented with nt_sampler_params in
 * nemotron.h: logit bias, penalties, then greedy or temperature, top-k,
 * top-p, min-p and one draw. This is vLLM's order (and HF's for the
 * filters): the filters see the distribution that is actually drawn from.
 *
 * Candidates are ordered by logit, then by id, so that equal logits never
 * make a choice depend on sort stability. Every step is defined on that
 * order: top-k keeps its first k, top-p its shortest prefix that reaches p,
 * and the draw is the inverse of the cumulative distribution scanned most
 * likely first (u in [0, 1) picks the first token whose running sum
 * exceeds u). So the choice is a function of the logits and u alone (up
 * to the last bits of sums of doubles), not of how the code below happens
 * to arrange its arrays.
 *
 * Sorting all 256k logits for every token would cost tens of milliseconds,
 * so nothing is sorted. Each token's weight exp((l - l_max) / T) is
 * computed once, and weights fall into buckets of 1/16 of an octave read
 * off their float bits (a larger weight never lands in a later bucket).
 * The pass that computes the weights also counts and adds them up by
 * bucket; that histogram says in which bucket top-k's count or top-p's
 * mass is reached, so only the tokens up to that bucket become candidates,
 * and only those of that one bucket need ordering: a quickselect (by count
 * for top-k, by mass for top-p and the draw) within it. O(vocabulary) per
 * token, and no data-dependent swapping over the whole vocabulary.
 *
 * Penalties need the history: the prompt (for the repetition penalty) and
 * the reply so far (for all three). Each penalty touches only the tokens
 * in the history, through a per-vocabulary stamp array, so a penalty costs
 * O(history), not O(vocabulary). Arrays as long as the vocabulary are
 * allocated by the first call that needs them: a greedy sampler with no
 * bias and no penalties allocates none.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rng.h"

typedef struct candidate {
    float logit;  /* after bias and penalties, before temperature */
    int32_t id;
    float w;      /* exp((logit - the largest logit) / temperature) */
} candidate;

typedef struct history {
    int32_t *ids;
    int n, cap;
    int32_t max_id;  /* -1 when empty */
} history;

/* bucket_of(): 16 buckets an octave over the 127 octaves of normal floats
 * in (0, 1], 16 more for the subnormal ones, and the last for 0 */
enum { N_BUCKETS = (0x3F800000 >> 19) + 1 };

struct nt_sampler {
    nt_sampler_params params;
    nt_logit_bias *bias;  /* params.logit_bias, copied */
    int32_t max_bias_id;  /* -1 without biases */
    uint64_t rng[4];      /* xoshiro256** state */
    history prompt, reply;

    /* scratch, sized for the largest vocabulary seen; allocated on need */
    candidate *cand;
    int cand_capacity;
    float *weight;        /* every token's weight, before the filters */
    int weight_capacity;
    float *adjusted;      /* logits after bias and penalties */
    int adjusted_capacity;
    uint32_t *stamp;      /* stamp[id] == epoch: seen in this pass */
    int32_t *count;       /* occurrences in the reply, while counting */
    int stamp_capacity;
    uint32_t epoch;
    candidate greedy;     /* the one candidate at temperature <= 0 */
    int bucket_count[N_BUCKETS];
    double bucket_mass[N_BUCKETS];
    int histogram_is_kept; /* the histogram covers exactly the kept ones */
};

nt_sampler_params nt_sampler_default_params(void) {
    nt_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.0f;
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
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

/* Each refusal names the parameter and the value it got. */
static nt_status check_params(const nt_sampler_params *p, nt_error *err) {
#define REFUSE(cond, what, value)                                                      \
    if (cond)                                                                          \
        return nt_fail(err, NT_ERR_ARGUMENT, "sampler: " what " (got %g)", (double)(value))
    /* dividing by an infinite temperature would make -inf logits NaN */
    REFUSE(!isfinite(p->temperature), "temperature must be a finite number", p->temperature);
    REFUSE(!(p->top_p > 0.0f), "top_p must be > 0", p->top_p);
    REFUSE(isnan(p->min_p), "min_p must be a number", p->min_p);
    REFUSE(p->min_p > 1.0f, "min_p must be <= 1", p->min_p);
    REFUSE(!(p->repetition_penalty > 0.0f) || isinf(p->repetition_penalty),
           "repetition_penalty must be > 0 and finite", p->repetition_penalty);
    REFUSE(!isfinite(p->frequency_penalty), "frequency_penalty must be a finite number",
           p->frequency_penalty);
    REFUSE(!isfinite(p->presence_penalty), "presence_penalty must be a finite number",
           p->presence_penalty);
#undef REFUSE
    if (p->penalty_last_n < 0)
        return nt_fail(err, NT_ERR_ARGUMENT, "sampler: penalty_last_n must be >= 0 (got %d)",
                       p->penalty_last_n);
    if (p->n_logit_bias < 0)
        return nt_fail(err, NT_ERR_ARGUMENT, "sampler: n_logit_bias must be >= 0 (got %d)",
                       p->n_logit_bias);
    if (p->n_logit_bias > 0 && !p->logit_bias)
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "sampler: logit_bias is NULL, with n_logit_bias %d", p->n_logit_bias);
    for (int i = 0; i < p->n_logit_bias; i++) {
        if (p->logit_bias[i].id < 0)
            return nt_fail(err, NT_ERR_ARGUMENT,
                           "sampler: logit_bias[%d].id must be >= 0 (got %d)", i,
                           (int)p->logit_bias[i].id);
        if (!isfinite(p->logit_bias[i].bias))
            return nt_fail(err, NT_ERR_ARGUMENT,
                           "sampler: logit_bias[%d].bias (token %d) must be a finite number "
                           "(got %g)",
                           i, (int)p->logit_bias[i].id, (double)p->logit_bias[i].bias);
    }
    return NT_OK;
}

nt_sampler *nt_sampler_new(const nt_sampler_params *params, nt_error *err) {
    nt_sampler_params p = params ? *params : nt_sampler_default_params();
    nt_error_clear(err);
    if (check_params(&p, err) != NT_OK)
        return NULL;
    nt_sampler *s = calloc(1, sizeof *s);
    if (s && p.n_logit_bias > 0) {
        s->bias = malloc((size_t)p.n_logit_bias * sizeof *s->bias);
        if (s->bias)
            memcpy(s->bias, p.logit_bias, (size_t)p.n_logit_bias * sizeof *s->bias);
    }
    if (!s || (p.n_logit_bias > 0 && !s->bias)) {
        nt_sampler_free(s);
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory creating a sampler");
        return NULL;
    }
    p.logit_bias = s->bias;
    s->params = p;
    s->max_bias_id = -1;
    for (int i = 0; i < p.n_logit_bias; i++)
        if (s->bias[i].id > s->max_bias_id)
            s->max_bias_id = s->bias[i].id;
    s->prompt.max_id = s->reply.max_id = -1;
    uint64_t seed = p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = nt_splitmix64(&seed);
    return s;
}

void nt_sampler_free(nt_sampler *s) {
    if (!s)
        return;
    free(s->bias);
    free(s->prompt.ids);
    free(s->reply.ids);
    free(s->cand);
    free(s->weight);
    free(s->adjusted);
    free(s->stamp);
    free(s->count);
    free(s);
}

/* ---- history ---------------------------------------------------------------- */

static int history_push(history *h, const int32_t *ids, int n) {
    if (n > h->cap - h->n) {
        int cap = h->cap ? h->cap : 256;
        while (cap - h->n < n) {
            if (cap > INT32_MAX / 2)
                return 0;
            cap *= 2;
        }
        int32_t *p = realloc(h->ids, (size_t)cap * sizeof *p);
        if (!p)
            return 0;
        h->ids = p;
        h->cap = cap;
    }
    for (int i = 0; i < n; i++) {
        h->ids[h->n++] = ids[i];
        if (ids[i] > h->max_id)
            h->max_id = ids[i];
    }
    return 1;
}

static nt_status check_ids(const char *fn, const int32_t *ids, int n, nt_error *err) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0)
            return nt_fail(err, NT_ERR_ARGUMENT, "%s: token %d (at %d) is negative", fn,
                           (int)ids[i], i);
    return NT_OK;
}

nt_status nt_sampler_set_prompt(nt_sampler *s, const int32_t *tokens, int n_tokens,
                                nt_error *err) {
    nt_error_clear(err);
    if (!s || n_tokens < 0 || (n_tokens > 0 && !tokens))
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "nt_sampler_set_prompt: needs a sampler, n_tokens >= 0 (got %d) and "
                       "tokens when n_tokens > 0",
                       n_tokens);
    nt_status st = check_ids("nt_sampler_set_prompt", tokens, n_tokens, err);
    if (st != NT_OK)
        return st;
    s->prompt.n = s->reply.n = 0;
    s->prompt.max_id = s->reply.max_id = -1;
    if (!history_push(&s->prompt, tokens, n_tokens))
        return nt_fail(err, NT_ERR_NO_MEMORY,
                       "nt_sampler_set_prompt: out of memory for %d tokens", n_tokens);
    return NT_OK;
}

nt_status nt_sampler_accept(nt_sampler *s, int32_t token, nt_error *err) {
    nt_error_clear(err);
    if (!s)
        return nt_fail(err, NT_ERR_ARGUMENT, "nt_sampler_accept: no sampler");
    nt_status st = check_ids("nt_sampler_accept", &token, 1, err);
    if (st != NT_OK)
        return st;
    if (!history_push(&s->reply, &token, 1))
        return nt_fail(err, NT_ERR_NO_MEMORY,
                       "nt_sampler_accept: out of memory after %d tokens", s->reply.n);
    return NT_OK;
}

/* ---- scratch ------------------------------------------------------------------ */

/* p, grown to hold n elements of `size` bytes; NULL when out of memory
 * (p is still valid then, and *capacity unchanged). */
static void *reserve(void *p, int *capacity, int n, size_t size) {
    if (*capacity >= n)
        return p;
    void *q = realloc(p, (size_t)n * size);
    if (q)
        *capacity = n;
    return q;
}

static int reserve_stamps(nt_sampler *s, int n_vocab) {
    if (s->stamp_capacity >= n_vocab)
        return 1;
    /* fresh stamps: old ones could equal a later epoch */
    uint32_t *stamp = calloc((size_t)n_vocab, sizeof *stamp);
    int32_t *count = stamp ? realloc(s->count, (size_t)n_vocab * sizeof *count) : NULL;
    if (!count) {
        free(stamp);
        return 0;
    }
    free(s->stamp);
    s->stamp = stamp;
    s->count = count;
    s->stamp_capacity = n_vocab;
    s->epoch = 0;
    return 1;
}

static uint32_t next_epoch(nt_sampler *s) {
    if (++s->epoch == 0) {  /* wrapped: old stamps could match again */
        memset(s->stamp, 0, (size_t)s->stamp_capacity * sizeof *s->stamp);
        s->epoch = 1;
    }
    return s->epoch;
}

/* ---- steps 1 and 2: bias and penalties ------------------------------------------ */

/* The logits after bias and penalties: `logits` itself when neither
 * applies. NULL when a bias or the history names an id outside the
 * vocabulary, or when out of memory. */
static const float *adjust(nt_sampler *s, const float *logits, int n_vocab) {
    const nt_sampler_params *p = &s->params;
    if (s->max_bias_id >= n_vocab || s->prompt.max_id >= n_vocab ||
        s->reply.max_id >= n_vocab)
        return NULL;
    int repetition = p->repetition_penalty != 1.0f;
    int reply_penalties = p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;
    if (p->n_logit_bias == 0 && !repetition && !reply_penalties)
        return logits;
    float *a = reserve(s->adjusted, &s->adjusted_capacity, n_vocab, sizeof *a);
    if (!a)
        return NULL;
    s->adjusted = a;
    if ((repetition || reply_penalties) && !reserve_stamps(s, n_vocab))
        return NULL;
    memcpy(a, logits, (size_t)n_vocab * sizeof *a);
    for (int i = 0; i < p->n_logit_bias; i++)
        a[s->bias[i].id] += s->bias[i].bias;  /* repeated ids add up */

    if (repetition) {
        /* the last penalty_last_n of prompt ++ reply, each token once */
        uint32_t epoch = next_epoch(s);
        int total = s->prompt.n + s->reply.n;
        int from = p->penalty_last_n > 0 && p->penalty_last_n < total
                       ? total - p->penalty_last_n : 0;
        float r = p->repetition_penalty;
        for (int i = from; i < total; i++) {
            int32_t id = i < s->prompt.n ? s->prompt.ids[i] : s->reply.ids[i - s->prompt.n];
            if (s->stamp[id] == epoch)
                continue;
            s->stamp[id] = epoch;
            a[id] = a[id] > 0.0f ? a[id] / r : a[id] * r;
        }
    }
    if (reply_penalties) {
        /* count the reply's tokens, then penalize each distinct one once */
        uint32_t epoch = next_epoch(s);
        for (int i = 0; i < s->reply.n; i++) {
            int32_t id = s->reply.ids[i];
            if (s->stamp[id] != epoch) {
                s->stamp[id] = epoch;
                s->count[id] = 0;
            }
            s->count[id]++;
        }
        for (int i = 0; i < s->reply.n; i++) {
            int32_t id = s->reply.ids[i];
            if (s->count[id] > 0) {
                a[id] -= (float)s->count[id] * p->frequency_penalty + p->presence_penalty;
                s->count[id] = 0;
            }
        }
    }
    return a;
}

/* ---- candidates ----------------------------------------------------------------- */

/* a before b: larger logit first, then smaller id. */
static int before(const candidate *a, const candidate *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int compare_candidates(const void *x, const void *y) {
    const candidate *a = x, *b = y;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/*
 * The bucket of a weight w in [0, 1]: 0 for w = 1, one more every 1/16 of
 * an octave below, N_BUCKETS - 1 for 0. The float bits of a non-negative
 * number grow with it, so a larger weight (a larger logit) never has a
 * later bucket, and buckets respect the candidates' order.
 */
static int bucket_of(float w) {
    union { float f; uint32_t bits; } v = {w};  /* C11 reads the bits so */
    return (int)((0x3F800000u - v.bits) >> 19);
}

/*
 * Moves the candidates of buckets < b to the front of c[0..n), those of
 * bucket b after them, and drops the rest; returns how many are left, and
 * in *n_better how many come before bucket b.
 */
static int gather_buckets(candidate *c, int n, int b, int *n_better) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        c[m] = c[i];
        m += bucket_of(c[i].w) <= b;
    }
    int k = 0;
    for (int i = 0; i < m; i++) {
        if (bucket_of(c[i].w) < b) {
            candidate t = c[i];
            c[i] = c[k];
            c[k++] = t;
        }
    }
    *n_better = k;
    return m;
}

/* Rearranges c[0..n) so that its first k (0 < k < n) are the k best,
 * unordered: Hoare's quickselect. */
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

/* Counts and weights of c[0..n) by bucket, for select_top and select_mass. */
static void histogram(nt_sampler *s, const candidate *c, int n) {
    memset(s->bucket_count, 0, sizeof s->bucket_count);
    memset(s->bucket_mass, 0, sizeof s->bucket_mass);
    for (int i = 0; i < n; i++) {
        int b = bucket_of(c[i].w);
        s->bucket_count[b]++;
        s->bucket_mass[b] += c[i].w;
    }
}

/* The bucket where the histogram's running count reaches k (0 < k <
 * the number of nonzero weights). */
static int count_cut(const nt_sampler *s, int k) {
    int b = 0, seen = 0;
    while (seen + s->bucket_count[b] < k)
        seen += s->bucket_count[b++];
    return b;
}

/* Top-k: the k best of c[0..n) (0 < k < n) to the front, the rest dropped.
 * The histogram counts c[0..n), and perhaps candidates of later buckets
 * already dropped. */
static void select_top(nt_sampler *s, candidate *c, int n, int k) {
    int n_better;
    int m = gather_buckets(c, n, count_cut(s, k), &n_better);
    if (k > n_better && k < m)
        select_best(c + n_better, m - n_better, k - n_better);
}

static int reaches(double sum, double target, int strictly) {
    return strictly ? sum > target : sum >= target;
}

/*
 * Within c[0..n), following `acc` worth of better candidates: the shortest
 * prefix of best ones whose weight brings the sum to `target` (past it if
 * `strictly`), moved to the front; returns its length, all of n if the
 * target is never reached. c[length - 1] is the prefix's worst candidate,
 * the one that reaches the target. Quickselect on mass: partition around a
 * pivot; if the better side reaches the target, go on in it, otherwise
 * keep it all and go on in the worse side.
 */
static int select_mass_within(candidate *c, int n, double acc, double target, int strictly) {
    int lo = 0, hi = n;   /* c[0..lo) kept; the answer ends in [lo, hi) */
    while (hi - lo > 1) {
        /* Lomuto partition of [lo, hi) around its middle: better ones first */
        candidate pivot = c[lo + (hi - lo) / 2];
        c[lo + (hi - lo) / 2] = c[hi - 1];
        c[hi - 1] = pivot;
        int j = lo;
        double better = 0.0;
        for (int i = lo; i < hi - 1; i++) {
            if (before(&c[i], &pivot)) {
                candidate t = c[i];
                c[i] = c[j];
                c[j++] = t;
                better += t.w;
            }
        }
        c[hi - 1] = c[j];
        c[j] = pivot;
        if (reaches(acc + better, target, strictly)) {
            hi = j;                           /* within the better ones */
        } else if (reaches(acc + better + pivot.w, target, strictly)) {
            return j + 1;                     /* the pivot completes it */
        } else {
            acc += better + pivot.w;          /* all of those, and more */
            lo = j + 1;
        }
    }
    return lo < n ? lo + 1 : n;
}

/*
 * The bucket where the histogram's running sum of weights reaches
 * `fraction` of their total (exceeds it, if `strictly`): *target is that
 * much, *acc_before the sum of the buckets before it. If rounding leaves the
 * target out of reach, the last bucket with a weight.
 */
static int mass_cut(const nt_sampler *s, double fraction, int strictly, double *target,
                    double *acc_before) {
    const double *mass = s->bucket_mass;
    double total = 0.0, acc = 0.0, acc_last = 0.0;
    for (int b = 0; b < N_BUCKETS - 1; b++)  /* the last holds weights of 0 */
        total += mass[b];
    *target = fraction * total;
    int last = 0;
    for (int b = 0; b < N_BUCKETS - 1; b++) {
        if (mass[b] == 0.0)
            continue;
        if (reaches(acc + mass[b], *target, strictly)) {
            *acc_before = acc;
            return b;
        }
        last = b;
        acc_last = acc;
        acc += mass[b];
    }
    *acc_before = acc_last;
    return last;
}

/*
 * The shortest prefix of the best candidates whose weight reaches
 * `fraction` of the histogram's total (exceeds it, if `strictly`), moved
 * to the front of c[0..n), the rest dropped; returns its length. As above,
 * c[length - 1] is the candidate that reaches the target. The histogram
 * covers c[0..n), and perhaps candidates of later buckets already dropped:
 * only the bucket where the running sum reaches the target is searched,
 * candidate by candidate.
 */
static int select_mass(nt_sampler *s, candidate *c, int n, double fraction, int strictly) {
    double target, acc;
    int b = mass_cut(s, fraction, strictly, &target, &acc);
    int n_better;
    int m = gather_buckets(c, n, b, &n_better);
    return n_better + select_mass_within(c + n_better, m - n_better, acc, target, strictly);
}

/* The largest of a[0..n) in *max, the first index holding it in *best; 0
 * if a logit is NaN or +inf, or all are -inf. (The largest first, then
 * where it is: a loop that carries only a float runs faster than one that
 * carries an index to load from.) */
static int scan(const float *a, int n, float *max, int32_t *best) {
    float m = -INFINITY;
    int finite = 1;
    for (int i = 0; i < n; i++) {
        finite &= a[i] < INFINITY;  /* false for NaN too */
        m = a[i] > m ? a[i] : m;
    }
    if (!finite || m == -INFINITY)
        return 0;
    int32_t b = 0;
    while (a[b] != m)
        b++;
    *max = m;
    *best = b;
    return 1;
}

/*
 * Steps 1 to 6: the kept candidates in (*kept)[0..return value), unordered;
 * -1 for bad arguments. Candidates whose weight is 0 (a logit of -inf, or
 * one so far below the best that exp() underflows) are never kept: they
 * could not be drawn.
 */
static int prepare(nt_sampler *s, const float *logits, int n_vocab, candidate **kept) {
    if (!s || !logits || n_vocab < 1)
        return -1;
    const float *a = adjust(s, logits, n_vocab);
    float max;
    int32_t best;
    if (!a || !scan(a, n_vocab, &max, &best))
        return -1;
    const nt_sampler_params *p = &s->params;
    if (p->temperature <= 0.0f) {
        s->greedy = (candidate){max, best, 1.0f};
        *kept = &s->greedy;
        return 1;
    }
    candidate *c = reserve(s->cand, &s->cand_capacity, n_vocab, sizeof *c);
    if (c)
        s->cand = c;
    float *w = reserve(s->weight, &s->weight_capacity, n_vocab, sizeof *w);
    if (w)
        s->weight = w;
    if (!c || !w)
        return -1;
    /* every weight, and their histogram (but for min-p alone, which needs
     * none: its cut is the bucket of min_p) */
    float t = p->temperature;
    int top_p = p->top_p < 1.0f, min_p = p->min_p > 0.0f;
    int counted = p->top_k > 0 || top_p || !min_p;
    memset(s->bucket_count, 0, sizeof s->bucket_count);
    memset(s->bucket_mass, 0, sizeof s->bucket_mass);
    for (int i = 0; i < n_vocab; i++) {
        w[i] = expf((a[i] - max) / t);  /* 1 for the best */
        if (counted) {
            int b = bucket_of(w[i]);
            s->bucket_count[b]++;
            s->bucket_mass[b] += w[i];
        }
    }
    /* Candidates only from the buckets the first filter can keep: the
     * histogram says where its cut falls. */
    int nonzero = n_vocab - s->bucket_count[N_BUCKETS - 1];
    int top_k = p->top_k > 0 && p->top_k < nonzero ? p->top_k : 0;
    int cut = N_BUCKETS - 2;
    double unused;
    if (top_k)
        cut = count_cut(s, top_k);
    else if (top_p)
        cut = mass_cut(s, (double)p->top_p, 0, &unused, &unused);
    else if (min_p)
        cut = bucket_of(p->min_p);
    s->histogram_is_kept = !top_k && !top_p && !min_p;
    int n = 0;
    for (int i = 0; i < n_vocab; i++)
        if (bucket_of(w[i]) <= cut)
            c[n++] = (candidate){a[i], i, w[i]};
    /* and the filters, exactly */
    if (top_k) {
        select_top(s, c, n, top_k);
        n = top_k;
        if (top_p)
            histogram(s, c, n);
    }
    if (top_p)
        n = select_mass(s, c, n, (double)p->top_p, 0);
    if (min_p) {
        /* p_i >= min_p * p_max  <=>  w_i >= min_p, as the best has w = 1 */
        int k = 0;
        for (int i = 0; i < n; i++) {
            c[k] = c[i];
            k += c[i].w >= p->min_p;
        }
        n = k;
    }
    *kept = c;
    return n;
}

/* Step 7: the first of the kept c[0..n) (n > 1), most likely first, whose
 * running sum of weights exceeds u times their total. Only the bucket
 * where the sum passes that is searched: its candidates are moved to the
 * front and a quickselect on mass finds the one. */
static int32_t draw(nt_sampler *s, candidate *c, int n, double u) {
    if (!s->histogram_is_kept)
        histogram(s, c, n);
    double target, acc;
    int b = mass_cut(s, u, 1, &target, &acc);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (bucket_of(c[i].w) == b) {
            candidate t = c[i];
            c[i] = c[m];
            c[m++] = t;
        }
    }
    return c[select_mass_within(c, m, acc, target, 1) - 1].id;
}

/* ---- log-probabilities ------------------------------------------------------------ */

/* The root of heap h[0..n) is its worst candidate. */
static void sift_down(candidate *h, int n, int i) {
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && before(&h[worst], &h[l]))
            worst = l;
        if (r < n && before(&h[worst], &h[r]))
            worst = r;
        if (worst == i)
            return;
        candidate t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* The model's log-probabilities: log-softmax of the raw logits, in double;
 * the chosen token's and the n_top best, best first. */
static void fill_logprobs(const float *logits, int n_vocab, int n_top, int32_t chosen,
                          nt_sample *out) {
    if (n_top > n_vocab)
        n_top = n_vocab;
    /* the n_top best in a heap whose root is the worst of them; ids come in
     * increasing order, so a tie never displaces an earlier id */
    candidate top[NT_MAX_TOP_LOGPROBS];
    int n = 0;
    double m = logits[0];
    for (int i = 0; i < n_vocab; i++) {
        candidate x = {logits[i], i, 0.0f};
        if (logits[i] > m)
            m = logits[i];
        if (n < n_top) {
            top[n++] = x;
            if (n == n_top)
                for (int j = n / 2 - 1; j >= 0; j--)
                    sift_down(top, n, j);
        } else if (n_top > 0 && before(&x, &top[0])) {
            top[0] = x;
            sift_down(top, n, 0);
        }
    }
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - m);
    double log_z = m + log(sum);
    out->id = chosen;
    out->logprob = (float)((double)logits[chosen] - log_z);
    qsort(top, (size_t)n, sizeof *top, compare_candidates);
    out->n_top = n;
    for (int i = 0; i < n; i++)
        out->top[i] = (nt_token_prob){top[i].id, (float)((double)top[i].logit - log_z)};
}

/* ---- the public steps ---------------------------------------------------------------- */

int32_t nt_sampler_sample_ex(nt_sampler *s, const float *logits, int n_vocab, int n_top,
                             nt_sample *out) {
    if (n_top < 0 || n_top > NT_MAX_TOP_LOGPROBS)
        return -1;
    candidate *c;
    int kept = prepare(s, logits, n_vocab, &c);
    if (kept < 1)
        return -1;
    int32_t chosen = c[0].id;
    if (s->params.temperature > 0.0f) {
        /* one uniform per sampled token, even when one token is kept, so
         * that the stream of draws does not depend on the filters */
        double u = nt_unit_from_u64(next_u64(s->rng));
        if (kept > 1)
            chosen = draw(s, c, kept, u);
    }
    if (out)
        fill_logprobs(logits, n_vocab, n_top, chosen, out);
    return chosen;
}

int32_t nt_sampler_sample(nt_sampler *s, const float *logits, int n_vocab) {
    return nt_sampler_sample_ex(s, logits, n_vocab, 0, NULL);
}

int nt_sampler_distribution(nt_sampler *s, const float *logits, int n_vocab,
                            nt_token_prob *out, int max_out) {
    if (max_out < 0 || (max_out > 0 && !out))
        return -1;
    candidate *c;
    int kept = prepare(s, logits, n_vocab, &c);
    if (kept < 1)
        return -1;
    double mass = 0.0;
    for (int i = 0; i < kept; i++)
        mass += c[i].w;
    int n = max_out < kept ? max_out : kept;
    if (n > 0 && n < kept)
        select_best(c, kept, n);
    qsort(c, (size_t)n, sizeof *c, compare_candidates);
    for (int i = 0; i < n; i++)
        out[i] = (nt_token_prob){c[i].id, (float)(c[i].w / mass)};
    return kept;
}
