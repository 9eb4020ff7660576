/*
 * kv_pool.h - the bookkeeping of a KV cache in fixed-size blocks shared by
 * many sequences, with automatic prefix reuse.
 *
 * The cache's memory is n_blocks blocks of block_tokens positions each; a
 * sequence holds a table of block ids, and its position p lives in block
 * table[p / block_tokens] at offset p % block_tokens. This module owns
 * only the ids: which block is free, which sequence uses it, and which full
 * blocks hold which tokens. The tensors that the ids index belong to the
 * forward pass.
 *
 * Prefix reuse: a block that fills up is registered under the hash of all
 * the tokens from the start of its sequence through its own (a chain:
 * hash(parent's hash, its tokens)). A new sequence walks its prompt block
 * by block and takes every registered block whose chain matches, so an
 * NPC's system prompt and lore, or the conversation so far, is computed
 * once. A lookup compares the block's own tokens and its parent's chain
 * hash, so a stale entry can never match (only a 64-bit collision of two
 * different prefixes could). Shared blocks are full and never written
 * again: a sequence only writes past its last full block, into blocks of
 * its own.
 *
 * Blocks that no sequence uses stay registered (cached) until the space is
 * needed; then the least recently released goes first.
 */
#ifndef NT_ENGINE_KV_POOL_H
#define NT_ENGINE_KV_POOL_H

#include "internal.h"

typedef struct nt_kv_pool nt_kv_pool;

/* One sequence's view of the pool. Zero-initialize before first use. */
typedef struct nt_kv_seq {
    int32_t *blocks;   /* table: block ids, n_tokens / block_tokens rounded up */
    int n_blocks;
    int cap_blocks;
    int32_t *tokens;   /* the tokens whose keys and values are in the cache */
    int n_tokens;
    int cap_tokens;
} nt_kv_seq;

typedef struct nt_kv_pool_stats {
    int n_blocks;   /* total */
    int n_used;     /* held by at least one sequence */
    int n_cached;   /* held by none, registered: reusable until evicted */
    int n_free;     /* neither */
} nt_kv_pool_stats;

nt_kv_pool *nt_kv_pool_new(int n_blocks, int block_tokens, nt_error *err);
void nt_kv_pool_free(nt_kv_pool *pool);
int nt_kv_pool_block_tokens(const nt_kv_pool *pool);
void nt_kv_pool_get_stats(const nt_kv_pool *pool, nt_kv_pool_stats *stats);

/*
 * Starts the sequence (emptied first) on `prompt`: takes the registered blocks that
 * hold its longest cached prefix, at most max_reuse tokens of it (a caller
 * that needs the logits of the prompt's last token keeps that token out),
 * and returns how many tokens they hold (a multiple of block_tokens). The
 * sequence then holds those tokens as if evaluated. -1 on out of memory.
 */
int nt_kv_seq_begin(nt_kv_pool *pool, nt_kv_seq *seq, const int32_t *prompt, int n_prompt,
                    int max_reuse, nt_error *err);

/*
 * Makes room for n more tokens after the sequence's n_tokens: blocks are
 * taken from the free ones, else the least recently used cached one.
 * NT_ERR_CONTEXT_FULL when the pool has no block left to give.
 */
nt_status nt_kv_seq_reserve(nt_kv_pool *pool, nt_kv_seq *seq, int n, nt_error *err);

/* The cache slot (block * block_tokens + offset) of position pos < the
 * reserved room. */
static inline int64_t nt_kv_seq_slot(const nt_kv_seq *seq, int block_tokens, int pos) {
    return (int64_t)seq->blocks[pos / block_tokens] * block_tokens + pos % block_tokens;
}

/*
 * Records that tokens[0..n) now have their keys and values in the slots
 * of positions n_tokens .. n_tokens + n - 1 (reserved before), and
 * registers every block this fills.
 */
nt_status nt_kv_seq_commit(nt_kv_pool *pool, nt_kv_seq *seq, const int32_t *tokens, int n,
                           nt_error *err);

/*
 * Drops the sequence's tokens from position n_keep on (n_keep <= n_tokens)
 * and returns how many it keeps: n_keep, or fewer when n_keep falls inside
 * a registered block (which must not be written again): that block is let
 * go too, and the caller evaluates its kept tokens again.
 */
int nt_kv_seq_truncate(nt_kv_pool *pool, nt_kv_seq *seq, int n_keep);

/* Releases every block (full ones stay cached) and frees the tables. */
void nt_kv_seq_release(nt_kv_pool *pool, nt_kv_seq *seq);

#endif
