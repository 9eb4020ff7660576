/*
 * test_chat.c - the prompt format (nt_chat_render) against renders of the
 * model's chat template by HF's Jinja engine.
 *
 * usage: test_chat FIXTURE_DIR
 *
 * FIXTURE_DIR/chat/rendered.jsonl holds conversations and their renders by
 * @huggingface/jinja 0.5.11. Each must render byte for byte, and tokenize
 * (with the tiny model's tokenizer.json) to the ids of the reference text.
 * Then what the template cannot show: OpenAI's tool_calls rendered the way
 * the model writes calls, content given as text parts, and refusals.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "json.h"
#include "nemotron.h"

static char *render(const char *json, unsigned flags, nt_error *err) {
    char *prompt = NULL;
    size_t len = 0;
    if (nt_chat_render(json, strlen(json), flags, &prompt, &len, err) != NT_OK)
        return NULL;
    CHECK(strlen(prompt) == len);
    return prompt;
}

static int same_ids(nt_tokenizer *tok, const char *a, size_t a_len, const char *b,
                    size_t b_len) {
    int32_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    nt_error err;
    int ok = nt_tokenize(tok, a, a_len, 0, &x, &nx, &err) == NT_OK &&
             nt_tokenize(tok, b, b_len, 0, &y, &ny, &err) == NT_OK && nx == ny && nx > 0 &&
             memcmp(x, y, nx * sizeof *x) == 0;
    free(x);
    free(y);
    return ok;
}

static void check_fixture(const char *dir) {
    size_t len;
    char *lines = fixture_read_in(dir, "chat/rendered.jsonl", &len);
    char tok_path[4096];
    snprintf(tok_path, sizeof tok_path, "%s/tiny-nemotron", dir);
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(tok_path, &err);
    CHECK_MSG(tok != NULL, "%s", err.message);
    int n = 0, same_text = 0, same_tokens = 0;
    for (char *p = lines; p && *p;) {
        char *nl = strchr(p, '\n');
        size_t line_len = nl ? (size_t)(nl - p) : strlen(p);
        nt_json_doc *doc = nt_json_parse(p, line_len, NULL, 0);
        size_t want_len;
        const char *want = nt_json_string(nt_json_get(nt_json_root(doc), "rendered"), &want_len);
        const char *name = nt_json_string(nt_json_get(nt_json_root(doc), "name"), NULL);
        char *prompt = NULL;
        size_t prompt_len = 0;
        /* the line is the conversation; "name" and "rendered" are ignored */
        CHECK(nt_chat_render(p, line_len, 0, &prompt, &prompt_len, &err) == NT_OK);
        n++;
        int text_ok = prompt && want && prompt_len == want_len &&
                      memcmp(prompt, want, want_len) == 0;
        CHECK_MSG(text_ok, "%s: rendered\n%s\nwant\n%s", name, prompt ? prompt : "(none)",
                  want ? want : "(none)");
        same_text += text_ok;
        int ids_ok = tok && prompt && want && same_ids(tok, prompt, prompt_len, want, want_len);
        CHECK_MSG(ids_ok, "%s: ids differ", name);
        same_tokens += ids_ok;
        free(prompt);
        nt_json_free(doc);
        p = nl ? nl + 1 : p + line_len;
    }
    printf("chat fixture: %d of %d conversations byte-identical, %d with identical ids\n",
           same_text, n, same_tokens);
    CHECK(n == 9 && same_text == 9 && same_tokens == 9);
    nt_tokenizer_free(tok);
    free(lines);
}

