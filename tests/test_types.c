/*
 * test_types.c - the storage types' kernels against their references.
 *
 * For every type and every instruction set this CPU runs:
 *   - to_f32, dot_q8 and the 8-bit activation quantizer agree with the
 *     portable versions (the quantizer bit for bit, dot products to float
 *     rounding);
 *   - the portable dot_q8 equals the float dot product of the dequantized
 *     weights and activations (so the references are right, not only
 *     consistent);
 *   - to_u8's affine bytes dequantize to exactly to_f32's values, and the
 *     integer GEMM tile agrees with the portable tile and with dot_q8;
 *   - from_f32 round trips random data within the type's error bound.
 * Blocks are random bytes (random scales, random codes), kept only when
 * they dequantize to finite values of sane size.
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "internal.h"
#include "kernels/kernels.h"
#include "rng.h"
#include "types/dtype.h"

#define K 1536       /* columns: 6 super-blocks of 256 */
#define ROWS 5       /* activation rows: kernels that share work between
                        rows take four at a time, and one more */
#define WROWS 51     /* weight rows: one full int8 panel (32) and a partial one of 19 */

static uint64_t rng_state = 42;

static float uniform(void) { return (float)nt_unit_from_u64(nt_splitmix64(&rng_state)); }

/* Random weight rows of this type whose values are finite and below 1e3. */
static void random_rows(nt_dtype t, uint8_t *w, int64_t row_bytes, int rows) {
    const nt_dtype_traits *tr = nt_dtype_traits_of(t);
    float vals[256];
    for (int r = 0; r < rows; r++)
        for (int64_t b = 0; b < K / tr->block_elems; b++) {
            uint8_t *blk = w + r * row_bytes + b * tr->block_bytes;
            for (;;) {
                for (int i = 0; i < tr->block_bytes; i++)
                    blk[i] = (uint8_t)nt_splitmix64(&rng_state);
                tr->to_f32[NT_ISA_GENERIC](blk, vals, tr->block_elems);
                int ok = 1;
                for (int i = 0; i < tr->block_elems; i++)
                    ok &= isfinite(vals[i]) && fabsf(vals[i]) < 1e3f;
                if (ok)
                    break;
            }
        }
}

static void test_quantizer(nt_isa isa, const float *x) {
    static int8_t q0[K], q1[K];
    static float d0[K / 32], d1[K / 32];
    static int16_t s0[K / 16], s1[K / 16];
    nt_quantize_q8_fn ref = nt_quantize_q8_table[NT_ISA_GENERIC], fn;
    NT_ISA_RESOLVE(fn, nt_quantize_q8_table, isa);
    ref(x, K, q0, d0, s0);
    fn(x, K, q1, d1, s1);
    CHECK_MSG(memcmp(q0, q1, sizeof q0) == 0 && memcmp(d0, d1, sizeof d0) == 0 &&
                  memcmp(s0, s1, sizeof s0) == 0,
              "isa %d: 8-bit activations differ from the reference", (int)isa);
    /* and the format's promises: |x - d q| <= d / 2, sums per 16 */
    int bad = 0;
    for (int i = 0; i < K; i++)
        bad += fabsf(x[i] - d0[i / 32] * q0[i]) > d0[i / 32] * 0.5001f;
    for (int i = 0; i < K / 16; i++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum += q0[i * 16 + j];
        bad += sum != s0[i];
    }
    CHECK_MSG(bad == 0, "isa %d: %d activation values or sums off", (int)isa, bad);
}

/* Relative difference, against the sum of the magnitudes of the terms. */
static int close_to(double got, double want, double scale, double tol) {
    return fabs(got - want) <= tol * scale + 1e-30;
}

