/*
 * fuzz_json.c - libFuzzer target: the JSON parser (nt_json_parse and the
 * streaming parse), every accessor over the tree it gives, the JavaScript
 * text writer, and the chat renderer (nt_chat_render) on the bytes as a
 * conversation.
 */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"
#include "nemotron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every part of v: what a caller could ask of any value. */
static void walk(const nt_json *v, int depth) {
    size_t len;
    int64_t i;
    nt_json_kind_name(nt_json_kind_of(v));
    nt_json_string(v, &len);
    nt_json_number(v);
    nt_json_int64(v, &i);
    nt_json_bool(v);
    nt_json_is_null(v);
    size_t n = nt_json_count(v);
    for (size_t k = 0; k < n; k++) {
        const char *key = nt_json_key_at(v, k, &len);
        /* a key read back must be found (the first few: lookups scan) */
        if (key && k < 64 && nt_json_getn(v, key, len) == NULL)
            abort();
        if (depth < NT_JSON_MAX_DEPTH)
            walk(nt_json_at(v, k), depth + 1);
    }
    nt_json_at(v, n); /* one past the end: NULL */
}

/* A stream callback that keeps nothing and reads each element. */
static int on_element(void *user, const nt_json_element *e, char *msg, size_t msg_size) {
    (void)user, (void)msg, (void)msg_size;
    if (e->value)
        walk(e->value, 0);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    char err[256];
    nt_json_doc *doc = nt_json_parse(text, size, err, sizeof err);
    if (doc) {
        const nt_json *root = nt_json_root(doc);
        walk(root, 0);
        size_t len;
        free(nt_json_to_js_text(root, &len));
        nt_json_doc *inner = NULL;
        nt_json_object_or_text(nt_json_at(root, 0), &inner);
        nt_json_free(inner);
        nt_json_free(doc);
    }

    /* The paths tokenizer.json is streamed by, and one into conversations. */
    const nt_json_stream streams[] = {
        {"model.vocab", on_element, NULL},
        {"model.merges", on_element, NULL},
        {"messages", on_element, NULL},
    };
    nt_json_free(nt_json_parse_streaming(text, size, streams,
                                         sizeof streams / sizeof *streams, err, sizeof err));

    for (unsigned flags = 0; flags <= NT_CHAT_NO_GENERATION_PROMPT; flags++) {
        char *prompt = NULL;
        size_t prompt_len;
        nt_error e;
        nt_chat_render(text, size, flags, &prompt, &prompt_len, &e);
        free(prompt);
    }
    return 0;
}
