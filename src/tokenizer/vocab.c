/*
 * vocab.c - see vocab.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/vocab.h"

nt_status nt_vocab_begin(nt_vocab *v, nt_vocab_builder *b, int expected_n,
                         nt_error *err) {
    memset(v, 0, sizeof *v);
    memset(b, 0, sizeof *b);
    b->v = v;
    b->cap = expected_n > 16 ? expected_n : 16;
    v->span = malloc((size_t)b->cap * sizeof *v->span);
    v->score = malloc((size_t)b->cap * sizeof *v->score);
    v->kind = malloc((size_t)b->cap);
    b->blob_cap = (size_t)b->cap * 8;
    v->blob = malloc(b->blob_cap);
    for (int i = 0; i < 256; i++)
        v->byte_id[i] = -1;
    v->unk_id = v->bos_id = v->eos_id = v->pad_id = -1;
    if (!v->span || !v->score || !v->kind || !v->blob) {
        nt_vocab_free(v);
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for a vocabulary");
    }
    return NT_OK;
}

nt_status nt_vocab_add(nt_vocab_builder *b, const char *piece, size_t len,
                       float score, nt_piece_kind kind, nt_error *err) {
    nt_vocab *v = b->v;
    if (v->n == b->cap) {
        int cap = b->cap * 2;
        nt_piece_span *span = realloc(v->span, (size_t)cap * sizeof *span);
        if (span)
            v->span = span;
        float *sc = realloc(v->score, (size_t)cap * sizeof *sc);
        if (sc)
            v->score = sc;
        uint8_t *k = realloc(v->kind, (size_t)cap);
        if (k)
            v->kind = k;
        if (!span || !sc || !k)
            return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for a vocabulary");
        b->cap = cap;
    }
    if (b->blob_len + len + 1 > b->blob_cap || b->blob_len + len + 1 > UINT32_MAX) {
        size_t cap = b->blob_cap * 2;
        while (cap < b->blob_len + len + 1)
            cap *= 2;
        char *blob = cap <= UINT32_MAX ? realloc(v->blob, cap) : NULL;
        if (!blob)
            return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for a vocabulary");
        v->blob = blob;
        b->blob_cap = cap;
    }
    memcpy(v->blob + b->blob_len, piece, len);
    v->blob[b->blob_len + len] = '\0';
    v->span[v->n].offset = (uint32_t)b->blob_len;
    v->span[v->n].length = (uint32_t)len;
    v->score[v->n] = score;
    v->kind[v->n] = (uint8_t)kind;
    b->blob_len += len + 1;
    v->n++;
    return NT_OK;
}

int nt_byte_piece_value(const char *p, size_t len) {
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static int is_reserved(int kind) {
    return kind == NT_PIECE_UNKNOWN || kind == NT_PIECE_CONTROL || kind == NT_PIECE_BYTE;
}

nt_status nt_vocab_finish(nt_vocab_builder *b, const char *what, nt_error *err) {
    nt_vocab *v = b->v;
    uint32_t size = 1;
    while (size < (uint32_t)v->n * 2u)
        size <<= 1;
    v->table = malloc((size_t)size * sizeof *v->table);
    if (!v->table)
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory for a vocabulary");
    memset(v->table, 0xff, (size_t)size * sizeof *v->table);
    v->table_mask = size - 1;
    enum { GROUP = 32 };
    uint32_t slots[GROUP];
    for (int id = 0; id < v->n; id++) {
        /* Hash a group ahead and touch its slots: the table is bigger than
         * the cache, and this overlaps the misses. */
        if (id % GROUP == 0) {
            for (int j = 0; j < GROUP && id + j < v->n; j++) {
                size_t len;
                const char *p = nt_vocab_piece(v, id + j, &len);
                slots[j] = (uint32_t)nt_hash_bytes(p, len) & v->table_mask;
                NT_PREFETCH(&v->table[slots[j]]);
            }
        }
        size_t len;
        const char *p = nt_vocab_piece(v, id, &len);
        uint32_t slot = slots[id % GROUP];
        int placed = 0;
        while (v->table[slot] >= 0) {
            int other = v->table[slot];
            if (v->span[other].length == len &&
                memcmp(v->blob + v->span[other].offset, p, len) == 0) {
                /* SentencePiece keeps two tables, text pieces and reserved
                 * ones (unknown, control, byte), and allows one text in
                 * each; lookups see the text piece. */
                if (is_reserved(v->kind[other]) == is_reserved(v->kind[id]))
                    return nt_fail(err, NT_ERR_FORMAT,
                                   "%s: tokens %d and %d are the same piece \"%.64s\"",
                                   what, other, id, p);
                if (is_reserved(v->kind[other]))
                    v->table[slot] = id;
                placed = 1;
                break;
            }
            slot = (slot + 1) & v->table_mask;
        }
        if (!placed)
            v->table[slot] = id;
    }
    nt_vocab_find_byte_pieces(v);
    return NT_OK;
}

