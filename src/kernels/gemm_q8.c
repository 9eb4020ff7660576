/*
 * gemm_q8.c - the integer GEMM of prefill: 8-bit activations times weights
 * unpacked to unsigned bytes (see nt_to_u8_fn in dtype.h and the panel
 * layout in kernels.h).
 *
 * Why this layout: in a panel, the four bytes of one 32-bit lane are four
 * consecutive weights of one row, and the eight lanes of a register are
 * eight rows. VNNI's dpbusd multiplies them by the same four activations
 * broadcast to every lane and adds into that row's int32 lane, so a
 * register accumulates eight dot products at once with no horizontal sums,
 * and each group of 16 or 32 weights ends with one conversion and two
 * multiply-adds per eight rows: its scales a and offsets c are per lane too.
 */
#include <string.h>

#include "kernels/kernels.h"

/* The reference, and what the tests hold the SIMD version to. */
void nt_gemm_q8_tile_reference(int m, const nt_q8_rows *x, int64_t row0,
                               const nt_q8_panel *p, float *y, int64_t ldy, int nr) {
    int G = p->group;
    for (int i = 0; i < m; i++) {
        const int8_t *xq = x->q + (row0 + i) * x->ld;
        const float *xd = x->d + (row0 + i) * x->ld / 32;
        const int16_t *xs = x->s + (row0 + i) * x->ld / 16;
        for (int j = 0; j < nr; j++) {
            float sum = 0.0f;
            for (int64_t g = 0; g < p->k / G; g++) {
                int32_t acc = 0;
                for (int t = 0; t < G; t++) {
                    int64_t kk = g * G + t;
                    acc += (int32_t)p->u[((kk / 4) * NT_Q8_PANEL_ROWS + j) * 4 + kk % 4] *
                           xq[kk];
                }
                int xsum = G == 32 ? xs[2 * g] + xs[2 * g + 1] : xs[g];
                float dx = xd[g * G / 32];
                sum += p->a[g * NT_Q8_PANEL_ROWS + j] * dx * (float)acc +
                       p->c[g * NT_Q8_PANEL_ROWS + j] * dx * (float)xsum;
            }
            y[(int64_t)i * ldy + j] = sum;
        }
    }
}

#if NT_HAVE_X86
#include <immintrin.h>

/*
 * M activation rows by 32 weight rows (two 512-bit registers of 16 rows);
 * M and G are constants after inlining. 2M accumulators, two weight
 * registers and a broadcast stay in the 32 vector registers.
 */
NT_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void
gemm_q8_tile_vnni_m(const int M, const int G, const nt_q8_rows *x, int64_t row0,
                    const nt_q8_panel *p, float *y, int64_t ldy, int nr) {
    const int8_t *xq[NT_Q8_GEMM_MR];
    const float *xd[NT_Q8_GEMM_MR], *xds[NT_Q8_GEMM_MR];
    const int16_t *xs[NT_Q8_GEMM_MR];
    __m512 f[NT_Q8_GEMM_MR][2];
#pragma GCC unroll 8
    for (int i = 0; i < M; i++) {
        xq[i] = x->q + (row0 + i) * x->ld;
        xd[i] = x->d + (row0 + i) * x->ld / 32;
        xds[i] = x->ds + (row0 + i) * x->ld / 32;
        xs[i] = x->s + (row0 + i) * x->ld / 16;
        f[i][0] = f[i][1] = _mm512_setzero_ps();
    }
    const uint8_t *u = p->u;
    for (int64_t g = 0; g < p->k / G; g++) {
        __m512i s[NT_Q8_GEMM_MR][2];
#pragma GCC unroll 8
        for (int i = 0; i < M; i++)
            s[i][0] = s[i][1] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int q = 0; q < G / 4; q++, u += 4 * NT_Q8_PANEL_ROWS) {
            __m512i w0 = _mm512_loadu_si512(u), w1 = _mm512_loadu_si512(u + 64);
#pragma GCC unroll 8
            for (int i = 0; i < M; i++) {
                int32_t four;
                memcpy(&four, xq[i] + g * G + 4 * q, 4);
                __m512i xb = _mm512_set1_epi32(four);
                s[i][0] = _mm512_dpbusd_epi32(s[i][0], w0, xb);
                s[i][1] = _mm512_dpbusd_epi32(s[i][1], w1, xb);
            }
        }
        const float *a = p->a + g * NT_Q8_PANEL_ROWS, *c = p->c + g * NT_Q8_PANEL_ROWS;
        __m512 a0 = _mm512_loadu_ps(a), a1 = _mm512_loadu_ps(a + 16);
        __m512 c0 = _mm512_loadu_ps(c), c1 = _mm512_loadu_ps(c + 16);
#pragma GCC unroll 8
        for (int i = 0; i < M; i++) {
            /* the activations' scale, and their scale times their sum:
             * precomputed per block of 32 (ds), summed here for 16 */
            float dx = xd[i][g * G / 32];
            float dxs = G == 32 ? xds[i][g] : dx * (float)xs[i][g];
            __m512 vdx = _mm512_set1_ps(dx), vdxs = _mm512_set1_ps(dxs);
            f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i][0]), _mm512_mul_ps(a0, vdx),
                                      _mm512_fmadd_ps(c0, vdxs, f[i][0]));
            f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i][1]), _mm512_mul_ps(a1, vdx),
                                      _mm512_fmadd_ps(c1, vdxs, f[i][1]));
        }
    }
    /* only the first nr columns are written */
    int n0 = nr < 16 ? nr : 16, n1 = nr - n0;
    __mmask16 k0 = (__mmask16)((1u << n0) - 1), k1 = (__mmask16)((1u << n1) - 1);
