/*
 * gguf.c - see gguf.h.
 *
 * Limits beyond what the bytes allow: at most MAX_KV keys and MAX_TENSORS
 * tensors, keys and names of at most 64 KiB, 1 to 4 dimensions of at least
 * one element each, arrays not nested, a power-of-two alignment of at most
 * 1 MiB. Keys and tensor names must be unique (llama.cpp refuses duplicates
 * too). Tensors of types we do not compute with are accepted by the reader
 * (their sizes are known, so the layout is still checked); the loader
 * refuses them by name if the model needs them.
 */
#define _GNU_SOURCE
#include "model/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KV 65536
#define MAX_TENSORS 65536
#define MAX_NAME 65536
#define MAX_DIMS 4
#define DEFAULT_ALIGNMENT 32

/* ---- GGML's tensor types ------------------------------------------------- */

typedef struct ggml_type_info {
    const char *name;
    int block_elems;
    int block_bytes;
} ggml_type_info;

/* Every type GGML has defined, so that the layout of a file holding types
 * we do not compute with can still be checked (and named in messages). */
static const ggml_type_info ggml_types[] = {
    [0] = {"F32", 1, 4},         [1] = {"F16", 1, 2},
    [2] = {"Q4_0", 32, 18},      [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},      [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},      [9] = {"Q8_1", 32, 36},
    [10] = {"Q2_K", 256, 84},    [11] = {"Q3_K", 256, 110},
    [12] = {"Q4_K", 256, 144},   [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},   [15] = {"Q8_K", 256, 292},
    [16] = {"IQ2_XXS", 256, 66}, [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},   [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82},   [23] = {"IQ4_XS", 256, 136},
    [24] = {"I8", 1, 1},         [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},        [27] = {"I64", 1, 8},
    [28] = {"F64", 1, 8},        [29] = {"IQ1_M", 256, 56},
    [30] = {"BF16", 1, 2},       [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},   [39] = {"MXFP4", 32, 17},
};
#define N_GGML_TYPES ((int)(sizeof ggml_types / sizeof ggml_types[0]))

static const ggml_type_info *ggml_type_of(uint32_t type) {
    if (type >= (uint32_t)N_GGML_TYPES || !ggml_types[type].name)
        return NULL;
    return &ggml_types[type];
}

const char *nt_gguf_type_name(int ggml_type) {
    const ggml_type_info *t = ggml_type_of((uint32_t)ggml_type);
    return t ? t->name : NULL;
}

/* Bytes of each scalar value type; 0 for STRING and ARRAY. */
static const int value_bytes[NT_GGUF_N_TYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* ---- reading ------------------------------------------------------------- */

typedef struct cursor {
    const unsigned char *p;
    size_t len;
    size_t off;
    const char *path;
    nt_error *err;
    nt_status status;
    char where[96];   /* "key tokenizer.ggml.tokens", for messages */
} cursor;

static int fail_at(cursor *c, const char *what) {
    if (c->status == NT_OK)
        c->status = nt_fail(c->err, NT_ERR_FORMAT, "%s: %s%s%s at byte %zu", c->path,
                            c->where, c->where[0] ? ": " : "", what, c->off);
    return 0;
}

static int need(cursor *c, uint64_t n) {
    if (c->status != NT_OK)
        return 0;
    if (n > c->len - c->off)
        return fail_at(c, "the file ends inside the header (truncated?)");
    return 1;
}

static uint64_t get_le(cursor *c, int bytes) {
    if (!need(c, (uint64_t)bytes))
        return 0;
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | c->p[c->off + (size_t)i];
    c->off += (size_t)bytes;
    return v;
}

static uint32_t get_u32(cursor *c) { return (uint32_t)get_le(c, 4); }
static uint64_t get_u64(cursor *c) { return get_le(c, 8); }

/* A string's length, checked against the bytes left and `max`; the bytes
 * are at c->p + *start. */
static int get_string_span(cursor *c, uint64_t max, size_t *start, uint64_t *n) {
    uint64_t len = get_u64(c);
    if (c->status != NT_OK)
        return 0;
    if (len > max)
        return fail_at(c, "string length is absurd");
    if (!need(c, len))
        return 0;
    *start = c->off;
    *n = len;
    c->off += (size_t)len;
    return 1;
}

static char *get_string(cursor *c, uint64_t max, uint64_t *n_out) {
    size_t start;
    uint64_t n;
    if (!get_string_span(c, max, &start, &n))
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        c->status = nt_fail(c->err, NT_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    memcpy(s, c->p + start, (size_t)n);
    s[n] = '\0';
    if (n_out)
        *n_out = n;
    return s;
}

static void read_scalar(cursor *c, int type, nt_gguf_kv *kv) {
    uint64_t raw = get_le(c, value_bytes[type]);
    switch (type) {
    case NT_GGUF_I8: kv->num.i = (int8_t)raw; break;
    case NT_GGUF_I16: kv->num.i = (int16_t)raw; break;
    case NT_GGUF_I32: kv->num.i = (int32_t)raw; break;
    case NT_GGUF_I64: kv->num.i = (int64_t)raw; break;
    case NT_GGUF_F32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, sizeof f);
        kv->num.f = f;
        break;
    }
    case NT_GGUF_F64: memcpy(&kv->num.f, &raw, sizeof kv->num.f); break;
    case NT_GGUF_BOOL:
        if (raw > 1)
            fail_at(c, "a bool is neither 0 nor 1");
        kv->num.u = raw;
        break;
    default: kv->num.u = raw; break;
    }
}

