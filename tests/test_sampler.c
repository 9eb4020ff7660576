/*
 * test_sampler.c - the sampler against distributions worked out by hand.
 *
 * Each expectation on a few logits is the exact softmax after the
 * documented steps (bias, penalties, temperature, top-k, top-p, min-p),
 * computed in double precision outside this program (the arithmetic is in
 * the comments) and compared with nt_sampler_distribution to 1e-6. Cases
 * are chosen so that a wrong order of steps, a wrong rule or an off-by-one
 * at a boundary gives a different set of kept tokens, not just a small
 * numeric difference.
 *
 * Then the draw: frequencies follow the distribution; the token drawn is
 * the inverse of the cumulative distribution scanned most likely first,
 * checked against this file's own copy of the generator (xoshiro256**
 * seeded by splitmix64, u from the top 53 bits), on small vocabularies
 * and on 256,000 tokens against a reference that sorts; the same seed
 * gives the same tokens. Then logprobs, odd logits, and refusals that name
 * the parameter and its value.
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

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

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

/* One sampler with params p, its distribution for logits checked, freed. */
static void expect_params(const char *label, nt_sampler_params p, const float *logits, int n,
                          const expect *want, int n_want) {
    nt_sampler *s = make(p);
    if (s)
        expect_dist(label, s, logits, n, want, n_want);
    nt_sampler_free(s);
}

/* probabilities {.5, .25, .15, .1}, {.4, .3, .2, .1} as logits */
#define LOGITS_5_25_15_10 {logf(0.5f), logf(0.25f), logf(0.15f), logf(0.1f)}
#define LOGITS_4_3_2_1 {logf(0.4f), logf(0.3f), logf(0.2f), logf(0.1f)}

static void test_temperature(void) {
    /* {1,2,3} / 2 = {.5, 1, 1.5}: e^.5, e^1, e^1.5 = 1.648721, 2.718282,
     * 4.481689 over their sum 8.848692 */
    const float l3[] = {1, 2, 3};
    expect t2[] = {{2, 0.506480391055654}, {1, 0.3071958857184984}, {0, 0.1863237232258476}};
    expect_params("temperature 2", at_temperature(2.0f), l3, 3, t2, 3);

    /* {1,2,3} / 0.5 = {2, 4, 6}: e^0 / (e^0 + e^2 + e^4) ... relative to 6 */
    expect t05[] = {{2, 0.8668133321973349}, {1, 0.11731042782619838},
                    {0, 0.015876239976466765}};
    expect_params("temperature 0.5", at_temperature(0.5f), l3, 3, t05, 3);

    /* T = 1 is the softmax itself: {.5, .25, .15, .1} back */
    const float lp[] = LOGITS_5_25_15_10;
    expect t1[] = {{0, 0.5}, {1, 0.25}, {2, 0.15}, {3, 0.1}};
    expect_params("temperature 1", at_temperature(1.0f), lp, 4, t1, 4);

    /* a temperature so low that exp((l - max) / T) underflows to 0 for all
     * but the best: (2 - 3) / 0.001 = -1000; zero-probability tokens are not
     * kept, since they could never be drawn */
    expect one[] = {{2, 1.0}};
    expect_params("temperature 0.001", at_temperature(0.001f), l3, 3, one, 1);
}

static void test_top_k(void) {
    /* top-k 2 of {1,2,3,0}: e^3 / (e^3 + e^2) = 1 / (1 + e^-1) = .731059 */
    const float l4[] = {1, 2, 3, 0};
    nt_sampler_params p = at_temperature(1.0f);
    p.top_k = 2;
    expect k2[] = {{2, 0.7310585786300049}, {1, 0.2689414213699951}};
    expect_params("top-k 2", p, l4, 4, k2, 2);
    /* top-k 1 at T > 0 keeps the best */
    p.top_k = 1;
    expect k1[] = {{2, 1.0}};
    expect_params("top-k 1", p, l4, 4, k1, 1);
    /* top-k >= n_vocab and top-k < 0 are off: softmax{1,2,3,0} = e^l / 31.193 */
    expect all[] = {{2, 0.6439142598879724}, {1, 0.23688281808991016},
                    {0, 0.08714431874203257}, {3, 0.03205860328008499}};
    p.top_k = 4;
    expect_params("top-k 4 of 4", p, l4, 4, all, 4);
    p.top_k = -3;
    expect_params("top-k -3", p, l4, 4, all, 4);
    /* ties at the cut: {5,5,5,1}, top-k 2 keeps the two lowest ids */
    const float tie[] = {5, 5, 5, 1};
    p.top_k = 2;
    expect k2tie[] = {{0, 0.5}, {1, 0.5}};
    expect_params("top-k 2, ties", p, tie, 4, k2tie, 2);
}

