/*
 * test_score.c - the scoring arithmetic of src/score.c (what `nemotron
 * perplexity` reports) against closed forms and long-double references:
 * logsumexp, NLL, argmax ties, KL divergence (exactly 0 for equal rows,
 * shift invariance, rows with -inf), the threaded row scorer against the
 * single-row functions, and the mean with llama.cpp's standard error.
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "score.h"

/* long-double -log softmax(l)[t], the reference */
static long double ref_nll(const float *l, int n, int t) {
    long double max = l[0], sum = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > max)
            max = l[i];
    for (int i = 0; i < n; i++)
        sum += expl((long double)l[i] - max);
    return max + logl(sum) - (long double)l[t];
}

static long double ref_kl(const float *b, const float *m, int n) {
    long double lb = ref_nll(b, n, 0) + b[0], lm = ref_nll(m, n, 0) + m[0];
    long double sum = 0; /* lb, lm: the two logsumexps */
    for (int i = 0; i < n; i++) {
        long double lp = b[i] - lb;
        sum += expl(lp) * (lp - (m[i] - lm));
    }
    return sum;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static int close_rel(double got, double want, double tol) {
    return fabs(got - want) <= tol * fmax(fabs(want), 1e-300);
}

static void test_small_rows(void) {
    const float two[] = {0, 0};
    CHECK(close_rel(nt_score_logsumexp(two, 2), log(2.0), 1e-15));
    const float l[] = {1, 2, 3};
    double lse = 3 + log(1 + exp(-1.0) + exp(-2.0));
    CHECK(close_rel(nt_score_logsumexp(l, 3), lse, 1e-15));
    CHECK(close_rel(nt_score_nll(l, 3, 0), lse - 1, 1e-15));
    CHECK(close_rel(nt_score_nll(l, 3, 2), lse - 3, 1e-14));
    CHECK(isnan(nt_score_nll(l, 3, 3)));
    CHECK(isnan(nt_score_nll(l, 3, -1)));
    CHECK(nt_score_logsumexp(l, 0) == -INFINITY);

    /* no overflow or underflow far from 0 */
    const float big[] = {10000, 10000, -10000};
    CHECK(close_rel(nt_score_nll(big, 3, 0), log(2.0), 1e-12));
    CHECK(nt_score_nll(big, 3, 2) > 19999);

    const float ties[] = {-1, 5, 2, 5, 5};
    CHECK(nt_score_argmax(ties, 5) == 1);
    const float neg[] = {-INFINITY, -3, -INFINITY};
    CHECK(nt_score_argmax(neg, 3) == 1);
    CHECK(nt_score_nll(neg, 3, 0) == INFINITY);
    CHECK(close_rel(nt_score_nll(neg, 3, 1), 0.0, 1e-15) && nt_score_nll(neg, 3, 1) >= 0);
}

static void test_kl_closed_forms(void) {
    /* base p = (1/4, 3/4), model (1/2, 1/2):
     * KL = 1/4 ln(1/2) + 3/4 ln(3/2) */
    const float base[] = {0, (float)log(3.0)};
    const float model[] = {7, 7};
    double want = 0.25 * log(0.5) + 0.75 * log(1.5);
    CHECK_MSG(close_rel(nt_score_kl(base, model, 2), want, 1e-7), "%.17g vs %.17g",
              nt_score_kl(base, model, 2), want); /* ln 3 as a float */
    CHECK(close_rel(nt_score_kl(base, model, 2), (double)ref_kl(base, model, 2), 1e-14));
    /* the other way round is another number (KL is not symmetric) */
    double back = 0.5 * log(0.5 / 0.25) + 0.5 * log(0.5 / 0.75);
    CHECK(close_rel(nt_score_kl(model, base, 2), back, 1e-7));

    /* a token the base rules out contributes nothing; one the model rules
     * out while the base does not makes the divergence infinite */
    const float b2[] = {0, 0, -INFINITY};
    const float m2[] = {0, 0, 3};
    double k = nt_score_kl(b2, m2, 3);
    double want2 = log((2 + exp(3.0)) / 2); /* p_b = 1/2 each; p_m = 1/(2+e^3) */
    CHECK_MSG(close_rel(k, want2, 1e-12), "%.17g vs %.17g", k, want2);
    CHECK(nt_score_kl(m2, b2, 3) == INFINITY);
}

static void test_large_rows(void) {
    enum { V = 32000 };
    float *a = malloc(V * sizeof *a), *b = malloc(V * sizeof *b),
          *shifted = malloc(V * sizeof *shifted);
    if (!a || !b || !shifted) {
        CHECK(!"out of memory");
        return;
    }
    for (int i = 0; i < V; i++) {
        a[i] = (float)(uniform() * 40 - 20);
        b[i] = a[i] + (float)(uniform() * 0.2 - 0.1);
        shifted[i] = a[i] + 100.0f;
    }
    /* equal rows: exactly 0, not a rounding error near it */
    CHECK(nt_score_kl(a, a, V) == 0.0);
    double k = nt_score_kl(a, b, V);
    CHECK(k > 0);
    CHECK_MSG(close_rel(k, (double)ref_kl(a, b, V), 1e-9), "%.17g vs %.17Lg", k,
              ref_kl(a, b, V));
    for (int t = 0; t < V; t += 997)
        CHECK(close_rel(nt_score_nll(a, V, t), (double)ref_nll(a, V, t), 1e-12));
    /* a constant added to every logit changes nothing but rounding (the
     * shifted floats are themselves rounded: a's differences move by up to
     * half an ulp of 120) */
    CHECK(fabs(nt_score_kl(a, shifted, V)) < 1e-5);
    free(a);
    free(b);
    free(shifted);
}

static void test_rows(void) {
    enum { V = 2048, R = 37 };
    float *model = malloc((size_t)R * V * sizeof *model),
          *base = malloc((size_t)R * V * sizeof *base);
    const float *mrows[R], *brows[R];
    int32_t targets[R];
    nt_score_row serial[R], threaded[R], alone[R];
    if (!model || !base) {
        CHECK(!"out of memory");
        return;
    }
    for (int r = 0; r < R; r++) {
        for (int i = 0; i < V; i++) {
            base[(size_t)r * V + i] = (float)(uniform() * 16 - 8);
            model[(size_t)r * V + i] =
                base[(size_t)r * V + i] + (r == 5 ? 0.0f : (float)(uniform() * 2 - 1));
        }
        mrows[r] = model + (size_t)r * V;
        brows[r] = base + (size_t)r * V;
        targets[r] = (int32_t)(uniform() * V);
    }
    nt_error err;
    nt_pool *pool = nt_pool_new(3, &err);
    CHECK(pool != NULL);
    nt_score_rows(NULL, mrows, brows, R, V, targets, serial);
    nt_score_rows(pool, mrows, brows, R, V, targets, threaded);
    nt_score_rows(pool, mrows, NULL, R, V, targets, alone);
    for (int r = 0; r < R; r++) {
        CHECK(serial[r].nll == threaded[r].nll && serial[r].kl == threaded[r].kl &&
              serial[r].nll_base == threaded[r].nll_base &&
              serial[r].same_top == threaded[r].same_top);
        CHECK(serial[r].nll == nt_score_nll(mrows[r], V, targets[r]));
        CHECK(serial[r].nll_base == nt_score_nll(brows[r], V, targets[r]));
        CHECK(serial[r].kl == nt_score_kl(brows[r], mrows[r], V));
        CHECK(serial[r].same_top ==
              (nt_score_argmax(mrows[r], V) == nt_score_argmax(brows[r], V)));
        CHECK(alone[r].nll == serial[r].nll && alone[r].kl == 0 &&
              alone[r].nll_base == 0 && alone[r].same_top == 1);
    }
    CHECK(serial[5].kl == 0 && serial[5].same_top == 1);
    nt_pool_free(pool);
    free(model);
    free(base);
}

static void test_stat(void) {
    nt_score_stat s = {0};
    CHECK(nt_score_stat_mean(&s) == 0 && nt_score_stat_stderr(&s) == 0);
    nt_score_stat_add(&s, 1);
    CHECK(nt_score_stat_mean(&s) == 1 && nt_score_stat_stderr(&s) == 0);
    nt_score_stat_add(&s, 2);
    nt_score_stat_add(&s, 3);
    nt_score_stat_add(&s, 4);
    CHECK(s.count == 4);
    CHECK(close_rel(nt_score_stat_mean(&s), 2.5, 1e-15));
    /* population variance 1.25, over n - 1 = 3 */
    CHECK(close_rel(nt_score_stat_stderr(&s), sqrt(1.25 / 3), 1e-15));
    nt_score_stat same = {0};
    for (int i = 0; i < 10; i++)
        nt_score_stat_add(&same, 0.0);
    CHECK(nt_score_stat_stderr(&same) == 0);
}

int main(void) {
    test_small_rows();
    test_kl_closed_forms();
    test_large_rows();
    test_rows();
    test_stat();
    return check_summary();
}
