/*
 * cmd_chat.c - `nemotron chat`: a conversation at the terminal.
 *
 * The conversation is kept as OpenAI-style JSON (each message's text, the
 * tools, the passages), which is what /save writes and /load reads, and
 * what `nemotron template` renders: a saved chat is a verification input
 * as it stands. Each turn renders the whole conversation and hands it to
 * nt_generate, which evaluates only what the KV cache does not hold yet.
 *
 * Replies stream to stdout, nothing else does: notices, errors and the
 * banner go to stderr, so a script that pipes lines in reads back replies.
 * On a terminal, lines are read with libedit (history, editing); from a
 * pipe, with getline. A line ending in a backslash continues on the next.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef NT_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "commands.h"
#include "common.h"
#include "internal.h"
#include "json.h"

/* Appends a string literal to an nt_writer. */
#define PUT(w, literal) nt_write((w), literal, sizeof literal - 1)

#define MAX_CONVERSATION_FILE (64u << 20)
#define MAX_STOP 8

static void chat_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron chat -m MODEL_DIR [options]\n"
            "  --system TEXT          the system prompt\n"
            "  --system-file F        the system prompt, from a file\n"
            "  --tools F              tools the model may call: a JSON array in OpenAI's\n"
            "                         shape, [{\"type\": \"function\", \"function\": {...}}]\n"
            "  --context F            a passage for the model to answer from (repeatable)\n"
            "  --tokenizer PATH       tokenizer.json or tokenizer.model (default: the\n"
            "                         model directory's, tokenizer.json first)\n"
            "  -n N                   most tokens per reply (default 1024; 0: no limit)\n"
            "  --stop S               stop the reply at S (repeatable)\n"
            "%s"
            "  -t N, -c N, -b N, --no-mmap, --simd NAME   as for `nemotron run`\n"
            "defaults: --temp 0.7 --top-p 0.9, a new seed each run\n"
            "in the chat: /help lists the commands\n",
            CLI_SAMPLER_USAGE);
}

static const char CHAT_HELP[] =
    "  /reset         forget the conversation (system prompt, tools and passages stay)\n"
    "  /save FILE     write the conversation as JSON (messages, tools, contexts)\n"
    "  /load FILE     read a conversation written by /save or in that shape\n"
    "  /tool JSON     answer the model's tool call with this result; it replies\n"
    "  /quit          leave (so does end of input)\n"
    "  a line ending in \\ continues on the next one\n";

/* ---- files ------------------------------------------------------------------ */

/* A file's text; NULL after saying why, as "WHAT: ...". */
static char *read_text_file(const char *path, const char *what, size_t *len) {
    nt_error err;
    char *text = nt_read_file(path, MAX_CONVERSATION_FILE, len, &err);
    if (!text)
        cli_error("%s: %s", what, err.message);
    return text;
}

/* A file's JSON document; NULL after saying why, as "WHAT: ...". */
static nt_json_doc *read_json_file(const char *path, const char *what) {
    size_t len;
    char *text = read_text_file(path, what, &len);
    if (!text)
        return NULL;
    char why[256];
    nt_json_doc *doc = nt_json_parse(text, len, why, sizeof why);
    if (!doc)
        cli_error("%s: %s is not JSON: %s", what, path, why);
    free(text);
    return doc;
}

/* ---- the conversation as JSON text --------------------------------------- */

typedef struct conversation {
    char **messages;       /* each one message object's JSON text */
    int n_messages, cap_messages;
    int n_initial;         /* the system messages /reset keeps */
    char *tools;           /* a JSON array's text, or NULL */
    char *contexts;        /* a JSON array's text, or NULL */
} conversation;

static void conv_truncate(conversation *c, int n) {
    while (c->n_messages > n)
        free(c->messages[--c->n_messages]);
}

static void conv_free(conversation *c) {
    conv_truncate(c, 0);
    free(c->messages);
    free(c->tools);
    free(c->contexts);
    memset(c, 0, sizeof *c);
}

