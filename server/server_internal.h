/*
 * server_internal.h - what the parts of the server share.
 *
 * The parts, and who calls whom:
 *
 *   http.c     libmicrohttpd: routes, authentication, request bodies and
 *              their limits, plain and streaming (SSE) responses.
 *   openai.c   the OpenAI shapes: a request body becomes an api_request
 *              (token ids and nt_request_params), and a job's events
 *              become a response or a stream of chunks.
 *   job.c      one HTTP request in flight in the scheduler: n requests
 *              (one per choice), an event queue between the scheduler's
 *              thread and the connection's thread, and the reference count
 *              that decides who frees it.
 *   metrics.c  counters and the time-to-first-token histogram, written
 *              out in Prometheus' text format.
 *   server.c   the server's life: the scheduler's thread, start and stop,
 *              and the one lock that keeps the scheduler from being freed
 *              under a request's feet.
 *
 * Threads: libmicrohttpd runs one thread per connection; a handler may
 * block there (waiting for a reply) without holding up anyone else. The
 * scheduler's thread runs nt_scheduler_run and calls each request's event
 * callback, which only copies the event into the job's queue.
 */
#ifndef NT_SERVER_INTERNAL_H
#define NT_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nemotron.h"
#include "server.h"

#if defined(__GNUC__) || defined(__clang__)
#define SERVER_PRINTF(fmt_index, first_arg) \
    __attribute__((format(printf, fmt_index, first_arg)))
#else
#define SERVER_PRINTF(fmt_index, first_arg)
#endif

/* OpenAI's limits, which are also ours. */
#define API_MAX_CHOICES 16 /* n */
#define API_MAX_STOP 4     /* stop strings */
#define API_MAX_LOGIT_BIAS 1024

/* ---- a growing byte buffer ------------------------------------------------ */

typedef struct strbuf {
    char *s;      /* NUL-terminated while not failed; NULL when empty */
    size_t len, cap;
    int failed;   /* an allocation failed: the contents are incomplete */
} strbuf;

int strbuf_add(strbuf *b, const char *s, size_t n);  /* 0 once failed */
int strbuf_adds(strbuf *b, const char *s);
int strbuf_addf(strbuf *b, const char *fmt, ...) SERVER_PRINTF(2, 3);
void strbuf_free(strbuf *b);

/* ---- errors as OpenAI writes them ----------------------------------------- */

/* {"error": {"message", "type", "param", "code"}} with an HTTP status. */
typedef struct api_error {
    int status;           /* 400, 401, 404, ... */
    const char *type;     /* "invalid_request_error", "server_error", ... */
    const char *code;     /* NULL: null */
    char param[64];       /* "": null */
    char message[768];
} api_error;

void api_fail(api_error *e, int status, const char *type, const char *code,
              const char *param, const char *fmt, ...) SERVER_PRINTF(6, 7);
/* The error's JSON body (malloc'd); NULL when out of memory. */
char *api_error_json(const api_error *e, size_t *len);

/* ---- metrics ---------------------------------------------------------------- */

/* The endpoints requests_total counts by. */
typedef enum endpoint {
    ENDPOINT_CHAT = 0,
    ENDPOINT_COMPLETIONS,
    ENDPOINT_MODELS,
    ENDPOINT_HEALTH,
    ENDPOINT_METRICS,
    ENDPOINT_OTHER,
    N_ENDPOINTS
} endpoint;

#define METRICS_MAX_STATUSES 16
#define METRICS_TTFT_BUCKETS 15

typedef struct metrics_counts {
    /* requests_total: per endpoint, a short list of (status, count) */
    int statuses[N_ENDPOINTS][METRICS_MAX_STATUSES];
    uint64_t counts[N_ENDPOINTS][METRICS_MAX_STATUSES];
    /* time to first token; not cumulative here (the page adds them up) */
    uint64_t ttft_buckets[METRICS_TTFT_BUCKETS];
    uint64_t ttft_count;
    double ttft_sum;
} metrics_counts;

typedef struct metrics {
    pthread_mutex_t lock;
    metrics_counts c;
} metrics;

void metrics_init(metrics *m);
void metrics_destroy(metrics *m);
void metrics_count_request(metrics *m, endpoint ep, int status);
void metrics_observe_ttft(metrics *m, double seconds);
/* The Prometheus text (malloc'd); stats NULL when the scheduler is gone. */
char *metrics_render(metrics *m, const nt_scheduler_stats *stats, size_t *len);

/* ---- the server --------------------------------------------------------------- */

struct server {
    server_config cfg;        /* strings owned (copied) */
    const nt_tokenizer *tok;
    int n_vocab;
    long created;             /* start time, the models' "created" */

    /*
     * The scheduler, and the lock that keeps it alive: submit, cancel and
     * stats take it for reading; server_stop takes it for writing to free
     * the scheduler and set this to NULL. Event callbacks never take it,
     * so nt_scheduler_free may deliver its DONE events while holding it.
     */
    pthread_rwlock_t sched_lock;
    nt_scheduler *sched;
    pthread_t sched_thread;
    int sched_thread_running;
    atomic_int stopping;      /* set once server_stop begins: 503s, not 500s */

    struct MHD_Daemon *daemon;
    int port;
    metrics metrics;

