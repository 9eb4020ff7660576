/*
 * context.h - the state of one sequence: KV cache, scratch, threads.
 */
#ifndef NT_ENGINE_CONTEXT_H
#define NT_ENGINE_CONTEXT_H

#include "engine/matmul.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "threadpool.h"

/* Where nt_forward shows a layer's matrix inputs to a capture hook. */
typedef enum nt_capture_point {
    NT_CAPTURE_ATTN_IN = 0,  /* attn_norm's output: the input of q, k, v */
    NT_CAPTURE_O_IN,         /* attention's output: the input of o */
    NT_CAPTURE_FFN_IN,       /* ffn_norm's output: the input of up */
    NT_CAPTURE_DOWN_IN,      /* relu(up)^2: the input of down */
    NT_CAPTURE_COUNT
} nt_capture_point;

typedef void (*nt_capture_fn)(void *user, int layer, nt_capture_point point,
                              const float *x, int n_rows, int64_t n_cols);

struct nt_context {
    nt_model *model;
    /* Sees the inputs of every matrix product (AWQ's calibration, awq.c);
       NULL otherwise. */
    nt_capture_fn capture;
    void *capture_user;
    nt_kernels kernels;
    nt_exec exec;
    int n_ctx;
    int n_batch;
    int n_past;
    int32_t *tokens;  /* the n_past tokens in the cache, for prefix reuse */

    /* KV cache: [n_layer][n_ctx][n_head_kv * head_dim] float32 each. */
    float *k_cache;
    float *v_cache;
    /* Rotary tables: [n_ctx][n_rot / 2], computed in double precision. */
    float *rope_cos;
    float *rope_sin;

    /* Activations for one step of up to n_batch tokens. */
    float *x;     /* residual stream  [n_batch][n_embd] */
    float *xn;    /* normed / output  [n_batch][n_embd] */
    float *q;     /* [n_batch][n_head * head_dim] */
    float *k;     /* [n_batch][n_head_kv * head_dim] */
    float *v;     /* [n_batch][n_head_kv * head_dim] */
    float *att;   /* attention output [n_batch][n_head * head_dim] */
    float *ff;    /* MLP inner        [n_batch][n_ff] */
    float *thread_scratch;  /* per thread: matmul scratch + attention scores */
    float *kv_panels;       /* one layer's keys and values packed (attention.c) */

    /* Logits of the last nt_eval. */
    float *logits;
    size_t logits_capacity;  /* floats */
    int logits_first;        /* index in the last eval of logits row 0 */
    int n_logits_rows;
    int last_n_tokens;
};

/*
 * Runs the model over tokens[0..n) (n <= n_batch) at positions n_past ...,
 * appending their keys and values to the cache. Logits are written for
 * tokens [logits_from, n) into `logits` (rows of n_vocab), if logits_from < n.
 */
void nt_forward(nt_context *ctx, const int32_t *tokens, int n, int logits_from,
                float *logits);

#endif
