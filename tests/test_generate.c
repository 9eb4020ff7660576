/*
 * test_generate.c - nt_generate on the tiny fixture model.
 *
 * The fixture's `chat` case holds a chat prompt, llama.cpp's greedy reply
 * to it (24 tokens) and the logits at every position of prompt + reply, so
 * generation is checked against data this project did not make: the
 * greedy tokens, and each token's log-probability against the log-softmax
 * of llama.cpp's logits. Then each way a reply ends, with its finish
 * reason; seeded sampling, identical across runs and thread counts; and
 * the reuse of a conversation's cached prefix, which must not change a
 * single token.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "nemotron.h"

typedef struct record {
    int32_t ids[512];
    float logprob[512];
    int n;
    char content[8192];
    size_t content_len;
    int n_calls;
    int cancel_at;         /* cancel at this token (1-based), 0: never */
    int top_sorted;        /* every top list sorted, chosen token's logprob in range */
} record;

static int on_event(const nt_event *e, void *user) {
    record *r = user;
    if (e->type == NT_EVENT_TOKEN) {
        if (r->n < 512) {
            r->ids[r->n] = e->sample->id;
            r->logprob[r->n] = e->sample->logprob;
        }
        r->n++;
        for (int i = 1; i < e->sample->n_top; i++)
            if (e->sample->top[i].p > e->sample->top[i - 1].p)
                r->top_sorted = 0;
        if (!(e->sample->logprob <= 0.0f))
            r->top_sorted = 0;
        return r->cancel_at && r->n == r->cancel_at;
    }
    if (e->type == NT_EVENT_CONTENT && r->content_len + e->text_len < sizeof r->content) {
        memcpy(r->content + r->content_len, e->text, e->text_len);
        r->content_len += e->text_len;
        r->content[r->content_len] = 0;
    }
    if (e->type == NT_EVENT_TOOL_CALL)
        r->n_calls++;
    return 0;
}

static nt_context *new_context(nt_model *m, int n_ctx, int threads) {
    nt_context_params cp = nt_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    return nt_context_new(m, &cp, NULL);
}

/* Generates into *r with the given settings; returns the status. */
static nt_status generate(nt_context *ctx, const nt_tokenizer *tok,
                          const nt_sampler_params *sp, const int32_t *prompt, int n,
                          const nt_generate_params *gp, record *r, nt_generation *g,
                          nt_error *err) {
    int cancel_at = r->cancel_at;
    memset(r, 0, sizeof *r);
    r->cancel_at = cancel_at;
    r->top_sorted = 1;
    nt_sampler *s = nt_sampler_new(sp, err);
    if (!s)
        return err->status;
    nt_status st = nt_generate(ctx, tok, s, prompt, n, gp, on_event, r, g, err);
    nt_sampler_free(s);
    return st;
}

static double log_softmax_at(const float *logits, int n, int id) {
    double max = logits[0], sum = 0.0;
    for (int i = 1; i < n; i++)
        if (logits[i] > max)
            max = logits[i];
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    return (double)logits[id] - max - log(sum);
}

static char *decode(const nt_tokenizer *tok, const int32_t *ids, int n) {
    size_t len;
    return nt_detokenize(tok, ids, (size_t)n, 0, &len, NULL);
}

