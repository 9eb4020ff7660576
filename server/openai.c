/*
 * openai.c - OpenAI's API shapes: request bodies in, responses out.
 *
 * In: a /v1/chat/completions or /v1/completions body becomes an
 * api_request, the token ids and nt_request_params the scheduler takes.
 * Every field is checked for its type and range before anything runs, and
 * a bad one is a 400 whose `param` names it, as OpenAI answers; fields we
 * do not know are ignored, because OpenAI's clients send some of their
 * own. A chat's prompt is what `nemotron chat` builds: the conversation
 * as {"messages", "tools", "contexts"} JSON, rendered by nt_chat_render
 * and tokenized without bos (the template holds the special tokens).
 *
 * Out: a job's events become either one response object (the events are
 * gathered per choice until every choice is done) or a stream of chunks,
 * written as server-sent events while they come. Both are made from the
 * same events in the same way, so a stream's pieces joined are the
 * non-streamed response's content.
 *
 * Token texts (logprobs) are the vocabulary's pieces as text: "▁" is a
 * space and a <0xNN> piece is that byte. A piece that is part of a UTF-8
 * character is shown with U+FFFD in "token"; "bytes" has the real bytes.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_internal.h"

#define INVALID "invalid_request_error"

/* Responses: logprobs are floats, whose shortest exact form has at most 9
 * digits; jansson's default 17 would print the double's noise. */
#define RESPONSE_JSON (JSON_COMPACT | JSON_REAL_PRECISION(9))

/* ---- UTF-8 ------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid:
 * the rules jansson checks (no overlong forms, no surrogates, <= U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* A JSON string of n bytes of text; invalid UTF-8 becomes U+FFFD. */
static json_t *json_text(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    strbuf b = {0};
    strbuf_add(&b, "", 0);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_sequence((const unsigned char *)s + i, n - i);
        if (len) {
            strbuf_add(&b, s + i, len);
            i += len;
        } else {
            strbuf_add(&b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    j = b.failed ? NULL : json_stringn(b.s, b.len);
    strbuf_free(&b);
    return j;
}

/* Characters (code points) in n bytes of UTF-8. */
static size_t utf8_chars(const char *s, size_t n) {
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    return chars;
}

/* ---- reading fields ------------------------------------------------------------ */

/* A field's value; NULL when absent or null (OpenAI treats them alike). */
static json_t *field(json_t *root, const char *name) {
    json_t *v = json_object_get(root, name);
    return v && !json_is_null(v) ? v : NULL;
}

static int wrong_type(api_error *e, const char *name, const char *expected) {
    api_fail(e, 400, INVALID, "invalid_type", name,
             "Invalid type for '%s': expected %s.", name, expected);
    return -1;
}

static int out_of_range(api_error *e, const char *name, const char *range) {
    api_fail(e, 400, INVALID, "invalid_value", name, "Invalid '%s': %s.", name, range);
    return -1;
}

/* The getters return 1 with *out set, 0 when the field is absent or null,
 * -1 after filling e. */
static int get_bool(json_t *root, const char *name, int *out, api_error *e) {
    json_t *v = field(root, name);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return wrong_type(e, name, "a boolean");
    *out = json_is_true(v);
    return 1;
}

static int get_int(json_t *root, const char *name, long long lo, long long hi,
                   long long *out, api_error *e) {
    json_t *v = field(root, name);
    if (!v)
        return 0;
    long long n;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        n = (long long)json_real_value(v); /* 2.0 is an integer to Python too */
    } else {
        return wrong_type(e, name, "an integer");
    }
    if (n < lo || n > hi) {
        char range[96];
        snprintf(range, sizeof range, "expected an integer from %lld to %lld, got %lld", lo, hi,
                 n);
        return out_of_range(e, name, range);
    }
    *out = n;
    return 1;
}

static int get_number(json_t *root, const char *name, double lo, double hi, double *out,
                      api_error *e) {
    json_t *v = field(root, name);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return wrong_type(e, name, "a number");
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) {
        char range[96];
        snprintf(range, sizeof range, "expected a number from %g to %g, got %g", lo, hi, d);
        return out_of_range(e, name, range);
    }
    *out = d;
    return 1;
}

/* ---- requests --------------------------------------------------------------------- */

void api_request_free(api_request *r) {
    if (!r)
        return;
    free(r->prompt);
    for (int i = 0; i < API_MAX_STOP; i++)
        free(r->stop[i]);
    free(r->logit_bias);
    free(r->reply_prefix);
    free(r);
}

/* A missing "model" means the one served; another name is a 404. */
static int check_model(server *srv, json_t *root, api_error *e) {
    json_t *model = field(root, "model");
    if (!model)
        return 0;
    if (!json_is_string(model))
        return wrong_type(e, "model", "a string");
    if (strcmp(json_string_value(model), srv->cfg.model_id) != 0) {
        api_fail(e, 404, INVALID, "model_not_found", "model",
                 "The model '%s' does not exist; this server serves '%s'.",
                 json_string_value(model), srv->cfg.model_id);
        return -1;
    }
    return 0;
}