/* Arrays of strings: all texts go into one block, sized by a first pass. */
static void read_string_array(cursor *c, nt_gguf_kv *kv, nt_buf *texts) {
    size_t first = c->off;
    uint64_t total = 0;
    for (uint64_t i = 0; i < kv->arr_n && c->status == NT_OK; i++) {
        size_t start;
        uint64_t n;
        if (get_string_span(c, MAX_NAME * 16, &start, &n))
            total += n + 1;
    }
    if (c->status != NT_OK)
        return;
    kv->arr_str = malloc((size_t)kv->arr_n * sizeof *kv->arr_str + 1);
    kv->arr_str_len = malloc((size_t)kv->arr_n * sizeof *kv->arr_str_len + 1);
    size_t base = texts->n;
    if (!kv->arr_str || !kv->arr_str_len || !nt_buf_reserve(texts, (size_t)total)) {
        c->status = nt_fail(c->err, NT_ERR_NO_MEMORY, "out of memory");
        return;
    }
    /* Offsets now; pointers once the block stops moving (see fix_strings). */
    c->off = first;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        size_t start;
        uint64_t n;
        get_string_span(c, MAX_NAME * 16, &start, &n);
        kv->arr_str[i] = (char *)(uintptr_t)(texts->n - base);
        kv->arr_str_len[i] = n;
        memcpy(texts->s + texts->n, c->p + start, (size_t)n);
        texts->n += (size_t)n;
        texts->s[texts->n++] = '\0';
    }
    kv->arr = (void *)(uintptr_t)base; /* this array's first text */
}

static void read_value(cursor *c, nt_gguf_kv *kv, nt_buf *texts) {
    int type = (int)get_u32(c);
    if (c->status != NT_OK)
        return;
    if (type < 0 || type >= NT_GGUF_N_TYPES) {
        fail_at(c, "unknown value type");
        return;
    }
    kv->type = type;
    if (type == NT_GGUF_STRING) {
        kv->str = get_string(c, c->len, &kv->str_len);
        return;
    }
    if (type != NT_GGUF_ARRAY) {
        read_scalar(c, type, kv);
        return;
    }
    int at = (int)get_u32(c);
    uint64_t n = get_u64(c);
    if (c->status != NT_OK)
        return;
    if (at < 0 || at >= NT_GGUF_N_TYPES || at == NT_GGUF_ARRAY) {
        fail_at(c, at == NT_GGUF_ARRAY ? "nested arrays are not supported"
                                       : "unknown array element type");
        return;
    }
    kv->arr_type = at;
    kv->arr_n = n;
    if (at == NT_GGUF_STRING) {
        /* each string takes at least its 8-byte length */
        if (n > (c->len - c->off) / 8) {
            fail_at(c, "array count is larger than the file");
            return;
        }
        read_string_array(c, kv, texts);
        return;
    }
    uint64_t bytes;
    if (!nt_mul_u64(n, (uint64_t)value_bytes[at], &bytes) || !need(c, bytes)) {
        fail_at(c, "array count is larger than the file");
        return;
    }
    kv->arr = malloc((size_t)bytes + 1);
    if (!kv->arr) {
        c->status = nt_fail(c->err, NT_ERR_NO_MEMORY, "out of memory");
        return;
    }
    memcpy(kv->arr, c->p + c->off, (size_t)bytes);
    if (at == NT_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((unsigned char *)kv->arr)[i] > 1) {
                fail_at(c, "a bool in an array is neither 0 nor 1");
                return;
            }
    c->off += (size_t)bytes;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const nt_st_tensor *)a)->name, ((const nt_st_tensor *)b)->name);
}

