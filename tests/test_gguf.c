/*
 * test_gguf.c - the GGUF reader on malformed files, the writer's round
 * trip, and GGUF models that must be refused.
 *
 * usage: test_gguf FIXTURE_DIR SCRATCH_DIR
 *
 * Part 1 builds small GGUF headers byte by byte, each with one defect, and
 * checks that nt_gguf_parse refuses it with NT_ERR_FORMAT or
 * NT_ERR_UNSUPPORTED and a message naming the problem; then every
 * truncation of a valid header, and single-byte corruptions of it, must be
 * refused or parsed without a crash (ASan/UBSan watch the build).
 * Part 2 writes a file with nt_gguf_writer and reads it back.
 * Part 3 edits the fixture's q4_0 GGUF (architecture, a missing tensor, a
 * tensor type we do not compute with, a wrong shape) and checks that
 * nt_model_load refuses each by name.
 */
#include <stdint.h>

#include "check.h"
#include "fixture.h"
#include "model/gguf.h"
#include "nemotron.h"

/* ---- a byte builder ------------------------------------------------------ */

typedef struct bytes {
    unsigned char d[1 << 16];
    size_t n;
} bytes;

static void put(bytes *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        b->d[b->n++] = (unsigned char)(v >> (8 * i));
}
static void put_str(bytes *b, const char *s) {
    put(b, strlen(s), 8);
    memcpy(b->d + b->n, s, strlen(s));
    b->n += strlen(s);
}

/* Defects to inject; all zero builds a valid file. */
typedef struct defect {
    uint32_t version;       /* 0: 3 */
    int magic;              /* wrong magic */
    uint64_t n_tensors, n_kv; /* 0: the real counts */
    int value_type;         /* 0: u32 for the first key */
    int bool_value;         /* a bool key with this value */
    int nested_array, huge_array, huge_string;
    int dup_key, dup_tensor;
    uint32_t n_dims;        /* 0: 2 */
    uint64_t dim0;          /* 0: 64 */
    uint64_t dim1;          /* 0: 4 */
    uint32_t ttype;         /* 0: F32 */
    uint64_t offset;        /* 0: 0 */
    int alignment;          /* write general.alignment with this value */
    int alignment_type;     /* and this value type (0: u32) */
} defect;

static size_t build(bytes *b, const defect *df) {
    b->n = 0;
    if (df->magic)
        put(b, 0x46554747u ^ 0x20, 4);
    else
        memcpy(b->d, "GGUF", 4), b->n = 4;
    put(b, df->version ? df->version : 3, 4);
    int n_kv = 3 + (df->alignment != 0) + (df->dup_key != 0);
    int n_t = 2 + (df->dup_tensor != 0);
    put(b, df->n_tensors ? df->n_tensors : (uint64_t)n_t, 8);
    put(b, df->n_kv ? df->n_kv : (uint64_t)n_kv, 8);
    /* key 1: a scalar */
    put_str(b, "general.architecture");
    if (df->value_type) {
        put(b, (uint64_t)df->value_type, 4);
    } else {
        put(b, 8, 4);
        if (df->huge_string)
            put(b, UINT64_C(1) << 60, 8);
        else
            put_str(b, "nemotron");
    }
    /* key 2: a bool */
    put_str(b, "some.flag");
    put(b, 7, 4);
    put(b, (uint64_t)df->bool_value, 1);
    /* key 3: an array of strings */
    put_str(b, "tokenizer.ggml.tokens");
    put(b, 9, 4);
    put(b, df->nested_array ? 9 : 8, 4);
    put(b, df->huge_array ? UINT64_C(1) << 59 : 2, 8);
    put_str(b, "a");
    put_str(b, "bc");
    if (df->alignment) {
        put_str(b, "general.alignment");
        put(b, df->alignment_type ? (uint64_t)df->alignment_type : 4, 4);
        put(b, (uint64_t)df->alignment, 4);
    }
    if (df->dup_key) {
        put_str(b, "some.flag");
        put(b, 7, 4);
        put(b, 0, 1);
    }
    /* tensors: "a" [4 x 64] and "b" [64], f32 */
    for (int t = 0; t < n_t; t++) {
        put_str(b, t == 1 ? "b" : "a");
        uint32_t nd = t == 0 && df->n_dims ? df->n_dims : (t == 0 ? 2 : 1);
        put(b, nd, 4);
        for (uint32_t d = 0; d < nd && d < 5; d++)
            put(b, d == 0 ? (t == 0 && df->dim0 ? df->dim0 : 64)
                          : (t == 0 && df->dim1 ? df->dim1 : 4),
                8);
        put(b, t == 0 ? df->ttype : 0, 4);
        put(b, t == 0 ? df->offset : 1024 + (t == 2 ? 256 : 0), 8);
    }
    while (b->n % 32)
        b->d[b->n++] = 0;
    size_t header = b->n;
    memset(b->d + b->n, 0, 2048);
    b->n += 2048;
    return header;
}

