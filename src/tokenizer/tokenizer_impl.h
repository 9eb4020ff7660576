/*
 * tokenizer_impl.h - what the two tokenizer formats share inside the
 * library: the tokenizer object, the added-token matcher, a byte buffer.
 *
 * spm.c turns a SentencePiece model into an nt_tokenizer and implements its
 * rules; hf.c does the same for tokenizer.json; tokenizer.c is the public
 * API and the streaming decoder, which work for both.
 */
#ifndef NT_TOKENIZER_IMPL_H
#define NT_TOKENIZER_IMPL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/bpe.h"
#include "tokenizer/vocab.h"

/* ---- matching added tokens in text ------------------------------------------ */

/* Tokens that are matched whole in text: SentencePiece's user-defined
 * symbols, HF's added tokens. At each position the longest one wins. */
typedef struct nt_matcher {
    int n;
    int32_t *token;         /* index into the caller's token list, by length desc */
    const char **text;
    size_t *len;
    uint8_t first[256];     /* some token starts with this byte */
} nt_matcher;

/* ---- HF pipeline steps ----------------------------------------------------- */

typedef enum nt_hf_step_kind {
    HF_PREPEND, HF_REPLACE, HF_STRIP, HF_NFC, HF_NFKC, HF_NFD, HF_NFKD,
    HF_METASPACE, HF_SPLIT,
    HF_BYTE_FALLBACK, HF_FUSE
} nt_hf_step_kind;

typedef struct nt_hf_step {
    nt_hf_step_kind kind;
    char *a;                /* prepend / pattern / replacement / content */
    size_t a_len;
    char *b;                /* replace: content */
    size_t b_len;
    int left, right;        /* strip: counts or flags */
    int prepend_scheme;     /* metaspace: 0 always, 1 first, 2 never */
    int split;              /* metaspace: split on the replacement */
    int behavior;           /* split: see hf.c */
    int invert;
} nt_hf_step;

typedef struct nt_added_token {
    int32_t id;
    char *content;
    size_t len;
    int special, lstrip, rstrip, normalized, single_word;
    char *normalized_content;  /* content after the normalizer, if normalized */
    size_t normalized_len;
} nt_added_token;

enum { NT_FORMAT_SPM = 1, NT_FORMAT_HF = 2 };

struct nt_tokenizer {
    int format;
    nt_vocab vocab;

    /* SentencePiece */
    int byte_fallback;
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    int treat_whitespace_as_suffix;
    nt_matcher user_defined;   /* over vocab ids */
    char *unk_surface;

    /* HF tokenizer.json */
    nt_merges merges;
    nt_bpe_options bpe;
    nt_added_token *added;
    int n_added;
    nt_matcher added_raw, added_raw_nonspecial;       /* unnormalized contents */
    nt_matcher added_norm, added_norm_nonspecial;     /* normalized contents */
    nt_hf_step *normalizers, *pre_tokenizers, *decoders;
    int n_normalizers, n_pre_tokenizers, n_decoders;
    int clean_up_spaces;       /* transformers' clean_up_tokenization_spaces */

    /*
     * Long texts are encoded in chunks so that memory does not grow with
     * the text. A chunk may end only just after a "barrier": an ASCII
     * character that no piece of two or more characters, no added token
     * and no pattern of the pipeline contains, so no merge or match can
     * cross it (for SentencePiece-trained vocabularies, the newline).
     * Without a barrier a text is one chunk.
     */
    uint8_t barrier[128];
    size_t chunk_bytes;
    uint8_t *is_special;       /* per id: HF special added token / spm control */
};

/* Builds a matcher over n strings (NULL or empty ones are left out). */
nt_status nt_matcher_init(nt_matcher *m, const char *const *texts,
                          const size_t *lens, int n, nt_error *err);
/* The longest string matching at text[at], as its index; -1 if none. */
int nt_matcher_match(const nt_matcher *m, const char *text, size_t len,
                     size_t at, size_t *match_len);
void nt_matcher_free(nt_matcher *m);

/* Marks the barriers (after the format's loader has run). */
void nt_tokenizer_find_barriers(nt_tokenizer *tok);
/* The end of the chunk of text[from..len) that starts at from. */
size_t nt_tokenizer_chunk_end(const nt_tokenizer *tok, const char *text, size_t len,
                              size_t from);

/* Format loaders and rules. */
nt_status nt_spm_tokenizer_load(nt_tokenizer *tok, const char *path, nt_error *err);
/* The same from a serialized ModelProto in memory (`path` for messages). */
nt_status nt_spm_tokenizer_parse(nt_tokenizer *tok, const unsigned char *data,
                                 size_t len, const char *path, nt_error *err);
/* The vocabulary a GGUF file carries (tokenizer.ggml.*), see gguf_vocab.c. */
nt_status nt_gguf_tokenizer_load(nt_tokenizer *tok, const char *path, nt_error *err);
/*
 * Writing a tokenizer.model (gguf_vocab.c): a serialized ModelProto is its
 * pieces, one nt_spm_write_piece() each in id order (type: nt_spm_piece_type),
 * then nt_spm_write_specs(): a BPE trainer_spec with these ids (-1: none)
 * and an identity normalizer_spec. Failure to grow `out` sets out->failed.
 */
void nt_spm_write_piece(nt_writer *out, const char *text, size_t len, float score,
                        int type);
void nt_spm_write_specs(nt_writer *out, int byte_fallback, int64_t unk_id,
                        int64_t bos_id, int64_t eos_id, int64_t pad_id,
                        int add_dummy_prefix, int remove_extra_whitespaces);
nt_status nt_spm_encode(const nt_tokenizer *tok, const char *text, size_t len,
                        nt_ids *out, nt_error *err);
nt_status nt_spm_decode(const nt_tokenizer *tok, const int32_t *ids, size_t n,
                        unsigned flags, nt_buf *out, nt_error *err);

nt_status nt_hf_tokenizer_load(nt_tokenizer *tok, const char *path, nt_error *err);
nt_status nt_hf_encode(const nt_tokenizer *tok, const char *text, size_t len,
                       unsigned flags, nt_ids *out, nt_error *err);
nt_status nt_hf_decode(const nt_tokenizer *tok, const int32_t *ids, size_t n,
                       unsigned flags, nt_buf *out, nt_error *err);
void nt_hf_tokenizer_free(nt_tokenizer *tok);

/* How many trailing bytes of text the space clean-up may still change
 * once more text follows (0 when clean-up is off). */
size_t nt_hf_cleanup_holdback(const nt_tokenizer *tok, const char *text, size_t n);

/* Appends the UTF-8 decoding of bytes, replacing each ill-formed
 * subsequence by U+FFFD (the WHATWG / Unicode "maximal subpart" rule). */
int nt_utf8_append_lossy(nt_buf *out, const unsigned char *bytes, size_t n);

#endif
