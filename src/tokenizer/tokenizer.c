/*
 * tokenizer.c - the public tokenizer API, shared helpers, and the
 * streaming decoder.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/gguf.h"
#include "tokenizer/tokenizer_impl.h"

/* ---- matcher -------------------------------------------------------------- */

typedef struct by_length {
    int32_t index;
    size_t len;
} by_length;

static int longer_first(const void *a, const void *b) {
    const by_length *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

nt_status nt_matcher_init(nt_matcher *m, const char *const *texts,
                          const size_t *lens, int n, nt_error *err) {
    memset(m, 0, sizeof *m);
    by_length *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    m->token = malloc((size_t)(n > 0 ? n : 1) * sizeof *m->token);
    m->text = malloc((size_t)(n > 0 ? n : 1) * sizeof *m->text);
    m->len = malloc((size_t)(n > 0 ? n : 1) * sizeof *m->len);
    if (!order || !m->token || !m->text || !m->len) {
        free(order);
        nt_matcher_free(m);
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (texts[i] && lens[i] > 0)
            order[k++] = (by_length){i, lens[i]};
    qsort(order, (size_t)k, sizeof *order, longer_first);
    for (int i = 0; i < k; i++) {
        m->token[i] = order[i].index;
        m->text[i] = texts[order[i].index];
        m->len[i] = order[i].len;
        m->first[(unsigned char)m->text[i][0]] = 1;
    }
    m->n = k;
    free(order);
    return NT_OK;
}

int nt_matcher_match(const nt_matcher *m, const char *text, size_t len,
                     size_t at, size_t *match_len) {
    if (m->n == 0 || !m->first[(unsigned char)text[at]])
        return -1;
    for (int i = 0; i < m->n; i++)
        if (m->len[i] <= len - at && memcmp(text + at, m->text[i], m->len[i]) == 0) {
            *match_len = m->len[i];
            return m->token[i];
        }
    return -1;
}

void nt_matcher_free(nt_matcher *m) {
    free(m->token);
    free(m->text);
    free(m->len);
    memset(m, 0, sizeof *m);
}

/* ---- lossy UTF-8 ------------------------------------------------------------ */

int nt_utf8_append_lossy(nt_buf *out, const unsigned char *b, size_t n) {
    static const char replacement[] = "\xEF\xBF\xBD";
    size_t i = 0;
    while (i < n) {
        unsigned char c = b[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            need = 0;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi = 0x8F;
        } else {
            if (!nt_buf_add(out, replacement, 3))
                return 0;
            i++;
            continue;
        }
        /* Take continuation bytes while they fit; the first has the
         * narrowed range. A shortfall is one maximal subpart: one U+FFFD. */
        size_t k = 1;
        while (k <= need && i + k < n) {
            unsigned char d = b[i + k];
            if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF))
                break;
            k++;
        }
        if (k == need + 1) {
            if (!nt_buf_add(out, (const char *)b + i, k))
                return 0;
        } else if (!nt_buf_add(out, replacement, 3)) {
            return 0;
        }
        i += k;
    }
    return 1;
}

/* ---- chunks ------------------------------------------------------------------- */

/* Chunks are at least this long (the text between two barriers decides). */
#define CHUNK_BYTES (4u << 10)

static void clear_bytes(nt_tokenizer *tok, const char *s, size_t n) {
    for (size_t i = 0; s && i < n; i++)
        if ((unsigned char)s[i] < 128)
            tok->barrier[(unsigned char)s[i]] = 0;
}

static size_t count_chars(const char *s, size_t n) {
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    return chars;
}

void nt_tokenizer_find_barriers(nt_tokenizer *tok) {
    tok->chunk_bytes = CHUNK_BYTES;
    for (int b = 0; b < 128; b++)
        tok->barrier[b] = b != ' ';
    for (int id = 0; id < tok->vocab.n; id++) {
        size_t len;
        const char *p = nt_vocab_piece(&tok->vocab, id, &len);
        if (count_chars(p, len) >= 2 && tok->vocab.kind[id] != NT_PIECE_BYTE &&
            tok->vocab.kind[id] != NT_PIECE_CONTROL && tok->vocab.kind[id] != NT_PIECE_UNKNOWN)
            clear_bytes(tok, p, len);
    }
    int lstrips = 0;
    for (int i = 0; i < tok->n_added; i++) {
        clear_bytes(tok, tok->added[i].content, tok->added[i].len);
        clear_bytes(tok, tok->added[i].normalized_content, tok->added[i].normalized_len);
        lstrips |= tok->added[i].normalized && (tok->added[i].lstrip || tok->added[i].rstrip);
    }
    nt_hf_step *lists[] = {tok->normalizers, tok->pre_tokenizers};
    int counts[] = {tok->n_normalizers, tok->n_pre_tokenizers};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < counts[l]; i++) {
            clear_bytes(tok, lists[l][i].a, lists[l][i].a_len);
            clear_bytes(tok, lists[l][i].b, lists[l][i].b_len);
        }
    /* A normalized added token that strips whitespace beside it could
     * reach across a chunk's end; such files are encoded whole. */
    if (lstrips)
        memset(tok->barrier, 0, sizeof tok->barrier);
}

