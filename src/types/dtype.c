/*
 * dtype.c - the table of storage types. One line per type.
 */
#include "types/dtype.h"

extern const nt_dtype_traits nt_dtype_f32_traits;
extern const nt_dtype_traits nt_dtype_f16_traits;
extern const nt_dtype_traits nt_dtype_bf16_traits;
extern const nt_dtype_traits nt_dtype_q8_0_traits;
extern const nt_dtype_traits nt_dtype_q4_0_traits;
extern const nt_dtype_traits nt_dtype_q4_1_traits;
extern const nt_dtype_traits nt_dtype_q5_0_traits;
extern const nt_dtype_traits nt_dtype_q5_1_traits;
extern const nt_dtype_traits nt_dtype_q4_k_traits;
extern const nt_dtype_traits nt_dtype_q5_k_traits;
extern const nt_dtype_traits nt_dtype_q6_k_traits;

static const nt_dtype_traits *const dtype_table[NT_DTYPE_COUNT] = {
    [NT_DTYPE_F32] = &nt_dtype_f32_traits,
    [NT_DTYPE_F16] = &nt_dtype_f16_traits,
    [NT_DTYPE_BF16] = &nt_dtype_bf16_traits,
    [NT_DTYPE_Q8_0] = &nt_dtype_q8_0_traits,
    [NT_DTYPE_Q4_0] = &nt_dtype_q4_0_traits,
    [NT_DTYPE_Q4_1] = &nt_dtype_q4_1_traits,
    [NT_DTYPE_Q5_0] = &nt_dtype_q5_0_traits,
    [NT_DTYPE_Q5_1] = &nt_dtype_q5_1_traits,
    [NT_DTYPE_Q4_K] = &nt_dtype_q4_k_traits,
    [NT_DTYPE_Q5_K] = &nt_dtype_q5_k_traits,
    [NT_DTYPE_Q6_K] = &nt_dtype_q6_k_traits,
};

const nt_dtype_traits *nt_dtype_traits_of(nt_dtype dtype) {
    return dtype_table[dtype];
}

int nt_dtype_from_name(const char *name) {
    for (int t = 0; name && t < NT_DTYPE_COUNT; t++)
        if (strcmp(dtype_table[t]->name, name) == 0)
            return t;
    return -1;
}

int nt_dtype_from_gguf(int gguf_type) {
    for (int t = 0; t < NT_DTYPE_COUNT; t++)
        if (dtype_table[t]->gguf_type == gguf_type)
            return t;
    return -1;
}