/* stop: a string or up to 4 of them, none empty. */
static int parse_stop(json_t *root, api_request *r, api_error *e) {
    json_t *stop = field(root, "stop");
    if (!stop)
        return 0;
    if (!json_is_array(stop) && !json_is_string(stop))
        return wrong_type(e, "stop", "a string or an array of strings");
    size_t n = json_is_array(stop) ? json_array_size(stop) : 1;
    if (n > API_MAX_STOP)
        return out_of_range(e, "stop", "at most 4 stop sequences");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(stop) ? json_array_get(stop, i) : stop;
        if (!json_is_string(s))
            return wrong_type(e, "stop", "a string or an array of strings");
        if (json_string_length(s) == 0)
            return out_of_range(e, "stop", "stop sequences must not be empty");
        if (strlen(json_string_value(s)) != json_string_length(s))
            return out_of_range(e, "stop", "stop sequences must not hold NUL characters");
        if (!(r->stop[i] = strdup(json_string_value(s)))) {
            api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
            return -1;
        }
    }
    r->params.generate.stop = (const char *const *)r->stop;
    r->params.generate.n_stop = (int)n;
    return 0;
}

/* {"token id": bias, ...}, ids as decimal strings, biases in [-100, 100]. */
static int parse_logit_bias(server *srv, json_t *root, api_request *r, api_error *e) {
    json_t *lb = field(root, "logit_bias");
    if (!lb)
        return 0;
    if (!json_is_object(lb))
        return wrong_type(e, "logit_bias", "an object of token ids to numbers");
    size_t n = json_object_size(lb);
    if (n > API_MAX_LOGIT_BIAS)
        return out_of_range(e, "logit_bias", "at most 1024 tokens may be biased");
    if (n == 0)
        return 0;
    if (!(r->logit_bias = calloc(n, sizeof *r->logit_bias))) {
        api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return -1;
    }
    const char *key;
    json_t *value;
    int i = 0;
    json_object_foreach(lb, key, value) {
        char *end;
        errno = 0;
        long id = strtol(key, &end, 10);
        if (key[0] < '0' || key[0] > '9' || *end || errno || id < 0 || id >= srv->n_vocab) {
            api_fail(e, 400, INVALID, "invalid_value", "logit_bias",
                     "Invalid 'logit_bias': '%.40s' is not a token id from 0 to %d.", key,
                     srv->n_vocab - 1);
            return -1;
        }
        if (!json_is_number(value))
            return wrong_type(e, "logit_bias", "an object of token ids to numbers");
        double bias = json_number_value(value);
        if (!(bias >= -100 && bias <= 100))
            return out_of_range(e, "logit_bias", "biases must be from -100 to 100");
        r->logit_bias[i++] = (nt_logit_bias){(int32_t)id, (float)bias};
    }
    r->params.sampling.logit_bias = r->logit_bias;
    r->params.sampling.n_logit_bias = i;
    return 0;
}

/* What chat and completions share: sampling, n, limits, stop, streaming. */
static int parse_common(server *srv, json_t *root, api_request *r, api_error *e) {
    nt_sampler_params *sp = &r->params.sampling;
    *sp = nt_sampler_default_params();
    sp->temperature = 1.0f; /* OpenAI's defaults */
    sp->top_p = 1.0f;
    r->params.generate = nt_generate_default_params();
    double d;
    long long n;
    int rc;

    if (check_model(srv, root, e) < 0)
        return -1;
    if ((rc = get_number(root, "temperature", 0, 2, &d, e)) < 0)
        return -1;
    if (rc)
        sp->temperature = (float)d;
    if ((rc = get_number(root, "top_p", 0, 1, &d, e)) < 0)
        return -1;
    if (rc && d <= 0)
        return out_of_range(e, "top_p", "expected a number above 0 and at most 1");
    if (rc)
        sp->top_p = (float)d;
    if ((rc = get_number(root, "frequency_penalty", -2, 2, &d, e)) < 0)
        return -1;
    if (rc)
        sp->frequency_penalty = (float)d;
    if ((rc = get_number(root, "presence_penalty", -2, 2, &d, e)) < 0)
        return -1;
    if (rc)
        sp->presence_penalty = (float)d;
    /* vLLM's extensions, which OpenAI clients pass through extra_body */
    if ((rc = get_int(root, "top_k", -1, INT_MAX, &n, e)) < 0)
        return -1;
    if (rc)
        sp->top_k = n > 0 ? (int)n : 0;
    if ((rc = get_number(root, "min_p", 0, 1, &d, e)) < 0)
        return -1;
    if (rc)
        sp->min_p = (float)d;
    if ((rc = get_number(root, "repetition_penalty", 0, 100, &d, e)) < 0)
        return -1;
    if (rc && d <= 0)
        return out_of_range(e, "repetition_penalty", "expected a number above 0");
    if (rc)
        sp->repetition_penalty = (float)d;

    r->n = 1;
    if ((rc = get_int(root, "n", 1, API_MAX_CHOICES, &n, e)) < 0)
        return -1;
    if (rc)
        r->n = (int)n;
    /* max_completion_tokens replaced max_tokens; either is taken */
    if ((rc = get_int(root, "max_tokens", 1, INT_MAX, &n, e)) < 0)
        return -1;
    if (rc)
        r->max_tokens = (int)n;
    if ((rc = get_int(root, "max_completion_tokens", 1, INT_MAX, &n, e)) < 0)
        return -1;
    if (rc)
        r->max_tokens = (int)n;
    long long seed;
    if ((rc = get_int(root, "seed", LLONG_MIN, LLONG_MAX, &seed, e)) < 0)
        return -1;
    for (int i = 0; i < r->n; i++)
        r->seeds[i] = rc ? (uint64_t)seed + (uint64_t)i : server_random(srv);
    if (parse_stop(root, r, e) < 0 || parse_logit_bias(srv, root, r, e) < 0)
        return -1;

    if (get_bool(root, "stream", &r->stream, e) < 0)
        return -1;
    json_t *so = field(root, "stream_options");
    if (so && !json_is_object(so))
        return wrong_type(e, "stream_options", "an object");
    if (so && get_bool(so, "include_usage", &r->include_usage, e) < 0) {
        snprintf(e->param, sizeof e->param, "stream_options.include_usage");
        return -1;
    }
    return 0;
}

