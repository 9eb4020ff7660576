/*
 * sampler.c - choosing the next token from logits.
 *
 * The steps and their order are documented with nt_sampler_params in
 * nemotron.h: logit bias, penalties, then greedy or temperature, top-k,
 * top-p, min-p and one draw. This is vLLM's order (and HF's for the
 * filters): the filters see the distribution that is actually drawn from.
 *
 * Candidates are ordered by logit, then by id, so that equal logits never
 * make a choice depend on sort stability. Sorting all 256k logits for every
 * token would cost tens of milliseconds, so nothing is sorted: top-k is a
 * quickselect, and top-p a quickselect on probability mass (partition
 * around a pivot; if the better side holds enough mass, go on in it,
 * otherwise keep it all and go on in the worse side), O(vocabulary) on
 * average. Each candidate's exp() is computed once. The kept candidates
 * stay in the order the selection left them, a function of the logits
 * alone, so draws stay reproducible.
 *
 * Penalties need the history: the prompt (for the repetition penalty) and
 * the reply so far (for all three). Each penalty touches only the tokens
 * in the history, through a per-vocabulary mark array, so a penalty costs
 * O(history), not O(vocabulary).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rng.h"

typedef struct candidate {
    float logit;
    int32_t id;
    float w;  /* exp(logit - the largest kept logit), once known */
} candidate;

typedef struct history {
    int32_t *ids;
    int n, cap;
} history;

struct nt_sampler {
    nt_sampler_params params;
    nt_logit_bias *bias;  /* params.logit_bias, copied */
    uint64_t rng[4];      /* xoshiro256** state */
    history prompt, reply;

    /* scratch, sized for the largest vocabulary seen */
    int n_vocab_capacity;
    candidate *cand;
    candidate *raw;       /* for the top log-probabilities */
    float *adjusted;      /* logits after bias and penalties */
    uint32_t *mark;       /* mark[id] == epoch: seen in this pass */
    int32_t *count;       /* occurrences in the reply, while counting */
    uint32_t epoch;
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

static nt_status check_params(const nt_sampler_params *p, nt_error *err) {
#define REFUSE(cond, what)                                                        \
    if (cond)                                                                     \
        return nt_fail(err, NT_ERR_ARGUMENT, "sampler: %s", what)
    REFUSE(isnan(p->temperature), "temperature is not a number");
    if (!(p->top_p > 0.0f))
        return nt_fail(err, NT_ERR_ARGUMENT, "sampler: top_p must be > 0 (got %g)",
                       (double)p->top_p);
    if (!(p->min_p <= 1.0f))
        return nt_fail(err, NT_ERR_ARGUMENT, "sampler: min_p must be <= 1 (got %g)",
                       (double)p->min_p);
    if (!(p->repetition_penalty > 0.0f) || isinf(p->repetition_penalty))
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "sampler: repetition_penalty must be > 0 and finite (got %g)",
                       (double)p->repetition_penalty);
    REFUSE(!isfinite(p->frequency_penalty), "frequency_penalty must be a finite number");
    REFUSE(!isfinite(p->presence_penalty), "presence_penalty must be a finite number");
    if (p->penalty_last_n < 0)
        return nt_fail(err, NT_ERR_ARGUMENT, "sampler: penalty_last_n must be >= 0 (got %d)",
                       p->penalty_last_n);
    REFUSE(p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias),
           "n_logit_bias must be >= 0, with logit_bias given when > 0");
    for (int i = 0; i < p->n_logit_bias; i++) {
        if (p->logit_bias[i].id < 0)
            return nt_fail(err, NT_ERR_ARGUMENT, "sampler: logit_bias[%d] names token %d",
                           i, (int)p->logit_bias[i].id);
        if (!isfinite(p->logit_bias[i].bias))
            return nt_fail(err, NT_ERR_ARGUMENT,
                           "sampler: logit_bias[%d] (token %d) is not a finite number", i,
                           (int)p->logit_bias[i].id);
    }
    return NT_OK;
#undef REFUSE
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
    free(s->raw);
    free(s->adjusted);
    free(s->mark);
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
    if (n > 0)
        memcpy(h->ids + h->n, ids, (size_t)n * sizeof *ids);
    h->n += n;
    return 1;
}

static nt_status check_ids(const int32_t *ids, int n, nt_error *err) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0)
            return nt_fail(err, NT_ERR_ARGUMENT, "sampler: token %d (at %d) is negative",
                           (int)ids[i], i);
    return NT_OK;
}

nt_status nt_sampler_set_prompt(nt_sampler *s, const int32_t *tokens, int n_tokens,
                                nt_error *err) {
    nt_error_clear(err);
    if (!s || n_tokens < 0 || (n_tokens > 0 && !tokens))
        return nt_fail(err, NT_ERR_ARGUMENT, "nt_sampler_set_prompt: invalid arguments");
    if (check_ids(tokens, n_tokens, err) != NT_OK)
        return err ? err->status : NT_ERR_ARGUMENT;
    s->prompt.n = 0;
    s->reply.n = 0;
    if (!history_push(&s->prompt, tokens, n_tokens))
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for the sampler's history");
    return NT_OK;
}

