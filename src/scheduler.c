/*
 * scheduler.c - continuous batching over a shared, paged KV cache.
 *
 * A request moves from the queue (FIFO, filled by any thread) to the
 * running set (at most n_parallel, touched by the step thread) and out.
 * One step:
 *
 *   1. under the lock: requests cancelled while queued leave; the queue's
 *      head is admitted while the batch has room and the pool can promise
 *      it every block it may need (its prompt plus max_tokens, or its
 *      sequence's limit). Admission takes the cached blocks of the longest
 *      prefix of its prompt that the pool holds (kv_pool.h).
 *   2. the batch: one row per reply (the token sampled last step), then
 *      the next chunk of each prompt still being read, chunk_tokens in all,
 *      oldest request first. Blocks come from the promises, so reserving
 *      never fails.
 *   3. one forward pass over all rows (nt_forward_step); the cache records
 *      the rows' tokens (full blocks become reusable prefixes).
 *   4. a token is sampled for every reply and every prompt read to its end;
 *      its events go out, and a finished request gives back its blocks.
 *
 * Promises: a request that is admitted holds `owed` blocks it has not yet
 * taken; a new one is admitted only if free + cached blocks (cached ones
 * can be evicted) cover everyone's owed blocks and its own. So a running
 * reply never waits for memory and no request is preempted; a request
 * that does not fit waits at the head of the queue (FIFO: no starvation)
 * for others to finish. n_seq_ctx <= n_ctx, so every request fits an idle
 * pool.
 *
 * Callbacks run outside the lock, so they may call submit or cancel.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/context.h"
#include "engine/kv_pool.h"
#include "internal.h"
#include "reply.h"

#define DEFAULT_PARALLEL 4
#define DEFAULT_CHUNK 256
#define DEFAULT_BLOCK 16

typedef struct request {
    uint64_t id;
    struct request *next;   /* in the queue */
    int32_t *prompt;
    int n_prompt;
    int cancel;             /* asked for (under the lock) */

    nt_sampler *sampler;
    nt_generate_params gen; /* stop points into stop_copy */
    char **stop_copy;
    char *reply_prefix;
    nt_event_fn fn;
    void *user;

    /* running: the step thread's */
    nt_reply *reply;
    nt_kv_seq seq;          /* seq.n_tokens: positions with keys and values */
    int limit;              /* positions it may fill: prompt + max_tokens - 1 */
    int owed;               /* blocks promised, not yet taken */
    int32_t pending;        /* sampled, to be evaluated next step; -1: none */
    int run;                /* its run in this step's batch; -1: none */
    int ending;             /* ends this step, with result.finish */
    nt_generation result;
    double t_submit, t_first;
} request;

struct nt_scheduler {
    nt_model *model;
    const nt_tokenizer *tok;
    nt_scheduler_params params;
    nt_context *ctx;
    nt_kv_pool *pool;
    int bt;

    pthread_mutex_t lock;
    pthread_cond_t wake;    /* work arrived, or stop */
    request *queue_head, *queue_tail;
    int n_queued;
    request **running;      /* n_running of n_parallel, oldest first */
    int n_running;
    int owed_total;
    uint64_t next_id;
    int stop;
    nt_scheduler_stats stats;

    /* one step's batch */
    int32_t *tokens;
    nt_step_run *runs;
    int32_t *logit_rows;
    request **logit_owner;
    float *logits;
};