static void finish_params(api_request *r) {
    r->params.generate.max_tokens = r->max_tokens;
    r->params.generate.n_top_logprobs = r->logprobs ? r->top_logprobs : 0;
}

static int tokenize(server *srv, api_request *r, const char *text, size_t len, unsigned flags,
                    api_error *e) {
    nt_error err;
    size_t n_ids = 0;
    if (nt_tokenize(srv->tok, text, len, flags, &r->prompt, &n_ids, &err) != NT_OK) {
        api_fail(e, err.status == NT_ERR_NO_MEMORY ? 500 : 400,
                 err.status == NT_ERR_NO_MEMORY ? "server_error" : INVALID, NULL, NULL,
                 "cannot tokenize the prompt: %s", err.message);
        return -1;
    }
    if (n_ids > INT_MAX / 2) {
        api_fail(e, 400, INVALID, "context_length_exceeded", NULL, "the prompt is too long");
        return -1;
    }
    r->n_prompt = (int)n_ids;
    return 0;
}

static json_t *load_body(const char *body, size_t len, api_error *e) {
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        api_fail(e, 400, INVALID, NULL, NULL,
                 "We could not parse the JSON body of your request: %s (line %d, column %d).",
                 jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        api_fail(e, 400, INVALID, NULL, NULL, "The request body must be a JSON object.");
        json_decref(root);
        return NULL;
    }
    return root;
}

static api_request *request_new(server *srv, api_kind kind, api_error *e) {
    api_request *r = calloc(1, sizeof *r);
    if (!r) {
        api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    r->kind = kind;
    r->created = (long)time(NULL);
    server_random_id(srv, kind == API_CHAT ? "chatcmpl-" : "cmpl-", r->id, sizeof r->id);
    return r;
}

/* ---- chat ------------------------------------------------------------------------------ */

enum tool_choice { TOOLS_AUTO, TOOLS_NONE, TOOLS_REQUIRED, TOOLS_NAMED };

/* tools: [{"type": "function", "function": {"name": ...}}, ...]; *named
 * (tool_choice's function) must be one of them. */
static int check_tools(json_t *tools, const char *named, api_error *e) {
    int found = 0;
    for (size_t i = 0; i < json_array_size(tools); i++) {
        json_t *tool = json_array_get(tools, i);
        json_t *fn = json_object_get(tool, "function");
        json_t *name = json_object_get(fn, "name");
        const char *type = json_string_value(json_object_get(tool, "type"));
        if (!json_is_object(tool) || (type && strcmp(type, "function") != 0) || !json_is_string(name)) {
            api_fail(e, 400, INVALID, "invalid_value", "tools",
                     "Invalid 'tools[%zu]': expected {\"type\": \"function\", \"function\": "
                     "{\"name\": ..., \"parameters\": ...}}.", i);
            return -1;
        }
        if (named && strcmp(named, json_string_value(name)) == 0)
            found = 1;
    }
    if (named && !found) {
        api_fail(e, 400, INVALID, "invalid_value", "tool_choice",
                 "Invalid 'tool_choice': function '%s' is not one of the tools.", named);
        return -1;
    }
    return 0;
}

static int parse_tool_choice(json_t *root, int n_tools, const char **named, api_error *e) {
    json_t *tc = field(root, "tool_choice");
    *named = NULL;
    int choice = TOOLS_AUTO;
    if (!tc)
        return choice;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "none") == 0)
            choice = TOOLS_NONE;
        else if (strcmp(s, "required") == 0)
            choice = TOOLS_REQUIRED;
        else if (strcmp(s, "auto") != 0)
            return out_of_range(e, "tool_choice",
                                "expected \"none\", \"auto\", \"required\" or "
                                "{\"type\": \"function\", \"function\": {\"name\": ...}}");
    } else if (json_is_object(tc)) {
        const char *type = json_string_value(json_object_get(tc, "type"));
        *named = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
        if (!type || strcmp(type, "function") != 0 || !*named)
            return out_of_range(e, "tool_choice",
                                "expected {\"type\": \"function\", \"function\": {\"name\": ...}}");
        choice = TOOLS_NAMED;
    } else {
        return wrong_type(e, "tool_choice", "a string or an object");
    }
    if ((choice == TOOLS_REQUIRED || choice == TOOLS_NAMED) && n_tools == 0)
        return out_of_range(e, "tool_choice", "a tool call is required but no tools are given");
    return choice;
}

