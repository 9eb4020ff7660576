/*
 * hf_model.c - see hf_model.h.
 *
 * A full-size tokenizer.json has 256k vocabulary members and half a million
 * merge rules: most of its 17 MB and, read naively (a JSON tree, then a
 * table, then three lookups per rule), most of a second. So:
 *
 *   - The JSON parser streams model.vocab and model.merges: each member is
 *     copied here compactly, text back to back, and no tree is built.
 *   - Merge rules are kept in blocks that never move once full. When
 *     model.vocab has ended (HF writes it before the merges), a worker
 *     thread builds its lookup table and turns full blocks of rules into
 *     ids while the parser goes on; once the parse is done the calling
 *     thread claims blocks too. A lookup of a block runs in batches
 *     (nt_vocab_find_many), which overlaps the cache misses.
 *   - Rules name pieces of model.vocab, as in HF tokenizers; the added
 *     tokens are not part of it. The final vocabulary is model.vocab plus
 *     the added tokens: when these only repeat pieces of model.vocab (as in
 *     every file converted from SentencePiece) it is the worker's table with
 *     the added tokens' kinds applied; otherwise it is built afresh.
 *
 * Files in another order, or whose model.vocab leaves ids for added tokens
 * to fill, take the same steps one after another once the parse is done.
 * Nothing is reported before the parse is over, so the loader's own checks
 * (an unsupported model type, say) come first.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "threadpool.h"
#include "tokenizer/hf_model.h"
#include "tokenizer/tokenizer_impl.h"

#define MERGE_BLOCK 8192      /* rules per block */
#define MAX_MERGE_BLOCKS 8192 /* 67M rules: more than a 256 MB file holds */
#define LOOKUP_BATCH 256
#define MAX_LOAD_THREADS 4

typedef struct vocab_member {
    int64_t id;
    uint32_t offset, len; /* the key's bytes in vocab_text */
} vocab_member;

typedef struct merge_text {
    uint32_t offset;      /* left piece then right piece, in the block's text */
    uint32_t left_len, right_len;
} merge_text;

/* Looking a rule up turns its merge_text into an nt_merge_rule in place;
 * the block's entries are then handed to nt_merges_add() as rules. */
typedef union merge_entry {
    merge_text text;
    nt_merge_rule rule;
} merge_entry;
_Static_assert(sizeof(merge_entry) == sizeof(nt_merge_rule), "merge_entry is a rule");

typedef struct merge_block {
    merge_entry entries[MERGE_BLOCK];
    size_t n;
    nt_buf text;
    /* after the lookup: the block's first rule with a piece not in the
     * vocabulary (SIZE_MAX: none), that piece, and whether it is the
     * piece the rule makes */
    size_t bad;
    nt_piece_ref bad_piece;
    int bad_made;
} merge_block;

struct nt_hf_model_reader {
    /* The first thing found wrong while streaming; once set, nothing more
     * is kept. Reported by finish(), after the loader's checks. */
    char problem[256];
    int out_of_memory;

    nt_buf vocab_text;
    vocab_member *vocab;
    size_t n_vocab, cap_vocab;
    int vocab_streams, merges_streams; /* model.vocab / model.merges seen */
    int vocab_ended;

    merge_block *blocks[MAX_MERGE_BLOCKS];
    size_t n_blocks, n_merges;

    /* The pipeline; everything below `lock` is read and written under it. */
    pthread_t worker;
    int worker_started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int table_state;     /* 0 being built, 1 built, -1 cannot be built */
    size_t n_published;  /* blocks that may be looked up */
    size_t next_block;   /* the next block to claim */
    int parse_done;      /* no more blocks will come */
    int stop;            /* give up: the load failed */
    nt_vocab table;      /* model.vocab alone, for the lookups */
    const nt_vocab *lookup_vocab;
    int table_moved;     /* table became the final vocabulary */
};

/* ---- streaming ------------------------------------------------------------ */

static void set_problem(nt_hf_model_reader *r, const char *msg) {
    if (!r->problem[0])
        snprintf(r->problem, sizeof r->problem, "%s", msg);
}

