/*
 * spm.c - SentencePiece's rules, for tokenizer.model files.
 *
 * Encoding follows sentencepiece 0.1.97 (Debian's, which the tests compare
 * against) for BPE models with the identity normalizer:
 *
 *   1. normalize: optionally drop leading, trailing and repeated spaces;
 *      prepend the "dummy prefix" U+2581; turn spaces into U+2581; replace
 *      each malformed UTF-8 byte by U+FFFD. User-defined symbols pass
 *      through untouched.
 *   2. BPE by score over the normalized text, user-defined symbols kept
 *      whole; control symbols (<s>, </s>) are never recognized in text.
 *   3. a symbol that is no piece becomes its bytes' <0xXX> pieces (byte
 *      fallback) or <unk>.
 *
 * Decoding drops control symbols, turns U+2581 back into spaces, removes
 * the dummy prefix's space from the first piece, and decodes runs of byte
 * pieces as UTF-8 with each malformed byte shown as U+FFFD.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

#define SPACE_SYMBOL "\xE2\x96\x81"  /* U+2581 */

static nt_status tokenizer_from_model(nt_tokenizer *tok, nt_spm_model m,
                                      const char *path, nt_error *err);

nt_status nt_spm_tokenizer_load(nt_tokenizer *tok, const char *path, nt_error *err) {
    nt_spm_model m;
    nt_status s = nt_spm_model_load(path, &m, err);
    if (s != NT_OK)
        return s;
    return tokenizer_from_model(tok, m, path, err);
}

nt_status nt_spm_tokenizer_parse(nt_tokenizer *tok, const unsigned char *data,
                                 size_t len, const char *path, nt_error *err) {
    nt_spm_model m;
    nt_status s = nt_spm_model_parse(data, len, path, &m, err);
    if (s != NT_OK)
        return s;
    return tokenizer_from_model(tok, m, path, err);
}

/* Takes over (and frees) the model. */
static nt_status tokenizer_from_model(nt_tokenizer *tok, nt_spm_model m,
                                      const char *path, nt_error *err) {
    nt_status s = NT_OK;
    if (m.model_type != NT_SPM_MODEL_BPE) {
        static const char *names[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
        s = nt_fail(err, NT_ERR_UNSUPPORTED,
                    "%s: model type %s is not supported (only BPE)", path,
                    m.model_type >= 1 && m.model_type <= 4 ? names[m.model_type] : "?");
    } else if (m.precompiled_charsmap_len > 0) {
        s = nt_fail(err, NT_ERR_UNSUPPORTED,
                    "%s: normalizer \"%s\" (a precompiled character map) is not "
                    "supported; only the identity normalizer is",
                    path, m.normalizer_name ? m.normalizer_name : "");
    } else if (m.treat_whitespace_as_suffix) {
        s = nt_fail(err, NT_ERR_UNSUPPORTED,
                    "%s: treat_whitespace_as_suffix is not supported", path);
    }
    nt_vocab_builder b;
    if (s == NT_OK)
        s = nt_vocab_begin(&tok->vocab, &b, m.n_pieces, err);
    for (int i = 0; s == NT_OK && i < m.n_pieces; i++)
        s = nt_vocab_add(&b, m.pieces[i].text, m.pieces[i].len, m.pieces[i].score,
                         (nt_piece_kind)m.pieces[i].type, err);
    if (s == NT_OK)
        s = nt_vocab_finish(&b, path, err);
    if (s == NT_OK) {
        nt_vocab *v = &tok->vocab;
        v->unk_id = m.unk_id;
        v->bos_id = m.bos_id;
        v->eos_id = m.eos_id;
        v->pad_id = m.pad_id;
        tok->format = NT_FORMAT_SPM;
        tok->byte_fallback = m.byte_fallback;
        tok->add_dummy_prefix = m.add_dummy_prefix;
        tok->remove_extra_whitespaces = m.remove_extra_whitespaces;
        tok->escape_whitespaces = m.escape_whitespaces;
        tok->unk_surface = strdup(m.unk_surface ? m.unk_surface : " \xE2\x81\x87 ");
        tok->is_special = calloc((size_t)v->n, 1);
        const char **texts = calloc((size_t)v->n, sizeof *texts);
        size_t *lens = calloc((size_t)v->n, sizeof *lens);
        if (!tok->unk_surface || !tok->is_special || !texts || !lens) {
            s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        } else {
            for (int i = 0; i < v->n; i++) {
                tok->is_special[i] = v->kind[i] == NT_PIECE_CONTROL;
                if (v->kind[i] == NT_PIECE_USER_DEFINED)
                    texts[i] = nt_vocab_piece(v, i, &lens[i]);
            }
            s = nt_matcher_init(&tok->user_defined, texts, lens, v->n, err);
        }
        free(texts);
        free(lens);
    }
    nt_spm_model_free(&m);
    return s;
}

/* ---- encoding ---------------------------------------------------------------- */

static size_t user_defined_at(const void *user, const char *text, size_t len,
                              size_t at) {
    size_t n = 0;
    return nt_matcher_match(user, text, len, at, &n) >= 0 ? n : 0;
}

/*
 * SentencePiece's Normalizer::Normalize with no character map, for one
 * chunk of a text: `first` and `last` say whether the chunk begins or ends
 * the text (the dummy prefix and the trimming of spaces happen there). A
 * chunk ends just after a barrier, never a space, so the run-of-spaces
 * state need not carry over.
 */
static int normalize(const nt_tokenizer *tok, const char *in, size_t len, int first,
                     int last, nt_buf *out) {
    const char *space = tok->escape_whitespaces ? SPACE_SYMBOL : " ";
    size_t space_len = strlen(space);
    size_t at = 0;
    out->n = 0;
    if (first && tok->remove_extra_whitespaces)
        while (at < len && in[at] == ' ')
            at++;
    if (at == len)
        return nt_buf_reserve(out, 0);
    if (first && tok->add_dummy_prefix && !nt_buf_add(out, space, space_len))
        return 0;
    int prev_space = first && tok->remove_extra_whitespaces;
    while (at < len) {
        const char *piece = in + at;
        size_t consumed, piece_len;
        uint32_t cp;
        if (nt_matcher_match(&tok->user_defined, in, len, at, &consumed) >= 0) {
            piece_len = consumed;
        } else if ((consumed = (size_t)nt_utf8_decode(in + at, len - at, &cp)) > 0) {
            piece_len = consumed;
        } else {
            piece = "\xEF\xBF\xBD";
            piece_len = 3;
            consumed = 1;
        }
        size_t skip = 0;
        while (prev_space && skip < piece_len && piece[skip] == ' ')
            skip++;
        if (skip < piece_len) {
            for (size_t i = skip; i < piece_len; i++) {
                int ok = piece[i] == ' ' ? nt_buf_add(out, space, space_len)
                                         : nt_buf_add(out, piece + i, 1);
                if (!ok)
                    return 0;
            }
            prev_space = piece[piece_len - 1] == ' ';
        }
        at += consumed;
        if (!tok->remove_extra_whitespaces)
            prev_space = 0;
    }
    if (last && tok->remove_extra_whitespaces)
        while (out->n >= space_len && memcmp(out->s + out->n - space_len, space, space_len) == 0)
            out->n -= space_len;
    return nt_buf_reserve(out, 0);
}

nt_status nt_spm_encode(const nt_tokenizer *tok, const char *text, size_t len,
                        nt_ids *out, nt_error *err) {
    nt_buf norm = {0};
    nt_bpe_scratch scratch = {0};
    nt_status s = NT_OK;
    for (size_t from = 0; s == NT_OK && from < len;) {
        size_t end = nt_tokenizer_chunk_end(tok, text, len, from);
        if (!normalize(tok, text + from, end - from, from == 0, end == len, &norm))
            s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
        else
            s = nt_bpe_encode_by_score(&tok->vocab, tok->byte_fallback, norm.s, norm.n,
                                       user_defined_at, &tok->user_defined, &scratch,
                                       out, err);
        from = end;
    }
    nt_bpe_scratch_free(&scratch);
    nt_buf_free(&norm);
    return s;
}

/* ---- decoding ------------------------------------------------------------------ */

/* Bytes as UTF-8, each malformed byte one U+FFFD (SentencePiece's rule). */
static int append_bytes(nt_buf *out, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = nt_utf8_decode((const char *)b + i, n - i, &cp);
        if (k > 0) {
            if (!nt_buf_add(out, (const char *)b + i, (size_t)k))
                return 0;
            i += (size_t)k;
        } else {
            if (!nt_buf_add(out, "\xEF\xBF\xBD", 3))
                return 0;
            i++;
        }
    }
    return 1;
}

