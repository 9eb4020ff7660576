/*
 * attention.h - causal self-attention of one layer over a step's tokens,
 * against everything in the KV cache.
 */
#ifndef NT_ENGINE_ATTENTION_H
#define NT_ENGINE_ATTENTION_H

#include <stddef.h>

#include "model/model.h"

typedef struct nt_context nt_context;

/* Query positions per unit of prefill work (times the heads sharing one
 * KV head: the rows of one block of scores). */
#define NT_ATTENTION_QUERY_BLOCK 8

/* Floats of per-thread scratch attention needs (at the end of the thread's
 * scratch): one block of scores. */
size_t nt_attention_scratch_floats(const nt_hparams *hp, int n_ctx);

/* Floats of the context's shared buffer of packed keys and values. */
size_t nt_attention_panel_floats(const nt_hparams *hp, int n_ctx);

/*
 * ctx->att[i] = softmax(q_i K^T / sqrt(head_dim), keys up to pos0 + i) V for
 * the n tokens of the step (their queries in ctx->q), per head, with keys
 * and values of `layer` already in the cache up to position pos0 + n.
 */
void nt_attention(nt_context *ctx, int layer, int n, int pos0);

#endif
