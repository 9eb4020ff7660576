/*
 * f32.c - float32 kernels: dot products, axpy and the GEMM tile, in
 * portable C and for AVX2 and AVX-512.
 *
 * The portable versions are the reference; the SIMD versions differ from
 * them only in summation order.
 */
#include <string.h>

#include "kernels/kernels.h"

#if NT_HAVE_X86
#include <immintrin.h>

#include "kernels/transpose_x86.h"
#endif

/* ---- portable C ---------------------------------------------------------- */

static float dot_generic(int64_t n, const float *a, const float *b) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void dot_rows_generic(int64_t n, const float *w, const float *x,
                             int64_t ldx, int m, float *out) {
    for (int i = 0; i < m; i++)
        out[i] += dot_generic(n, w, x + (int64_t)i * ldx);
}

static void axpy_generic(int64_t n, float alpha, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

/* x = relu(x)^2, the MLP's activation. */
static void relu_squared_generic(int64_t n, float *x) {
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] > 0.0f ? x[i] * x[i] : 0.0f;
}

#define GENERIC_MR 4

static void gemm_tile_generic(int m, int64_t k, const float *x, int64_t ldx,
                              const float *panel, float *y, int64_t ldy, int nr,
                              int accumulate) {
    float acc[GENERIC_MR][NT_GEMM_NR] = {{0}};
    for (int64_t p = 0; p < k; p++) {
        const float *b = panel + p * NT_GEMM_NR;
        for (int i = 0; i < m; i++) {
            float a = x[(int64_t)i * ldx + p];
            for (int j = 0; j < NT_GEMM_NR; j++)
                acc[i][j] += a * b[j];
        }
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < nr; j++)
            y[(int64_t)i * ldy + j] =
                accumulate ? y[(int64_t)i * ldy + j] + acc[i][j] : acc[i][j];
}

/* Elements p0 .. k - 1 of the panel (pack_panel), one at a time. */
static void pack_panel_from(const void *const *rows, int64_t p0, int64_t k, void *panel) {
    for (int j = 0; j < NT_GEMM_NR; j++)
        for (int64_t p = p0; p < k; p++) {
            char *dst = (char *)panel + (p * NT_GEMM_NR + j) * 4;
            if (rows[j])
                memcpy(dst, (const char *)rows[j] + p * 4, 4);
            else
                memset(dst, 0, 4);
        }
}

static void pack_panel_generic(const void *const *rows, int64_t k, void *panel) {
    pack_panel_from(rows, 0, k, panel);
}

/* ---- AVX2 + FMA ---------------------------------------------------------- */

#if NT_HAVE_X86

NT_TARGET_AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

NT_TARGET_AVX2 static float dot_avx2(int64_t n, const float *a, const float *b) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                             _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

NT_TARGET_AVX2 static void dot_rows_avx2(int64_t n, const float *w,
                                         const float *x, int64_t ldx, int m,
                                         float *out) {
    int i = 0;
    for (; i + 4 <= m; i += 4) {
        const float *x0 = x + (int64_t)i * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx,
                    *x3 = x2 + ldx;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(),
               s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
        int64_t p = 0;
        for (; p + 8 <= n; p += 8) {
            __m256 wv = _mm256_loadu_ps(w + p);
            s0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + p), s0);
            s1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + p), s1);
            s2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + p), s2);
            s3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + p), s3);
        }
        float r0 = hsum256(s0), r1 = hsum256(s1), r2 = hsum256(s2),
              r3 = hsum256(s3);
        for (; p < n; p++) {
            r0 += w[p] * x0[p];
            r1 += w[p] * x1[p];
            r2 += w[p] * x2[p];
            r3 += w[p] * x3[p];
        }
        out[i] += r0;
        out[i + 1] += r1;
        out[i + 2] += r2;
        out[i + 3] += r3;
    }
    for (; i < m; i++)
        out[i] += dot_avx2(n, w, x + (int64_t)i * ldx);
}

NT_TARGET_AVX2 static void axpy_avx2(int64_t n, float alpha, const float *x,
                                     float *y) {
    __m256 a = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += alpha * x[i];
}

/* As a select, not a branch: the sign is a coin toss, and a mispredicted
 * branch per value made the scalar loop cost as much as a matrix product.
 * (Bound by memory: AVX-512 would add nothing.) */
NT_TARGET_AVX2 static void relu_squared_avx2(int64_t n, float *x) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_max_ps(_mm256_loadu_ps(x + i), _mm256_setzero_ps());
        _mm256_storeu_ps(x + i, _mm256_mul_ps(v, v));
    }
    relu_squared_generic(n - i, x + i);
}

/*
 * Two activation rows times 32 weight rows: 8 accumulators, 4 panel
 * vectors and a broadcast fit AVX2's 16 registers.
 */
#define AVX2_MR 2