static void test_top_p(void) {
    /* equal logits: weights exactly 1 each, total 4, so top-p 0.5 targets
     * exactly 2.0: tokens 0 and 1 (ties: lower ids first) reach it exactly
     * and are kept alone; the next float above 0.5 needs a third token */
    const float flat[] = {0, 0, 0, 0};
    nt_sampler_params p = at_temperature(1.0f);
    p.top_p = 0.5f;
    expect half[] = {{0, 0.5}, {1, 0.5}};
    expect_params("top-p exactly 0.5", p, flat, 4, half, 2);
    p.top_p = nextafterf(0.5f, 1.0f);
    expect third[] = {{0, 1.0 / 3}, {1, 1.0 / 3}, {2, 1.0 / 3}};
    expect_params("top-p just above 0.5", p, flat, 4, third, 3);
    p.top_p = 0.75f;  /* exactly 3 of 4 */
    expect_params("top-p exactly 0.75", p, flat, 4, third, 3);

    /* {.5, .25, .15, .1}: 0.74 -> {.5, .25} (0.75 >= 0.74), renormalized
     * .5/.75 and .25/.75; 0.76 -> three, over .9 */
    const float lp[] = LOGITS_5_25_15_10;
    p.top_p = 0.74f;
    expect p74[] = {{0, 0.5 / 0.75}, {1, 0.25 / 0.75}};
    expect_params("top-p 0.74", p, lp, 4, p74, 2);
    p.top_p = 0.76f;
    expect p76[] = {{0, 0.5 / 0.9}, {1, 0.25 / 0.9}, {2, 0.15 / 0.9}};
    expect_params("top-p 0.76", p, lp, 4, p76, 3);
    /* a p below the top token's probability keeps that token alone */
    p.top_p = 0.3f;
    expect p30[] = {{0, 1.0}};
    expect_params("top-p below the top token", p, lp, 4, p30, 1);
    /* top_p >= 1 is off, 1 or more */
    p.top_p = 1.0f;
    expect off[] = {{0, 0.5}, {1, 0.25}, {2, 0.15}, {3, 0.1}};
    expect_params("top-p 1", p, lp, 4, off, 4);
    p.top_p = 7.0f;
    expect_params("top-p 7", p, lp, 4, off, 4);
}

static void test_min_p(void) {
    /* {.4, .3, .2, .1}: min-p keeps p >= min_p * 0.4. 0.49 keeps .2
     * (>= 0.196), 0.51 does not (< 0.204) */
    const float lm[] = LOGITS_4_3_2_1;
    nt_sampler_params p = at_temperature(1.0f);
    p.min_p = 0.49f;
    expect m49[] = {{0, 0.4 / 0.9}, {1, 0.3 / 0.9}, {2, 0.2 / 0.9}};
    expect_params("min-p 0.49", p, lm, 4, m49, 3);
    p.min_p = 0.51f;
    expect m51[] = {{0, 0.4 / 0.7}, {1, 0.3 / 0.7}};
    expect_params("min-p 0.51", p, lm, 4, m51, 2);
    /* equality: min-p 1 keeps exactly the tokens tied with the best */
    const float tie[] = {3, 3, 1, 0};
    p.min_p = 1.0f;
    expect m1[] = {{0, 0.5}, {1, 0.5}};
    expect_params("min-p 1, ties", p, tie, 4, m1, 2);
    /* 0 and below are off */
    expect all[] = {{0, 0.4}, {1, 0.3}, {2, 0.2}, {3, 0.1}};
    p.min_p = 0.0f;
    expect_params("min-p 0", p, lm, 4, all, 4);
    p.min_p = -0.5f;
    expect_params("min-p -0.5", p, lm, 4, all, 4);
}

/* Cases where the documented order of the steps decides what is kept. */
static void test_order(void) {
    /* temperature before top-p: {2,1,0} at T=1 is {.665, .245, .090} and
     * top-p 0.6 keeps one token; at T=3 it is softmax{2/3, 1/3, 0} =
     * {.448, .321, .230}, and 0.6 needs two: e^(2/3), e^(1/3) renormalized,
     * 1 / (1 + e^(-1/3)) = .582570. (Top-p first, at T=1, would keep one.) */
    const float l210[] = {2, 1, 0};
    nt_sampler_params p = at_temperature(1.0f);
    p.top_p = 0.6f;
    expect one[] = {{0, 1.0}};
    expect_params("top-p 0.6 at T=1", p, l210, 3, one, 1);
    p.temperature = 3.0f;
    expect two[] = {{0, 0.5825702064623147}, {1, 0.41742979353768533}};
    expect_params("top-p 0.6 at T=3", p, l210, 3, two, 2);

    /* temperature before min-p: {.4,.3,.2,.1} at T=2 is proportional to
     * sqrt(.4), sqrt(.3), ...: ratios to the top sqrt(.75), sqrt(.5),
     * sqrt(.25) = .866, .707, .5, so min-p 0.6 keeps three: sqrt(.4) /
     * (sqrt(.4) + sqrt(.3) + sqrt(.2)) = .632456 / 1.627401 = .388631 ...
     * (at T=1 the ratios .75, .5, .25 would keep two) */
    const float lm[] = LOGITS_4_3_2_1;
    p = at_temperature(2.0f);
    p.min_p = 0.6f;
    expect mt[] = {{0, 0.3886314142121213}, {1, 0.33656467741636975}, {2, 0.274803908371509}};
    expect_params("min-p 0.6 at T=2", p, lm, 4, mt, 3);
    /* ... and top-k before min-p: top-k 2, then min-p 0.6 at T=2 keeps the
     * two: sqrt(.4) / (sqrt(.4) + sqrt(.3)) = .535898 */
    p.top_k = 2;
    expect mk[] = {{0, 0.5358983848622454}, {1, 0.46410161513775455}};
    expect_params("top-k 2, min-p 0.6 at T=2", p, lm, 4, mk, 2);

    /* top-k before top-p, which sees the renormalized top-k: top-k 2 of
     * {.4,.3,.2,.1} is {4/7, 3/7} and top-p 0.5 keeps 4/7 alone; top-p on
     * the whole distribution (.4 < .5) would keep two */
    p = at_temperature(1.0f);
    p.top_k = 2;
    p.top_p = 0.5f;
    expect kp[] = {{0, 1.0}};
    expect_params("top-k 2 then top-p 0.5", p, lm, 4, kp, 1);

    /* top-p before min-p: top-p 0.75 keeps {.4,.3,.2} (.7 < .75 <= .9),
     * then min-p 0.3 (p >= .12) keeps all three: 4/9, 3/9, 2/9. Min-p first
     * would give {.444, .333, .222} and top-p 0.75 would then keep two. */
    p = at_temperature(1.0f);
    p.top_p = 0.75f;
    p.min_p = 0.3f;
    expect pm[] = {{0, 4.0 / 9}, {1, 3.0 / 9}, {2, 2.0 / 9}};
    expect_params("top-p 0.75 then min-p 0.3", p, lm, 4, pm, 3);

    /* bias before temperature: bias ln 4 on token 1 of {0,0} at T=2 adds
     * ln 4 / 2 = ln 2 after division: {1/3, 2/3} (bias after the division
     * would give {1/5, 4/5}) */
    const float zz[] = {0, 0};
    nt_logit_bias b = {1, logf(4.0f)};
    p = at_temperature(2.0f);
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    expect bt[] = {{1, 2.0 / 3}, {0, 1.0 / 3}};
    expect_params("bias before temperature", p, zz, 2, bt, 2);

    /* frequency penalty before temperature: token 1 accepted once,
     * frequency 1: {0, -1} / 2 = {0, -.5}: 1 / (1 + e^-.5) = .622459 (after
     * the division it would be {0, -1}: .731059) */
    p = at_temperature(2.0f);
    p.frequency_penalty = 1.0f;
    nt_sampler *s = make(p);
    nt_error err;
    CHECK(nt_sampler_accept(s, 1, &err) == NT_OK);
    expect ft[] = {{0, 0.6224593312018546}, {1, 0.37754066879814546}};
    expect_dist("frequency before temperature", s, zz, 2, ft, 2);
    nt_sampler_free(s);
}

