/*
 * cmd_serve.c - `nemotron serve`: the OpenAI-compatible HTTP server.
 *
 * This file only turns options into a scheduler and a server_config,
 * starts the server (server/), and waits for SIGINT or SIGTERM to stop it.
 *
 * Signals: SIGINT and SIGTERM are blocked before any thread starts, so
 * every thread inherits the mask and only the main thread receives them,
 * in sigwait(). A signal handler would have to do the shutdown's work from
 * an async-signal context; sigwait lets it run as ordinary code. SIGPIPE
 * is ignored: a client that vanishes mid-write is an error return, not
 * the end of the process.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "server.h"

static void serve_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron serve -m MODEL [options]\n"
            "  --host ADDR          address to listen on (default 127.0.0.1; 0.0.0.0 for all)\n"
            "  --port N             port (default 8000; 0: any free port, printed)\n"
            "  --api-key KEY        require \"Authorization: Bearer KEY\" (default: the\n"
            "                       NEMOTRON_API_KEY environment variable, else none)\n"
            "  --alias NAME         the model's name in the API (default: the model\n"
            "                       path's last component)\n"
            "  --parallel N         requests generated at once (default 4)\n"
            "  -c, --ctx-size N     KV cache positions shared by all requests\n"
            "                       (default 4 x --seq-ctx)\n"
            "  --seq-ctx N          most positions of one request, prompt and reply\n"
            "                       (default: the model's context length)\n"
            "  --chunk N            most prompt tokens read per step (default 256)\n"
            "  --batch-dependent    faster batches whose results depend on the batch\n"
            "  -t, --threads N      compute threads (default: all CPUs)\n"
            "  --tokenizer PATH     tokenizer.json or tokenizer.model (default: the\n"
            "                       model's)\n"
            "  --max-body BYTES     largest request body (default 8388608)\n"
            "  --timeout S          close connections idle this long (default 30)\n"
            "  --no-mmap, --simd NAME   as for `nemotron run`\n"
            "endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,\n"
            "GET /health, /v1/health/live, /v1/health/ready, /metrics (Prometheus)\n");
}

typedef struct serve_opts {
    const char *host, *api_key, *alias, *tokenizer;
    long long port, parallel, seq_ctx, chunk, max_body, timeout;
    int batch_dependent;
} serve_opts;

/* Like cli_parse_model_opt: 1 taken, 0 not ours, -1 after an error. */
static int parse_serve_opt(serve_opts *o, int argc, char **argv, int *i) {
    static const struct {
        const char *name;
        long long lo, hi;
        size_t offset;
    } ints[] = {
        {"--port", 0, 65535, offsetof(serve_opts, port)},
        {"--parallel", 1, 1024, offsetof(serve_opts, parallel)},
        {"--seq-ctx", 1, 1 << 24, offsetof(serve_opts, seq_ctx)},
        {"--chunk", 1, 1 << 20, offsetof(serve_opts, chunk)},
        {"--max-body", 1024, 1ll << 32, offsetof(serve_opts, max_body)},
        {"--timeout", 1, 86400, offsetof(serve_opts, timeout)},
    };
    static const struct {
        const char *name;
        size_t offset;
    } strings[] = {
        {"--host", offsetof(serve_opts, host)},
        {"--api-key", offsetof(serve_opts, api_key)},
        {"--alias", offsetof(serve_opts, alias)},
        {"--tokenizer", offsetof(serve_opts, tokenizer)},
    };
    const char *a = argv[*i], *v;
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        if (strcmp(a, ints[k].name) != 0)
            continue;
        if (!(v = cli_value(argc, argv, i)) ||
            !cli_parse_int(a, v, ints[k].lo, ints[k].hi,
                           (long long *)((char *)o + ints[k].offset)))
            return -1;
        return 1;
    }
    for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++) {
        if (strcmp(a, strings[k].name) != 0)
            continue;
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        if (!*v) {
            cli_error("%s: the value must not be empty", a);
            return -1;
        }
        *(const char **)((char *)o + strings[k].offset) = v;
        return 1;
    }
    if (strcmp(a, "--batch-dependent") == 0) {
        o->batch_dependent = 1;
        return 1;
    }
    return 0;
}

/* The model's name by default: the path's last component ("a/b/" -> "b"). */
static char *default_model_id(const char *path) {
    size_t end = strlen(path);
    while (end > 1 && path[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    char *id = malloc(end - start + 1);
    if (id) {
        memcpy(id, path + start, end - start);
        id[end - start] = '\0';
    }
    return id;
}

int cmd_serve(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    serve_opts o = {.host = "127.0.0.1", .port = 8000, .max_body = 8 << 20, .timeout = 30};
    for (int i = 0; i < argc; i++) {
        int r = cli_parse_model_opt(&mo, argc, argv, &i);
        if (r == 0)
            r = parse_serve_opt(&o, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0)
            return cli_help_or_unknown("serve", argv[i], serve_usage);
    }
    if (!mo.model_path) {
        cli_error("no model given (-m MODEL_DIR)");
        return EXIT_USAGE;
    }
    if (!o.api_key) {
        const char *env = getenv("NEMOTRON_API_KEY");
        if (env && *env)
            o.api_key = env;
    }

    int status = 1;
    nt_error err;
    nt_model *model = NULL;
    char *model_id = o.alias ? strdup(o.alias) : default_model_id(mo.model_path);
    nt_tokenizer *tok = nt_tokenizer_load(o.tokenizer ? o.tokenizer : mo.model_path, &err);
    if (!tok) {
        cli_error("%s", err.message);
        goto done;
    }
    if (!model_id || !(model = cli_load_model(&mo, NULL)))
        goto done;
    nt_model_info info;
    nt_model_get_info(model, &info);

    /* From here on threads start: block the signals first (see above). */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    nt_scheduler_params sp = nt_scheduler_default_params();
    sp.n_ctx = mo.n_ctx;
    sp.n_seq_ctx = (int)o.seq_ctx;
    sp.n_parallel = (int)o.parallel;
    sp.n_threads = mo.n_threads;
    sp.chunk_tokens = (int)o.chunk;
    sp.batch_dependent = o.batch_dependent;
    sp.simd = mo.simd;
    nt_scheduler *sched = nt_scheduler_new(model, tok, &sp, &err);
    if (!sched) {
        cli_error("%s", err.message);
        goto done;
    }
    server_config cfg = {
        .host = o.host,
        .port = (int)o.port,
        .api_key = o.api_key,
        .model_id = model_id,
        .max_body = (size_t)o.max_body,
        .timeout_s = (int)o.timeout,
        .max_connections = 256,
    };
    char why[512];
    server *srv = server_start(&cfg, sched, tok, info.n_vocab, why, sizeof why);
    if (!srv) {
        cli_error("serve: %s", why);
        goto done;
    }
    int v6 = strchr(o.host, ':') != NULL;
    fprintf(stderr, "nemotron serve: listening on http://%s%s%s:%d/v1, model %s\n",
            v6 ? "[" : "", o.host, v6 ? "]" : "", server_port(srv), model_id);
    fflush(stderr);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "nemotron serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    server_stop(srv);
    status = 0;
done:
    nt_model_free(model);
    nt_tokenizer_free(tok);
    free(model_id);
    return status;
}
