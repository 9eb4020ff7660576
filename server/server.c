/*
 * server.c - the server's life, and the small things every part uses.
 *
 * Starting: the scheduler gets a thread of its own (nt_scheduler_run),
 * then libmicrohttpd starts accepting connections.
 *
 * Stopping is ordered so that no thread is left waiting for an event that
 * will never come and nothing touches the scheduler once it is freed:
 *
 *   1. no new connections (the listening socket closes);
 *   2. the scheduler's thread stops and is joined;
 *   3. under the write lock, nt_scheduler_free ends every request: each
 *      gets its DONE event, which wakes the connection that waits for it;
 *      the pointer becomes NULL, so later submits answer 503 and cancels
 *      do nothing;
 *   4. libmicrohttpd closes the remaining connections and joins their
 *      threads (none is blocked any more: every job is finished).
 *
 * Also here: the growing buffer, OpenAI-shaped errors, random ids.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"

/* ---- strbuf ------------------------------------------------------------------ */

int strbuf_add(strbuf *b, const char *s, size_t n) {
    if (b->failed)
        return 0;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown) {
            b->failed = 1;
            return 0;
        }
        b->s = grown;
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 1;
}

int strbuf_adds(strbuf *b, const char *s) { return strbuf_add(b, s, strlen(s)); }

int strbuf_addf(strbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return 0;
    }
    if ((size_t)n < sizeof small)
        return strbuf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return 0;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int ok = strbuf_add(b, big, (size_t)n);
    free(big);
    return ok;
}

void strbuf_free(strbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---- errors ------------------------------------------------------------------- */

void api_fail(api_error *e, int status, const char *type, const char *code,
              const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

char *api_error_json(const api_error *e, size_t *len) {
    /* The message may quote the client's text, cut anywhere by the fixed
     * buffer: json_stringn would refuse broken UTF-8, so fall back to a
     * plain message rather than to no body. */
    json_t *message = json_stringn(e->message, strlen(e->message));
    if (!message)
        message = json_string("the request is invalid (the error message is not UTF-8)");
    json_t *body = json_pack("{s:{s:o, s:s, s:o, s:o}}", "error",
                             "message", message,
                             "type", e->type ? e->type : "server_error",
                             "param", e->param[0] ? json_string(e->param) : json_null(),
                             "code", e->code ? json_string(e->code) : json_null());
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text && len)
        *len = strlen(text);
    return text;
}

/* ---- time and random ids --------------------------------------------------------- */

double server_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A seed from the kernel; the clock and the pid if that fails. The ids it
 * makes only need to be unlikely to repeat, not secret. */
static uint64_t random_seed(void) {
    uint64_t seed = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed)
            seed = 0;
        close(fd);
    }
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return seed ^ ((uint64_t)t.tv_sec << 32) ^ (uint64_t)t.tv_nsec ^
           ((uint64_t)getpid() << 16);
}

uint64_t server_random(server *srv) {
    pthread_mutex_lock(&srv->rng_lock);
    uint64_t z = (srv->rng_state += 0x9e3779b97f4a7c15ull);
    pthread_mutex_unlock(&srv->rng_lock);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void server_random_id(server *srv, const char *prefix, char *out, size_t size) {
    uint64_t a = server_random(srv), b = server_random(srv);
    snprintf(out, size, "%s%016llx%08llx", prefix, (unsigned long long)a,
             (unsigned long long)(b & 0xffffffffu));
}

/* ---- the scheduler, behind its lock ---------------------------------------------- */

uint64_t server_submit(server *srv, const int32_t *prompt, int n_prompt,
                       const nt_request_params *params, nt_error *err) {
    uint64_t id = 0;
    pthread_rwlock_rdlock(&srv->sched_lock);
    if (srv->sched) {
        id = nt_scheduler_submit(srv->sched, prompt, n_prompt, params, err);
    } else if (err) {
        err->status = NT_ERR_UNSUPPORTED;
        snprintf(err->message, sizeof err->message, "the server is shutting down");
    }
    pthread_rwlock_unlock(&srv->sched_lock);
    return id;
}

int server_cancel(server *srv, uint64_t request) {
    int cancelled = 0;
    pthread_rwlock_rdlock(&srv->sched_lock);
    if (srv->sched)
        cancelled = nt_scheduler_cancel(srv->sched, request);
    pthread_rwlock_unlock(&srv->sched_lock);
    return cancelled;
}

int server_stats(server *srv, nt_scheduler_stats *stats) {
    int ok = 0;
    pthread_rwlock_rdlock(&srv->sched_lock);
    if (srv->sched) {
        nt_scheduler_get_stats(srv->sched, stats);
        ok = 1;
    }
    pthread_rwlock_unlock(&srv->sched_lock);
    return ok;
}

static void *scheduler_thread(void *arg) {
    server *srv = arg;
    nt_scheduler_run(srv->sched);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------------ */

static char *copy_string(const char *s, int *ok) {
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *ok = 0;
    return c;
}

static void server_free(server *srv) {
    if (srv->sched) {
        nt_scheduler_free(srv->sched);
        srv->sched = NULL;
    }
    pthread_rwlock_destroy(&srv->sched_lock);
    pthread_mutex_destroy(&srv->rng_lock);
    metrics_destroy(&srv->metrics);
    free((char *)srv->cfg.host);
    free((char *)srv->cfg.api_key);
    free((char *)srv->cfg.model_id);
    free(srv);
}

/* Steps 2 and 3 of the stop (see the top of the file). */
static void stop_scheduler(server *srv) {
    srv->stopping = 1;
    if (srv->sched_thread_running) {
        nt_scheduler_stop(srv->sched);
        pthread_join(srv->sched_thread, NULL);
        srv->sched_thread_running = 0;
    }
    pthread_rwlock_wrlock(&srv->sched_lock);
    nt_scheduler *s = srv->sched;
    srv->sched = NULL;
    if (s)
        nt_scheduler_free(s);
    pthread_rwlock_unlock(&srv->sched_lock);
}

server *server_start(const server_config *cfg, nt_scheduler *sched,
                     const nt_tokenizer *tok, int n_vocab, char *why,
                     size_t why_size) {
    server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        nt_scheduler_free(sched);
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    int ok = 1;
    srv->cfg = *cfg;
    srv->cfg.host = copy_string(cfg->host, &ok);
    srv->cfg.api_key = copy_string(cfg->api_key, &ok);
    srv->cfg.model_id = copy_string(cfg->model_id, &ok);
    srv->tok = tok;
    srv->n_vocab = n_vocab;
    srv->created = (long)time(NULL);
    srv->sched = sched;
    srv->rng_state = random_seed();
    pthread_rwlock_init(&srv->sched_lock, NULL);
    pthread_mutex_init(&srv->rng_lock, NULL);
    metrics_init(&srv->metrics);
    if (!ok) {
        snprintf(why, why_size, "out of memory");
        server_free(srv);
        return NULL;
    }
    int rc = pthread_create(&srv->sched_thread, NULL, scheduler_thread, srv);
    if (rc != 0) {
        snprintf(why, why_size, "cannot start the scheduler's thread: %s", strerror(rc));
        server_free(srv);
        return NULL;
    }
    srv->sched_thread_running = 1;
    if (!http_start(srv, why, why_size)) {
        stop_scheduler(srv);
        server_free(srv);
        return NULL;
    }
    return srv;
}

int server_port(const server *srv) { return srv->port; }

void server_stop(server *srv) {
    if (!srv)
        return;
    http_quiesce(srv);
    stop_scheduler(srv);
    http_stop(srv);
    server_free(srv);
}
