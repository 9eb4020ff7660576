/*
 * config.h - the model's hyper-parameters, from HF's config.json.
 */
#ifndef NT_MODEL_CONFIG_H
#define NT_MODEL_CONFIG_H

#include <stddef.h>

#include "internal.h"
#include "model/gguf.h"

typedef struct nt_hparams {
    int n_vocab;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;
    int n_rot;          /* head_dim * partial_rotary_factor */
    int n_ff;
    int n_ctx_train;
    float norm_eps;
    float rope_theta;
    int bos_id;
    int eos_id;
    int tie_embeddings;
    int attention_bias; /* q/k/v/o projections carry biases */
    int mlp_bias;       /* up/down projections carry biases */
} nt_hparams;

/*
 * Parses config.json text (`path` is for messages). Refuses, naming the
 * field, any architecture, activation or rope scaling we do not implement.
 */
nt_status nt_config_parse(const char *text, size_t len, const char *path,
                          nt_hparams *hp, nt_error *err);

/*
 * The same from a GGUF file's metadata (architecture "nemotron"); n_vocab
 * is the token embedding's row count. Biases and tied embeddings are left
 * 0: the loader sees them from the tensors present.
 */
nt_status nt_config_from_gguf(const nt_gguf_meta *meta, int64_t n_vocab,
                              const char *path, nt_hparams *hp, nt_error *err);

#endif
