/*
 * test_scheduler.c - continuous batching on the tiny model.
 *
 *   - a request's tokens match nt_generate's, and its logprobs agree with
 *     the single-sequence path to float rounding (the paged cache, the
 *     block tables and the batched step compute the same model);
 *   - batch invariance: requests run together, staggered, in chunks, or
 *     queued behind a full pool give bit for bit the logprobs and tokens
 *     each gives alone;
 *   - prefix reuse: a repeated prompt takes its cached blocks and gives the
 *     same bits;
 *   - cancelling (by id and by the callback) ends a request and frees its
 *     blocks; the pool's promises never let more run than fit;
 *   - bad requests are refused; the run loop works across threads.
 *
 * usage: test_scheduler MODEL_DIR_OR_FILE TOKENIZER_DIR [TOLERANCE]
 *
 * TOLERANCE bounds the logprob differences between the two paths (default
 * 2e-3). Quantized weights multiply activations rounded to 8 bits, and a
 * 1e-6 difference in an activation can move its rounding by a step, which
 * moves a logit by ~1e-2: they need a wider one, and the reference replies
 * are then greedy (a sampled token could flip on such a step).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nemotron.h"

#define MAX_REQ 16
#define MAX_TOK 64

typedef struct outcome {
    int32_t ids[MAX_TOK];
    float logprobs[MAX_TOK];
    int n;
    int done;
    int n_done_events;
    nt_generation result;
    int cancel_after;  /* the callback cancels after this many tokens; 0: never */
} outcome;

static pthread_mutex_t outcome_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t outcome_cond = PTHREAD_COND_INITIALIZER;

static int on_event(const nt_event *e, void *user) {
    outcome *o = user;
    pthread_mutex_lock(&outcome_lock);
    int cancel = 0;
    if (e->type == NT_EVENT_TOKEN && o->n < MAX_TOK) {
        o->ids[o->n] = e->sample->id;
        o->logprobs[o->n] = e->sample->logprob;
        o->n++;
        cancel = o->cancel_after > 0 && o->n >= o->cancel_after;
    } else if (e->type == NT_EVENT_DONE) {
        o->result = *e->result;
        o->done = 1;
        o->n_done_events++;
        pthread_cond_broadcast(&outcome_cond);
    }
    pthread_mutex_unlock(&outcome_lock);
    return cancel;
}

/* A prompt of n ids from a seed, avoiding the ids below 8 (bos, eos, ...). */
static void make_prompt(int32_t *p, int n, unsigned seed, int n_vocab) {
    unsigned x = seed * 2654435761u + 12345u;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = 8 + (int32_t)((x >> 8) % (unsigned)(n_vocab - 8));
    }
}

typedef struct job {
    int32_t prompt[200];
    int n_prompt;
    float temperature;
    uint64_t seed;
    int max_tokens;
} job;

static uint64_t submit(nt_scheduler *s, const job *j, outcome *o) {
    nt_request_params rp;
    memset(&rp, 0, sizeof rp);
    rp.sampling = nt_sampler_default_params();
    rp.sampling.temperature = j->temperature;
    rp.sampling.seed = j->seed;
    rp.generate = nt_generate_default_params();
    rp.generate.max_tokens = j->max_tokens;
    rp.generate.n_top_logprobs = 2;
    rp.fn = on_event;
    rp.user = o;
    nt_error err;
    uint64_t id = nt_scheduler_submit(s, j->prompt, j->n_prompt, &rp, &err);
    CHECK_MSG(id > 0, "%s", err.message);
    return id;
}

static void drain(nt_scheduler *s, int *max_running) {
    nt_error err;
    int left, guard = 0;
    do {
        left = nt_scheduler_step(s, &err);
        CHECK_MSG(left >= 0, "%s", err.message);
        nt_scheduler_stats st;
        nt_scheduler_get_stats(s, &st);
        if (max_running && st.n_running > *max_running)
            *max_running = st.n_running;
    } while (left > 0 && ++guard < 100000);
}

static int same_bits(const outcome *a, const outcome *b) {
    return a->n == b->n && memcmp(a->ids, b->ids, (size_t)a->n * sizeof(int32_t)) == 0 &&
           memcmp(a->logprobs, b->logprobs, (size_t)a->n * sizeof(float)) == 0;
}