static int conv_push(conversation *c, char *message) {
    if (!message)
        return 0;
    if (c->n_messages == c->cap_messages) {
        int cap = c->cap_messages ? c->cap_messages * 2 : 16;
        char **m = realloc(c->messages, (size_t)cap * sizeof *m);
        if (!m) {
            free(message);
            return 0;
        }
        c->messages = m;
        c->cap_messages = cap;
    }
    c->messages[c->n_messages++] = message;
    return 1;
}

/* {"role": ROLE, "content": TEXT} as JSON text (malloc'd). */
static char *message_json(const char *role, const char *text, size_t len) {
    size_t qlen;
    char *quoted = nt_json_quote_js(text, len, &qlen);
    nt_writer w = {0};
    if (quoted) {
        PUT(&w, "{\"role\": \"");
        nt_write(&w, role, strlen(role));
        PUT(&w, "\", \"content\": ");
        nt_write(&w, quoted, qlen);
        PUT(&w, "}");
    }
    free(quoted);
    if (!quoted || w.failed) {
        nt_buf_free(&w.buf);
        return NULL;
    }
    return w.buf.s;
}

/* The conversation as one JSON object; NULL when out of memory. */
static char *conv_json(const conversation *c, const char *between, size_t *len) {
    nt_writer w = {0};
    PUT(&w, "{\"messages\": [");
    for (int i = 0; i < c->n_messages; i++) {
        if (i)
            PUT(&w, ",");
        nt_write(&w, between, strlen(between));
        nt_write(&w, c->messages[i], strlen(c->messages[i]));
    }
    PUT(&w, "]");
    if (c->tools) {
        PUT(&w, ", \"tools\": ");
        nt_write(&w, c->tools, strlen(c->tools));
    }
    if (c->contexts) {
        PUT(&w, ", \"contexts\": ");
        nt_write(&w, c->contexts, strlen(c->contexts));
    }
    PUT(&w, "}");
    if (w.failed) {
        nt_buf_free(&w.buf);
        return NULL;
    }
    *len = w.buf.n;
    return w.buf.s;
}

static nt_status conv_render(const conversation *c, char **prompt, size_t *len,
                             nt_error *err) {
    size_t n;
    char *json = conv_json(c, "", &n);
    if (!json)
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    nt_status st = nt_chat_render(json, n, 0, prompt, len, err);
    free(json);
    return st;
}

static int conv_save(const conversation *c, const char *path) {
    size_t n;
    char *json = conv_json(c, "\n  ", &n);
    FILE *f = json ? fopen(path, "wb") : NULL;
    int ok = f && fwrite(json, 1, n, f) == n && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    free(json);
    if (!ok)
        cli_error("/save: cannot write %s", path);
    return ok;
}

/* The JSON text of a member that must be an array, if present. */
static int array_member(const nt_json *root, const char *key, const char *path,
                        char **out) {
    const nt_json *v = nt_json_get(root, key);
    *out = NULL;
    if (!v)
        return 1;
    if (nt_json_kind_of(v) != NT_JSON_ARRAY) {
        cli_error("%s: \"%s\" must be an array", path, key);
        return 0;
    }
    if (nt_json_count(v) == 0)
        return 1;
    *out = nt_json_to_js_text(v, NULL);
    return *out != NULL;
}