size_t nt_tokenizer_chunk_end(const nt_tokenizer *tok, const char *text, size_t len,
                              size_t from) {
    if (len - from <= tok->chunk_bytes)
        return len;
    for (size_t p = from + tok->chunk_bytes; p + 1 < len; p++) {
        unsigned char c = (unsigned char)text[p], next = (unsigned char)text[p + 1];
        /* Cut after a barrier followed by ASCII: nothing after it can
         * combine with it (Unicode normalization included). */
        if (c < 128 && tok->barrier[c] && next < 128)
            return p + 1;
    }
    return len;
}

/* ---- loading ------------------------------------------------------------------ */

static int is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

nt_tokenizer *nt_tokenizer_load(const char *path, nt_error *err) {
    nt_error_clear(err);
    if (!path) {
        nt_fail(err, NT_ERR_ARGUMENT, "no tokenizer path given");
        return NULL;
    }
    nt_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        nt_fail(err, NT_ERR_IO, "%s: no such file or directory", path);
        free(tok);
        return NULL;
    }
    nt_status s;
    if (S_ISDIR(st.st_mode)) {
        char json[4096], model[4096];
        snprintf(json, sizeof json, "%s/tokenizer.json", path);
        snprintf(model, sizeof model, "%s/tokenizer.model", path);
        if (is_regular_file(json))
            s = nt_hf_tokenizer_load(tok, json, err);
        else if (is_regular_file(model))
            s = nt_spm_tokenizer_load(tok, model, err);
        else
            s = nt_fail(err, NT_ERR_IO, "%s: no tokenizer.json or tokenizer.model", path);
    } else if (ends_with(path, ".json")) {
        s = nt_hf_tokenizer_load(tok, path, err);
    } else if (nt_gguf_is_gguf(path)) {
        s = nt_gguf_tokenizer_load(tok, path, err);
    } else {
        s = nt_spm_tokenizer_load(tok, path, err);
    }
    if (s != NT_OK) {
        nt_tokenizer_free(tok);
        return NULL;
    }
    nt_tokenizer_find_barriers(tok);
    return tok;
}

void nt_tokenizer_free(nt_tokenizer *tok) {
    if (!tok)
        return;
    nt_hf_tokenizer_free(tok);
    nt_matcher_free(&tok->user_defined);
    free(tok->unk_surface);
    free(tok->is_special);
    nt_vocab_free(&tok->vocab);
    free(tok);
}

int nt_tokenizer_n_vocab(const nt_tokenizer *tok) { return tok->vocab.n; }
int32_t nt_tokenizer_bos(const nt_tokenizer *tok) { return tok->vocab.bos_id; }
int32_t nt_tokenizer_eos(const nt_tokenizer *tok) { return tok->vocab.eos_id; }

const char *nt_tokenizer_piece(const nt_tokenizer *tok, int32_t id, size_t *len) {
    size_t n = 0;
    const char *p = NULL;
    if (tok && id >= 0 && id < tok->vocab.n)
        p = nt_vocab_piece(&tok->vocab, id, &n);
    if (len)
        *len = n;
    return p;
}

int32_t nt_tokenizer_find(const nt_tokenizer *tok, const char *piece, size_t len) {
    return nt_vocab_find(&tok->vocab, piece, len);
}

const char *nt_tokenizer_format(const nt_tokenizer *tok) {
    return tok->format == NT_FORMAT_HF ? "tokenizer.json" : "tokenizer.model";
}

/* ---- encode / decode ---------------------------------------------------------- */

nt_status nt_tokenize(const nt_tokenizer *tok, const char *text, size_t len,
                      unsigned flags, int32_t **ids, size_t *n_ids, nt_error *err) {
    nt_error_clear(err);
    if (!tok || (!text && len > 0) || !ids || !n_ids)
        return nt_fail(err, NT_ERR_ARGUMENT, "nt_tokenize: invalid arguments");
    *ids = NULL;
    *n_ids = 0;
    nt_ids out = {0};
    nt_status s = NT_OK;
    if ((flags & NT_TOKENIZE_BOS) && tok->vocab.bos_id >= 0 &&
        !nt_ids_push(&out, tok->vocab.bos_id))
        s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    if (s == NT_OK && len > 0)
        s = tok->format == NT_FORMAT_HF ? nt_hf_encode(tok, text, len, flags, &out, err)
                                        : nt_spm_encode(tok, text, len, &out, err);
    if (s != NT_OK) {
        nt_ids_free(&out);
        return s;
    }
    *ids = out.ids;
    *n_ids = out.n;
    return NT_OK;
}

