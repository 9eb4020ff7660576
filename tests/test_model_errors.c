/*
 * test_model_errors.c - loading broken, foreign and re-encoded models.
 *
 * usage: test_model_errors FIXTURE_DIR SCRATCH_DIR [FUZZ_SEED]
 *
 * A model directory comes from wherever a user downloaded it, so every byte
 * of it is untrusted. The promise is: a truncated or corrupt file, a missing
 * or misshaped tensor, an architecture, activation or rope scaling we do not
 * implement, each gets NULL from nt_model_load, the right nt_status and a
 * message that names the file and the tensor or config field, never a
 * crash. Each case below writes a modified copy of the fixture
 * (tests/fixtures/tiny-nemotron) under SCRATCH_DIR and loads it, with and
 * without mmap:
 *
 *   - model.safetensors truncated at 0, 4 and 8 bytes, inside the header,
 *     at the end of the header, inside the data and one byte short;
 *   - the header length absurd or too long, the header JSON broken,
 *     nested 100000 deep, or not an object;
 *   - header surgery (the header text edited, its length rewritten): a
 *     dtype we cannot compute with, of the wrong size, unknown; a tensor
 *     renamed away, duplicated, overlapping another, with a bad shape or
 *     bad data_offsets;
 *   - config.json: another architecture or model_type, another activation,
 *     rope scaling, quantization, missing or invalid fields (1e300 where an
 *     integer goes: no undefined float-to-int conversion), shapes that do
 *     not match the tensors (absurd ones included: the tensors are checked
 *     before the sizes the config implies are allocated); not JSON; a
 *     directory; absent;
 *   - model.safetensors.index.json naming a missing shard, a shard outside
 *     the directory, no weight_map, or shards that lack tensors.
 *
 * The other side of the promise is that what is valid loads and computes
 * the same model: config variants (the kv_channels and rope_percent
 * aliases, rope_scaling "default") give the fixture's logits, while a
 * different partial_rotary_factor gives different ones (so the field is
 * really read); the fixture re-sharded, re-encoded as F32, and as F16
 * matches llama.cpp's reference logits (F16 against an F32 copy holding
 * the same f16-rounded values, which isolates the F16 decoding).
 *
 * Last, a fuzz: 1-3 bytes of the length field and header flipped at
 * random, 300 times, then of config.json, 100 times, from a fixed seed
 * (FUZZ_SEED picks another; the seed is printed). Every load must either
 * succeed (and then run a token) or fail with a message naming the file.
 * Run under ASan/UBSan, this is what shows the header is validated before
 * it is trusted.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common.h" /* cli_print_json_string, from cli/common.c */
#include "fixture.h"
#include "json.h"
#include "model/safetensors.h"
#include "nemotron.h"
#include "types/dtype.h"

#define REFERENCE_TOLERANCE 1e-4 /* against llama.cpp, as in test_forward */
#define SAME_MODEL_TOLERANCE 1e-6
#define F16_TOLERANCE 1e-5
#define OTHER_MODEL_MIN_DIFF 1e-3 /* a config change that must show */
#define FUZZ_HEADER_ROUNDS 300
#define FUZZ_CONFIG_ROUNDS 100
#define DEFAULT_FUZZ_SEED 20240611ull
#define PATH_MAX_LEN 4096
#define ST "model.safetensors"

typedef char path_buf[PATH_MAX_LEN];

static const char *fixture_dir, *scratch_dir;
static char *orig_config;       /* the fixture's config.json */
static size_t orig_config_len;
static unsigned char *orig_st;  /* the fixture's model.safetensors */
static size_t orig_st_len;
static size_t orig_header_len;  /* N, from its first 8 bytes */
static nt_st_file orig_tensors; /* the same file opened by the library */

/* ---- files --------------------------------------------------------------- */

static void join(path_buf out, const char *dir, const char *name) {
    int n = snprintf(out, PATH_MAX_LEN, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX_LEN) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        exit(2);
    }
}

static void put_file(const char *dir, const char *name, const void *data,
                     size_t len) {
    path_buf path;
    join(path, dir, name);
    CHECK_MSG(fixture_write_file(path, data, len), "cannot write %s", path);
}

/* SCRATCH_DIR/name, created if needed and emptied of model files. */
static void case_dir(path_buf dir, const char *name) {
    static const char *const files[] = {
        "config.json", ST, "model.safetensors.index.json",
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    join(dir, scratch_dir, name);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        CHECK_MSG(0, "cannot create %s: %s", dir, strerror(errno));
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        path_buf p;
        join(p, dir, files[i]);
        unlink(p);
    }
}

/* A fresh model dir holding `config` (NULL: the fixture's) and nothing else. */
static void config_only_dir(path_buf dir, const char *name, const char *config) {
    case_dir(dir, name);
    if (!config)
        config = orig_config;
    put_file(dir, "config.json", config, strlen(config));
}

/* The fixture's safetensors bytes with `n` bytes at `at` replaced and the
 * file cut to `len` bytes. */
static void put_patched_st(const char *dir, size_t len, size_t at,
                           const void *bytes, size_t n) {
    unsigned char *copy = malloc(orig_st_len);
    memcpy(copy, orig_st, orig_st_len);
    memcpy(copy + at, bytes, n);
    put_file(dir, ST, copy, len);
    free(copy);
}

/* The fixture's data behind `header`, padded with spaces to a multiple of 8
 * as HF's writer does, and its length in front. */