/* Replaces *c with the conversation in the file, if it is one. */
static int conv_load(conversation *c, const char *path) {
    nt_error err;
    nt_json_doc *doc = read_json_file(path, "/load");
    if (!doc)
        return 0;
    const nt_json *root = nt_json_root(doc);
    const nt_json *messages = nt_json_get(root, "messages");
    conversation loaded = {0};
    int ok = 0;
    if (nt_json_kind_of(messages) != NT_JSON_ARRAY) {
        cli_error("/load: %s has no \"messages\" array", path);
    } else if (array_member(root, "tools", path, &loaded.tools) &&
               array_member(root, "contexts", path, &loaded.contexts)) {
        ok = 1;
        for (size_t i = 0; i < nt_json_count(messages) && ok; i++) {
            const nt_json *m = nt_json_at(messages, i);
            const char *role = nt_json_string(nt_json_get(m, "role"), NULL);
            /* /reset keeps the system messages the conversation opens with */
            if (loaded.n_initial == loaded.n_messages && role && strcmp(role, "system") == 0)
                loaded.n_initial++;
            ok = conv_push(&loaded, nt_json_to_js_text(m, NULL));
        }
        char *prompt = NULL;
        size_t n;
        if (ok && conv_render(&loaded, &prompt, &n, &err) != NT_OK) {
            cli_error("/load: %s: %s", path, err.message);
            ok = 0;
        }
        free(prompt);
    }
    nt_json_free(doc);
    if (!ok) {
        conv_free(&loaded);
        return 0;
    }
    conv_free(c);
    *c = loaded;
    return 1;
}

/* ---- one reply ------------------------------------------------------------ */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct reply {
    nt_buf content;
    nt_writer calls;       /* OpenAI tool_calls items, comma-separated */
    int n_calls;
    int at_line_start;     /* of stdout */
    int turn;
} reply;

static int on_event(const nt_event *e, void *user) {
    reply *r = user;
    if (interrupted)
        return 1;
    if (e->type == NT_EVENT_CONTENT) {
        fwrite(e->text, 1, e->text_len, stdout);
        fflush(stdout);
        if (!nt_buf_add(&r->content, e->text, e->text_len))
            return 1;
        r->at_line_start = e->text[e->text_len - 1] == '\n';
    } else if (e->type == NT_EVENT_TOOL_CALL) {
        size_t name_len, args_len;
        char *name = nt_json_quote_js(e->name, strlen(e->name), &name_len);
        char *args = nt_json_quote_js(e->arguments, strlen(e->arguments), &args_len);
        /* shown as the JSON the model wrote, one call per line */
        printf("%s[tool call] {\"name\": %s, \"arguments\": %s}\n",
               r->at_line_start ? "" : "\n", name ? name : "?", e->arguments);
        fflush(stdout);
        r->at_line_start = 1;
        char id[64];
        int id_len = snprintf(id, sizeof id, "call_%d_%d", r->turn, e->index);
        if (r->n_calls++)
            PUT(&r->calls, ", ");
        PUT(&r->calls, "{\"id\": \"");
        nt_write(&r->calls, id, (size_t)id_len);
        PUT(&r->calls, "\", \"type\": \"function\", \"function\": {\"name\": ");
        nt_write(&r->calls, name ? name : "", name ? name_len : 0);
        PUT(&r->calls, ", \"arguments\": ");
        nt_write(&r->calls, args ? args : "", args ? args_len : 0);
        PUT(&r->calls, "}}");
        int failed = !name || !args;
        free(name);
        free(args);
        if (failed)
            return 1;
    }
    return 0;
}

/* The assistant's message for the conversation (malloc'd). */
static char *assistant_json(reply *r) {
    if (r->n_calls == 0)
        return message_json("assistant", r->content.s ? r->content.s : "", r->content.n);
    size_t qlen = 4;
    char *quoted = r->content.n ? nt_json_quote_js(r->content.s, r->content.n, &qlen) : NULL;
    nt_writer w = {0};
    PUT(&w, "{\"role\": \"assistant\", \"content\": ");
    nt_write(&w, quoted ? quoted : "null", qlen);
    PUT(&w, ", \"tool_calls\": [");
    nt_write(&w, r->calls.buf.s, r->calls.buf.n);
    PUT(&w, "]}");
    free(quoted);
    if (w.failed || r->calls.failed) {
        nt_buf_free(&w.buf);
        return NULL;
    }
    return w.buf.s;
}