void nt_vocab_find_byte_pieces(nt_vocab *v) {
    for (int i = 0; i < 256; i++)
        v->byte_id[i] = -1;
    for (int id = 0; id < v->n; id++) {
        if (v->kind[id] != NT_PIECE_BYTE && v->kind[id] != NT_PIECE_NORMAL)
            continue;
        size_t len;
        const char *p = nt_vocab_piece(v, id, &len);
        int byte = nt_byte_piece_value(p, len);
        if (byte >= 0 && (v->kind[id] == NT_PIECE_BYTE || v->byte_id[byte] < 0))
            v->byte_id[byte] = id;
    }
}

/* memcmp(a, b, n) == 0 without a call for the short pieces that most
 * are. */
static inline int same_bytes(const char *a, const char *b, size_t n) {
    if (n > 16)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static int32_t find_from(const nt_vocab *v, const char *piece, size_t len,
                         uint32_t slot) {
    for (;;) {
        int32_t id = v->table[slot];
        if (id < 0)
            return -1;
        if (v->span[id].length == len && same_bytes(v->blob + v->span[id].offset, piece, len))
            return id;
        slot = (slot + 1) & v->table_mask;
    }
}

int32_t nt_vocab_find(const nt_vocab *v, const char *piece, size_t len) {
    return find_from(v, piece, len, (uint32_t)nt_hash_bytes(piece, len) & v->table_mask);
}

void nt_vocab_find_many(const nt_vocab *v, const nt_piece_ref *pieces, size_t n,
                        int32_t *ids) {
    enum { GROUP = 32 };
    uint32_t slots[GROUP];
    for (size_t g = 0; g < n; g += GROUP) {
        size_t count = n - g < GROUP ? n - g : GROUP;
        const nt_piece_ref *q = pieces + g;
        /* A lookup reads the slot, then the slot's span, then the bytes:
         * three dependent misses. Walking the group once per step keeps
         * 32 of each in flight instead of one. */
        for (size_t i = 0; i < count; i++) {
            slots[i] = (uint32_t)nt_hash_bytes(q[i].s, q[i].len) & v->table_mask;
            NT_PREFETCH(&v->table[slots[i]]);
        }
        for (size_t i = 0; i < count; i++) {
            int32_t id = v->table[slots[i]];
            if (id >= 0)
                NT_PREFETCH(&v->span[id]);
        }
        for (size_t i = 0; i < count; i++) {
            int32_t id = v->table[slots[i]];
            if (id >= 0)
                NT_PREFETCH(v->blob + v->span[id].offset);
        }
        for (size_t i = 0; i < count; i++)
            ids[g + i] = find_from(v, q[i].s, q[i].len, slots[i]);
    }
}

void nt_vocab_free(nt_vocab *v) {
    if (!v)
        return;
    free(v->blob);
    free(v->span);
    free(v->score);
    free(v->kind);
    free(v->table);
    memset(v, 0, sizeof *v);
}