nt_scheduler_params nt_scheduler_default_params(void) {
    nt_scheduler_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* ---- requests ------------------------------------------------------------ */

static void request_free(request *r) {
    if (!r)
        return;
    free(r->prompt);
    nt_sampler_free(r->sampler);
    if (r->stop_copy)
        for (int i = 0; i < r->gen.n_stop; i++)
            free(r->stop_copy[i]);
    free(r->stop_copy);
    free(r->reply_prefix);
    nt_reply_free(r->reply);
    free(r);
}

static char *copy_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

/* Under the lock: the pool's figures into the stats. */
static void update_stats(nt_scheduler *s) {
    nt_kv_pool_stats ps;
    nt_kv_pool_get_stats(s->pool, &ps);
    s->stats.n_running = s->n_running;
    s->stats.n_queued = s->n_queued;
    s->stats.kv_blocks_used = ps.n_used;
    s->stats.kv_blocks_cached = ps.n_cached;
}

/* Sends the DONE event, gives back the blocks, frees. The request has left
 * the queue and the running set. (Running out of memory for the reply's
 * last text still ends it: the DONE event is owed whatever happens.) */
static void request_finish(nt_scheduler *s, request *r, nt_finish_reason finish) {
    if (r->reply)
        nt_reply_end(r->reply, &finish, NULL);
    double now = nt_time_seconds();
    r->result.finish = finish;
    r->result.n_tool_calls = r->reply ? nt_reply_tool_calls(r->reply) : 0;
    if (r->t_first > 0)
        r->result.generate_seconds = now - r->t_first;
    else
        r->result.prompt_seconds = now - r->t_submit;
    nt_kv_seq_release(s->pool, &r->seq);
    /* the figures say it is gone by the time its client hears it */
    pthread_mutex_lock(&s->lock);
    update_stats(s);
    pthread_mutex_unlock(&s->lock);
    nt_event done = {.type = NT_EVENT_DONE, .result = &r->result, .request = r->id};
    if (r->fn)
        r->fn(&done, r->user);
    request_free(r);
}

/* ---- creation ------------------------------------------------------------ */

nt_scheduler *nt_scheduler_new(nt_model *model, const nt_tokenizer *tok,
                               const nt_scheduler_params *params, nt_error *err) {
    nt_error_clear(err);
    nt_scheduler_params p = params ? *params : nt_scheduler_default_params();
    if (!model || !tok) {
        nt_fail(err, NT_ERR_ARGUMENT, "a scheduler needs a model and a tokenizer");
        return NULL;
    }
    nt_model_info info;
    nt_model_get_info(model, &info);
    if (nt_tokenizer_n_vocab(tok) > info.n_vocab) {
        nt_fail(err, NT_ERR_ARGUMENT, "the tokenizer has %d tokens but the model only %d",
                nt_tokenizer_n_vocab(tok), info.n_vocab);
        return NULL;
    }
    if (p.n_ctx < 0 || p.n_seq_ctx < 0 || p.n_parallel < 0 || p.n_threads < 0 ||
        p.chunk_tokens < 0 || p.block_tokens < 0) {
        nt_fail(err, NT_ERR_ARGUMENT, "scheduler parameters must not be negative");
        return NULL;
    }
    if (p.n_seq_ctx == 0)
        p.n_seq_ctx = p.n_ctx > 0 ? nt_min_int(p.n_ctx, info.n_ctx_train) : info.n_ctx_train;
    if (p.n_seq_ctx > info.n_ctx_train) {
        nt_fail(err, NT_ERR_ARGUMENT,
                "a sequence of %d positions is past the model's context of %d",
                p.n_seq_ctx, info.n_ctx_train);
        return NULL;
    }
    if (p.n_parallel == 0)
        p.n_parallel = DEFAULT_PARALLEL;
    if (p.n_ctx == 0)
        p.n_ctx = p.n_seq_ctx * 4;
    if (p.n_ctx < p.n_seq_ctx) {
        nt_fail(err, NT_ERR_ARGUMENT,
                "the KV cache of %d positions cannot hold one sequence of %d",
                p.n_ctx, p.n_seq_ctx);
        return NULL;
    }
    if (p.chunk_tokens == 0)
        p.chunk_tokens = DEFAULT_CHUNK;
    if (p.block_tokens == 0)
        p.block_tokens = DEFAULT_BLOCK;
    if (p.n_parallel > 1024 || p.chunk_tokens > 65536 || p.block_tokens > 4096) {
        nt_fail(err, NT_ERR_ARGUMENT,
                "n_parallel (%d), chunk_tokens (%d) or block_tokens (%d) too large",
                p.n_parallel, p.chunk_tokens, p.block_tokens);
        return NULL;
    }

    nt_scheduler *s = calloc(1, sizeof *s);
    if (!s) {
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    s->model = model;
    s->tok = tok;
    s->params = p;
    s->bt = p.block_tokens;
    s->next_id = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);

    int n_blocks = (p.n_ctx + s->bt - 1) / s->bt;
    nt_context_params cp = nt_context_default_params();
    cp.n_ctx = p.n_seq_ctx;
    cp.n_batch = p.chunk_tokens + p.n_parallel;
    cp.n_threads = p.n_threads;
    cp.simd = p.simd;
    s->pool = nt_kv_pool_new(n_blocks, s->bt, err);
    s->ctx = s->pool ? nt_context_new_pooled(model, &cp, n_blocks * s->bt, err) : NULL;
    if (!s->ctx) {
        nt_scheduler_free(s);
        return NULL;
    }
    int rows = s->ctx->n_batch;
    s->tokens = malloc((size_t)rows * sizeof *s->tokens);
    s->runs = malloc((size_t)p.n_parallel * sizeof *s->runs);
    s->logit_rows = malloc((size_t)p.n_parallel * sizeof *s->logit_rows);
    s->logit_owner = malloc((size_t)p.n_parallel * sizeof *s->logit_owner);
    s->running = calloc((size_t)p.n_parallel, sizeof *s->running);
    s->logits = nt_alloc_aligned((size_t)p.n_parallel * (size_t)info.n_vocab * sizeof(float));
    if (!s->tokens || !s->runs || !s->logit_rows || !s->logit_owner || !s->running ||
        !s->logits) {
        nt_scheduler_free(s);
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for a scheduler");
        return NULL;
    }
    s->stats.n_parallel = p.n_parallel;
    s->stats.n_seq_ctx = p.n_seq_ctx;
    s->stats.block_tokens = s->bt;
    s->stats.kv_blocks = n_blocks;
    return s;
}

void nt_scheduler_free(nt_scheduler *s) {
    if (!s)
        return;
    /* every request gets its DONE */
    while (s->queue_head) {
        request *r = s->queue_head;
        s->queue_head = r->next;
        request_finish(s, r, NT_FINISH_CANCELLED);
    }
    for (int i = 0; i < s->n_running; i++)
        request_finish(s, s->running[i], NT_FINISH_CANCELLED);
    nt_context_free(s->ctx);
    nt_kv_pool_free(s->pool);
    free(s->tokens);
    free(s->runs);
    free(s->logit_rows);
    free(s->logit_owner);
    free(s->running);
    nt_free_aligned(s->logits);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}

/* ---- submitting and cancelling -------------------------------------------- */

uint64_t nt_scheduler_submit(nt_scheduler *s, const int32_t *prompt, int n_prompt,
                             const nt_request_params *params, nt_error *err) {
    nt_error_clear(err);
    if (!s || !prompt || n_prompt < 1 || !params) {
        nt_fail(err, NT_ERR_ARGUMENT, "a request needs a non-empty prompt and parameters");
        return 0;
    }
    const nt_generate_params *g = &params->generate;
    if (g->max_tokens < 0 || g->n_stop < 0 || (g->n_stop > 0 && !g->stop) ||
        g->n_top_logprobs < 0 || g->n_top_logprobs > NT_MAX_TOP_LOGPROBS) {
        nt_fail(err, NT_ERR_ARGUMENT,
                "max_tokens must be >= 0, n_top_logprobs in 0..%d, and stop "
                "strings given when n_stop > 0", NT_MAX_TOP_LOGPROBS);
        return 0;
    }
    for (int i = 0; i < g->n_stop; i++)
        if (!g->stop[i] || !g->stop[i][0]) {
            nt_fail(err, NT_ERR_ARGUMENT, "stop string %d is empty", i);
            return 0;
        }
    int n_vocab = s->ctx->model->hp.n_vocab;
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= n_vocab) {
            nt_fail(err, NT_ERR_ARGUMENT,
                    "token %d (at index %d) is outside the vocabulary of %d",
                    (int)prompt[i], i, n_vocab);
            return 0;
        }
    if (n_prompt >= s->params.n_seq_ctx) {
        nt_fail(err, NT_ERR_CONTEXT_FULL,
                "the prompt has %d tokens and a sequence holds %d: no room is "
                "left for a reply", n_prompt, s->params.n_seq_ctx);
        return 0;
    }

    request *r = calloc(1, sizeof *r);
    if (!r) {
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        return 0;
    }
    r->sampler = nt_sampler_new(&params->sampling, err);
    if (!r->sampler) {
        request_free(r);
        return 0;
    }
    r->prompt = malloc((size_t)n_prompt * sizeof *r->prompt);
    r->gen = *g;
    r->stop_copy = g->n_stop ? calloc((size_t)g->n_stop, sizeof *r->stop_copy) : NULL;
    int ok = r->prompt && (g->n_stop == 0 || r->stop_copy);
    for (int i = 0; ok && i < g->n_stop; i++)
        ok = (r->stop_copy[i] = copy_string(g->stop[i])) != NULL;
    if (ok && params->reply_prefix)
        ok = (r->reply_prefix = copy_string(params->reply_prefix)) != NULL;
    if (!ok) {
        request_free(r);
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        return 0;
    }
    memcpy(r->prompt, prompt, (size_t)n_prompt * sizeof *prompt);
    r->n_prompt = n_prompt;
    r->gen.stop = (const char *const *)r->stop_copy;
    r->fn = params->fn;
    r->user = params->user;
    r->pending = -1;
    r->result.n_prompt = n_prompt;
    r->t_submit = nt_time_seconds();
    int limit = s->params.n_seq_ctx;
    if (g->max_tokens > 0 && n_prompt + g->max_tokens - 1 < limit)
        limit = n_prompt + g->max_tokens - 1;
    r->limit = limit;

    pthread_mutex_lock(&s->lock);
    r->id = s->next_id++;
    if (s->queue_tail)
        s->queue_tail->next = r;
    else
        s->queue_head = r;
    s->queue_tail = r;
    s->n_queued++;
    s->stats.n_queued = s->n_queued;
    uint64_t id = r->id;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return id;
}

