/*
 * bpe.c - see bpe.h.
 *
 * Symbols are a doubly linked list over spans of the text; candidate pairs
 * wait in a binary min-heap under a 64-bit key that encodes both the rule's
 * priority and, for ties, the left symbol's position. A merge keeps the
 * left symbol and empties the right one, so a queued pair whose two spans
 * no longer add up to the size it was queued with is stale and skipped
 * (SentencePiece's own test; HF's tokenizers.js reaches the same result by
 * marking nodes deleted).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/bpe.h"

typedef struct nt_bpe_symbol {
    uint32_t start, len;
    int32_t prev, next;
    int32_t id;      /* the piece this span is, or -1 */
    uint8_t frozen;  /* never merged (user-defined symbols) */
} nt_bpe_symbol;

typedef struct nt_bpe_pair {
    uint64_t key;    /* smaller first */
    int32_t left, right;
    uint32_t size;   /* left.len + right.len when queued */
    int32_t merged;  /* the id the pair becomes */
} nt_bpe_pair;

/* ---- id arrays ----------------------------------------------------------- */

int nt_ids_push(nt_ids *a, int32_t id) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *p = realloc(a->ids, cap * sizeof *p);
        if (!p)
            return 0;
        a->ids = p;
        a->cap = cap;
    }
    a->ids[a->n++] = id;
    return 1;
}

void nt_ids_free(nt_ids *a) {
    free(a->ids);
    memset(a, 0, sizeof *a);
}

/* ---- merge rules --------------------------------------------------------- */

static uint32_t hash_pair(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (uint32_t)key;
}

/* The table is kept at most 3/4 full: linear probing stays short, and
 * half a million rules take 2^20 slots (16 MB), not 2^21. */
static uint32_t table_size_for(size_t n) {
    uint32_t size = 16;
    while ((size_t)size * 3 / 4 < n)
        size <<= 1;
    return size;
}

nt_status nt_merges_init(nt_merges *m, int expected, nt_error *err) {
    memset(m, 0, sizeof *m);
    uint32_t size = table_size_for(expected > 0 ? (size_t)expected : 0);
    m->slots = malloc((size_t)size * sizeof *m->slots);
    if (!m->slots)
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for merge rules");
    for (uint32_t i = 0; i < size; i++)
        m->slots[i].key = UINT64_MAX;
    m->mask = size - 1;
    return NT_OK;
}

static int merges_find(const nt_merges *m, int32_t left, int32_t right,
                       uint32_t *rank, int32_t *merged) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (uint32_t slot = hash_pair(key) & m->mask;; slot = (slot + 1) & m->mask) {
        const nt_merge_slot *e = &m->slots[slot];
        if (e->key == key) {
            *rank = e->rank;
            *merged = e->merged;
            return 1;
        }
        if (e->key == UINT64_MAX)
            return 0;
    }
}

static nt_status merges_grow(nt_merges *m, size_t n, nt_error *err) {
    nt_merges grown;
    if (n > INT32_MAX / 2)
        return nt_fail(err, NT_ERR_NO_MEMORY, "too many merge rules");
    nt_status s = nt_merges_init(&grown, (int)n, err);
    if (s != NT_OK)
        return s;
    for (uint32_t i = 0; i <= m->mask; i++) {
        if (m->slots[i].key == UINT64_MAX)
            continue;
        uint32_t slot = hash_pair(m->slots[i].key) & grown.mask;
        while (grown.slots[slot].key != UINT64_MAX)
            slot = (slot + 1) & grown.mask;
        grown.slots[slot] = m->slots[i];
    }
    grown.n = m->n;
    nt_merges_free(m);
    *m = grown;
    return NT_OK;
}

