/*
 * test_sampler.c - the sampler against distributions worked out by hand.
 *
 * Each expectation is the exact softmax of a few logits after the
 * documented steps (bias, penalties, temperature, top-k, top-p, min-p),
 * computed in double precision outside this program (the arithmetic is in
 * the comments) and compared with nt_sampler_distribution to 1e-6. Cases
 * are chosen so that a wrong order of steps, a wrong rule or an off-by-one
 * at a boundary gives a different set of kept tokens, not just a small
 * numeric difference. Then: draws follow the distribution, logprobs are
 * the model's own, the same seed gives the same tokens, bad parameters are
 * refused with their name.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "nemotron.h"

typedef struct expect {
    int32_t id;
    double p;
} expect;

/* The distribution of sampler s for logits[0..n), against want[0..n_want). */
static void expect_dist(const char *label, nt_sampler *s, const float *logits, int n,
                        const expect *want, int n_want) {
    nt_token_prob got[16];
    int kept = nt_sampler_distribution(s, logits, n, got, 16);
    CHECK_MSG(kept == n_want, "%s: %d tokens kept, expected %d", label, kept, n_want);
    for (int i = 0; i < n_want && i < kept; i++)
        CHECK_MSG(got[i].id == want[i].id && fabs(got[i].p - want[i].p) < 1e-6,
                  "%s: #%d is token %d with p %.8f, expected token %d with p %.8f", label, i,
                  (int)got[i].id, (double)got[i].p, (int)want[i].id, want[i].p);
}

static nt_sampler *make(nt_sampler_params p) {
    nt_error err;
    nt_sampler *s = nt_sampler_new(&p, &err);
    CHECK_MSG(s != NULL, "%s", err.message);
    return s;
}

