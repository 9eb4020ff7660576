/*
 * context.h - the state of evaluation: KV cache, scratch, threads.
 *
 * A context built by nt_context_new holds one sequence whose position p
 * sits in cache slot p. The scheduler builds one whose slots are a pool
 * of blocks shared by many sequences (kv_pool.h); a step then says, per
 * run of rows, which sequence's positions they are and where those live.
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

/* Where a sequence's positions live: position p is in cache slot
 * blocks[p / block_tokens] * block_tokens + p % block_tokens. */
typedef struct nt_kv_map {
    const int32_t *blocks;
    int block_tokens;
} nt_kv_map;

static inline int64_t nt_kv_map_slot(const nt_kv_map *map, int pos) {
    return (int64_t)map->blocks[pos / map->block_tokens] * map->block_tokens +
           pos % map->block_tokens;
}

struct nt_context {
    nt_model *model;
    /* Sees the inputs of every matrix product (AWQ's calibration, awq.c);
       NULL otherwise. */
    nt_capture_fn capture;
    void *capture_user;
    nt_kernels kernels;
    nt_exec exec;
    int n_ctx;    /* most positions of one sequence (the rotary tables) */
    int n_slots;  /* positions the KV cache holds, all sequences together */
    int n_batch;
    int n_past;
    int32_t *tokens;  /* the n_past tokens in the cache, for prefix reuse */

    /* KV cache: [n_layer][n_slots][n_head_kv * head_dim] float32 each. */
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
    int32_t *row_pos;       /* per row of a step: its position */
    const nt_kv_map **row_map; /* per row of a step: its sequence's map */
    int32_t *attn_rows;     /* rows attended to row by row in a step */

    /* Logits of the last nt_eval. */
    float *logits;
    size_t logits_capacity;  /* floats */
    int logits_first;        /* index in the last eval of logits row 0 */
    int n_logits_rows;
    int last_n_tokens;
};

/* Consecutive rows of a step that continue one sequence. */
typedef struct nt_step_run {
    int row0, n;      /* rows [row0, row0 + n) of the step */
    int pos0;         /* the position of row0; the sequence holds 0 .. pos0 - 1 */
    nt_kv_map map;    /* where its positions live (pos0 + n of them reserved) */
    int prefill;      /* 1: prompt tokens, 0: tokens of a reply (see kernels) */
} nt_step_run;

/*
 * How a step picks its kernels.
 *
 * BY_SIZE: by the number of rows, the fastest choice (matmul.c and
 * attention.c). A row's rounding then depends on what else is in the step.
 *
 * BY_ROLE: by each row's run alone, so that a row computes the same bits
 * whatever shares its step (the scheduler's batch invariance): prompt rows
 * take the prefill kernels (GEMM products, GEMM attention) however few
 * they are, reply rows the decode kernels one row at a time however many
 * they are, and every row of logits the decode kernels. Reply runs must
 * come first in the step.
 */
typedef enum nt_step_kernels { NT_STEP_BY_SIZE = 0, NT_STEP_BY_ROLE } nt_step_kernels;

typedef struct nt_step {
    const int32_t *tokens;    /* n rows, n <= n_batch */
    int n;
    const nt_step_run *runs;  /* cover rows 0 .. n - 1 in order */
    int n_runs;
    nt_step_kernels kernels;
    const int32_t *logit_rows; /* rows whose logits are wanted, ascending;
                                  NULL: the step's last n_logit_rows */
    int n_logit_rows;
} nt_step;

/*
 * Runs the model over one step's rows, writing their keys and values into
 * the cache and the logits of logit_rows into `logits` (rows of n_vocab,
 * in the order listed).
 */
void nt_forward_step(nt_context *ctx, const nt_step *step, float *logits);

/*
 * The single sequence of a context from nt_context_new: runs tokens[0..n)
 * (n <= n_batch) at positions n_past ..., appending their keys and values
 * to the cache. Logits are written for tokens [logits_from, n) into
 * `logits` (rows of n_vocab), if logits_from < n.
 */
void nt_forward(nt_context *ctx, const int32_t *tokens, int n, int logits_from,
                float *logits);

/* A context of n_slots cache positions for many sequences of up to
 * params->n_ctx positions each (the scheduler's). */
nt_context *nt_context_new_pooled(nt_model *model, const nt_context_params *params,
                                  int n_slots, nt_error *err);

#endif
