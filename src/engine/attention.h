/*
 * attention.h - causal self-attention of one layer over a step's tokens,
 * against everything in the KV cache.
 */
#ifndef NT_ENGINE_ATTENTION_H
#define NT_ENGINE_ATTENTION_H

#include <stddef.h>

#include "engine/context.h"

/* Query positions per unit of prefill work (times the heads sharing one
 * KV head: the rows of one block of scores). */
#define NT_ATTENTION_QUERY_BLOCK 8

/* Floats of per-thread scratch attention needs (at the end of the thread's
 * scratch): one block of scores. */
size_t nt_attention_scratch_floats(const nt_hparams *hp, int n_ctx);

/* Floats of the context's shared buffer of packed keys and values. */
size_t nt_attention_panel_floats(const nt_hparams *hp, int n_ctx);

/*
 * ctx->att[i] = softmax(q_i K^T / sqrt(head_dim), keys of positions 0 ..
 * pos_i of row i's sequence) V per head, with the keys and values of
 * `layer` already in the cache through every row's position. Two
 * strategies (see attention.c), each computing a row's result the same
 * way whatever the other rows are:
 */

/* Row by row, for the listed rows of the step (positions in ctx->row_pos,
 * maps in ctx->row_map). */
void nt_attention_rows(nt_context *ctx, int layer, const int32_t *rows, int n_rows);

/* A run of rows through the GEMM tile, its sequence's keys packed once. */
void nt_attention_run(nt_context *ctx, int layer, const nt_step_run *run);

/* Whether a run takes nt_attention_run rather than the rows strategy. */
int nt_attention_run_uses_gemm(const nt_context *ctx, const nt_step_run *run,
                               nt_step_kernels kernels);

#endif