/* The fixture's greedy reply: tokens, text, log-probabilities. */
static void test_greedy(nt_model *m, const nt_tokenizer *tok, const fixture_case *c) {
    int np = c->greedy_prompt_len;
    nt_context *ctx = new_context(m, 0, 2);
    nt_sampler_params sp = nt_sampler_default_params();
    nt_generate_params gp = nt_generate_default_params();
    gp.max_tokens = c->n_greedy;
    gp.n_top_logprobs = 5;
    record r;
    nt_generation g;
    nt_error err;
    memset(&r, 0, sizeof r);
    CHECK_MSG(generate(ctx, tok, &sp, c->ids, np, &gp, &r, &g, &err) == NT_OK, "%s",
              err.message);
    CHECK(g.finish == NT_FINISH_LENGTH && g.n_generated == c->n_greedy && r.n == c->n_greedy);
    CHECK(g.n_prompt == np && g.n_reused == 0);
    int same = r.n == c->n_greedy;
    double worst = 0.0;
    for (int k = 0; k < c->n_greedy && k < r.n; k++) {
        same &= r.ids[k] == c->greedy[k];
        /* logits at position np - 1 + k predict reply token k */
        double want = log_softmax_at(c->logits + (size_t)(np - 1 + k) * (size_t)c->n_vocab,
                                     c->n_vocab, c->greedy[k]);
        double d = fabs(want - r.logprob[k]);
        if (d > worst)
            worst = d;
    }
    CHECK_MSG(same, "greedy reply differs from llama.cpp's");
    CHECK_MSG(worst < 1e-4, "logprob off by %g from llama.cpp's logits", worst);
    CHECK(r.top_sorted);
    printf("greedy: %d tokens as llama.cpp's; logprobs within %.2g of its logits\n", r.n, worst);

    /* the content is the reply's text, its ends stripped */
    char *text = decode(tok, c->greedy, c->n_greedy);
    size_t a = 0, b = text ? strlen(text) : 0;
    while (a < b && strchr(" \n", text[a]))
        a++;
    while (b > a && strchr(" \n", text[b - 1]))
        b--;
    CHECK_MSG(text && r.content_len == b - a && memcmp(r.content, text + a, b - a) == 0,
              "content [%s] vs reply [%s]", r.content, text ? text : "");

    /* stop string: a piece of that text ends the reply before it */
    const char *cut = strstr(text + a + 8, "dist");
    if (cut) {
        const char *stop[] = {"dist"};
        gp.stop = stop;
        gp.n_stop = 1;
        nt_kv_clear(ctx);
        CHECK(generate(ctx, tok, &sp, c->ids, np, &gp, &r, &g, &err) == NT_OK);
        CHECK(g.finish == NT_FINISH_STOP && g.n_generated < c->n_greedy);
        size_t keep = (size_t)(cut - (text + a));
        while (keep > 0 && text[a + keep - 1] == ' ')
            keep--;
        CHECK_MSG(r.content_len == keep && memcmp(r.content, text + a, keep) == 0,
                  "stopped content [%s]", r.content);
    } else {
        CHECK_MSG(0, "the fixture reply lacks \"dist\": pick another stop string");
    }
    free(text);
    nt_context_free(ctx);
}

