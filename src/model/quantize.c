/*
 * quantize.c - writing a model as a GGUF file, in any storage type.
 *
 * The source is anything nt_model_load reads (an HF directory or a GGUF),
 * so one routine serves `nemotron convert` (HF to GGUF in f32/f16/bf16)
 * and `nemotron quantize` (to the GGML block types). The file it writes is
 * laid out as llama.cpp's converter lays out a Nemotron model - the same
 * tensor names, LayerNorm1P's scales stored as 1 + w, the same metadata
 * keys - so that llama.cpp reads it, and so do we.
 *
 * Which type each matrix gets ("the recipe"):
 *   - every matrix the requested type, except
 *   - output.weight (the lm_head): q6_k when the type has fewer than 6 bits
 *     per weight, as llama.cpp does: the last projection is the most
 *     sensitive to rounding;
 *   - q4_k_m / q5_k_m, llama.cpp's mixes: q4_k (q5_k) everywhere, but q6_k
 *     for attn_v and ffn_down in the first and last eighth of the layers
 *     and every third layer between;
 *   - `pure` gives every matrix the requested type; output_type overrides
 *     the lm_head's.
 * Norms and biases are always f32. A row length the type's block does not
 * divide falls back to f16 (with a notice in the progress stage name).
 *
 * Each matrix is widened to float32 a row at a time from whatever type the
 * source holds, optionally rescaled (AWQ, awq.c), and stored in the target
 * type by the type's from_f32, on all threads.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "model/gguf.h"
#include "model/model.h"
#include "model/quantize.h"
#include "threadpool.h"
#include "tokenizer/tokenizer_impl.h"

/* ---- the recipe ----------------------------------------------------------- */

typedef struct recipe {
    const char *name;    /* what the user types */
    nt_dtype base;
    int mix;             /* llama.cpp's _M mix: q6_k for some attn_v/ffn_down */
    int file_type;       /* llama.cpp's general.file_type (llama_ftype) */
} recipe;

static const recipe recipes[] = {
    {"f32", NT_DTYPE_F32, 0, 0},     {"f16", NT_DTYPE_F16, 0, 1},
    {"bf16", NT_DTYPE_BF16, 0, 32},  {"q8_0", NT_DTYPE_Q8_0, 0, 7},
    {"q4_0", NT_DTYPE_Q4_0, 0, 2},   {"q4_1", NT_DTYPE_Q4_1, 0, 3},
    {"q5_0", NT_DTYPE_Q5_0, 0, 8},   {"q5_1", NT_DTYPE_Q5_1, 0, 9},
    {"q4_k", NT_DTYPE_Q4_K, 0, 14},  {"q4_k_s", NT_DTYPE_Q4_K, 0, 14},
    {"q4_k_m", NT_DTYPE_Q4_K, 1, 15}, {"q5_k", NT_DTYPE_Q5_K, 0, 16},
    {"q5_k_s", NT_DTYPE_Q5_K, 0, 16}, {"q5_k_m", NT_DTYPE_Q5_K, 1, 17},
    {"q6_k", NT_DTYPE_Q6_K, 0, 18},
};

const char *nt_quantize_type_names(void) {
    return "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k (= q4_k_s), q4_k_m, "
           "q5_k (= q5_k_s), q5_k_m, q6_k";
}

static const recipe *find_recipe(const char *name) {
    for (size_t i = 0; name && i < sizeof recipes / sizeof recipes[0]; i++)
        if (strcmp(recipes[i].name, name) == 0)
            return &recipes[i];
    return NULL;
}

int nt_quantize_type_known(const char *name) { return find_recipe(name) != NULL; }

/* Bits per weight, to decide whether the lm_head deserves better. */
static double bits_per_weight(nt_dtype t) {
    const nt_dtype_traits *tr = nt_dtype_traits_of(t);
    return 8.0 * tr->block_bytes / tr->block_elems;
}

/* llama.cpp's use_more_bits(): first and last eighth, and every third. */
static int more_bits(int layer, int n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 ||
           (layer - n_layer / 8) % 3 == 2;
}

/* ---- the tensors to write ----------------------------------------------- */

typedef struct out_tensor {
    char name[96];
    const nt_matrix *src;      /* a matrix, or NULL for a vector */
    const float *vec;          /* a vector (f32) */
    int64_t rows, cols;        /* vectors: rows = 1 */
    nt_dtype type;
    const float *col_scale;    /* AWQ: multiply column j by col_scale[j] */
    const float *row_scale;    /* AWQ: multiply row i by row_scale[i] */
} out_tensor;

