/*
 * config.c - reading HF's config.json for NemotronForCausalLM.
 *
 * Field names and defaults follow transformers' NemotronConfig, including
 * the aliases older Nemotron configs use (kv_channels for head_dim,
 * rope_percent for partial_rotary_factor). Anything that would change the
 * math in a way we do not implement is refused with the field named, rather
 * than ignored: a silently different model is worse than an error.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "model/config.h"

/* Bounds that no real model approaches; beyond them a config is corrupt
 * (and would make us allocate absurd amounts). */
#define MAX_EMBD 65536
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_HEAD_DIM 1024
#define MAX_FF (1 << 20)
#define MAX_VOCAB (1 << 24)
#define MAX_CTX (1 << 24)

typedef struct reader {
    const nt_json *root;
    const char *path;
    nt_error *err;
    nt_status status; /* first failure */
} reader;

static void fail_field(reader *r, nt_status st, const char *field,
                       const char *what) {
    if (r->status == NT_OK)
        r->status = nt_fail(r->err, st, "%s: field \"%s\" %s", r->path, field, what);
}

/* An integer field in [lo, hi]; `def` when absent or null (-1: required). */
static int get_int(reader *r, const char *field, long long def, long long lo,
                   long long hi) {
    const nt_json *v = nt_json_get(r->root, field);
    if (!v || nt_json_is_null(v)) {
        if (def < 0 && lo >= 0) {
            fail_field(r, NT_ERR_FORMAT, field, "is missing");
            return 0;
        }
        return (int)def;
    }
    int64_t x = 0;
    int exact = nt_json_int64(v, &x);
    double d = nt_json_number(v);
    if (!exact && (nt_json_kind_of(v) != NT_JSON_NUMBER || d != floor(d))) {
        fail_field(r, NT_ERR_FORMAT, field, "is not an integer");
        return 0;
    }
    /* A number like 1e300 is compared as a double: converting it to an
     * integer type first would be undefined behaviour. */
    if (exact ? x < lo || x > hi : !(d >= (double)lo && d <= (double)hi)) {
        char what[256];
        if (exact)
            snprintf(what, sizeof what, "is %lld, outside %lld..%lld", (long long)x,
                     lo, hi);
        else
            snprintf(what, sizeof what, "is %g, outside %lld..%lld", d, lo, hi);
        fail_field(r, NT_ERR_FORMAT, field, what);
        return 0;
    }
    return exact ? (int)x : (int)d;
}

static double get_number(reader *r, const char *field, double def) {
    const nt_json *v = nt_json_get(r->root, field);
    if (!v || nt_json_is_null(v))
        return def;
    if (nt_json_kind_of(v) != NT_JSON_NUMBER) {
        fail_field(r, NT_ERR_FORMAT, field, "is not a number");
        return def;
    }
    return nt_json_number(v);
}

static int get_bool(reader *r, const char *field, int def) {
    const nt_json *v = nt_json_get(r->root, field);
    if (!v || nt_json_is_null(v))
        return def;
    if (!nt_json_is_bool(v)) {
        fail_field(r, NT_ERR_FORMAT, field, "is not true or false");
        return def;
    }
    return nt_json_bool(v);
}

/* eos_token_id may be an integer or a list of them (we stop on the first). */
static int get_token_id(reader *r, const char *field, int def, int n_vocab) {
    const nt_json *v = nt_json_get(r->root, field);
    if (nt_json_kind_of(v) == NT_JSON_ARRAY) {
        int64_t x;
        if (nt_json_count(v) == 0 || !nt_json_int64(nt_json_at(v, 0), &x) || x < 0 ||
            x >= n_vocab) {
            fail_field(r, NT_ERR_FORMAT, field, "is not a list of token ids");
            return def;
        }
        return (int)x;
    }
    return get_int(r, field, def, 0, n_vocab - 1);
}