static int check_response_format(json_t *root, api_error *e) {
    json_t *rf = field(root, "response_format");
    if (!rf)
        return 0;
    if (!json_is_object(rf))
        return wrong_type(e, "response_format", "an object");
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!type)
        return wrong_type(e, "response_format", "an object with a string \"type\"");
    if (strcmp(type, "text") == 0)
        return 0;
    if (strcmp(type, "json_object") == 0 || strcmp(type, "json_schema") == 0) {
        api_fail(e, 400, INVALID, "unsupported_value", "response_format",
                 "response_format \"%s\" is not supported until constrained decoding", type);
        return -1;
    }
    return out_of_range(e, "response_format", "expected type \"text\"");
}

/* The messages, with OpenAI's newer "developer" role as the system role it
 * stands for (a copy: the body's tree stays as it came). */
static json_t *chat_messages(json_t *root, api_error *e) {
    json_t *messages = field(root, "messages");
    if (!messages) {
        api_fail(e, 400, INVALID, "missing_required_parameter", "messages",
                 "Missing required parameter: 'messages'.");
        return NULL;
    }
    if (!json_is_array(messages)) {
        wrong_type(e, "messages", "an array");
        return NULL;
    }
    if (json_array_size(messages) == 0) {
        out_of_range(e, "messages", "expected at least one message");
        return NULL;
    }
    json_t *copy = json_deep_copy(messages);
    if (!copy) {
        api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(copy); i++) {
        json_t *m = json_array_get(copy, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role && strcmp(role, "developer") == 0)
            json_object_set_new(m, "role", json_string("system"));
    }
    return copy;
}