NT_TARGET_AVX2 static void gemm_tile_avx2(int m, int64_t k, const float *x,
                                          int64_t ldx, const float *panel,
                                          float *y, int64_t ldy, int nr,
                                          int accumulate) {
    __m256 acc[AVX2_MR][4];
    for (int i = 0; i < AVX2_MR; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = _mm256_setzero_ps();
    const float *x0 = x, *x1 = m > 1 ? x + ldx : x;
    for (int64_t p = 0; p < k; p++) {
        const float *b = panel + p * NT_GEMM_NR;
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8),
               b2 = _mm256_loadu_ps(b + 16), b3 = _mm256_loadu_ps(b + 24);
        __m256 a = _mm256_broadcast_ss(x0 + p);
        acc[0][0] = _mm256_fmadd_ps(a, b0, acc[0][0]);
        acc[0][1] = _mm256_fmadd_ps(a, b1, acc[0][1]);
        acc[0][2] = _mm256_fmadd_ps(a, b2, acc[0][2]);
        acc[0][3] = _mm256_fmadd_ps(a, b3, acc[0][3]);
        a = _mm256_broadcast_ss(x1 + p);
        acc[1][0] = _mm256_fmadd_ps(a, b0, acc[1][0]);
        acc[1][1] = _mm256_fmadd_ps(a, b1, acc[1][1]);
        acc[1][2] = _mm256_fmadd_ps(a, b2, acc[1][2]);
        acc[1][3] = _mm256_fmadd_ps(a, b3, acc[1][3]);
    }
    for (int i = 0; i < m; i++) {
        float tmp[NT_GEMM_NR];
        for (int j = 0; j < 4; j++)
            _mm256_storeu_ps(tmp + 8 * j, acc[i][j]);
        float *yr = y + (int64_t)i * ldy;
        for (int j = 0; j < nr; j++)
            yr[j] = accumulate ? yr[j] + tmp[j] : tmp[j];
    }
}

/* ---- AVX-512 ------------------------------------------------------------- */

NT_TARGET_AVX512 static float dot_avx512(int64_t n, const float *a,
                                         const float *b) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
                             _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 mk = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, a + i),
                             _mm512_maskz_loadu_ps(mk, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

NT_TARGET_AVX512 static void dot_rows_avx512(int64_t n, const float *w,
                                             const float *x, int64_t ldx, int m,
                                             float *out) {
    int i = 0;
    for (; i + 4 <= m; i += 4) {
        const float *x0 = x + (int64_t)i * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx,
                    *x3 = x2 + ldx;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(),
               s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
        int64_t p = 0;
        for (; p + 16 <= n; p += 16) {
            __m512 wv = _mm512_loadu_ps(w + p);
            s0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x0 + p), s0);
            s1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x1 + p), s1);
            s2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x2 + p), s2);
            s3 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x3 + p), s3);
        }
        if (p < n) {
            __mmask16 mk = (__mmask16)((1u << (n - p)) - 1u);
            __m512 wv = _mm512_maskz_loadu_ps(mk, w + p);
            s0 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mk, x0 + p), s0);
            s1 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mk, x1 + p), s1);
            s2 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mk, x2 + p), s2);
            s3 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mk, x3 + p), s3);
        }
        out[i] += _mm512_reduce_add_ps(s0);
        out[i + 1] += _mm512_reduce_add_ps(s1);
        out[i + 2] += _mm512_reduce_add_ps(s2);
        out[i + 3] += _mm512_reduce_add_ps(s3);
    }
    for (; i < m; i++)
        out[i] += dot_avx512(n, w, x + (int64_t)i * ldx);
}

NT_TARGET_AVX512 static void axpy_avx512(int64_t n, float alpha,
                                         const float *x, float *y) {
    __m512 a = _mm512_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i),
                                                _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 mk = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(
            y + i, mk,
            _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(mk, x + i),
                            _mm512_maskz_loadu_ps(mk, y + i)));
    }
}

/*
 * Up to six activation rows times 32 weight rows: 12 accumulators. M is a
 * compile-time constant in each instantiation below, so the accumulators
 * live in registers.
 */
#define AVX512_MR 6

NT_TARGET_AVX512 static inline __attribute__((always_inline)) void
gemm_tile_avx512_m(const int M, int64_t k, const float *x, int64_t ldx,
                   const float *panel, float *y, int64_t ldy, int nr,
                   int accumulate) {
    __m512 acc[AVX512_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < M; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < k; p++) {
        __m512 b0 = _mm512_loadu_ps(panel + p * NT_GEMM_NR);
        __m512 b1 = _mm512_loadu_ps(panel + p * NT_GEMM_NR + 16);
#pragma GCC unroll 6
        for (int i = 0; i < M; i++) {
            __m512 a = _mm512_set1_ps(x[(int64_t)i * ldx + p]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffffu : (1u << nr) - 1u);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffffu
                               : nr <= 16 ? 0u
                                          : (1u << (nr - 16)) - 1u);
#pragma GCC unroll 6
    for (int i = 0; i < M; i++) {
        float *yr = y + (int64_t)i * ldy;
        __m512 r0 = acc[i][0], r1 = acc[i][1];
        if (accumulate) {
            r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, yr));
            r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, yr + 16));
        }
        _mm512_mask_storeu_ps(yr, m0, r0);
        _mm512_mask_storeu_ps(yr + 16, m1, r1);
    }
}

