/*
 * job.c - one HTTP request in flight in the scheduler.
 *
 * A job submits one scheduler request per choice (n of them) and carries
 * their events from the scheduler's thread to the connection's thread:
 * the event callback copies each event into the job's queue and signals;
 * the connection's thread takes the queue and turns it into JSON.
 *
 * Two sides use a job and either may finish first, so it is reference
 * counted:
 *
 *   - the HTTP side holds one reference from job_new until job_abandon
 *     (the response is complete, or the client went away);
 *   - the scheduler holds one per accepted choice, dropped by that
 *     choice's DONE event, which the scheduler promises exactly once.
 *
 * The job, and the api_request whose strings the scheduler was handed,
 * are freed when the last reference goes. So an event that arrives after
 * the client left finds a live job: it sees client_gone, queues nothing
 * and returns 1, which cancels the request; and job_abandon cancels the
 * choices still running or queued right away, so their cache blocks come
 * back without waiting for the next token.
 *
 * Lock order: the job's mutex is never held while calling into the
 * scheduler (submit, cancel), because the scheduler may hold its own lock
 * while it calls the event callback, which takes the job's mutex.
 */
#define _GNU_SOURCE /* recv's MSG_DONTWAIT, pthread_condattr_setclock */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "server_internal.h"

typedef struct job_choice {
    struct job *job;
    int index;
    uint64_t request;     /* the scheduler's id; 0 until accepted */
    int done;             /* its DONE event came */
    int saw_token;        /* the scheduler's thread only */
    double submitted_at;  /* for the time to the first token */
} job_choice;

struct job {
    pthread_mutex_t lock;
    pthread_cond_t changed;   /* an event was queued, or a choice ended */
    int refs;
    server *srv;
    api_request *req;
    int want_tokens;          /* queue TOKEN events (logprobs were asked) */
    int client_gone;          /* the HTTP side left before the end */
    int failed;               /* events lost, or a choice cancelled by the server */
    int n_submitted, n_done;
    job_choice choices[API_MAX_CHOICES];
    job_event *head, *tail;
    double next_peer_check;   /* job_wait's caller only */
};

void job_events_free(job_event *events) {
    while (events) {
        job_event *next = events->next;
        free(events);
        events = next;
    }
}

static void job_free(job *j) {
    job_events_free(j->head);
    api_request_free(j->req);
    pthread_cond_destroy(&j->changed);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static void job_release(job *j) {
    pthread_mutex_lock(&j->lock);
    int left = --j->refs;
    pthread_mutex_unlock(&j->lock);
    if (left == 0)
        job_free(j);
}

job *job_new(server *srv, api_request *req) {
    job *j = calloc(1, sizeof *j);
    if (!j) {
        api_request_free(req);
        return NULL;
    }
    pthread_mutex_init(&j->lock, NULL);
    /* waits are timed on the monotonic clock: a wall clock step must not
     * stretch or skip the checks for a closed connection */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&j->changed, &attr);
    pthread_condattr_destroy(&attr);
    j->refs = 1;
    j->srv = srv;
    j->req = req;
    j->want_tokens = req->logprobs;
    for (int i = 0; i < API_MAX_CHOICES; i++) {
        j->choices[i].job = j;
        j->choices[i].index = i;
    }
    return j;
}

const api_request *job_request(const job *j) { return j->req; }

/* A copy of a scheduler event (NULL when out of memory). */
static job_event *copy_event(const nt_event *e, int choice) {
    size_t text_len = 0, args_len = 0;
    const char *text = NULL;
    if (e->type == NT_EVENT_CONTENT) {
        text = e->text;
        text_len = e->text_len;
    } else if (e->type == NT_EVENT_TOOL_CALL) {
        text = e->name ? e->name : "";
        text_len = strlen(text);
        args_len = strlen(e->arguments ? e->arguments : "{}");
    }
    job_event *ev = malloc(sizeof *ev + text_len + 1 + args_len + 1);
    if (!ev)
        return NULL;
    memset(ev, 0, sizeof *ev);
    ev->choice = choice;
    ev->type = e->type;
    ev->text = (char *)(ev + 1);
    if (text_len)
        memcpy(ev->text, text, text_len);
    ev->text[text_len] = '\0';
    ev->text_len = text_len;
    ev->arguments = ev->text + text_len + 1;
    if (e->type == NT_EVENT_TOOL_CALL)
        memcpy(ev->arguments, e->arguments ? e->arguments : "{}", args_len);
    ev->arguments[args_len] = '\0';
    ev->index = e->index;
    if (e->type == NT_EVENT_TOKEN && e->sample)
        ev->sample = *e->sample;
    if (e->type == NT_EVENT_DONE && e->result)
        ev->result = *e->result;
    return ev;
}