static void test_bias_and_greedy(void) {
    /* bias ln 3 on token 1 of four equal logits: e^ln3 = 3 against 1, 1, 1:
     * 3/6 and 1/6 each */
    const float flat[] = {0, 0, 0, 0};
    nt_logit_bias b[2] = {{1, logf(3.0f)}, {0, 0.0f}};
    nt_sampler_params p = at_temperature(1.0f);
    p.logit_bias = b;
    p.n_logit_bias = 1;
    nt_sampler *s = make(p);
    expect biased[] = {{1, 0.5}, {0, 1.0 / 6}, {2, 1.0 / 6}, {3, 1.0 / 6}};
    b[0].bias = 50.0f;  /* the sampler keeps its own copy */
    expect_dist("bias ln 3", s, flat, 4, biased, 4);
    nt_sampler_free(s);
    /* the same id twice: the biases add up, ln 3 + ln 2 = ln 6: 6/9, 1/9 */
    b[0] = (nt_logit_bias){2, logf(3.0f)};
    b[1] = (nt_logit_bias){2, logf(2.0f)};
    p.n_logit_bias = 2;
    expect twice[] = {{2, 6.0 / 9}, {0, 1.0 / 9}, {1, 1.0 / 9}, {3, 1.0 / 9}};
    expect_params("bias twice", p, flat, 4, twice, 4);
    p.n_logit_bias = 1;

    /* greedy: ties go to the lowest id, all equal too */
    const float l[] = {5, 1, 1, 0};
    const float late_tie[] = {0, 2, 7, 7};
    s = make(nt_sampler_default_params());
    CHECK(nt_sampler_sample(s, l, 4) == 0);
    CHECK(nt_sampler_sample(s, flat, 4) == 0);
    CHECK(nt_sampler_sample(s, late_tie, 4) == 2);
    expect g[] = {{2, 1.0}};
    expect_dist("greedy", s, late_tie, 4, g, 1);
    nt_sampler_free(s);
    /* greedy applies the bias: -100 bans token 0 (then 1 and 2 tie: 1),
     * +100 forces token 3 */
    p = nt_sampler_default_params();
    p.logit_bias = b;
    p.n_logit_bias = 1;
    b[0] = (nt_logit_bias){0, -100.0f};
    s = make(p);
    CHECK(nt_sampler_sample(s, l, 4) == 1);
    nt_sampler_free(s);
    b[0] = (nt_logit_bias){3, 100.0f};
    s = make(p);
    CHECK(nt_sampler_sample(s, l, 4) == 3);
    expect forced[] = {{3, 1.0}};
    expect_dist("greedy, forced", s, l, 4, forced, 1);
    nt_sampler_free(s);
    /* -100 at T=1 leaves e^-100 / (1 + e^-100): practically banned: over
     * 2000 draws from {0, 0} with token 0 at -100, token 0 never comes */
    const float zz[] = {0, 0};
    b[0] = (nt_logit_bias){0, -100.0f};
    p.temperature = 1.0f;
    s = make(p);
    int zeros = 0;
    for (int i = 0; i < 2000; i++)
        zeros += nt_sampler_sample(s, zz, 2) != 1;
    CHECK(zeros == 0);
    nt_sampler_free(s);
    /* a bias past the vocabulary is an error, not ignored */
    b[0] = (nt_logit_bias){4, 1.0f};
    p.temperature = 0.0f;
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
    /* repetition 2 on prompt tokens {0, 1, 0}: 2 / 2 = 1 (positive: divided),
     * -2 * 2 = -4 (negative: multiplied), token 0 once however often it
     * appears (twice would give 0.5): softmax{1, -4, 1, .5} =
     * e^l / (e + e^-4 + e + e^.5) = e^l / 7.1036 */
    nt_sampler_params p = at_temperature(1.0f);
    p.repetition_penalty = 2.0f;
    nt_sampler *s = make(p);
    const int32_t prompt[] = {0, 1, 0};
    CHECK(nt_sampler_set_prompt(s, prompt, 3, &err) == NT_OK);
    expect rep[] = {{0, 0.38266253894899155}, {2, 0.38266253894899155},
                    {3, 0.23209656219604313}, {1, 0.0025783599059737835}};
    expect_dist("repetition 2", s, l, 4, rep, 4);
    nt_sampler_free(s);

    /* penalty_last_n 1: prompt {0}, reply {1}: only token 1 is penalized:
     * softmax{2, -4, 1, .5} */
    p.penalty_last_n = 1;
    s = make(p);
    const int32_t zero[] = {0};
    CHECK(nt_sampler_set_prompt(s, zero, 1, &err) == NT_OK);
    CHECK(nt_sampler_accept(s, 1, &err) == NT_OK);
    expect win[] = {{0, 0.6275540061562002}, {2, 0.2308642170896428},
                    {3, 0.14002622589542166}, {1, 0.0015555508587353744}};
    expect_dist("repetition window", s, l, 4, win, 4);
    /* a new prompt forgets the reply: softmax{2, -2, 1, .5}, no penalty */
    CHECK(nt_sampler_set_prompt(s, NULL, 0, &err) == NT_OK);
    expect none[] = {{0, 0.6213784355177182}, {2, 0.2285923516142433},
                     {3, 0.13864826982984924}, {1, 0.011380943038189123}};
    expect_dist("history cleared", s, l, 4, none, 4);
    nt_sampler_free(s);

    /* a window across the prompt and the reply: last 2 of prompt {0, 2} ++
     * reply {1} is {2, 1}: token 2: 1 / 2 = .5, token 1: -4, token 0
     * untouched: softmax{2, -4, .5, .5} (ties: 2 before 3) */
    p.penalty_last_n = 2;
    s = make(p);
    const int32_t zero_two[] = {0, 2};
    CHECK(nt_sampler_set_prompt(s, zero_two, 2, &err) == NT_OK);
    CHECK(nt_sampler_accept(s, 1, &err) == NT_OK);
    expect win2[] = {{0, 0.6902554221117507}, {2, 0.15401680287911698},
                     {3, 0.15401680287911698}, {1, 0.0017109721300152582}};
    expect_dist("repetition window of 2", s, l, 4, win2, 4);
    nt_sampler_free(s);

    /* frequency 0.5 and presence 0.25 over the reply {2, 2, 1, 2}; the
     * prompt's tokens do not count, neither 3 and 0 nor another 2: token 2:
     * 1 - 3*.5 - .25 = -.75, token 1: -2 - 1*.5 - .25 = -2.75;
     * softmax{2, -2.75, -.75, .5} */
    p = at_temperature(1.0f);
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    s = make(p);
    const int32_t three[] = {3, 2, 0, 3};
    CHECK(nt_sampler_set_prompt(s, three, 4, &err) == NT_OK);
    const int32_t reply[] = {2, 2, 1, 2};
    for (int i = 0; i < 4; i++)
        CHECK(nt_sampler_accept(s, reply[i], &err) == NT_OK);
    expect freq[] = {{0, 0.7717778042571604}, {3, 0.1722069050629037},
                     {2, 0.04933810435296927}, {1, 0.00667718632696665}};
    expect_dist("frequency and presence", s, l, 4, freq, 4);
    /* the same again: counting leaves no state behind */
    expect_dist("frequency and presence, twice", s, l, 4, freq, 4);
    /* a refused history call changes nothing */
    const int32_t bad[] = {1, -5};
    CHECK(nt_sampler_set_prompt(s, bad, 2, &err) == NT_ERR_ARGUMENT);
    CHECK(strstr(err.message, "-5") != NULL);
    CHECK(nt_sampler_accept(s, -1, &err) == NT_ERR_ARGUMENT);
    CHECK(strstr(err.message, "-1") != NULL);
    expect_dist("after refusals", s, l, 4, freq, 4);
    CHECK(nt_sampler_set_prompt(s, NULL, 2, &err) == NT_ERR_ARGUMENT);
    CHECK(nt_sampler_set_prompt(s, three, -1, &err) == NT_ERR_ARGUMENT);
    CHECK(nt_sampler_set_prompt(NULL, three, 1, &err) == NT_ERR_ARGUMENT);
    CHECK(nt_sampler_accept(NULL, 1, &err) == NT_ERR_ARGUMENT);
    /* history naming a token past the vocabulary: refused */
    CHECK(nt_sampler_accept(s, 9, &err) == NT_OK);
    CHECK(nt_sampler_sample(s, l, 4) == -1);
    nt_sampler_free(s);

    /* a negative frequency penalty favours repeats: reply {1, 1}, greedy:
     * token 1: -2 - 2 * -2.5 = 3, above token 0's 2 */
    p = at_temperature(0.0f);
    p.frequency_penalty = -2.5f;
    s = make(p);
    CHECK(nt_sampler_sample(s, l, 4) == 0);
    CHECK(nt_sampler_accept(s, 1, &err) == NT_OK && nt_sampler_accept(s, 1, &err) == NT_OK);
    CHECK(nt_sampler_sample(s, l, 4) == 1);
    nt_sampler_free(s);

    /* greedy with a repetition penalty: token 0 (2 -> 2/3) loses to token 2 */
    p = nt_sampler_default_params();
    p.repetition_penalty = 3.0f;
    s = make(p);
    CHECK(nt_sampler_set_prompt(s, zero, 1, &err) == NT_OK);
    CHECK(nt_sampler_sample(s, l, 4) == 2);
    nt_sampler_free(s);

    /* a long history grows its arrays: 10,000 accepted tokens, all 3 */
    p = at_temperature(0.0f);
    p.presence_penalty = 1.0f;
    p.frequency_penalty = 0.001f;
    s = make(p);
    int ok = 1;
    for (int i = 0; i < 10000; i++)
        ok &= nt_sampler_accept(s, 3, NULL) == NT_OK;
    CHECK(ok);
    /* token 3: .5 - 10000 * .001 - 1 = -10.5, under token 1's -2: {2,-2,1,-10.5} */
    const float up[] = {-5, -2, -3, 0.5f};
    CHECK(nt_sampler_sample(s, up, 4) == 1);
    nt_sampler_free(s);
}