typedef struct plan {
    out_tensor *t;
    int n, cap;
} plan;

static int plan_add(plan *p, const char *name, const nt_matrix *src, const float *vec,
                    int64_t rows, int64_t cols, nt_dtype type) {
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 256;
        out_tensor *t = realloc(p->t, (size_t)cap * sizeof *t);
        if (!t)
            return 0;
        p->t = t;
        p->cap = cap;
    }
    out_tensor *o = &p->t[p->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->src = src;
    o->vec = vec;
    o->rows = rows;
    o->cols = cols;
    o->type = type;
    return 1;
}

static nt_dtype matrix_type(nt_dtype want, int64_t cols) {
    return cols % nt_dtype_traits_of(want)->block_elems == 0 ? want : NT_DTYPE_F16;
}

nt_dtype nt_quantize_matrix_type(const nt_model *m, const nt_quantize_params *qp,
                                 int layer, int wide) {
    const recipe *r = find_recipe(qp->type);
    nt_dtype t = r->base;
    if (wide && !qp->pure && r->mix && more_bits(layer, m->hp.n_layer))
        t = NT_DTYPE_Q6_K;
    return matrix_type(t, wide ? m->hp.n_ff : m->hp.n_embd);
}

static int build_plan(const nt_model *m, const recipe *r, const nt_quantize_params *qp,
                      const nt_awq_scales *awq, plan *p) {
    const nt_hparams *hp = &m->hp;
    char name[96];
    int ok = 1;
    nt_dtype head_type = r->base;
    if (!qp->pure && bits_per_weight(r->base) < 6.0)
        head_type = NT_DTYPE_Q6_K;
    if (qp->output_type)
        head_type = (nt_dtype)nt_dtype_from_name(qp->output_type);

#define VEC(nm, v, n) ok &= plan_add(p, nm, NULL, v, 1, n, NT_DTYPE_F32)
#define MAT(nm, mat, t) \
    ok &= plan_add(p, nm, &(mat), NULL, (mat).rows, (mat).cols, matrix_type(t, (mat).cols))
    MAT("token_embd.weight", m->tok_embd, r->base);
    for (int l = 0; l < hp->n_layer; l++) {
        const nt_layer *L = &m->layers[l];
        nt_dtype more = !qp->pure && r->mix && more_bits(l, hp->n_layer) ? NT_DTYPE_Q6_K
                                                                        : r->base;
#define LN(suffix) (snprintf(name, sizeof name, "blk.%d.%s", l, suffix), name)
        const nt_norm *attn_norm = awq ? &awq->attn_norm[l] : &L->attn_norm;
        const nt_norm *ffn_norm = awq ? &awq->ffn_norm[l] : &L->ffn_norm;
        const float *bv = awq && awq->bv ? awq->bv[l] : L->bv;
        const float *b_up = awq && awq->b_up ? awq->b_up[l] : L->b_up;
        VEC(LN("attn_norm.weight"), attn_norm->scale, hp->n_embd);
        VEC(LN("attn_norm.bias"), attn_norm->shift, hp->n_embd);
        int first = p->n;
        MAT(LN("attn_q.weight"), L->wq, r->base);
        MAT(LN("attn_k.weight"), L->wk, r->base);
        MAT(LN("attn_v.weight"), L->wv, more);
        MAT(LN("attn_output.weight"), L->wo, r->base);
        if (ok && awq) {
            for (int i = first; i < first + 3; i++)
                p->t[i].col_scale = awq->attn_in[l];
            p->t[first + 2].row_scale = awq->v_out_inv[l];
            p->t[first + 3].col_scale = awq->o_in[l];
        }
        if (hp->attention_bias) {
            VEC(LN("attn_q.bias"), L->bq, L->wq.rows);
            VEC(LN("attn_k.bias"), L->bk, L->wk.rows);
            VEC(LN("attn_v.bias"), bv, L->wv.rows);
            VEC(LN("attn_output.bias"), L->bo, L->wo.rows);
        }
        VEC(LN("ffn_norm.weight"), ffn_norm->scale, hp->n_embd);
        VEC(LN("ffn_norm.bias"), ffn_norm->shift, hp->n_embd);
        first = p->n;
        MAT(LN("ffn_up.weight"), L->w_up, r->base);
        MAT(LN("ffn_down.weight"), L->w_down, more);
        if (ok && awq) {
            p->t[first].col_scale = awq->ffn_in[l];
            p->t[first].row_scale = awq->up_out_inv[l];
            p->t[first + 1].col_scale = awq->down_in[l];
        }
        if (hp->mlp_bias) {
            VEC(LN("ffn_up.bias"), b_up, L->w_up.rows);
            VEC(LN("ffn_down.bias"), L->b_down, L->w_down.rows);
        }
#undef LN
    }
    VEC("output_norm.weight", m->out_norm.scale, hp->n_embd);
    VEC("output_norm.bias", m->out_norm.shift, hp->n_embd);
    if (!hp->tie_embeddings)
        MAT("output.weight", m->lm_head, head_type);
#undef VEC
#undef MAT
    return ok;
}

