/*
 * test_reply.c - the reply parser: tool calls, content and stop strings.
 *
 * Each case of the table is a reply as the model might write it and what
 * must come out: the content (joined), the calls (name and arguments as
 * the chat template writes JSON) and the stop verdict. Every case is fed
 * whole, one byte at a time and in random pieces; all must agree with the
 * table. Fed byte by byte, the content sent so far must always be a prefix
 * of the final content (nothing is ever taken back), and a case may name
 * text that must never have been sent before the end.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nemotron.h"

#define MAX_CALLS 4

typedef struct call {
    const char *name, *arguments;
} call;

typedef struct reply_case {
    const char *label;
    const char *text;
    const char *content;
    call calls[MAX_CALLS];
    const char *stop[3];   /* stop strings, NULL-terminated */
    int verdict;           /* 0, or 1 + index of the stop string */
    unsigned flags;
    const char *never;     /* must not appear in content sent before the end */
} reply_case;

#define WEATHER "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}"
#define WEATHER_CALL {"get_weather", "{\"city\": \"Oslo\"}"}
#define TIME "{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}"
#define TIME_CALL {"get_time", "{\"zone\": \"UTC\"}"}

static const reply_case CASES[] = {
    /* plain content */
    {"plain", "Hello there.", "Hello there.", {{0}}, {0}, 0, 0, 0},
    {"ends trimmed", " \n\tHello there. \n", "Hello there.", {{0}}, {0}, 0, 0, 0},
    {"inner whitespace kept", "a  \n\n b\tc", "a  \n\n b\tc", {{0}}, {0}, 0, 0, 0},
    {"empty", "", "", {{0}}, {0}, 0, 0, 0},
    {"only whitespace", " \n \n", "", {{0}}, {0}, 0, 0, 0},
    /* well-formed calls */
    {"one call", "<toolcall> " WEATHER " </toolcall>", "", {WEATHER_CALL}, {0}, 0, 0,
     "toolcall"},
    {"no spaces", "<toolcall>{\"name\":\"f\",\"arguments\":{\"a\":1}}</toolcall>", "",
     {{"f", "{\"a\": 1}"}}, {0}, 0, 0, "<"},
    {"newlines and tabs",
     "<toolcall>\n\t{\n  \"name\": \"f\",\n  \"arguments\": {}\n}\n\t</toolcall>\n", "",
     {{"f", "{}"}}, {0}, 0, 0, "<"},
    {"two calls, one per line",
     "<toolcall> " WEATHER " </toolcall>\n<toolcall> " TIME " </toolcall>", "",
     {WEATHER_CALL, TIME_CALL}, {0}, 0, 0, "<"},
    {"two calls back to back",
     "<toolcall>" WEATHER "</toolcall><toolcall>" TIME "</toolcall>", "",
     {WEATHER_CALL, TIME_CALL}, {0}, 0, 0, "<"},
    {"text before", "Let me check.\n<toolcall> " WEATHER " </toolcall>",
     "Let me check.", {WEATHER_CALL}, {0}, 0, 0, "<"},
    {"text after", "<toolcall> " WEATHER " </toolcall>\nIt is sunny.", "It is sunny.",
     {WEATHER_CALL}, {0}, 0, 0, "<"},
    {"text around", "Checking. <toolcall> " WEATHER " </toolcall> Done.",
     "Checking. Done.", {WEATHER_CALL}, {0}, 0, 0, "<"},
    {"braces in strings",
     "<toolcall> {\"name\": \"grep\", \"arguments\": {\"pattern\": \"a{2}}} {[\"}} </toolcall>",
     "", {{"grep", "{\"pattern\": \"a{2}}} {[\"}"}}, {0}, 0, 0, "<"},
    {"</toolcall> inside a string",
     "<toolcall> {\"name\": \"echo\", \"arguments\": {\"text\": \"</toolcall> and "
     "<toolcall>\"}} </toolcall>",
     "", {{"echo", "{\"text\": \"</toolcall> and <toolcall>\"}"}}, {0}, 0, 0, "<"},
    {"escaped quotes",
     "<toolcall> {\"name\": \"say\", \"arguments\": {\"q\": \"\\\"}\\\\\"}} </toolcall>",
     "", {{"say", "{\"q\": \"\\\"}\\\\\"}"}}, {0}, 0, 0, "<"},
    {"arguments as JSON text",
     "<toolcall> {\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": "
     "\\\"Oslo\\\"}\"} </toolcall>",
     "", {WEATHER_CALL}, {0}, 0, 0, "<"},
    {"arguments missing", "<toolcall> {\"name\": \"ping\"} </toolcall>", "",
     {{"ping", "{}"}}, {0}, 0, 0, "<"},
    {"nested arguments",
     "<toolcall> {\"arguments\": {\"a\": [1, {\"b\": null}], \"c\": true, \"d\": 2.50},"
     " \"name\": \"n\"} </toolcall>",
     "", {{"n", "{\"a\": [1, {\"b\": null}], \"c\": true, \"d\": 2.5}"}}, {0}, 0, 0, "<"},
    {"unicode", "<toolcall> {\"name\": \"weather\", \"arguments\": {\"city\": "
                "\"Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac\", \"e\": \"\\u00e9\"}} </toolcall>",
     "", {{"weather", "{\"city\": \"Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac\", \"e\": \"\xc3\xa9\"}"}},
     {0}, 0, 0, "<"},
    {"name with an escape", "<toolcall> {\"name\": \"\\u0041b\", \"arguments\": {}} </toolcall>",
     "", {{"Ab", "{}"}}, {0}, 0, 0, "<"},
    /* truncated: content as written */
    {"truncated in the object", "Sure. <toolcall> {\"name\": \"f\", \"argu",
     "Sure. <toolcall> {\"name\": \"f\", \"argu", {{0}}, {0}, 0, 0, "toolcall"},
    {"truncated in the close tag", "<toolcall> " WEATHER " </toolc",
     "<toolcall> " WEATHER " </toolc", {{0}}, {0}, 0, 0, "<"},
    {"truncated in the open tag", "Hi <toolc", "Hi <toolc", {{0}}, {0}, 0, 0, "<"},
    {"truncated after the object", "<toolcall> " WEATHER "  ",
     "<toolcall> " WEATHER, {{0}}, {0}, 0, 0, "<"},
    /* invalid: content as written */
    {"invalid JSON", "<toolcall> {\"name\": get_weather} </toolcall>",
     "<toolcall> {\"name\": get_weather} </toolcall>", {{0}}, {0}, 0, 0, 0},
    {"missing name", "<toolcall> {\"arguments\": {}} </toolcall>",
     "<toolcall> {\"arguments\": {}} </toolcall>", {{0}}, {0}, 0, 0, 0},
    {"empty name", "<toolcall> {\"name\": \"\"} </toolcall>",
     "<toolcall> {\"name\": \"\"} </toolcall>", {{0}}, {0}, 0, 0, 0},
    {"name not a string", "<toolcall> {\"name\": 3, \"arguments\": {}} </toolcall>",
     "<toolcall> {\"name\": 3, \"arguments\": {}} </toolcall>", {{0}}, {0}, 0, 0, 0},
    {"arguments an array", "<toolcall> {\"name\": \"f\", \"arguments\": [1]} </toolcall>",
     "<toolcall> {\"name\": \"f\", \"arguments\": [1]} </toolcall>", {{0}}, {0}, 0, 0, 0},
    {"arguments text not an object",
     "<toolcall> {\"name\": \"f\", \"arguments\": \"[1\"} </toolcall>",
     "<toolcall> {\"name\": \"f\", \"arguments\": \"[1\"} </toolcall>", {{0}}, {0}, 0, 0, 0},
    {"not an object", "<toolcall> [1, 2] </toolcall>", "<toolcall> [1, 2] </toolcall>",
     {{0}}, {0}, 0, 0, 0},
    {"text after the object", "<toolcall> " WEATHER " extra </toolcall>",
     "<toolcall> " WEATHER " extra </toolcall>", {{0}}, {0}, 0, 0, 0},
    {"closed early", "<toolcall> {\"name\": \"f\" </toolcall> then",
     "<toolcall> {\"name\": \"f\" </toolcall> then", {{0}}, {0}, 0, 0, 0},
    {"invalid then valid",
     "<toolcall> oops </toolcall>\n<toolcall> " WEATHER " </toolcall>",
     "<toolcall> oops </toolcall>", {WEATHER_CALL}, {0}, 0, 0, 0},
    {"valid then truncated", "<toolcall> " WEATHER " </toolcall>\n<toolcall> {\"na",
     "<toolcall> {\"na", {WEATHER_CALL}, {0}, 0, 0, 0},
    {"near-miss tags", "<toolcalls> x <tool> y </toolcall> <Toolcall>",
     "<toolcalls> x <tool> y </toolcall> <Toolcall>", {{0}}, {0}, 0, 0, 0},
    {"double angle", "<<toolcall> " WEATHER " </toolcall>", "<", {WEATHER_CALL}, {0}, 0, 0,
     "toolcall"},
    {"space kept before an invalid block", "Hi <toolcall> x",
     "Hi <toolcall> x", {{0}}, {0}, 0, 0, 0},
    /* stop strings */
    {"stop string", "Hello END world", "Hello", {{0}}, {"END"}, 1, 0, "E"},
    {"stop string at the start", "ENDHello", "", {{0}}, {"END"}, 1, 0, "H"},
    {"stop prefix not completed", "a </b> c", "a </b> c", {{0}}, {"</s>"}, 0, 0, 0},
    {"stop ends first wins", "xabcd", "xa", {{0}}, {"abcd", "bc"}, 2, 0, "b"},
    {"same end: longest", "xxabc", "xx", {{0}}, {"c", "abc"}, 2, 0, "a"},
    {"stop inside a call", "<toolcall> " WEATHER " </toolcall>",
     "<toolcall> {\"name\": \"get_weather\", \"arguments\": {\"city\": \"", {{0}},
     {"Oslo"}, 1, 0, "O"},
    {"stop after a call", "<toolcall> " WEATHER " </toolcall>\n<extra_id_1>User\nHi",
     "", {WEATHER_CALL}, {"<extra_id_1>"}, 1, 0, "User"},
    {"stop split over bytes of UTF-8", "caf\xc3\xa9 \xe2\x80\x94 fin", "caf\xc3\xa9",
     {{0}}, {" \xe2\x80\x94"}, 1, 0, "fin"},
    /* raw */
    {"raw keeps everything", "  <toolcall> " WEATHER " </toolcall>  ",
     "  <toolcall> " WEATHER " </toolcall>  ", {{0}}, {0}, 0, NT_REPLY_RAW, 0},
    {"raw with a stop", " a STOP b", " a ", {{0}}, {"STOP"}, 1, NT_REPLY_RAW, "S"},
};