nt_status nt_merges_add(nt_merges *m, const nt_merge_rule *rules, size_t n,
                        nt_error *err) {
    enum { GROUP = 32 };
    if ((size_t)m->n + n > (size_t)(m->mask + 1) * 3 / 4) {
        nt_status s = merges_grow(m, (size_t)m->n + n, err);
        if (s != NT_OK)
            return s;
    }
    /* A table of a million slots is far larger than the cache; looking up
     * a group's slots ahead of time overlaps their misses. */
    for (size_t g = 0; g < n; g += GROUP) {
        size_t count = n - g < GROUP ? n - g : GROUP;
        uint32_t slots[GROUP];
        for (size_t i = 0; i < count; i++) {
            const nt_merge_rule *r = &rules[g + i];
            uint64_t key = (uint64_t)(uint32_t)r->left << 32 | (uint32_t)r->right;
            slots[i] = hash_pair(key) & m->mask;
            NT_PREFETCH(&m->slots[slots[i]]);
        }
        for (size_t i = 0; i < count; i++) {
            const nt_merge_rule *r = &rules[g + i];
            uint64_t key = (uint64_t)(uint32_t)r->left << 32 | (uint32_t)r->right;
            uint32_t slot = slots[i];
            while (m->slots[slot].key != UINT64_MAX && m->slots[slot].key != key)
                slot = (slot + 1) & m->mask;
            /* A repeated rule takes the later rank, as in both HF
             * libraries (their rank maps are built by inserting in order). */
            m->slots[slot] = (nt_merge_slot){key, (uint32_t)m->n, r->merged};
            m->n++;
        }
    }
    return NT_OK;
}

void nt_merges_free(nt_merges *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---- scratch, heap -------------------------------------------------------- */

void nt_bpe_scratch_free(nt_bpe_scratch *s) {
    free(s->symbols);
    free(s->heap);
    memset(s, 0, sizeof *s);
}

static int reserve_symbols(nt_bpe_scratch *s, size_t n) {
    if (n <= s->symbols_cap)
        return 1;
    size_t cap = s->symbols_cap ? s->symbols_cap : 256;
    while (cap < n)
        cap *= 2;
    nt_bpe_symbol *p = realloc(s->symbols, cap * sizeof *p);
    if (!p)
        return 0;
    s->symbols = p;
    s->symbols_cap = cap;
    return 1;
}

static int heap_push(nt_bpe_scratch *s, nt_bpe_pair p) {
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
        nt_bpe_pair *h = realloc(s->heap, cap * sizeof *h);
        if (!h)
            return 0;
        s->heap = h;
        s->heap_cap = cap;
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent].key <= p.key)
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = p;
    return 1;
}

static nt_bpe_pair heap_pop(nt_bpe_scratch *s) {
    nt_bpe_pair top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && s->heap[c + 1].key < s->heap[c].key)
            c++;
        if (last.key <= s->heap[c].key)
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0)
        s->heap[i] = last;
    return top;
}