static void test_type(nt_dtype t, nt_isa best, const nt_q8_rows *xq,
                      const float *xdeq, const float *xf) {
    const nt_dtype_traits *tr = nt_dtype_traits_of(t);
    int64_t row_bytes = (int64_t)nt_dtype_bytes(t, K);
    uint8_t *w = malloc((size_t)(row_bytes * WROWS));
    float *wf = malloc(sizeof(float) * K * WROWS), *tmp = malloc(sizeof(float) * K);
    random_rows(t, w, row_bytes, WROWS);
    for (int r = 0; r < WROWS; r++)
        tr->to_f32[NT_ISA_GENERIC](w + r * row_bytes, wf + r * K, K);

    for (int isa = 1; isa <= (int)best; isa++) {
        nt_to_f32_fn fn;
        NT_ISA_RESOLVE(fn, tr->to_f32, isa);
        int same = 1;
        for (int r = 0; r < WROWS; r++) {
            fn(w + r * row_bytes, tmp, K);
            same &= memcmp(tmp, wf + r * K, sizeof(float) * K) == 0;
        }
        CHECK_MSG(same, "%s: to_f32 at isa %d differs from the reference", tr->name, isa);
    }

    /* exact float dot of dequantized weights and activations */
    double want[WROWS][ROWS], scale[WROWS][ROWS];
    for (int r = 0; r < WROWS; r++)
        for (int i = 0; i < ROWS; i++) {
            double s = 0, a = 0;
            for (int k = 0; k < K; k++) {
                s += (double)wf[r * K + k] * xdeq[i * K + k];
                a += fabs((double)wf[r * K + k] * xdeq[i * K + k]);
            }
            want[r][i] = s;
            scale[r][i] = a;
        }

    /* the float dot products of the plain types (dot_rows), on float x */
    for (int isa = 1; isa <= (int)best; isa++) {
        nt_dot_rows_fn fn;
        NT_ISA_RESOLVE(fn, tr->dot_rows, isa);
        if (!fn)
            continue;
        int bad = 0;
        for (int r = 0; r < WROWS; r++) {
            float out[ROWS] = {0};
            fn(K - 5, w + r * row_bytes, xf, K, ROWS, out); /* a ragged tail too */
            for (int i = 0; i < ROWS; i++) {
                double s = 0, a = 0;
                for (int k = 0; k < K - 5; k++) {
                    s += (double)wf[r * K + k] * xf[i * K + k];
                    a += fabs((double)wf[r * K + k] * xf[i * K + k]);
                }
                bad += !close_to(out[i], s, a, 2e-6);
            }
        }
        CHECK_MSG(bad == 0, "%s: dot_rows at isa %d: %d of %d products off", tr->name, isa,
                  bad, WROWS * ROWS);
    }

    if (tr->dot_q8[NT_ISA_GENERIC]) {
        /* kernels that take blocks eight (or super-blocks two) at a time
         * have a tail: rows 3 blocks of 32, or one super-block, short of K
         * are checked too */
        int64_t short_n = tr->block_elems == 32 ? K - 96 : K - tr->block_elems;
        double want_short[WROWS][ROWS];
        for (int r = 0; r < WROWS; r++)
            for (int i = 0; i < ROWS; i++) {
                double sw = 0;
                for (int64_t k = 0; k < short_n; k++)
                    sw += (double)wf[r * K + k] * xdeq[i * K + k];
                want_short[r][i] = sw;
            }
        for (int isa = 0; isa <= (int)best; isa++) {
            nt_dot_q8_fn fn;
            NT_ISA_RESOLVE(fn, tr->dot_q8, isa);
            int bad = 0;
            for (int r = 0; r < WROWS; r++) {
                float out[ROWS] = {0}, out_short[ROWS] = {0};
                fn(K, w + r * row_bytes, xq, ROWS, out);
                fn(short_n, w + r * row_bytes, xq, ROWS, out_short);
                for (int i = 0; i < ROWS; i++) {
                    bad += !close_to(out[i], want[r][i], scale[r][i], 2e-6);
                    bad += !close_to(out_short[i], want_short[r][i], scale[r][i], 2e-6);
                }
            }
            CHECK_MSG(bad == 0, "%s: dot_q8 at isa %d: %d of %d products off", tr->name,
                      isa, bad, WROWS * ROWS);
            /* each activation row gets the bits it gets alone (dtype.h:
             * the scheduler's batch invariance) */
            int differ = 0;
            for (int r = 0; r < WROWS; r++) {
                float all[ROWS] = {0};
                fn(K, w + r * row_bytes, xq, ROWS, all);
                for (int i = 0; i < ROWS; i++) {
                    nt_q8_rows one = {xq->q + i * xq->ld, xq->d + i * xq->ld / 32,
                                      xq->s + i * xq->ld / 16, xq->ds + i * xq->ld / 32, xq->ld};
                    float alone = 0;
                    fn(K, w + r * row_bytes, &one, 1, &alone);
                    differ += memcmp(&alone, &all[i], sizeof alone) != 0;
                }
            }
            CHECK_MSG(differ == 0, "%s: dot_q8 at isa %d: %d rows differ from alone", tr->name,
                      isa, differ);
        }
    }

    if (tr->to_u8[NT_ISA_GENERIC]) {
        int G = tr->u8_group;
        uint8_t *u = malloc((size_t)K * WROWS);
        float *a = malloc(sizeof(float) * K / G * WROWS), *c = malloc(sizeof(float) * K / G * WROWS);
        int exact = 1;
        for (int r = 0; r < WROWS; r++) {
            tr->to_u8[NT_ISA_GENERIC](w + r * row_bytes, K, u + r * K, a + r * K / G,
                                      c + r * K / G);
            for (int k = 0; k < K; k++) {
                float v = a[r * K / G + k / G] * (float)u[r * K + k] + c[r * K / G + k / G];
                /* a * u + c in float may round differently from to_f32's
                 * expression; the two must agree to a few ulps */
                exact &= fabsf(v - wf[r * K + k]) <= 1e-6f * (fabsf(wf[r * K + k]) + fabsf(c[r * K / G + k / G]));
            }
        }
        CHECK_MSG(exact, "%s: to_u8 does not reproduce to_f32", tr->name);
        /* every instruction set's to_u8 gives the reference's bytes */
        for (int isa = 1; isa <= (int)best; isa++) {
            nt_to_u8_fn fn = tr->to_u8[isa];
            if (!fn)
                continue;
            uint8_t *u2 = malloc((size_t)K);
            float *a2 = malloc(sizeof(float) * K / G), *c2 = malloc(sizeof(float) * K / G);
            int same = 1;
            for (int r = 0; r < WROWS; r++) {
                fn(w + r * row_bytes, K, u2, a2, c2);
                same &= memcmp(u2, u + r * K, (size_t)K) == 0 &&
                        memcmp(a2, a + r * K / G, sizeof(float) * K / G) == 0 &&
                        memcmp(c2, c + r * K / G, sizeof(float) * K / G) == 0;
            }
            CHECK_MSG(same, "%s: to_u8 at isa %d differs from the reference", tr->name, isa);
            free(u2);
            free(a2);
            free(c2);
        }
        uint8_t *pu = nt_alloc_aligned((size_t)K * NT_Q8_PANEL_ROWS);
        float *pa = malloc(sizeof(float) * K / G * NT_Q8_PANEL_ROWS);
        float *pc = malloc(sizeof(float) * K / G * NT_Q8_PANEL_ROWS);
        /* every panel packer lays out the reference's bytes, also for a k
         * whose four-byte groups are not a multiple of 16 (a partial panel
         * too) */
        for (int isa = 1; isa <= (int)best; isa++) {
            nt_pack_panel_fn pack = nt_pack_panel_table[isa];
            if (!pack)
                continue;
            uint8_t *ref = nt_alloc_aligned((size_t)K * NT_Q8_PANEL_ROWS);
            float *ra = malloc(sizeof(float) * K / G * NT_Q8_PANEL_ROWS);
            float *rc = malloc(sizeof(float) * K / G * NT_Q8_PANEL_ROWS);
            int same = 1;
            for (int64_t kk = K - 32; kk <= K; kk += 32)
                for (int nr = 19; nr <= NT_Q8_PANEL_ROWS; nr += NT_Q8_PANEL_ROWS - 19) {
                    nt_q8_panel p1, p2;
                    nt_q8_panel_pack(nt_pack_panel_table[NT_ISA_GENERIC], u, a, c, kk, G,
                                     nr, &p1, ref, ra, rc);
                    nt_q8_panel_pack(pack, u, a, c, kk, G, nr, &p2, pu, pa, pc);
                    size_t n_groups = (size_t)(kk / G) * NT_Q8_PANEL_ROWS;
                    same &= memcmp(ref, pu, (size_t)kk * NT_Q8_PANEL_ROWS) == 0 &&
                            memcmp(ra, pa, sizeof(float) * n_groups) == 0 &&
                            memcmp(rc, pc, sizeof(float) * n_groups) == 0;
                }
            CHECK_MSG(same, "%s: int8 panel packing at isa %d differs", tr->name, isa);
            nt_free_aligned(ref);
            free(ra);
            free(rc);
        }
        for (int isa = 0; isa <= (int)best; isa++) {
            nt_gemm_q8_tile_fn fn = nt_gemm_q8_tile_table[isa];
            if (isa > 0 && !fn)
                continue;
            if (!fn)
                fn = nt_gemm_q8_tile_reference;
            int bad = 0;
            for (int r0 = 0; r0 < WROWS; r0 += NT_Q8_PANEL_ROWS) {
                int nr = WROWS - r0 < NT_Q8_PANEL_ROWS ? WROWS - r0 : NT_Q8_PANEL_ROWS;
                nt_q8_panel panel;
                nt_pack_panel_fn pack;
                NT_ISA_RESOLVE(pack, nt_pack_panel_table, isa);
                nt_q8_panel_pack(pack, u + r0 * K, a + r0 * K / G, c + r0 * K / G, K, G, nr,
                                 &panel, pu, pa, pc);
                float y[ROWS][NT_Q8_PANEL_ROWS + 1];
                for (int i = 0; i < ROWS; i++)
                    y[i][nr] = 12345.0f; /* must stay: only nr columns written */
                fn(ROWS, xq, 0, &panel, &y[0][0], NT_Q8_PANEL_ROWS + 1, nr);
                for (int i = 0; i < ROWS; i++) {
                    bad += y[i][nr] != 12345.0f;
                    for (int j = 0; j < nr; j++)
                        bad += !close_to(y[i][j], want[r0 + j][i], scale[r0 + j][i], 2e-6);
                }
            }
            CHECK_MSG(bad == 0, "%s: int8 GEMM tile at isa %d: %d values off", tr->name,
                      isa, bad);
        }
        nt_free_aligned(pu);
        free(pa);
        free(pc);
        free(u);
        free(a);
        free(c);
    }
    free(w);
    free(wf);
    free(tmp);
}

