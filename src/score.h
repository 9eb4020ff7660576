/*
 * score.h - how well a model predicts text: the negative log-likelihood of
 * the token that came, and how far one model's prediction is from another's
 * (KL divergence, same most likely token). `nemotron perplexity` reports
 * these; anything else that scores logits should use them, so that every
 * figure means the same.
 *
 * All arithmetic is in double: a row of logits becomes log-probabilities
 * log p(i) = l(i) - logsumexp(l), with the maximum taken out before exp.
 */
#ifndef NT_SCORE_H
#define NT_SCORE_H

#include "internal.h"
#include "threadpool.h"

/* log(sum(exp(l))) of a row, in double. -inf for an empty row or one of
 * -inf only. */
double nt_score_logsumexp(const float *logits, int n_vocab);

/* -log p(target) under the row: logsumexp(l) - l(target); NaN for a
 * target outside the row. */
double nt_score_nll(const float *logits, int n_vocab, int32_t target);

/* The id of the largest logit; the lowest id among equal ones (as the
 * greedy sampler chooses). */
int32_t nt_score_argmax(const float *logits, int n_vocab);

/*
 * KL(base || model) = sum_i p_base(i) (log p_base(i) - log p_model(i)), in
 * nats. Terms whose p_base underflows to 0 count as 0. Rows that are equal
 * give exactly 0; rounding can leave a result a few ulps below 0, which is
 * returned as 0 (the divergence is never negative).
 */
double nt_score_kl(const float *base, const float *model, int n_vocab);

/* What nt_score_rows finds at one position. */
typedef struct nt_score_row {
    double nll;       /* -log p_model(target) */
    double nll_base;  /* -log p_base(target); 0 without a base */
    double kl;        /* KL(base || model); 0 without a base */
    int same_top;     /* argmax equal; 1 without a base */
} nt_score_row;

/*
 * Scores n_rows positions at once, split over the pool's threads (NULL:
 * this thread): rows[r] (and base[r], when base is not NULL) is the
 * prediction (n_vocab logits) for targets[r]; out[r] receives its figures.
 * Each row's figures are a function of its logits alone, so they do not
 * depend on the number of threads.
 */
void nt_score_rows(nt_pool *pool, const float *const *rows,
                   const float *const *base, int n_rows, int n_vocab,
                   const int32_t *targets, nt_score_row *out);

/*
 * A running mean with its standard error, the way llama.cpp's perplexity
 * tool reports them: mean = sum / n, standard error =
 * sqrt((sum2 / n - mean^2) / (n - 1)), 0 when n < 2 or the variance so
 * computed is not positive.
 */
typedef struct nt_score_stat {
    double sum, sum2;
    int64_t count;
} nt_score_stat;

void nt_score_stat_add(nt_score_stat *s, double x);
double nt_score_stat_mean(const nt_score_stat *s);
double nt_score_stat_stderr(const nt_score_stat *s);

#endif