#define N_CASES (sizeof CASES / sizeof CASES[0])

typedef struct collected {
    char content[4096];
    size_t content_len;
    char names[MAX_CALLS + 2][128];
    char args[MAX_CALLS + 2][512];
    int n_calls;
    int bad_index;      /* a call's index was not its position */
    int overflow;
} collected;

static int collect(const nt_event *e, void *user) {
    collected *c = user;
    if (e->type == NT_EVENT_CONTENT) {
        if (c->content_len + e->text_len >= sizeof c->content) {
            c->overflow = 1;
            return 0;
        }
        memcpy(c->content + c->content_len, e->text, e->text_len);
        c->content_len += e->text_len;
        c->content[c->content_len] = 0;
    } else if (e->type == NT_EVENT_TOOL_CALL) {
        if (c->n_calls >= MAX_CALLS + 2 || strlen(e->name) >= 128 ||
            strlen(e->arguments) >= 512) {
            c->overflow = 1;
            return 0;
        }
        if (e->index != c->n_calls)
            c->bad_index = 1;
        strcpy(c->names[c->n_calls], e->name);
        strcpy(c->args[c->n_calls], e->arguments);
        c->n_calls++;
    }
    return 0;
}

static uint64_t rng_state = 0x5eed;
static unsigned next_rand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(rng_state >> 33);
}

