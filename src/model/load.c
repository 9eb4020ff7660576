/*
 * load.c - from an HF model directory to an nt_model.
 *
 * The order matters for error quality and memory: config.json first (the
 * wrong architecture is reported before any weight file is touched), then
 * every safetensors header, then every expected tensor is found and its
 * dtype and shape checked against the config, and only then is weight data
 * mapped or read. Matrices stay in the files' memory in their stored dtype;
 * only the small vectors (norms, biases) are converted to float32.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "model/gguf.h"
#include "model/model.h"

#define MAX_CONFIG_BYTES (16u << 20)
#define MAX_INDEX_BYTES (64u << 20)
#define MAX_SHARDS 1024

nt_model_params nt_model_default_params(void) {
    nt_model_params p;
    memset(&p, 0, sizeof p);
    p.use_mmap = 1;
    return p;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The model directory for `path`: itself, or the folder of a file in it. */
static char *model_dir_of(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return strdup(path);
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    return strndup(path, (size_t)(slash - path) + (slash == path));
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ---- finding the weight files ------------------------------------------- */

static nt_status open_shards_from_index(nt_model *m, const char *dir,
                                        const char *index_path, nt_error *err) {
    size_t len;
    char *text = nt_read_file(index_path, MAX_INDEX_BYTES, &len, err);
    if (!text)
        return err ? err->status : NT_ERR_IO;
    char jerr[256];
    nt_json_doc *doc = nt_json_parse(text, len, jerr, sizeof jerr);
    free(text);
    if (!doc)
        return nt_fail(err, NT_ERR_FORMAT, "%s: not valid JSON: %s", index_path, jerr);
    nt_status status = NT_OK;
    const nt_json *map = nt_json_get(nt_json_root(doc), "weight_map");
    if (nt_json_kind_of(map) != NT_JSON_OBJECT) {
        status = nt_fail(err, NT_ERR_FORMAT, "%s: no \"weight_map\" object",
                         index_path);
        goto done;
    }
    /* The distinct shard names, in order of first appearance. */
    const char *names[MAX_SHARDS];
    int n_names = 0;
    for (size_t i = 0; i < nt_json_count(map); i++) {
        const char *shard = nt_json_string(nt_json_at(map, i), NULL);
        if (!shard) {
            status = nt_fail(err, NT_ERR_FORMAT,
                             "%s: weight_map entry \"%s\" is not a file name",
                             index_path, nt_json_key_at(map, i, NULL));
            goto done;
        }
        if (strchr(shard, '/') || strcmp(shard, "..") == 0 || shard[0] == '\0') {
            status = nt_fail(err, NT_ERR_FORMAT,
                             "%s: shard name \"%.128s\" is not a plain file name",
                             index_path, shard);
            goto done;
        }
        int seen = 0;
        for (int j = 0; j < n_names && !seen; j++)
            seen = strcmp(names[j], shard) == 0;
        if (!seen) {
            if (n_names == MAX_SHARDS) {
                status = nt_fail(err, NT_ERR_FORMAT, "%s: more than %d shards",
                                 index_path, MAX_SHARDS);
                goto done;
            }
            names[n_names++] = shard;
        }
    }
    if (n_names == 0) {
        status = nt_fail(err, NT_ERR_FORMAT, "%s: weight_map is empty", index_path);
        goto done;
    }
    m->files = calloc((size_t)n_names, sizeof *m->files);
    if (!m->files) {
        status = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_names && status == NT_OK; i++) {
        char *p = join_path(dir, names[i]);
        if (!p) {
            status = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
            break;
        }
        status = nt_st_open(&m->files[i], p, err);
        free(p);
        m->n_files = i + 1; /* so that nt_model_free closes it */
    }
done:
    nt_json_free(doc);
    return status;
}

static nt_status open_weight_files(nt_model *m, const char *dir, nt_error *err) {
    char *index = join_path(dir, "model.safetensors.index.json");
    char *single = join_path(dir, "model.safetensors");
    nt_status status;
    if (!index || !single) {
        status = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    } else if (is_file(single)) {
        m->files = calloc(1, sizeof *m->files);
        if (!m->files) {
            status = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        } else {
            m->n_files = 1;
            status = nt_st_open(&m->files[0], single, err);
        }
    } else if (is_file(index)) {
        status = open_shards_from_index(m, dir, index, err);
    } else {
        status = nt_fail(err, NT_ERR_IO,
                         "%s: no model.safetensors or model.safetensors.index.json",
                         dir);
    }
    free(index);
    free(single);
    return status;
}

/* ---- finding and checking tensors --------------------------------------- */

typedef struct binder {
    nt_model *m;
    nt_error *err;
    nt_status status;
    int dtype_seen[NT_DTYPE_COUNT];
} binder;

static const nt_st_tensor *find_tensor(binder *b, const char *name,
                                       const nt_st_file **file) {
    for (int i = 0; i < b->m->n_files; i++) {
        const nt_st_tensor *t = nt_st_find(&b->m->files[i], name);
        if (t) {
            *file = &b->m->files[i];
            return t;
        }
    }
    return NULL;
}

/* Finds `name`, checks dtype and shape [d0] or [d0, d1] (d1 = 0: 1-D). */
static const nt_st_tensor *bind(binder *b, const char *name, int64_t d0,
                                int64_t d1) {
    if (b->status != NT_OK)
        return NULL;
    const nt_st_file *file = NULL;
    const nt_st_tensor *t = find_tensor(b, name, &file);
    if (!t) {
        b->status = nt_fail(b->err, NT_ERR_FORMAT,
                            "missing tensor %s (looked in %s%s)", name,
                            b->m->files[0].path,
                            b->m->n_files > 1 ? " and the other shards" : "");
        return NULL;
    }
    if (t->dtype < 0) {
        b->status = nt_fail(b->err, NT_ERR_UNSUPPORTED,
                            "%s: tensor %s has type %s, which nemotron does not "
                            "compute with (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
                            "Q5_0, Q5_1, Q4_K, Q5_K and Q6_K)",
                            file->path, name, t->dtype_name);
        return NULL;
    }
    int want_dims = d1 ? 2 : 1;
    if (t->n_dims != want_dims || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
        char got[128] = "", want[64];
        size_t n = 0;
        for (int i = 0; i < t->n_dims && n < sizeof got - 24; i++)
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", i ? ", " : "",
                                  (long long)t->shape[i]);
        if (d1)
            snprintf(want, sizeof want, "%lld, %lld", (long long)d0, (long long)d1);
        else
            snprintf(want, sizeof want, "%lld", (long long)d0);
        b->status = nt_fail(b->err, NT_ERR_FORMAT,
                            "%s: tensor %s has shape [%s]; the model's hyper-parameters "
                            "imply [%s]",
                            file->path, name, got, want);
        return NULL;
    }
    b->dtype_seen[t->dtype] = 1;
    return t;
}