static nt_status decode_into(const nt_tokenizer *tok, const int32_t *ids, size_t n,
                             unsigned flags, nt_buf *out, nt_error *err) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok->vocab.n)
            return nt_fail(err, NT_ERR_ARGUMENT,
                           "token %d (at index %zu) is outside the vocabulary of %d",
                           (int)ids[i], i, tok->vocab.n);
    if (!nt_buf_reserve(out, 0))
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    out->s[out->n] = '\0';
    return tok->format == NT_FORMAT_HF ? nt_hf_decode(tok, ids, n, flags, out, err)
                                       : nt_spm_decode(tok, ids, n, flags, out, err);
}

char *nt_detokenize(const nt_tokenizer *tok, const int32_t *ids, size_t n_ids,
                    unsigned flags, size_t *len, nt_error *err) {
    nt_error_clear(err);
    if (!tok || (!ids && n_ids > 0)) {
        nt_fail(err, NT_ERR_ARGUMENT, "nt_detokenize: invalid arguments");
        return NULL;
    }
    nt_buf out = {0};
    if (decode_into(tok, ids, n_ids, flags, &out, err) != NT_OK) {
        nt_buf_free(&out);
        return NULL;
    }
    if (len)
        *len = out.n;
    return out.s;
}

/* ---- streaming ---------------------------------------------------------------- */

/*
 * The decoders of both formats are local except in two places: a run of
 * byte pieces decodes as a whole (a character may span several), and the
 * start of the text may lose a space (and, with tokenizer.json, the space
 * clean-up rewrites " !" as "!"). So the stream keeps its ids, decodes
 * them all whenever a non-byte piece completes a run, and hands out what
 * extends the text already handed out. Trailing byte pieces, and a tail
 * the clean-up could still rewrite, wait for the next id or the flush. Decoding everything each time costs O(n^2) bytes
 * copied over a stream; for the few thousand tokens of a reply that is
 * microseconds per token.
 */
struct nt_detokenizer {
    const nt_tokenizer *tok;
    unsigned flags;
    nt_ids ids;
    nt_buf text;       /* the decode of all ids up to the last non-byte one */
    size_t emitted;    /* bytes of it handed out */
};

nt_detokenizer *nt_detokenizer_new(const nt_tokenizer *tok, unsigned flags,
                                   nt_error *err) {
    nt_error_clear(err);
    nt_detokenizer *d = tok ? calloc(1, sizeof *d) : NULL;
    if (!d) {
        nt_fail(err, tok ? NT_ERR_NO_MEMORY : NT_ERR_ARGUMENT,
                "cannot create a streaming decoder");
        return NULL;
    }
    d->tok = tok;
    d->flags = flags;
    return d;
}

static int is_byte_piece(const nt_tokenizer *tok, int32_t id) {
    if (tok->vocab.kind[id] == NT_PIECE_BYTE)
        return 1;
    size_t len;
    const char *p = nt_vocab_piece(&tok->vocab, id, &len);
    return tok->format == NT_FORMAT_HF && nt_byte_piece_value(p, len) >= 0;
}

/* Decodes ids[0..n) and returns what extends the emitted text. */
static const char *advance(nt_detokenizer *d, size_t n, int final, size_t *len,
                           nt_error *err) {
    nt_buf fresh = {0};
    if (decode_into(d->tok, d->ids.ids, n, d->flags, &fresh, err) != NT_OK) {
        nt_buf_free(&fresh);
        return NULL;
    }
    /* Only text that extends what was handed out can be handed out; the
     * decoders we support always extend it. */
    size_t start = d->emitted;
    if (fresh.n < d->emitted ||
        (d->emitted > 0 && memcmp(fresh.s, d->text.s, d->emitted) != 0)) {
        nt_buf_free(&fresh);
        nt_fail(err, NT_ERR_FORMAT, "streaming decode: the text changed behind the stream");
        return NULL;
    }
    nt_buf_free(&d->text);
    d->text = fresh;
    /* Hold back what a later id could still change: the tail that space
     * clean-up may rewrite ("hello " before a "!"). */
    size_t keep = final ? 0 : nt_hf_cleanup_holdback(d->tok, d->text.s, d->text.n);
    size_t end = d->text.n - keep > d->emitted ? d->text.n - keep : d->emitted;
    d->emitted = end;
    *len = end - start;
    return d->text.s + start;
}

const char *nt_detokenizer_push(nt_detokenizer *d, int32_t id, size_t *len,
                                nt_error *err) {
    nt_error_clear(err);
    *len = 0;
    if (id < 0 || id >= d->tok->vocab.n) {
        nt_fail(err, NT_ERR_ARGUMENT, "token %d is outside the vocabulary of %d",
                (int)id, d->tok->vocab.n);
        return NULL;
    }
    if (!nt_ids_push(&d->ids, id)) {
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    if (is_byte_piece(d->tok, id))
        return "";
    return advance(d, d->ids.n, 0, len, err);
}

const char *nt_detokenizer_flush(nt_detokenizer *d, size_t *len, nt_error *err) {
    nt_error_clear(err);
    *len = 0;
    return advance(d, d->ids.n, 1, len, err);
}

void nt_detokenizer_free(nt_detokenizer *d) {
    if (!d)
        return;
    nt_ids_free(&d->ids);
    nt_buf_free(&d->text);
    free(d);
}