/* The prompt text: the conversation rendered, then the reply's prefix. */
static char *chat_prompt(json_t *messages, json_t *tools, json_t *contexts,
                         const char *reply_prefix, size_t *len, api_error *e) {
    json_t *conv = json_object();
    if (conv) {
        json_object_set(conv, "messages", messages);
        if (tools)
            json_object_set(conv, "tools", tools);
        if (contexts)
            json_object_set(conv, "contexts", contexts);
    }
    char *conv_text = conv ? json_dumps(conv, JSON_COMPACT) : NULL;
    json_decref(conv);
    if (!conv_text) {
        api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    char *prompt = NULL;
    size_t prompt_len = 0;
    nt_error err;
    nt_status st = nt_chat_render(conv_text, strlen(conv_text), 0, &prompt, &prompt_len, &err);
    free(conv_text);
    if (st != NT_OK) {
        if (st == NT_ERR_NO_MEMORY)
            api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        else
            api_fail(e, 400, INVALID, NULL, "messages", "%s", err.message);
        return NULL;
    }
    if (reply_prefix) {
        size_t n = strlen(reply_prefix);
        char *grown = realloc(prompt, prompt_len + n + 1);
        if (!grown) {
            free(prompt);
            api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
            return NULL;
        }
        prompt = grown;
        memcpy(prompt + prompt_len, reply_prefix, n + 1);
        prompt_len += n;
    }
    *len = prompt_len;
    return prompt;
}

/* The start of the reply that forces a tool call, or NULL. */
static char *tool_call_prefix(int choice, const char *named) {
    if (choice == TOOLS_REQUIRED)
        return strdup("<toolcall>");
    if (choice != TOOLS_NAMED)
        return NULL;
    json_t *name = json_string(named);
    char *quoted = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
    json_decref(name);
    strbuf b = {0};
    if (quoted) {
        strbuf_adds(&b, "<toolcall> {\"name\": ");
        strbuf_adds(&b, quoted);
        strbuf_adds(&b, ", \"arguments\": ");
    }
    free(quoted);
    if (!quoted || b.failed) {
        strbuf_free(&b);
        return NULL;
    }
    return b.s;
}

api_request *api_parse_chat(server *srv, const char *body, size_t len, api_error *e) {
    json_t *root = load_body(body, len, e), *messages = NULL;
    api_request *r = root ? request_new(srv, API_CHAT, e) : NULL;
    char *prompt = NULL;
    if (!r || parse_common(srv, root, r, e) < 0)
        goto fail;
    long long n;
    int rc;
    if (get_bool(root, "logprobs", &r->logprobs, e) < 0 ||
        (rc = get_int(root, "top_logprobs", 0, NT_MAX_TOP_LOGPROBS, &n, e)) < 0)
        goto fail;
    if (rc && n > 0 && !r->logprobs) {
        out_of_range(e, "top_logprobs", "logprobs must be true when top_logprobs is given");
        goto fail;
    }
    r->top_logprobs = rc ? (int)n : 0;

    if (!(messages = chat_messages(root, e)))
        goto fail;
    json_t *tools = field(root, "tools");
    if (tools && !json_is_array(tools)) {
        wrong_type(e, "tools", "an array");
        goto fail;
    }
    int n_tools = tools ? (int)json_array_size(tools) : 0;
    const char *named;
    int choice = parse_tool_choice(root, n_tools, &named, e);
    if (choice < 0 || check_tools(tools, named, e) < 0 || check_response_format(root, e) < 0)
        goto fail;
    json_t *contexts = field(root, "contexts");
    if (contexts && !json_is_array(contexts)) {
        wrong_type(e, "contexts", "an array of strings");
        goto fail;
    }
    for (size_t i = 0; contexts && i < json_array_size(contexts); i++)
        if (!json_is_string(json_array_get(contexts, i))) {
            wrong_type(e, "contexts", "an array of strings");
            goto fail;
        }
    int use_tools = n_tools > 0 && choice != TOOLS_NONE;
    r->params.generate.parse_tool_calls = use_tools;
    if ((choice == TOOLS_REQUIRED || choice == TOOLS_NAMED) &&
        !(r->reply_prefix = tool_call_prefix(choice, named))) {
        api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }
    r->params.reply_prefix = r->reply_prefix;

    size_t prompt_len;
    prompt = chat_prompt(messages, use_tools ? tools : NULL, contexts, r->reply_prefix,
                         &prompt_len, e);
    if (!prompt || tokenize(srv, r, prompt, prompt_len, 0, e) < 0)
        goto fail;
    finish_params(r);
    free(prompt);
    json_decref(messages);
    json_decref(root);
    return r;
fail:
    free(prompt);
    json_decref(messages);
    json_decref(root);
    api_request_free(r);
    return NULL;
}

/* ---- completions ------------------------------------------------------------------------- */

/* prompt: a string, or token ids, or a list of one of either. */
static int completion_prompt(server *srv, json_t *root, api_request *r, api_error *e) {
    json_t *p = field(root, "prompt");
    if (!p) {
        api_fail(e, 400, INVALID, "missing_required_parameter", "prompt",
                 "Missing required parameter: 'prompt'.");
        return -1;
    }
    if (json_is_array(p) && json_array_size(p) == 1 &&
        (json_is_string(json_array_get(p, 0)) || json_is_array(json_array_get(p, 0))))
        p = json_array_get(p, 0);
    if (json_is_string(p)) {
        /* bos first, as a raw completion begins a document */
        return tokenize(srv, r, json_string_value(p), json_string_length(p), NT_TOKENIZE_BOS, e);
    }
    if (!json_is_array(p) || json_array_size(p) == 0)
        return wrong_type(e, "prompt", "a string, an array of token ids, or an array of one of either");
    size_t n = json_array_size(p);
    if (n > INT_MAX / 2 || !(r->prompt = malloc(n * sizeof *r->prompt))) {
        api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_array_get(p, i);
        if (json_is_string(id)) {
            api_fail(e, 400, INVALID, "invalid_value", "prompt",
                     "Invalid 'prompt': one prompt per request is supported.");
            return -1;
        }
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= srv->n_vocab) {
            api_fail(e, 400, INVALID, "invalid_value", "prompt",
                     "Invalid 'prompt': token ids must be integers from 0 to %d.",
                     srv->n_vocab - 1);
            return -1;
        }
        r->prompt[i] = (int32_t)json_integer_value(id);
    }
    r->n_prompt = (int)n;
    return 0;
}

api_request *api_parse_completion(server *srv, const char *body, size_t len, api_error *e) {
    json_t *root = load_body(body, len, e);
    api_request *r = root ? request_new(srv, API_COMPLETION, e) : NULL;
    if (!r || parse_common(srv, root, r, e) < 0)
        goto fail;
    if (!field(root, "max_tokens") && !field(root, "max_completion_tokens"))
        r->max_tokens = 16; /* the legacy endpoint's default */
    long long n;
    int rc, flag = 0;
    if ((rc = get_int(root, "logprobs", 0, NT_MAX_TOP_LOGPROBS, &n, e)) < 0)
        goto fail;
    r->logprobs = rc;
    r->top_logprobs = rc ? (int)n : 0;
    if ((rc = get_bool(root, "echo", &flag, e)) < 0)
        goto fail;
    if (rc && flag) {
        api_fail(e, 400, INVALID, "unsupported_value", "echo", "'echo' is not supported.");
        goto fail;
    }
    json_t *suffix = field(root, "suffix");
    if (suffix && !json_is_string(suffix)) {
        wrong_type(e, "suffix", "a string");
        goto fail;
    }
    if (suffix && json_string_length(suffix) > 0) {
        api_fail(e, 400, INVALID, "unsupported_value", "suffix", "'suffix' is not supported.");
        goto fail;
    }
    if ((rc = get_int(root, "best_of", 1, INT_MAX, &n, e)) < 0)
        goto fail;
    if (rc && n > 1) {
        api_fail(e, 400, INVALID, "unsupported_value", "best_of",
                 "'best_of' greater than 1 is not supported.");
        goto fail;
    }
    if (completion_prompt(srv, root, r, e) < 0)
        goto fail;
    r->params.generate.parse_tool_calls = 0;
    finish_params(r);
    json_decref(root);
    return r;
fail:
    json_decref(root);
    api_request_free(r);
    return NULL;
}