/* ---- metadata --------------------------------------------------------------- */

static void write_hparams(nt_gguf_writer *w, const nt_hparams *hp, const char *name,
                          int file_type) {
    nt_gguf_set_str(w, "general.architecture", "nemotron");
    nt_gguf_set_str(w, "general.name", name);
    nt_gguf_set_u32(w, "general.file_type", (uint32_t)file_type);
    nt_gguf_set_u32(w, "general.quantization_version", 2);
    nt_gguf_set_u32(w, "nemotron.context_length", (uint32_t)hp->n_ctx_train);
    nt_gguf_set_u32(w, "nemotron.embedding_length", (uint32_t)hp->n_embd);
    nt_gguf_set_u32(w, "nemotron.block_count", (uint32_t)hp->n_layer);
    nt_gguf_set_u32(w, "nemotron.feed_forward_length", (uint32_t)hp->n_ff);
    nt_gguf_set_u32(w, "nemotron.attention.head_count", (uint32_t)hp->n_head);
    nt_gguf_set_u32(w, "nemotron.attention.head_count_kv", (uint32_t)hp->n_head_kv);
    nt_gguf_set_u32(w, "nemotron.attention.key_length", (uint32_t)hp->head_dim);
    nt_gguf_set_u32(w, "nemotron.attention.value_length", (uint32_t)hp->head_dim);
    nt_gguf_set_u32(w, "nemotron.rope.dimension_count", (uint32_t)hp->n_rot);
    nt_gguf_set_f32(w, "nemotron.rope.freq_base", hp->rope_theta);
    nt_gguf_set_f32(w, "nemotron.attention.layer_norm_epsilon", hp->norm_eps);
}

/*
 * The vocabulary as tokenizer.ggml.* keys, from a SentencePiece-style
 * tokenizer (a tokenizer.model or a GGUF's own). User-defined pieces keep
 * their type (llama.cpp then matches them in text, as SentencePiece does).
 */
static nt_status write_vocab(nt_gguf_writer *w, const nt_tokenizer *tok,
                             const nt_hparams *hp, const char *path, nt_error *err) {
    if (tok->format != NT_FORMAT_SPM)
        return nt_fail(err, NT_ERR_UNSUPPORTED,
                       "%s: the GGUF vocabulary is written from a SentencePiece "
                       "tokenizer (tokenizer.model), not from tokenizer.json",
                       path);
    const nt_vocab *v = &tok->vocab;
    if (v->n != hp->n_vocab)
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: the tokenizer has %d pieces but the model %d rows of "
                       "embeddings",
                       path, v->n, hp->n_vocab);
    const char **texts = malloc((size_t)v->n * sizeof *texts);
    size_t *lens = malloc((size_t)v->n * sizeof *lens);
    int32_t *types = malloc((size_t)v->n * sizeof *types);
    if (!texts || !lens || !types) {
        free(texts);
        free(lens);
        free(types);
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    }
    int unk = 0;
    for (int i = 0; i < v->n; i++) {
        texts[i] = nt_vocab_piece(v, i, &lens[i]);
        types[i] = v->kind[i];
        if (v->kind[i] == NT_PIECE_UNKNOWN)
            unk = i;
    }
    nt_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    nt_gguf_set_arr_str(w, "tokenizer.ggml.tokens", texts, lens, (uint64_t)v->n);
    nt_gguf_set_arr(w, "tokenizer.ggml.scores", NT_GGUF_F32, v->score, (uint64_t)v->n);
    nt_gguf_set_arr(w, "tokenizer.ggml.token_type", NT_GGUF_I32, types, (uint64_t)v->n);
    nt_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)hp->bos_id);
    nt_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)hp->eos_id);
    nt_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
    if (v->pad_id >= 0)
        nt_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad_id);
    nt_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    nt_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", 0);
    nt_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", tok->add_dummy_prefix);
    free(texts);
    free(lens);
    free(types);
    return NT_OK;
}