static int cmp_kv_key(const void *a, const void *b) {
    return strcmp(((const nt_gguf_kv *)a)->key, ((const nt_gguf_kv *)b)->key);
}

void nt_gguf_meta_free(nt_gguf_meta *meta) {
    if (!meta)
        return;
    for (int i = 0; i < meta->n_kv; i++) {
        nt_gguf_kv *kv = &meta->kvs[i];
        free(kv->key);
        free(kv->str);
        if (kv->arr_type != NT_GGUF_STRING)
            free(kv->arr);
        free(kv->arr_str);
        free(kv->arr_str_len);
    }
    free(meta->kvs);
    free(meta->arr_text);
    memset(meta, 0, sizeof *meta);
}

static void read_kvs(cursor *c, nt_gguf_meta *meta, uint64_t n_kv) {
    nt_buf texts = {0};
    meta->kvs = calloc((size_t)n_kv + 1, sizeof *meta->kvs);
    if (!meta->kvs) {
        c->status = nt_fail(c->err, NT_ERR_NO_MEMORY, "out of memory");
        return;
    }
    for (uint64_t i = 0; i < n_kv && c->status == NT_OK; i++) {
        nt_gguf_kv *kv = &meta->kvs[i];
        snprintf(c->where, sizeof c->where, "key %llu", (unsigned long long)i);
        kv->key = get_string(c, MAX_NAME, NULL);
        meta->n_kv = (int)i + 1;
        if (!kv->key)
            break;
        snprintf(c->where, sizeof c->where, "key %.64s", kv->key);
        kv->arr_type = -1;
        read_value(c, kv, &texts);
    }
    /* The string arrays' texts stopped moving: offsets become pointers. */
    meta->arr_text = texts.s;
    for (int i = 0; i < meta->n_kv; i++) {
        nt_gguf_kv *kv = &meta->kvs[i];
        if (kv->arr_type != NT_GGUF_STRING || !kv->arr_str)
            continue;
        uintptr_t base = (uintptr_t)kv->arr;
        kv->arr = NULL;
        if (c->status != NT_OK) {
            kv->arr_n = 0;
            continue;
        }
        for (uint64_t j = 0; j < kv->arr_n; j++)
            kv->arr_str[j] = texts.s + base + (uintptr_t)kv->arr_str[j];
    }
    c->where[0] = '\0';
    if (c->status != NT_OK)
        return;
    qsort(meta->kvs, (size_t)meta->n_kv, sizeof *meta->kvs, cmp_kv_key);
    for (int i = 1; i < meta->n_kv; i++)
        if (strcmp(meta->kvs[i - 1].key, meta->kvs[i].key) == 0) {
            c->status = nt_fail(c->err, NT_ERR_FORMAT, "%s: key %.64s appears twice",
                                c->path, meta->kvs[i].key);
            return;
        }
}