static nt_scheduler *make(nt_model *m, nt_tokenizer *tok, int n_ctx, int n_seq_ctx,
                          int parallel, int chunk, int block, int dependent) {
    nt_scheduler_params p = nt_scheduler_default_params();
    p.n_ctx = n_ctx;
    p.n_seq_ctx = n_seq_ctx;
    p.n_parallel = parallel;
    p.n_threads = 2;
    p.chunk_tokens = chunk;
    p.block_tokens = block;
    p.batch_dependent = dependent;
    nt_error err;
    nt_scheduler *s = nt_scheduler_new(m, tok, &p, &err);
    CHECK_MSG(s != NULL, "%s", err.message);
    return s;
}

/* ---- the single-sequence path as the reference ---------------------------- */

typedef struct gen_record {
    int32_t ids[MAX_TOK];
    float logprobs[MAX_TOK];
    int n;
} gen_record;

static int on_gen(const nt_event *e, void *user) {
    gen_record *g = user;
    if (e->type == NT_EVENT_TOKEN && g->n < MAX_TOK) {
        g->ids[g->n] = e->sample->id;
        g->logprobs[g->n++] = e->sample->logprob;
    }
    return 0;
}

static float tolerance = 2e-3f;

static void test_matches_generate(nt_model *m, nt_tokenizer *tok, const job *jobs, int n) {
    nt_scheduler *s = make(m, tok, 2048, 512, 4, 32, 16, 0);
    nt_context_params cp = nt_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 2;
    nt_error err;
    nt_context *ctx = nt_context_new(m, &cp, &err);
    CHECK(ctx != NULL);
    if (!s || !ctx)
        return;
    outcome o[MAX_REQ];
    memset(o, 0, sizeof o);
    for (int i = 0; i < n; i++)
        submit(s, &jobs[i], &o[i]);
    drain(s, NULL);
    for (int i = 0; i < n; i++) {
        nt_kv_clear(ctx);
        nt_sampler_params sp = nt_sampler_default_params();
        sp.temperature = jobs[i].temperature;
        sp.seed = jobs[i].seed;
        nt_sampler *smp = nt_sampler_new(&sp, &err);
        nt_generate_params gp = nt_generate_default_params();
        gp.max_tokens = jobs[i].max_tokens;
        gp.n_top_logprobs = 2;
        gen_record g;
        memset(&g, 0, sizeof g);
        nt_generation res;
        CHECK(nt_generate(ctx, tok, smp, jobs[i].prompt, jobs[i].n_prompt, &gp, on_gen, &g,
                          &res, &err) == NT_OK);
        nt_sampler_free(smp);
        CHECK_MSG(g.n == o[i].n && memcmp(g.ids, o[i].ids, (size_t)g.n * 4) == 0,
                  "request %d: %d tokens alone, %d in the scheduler", i, g.n, o[i].n);
        float worst = 0;
        for (int t = 0; t < g.n && t < o[i].n; t++)
            worst = fmaxf(worst, fabsf(g.logprobs[t] - o[i].logprobs[t]));
        CHECK_MSG(worst < tolerance, "request %d: logprobs differ by %g", i, (double)worst);
        CHECK(o[i].result.finish == res.finish);
        CHECK(o[i].result.n_generated == res.n_generated);
        CHECK(o[i].n_done_events == 1);
    }
    nt_context_free(ctx);
    nt_scheduler_free(s);
}

/* ---- batch invariance ------------------------------------------------------ */

static void run_alone(nt_model *m, nt_tokenizer *tok, const job *jobs, int n, outcome *alone) {
    for (int i = 0; i < n; i++) {
        nt_scheduler *s = make(m, tok, 2048, 512, 8, 16, 16, 0);
        if (!s)
            return;
        memset(&alone[i], 0, sizeof alone[i]);
        submit(s, &jobs[i], &alone[i]);
        drain(s, NULL);
        nt_scheduler_free(s);
    }
}