    pthread_mutex_t rng_lock; /* ids and seeds */
    uint64_t rng_state;
};

/* The scheduler calls, through the lock above. When the server is
 * stopping, submit fails with NT_ERR_UNSUPPORTED ("shutting down"), cancel
 * returns 0 and stats returns 0. */
uint64_t server_submit(server *srv, const int32_t *prompt, int n_prompt,
                       const nt_request_params *params, nt_error *err);
int server_cancel(server *srv, uint64_t request);
int server_stats(server *srv, nt_scheduler_stats *stats);

/* 64 random bits (splitmix64 from a seed the kernel gave). */
uint64_t server_random(server *srv);
/* prefix + 24 random hex digits, into out (at least strlen(prefix) + 25). */
void server_random_id(server *srv, const char *prefix, char *out, size_t size);

double server_now(void); /* monotonic seconds */

/* http.c: starts and stops libmicrohttpd. */
int http_start(server *srv, char *why, size_t why_size);
void http_quiesce(server *srv); /* no new connections */
void http_stop(server *srv);    /* closes the rest, joins their threads */

/* ---- requests ------------------------------------------------------------------ */

typedef enum api_kind { API_CHAT, API_COMPLETION } api_kind;

/*
 * A generation request as the scheduler takes it, read from a request
 * body. It owns every string and array its params point to, and lives as
 * long as the job that submits it, so the scheduler may keep pointers into
 * it for as long as a choice runs.
 */
typedef struct api_request {
    api_kind kind;
    int n;                     /* choices: one scheduler request each */
    int stream;
    int include_usage;         /* stream_options.include_usage */
    int logprobs;              /* report logprobs */
    int top_logprobs;          /* alternatives per token, 0..20 */
    int32_t *prompt;
    int n_prompt;
    int max_tokens;            /* 0: none given */
    nt_request_params params;  /* fn and user are set per choice by the job */
    uint64_t seeds[API_MAX_CHOICES];
    char *stop[API_MAX_STOP];
    nt_logit_bias *logit_bias;
    char *reply_prefix;
    char id[48];               /* "chatcmpl-...", "cmpl-..." */
    long created;
} api_request;

/* Parse a body into a request, or fill e (400, 404, 500) and return NULL. */
api_request *api_parse_chat(server *srv, const char *body, size_t len, api_error *e);
api_request *api_parse_completion(server *srv, const char *body, size_t len,
                                  api_error *e);
void api_request_free(api_request *r);

/* ---- jobs ------------------------------------------------------------------------ */

/*
 * An event of one choice, copied out of the scheduler's callback. The
 * strings live in the same allocation.
 */
typedef struct job_event {
    struct job_event *next;
    int choice;
    nt_event_type type;
    char *text;               /* CONTENT: the text; TOOL_CALL: the name */
    size_t text_len;
    char *arguments;          /* TOOL_CALL: JSON text */
    int index;                /* TOOL_CALL */
    nt_sample sample;         /* TOKEN */
    nt_generation result;     /* DONE */
} job_event;

void job_events_free(job_event *events);

typedef struct job job;

/* A job for the request (which it takes over, also on failure); NULL when
 * out of memory. The caller holds the one reference. */
job *job_new(server *srv, api_request *req);
const api_request *job_request(const job *j);
/* Submits a scheduler request per choice. 0, or -1 with e filled (400
 * context_length_exceeded, 503, 500); then the caller still calls
 * job_abandon. */
int job_submit(job *j, api_error *e);

typedef enum job_wait_result {
    JOB_EVENTS,      /* *events holds new events, oldest first */
    JOB_FINISHED,    /* every choice is done and every event was taken */
    JOB_CLIENT_GONE, /* the client closed its connection (client_fd) */
    JOB_IDLE         /* nothing happened for max_seconds */
} job_wait_result;

/* Waits for events, at most max_seconds (<= 0: no limit); every quarter
 * second checks whether the peer of client_fd (-1: don't) has closed the
 * connection. */
job_wait_result job_wait(job *j, int client_fd, double max_seconds, job_event **events);

/* 1 if some choice ended CANCELLED although the client did not leave (a
 * failed step, the server stopping), or events were lost. */
int job_failed(job *j);

/* The HTTP side is done with the job: unfinished choices are cancelled,
 * and the caller's reference is dropped. */
void job_abandon(job *j);

/* ---- responses ----------------------------------------------------------------- */

typedef struct api_choice_output api_choice_output;

/* Turns a job's events into an OpenAI response or stream. */
typedef struct api_output {
    const api_request *req;
    server *srv;
    api_choice_output *choices;  /* req->n of them */
    int n_done;
} api_output;

int api_output_init(api_output *o, server *srv, const api_request *req);
void api_output_free(api_output *o);
/* Takes in one event; with sse set (streaming), appends the chunks it makes.
 * 0, or -1 when out of memory. */
int api_output_event(api_output *o, const job_event *ev, strbuf *sse);
/* Streaming: the chunks that open the stream (the role of each choice). */
int api_output_stream_start(api_output *o, strbuf *sse);
/* Streaming: the usage chunk if asked, an error if the job failed, [DONE]. */
int api_output_stream_end(api_output *o, int failed, strbuf *sse);
/* The whole response body (malloc'd), once every choice is done. */
char *api_output_response(api_output *o, size_t *len);

#endif