static void test_logprobs(void) {
    /* the model's log-softmax of {1,2,3,3}, whatever temperature, bias and
     * penalties: logit - log Z, log Z = 3 + ln(e^-2 + e^-1 + 2) = 3.917576 */
    const float l[] = {1, 2, 3, 3};
    const double log_z = 3.9175757955891974;
    nt_logit_bias b = {0, 50.0f};
    nt_sampler_params p = at_temperature(0.7f);
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    p.repetition_penalty = 1.3f;
    nt_sampler *s = make(p);
    const int32_t two[] = {2};
    CHECK(nt_sampler_set_prompt(s, two, 1, NULL) == NT_OK);
    nt_sample out;
    int32_t id = nt_sampler_sample_ex(s, l, 4, 3, &out);
    CHECK(id == 0 && out.id == 0);  /* the bias makes 0 all but certain */
    CHECK(fabs(out.logprob - (1 - log_z)) < 1e-6);
    CHECK(out.n_top == 3);
    /* most likely first; 2 and 3 tie, 2 first */
    CHECK(out.top[0].id == 2 && out.top[1].id == 3 && out.top[2].id == 1);
    CHECK(fabs(out.top[0].p - (3 - log_z)) < 1e-6 && fabs(out.top[1].p - (3 - log_z)) < 1e-6 &&
          fabs(out.top[2].p - (2 - log_z)) < 1e-6);
    /* a tie at the cut: of {3, 5, 3, 3} the 2 best are 1 and 0 (0 before 2, 3) */
    const float cut[] = {3, 5, 3, 3};
    CHECK(nt_sampler_sample_ex(s, cut, 4, 2, &out) == 0 && out.n_top == 2 &&
          out.top[0].id == 1 && out.top[1].id == 0);
    /* n_top 0: the chosen token's logprob only */
    CHECK(nt_sampler_sample_ex(s, l, 4, 0, &out) == 0 && out.n_top == 0 &&
          fabs(out.logprob - (1 - log_z)) < 1e-6);
    /* n_top beyond n_vocab: all of them */
    CHECK(nt_sampler_sample_ex(s, l, 4, 9, &out) >= 0 && out.n_top == 4 &&
          out.top[3].id == 0 && fabs(out.top[3].p - (1 - log_z)) < 1e-6);
    /* n_top out of 0..NT_MAX_TOP_LOGPROBS: refused */
    CHECK(nt_sampler_sample_ex(s, l, 4, NT_MAX_TOP_LOGPROBS + 1, &out) == -1);
    CHECK(nt_sampler_sample_ex(s, l, 4, -1, &out) == -1);
    /* out may be NULL */
    CHECK(nt_sampler_sample_ex(s, l, 4, 5, NULL) == 0);
    nt_sampler_free(s);

    /* NT_MAX_TOP_LOGPROBS of 30 logits l_i = (i * 7) % 30 / 4 (a shuffle of
     * 0, .25, .., 7.25), with two extra ties: most likely first, ties by id */
    float l30[30];
    for (int i = 0; i < 30; i++)
        l30[i] = (float)((i * 7) % 30) / 4.0f;
    l30[3] = l30[13] = 7.25f;  /* (13 * 7) % 30 = 1; ties with id 17's 29 */
    double m = 7.25, sum = 0;
    for (int i = 0; i < 30; i++)
        sum += exp(l30[i] - m);
    s = make(nt_sampler_default_params());
    id = nt_sampler_sample_ex(s, l30, 30, NT_MAX_TOP_LOGPROBS, &out);
    CHECK(id == 3 && out.n_top == NT_MAX_TOP_LOGPROBS);
    CHECK(out.top[0].id == 3 && out.top[1].id == 13 && out.top[2].id == 17);
    int ordered = 1;
    for (int i = 0; i < out.n_top; i++) {
        double want = l30[out.top[i].id] - (m + log(sum));
        ordered &= fabs(out.top[i].p - want) < 1e-6;
        if (i > 0)
            ordered &= out.top[i].p < out.top[i - 1].p ||
                       (out.top[i].p == out.top[i - 1].p && out.top[i].id > out.top[i - 1].id);
    }
    CHECK(ordered);
    CHECK(fabs(out.logprob - (7.25 - (m + log(sum)))) < 1e-6);
    nt_sampler_free(s);
}