/* Feeds the case in pieces of `piece` bytes (0: whole; -1: random 1..7). */
static void run_case(const reply_case *tc, int piece, const char *how) {
    int n_stop = 0;
    while (n_stop < 3 && tc->stop[n_stop])
        n_stop++;
    nt_error err;
    nt_reply_parser *p = nt_reply_parser_new(tc->stop, n_stop, tc->flags, &err);
    CHECK_MSG(p != NULL, "%s: %s", tc->label, err.message);
    if (!p)
        return;
    collected c;
    memset(&c, 0, sizeof c);
    size_t len = strlen(tc->text), at = 0;
    int verdict = 0, prefix_ok = 1, leaked = 0;
    while (at < len && verdict == 0) {
        size_t n = piece == 0 ? len : piece > 0 ? (size_t)piece : 1 + next_rand() % 7;
        if (n > len - at)
            n = len - at;
        verdict = nt_reply_parser_push(p, tc->text + at, n, collect, &c);
        at += n;
        if (strncmp(c.content, tc->content, c.content_len) != 0)
            prefix_ok = 0;
        if (tc->never && strstr(c.content, tc->never))
            leaked = 1;
    }
    if (verdict != 0) {  /* after a stop string, text is ignored */
        int after = nt_reply_parser_push(p, "more", 4, collect, &c);
        CHECK_MSG(after == verdict, "%s (%s): push after the stop returned %d, not %d",
                  tc->label, how, after, verdict);
    }
    CHECK_MSG(nt_reply_parser_finish(p, collect, &c) == 0, "%s (%s): finish", tc->label, how);
    nt_reply_parser_free(p);

    CHECK_MSG(verdict == tc->verdict, "%s (%s): verdict %d, expected %d", tc->label, how,
              verdict, tc->verdict);
    CHECK_MSG(strcmp(c.content, tc->content) == 0, "%s (%s): content [%s], expected [%s]",
              tc->label, how, c.content, tc->content);
    CHECK_MSG(prefix_ok, "%s (%s): content was sent and then contradicted", tc->label, how);
    CHECK_MSG(!leaked, "%s (%s): [%s] was sent as content before the end", tc->label, how,
              tc->never);
    CHECK_MSG(!c.overflow && !c.bad_index, "%s (%s): event bookkeeping", tc->label, how);
    int n_expected = 0;
    while (n_expected < MAX_CALLS && tc->calls[n_expected].name)
        n_expected++;
    CHECK_MSG(c.n_calls == n_expected, "%s (%s): %d calls, expected %d", tc->label, how,
              c.n_calls, n_expected);
    for (int i = 0; i < n_expected && i < c.n_calls; i++) {
        CHECK_MSG(strcmp(c.names[i], tc->calls[i].name) == 0, "%s (%s): call %d named [%s]",
                  tc->label, how, i, c.names[i]);
        CHECK_MSG(strcmp(c.args[i], tc->calls[i].arguments) == 0,
                  "%s (%s): call %d arguments [%s], expected [%s]", tc->label, how, i,
                  c.args[i], tc->calls[i].arguments);
    }
}

