/*
 * reply_parser.c - a streaming reply, read into content and tool calls.
 *
 * Nemotron-Mini calls a tool by writing
 *
 *   <toolcall> {"name": "get_weather", "arguments": {"city": "Oslo"}} </toolcall>
 *
 * in its reply. The text arrives a token at a time, and a caller that
 * streams content to a user must never show text that later turns out to
 * be part of a call or of a stop string. So the parser works in two layers,
 * each holding back only what is still undecided:
 *
 *   stop layer   raw text in; passes on every byte that can no longer be
 *                the start of a stop string, and ends the reply at the
 *                first stop string completed (the longest if several end
 *                at the same byte). Deciding by the end of a match, not its
 *                start, is what makes byte-at-a-time feeding give the same
 *                answer as feeding everything at once.
 *   call layer   bytes in; outside a block it looks for "<toolcall>"
 *                (holding a partial match) and routes all other text to the
 *                content writer. Inside a block it follows the JSON lexically
 *                (depth, strings, escapes) to find where the object ends, so
 *                "</toolcall>" inside a string does not end it; then it wants
 *                whitespace and "</toolcall>". The first byte that breaks
 *                this shape turns the block into content as written, and
 *                that byte is read again outside a block (it may itself
 *                begin a "<toolcall>"). A block that completes is parsed
 *                with the JSON parser and checked for name and arguments.
 *
 * The content writer drops whitespace at the reply's ends and around calls:
 * it holds a whitespace run until a non-space byte of content follows it
 * (then the run is written, unless nothing but calls came before it).
 *
 * Content is collected in one buffer per push and sent as one event, before
 * any call event that follows it, so events keep the reply's order.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"

static const char TOOLCALL_OPEN[] = "<toolcall>";
static const char TOOLCALL_CLOSE[] = "</toolcall>";
#define OPEN_LEN (sizeof TOOLCALL_OPEN - 1)
#define CLOSE_LEN (sizeof TOOLCALL_CLOSE - 1)

typedef enum block_state {
    OUTSIDE,      /* content; open_matched bytes of "<toolcall>" pending */
    BEFORE_VALUE, /* after "<toolcall>", before '{' */
    IN_VALUE,     /* inside the object: depth, in_string, escaped */
    AFTER_VALUE,  /* after the object, before / within "</toolcall>" */
} block_state;

struct nt_reply_parser {
    unsigned flags;
    char **stop;
    size_t *stop_len;
    int n_stop;
    size_t max_stop_len;

    nt_buf stop_hold;   /* raw tail that may begin a stop string */
    int stopped;        /* 1 + index of the stop string found, or 0 */
    int failed;         /* a callback cancelled or memory ran out */

    block_state state;
    size_t open_matched;  /* OUTSIDE: bytes of "<toolcall>" seen */
    size_t close_matched; /* AFTER_VALUE: bytes of "</toolcall>" seen */
    int depth, in_string, escaped;
    nt_buf block;         /* the block's text from "<toolcall>" on */
    size_t value_start;   /* offset of '{' in block */
    size_t value_end;     /* offset just past the matching '}' */

    nt_buf space;         /* held whitespace run */
    int content_started;  /* content other than calls has been written */
    nt_buf out;           /* content of this push, not yet sent */
    int n_calls;

    nt_event_fn fn;       /* of the current push / finish */
    void *user;
};

/* ---- setup ---------------------------------------------------------------- */

nt_reply_parser *nt_reply_parser_new(const char *const *stop, int n_stop,
                                     unsigned flags, nt_error *err) {
    nt_error_clear(err);
    if (n_stop < 0 || (n_stop > 0 && !stop)) {
        nt_fail(err, NT_ERR_ARGUMENT, "reply parser: bad stop string list");
        return NULL;
    }
    for (int i = 0; i < n_stop; i++)
        if (!stop[i] || !stop[i][0]) {
            nt_fail(err, NT_ERR_ARGUMENT, "stop string %d is empty", i);
            return NULL;
        }
    nt_reply_parser *p = calloc(1, sizeof *p);
    if (!p)
        goto oom;
    p->flags = flags;
    p->n_stop = n_stop;
    if (n_stop > 0) {
        p->stop = calloc((size_t)n_stop, sizeof *p->stop);
        p->stop_len = calloc((size_t)n_stop, sizeof *p->stop_len);
        if (!p->stop || !p->stop_len)
            goto oom;
    }
    for (int i = 0; i < n_stop; i++) {
        p->stop_len[i] = strlen(stop[i]);
        p->stop[i] = malloc(p->stop_len[i] + 1);
        if (!p->stop[i])
            goto oom;
        memcpy(p->stop[i], stop[i], p->stop_len[i] + 1);
        if (p->stop_len[i] > p->max_stop_len)
            p->max_stop_len = p->stop_len[i];
    }
    return p;
oom:
    nt_reply_parser_free(p);
    nt_fail(err, NT_ERR_NO_MEMORY, "out of memory creating a reply parser");
    return NULL;
}