static void *worker_main(void *arg);

static int stream_vocab_member(void *user, const nt_json_element *e, char *msg,
                               size_t msg_size) {
    nt_hf_model_reader *r = user;
    if (e->index == 0 && ++r->vocab_streams > 1)
        set_problem(r, "the model has two vocabularies");
    if (!e->value) { /* the end */
        r->vocab_ended = 1;
        if (!r->problem[0] && r->n_vocab > 0 && !r->worker_started && r->merges_streams == 0)
            r->worker_started = pthread_create(&r->worker, NULL, worker_main, r) == 0;
        return 1;
    }
    int64_t id;
    if (r->problem[0] || !e->key)
        return 1; /* not an object: said by finish() */
    if (!nt_json_int64(e->value, &id) || id < 0 || id >= (1 << 24)) {
        char text[160];
        snprintf(text, sizeof text, "model.vocab: \"%.64s\" has no valid id", e->key);
        set_problem(r, text);
        return 1;
    }
    if (r->n_vocab == r->cap_vocab) {
        size_t cap = r->cap_vocab ? r->cap_vocab * 2 : 4096;
        vocab_member *p = realloc(r->vocab, cap * sizeof *p);
        if (!p)
            goto out_of_memory;
        r->vocab = p;
        r->cap_vocab = cap;
    }
    if (!nt_buf_add(&r->vocab_text, e->key, e->key_len) || r->vocab_text.n > UINT32_MAX)
        goto out_of_memory;
    r->vocab[r->n_vocab++] = (vocab_member){id, (uint32_t)(r->vocab_text.n - e->key_len),
                                            (uint32_t)e->key_len};
    return 1;
out_of_memory:
    snprintf(msg, msg_size, "out of memory");
    r->out_of_memory = 1;
    return 0;
}

