/*
 * gguf.h - reading and writing GGUF, llama.cpp's model file format.
 *
 * A GGUF file (versions 2 and 3; both are little-endian with 64-bit
 * counts) is:
 *
 *   "GGUF", u32 version, u64 n_tensors, u64 n_kv
 *   n_kv key/value pairs: string key, u32 type, value
 *       (a value is a scalar, a string - u64 length + bytes - or an array:
 *        u32 element type, u64 count, elements)
 *   n_tensors tensor infos: string name, u32 n_dims, u64 ne[n_dims]
 *       (innermost dimension first), u32 ggml type, u64 offset
 *   padding to `general.alignment` (default 32), then the data section;
 *   each tensor's offset is relative to it and a multiple of the alignment.
 *
 * Like safetensors, a GGUF file is a header followed by one data section,
 * so a parsed file is an nt_st_file (safetensors.h): the same tensor table
 * (shapes outermost first, as the engine indexes them) and the same loader
 * (nt_st_load maps or reads the data section). What GGUF adds, the
 * metadata, is kept in an nt_gguf_meta.
 *
 * The header is untrusted input. Every count, length, type and dimension
 * is checked against the bytes that are there before it is used: a
 * truncated or corrupt file fails with NT_ERR_FORMAT and a message naming
 * the file, the key or tensor, and the byte offset; it never crashes.
 */
#ifndef NT_MODEL_GGUF_H
#define NT_MODEL_GGUF_H

#include <stdint.h>

#include "model/safetensors.h"

enum nt_gguf_type {
    NT_GGUF_U8 = 0,
    NT_GGUF_I8 = 1,
    NT_GGUF_U16 = 2,
    NT_GGUF_I16 = 3,
    NT_GGUF_U32 = 4,
    NT_GGUF_I32 = 5,
    NT_GGUF_F32 = 6,
    NT_GGUF_BOOL = 7,
    NT_GGUF_STRING = 8,
    NT_GGUF_ARRAY = 9,
    NT_GGUF_U64 = 10,
    NT_GGUF_I64 = 11,
    NT_GGUF_F64 = 12,
    NT_GGUF_N_TYPES
};

/* One metadata value. Strings are NUL-terminated copies (len excludes the
 * NUL; they may contain NULs of their own). */
typedef struct nt_gguf_kv {
    char *key;
    int type;            /* enum nt_gguf_type */
    union {
        uint64_t u;      /* unsigned integers and bool */
        int64_t i;       /* signed integers */
        double f;        /* F32, F64 */
    } num;
    char *str;           /* STRING */
    uint64_t str_len;
    int arr_type;        /* ARRAY: element type (not ARRAY: nesting is refused) */
    uint64_t arr_n;      /* ARRAY: element count */
    void *arr;           /* ARRAY of numbers: arr_n elements as in the file */
    char **arr_str;      /* ARRAY of strings: arr_n strings */
    uint64_t *arr_str_len;
} nt_gguf_kv;

typedef struct nt_gguf_meta {
    uint32_t version;
    uint64_t alignment;
    nt_gguf_kv *kvs;
    int n_kv;
    char *arr_text;      /* one block for the texts of all string arrays */
} nt_gguf_meta;

/* Does the file start with the GGUF magic? (0 if it cannot be read) */
int nt_gguf_is_gguf(const char *path);

/*
 * Parses the header of the file at `path` into `f` (tensor table, no data
 * yet: load it with nt_st_load) and `meta`. On failure both are left
 * zeroed (and safe to close/free).
 */
nt_status nt_gguf_open(const char *path, nt_st_file *f, nt_gguf_meta *meta,
                       nt_error *err);

/*
 * The same on `len` bytes in memory that hold (at least) the header of a
 * file of `file_size` bytes: the fuzzer's entry point. `path` names the
 * data in messages.
 */
nt_status nt_gguf_parse(const unsigned char *data, size_t len, uint64_t file_size,
                        const char *path, nt_st_file *f, nt_gguf_meta *meta,
                        nt_error *err);

void nt_gguf_meta_free(nt_gguf_meta *meta);

const nt_gguf_kv *nt_gguf_find(const nt_gguf_meta *meta, const char *key);
/* A numeric scalar of any integer type (bool included) as int64; 0 if the
 * key is absent or not an integer, 1 if found. */
int nt_gguf_get_int(const nt_gguf_meta *meta, const char *key, int64_t *out);
int nt_gguf_get_float(const nt_gguf_meta *meta, const char *key, double *out);
/* The string value, or NULL. */
const char *nt_gguf_get_str(const nt_gguf_meta *meta, const char *key);

/* The name GGML gives a ggml_type number ("Q4_K"), or NULL if unknown. */
const char *nt_gguf_type_name(int ggml_type);

/* ---- writing ------------------------------------------------------------ */

typedef struct nt_gguf_writer nt_gguf_writer;

/* Collects metadata and tensor infos; nothing is written until begin. */
nt_gguf_writer *nt_gguf_writer_new(void);
void nt_gguf_set_str(nt_gguf_writer *w, const char *key, const char *value);
void nt_gguf_set_u32(nt_gguf_writer *w, const char *key, uint32_t value);
void nt_gguf_set_f32(nt_gguf_writer *w, const char *key, float value);
void nt_gguf_set_bool(nt_gguf_writer *w, const char *key, int value);
void nt_gguf_set_arr_str(nt_gguf_writer *w, const char *key,
                         const char *const *strs, const size_t *lens, uint64_t n);
/* An array of numbers: n elements of `type` (elem_bytes each) as in memory. */
void nt_gguf_set_arr(nt_gguf_writer *w, const char *key, int type,
                     const void *data, uint64_t n);
/* Copies a key/value read from another file. */
void nt_gguf_set_kv(nt_gguf_writer *w, const nt_gguf_kv *kv);
/* shape is outermost first ([rows, cols]), as in nt_st_tensor. */
void nt_gguf_add_tensor(nt_gguf_writer *w, const char *name, nt_dtype dtype,
                        int n_dims, const int64_t *shape);

/* Writes the header; then each tensor's bytes, in the order added. */
nt_status nt_gguf_writer_begin(nt_gguf_writer *w, const char *path, nt_error *err);
nt_status nt_gguf_writer_write(nt_gguf_writer *w, const void *data, uint64_t bytes,
                               nt_error *err);
/* Checks every tensor's bytes were written, closes and frees. */
nt_status nt_gguf_writer_finish(nt_gguf_writer *w, nt_error *err);
/* Frees, deleting a partly written file. */
void nt_gguf_writer_abort(nt_gguf_writer *w);

#endif