/* eos, the next turn, the context, the token limit, cancelling, errors. */
static void test_endings(nt_model *m, const nt_tokenizer *tok, const fixture_case *c) {
    int np = c->greedy_prompt_len;
    nt_sampler_params sp = nt_sampler_default_params();
    nt_generate_params gp = nt_generate_default_params();
    record r;
    nt_generation g;
    nt_error err;
    memset(&r, 0, sizeof r);

    nt_context *ctx = new_context(m, 0, 2);
    nt_logit_bias force = {nt_tokenizer_eos(tok), 100.0f};
    sp.logit_bias = &force;
    sp.n_logit_bias = 1;
    CHECK(generate(ctx, tok, &sp, c->ids, np, &gp, &r, &g, &err) == NT_OK);
    CHECK(g.finish == NT_FINISH_EOS && g.n_generated == 1 && r.content_len == 0);

    force.id = nt_tokenizer_find(tok, "<extra_id_1>", 12);
    CHECK(force.id >= 0);
    CHECK(generate(ctx, tok, &sp, c->ids, np, &gp, &r, &g, &err) == NT_OK);
    CHECK(g.finish == NT_FINISH_END_OF_TURN && g.n_generated == 1 && r.content_len == 0);
    CHECK(g.n_reused == np - 1);  /* same prompt: only its last token again */

    force.id = 1 << 20;  /* outside the vocabulary */
    CHECK(generate(ctx, tok, &sp, c->ids, np, &gp, &r, &g, &err) == NT_ERR_ARGUMENT);
    sp.n_logit_bias = 0;

    /* cancelled by the callback at the third token */
    r.cancel_at = 3;
    CHECK(generate(ctx, tok, &sp, c->ids, np, &gp, &r, &g, &err) == NT_OK);
    CHECK(g.finish == NT_FINISH_CANCELLED && g.n_generated == 3);
    r.cancel_at = 0;
    nt_context_free(ctx);

    /* a context of np + 6 tokens: 7 replies tokens, the last not evaluated */
    ctx = new_context(m, np + 6, 1);
    CHECK(generate(ctx, tok, &sp, c->ids, np, &gp, &r, &g, &err) == NT_OK);
    CHECK_MSG(g.finish == NT_FINISH_CONTEXT && g.n_generated == 7, "finish %s after %d",
              nt_finish_reason_name(g.finish), g.n_generated);
    CHECK(r.n == 7 && memcmp(r.ids, c->greedy, 7 * sizeof(int32_t)) == 0);
    CHECK(nt_n_past(ctx) == np + 6);
    nt_context_free(ctx);

    /* a prompt that fills the context is refused before any work */
    ctx = new_context(m, np, 1);
    CHECK(generate(ctx, tok, &sp, c->ids, np, &gp, &r, &g, &err) == NT_ERR_CONTEXT_FULL);
    CHECK(nt_n_past(ctx) == 0 && r.n == 0);
    CHECK(strstr(err.message, "no room") != NULL);
    gp.max_tokens = -1;
    CHECK(generate(ctx, tok, &sp, c->ids, 4, &gp, &r, &g, &err) == NT_ERR_ARGUMENT);
    nt_context_free(ctx);
    CHECK(strcmp(nt_finish_reason_name(NT_FINISH_CONTEXT), "context_full") == 0);
}

/* Same seed: same tokens, whatever the run or the number of threads. */
static void test_seeded(nt_model *m, const nt_tokenizer *tok, const fixture_case *c) {
    int np = c->greedy_prompt_len;
    nt_sampler_params sp = nt_sampler_default_params();
    sp.temperature = 0.9f;
    sp.top_p = 0.95f;
    sp.min_p = 0.01f;
    sp.repetition_penalty = 1.1f;
    sp.frequency_penalty = 0.2f;
    sp.seed = 1234;
    nt_generate_params gp = nt_generate_default_params();
    gp.max_tokens = 48;
    static record first, again;
    nt_generation g;
    nt_error err;
    memset(&first, 0, sizeof first);
    memset(&again, 0, sizeof again);
    nt_context *ctx1 = new_context(m, 0, 1), *ctx3 = new_context(m, 0, 3);
    CHECK(generate(ctx1, tok, &sp, c->ids, np, &gp, &first, &g, &err) == NT_OK);
    CHECK(first.n > 8);
    nt_kv_clear(ctx1);
    CHECK(generate(ctx1, tok, &sp, c->ids, np, &gp, &again, &g, &err) == NT_OK);
    CHECK(again.n == first.n && memcmp(again.ids, first.ids, sizeof(int32_t) * (size_t)first.n) == 0);
    CHECK(generate(ctx3, tok, &sp, c->ids, np, &gp, &again, &g, &err) == NT_OK);
    CHECK_MSG(again.n == first.n &&
                  memcmp(again.ids, first.ids, sizeof(int32_t) * (size_t)first.n) == 0,
              "3 threads sampled differently from 1");
    CHECK(strcmp(again.content, first.content) == 0);
    int differs_from_greedy = 0;
    for (int k = 0; k < first.n && k < c->n_greedy; k++)
        differs_from_greedy |= first.ids[k] != c->greedy[k];
    CHECK_MSG(differs_from_greedy, "sampling at temperature 0.9 gave the greedy reply");
    sp.seed = 1235;
    nt_kv_clear(ctx3);
    CHECK(generate(ctx3, tok, &sp, c->ids, np, &gp, &again, &g, &err) == NT_OK);
    CHECK_MSG(again.n != first.n || memcmp(again.ids, first.ids, sizeof(int32_t) * (size_t)first.n) != 0,
              "another seed gave the same tokens");
    printf("seeded: %d tokens, identical on 1 and 3 threads and across runs\n", first.n);
    nt_context_free(ctx1);
    nt_context_free(ctx3);
}