static nt_sampler_params at_temperature(float t) {
    nt_sampler_params p = nt_sampler_default_params();
    p.temperature = t;
    return p;
}

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void test_temperature_and_filters(void) {
    /* {1,2,3} / 2 = {0.5,1,1.5}: e^.5, e^1, e^1.5 over their sum 8.84869 */
    const float l3[] = {1, 2, 3};
    nt_sampler *s = make(at_temperature(2.0f));
    expect t2[] = {{2, 0.506480391055654}, {1, 0.3071958857184984}, {0, 0.1863237232258476}};
    expect_dist("temperature 2", s, l3, 3, t2, 3);
    nt_sampler_free(s);

    /* {1,2,3} / 0.5 = {2,4,6} */
    s = make(at_temperature(0.5f));
    expect t05[] = {{2, 0.8668133321973349}, {1, 0.11731042782619838},
                    {0, 0.015876239976466765}};
    expect_dist("temperature 0.5", s, l3, 3, t05, 3);
    nt_sampler_free(s);

    /* top-k 2 of {1,2,3,0}: e^3 / (e^3 + e^2), e^2 / (e^3 + e^2) */
    const float l4[] = {1, 2, 3, 0};
    nt_sampler_params p = at_temperature(1.0f);
    p.top_k = 2;
    s = make(p);
    expect k2[] = {{2, 0.7310585786300049}, {1, 0.2689414213699951}};
    expect_dist("top-k 2", s, l4, 4, k2, 2);
    nt_sampler_free(s);

    /* top-p on probabilities {.5, .25, .15, .1}: the smallest prefix whose
     * sum reaches p. 0.74 -> {.5,.25} (0.75 >= 0.74), 0.76 -> three, and a p
     * below the first token's probability keeps that token alone. */
    const float lp[] = {logf(0.5f), logf(0.25f), logf(0.15f), logf(0.1f)};
    p = at_temperature(1.0f);
    p.top_p = 0.74f;
    s = make(p);
    expect p74[] = {{0, 0.5 / 0.75}, {1, 0.25 / 0.75}};
    expect_dist("top-p 0.74", s, lp, 4, p74, 2);
    nt_sampler_free(s);
    p.top_p = 0.76f;
    s = make(p);
    expect p76[] = {{0, 0.5 / 0.9}, {1, 0.25 / 0.9}, {2, 0.15 / 0.9}};
    expect_dist("top-p 0.76", s, lp, 4, p76, 3);
    nt_sampler_free(s);
    p.top_p = 0.3f;
    s = make(p);
    expect p30[] = {{0, 1.0}};
    expect_dist("top-p below the top token", s, lp, 4, p30, 1);
    nt_sampler_free(s);

    /* temperature comes before top-p: {2,1,0} at T=1 is {.665,.245,.090}
     * and top-p 0.6 keeps one token; at T=3 it is {.448,.321,.230} and
     * top-p 0.6 keeps two: e^(2/3), e^(1/3) renormalized. */
    const float l210[] = {2, 1, 0};
    p = at_temperature(1.0f);
    p.top_p = 0.6f;
    s = make(p);
    expect one[] = {{0, 1.0}};
    expect_dist("top-p 0.6 at T=1", s, l210, 3, one, 1);
    nt_sampler_free(s);
    p.temperature = 3.0f;
    s = make(p);
    expect two[] = {{0, 0.5825702064623147}, {1, 0.41742979353768533}};
    expect_dist("top-p 0.6 at T=3", s, l210, 3, two, 2);
    nt_sampler_free(s);

    /* min-p on {.4,.3,.2,.1}: keep p >= min_p * 0.4. 0.49 keeps .2
     * (0.196), 0.51 does not (0.204). */
    const float lm[] = {logf(0.4f), logf(0.3f), logf(0.2f), logf(0.1f)};
    p = at_temperature(1.0f);
    p.min_p = 0.49f;
    s = make(p);
    expect m49[] = {{0, 0.4 / 0.9}, {1, 0.3 / 0.9}, {2, 0.2 / 0.9}};
    expect_dist("min-p 0.49", s, lm, 4, m49, 3);
    nt_sampler_free(s);
    p.min_p = 0.51f;
    s = make(p);
    expect m51[] = {{0, 0.4 / 0.7}, {1, 0.3 / 0.7}};
    expect_dist("min-p 0.51", s, lm, 4, m51, 2);
    nt_sampler_free(s);
    /* ... after temperature: at T=2 the ratios to the top are sqrt(.75),
     * sqrt(.5), sqrt(.25) = .866, .707, .5, so min-p 0.6 keeps three:
     * sqrt(.4), sqrt(.3), sqrt(.2) renormalized (at T=1 it would keep two) */
    p.min_p = 0.6f;
    p.temperature = 2.0f;
    s = make(p);
    expect mt[] = {{0, 0.3886314142121213}, {1, 0.33656467741636975}, {2, 0.274803908371509}};
    expect_dist("min-p 0.6 at T=2", s, lm, 4, mt, 3);
    nt_sampler_free(s);
    /* ... and after top-k: top-k 2 then min-p 0.6 at T=2 keeps the two */
    p.top_k = 2;
    s = make(p);
    expect mk[] = {{0, 0.5358983848622454}, {1, 0.4641016151377546}};
    expect_dist("top-k 2, min-p 0.6 at T=2", s, lm, 4, mk, 2);
    nt_sampler_free(s);
}

static void test_bias_and_greedy(void) {
    /* bias ln 3 on token 1 of four equal logits: 3/6 and 1/6 each */
    const float flat[] = {0, 0, 0, 0};
    nt_logit_bias b = {1, logf(3.0f)};
    nt_sampler_params p = at_temperature(1.0f);
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    nt_sampler *s = make(p);
    expect biased[] = {{1, 0.5}, {0, 1.0 / 6}, {2, 1.0 / 6}, {3, 1.0 / 6}};
    expect_dist("bias ln 3", s, flat, 4, biased, 4);
    nt_sampler_free(s);

    /* greedy: ties go to the lowest id; a bias of -100 bans, +100 forces */
    const float l[] = {5, 1, 1, 0};
    s = make(nt_sampler_default_params());
    CHECK(nt_sampler_sample(s, l, 4) == 0);
    CHECK(nt_sampler_sample(s, flat, 4) == 0);
    nt_sampler_free(s);
    p = nt_sampler_default_params();
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    b = (nt_logit_bias){0, -100.0f};
    s = make(p);
    CHECK(nt_sampler_sample(s, l, 4) == 1);
    nt_sampler_free(s);
    b = (nt_logit_bias){3, 100.0f};
    s = make(p);
    CHECK(nt_sampler_sample(s, l, 4) == 3);
    expect forced[] = {{3, 1.0}};
    expect_dist("greedy, forced", s, l, 4, forced, 1);
    nt_sampler_free(s);
    /* a bias past the vocabulary is an error, not ignored */
    b = (nt_logit_bias){4, 1.0f};
    s = make(p);
    CHECK(nt_sampler_sample(s, l, 4) == -1);
    CHECK(nt_sampler_distribution(s, l, 4, NULL, 0) == -1);
    const float l5[] = {5, 1, 1, 0, 0};
    CHECK(nt_sampler_sample(s, l5, 5) == 0);  /* fine with 5 tokens */
    nt_sampler_free(s);
}