static void put_st_with_header(const char *dir, const char *header) {
    size_t n = strlen(header), padded = (n + 7) / 8 * 8;
    size_t data_len = orig_st_len - 8 - orig_header_len;
    unsigned char *file = malloc(8 + padded + data_len);
    for (int i = 0; i < 8; i++)
        file[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memset(file + 8, ' ', padded);
    memcpy(file + 8, header, n);
    memcpy(file + 8 + padded, orig_st + 8 + orig_header_len, data_len);
    put_file(dir, ST, file, 8 + padded + data_len);
    free(file);
}

/* ---- JSON surgery -------------------------------------------------------- */

/* A copy of `text` with the first `find` replaced by `replace`. */
static char *replace_once(const char *text, const char *find,
                          const char *replace) {
    const char *at = strstr(text, find);
    CHECK_MSG(at != NULL, "the fixture has no \"%s\"", find);
    if (!at)
        return strdup(text);
    size_t head = (size_t)(at - text), flen = strlen(find), rlen = strlen(replace);
    char *out = malloc(strlen(text) - flen + rlen + 1);
    memcpy(out, text, head);
    memcpy(out + head, replace, rlen);
    strcpy(out + head + rlen, at + flen);
    return out;
}

static void put_json(FILE *out, const nt_json *v) {
    int64_t i;
    switch (nt_json_kind_of(v)) {
    case NT_JSON_NUMBER:
        if (nt_json_int64(v, &i))
            fprintf(out, "%lld", (long long)i);
        else
            fprintf(out, "%.17g", nt_json_number(v));
        return;
    case NT_JSON_STRING:
        cli_print_json_string(out, nt_json_string(v, NULL));
        return;
    case NT_JSON_ARRAY:
    case NT_JSON_OBJECT: {
        int is_object = nt_json_kind_of(v) == NT_JSON_OBJECT;
        fputc(is_object ? '{' : '[', out);
        for (size_t k = 0; k < nt_json_count(v); k++) {
            if (k)
                fputc(',', out);
            if (is_object) {
                cli_print_json_string(out, nt_json_key_at(v, k, NULL));
                fputc(':', out);
            }
            put_json(out, nt_json_at(v, k));
        }
        fputc(is_object ? '}' : ']', out);
        return;
    }
    default:
        fputs(nt_json_kind_name(nt_json_kind_of(v)), out); /* null, true, false */
    }
}

/* One change to config.json: `key` set to the JSON text `value`, or removed
 * when `value` is NULL. A list of them ends at a NULL key. */
typedef struct edit {
    const char *key, *value;
} edit;
#define MAX_EDITS 8

static const edit *find_edit(const edit *edits, const char *key) {
    for (int i = 0; i < MAX_EDITS && edits[i].key; i++)
        if (strcmp(edits[i].key, key) == 0)
            return &edits[i];
    return NULL;
}

/* The fixture's config.json with `edits` applied (malloc'd). */
static char *config_with(const edit *edits) {
    char jerr[256];
    nt_json_doc *doc = nt_json_parse(orig_config, orig_config_len, jerr, sizeof jerr);
    const nt_json *root = nt_json_root(doc);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    fputc('{', out);
    int n = 0;
    for (size_t i = 0; i < nt_json_count(root); i++) {
        const char *key = nt_json_key_at(root, i, NULL);
        if (find_edit(edits, key))
            continue;
        fputs(n++ ? ",\n" : "\n", out);
        cli_print_json_string(out, key);
        fputs(": ", out);
        put_json(out, nt_json_at(root, i));
    }
    for (int i = 0; i < MAX_EDITS && edits[i].key; i++) {
        CHECK_MSG(edits[i].value || nt_json_get(root, edits[i].key),
                  "the fixture's config has no \"%s\" to remove", edits[i].key);
        if (edits[i].value)
            fprintf(out, "%s\n\"%s\": %s", n++ ? "," : "", edits[i].key,
                    edits[i].value);
    }
    fputs("\n}\n", out);
    fclose(out);
    nt_json_free(doc);
    return text;
}

/* The first tensor, in header order, whose data does not fit in
 * `data_size` bytes: the one a file cut there must be blamed on. */
static const char *first_tensor_past(uint64_t data_size) {
    static char name[256];
    nt_json_doc *doc = nt_json_parse((const char *)orig_st + 8, orig_header_len,
                                     NULL, 0);
    const nt_json *root = nt_json_root(doc);
    name[0] = '\0';
    for (size_t i = 0; i < nt_json_count(root) && !name[0]; i++) {
        int64_t end;
        if (nt_json_int64(nt_json_at(nt_json_get(nt_json_at(root, i), "data_offsets"), 1),
                          &end) &&
            (uint64_t)end > data_size)
            snprintf(name, sizeof name, "%s", nt_json_key_at(root, i, NULL));
    }
    nt_json_free(doc);
    return name;
}

/* SCRATCH_DIR/prefix-i, fresh, holding the fixture's config.json with
 * `edits` applied (NULL: none) and, if `with_weights`, its weights. */
static void numbered_dir(path_buf dir, const char *prefix, size_t i,
                         const edit *edits, int with_weights) {
    char name[64];
    snprintf(name, sizeof name, "%s-%zu", prefix, i);
    char *config = edits ? config_with(edits) : NULL;
    config_only_dir(dir, name, config);
    free(config);
    if (with_weights)
        put_file(dir, ST, orig_st, orig_st_len);
}

/* ---- loading ------------------------------------------------------------- */

/* How a load must fail. */
typedef struct refusal {
    nt_status status;
    const char *file;        /* the message names DIR/file (NULL: DIR itself) */
    const char *needles[3];  /* and contains these, up to the first NULL */
} refusal;

static nt_model *load(const char *dir, int use_mmap, nt_error *err) {
    nt_model_params p = nt_model_default_params();
    p.use_mmap = use_mmap;
    return nt_model_load(dir, &p, err);
}

/* Loads `dir` with and without mmap; each must fail as `want` says. */
static void expect_refused(const char *label, const char *dir, const refusal *want) {
    path_buf named;
    if (want->file)
        join(named, dir, want->file);
    else
        snprintf(named, sizeof named, "%s", dir);
    for (int use_mmap = 1; use_mmap >= 0; use_mmap--) {
        nt_error err;
        nt_model *m = load(dir, use_mmap, &err);
        CHECK_MSG(m == NULL, "%s (mmap %d): loaded", label, use_mmap);
        nt_model_free(m);
        if (m)
            continue;
        CHECK_MSG(err.status == want->status, "%s (mmap %d): status \"%s\", want \"%s\": %s",
                  label, use_mmap, nt_status_string(err.status),
                  nt_status_string(want->status), err.message);
        CHECK_MSG(strstr(err.message, named) != NULL, "%s: \"%s\" does not name %s",
                  label, err.message, named);
        for (int i = 0; i < 3 && want->needles[i]; i++)
            CHECK_MSG(strstr(err.message, want->needles[i]) != NULL,
                      "%s: \"%s\" does not mention \"%s\"", label, err.message,
                      want->needles[i]);
    }
}

/* The logits of every position of `ids` under the model in `dir`
 * (malloc'd, n_ids * n_vocab floats), or NULL when it does not load. */
static float *dir_logits(const char *dir, int use_mmap, const int32_t *ids,
                         int n_ids, const char *expect_type) {
    nt_error err;
    nt_model *m = load(dir, use_mmap, &err);
    CHECK_MSG(m != NULL, "%s: %s", dir, err.message);
    if (!m)
        return NULL;
    nt_model_info info;
    nt_model_get_info(m, &info);
    if (expect_type)
        CHECK_MSG(strcmp(info.weight_type, expect_type) == 0,
                  "%s: weight_type %s, want %s", dir, info.weight_type, expect_type);
    nt_context_params cp = nt_context_default_params();
    cp.n_ctx = n_ids;
    cp.n_threads = 2;
    nt_context *ctx = nt_context_new(m, &cp, &err);
    float *out = NULL;
    if (ctx && nt_eval(ctx, ids, n_ids, NT_LOGITS_ALL, &err) == NT_OK) {
        size_t row = (size_t)info.n_vocab;
        out = malloc((size_t)n_ids * row * sizeof *out);
        for (int i = 0; i < n_ids; i++)
            memcpy(out + (size_t)i * row, nt_logits(ctx, i), row * sizeof *out);
    }
    CHECK_MSG(out != NULL, "%s: %s", dir, err.message);
    nt_context_free(ctx);
    nt_model_free(m);
    return out;
}

/* ---- truncated and corrupt files ----------------------------------------- */

static void test_truncated(void) {
    size_t data_start = 8 + orig_header_len;
    const size_t cuts[] = {0,
                           4,
                           8,
                           8 + orig_header_len / 2,
                           data_start,
                           data_start + (orig_st_len - data_start) / 2,
                           orig_st_len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char label[64];
        path_buf dir;
        snprintf(label, sizeof label, "truncated-%zu", cuts[i]);
        config_only_dir(dir, label, NULL);
        put_patched_st(dir, cuts[i], 0, "", 0);
        refusal want = {NT_ERR_FORMAT, ST, {NULL}};
        if (cuts[i] >= data_start)
            want.needles[0] = first_tensor_past(cuts[i] - data_start);
        expect_refused(label, dir, &want);
    }
}

static void test_corrupt_header_bytes(void) {
    path_buf dir;
    const refusal bad_length = {NT_ERR_FORMAT, ST, {"header length"}};
    const refusal bad_json = {NT_ERR_FORMAT, ST, {"JSON"}};
    const unsigned char absurd[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    config_only_dir(dir, "absurd-header-length", NULL);
    put_patched_st(dir, orig_st_len, 0, absurd, 8);
    expect_refused("absurd header length", dir, &bad_length);

    config_only_dir(dir, "header-first-brace", NULL);
    put_patched_st(dir, orig_st_len, 8, "x", 1);
    expect_refused("header's first '{' replaced", dir, &bad_json);

    /* the '"' nearest the middle of the header */
    size_t mid = 8 + orig_header_len / 2;
    while (orig_st[mid] != '"')
        mid++;
    config_only_dir(dir, "header-middle-quote", NULL);
    put_patched_st(dir, orig_st_len, mid, "x", 1);
    expect_refused("a '\"' in the header replaced", dir, &bad_json);

    /* the header ends 8 bytes later, inside the data */
    unsigned char longer[8];
    for (int i = 0; i < 8; i++)
        longer[i] = (unsigned char)((uint64_t)(orig_header_len + 8) >> (8 * i));
    config_only_dir(dir, "header-length-8-more", NULL);
    put_patched_st(dir, orig_st_len, 0, longer, 8);
    expect_refused("header length 8 bytes too long", dir, &bad_json);

    char *deep = malloc(100001);
    memset(deep, '[', 100000);
    deep[100000] = '\0';
    config_only_dir(dir, "header-deeply-nested", NULL);
    put_st_with_header(dir, deep);
    free(deep);
    expect_refused("header nested 100000 deep", dir, &bad_json);

    config_only_dir(dir, "header-not-object", NULL);
    put_st_with_header(dir, "[1, 2]");
    const refusal not_object = {NT_ERR_FORMAT, ST, {"array"}};
    expect_refused("header is an array", dir, &not_object);
}

/* Edits of the header text; the length field is rewritten to match. The
 * fixture's header is compact JSON in HF's order, so these fragments are
 * exact (replace_once fails the test if one is not found). */
#define LM_HEAD_DTYPE "\"lm_head.weight\":{\"dtype\":"
#define LM_HEAD_OFFSETS "[11544576,13641728]"
#define NORM_WEIGHT_SHAPE "\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":"
#define NORM_BIAS "\"model.norm.bias\":"
#define NORM_BIAS_ENTRY \
    NORM_BIAS "{\"dtype\":\"BF16\",\"shape\":[512],\"data_offsets\":[11543552,11544576]}"

static const struct header_case {
    const char *label, *find, *replace;
    refusal want;
} header_cases[] = {
    {"dtype I16 (same size)", LM_HEAD_DTYPE "\"BF16\"", LM_HEAD_DTYPE "\"I16\"",
     {NT_ERR_UNSUPPORTED, ST, {"lm_head.weight", "I16"}}},
    {"dtype F64 (wrong size)", LM_HEAD_DTYPE "\"BF16\"", LM_HEAD_DTYPE "\"F64\"",
     {NT_ERR_FORMAT, ST, {"lm_head.weight", "F64"}}},
    {"dtype unknown", LM_HEAD_DTYPE "\"BF16\"", LM_HEAD_DTYPE "\"Q9\"",
     {NT_ERR_FORMAT, ST, {"lm_head.weight", "Q9"}}},
    {"dtype not a string", LM_HEAD_DTYPE "\"BF16\"", LM_HEAD_DTYPE "16",
     {NT_ERR_FORMAT, ST, {"lm_head.weight", "dtype"}}},
    {"tensor renamed away", "\"model.layers.1.mlp.up_proj.weight\"",
     "\"model.layers.1.mlp.up_proj.weighX\"",
     {NT_ERR_FORMAT, ST, {"model.layers.1.mlp.up_proj.weight", "missing"}}},
    {"tensor named twice", NORM_BIAS, "\"model.norm.weight\":",
     {NT_ERR_FORMAT, ST, {"model.norm.weight", "twice"}}},
    {"tensors overlap", "[11543552,11544576]", "[11542528,11543552]",
     {NT_ERR_FORMAT, ST, {"model.norm.bias", "model.norm.weight", "overlap"}}},
    {"overlap behind an empty tensor", NORM_BIAS_ENTRY,
     "\"model.norm.empty\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":"
     "[11542600,11542600]}," NORM_BIAS "{\"dtype\":\"BF16\",\"shape\":[512],"
     "\"data_offsets\":[11542700,11543724]}",
     {NT_ERR_FORMAT, ST, {"model.norm.bias", "model.norm.weight", "overlap"}}},
    {"entry not an object", NORM_BIAS_ENTRY, NORM_BIAS "[]",
     {NT_ERR_FORMAT, ST, {"model.norm.bias", "object"}}},
    {"negative dimension", NORM_WEIGHT_SHAPE "[512]", NORM_WEIGHT_SHAPE "[-512]",
     {NT_ERR_FORMAT, ST, {"model.norm.weight", "shape"}}},
    {"too many dimensions", NORM_WEIGHT_SHAPE "[512]",
     NORM_WEIGHT_SHAPE "[1,1,1,1,1,1,1,1,512]",
     {NT_ERR_FORMAT, ST, {"model.norm.weight", "dimensions"}}},
    {"misshaped vector", NORM_WEIGHT_SHAPE "[512]", NORM_WEIGHT_SHAPE "[2,256]",
     {NT_ERR_FORMAT, ST, {"model.norm.weight", "shape [2, 256]"}}},
    {"shape overflows", LM_HEAD_DTYPE "\"BF16\",\"shape\":[2048,512]",
     LM_HEAD_DTYPE "\"BF16\",\"shape\":[4294967296,4294967296,4294967296]",
     {NT_ERR_FORMAT, ST, {"lm_head.weight", "overflow"}}},
    {"data_offsets past the end", LM_HEAD_OFFSETS, "[11544576,13641729]",
     {NT_ERR_FORMAT, ST, {"lm_head.weight", "data_offsets"}}},
    {"data_offsets reversed", LM_HEAD_OFFSETS, "[13641728,11544576]",
     {NT_ERR_FORMAT, ST, {"lm_head.weight", "data_offsets"}}},
    {"data_offsets beyond int64", LM_HEAD_OFFSETS, "[11544576,99999999999999999999]",
     {NT_ERR_FORMAT, ST, {"lm_head.weight", "data_offsets"}}},
};

static void test_header_surgery(void) {
    char *header = strndup((const char *)orig_st + 8, orig_header_len);
    for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
        const struct header_case *c = &header_cases[i];
        path_buf dir;
        numbered_dir(dir, "header", i, NULL, 0);
        char *edited = replace_once(header, c->find, c->replace);
        put_st_with_header(dir, edited);
        free(edited);
        expect_refused(c->label, dir, &c->want);
    }
    free(header);
}

/* ---- config.json --------------------------------------------------------- */

static const struct config_case {
    const char *label;
    edit edits[MAX_EDITS];
    refusal want;
} config_cases[] = {
    {"other architecture", {{"architectures", "[\"LlamaForCausalLM\"]"}},
     {NT_ERR_UNSUPPORTED, "config.json", {"architectures", "LlamaForCausalLM"}}},
    {"other model_type", {{"architectures", NULL}, {"model_type", "\"llama\""}},
     {NT_ERR_UNSUPPORTED, "config.json", {"model_type", "llama"}}},
    {"no architecture at all", {{"architectures", NULL}, {"model_type", NULL}},
     {NT_ERR_FORMAT, "config.json", {"architectures"}}},
    {"other activation", {{"hidden_act", "\"silu\""}},
     {NT_ERR_UNSUPPORTED, "config.json", {"hidden_act", "silu"}}},
    {"rope scaling", {{"rope_scaling", "{\"type\":\"linear\",\"factor\":2.0}"}},
     {NT_ERR_UNSUPPORTED, "config.json", {"rope_scaling", "linear"}}},
    {"quantized", {{"quantization_config", "{\"quant_method\":\"gptq\"}"}},
     {NT_ERR_UNSUPPORTED, "config.json", {"quantization_config"}}},
    {"hidden_size missing", {{"hidden_size", NULL}},
     {NT_ERR_FORMAT, "config.json", {"hidden_size", "missing"}}},
    {"hidden_size a string", {{"hidden_size", "\"512\""}},
     {NT_ERR_FORMAT, "config.json", {"hidden_size"}}},
    {"hidden_size 1e300", {{"hidden_size", "1e300"}},
     {NT_ERR_FORMAT, "config.json", {"hidden_size"}}},
    {"hidden_size 512.5", {{"hidden_size", "512.5"}},
     {NT_ERR_FORMAT, "config.json", {"hidden_size"}}},
    {"norm_eps 1e300", {{"norm_eps", "1e300"}},
     {NT_ERR_FORMAT, "config.json", {"norm_eps"}}},
    {"rope_theta 1e999", {{"rope_theta", "1e999"}},
     {NT_ERR_FORMAT, "config.json", {"rope_theta"}}},
    /* the first bad field is named; the second must still be read safely */
    {"head_dim 0, partial_rotary_factor 1e300",
     {{"head_dim", "0"}, {"partial_rotary_factor", "1e300"}},
     {NT_ERR_FORMAT, "config.json", {"head_dim"}}},
    {"num_key_value_heads 3", {{"num_key_value_heads", "3"}},
     {NT_ERR_FORMAT, "config.json", {"num_key_value_heads"}}},
    {"num_hidden_layers 0", {{"num_hidden_layers", "0"}},
     {NT_ERR_FORMAT, "config.json", {"num_hidden_layers"}}},
    {"partial_rotary_factor 0", {{"partial_rotary_factor", "0"}},
     {NT_ERR_FORMAT, "config.json", {"partial_rotary_factor"}}},
    {"rope_percent 1.5", {{"partial_rotary_factor", NULL}, {"rope_percent", "1.5"}},
     {NT_ERR_FORMAT, "config.json", {"rope_percent"}}},
    {"kv_channels 0", {{"head_dim", NULL}, {"kv_channels", "0"}},
     {NT_ERR_FORMAT, "config.json", {"kv_channels"}}},
    {"eos_token_id outside the vocabulary", {{"eos_token_id", "[4096]"}},
     {NT_ERR_FORMAT, "config.json", {"eos_token_id"}}},
    {"intermediate_size 1024", {{"intermediate_size", "1024"}},
     {NT_ERR_FORMAT, ST,
      {"model.layers.0.mlp.up_proj.weight", "shape", "1024"}}},
    {"vocab_size 4096", {{"vocab_size", "4096"}},
     {NT_ERR_FORMAT, ST, {"model.embed_tokens.weight", "shape"}}},
    /* Within every bound config.c sets, but ~18 GB of norms and biases: the
     * tensors must be checked before anything that size is allocated. */
    {"giant dimensions",
     {{"hidden_size", "65536"}, {"num_hidden_layers", "1024"},
      {"num_attention_heads", "1024"}, {"num_key_value_heads", "1024"},
      {"head_dim", "1024"}, {"intermediate_size", "1048576"},
      {"attention_bias", "true"}, {"mlp_bias", "true"}},
     {NT_ERR_FORMAT, ST, {"model.embed_tokens.weight", "shape"}}},
    {"attention_bias true", {{"attention_bias", "true"}},
     {NT_ERR_FORMAT, ST, {"model.layers.0.self_attn.q_proj.bias", "missing"}}},
};

static void test_config_refused(void) {
    for (size_t i = 0; i < sizeof config_cases / sizeof config_cases[0]; i++) {
        const struct config_case *c = &config_cases[i];
        path_buf dir;
        numbered_dir(dir, "config", i, c->edits, 1);
        expect_refused(c->label, dir, &c->want);
    }

    path_buf dir;
    config_only_dir(dir, "config-not-json", "{\n  \"hidden_size\": 512,\n  oops\n}\n");
    put_file(dir, ST, orig_st, orig_st_len);
    const refusal not_json = {NT_ERR_FORMAT, "config.json", {"JSON", "line 3"}};
    expect_refused("config not JSON", dir, &not_json);

    case_dir(dir, "config-directory");
    put_file(dir, ST, orig_st, orig_st_len);
    path_buf sub;
    join(sub, dir, "config.json");
    mkdir(sub, 0777);
    const refusal config_dir = {NT_ERR_IO, "config.json", {NULL}};
    expect_refused("config.json a directory", dir, &config_dir);
    rmdir(sub);

    case_dir(dir, "config-absent");
    put_file(dir, ST, orig_st, orig_st_len);
    const refusal absent = {NT_ERR_IO, "config.json", {NULL}};
    expect_refused("no config.json", dir, &absent);

    case_dir(dir, "weights-absent");
    put_file(dir, "config.json", orig_config, orig_config_len);
    const refusal no_weights = {NT_ERR_IO, NULL, {ST}};
    expect_refused("no weight file", dir, &no_weights);

    join(dir, scratch_dir, "no-such-directory");
    const refusal no_dir = {NT_ERR_IO, NULL, {NULL}};
    expect_refused("missing directory", dir, &no_dir);
}

/* Configs that must load; same_logits says whether they describe the
 * fixture's model or a different one. */
static const struct config_variant {
    const char *label;
    edit edits[MAX_EDITS];
    int same_logits;
} config_variants[] = {
    {"kv_channels and rope_percent aliases",
     {{"head_dim", NULL}, {"kv_channels", "128"},
      {"partial_rotary_factor", NULL}, {"rope_percent", "0.5"}},
     1},
    {"rope_scaling default", {{"rope_scaling", "{\"rope_type\":\"default\"}"}}, 1},
    {"rope_scaling null", {{"rope_scaling", "null"}}, 1},
    {"partial_rotary_factor 0.25", {{"partial_rotary_factor", "0.25"}}, 0},
    {"rope_percent 0.25", {{"partial_rotary_factor", NULL}, {"rope_percent", "0.25"}}, 0},
};

static void test_config_variants(int n_vocab) {
    static const int32_t ids[] = {2, 100, 7};
    const int n = 3, n_floats = n * n_vocab;
    float *base = dir_logits(fixture_dir, 1, ids, n, "bf16");
    for (size_t i = 0; base && i < sizeof config_variants / sizeof config_variants[0];
         i++) {
        const struct config_variant *v = &config_variants[i];
        path_buf dir;
        numbered_dir(dir, "variant", i, v->edits, 1);
        float *got = dir_logits(dir, 1, ids, n, "bf16");
        if (!got)
            continue;
        double d = max_abs_diff(base, got, n_floats);
        if (v->same_logits)
            CHECK_MSG(d < SAME_MODEL_TOLERANCE, "%s: max |diff| %.3g from the fixture",
                      v->label, d);
        else
            CHECK_MSG(d > OTHER_MODEL_MIN_DIFF, "%s: logits equal the fixture's (max |diff| %.3g)",
                      v->label, d);
        free(got);
    }
    free(base);
}

/* ---- re-encoded and sharded copies --------------------------------------- */

typedef struct encoding {
    nt_dtype dtype; /* every tensor stored as this */
    int via_f16;    /* round every value to f16 first */
    int n_shards;   /* 1: model.safetensors; more: an index and shards */
} encoding;

/* The tensor's values in `enc` (malloc'd, *bytes long). */
static void *encode_tensor(const nt_st_tensor *t, encoding enc, uint64_t *bytes) {
    uint64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= (uint64_t)t->shape[d];
    float *f = malloc(n * sizeof *f);
    nt_dtype_traits_of((nt_dtype)t->dtype)->to_f32[NT_ISA_GENERIC](t->data, f,
                                                                   (int64_t)n);
    *bytes = nt_dtype_bytes(enc.dtype, n);
    if (enc.dtype == NT_DTYPE_F32) {
        for (uint64_t i = 0; enc.via_f16 && i < n; i++)
            f[i] = nt_f16_to_f32(nt_f32_to_f16(f[i]));
        return f;
    }
    uint16_t *h = malloc(n * sizeof *h);
    for (uint64_t i = 0; i < n; i++)
        h[i] = enc.dtype == NT_DTYPE_F16 ? nt_f32_to_f16(f[i]) : nt_f32_to_bf16(f[i]);
    free(f);
    return h;
}

static void shard_name(char *out, size_t size, int shard, int n_shards) {
    if (n_shards == 1)
        snprintf(out, size, "%s", ST);
    else
        snprintf(out, size, "model-%05d-of-%05d.safetensors", shard + 1, n_shards);
}

/* Writes shard `shard` of the fixture's tensors, re-encoded, into dir. */
static void write_shard(const char *dir, encoding enc, int shard) {
    int n = orig_tensors.n_tensors;
    nt_st_tensor_spec *specs = calloc((size_t)n, sizeof *specs);
    const nt_st_tensor **mine = calloc((size_t)n, sizeof *mine);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const nt_st_tensor *t = &orig_tensors.tensors[i];
        if (i * enc.n_shards / n != shard)
            continue;
        mine[k] = t;
        specs[k] = (nt_st_tensor_spec){t->name, enc.dtype, t->n_dims, {0}};
        memcpy(specs[k].shape, t->shape, sizeof t->shape);
        k++;
    }
    char name[64];
    path_buf path;
    shard_name(name, sizeof name, shard, enc.n_shards);
    join(path, dir, name);
    nt_error err;
    nt_st_writer *w = nt_st_writer_open(path, specs, k, &err);
    CHECK_MSG(w != NULL, "%s", err.message);
    for (int i = 0; w && i < k; i++) {
        uint64_t bytes;
        void *data = encode_tensor(mine[i], enc, &bytes);
        CHECK_MSG(nt_st_writer_write(w, data, bytes, &err) == NT_OK, "%s", err.message);
        free(data);
    }
    if (w)
        CHECK_MSG(nt_st_writer_close(w, &err) == NT_OK, "%s", err.message);
    free(mine);
    free(specs);
}

