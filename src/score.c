/*
 * score.c - see score.h.
 *
 * A position with a base costs three passes of exp over the vocabulary:
 * one per row for its logsumexp, and one for p_base(i) = exp(b(i) - lse_b)
 * in the divergence. Log-probabilities are differences taken in double,
 * never logs of probabilities, so tokens far below the top keep their
 * digits and equal rows give exactly equal log-probabilities.
 */
#include <math.h>

#include "score.h"

double nt_score_logsumexp(const float *logits, int n_vocab) {
    if (n_vocab <= 0)
        return -INFINITY;
    float max = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > max)
            max = logits[i];
    if (isinf(max))
        return max;
    double m = max, sum = 0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - m);
    return m + log(sum);
}

double nt_score_nll(const float *logits, int n_vocab, int32_t target) {
    if (target < 0 || target >= n_vocab)
        return NAN;
    return nt_score_logsumexp(logits, n_vocab) - (double)logits[target];
}

int32_t nt_score_argmax(const float *logits, int n_vocab) {
    int32_t best = 0;
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

/* KL(base || model) given both rows' logsumexp. */
static double kl_given(const float *base, double lse_base, const float *model,
                       double lse_model, int n_vocab) {
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) {
        double log_p = (double)base[i] - lse_base;
        double p = exp(log_p);
        if (p > 0)
            sum += p * (log_p - ((double)model[i] - lse_model));
    }
    return sum > 0 || isnan(sum) ? sum : 0.0;
}

double nt_score_kl(const float *base, const float *model, int n_vocab) {
    return kl_given(base, nt_score_logsumexp(base, n_vocab), model,
                    nt_score_logsumexp(model, n_vocab), n_vocab);
}

static void score_row(const float *logits, const float *base, int n_vocab,
                      int32_t target, nt_score_row *out) {
    double lse = nt_score_logsumexp(logits, n_vocab);
    int ok = target >= 0 && target < n_vocab;
    out->nll = ok ? lse - (double)logits[target] : NAN;
    out->nll_base = 0;
    out->kl = 0;
    out->same_top = 1;
    if (!base)
        return;
    double lse_base = nt_score_logsumexp(base, n_vocab);
    out->nll_base = ok ? lse_base - (double)base[target] : NAN;
    out->kl = kl_given(base, lse_base, logits, lse, n_vocab);
    out->same_top = nt_score_argmax(logits, n_vocab) == nt_score_argmax(base, n_vocab);
}

typedef struct score_job {
    const float *const *rows, *const *base;
    int n_rows, n_vocab;
    const int32_t *targets;
    nt_score_row *out;
} score_job;

static void score_part(void *arg, int ith, int nth) {
    const score_job *job = arg;
    int64_t begin, end;
    nt_split_range(job->n_rows, 1, ith, nth, &begin, &end);
    for (int64_t r = begin; r < end; r++)
        score_row(job->rows[r], job->base ? job->base[r] : NULL, job->n_vocab,
                  job->targets[r], &job->out[r]);
}

void nt_score_rows(nt_pool *pool, const float *const *rows,
                   const float *const *base, int n_rows, int n_vocab,
                   const int32_t *targets, nt_score_row *out) {
    score_job job = {rows, base, n_rows, n_vocab, targets, out};
    if (n_rows <= 0)
        return;
    if (pool && n_rows > 1)
        nt_pool_run(pool, score_part, &job);
    else
        score_part(&job, 0, 1);
}

void nt_score_stat_add(nt_score_stat *s, double x) {
    s->sum += x;
    s->sum2 += x * x;
    s->count++;
}

double nt_score_stat_mean(const nt_score_stat *s) {
    return s->count > 0 ? s->sum / (double)s->count : 0.0;
}

double nt_score_stat_stderr(const nt_score_stat *s) {
    if (s->count < 2)
        return 0.0;
    double mean = s->sum / (double)s->count;
    double var = s->sum2 / (double)s->count - mean * mean;
    return var > 0 ? sqrt(var / (double)(s->count - 1)) : 0.0;
}