/* Makes the last block visible to the lookups. */
static void publish_blocks(nt_hf_model_reader *r, size_t n) {
    pthread_mutex_lock(&r->lock);
    r->n_published = n;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

/* A rule is "left right" (one space) or ["left", "right"]. */
static int stream_merge(void *user, const nt_json_element *e, char *msg, size_t msg_size) {
    nt_hf_model_reader *r = user;
    if (e->index == 0 && ++r->merges_streams > 1)
        set_problem(r, "the model has two lists of merges");
    if (!e->value || r->problem[0] || e->key)
        return 1; /* the end; or not a list: said by finish() */
    const char *a = NULL, *b = NULL;
    size_t a_len = 0, b_len = 0;
    if (nt_json_kind_of(e->value) == NT_JSON_STRING) {
        size_t len;
        const char *s = nt_json_string(e->value, &len);
        const char *sp = memchr(s, ' ', len);
        if (sp && !memchr(sp + 1, ' ', len - (size_t)(sp - s) - 1)) {
            a = s;
            a_len = (size_t)(sp - s);
            b = sp + 1;
            b_len = len - a_len - 1;
        }
    } else if (nt_json_count(e->value) == 2) {
        a = nt_json_string(nt_json_at(e->value, 0), &a_len);
        b = nt_json_string(nt_json_at(e->value, 1), &b_len);
    }
    if (!a || !b) {
        char text[96];
        snprintf(text, sizeof text, "model.merges[%zu] is not two pieces", e->index);
        set_problem(r, text);
        return 1;
    }
    merge_block *blk = r->n_blocks > 0 ? r->blocks[r->n_blocks - 1] : NULL;
    if (!blk || blk->n == MERGE_BLOCK) {
        if (blk && r->worker_started)
            publish_blocks(r, r->n_blocks);
        if (r->n_blocks == MAX_MERGE_BLOCKS) {
            set_problem(r, "model.merges has too many rules");
            return 1;
        }
        blk = calloc(1, sizeof *blk);
        if (!blk)
            goto out_of_memory;
        r->blocks[r->n_blocks++] = blk;
    }
    if (!nt_buf_reserve(&blk->text, a_len + b_len) || blk->text.n + a_len + b_len > UINT32_MAX)
        goto out_of_memory;
    blk->entries[blk->n++].text = (merge_text){(uint32_t)blk->text.n, (uint32_t)a_len,
                                               (uint32_t)b_len};
    nt_buf_add(&blk->text, a, a_len);
    nt_buf_add(&blk->text, b, b_len);
    r->n_merges++;
    return 1;
out_of_memory:
    snprintf(msg, msg_size, "out of memory");
    r->out_of_memory = 1;
    return 0;
}

nt_hf_model_reader *nt_hf_model_reader_new(nt_error *err) {
    nt_hf_model_reader *r = calloc(1, sizeof *r);
    if (!r) {
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
    return r;
}

void nt_hf_model_reader_streams(nt_hf_model_reader *r,
                                nt_json_stream streams[NT_HF_MODEL_STREAMS]) {
    streams[0] = (nt_json_stream){"model.vocab", stream_vocab_member, r};
    streams[1] = (nt_json_stream){"model.merges", stream_merge, r};
}

int nt_hf_model_reader_out_of_memory(const nt_hf_model_reader *r) {
    return r && r->out_of_memory;
}

/* ---- the vocabulary ----------------------------------------------------- */

/* One entry of model.vocab or added_tokens, to be placed at its id. */
typedef struct id_piece {
    int64_t id;
    const char *text;
    size_t len;
    int kind;
} id_piece;

static int same_text(const id_piece *a, const id_piece *b) {
    return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
}

/*
 * Builds v from n entries: placed at their ids, which must run from 0
 * without a gap. An id given twice must name the same text; the later
 * entry's kind wins, though a byte or control kind is never lost to a
 * normal one. Fails with a message in msg.
 */
static nt_status build_from_pieces(nt_vocab *v, id_piece *all, size_t n, char *msg,
                                   size_t msg_size) {
    int32_t *by_id = malloc((n + 1) * sizeof *by_id); /* entry at each id, or -1 */
    if (!by_id) {
        snprintf(msg, msg_size, "out of memory");
        return NT_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i <= n; i++)
        by_id[i] = -1;
    int beyond = 0; /* an id past n leaves a gap for sure */
    nt_status status = NT_OK;
    for (size_t i = 0; i < n && status == NT_OK; i++) {
        id_piece *p = &all[i];
        if ((uint64_t)p->id >= n) {
            beyond = 1;
            continue;
        }
        int32_t other = by_id[p->id];
        if (other >= 0) {
            const id_piece *q = &all[other];
            if (!same_text(p, q)) {
                snprintf(msg, msg_size, "id %lld is both \"%.64s\" and \"%.64s\"",
                         (long long)p->id, q->text, p->text);
                status = NT_ERR_FORMAT;
            }
            if (p->kind == NT_PIECE_NORMAL)
                p->kind = q->kind;
        }
        by_id[p->id] = (int32_t)i;
    }
    size_t n_ids = 0;
    while (by_id[n_ids] >= 0)
        n_ids++;
    int gap = beyond;
    for (size_t i = n_ids; i < n && !gap; i++)
        gap = by_id[i] >= 0;
    if (status == NT_OK && gap) {
        snprintf(msg, msg_size, "no token has id %zu (ids must run from 0)", n_ids);
        status = NT_ERR_FORMAT;
    }
    nt_vocab_builder b;
    nt_error err;
    if (status == NT_OK && nt_vocab_begin(v, &b, (int)n_ids, &err) != NT_OK)
        status = err.status;
    for (size_t id = 0; id < n_ids && status == NT_OK; id++) {
        const id_piece *p = &all[by_id[id]];
        status = nt_vocab_add(&b, p->text, p->len, 0.0f, (nt_piece_kind)p->kind, &err);
    }
    if (status == NT_OK)
        status = nt_vocab_finish(&b, "model.vocab", &err);
    if (status != NT_OK && !msg[0])
        snprintf(msg, msg_size, "%.200s", err.message);
    if (status != NT_OK)
        nt_vocab_free(v);
    free(by_id);
    return status;
}

static void member_piece(const nt_hf_model_reader *r, size_t i, id_piece *p) {
    const vocab_member *m = &r->vocab[i];
    p->id = m->id;
    p->text = r->vocab_text.s + m->offset;
    p->len = m->len;
    p->kind = nt_byte_piece_value(p->text, p->len) >= 0 ? NT_PIECE_BYTE : NT_PIECE_NORMAL;
}

/* model.vocab alone, into r->table (the worker's first task). */
static int build_table(nt_hf_model_reader *r) {
    id_piece *all = malloc((r->n_vocab + 1) * sizeof *all);
    if (!all)
        return 0;
    for (size_t i = 0; i < r->n_vocab; i++)
        member_piece(r, i, &all[i]);
    char msg[256] = "";
    nt_status status = build_from_pieces(&r->table, all, r->n_vocab, msg, sizeof msg);
    free(all);
    return status == NT_OK;
}

/* An added token's content and id, or 0 when it lacks a valid one. */
static int added_piece(const nt_json *t, id_piece *p) {
    const nt_json *special = nt_json_get(t, "special");
    p->text = nt_json_string(nt_json_get(t, "content"), &p->len);
    p->kind = nt_json_bool(special) ? NT_PIECE_CONTROL : NT_PIECE_USER_DEFINED;
    return p->text && nt_json_int64(nt_json_get(t, "id"), &p->id) && p->id >= 0 &&
           p->id < (1 << 24);
}

static int is_unk(const char *unk, const id_piece *p) {
    return unk && strlen(unk) == p->len && memcmp(unk, p->text, p->len) == 0;
}

/*
 * The final vocabulary when every added token repeats a piece of
 * model.vocab: the table already built, with the added tokens' kinds.
 * 0 when that is not the case (or the table is missing).
 */
static int adopt_table(nt_hf_model_reader *r, const nt_json *added, const char *unk,
                       nt_vocab *vocab) {
    if (r->table_state != 1)
        return 0;
    size_t n_added = nt_json_count(added);
    for (size_t i = 0; i < n_added; i++) {
        id_piece p;
        size_t len;
        if (!added_piece(nt_json_at(added, i), &p) || p.id >= r->table.n)
            return 0;
        const char *text = nt_vocab_piece(&r->table, (int)p.id, &len);
        if (len != p.len || memcmp(text, p.text, len) != 0)
            return 0;
    }
    *vocab = r->table;
    r->table_moved = 1;
    if (unk) {
        int32_t id = nt_vocab_find(vocab, unk, strlen(unk));
        if (id >= 0)
            vocab->kind[id] = NT_PIECE_UNKNOWN;
    }
    for (size_t i = 0; i < n_added; i++) {
        id_piece p;
        added_piece(nt_json_at(added, i), &p);
        vocab->kind[p.id] = (uint8_t)(is_unk(unk, &p) ? NT_PIECE_UNKNOWN : p.kind);
    }
    nt_vocab_find_byte_pieces(vocab);
    return 1;
}

/* The final vocabulary from scratch: model.vocab then the added tokens. */
static nt_status build_vocab(nt_hf_model_reader *r, const nt_json *added, const char *unk,
                             nt_vocab *vocab, char *msg, size_t msg_size) {
    size_t n_added = nt_json_count(added), n = r->n_vocab + n_added;
    id_piece *all = malloc((n + 1) * sizeof *all);
    if (!all) {
        snprintf(msg, msg_size, "out of memory");
        return NT_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < r->n_vocab; i++)
        member_piece(r, i, &all[i]);
    for (size_t i = 0; i < n_added; i++) {
        if (!added_piece(nt_json_at(added, i), &all[r->n_vocab + i])) {
            snprintf(msg, msg_size, "added_tokens[%zu] has no content or valid id", i);
            free(all);
            return NT_ERR_FORMAT;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (is_unk(unk, &all[i]))
            all[i].kind = NT_PIECE_UNKNOWN;
    nt_status status = build_from_pieces(vocab, all, n, msg, msg_size);
    free(all);
    return status;
}

/* ---- the merge rules ---------------------------------------------------- */

/* Turns the rules of one block into ids, LOOKUP_BATCH rules at a time:
 * left, right and the piece they make (the two back to back). */
static void look_up_block(const nt_vocab *v, merge_block *blk) {
    nt_piece_ref refs[3 * LOOKUP_BATCH];
    int32_t ids[3 * LOOKUP_BATCH];
    blk->bad = SIZE_MAX;
    for (size_t g = 0; g < blk->n; g += LOOKUP_BATCH) {
        size_t count = blk->n - g < LOOKUP_BATCH ? blk->n - g : LOOKUP_BATCH;
        for (size_t i = 0; i < count; i++) {
            const merge_text *m = &blk->entries[g + i].text;
            const char *text = blk->text.s + m->offset;
            refs[3 * i] = (nt_piece_ref){text, m->left_len};
            refs[3 * i + 1] = (nt_piece_ref){text + m->left_len, m->right_len};
            refs[3 * i + 2] = (nt_piece_ref){text, (size_t)m->left_len + m->right_len};
        }
        nt_vocab_find_many(v, refs, 3 * count, ids);
        for (size_t i = 0; i < count; i++) {
            for (int k = 0; k < 3 && blk->bad == SIZE_MAX; k++) {
                if (ids[3 * i + k] < 0) {
                    blk->bad = g + i;
                    blk->bad_piece = refs[3 * i + k];
                    blk->bad_made = k == 2;
                }
            }
            blk->entries[g + i].rule = (nt_merge_rule){ids[3 * i], ids[3 * i + 1],
                                                       ids[3 * i + 2]};
        }
    }
}

/* Claims and looks up blocks until none is left (the parse being done) or
 * the load gives up. Called with the lock held; returns with it held. */
static void look_up_claimed_blocks(nt_hf_model_reader *r) {
    for (;;) {
        while (r->next_block >= r->n_published && !r->parse_done && !r->stop)
            pthread_cond_wait(&r->changed, &r->lock);
        if (r->stop || r->next_block >= r->n_published)
            return;
        merge_block *blk = r->blocks[r->next_block++];
        const nt_vocab *v = r->lookup_vocab;
        pthread_mutex_unlock(&r->lock);
        look_up_block(v, blk);
        pthread_mutex_lock(&r->lock);
    }
}

static void *worker_main(void *arg) {
    nt_hf_model_reader *r = arg;
    int built = build_table(r);
    pthread_mutex_lock(&r->lock);
    r->table_state = built ? 1 : -1;
    r->lookup_vocab = built ? &r->table : NULL;
    pthread_cond_broadcast(&r->changed);
    if (built)
        look_up_claimed_blocks(r);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void pool_look_up(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    nt_hf_model_reader *r = arg;
    pthread_mutex_lock(&r->lock);
    look_up_claimed_blocks(r);
    pthread_mutex_unlock(&r->lock);
}

/* Looks up every block not yet claimed, with v, on a few threads. */
static void look_up_rest(nt_hf_model_reader *r, const nt_vocab *v) {
    pthread_mutex_lock(&r->lock);
    r->lookup_vocab = v;
    size_t left = r->n_published - r->next_block;
    pthread_mutex_unlock(&r->lock);
    /* Threads only pay for themselves on big files. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n_threads = left < 8 || cpus < 2 ? 1 : cpus < MAX_LOAD_THREADS ? (int)cpus
                                                                       : MAX_LOAD_THREADS;
    nt_pool *pool = n_threads > 1 ? nt_pool_new(n_threads, NULL) : NULL;
    if (pool)
        nt_pool_run(pool, pool_look_up, r);
    else
        pool_look_up(r, 0, 1);
    nt_pool_free(pool);
}

static void stop_worker(nt_hf_model_reader *r) {
    if (!r->worker_started)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->worker, NULL);
    r->worker_started = 0;
}

/* ---- finishing ---------------------------------------------------------- */

nt_status nt_hf_model_reader_finish(nt_hf_model_reader *r, const nt_json *model,
                                    const nt_json *added, nt_vocab *vocab,
                                    nt_merges *merges, const char *path, nt_error *err) {
    char msg[256] = "";
    nt_status status = NT_OK;
    if (nt_json_kind_of(nt_json_get(model, "vocab")) != NT_JSON_OBJECT) {
        snprintf(msg, sizeof msg, "model.vocab is not an object");
        status = NT_ERR_FORMAT;
    } else if (nt_json_kind_of(nt_json_get(model, "merges")) != NT_JSON_ARRAY) {
        snprintf(msg, sizeof msg, "model.merges is not a list");
        status = NT_ERR_FORMAT;
    } else if (r->problem[0]) {
        snprintf(msg, sizeof msg, "%s", r->problem);
        status = NT_ERR_FORMAT;
    }
    if (status != NT_OK) {
        stop_worker(r);
        return nt_fail(err, status, "%s: %s", path, msg);
    }

    /* Every block may now be looked up. With the worker's table (or one
     * built here, when the file's order gave the worker no chance), the
     * rules name pieces of model.vocab alone. */
    pthread_mutex_lock(&r->lock);
    r->parse_done = 1;
    r->n_published = r->n_blocks;
    pthread_cond_broadcast(&r->changed);
    if (r->worker_started) {
        while (r->table_state == 0)
            pthread_cond_wait(&r->changed, &r->lock);
        if (r->table_state == 1)
            look_up_claimed_blocks(r);
    }
    pthread_mutex_unlock(&r->lock);
    if (r->worker_started) {
        pthread_join(r->worker, NULL);
        r->worker_started = 0;
    } else if (r->n_vocab > 0) {
        r->table_state = build_table(r) ? 1 : -1;
        if (r->table_state == 1)
            look_up_rest(r, &r->table);
    }

    const char *unk = nt_json_string(nt_json_get(model, "unk_token"), NULL);
    if (!adopt_table(r, added, unk, vocab)) {
        status = build_vocab(r, added, unk, vocab, msg, sizeof msg);
        if (status != NT_OK)
            return nt_fail(err, status, "%s: %s", path, msg);
        if (r->table_state != 1)
            look_up_rest(r, vocab); /* no table of model.vocab alone: ids have gaps */
    }
    vocab->unk_id = unk ? nt_vocab_find(vocab, unk, strlen(unk)) : -1;
    vocab->bos_id = nt_vocab_find(vocab, "<s>", 3);
    vocab->eos_id = nt_vocab_find(vocab, "</s>", 4);
    vocab->pad_id = nt_vocab_find(vocab, "<pad>", 5);
    if (unk && vocab->unk_id < 0) {
        nt_vocab_free(vocab);
        return nt_fail(err, NT_ERR_FORMAT, "%s: model.unk_token is not in the vocabulary",
                       path);
    }

    for (size_t b = 0; b < r->n_blocks; b++) {
        const merge_block *blk = r->blocks[b];
        if (blk->bad == SIZE_MAX)
            continue;
        const nt_piece_ref *p = &blk->bad_piece;
        nt_vocab_free(vocab);
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: model.merges[%zu] %s \"%.*s\", which is not in the vocabulary",
                       path, b * MERGE_BLOCK + blk->bad, blk->bad_made ? "makes" : "names",
                       (int)(p->len > 64 ? 64 : p->len), p->s);
    }
    status = nt_merges_init(merges, (int)r->n_merges, err);
    for (size_t b = 0; b < r->n_blocks && status == NT_OK; b++)
        status = nt_merges_add(merges, (const nt_merge_rule *)r->blocks[b]->entries,
                               r->blocks[b]->n, err);
    if (status != NT_OK) {
        nt_vocab_free(vocab);
        nt_merges_free(merges);
    }
    return status;
}

void nt_hf_model_reader_free(nt_hf_model_reader *r) {
    if (!r)
        return;
    stop_worker(r);
    if (!r->table_moved)
        nt_vocab_free(&r->table);
    for (size_t b = 0; b < r->n_blocks; b++) {
        nt_buf_free(&r->blocks[b]->text);
        free(r->blocks[b]);
    }
    nt_buf_free(&r->vocab_text);
    free(r->vocab);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
    free(r);
}