nt_status nt_spm_decode(const nt_tokenizer *tok, const int32_t *ids, size_t n,
                        unsigned flags, nt_buf *out, nt_error *err) {
    const nt_vocab *v = &tok->vocab;
    unsigned char *bytes = malloc(n > 0 ? n : 1);
    size_t n_bytes = 0;
    int is_bos_ws = 1, bos_ws_seen = 0, ok = bytes != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        int id = ids[i];
        if (v->kind[id] == NT_PIECE_BYTE) {
            size_t len;
            const char *p = nt_vocab_piece(v, id, &len);
            int value = nt_byte_piece_value(p, len);
            bytes[n_bytes++] = (unsigned char)(value >= 0 ? value : 0);
            continue;
        }
        ok = append_bytes(out, bytes, n_bytes);
        n_bytes = 0;
        if (bos_ws_seen || out->n > 0)
            is_bos_ws = 0;
        bos_ws_seen = 0;
        if (v->kind[id] == NT_PIECE_CONTROL)
            continue; /* invisible */
        if ((flags & NT_DETOKENIZE_SKIP_SPECIAL) && v->kind[id] == NT_PIECE_UNKNOWN)
            continue;
        size_t len;
        const char *p = nt_vocab_piece(v, id, &len);
        if (v->kind[id] == NT_PIECE_UNKNOWN) {
            ok = nt_buf_add(out, tok->unk_surface, strlen(tok->unk_surface));
            continue;
        }
        if (is_bos_ws && (tok->add_dummy_prefix || tok->remove_extra_whitespaces) &&
            len >= 3 && memcmp(p, SPACE_SYMBOL, 3) == 0) {
            p += 3;
            len -= 3;
            bos_ws_seen = !tok->remove_extra_whitespaces;
        }
        for (size_t k = 0; ok && k < len;) {
            if (len - k >= 3 && memcmp(p + k, SPACE_SYMBOL, 3) == 0) {
                ok = nt_buf_add(out, " ", 1);
                k += 3;
            } else {
                ok = nt_buf_add(out, p + k, 1);
                k++;
            }
        }
    }
    if (ok)
        ok = append_bytes(out, bytes, n_bytes);
    free(bytes);
    return ok ? NT_OK : nt_fail(err, NT_ERR_NO_MEMORY, "out of memory decoding");
}
