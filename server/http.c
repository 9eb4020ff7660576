/*
 * http.c - the HTTP side of the server, on libmicrohttpd.
 *
 * Threads: libmicrohttpd accepts connections in a thread of its own and
 * gives each connection its own thread (MHD_USE_THREAD_PER_CONNECTION).
 * That is what lets a handler simply block: a non-streaming request waits
 * in its handler until every choice is done, and a streaming response's
 * reader waits until it has bytes to send. A slow or idle client holds
 * only its own thread, and only for the idle timeout; the number of
 * connections (threads) is capped.
 *
 * A request's way through on_request (libmicrohttpd calls it several times
 * per request):
 *
 *   first call   route, method, API key and Content-Length are checked,
 *                before any of the body is read; a refusal is answered at
 *                once (libmicrohttpd then closes the connection rather
 *                than read a body nobody wants).
 *   body calls   the body is gathered, up to --max-body bytes; past that
 *                it is counted and dropped (chunked uploads have no
 *                Content-Length), and the connection is cut if a client
 *                keeps sending far beyond it.
 *   last call    GET routes answer here (answering any earlier makes
 *                libmicrohttpd close the connection after the response
 *                instead of keeping it alive). Generation: the body is
 *                parsed (openai.c), a job submits one scheduler request
 *                per choice (job.c), and the answer is either waited for
 *                and sent whole, or streamed.
 *
 * Clients that leave: a streaming response's free callback runs when the
 * connection ends for any reason and abandons the job, which cancels the
 * choices still running. A waiting handler (and a waiting stream reader)
 * peeks at the socket every quarter second and gives up when the peer has
 * closed it, so a reply nobody will read does not run to its end.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <microhttpd.h>

#include "server_internal.h"

#define INVALID "invalid_request_error"

/* ---- routes --------------------------------------------------------------------- */

typedef enum route {
    ROUTE_NONE = 0,
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_MODELS,
    ROUTE_MODEL,       /* /v1/models/{id} */
    ROUTE_HEALTH,
    ROUTE_LIVE,
    ROUTE_READY,
    ROUTE_METRICS,
} route;

static const struct {
    const char *path;
    route route;
    int post;          /* POST; otherwise GET (and HEAD) */
    int open;          /* answered without the API key */
    endpoint ep;
} routes[] = {
    {"/v1/chat/completions", ROUTE_CHAT, 1, 0, ENDPOINT_CHAT},
    {"/v1/completions", ROUTE_COMPLETIONS, 1, 0, ENDPOINT_COMPLETIONS},
    {"/v1/models", ROUTE_MODELS, 0, 0, ENDPOINT_MODELS},
    {"/health", ROUTE_HEALTH, 0, 1, ENDPOINT_HEALTH},
    {"/v1/health/live", ROUTE_LIVE, 0, 1, ENDPOINT_HEALTH},
    {"/v1/health/ready", ROUTE_READY, 0, 1, ENDPOINT_HEALTH},
    {"/metrics", ROUTE_METRICS, 0, 1, ENDPOINT_METRICS},
};

#define MODEL_PREFIX "/v1/models/"

/* What libmicrohttpd keeps for us between the calls of one request. */
typedef struct http_request {
    route route;
    endpoint ep;
    int answered;        /* a response was queued on the first call */
    strbuf body;
    size_t received;     /* body bytes, kept or not */
    int too_large;
} http_request;

/* ---- responses ---------------------------------------------------------------------- */

static const char OUT_OF_MEMORY[] =
    "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
    "\"code\":null}}";