/* The fixture's config and tensors, encoded as `enc`, in a fresh dir. */
static void write_encoded(path_buf dir, const char *name, encoding enc) {
    config_only_dir(dir, name, NULL);
    for (int s = 0; s < enc.n_shards; s++)
        write_shard(dir, enc, s);
    if (enc.n_shards == 1)
        return;
    char *index = NULL, shard[64];
    size_t len = 0;
    FILE *out = open_memstream(&index, &len);
    fprintf(out, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (int i = 0; i < orig_tensors.n_tensors; i++) {
        shard_name(shard, sizeof shard, i * enc.n_shards / orig_tensors.n_tensors,
                   enc.n_shards);
        fprintf(out, "%s\n  \"%s\": \"%s\"", i ? "," : "", orig_tensors.tensors[i].name,
                shard);
    }
    fprintf(out, "\n}}\n");
    fclose(out);
    put_file(dir, "model.safetensors.index.json", index, len);
    free(index);
}

static void expect_reference(const char *dir, int use_mmap, const fixture_case *c,
                             const char *weight_type) {
    float *got = dir_logits(dir, use_mmap, c->ids, c->n_ids, weight_type);
    for (int i = 0; got && i < c->n_ids; i++) {
        size_t at = (size_t)i * (size_t)c->n_vocab;
        double d = max_abs_diff(got + at, c->logits + at, c->n_vocab);
        CHECK_MSG(d < REFERENCE_TOLERANCE, "%s: %s position %d: max |diff| %.3g", dir,
                  c->name, i, d);
    }
    free(got);
}

static void test_sharded(const fixture_case *chat) {
    path_buf dir;
    write_encoded(dir, "sharded", (encoding){NT_DTYPE_BF16, 0, 2});
    expect_reference(dir, 1, chat, "bf16");
    expect_reference(dir, 0, chat, "bf16");

    /* The same shards under an index that forgets the second one. */
    char *index = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&index, &len);
    fprintf(out, "{\"weight_map\": {\"%s\": \"model-00001-of-00002.safetensors\"}}",
            orig_tensors.tensors[0].name);
    fclose(out);
    put_file(dir, "model.safetensors.index.json", index, len);
    free(index);
    const refusal partial = {NT_ERR_FORMAT, "model-00001-of-00002.safetensors",
                             {"missing tensor"}};
    expect_refused("index lists one of two shards", dir, &partial);
}