static nt_status parse(const bytes *b, size_t len, char *msg, size_t msg_size) {
    nt_st_file f;
    nt_gguf_meta meta;
    nt_error err;
    nt_status s = nt_gguf_parse(b->d, len, len, "t.gguf", &f, &meta, &err);
    if (msg)
        snprintf(msg, msg_size, "%s", s == NT_OK ? "" : err.message);
    if (s == NT_OK) {
        nt_st_close(&f);
        nt_gguf_meta_free(&meta);
    }
    return s;
}

static void expect_refused(const char *what, const defect *df, const char *words) {
    bytes *b = malloc(sizeof *b);
    build(b, df);
    char msg[1024];
    nt_status s = parse(b, b->n, msg, sizeof msg);
    CHECK_MSG(s == NT_ERR_FORMAT || s == NT_ERR_UNSUPPORTED, "%s: status %d", what, s);
    CHECK_MSG(strstr(msg, words) != NULL, "%s: message \"%s\" lacks \"%s\"", what, msg,
              words);
    free(b);
}

static void malformed_headers(void) {
    bytes *b = malloc(sizeof *b);
    defect ok = {0};
    size_t header = build(b, &ok);
    char msg[1024];
    CHECK_MSG(parse(b, b->n, msg, sizeof msg) == NT_OK, "valid file: %s", msg);

    struct {
        const char *what;
        defect df;
        const char *words;
    } cases[] = {
        {"bad magic", {.magic = 1}, "not a GGUF file"},
        {"version 1", {.version = 1}, "version 1"},
        {"version 4", {.version = 4}, "version 4"},
        {"big-endian", {.version = 0x03000000u}, "big-endian"},
        {"tensor count", {.n_tensors = UINT64_C(1) << 40}, "tensor count"},
        {"key count", {.n_kv = UINT64_C(1) << 40}, "key count"},
        {"more keys than written", {.n_kv = 9}, "key"},
        {"unknown value type", {.value_type = 13}, "unknown value type"},
        {"bool 2", {.bool_value = 2}, "bool"},
        {"nested array", {.nested_array = 1}, "nested arrays"},
        {"huge array", {.huge_array = 1}, "array count"},
        {"huge string", {.huge_string = 1}, "string length"},
        {"duplicate key", {.dup_key = 1}, "appears twice"},
        {"duplicate tensor", {.dup_tensor = 1}, "appears twice"},
        {"0 dims", {.n_dims = 0xffffffffu}, "dimensions"},
        {"5 dims", {.n_dims = 5}, "dimensions"},
        {"dim 0", {.dim0 = 0xffffffffffffffffull}, "dimension"},
        {"dims overflow", {.dim0 = UINT64_C(1) << 40, .dim1 = UINT64_C(1) << 40},
         "dimension"},
        {"unknown type", {.ttype = 77}, "unknown tensor type 77"},
        {"row not whole blocks", {.ttype = 12}, "not a multiple"},
        {"misaligned offset", {.offset = 8}, "alignment"},
        {"offset past end", {.offset = 1u << 20}, "past the end"},
        {"offset overflow", {.offset = 0xffffffffffffffe0ull}, "past the end"},
        {"alignment 3", {.alignment = 3}, "general.alignment"},
        {"alignment 2 MiB", {.alignment = 0x100000 * 2}, "general.alignment"},
        {"alignment as i32", {.alignment = 64, .alignment_type = 5}, "general.alignment"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i].what, &cases[i].df, cases[i].words);

    /* Every truncation inside the header is refused. */
    int refused = 0;
    for (size_t len = 0; len < header; len++)
        refused += parse(b, len, NULL, 0) != NT_OK;
    CHECK_MSG(refused == (int)header, "%d of %zu truncations refused", refused, header);
    /* Every single-byte corruption of the header parses or is refused,
     * without a crash (the sanitizers would report one). */
    int parsed = 0;
    for (size_t i = 0; i < header; i++) {
        for (int v = 0; v < 4; v++) {
            bytes *c = malloc(sizeof *c);
            memcpy(c, b, sizeof *c);
            static const unsigned char values[4] = {0x00, 0xff, 0x80, 0x41};
            c->d[i] = values[v] == b->d[i] ? (unsigned char)~values[v] : values[v];
            parsed += parse(c, c->n, NULL, 0) == NT_OK;
            free(c);
        }
    }
    printf("header corruptions: %zu bytes x 4 values, %d parsed, the rest refused\n",
           header, parsed);
    CHECK(parsed < (int)header * 4);
    free(b);
}