/* The scheduler's event callback (its thread): copy, queue, signal. */
static int on_event(const nt_event *e, void *user) {
    job_choice *c = user;
    job *j = c->job;
    if (e->type == NT_EVENT_TOKEN && !c->saw_token) {
        c->saw_token = 1;
        metrics_observe_ttft(&j->srv->metrics, server_now() - c->submitted_at);
    }
    int wanted = e->type != NT_EVENT_TOKEN || j->want_tokens;
    job_event *ev = wanted ? copy_event(e, c->index) : NULL;

    pthread_mutex_lock(&j->lock);
    int gone = j->client_gone;
    if (wanted && !ev && !gone)
        j->failed = 1; /* out of memory: the reply would have a hole */
    if (ev && !gone) {
        if (j->tail)
            j->tail->next = ev;
        else
            j->head = ev;
        j->tail = ev;
        ev = NULL;
    }
    if (e->type == NT_EVENT_DONE) {
        if (e->result && e->result->finish == NT_FINISH_CANCELLED && !gone)
            j->failed = 1;
        c->done = 1;
        j->n_done++;
    }
    pthread_cond_broadcast(&j->changed);
    int cancel = gone || j->failed;
    pthread_mutex_unlock(&j->lock);
    free(ev);

    if (e->type == NT_EVENT_DONE) {
        job_release(j); /* the scheduler's reference for this choice */
        return 0;
    }
    return cancel;
}

int job_submit(job *j, api_error *e) {
    api_request *req = j->req;
    for (int i = 0; i < req->n; i++) {
        job_choice *c = &j->choices[i];
        nt_request_params p = req->params;
        p.sampling.seed = req->seeds[i];
        p.fn = on_event;
        p.user = c;
        /* The reference the DONE event drops; taken first, since the
         * callback may run before submit returns. */
        pthread_mutex_lock(&j->lock);
        j->refs++;
        pthread_mutex_unlock(&j->lock);
        c->submitted_at = server_now();
        nt_error err = {0};
        uint64_t id = server_submit(j->srv, req->prompt, req->n_prompt, &p, &err);
        if (id == 0) {
            job_release(j);
            if (err.status == NT_ERR_CONTEXT_FULL) {
                nt_scheduler_stats stats;
                int limit = server_stats(j->srv, &stats) ? stats.n_seq_ctx : 0;
                api_fail(e, 400, "invalid_request_error", "context_length_exceeded",
                         req->kind == API_CHAT ? "messages" : "prompt",
                         "This model's maximum context length is %d tokens. However, your "
                         "%s resulted in %d tokens, which leaves no room for a reply. "
                         "Please reduce the length of the %s.",
                         limit, req->kind == API_CHAT ? "messages" : "prompt", req->n_prompt,
                         req->kind == API_CHAT ? "messages" : "prompt");
            } else if (err.status == NT_ERR_ARGUMENT) {
                api_fail(e, 400, "invalid_request_error", NULL, NULL, "%s", err.message);
            } else if (err.status == NT_ERR_UNSUPPORTED && j->srv->stopping) {
                api_fail(e, 503, "server_error", NULL, NULL, "the server is shutting down");
            } else {
                api_fail(e, 500, "server_error", NULL, NULL, "cannot start the request: %s",
                         err.message[0] ? err.message : "unknown error");
            }
            return -1;
        }
        pthread_mutex_lock(&j->lock);
        c->request = id;
        j->n_submitted++;
        pthread_mutex_unlock(&j->lock);
    }
    return 0;
}

/* Whether the peer closed the connection: a read that would return end of
 * file. Data waiting (a pipelined request) means it is still there. */
static int peer_closed(int fd) {
    if (fd < 0)
        return 0;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return 1;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

job_wait_result job_wait(job *j, int client_fd, double max_seconds, job_event **events) {
    *events = NULL;
    double give_up = max_seconds > 0 ? server_now() + max_seconds : 0;
    for (;;) {
        /* Checked on a clock, not only when idle: a non-streaming reply
         * may produce events without a pause for a long time, and nothing
         * else would notice that its client left. */
        double now = server_now();
        if (client_fd >= 0 && now >= j->next_peer_check) {
            j->next_peer_check = now + 0.25;
            if (peer_closed(client_fd))
                return JOB_CLIENT_GONE;
        }
        pthread_mutex_lock(&j->lock);
        if (j->head) {
            *events = j->head;
            j->head = j->tail = NULL;
            pthread_mutex_unlock(&j->lock);
            return JOB_EVENTS;
        }
        if (j->n_done == j->n_submitted) {
            pthread_mutex_unlock(&j->lock);
            return JOB_FINISHED;
        }
        if (give_up > 0 && now >= give_up) {
            pthread_mutex_unlock(&j->lock);
            return JOB_IDLE;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 250 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_nsec -= 1000000000;
            until.tv_sec++;
        }
        pthread_cond_timedwait(&j->changed, &j->lock, &until);
        pthread_mutex_unlock(&j->lock);
    }
}

int job_failed(job *j) {
    pthread_mutex_lock(&j->lock);
    int failed = j->failed;
    pthread_mutex_unlock(&j->lock);
    return failed;
}

void job_abandon(job *j) {
    uint64_t running[API_MAX_CHOICES];
    int n_running = 0;
    pthread_mutex_lock(&j->lock);
    if (j->n_done < j->n_submitted) {
        j->client_gone = 1;
        for (int i = 0; i < j->req->n; i++)
            if (j->choices[i].request && !j->choices[i].done)
                running[n_running++] = j->choices[i].request;
    }
    job_event *events = j->head; /* nobody will read them now */
    j->head = j->tail = NULL;
    pthread_mutex_unlock(&j->lock);
    job_events_free(events);
    /* Outside the job's lock (see the top of the file). A choice that ends
     * meanwhile makes its cancel a no-op: ids are never reused. */
    for (int i = 0; i < n_running; i++)
        server_cancel(j->srv, running[i]);
    job_release(j);
}