static const struct index_case {
    const char *label, *index;
    refusal want;
} index_cases[] = {
    {"index names a missing shard",
     "{\"weight_map\": {\"lm_head.weight\": \"model-00009-of-00009.safetensors\"}}",
     {NT_ERR_IO, "model-00009-of-00009.safetensors", {NULL}}},
    {"shard outside the directory",
     "{\"weight_map\": {\"lm_head.weight\": \"../model.safetensors\"}}",
     {NT_ERR_FORMAT, "model.safetensors.index.json", {"../model.safetensors"}}},
    {"shard named \"..\"", "{\"weight_map\": {\"lm_head.weight\": \"..\"}}",
     {NT_ERR_FORMAT, "model.safetensors.index.json", {"\"..\""}}},
    {"shard name not a string", "{\"weight_map\": {\"lm_head.weight\": 1}}",
     {NT_ERR_FORMAT, "model.safetensors.index.json", {"lm_head.weight"}}},
    {"no weight_map", "{\"metadata\": {}}",
     {NT_ERR_FORMAT, "model.safetensors.index.json", {"weight_map"}}},
    {"empty weight_map", "{\"weight_map\": {}}",
     {NT_ERR_FORMAT, "model.safetensors.index.json", {"weight_map"}}},
    {"index not JSON", "{\"weight_map\": {",
     {NT_ERR_FORMAT, "model.safetensors.index.json", {"JSON"}}},
};

