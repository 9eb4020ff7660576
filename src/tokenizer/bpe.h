/*
 * bpe.h - byte-pair encoding of one stretch of text into token ids.
 *
 * The text is cut into initial symbols (UTF-8 characters, or whole pieces
 * that must not be split), then adjacent symbols are merged, best pair
 * first, until no pair may merge. Two rules say which pair is best:
 *
 *   by score  SentencePiece: a pair may merge if the joined text is a piece;
 *             the pair whose piece scores highest goes first.
 *   by rank   HF tokenizers: a pair may merge if a merge rule names it; the
 *             rule listed first goes first.
 *
 * Ties go to the leftmost pair in both, as in the reference libraries.
 */
#ifndef NT_TOKENIZER_BPE_H
#define NT_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/vocab.h"

/* A growing array of token ids. */
typedef struct nt_ids {
    int32_t *ids;
    size_t n, cap;
} nt_ids;

int nt_ids_push(nt_ids *a, int32_t id);  /* 0 when out of memory */
void nt_ids_free(nt_ids *a);

/* Merge rules by rank: (left id, right id) -> (rank, merged id), in one
 * open-addressing table whose slots hold all three, so a lookup touches
 * one cache line. */
typedef struct nt_merge_slot {
    uint64_t key;      /* left << 32 | right; UINT64_MAX: empty */
    uint32_t rank;
    int32_t merged;
} nt_merge_slot;

typedef struct nt_merges {
    nt_merge_slot *slots;
    uint32_t mask;
    int n;
} nt_merges;

/* One rule: the pieces left and right join into merged. */
typedef struct nt_merge_rule {
    int32_t left, right, merged;
} nt_merge_rule;

nt_status nt_merges_init(nt_merges *m, int expected, nt_error *err);
/* Appends rules in rank order, the first taking rank m->n; a pair already
 * present takes the later rank, as in HF tokenizers. */
nt_status nt_merges_add(nt_merges *m, const nt_merge_rule *rules, size_t n,
                        nt_error *err);
void nt_merges_free(nt_merges *m);

/* Reusable scratch for encoding, so that encoding allocates nothing once
 * warmed up. prev_unk says the last id written was a fused-able unknown:
 * text encoded in several calls (chunks of one long text) fuses unknowns
 * across the calls exactly as one call would. Zero it to start afresh. */
typedef struct nt_bpe_scratch {
    struct nt_bpe_symbol *symbols;
    size_t symbols_cap;
    struct nt_bpe_pair *heap;
    size_t heap_n, heap_cap;
    int prev_unk;
} nt_bpe_scratch;

void nt_bpe_scratch_free(nt_bpe_scratch *s);

/*
 * Says whether a symbol starting at text[at] is a piece that must stay
 * whole (SentencePiece's user-defined symbols); returns its length, or 0.
 */
typedef size_t (*nt_bpe_unsplittable_fn)(const void *user, const char *text,
                                        size_t len, size_t at);

/*
 * SentencePiece BPE over `text` (already normalized), appending ids to out.
 * Symbols that end up as no piece become byte pieces when byte_fallback is
 * set, else the unknown id (runs of unknowns fused into one).
 */
nt_status nt_bpe_encode_by_score(const nt_vocab *v, int byte_fallback,
                                 const char *text, size_t len,
                                 nt_bpe_unsplittable_fn unsplittable,
                                 const void *user, nt_bpe_scratch *s,
                                 nt_ids *out, nt_error *err);

/*
 * HF BPE over one pre-tokenized word. Symbols left that are no piece
 * become byte pieces (byte_fallback, if every byte has one), else the
 * unknown id (dropped if there is none); fuse_unk joins runs of unknowns.
 * ignore_merges: a word that is itself a piece is taken whole.
 */
typedef struct nt_bpe_options {
    int byte_fallback;
    int fuse_unk;
    int ignore_merges;
} nt_bpe_options;

nt_status nt_bpe_encode_by_rank(const nt_vocab *v, const nt_merges *m,
                                const nt_bpe_options *opt, const char *word,
                                size_t len, nt_bpe_scratch *s, nt_ids *out,
                                nt_error *err);

#endif
