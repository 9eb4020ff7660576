/*
 * kv_pool.c - see kv_pool.h.
 *
 * Every block is in exactly one of three states:
 *   used    refs > 0: in some sequence's table (registered or not);
 *   cached  refs == 0, registered: on the LRU list, reusable by lookup;
 *   free    refs == 0, not registered: on the free stack.
 * Registered blocks are also in a hash table (chained through the blocks)
 * under their chain hash.
 */
#include "engine/kv_pool.h"

typedef struct kv_block {
    int32_t refs;
    int32_t registered;
    uint64_t hash;         /* chain hash of the prefix through this block */
    uint64_t parent_hash;  /* the same of the prefix before it (0 for none) */
    int32_t next_in_bucket;
    int32_t lru_prev, lru_next; /* when cached */
} kv_block;

struct nt_kv_pool {
    int n_blocks, block_tokens;
    kv_block *blocks;
    int32_t *block_tokens_of;   /* n_blocks * block_tokens: a registered block's tokens */
    int32_t *buckets;           /* -1: empty */
    uint64_t bucket_mask;
    int32_t *free_stack;
    int n_free;
    int32_t lru_head, lru_tail; /* least recently released first */
    int n_cached;
};

/* ---- hashing ---------------------------------------------------------------- */

/* The chain hash: 64-bit FNV-1a over the parent's hash and the tokens,
 * finished with a mixer so that the low bits pick buckets well. Never 0,
 * which stands for "no parent". */
static uint64_t chain_hash(uint64_t parent, const int32_t *tokens, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((parent >> (8 * i)) & 0xff)) * 1099511628211ull;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < 4; i++)
            h = (h ^ (((uint32_t)tokens[t] >> (8 * i)) & 0xff)) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

/* ---- the three states ------------------------------------------------------- */

static void lru_unlink(nt_kv_pool *pool, int32_t b) {
    kv_block *k = &pool->blocks[b];
    if (k->lru_prev >= 0)
        pool->blocks[k->lru_prev].lru_next = k->lru_next;
    else
        pool->lru_head = k->lru_next;
    if (k->lru_next >= 0)
        pool->blocks[k->lru_next].lru_prev = k->lru_prev;
    else
        pool->lru_tail = k->lru_prev;
    k->lru_prev = k->lru_next = -1;
    pool->n_cached--;
}

static void lru_push(nt_kv_pool *pool, int32_t b) {
    kv_block *k = &pool->blocks[b];
    k->lru_prev = pool->lru_tail;
    k->lru_next = -1;
    if (pool->lru_tail >= 0)
        pool->blocks[pool->lru_tail].lru_next = b;
    else
        pool->lru_head = b;
    pool->lru_tail = b;
    pool->n_cached++;
}

static void unregister(nt_kv_pool *pool, int32_t b) {
    int32_t *link = &pool->buckets[pool->blocks[b].hash & pool->bucket_mask];
    while (*link != b)
        link = &pool->blocks[*link].next_in_bucket;
    *link = pool->blocks[b].next_in_bucket;
    pool->blocks[b].registered = 0;
}

/* A block for a sequence to write: free, else the oldest cached one. */
static int32_t take_block(nt_kv_pool *pool) {
    int32_t b;
    if (pool->n_free > 0) {
        b = pool->free_stack[--pool->n_free];
    } else if (pool->lru_head >= 0) {
        b = pool->lru_head;
        lru_unlink(pool, b);
        unregister(pool, b);
    } else {
        return -1;
    }
    pool->blocks[b].refs = 1;
    return b;
}

static void hold(nt_kv_pool *pool, int32_t b) {
    if (pool->blocks[b].refs++ == 0)
        lru_unlink(pool, b); /* only registered blocks are found to be held */
}

static void let_go(nt_kv_pool *pool, int32_t b) {
    if (--pool->blocks[b].refs > 0)
        return;
    if (pool->blocks[b].registered)
        lru_push(pool, b);
    else
        pool->free_stack[pool->n_free++] = b;
}

static int32_t lookup(const nt_kv_pool *pool, uint64_t hash, uint64_t parent,
                      const int32_t *tokens) {
    for (int32_t b = pool->buckets[hash & pool->bucket_mask]; b >= 0;
         b = pool->blocks[b].next_in_bucket) {
        const kv_block *k = &pool->blocks[b];
        if (k->hash == hash && k->parent_hash == parent &&
            memcmp(pool->block_tokens_of + (int64_t)b * pool->block_tokens, tokens,
                   sizeof(int32_t) * (size_t)pool->block_tokens) == 0)
            return b;
    }
    return -1;
}

