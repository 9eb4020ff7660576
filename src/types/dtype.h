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
    /* Block-quantized types, bit-compatible with GGML's of the same name. */
    NT_DTYPE_Q8_0,
    NT_DTYPE_Q4_0,
    NT_DTYPE_Q4_1,
    NT_DTYPE_Q5_0,
    NT_DTYPE_Q5_1,
    NT_DTYPE_Q4_K,
    NT_DTYPE_Q5_K,
    NT_DTYPE_Q6_K,
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

/* ---- 8-bit activations, for the integer dot products -------------------- */

/*
 * Quantized weights are multiplied by activations rounded to 8 bits, as
 * llama.cpp does: each run of NT_Q8_BLOCK activations becomes a float scale
 * d and int8 values q with x ~= d * q (d = max|x| / 127, q = round(x / d)).
 * All quantized types share this one format, so the activations that feed
 * several matrices (q, k and v may be stored in different types) are
 * quantized once. The sums over each 16 values serve the types whose
 * weights carry an offset (q4_1's min, q4_0's -8, q6_k's -32, ...): with
 * w = a * u + c for unsigned u, sum(w * x) = a * d * sum(u * q) + c * d * sum(q).
 */
#define NT_Q8_BLOCK 32

typedef struct nt_q8_rows {
    const int8_t *q;   /* row i: q + i * ld, n values */
    const float *d;    /* row i: d + i * ld / 32, one scale per 32 values */
    const int16_t *s;  /* row i: s + i * ld / 16, sum of q over each 16 */
    const float *ds;   /* row i: ds + i * ld / 32, d times the sum of q over
                          each 32 (the value of sum(x) the offsets need) */
    int64_t ld;        /* values between rows; a multiple of 32 */
} nt_q8_rows;

/* ds from d and s (see nt_q8_rows), for n / 32 blocks. */
static inline void nt_q8_block_sums(const float *d, const int16_t *s, int64_t n,
                                    float *ds) {
    for (int64_t b = 0; b < n / 32; b++)
        ds[b] = d[b] * (float)(s[2 * b] + s[2 * b + 1]);
}

/* Rounds n floats (n a multiple of 32) to the format above. */
typedef void (*nt_quantize_q8_fn)(const float *x, int64_t n, int8_t *q, float *d,
                                  int16_t *s);

/* Per instruction set; nt_quantize_q8_table[NT_ISA_GENERIC] is the reference. */
extern const nt_quantize_q8_fn nt_quantize_q8_table[NT_ISA_COUNT];

/*
 * out[i] += dot(row[0..n), activation row i) for i < m, where row is one
 * weight row in this dtype starting at a block boundary and n is a
 * multiple of the block size. Row i's result must not depend on m or on
 * i (the same operations in the same order as alone), so that a batch of
 * replies decodes each exactly as it would alone (test_types checks it).
 */
typedef void (*nt_dot_q8_fn)(int64_t n, const void *row, const nt_q8_rows *x,
                             int m, float *out);

/*
 * Prefill unpacks weights to one shape that a single integer GEMM kernel
 * serves for every quantized type: unsigned bytes u with an affine map per
 * group of u8_group weights, w = a * u + c (q4_0: u = q, a = d, c = -8d;
 * q4_k: a = d * scale_j, c = -dmin * min_j; ...). The map is exact. The
 * product with 8-bit activations is then a * xd * sum(u * xq) + c * xd *
 * sum(xq), integer sums of unsigned-by-signed bytes, as VNNI computes them.
 * u[0..n), a and c [0..n / u8_group) for n weights from a block boundary.
 */
typedef void (*nt_to_u8_fn)(const void *src, int64_t n, uint8_t *u, float *a,
                            float *c);

/*
 * dst = the n floats of src (n a multiple of block_elems) in this dtype,
 * as close as the type allows; used to write model files. The result must
 * read back in llama.cpp as it reads back here.
 */
typedef void (*nt_from_f32_fn)(const float *src, void *dst, int64_t n);

typedef struct nt_dtype_traits {
    const char *name;     /* "bf16", "q4_k": how we print and parse it */
    int block_elems;      /* elements per block; 1 for plain floats */
    int block_bytes;      /* bytes per block */
    int gguf_type;        /* its number in GGUF files (ggml_type) */
    nt_to_f32_fn to_f32[NT_ISA_COUNT];     /* [NT_ISA_GENERIC] is required */
    nt_dot_rows_fn dot_rows[NT_ISA_COUNT]; /* optional: all NULL is fine */
    /* Quantized types: dot products on 8-bit activations. When
       dot_q8[NT_ISA_GENERIC] is set, decoding uses these, not dot_rows. */
    nt_dot_q8_fn dot_q8[NT_ISA_COUNT];
    nt_from_f32_fn from_f32;                /* required */
    nt_to_u8_fn to_u8[NT_ISA_COUNT]; /* optional ([NT_ISA_GENERIC] set or
                                        not), with u8_group (16 or 32) */
    int u8_group;
    /* With to_u8: the activation rows from which a product takes the
       GEMM. Unpacking every weight to bytes costs a fixed time per
       product, which only enough rows repay; the costlier the unpacking,
       the more rows (measured on the 4B shape, bench notes in matmul.c).
       0: the default (matmul.c). */
    int gemm_min_rows;
} nt_dtype_traits;

const nt_dtype_traits *nt_dtype_traits_of(nt_dtype dtype);

/* The dtype with this name or GGUF number; -1 if none. */
int nt_dtype_from_name(const char *name);
int nt_dtype_from_gguf(int gguf_type);

/* Bytes that n elements (a multiple of the block size) occupy. */
static inline uint64_t nt_dtype_bytes(nt_dtype dtype, uint64_t n) {
    const nt_dtype_traits *t = nt_dtype_traits_of(dtype);
    return n / (uint64_t)t->block_elems * (uint64_t)t->block_bytes;
}

/* The address alignment a row of this dtype needs: a float's size for
 * plain floats, 2 (the half-float scales) for quantized blocks. */
static inline int nt_dtype_align(nt_dtype dtype) {
    const nt_dtype_traits *t = nt_dtype_traits_of(dtype);
    return t->block_elems == 1 ? t->block_bytes : 2;
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