/* Length of the UTF-8 character at p (1 for a stray byte). */
static size_t char_len(const char *p, size_t left) {
    unsigned char c = (unsigned char)p[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return n <= left ? n : 1;
}

/* Cuts text into one symbol per character (or unsplittable piece). */
static size_t init_symbols(nt_bpe_scratch *s, const char *text, size_t len,
                           nt_bpe_unsplittable_fn unsplittable, const void *user) {
    size_t n = 0;
    for (size_t at = 0; at < len; n++) {
        size_t w = unsplittable ? unsplittable(user, text, len, at) : 0;
        int frozen = w > 0;
        if (!frozen)
            w = char_len(text + at, len - at);
        nt_bpe_symbol *sym = &s->symbols[n];
        sym->start = (uint32_t)at;
        sym->len = (uint32_t)w;
        sym->prev = (int32_t)n - 1;
        sym->next = (int32_t)n + 1;
        sym->frozen = (uint8_t)frozen;
        sym->id = -1;
        at += w;
    }
    if (n > 0)
        s->symbols[n - 1].next = -1;
    return n;
}

/* ---- SentencePiece: by score ------------------------------------------- */

/* Maps a float to a key that sorts the higher scores first. */
static uint32_t score_key(float score) {
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* ascending order */
    return ~u;                                       /* descending */
}

/* A piece a merge may produce: what SentencePiece keeps in pieces_. */
static int mergeable_kind(int kind) {
    return kind == NT_PIECE_NORMAL || kind == NT_PIECE_USER_DEFINED ||
           kind == NT_PIECE_UNUSED;
}

static int queue_by_score(const nt_vocab *v, const char *text, nt_bpe_scratch *s,
                          int32_t left, int32_t right) {
    if (left < 0 || right < 0)
        return 1;
    const nt_bpe_symbol *l = &s->symbols[left], *r = &s->symbols[right];
    if (l->frozen || r->frozen)
        return 1;
    uint32_t size = l->len + r->len;
    int32_t id = nt_vocab_find(v, text + l->start, size);
    if (id < 0 || !mergeable_kind(v->kind[id]))
        return 1;
    nt_bpe_pair p = {(uint64_t)score_key(v->score[id]) << 32 | (uint32_t)left, left,
                     right, size, id};
    return heap_push(s, p);
}

/* Unused pieces are split back into the two symbols that formed them. */
typedef struct unused_merge {
    uint32_t start, len, split;
} unused_merge;

static int emit_span(const nt_vocab *v, int byte_fallback, const char *text,
                     uint32_t start, uint32_t len, const unused_merge *um,
                     size_t n_um, int *prev_unk, nt_ids *out) {
    int32_t id = nt_vocab_find(v, text + start, len);
    if (id >= 0 && v->kind[id] == NT_PIECE_UNUSED) {
        for (size_t i = n_um; i-- > 0;)
            if (um[i].len == len &&
                memcmp(text + um[i].start, text + start, len) == 0) {
                uint32_t split = um[i].split;
                return emit_span(v, byte_fallback, text, start, split, um, i,
                                 prev_unk, out) &&
                       emit_span(v, byte_fallback, text, start + split,
                                 len - split, um, i, prev_unk, out);
            }
    }
    if (id < 0)
        id = v->unk_id;
    if (id != v->unk_id || id < 0) {
        *prev_unk = 0;
        return id < 0 || nt_ids_push(out, id);
    }
    if (byte_fallback) {
        for (uint32_t i = 0; i < len; i++) {
            int32_t b = v->byte_id[(unsigned char)text[start + i]];
            if (!nt_ids_push(out, b >= 0 ? b : v->unk_id))
                return 0;
        }
        *prev_unk = 0;
        return 1;
    }
    if (*prev_unk)
        return 1; /* runs of unknown pieces become one */
    *prev_unk = 1;
    return nt_ids_push(out, id);
}

nt_status nt_bpe_encode_by_score(const nt_vocab *v, int byte_fallback,
                                 const char *text, size_t len,
                                 nt_bpe_unsplittable_fn unsplittable,
                                 const void *user, nt_bpe_scratch *s,
                                 nt_ids *out, nt_error *err) {
    if (len == 0)
        return NT_OK;
    if (len > UINT32_MAX / 2)
        return nt_fail(err, NT_ERR_ARGUMENT, "text of %zu bytes is too long", len);
    if (!reserve_symbols(s, len))
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
    size_t n = init_symbols(s, text, len, unsplittable, user);
    s->heap_n = 0;
    for (size_t i = 1; i < n; i++)
        if (!queue_by_score(v, text, s, (int32_t)i - 1, (int32_t)i))
            return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");

    unused_merge *um = NULL;
    size_t n_um = 0, um_cap = 0;
    while (s->heap_n > 0) {
        nt_bpe_pair top = heap_pop(s);
        nt_bpe_symbol *l = &s->symbols[top.left], *r = &s->symbols[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
            continue;
        if (v->kind[top.merged] == NT_PIECE_UNUSED) {
            if (n_um == um_cap) {
                um_cap = um_cap ? um_cap * 2 : 16;
                unused_merge *p = realloc(um, um_cap * sizeof *p);
                if (!p) {
                    free(um);
                    return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
                }
                um = p;
            }
            um[n_um++] = (unused_merge){l->start, top.size, l->len};
        }
        l->len = top.size;
        l->next = r->next;
        if (r->next >= 0)
            s->symbols[r->next].prev = top.left;
        r->len = 0;
        if (!queue_by_score(v, text, s, l->prev, top.left) ||
            !queue_by_score(v, text, s, top.left, l->next)) {
            free(um);
            return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
        }
    }
    int ok = 1;
    for (int32_t i = 0; i >= 0 && ok; i = s->symbols[i].next)
        ok = emit_span(v, byte_fallback, text, s->symbols[i].start,
                       s->symbols[i].len, um, n_um, &s->prev_unk, out);
    free(um);
    return ok ? NT_OK : nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
}

/* ---- HF: by rank --------------------------------------------------------- */

static int queue_by_rank(const nt_merges *m, nt_bpe_scratch *s, int32_t left,
                         int32_t right) {
    if (left < 0 || right < 0)
        return 1;
    const nt_bpe_symbol *l = &s->symbols[left], *r = &s->symbols[right];
    uint32_t rank;
    int32_t merged;
    if (l->id < 0 || r->id < 0 || !merges_find(m, l->id, r->id, &rank, &merged))
        return 1;
    nt_bpe_pair p = {(uint64_t)rank << 32 | l->start, left, right, l->len + r->len,
                     merged};
    return heap_push(s, p);
}

nt_status nt_bpe_encode_by_rank(const nt_vocab *v, const nt_merges *m,
                                const nt_bpe_options *opt, const char *word,
                                size_t len, nt_bpe_scratch *s, nt_ids *out,
                                nt_error *err) {
    if (len == 0)
        return NT_OK;
    if (len > UINT32_MAX / 2)
        return nt_fail(err, NT_ERR_ARGUMENT, "text of %zu bytes is too long", len);
    if (opt->ignore_merges) {
        int32_t whole = nt_vocab_find(v, word, len);
        if (whole >= 0) {
            s->prev_unk = 0;
            return nt_ids_push(out, whole)
                       ? NT_OK
                       : nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
        }
    }
    if (!reserve_symbols(s, len))
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
    size_t n = init_symbols(s, word, len, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        s->symbols[i].id = nt_vocab_find(v, word + s->symbols[i].start, s->symbols[i].len);
    s->heap_n = 0;
    for (size_t i = 1; i < n; i++)
        if (!queue_by_rank(m, s, (int32_t)i - 1, (int32_t)i))
            return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
    while (s->heap_n > 0) {
        nt_bpe_pair top = heap_pop(s);
        nt_bpe_symbol *l = &s->symbols[top.left], *r = &s->symbols[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
            continue;
        l->len = top.size;
        l->id = top.merged;
        l->next = r->next;
        if (r->next >= 0)
            s->symbols[r->next].prev = top.left;
        r->len = 0;
        if (!queue_by_rank(m, s, l->prev, top.left) ||
            !queue_by_rank(m, s, top.left, l->next))
            return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
    }

    int prev_unk = s->prev_unk;
    for (int32_t i = 0; i >= 0; i = s->symbols[i].next) {
        const nt_bpe_symbol *sym = &s->symbols[i];
        int ok = 1;
        if (sym->id >= 0) {
            ok = nt_ids_push(out, sym->id);
            prev_unk = 0;
        } else {
            int all_bytes = opt->byte_fallback;
            for (uint32_t k = 0; all_bytes && k < sym->len; k++)
                all_bytes = v->byte_id[(unsigned char)word[sym->start + k]] >= 0;
            if (all_bytes) {
                for (uint32_t k = 0; ok && k < sym->len; k++)
                    ok = nt_ids_push(out, v->byte_id[(unsigned char)word[sym->start + k]]);
                prev_unk = 0;
            } else if (v->unk_id >= 0 && !(opt->fuse_unk && prev_unk)) {
                ok = nt_ids_push(out, v->unk_id);
                prev_unk = 1;
            }
        }
        if (!ok)
            return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
    }
    s->prev_unk = prev_unk;
    return NT_OK;
}
