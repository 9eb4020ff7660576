/*
 * quantize.h - writing a loaded model as GGUF in another storage type, and
 * the AWQ scales that can be folded into it on the way (awq.c).
 */
#ifndef NT_MODEL_QUANTIZE_H
#define NT_MODEL_QUANTIZE_H

#include "model/model.h"

/*
 * Activation-aware scales, folded exactly into the model (awq.c says how
 * they are found). Per layer l:
 *   attn_in[l]   [n_embd]  columns of q, k, v are multiplied by these, and
 *                          attn_norm (scale and shift) divided by them;
 *   v_out_inv[l] [kv_dim]  rows of v (and its bias) multiplied by these...
 *   o_in[l]      [q_dim]   ...and the matching columns of o by their
 *                          inverses, repeated for every query head that
 *                          shares the kv head;
 *   ffn_in[l]    [n_embd]  columns of up, with ffn_norm divided;
 *   up_out_inv[l][n_ff]    rows of up (and its bias) multiplied by these
 *                          (1 / sqrt(s)), and
 *   down_in[l]   [n_ff]    the matching columns of down by s:
 *                          relu(x / r)^2 = relu(x)^2 / r^2 for r > 0.
 * The folded norms and biases are given whole.
 */
typedef struct nt_awq_scales {
    float **attn_in, **v_out_inv, **o_in, **ffn_in, **up_out_inv, **down_in;
    nt_norm *attn_norm, *ffn_norm;
    float **bv, **b_up;       /* NULL when the model has no such biases */
    float *arena;             /* owns every vector above */
} nt_awq_scales;

void nt_awq_scales_free(nt_awq_scales *awq);

/* Finds the scales from calibration text (awq.c). */
nt_status nt_awq_compute(const nt_model *m, const nt_tokenizer *tok,
                         const char *calibration_path, const nt_quantize_params *qp,
                         nt_awq_scales *out, nt_error *err);

/* The type the recipe gives layer l's matrix: q/k/o/up (wide = 0) or v and
 * down (wide = 1, which the _m mixes give more bits in some layers). */
nt_dtype nt_quantize_matrix_type(const nt_model *m, const nt_quantize_params *qp,
                                 int layer, int wide);

int nt_quantize_type_known(const char *name);

/* The list of type names for messages. */
const char *nt_quantize_type_names(void);

/* Writes `m` (its vocabulary from `tok`) to out_path; `awq` may be NULL. */
nt_status nt_quantize_model(const nt_model *m, const nt_tokenizer *tok,
                            const char *name, const char *out_path,
                            const nt_quantize_params *qp, const nt_awq_scales *awq,
                            nt_error *err);

#endif