/* ---- converting rows, on all threads ----------------------------------------- */

typedef struct convert_job {
    const out_tensor *t;
    int64_t row0, n_rows;     /* this chunk */
    unsigned char *dst;       /* n_rows rows in the target type */
    float *scratch;           /* per thread: one f32 row */
} convert_job;

static void convert_task(void *arg, int ith, int nth) {
    const convert_job *job = arg;
    const out_tensor *t = job->t;
    const nt_matrix *src = t->src;
    const nt_dtype_traits *st = nt_dtype_traits_of(src->dtype);
    const nt_dtype_traits *tt = nt_dtype_traits_of(t->type);
    float *row = job->scratch + (size_t)ith * (size_t)t->cols;
    uint64_t out_row_bytes = nt_dtype_bytes(t->type, (uint64_t)t->cols);
    int64_t r0, r1;
    nt_split_range(job->n_rows, 1, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i = job->row0 + r;
        st->to_f32[NT_ISA_GENERIC]((const char *)src->data + (uint64_t)i * src->row_bytes,
                                   row, t->cols);
        if (t->col_scale)
            for (int64_t j = 0; j < t->cols; j++)
                row[j] *= t->col_scale[j];
        if (t->row_scale)
            for (int64_t j = 0; j < t->cols; j++)
                row[j] *= t->row_scale[i];
        tt->from_f32(row, job->dst + (uint64_t)r * out_row_bytes, t->cols);
    }
}

/* ---- the whole file ------------------------------------------------------------ */

#define CHUNK_BYTES (32u << 20)

nt_status nt_quantize_model(const nt_model *m, const nt_tokenizer *tok,
                            const char *name, const char *out_path,
                            const nt_quantize_params *qp, const nt_awq_scales *awq,
                            nt_error *err) {
    const recipe *r = find_recipe(qp->type);
    if (!r)
        return nt_fail(err, NT_ERR_ARGUMENT, "unknown type \"%s\" (known: %s)",
                       qp->type ? qp->type : "", nt_quantize_type_names());
    if (qp->output_type && nt_dtype_from_name(qp->output_type) < 0)
        return nt_fail(err, NT_ERR_ARGUMENT, "unknown output type \"%s\"",
                       qp->output_type);
    plan p = {0};
    if (!build_plan(m, r, qp, awq, &p)) {
        free(p.t);
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < p.n; i++)
        if (!nt_dtype_traits_of(p.t[i].type)->from_f32) {
            nt_status s = nt_fail(err, NT_ERR_UNSUPPORTED, "cannot write type %s",
                                  nt_dtype_traits_of(p.t[i].type)->name);
            free(p.t);
            return s;
        }

    nt_gguf_writer *w = nt_gguf_writer_new();
    nt_pool *pool = nt_pool_new(qp->n_threads > 0 ? qp->n_threads : 1, err);
    int64_t widest = m->hp.n_ff > m->hp.n_embd ? m->hp.n_ff : m->hp.n_embd;
    float *scratch = pool ? malloc((size_t)nt_pool_size(pool) * (size_t)widest *
                                   sizeof(float)) : NULL;
    unsigned char *chunk = malloc(CHUNK_BYTES);
    nt_status s = NT_OK;
    if (!pool)
        s = err ? err->status : NT_ERR_NO_MEMORY;
    else if (!w || !scratch || !chunk)
        s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    if (s == NT_OK) {
        write_hparams(w, &m->hp, name, r->file_type);
        s = write_vocab(w, tok, &m->hp, name, err);
    }
    uint64_t total = 0, done = 0;
    for (int i = 0; s == NT_OK && i < p.n; i++) {
        int64_t shape[2] = {p.t[i].rows, p.t[i].cols};
        if (p.t[i].src)
            nt_gguf_add_tensor(w, p.t[i].name, p.t[i].type, 2, shape);
        else
            nt_gguf_add_tensor(w, p.t[i].name, NT_DTYPE_F32, 1, shape + 1);
        total += (uint64_t)(p.t[i].rows * p.t[i].cols);
    }
    if (s == NT_OK)
        s = nt_gguf_writer_begin(w, out_path, err);
    for (int i = 0; s == NT_OK && i < p.n; i++) {
        const out_tensor *t = &p.t[i];
        if (!t->src) {
            s = nt_gguf_writer_write(w, t->vec, (uint64_t)t->cols * sizeof(float), err);
            done += (uint64_t)t->cols;
            continue;
        }
        uint64_t row_bytes = nt_dtype_bytes(t->type, (uint64_t)t->cols);
        int64_t rows_per_chunk = (int64_t)(CHUNK_BYTES / row_bytes);
        if (rows_per_chunk < 1) {
            s = nt_fail(err, NT_ERR_ARGUMENT, "tensor %s: rows too long", t->name);
            break;
        }
        for (int64_t r0 = 0; s == NT_OK && r0 < t->rows; r0 += rows_per_chunk) {
            int64_t n = t->rows - r0 < rows_per_chunk ? t->rows - r0 : rows_per_chunk;
            convert_job job = {t, r0, n, chunk, scratch};
            nt_pool_run(pool, convert_task, &job);
            s = nt_gguf_writer_write(w, chunk, (uint64_t)n * row_bytes, err);
            done += (uint64_t)(n * t->cols);
            if (qp->progress)
                qp->progress("writing", total ? (double)done / (double)total * 0.999 : 0,
                             qp->progress_user);
        }
    }
    if (s == NT_OK) {
        s = nt_gguf_writer_finish(w, err);
        w = NULL;
    }
    if (w)
        nt_gguf_writer_abort(w);
    if (s == NT_OK && qp->progress)
        qp->progress("writing", 1.0, qp->progress_user);
    nt_pool_free(pool);
    free(scratch);
    free(chunk);
    free(p.t);
    return s;
}

