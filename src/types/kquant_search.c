/*
 * kquant_search.c - the searches for k-quant scales that GGML's reference
 * quantizers make (llama-quantize uses them when it has no importance
 * matrix). A file we write must hold the same bytes as llama.cpp's, so
 * every float operation here keeps GGML's order and grouping (a sum is
 * accumulated in the same order, a*b*c is (a*b)*c), rounding goes through
 * nt_nearest_int, and the constants are GGML's. Compiled without FMA
 * contraction (ISO C mode, no -march), as GGML's base library is.
 */
#include <math.h>

#include "types/kquant.h"

/* Below this, a group counts as all zeros (GGML's GROUP_MAX_EPS). */
#define GROUP_MAX_EPS 1e-15f

/* The step between the scales tried by fit_scale_min, in units of q. */
#define SCALE_MIN_STEP 0.1f

/* ---- scale and min: q4_k, q5_k ------------------------------------------ */

/* L[i] = x[i] - min in units of 1 / iscale, rounded into [0, nmax]. */
static void round_affine(int n, int nmax, const float *x, float iscale,
                         float min, uint8_t *L) {
    for (int i = 0; i < n; i++) {
        int l = nt_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
    }
}

/* sum w[i] * (scale * L[i] + min - x[i])^2 */
static float weighted_sq_error(int n, const float *x, const float *w,
                               const uint8_t *L, float scale, float min) {
    float err = 0.0f;
    for (int i = 0; i < n; i++) {
        float diff = scale * (float)L[i] + min - x[i];
        err += w[i] * (diff * diff);
    }
    return err;
}

/*
 * Fits x[0..n) (n <= 32) to scale * L - m, L in [0, nmax], m >= 0, with
 * weights w: starts from the plain range (min(x, 0) to max(x)), then for
 * each of nstep + 1 stretches of the grid rounds x and solves the weighted
 * least squares for scale and min given those L (min pinned to 0 where the
 * solution would make it positive), keeping whichever L has the least
 * weighted error. Returns the scale and stores m in *neg_min.
 */
static float fit_scale_min(int n, int nmax, const float *x, const float *w,
                           uint8_t *L, float *neg_min, float rmin, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    /* the min is subtracted in the format, so it may only lower the grid */
    if (min > 0.0f)
        min = 0.0f;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1.0f / iscale;
    round_affine(n, nmax, x, iscale, min, L);
    float best = weighted_sq_error(n, x, w, L, scale, min);

    uint8_t trial[32];
    for (int step = 0; step <= nstep; step++) {
        iscale = (rmin + SCALE_MIN_STEP * (float)step + (float)nmax) / (max - min);
        round_affine(n, nmax, x, iscale, min, trial);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            float l = (float)trial[i];
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        /* the normal equations' determinant: 0 when all L are equal */
        float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det > 0.0f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if (this_min > 0.0f) {
                this_min = 0.0f;
                this_scale = sum_xl / sum_l2;
            }
            float err = weighted_sq_error(n, x, w, trial, this_scale, this_min);
            if (err < best) {
                memcpy(L, trial, (size_t)n);
                best = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *neg_min = -min;
    return scale;
}

/* The inverse of nt_kquant_scale_min for all 8 sub-blocks (values < 64). */
static void pack_scale_min(const uint8_t sc[8], const uint8_t m[8], uint8_t s[12]) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

/* 6-bit code of v relative to the largest, as GGML rounds it: through a
   uint8_t (a negative rounding wraps to a large value) capped at 63. */
static uint8_t six_bits(float inv_max, float v) {
    uint8_t code = (uint8_t)nt_nearest_int(inv_max * v);
    return code < 63 ? code : 63;
}

void nt_kquant_quantize_scale_min(const float *x, int nmax, float rmin, int nstep,
                                  uint8_t scales[12], uint16_t *d, uint16_t *dmin,
                                  uint8_t q[NT_QK_K]) {
    float scale[8], min[8], w[32];
    float max_scale = 0.0f, max_min = 0.0f; /* both are >= 0 by construction */
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        /* weight each value by its size plus the sub-block's RMS, so large
           values count more without the small ones counting for nothing */
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++)
            sum_x2 += xs[l] * xs[l];
        float rms = sqrtf(sum_x2 / 32.0f);
        for (int l = 0; l < 32; l++)
            w[l] = rms + fabsf(xs[l]);
        scale[j] = fit_scale_min(32, nmax, xs, w, q + 32 * j, &min[j], rmin, nstep);
        if (scale[j] > max_scale)
            max_scale = scale[j];
        if (min[j] > max_min)
            max_min = min[j];
    }

    float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = six_bits(inv_scale, scale[j]);
        m[j] = six_bits(inv_min, min[j]);
    }
    pack_scale_min(sc, m, scales);
    *d = nt_f32_to_f16(max_scale / 63.0f);
    *dmin = nt_f32_to_f16(max_min / 63.0f);

    /* round again against what a reader will use: the rounded scales;
       a sub-block whose scale rounded to 0 keeps the fit's q */
    float d_f = nt_f16_to_f32(*d), dmin_f = nt_f16_to_f32(*dmin);
    for (int j = 0; j < 8; j++) {
        float step = d_f * (float)sc[j];
        if (step == 0.0f)
            continue;
        float offset = dmin_f * (float)m[j];
        for (int l = 0; l < 32; l++) {
            int v = nt_nearest_int((x[32 * j + l] + offset) / step);
            q[32 * j + l] = (uint8_t)(v < 0 ? 0 : v > nmax ? nmax : v);
        }
    }
}

/* ---- symmetric scale: q6_k ---------------------------------------------- */

/*
 * Rounds x at 1 / iscale into [-nmax, nmax) and accumulates the weighted
 * (w = x^2) sums of the least-squares scale for that rounding; stores
 * q + nmax in L when L is not NULL.
 */
static void symmetric_trial(int n, int nmax, const float *x, float iscale,
                            int8_t *L, float *sumlx, float *suml2) {
    float slx = 0.0f, sl2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = nt_nearest_int(iscale * x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        if (L)
            L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        slx += w * x[i] * (float)l;
        sl2 += w * (float)l * (float)l;
    }
    *sumlx = slx;
    *suml2 = sl2;
}

float nt_kquant_fit_symmetric(int n, int nmax, const float *x, int8_t *L) {
    /* the value of largest magnitude, with its sign: it maps to -nmax */
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float sumlx, suml2;
    symmetric_trial(n, nmax, x, (float)-nmax / max, L, &sumlx, &suml2);
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    /* best fit's error is sum w x^2 - sumlx^2 / suml2: maximize the latter */
    float best = scale * sumlx;
    for (int step = -9; step <= 9; step++) {
        if (step == 0)
            continue;
        float iscale = -((float)nmax + 0.1f * (float)step) / max;
        symmetric_trial(n, nmax, x, iscale, NULL, &sumlx, &suml2);
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            symmetric_trial(n, nmax, x, iscale, L, &sumlx, &suml2);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}