nt_status nt_sampler_accept(nt_sampler *s, int32_t token, nt_error *err) {
    nt_error_clear(err);
    if (!s)
        return nt_fail(err, NT_ERR_ARGUMENT, "nt_sampler_accept: no sampler");
    if (check_ids(&token, 1, err) != NT_OK)
        return err ? err->status : NT_ERR_ARGUMENT;
    if (!history_push(&s->reply, &token, 1))
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for the sampler's history");
    return NT_OK;
}

/* ---- candidates --------------------------------------------------------------- */

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

static int reserve_scratch(nt_sampler *s, int n_vocab) {
    if (s->n_vocab_capacity >= n_vocab)
        return 1;
    size_t n = (size_t)n_vocab;
    candidate *cand = realloc(s->cand, n * sizeof *cand);
    if (cand)
        s->cand = cand;
    candidate *raw = realloc(s->raw, n * sizeof *raw);
    if (raw)
        s->raw = raw;
    float *adjusted = realloc(s->adjusted, n * sizeof *adjusted);
    if (adjusted)
        s->adjusted = adjusted;
    int32_t *count = realloc(s->count, n * sizeof *count);
    if (count)
        s->count = count;
    uint32_t *mark = calloc(n, sizeof *mark);
    if (mark) {
        free(s->mark);
        s->mark = mark;
        s->epoch = 0;
    }
    if (!cand || !raw || !adjusted || !count || !mark)
        return 0;
    s->n_vocab_capacity = n_vocab;
    return 1;
}

static uint32_t next_epoch(nt_sampler *s) {
    if (++s->epoch == 0) {  /* wrapped: old marks could match again */
        memset(s->mark, 0, (size_t)s->n_vocab_capacity * sizeof *s->mark);
        s->epoch = 1;
    }
    return s->epoch;
}

/* Steps 1 and 2: the logits after bias and penalties (`logits` itself when
 * neither applies). NULL when a bias or the history names an id outside
 * the vocabulary. */
static const float *adjust(nt_sampler *s, const float *logits, int n_vocab) {
    const nt_sampler_params *p = &s->params;
    int repetition = p->repetition_penalty != 1.0f;
    int reply_penalties = p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;
    if (p->n_logit_bias == 0 && !repetition && !reply_penalties)
        return logits;
    float *a = s->adjusted;
    memcpy(a, logits, (size_t)n_vocab * sizeof *a);
    for (int i = 0; i < p->n_logit_bias; i++) {
        if (s->bias[i].id >= n_vocab)
            return NULL;
        a[s->bias[i].id] += s->bias[i].bias;
    }
    for (int i = 0; i < s->prompt.n; i++)
        if (s->prompt.ids[i] >= n_vocab)
            return NULL;
    for (int i = 0; i < s->reply.n; i++)
        if (s->reply.ids[i] >= n_vocab)
            return NULL;

    if (repetition) {
        /* the last penalty_last_n of prompt ++ reply, each token once */
        uint32_t epoch = next_epoch(s);
        int total = s->prompt.n + s->reply.n;
        int from = p->penalty_last_n > 0 && p->penalty_last_n < total
                       ? total - p->penalty_last_n : 0;
        float r = p->repetition_penalty;
        for (int i = from; i < total; i++) {
            int32_t id = i < s->prompt.n ? s->prompt.ids[i] : s->reply.ids[i - s->prompt.n];
            if (s->mark[id] == epoch)
                continue;
            s->mark[id] = epoch;
            a[id] = a[id] > 0.0f ? a[id] / r : a[id] * r;
        }
    }
    if (reply_penalties) {
        uint32_t epoch = next_epoch(s);
        for (int i = 0; i < s->reply.n; i++) {
            int32_t id = s->reply.ids[i];
            if (s->mark[id] != epoch) {
                s->mark[id] = epoch;
                s->count[id] = 0;
            }
            s->count[id]++;
        }
        for (int i = 0; i < s->reply.n; i++) {
            int32_t id = s->reply.ids[i];
            if (s->count[id] > 0) {
                a[id] -= (float)s->count[id] * p->frequency_penalty + p->presence_penalty;
                s->count[id] = 0;  /* once per token */
            }
        }
    }
    return a;
}

/*
 * The smallest set of best candidates in c[0..n) whose weights reach
 * `target`, moved to the front; returns its size (at least 1).
 */
static int select_mass(candidate *c, int n, double target) {
    int lo = 0, hi = n;   /* c[0..lo) kept; the answer ends in [lo, hi) */
    double acc = 0.0;     /* the weight of c[0..lo) */
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
        if (acc + better >= target) {
            hi = j;                           /* within the better ones */
        } else if (acc + better + pivot.w >= target) {
            return j + 1;                     /* the pivot completes it */
        } else {
            acc += better + pivot.w;          /* all of those, and more */
            lo = j + 1;
        }
    }
    return lo < n ? lo + 1 : n;
}