static void test_bad_index(void) {
    for (size_t i = 0; i < sizeof index_cases / sizeof index_cases[0]; i++) {
        const struct index_case *c = &index_cases[i];
        path_buf dir;
        numbered_dir(dir, "index", i, NULL, 0);
        put_file(dir, "model.safetensors.index.json", c->index, strlen(c->index));
        expect_refused(c->label, dir, &c->want);
    }
}

static void test_dtypes(const fixture_case *chat) {
    path_buf f32, f16, f32_of_f16;
    write_encoded(f32, "dtype-f32", (encoding){NT_DTYPE_F32, 0, 1});
    expect_reference(f32, 1, chat, "f32");

    write_encoded(f16, "dtype-f16", (encoding){NT_DTYPE_F16, 1, 1});
    write_encoded(f32_of_f16, "dtype-f32-of-f16", (encoding){NT_DTYPE_F32, 1, 1});
    float *a = dir_logits(f16, 1, chat->ids, chat->n_ids, "f16");
    float *b = dir_logits(f32_of_f16, 0, chat->ids, chat->n_ids, "f32");
    if (a && b) {
        double d = max_abs_diff(a, b, chat->n_ids * chat->n_vocab);
        CHECK_MSG(d < F16_TOLERANCE, "F16 against F32 of the same values: max |diff| %.3g",
                  d);
    }
    free(a);
    free(b);
}

