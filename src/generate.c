/*
 * generate.c - one reply: prompt in, tokens sampled, text parsed, stop.
 *
 * The loop, per token: sample from the last logits; hand the token to the
 * reply (reply.h: its event, eos or <extra_id_1>, its text through the
 * reply parser); end at max_tokens or a full context; else evaluate it and
 * go on. The token that ends a reply is sampled but never evaluated, so the
 * cache holds the prompt and the reply before it.
 *
 * A conversation re-renders its whole prompt each turn. The context
 * remembers the tokens in its cache, and only the part of the new prompt
 * past the longest common prefix is evaluated; at least the last prompt
 * token always is, because its logits start the reply.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/context.h"
#include "internal.h"
#include "reply.h"

const char *nt_finish_reason_name(nt_finish_reason reason) {
    switch (reason) {
    case NT_FINISH_NONE: return "none";
    case NT_FINISH_EOS: return "eos";
    case NT_FINISH_END_OF_TURN: return "end_of_turn";
    case NT_FINISH_STOP: return "stop";
    case NT_FINISH_LENGTH: return "length";
    case NT_FINISH_CONTEXT: return "context_full";
    case NT_FINISH_CANCELLED: return "cancelled";
    }
    return "unknown";
}

nt_generate_params nt_generate_default_params(void) {
    nt_generate_params p;
    memset(&p, 0, sizeof p);
    p.parse_tool_calls = 1;
    return p;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int n = 0;
    while (n < na && n < nb && a[n] == b[n])
        n++;
    return n;
}

nt_status nt_generate(nt_context *ctx, const nt_tokenizer *tok,
                      nt_sampler *sampler, const int32_t *prompt, int n_prompt,
                      const nt_generate_params *params, nt_event_fn fn,
                      void *user, nt_generation *result, nt_error *err) {
    nt_generate_params defaults = nt_generate_default_params();
    if (!params)
        params = &defaults;
    nt_generation scratch;
    if (!result)
        result = &scratch;
    memset(result, 0, sizeof *result);
    nt_error_clear(err);
    if (!ctx || !tok || !sampler || !prompt || n_prompt < 1)
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "nt_generate: a context, a tokenizer, a sampler and a "
                       "non-empty prompt are needed");
    if (params->max_tokens < 0 || params->n_stop < 0 ||
        (params->n_stop > 0 && !params->stop) || params->n_top_logprobs < 0 ||
        params->n_top_logprobs > NT_MAX_TOP_LOGPROBS)
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "nt_generate: max_tokens must be >= 0, n_top_logprobs in "
                       "0..%d, and stop strings given when n_stop > 0",
                       NT_MAX_TOP_LOGPROBS);
    int n_vocab = ctx->model->hp.n_vocab;
    if (nt_tokenizer_n_vocab(tok) > n_vocab)
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "the tokenizer has %d tokens but the model only %d",
                       nt_tokenizer_n_vocab(tok), n_vocab);
    int n_ctx = nt_n_ctx(ctx);
    if (n_prompt >= n_ctx)
        return nt_fail(err, NT_ERR_CONTEXT_FULL,
                       "the prompt has %d tokens and the context holds %d: "
                       "no room is left for a reply", n_prompt, n_ctx);

    nt_reply *reply = nt_reply_new(tok, params, fn, user, 0, err);
    if (!reply)
        return err ? err->status : NT_ERR_NO_MEMORY;

    nt_status st = NT_OK;
    double t0 = nt_time_seconds();
    int reuse = common_prefix(nt_kv_tokens(ctx), nt_n_past(ctx), prompt, n_prompt);
    if (reuse == n_prompt)
        reuse--;  /* the last prompt token's logits start the reply */
    result->n_prompt = n_prompt;
    result->n_reused = reuse;
    st = nt_kv_truncate(ctx, reuse, err);
    if (st == NT_OK)
        st = nt_eval(ctx, prompt + reuse, n_prompt - reuse, NT_LOGITS_LAST, err);
    if (st == NT_OK)
        st = nt_sampler_set_prompt(sampler, prompt, n_prompt, err);
    double t1 = nt_time_seconds();
    result->prompt_seconds = t1 - t0;

    nt_finish_reason finish = NT_FINISH_NONE;
    while (st == NT_OK && finish == NT_FINISH_NONE) {
        nt_sample sample;
        int32_t id = nt_sampler_sample_ex(sampler, nt_logits(ctx, -1), n_vocab,
                                          params->n_top_logprobs, &sample);
        if (id < 0) {
            st = nt_fail(err, NT_ERR_ARGUMENT,
                         "the sampler refused the logits: a logit bias or a "
                         "penalty names a token outside the vocabulary of %d",
                         n_vocab);
            break;
        }
        result->n_generated++;
        st = nt_sampler_accept(sampler, id, err);
        if (st == NT_OK)
            st = nt_reply_token(reply, id, &sample, &finish, err);
        if (st != NT_OK || finish != NT_FINISH_NONE)
            break;
        if (params->max_tokens > 0 && result->n_generated >= params->max_tokens)
            finish = NT_FINISH_LENGTH;
        else if (nt_n_past(ctx) >= n_ctx)
            finish = NT_FINISH_CONTEXT;
        else
            st = nt_eval(ctx, &id, 1, NT_LOGITS_LAST, err);
    }
    if (st == NT_OK)
        st = nt_reply_end(reply, &finish, err);
    result->finish = finish;
    result->n_tool_calls = nt_reply_tool_calls(reply);
    result->generate_seconds = nt_time_seconds() - t1;
    nt_reply_free(reply);
    return st;
}