int nt_scheduler_cancel(nt_scheduler *s, uint64_t id) {
    if (!s)
        return 0;
    int found = 0;
    pthread_mutex_lock(&s->lock);
    for (request *r = s->queue_head; r && !found; r = r->next)
        if (r->id == id)
            found = r->cancel = 1;
    for (int i = 0; i < s->n_running && !found; i++)
        if (s->running[i]->id == id)
            found = s->running[i]->cancel = 1;
    if (found)
        pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return found;
}

void nt_scheduler_get_stats(nt_scheduler *s, nt_scheduler_stats *stats) {
    pthread_mutex_lock(&s->lock);
    *stats = s->stats;
    pthread_mutex_unlock(&s->lock);
}

/* ---- a step ------------------------------------------------------------- */

/* Ends running request i. */
static void end_running(nt_scheduler *s, int i, nt_finish_reason finish) {
    request *r = s->running[i];
    pthread_mutex_lock(&s->lock);
    s->owed_total -= r->owed;
    s->stats.requests++;
    memmove(&s->running[i], &s->running[i + 1],
            (size_t)(s->n_running - i - 1) * sizeof *s->running);
    s->n_running--;
    pthread_mutex_unlock(&s->lock);
    request_finish(s, r, finish);
}

/*
 * Under the lock: takes the queue's head into the batch while it fits.
 * Requests cancelled in the queue are moved to *gone (finished by the
 * caller, outside the lock). Returns 0, or -1 when memory ran out.
 */
