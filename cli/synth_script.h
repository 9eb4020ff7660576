/*
 * synth_script.h - the plan of a scripted checkpoint (`nemotron synth
 * --script TEXT`): weights of the exact Nemotron architecture that make
 * the model a bigram machine whose greedy reply is TEXT, then eos.
 *
 * Every layer's o_proj and down_proj are zero, so the residual stream at
 * the last layer is still the token's embedding; token t's embedding is a
 * one-hot vector at slot embed_slot[t] (slot 0 for every token outside the
 * script, slot k for the script's k-th token, counting from 1); the final
 * norm is LayerNorm1P with w = 0, b = 0, which maps a one-hot vector to
 * the same hot slot (about sqrt(hidden)) and small negatives elsewhere; and
 * lm_head's row n is head_value at head_slot[n], the slot of the token that
 * must come before n. Any token outside the script is thus followed by the
 * script's first token, each script token by the next, the last by eos.
 *
 * A bigram can only follow a script whose tokens are all different, and
 * which does not contain the token a chat prompt ends with (it would send
 * the reply into the middle of the script); the planner looks for such a
 * segmentation of TEXT among all the tokenizer's spellings of it (merged
 * pieces, single characters, byte pieces), or says why there is none.
 */
#ifndef NT_CLI_SYNTH_SCRIPT_H
#define NT_CLI_SYNTH_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "nemotron.h"

typedef struct synth_script {
    int32_t *ids;        /* the script's tokens, all different */
    int n_ids;
    int n_vocab;         /* rows of embed_tokens and lm_head */
    int hidden;
    int32_t *embed_slot; /* [n_vocab]: the embedding's hot slot */
    int32_t *head_slot;  /* [n_vocab]: lm_head row's hot slot, or -1 (zero row) */
    float embed_value;   /* the embeddings' one value */
    float head_value;    /* lm_head's one value a row */
    double margin;       /* least lead of the scripted token's logit, any step */
} synth_script;

/*
 * Plans the weights for a reply of exactly `text` (len bytes) with the
 * tokenizer `tok` (the one the model directory will be loaded with), for a
 * model of n_vocab tokens and `hidden` dimensions whose final norm has
 * epsilon norm_eps and whose end-of-sequence token is eos_id. Prints the
 * reason and returns 0 when there is no plan.
 */
int synth_script_plan(const nt_tokenizer *tok, const char *text, size_t len,
                      int n_vocab, int hidden, double norm_eps, int32_t eos_id,
                      synth_script *out);

/* Of the row-major [n_vocab, hidden] tensor embed_tokens (is_head 0) or
 * lm_head (is_head 1), writes the nonzero elements whose flat index lies in
 * [first, first + n) to values[index - first]; the caller zeroed values. */
void synth_script_fill(const synth_script *s, int is_head, uint64_t first,
                       uint64_t n, float *values);

/* 1 if ids decode to exactly `want`, both with and without skipping
 * special tokens (a reply may be shown either way). */
int synth_script_decodes_to(const nt_tokenizer *tok, const int32_t *ids, size_t n,
                            const char *want, size_t want_len);

void synth_script_free(synth_script *s);

#endif
