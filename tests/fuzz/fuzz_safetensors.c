/*
 * fuzz_safetensors.c - libFuzzer target: the safetensors header parser
 * (nt_st_open) on the bytes as a whole file, then, when the header is
 * valid, the loader (read, then mapped) and the tensor lookups.
 *
 * The parser reads from a file only, so the bytes are handed over as one
 * (see fuzz_as_file).
 */
#include "fuzz_common.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_as_file(data, size);
    if (!path)
        return 0;
    for (int use_mmap = 0; use_mmap <= 1; use_mmap++) {
        nt_st_file f;
        nt_error err;
        if (nt_st_open(&f, path, &err) == NT_OK &&
            nt_st_load(&f, use_mmap, NULL, NULL, &err) == NT_OK)
            for (int t = 0; t < f.n_tensors; t++) {
                const nt_st_tensor *x = nt_st_find(&f, f.tensors[t].name);
                if (x != &f.tensors[t] || (x->size && !x->data))
                    abort();
                /* touch the first and last byte: they must be in the file */
                if (x->size) {
                    volatile unsigned char sink = ((const unsigned char *)x->data)[0];
                    sink = ((const unsigned char *)x->data)[x->size - 1];
                    (void)sink;
                }
            }
        nt_st_close(&f);
    }
    return 0;
}