static int admit(nt_scheduler *s, request **gone, nt_error *err) {
    for (request **p = &s->queue_head, *prev = NULL; *p;) {
        request *r = *p;
        if (!r->cancel) {
            prev = r;
            p = &r->next;
            continue;
        }
        *p = r->next;
        if (s->queue_tail == r)
            s->queue_tail = prev;
        s->n_queued--;
        r->next = *gone;
        *gone = r;
    }
    while (s->queue_head && s->n_running < s->params.n_parallel) {
        request *r = s->queue_head;
        /* the last prompt token is always evaluated: its logits start the reply */
        int reused = nt_kv_seq_begin(s->pool, &r->seq, r->prompt, r->n_prompt,
                                     r->n_prompt - 1, err);
        if (reused < 0)
            return -1;
        int need = (r->limit + s->bt - 1) / s->bt - r->seq.n_blocks;
        nt_kv_pool_stats ps;
        nt_kv_pool_get_stats(s->pool, &ps);
        if (ps.n_free + ps.n_cached - s->owed_total < need) {
            nt_kv_seq_release(s->pool, &r->seq);
            break;
        }
        s->queue_head = r->next;
        if (!s->queue_head)
            s->queue_tail = NULL;
        s->n_queued--;
        r->next = NULL;
        r->owed = need;
        s->owed_total += need;
        r->result.n_reused = reused;
        s->running[s->n_running++] = r;
        s->stats.prompt_tokens += (uint64_t)r->n_prompt;
        s->stats.prompt_tokens_reused += (uint64_t)reused;
    }
    return 0;
}