/* Content must reach the caller as soon as it is decided. */
static void test_promptness(void) {
    nt_reply_parser *p = nt_reply_parser_new(NULL, 0, 0, NULL);
    collected c;
    memset(&c, 0, sizeof c);
    nt_reply_parser_push(p, "Hello", 5, collect, &c);
    CHECK(strcmp(c.content, "Hello") == 0);
    nt_reply_parser_push(p, " <", 2, collect, &c);
    CHECK(strcmp(c.content, "Hello") == 0);       /* " <" may be a call */
    nt_reply_parser_push(p, "b>", 2, collect, &c);
    CHECK(strcmp(c.content, "Hello <b>") == 0);   /* it is not */
    nt_reply_parser_push(p, " <toolcall> {\"name\": \"f\"}", 25, collect, &c);
    CHECK(strcmp(c.content, "Hello <b>") == 0);
    nt_reply_parser_push(p, " </toolcall>", 12, collect, &c);
    CHECK(c.n_calls == 1);
    nt_reply_parser_finish(p, collect, &c);
    CHECK(strcmp(c.content, "Hello <b>") == 0);
    nt_reply_parser_free(p);

    nt_error err;
    const char *empty[] = {""};
    CHECK(nt_reply_parser_new(empty, 1, 0, &err) == NULL && err.status == NT_ERR_ARGUMENT);
    CHECK(nt_reply_parser_new(NULL, 2, 0, &err) == NULL && err.status == NT_ERR_ARGUMENT);
}