/* ---- responses ---------------------------------------------------------------------------- */

struct api_choice_output {
    strbuf content;
    json_t *tool_calls;   /* the message's tool_calls (not streaming) */
    int n_tool_calls;
    json_t *logprobs;     /* chat: the content entries; completions: the legacy
                             object; streaming: those since the last chunk */
    size_t text_offset;   /* completions: characters before the next token */
    int done;
    nt_generation result;
};

int api_output_init(api_output *o, server *srv, const api_request *req) {
    memset(o, 0, sizeof *o);
    o->req = req;
    o->srv = srv;
    o->choices = calloc((size_t)req->n, sizeof *o->choices);
    return o->choices ? 0 : -1;
}

void api_output_free(api_output *o) {
    for (int i = 0; o->choices && i < o->req->n; i++) {
        strbuf_free(&o->choices[i].content);
        json_decref(o->choices[i].tool_calls);
        json_decref(o->choices[i].logprobs);
    }
    free(o->choices);
    o->choices = NULL;
}

static const char *finish_reason(const api_choice_output *c, api_kind kind) {
    if (kind == API_CHAT && c->n_tool_calls > 0)
        return "tool_calls";
    switch (c->result.finish) {
    case NT_FINISH_LENGTH:
    case NT_FINISH_CONTEXT:
        return "length";
    default:
        return "stop";
    }
}

/* A logprob as JSON: -inf (a token that could not be drawn) is written as
 * OpenAI writes it, -9999. */
static json_t *json_logprob(float lp) {
    return json_real(isfinite(lp) ? (double)lp : -9999.0);
}

/* The token's bytes as they appear in the text (malloc'd, *len). */
static char *token_bytes(const nt_tokenizer *tok, int32_t id, size_t *len) {
    size_t n = 0;
    const char *piece = nt_tokenizer_piece(tok, id, &n);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    *len = 0;
    if (!piece) {
        out[0] = '\0';
        return out;
    }
    unsigned byte;
    char tail;
    if (n == 6 && sscanf(piece, "<0x%2X%c", &byte, &tail) == 2 && tail == '>') {
        out[0] = (char)byte;
        *len = 1;
        return out;
    }
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(piece + i, "\xE2\x96\x81", 3) == 0) {
            out[(*len)++] = ' ';
            i += 3;
        } else {
            out[(*len)++] = piece[i++];
        }
    }
    return out;
}

/* {"token", "logprob", "bytes"} of one token, as chat's logprobs have them. */
static json_t *chat_token(const nt_tokenizer *tok, int32_t id, float lp) {
    size_t n;
    char *bytes = token_bytes(tok, id, &n);
    json_t *list = json_array(), *entry = NULL;
    if (bytes && list) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, json_integer((unsigned char)bytes[i]));
        entry = json_pack("{s:o, s:o, s:O}", "token", json_text(bytes, n), "logprob",
                          json_logprob(lp), "bytes", list);
    }
    json_decref(list);
    free(bytes);
    return entry;
}

/* Appends a sampled token to a choice's logprobs, in the endpoint's shape. */
static int add_logprobs(api_output *o, api_choice_output *c, const nt_sample *s) {
    const nt_tokenizer *tok = o->srv->tok;
    if (o->req->kind == API_CHAT) {
        if (!c->logprobs && !(c->logprobs = json_array()))
            return -1;
        json_t *entry = chat_token(tok, s->id, s->logprob), *top = json_array();
        for (int i = 0; top && i < s->n_top && i < o->req->top_logprobs; i++)
            json_array_append_new(top, chat_token(tok, s->top[i].id, s->top[i].p));
        int ok = entry && top && json_object_set_new(entry, "top_logprobs", top) == 0;
        if (!ok)
            json_decref(top);
        ok = ok && json_array_append(c->logprobs, entry) == 0;
        json_decref(entry);
        return ok ? 0 : -1;
    }
    /* completions: {tokens, token_logprobs, top_logprobs, text_offset} */
    if (!c->logprobs &&
        !(c->logprobs = json_pack("{s:[], s:[], s:[], s:[]}", "tokens", "token_logprobs",
                                  "top_logprobs", "text_offset")))
        return -1;
    size_t n;
    char *bytes = token_bytes(tok, s->id, &n);
    json_t *top = json_object();
    for (int i = 0; top && i < s->n_top && i < o->req->top_logprobs; i++) {
        size_t m;
        char *alt = token_bytes(tok, s->top[i].id, &m);
        json_t *key = alt ? json_text(alt, m) : NULL;
        if (key)
            json_object_set_new(top, json_string_value(key), json_logprob(s->top[i].p));
        json_decref(key);
        free(alt);
    }
    if (!bytes || !top) {
        free(bytes);
        json_decref(top);
        return -1;
    }
    /* the _new appends take their value's reference even when they fail */
    int ok = json_array_append_new(json_object_get(c->logprobs, "tokens"), json_text(bytes, n)) == 0;
    ok &= json_array_append_new(json_object_get(c->logprobs, "token_logprobs"),
                                json_logprob(s->logprob)) == 0;
    ok &= json_array_append_new(json_object_get(c->logprobs, "top_logprobs"), top) == 0;
    ok &= json_array_append_new(json_object_get(c->logprobs, "text_offset"),
                                json_integer((json_int_t)c->text_offset)) == 0;
    c->text_offset += utf8_chars(bytes, n);
    free(bytes);
    return ok ? 0 : -1;
}