/* A second turn reuses the cache, and gives what a fresh context gives. */
static void test_prefix_reuse(nt_model *m, const nt_tokenizer *tok, const fixture_case *c) {
    int np = c->greedy_prompt_len;
    nt_sampler_params sp = nt_sampler_default_params();
    nt_generate_params gp = nt_generate_default_params();
    gp.max_tokens = 10;
    record r, fresh;
    nt_generation g;
    nt_error err;
    memset(&r, 0, sizeof r);
    memset(&fresh, 0, sizeof fresh);
    nt_context *ctx = new_context(m, 0, 2), *ctx2 = new_context(m, 0, 2);
    CHECK(generate(ctx, tok, &sp, c->ids, np, &gp, &r, &g, &err) == NT_OK);
    /* the next prompt: this one, the reply, then a new user turn */
    int32_t next[256];
    int n = 0;
    memcpy(next, c->ids, sizeof(int32_t) * (size_t)np);
    n = np;
    for (int k = 0; k < r.n; k++)
        next[n++] = r.ids[k];
    int32_t *more = NULL;
    size_t n_more = 0;
    const char *turn = "\n<extra_id_1>User\nAnd what does it cost?\n<extra_id_1>Assistant\n";
    CHECK(nt_tokenize(tok, turn, strlen(turn), 0, &more, &n_more, &err) == NT_OK);
    for (size_t k = 0; k < n_more && n < 256; k++)
        next[n++] = more[k];
    free(more);
    CHECK(generate(ctx, tok, &sp, next, n, &gp, &r, &g, &err) == NT_OK);
    CHECK_MSG(g.n_reused == np + 9, "reused %d of %d", g.n_reused, n);  /* the last reply token was never evaluated */
    CHECK(generate(ctx2, tok, &sp, next, n, &gp, &fresh, &g, &err) == NT_OK);
    CHECK(g.n_reused == 0);
    CHECK(r.n == fresh.n && memcmp(r.ids, fresh.ids, sizeof(int32_t) * (size_t)r.n) == 0);
    /* a different prompt shares only part of the cache */
    next[np / 2] = next[np / 2] == 100 ? 101 : 100;
    CHECK(generate(ctx, tok, &sp, next, n, &gp, &r, &g, &err) == NT_OK);
    CHECK(g.n_reused == np / 2);
    nt_context_free(ctx);
    nt_context_free(ctx2);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_generate FIXTURE_DIR (tiny-nemotron)\n");
        return 2;
    }
    fixture_case cases[4];
    int n_cases = fixture_load_cases(argv[1], cases, 4);
    const fixture_case *chat = NULL;
    for (int i = 0; i < n_cases; i++)
        if (strcmp(cases[i].name, "chat") == 0)
            chat = &cases[i];
    nt_error err;
    nt_model *m = nt_model_load(argv[1], NULL, &err);
    /* the fixture's prompt ids are SentencePiece's: use its tokenizer.model */
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.model", argv[1]);
    nt_tokenizer *tok = nt_tokenizer_load(path, &err);
    CHECK(chat != NULL && m != NULL && tok != NULL);
    if (chat && m && tok) {
        test_greedy(m, tok, chat);
        test_endings(m, tok, chat);
        test_seeded(m, tok, chat);
        test_prefix_reuse(m, tok, chat);
    }
    nt_tokenizer_free(tok);
    nt_model_free(m);
    fixture_free_cases(cases, n_cases);
    return check_summary();
}