/* Reserves n more positions for r, out of its promise. */
static nt_status reserve(nt_scheduler *s, request *r, int n, nt_error *err) {
    int before = r->seq.n_blocks;
    nt_status st = nt_kv_seq_reserve(s->pool, &r->seq, n, err);
    if (st == NT_OK) {
        int taken = r->seq.n_blocks - before;
        pthread_mutex_lock(&s->lock);
        r->owed -= taken;
        s->owed_total -= taken;
        pthread_mutex_unlock(&s->lock);
    }
    return st;
}

/* The first events of a newly running request: its reply, its prefix. */
static nt_finish_reason start_reply(nt_scheduler *s, request *r) {
    nt_finish_reason finish = NT_FINISH_NONE;
    r->reply = nt_reply_new(s->tok, &r->gen, r->fn, r->user, r->id, NULL);
    if (!r->reply ||
        nt_sampler_set_prompt(r->sampler, r->prompt, r->n_prompt, NULL) != NT_OK)
        return NT_FINISH_CANCELLED;
    if (r->reply_prefix &&
        nt_reply_text(r->reply, r->reply_prefix, strlen(r->reply_prefix), &finish, NULL) !=
            NT_OK)
        return NT_FINISH_CANCELLED;
    return finish;
}

/* Samples r's next token from its logits; returns how the reply goes on. */
static nt_finish_reason take_token(nt_scheduler *s, request *r, const float *logits) {
    int n_vocab = s->ctx->model->hp.n_vocab;
    nt_sample sample;
    int32_t id = nt_sampler_sample_ex(r->sampler, logits, n_vocab, r->gen.n_top_logprobs,
                                      &sample);
    if (id < 0) /* a logit bias past the vocabulary, or no memory: end it */
        return NT_FINISH_CANCELLED;
    if (r->t_first == 0) {
        r->t_first = nt_time_seconds();
        r->result.prompt_seconds = r->t_first - r->t_submit;
    }
    r->result.n_generated++;
    pthread_mutex_lock(&s->lock);
    s->stats.generated_tokens++;
    pthread_mutex_unlock(&s->lock);
    nt_finish_reason finish = NT_FINISH_NONE;
    if (nt_sampler_accept(r->sampler, id, NULL) != NT_OK ||
        nt_reply_token(r->reply, id, &sample, &finish, NULL) != NT_OK)
        return NT_FINISH_CANCELLED;
    if (finish != NT_FINISH_NONE)
        return finish;
    if (r->gen.max_tokens > 0 && r->result.n_generated >= r->gen.max_tokens)
        return NT_FINISH_LENGTH;
    if (r->seq.n_tokens >= s->params.n_seq_ctx)
        return NT_FINISH_CONTEXT;
    r->pending = id;
    return NT_FINISH_NONE;
}

