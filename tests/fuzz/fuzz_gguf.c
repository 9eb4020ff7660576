/*
 * fuzz_gguf.c - libFuzzer target: the GGUF header parser (nt_gguf_parse)
 * on the bytes as a whole file; when they parse, the metadata lookups, the
 * tensor table and, if the file carries a vocabulary, the tokenizer made
 * from it (gguf_vocab.c).
 */
#include "fuzz_common.h"
#include "model/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nt_st_file f;
    nt_gguf_meta meta;
    nt_error err;
    if (nt_gguf_parse(data, size, size, "fuzz.gguf", &f, &meta, &err) != NT_OK)
        return 0;
    int64_t i;
    double d;
    nt_gguf_get_int(&meta, "general.alignment", &i);
    nt_gguf_get_float(&meta, "nemotron.rope.freq_base", &d);
    nt_gguf_get_str(&meta, "general.architecture");
    for (int k = 0; k < meta.n_kv; k++)
        if (nt_gguf_find(&meta, meta.kvs[k].key) == NULL)
            abort(); /* every key read must be found again */
    for (int t = 0; t < f.n_tensors; t++)
        if (nt_st_find(&f, f.tensors[t].name) != &f.tensors[t])
            abort();
    int has_vocab = nt_gguf_find(&meta, "tokenizer.ggml.tokens") != NULL;
    nt_st_close(&f);
    nt_gguf_meta_free(&meta);

    const char *path = has_vocab ? fuzz_as_file(data, size) : NULL;
    if (path) {
        nt_tokenizer *tok = fuzz_tokenizer_new();
        fuzz_tokenizer_finish(tok, nt_gguf_tokenizer_load(tok, path, &err), data, size);
    }
    return 0;
}
