/*
 * model.h - a loaded model: hyper-parameters plus weights, as the forward
 * pass sees them, independent of the file format they came from.
 */
#ifndef NT_MODEL_MODEL_H
#define NT_MODEL_MODEL_H

#include "internal.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "types/dtype.h"

/* A weight matrix: `rows` output features of `cols` inputs, row-major. */
typedef struct nt_matrix {
    const char *name;  /* for messages; points into the file's tensor table */
    nt_dtype dtype;
    int64_t rows;
    int64_t cols;
    const void *data;
    uint64_t row_bytes;
} nt_matrix;

/* A LayerNorm's scale and shift, kept as float32. The scale is stored as
 * applied: for HF's LayerNorm1P that is 1 + weight. */
typedef struct nt_norm {
    float *scale;
    float *shift;
} nt_norm;

typedef struct nt_layer {
    nt_norm attn_norm;         /* input_layernorm */
    nt_matrix wq, wk, wv, wo;  /* self_attn.{q,k,v,o}_proj */
    float *bq, *bk, *bv, *bo;  /* attention_bias: else NULL */
    nt_norm ffn_norm;          /* post_attention_layernorm */
    nt_matrix w_up, w_down;    /* mlp.{up,down}_proj */
    float *b_up, *b_down;      /* mlp_bias: else NULL */
} nt_layer;

struct nt_model {
    nt_hparams hp;
    nt_matrix tok_embd;        /* [n_vocab, n_embd] */
    nt_layer *layers;
    nt_norm out_norm;          /* model.norm */
    nt_matrix lm_head;         /* [n_vocab, n_embd] (the embedding if tied) */

    nt_st_file *files;         /* safetensors files the weights live in */
    int n_files;
    float *vectors;            /* one allocation for all norms and biases */
    uint64_t n_params;
    uint64_t weight_bytes;
    const char *weight_type;
    const char *file_type_name; /* a GGUF's general.file_type, e.g. "q4_k_m" */
};

#endif
