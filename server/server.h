/*
 * server.h - `nemotron serve`: an OpenAI-compatible HTTP server on top of
 * the library's scheduler (nt_scheduler_*).
 *
 * This is all the command line sees of the server. It builds the
 * scheduler (it knows the model and the options), hands it over, and
 * later asks for an orderly stop. Everything else - HTTP, the OpenAI
 * shapes, the bookkeeping of requests in flight, metrics - lives behind
 * this interface in the server directory's .c files, which share
 * server_internal.h.
 */
#ifndef NT_SERVER_H
#define NT_SERVER_H

#include <stddef.h>

#include "nemotron.h"

typedef struct server_config {
    const char *host;      /* address to bind: "127.0.0.1", "0.0.0.0", "::", a name */
    int port;              /* 0: any free port (server_port says which) */
    const char *api_key;   /* NULL: no authentication */
    const char *model_id;  /* the name clients give as "model" */
    size_t max_body;       /* most bytes of a request body */
    int timeout_s;         /* an idle connection is closed after this long */
    int max_connections;   /* connections open at once (one thread each) */
} server_config;

typedef struct server server;

/*
 * Starts serving: runs the scheduler in a thread of its own and accepts
 * connections. The server owns `sched` from here on, also on failure (it
 * is freed then). tok must outlive the server; n_vocab is the model's, the
 * range logit_bias ids are checked against. NULL on failure, with the
 * reason in why.
 */
server *server_start(const server_config *cfg, nt_scheduler *sched,
                     const nt_tokenizer *tok, int n_vocab, char *why,
                     size_t why_size);

/* The port the server listens on (the one picked when cfg->port was 0). */
int server_port(const server *srv);

/*
 * Stops accepting connections, ends every request in flight (their clients
 * get what was generated so far, or 503), stops and frees the scheduler,
 * closes the connections and frees the server.
 */
void server_stop(server *srv);

#endif
