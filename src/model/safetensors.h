/*
 * safetensors.h - reading and writing the safetensors format.
 *
 * A safetensors file is: an 8-byte little-endian header length N, N bytes
 * of JSON mapping each tensor name to {dtype, shape, data_offsets}, then the
 * raw data, which the offsets index. The header is untrusted input: every
 * field is validated before anything is mapped or read, so a corrupt file
 * fails with a message naming the file and the tensor, never a crash.
 */
#ifndef NT_MODEL_SAFETENSORS_H
#define NT_MODEL_SAFETENSORS_H

#include <stdint.h>

#include "internal.h"
#include "types/dtype.h"

#define NT_ST_MAX_DIMS 8

typedef struct nt_st_tensor {
    char *name;
    char dtype_name[16];  /* as written in the file: "BF16" */
    int dtype;            /* the nt_dtype we compute with, or -1 */
    int n_dims;
    int64_t shape[NT_ST_MAX_DIMS];
    uint64_t offset;      /* within the data section */
    uint64_t size;        /* bytes */
    const void *data;     /* set by nt_st_load */
} nt_st_tensor;

typedef struct nt_st_file {
    char *path;
    uint64_t file_size;
    uint64_t data_start;  /* 8 + header length */
    nt_st_tensor *tensors;
    int n_tensors;
    void *map;            /* the whole file, when mapped */
    uint64_t map_size;
    void *buffer;         /* the data section, when read into memory */
} nt_st_file;

/* Reads and validates the header; loads no data. */
nt_status nt_st_open(nt_st_file *f, const char *path, nt_error *err);

/*
 * Maps or reads the data and sets every tensor's data pointer. `progress`
 * is told the bytes done so far (of the data section) as work proceeds.
 */
typedef void (*nt_st_progress_fn)(uint64_t bytes_done, void *user);
nt_status nt_st_load(nt_st_file *f, int use_mmap, nt_st_progress_fn progress,
                     void *user, nt_error *err);

const nt_st_tensor *nt_st_find(const nt_st_file *f, const char *name);
void nt_st_close(nt_st_file *f);

/* "BF16" -> NT_DTYPE_BF16; -1 for names we do not compute with. */
int nt_st_dtype_from_name(const char *name);
const char *nt_st_dtype_name(nt_dtype dtype);

/* ---- writing ------------------------------------------------------------ */

typedef struct nt_st_tensor_spec {
    const char *name;
    nt_dtype dtype;
    int n_dims;
    int64_t shape[NT_ST_MAX_DIMS];
} nt_st_tensor_spec;

typedef struct nt_st_writer nt_st_writer;

/* Writes the header for these tensors; their data must follow in order. */
nt_st_writer *nt_st_writer_open(const char *path, const nt_st_tensor_spec *specs,
                                int n_specs, nt_error *err);
nt_status nt_st_writer_write(nt_st_writer *w, const void *data, uint64_t bytes,
                             nt_error *err);
/* Checks that exactly the promised bytes were written, then closes. */
nt_status nt_st_writer_close(nt_st_writer *w, nt_error *err);
/* Closes and deletes the partial file (after a failure). */
void nt_st_writer_abort(nt_st_writer *w);

#endif