typedef struct chat {
    nt_context *ctx;
    nt_tokenizer *tok;
    nt_sampler *sampler;
    nt_generate_params gen;
    conversation conv;
    int turn;
} chat;

/* The model's reply to the conversation as it stands; 0 on failure, with
 * the conversation unchanged. */
static int respond(chat *ch) {
    nt_error err;
    char *prompt = NULL;
    size_t prompt_len;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (conv_render(&ch->conv, &prompt, &prompt_len, &err) != NT_OK ||
        nt_tokenize(ch->tok, prompt, prompt_len, 0, &ids, &n_ids, &err) != NT_OK) {
        cli_error("%s", err.message);
        free(prompt);
        return 0;
    }
    free(prompt);
    reply r = {.at_line_start = 1, .turn = ch->turn++};
    nt_generation g;
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old);
    nt_status st = nt_generate(ch->ctx, ch->tok, ch->sampler, ids, (int)n_ids, &ch->gen,
                               on_event, &r, &g, &err);
    sigaction(SIGINT, &old, NULL);
    free(ids);
    if (!r.at_line_start)
        putchar('\n');
    fflush(stdout);
    int ok = 0;
    if (st != NT_OK) {
        if (st == NT_ERR_CONTEXT_FULL)
            cli_error("%s. /reset, or /save and /load a shorter conversation", err.message);
        else
            cli_error("%s", err.message);
    } else {
        if (g.finish == NT_FINISH_LENGTH)
            fprintf(stderr, "[the reply reached the limit of %d tokens (-n)]\n",
                    ch->gen.max_tokens);
        else if (g.finish == NT_FINISH_CONTEXT)
            fprintf(stderr, "[the context is full: /reset, or /save and start anew]\n");
        else if (g.finish == NT_FINISH_CANCELLED)
            fprintf(stderr, "[interrupted]\n");
        ok = conv_push(&ch->conv, assistant_json(&r));
        if (!ok)
            cli_error("out of memory");
    }
    nt_buf_free(&r.content);
    nt_buf_free(&r.calls.buf);
    return ok;
}

/* ---- input ----------------------------------------------------------------- */

/* The next line (malloc'd, without its newline), or NULL at the end. */
static char *read_line(int interactive, const char *prompt) {
#ifdef NT_HAVE_LIBEDIT
    if (interactive) {
        char *line = readline(prompt);
        if (line && *line)
            add_history(line);
        return line;
    }
#else
    if (interactive) {
        fputs(prompt, stdout);
        fflush(stdout);
    }
#endif
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[--n] = 0;
    if (n > 0 && line[n - 1] == '\r')
        line[--n] = 0;
    return line;
}

/* A line, joined with the next ones while it ends in a backslash. */
static char *read_input(int interactive) {
    char *line = read_line(interactive, "> ");
    nt_buf all = {0};
    while (line) {
        size_t n = strlen(line);
        int more = n > 0 && line[n - 1] == '\\';
        if (!nt_buf_add(&all, line, more ? n - 1 : n) || (more && !nt_buf_add(&all, "\n", 1))) {
            free(line);
            nt_buf_free(&all);
            return NULL;
        }
        free(line);
        line = more ? read_line(interactive, ". ") : NULL;
    }
    return all.s;
}