/* ---- the pool ----------------------------------------------------------------- */

nt_kv_pool *nt_kv_pool_new(int n_blocks, int block_tokens, nt_error *err) {
    if (n_blocks < 1 || block_tokens < 1 || n_blocks > (1 << 28) || block_tokens > 4096) {
        nt_fail(err, NT_ERR_ARGUMENT, "KV pool of %d blocks of %d tokens: out of range",
                n_blocks, block_tokens);
        return NULL;
    }
    nt_kv_pool *pool = calloc(1, sizeof *pool);
    uint64_t n_buckets = 1;
    while (n_buckets < 2 * (uint64_t)n_blocks)
        n_buckets <<= 1;
    if (pool) {
        pool->blocks = calloc((size_t)n_blocks, sizeof *pool->blocks);
        pool->block_tokens_of = malloc(sizeof(int32_t) * (size_t)n_blocks * (size_t)block_tokens);
        pool->buckets = malloc(sizeof(int32_t) * n_buckets);
        pool->free_stack = malloc(sizeof(int32_t) * (size_t)n_blocks);
    }
    if (!pool || !pool->blocks || !pool->block_tokens_of || !pool->buckets ||
        !pool->free_stack) {
        nt_kv_pool_free(pool);
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for a KV pool of %d blocks", n_blocks);
        return NULL;
    }
    pool->n_blocks = n_blocks;
    pool->block_tokens = block_tokens;
    pool->bucket_mask = n_buckets - 1;
    for (uint64_t i = 0; i < n_buckets; i++)
        pool->buckets[i] = -1;
    /* the stack pops low ids first: block 0 is handed out first */
    for (int i = 0; i < n_blocks; i++) {
        pool->free_stack[i] = n_blocks - 1 - i;
        pool->blocks[i].lru_prev = pool->blocks[i].lru_next = -1;
        pool->blocks[i].next_in_bucket = -1;
    }
    pool->n_free = n_blocks;
    pool->lru_head = pool->lru_tail = -1;
    return pool;
}

void nt_kv_pool_free(nt_kv_pool *pool) {
    if (!pool)
        return;
    free(pool->blocks);
    free(pool->block_tokens_of);
    free(pool->buckets);
    free(pool->free_stack);
    free(pool);
}

int nt_kv_pool_block_tokens(const nt_kv_pool *pool) { return pool->block_tokens; }

void nt_kv_pool_get_stats(const nt_kv_pool *pool, nt_kv_pool_stats *stats) {
    stats->n_blocks = pool->n_blocks;
    stats->n_free = pool->n_free;
    stats->n_cached = pool->n_cached;
    stats->n_used = pool->n_blocks - pool->n_free - pool->n_cached;
}

/* ---- sequences ------------------------------------------------------------------ */

static int grow_i32(int32_t **p, int *cap, int need) {
    if (need <= *cap)
        return 1;
    int c = *cap ? *cap : 16;
    while (c < need)
        c = c > (1 << 29) ? need : c * 2;
    int32_t *q = realloc(*p, sizeof(int32_t) * (size_t)c);
    if (!q)
        return 0;
    *p = q;
    *cap = c;
    return 1;
}

/* The chain hash of the sequence's first `full` blocks (full ones only). */
static uint64_t prefix_hash(const nt_kv_pool *pool, const nt_kv_seq *seq, int full) {
    return full > 0 ? pool->blocks[seq->blocks[full - 1]].hash : 0;
}

int nt_kv_seq_begin(nt_kv_pool *pool, nt_kv_seq *seq, const int32_t *prompt, int n_prompt,
                    int max_reuse, nt_error *err) {
    int bt = pool->block_tokens;
    nt_kv_seq_truncate(pool, seq, 0); /* a sequence used before starts over */
    int n_full = nt_min_int(n_prompt, max_reuse) / bt;
    if (!grow_i32(&seq->blocks, &seq->cap_blocks, n_full) ||
        !grow_i32(&seq->tokens, &seq->cap_tokens, n_full * bt)) {
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for a sequence's block table");
        return -1;
    }
    seq->n_blocks = seq->n_tokens = 0;
    uint64_t parent = 0;
    for (int i = 0; i < n_full; i++) {
        const int32_t *t = prompt + (int64_t)i * bt;
        uint64_t h = chain_hash(parent, t, bt);
        int32_t b = lookup(pool, h, parent, t);
        if (b < 0)
            break;
        hold(pool, b);
        seq->blocks[seq->n_blocks++] = b;
        memcpy(seq->tokens + seq->n_tokens, t, sizeof(int32_t) * (size_t)bt);
        seq->n_tokens += bt;
        parent = h;
    }
    return seq->n_tokens;
}