/* ---- the writer ----------------------------------------------------------------- */

static void writer_round_trip(const char *scratch) {
    char path[4096];
    snprintf(path, sizeof path, "%s/written.gguf", scratch);
    nt_gguf_writer *w = nt_gguf_writer_new();
    nt_gguf_set_str(w, "general.architecture", "nemotron");
    nt_gguf_set_u32(w, "x.u32", 7);
    nt_gguf_set_u32(w, "x.u32", 8); /* replaces */
    nt_gguf_set_f32(w, "x.f32", 0.5f);
    nt_gguf_set_bool(w, "x.bool", 1);
    const char *strs[] = {"a", "", "ccc"};
    nt_gguf_set_arr_str(w, "x.strs", strs, NULL, 3);
    int32_t ints[4] = {1, -2, 3, -4};
    nt_gguf_set_arr(w, "x.ints", NT_GGUF_I32, ints, 4);
    float a[3 * 64], bvec[32];
    for (int i = 0; i < 3 * 64; i++)
        a[i] = (float)i * 0.25f;
    for (int i = 0; i < 32; i++)
        bvec[i] = -(float)i;
    int64_t sa[2] = {3, 64}, sb[1] = {32};
    nt_gguf_add_tensor(w, "a", NT_DTYPE_F32, 2, sa);
    nt_gguf_add_tensor(w, "b", NT_DTYPE_F32, 1, sb);
    nt_error err;
    CHECK_MSG(nt_gguf_writer_begin(w, path, &err) == NT_OK, "%s", err.message);
    /* in pieces that do not follow the tensors' boundaries */
    char both[sizeof a + sizeof bvec];
    memcpy(both, a, sizeof a);
    memcpy(both + sizeof a, bvec, sizeof bvec);
    CHECK(nt_gguf_writer_write(w, both, 100, &err) == NT_OK);
    CHECK(nt_gguf_writer_write(w, both + 100, sizeof a - 100 + sizeof bvec / 2, &err) ==
          NT_OK);
    CHECK(nt_gguf_writer_write(w, both + sizeof a + sizeof bvec / 2, sizeof bvec / 2,
                               &err) == NT_OK);
    CHECK_MSG(nt_gguf_writer_finish(w, &err) == NT_OK, "%s", err.message);

    nt_st_file f;
    nt_gguf_meta meta;
    CHECK_MSG(nt_gguf_open(path, &f, &meta, &err) == NT_OK, "%s", err.message);
    CHECK_MSG(nt_st_load(&f, 1, NULL, NULL, &err) == NT_OK, "%s", err.message);
    int64_t v;
    double d;
    CHECK(nt_gguf_get_int(&meta, "x.u32", &v) && v == 8);
    CHECK(nt_gguf_get_float(&meta, "x.f32", &d) && d == 0.5);
    CHECK(nt_gguf_get_int(&meta, "x.bool", &v) && v == 1);
    CHECK(strcmp(nt_gguf_get_str(&meta, "general.architecture"), "nemotron") == 0);
    const nt_gguf_kv *kv = nt_gguf_find(&meta, "x.strs");
    CHECK(kv && kv->arr_n == 3 && strcmp(kv->arr_str[2], "ccc") == 0 &&
          kv->arr_str_len[1] == 0);
    kv = nt_gguf_find(&meta, "x.ints");
    CHECK(kv && kv->arr_n == 4 && memcmp(kv->arr, ints, sizeof ints) == 0);
    const nt_st_tensor *ta = nt_st_find(&f, "a"), *tb = nt_st_find(&f, "b");
    CHECK(ta && ta->n_dims == 2 && ta->shape[0] == 3 && ta->shape[1] == 64);
    CHECK(ta && memcmp(ta->data, a, sizeof a) == 0);
    CHECK(tb && tb->n_dims == 1 && memcmp(tb->data, bvec, sizeof bvec) == 0);
    nt_st_close(&f);
    nt_gguf_meta_free(&meta);

    /* A writer that is told too little data removes its file. */
    w = nt_gguf_writer_new();
    nt_gguf_add_tensor(w, "a", NT_DTYPE_F32, 2, sa);
    CHECK(nt_gguf_writer_begin(w, path, &err) == NT_OK);
    CHECK(nt_gguf_writer_write(w, a, 10, &err) == NT_OK);
    CHECK(nt_gguf_writer_finish(w, &err) != NT_OK);
    FILE *fp = fopen(path, "rb");
    CHECK(fp == NULL);
    if (fp)
        fclose(fp);
}