/* Binds a matrix; its data pointer is filled in after loading. */
static void bind_matrix(binder *b, nt_matrix *mat, const char *name, int64_t rows,
                        int64_t cols) {
    const nt_st_tensor *t = bind(b, name, rows, cols);
    if (!t)
        return;
    mat->name = t->name;
    mat->dtype = (nt_dtype)t->dtype;
    mat->rows = rows;
    mat->cols = cols;
    mat->row_bytes = nt_dtype_bytes(mat->dtype, (uint64_t)cols);
    mat->data = t; /* the tensor, until nt_st_load gives us its data */
    b->m->n_params += (uint64_t)(rows * cols);
    b->m->weight_bytes += t->size;
}

/* Vectors are converted into the model's float arena after loading; here
 * we only record which tensor goes where. The arena is allocated after every
 * tensor has been checked, so that a config.json with absurd sizes gets a
 * shape error, not an attempt to allocate what it implies. */
typedef struct vector_job {
    const nt_st_tensor *t;
    float **slot;   /* set to arena + offset once the arena exists */
    size_t offset;  /* in floats */
    int add_one; /* LayerNorm1P: store 1 + w */
} vector_job;

typedef struct vector_list {
    vector_job *jobs;
    int n, cap;
} vector_list;

static void bind_vector(binder *b, vector_list *vl, float **dst_slot,
                        size_t *arena_next, const char *name, int64_t n,
                        int add_one) {
    const nt_st_tensor *t = bind(b, name, n, 0);
    if (!t)
        return;
    if (vl->n == vl->cap) {
        int cap = vl->cap ? vl->cap * 2 : 64;
        vector_job *j = realloc(vl->jobs, (size_t)cap * sizeof *j);
        if (!j) {
            b->status = nt_fail(b->err, NT_ERR_NO_MEMORY, "out of memory");
            return;
        }
        vl->jobs = j;
        vl->cap = cap;
    }
    vl->jobs[vl->n++] = (vector_job){t, dst_slot, *arena_next, add_one};
    *arena_next += (size_t)n;
    b->m->n_params += (uint64_t)n;
    b->m->weight_bytes += t->size;
}