static void check_architecture(reader *r) {
    const nt_json *arch = nt_json_get(r->root, "architectures");
    const char *model_type = nt_json_string(nt_json_get(r->root, "model_type"), NULL);
    if (arch && !nt_json_is_null(arch)) {
        if (nt_json_kind_of(arch) != NT_JSON_ARRAY) {
            fail_field(r, NT_ERR_FORMAT, "architectures", "is not a list");
            return;
        }
        int found = 0;
        for (size_t i = 0; i < nt_json_count(arch); i++) {
            const char *a = nt_json_string(nt_json_at(arch, i), NULL);
            if (a && strcmp(a, "NemotronForCausalLM") == 0)
                found = 1;
        }
        if (!found) {
            const char *first = nt_json_string(nt_json_at(arch, 0), NULL);
            char what[256];
            snprintf(what, sizeof what,
                     "is [\"%.64s\"%s]; only NemotronForCausalLM is supported",
                     first ? first : "?", nt_json_count(arch) > 1 ? ", ..." : "");
            fail_field(r, NT_ERR_UNSUPPORTED, "architectures", what);
            return;
        }
    } else if (!model_type) {
        fail_field(r, NT_ERR_FORMAT, "architectures",
                   "is missing (and so is model_type): is this a model config?");
        return;
    }
    if (model_type && strcmp(model_type, "nemotron") != 0) {
        char what[256];
        snprintf(what, sizeof what, "is \"%.64s\"; only \"nemotron\" is supported",
                 model_type);
        fail_field(r, NT_ERR_UNSUPPORTED, "model_type", what);
    }
}

static void check_unsupported_features(reader *r) {
    const nt_json *act = nt_json_get(r->root, "hidden_act");
    if (act && !nt_json_is_null(act)) {
        const char *s = nt_json_string(act, NULL);
        if (!s) {
            fail_field(r, NT_ERR_FORMAT, "hidden_act", "is not a string");
        } else if (strcmp(s, "relu2") != 0) {
            char what[256];
            snprintf(what, sizeof what,
                     "is \"%.64s\"; only \"relu2\" (squared ReLU) is supported", s);
            fail_field(r, NT_ERR_UNSUPPORTED, "hidden_act", what);
        }
    }
    const nt_json *scaling = nt_json_get(r->root, "rope_scaling");
    if (scaling && !nt_json_is_null(scaling)) {
        const char *type = nt_json_string(nt_json_get(scaling, "rope_type"), NULL);
        if (!type)
            type = nt_json_string(nt_json_get(scaling, "type"), NULL);
        /* "default" is HF's spelling of "no scaling". */
        if (!type || strcmp(type, "default") != 0) {
            char what[256];
            snprintf(what, sizeof what,
                     "asks for \"%.64s\" scaling; only unscaled rotary embeddings "
                     "are supported",
                     type ? type : "?");
            fail_field(r, NT_ERR_UNSUPPORTED, "rope_scaling", what);
        }
    }
    const nt_json *quant = nt_json_get(r->root, "quantization_config");
    if (quant && !nt_json_is_null(quant))
        fail_field(r, NT_ERR_UNSUPPORTED, "quantization_config",
                   "is set; quantized HF checkpoints are not supported");
}