static void test_penalties(void) {
    const float l[] = {2, -2, 1, 0.5f};
    nt_error err;
    /* repetition 2 on prompt tokens {0, 1, 0}: 2 / 2 = 1, -2 * 2 = -4,
     * token 0 once however often it appears */
    nt_sampler_params p = at_temperature(1.0f);
    p.repetition_penalty = 2.0f;
    nt_sampler *s = make(p);
    const int32_t prompt[] = {0, 1, 0};
    CHECK(nt_sampler_set_prompt(s, prompt, 3, &err) == NT_OK);
    /* softmax {1, -4, 1, .5} */
    expect rep[] = {{0, 0.38266253894899155}, {2, 0.38266253894899155},
                    {3, 0.23209656219604313}, {1, 0.0025783599059737835}};
    expect_dist("repetition 2", s, l, 4, rep, 4);
    nt_sampler_free(s);

    /* penalty_last_n 1: prompt {0}, reply {1}: only token 1 is penalized:
     * softmax {2, -4, 1, .5} */
    p.penalty_last_n = 1;
    s = make(p);
    const int32_t zero[] = {0};
    CHECK(nt_sampler_set_prompt(s, zero, 1, &err) == NT_OK);
    CHECK(nt_sampler_accept(s, 1, &err) == NT_OK);
    expect win[] = {{0, 0.6275540061562002}, {2, 0.2308642170896428},
                    {3, 0.14002622589542166}, {1, 0.0015555508587353744}};
    expect_dist("repetition window", s, l, 4, win, 4);
    /* a new prompt forgets the reply */
    CHECK(nt_sampler_set_prompt(s, NULL, 0, &err) == NT_OK);
    /* softmax {2, -2, 1, .5}: no history, no penalty */
    expect none[] = {{0, 0.6213784355177182}, {2, 0.2285923516142433},
                     {3, 0.13864826982984924}, {1, 0.011380943038189123}};
    expect_dist("history cleared", s, l, 4, none, 4);
    nt_sampler_free(s);

    /* frequency 0.5 and presence 0.25 over the reply {2, 2, 2, 1}; the
     * prompt's token 3 does not count: token 2: 1 - 3*.5 - .25 = -.75,
     * token 1: -2 - .5 - .25 = -2.75; softmax {2, -2.75, -.75, .5} */
    p = at_temperature(1.0f);
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    s = make(p);
    const int32_t three[] = {3};
    CHECK(nt_sampler_set_prompt(s, three, 1, &err) == NT_OK);
    const int32_t reply[] = {2, 2, 2, 1};
    for (int i = 0; i < 4; i++)
        CHECK(nt_sampler_accept(s, reply[i], &err) == NT_OK);
    expect freq[] = {{0, 0.7717778042571604}, {3, 0.1722069050629037},
                     {2, 0.04933810435296927}, {1, 0.00667718632696665}};
    expect_dist("frequency and presence", s, l, 4, freq, 4);
    /* the same again: counting leaves no state behind */
    expect_dist("frequency and presence, twice", s, l, 4, freq, 4);
    /* history naming a token past the vocabulary: refused */
    CHECK(nt_sampler_accept(s, 9, &err) == NT_OK);
    CHECK(nt_sampler_sample(s, l, 4) == -1);
    CHECK(nt_sampler_accept(s, -1, &err) == NT_ERR_ARGUMENT);
    const int32_t bad[] = {1, -5};
    CHECK(nt_sampler_set_prompt(s, bad, 2, &err) == NT_ERR_ARGUMENT);
    nt_sampler_free(s);

    /* greedy with a repetition penalty: token 0 (2 -> 2/3) loses to token 2 */
    p = nt_sampler_default_params();
    p.repetition_penalty = 3.0f;
    s = make(p);
    CHECK(nt_sampler_set_prompt(s, zero, 1, &err) == NT_OK);
    CHECK(nt_sampler_sample(s, l, 4) == 2);
    nt_sampler_free(s);
}

