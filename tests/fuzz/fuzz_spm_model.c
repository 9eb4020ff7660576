/*
 * fuzz_spm_model.c - libFuzzer target: the SentencePiece ModelProto parser
 * (nt_spm_model_parse) and, when the bytes parse, the tokenizer built from
 * them encoding a fixed string and the bytes themselves.
 */
#include "fuzz_common.h"
#include "tokenizer/spm_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nt_spm_model m;
    nt_error err;
    nt_status s = nt_spm_model_parse(data, size, "fuzz.model", &m, &err);
    nt_spm_model_free(&m);
    if (s != NT_OK)
        return 0;
    nt_tokenizer *tok = fuzz_tokenizer_new();
    fuzz_tokenizer_finish(tok, nt_spm_tokenizer_parse(tok, data, size, "fuzz.model", &err),
                          data, size);
    return 0;
}