static void test_invariance(nt_model *m, nt_tokenizer *tok, const job *jobs, int n,
                            const outcome *alone) {
    /* all at once */
    nt_scheduler *s = make(m, tok, 2048, 512, 8, 16, 16, 0);
    outcome o[MAX_REQ];
    memset(o, 0, sizeof o);
    for (int i = 0; i < n; i++)
        submit(s, &jobs[i], &o[i]);
    drain(s, NULL);
    for (int i = 0; i < n; i++)
        CHECK_MSG(same_bits(&alone[i], &o[i]), "together: request %d differs from alone", i);
    nt_scheduler_free(s);

    /* staggered: half, a few steps, the rest (they join running batches) */
    s = make(m, tok, 2048, 512, 8, 16, 16, 0);
    memset(o, 0, sizeof o);
    nt_error err;
    for (int i = 0; i < n / 2; i++)
        submit(s, &jobs[i], &o[i]);
    for (int k = 0; k < 3; k++)
        nt_scheduler_step(s, &err);
    for (int i = n / 2; i < n; i++)
        submit(s, &jobs[i], &o[i]);
    drain(s, NULL);
    for (int i = 0; i < n; i++)
        CHECK_MSG(same_bits(&alone[i], &o[i]), "staggered: request %d differs from alone", i);
    nt_scheduler_free(s);

    /* a small pool: they queue; at most what fits runs at once */
    int max_running = 0;
    s = make(m, tok, 2 * 128, 128, 8, 16, 16, 0);
    memset(o, 0, sizeof o);
    for (int i = 0; i < n; i++)
        submit(s, &jobs[i], &o[i]);
    drain(s, &max_running);
    for (int i = 0; i < n; i++)
        CHECK_MSG(same_bits(&alone[i], &o[i]), "small pool: request %d differs from alone", i);
    CHECK_MSG(max_running >= 2 && max_running < n, "%d ran at once", max_running);
    nt_scheduler_stats st;
    nt_scheduler_get_stats(s, &st);
    CHECK(st.kv_blocks_used == 0 && st.n_running == 0 && st.n_queued == 0);
    CHECK(st.requests == (uint64_t)n);
    nt_scheduler_free(s);

    /* batch-dependent kernels: close, not necessarily equal */
    s = make(m, tok, 2048, 512, 8, 16, 16, 1);
    memset(o, 0, sizeof o);
    for (int i = 0; i < n; i++)
        submit(s, &jobs[i], &o[i]);
    drain(s, NULL);
    for (int i = 0; i < n; i++)
        CHECK_MSG(o[i].n > 0 && fabsf(o[i].logprobs[0] - alone[i].logprobs[0]) < tolerance,
                  "batch-dependent: request %d's first logprob %g vs %g", i,
                  (double)o[i].logprobs[0], (double)alone[i].logprobs[0]);
    nt_scheduler_free(s);
}

/* ---- prefix reuse, cancelling, refusals ----------------------------------- */

static void test_prefix_reuse(nt_model *m, nt_tokenizer *tok, const job *j) {
    nt_scheduler *s = make(m, tok, 2048, 512, 4, 16, 16, 0);
    outcome a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    submit(s, j, &a);
    drain(s, NULL);
    submit(s, j, &b);
    drain(s, NULL);
    CHECK_MSG(b.result.n_reused == (j->n_prompt - 1) / 16 * 16, "reused %d of %d",
              b.result.n_reused, j->n_prompt);
    CHECK(a.result.n_reused == 0);
    CHECK_MSG(same_bits(&a, &b), "a cached prefix changed the reply");
    nt_scheduler_stats st;
    nt_scheduler_get_stats(s, &st);
    CHECK(st.prompt_tokens_reused == (uint64_t)b.result.n_reused);
    CHECK(st.kv_blocks_cached > 0 && st.kv_blocks_used == 0);
    nt_scheduler_free(s);
}

static void test_cancel(nt_model *m, nt_tokenizer *tok, const job *j) {
    nt_scheduler *s = make(m, tok, 1024, 256, 4, 16, 16, 0);
    job endless = *j;
    endless.max_tokens = 0;
    outcome a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    b.cancel_after = 3;
    uint64_t ida = submit(s, &endless, &a);
    submit(s, &endless, &b);
    uint64_t idc = submit(s, &endless, &c);
    CHECK(nt_scheduler_cancel(s, idc) == 1);  /* still queued */
    nt_error err;
    for (int k = 0; k < 6; k++)
        nt_scheduler_step(s, &err);
    CHECK(c.done && c.result.finish == NT_FINISH_CANCELLED && c.n == 0);
    CHECK(b.done && b.result.finish == NT_FINISH_CANCELLED && b.n == 3);
    CHECK(!a.done);
    nt_scheduler_stats st;
    nt_scheduler_get_stats(s, &st);
    CHECK(st.n_running == 1 && st.kv_blocks_used > 0);
    CHECK(nt_scheduler_cancel(s, ida) == 1);
    nt_scheduler_step(s, &err);
    CHECK(a.done && a.result.finish == NT_FINISH_CANCELLED && a.n_done_events == 1);
    nt_scheduler_get_stats(s, &st);
    CHECK(st.n_running == 0 && st.kv_blocks_used == 0);
    CHECK(nt_scheduler_cancel(s, ida) == 0);

    /* a reply that reaches the sequence's limit ends with CONTEXT */
    nt_scheduler *small = make(m, tok, 64, 64, 2, 16, 16, 0);
    job fill = *j;
    fill.n_prompt = 60;
    fill.max_tokens = 0;
    outcome f;
    memset(&f, 0, sizeof f);
    submit(small, &fill, &f);
    drain(small, NULL);
    CHECK_MSG(f.done && f.result.finish == NT_FINISH_CONTEXT && f.n == 5,
              "finish %d after %d tokens", f.result.finish, f.n);

    /* refusals */
    nt_request_params rp;
    memset(&rp, 0, sizeof rp);
    rp.sampling = nt_sampler_default_params();
    rp.generate = nt_generate_default_params();
    int32_t big[64] = {0};
    for (int i = 0; i < 64; i++)
        big[i] = 100;
    CHECK(nt_scheduler_submit(small, big, 64, &rp, &err) == 0 &&
          err.status == NT_ERR_CONTEXT_FULL);
    int32_t bad[2] = {5, 1 << 20};
    CHECK(nt_scheduler_submit(small, bad, 2, &rp, &err) == 0 && err.status == NT_ERR_ARGUMENT);
    rp.sampling.temperature = NAN;
    CHECK(nt_scheduler_submit(small, big, 4, &rp, &err) == 0 && err.status == NT_ERR_ARGUMENT);
    nt_scheduler_params p = nt_scheduler_default_params();
    p.n_ctx = 32;
    p.n_seq_ctx = 64;
    CHECK(nt_scheduler_new(m, tok, &p, &err) == NULL && err.status == NT_ERR_ARGUMENT);
    nt_scheduler_free(small);

    /* freeing with requests in flight: each gets its DONE */
    outcome d;
    memset(&d, 0, sizeof d);
    submit(s, &endless, &d);
    nt_scheduler_step(s, &err);
    nt_scheduler_free(s);
    CHECK(d.done && d.n_done_events == 1 && d.result.finish == NT_FINISH_CANCELLED);
}