/* ---- fuzz ---------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A loaded model must also run: one token through it. */
static void expect_runs(nt_model *m, const char *what) {
    nt_error err;
    nt_context_params cp = nt_context_default_params();
    cp.n_ctx = 4;
    cp.n_threads = 1;
    nt_context *ctx = nt_context_new(m, &cp, &err);
    int32_t tok = 2;
    CHECK_MSG(ctx && nt_eval(ctx, &tok, 1, NT_LOGITS_LAST, &err) == NT_OK, "%s: %s",
              what, err.message);
    nt_context_free(ctx);
}

/*
 * Flips 1-3 random bytes among the first `span` of dir/name (whose intact
 * content is `orig`), `rounds` times, loading after each flip alternately
 * with and without mmap. A load that fails must say so naming `must_name`.
 */
static void fuzz_file(const char *dir, const char *name, const unsigned char *orig,
                      size_t span, int rounds, uint64_t seed, const char *must_name) {
    path_buf path;
    join(path, dir, name);
    int fd = open(path, O_RDWR);
    CHECK_MSG(fd >= 0, "%s: %s", path, strerror(errno));
    if (fd < 0)
        return;
    uint64_t state = seed;
    int loaded = 0;
    for (int round = 0; round < rounds; round++) {
        size_t at[3];
        int n = 1 + (int)(splitmix64(&state) % 3);
        char what[200];
        int w = snprintf(what, sizeof what, "fuzz %s seed %llu round %d, bytes", name,
                         (unsigned long long)seed, round);
        for (int i = 0; i < n; i++) {
            at[i] = (size_t)(splitmix64(&state) % span);
            unsigned char b = orig[at[i]] ^ (unsigned char)(1 + splitmix64(&state) % 255);
            CHECK(pwrite(fd, &b, 1, (off_t)at[i]) == 1);
            w += snprintf(what + w, sizeof what - (size_t)w, " %zu", at[i]);
        }
        nt_error err;
        nt_model *m = load(dir, round % 2, &err);
        if (m) {
            loaded++;
            expect_runs(m, what);
            nt_model_free(m);
        } else {
            CHECK_MSG(err.status != NT_OK && strstr(err.message, must_name) != NULL,
                      "%s: status %s, message \"%s\" does not name %s", what,
                      nt_status_string(err.status), err.message, must_name);
        }
        for (int i = n - 1; i >= 0; i--)
            CHECK(pwrite(fd, &orig[at[i]], 1, (off_t)at[i]) == 1);
    }
    close(fd);
    printf("fuzz %s: %d of %d corrupted copies still loaded\n", name, loaded, rounds);
}

