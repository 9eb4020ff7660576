/*
 * q4_0.c - GGML's Q4_0: blocks of 32 weights, w = d * (q - 8) with a
 * half-float scale and 4-bit q. Byte j holds weight j in its low nibble and
 * weight j + 16 in its high nibble. 18 bytes per block (4.5 bits per weight).
 */
#include <stddef.h>
#include <string.h>

#include "types/block32.h"

typedef struct block_q4_0 {
    uint16_t d;       /* f16 */
    uint8_t qs[16];
} block_q4_0;

static const nt_block32_layout q4_0_layout = {
    sizeof(block_q4_0), offsetof(block_q4_0, qs), -1, -1, 8};

static void q4_0_to_f32_generic(const void *src, float *dst, int64_t n) {
    nt_block32_to_f32(src, n, q4_0_layout, dst);
}

/* GGML's reference rounding: the value of largest magnitude maps to -8. */
static void q4_0_from_f32(const float *src, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++)
        nt_block32_write_symmetric(src + i * 32, 8, &b[i].d, b[i].qs, NULL);
}

static void q4_0_dot_q8_generic(int64_t n, const void *row, const nt_q8_rows *x,
                                int m, float *out) {
    nt_block32_dot_q8(n, row, q4_0_layout, x, m, out);
}

static void q4_0_to_u8(const void *src, int64_t n, uint8_t *u, float *a, float *c) {
    nt_block32_to_u8(src, n, q4_0_layout, u, a, c);
}

#if NT_HAVE_X86
NT_TARGET_AVX2 static void q4_0_dot_q8_avx2(int64_t n, const void *row,
                                            const nt_q8_rows *x, int m, float *out) {
    nt_block32_dot_q8_avx2(n, row, q4_0_layout, x, m, out);
}

NT_TARGET_AVX2 static inline __m256i q4_0_codes(const uint8_t *block) {
    return nt_nibbles_avx2(block + offsetof(block_q4_0, qs));
}

/* Two blocks' codes as [b0 low nibbles, b0 high, b1 low, b1 high]. */
NT_TARGET_AVX512VNNI static inline __m512i q4_0_pair_codes(const uint8_t *b0) {
    const uint8_t *qs = b0 + offsetof(block_q4_0, qs);
    __m512i raw = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs))),
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(qs + sizeof(block_q4_0)))),
        1);
    const __m512i shifts = _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004,
                                             0, 0, 0x0004000400040004, 0x0004000400040004);
    return _mm512_and_si512(_mm512_srlv_epi16(raw, shifts), _mm512_set1_epi8(15));
}

NT_TARGET_AVX2 static void q4_0_to_u8_avx2(const void *src, int64_t n, uint8_t *u, float *a,
                                           float *c) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / 32; i++) {
        _mm256_storeu_si256((__m256i *)(u + i * 32), q4_0_codes((const uint8_t *)&b[i]));
        a[i] = nt_f16_to_f32_f16c(b[i].d);
        c[i] = -8.0f * a[i];
    }
}

NT_TARGET_AVX512VNNI static void q4_0_dot_q8_vnni(int64_t n, const void *row,
                                                  const nt_q8_rows *x, int m, float *out) {
    nt_block32_dot_q8_vnni(n, row, sizeof(block_q4_0), 8.0f, q4_0_pair_codes, q4_0_codes, x,
                           m, out);
}
#endif

const nt_dtype_traits nt_dtype_q4_0_traits = {
    .name = "q4_0",
    .block_elems = 32,
    .block_bytes = sizeof(block_q4_0),
    .gguf_type = 2,
    .to_f32 = {[NT_ISA_GENERIC] = q4_0_to_f32_generic},
    .dot_q8 = {
        [NT_ISA_GENERIC] = q4_0_dot_q8_generic,
#if NT_HAVE_X86
        [NT_ISA_AVX2] = q4_0_dot_q8_avx2,
        [NT_ISA_AVX512VNNI] = q4_0_dot_q8_vnni,
#endif
    },
    .from_f32 = q4_0_from_f32,
    .to_u8 = {
        [NT_ISA_GENERIC] = q4_0_to_u8,
#if NT_HAVE_X86
        [NT_ISA_AVX2] = q4_0_to_u8_avx2,
#endif
    },
    .u8_group = 32,
    .gemm_min_rows = 12,
};