/*
 * Steps 3 to 6: fills s->cand[0..kept) with the kept candidates (logits
 * divided by the temperature, weights relative to the best) and returns
 * kept; *mass is the sum of their weights.
 */
static int keep(nt_sampler *s, const float *a, int n_vocab, double *mass) {
    const nt_sampler_params *p = &s->params;
    candidate *c = s->cand;
    if (p->temperature <= 0.0f || p->top_k == 1) {
        int32_t id = argmax(a, n_vocab);
        c[0] = (candidate){a[id], id, 1.0f};
        *mass = 1.0;
        return 1;
    }
    float inv_t = 1.0f / p->temperature;
    float max = a[0] * inv_t;
    for (int i = 0; i < n_vocab; i++) {
        c[i] = (candidate){a[i] * inv_t, i, 0.0f};
        if (c[i].logit > max)
            max = c[i].logit;
    }
    int n = n_vocab;
    if (p->top_k > 0 && p->top_k < n) {
        select_best(c, n, p->top_k);
        n = p->top_k;
    }
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += c[i].w = expf(c[i].logit - max);

    int kept = n;
    if (p->top_p < 1.0f)
        kept = select_mass(c, n, (double)p->top_p * total);
    if (p->min_p > 0.0f) {
        /* p_i >= min_p * p_max  <=>  w_i >= min_p; the best has w = 1 */
        int k = 0;
        for (int i = 0; i < kept; i++)
            if (c[i].w >= p->min_p)
                c[k++] = c[i];
        kept = k;
    }
    double sum = 0.0;
    for (int i = 0; i < kept; i++)
        sum += c[i].w;
    *mass = sum;
    return kept;
}

/* The model's log-probabilities: the chosen token's and the n_top best. */
static void fill_logprobs(nt_sampler *s, const float *logits, int n_vocab, int n_top,
                          int32_t chosen, nt_sample *out) {
    double m = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > m)
            m = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - m);
    double log_z = m + log(sum);
    out->id = chosen;
    out->logprob = (float)((double)logits[chosen] - log_z);
    if (n_top > n_vocab)
        n_top = n_vocab;
    out->n_top = n_top;
    if (n_top == 0)
        return;
    candidate *c = s->raw;
    for (int i = 0; i < n_vocab; i++)
        c[i] = (candidate){logits[i], i, 0.0f};
    select_best(c, n_vocab, n_top);
    qsort(c, (size_t)n_top, sizeof *c, compare_candidates);
    for (int i = 0; i < n_top; i++)
        out->top[i] = (nt_token_prob){c[i].id, (float)((double)c[i].logit - log_z)};
}

/* Steps 1 to 6 into s->cand; returns kept, or -1 for bad arguments. */
static int prepare(nt_sampler *s, const float *logits, int n_vocab, double *mass) {
    if (!s || !logits || n_vocab < 1 || !reserve_scratch(s, n_vocab))
        return -1;
    const float *a = adjust(s, logits, n_vocab);
    return a ? keep(s, a, n_vocab, mass) : -1;
}

int32_t nt_sampler_sample_ex(nt_sampler *s, const float *logits, int n_vocab, int n_top,
                             nt_sample *out) {
    double mass;
    int kept = n_top < 0 || n_top > NT_MAX_TOP_LOGPROBS ? -1
                                                        : prepare(s, logits, n_vocab, &mass);
    if (kept < 1)
        return -1;
    const candidate *c = s->cand;
    int32_t chosen = c[kept - 1].id;
    if (kept > 1) {
        double u = nt_unit_from_u64(next_u64(s->rng)) * mass, cum = 0.0;
        for (int i = 0; i < kept; i++) {
            cum += c[i].w;
            if (u < cum) {
                chosen = c[i].id;
                break;
            }
        }
    } else if (s->params.temperature > 0.0f && s->params.top_k != 1) {
        next_u64(s->rng);  /* one draw per sampled token, always */
    }
    if (out)
        fill_logprobs(s, logits, n_vocab, n_top, chosen, out);
    return chosen;
}

int32_t nt_sampler_sample(nt_sampler *s, const float *logits, int n_vocab) {
    return nt_sampler_sample_ex(s, logits, n_vocab, 0, NULL);
}

int nt_sampler_distribution(nt_sampler *s, const float *logits, int n_vocab,
                            nt_token_prob *out, int max_out) {
    double mass;
    int kept = max_out < 0 || (max_out > 0 && !out) ? -1
                                                    : prepare(s, logits, n_vocab, &mass);
    if (kept < 1)
        return -1;
    qsort(s->cand, (size_t)kept, sizeof *s->cand, compare_candidates);
    for (int i = 0; i < kept && i < max_out; i++)
        out[i] = (nt_token_prob){s->cand[i].id, (float)(s->cand[i].w / mass)};
    return kept;
}