static void check_tool_calls(void) {
    /* the fixture's tools_contexts_toolturn, with the call given as OpenAI
     * does: the model's own <toolcall> text must come out */
    static const char conv[] =
        "{\"messages\": [{\"role\": \"system\", \"content\": \"You are a shopkeeper.\"}, "
        "{\"role\": \"user\", \"content\": \"Price of the shield?\"}, "
        "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call_1\", "
        "\"type\": \"function\", \"function\": {\"name\": \"get_price\", "
        "\"arguments\": \"{\\\"item\\\":\\\"shield\\\"}\"}}]}, "
        "{\"role\": \"tool\", \"tool_call_id\": \"call_1\", \"content\": \"{\\\"gold\\\": 40}\"}], "
        "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_price\", "
        "\"description\": \"Price of an item\", \"parameters\": {\"type\": \"object\", "
        "\"properties\": {\"item\": {\"type\": \"string\"}}}}}], "
        "\"contexts\": [\"Shields are on sale today.\"]}";
    static const char want[] =
        "<extra_id_0>System\nYou are a shopkeeper.\n\n<tool> {\"type\": \"function\", "
        "\"function\": {\"name\": \"get_price\", \"description\": \"Price of an item\", "
        "\"parameters\": {\"type\": \"object\", \"properties\": {\"item\": {\"type\": "
        "\"string\"}}}}} </tool>\n\n<context> Shields are on sale today. </context>\n\n"
        "<extra_id_1>User\nPrice of the shield?\n<extra_id_1>Assistant\n<toolcall> "
        "{\"name\": \"get_price\", \"arguments\": {\"item\": \"shield\"}} </toolcall>\n"
        "<extra_id_1>Tool\n{\"gold\": 40}\n<extra_id_1>Assistant\n";
    nt_error err;
    char *got = render(conv, 0, &err);
    CHECK_MSG(got && strcmp(got, want) == 0, "got\n%s", got ? got : err.message);
    free(got);

    /* two calls, text before them, arguments as an object; text parts */
    static const char two[] =
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": "
        "\"Open \"}, {\"type\": \"text\", \"text\": \"both\"}]}, {\"role\": \"assistant\", "
        "\"content\": \" Sure. \", \"tool_calls\": [{\"function\": {\"name\": \"open\", "
        "\"arguments\": {\"id\": 1}}}, {\"function\": {\"name\": \"open\", \"arguments\": "
        "\"{\\\"id\\\": 2.50}\"}}]}]}";
    got = render(two, NT_CHAT_NO_GENERATION_PROMPT, &err);
    CHECK_MSG(got && strcmp(got, "<extra_id_0>System\n\n<extra_id_1>User\nOpen both\n"
                                 "<extra_id_1>Assistant\nSure.\n<toolcall> {\"name\": "
                                 "\"open\", \"arguments\": {\"id\": 1}} </toolcall>\n"
                                 "<toolcall> {\"name\": \"open\", \"arguments\": {\"id\": "
                                 "2.5}} </toolcall>\n") == 0,
              "got\n%s", got ? got : err.message);
    free(got);
}

static void check_refusals(void) {
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"[1, 2]", "not a JSON object"},
        {"{\"messages\": [", "not valid JSON"},
        {"{}", "\"messages\" is missing"},
        {"{\"messages\": [{\"role\": \"developer\", \"content\": \"x\"}]}", "messages[0].role"},
        {"{\"messages\": [{\"content\": \"x\"}]}", "messages[0].role"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages[0].content"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
         "text only"},
        {"{\"messages\": [], \"tools\": {}}", "\"tools\" is not a list"},
        {"{\"messages\": [], \"contexts\": \"x\"}", "\"contexts\" is not a list"},
        {"{\"messages\": [], \"contexts\": [3]}", "contexts[0] is not text"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\", \"tool_calls\": []}]}",
         "only an assistant"},
        {"{\"messages\": [{\"role\": \"assistant\", \"content\": null, \"tool_calls\": "
         "[{\"function\": {\"name\": \"f\", \"arguments\": \"{oops\"}}]}]}",
         "function.arguments"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nt_error err;
        char *got = render(bad[i].json, 0, &err);
        CHECK_MSG(got == NULL, "%s rendered", bad[i].json);
        free(got);
        if (!got)
            CHECK_STR_CONTAINS(err.message, bad[i].needle);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_chat FIXTURE_DIR\n");
        return 2;
    }
    check_fixture(argv[1]);
    check_tool_calls();
    check_refusals();
    return check_summary();
}
