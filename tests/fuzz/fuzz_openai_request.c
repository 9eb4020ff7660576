/*
 * fuzz_openai_request.c - libFuzzer target: the server's request parser
 * (server/openai.c) on the bytes as the body of POST /v1/chat/completions
 * and of POST /v1/completions, tokenizing with the tiny fixture's
 * tokenizer, and what answers it: the error JSON of a refused body, or
 * for an accepted one the response and the stream made from a few events
 * per choice (tokens, content and a tool call from the same bytes, done).
 *
 * Request bodies are the first thing the server reads from anyone who can
 * reach its port, before any model work, so they get the same treatment
 * as the file parsers. Each result is checked against openai.c's contract
 * (a refusal's status and JSON; an accepted request's ranges; responses
 * and chunks that parse as JSON): a violation aborts, as a crash would.
 *
 * The server is made by hand - the fields server_start sets that parsing
 * and responses read - so no scheduler and no HTTP run here.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_rwlock_t in server_internal.h */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * server.c (linked for strbuf, api_fail, api_error_json and the random
 * ids) starts and stops libmicrohttpd through these; this target never
 * starts or stops a server, so they are never reached.
 */
int http_start(server *srv, char *why, size_t why_size) {
    (void)srv, (void)why, (void)why_size;
    abort();
}
void http_quiesce(server *srv) {
    (void)srv;
    abort();
}
void http_stop(server *srv) {
    (void)srv;
    abort();
}

#define MODEL_ID "tiny-nemotron"

static server *srv;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(NT_FUZZ_MODEL_DIR, &err);
    if (!tok) {
        fprintf(stderr, "fuzz_openai_request: %s: %s\n", NT_FUZZ_MODEL_DIR, err.message);
        exit(1);
    }
    if (!(srv = calloc(1, sizeof *srv)))
        abort();
    srv->cfg.model_id = MODEL_ID;
    srv->tok = tok;
    srv->n_vocab = nt_tokenizer_n_vocab(tok);
    srv->rng_state = 0x5eed; /* fixed: runs repeat */
    pthread_mutex_init(&srv->rng_lock, NULL);
    return 0;
}

/* text must be one JSON object (which may hold \u0000: a token can be NUL). */
static void check_json_object(const char *text, size_t len) {
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(v)) {
        fprintf(stderr, "not a JSON object (%s): %.*s\n", jerr.text, len < 400 ? (int)len : 400,
                text);
        abort();
    }
    json_decref(v);
}

/* A refusal: one of the statuses api_parse_* promise, and its JSON body. */
static void check_error(const api_error *e) {
    if ((e->status != 400 && e->status != 404 && e->status != 500) || !e->type) {
        fprintf(stderr, "bad refusal: status %d, message '%s'\n", e->status, e->message);
        abort();
    }
    size_t len = 0;
    char *text = api_error_json(e, &len);
    if (!text || strlen(text) != len)
        abort();
    check_json_object(text, len);
    free(text);
}

/* An accepted request: every range the scheduler relies on. */
static void check_request(const api_request *r, api_kind kind) {
    int ok = r->kind == kind && r->n >= 1 && r->n <= API_MAX_CHOICES && r->n_prompt >= 0 &&
             (r->n_prompt == 0 || r->prompt) && r->top_logprobs >= 0 &&
             r->top_logprobs <= NT_MAX_TOP_LOGPROBS && r->max_tokens >= 0 &&
             r->params.generate.n_stop >= 0 && r->params.generate.n_stop <= API_MAX_STOP &&
             r->params.sampling.n_logit_bias >= 0 &&
             r->params.sampling.n_logit_bias <= API_MAX_LOGIT_BIAS;
    for (int i = 0; ok && i < r->n_prompt; i++)
        ok = r->prompt[i] >= 0 && r->prompt[i] < srv->n_vocab;
    for (int i = 0; ok && i < r->params.generate.n_stop; i++)
        ok = r->params.generate.stop[i] && r->params.generate.stop[i][0];
    for (int i = 0; ok && i < r->params.sampling.n_logit_bias; i++)
        ok = r->logit_bias[i].id >= 0 && r->logit_bias[i].id < srv->n_vocab &&
             fabsf(r->logit_bias[i].bias) <= 100;
    if (!ok) {
        fprintf(stderr, "accepted request out of range\n");
        abort();
    }
}

