/*
 * chat_format.c - Nemotron-Mini's prompt format (nt_chat_render).
 *
 * The model's chat template (tokenizer_config.json), in full:
 *
 *   <extra_id_0>System
 *   for each system message:  "\n" + content.strip()  (+ "\n" if tools or contexts)
 *   for each tool:            "\n<tool> " + tool|tojson + " </tool>"
 *   if tools and contexts:    "\n"
 *   for each context:         "\n<context> " + context.strip() + " </context>"
 *   "\n\n"
 *   for each user / assistant / tool message:
 *                             "<extra_id_1>User\n" + content.strip() + "\n"  (Assistant, Tool)
 *   "<extra_id_1>Assistant\n"  (the generation prompt)
 *
 * The references are renders by HF's Jinja engine (@huggingface/jinja, as
 * transformers.js and the hosted endpoints use): strip() is JavaScript's
 * trim(), and tojson is JSON.stringify's text with ", " and ": " (see
 * nt_json_to_js_text). Jinja's truthiness: an empty list of tools or
 * contexts counts as none.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"
#include "tokenizer/unicode.h"


static void put(nt_writer *o, const char *s, size_t n) { nt_write(o, s, n); }

static void put_str(nt_writer *o, const char *s) { put(o, s, strlen(s)); }

/* s[0..n) without JavaScript whitespace at either end. */
static void put_stripped(nt_writer *o, const char *s, size_t n) {
    size_t lead = nt_js_leading_space(s, n);
    put(o, s + lead, n - lead - nt_js_trailing_space(s + lead, n - lead));
}

/* ---- reading a message ------------------------------------------------------ */

typedef struct renderer {
    nt_writer *out;
    nt_error *err;
    nt_status status;
} renderer;

static void refuse(renderer *r, const char *fmt, ...) NT_PRINTF(2, 3);

static void refuse(renderer *r, const char *fmt, ...) {
    if (r->status != NT_OK)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->status = nt_fail(r->err, NT_ERR_ARGUMENT, "%s", msg);
}

/*
 * A message's text: a string, null (none), or OpenAI's list of parts of
 * which only {"type": "text", "text": ...} is accepted (joined as they
 * come). Written into *text (malloc'd) and *len; 0 after refusing.
 */
static int message_text(renderer *r, const nt_json *m, size_t index, char **text,
                        size_t *len) {
    const nt_json *content = nt_json_get(m, "content");
    nt_writer t = {0};
    *text = NULL;
    *len = 0;
    switch (nt_json_kind_of(content)) {
    case NT_JSON_NULL:
        break;
    case NT_JSON_STRING: {
        size_t n;
        const char *s = nt_json_string(content, &n);
        put(&t, s, n);
        break;
    }
    case NT_JSON_ARRAY:
        for (size_t i = 0; i < nt_json_count(content); i++) {
            const nt_json *part = nt_json_at(content, i);
            const char *type = nt_json_string(nt_json_get(part, "type"), NULL);
            size_t n;
            const char *s = nt_json_string(nt_json_get(part, "text"), &n);
            if (!type || strcmp(type, "text") != 0 || !s) {
                refuse(r, "messages[%zu]: a content part that is not {\"type\": \"text\", "
                          "\"text\": \"...\"} (this model reads text only)", index);
                free(t.buf.s);
                return 0;
            }
            put(&t, s, n);
        }
        break;
    default:
        refuse(r, "messages[%zu].content is neither text, a list of text parts nor null",
               index);
        return 0;
    }
    if (t.failed) {
        free(t.buf.s);
        r->status = nt_fail(r->err, NT_ERR_NO_MEMORY, "out of memory");
        return 0;
    }
    *text = t.buf.s;
    *len = t.buf.n;
    return 1;
}

/*
 * An assistant message's tool calls, as the model writes them:
 * <toolcall> {"name": "...", "arguments": {...}} </toolcall>, one a line.
 * OpenAI gives the arguments as JSON text; an object is taken too.
 */