/* The logprobs a chunk or a choice reports (a new reference): chat's
 * {"content": [...]}, completions' legacy object, or null. */
static json_t *logprobs_value(const api_output *o, api_choice_output *c) {
    if (!c->logprobs)
        return json_null();
    if (o->req->kind == API_CHAT)
        return json_pack("{s:O}", "content", c->logprobs);
    return json_incref(c->logprobs);
}

/* ---- streaming ------------------------------------------------------------------------------- */

/* "data: {chunk}\n\n" with the chunk's common fields around `choices`. */
static int write_chunk(api_output *o, json_t *choices, json_t *usage, strbuf *sse) {
    const api_request *r = o->req;
    json_t *chunk = json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", r->id, "object",
                              r->kind == API_CHAT ? "chat.completion.chunk" : "text_completion",
                              "created", (json_int_t)r->created, "model", o->srv->cfg.model_id,
                              "choices", choices);
    if (chunk && r->include_usage)
        json_object_set_new(chunk, "usage", usage ? usage : json_null());
    else
        json_decref(usage);
    char *text = chunk ? json_dumps(chunk, RESPONSE_JSON) : NULL;
    json_decref(chunk);
    if (!text)
        return -1;
    strbuf_adds(sse, "data: ");
    strbuf_adds(sse, text);
    strbuf_adds(sse, "\n\n");
    free(text);
    return sse->failed ? -1 : 0;
}

/* One choice's chunk: chat's delta (taken) or completions' text, with the
 * logprobs gathered since the last chunk. */
static int choice_chunk(api_output *o, int index, json_t *delta, const char *text,
                        size_t text_len, const char *finish, strbuf *sse) {
    api_choice_output *c = &o->choices[index];
    json_t *choice = json_pack("{s:i}", "index", index);
    if (!choice) {
        json_decref(delta);
        return -1;
    }
    if (o->req->kind == API_CHAT) {
        json_object_set_new(choice, "delta", delta ? delta : json_object());
    } else {
        json_decref(delta); /* completions carry text, never a delta */
        json_object_set_new(choice, "text", json_text(text ? text : "", text_len));
    }
    if (o->req->logprobs || o->req->kind == API_COMPLETION)
        json_object_set_new(choice, "logprobs", logprobs_value(o, c));
    json_decref(c->logprobs);
    c->logprobs = NULL;
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    return write_chunk(o, json_pack("[o]", choice), NULL, sse);
}

int api_output_stream_start(api_output *o, strbuf *sse) {
    if (o->req->kind != API_CHAT)
        return 0;
    for (int i = 0; i < o->req->n; i++)
        if (choice_chunk(o, i, json_pack("{s:s, s:s}", "role", "assistant", "content", ""),
                         NULL, 0, NULL, sse) < 0)
            return -1;
    return 0;
}

static json_t *usage_json(const api_output *o) {
    long long completion = 0;
    int cached = -1, prompt = o->req->n_prompt;
    for (int i = 0; i < o->req->n; i++) {
        const api_choice_output *c = &o->choices[i];
        completion += c->result.n_generated;
        /* the part of the prompt that every choice found cached */
        if (c->done && (cached < 0 || c->result.n_reused < cached))
            cached = c->result.n_reused;
    }
    return json_pack("{s:i, s:I, s:I, s:{s:i}}", "prompt_tokens", prompt, "completion_tokens",
                     (json_int_t)completion, "total_tokens", (json_int_t)(prompt + completion),
                     "prompt_tokens_details", "cached_tokens", cached > 0 ? cached : 0);
}

