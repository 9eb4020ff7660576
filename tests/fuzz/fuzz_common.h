/*
 * fuzz_common.h - what the libFuzzer targets share: handing fuzz bytes to
 * loaders that take a path, and driving a loaded tokenizer.
 *
 * Each target defines LLVMFuzzerTestOneInput, frees everything it gets
 * (leak detection is on) and prints nothing per input.
 */
#ifndef NT_FUZZ_COMMON_H
#define NT_FUZZ_COMMON_H

#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nemotron.h"
#include "tokenizer/tokenizer_impl.h"

/*
 * A path whose file holds exactly data[0..size): one memfd, rewritten for
 * each input, named through /proc/self/fd. NULL if it cannot be written
 * (the input is then skipped; it never fails the run).
 */
static inline const char *fuzz_as_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("nt-fuzz", 0);
        if (fd < 0)
            return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0)
        return NULL;
    for (size_t at = 0; at < size;) {
        ssize_t n = pwrite(fd, data + at, size - at, (off_t)at);
        if (n <= 0)
            return NULL;
        at += (size_t)n;
    }
    return path;
}

/* An empty tokenizer for an internal format loader to fill. */
static inline nt_tokenizer *fuzz_tokenizer_new(void) {
    nt_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok)
        abort();
    return tok;
}

/* Decodes ids whole, skipping specials, and streamed; frees nothing of
 * the caller's. */
static inline void fuzz_decode(const nt_tokenizer *tok, const int32_t *ids, size_t n) {
    nt_error err;
    for (unsigned flags = 0; flags <= NT_DETOKENIZE_SKIP_SPECIAL; flags++) {
        size_t len;
        free(nt_detokenize(tok, ids, n, flags, &len, &err));
    }
    nt_detokenizer *d = nt_detokenizer_new(tok, 0, &err);
    if (!d)
        return;
    size_t len;
    for (size_t i = 0; i < n; i++)
        if (!nt_detokenizer_push(d, ids[i], &len, &err))
            break;
    nt_detokenizer_flush(d, &len, &err);
    nt_detokenizer_free(d);
}

/* Encodes `text` with every flag combination and decodes the result. */
static inline void fuzz_round_trip(const nt_tokenizer *tok, const char *text, size_t len) {
    for (unsigned flags = 0; flags <= (NT_TOKENIZE_BOS | NT_TOKENIZE_NO_SPECIAL); flags++) {
        int32_t *ids = NULL;
        size_t n = 0;
        nt_error err;
        if (nt_tokenize(tok, text, len, flags, &ids, &n, &err) == NT_OK)
            fuzz_decode(tok, ids, n);
        free(ids);
    }
}

/* Inputs longer than this are encoded only in their first bytes: the
 * point is the loader, and encoding time grows with the text. */
#define FUZZ_MAX_TEXT 512

/*
 * Finishes a tokenizer a format loader filled (as nt_tokenizer_load
 * does), encodes a fixed string and the fuzz bytes, decodes every id
 * and a few out of range, and frees the tokenizer. `loaded` is the
 * loader's status; on failure the tokenizer is only freed.
 */
static inline void fuzz_tokenizer_finish(nt_tokenizer *tok, nt_status loaded,
                                         const uint8_t *data, size_t size) {
    if (loaded == NT_OK) {
        nt_tokenizer_find_barriers(tok);
        static const char fixed[] =
            "<extra_id_0>System\n  Hello, world! <s>caf\xC3\xA9 \xE2\x96\x81 42\t</s>\n\n";
        fuzz_round_trip(tok, fixed, sizeof fixed - 1);
        fuzz_round_trip(tok, (const char *)data, size < FUZZ_MAX_TEXT ? size : FUZZ_MAX_TEXT);
        int32_t n_vocab = nt_tokenizer_n_vocab(tok);
        int32_t edge[] = {0, n_vocab - 1, n_vocab, -1, nt_tokenizer_bos(tok),
                          nt_tokenizer_eos(tok)};
        fuzz_decode(tok, edge, sizeof edge / sizeof *edge);
        size_t len;
        const char *piece = nt_tokenizer_piece(tok, n_vocab - 1, &len);
        if (piece)
            nt_tokenizer_find(tok, piece, len);
    }
    nt_tokenizer_free(tok);
}

#endif