#pragma GCC unroll 8
    for (int i = 0; i < M; i++) {
        _mm512_mask_storeu_ps(y + (int64_t)i * ldy, k0, f[i][0]);
        _mm512_mask_storeu_ps(y + (int64_t)i * ldy + 16, k1, f[i][1]);
    }
}

#define VNNI_TILE(M, G)                                                            \
    NT_TARGET_AVX512VNNI static void gemm_q8_tile_vnni_##M##_##G(                  \
        const nt_q8_rows *x, int64_t row0, const nt_q8_panel *p, float *y,         \
        int64_t ldy, int nr) {                                                     \
        gemm_q8_tile_vnni_m(M, G, x, row0, p, y, ldy, nr);                         \
    }
#define VNNI_TILES(G)                                                              \
    VNNI_TILE(1, G) VNNI_TILE(2, G) VNNI_TILE(3, G) VNNI_TILE(4, G) VNNI_TILE(5, G)  \
    VNNI_TILE(6, G) VNNI_TILE(7, G) VNNI_TILE(8, G)
VNNI_TILES(16)
VNNI_TILES(32)

typedef void (*tile_fn)(const nt_q8_rows *, int64_t, const nt_q8_panel *, float *,
                        int64_t, int);

#define VNNI_TILE_LIST(G)                                                          \
    {gemm_q8_tile_vnni_1_##G, gemm_q8_tile_vnni_2_##G, gemm_q8_tile_vnni_3_##G,   \
     gemm_q8_tile_vnni_4_##G, gemm_q8_tile_vnni_5_##G, gemm_q8_tile_vnni_6_##G,   \
     gemm_q8_tile_vnni_7_##G, gemm_q8_tile_vnni_8_##G}

static void gemm_q8_tile_vnni(int m, const nt_q8_rows *x, int64_t row0,
                              const nt_q8_panel *p, float *y, int64_t ldy, int nr) {
    static const tile_fn g16[NT_Q8_GEMM_MR] = VNNI_TILE_LIST(16);
    static const tile_fn g32[NT_Q8_GEMM_MR] = VNNI_TILE_LIST(32);
    (p->group == 16 ? g16 : g32)[m - 1](x, row0, p, y, ldy, nr);
}
#endif

const nt_gemm_q8_tile_fn nt_gemm_q8_tile_table[NT_ISA_COUNT] = {
#if NT_HAVE_X86
    [NT_ISA_AVX512VNNI] = gemm_q8_tile_vnni,
#endif
};

_Static_assert(NT_Q8_PANEL_ROWS == NT_GEMM_NR,
               "an int8 panel is packed by the float panels' transpose");

void nt_q8_panel_pack(nt_pack_panel_fn pack, const uint8_t *u, const float *a,
                      const float *c, int64_t k, int group, int nr, nt_q8_panel *p,
                      uint8_t *pu, float *pa, float *pc) {
    int64_t groups = k / group;
    const void *rows[NT_Q8_PANEL_ROWS];
    for (int j = 0; j < NT_Q8_PANEL_ROWS; j++)
        rows[j] = j < nr ? u + (int64_t)j * k : NULL;
    pack(rows, k / 4, pu);
    for (int j = 0; j < NT_Q8_PANEL_ROWS; j++)
        rows[j] = j < nr ? a + (int64_t)j * groups : NULL;
    pack(rows, groups, pa);
    for (int j = 0; j < NT_Q8_PANEL_ROWS; j++)
        rows[j] = j < nr ? c + (int64_t)j * groups : NULL;
    pack(rows, groups, pc);
    *p = (nt_q8_panel){pu, pa, pc, k, group};
}