int nt_scheduler_step(nt_scheduler *s, nt_error *err) {
    nt_error_clear(err);
    request *gone = NULL;
    int n_before;

    /* 1. cancellations and admission */
    pthread_mutex_lock(&s->lock);
    n_before = s->n_running;
    int admit_failed = admit(s, &gone, err) < 0;
    int n_new = s->n_running - n_before;
    update_stats(s);
    pthread_mutex_unlock(&s->lock);
    while (gone) {
        request *r = gone;
        gone = r->next;
        pthread_mutex_lock(&s->lock);
        s->stats.requests++;
        pthread_mutex_unlock(&s->lock);
        request_finish(s, r, NT_FINISH_CANCELLED);
    }
    if (admit_failed)
        return -1;
    for (int i = n_before; i < n_before + n_new; i++) {
        nt_finish_reason f = start_reply(s, s->running[i]);
        s->running[i]->ending = f != NT_FINISH_NONE;
        s->running[i]->result.finish = f;
    }
    for (int i = 0; i < s->n_running;) {
        request *r = s->running[i];
        pthread_mutex_lock(&s->lock);
        int cancel = r->cancel;
        pthread_mutex_unlock(&s->lock);
        if (cancel || r->ending) {
            end_running(s, i, cancel ? NT_FINISH_CANCELLED : r->result.finish);
            continue;
        }
        i++;
    }

    /* 2. the batch: replies first, then prompt chunks */
    nt_status st = NT_OK;
    int n_rows = 0, n_runs = 0, n_logits = 0;
    for (int i = 0; i < s->n_running && st == NT_OK; i++) {
        request *r = s->running[i];
        r->run = -1;
        if (r->pending < 0)
            continue;
        st = reserve(s, r, 1, err);
        s->tokens[n_rows] = r->pending;
        s->runs[n_runs++] = (nt_step_run){n_rows, 1, r->seq.n_tokens, {NULL, s->bt}, 0};
        s->logit_rows[n_logits] = n_rows;
        s->logit_owner[n_logits++] = r;
        r->run = n_runs - 1;
        n_rows++;
    }
    int budget = s->params.chunk_tokens;
    for (int i = 0; i < s->n_running && st == NT_OK && budget > 0; i++) {
        request *r = s->running[i];
        if (r->pending >= 0 || r->seq.n_tokens >= r->n_prompt)
            continue;
        int take = nt_min_int(r->n_prompt - r->seq.n_tokens, budget);
        budget -= take;
        st = reserve(s, r, take, err);
        memcpy(s->tokens + n_rows, r->prompt + r->seq.n_tokens, (size_t)take * sizeof(int32_t));
        s->runs[n_runs++] = (nt_step_run){n_rows, take, r->seq.n_tokens, {NULL, s->bt}, 1};
        r->run = n_runs - 1;
        n_rows += take;
        if (r->seq.n_tokens + take == r->n_prompt) {
            s->logit_rows[n_logits] = n_rows - 1;
            s->logit_owner[n_logits++] = r;
        }
    }
    if (st != NT_OK) {
        /* a broken promise: a bug, but end the step's requests cleanly */
        while (s->n_running > 0)
            end_running(s, s->n_running - 1, NT_FINISH_CANCELLED);
        return -1;
    }
    /* the block tables are final now (reserving may move them) */
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i]->run >= 0)
            s->runs[s->running[i]->run].map.blocks = s->running[i]->seq.blocks;

    /* 3. the forward pass, then the cache records the rows */
    if (n_rows > 0) {
        nt_step step = {s->tokens, n_rows, s->runs, n_runs,
                        s->params.batch_dependent ? NT_STEP_BY_SIZE : NT_STEP_BY_ROLE,
                        s->logit_rows, n_logits};
        nt_forward_step(s->ctx, &step, s->logits);
        for (int i = 0; i < s->n_running && st == NT_OK; i++) {
            request *r = s->running[i];
            if (r->run < 0)
                continue;
            const nt_step_run *run = &s->runs[r->run];
            st = nt_kv_seq_commit(s->pool, &r->seq, s->tokens + run->row0, run->n, err);
            r->pending = -1;
        }
        if (st != NT_OK) {
            while (s->n_running > 0)
                end_running(s, s->n_running - 1, NT_FINISH_CANCELLED);
            return -1;
        }
    }

    /* 4. sampling, events, and the requests that end */
    for (int j = 0; j < n_logits; j++) {
        request *r = s->logit_owner[j];
        nt_finish_reason f = take_token(s, r, s->logits + (size_t)j * s->ctx->model->hp.n_vocab);
        if (f != NT_FINISH_NONE) {
            r->ending = 1;
            r->result.finish = f;
        }
    }
    for (int i = 0; i < s->n_running;) {
        request *r = s->running[i];
        if (r->ending) {
            end_running(s, i, r->result.finish);
            continue;
        }
        i++;
    }

    pthread_mutex_lock(&s->lock);
    s->stats.steps++;
    update_stats(s);
    int left = s->n_running + s->n_queued;
    pthread_mutex_unlock(&s->lock);
    return left;
}

void nt_scheduler_run(nt_scheduler *s) {
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        if (s->n_running == 0 && s->n_queued == 0) {
            pthread_cond_wait(&s->wake, &s->lock);
            continue;
        }
        pthread_mutex_unlock(&s->lock);
        /* a failed step has ended its requests; the next ones go on */
        nt_scheduler_step(s, NULL);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

void nt_scheduler_stop(nt_scheduler *s) {
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
}