/* Every "data: " line of a stream is a JSON object or [DONE], the last. */
static void check_stream(const strbuf *sse) {
    if (sse->failed)
        abort();
    const char *at = sse->s ? sse->s : "", *end = at + sse->len;
    int done = 0;
    while (at < end) {
        const char *next = strstr(at, "\n\n");
        if (done || strncmp(at, "data: ", 6) != 0 || !next)
            abort();
        at += 6;
        if ((size_t)(next - at) == 6 && memcmp(at, "[DONE]", 6) == 0)
            done = 1;
        else
            check_json_object(at, (size_t)(next - at));
        at = next + 2;
    }
    if (!done)
        abort();
}

/*
 * The events a choice could bring, as job.c copies them: a token (when
 * logprobs were asked), content and a tool call (when the request parses
 * them) made of the input bytes (any bytes: the model may write broken
 * UTF-8), more content, done.
 */
static void output(const api_request *r, const uint8_t *data, size_t size, int stream) {
    api_output o;
    if (api_output_init(&o, srv, r) < 0)
        abort();
    strbuf sse = {0};
    if (stream && api_output_stream_start(&o, &sse) < 0)
        abort();
    char text[65];
    size_t text_len = size < 64 ? size : 64;
    memcpy(text, data, text_len);
    text[text_len] = '\0';
    for (int i = 0; i <= r->n; i++) { /* one past the last: ignored */
        job_event ev = {.choice = i, .type = NT_EVENT_TOKEN};
        if (r->logprobs) {
            ev.sample.id = r->n_prompt ? r->prompt[i % r->n_prompt] : 0;
            ev.sample.logprob = i == 0 ? -INFINITY : -0.25f * (float)i;
            ev.sample.n_top = r->params.generate.n_top_logprobs;
            for (int k = 0; k < ev.sample.n_top; k++)
                ev.sample.top[k] = (nt_token_prob){(ev.sample.id + k) % srv->n_vocab,
                                                   k ? -(float)k : -INFINITY};
            if (api_output_event(&o, &ev, stream ? &sse : NULL) < 0)
                abort();
        }
        ev = (job_event){.choice = i, .type = NT_EVENT_CONTENT, .text = text,
                         .text_len = text_len, .arguments = text + text_len};
        if (api_output_event(&o, &ev, stream ? &sse : NULL) < 0)
            abort();
        ev = (job_event){.choice = i, .type = NT_EVENT_TOOL_CALL, .text = text,
                         .text_len = strlen(text), .arguments = text, .index = 0};
        if (r->params.generate.parse_tool_calls &&
            api_output_event(&o, &ev, stream ? &sse : NULL) < 0)
            abort();
        ev = (job_event){.choice = i, .type = NT_EVENT_CONTENT, .text = "\xE2\x96",
                         .text_len = 2, .arguments = ""};
        if (api_output_event(&o, &ev, stream ? &sse : NULL) < 0)
            abort();
        ev = (job_event){.choice = i, .type = NT_EVENT_DONE, .text = "", .arguments = ""};
        ev.result.finish = (nt_finish_reason)((size + (size_t)i) % (NT_FINISH_CANCELLED + 1));
        ev.result.n_prompt = r->n_prompt;
        ev.result.n_reused = r->n_prompt / 2;
        ev.result.n_generated = 3;
        if (api_output_event(&o, &ev, stream ? &sse : NULL) < 0)
            abort();
    }
    if (stream) {
        if (api_output_stream_end(&o, (int)(size & 1), &sse) < 0)
            abort();
        check_stream(&sse);
    } else {
        size_t len = 0;
        char *body = api_output_response(&o, &len);
        if (!body)
            abort();
        check_json_object(body, len);
        free(body);
    }
    strbuf_free(&sse);
    api_output_free(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *body = (const char *)data;
    for (int kind = API_CHAT; kind <= API_COMPLETION; kind++) {
        api_error e;
        memset(&e, 0, sizeof e);
        api_request *r = kind == API_CHAT ? api_parse_chat(srv, body, size, &e)
                                          : api_parse_completion(srv, body, size, &e);
        if (!r) {
            check_error(&e);
            continue;
        }
        check_request(r, (api_kind)kind);
        output(r, data, size, 0);
        output(r, data, size, 1);
        api_request_free(r);
    }
    return 0;
}