static void bind_norm(binder *b, vector_list *vl, nt_norm *norm, size_t *next,
                      const char *prefix, int add_one) {
    char name[256];
    int64_t n = b->m->hp.n_embd;
    snprintf(name, sizeof name, "%s.weight", prefix);
    bind_vector(b, vl, &norm->scale, next, name, n, add_one);
    snprintf(name, sizeof name, "%s.bias", prefix);
    bind_vector(b, vl, &norm->shift, next, name, n, 0);
}

/*
 * Tensor names in the two layouts: HF's, and llama.cpp's GGUF names for
 * its "nemotron" architecture. Layer names are printf formats of the layer
 * number; norms are prefixes of .weight and .bias.
 */
typedef struct tensor_names {
    const char *embd, *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo;
    const char *ffn_norm, *up, *down, *b_up, *b_down, *out_norm, *head;
    int norm_plus_one;  /* HF stores LayerNorm1P's w; llama.cpp stores 1 + w */
} tensor_names;

static const tensor_names hf_names = {
    "model.embed_tokens.weight",
    "model.layers.%d.input_layernorm",
    "model.layers.%d.self_attn.q_proj.weight",
    "model.layers.%d.self_attn.k_proj.weight",
    "model.layers.%d.self_attn.v_proj.weight",
    "model.layers.%d.self_attn.o_proj.weight",
    "model.layers.%d.self_attn.q_proj.bias",
    "model.layers.%d.self_attn.k_proj.bias",
    "model.layers.%d.self_attn.v_proj.bias",
    "model.layers.%d.self_attn.o_proj.bias",
    "model.layers.%d.post_attention_layernorm",
    "model.layers.%d.mlp.up_proj.weight",
    "model.layers.%d.mlp.down_proj.weight",
    "model.layers.%d.mlp.up_proj.bias",
    "model.layers.%d.mlp.down_proj.bias",
    "model.norm",
    "lm_head.weight",
    0,
};

static const tensor_names gguf_names = {
    "token_embd.weight",
    "blk.%d.attn_norm",
    "blk.%d.attn_q.weight",
    "blk.%d.attn_k.weight",
    "blk.%d.attn_v.weight",
    "blk.%d.attn_output.weight",
    "blk.%d.attn_q.bias",
    "blk.%d.attn_k.bias",
    "blk.%d.attn_v.bias",
    "blk.%d.attn_output.bias",
    "blk.%d.ffn_norm",
    "blk.%d.ffn_up.weight",
    "blk.%d.ffn_down.weight",
    "blk.%d.ffn_up.bias",
    "blk.%d.ffn_down.bias",
    "output_norm",
    "output.weight",
    1,
};

/* Binds every tensor of the architecture; returns the floats the vectors
 * need in the arena. */
static size_t bind_all(binder *b, vector_list *vl, const tensor_names *tn) {
    nt_model *m = b->m;
    const nt_hparams *hp = &m->hp;
    int64_t H = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim,
            KV = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    size_t next = 0;
    char name[256];
    int add_one = !tn->norm_plus_one;

    bind_matrix(b, &m->tok_embd, tn->embd, hp->n_vocab, H);
    for (int l = 0; l < hp->n_layer && b->status == NT_OK; l++) {
        nt_layer *L = &m->layers[l];
#define LAYER_NAME(format) (snprintf(name, sizeof name, format, l), name)
        bind_norm(b, vl, &L->attn_norm, &next, LAYER_NAME(tn->attn_norm), add_one);
        bind_matrix(b, &L->wq, LAYER_NAME(tn->wq), Q, H);
        bind_matrix(b, &L->wk, LAYER_NAME(tn->wk), KV, H);
        bind_matrix(b, &L->wv, LAYER_NAME(tn->wv), KV, H);
        bind_matrix(b, &L->wo, LAYER_NAME(tn->wo), H, Q);
        if (hp->attention_bias) {
            bind_vector(b, vl, &L->bq, &next, LAYER_NAME(tn->bq), Q, 0);
            bind_vector(b, vl, &L->bk, &next, LAYER_NAME(tn->bk), KV, 0);
            bind_vector(b, vl, &L->bv, &next, LAYER_NAME(tn->bv), KV, 0);
            bind_vector(b, vl, &L->bo, &next, LAYER_NAME(tn->bo), H, 0);
        }
        bind_norm(b, vl, &L->ffn_norm, &next, LAYER_NAME(tn->ffn_norm), add_one);
        bind_matrix(b, &L->w_up, LAYER_NAME(tn->up), F, H);
        bind_matrix(b, &L->w_down, LAYER_NAME(tn->down), H, F);
        if (hp->mlp_bias) {
            bind_vector(b, vl, &L->b_up, &next, LAYER_NAME(tn->b_up), F, 0);
            bind_vector(b, vl, &L->b_down, &next, LAYER_NAME(tn->b_down), H, 0);
        }
#undef LAYER_NAME
    }
    bind_norm(b, vl, &m->out_norm, &next, tn->out_norm, add_one);
    if (hp->tie_embeddings)
        m->lm_head = m->tok_embd;
    else
        bind_matrix(b, &m->lm_head, tn->head, hp->n_vocab, H);
    return next;
}

