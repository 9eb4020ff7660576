/*
 * f32.c - float32 weights: nothing to convert.
 */
#include "types/dtype.h"

static void f32_to_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f32_from_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

const nt_dtype_traits nt_dtype_f32_traits = {
    .name = "f32",
    .block_elems = 1,
    .block_bytes = 4,
    .gguf_type = 0,
    .to_f32 = {[NT_ISA_GENERIC] = f32_to_f32},
    .from_f32 = f32_from_f32,
};