void nt_reply_parser_free(nt_reply_parser *p) {
    if (!p)
        return;
    for (int i = 0; p->stop && i < p->n_stop; i++)
        free(p->stop[i]);
    free(p->stop);
    free(p->stop_len);
    nt_buf_free(&p->stop_hold);
    nt_buf_free(&p->block);
    nt_buf_free(&p->space);
    nt_buf_free(&p->out);
    free(p);
}

/* ---- events ----------------------------------------------------------------- */

static void add(nt_reply_parser *p, nt_buf *b, const char *s, size_t n) {
    if (n && !nt_buf_add(b, s, n))
        p->failed = 1;
}

static void send_event(nt_reply_parser *p, const nt_event *e) {
    if (!p->failed && p->fn && p->fn(e, p->user) != 0)
        p->failed = 1;
}

static void send_content(nt_reply_parser *p) {
    if (p->out.n == 0)
        return;
    nt_event e = {.type = NT_EVENT_CONTENT, .text = p->out.s, .text_len = p->out.n};
    send_event(p, &e);
    p->out.n = 0;
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Content text: whitespace runs are held until non-space content follows. */
static void write_content(nt_reply_parser *p, const char *s, size_t n) {
    if (p->flags & NT_REPLY_RAW) {
        add(p, &p->out, s, n);
        return;
    }
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && is_space(s[j]))
            j++;
        add(p, &p->space, s + i, j - i);
        if (j == n)
            break;
        if (p->content_started)
            add(p, &p->out, p->space.s, p->space.n);
        p->space.n = 0;
        size_t k = j;
        while (k < n && !is_space(s[k]))
            k++;
        add(p, &p->out, s + j, k - j);
        p->content_started = 1;
        i = k;
    }
}

/* ---- a finished block --------------------------------------------------------- */

/* Sends the call in block[value_start, value_end); 0 if it is not one. */
static int send_call(nt_reply_parser *p) {
    const char *text = p->block.s + p->value_start;
    nt_json_doc *doc = nt_json_parse(text, p->value_end - p->value_start, NULL, 0);
    nt_json_doc *inner = NULL;
    const nt_json *call = nt_json_root(doc);
    size_t name_len = 0;
    const char *name = nt_json_string(nt_json_get(call, "name"), &name_len);
    /* arguments: an object, the text of one, or absent ({}) */
    const nt_json *given = nt_json_get(call, "arguments");
    const nt_json *args = given ? nt_json_object_or_text(given, &inner) : NULL;
    int ok = name && name_len > 0 && memchr(name, 0, name_len) == NULL && (!given || args);
    if (ok) {
        char *args_text = args ? nt_json_to_js_text(args, NULL) : NULL;
        if (args && !args_text) {
            p->failed = 1;
        } else {
            send_content(p);
            nt_event e = {.type = NT_EVENT_TOOL_CALL, .name = name,
                          .arguments = args_text ? args_text : "{}",
                          .index = p->n_calls++};
            send_event(p, &e);
        }
        free(args_text);
    }
    nt_json_free(inner);
    nt_json_free(doc);
    return ok;
}

/* ---- the call layer ------------------------------------------------------------ */

static void read_outside(nt_reply_parser *p, char c);

/* The block is not a call: its text so far is content, and the byte that
 * broke it (if any) is read again as content-level text. */
static void abandon_block(nt_reply_parser *p, const char *breaker) {
    p->state = OUTSIDE;
    p->open_matched = 0;
    write_content(p, p->block.s, p->block.n);
    p->block.n = 0;
    if (breaker)
        read_outside(p, *breaker);
}

static void read_outside(nt_reply_parser *p, char c) {
    if (c == TOOLCALL_OPEN[p->open_matched]) {
        if (++p->open_matched == OPEN_LEN) {
            /* held whitespace stays held: dropped if this is a call,
             * written before the block if it is not */
            p->block.n = 0;
            add(p, &p->block, TOOLCALL_OPEN, OPEN_LEN);
            p->state = BEFORE_VALUE;
            p->open_matched = 0;
        }
        return;
    }
    if (p->open_matched > 0) {
        write_content(p, TOOLCALL_OPEN, p->open_matched);
        p->open_matched = 0;
        read_outside(p, c);  /* c may begin "<toolcall>" itself */
        return;
    }
    write_content(p, &c, 1);
}