static void test_logprobs(void) {
    /* the model's log-softmax of {1,2,3,3}, whatever temperature and bias:
     * logit - (3 + ln(e^-2 + e^-1 + 2)) */
    const float l[] = {1, 2, 3, 3};
    nt_logit_bias b = {0, 50.0f};
    nt_sampler_params p = at_temperature(0.7f);
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    nt_sampler *s = make(p);
    nt_sample out;
    int32_t id = nt_sampler_sample_ex(s, l, 4, 3, &out);
    CHECK(id == 0 && out.id == 0);  /* the bias makes 0 all but certain */
    CHECK(fabs(out.logprob - -2.9175757955891974) < 1e-6);
    CHECK(out.n_top == 3);
    CHECK(out.top[0].id == 2 && out.top[1].id == 3 && out.top[2].id == 1); /* tie: 2 first */
    CHECK(fabs(out.top[0].p - -0.9175757955891974) < 1e-6 &&
          fabs(out.top[1].p - -0.9175757955891974) < 1e-6 &&
          fabs(out.top[2].p - -1.9175757955891974) < 1e-6);
    CHECK(nt_sampler_sample_ex(s, l, 4, 9, &out) >= 0 && out.n_top == 4);
    CHECK(nt_sampler_sample_ex(s, l, 4, NT_MAX_TOP_LOGPROBS + 1, &out) == -1);
    CHECK(nt_sampler_sample_ex(s, l, 4, -1, &out) == -1);
    nt_sampler_free(s);
}

static void test_draws(void) {
    /* 200,000 draws from {.1,.2,.3,.4}: each frequency's standard deviation
     * is at most sqrt(.25 / 200000) = 0.0011, so 0.005 is over 4 of them */
    const float l[] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    nt_sampler_params p = at_temperature(1.0f);
    p.seed = 99;
    nt_sampler *s = make(p);
    int counts[4] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        int32_t t = nt_sampler_sample(s, l, 4);
        if (t >= 0 && t < 4)
            counts[t]++;
    }
    for (int t = 0; t < 4; t++)
        CHECK_MSG(fabs(counts[t] / (double)n - 0.1 * (t + 1)) < 0.005,
                  "token %d drawn %.4f of the time", t, counts[t] / (double)n);
    nt_sampler_free(s);
    /* nothing outside the kept set: top-k 3 never draws token 0, and
     * top-p 0.65 (.4 + .3 >= .65) never draws 0 or 1 */
    p.top_k = 3;
    s = make(p);
    int outside = 0;
    for (int i = 0; i < 20000; i++)
        outside += nt_sampler_sample(s, l, 4) == 0;
    CHECK(outside == 0);
    nt_sampler_free(s);
    p.top_k = 0;
    p.top_p = 0.65f;
    s = make(p);
    int kept_counts[4] = {0};
    for (int i = 0; i < 20000; i++)
        kept_counts[nt_sampler_sample(s, l, 4) & 3]++;
    CHECK(kept_counts[0] == 0 && kept_counts[1] == 0 && kept_counts[2] > 7000 &&
          kept_counts[3] > 10000);
    nt_sampler_free(s);
}

static uint64_t lcg = 12345;
static float next_logit(void) {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg >> 40) % 20000) / 1000.0f - 10.0f;
}