static void test_odd_logits(void) {
    /* -inf logits have probability 0: never kept, never drawn, logprob
     * -inf. softmax{1, 0} = {.731059, .268941}; log-softmax: 1 - ln(e + 1) */
    const float l[] = {-INFINITY, 1, -INFINITY, 0};
    nt_sampler_params p = at_temperature(1.0f);
    expect two[] = {{1, 0.7310585786300049}, {3, 0.2689414213699951}};
    nt_sampler *s = make(p);
    expect_dist("-inf logits", s, l, 4, two, 2);
    int outside = 0;
    nt_sample out;
    for (int i = 0; i < 2000; i++) {
        int32_t t = nt_sampler_sample_ex(s, l, 4, 4, &out);
        outside += t != 1 && t != 3;
    }
    CHECK(outside == 0);
    CHECK(out.n_top == 4 && out.top[0].id == 1 && out.top[1].id == 3 &&
          fabs(out.top[0].p - -0.3132616875182228) < 1e-6 && isinf(out.top[2].p) &&
          out.top[2].p < 0 && out.top[2].id == 0 && out.top[3].id == 2);
    /* no token possible, or a broken row: -1, greedy or not */
    const float none[] = {-INFINITY, -INFINITY};
    const float nan_row[] = {1, NAN, 0};
    const float inf_row[] = {1, INFINITY, 0};
    CHECK(nt_sampler_sample(s, none, 2) == -1);
    CHECK(nt_sampler_sample(s, nan_row, 3) == -1);
    CHECK(nt_sampler_sample(s, inf_row, 3) == -1);
    CHECK(nt_sampler_distribution(s, nan_row, 3, NULL, 0) == -1);
    nt_sampler_free(s);
    s = make(nt_sampler_default_params());
    CHECK(nt_sampler_sample(s, l, 4) == 1);
    CHECK(nt_sampler_sample(s, none, 2) == -1);
    CHECK(nt_sampler_sample(s, nan_row, 3) == -1);
    CHECK(nt_sampler_sample(s, inf_row, 3) == -1);
    /* bad arguments */
    nt_token_prob d[2];
    CHECK(nt_sampler_sample(s, NULL, 4) == -1);
    CHECK(nt_sampler_sample(s, l, 0) == -1);
    CHECK(nt_sampler_sample(NULL, l, 4) == -1);
    CHECK(nt_sampler_distribution(s, l, 4, NULL, 1) == -1);
    CHECK(nt_sampler_distribution(s, l, 4, d, -1) == -1);
    /* max smaller than the kept set: returns the count, writes max */
    nt_sampler_free(s);
    s = make(at_temperature(1.0f));
    const float lp[] = LOGITS_5_25_15_10;
    d[1].id = -7;
    CHECK(nt_sampler_distribution(s, lp, 4, d, 1) == 4 && d[0].id == 0 &&
          fabs(d[0].p - 0.5) < 1e-6 && d[1].id == -7);
    CHECK(nt_sampler_distribution(s, lp, 4, NULL, 0) == 4);
    nt_sampler_free(s);
}

