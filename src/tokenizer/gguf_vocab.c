/*
 * gguf_vocab.c - the vocabulary inside a GGUF file, as a tokenizer.
 *
 * llama.cpp's converter copies a SentencePiece model into GGUF keys
 * (tokenizer.ggml.model "llama"): the pieces (tokens), their scores and
 * types (token_type, SentencePiece's numbering: 1 normal, 2 unknown,
 * 3 control, 4 user-defined, 5 unused, 6 byte), and the special ids. That
 * is a SentencePiece ModelProto in other clothes, so we dress it back: the
 * keys are written out as a serialized ModelProto and handed to the same
 * parser, validation and encoder as a tokenizer.model file. One set of
 * rules then covers both files.
 *
 * Two things GGUF does not record are set as llama.cpp's own tokenizer
 * behaves: the dummy prefix (tokenizer.ggml.add_space_prefix, default on)
 * and whitespace (never collapsed, remove_extra_whitespaces default off).
 *
 * One repair: llama.cpp's converter writes SentencePiece's user-defined
 * pieces as normal ones (type 1) unless tokenizer_config.json lists them,
 * and Nemotron's prompt format is built on its user-defined <extra_id_N>
 * pieces. As normal pieces they could never be produced from the text
 * "<extra_id_1>" (no merges lead to them) and the model would see the
 * prompt format spelled out letter by letter. So normal pieces spelled
 * <extra_id_N> are read back as user-defined, which is what they are in
 * Nemotron's tokenizer.model.
 */
#include <stdio.h>
#include <string.h>

#include "model/gguf.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer_impl.h"

/* ---- protobuf wire format, the parts we write ----------------------------- */

