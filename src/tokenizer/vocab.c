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
    v->offset = malloc((size_t)b->cap * sizeof *v->offset);
    v->length = malloc((size_t)b->cap * sizeof *v->length);
    v->score = malloc((size_t)b->cap * sizeof *v->score);
    v->kind = malloc((size_t)b->cap);
    b->blob_cap = (size_t)b->cap * 8;
    v->blob = malloc(b->blob_cap);
    for (int i = 0; i < 256; i++)
        v->byte_id[i] = -1;
    v->unk_id = v->bos_id = v->eos_id = v->pad_id = -1;
    if (!v->offset || !v->length || !v->score || !v->kind || !v->blob) {
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
        uint32_t *off = realloc(v->offset, (size_t)cap * sizeof *off);
        if (off)
            v->offset = off;
        uint32_t *lens = realloc(v->length, (size_t)cap * sizeof *lens);
        if (lens)
            v->length = lens;
        float *sc = realloc(v->score, (size_t)cap * sizeof *sc);
        if (sc)
            v->score = sc;
        uint8_t *k = realloc(v->kind, (size_t)cap);
        if (k)
            v->kind = k;
        if (!off || !lens || !sc || !k)
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
    v->offset[v->n] = (uint32_t)b->blob_len;
    v->length[v->n] = (uint32_t)len;
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
    for (int id = 0; id < v->n; id++) {
        size_t len;
        const char *p = nt_vocab_piece(v, id, &len);
        uint32_t slot = (uint32_t)nt_hash_bytes(p, len) & v->table_mask;
        int placed = 0;
        while (v->table[slot] >= 0) {
            int other = v->table[slot];
            if (v->length[other] == len && memcmp(v->blob + v->offset[other], p, len) == 0) {
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
        if (v->kind[id] == NT_PIECE_BYTE || v->kind[id] == NT_PIECE_NORMAL) {
            int byte = nt_byte_piece_value(p, len);
            if (byte >= 0 && (v->kind[id] == NT_PIECE_BYTE || v->byte_id[byte] < 0))
                v->byte_id[byte] = id;
        }
    }
    return NT_OK;
}

int32_t nt_vocab_find(const nt_vocab *v, const char *piece, size_t len) {
    uint32_t slot = (uint32_t)nt_hash_bytes(piece, len) & v->table_mask;
    for (;;) {
        int32_t id = v->table[slot];
        if (id < 0)
            return -1;
        if (v->length[id] == len && memcmp(v->blob + v->offset[id], piece, len) == 0)
            return id;
        slot = (slot + 1) & v->table_mask;
    }
}

void nt_vocab_free(nt_vocab *v) {
    if (!v)
        return;
    free(v->blob);
    free(v->offset);
    free(v->length);
    free(v->score);
    free(v->kind);
    free(v->table);
    memset(v, 0, sizeof *v);
}