/* ---- the draw ------------------------------------------------------------------- */

/* This file's own copy of the generator the header promises: xoshiro256**
 * seeded with four splitmix64 outputs, u in [0, 1) from the top 53 bits. */
typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static rng rng_seeded(uint64_t seed) {
    rng r;
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        r.s[i] = z ^ (z >> 31);
    }
    return r;
}

static double rng_unit(rng *r) {
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return (double)(result >> 11) / 9007199254740992.0;
}

/* The token the inverse cumulative distribution gives for u, scanning
 * p[0..n) (most likely first): the first whose running sum exceeds u times
 * the whole. */
static int32_t inverse_cdf(const int32_t *ids, const double *p, int n, double u) {
    double total = 0, acc = 0;
    for (int i = 0; i < n; i++)
        total += p[i];
    for (int i = 0; i < n; i++)
        if ((acc += p[i]) > u * total)
            return ids[i];
    return ids[n - 1];
}

static void test_draws(void) {
    /* 200,000 draws from the 4 tokens top-k 4 keeps of 6 logits at T=1.3.
     * Each frequency is a binomial proportion with standard deviation at
     * most sqrt(.25 / 200000) = .00112, so .005 is 4.5 of them: a right
     * sampler passes for all but ~1e-5 of seeds (this one is fixed), and a
     * sampler drawing from a distribution .005 off fails */
    const float l[] = {0.5f, 2.0f, -1.0f, 1.2f, 3.0f, -3.0f};
    nt_sampler_params p = at_temperature(1.3f);
    p.top_k = 4;
    p.seed = 99;
    nt_sampler *s = make(p);
    nt_token_prob d[6];
    CHECK(nt_sampler_distribution(s, l, 6, d, 6) == 4);
    int counts[6] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        int32_t t = nt_sampler_sample(s, l, 6);
        counts[t >= 0 && t < 6 ? t : 5]++;
    }
    CHECK_MSG(counts[2] == 0 && counts[5] == 0, "drawn outside the kept set: %d, %d",
              counts[2], counts[5]);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(fabs(counts[d[i].id] / (double)n - d[i].p) < 0.005,
                  "token %d drawn %.4f of the time, p %.4f", (int)d[i].id,
                  counts[d[i].id] / (double)n, (double)d[i].p);
    nt_sampler_free(s);

    /* top-p 0.65 on {.1,.2,.3,.4} keeps .4 + .3 (>= .65): never 0 or 1 */
    const float lq[] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    p = at_temperature(1.0f);
    p.top_p = 0.65f;
    s = make(p);
    int kept_counts[4] = {0};
    for (int i = 0; i < 20000; i++)
        kept_counts[nt_sampler_sample(s, lq, 4) & 3]++;
    CHECK(kept_counts[0] == 0 && kept_counts[1] == 0 && kept_counts[2] > 7000 &&
          kept_counts[3] > 10000);
    nt_sampler_free(s);
}

/* The draw is the inverse of the cumulative distribution scanned most
 * likely first, with one uniform per sampled token. Token probabilities
 * {0: .2, 1: .4, 2: .1, 3: .3}: most likely first is 1, 3, 0, 2, so u < .4
 * gives 1, u < .7 gives 3, u < .9 gives 0, else 2 (scanning by id would
 * give 0 for u < .2). Every third call gets a row where min-p 0.5 keeps
 * one token; it still uses up a uniform. */