/* ---- the public entry point ---------------------------------------------------- */

nt_quantize_params nt_quantize_default_params(void) {
    nt_quantize_params p;
    memset(&p, 0, sizeof p);
    p.type = "q4_k_m";
    p.n_threads = 1;
    return p;
}

/* The SentencePiece tokenizer that goes into the file: a GGUF's own, or
 * the HF directory's tokenizer.model. */
static nt_tokenizer *load_spm_tokenizer(const char *in_path, nt_error *err) {
    if (nt_gguf_is_gguf(in_path))
        return nt_tokenizer_load(in_path, err);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", in_path);
    struct stat st;
    if (stat(in_path, &st) == 0 && !S_ISDIR(st.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    if (stat(path, &st) != 0) {
        nt_fail(err, NT_ERR_IO,
                "%s: no tokenizer.model: a GGUF's vocabulary is written from "
                "SentencePiece's model file",
                dir);
        return NULL;
    }
    return nt_tokenizer_load(path, err);
}

/* "model" from "/x/model.gguf" or "/x/model/" */
static void model_name(const char *path, char *out, size_t size) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    const char *base = strrchr(tmp, '/');
    base = base ? base + 1 : tmp;
    snprintf(out, size, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && strcmp(dot, ".gguf") == 0)
        *dot = '\0';
}

nt_status nt_model_quantize(const char *in_path, const char *out_path,
                            const nt_quantize_params *params, nt_error *err) {
    nt_error_clear(err);
    nt_quantize_params defaults = nt_quantize_default_params();
    if (!params)
        params = &defaults;
    if (!in_path || !out_path)
        return nt_fail(err, NT_ERR_ARGUMENT, "no input or output path given");
    if (!find_recipe(params->type))
        return nt_fail(err, NT_ERR_ARGUMENT, "unknown type \"%s\" (known: %s)",
                       params->type ? params->type : "", nt_quantize_type_names());
    nt_model_params mp = nt_model_default_params();
    mp.progress = params->progress;
    mp.progress_user = params->progress_user;
    nt_model *m = nt_model_load(in_path, &mp, err);
    if (!m)
        return err ? err->status : NT_ERR_FORMAT;
    nt_status s = NT_OK;
    nt_tokenizer *tok = load_spm_tokenizer(in_path, err);
    if (!tok)
        s = err ? err->status : NT_ERR_FORMAT;
    nt_awq_scales awq;
    memset(&awq, 0, sizeof awq);
    int have_awq = 0;
    if (s == NT_OK && params->awq_calibration) {
        s = nt_awq_compute(m, tok, params->awq_calibration, params, &awq, err);
        have_awq = s == NT_OK;
    }
    char name[256];
    model_name(in_path, name, sizeof name);
    if (s == NT_OK)
        s = nt_quantize_model(m, tok, name, out_path, params, have_awq ? &awq : NULL,
                              err);
    nt_awq_scales_free(&awq);
    nt_tokenizer_free(tok);
    nt_model_free(m);
    return s;
}