int api_output_stream_end(api_output *o, int failed, strbuf *sse) {
    if (failed) {
        api_error e;
        if (o->srv->stopping)
            api_fail(&e, 503, "server_error", NULL, NULL, "the server is shutting down");
        else
            api_fail(&e, 500, "server_error", NULL, NULL,
                     "the request was ended by the server before it was complete");
        char *text = api_error_json(&e, NULL);
        if (text) {
            strbuf_adds(sse, "data: ");
            strbuf_adds(sse, text);
            strbuf_adds(sse, "\n\n");
            free(text);
        }
    } else if (o->req->include_usage) {
        if (write_chunk(o, json_array(), usage_json(o), sse) < 0)
            return -1;
    }
    strbuf_adds(sse, "data: [DONE]\n\n");
    return sse->failed ? -1 : 0;
}

/* ---- events ---------------------------------------------------------------------------------- */

/* A tool call as the message has it; a stream's delta leads with its index
 * among the choice's calls. */
static json_t *tool_call_json(api_output *o, const job_event *ev, int with_index) {
    char id[48];
    server_random_id(o->srv, "call_", id, sizeof id);
    json_t *call = with_index ? json_pack("{s:i}", "index", ev->index) : json_object();
    json_t *fn = json_pack("{s:o, s:o}", "name", json_text(ev->text, ev->text_len), "arguments",
                           json_text(ev->arguments, strlen(ev->arguments)));
    if (!call || !fn || json_object_set_new(call, "id", json_string(id)) != 0 ||
        json_object_set_new(call, "type", json_string("function")) != 0 ||
        json_object_set_new(call, "function", fn) != 0) {
        json_decref(call);
        return NULL;
    }
    return call;
}

int api_output_event(api_output *o, const job_event *ev, strbuf *sse) {
    if (ev->choice < 0 || ev->choice >= o->req->n)
        return 0;
    api_choice_output *c = &o->choices[ev->choice];
    switch (ev->type) {
    case NT_EVENT_TOKEN:
        return add_logprobs(o, c, &ev->sample);
    case NT_EVENT_CONTENT:
        if (!sse)
            return strbuf_add(&c->content, ev->text, ev->text_len) ? 0 : -1;
        if (o->req->kind == API_CHAT)
            return choice_chunk(o, ev->choice,
                                json_pack("{s:o}", "content", json_text(ev->text, ev->text_len)),
                                NULL, 0, NULL, sse);
        return choice_chunk(o, ev->choice, NULL, ev->text, ev->text_len, NULL, sse);
    case NT_EVENT_TOOL_CALL: {
        c->n_tool_calls++;
        json_t *call = tool_call_json(o, ev, sse != NULL);
        if (!call)
            return -1;
        if (sse)
            return choice_chunk(o, ev->choice, json_pack("{s:[o]}", "tool_calls", call), NULL,
                                0, NULL, sse);
        if (!c->tool_calls && !(c->tool_calls = json_array())) {
            json_decref(call);
            return -1;
        }
        return json_array_append_new(c->tool_calls, call) == 0 ? 0 : -1;
    }
    case NT_EVENT_DONE:
        if (c->done)
            return 0;
        c->done = 1;
        c->result = ev->result;
        o->n_done++;
        if (sse && ev->result.finish != NT_FINISH_CANCELLED)
            return choice_chunk(o, ev->choice, NULL, NULL, 0, finish_reason(c, o->req->kind), sse);
        return 0;
    }
    return 0;
}

char *api_output_response(api_output *o, size_t *len) {
    const api_request *r = o->req;
    json_t *choices = json_array();
    for (int i = 0; choices && i < r->n; i++) {
        api_choice_output *c = &o->choices[i];
        const char *text = c->content.s ? c->content.s : "";
        json_t *choice;
        if (r->kind == API_CHAT) {
            json_t *message = json_pack("{s:s}", "role", "assistant");
            if (message)
                json_object_set_new(message, "content",
                                    c->content.len == 0 && c->n_tool_calls > 0
                                        ? json_null()
                                        : json_text(text, c->content.len));
            if (message && c->tool_calls)
                json_object_set(message, "tool_calls", c->tool_calls);
            choice = json_pack("{s:i, s:o, s:o, s:s}", "index", i, "message", message,
                               "logprobs", r->logprobs ? logprobs_value(o, c) : json_null(),
                               "finish_reason", finish_reason(c, r->kind));
        } else {
            choice = json_pack("{s:i, s:o, s:o, s:s}", "index", i, "text",
                               json_text(text, c->content.len), "logprobs",
                               r->logprobs ? logprobs_value(o, c) : json_null(),
                               "finish_reason", finish_reason(c, r->kind));
        }
        if (!choice || json_array_append_new(choices, choice) != 0) {
            json_decref(choices);
            choices = NULL;
        }
    }
    json_t *body = choices ? json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", r->id, "object",
                                       r->kind == API_CHAT ? "chat.completion" : "text_completion",
                                       "created", (json_int_t)r->created, "model",
                                       o->srv->cfg.model_id, "choices", choices, "usage",
                                       usage_json(o))
                           : NULL;
    char *text = body ? json_dumps(body, RESPONSE_JSON) : NULL;
    json_decref(body);
    if (text)
        *len = strlen(text);
    return text;
}