static void test_seeds(void) {
    const int n_vocab = 256000, n = 200;
    float *l = malloc((size_t)n_vocab * sizeof *l);
    for (int i = 0; i < n_vocab; i++)
        l[i] = next_logit();
    nt_sampler_params p = at_temperature(1.0f);
    p.top_p = 0.9f;
    p.seed = 7;
    nt_sampler *a = make(p), *b = make(p), *d = make(p);
    p.seed = 8;
    nt_sampler *c = make(p);
    int same_ab = 1, same_ad = 1, same_ac = 1;
    nt_token_prob probe[4];
    for (int i = 0; i < n; i++) {
        int32_t x = nt_sampler_sample(a, l, n_vocab);
        same_ab &= x == nt_sampler_sample(b, l, n_vocab);
        nt_sampler_distribution(d, l, n_vocab, probe, 4);  /* draws nothing */
        same_ad &= x == nt_sampler_sample(d, l, n_vocab);
        same_ac &= x == nt_sampler_sample(c, l, n_vocab);
    }
    CHECK(same_ab);
    CHECK(same_ad);
    CHECK(!same_ac);
    nt_sampler_free(a);
    nt_sampler_free(b);
    nt_sampler_free(c);
    nt_sampler_free(d);

    /* speed, for information: top-p 0.9, min-p, all penalties, 4096 tokens
     * of history, 256k vocabulary */
    p.min_p = 0.05f;
    p.repetition_penalty = 1.1f;
    p.frequency_penalty = 0.3f;
    p.presence_penalty = 0.3f;
    nt_sampler *s = make(p);
    int32_t *hist = malloc(4096 * sizeof *hist);
    for (int i = 0; i < 4096; i++)
        hist[i] = (int32_t)((uint32_t)(next_logit() * 1000 + 10000) % (uint32_t)n_vocab);
    nt_sampler_set_prompt(s, hist, 3072, NULL);
    for (int i = 3072; i < 4096; i++)
        nt_sampler_accept(s, hist[i], NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 50; i++)
        nt_sampler_sample(s, l, n_vocab);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / 50;
    printf("speed: %.0f us per token (256k vocabulary, top-p, min-p, penalties over "
           "4096 tokens)\n", us);
    nt_sampler_free(s);
    free(hist);
    free(l);
}

static void test_refusals(void) {
    static const struct {
        const char *field;
        nt_sampler_params p;
    } bad[] = {
        {"temperature", {.temperature = NAN, .top_p = 1, .repetition_penalty = 1}},
        {"top_p", {.top_p = 0, .repetition_penalty = 1}},
        {"top_p", {.top_p = -0.5f, .repetition_penalty = 1}},
        {"top_p", {.top_p = NAN, .repetition_penalty = 1}},
        {"min_p", {.top_p = 1, .min_p = 1.5f, .repetition_penalty = 1}},
        {"min_p", {.top_p = 1, .min_p = NAN, .repetition_penalty = 1}},
        {"repetition_penalty", {.top_p = 1, .repetition_penalty = 0}},
        {"repetition_penalty", {.top_p = 1, .repetition_penalty = INFINITY}},
        {"frequency_penalty", {.top_p = 1, .repetition_penalty = 1, .frequency_penalty = NAN}},
        {"presence_penalty", {.top_p = 1, .repetition_penalty = 1, .presence_penalty = INFINITY}},
        {"penalty_last_n", {.top_p = 1, .repetition_penalty = 1, .penalty_last_n = -1}},
        {"n_logit_bias", {.top_p = 1, .repetition_penalty = 1, .n_logit_bias = 1}},
        {"n_logit_bias", {.top_p = 1, .repetition_penalty = 1, .n_logit_bias = -1}},
    };
    for (int i = 0; i < N(bad); i++) {
        nt_error err;
        nt_sampler *s = nt_sampler_new(&bad[i].p, &err);
        CHECK_MSG(s == NULL && err.status == NT_ERR_ARGUMENT &&
                      strstr(err.message, bad[i].field) != NULL,
                  "case %d (%s): %s", i, bad[i].field, s ? "accepted" : err.message);
        nt_sampler_free(s);
    }
    nt_logit_bias neg = {-1, 1.0f}, inf = {3, INFINITY};
    nt_sampler_params p = nt_sampler_default_params();
    p.n_logit_bias = 1;
    p.logit_bias = &neg;
    nt_error err;
    CHECK(nt_sampler_new(&p, &err) == NULL && strstr(err.message, "logit_bias[0]"));
    p.logit_bias = &inf;
    CHECK(nt_sampler_new(&p, &err) == NULL && strstr(err.message, "logit_bias[0]"));
}

int main(void) {
    test_temperature_and_filters();
    test_bias_and_greedy();
    test_penalties();
    test_logprobs();
    test_draws();
    test_seeds();
    test_refusals();
    return check_summary();
}