/* Queues body (malloc'd, taken; NULL: out of memory, a 500) and counts it. */
static enum MHD_Result respond(server *srv, struct MHD_Connection *conn, http_request *req,
                               int status, const char *content_type, char *body, size_t len,
                               const char *header, const char *value) {
    struct MHD_Response *resp;
    if (body) {
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(body);
    } else {
        status = 500;
        content_type = "application/json";
        header = NULL;
        resp = MHD_create_response_from_buffer(sizeof OUT_OF_MEMORY - 1, (void *)OUT_OF_MEMORY,
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (header)
        MHD_add_response_header(resp, header, value);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    metrics_count_request(&srv->metrics, req->ep, status);
    return ret;
}

/* A JSON value as the response (the reference is taken). */
static enum MHD_Result respond_json(server *srv, struct MHD_Connection *conn,
                                    http_request *req, int status, json_t *value) {
    char *text = value ? json_dumps(value, JSON_COMPACT) : NULL;
    json_decref(value);
    return respond(srv, conn, req, status, "application/json", text, text ? strlen(text) : 0,
                   NULL, NULL);
}

static enum MHD_Result respond_error(server *srv, struct MHD_Connection *conn,
                                     http_request *req, const api_error *e,
                                     const char *header, const char *value) {
    size_t len = 0;
    char *text = api_error_json(e, &len);
    return respond(srv, conn, req, e->status, "application/json", text, len, header, value);
}

/* ---- GET routes ------------------------------------------------------------------------ */

static json_t *model_json(server *srv) {
    nt_scheduler_stats stats;
    json_t *m = json_pack("{s:s, s:s, s:I, s:s}", "id", srv->cfg.model_id, "object", "model",
                          "created", (json_int_t)srv->created, "owned_by", "nemotron");
    /* vLLM's field: the longest sequence (prompt and reply) */
    if (m && server_stats(srv, &stats))
        json_object_set_new(m, "max_model_len", json_integer(stats.n_seq_ctx));
    return m;
}

static enum MHD_Result answer_get(server *srv, struct MHD_Connection *conn, http_request *req,
                                  const char *url) {
    api_error e;
    switch (req->route) {
    case ROUTE_HEALTH:
        return respond_json(srv, conn, req, 200, json_pack("{s:s}", "status", "ok"));
    case ROUTE_LIVE:
        return respond_json(srv, conn, req, 200,
                            json_pack("{s:s, s:s}", "object", "health.response", "message",
                                      "Service is live."));
    case ROUTE_READY:
        if (srv->stopping)
            return respond_json(srv, conn, req, 503,
                                json_pack("{s:s, s:s}", "object", "health.response", "message",
                                          "Service is shutting down."));
        return respond_json(srv, conn, req, 200,
                            json_pack("{s:s, s:s}", "object", "health.response", "message",
                                      "Service is ready."));
    case ROUTE_MODELS:
        return respond_json(srv, conn, req, 200,
                            json_pack("{s:s, s:[o]}", "object", "list", "data", model_json(srv)));
    case ROUTE_MODEL:
        if (strcmp(url + strlen(MODEL_PREFIX), srv->cfg.model_id) == 0)
            return respond_json(srv, conn, req, 200, model_json(srv));
        api_fail(&e, 404, INVALID, "model_not_found", "model",
                 "The model '%s' does not exist; this server serves '%s'.",
                 url + strlen(MODEL_PREFIX), srv->cfg.model_id);
        return respond_error(srv, conn, req, &e, NULL, NULL);
    case ROUTE_METRICS: {
        nt_scheduler_stats stats;
        int have = server_stats(srv, &stats);
        size_t len = 0;
        char *text = metrics_render(&srv->metrics, have ? &stats : NULL, &len);
        return respond(srv, conn, req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len,
                       NULL, NULL);
    }
    default:
        api_fail(&e, 500, "server_error", NULL, NULL, "no handler for %s", url);
        return respond_error(srv, conn, req, &e, NULL, NULL);
    }
}

/* ---- generation: whole responses -------------------------------------------------------- */

/* The error for a job that ended early on the server's side. */
static void job_failure(server *srv, api_error *e) {
    if (srv->stopping)
        api_fail(e, 503, "server_error", NULL, NULL, "the server is shutting down");
    else
        api_fail(e, 500, "server_error", NULL, NULL,
                 "the request was ended by the server before it was complete");
}

static enum MHD_Result answer_whole(server *srv, struct MHD_Connection *conn,
                                    http_request *req, job *j, int fd) {
    api_output out;
    api_error e;
    if (api_output_init(&out, srv, job_request(j)) < 0) {
        job_abandon(j);
        return respond(srv, conn, req, 500, NULL, NULL, 0, NULL, NULL);
    }
    int failed = 0;
    for (;;) {
        job_event *events;
        job_wait_result w = job_wait(j, fd, 0, &events);
        if (w == JOB_FINISHED)
            break;
        if (w == JOB_CLIENT_GONE) {
            api_output_free(&out); /* before the job: it reads the request */
            job_abandon(j);
            /* nginx's "client closed request": nobody reads it, but the
             * metrics show how many answers were lost this way */
            metrics_count_request(&srv->metrics, req->ep, 499);
            return MHD_NO;
        }
        for (job_event *ev = events; ev && !failed; ev = ev->next)
            failed = api_output_event(&out, ev, NULL) < 0;
        job_events_free(events);
        if (failed)
            break; /* out of memory: job_abandon below ends the rest */
    }
    char *body = NULL;
    size_t len = 0;
    if (failed) {
        api_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
    } else if (job_failed(j)) {
        job_failure(srv, &e);
        failed = 1;
    } else {
        body = api_output_response(&out, &len);
    }
    api_output_free(&out);
    job_abandon(j);
    if (failed)
        return respond_error(srv, conn, req, &e, NULL, NULL);
    return respond(srv, conn, req, 200, "application/json", body, len, NULL, NULL);
}

/* ---- generation: streams ------------------------------------------------------------------ */

typedef struct http_stream {
    server *srv;
    job *job;
    api_output out;
    strbuf pending;     /* SSE text made, not yet all handed to libmicrohttpd */
    size_t sent;        /* of pending */
    int fd;
    int ended;          /* [DONE] is in pending */
    double keepalive_s; /* longest silence: a comment is sent then */
} http_stream;

/*
 * libmicrohttpd asks for the next bytes of the stream. Blocks (this is
 * the connection's own thread) until the job has events or is finished.
 */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    http_stream *st = cls;
    (void)pos;
    while (st->sent == st->pending.len) {
        if (st->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        st->pending.len = st->sent = 0;
        job_event *events;
        job_wait_result w = job_wait(st->job, st->fd, st->keepalive_s, &events);
        if (w == JOB_CLIENT_GONE)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (w == JOB_IDLE) {
            /* A comment line, which SSE clients skip. libmicrohttpd closes a
             * connection whose reader kept it silent past the idle timeout
             * (a request queued behind long ones), and proxies do too. */
            if (!strbuf_adds(&st->pending, ": keep-alive\n\n"))
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        int failed = 0;
        for (job_event *ev = events; ev && !failed; ev = ev->next)
            failed = api_output_event(&st->out, ev, &st->pending) < 0;
        job_events_free(events);
        if (w == JOB_FINISHED) {
            failed = api_output_stream_end(&st->out, job_failed(st->job), &st->pending) < 0;
            st->ended = 1;
        }
        if (failed || st->pending.failed)
            return MHD_CONTENT_READER_END_WITH_ERROR; /* out of memory: cut it */
    }
    size_t n = st->pending.len - st->sent;
    if (n > max)
        n = max;
    memcpy(buf, st->pending.s + st->sent, n);
    st->sent += n;
    return (ssize_t)n;
}

/* The response is gone: sent whole, or the connection ended. */
static void stream_free(void *cls) {
    http_stream *st = cls;
    /* the output reads the request, which the job's last reference frees */
    api_output_free(&st->out);
    job_abandon(st->job);
    strbuf_free(&st->pending);
    free(st);
}

static enum MHD_Result answer_stream(server *srv, struct MHD_Connection *conn,
                                     http_request *req, job *j, int fd) {
    http_stream *st = calloc(1, sizeof *st);
    if (!st || api_output_init(&st->out, srv, job_request(j)) < 0 ||
        api_output_stream_start(&st->out, &st->pending) < 0) {
        if (st) {
            api_output_free(&st->out);
            strbuf_free(&st->pending);
        }
        free(st);
        job_abandon(j);
        return respond(srv, conn, req, 500, NULL, NULL, 0, NULL, NULL);
    }
    st->srv = srv;
    st->job = j;
    st->fd = fd;
    st->keepalive_s = srv->cfg.timeout_s / 3.0 < 10 ? srv->cfg.timeout_s / 3.0 : 10;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
                                          stream_free);
    if (!resp) {
        stream_free(st);
        return respond(srv, conn, req, 500, NULL, NULL, 0, NULL, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* proxies: don't hold chunks */
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp); /* frees st through stream_free if it was not queued */
    metrics_count_request(&srv->metrics, req->ep, 200);
    return ret;
}

static enum MHD_Result answer_generation(server *srv, struct MHD_Connection *conn,
                                         http_request *req) {
    api_error e;
    const char *body = req->body.s ? req->body.s : "";
    api_request *r = req->route == ROUTE_CHAT
                         ? api_parse_chat(srv, body, req->body.len, &e)
                         : api_parse_completion(srv, body, req->body.len, &e);
    if (!r)
        return respond_error(srv, conn, req, &e, NULL, NULL);
    /* the body is not needed any more; a long reply should not keep it */
    strbuf_free(&req->body);
    int stream = r->stream;
    job *j = job_new(srv, r);
    if (!j)
        return respond(srv, conn, req, 500, NULL, NULL, 0, NULL, NULL);
    if (job_submit(j, &e) < 0) {
        job_abandon(j);
        return respond_error(srv, conn, req, &e, NULL, NULL);
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = info ? (int)info->connect_fd : -1;
    return stream ? answer_stream(srv, conn, req, j, fd) : answer_whole(srv, conn, req, j, fd);
}

/* ---- the request handler ---------------------------------------------------------------------- */

/* "Bearer KEY", compared in time that does not depend on where it differs. */
static int authorized(server *srv, struct MHD_Connection *conn) {
    const char *h =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    while (*h == ' ')
        h++;
    const char *key = srv->cfg.api_key;
    size_t given = strlen(h), want = strlen(key);
    unsigned diff = given != want;
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned)(unsigned char)key[i] ^ (unsigned)(unsigned char)(i < given ? h[i] : 0);
    return diff == 0;
}

/* The first call: everything that can be decided before the body. */
static enum MHD_Result begin(server *srv, struct MHD_Connection *conn, http_request *req,
                             const char *url, const char *method) {
    api_error e;
    int is_post = strcmp(method, "POST") == 0;
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int i, n = (int)(sizeof routes / sizeof routes[0]);
    for (i = 0; i < n; i++)
        if (strcmp(url, routes[i].path) == 0)
            break;
    int post = 0, open = 0;
    if (i < n) {
        req->route = routes[i].route;
        req->ep = routes[i].ep;
        post = routes[i].post;
        open = routes[i].open;
    } else if (strncmp(url, MODEL_PREFIX, strlen(MODEL_PREFIX)) == 0 &&
               url[strlen(MODEL_PREFIX)] != '\0') {
        req->route = ROUTE_MODEL;
        req->ep = ENDPOINT_MODELS;
    } else {
        req->route = ROUTE_NONE;
        req->ep = ENDPOINT_OTHER;
    }
    req->answered = 1; /* unless we wait for a body below */
    if (req->route == ROUTE_NONE) {
        api_fail(&e, 404, INVALID, "unknown_url", NULL, "Unknown request URL: %s %s.", method,
                 url);
        return respond_error(srv, conn, req, &e, NULL, NULL);
    }
    if (post ? !is_post : !is_get) {
        api_fail(&e, 405, INVALID, "method_not_allowed", NULL,
                 "Method %s is not allowed for %s; use %s.", method, url, post ? "POST" : "GET");
        return respond_error(srv, conn, req, &e, MHD_HTTP_HEADER_ALLOW, post ? "POST" : "GET, HEAD");
    }
    if (!open && srv->cfg.api_key && !authorized(srv, conn)) {
        int given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION) != NULL;
        api_fail(&e, 401, INVALID, "invalid_api_key", NULL, "%s",
                 given ? "Incorrect API key provided."
                       : "You didn't provide an API key. Give it in an Authorization header "
                         "(Authorization: Bearer YOUR_KEY).");
        return respond_error(srv, conn, req, &e, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
    req->answered = 0;
    if (!post)
        return MHD_YES; /* answered on the last call, keeping the connection */
    const char *length =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length) {
        char *end;
        errno = 0;
        unsigned long long n_bytes = strtoull(length, &end, 10);
        if (errno || end == length || n_bytes > srv->cfg.max_body) {
            req->too_large = 1;
            api_fail(&e, 413, INVALID, "request_too_large", NULL,
                     "The request body is larger than this server takes (%zu bytes).",
                     srv->cfg.max_body);
            return respond_error(srv, conn, req, &e, NULL, NULL);
        }
    }
    return MHD_YES;
}

/* A piece of the body: kept up to max_body, counted and dropped beyond. */
static enum MHD_Result take_body(server *srv, http_request *req, const char *data, size_t n) {
    req->received += n;
    if (req->received > srv->cfg.max_body) {
        req->too_large = 1;
        strbuf_free(&req->body);
        /* past twice the limit the client is not going to stop: cut it off
         * instead of reading on for a 413 */
        return req->received - srv->cfg.max_body > srv->cfg.max_body + (1u << 20) ? MHD_NO
                                                                                   : MHD_YES;
    }
    strbuf_add(&req->body, data, n);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    server *srv = cls;
    http_request *req = *con_cls;
    (void)version;
    if (!req) {
        if (!(req = calloc(1, sizeof *req)))
            return MHD_NO;
        *con_cls = req;
        return begin(srv, conn, req, url, method);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return req->answered ? MHD_YES : take_body(srv, req, upload_data, n);
    }
    if (req->answered)
        return MHD_YES;
    req->answered = 1;
    api_error e;
    if (req->too_large) {
        api_fail(&e, 413, INVALID, "request_too_large", NULL,
                 "The request body is larger than this server takes (%zu bytes).",
                 srv->cfg.max_body);
        return respond_error(srv, conn, req, &e, NULL, NULL);
    }
    if (req->body.failed)
        return respond(srv, conn, req, 500, NULL, NULL, 0, NULL, NULL);
    if (req->route != ROUTE_CHAT && req->route != ROUTE_COMPLETIONS)
        return answer_get(srv, conn, req, url);
    return answer_generation(srv, conn, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
    http_request *req = *con_cls;
    (void)cls;
    (void)conn;
    (void)why;
    if (req) {
        strbuf_free(&req->body);
        free(req);
        *con_cls = NULL;
    }
}

static void on_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    /* what libmicrohttpd says when a handler returns MHD_NO or a stream
     * reader an error, which ours do when the client has left: not news
     * worth a line per request */
    if (strncmp(line, "Application reported internal error", 35) == 0 ||
        strncmp(line, "Closing connection (application error generating response)", 58) == 0)
        return;
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    fprintf(stderr, "nemotron serve: http: %s\n", line);
}

/* ---- start and stop --------------------------------------------------------------------------- */

int http_start(server *srv, char *why, size_t why_size) {
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", srv->cfg.port);
    int rc = getaddrinfo(srv->cfg.host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(why, why_size, "cannot resolve --host %s: %s", srv->cfg.host,
                 rc ? gai_strerror(rc) : "no address");
        if (ai)
            freeaddrinfo(ai);
        return 0;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)srv->cfg.port, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_log, srv, /* first, or it misses messages */
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)srv->cfg.timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)srv->cfg.max_connections,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon) {
        snprintf(why, why_size, "cannot listen on %s port %d (in use, or not an address here?)",
                 srv->cfg.host, srv->cfg.port);
        return 0;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info && info->port ? info->port : srv->cfg.port;
    return 1;
}

void http_quiesce(server *srv) {
    if (!srv->daemon)
        return;
    MHD_socket s = MHD_quiesce_daemon(srv->daemon);
    if (s != MHD_INVALID_SOCKET)
        close(s);
}

void http_stop(server *srv) {
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}
