/*
 * dtype.h - the storage types of weights, and what each one needs.
 *
 * A weight matrix is stored row by row in one dtype. The forward pass never
 * looks inside a row itself: it asks the dtype's traits to turn a stretch of
 * a row into float32 (to_f32), with a version per instruction set. Adding a
 * storage type is one new file that defines its traits plus one entry in
 * the table in dtype.c; a type that can do better than "convert, then
 * multiply" (quantized dot products, say) also fills dot_rows.
 */
#ifndef NT_TYPES_DTYPE_H
#define NT_TYPES_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/isa.h"

typedef enum nt_dtype {
    NT_DTYPE_F32 = 0,
    NT_DTYPE_F16,
    NT_DTYPE_BF16,
    NT_DTYPE_COUNT
} nt_dtype;

/* dst[0..n) = src[0..n) as float32; n is a multiple of block_elems. */
typedef void (*nt_to_f32_fn)(const void *src, float *dst, int64_t n);

/*
 * out[i] += dot(row[0..n), x + i*ldx [0..n)) for i < m, where row is one
 * weight row in this dtype, starting at a block boundary.
 */
typedef void (*nt_dot_rows_fn)(int64_t n, const void *row, const float *x,
                               int64_t ldx, int m, float *out);

typedef struct nt_dtype_traits {
    const char *name;     /* "bf16": how we print it */
    int block_elems;      /* elements per block; 1 for plain floats */
    int block_bytes;      /* bytes per block */
    nt_to_f32_fn to_f32[NT_ISA_COUNT];     /* [NT_ISA_GENERIC] is required */
    nt_dot_rows_fn dot_rows[NT_ISA_COUNT]; /* optional: all NULL is fine */
} nt_dtype_traits;

const nt_dtype_traits *nt_dtype_traits_of(nt_dtype dtype);

/* Bytes that n elements (a multiple of the block size) occupy. */
static inline uint64_t nt_dtype_bytes(nt_dtype dtype, uint64_t n) {
    const nt_dtype_traits *t = nt_dtype_traits_of(dtype);
    return n / (uint64_t)t->block_elems * (uint64_t)t->block_bytes;
}

/* ---- scalar conversions, exact where the format allows ------------------ */

static inline float nt_bits_to_f32(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t nt_f32_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* bfloat16 is the top half of a float32: widening is exact. */
static inline float nt_bf16_to_f32(uint16_t h) {
    return nt_bits_to_f32((uint32_t)h << 16);
}

/* Round to nearest even; NaN stays a (quiet) NaN. */
static inline uint16_t nt_f32_to_bf16(float f) {
    uint32_t bits = nt_f32_to_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((bits >> 16) | 0x0040u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

/* IEEE half precision, subnormals and specials included. */
static inline float nt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* inf or nan */
        return nt_bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0)
            return nt_bits_to_f32(sign);
        /* subnormal: value = mant * 2^-24, exact in float32 */
        float v = (float)mant * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return nt_bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* Round to nearest even, overflow to infinity, NaN stays NaN. */
static inline uint16_t nt_f32_to_f16(float f) {
    uint32_t bits = nt_f32_to_bits(f);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (abs >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) { /* below the smallest normal half, 2^-14 */
        /* value in units of 2^-24, rounded to nearest even */
        float a = nt_bits_to_f32(abs) * 16777216.0f; /* exact: power of two */
        uint32_t q = (uint32_t)a;
        float rem = a - (float)q;
        if (rem > 0.5f || (rem == 0.5f && (q & 1u)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t exp = (abs >> 23) - 112u;
    uint32_t mant = abs & 0x7fffffu;
    uint32_t half = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
        half++; /* may carry into the exponent, which is still correct */
    return (uint16_t)(sign | half);
}

#endif