/* ---- models that must be refused ------------------------------------------------ */

/* Replaces the first occurrence of `from` by `to` (same length) in a copy
 * of the file. */
static int patched_copy(const char *src, const char *dst, const char *from,
                        const char *to, size_t n) {
    size_t len;
    char *data = fixture_read_file(src, &len);
    if (!data)
        return 0;
    int done = 0;
    for (size_t i = 0; i + n <= len && !done; i++)
        if (memcmp(data + i, from, n) == 0) {
            memcpy(data + i, to, n);
            done = 1;
        }
    int ok = done && fixture_write_file(dst, data, len);
    free(data);
    return ok;
}

static void expect_load_error(const char *path, const char *words) {
    nt_error err;
    nt_model *m = nt_model_load(path, NULL, &err);
    CHECK_MSG(m == NULL, "%s loaded", path);
    nt_model_free(m);
    CHECK_MSG(m != NULL || strstr(err.message, words), "%s: \"%s\" lacks \"%s\"", path,
              err.message, words);
}

static void refused_models(const char *fixtures, const char *scratch) {
    char src[4096], dst[4200];
    snprintf(src, sizeof src, "%s/tiny-nemotron/model-q4_0.gguf", fixtures);
    snprintf(dst, sizeof dst, "%s/arch.gguf", scratch);
    /* "nemotron" -> "llamaXYZ" in general.architecture's value */
    CHECK(patched_copy(src, dst, "\x08\0\0\0\0\0\0\0nemotron", "\x08\0\0\0\0\0\0\0llamaxyz",
                       16));
    expect_load_error(dst, "architecture \"llamaxyz\"");
    snprintf(dst, sizeof dst, "%s/missing.gguf", scratch);
    CHECK(patched_copy(src, dst, "blk.1.ffn_up.weight", "blk.1.ffn_XX.weight", 19));
    expect_load_error(dst, "missing tensor blk.1.ffn_up.weight");
    /* ffn_up of layer 1 stored as Q4_K's neighbour IQ4_NL (type 20, same
     * block of 32 and 18 bytes as Q4_0): a type we do not compute with */
    snprintf(dst, sizeof dst, "%s/type.gguf", scratch);
    {
        size_t len;
        char *data = fixture_read_file(src, &len);
        CHECK(data != NULL);
        const char *name = "blk.1.ffn_up.weight";
        for (size_t i = 0; data && i + 19 + 4 + 16 + 4 <= len; i++)
            if (memcmp(data + i, name, 19) == 0) {
                char *type = data + i + 19 + 4 + 16;
                CHECK(memcmp(type, "\x02\0\0\0", 4) == 0);
                memcpy(type, "\x14\0\0\0", 4);
                break;
            }
        CHECK(data && fixture_write_file(dst, data, len));
        free(data);
    }
    expect_load_error(dst, "type IQ4_NL");
    /* a hyper-parameter that disagrees with the tensors */
    snprintf(dst, sizeof dst, "%s/shape.gguf", scratch);
    CHECK(patched_copy(src, dst, "nemotron.feed_forward_length\x04\0\0\0\0\x06",
                       "nemotron.feed_forward_length\x04\0\0\0\0\x07", 34));
    expect_load_error(dst, "shape");
    /* a truncated model file */
    snprintf(dst, sizeof dst, "%s/short.gguf", scratch);
    {
        size_t len;
        char *data = fixture_read_file(src, &len);
        CHECK(data && fixture_write_file(dst, data, len - 100));
        free(data);
    }
    expect_load_error(dst, "past the end");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_gguf FIXTURE_DIR SCRATCH_DIR\n");
        return 2;
    }
    char mk[4200];
    snprintf(mk, sizeof mk, "mkdir -p '%s'", argv[2]);
    CHECK(system(mk) == 0);
    malformed_headers();
    writer_round_trip(argv[2]);
    refused_models(argv[1], argv[2]);
    return check_summary();
}
