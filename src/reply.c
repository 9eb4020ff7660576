/*
 * reply.c - see reply.h.
 *
 * <extra_id_1> ends a reply as a token and also as text (a stop string
 * after the caller's), for tokenizers that spell it in pieces. The token
 * that ends a reply is reported but not decoded, so it is never content.
 */
#include <stdlib.h>
#include <string.h>

#include "reply.h"

static const char END_OF_TURN[] = "<extra_id_1>";

struct nt_reply {
    nt_detokenizer *detok;
    nt_reply_parser *parser;
    int n_stop;               /* the caller's; END_OF_TURN is stop n_stop */
    int32_t eos, end_of_turn;
    nt_event_fn fn;
    void *user;
    uint64_t request;
    int n_tool_calls;
    int cancelled;
};

nt_reply *nt_reply_new(const nt_tokenizer *tok, const nt_generate_params *params,
                       nt_event_fn fn, void *user, uint64_t request, nt_error *err) {
    nt_reply *r = calloc(1, sizeof *r);
    const char **stop = malloc(((size_t)params->n_stop + 1) * sizeof *stop);
    if (!r || !stop) {
        free(r);
        free(stop);
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    for (int i = 0; i < params->n_stop; i++)
        stop[i] = params->stop[i];
    stop[params->n_stop] = END_OF_TURN;
    r->parser = nt_reply_parser_new(stop, params->n_stop + 1,
                                    params->parse_tool_calls ? 0 : NT_REPLY_RAW, err);
    free(stop);
    r->detok = r->parser ? nt_detokenizer_new(tok, 0, err) : NULL;
    if (!r->detok) {
        nt_reply_free(r);
        return NULL;
    }
    r->n_stop = params->n_stop;
    r->eos = nt_tokenizer_eos(tok);
    r->end_of_turn = nt_tokenizer_find(tok, END_OF_TURN, sizeof END_OF_TURN - 1);
    r->fn = fn;
    r->user = user;
    r->request = request;
    return r;
}

void nt_reply_free(nt_reply *r) {
    if (!r)
        return;
    nt_detokenizer_free(r->detok);
    nt_reply_parser_free(r->parser);
    free(r);
}

int nt_reply_tool_calls(const nt_reply *r) { return r->n_tool_calls; }

/* Passes the parser's events on, counting calls. */
static int relay(const nt_event *e, void *user) {
    nt_reply *r = user;
    if (e->type == NT_EVENT_TOOL_CALL)
        r->n_tool_calls++;
    nt_event copy = *e;
    copy.request = r->request;
    if (r->fn && r->fn(&copy, r->user) != 0) {
        r->cancelled = 1;
        return 1;
    }
    return 0;
}

/* The parser's verdict on more text as a finish reason (NONE: go on), or
 * an error when it ran out of memory. */
static nt_status parsed(nt_reply *r, int verdict, nt_finish_reason *finish,
                        nt_error *err) {
    if (verdict < 0 && !r->cancelled)
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory parsing the reply");
    *finish = verdict < 0              ? NT_FINISH_CANCELLED
              : verdict == 0           ? NT_FINISH_NONE
              : verdict - 1 == r->n_stop ? NT_FINISH_END_OF_TURN
                                         : NT_FINISH_STOP;
    return NT_OK;
}

nt_status nt_reply_text(nt_reply *r, const char *text, size_t len,
                        nt_finish_reason *finish, nt_error *err) {
    return parsed(r, nt_reply_parser_push(r->parser, text, len, relay, r), finish, err);
}

nt_status nt_reply_token(nt_reply *r, int32_t id, const nt_sample *sample,
                         nt_finish_reason *finish, nt_error *err) {
    *finish = NT_FINISH_NONE;
    nt_event token_event = {.type = NT_EVENT_TOKEN, .sample = sample, .request = r->request};
    if (r->fn && r->fn(&token_event, r->user) != 0) {
        r->cancelled = 1;
        *finish = NT_FINISH_CANCELLED;
        return NT_OK;
    }
    if (id == r->eos) {
        *finish = NT_FINISH_EOS;
        return NT_OK;
    }
    if (id == r->end_of_turn) {
        *finish = NT_FINISH_END_OF_TURN;
        return NT_OK;
    }
    size_t len;
    const char *text = nt_detokenizer_push(r->detok, id, &len, err);
    if (!text)
        return err ? err->status : NT_ERR_NO_MEMORY;
    return nt_reply_text(r, text, len, finish, err);
}

nt_status nt_reply_end(nt_reply *r, nt_finish_reason *finish, nt_error *err) {
    nt_status st = NT_OK;
    /* the decoder's held-back tail, then the parser's */
    if (*finish != NT_FINISH_STOP && *finish != NT_FINISH_CANCELLED &&
        *finish != NT_FINISH_END_OF_TURN) {
        size_t len;
        const char *text = nt_detokenizer_flush(r->detok, &len, err);
        if (!text) {
            st = err ? err->status : NT_ERR_NO_MEMORY;
        } else {
            nt_finish_reason late = NT_FINISH_NONE;
            st = nt_reply_text(r, text, len, &late, err);
            if (late != NT_FINISH_NONE)
                *finish = late;
        }
    }
    if (st == NT_OK && *finish != NT_FINISH_CANCELLED &&
        nt_reply_parser_finish(r->parser, relay, r) != 0 && !r->cancelled)
        st = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory parsing the reply");
    if (r->cancelled)
        *finish = NT_FINISH_CANCELLED;
    return st;
}