/* ---- GGUF files ----------------------------------------------------------- */

/* llama.cpp's general.file_type names (llama_ftype), for what a mixed
 * file is called. */
static const char *gguf_file_type_name(int64_t ftype) {
    switch (ftype) {
    case 0: return "f32";
    case 1: return "f16";
    case 2: return "q4_0";
    case 3: return "q4_1";
    case 7: return "q8_0";
    case 8: return "q5_0";
    case 9: return "q5_1";
    case 14: return "q4_k_s";
    case 15: return "q4_k_m";
    case 16: return "q5_k_s";
    case 17: return "q5_k_m";
    case 18: return "q6_k";
    case 32: return "bf16";
    }
    return NULL;
}

/* One GGUF file holds everything: hyper-parameters, tensors, vocabulary. */
static nt_status open_gguf(nt_model *m, const char *path, nt_error *err) {
    m->files = calloc(1, sizeof *m->files);
    if (!m->files)
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    nt_gguf_meta meta;
    nt_status s = nt_gguf_open(path, &m->files[0], &meta, err);
    if (s != NT_OK)
        return s;
    m->n_files = 1;
    const nt_st_file *f = &m->files[0];
    const nt_st_tensor *embd = nt_st_find(f, gguf_names.embd);
    if (!embd || embd->n_dims != 2) {
        const char *arch = nt_gguf_get_str(&meta, "general.architecture");
        if (arch && strcmp(arch, "nemotron") != 0)
            s = nt_config_from_gguf(&meta, 1, path, &m->hp, err); /* names the arch */
        else
            s = nt_fail(err, NT_ERR_FORMAT, "%s: no 2-D tensor %s", path, gguf_names.embd);
    } else {
        s = nt_config_from_gguf(&meta, embd->shape[0], path, &m->hp, err);
    }
    if (s == NT_OK) {
        m->hp.tie_embeddings = nt_st_find(f, gguf_names.head) == NULL;
        m->hp.attention_bias = nt_st_find(f, "blk.0.attn_q.bias") != NULL;
        m->hp.mlp_bias = nt_st_find(f, "blk.0.ffn_up.bias") != NULL;
        int64_t ftype;
        if (nt_gguf_get_int(&meta, "general.file_type", &ftype))
            m->file_type_name = gguf_file_type_name(ftype);
    }
    nt_gguf_meta_free(&meta);
    return s;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct load_progress {
    const nt_model_params *params;
    uint64_t done_before;  /* bytes of earlier files */
    uint64_t total;
} load_progress;

static void on_file_progress(uint64_t bytes_done, void *user) {
    load_progress *lp = user;
    if (lp->params->progress && lp->total > 0) {
        double f = (double)(lp->done_before + bytes_done) / (double)lp->total;
        /* 1.0 is reported once, by nt_model_load, when all is done */
        lp->params->progress("loading", f < 0.999 ? f : 0.999,
                             lp->params->progress_user);
    }
}

static void set_matrix_data(nt_matrix *mat) {
    if (mat->data)
        mat->data = ((const nt_st_tensor *)mat->data)->data;
}

nt_model *nt_model_load(const char *path, const nt_model_params *params,
                        nt_error *err) {
    nt_model_params defaults = nt_model_default_params();
    if (!params)
        params = &defaults;
    nt_error_clear(err);
    if (!path) {
        nt_fail(err, NT_ERR_ARGUMENT, "no model path given");
        return NULL;
    }
    nt_model *m = calloc(1, sizeof *m);
    char *dir = model_dir_of(path);
    char *config_path = dir ? join_path(dir, "config.json") : NULL;
    vector_list vl = {0};
    nt_status status = NT_OK;
    if (!m || !dir || !config_path) {
        status = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        status = nt_fail(err, NT_ERR_IO, "%s: %s", path, strerror(errno));
        goto fail;
    }

    const tensor_names *names = &hf_names;
    if (S_ISREG(st.st_mode) && nt_gguf_is_gguf(path)) {
        names = &gguf_names;
        status = open_gguf(m, path, err);
        if (status != NT_OK)
            goto fail;
    } else {
        size_t len;
        char *config = nt_read_file(config_path, MAX_CONFIG_BYTES, &len, err);
        if (!config) {
            status = err ? err->status : NT_ERR_IO;
            goto fail;
        }
        status = nt_config_parse(config, len, config_path, &m->hp, err);
        free(config);
        if (status != NT_OK)
            goto fail;
        status = open_weight_files(m, dir, err);
        if (status != NT_OK)
            goto fail;
    }

    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) {
        status = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    binder b = {.m = m, .err = err, .status = NT_OK};
    size_t n_vector_floats = bind_all(&b, &vl, names);
    if (b.status != NT_OK) {
        status = b.status;
        goto fail;
    }
    m->vectors = nt_alloc_aligned(n_vector_floats * sizeof(float));
    if (!m->vectors) {
        status = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    for (int i = 0; i < vl.n; i++)
        *vl.jobs[i].slot = m->vectors + vl.jobs[i].offset;
    int n_types = 0;
    for (int t = 0; t < NT_DTYPE_COUNT; t++)
        if (b.dtype_seen[t]) {
            n_types++;
            m->weight_type = nt_dtype_traits_of((nt_dtype)t)->name;
        }
    if (n_types > 1)
        m->weight_type = m->file_type_name ? m->file_type_name : "mixed";

    load_progress lp = {params, 0, 0};
    for (int i = 0; i < m->n_files; i++)
        lp.total += m->files[i].file_size - m->files[i].data_start;
    for (int i = 0; i < m->n_files; i++) {
        status = nt_st_load(&m->files[i], params->use_mmap, on_file_progress, &lp,
                            err);
        if (status != NT_OK)
            goto fail;
        lp.done_before += m->files[i].file_size - m->files[i].data_start;
    }

    /* Now that data is in memory: matrices point into it, vectors are
     * converted to float32. */
    set_matrix_data(&m->tok_embd);
    set_matrix_data(&m->lm_head);
    for (int l = 0; l < m->hp.n_layer; l++) {
        nt_layer *L = &m->layers[l];
        nt_matrix *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
            set_matrix_data(mats[i]);
    }
    if (m->hp.tie_embeddings)
        m->lm_head = m->tok_embd;
    for (int i = 0; i < vl.n; i++) {
        const nt_st_tensor *t = vl.jobs[i].t;
        int64_t n = t->shape[0];
        float *dst = *vl.jobs[i].slot;
        nt_dtype_traits_of((nt_dtype)t->dtype)->to_f32[NT_ISA_GENERIC](t->data, dst, n);
        if (vl.jobs[i].add_one)
            for (int64_t k = 0; k < n; k++)
                dst[k] += 1.0f;
    }
    free(vl.jobs);
    free(config_path);
    free(dir);
    if (params->progress)
        params->progress("loading", 1.0, params->progress_user);
    return m;

fail:
    (void)status;
    free(vl.jobs);
    free(config_path);
    free(dir);
    nt_model_free(m);
    return NULL;
}

void nt_model_free(nt_model *m) {
    if (!m)
        return;
    for (int i = 0; i < m->n_files; i++)
        nt_st_close(&m->files[i]);
    free(m->files);
    free(m->layers);
    nt_free_aligned(m->vectors);
    free(m);
}

void nt_model_get_info(const nt_model *m, nt_model_info *info) {
    const nt_hparams *hp = &m->hp;
    memset(info, 0, sizeof *info);
    info->n_vocab = hp->n_vocab;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->head_dim = hp->head_dim;
    info->n_rot = hp->n_rot;
    info->n_ff = hp->n_ff;
    info->n_ctx_train = hp->n_ctx_train;
    info->norm_eps = hp->norm_eps;
    info->rope_theta = hp->rope_theta;
    info->bos_id = hp->bos_id;
    info->eos_id = hp->eos_id;
    info->n_params = m->n_params;
    info->weight_bytes = m->weight_bytes;
    /* the embedding is read one row per token; a tied lm_head reads it all */
    info->decode_bytes = m->weight_bytes;
    if (!m->hp.tie_embeddings)
        info->decode_bytes -= m->tok_embd.row_bytes * (uint64_t)(m->tok_embd.rows - 1);
    info->weight_type = m->weight_type;
}