/* Runs one command line; returns 0 to leave. */
static int command(chat *ch, const char *line) {
    const char *arg = strchr(line, ' ');
    size_t name_len = arg ? (size_t)(arg - line) : strlen(line);
    while (arg && *arg == ' ')
        arg++;
    if (arg && !*arg)
        arg = NULL;
#define IS(name) (name_len == strlen(name) && strncmp(line, name, name_len) == 0)
    if (IS("/quit") || IS("/exit"))
        return 0;
    if (IS("/help")) {
        fputs(CHAT_HELP, stderr);
    } else if (IS("/reset")) {
        conv_truncate(&ch->conv, ch->conv.n_initial);
        fprintf(stderr, "[the conversation is reset]\n");
    } else if (IS("/save") || IS("/load")) {
        if (!arg)
            cli_error("%.*s needs a file name", (int)name_len, line);
        else if (IS("/save") ? conv_save(&ch->conv, arg) : conv_load(&ch->conv, arg))
            fprintf(stderr, "[%s %s: %d messages]\n", IS("/save") ? "saved to" : "loaded from",
                    arg, ch->conv.n_messages);
    } else if (IS("/tool")) {
        nt_json_doc *doc = arg ? nt_json_parse(arg, strlen(arg), NULL, 0) : NULL;
        if (!doc) {
            cli_error("/tool needs the tool's result as JSON, e.g. /tool {\"temp_c\": 21}");
        } else if (conv_push(&ch->conv, message_json("tool", arg, strlen(arg)))) {
            if (!respond(ch))
                conv_truncate(&ch->conv, ch->conv.n_messages - 1);
        }
        nt_json_free(doc);
    } else {
        cli_error("unknown command %.*s; /help lists them", (int)name_len, line);
    }
    return 1;
#undef IS
}

/* ---- setup ------------------------------------------------------------------ */

/* --tools: a JSON array of tools, as its JSON text. */
static char *read_tools(const char *path) {
    nt_json_doc *doc = read_json_file(path, "--tools");
    if (!doc)
        return NULL;
    const nt_json *root = nt_json_root(doc);
    char *out = NULL;
    if (nt_json_kind_of(root) != NT_JSON_ARRAY)
        cli_error("--tools: %s must hold a JSON array of tools", path);
    else
        out = nt_json_to_js_text(root, NULL);
    nt_json_free(doc);
    return out;
}

typedef struct chat_opts {
    const char *system, *system_file, *tools_file, *tokenizer;
    const char *contexts[64];
    int n_contexts;
    const char *stop[MAX_STOP];
    int n_stop;
    long long max_tokens;
} chat_opts;

/* The conversation the options describe: the system turn, tools, passages. */
static int initial_conversation(const chat_opts *o, conversation *c) {
    size_t len;
    char *system = o->system_file ? read_text_file(o->system_file, "--system-file", &len)
                   : o->system    ? strdup(o->system)
                                  : NULL;
    if ((o->system || o->system_file) && !system)
        return 0;
    int ok = !system || conv_push(c, message_json("system", system, strlen(system)));
    free(system);
    c->n_initial = c->n_messages;
    if (ok && o->tools_file)
        ok = (c->tools = read_tools(o->tools_file)) != NULL;
    nt_writer w = {0};
    for (int i = 0; ok && i < o->n_contexts; i++) {
        char *passage = read_text_file(o->contexts[i], "--context", &len);
        size_t qlen;
        char *quoted = passage ? nt_json_quote_js(passage, strlen(passage), &qlen) : NULL;
        nt_write(&w, i ? ", " : "[", i ? 2 : 1);
        nt_write(&w, quoted ? quoted : "", quoted ? qlen : 0);
        ok = quoted != NULL;
        free(passage);
        free(quoted);
    }
    if (ok && o->n_contexts) {
        PUT(&w, "]");
        ok = !w.failed;
        c->contexts = w.buf.s;
    } else {
        nt_buf_free(&w.buf);
    }
    char *prompt = NULL;
    size_t n;
    nt_error err;
    if (ok && conv_render(c, &prompt, &n, &err) != NT_OK) {
        cli_error("%s", err.message);
        ok = 0;
    }
    free(prompt);
    return ok;
}