/* ---- the run loop in its own thread ---------------------------------------- */

static void *run_thread(void *arg) {
    nt_scheduler_run(arg);
    return NULL;
}

static void test_threads(nt_model *m, nt_tokenizer *tok, const job *jobs, int n,
                         const outcome *alone) {
    nt_scheduler *s = make(m, tok, 2048, 512, 8, 16, 16, 0);
    pthread_t th;
    pthread_create(&th, NULL, run_thread, s);
    outcome o[MAX_REQ];
    memset(o, 0, sizeof o);
    for (int i = 0; i < n; i++)
        submit(s, &jobs[i], &o[i]);
    pthread_mutex_lock(&outcome_lock);
    for (int i = 0; i < n; i++)
        while (!o[i].done)
            pthread_cond_wait(&outcome_cond, &outcome_lock);
    pthread_mutex_unlock(&outcome_lock);
    for (int i = 0; i < n; i++)
        CHECK_MSG(same_bits(&alone[i], &o[i]), "threaded: request %d differs", i);
    nt_scheduler_stop(s);
    pthread_join(th, NULL);
    nt_scheduler_free(s);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_scheduler MODEL TOKENIZER_DIR [TOLERANCE]\n");
        return 2;
    }
    if (argc > 3)
        tolerance = strtof(argv[3], NULL);
    nt_error err;
    nt_model *m = nt_model_load(argv[1], NULL, &err);
    nt_tokenizer *tok = m ? nt_tokenizer_load(argv[2], &err) : NULL;
    if (!tok) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    nt_model_info info;
    nt_model_get_info(m, &info);

    /* prompts of 1 to 70 tokens (chunks of 16 split the long ones), greedy
     * and sampled */
    static const int lengths[] = {5, 70, 17, 1, 33, 16, 48, 9};
    job jobs[8];
    for (int i = 0; i < 8; i++) {
        jobs[i].n_prompt = lengths[i];
        make_prompt(jobs[i].prompt, lengths[i], (unsigned)i + 1, info.n_vocab);
        jobs[i].temperature = i % 2 ? 0.9f : 0.0f;
        jobs[i].seed = 100 + (uint64_t)i;
        jobs[i].max_tokens = 10 + 3 * i;
    }
    job greedy[4];
    memcpy(greedy, jobs, sizeof greedy);
    for (int i = 0; i < 4; i++)
        if (tolerance > 2e-3f)
            greedy[i].temperature = 0;
    test_matches_generate(m, tok, greedy, 4);
    outcome alone[8];
    run_alone(m, tok, jobs, 8, alone);
    test_invariance(m, tok, jobs, 8, alone);
    test_prefix_reuse(m, tok, &jobs[1]);
    test_cancel(m, tok, &jobs[0]);
    test_threads(m, tok, jobs, 8, alone);

    nt_tokenizer_free(tok);
    nt_model_free(m);
    return check_summary();
}