static void put_tool_calls(renderer *r, nt_writer *o, const nt_json *calls, size_t index) {
    for (size_t i = 0; i < nt_json_count(calls) && r->status == NT_OK; i++) {
        const nt_json *call = nt_json_at(calls, i);
        const nt_json *fn = nt_json_get(call, "function");
        size_t name_len, args_len = 0;
        const char *name = nt_json_string(nt_json_get(fn, "name"), &name_len);
        nt_json_doc *parsed;
        const nt_json *args = nt_json_object_or_text(nt_json_get(fn, "arguments"), &parsed);
        if (!name || !args) {
            refuse(r, "messages[%zu]: a tool call needs function.name and function.arguments "
                      "(a JSON object, or its text)", index);
            nt_json_free(parsed);
            return;
        }
        char *args_text = nt_json_to_js_text(args, &args_len);
        nt_json_free(parsed);
        if (!args_text) {
            r->status = nt_fail(r->err, NT_ERR_NO_MEMORY, "out of memory");
            return;
        }
        size_t quoted_len;
        char *quoted = nt_json_quote_js(name, name_len, &quoted_len);
        if (!quoted) {
            free(args_text);
            r->status = nt_fail(r->err, NT_ERR_NO_MEMORY, "out of memory");
            return;
        }
        if (o->buf.n > 0)
            put(o, "\n", 1);
        put_str(o, "<toolcall> {\"name\": ");
        put(o, quoted, quoted_len);
        free(quoted);
        put_str(o, ", \"arguments\": ");
        put(o, args_text, args_len);
        put_str(o, "} </toolcall>");
        free(args_text);
    }
}

/* ---- the template ---------------------------------------------------------- */

static const char *turn_header(const char *role) {
    if (strcmp(role, "user") == 0)
        return "<extra_id_1>User\n";
    if (strcmp(role, "assistant") == 0)
        return "<extra_id_1>Assistant\n";
    if (strcmp(role, "tool") == 0)
        return "<extra_id_1>Tool\n";
    return NULL;
}