static void test_fuzz(uint64_t seed) {
    path_buf dir, st_path;
    printf("fuzz seed %llu\n", (unsigned long long)seed);
    config_only_dir(dir, "fuzz", NULL);
    put_file(dir, ST, orig_st, orig_st_len);
    join(st_path, dir, ST);
    fuzz_file(dir, ST, orig_st, 8 + orig_header_len,
              FUZZ_HEADER_ROUNDS, seed, st_path);
    fuzz_file(dir, "config.json", (const unsigned char *)orig_config, orig_config_len,
              FUZZ_CONFIG_ROUNDS, seed + 1, dir);
}

/* ---- main ---------------------------------------------------------------- */

static int read_fixture(void) {
    path_buf path;
    join(path, fixture_dir, "config.json");
    orig_config = fixture_read_file(path, &orig_config_len);
    join(path, fixture_dir, ST);
    orig_st = (unsigned char *)fixture_read_file(path, &orig_st_len);
    if (!orig_config || !orig_st || orig_st_len < 8)
        return 0;
    for (int i = 7; i >= 0; i--)
        orig_header_len = (orig_header_len << 8) | orig_st[i];
    nt_error err;
    if (nt_st_open(&orig_tensors, path, &err) != NT_OK ||
        nt_st_load(&orig_tensors, 1, NULL, NULL, &err) != NT_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    return orig_header_len < orig_st_len - 8;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_model_errors FIXTURE_DIR SCRATCH_DIR [FUZZ_SEED]\n");
        return 2;
    }
    fixture_dir = argv[1];
    scratch_dir = argv[2];
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : DEFAULT_FUZZ_SEED;
    if (mkdir(scratch_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", scratch_dir, strerror(errno));
        return 2;
    }
    CHECK(read_fixture());
    fixture_case cases[8];
    int n_cases = fixture_load_cases(fixture_dir, cases, 8);
    const fixture_case *chat = NULL;
    for (int i = 0; i < n_cases; i++)
        if (strcmp(cases[i].name, "chat") == 0)
            chat = &cases[i];
    CHECK(chat != NULL);
    if (!orig_st || !orig_config || !chat)
        return check_summary();

    test_truncated();
    test_corrupt_header_bytes();
    test_header_surgery();
    test_config_refused();
    test_config_variants(chat->n_vocab);
    test_bad_index();
    test_sharded(chat);
    test_dtypes(chat);
    test_fuzz(seed);

    nt_st_close(&orig_tensors);
    fixture_free_cases(cases, n_cases);
    free(orig_config);
    free(orig_st);
    return check_summary();
}