static void read_tensor_info(cursor *c, nt_st_tensor *t, uint64_t index) {
    snprintf(c->where, sizeof c->where, "tensor %llu", (unsigned long long)index);
    t->name = get_string(c, MAX_NAME, NULL);
    if (!t->name)
        return;
    snprintf(c->where, sizeof c->where, "tensor %.64s", t->name);
    uint32_t n_dims = get_u32(c);
    if (c->status == NT_OK && (n_dims < 1 || n_dims > MAX_DIMS)) {
        fail_at(c, "number of dimensions is not 1 to 4");
        return;
    }
    int64_t ne[MAX_DIMS];
    uint64_t count = 1;
    for (uint32_t d = 0; d < n_dims && c->status == NT_OK; d++) {
        uint64_t v = get_u64(c);
        if (c->status != NT_OK)
            return;
        if (v == 0 || v > (UINT64_C(1) << 40) || !nt_mul_u64(count, v, &count) ||
            count > (UINT64_C(1) << 48)) {
            fail_at(c, "a dimension is zero or absurd");
            return;
        }
        ne[d] = (int64_t)v;
    }
    uint32_t type = get_u32(c);
    t->offset = get_u64(c);
    if (c->status != NT_OK)
        return;
    const ggml_type_info *ti = ggml_type_of(type);
    if (!ti) {
        char what[64];
        snprintf(what, sizeof what, "unknown tensor type %u", type);
        fail_at(c, what);
        return;
    }
    if (ne[0] % ti->block_elems != 0) {
        char what[128];
        snprintf(what, sizeof what, "row length %lld is not a multiple of %s's block of %d",
                 (long long)ne[0], ti->name, ti->block_elems);
        fail_at(c, what);
        return;
    }
    t->n_dims = (int)n_dims;
    for (uint32_t d = 0; d < n_dims; d++)
        t->shape[n_dims - 1 - d] = ne[d];
    t->size = count / (uint64_t)ti->block_elems * (uint64_t)ti->block_bytes;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", ti->name);
    t->dtype = nt_dtype_from_gguf((int)type);
}

nt_status nt_gguf_parse(const unsigned char *data, size_t len, uint64_t file_size,
                        const char *path, nt_st_file *f, nt_gguf_meta *meta,
                        nt_error *err) {
    memset(f, 0, sizeof *f);
    memset(meta, 0, sizeof *meta);
    cursor c = {data, len, 0, path ? path : "model.gguf", err, NT_OK, ""};
    if (len > file_size)
        c.len = len = (size_t)file_size;
    if (len < 4 || memcmp(data, "GGUF", 4) != 0)
        return nt_fail(err, NT_ERR_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)",
                       c.path);
    c.off = 4;
    uint32_t version = get_u32(&c);
    if (c.status != NT_OK)
        return c.status;
    if (version == 1)
        return nt_fail(err, NT_ERR_UNSUPPORTED,
                       "%s: GGUF version 1 is not supported (only 2 and 3); "
                       "convert the file again with a current llama.cpp", c.path);
    if (version != 2 && version != 3) {
        if ((version & 0xffff) == 0 && version != 0)
            return nt_fail(err, NT_ERR_UNSUPPORTED,
                           "%s: big-endian GGUF files are not supported", c.path);
        return nt_fail(err, NT_ERR_UNSUPPORTED,
                       "%s: GGUF version %u is not supported (only 2 and 3)", c.path,
                       version);
    }
    meta->version = version;
    uint64_t n_tensors = get_u64(&c), n_kv = get_u64(&c);
    if (c.status != NT_OK)
        return c.status;
    if (n_tensors > MAX_TENSORS || n_tensors > (len - c.off) / 24)
        return nt_fail(err, NT_ERR_FORMAT, "%s: tensor count %llu is absurd", c.path,
                       (unsigned long long)n_tensors);
    if (n_kv > MAX_KV || n_kv > (len - c.off) / 12)
        return nt_fail(err, NT_ERR_FORMAT, "%s: key count %llu is absurd", c.path,
                       (unsigned long long)n_kv);

    read_kvs(&c, meta, n_kv);
    meta->alignment = DEFAULT_ALIGNMENT;
    const nt_gguf_kv *al = c.status == NT_OK ? nt_gguf_find(meta, "general.alignment")
                                             : NULL;
    if (al) {
        if (al->type != NT_GGUF_U32 || al->num.u == 0 || al->num.u > (1u << 20) ||
            (al->num.u & (al->num.u - 1)) != 0)
            c.status = nt_fail(err, NT_ERR_FORMAT,
                               "%s: general.alignment is not a power of two of at "
                               "most 1 MiB stored as u32", c.path);
        else
            meta->alignment = al->num.u;
    }

    if (c.status == NT_OK) {
        f->tensors = calloc((size_t)n_tensors + 1, sizeof *f->tensors);
        if (!f->tensors)
            c.status = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    }
    for (uint64_t i = 0; i < n_tensors && c.status == NT_OK; i++) {
        read_tensor_info(&c, &f->tensors[i], i);
        f->n_tensors = (int)i + 1;
    }
    c.where[0] = '\0';
    if (c.status != NT_OK)
        goto fail;

    uint64_t data_start = ((uint64_t)c.off + meta->alignment - 1) / meta->alignment *
                          meta->alignment;
    if (data_start > file_size) {
        c.status = nt_fail(err, NT_ERR_FORMAT,
                           "%s: the file ends before its data section (truncated?)",
                           c.path);
        goto fail;
    }
    uint64_t data_size = file_size - data_start;
    for (int i = 0; i < f->n_tensors; i++) {
        nt_st_tensor *t = &f->tensors[i];
        if (t->offset % meta->alignment != 0) {
            c.status = nt_fail(err, NT_ERR_FORMAT,
                               "%s: tensor %.64s: offset %llu is not a multiple of the "
                               "alignment (%llu)",
                               c.path, t->name, (unsigned long long)t->offset,
                               (unsigned long long)meta->alignment);
            goto fail;
        }
        if (t->offset > data_size || t->size > data_size - t->offset) {
            c.status = nt_fail(err, NT_ERR_FORMAT,
                               "%s: tensor %.64s: bytes %llu..%llu lie past the end of "
                               "the file (truncated?)",
                               c.path, t->name, (unsigned long long)t->offset,
                               (unsigned long long)(t->offset + t->size));
            goto fail;
        }
    }
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_tensor_name);
    for (int i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            c.status = nt_fail(err, NT_ERR_FORMAT, "%s: tensor %.64s appears twice",
                               c.path, f->tensors[i].name);
            goto fail;
        }
    f->path = strdup(c.path);
    if (!f->path) {
        c.status = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    f->file_size = file_size;
    f->data_start = data_start;
    return NT_OK;

fail:
    nt_st_close(f);
    nt_gguf_meta_free(meta);
    return c.status;
}