/* Root-mean-square error of a round trip, relative to the data's RMS. */
static void test_round_trip(nt_dtype t, double bound) {
    const nt_dtype_traits *tr = nt_dtype_traits_of(t);
    static float x[K * 4], y[K * 4];
    uint8_t *w = malloc((size_t)nt_dtype_bytes(t, K * 4));
    for (int i = 0; i < K * 4; i++) /* a bell-ish shape with outliers */
        x[i] = (uniform() + uniform() + uniform() - 1.5f) * (i % 97 == 0 ? 8.0f : 1.0f);
    tr->from_f32(x, w, K * 4);
    tr->to_f32[NT_ISA_GENERIC](w, y, K * 4);
    double err = 0, sig = 0;
    for (int i = 0; i < K * 4; i++) {
        err += (double)(x[i] - y[i]) * (x[i] - y[i]);
        sig += (double)x[i] * x[i];
    }
    double rel = sqrt(err / sig);
    printf("%-5s round trip: relative RMS error %.5f (bound %.3f)\n", tr->name, rel, bound);
    CHECK_MSG(rel <= bound, "%s: round-trip error %g above %g", tr->name, rel, bound);
    free(w);
}

int main(void) {
    nt_isa best = nt_isa_best();
    static float x[ROWS * K], xdeq[ROWS * K];
    static int8_t q[ROWS * K];
    static float d[ROWS * K / 32];
    static int16_t s[ROWS * K / 16];
    for (int i = 0; i < ROWS * K; i++)
        x[i] = (uniform() - 0.5f) * (i % 61 == 0 ? 20.0f : 2.0f);
    for (int isa = 0; isa <= (int)best; isa++)
        test_quantizer((nt_isa)isa, x);
    for (int i = 0; i < ROWS; i++)
        nt_quantize_q8_table[NT_ISA_GENERIC](x + i * K, K, q + i * K, d + i * K / 32,
                                             s + i * K / 16);
    for (int i = 0; i < ROWS * K; i++)
        xdeq[i] = d[i / 32] * q[i];
    static float ds[ROWS * K / 32];
    nt_q8_block_sums(d, s, ROWS * K, ds);
    nt_q8_rows xq = {q, d, s, ds, K};

    for (int t = 0; t < NT_DTYPE_COUNT; t++)
        test_type((nt_dtype)t, best, &xq, xdeq, x);

    /* relative RMS error bounds: 1.25x what GGML's reference quantizers
     * reach on this data (blocks with an outlier lose the most) */
    static const struct { nt_dtype t; double bound; } bounds[] = {
        {NT_DTYPE_F32, 0.0},      {NT_DTYPE_F16, 0.0003},  {NT_DTYPE_BF16, 0.0022},
        {NT_DTYPE_Q8_0, 0.011},   {NT_DTYPE_Q6_K, 0.032},  {NT_DTYPE_Q5_0, 0.09},
        {NT_DTYPE_Q5_1, 0.056},   {NT_DTYPE_Q5_K, 0.054},  {NT_DTYPE_Q4_0, 0.18},
        {NT_DTYPE_Q4_1, 0.116},   {NT_DTYPE_Q4_K, 0.11},
    };
    for (unsigned i = 0; i < sizeof bounds / sizeof bounds[0]; i++)
        if (nt_dtype_traits_of(bounds[i].t)->from_f32)
            test_round_trip(bounds[i].t, bounds[i].bound);
    return check_summary();
}
