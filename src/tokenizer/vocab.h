/*
 * vocab.h - the token table every tokenizer format is read into.
 *
 * SentencePiece's tokenizer.model, HF's tokenizer.json and (later) a GGUF's
 * tokenizer.ggml.* arrays all describe the same thing: for each id, the
 * piece's bytes, a score and a kind. The encoders and decoders work on this
 * table only, so where a vocabulary was read from never matters past
 * loading.
 */
#ifndef NT_TOKENIZER_VOCAB_H
#define NT_TOKENIZER_VOCAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* SentencePiece's piece types; HF added tokens map onto them too. */
typedef enum nt_piece_kind {
    NT_PIECE_NORMAL = 1,
    NT_PIECE_UNKNOWN = 2,
    NT_PIECE_CONTROL = 3,       /* <s>, </s>: never produced from text by spm */
    NT_PIECE_USER_DEFINED = 4,  /* always matched whole in text by spm */
    NT_PIECE_UNUSED = 5,
    NT_PIECE_BYTE = 6           /* <0x41>: one raw byte */
} nt_piece_kind;

/* Where a piece's bytes are; offset and length side by side, so that a
 * lookup touches one cache line for both. */
typedef struct nt_piece_span {
    uint32_t offset, length;
} nt_piece_span;

typedef struct nt_vocab {
    int n;                /* ids are 0 .. n-1 */
    char *blob;           /* every piece's bytes, each NUL-terminated */
    nt_piece_span *span;  /* piece i is span[i].length bytes at blob + span[i].offset */
    float *score;
    uint8_t *kind;        /* nt_piece_kind */
    int32_t byte_id[256]; /* the <0xXX> piece of each byte, or -1 */
    int unk_id, bos_id, eos_id, pad_id; /* -1 where absent */
    /* piece bytes -> id: open addressing, power-of-two size, -1 empty */
    int32_t *table;
    uint32_t table_mask;
} nt_vocab;

/* Pieces are added with ids 0, 1, 2, ... in order. */
typedef struct nt_vocab_builder {
    nt_vocab *v;
    size_t blob_len, blob_cap;
    int cap;
} nt_vocab_builder;

nt_status nt_vocab_begin(nt_vocab *v, nt_vocab_builder *b, int expected_n,
                         nt_error *err);
nt_status nt_vocab_add(nt_vocab_builder *b, const char *piece, size_t len,
                       float score, nt_piece_kind kind, nt_error *err);
/* Builds the lookup table; fails, naming both ids, on a duplicate piece. */
nt_status nt_vocab_finish(nt_vocab_builder *b, const char *what, nt_error *err);
void nt_vocab_free(nt_vocab *v);

/* Fills byte_id from the pieces' texts and kinds: a byte piece <0xXX>
 * wins over a normal piece of the same text. finish() calls it; call it
 * again after changing kinds. */
void nt_vocab_find_byte_pieces(nt_vocab *v);

/* "<0x41>" -> 0x41: the byte a byte piece stands for, or -1 if p is none. */
int nt_byte_piece_value(const char *p, size_t len);

/* The id of a piece, or -1. */
int32_t nt_vocab_find(const nt_vocab *v, const char *piece, size_t len);

/* A piece to look up: len bytes at s. */
typedef struct nt_piece_ref {
    const char *s;
    size_t len;
} nt_piece_ref;

/* ids[i] = nt_vocab_find() of pieces[i], for i < n; several times faster
 * than one at a time on a big vocabulary, as the lookups overlap their
 * cache misses. Loading a tokenizer.json does a million and a half. */
void nt_vocab_find_many(const nt_vocab *v, const nt_piece_ref *pieces, size_t n,
                        int32_t *ids);

static inline const char *nt_vocab_piece(const nt_vocab *v, int id, size_t *len) {
    *len = v->span[id].length;
    return v->blob + v->span[id].offset;
}

/*
 * A hash of piece bytes, eight at a time: pieces are short, and loading a
 * 256k vocabulary with half a million merges hashes a few million of them.
 * `seed` separates tables that hash the same texts (SentencePiece's two
 * piece tables). MurmurHash3's fmix64 at the end makes every bit of the
 * result depend on every byte.
 */
static inline uint64_t nt_hash_bytes_seeded(const char *s, size_t len, uint64_t seed) {
    const uint64_t mul = 0x9E3779B97F4A7C15ull;
    uint64_t h = (uint64_t)len * mul ^ seed;
    for (; len >= 8; s += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * mul;
        h ^= h >> 29;
    }
    if (len > 0) {
        uint64_t w = 0;
        memcpy(&w, s, len);
        h = (h ^ w) * mul;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline uint64_t nt_hash_bytes(const char *s, size_t len) {
    return nt_hash_bytes_seeded(s, len, 0);
}

#endif