static void test_draw_order(void) {
    const float l[] = {logf(0.2f), logf(0.4f), logf(0.1f), logf(0.3f)};
    const float single[] = {-9, -9, 0, -9};  /* e^-9 < 0.5: token 2 alone */
    const int32_t order[] = {1, 3, 0, 2};
    const double prob[] = {0.4, 0.3, 0.2, 0.1};
    nt_sampler_params p = at_temperature(1.0f);
    p.min_p = 0.2f;  /* keeps all four of l (.1 >= .2 * .4) */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        p.seed = seed;
        nt_sampler *s = make(p);
        rng r = rng_seeded(seed);
        int same = 1, by_id_differs = 0;
        for (int i = 0; i < 3000; i++) {
            double u = rng_unit(&r);
            if (i % 3 == 2) {
                same &= nt_sampler_sample(s, single, 4) == 2;
                continue;
            }
            int32_t want = inverse_cdf(order, prob, 4, u);
            by_id_differs += want != (u < 0.2 ? 0 : u < 0.6 ? 1 : u < 0.7 ? 2 : 3);
            same &= nt_sampler_sample(s, l, 4) == want;
        }
        CHECK_MSG(same, "seed %d: the draws are not the inverse CDF, most likely first",
                  (int)seed);
        CHECK(by_id_differs > 500);  /* the test can tell the two scans apart */
        nt_sampler_free(s);
    }
}

/* ---- 256,000 tokens ----------------------------------------------------------------- */

static uint64_t lcg = 12345;
static float next_logit(void) {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg >> 40) % 20000) / 1000.0f - 10.0f;  /* many ties */
}

typedef struct ranked {
    float logit;
    int32_t id;
} ranked;

static int by_logit_then_id(const void *x, const void *y) {
    const ranked *a = x, *b = y;
    if (a->logit != b->logit)
        return a->logit > b->logit ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/*
 * The kept distribution by the definition, sorting everything: the order,
 * top-k, the shortest prefix reaching top-p of the total, min-p against the
 * best. Weights are computed as the sampler computes them, float
 * exp((l - l_max) / T), so that only the order of the additions differs.
 * Fills ids and p (most likely first), returns how many are kept.
 */
static int reference(const ranked *sorted, int n, nt_sampler_params p, int32_t *ids,
                     double *prob) {
    float max = sorted[0].logit;
    int k = p.top_k > 0 && p.top_k < n ? p.top_k : n;
    double total = 0;
    for (int i = 0; i < k; i++)
        total += prob[i] = expf((sorted[i].logit - max) / p.temperature);
    if (p.top_p < 1.0f) {
        double acc = 0;
        int i = 0;
        while (i < k && acc < p.top_p * total)
            acc += prob[i++];
        k = i;
    }
    int kept = 0;
    for (int i = 0; i < k; i++)
        if (prob[i] > 0 && prob[i] >= p.min_p) {
            prob[kept] = prob[i];
            ids[kept++] = sorted[i].id;
        }
    double mass = 0;
    for (int i = 0; i < kept; i++)
        mass += prob[i];
    for (int i = 0; i < kept; i++)
        prob[i] /= mass;
    return kept;
}

static void test_large_vocabulary(void) {
    const int n_vocab = 256000;
    float *l = malloc((size_t)n_vocab * sizeof *l);
    ranked *sorted = malloc((size_t)n_vocab * sizeof *sorted);
    int32_t *ids = malloc((size_t)n_vocab * sizeof *ids);
    double *prob = malloc((size_t)n_vocab * sizeof *prob);
    nt_token_prob *got = malloc((size_t)n_vocab * sizeof *got);
    for (int i = 0; i < n_vocab; i++) {
        l[i] = next_logit();
        sorted[i] = (ranked){l[i], i};
    }
    qsort(sorted, (size_t)n_vocab, sizeof *sorted, by_logit_then_id);

    /* the kept distributions against the reference */
    static const struct {
        float temperature, top_p, min_p;
        int top_k;
    } cases[] = {
        {1.0f, 0.9f, 0.0f, 0},     {1.0f, 1.0f, 0.0f, 50},   {0.8f, 0.5f, 0.0f, 0},
        {1.0f, 0.95f, 0.05f, 0},   {2.0f, 0.9f, 0.0f, 1000}, {1.0f, 1.0f, 0.3f, 0},
        {1.0f, 1.0f, 0.0f, 0},     {0.7f, 0.999f, 0.0f, 0},  {1.0f, 0.9f, 0.0f, 255999},
    };
    for (int c = 0; c < N(cases); c++) {
        nt_sampler_params p = at_temperature(cases[c].temperature);
        p.top_p = cases[c].top_p;
        p.min_p = cases[c].min_p;
        p.top_k = cases[c].top_k;
        int want = reference(sorted, n_vocab, p, ids, prob);
        nt_sampler *s = make(p);
        int kept = nt_sampler_distribution(s, l, n_vocab, got, n_vocab);
        int same = kept == want;
        for (int i = 0; same && i < kept; i++)
            same = got[i].id == ids[i] && fabs(got[i].p - prob[i]) < 1e-6;
        CHECK_MSG(same, "case %d: %d tokens kept, expected %d", c, kept, want);
        nt_sampler_free(s);
    }

    /* draws: the same seed gives the same 1000 tokens, and they are the
     * reference's inverse CDF for this file's copy of the generator; the
     * distribution (asked for before every 10th draw) draws nothing;
     * another seed differs */
    nt_sampler_params p = at_temperature(1.0f);
    p.top_p = 0.9f;
    p.seed = 7;
    int kept = reference(sorted, n_vocab, p, ids, prob);
    nt_sampler *a = make(p), *b = make(p);
    p.seed = 8;
    nt_sampler *c = make(p);
    rng r = rng_seeded(7);
    int same_ab = 1, same_ref = 1, differs_ac = 0;
    nt_token_prob probe[4];
    for (int i = 0; i < 1000; i++) {
        int32_t x = nt_sampler_sample(a, l, n_vocab);
        if (i % 10 == 0)
            CHECK(nt_sampler_distribution(b, l, n_vocab, probe, 4) == kept);
        same_ab &= x == nt_sampler_sample(b, l, n_vocab);
        same_ref &= x == inverse_cdf(ids, prob, kept, rng_unit(&r));
        if (!differs_ac)
            differs_ac = x != nt_sampler_sample(c, l, n_vocab);
    }
    CHECK(same_ab);
    CHECK(same_ref);
    CHECK(differs_ac);
    nt_sampler_free(a);
    nt_sampler_free(b);
    nt_sampler_free(c);

    /* speed, for information: top-p 0.9, all penalties over 4096 tokens of
     * history (3072 of prompt, 1024 of reply), 256k vocabulary */
    p.repetition_penalty = 1.1f;
    p.frequency_penalty = 0.3f;
    p.presence_penalty = 0.3f;
    p.penalty_last_n = 0;
    nt_sampler *s = make(p);
    for (int i = 0; i < 4096; i++)
        ids[i] = (int32_t)((lcg = lcg * 6364136223846793005ull + 1) >> 33) % n_vocab;
    nt_sampler_set_prompt(s, ids, 3072, NULL);
    for (int i = 3072; i < 4096; i++)
        nt_sampler_accept(s, ids[i], NULL);
    nt_sampler_sample(s, l, n_vocab);  /* allocates */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 50; i++)
        nt_sampler_sample(s, l, n_vocab);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                1e3 / 50;
    printf("speed: %.0f us per token (256k vocabulary, top-p 0.9, penalties over 4096 "
           "tokens)\n", us);
    nt_sampler_free(s);
    free(l);
    free(sorted);
    free(ids);
    free(prob);
    free(got);
}