int nt_gguf_is_gguf(const char *path) {
    unsigned char magic[4];
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    size_t n = fread(magic, 1, 4, fp);
    fclose(fp);
    return n == 4 && memcmp(magic, "GGUF", 4) == 0;
}

nt_status nt_gguf_open(const char *path, nt_st_file *f, nt_gguf_meta *meta,
                       nt_error *err) {
    memset(f, 0, sizeof *f);
    memset(meta, 0, sizeof *meta);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nt_fail(err, NT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return nt_fail(err, NT_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return nt_fail(err, NT_ERR_FORMAT, "%s: the file is empty", path);
    }
    /* The header is parsed in place from a mapping; only what it refers to
     * is copied out, and the mapping goes away before any data is read. */
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return nt_fail(err, NT_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    nt_status s = nt_gguf_parse(map, (size_t)st.st_size, (uint64_t)st.st_size, path,
                                f, meta, err);
    munmap(map, (size_t)st.st_size);
    return s;
}

static int cmp_key_with_kv(const void *key, const void *kv) {
    return strcmp(key, ((const nt_gguf_kv *)kv)->key);
}

const nt_gguf_kv *nt_gguf_find(const nt_gguf_meta *meta, const char *key) {
    if (meta->n_kv == 0)
        return NULL;
    return bsearch(key, meta->kvs, (size_t)meta->n_kv, sizeof *meta->kvs,
                   cmp_key_with_kv);
}

int nt_gguf_get_int(const nt_gguf_meta *meta, const char *key, int64_t *out) {
    const nt_gguf_kv *kv = nt_gguf_find(meta, key);
    if (!kv)
        return 0;
    switch (kv->type) {
    case NT_GGUF_U8: case NT_GGUF_U16: case NT_GGUF_U32: case NT_GGUF_BOOL:
        *out = (int64_t)kv->num.u;
        return 1;
    case NT_GGUF_U64:
        if (kv->num.u > INT64_MAX)
            return 0;
        *out = (int64_t)kv->num.u;
        return 1;
    case NT_GGUF_I8: case NT_GGUF_I16: case NT_GGUF_I32: case NT_GGUF_I64:
        *out = kv->num.i;
        return 1;
    }
    return 0;
}

int nt_gguf_get_float(const nt_gguf_meta *meta, const char *key, double *out) {
    const nt_gguf_kv *kv = nt_gguf_find(meta, key);
    if (kv && (kv->type == NT_GGUF_F32 || kv->type == NT_GGUF_F64)) {
        *out = kv->num.f;
        return 1;
    }
    int64_t i;
    if (nt_gguf_get_int(meta, key, &i)) {
        *out = (double)i;
        return 1;
    }
    return 0;
}

const char *nt_gguf_get_str(const nt_gguf_meta *meta, const char *key) {
    const nt_gguf_kv *kv = nt_gguf_find(meta, key);
    return kv && kv->type == NT_GGUF_STRING ? kv->str : NULL;
}

/* ---- writing ------------------------------------------------------------- */

typedef struct writer_kv {
    char *key;
    nt_writer value;   /* type and value, serialized */
} writer_kv;

typedef struct writer_tensor {
    char *name;
    nt_dtype dtype;
    int n_dims;
    int64_t shape[MAX_DIMS];
    uint64_t size;
} writer_tensor;

struct nt_gguf_writer {
    writer_kv *kvs;
    int n_kv, cap_kv;
    writer_tensor *tensors;
    int n_tensors, cap_tensors;
    int failed;            /* out of memory, or a tensor shape we cannot write */
    char failure[160];
    FILE *fp;
    char *path;
    int current;           /* the tensor being written */
    uint64_t current_done; /* its bytes written so far */
};

nt_gguf_writer *nt_gguf_writer_new(void) { return calloc(1, sizeof(nt_gguf_writer)); }

static void put_le(nt_writer *b, uint64_t v, int bytes) {
    char tmp[8];
    for (int i = 0; i < bytes; i++)
        tmp[i] = (char)(v >> (8 * i));
    nt_write(b, tmp, (size_t)bytes);
}

static void put_str(nt_writer *b, const char *s, uint64_t n) {
    put_le(b, n, 8);
    nt_write(b, s, (size_t)n);
}

/* The value slot for `key`, emptied: replaces an earlier value of that key. */
static nt_writer *kv_slot(nt_gguf_writer *w, const char *key) {
    for (int i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) {
            w->kvs[i].value.buf.n = 0;
            return &w->kvs[i].value;
        }
    if (w->n_kv == w->cap_kv) {
        int cap = w->cap_kv ? w->cap_kv * 2 : 32;
        writer_kv *k = realloc(w->kvs, (size_t)cap * sizeof *k);
        if (!k) {
            w->failed = 1;
            return NULL;
        }
        w->kvs = k;
        w->cap_kv = cap;
    }
    writer_kv *kv = &w->kvs[w->n_kv];
    memset(kv, 0, sizeof *kv);
    kv->key = strdup(key);
    if (!kv->key) {
        w->failed = 1;
        return NULL;
    }
    w->n_kv++;
    return &kv->value;
}

void nt_gguf_set_str(nt_gguf_writer *w, const char *key, const char *value) {
    nt_writer *b = kv_slot(w, key);
    if (!b)
        return;
    put_le(b, NT_GGUF_STRING, 4);
    put_str(b, value, strlen(value));
}

void nt_gguf_set_u32(nt_gguf_writer *w, const char *key, uint32_t value) {
    nt_writer *b = kv_slot(w, key);
    if (!b)
        return;
    put_le(b, NT_GGUF_U32, 4);
    put_le(b, value, 4);
}

void nt_gguf_set_f32(nt_gguf_writer *w, const char *key, float value) {
    nt_writer *b = kv_slot(w, key);
    if (!b)
        return;
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_le(b, NT_GGUF_F32, 4);
    put_le(b, bits, 4);
}

void nt_gguf_set_bool(nt_gguf_writer *w, const char *key, int value) {
    nt_writer *b = kv_slot(w, key);
    if (!b)
        return;
    put_le(b, NT_GGUF_BOOL, 4);
    put_le(b, value ? 1 : 0, 1);
}

void nt_gguf_set_arr_str(nt_gguf_writer *w, const char *key,
                         const char *const *strs, const size_t *lens, uint64_t n) {
    nt_writer *b = kv_slot(w, key);
    if (!b)
        return;
    put_le(b, NT_GGUF_ARRAY, 4);
    put_le(b, NT_GGUF_STRING, 4);
    put_le(b, n, 8);
    for (uint64_t i = 0; i < n; i++)
        put_str(b, strs[i], lens ? lens[i] : strlen(strs[i]));
}

void nt_gguf_set_arr(nt_gguf_writer *w, const char *key, int type,
                     const void *data, uint64_t n) {
    nt_writer *b = kv_slot(w, key);
    if (!b)
        return;
    put_le(b, NT_GGUF_ARRAY, 4);
    put_le(b, (uint64_t)type, 4);
    put_le(b, n, 8);
    nt_write(b, data, (size_t)(n * (uint64_t)value_bytes[type]));
}

void nt_gguf_set_kv(nt_gguf_writer *w, const nt_gguf_kv *kv) {
    if (kv->type == NT_GGUF_STRING) {
        nt_writer *b = kv_slot(w, kv->key);
        if (!b)
            return;
        put_le(b, NT_GGUF_STRING, 4);
        put_str(b, kv->str, kv->str_len);
    } else if (kv->type == NT_GGUF_ARRAY && kv->arr_type == NT_GGUF_STRING) {
        nt_writer *b = kv_slot(w, kv->key);
        if (!b)
            return;
        put_le(b, NT_GGUF_ARRAY, 4);
        put_le(b, NT_GGUF_STRING, 4);
        put_le(b, kv->arr_n, 8);
        for (uint64_t i = 0; i < kv->arr_n; i++)
            put_str(b, kv->arr_str[i], kv->arr_str_len[i]);
    } else if (kv->type == NT_GGUF_ARRAY) {
        nt_gguf_set_arr(w, kv->key, kv->arr_type, kv->arr, kv->arr_n);
    } else {
        nt_writer *b = kv_slot(w, kv->key);
        if (!b)
            return;
        put_le(b, (uint64_t)kv->type, 4);
        uint64_t raw = kv->num.u;
        if (kv->type == NT_GGUF_F32) {
            float f = (float)kv->num.f;
            uint32_t bits;
            memcpy(&bits, &f, sizeof bits);
            raw = bits;
        } else if (kv->type == NT_GGUF_F64) {
            memcpy(&raw, &kv->num.f, sizeof raw);
        }
        put_le(b, raw, value_bytes[kv->type]);
    }
}

void nt_gguf_add_tensor(nt_gguf_writer *w, const char *name, nt_dtype dtype,
                        int n_dims, const int64_t *shape) {
    const nt_dtype_traits *tr = nt_dtype_traits_of(dtype);
    if (n_dims < 1 || n_dims > MAX_DIMS || shape[n_dims - 1] % tr->block_elems != 0) {
        if (!w->failed)
            snprintf(w->failure, sizeof w->failure,
                     "tensor %.64s: its rows cannot be stored as %s", name, tr->name);
        w->failed = 1;
        return;
    }
    if (w->n_tensors == w->cap_tensors) {
        int cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        writer_tensor *t = realloc(w->tensors, (size_t)cap * sizeof *t);
        if (!t) {
            w->failed = 1;
            return;
        }
        w->tensors = t;
        w->cap_tensors = cap;
    }
    writer_tensor *t = &w->tensors[w->n_tensors];
    t->name = strdup(name);
    if (!t->name) {
        w->failed = 1;
        return;
    }
    t->dtype = dtype;
    t->n_dims = n_dims;
    uint64_t count = 1;
    for (int d = 0; d < n_dims; d++) {
        t->shape[d] = shape[d];
        count *= (uint64_t)shape[d];
    }
    t->size = nt_dtype_bytes(dtype, count);
    w->n_tensors++;
}

static uint64_t align_up(uint64_t v) {
    return (v + DEFAULT_ALIGNMENT - 1) / DEFAULT_ALIGNMENT * DEFAULT_ALIGNMENT;
}

static nt_status write_padding(nt_gguf_writer *w, uint64_t pos, nt_error *err) {
    static const char zeros[DEFAULT_ALIGNMENT];
    uint64_t pad = align_up(pos) - pos;
    if (pad && fwrite(zeros, 1, (size_t)pad, w->fp) != pad)
        return nt_fail(err, NT_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    return NT_OK;
}

nt_status nt_gguf_writer_begin(nt_gguf_writer *w, const char *path, nt_error *err) {
    if (w->failed)
        return nt_fail(err, w->failure[0] ? NT_ERR_ARGUMENT : NT_ERR_NO_MEMORY, "%s: %s",
                       path, w->failure[0] ? w->failure : "out of memory");
    nt_writer h = {0};
    nt_write(&h, "GGUF", 4);
    put_le(&h, 3, 4);
    put_le(&h, (uint64_t)w->n_tensors, 8);
    put_le(&h, (uint64_t)w->n_kv, 8);
    for (int i = 0; i < w->n_kv; i++) {
        put_str(&h, w->kvs[i].key, strlen(w->kvs[i].key));
        if (w->kvs[i].value.failed)
            h.failed = 1;
        nt_write(&h, w->kvs[i].value.buf.s, w->kvs[i].value.buf.n);
    }
    uint64_t offset = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        put_str(&h, t->name, strlen(t->name));
        put_le(&h, (uint64_t)t->n_dims, 4);
        for (int d = t->n_dims - 1; d >= 0; d--)
            put_le(&h, (uint64_t)t->shape[d], 8);
        put_le(&h, (uint64_t)nt_dtype_traits_of(t->dtype)->gguf_type, 4);
        put_le(&h, offset, 8);
        offset = align_up(offset + t->size);
    }
    if (h.failed) {
        nt_buf_free(&h.buf);
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    }
    w->path = strdup(path);
    w->fp = w->path ? fopen(path, "wb") : NULL;
    if (!w->fp) {
        nt_status s = nt_fail(err, NT_ERR_IO, "%s: cannot create: %s", path,
                              strerror(errno));
        nt_buf_free(&h.buf);
        return s;
    }
    nt_status s = NT_OK;
    if (fwrite(h.buf.s, 1, h.buf.n, w->fp) != h.buf.n)
        s = nt_fail(err, NT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (s == NT_OK)
        s = write_padding(w, h.buf.n, err);
    nt_buf_free(&h.buf);
    w->current = 0;
    w->current_done = 0;
    return s;
}

nt_status nt_gguf_writer_write(nt_gguf_writer *w, const void *data, uint64_t bytes,
                               nt_error *err) {
    const unsigned char *p = data;
    while (bytes > 0) {
        if (w->current >= w->n_tensors)
            return nt_fail(err, NT_ERR_ARGUMENT, "%s: more data than the tensors hold",
                           w->path);
        const writer_tensor *t = &w->tensors[w->current];
        uint64_t take = t->size - w->current_done;
        if (take > bytes)
            take = bytes;
        if (fwrite(p, 1, (size_t)take, w->fp) != take)
            return nt_fail(err, NT_ERR_IO, "%s: write failed: %s", w->path,
                           strerror(errno));
        p += take;
        bytes -= take;
        w->current_done += take;
        if (w->current_done == t->size) {
            nt_status s = write_padding(w, t->size, err);
            if (s != NT_OK)
                return s;
            w->current++;
            w->current_done = 0;
        }
    }
    return NT_OK;
}

static void writer_free(nt_gguf_writer *w) {
    for (int i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        nt_buf_free(&w->kvs[i].value.buf);
    }
    for (int i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w->path);
    free(w);
}

nt_status nt_gguf_writer_finish(nt_gguf_writer *w, nt_error *err) {
    nt_status s = NT_OK;
    if (w->current != w->n_tensors)
        s = nt_fail(err, NT_ERR_ARGUMENT, "%s: tensor %s was not written in full",
                    w->path, w->tensors[w->current].name);
    if (fclose(w->fp) != 0 && s == NT_OK)
        s = nt_fail(err, NT_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    w->fp = NULL;
    if (s != NT_OK)
        remove(w->path);
    writer_free(w);
    return s;
}

void nt_gguf_writer_abort(nt_gguf_writer *w) {
    if (!w)
        return;
    if (w->fp) {
        fclose(w->fp);
        remove(w->path);
    }
    writer_free(w);
}