static int parse_chat_opt(chat_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    if (!(v = cli_value(argc, argv, i)))
        return -1;
    if (strcmp(a, "--system") == 0) {
        o->system = v;
    } else if (strcmp(a, "--system-file") == 0) {
        o->system_file = v;
    } else if (strcmp(a, "--tools") == 0) {
        o->tools_file = v;
    } else if (strcmp(a, "--tokenizer") == 0) {
        o->tokenizer = v;
    } else if (strcmp(a, "--context") == 0) {
        if (o->n_contexts == (int)(sizeof o->contexts / sizeof o->contexts[0])) {
            cli_error("--context: at most 64 passages");
            return -1;
        }
        o->contexts[o->n_contexts++] = v;
    } else if (strcmp(a, "--stop") == 0) {
        if (o->n_stop == MAX_STOP || !*v) {
            cli_error("--stop: at most %d stop strings, none empty", MAX_STOP);
            return -1;
        }
        o->stop[o->n_stop++] = v;
    } else if (strcmp(a, "-n") == 0) {
        if (!cli_parse_int(a, v, 0, 1 << 24, &o->max_tokens))
            return -1;
    }
    return 1;
}

static int is_chat_opt(const char *a) {
    static const char *const names[] = {"--system", "--system-file", "--tools", "--tokenizer",
                                        "--context", "--stop", "-n"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(a, names[k]) == 0)
            return 1;
    return 0;
}

int cmd_chat(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    cli_sampler_opts so;
    cli_sampler_opts_init(&so, 0.7f, 0.9f);
    chat_opts o = {.max_tokens = 1024};
    for (int i = 0; i < argc; i++) {
        int r = cli_parse_model_opt(&mo, argc, argv, &i);
        if (r == 0)
            r = cli_parse_sampler_opt(&so, argc, argv, &i);
        if (r == 0 && is_chat_opt(argv[i]))
            r = parse_chat_opt(&o, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0)
            return cli_help_or_unknown("chat", argv[i], chat_usage);
    }
    if (!mo.model_path) {
        cli_error("no model given (-m MODEL_DIR)");
        return EXIT_USAGE;
    }
    if (o.system && o.system_file) {
        cli_error("give --system or --system-file, not both");
        return EXIT_USAGE;
    }
    if (!so.seed_given)
        so.params.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

    chat ch = {0};
    ch.gen = nt_generate_default_params();
    ch.gen.max_tokens = (int)o.max_tokens;
    ch.gen.stop = o.stop;
    ch.gen.n_stop = o.n_stop;
    int status = 1;
    nt_error err;
    nt_model *model = NULL;
    if (!initial_conversation(&o, &ch.conv))
        goto done;
    ch.tok = nt_tokenizer_load(o.tokenizer ? o.tokenizer : mo.model_path, &err);
    if (!ch.tok) {
        cli_error("%s", err.message);
        goto done;
    }
    double load_s;
    model = cli_load_model(&mo, &load_s);
    ch.ctx = model ? cli_new_context(model, &mo, 0) : NULL;
    if (!ch.ctx)
        goto done;
    ch.sampler = nt_sampler_new(&so.params, &err);
    if (!ch.sampler) {
        cli_error("%s", err.message);
        goto done;
    }
    int interactive = isatty(STDIN_FILENO);
    if (interactive)
        fprintf(stderr, "nemotron chat: %s, context %d tokens. /help for commands.\n",
                mo.model_path, nt_n_ctx(ch.ctx));
    status = 0;
    for (;;) {
        char *line = read_input(interactive);
        if (!line)
            break;
        int go_on = 1;
        if (line[0] == '/') {
            go_on = command(&ch, line);
        } else if (line[strspn(line, " \t\n")] != 0) {
            if (conv_push(&ch.conv, message_json("user", line, strlen(line))) && !respond(&ch))
                conv_truncate(&ch.conv, ch.conv.n_messages - 1);
        }
        free(line);
        if (!go_on)
            break;
    }
done:
    conv_free(&ch.conv);
    nt_sampler_free(ch.sampler);
    nt_context_free(ch.ctx);
    nt_model_free(model);
    nt_tokenizer_free(ch.tok);
    return status;
}