static void read_block(nt_reply_parser *p, char c) {
    switch (p->state) {
    case BEFORE_VALUE:
        if (is_space(c))
            break;
        if (c != '{') {
            abandon_block(p, &c);
            return;
        }
        p->value_start = p->block.n;
        p->depth = 1;
        p->in_string = p->escaped = 0;
        p->state = IN_VALUE;
        break;
    case IN_VALUE:
        if (p->in_string) {
            if (p->escaped)
                p->escaped = 0;
            else if (c == '\\')
                p->escaped = 1;
            else if (c == '"')
                p->in_string = 0;
        } else if (c == '"') {
            p->in_string = 1;
        } else if (c == '{' || c == '[') {
            p->depth++;
        } else if (c == '}' || c == ']') {
            if (--p->depth == 0) {
                p->value_end = p->block.n + 1;
                p->close_matched = 0;
                p->state = AFTER_VALUE;
            }
        } else if (c == '<') {
            /* never valid JSON outside a string: most likely the model
             * closed the block early */
            abandon_block(p, &c);
            return;
        }
        break;
    case AFTER_VALUE:
        if (p->close_matched == 0 && is_space(c))
            break;
        if (c != TOOLCALL_CLOSE[p->close_matched]) {
            abandon_block(p, &c);
            return;
        }
        if (++p->close_matched == CLOSE_LEN) {
            add(p, &p->block, &c, 1);
            if (send_call(p)) {
                p->state = OUTSIDE;
                p->block.n = 0;
                p->space.n = 0;  /* whitespace before a call is dropped */
            } else {
                abandon_block(p, NULL);
            }
            return;
        }
        break;
    case OUTSIDE:
        break;
    }
    add(p, &p->block, &c, 1);
}

static void read_bytes(nt_reply_parser *p, const char *s, size_t n) {
    if (p->flags & NT_REPLY_RAW) {
        write_content(p, s, n);
        return;
    }
    for (size_t i = 0; i < n && !p->failed; i++) {
        if (p->state == OUTSIDE) {
            /* fast path: a run of plain content */
            size_t j = i;
            while (p->open_matched == 0 && j < n && s[j] != '<')
                j++;
            if (j > i) {
                write_content(p, s + i, j - i);
                i = j - 1;
                continue;
            }
            read_outside(p, s[i]);
        } else {
            read_block(p, s[i]);
        }
    }
}

/* End of the reply for the call layer: pending text is content. */
static void finish_calls(nt_reply_parser *p) {
    if (p->state != OUTSIDE) {
        abandon_block(p, NULL);
    } else if (p->open_matched > 0) {
        write_content(p, TOOLCALL_OPEN, p->open_matched);
        p->open_matched = 0;
    }
    p->space.n = 0;  /* whitespace at the end is dropped */
}

/* ---- the stop layer -------------------------------------------------------------- */

/* The index of the stop string that ends at b[e - 1], the longest if
 * several do, or -1. */
static int stop_ending_at(const nt_reply_parser *p, const char *b, size_t e) {
    int best = -1;
    for (int i = 0; i < p->n_stop; i++) {
        size_t n = p->stop_len[i];
        if (n <= e && b[e - 1] == p->stop[i][n - 1] &&
            memcmp(b + e - n, p->stop[i], n) == 0 &&
            (best < 0 || n > p->stop_len[best]))
            best = i;
    }
    return best;
}

/* Is b[from, e) a proper prefix of some stop string? */
static int begins_stop(const nt_reply_parser *p, const char *b, size_t from, size_t e) {
    for (int i = 0; i < p->n_stop; i++)
        if (e - from < p->stop_len[i] && memcmp(b + from, p->stop[i], e - from) == 0)
            return 1;
    return 0;
}

int nt_reply_parser_push(nt_reply_parser *p, const char *text, size_t len,
                         nt_event_fn fn, void *user) {
    if (!p || p->failed)
        return -1;
    if (p->stopped)
        return p->stopped;
    p->fn = fn;
    p->user = user;
    if (p->n_stop == 0) {
        read_bytes(p, text, len);
    } else {
        size_t checked = p->stop_hold.n;  /* no match ends in the hold */
        add(p, &p->stop_hold, text, len);
        if (p->failed)
            return -1;
        const char *b = p->stop_hold.s;
        size_t n = p->stop_hold.n;
        for (size_t e = checked + 1; e <= n; e++) {
            int i = stop_ending_at(p, b, e);
            if (i >= 0) {
                read_bytes(p, b, e - p->stop_len[i]);
                finish_calls(p);
                p->stopped = 1 + i;
                break;
            }
        }
        if (!p->stopped) {
            /* keep the longest tail that may still begin a stop string */
            size_t keep_from = n > p->max_stop_len ? n - p->max_stop_len + 1 : 0;
            while (keep_from < n && !begins_stop(p, b, keep_from, n))
                keep_from++;
            if (n > 0) {  /* an empty hold may have no buffer yet */
                read_bytes(p, b, keep_from);
                memmove(p->stop_hold.s, b + keep_from, n - keep_from);
                p->stop_hold.n = n - keep_from;
            }
        }
    }
    send_content(p);
    return p->failed ? -1 : p->stopped;
}

int nt_reply_parser_finish(nt_reply_parser *p, nt_event_fn fn, void *user) {
    if (!p || p->failed)
        return -1;
    p->fn = fn;
    p->user = user;
    if (!p->stopped) {
        read_bytes(p, p->stop_hold.s, p->stop_hold.n);
        p->stop_hold.n = 0;
        finish_calls(p);
    }
    send_content(p);
    return p->failed ? -1 : 0;
}