static void render(renderer *r, const nt_json *conv, unsigned flags) {
    nt_writer *o = r->out;
    const nt_json *messages = nt_json_get(conv, "messages");
    const nt_json *tools = nt_json_get(conv, "tools");
    const nt_json *contexts = nt_json_get(conv, "contexts");
    if (nt_json_kind_of(conv) != NT_JSON_OBJECT) {
        refuse(r, "the conversation is not a JSON object");
        return;
    }
    if (nt_json_kind_of(messages) != NT_JSON_ARRAY) {
        refuse(r, "\"messages\" is missing or not a list");
        return;
    }
    if (tools && !nt_json_is_null(tools) && nt_json_kind_of(tools) != NT_JSON_ARRAY) {
        refuse(r, "\"tools\" is not a list");
        return;
    }
    if (contexts && !nt_json_is_null(contexts) && nt_json_kind_of(contexts) != NT_JSON_ARRAY) {
        refuse(r, "\"contexts\" is not a list");
        return;
    }
    size_t n_messages = nt_json_count(messages), n_tools = nt_json_count(tools),
           n_contexts = nt_json_count(contexts);

    /* every message's role first, so nothing is written for a bad one */
    for (size_t i = 0; i < n_messages; i++) {
        const char *role = nt_json_string(nt_json_get(nt_json_at(messages, i), "role"), NULL);
        if (!role || (strcmp(role, "system") != 0 && !turn_header(role))) {
            refuse(r, "messages[%zu].role must be \"system\", \"user\", \"assistant\" or "
                      "\"tool\"", i);
            return;
        }
    }

    put_str(o, "<extra_id_0>System");
    for (size_t i = 0; i < n_messages && r->status == NT_OK; i++) {
        const nt_json *m = nt_json_at(messages, i);
        if (strcmp(nt_json_string(nt_json_get(m, "role"), NULL), "system") != 0)
            continue;
        char *text;
        size_t len;
        if (!message_text(r, m, i, &text, &len))
            return;
        put(o, "\n", 1);
        put_stripped(o, text ? text : "", len);
        if (n_tools > 0 || n_contexts > 0)
            put(o, "\n", 1);
        free(text);
    }
    for (size_t i = 0; i < n_tools; i++) {
        size_t len;
        char *json = nt_json_to_js_text(nt_json_at(tools, i), &len);
        if (!json) {
            r->status = nt_fail(r->err, NT_ERR_NO_MEMORY, "out of memory");
            return;
        }
        put_str(o, "\n<tool> ");
        put(o, json, len);
        put_str(o, " </tool>");
        free(json);
    }
    if (n_contexts > 0 && n_tools > 0)
        put(o, "\n", 1);
    for (size_t i = 0; i < n_contexts; i++) {
        size_t len;
        const char *passage = nt_json_string(nt_json_at(contexts, i), &len);
        if (!passage) {
            refuse(r, "contexts[%zu] is not text", i);
            return;
        }
        put_str(o, "\n<context> ");
        put_stripped(o, passage, len);
        put_str(o, " </context>");
    }
    put_str(o, "\n\n");

    for (size_t i = 0; i < n_messages && r->status == NT_OK; i++) {
        const nt_json *m = nt_json_at(messages, i);
        const char *header = turn_header(nt_json_string(nt_json_get(m, "role"), NULL));
        if (!header)
            continue; /* system: written above */
        char *text;
        size_t len;
        if (!message_text(r, m, i, &text, &len))
            return;
        nt_writer body = {0};
        put_stripped(&body, text ? text : "", len);
        free(text);
        const nt_json *calls = nt_json_get(m, "tool_calls");
        if (calls && !nt_json_is_null(calls)) {
            if (strcmp(header, "<extra_id_1>Assistant\n") != 0 ||
                nt_json_kind_of(calls) != NT_JSON_ARRAY) {
                refuse(r, "messages[%zu].tool_calls: only an assistant message has them, as a "
                          "list", i);
                free(body.buf.s);
                return;
            }
            put_tool_calls(r, &body, calls, i);
        }
        if (body.failed)
            r->status = nt_fail(r->err, NT_ERR_NO_MEMORY, "out of memory");
        put_str(o, header);
        put_stripped(o, body.buf.s ? body.buf.s : "", body.buf.n);
        put(o, "\n", 1);
        free(body.buf.s);
    }
    if (!(flags & NT_CHAT_NO_GENERATION_PROMPT))
        put_str(o, "<extra_id_1>Assistant\n");
    if (o->failed && r->status == NT_OK)
        r->status = nt_fail(r->err, NT_ERR_NO_MEMORY, "out of memory");
}

nt_status nt_chat_render(const char *conversation_json, size_t len, unsigned flags,
                         char **prompt, size_t *prompt_len, nt_error *err) {
    nt_error_clear(err);
    if (!prompt)
        return nt_fail(err, NT_ERR_ARGUMENT, "no place for the prompt (NULL)");
    *prompt = NULL;
    if (prompt_len)
        *prompt_len = 0;
    char jerr[256];
    nt_json_doc *doc = nt_json_parse(conversation_json, len, jerr, sizeof jerr);
    if (!doc)
        return nt_fail(err, NT_ERR_ARGUMENT, "the conversation is not valid JSON: %s", jerr);
    nt_writer out = {0};
    renderer r = {&out, err, NT_OK};
    render(&r, nt_json_root(doc), flags);
    nt_json_free(doc);
    if (r.status != NT_OK) {
        free(out.buf.s);
        return r.status;
    }
    *prompt = out.buf.s ? out.buf.s : calloc(1, 1);
    if (!*prompt)
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    if (prompt_len)
        *prompt_len = out.buf.n;
    return NT_OK;
}