nt_status nt_kv_seq_reserve(nt_kv_pool *pool, nt_kv_seq *seq, int n, nt_error *err) {
    int bt = pool->block_tokens;
    if (n < 0 || seq->n_tokens > INT32_MAX - n)
        return nt_fail(err, NT_ERR_ARGUMENT, "KV reserve of %d tokens: out of range", n);
    int need = (seq->n_tokens + n + bt - 1) / bt;
    if (!grow_i32(&seq->blocks, &seq->cap_blocks, need))
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for a sequence's block table");
    if (need - seq->n_blocks > pool->n_free + pool->n_cached)
        return nt_fail(err, NT_ERR_CONTEXT_FULL,
                       "the KV cache is full: %d more blocks of %d tokens needed, %d "
                       "available",
                       need - seq->n_blocks, bt, pool->n_free + pool->n_cached);
    while (seq->n_blocks < need)
        seq->blocks[seq->n_blocks++] = take_block(pool);
    return NT_OK;
}

nt_status nt_kv_seq_commit(nt_kv_pool *pool, nt_kv_seq *seq, const int32_t *tokens, int n,
                           nt_error *err) {
    int bt = pool->block_tokens;
    if (n < 0 || (int64_t)seq->n_tokens + n > (int64_t)seq->n_blocks * bt)
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "KV commit of %d tokens past the %d reserved", n,
                       seq->n_blocks * bt - seq->n_tokens);
    if (n == 0)
        return NT_OK;
    if (!grow_i32(&seq->tokens, &seq->cap_tokens, seq->n_tokens + n))
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for a sequence's tokens");
    int full_before = seq->n_tokens / bt;
    memcpy(seq->tokens + seq->n_tokens, tokens, sizeof(int32_t) * (size_t)n);
    seq->n_tokens += n;
    for (int i = full_before; i < seq->n_tokens / bt; i++) {
        int32_t b = seq->blocks[i];
        const int32_t *t = seq->tokens + (int64_t)i * bt;
        uint64_t parent = prefix_hash(pool, seq, i);
        uint64_t h = chain_hash(parent, t, bt);
        kv_block *k = &pool->blocks[b];
        if (k->registered) /* cannot happen: registered blocks are never written */
            continue;
        k->hash = h;
        k->parent_hash = parent;
        /* the same prefix already cached (two sequences filled it at once):
         * this block stays unregistered and is freed when let go */
        if (lookup(pool, h, parent, t) >= 0)
            continue;
        memcpy(pool->block_tokens_of + (int64_t)b * bt, t, sizeof(int32_t) * (size_t)bt);
        k->registered = 1;
        int32_t *bucket = &pool->buckets[h & pool->bucket_mask];
        k->next_in_bucket = *bucket;
        *bucket = b;
    }
    return NT_OK;
}

int nt_kv_seq_truncate(nt_kv_pool *pool, nt_kv_seq *seq, int n_keep) {
    int bt = pool->block_tokens;
    if (n_keep < 0)
        n_keep = 0;
    if (n_keep > seq->n_tokens)
        n_keep = seq->n_tokens;
    /* a kept part of a registered block would be written over: drop it */
    if (n_keep % bt != 0 && pool->blocks[seq->blocks[n_keep / bt]].registered)
        n_keep -= n_keep % bt;
    int keep_blocks = (n_keep + bt - 1) / bt;
    while (seq->n_blocks > keep_blocks)
        let_go(pool, seq->blocks[--seq->n_blocks]);
    seq->n_tokens = n_keep;
    return n_keep;
}

void nt_kv_seq_release(nt_kv_pool *pool, nt_kv_seq *seq) {
    while (seq->n_blocks > 0)
        let_go(pool, seq->blocks[--seq->n_blocks]);
    free(seq->blocks);
    free(seq->tokens);
    memset(seq, 0, sizeof *seq);
}