static void pb_varint(nt_writer *w, uint64_t v) {
    char b[10];
    int n = 0;
    do {
        b[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    nt_write(w, b, (size_t)n);
}

static void pb_tag(nt_writer *w, unsigned field, unsigned wire) {
    pb_varint(w, (uint64_t)field << 3 | wire);
}

static void pb_bytes(nt_writer *w, unsigned field, const char *s, size_t n) {
    pb_tag(w, field, 2);
    pb_varint(w, n);
    nt_write(w, s, n);
}

static void pb_int(nt_writer *w, unsigned field, int64_t v) {
    pb_tag(w, field, 0);
    pb_varint(w, (uint64_t)v); /* negative int32s take 10 bytes, as in protobuf */
}

static void pb_float(nt_writer *w, unsigned field, float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    char b[4] = {(char)bits, (char)(bits >> 8), (char)(bits >> 16), (char)(bits >> 24)};
    pb_tag(w, field, 5);
    nt_write(w, b, 4);
}

static size_t pb_varint_size(uint64_t v) {
    size_t n = 1;
    for (; v > 0x7f; v >>= 7)
        n++;
    return n;
}

/* ---- the parts of a ModelProto (also used by `nemotron synth`) ------------- */

void nt_spm_write_piece(nt_writer *out, const char *text, size_t len, float score,
                        int type) {
    /* tags of fields 1..3 take a byte each, the float four */
    uint64_t n = 1 + pb_varint_size(len) + len + 1 + 4 + 1 + pb_varint_size((uint64_t)type);
    pb_tag(out, 1, 2);
    pb_varint(out, n);
    pb_bytes(out, 1, text, len);
    pb_float(out, 2, score);
    pb_int(out, 3, type);
}

/* Writes sub's bytes as field `field` of out and frees sub. */
static void pb_message(nt_writer *out, unsigned field, nt_writer *sub) {
    if (!sub->failed)
        pb_bytes(out, field, sub->buf.s, sub->buf.n);
    out->failed |= sub->failed;
    nt_buf_free(&sub->buf);
}

void nt_spm_write_specs(nt_writer *out, int byte_fallback, int64_t unk_id,
                        int64_t bos_id, int64_t eos_id, int64_t pad_id,
                        int add_dummy_prefix, int remove_extra_whitespaces) {
    nt_writer spec = {0};
    pb_int(&spec, 3, NT_SPM_MODEL_BPE);
    pb_int(&spec, 35, byte_fallback);
    pb_int(&spec, 40, unk_id);
    pb_int(&spec, 41, bos_id);
    pb_int(&spec, 42, eos_id);
    pb_int(&spec, 43, pad_id);
    pb_message(out, 2, &spec);
    nt_writer norm = {0};
    pb_bytes(&norm, 1, "identity", 8);
    pb_int(&norm, 3, add_dummy_prefix);
    pb_int(&norm, 4, remove_extra_whitespaces);
    pb_int(&norm, 5, 1);
    pb_message(out, 3, &norm);
}

/* ---- from GGUF keys to a ModelProto ---------------------------------------- */

static int is_extra_id(const char *s, uint64_t n) {
    if (n < 11 || memcmp(s, "<extra_id_", 10) != 0 || s[n - 1] != '>')
        return 0;
    for (uint64_t i = 10; i + 1 < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return n > 11;
}

static const nt_gguf_kv *find_array(const nt_gguf_meta *meta, const char *key,
                                    int elem_type, uint64_t n, const char *path,
                                    nt_error *err, nt_status *status) {
    const nt_gguf_kv *kv = nt_gguf_find(meta, key);
    if (!kv || *status != NT_OK)
        return NULL;
    if (kv->type != NT_GGUF_ARRAY || kv->arr_type != elem_type || kv->arr_n != n)
        *status = nt_fail(err, NT_ERR_FORMAT,
                          "%s: key %s is not an array of %llu %s", path, key,
                          (unsigned long long)n,
                          elem_type == NT_GGUF_F32 ? "f32 scores" : "i32 token types");
    return *status == NT_OK ? kv : NULL;
}

static int64_t get_id(const nt_gguf_meta *meta, const char *key, int64_t n) {
    int64_t v;
    if (!nt_gguf_get_int(meta, key, &v) || v < 0 || v >= n)
        return -1;
    return v;
}

static nt_status model_proto_from_gguf(const nt_gguf_meta *meta, const char *path,
                                       nt_writer *out, nt_error *err) {
    const char *model = nt_gguf_get_str(meta, "tokenizer.ggml.model");
    if (!model)
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: no vocabulary (key tokenizer.ggml.model is missing); "
                       "give a tokenizer.json or tokenizer.model instead",
                       path);
    if (strcmp(model, "llama") != 0)
        return nt_fail(err, NT_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.model is \"%.32s\"; only SentencePiece-style "
                       "vocabularies (\"llama\", as Nemotron's) are supported",
                       path, model);
    const nt_gguf_kv *tokens = nt_gguf_find(meta, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != NT_GGUF_ARRAY || tokens->arr_type != NT_GGUF_STRING ||
        tokens->arr_n == 0 || tokens->arr_n > (1u << 24))
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: key tokenizer.ggml.tokens is missing or not a list of "
                       "strings",
                       path);
    uint64_t n = tokens->arr_n;
    nt_status s = NT_OK;
    const nt_gguf_kv *scores =
        find_array(meta, "tokenizer.ggml.scores", NT_GGUF_F32, n, path, err, &s);
    const nt_gguf_kv *types =
        find_array(meta, "tokenizer.ggml.token_type", NT_GGUF_I32, n, path, err, &s);
    if (s != NT_OK)
        return s;

    int64_t unk = -1;
    int byte_fallback = 0;
    for (uint64_t i = 0; i < n && !out->failed; i++) {
        const char *text = tokens->arr_str[i];
        uint64_t len = tokens->arr_str_len[i];
        float score = 0.0f;
        int32_t type = NT_SPM_NORMAL;
        if (scores)
            memcpy(&score, (const char *)scores->arr + i * 4, 4);
        if (types)
            memcpy(&type, (const char *)types->arr + i * 4, 4);
        if (type < NT_SPM_NORMAL || type > NT_SPM_BYTE)
            return nt_fail(err, NT_ERR_FORMAT,
                           "%s: token %llu has type %d (known: 1 normal to 6 byte)", path,
                           (unsigned long long)i, (int)type);
        if (type == NT_SPM_NORMAL && is_extra_id(text, len))
            type = NT_SPM_USER_DEFINED;
        if (type == NT_SPM_UNKNOWN && unk < 0)
            unk = (int64_t)i;
        byte_fallback |= type == NT_SPM_BYTE;
        nt_spm_write_piece(out, text, (size_t)len, score, type);
    }

    /* The ids follow the pieces' types; GGUF's unknown_token_id is often
     * written without looking (0, the pad piece, in files we have seen). */
    int64_t v;
    int add_space = nt_gguf_get_int(meta, "tokenizer.ggml.add_space_prefix", &v) ? v != 0 : 1;
    int collapse = nt_gguf_get_int(meta, "tokenizer.ggml.remove_extra_whitespaces", &v)
                       ? v != 0 : 0;
    nt_spm_write_specs(out, byte_fallback, unk >= 0 ? unk : 0,
                       get_id(meta, "tokenizer.ggml.bos_token_id", (int64_t)n),
                       get_id(meta, "tokenizer.ggml.eos_token_id", (int64_t)n),
                       get_id(meta, "tokenizer.ggml.padding_token_id", (int64_t)n),
                       add_space, collapse);
    if (out->failed)
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    return NT_OK;
}

nt_status nt_gguf_tokenizer_load(nt_tokenizer *tok, const char *path, nt_error *err) {
    nt_st_file f;
    nt_gguf_meta meta;
    nt_status s = nt_gguf_open(path, &f, &meta, err);
    if (s != NT_OK)
        return s;
    nt_st_close(&f);
    nt_writer proto = {0};
    s = model_proto_from_gguf(&meta, path, &proto, err);
    nt_gguf_meta_free(&meta);
    if (s == NT_OK)
        s = nt_spm_tokenizer_parse(tok, (const unsigned char *)proto.buf.s, proto.buf.n,
                                   path, err);
    nt_buf_free(&proto.buf);
    return s;
}