nt_status nt_config_parse(const char *text, size_t len, const char *path,
                          nt_hparams *hp, nt_error *err) {
    char jerr[256];
    nt_json_doc *doc = nt_json_parse(text, len, jerr, sizeof jerr);
    if (!doc)
        return nt_fail(err, NT_ERR_FORMAT, "%s: not valid JSON: %s", path, jerr);
    reader r = {nt_json_root(doc), path, err, NT_OK};
    memset(hp, 0, sizeof *hp);
    if (nt_json_kind_of(r.root) != NT_JSON_OBJECT) {
        r.status = nt_fail(err, NT_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    check_architecture(&r);
    check_unsupported_features(&r);

    hp->n_embd = get_int(&r, "hidden_size", -1, 1, MAX_EMBD);
    hp->n_layer = get_int(&r, "num_hidden_layers", -1, 1, MAX_LAYERS);
    hp->n_head = get_int(&r, "num_attention_heads", -1, 1, MAX_HEADS);
    hp->n_head_kv = get_int(&r, "num_key_value_heads", hp->n_head, 1, MAX_HEADS);
    hp->n_ff = get_int(&r, "intermediate_size", -1, 1, MAX_FF);
    hp->n_vocab = get_int(&r, "vocab_size", -1, 1, MAX_VOCAB);
    hp->n_ctx_train = get_int(&r, "max_position_embeddings", 4096, 1, MAX_CTX);
    if (r.status != NT_OK)
        goto done;

    /* head_dim: HF's name, Megatron's kv_channels, or hidden / heads. */
    const char *head_dim_field =
        nt_json_get(r.root, "head_dim") && !nt_json_is_null(nt_json_get(r.root, "head_dim"))
            ? "head_dim"
            : "kv_channels";
    int default_head_dim =
        hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : -1;
    hp->head_dim = get_int(&r, head_dim_field, default_head_dim, 1, MAX_HEAD_DIM);
    if (r.status == NT_OK && hp->head_dim <= 0) {
        fail_field(&r, NT_ERR_FORMAT, "head_dim",
                   "is missing and hidden_size is not a multiple of "
                   "num_attention_heads");
        goto done;
    }

    const char *rot_field =
        nt_json_get(r.root, "partial_rotary_factor") &&
                !nt_json_is_null(nt_json_get(r.root, "partial_rotary_factor"))
            ? "partial_rotary_factor"
            : "rope_percent";
    double rot = get_number(&r, rot_field, 0.5);
    if (r.status == NT_OK && !(rot > 0.0 && rot <= 1.0)) {
        fail_field(&r, NT_ERR_FORMAT, rot_field, "is not in (0, 1]");
        goto done;
    }
    /* HF: int(head_dim * partial_rotary_factor) */
    hp->n_rot = (int)(hp->head_dim * rot);
    if (r.status == NT_OK && (hp->n_rot < 2 || hp->n_rot % 2 != 0)) {
        fail_field(&r, NT_ERR_FORMAT, rot_field,
                   "gives an odd or empty number of rotary dimensions");
        goto done;
    }

    double eps = get_number(&r, "norm_eps", 1e-5);
    double theta = get_number(&r, "rope_theta", 10000.0);
    if (r.status == NT_OK && !(eps > 0.0 && eps < 1.0))
        fail_field(&r, NT_ERR_FORMAT, "norm_eps", "is not in (0, 1)");
    if (r.status == NT_OK && !(theta > 1.0 && theta < 1e12))
        fail_field(&r, NT_ERR_FORMAT, "rope_theta", "is not in (1, 1e12)");
    hp->norm_eps = (float)eps;
    hp->rope_theta = (float)theta;

    hp->bos_id = get_token_id(&r, "bos_token_id", hp->n_vocab > 2 ? 2 : 0, hp->n_vocab);
    hp->eos_id = get_token_id(&r, "eos_token_id", hp->n_vocab > 3 ? 3 : 0, hp->n_vocab);
    hp->tie_embeddings = get_bool(&r, "tie_word_embeddings", 0);
    hp->attention_bias = get_bool(&r, "attention_bias", 0);
    hp->mlp_bias = get_bool(&r, "mlp_bias", 0);

    if (r.status == NT_OK && hp->n_head % hp->n_head_kv != 0) {
        char what[256];
        snprintf(what, sizeof what, "(%d) does not divide num_attention_heads (%d)",
                 hp->n_head_kv, hp->n_head);
        fail_field(&r, NT_ERR_FORMAT, "num_key_value_heads", what);
    }
done:
    nt_json_free(doc);
    return r.status;
}

/* ---- the same from a GGUF file's metadata ---------------------------------- */

/*
 * llama.cpp's converter writes NemotronForCausalLM as architecture
 * "nemotron" with keys nemotron.*; the vocabulary size is the embedding's
 * row count. GGUF has no field for biases or tied embeddings: the loader
 * decides those from which tensors exist.
 */
typedef struct gguf_reader {
    const nt_gguf_meta *meta;
    const char *path;
    nt_error *err;
    nt_status status;
} gguf_reader;

static void gguf_fail(gguf_reader *r, nt_status st, const char *key, const char *what) {
    if (r->status == NT_OK)
        r->status = nt_fail(r->err, st, "%s: key %s %s", r->path, key, what);
}

static int gguf_int(gguf_reader *r, const char *key, long long def, long long lo,
                    long long hi) {
    int64_t v;
    if (!nt_gguf_find(r->meta, key)) {
        if (def < 0)
            gguf_fail(r, NT_ERR_FORMAT, key, "is missing");
        return (int)def;
    }
    if (!nt_gguf_get_int(r->meta, key, &v)) {
        gguf_fail(r, NT_ERR_FORMAT, key, "is not an integer");
        return 0;
    }
    if (v < lo || v > hi) {
        char what[128];
        snprintf(what, sizeof what, "is %lld, outside %lld..%lld", (long long)v, lo, hi);
        gguf_fail(r, NT_ERR_FORMAT, key, what);
        return 0;
    }
    return (int)v;
}

static double gguf_number(gguf_reader *r, const char *key, double def) {
    double v;
    if (!nt_gguf_find(r->meta, key))
        return def;
    if (!nt_gguf_get_float(r->meta, key, &v)) {
        gguf_fail(r, NT_ERR_FORMAT, key, "is not a number");
        return def;
    }
    return v;
}

nt_status nt_config_from_gguf(const nt_gguf_meta *meta, int64_t n_vocab,
                              const char *path, nt_hparams *hp, nt_error *err) {
    gguf_reader r = {meta, path, err, NT_OK};
    memset(hp, 0, sizeof *hp);
    const char *arch = nt_gguf_get_str(meta, "general.architecture");
    if (!arch)
        return nt_fail(err, NT_ERR_FORMAT, "%s: key general.architecture is missing",
                       path);
    if (strcmp(arch, "nemotron") != 0)
        return nt_fail(err, NT_ERR_UNSUPPORTED,
                       "%s: architecture \"%.64s\" is not supported; only \"nemotron\" "
                       "(NemotronForCausalLM) is",
                       path, arch);
    const char *scaling = nt_gguf_get_str(meta, "nemotron.rope.scaling.type");
    if (scaling && strcmp(scaling, "none") != 0)
        gguf_fail(&r, NT_ERR_UNSUPPORTED, "nemotron.rope.scaling.type",
                  "asks for scaled rotary embeddings; only unscaled ones are supported");
    if (n_vocab < 1 || n_vocab > MAX_VOCAB)
        return nt_fail(err, NT_ERR_FORMAT, "%s: vocabulary size %lld is absurd", path,
                       (long long)n_vocab);
    hp->n_vocab = (int)n_vocab;
    hp->n_embd = gguf_int(&r, "nemotron.embedding_length", -1, 1, MAX_EMBD);
    hp->n_layer = gguf_int(&r, "nemotron.block_count", -1, 1, MAX_LAYERS);
    hp->n_ff = gguf_int(&r, "nemotron.feed_forward_length", -1, 1, MAX_FF);
    hp->n_head = gguf_int(&r, "nemotron.attention.head_count", -1, 1, MAX_HEADS);
    hp->n_head_kv = gguf_int(&r, "nemotron.attention.head_count_kv", hp->n_head, 1,
                             MAX_HEADS);
    hp->n_ctx_train = gguf_int(&r, "nemotron.context_length", 4096, 1, MAX_CTX);
    if (r.status != NT_OK)
        return r.status;
    int def_head_dim = hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : -1;
    hp->head_dim = gguf_int(&r, "nemotron.attention.key_length", def_head_dim, 1,
                            MAX_HEAD_DIM);
    int value_dim = gguf_int(&r, "nemotron.attention.value_length", hp->head_dim, 1,
                             MAX_HEAD_DIM);
    if (r.status == NT_OK && value_dim != hp->head_dim)
        gguf_fail(&r, NT_ERR_UNSUPPORTED, "nemotron.attention.value_length",
                  "differs from key_length");
    hp->n_rot = gguf_int(&r, "nemotron.rope.dimension_count", hp->head_dim, 2,
                         hp->head_dim > 2 ? hp->head_dim : 2);
    if (r.status == NT_OK && hp->n_rot % 2 != 0)
        gguf_fail(&r, NT_ERR_FORMAT, "nemotron.rope.dimension_count", "is odd");
    double eps = gguf_number(&r, "nemotron.attention.layer_norm_epsilon", 1e-5);
    double theta = gguf_number(&r, "nemotron.rope.freq_base", 10000.0);
    if (r.status == NT_OK && !(eps > 0.0 && eps < 1.0))
        gguf_fail(&r, NT_ERR_FORMAT, "nemotron.attention.layer_norm_epsilon",
                  "is not in (0, 1)");
    if (r.status == NT_OK && !(theta > 1.0 && theta < 1e12))
        gguf_fail(&r, NT_ERR_FORMAT, "nemotron.rope.freq_base", "is not in (1, 1e12)");
    hp->norm_eps = (float)eps;
    hp->rope_theta = (float)theta;
    hp->bos_id = gguf_int(&r, "tokenizer.ggml.bos_token_id", n_vocab > 2 ? 2 : 0, 0,
                          n_vocab - 1);
    hp->eos_id = gguf_int(&r, "tokenizer.ggml.eos_token_id", n_vocab > 3 ? 3 : 0, 0,
                          n_vocab - 1);
    if (r.status == NT_OK && hp->n_head % hp->n_head_kv != 0)
        gguf_fail(&r, NT_ERR_FORMAT, "nemotron.attention.head_count_kv",
                  "does not divide head_count");
    return r.status;
}