/* ---- refusals ------------------------------------------------------------------------ */

static void test_refusals(void) {
    static const struct {
        const char *field, *value;
        nt_sampler_params p;
    } bad[] = {
        {"temperature", "nan", {.temperature = NAN, .top_p = 1, .repetition_penalty = 1}},
        {"temperature", "inf", {.temperature = INFINITY, .top_p = 1, .repetition_penalty = 1}},
        {"top_p", "0", {.top_p = 0, .repetition_penalty = 1}},
        {"top_p", "-0.5", {.top_p = -0.5f, .repetition_penalty = 1}},
        {"top_p", "nan", {.top_p = NAN, .repetition_penalty = 1}},
        {"min_p", "1.5", {.top_p = 1, .min_p = 1.5f, .repetition_penalty = 1}},
        {"min_p", "nan", {.top_p = 1, .min_p = NAN, .repetition_penalty = 1}},
        {"repetition_penalty", "0", {.top_p = 1, .repetition_penalty = 0}},
        {"repetition_penalty", "-2", {.top_p = 1, .repetition_penalty = -2}},
        {"repetition_penalty", "inf", {.top_p = 1, .repetition_penalty = INFINITY}},
        {"repetition_penalty", "nan", {.top_p = 1, .repetition_penalty = NAN}},
        {"frequency_penalty", "nan",
         {.top_p = 1, .repetition_penalty = 1, .frequency_penalty = NAN}},
        {"presence_penalty", "inf",
         {.top_p = 1, .repetition_penalty = 1, .presence_penalty = INFINITY}},
        {"penalty_last_n", "-1", {.top_p = 1, .repetition_penalty = 1, .penalty_last_n = -1}},
        {"logit_bias", "1", {.top_p = 1, .repetition_penalty = 1, .n_logit_bias = 1}},
        {"n_logit_bias", "-1", {.top_p = 1, .repetition_penalty = 1, .n_logit_bias = -1}},
    };
    for (int i = 0; i < N(bad); i++) {
        nt_error err;
        nt_sampler *s = nt_sampler_new(&bad[i].p, &err);
        /* "-nan" on some C libraries contains "nan" too */
        CHECK_MSG(s == NULL && err.status == NT_ERR_ARGUMENT &&
                      strstr(err.message, bad[i].field) != NULL &&
                      strstr(err.message, bad[i].value) != NULL,
                  "case %d (%s = %s): %s", i, bad[i].field, bad[i].value,
                  s ? "accepted" : err.message);
        nt_sampler_free(s);
    }
    nt_logit_bias list[2] = {{5, 1.0f}, {-1, 1.0f}};
    nt_sampler_params p = nt_sampler_default_params();
    p.n_logit_bias = 2;
    p.logit_bias = list;
    nt_error err;
    CHECK(nt_sampler_new(&p, &err) == NULL && err.status == NT_ERR_ARGUMENT &&
          strstr(err.message, "logit_bias[1].id") && strstr(err.message, "-1"));
    list[1] = (nt_logit_bias){3, INFINITY};
    CHECK(nt_sampler_new(&p, &err) == NULL && strstr(err.message, "logit_bias[1].bias") &&
          strstr(err.message, "inf"));
    list[1] = (nt_logit_bias){3, NAN};
    CHECK(nt_sampler_new(&p, &err) == NULL && strstr(err.message, "logit_bias[1].bias"));
    /* the edges of the ranges are accepted */
    nt_sampler_params edge = nt_sampler_default_params();
    edge.top_p = INFINITY;
    edge.min_p = 1.0f;
    edge.temperature = -1.0f;
    edge.repetition_penalty = 1e-3f;
    edge.frequency_penalty = -2.0f;
    edge.presence_penalty = -2.0f;
    edge.top_k = -1;
    nt_sampler *s = make(edge);
    nt_sampler_free(s);
    /* NULL params: the defaults, greedy */
    s = nt_sampler_new(NULL, &err);
    const float l[] = {0, 3, 1};
    CHECK(s != NULL && err.status == NT_OK && nt_sampler_sample(s, l, 3) == 1);
    nt_sampler_free(s);
    nt_sampler_free(NULL);
}

int main(void) {
    test_temperature();
    test_top_k();
    test_top_p();
    test_min_p();
    test_order();
    test_bias_and_greedy();
    test_penalties();
    test_logprobs();
    test_odd_logits();
    test_draws();
    test_draw_order();
    test_large_vocabulary();
    test_refusals();
    return check_summary();
}