NT_TARGET_AVX512 static void gemm_tile_avx512(int m, int64_t k, const float *x,
                                              int64_t ldx, const float *panel,
                                              float *y, int64_t ldy, int nr,
                                              int accumulate) {
    switch (m) {
    case 1: gemm_tile_avx512_m(1, k, x, ldx, panel, y, ldy, nr, accumulate); break;
    case 2: gemm_tile_avx512_m(2, k, x, ldx, panel, y, ldy, nr, accumulate); break;
    case 3: gemm_tile_avx512_m(3, k, x, ldx, panel, y, ldy, nr, accumulate); break;
    case 4: gemm_tile_avx512_m(4, k, x, ldx, panel, y, ldy, nr, accumulate); break;
    case 5: gemm_tile_avx512_m(5, k, x, ldx, panel, y, ldy, nr, accumulate); break;
    default: gemm_tile_avx512_m(6, k, x, ldx, panel, y, ldy, nr, accumulate); break;
    }
}

NT_TARGET_AVX512 static void pack_panel_avx512(const void *const *rows, int64_t k,
                                               void *panel) {
    int64_t p = 0;
    for (; p + 16 <= k; p += 16)
        for (int jb = 0; jb < NT_GEMM_NR; jb += 16) {
            __m512i r[16];
            for (int j = 0; j < 16; j++)
                r[j] = rows[jb + j]
                           ? _mm512_loadu_si512((const char *)rows[jb + j] + p * 4)
                           : _mm512_setzero_si512();
            nt_transpose16_epi32(r);
            for (int i = 0; i < 16; i++)
                _mm512_storeu_si512((char *)panel + ((p + i) * NT_GEMM_NR + jb) * 4, r[i]);
        }
    pack_panel_from(rows, p, k, panel);
}

#endif /* NT_HAVE_X86 */

/* ---- tables -------------------------------------------------------------- */

#if NT_HAVE_X86
#define X86(avx2, avx512) , [NT_ISA_AVX2] = avx2, [NT_ISA_AVX512] = avx512
#else
#define X86(avx2, avx512)
#endif

const nt_f32_dot_rows_fn nt_f32_dot_rows_table[NT_ISA_COUNT] = {
    [NT_ISA_GENERIC] = dot_rows_generic X86(dot_rows_avx2, dot_rows_avx512)};
const nt_gemm_tile_fn nt_gemm_tile_table[NT_ISA_COUNT] = {
    [NT_ISA_GENERIC] = gemm_tile_generic X86(gemm_tile_avx2, gemm_tile_avx512)};
const nt_f32_dot_fn nt_f32_dot_table[NT_ISA_COUNT] = {
    [NT_ISA_GENERIC] = dot_generic X86(dot_avx2, dot_avx512)};
const nt_f32_axpy_fn nt_f32_axpy_table[NT_ISA_COUNT] = {
    [NT_ISA_GENERIC] = axpy_generic X86(axpy_avx2, axpy_avx512)};
const nt_f32_map_fn nt_f32_relu_squared_table[NT_ISA_COUNT] = {
    [NT_ISA_GENERIC] = relu_squared_generic X86(relu_squared_avx2, NULL)};
const int nt_gemm_mr_table[NT_ISA_COUNT] = {
    [NT_ISA_GENERIC] = GENERIC_MR X86(AVX2_MR, AVX512_MR)};
const nt_pack_panel_fn nt_pack_panel_table[NT_ISA_COUNT] = {
    [NT_ISA_GENERIC] = pack_panel_generic X86(NULL, pack_panel_avx512)};

void nt_kernels_init(nt_kernels *k, nt_isa isa) {
    k->isa = isa;
    NT_ISA_RESOLVE(k->dot_rows, nt_f32_dot_rows_table, isa);
    NT_ISA_RESOLVE(k->gemm_tile, nt_gemm_tile_table, isa);
    NT_ISA_RESOLVE(k->gemm_mr, nt_gemm_mr_table, isa);
    NT_ISA_RESOLVE(k->pack_panel, nt_pack_panel_table, isa);
    NT_ISA_RESOLVE(k->dot, nt_f32_dot_table, isa);
    NT_ISA_RESOLVE(k->axpy, nt_f32_axpy_table, isa);
    NT_ISA_RESOLVE(k->relu_squared, nt_f32_relu_squared_table, isa);
    for (int t = 0; t < NT_DTYPE_COUNT; t++) {
        const nt_dtype_traits *tr = nt_dtype_traits_of((nt_dtype)t);
        NT_ISA_RESOLVE(k->to_f32[t], tr->to_f32, isa);
        NT_ISA_RESOLVE(k->dtype_dot_rows[t], tr->dot_rows, isa);
        NT_ISA_RESOLVE(k->dtype_dot_q8[t], tr->dot_q8, isa);
        NT_ISA_RESOLVE(k->to_u8[t], tr->to_u8, isa);
    }
    NT_ISA_RESOLVE(k->quantize_q8, nt_quantize_q8_table, isa);
    NT_ISA_RESOLVE(k->gemm_q8_tile, nt_gemm_q8_tile_table, isa);
}
