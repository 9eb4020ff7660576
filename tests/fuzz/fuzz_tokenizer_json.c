/*
 * fuzz_tokenizer_json.c - libFuzzer target: the tokenizer.json loader
 * (nt_hf_tokenizer_load: the streaming JSON parse, the BPE vocabulary and
 * merges reader, the normalizer / pre-tokenizer / decoder pipelines, the
 * added tokens) and, when the bytes load, encoding and decoding.
 *
 * The loader reads from a file only, so the bytes are handed over as one
 * (see fuzz_as_file).
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_as_file(data, size);
    if (!path)
        return 0;
    nt_tokenizer *tok = fuzz_tokenizer_new();
    nt_error err;
    fuzz_tokenizer_finish(tok, nt_hf_tokenizer_load(tok, path, &err), data, size);
    return 0;
}
