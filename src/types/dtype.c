/*
 * dtype.c - the table of storage types. One line per type.
 */
#include "types/dtype.h"

extern const nt_dtype_traits nt_dtype_f32_traits;
extern const nt_dtype_traits nt_dtype_f16_traits;
extern const nt_dtype_traits nt_dtype_bf16_traits;

static const nt_dtype_traits *const dtype_table[NT_DTYPE_COUNT] = {
    [NT_DTYPE_F32] = &nt_dtype_f32_traits,
    [NT_DTYPE_F16] = &nt_dtype_f16_traits,
    [NT_DTYPE_BF16] = &nt_dtype_bf16_traits,
};

const nt_dtype_traits *nt_dtype_traits_of(nt_dtype dtype) {
    return dtype_table[dtype];
}