static int cancel_on_call(const nt_event *e, void *user) {
    (void)user;
    return e->type == NT_EVENT_TOOL_CALL;
}

static void test_cancel(void) {
    nt_reply_parser *p = nt_reply_parser_new(NULL, 0, 0, NULL);
    const char *text = "<toolcall> " WEATHER " </toolcall> more";
    CHECK(nt_reply_parser_push(p, text, strlen(text), cancel_on_call, NULL) == -1);
    CHECK(nt_reply_parser_push(p, "x", 1, cancel_on_call, NULL) == -1);
    CHECK(nt_reply_parser_finish(p, cancel_on_call, NULL) == -1);
    nt_reply_parser_free(p);
}

typedef struct tally {
    int calls, bad_index;
    size_t content;
} tally;

static int count(const nt_event *e, void *user) {
    tally *t = user;
    if (e->type == NT_EVENT_TOOL_CALL) {
        t->bad_index |= e->index != t->calls;
        t->calls++;
        t->bad_index |= strcmp(e->name, "get_time") != 0;
    } else if (e->type == NT_EVENT_CONTENT) {
        t->content += e->text_len;
    }
    return 0;
}

/* A long reply with many calls, fed in random pieces. */
static void test_many_calls(void) {
    nt_reply_parser *p = nt_reply_parser_new(NULL, 0, 0, NULL);
    tally t = {0};
    const char *block = "<toolcall> " TIME " </toolcall>\n";
    int n_calls = 0, n_words = 0;
    for (int i = 0; i < 300; i++) {
        const char *s = i % 3 ? block : "x ";
        size_t len = strlen(s), at = 0;
        while (at < len) {
            size_t n = 1 + next_rand() % 5;
            if (n > len - at)
                n = len - at;
            nt_reply_parser_push(p, s + at, n, count, &t);
            at += n;
        }
        n_calls += i % 3 != 0;
        n_words += i % 3 == 0;
    }
    CHECK(nt_reply_parser_finish(p, count, &t) == 0);
    nt_reply_parser_free(p);
    CHECK(t.calls == n_calls && !t.bad_index);
    /* "x" words joined by the space that follows each call: "x x ... x" */
    CHECK(t.content == (size_t)(2 * n_words - 1));
}

int main(void) {
    for (size_t i = 0; i < N_CASES; i++) {
        run_case(&CASES[i], 0, "whole");
        run_case(&CASES[i], 1, "byte at a time");
        for (int r = 0; r < 5; r++)
            run_case(&CASES[i], -1, "random pieces");
    }
    printf("%zu reply cases, each fed whole, byte by byte and in 5 random splits\n",
           N_CASES);
    test_promptness();
    test_cancel();
    test_many_calls();
    return check_summary();
}
