/*
 * unicode.h - UTF-8 coding and Unicode normalization (NFC, NFKC, NFD, NFKD).
 *
 * HF tokenizers run the input through a normalizer before the model sees
 * it; their `NFC` and `NFKC` normalizers (Rust's unicode-normalization
 * crate) implement UAX #15 exactly, and so does this file, so that a text
 * tokenizes to the same ids here as in Python. The data comes from the
 * Unicode Character Database by tools/gen_unicode_tables.py (see
 * unicode_tables.h for the version).
 *
 * Tokenizers also meet text that is not valid UTF-8. Normalization never
 * drops it: each byte that does not start a valid sequence is copied as it
 * is and acts as a starter (nothing composes or reorders across it).
 *
 * Everything here is reentrant: the tables are const and each call keeps
 * its state on the stack or in memory it allocates and frees.
 */
#ifndef NT_TOKENIZER_UNICODE_H
#define NT_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum nt_unicode_form {
    NT_UNICODE_NFC,
    NT_UNICODE_NFKC,
    NT_UNICODE_NFD,
    NT_UNICODE_NFKD
} nt_unicode_form;

/*
 * Decodes one UTF-8 sequence at s[0..len); returns its length (1..4) and the
 * code point in *cp, or 0 for an invalid/truncated/overlong/surrogate
 * sequence (and for len == 0). Strict RFC 3629: nothing above U+10FFFF.
 */
int nt_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Encodes cp (<= 0x10FFFF, not a surrogate) into out (4 bytes room);
 * returns its length, 0 if invalid. */
int nt_utf8_encode(uint32_t cp, char *out);

/*
 * Normalizes UTF-8 text. Returns a malloc'd NUL-terminated string (length
 * in *out_len, which may be NULL), or NULL on allocation failure. Invalid
 * UTF-8 bytes are passed through unchanged (each invalid byte copied as is,
 * treated as a starter) so callers never lose input. s may be NULL when len
 * is 0. Text already in the form is copied, not rebuilt. An unknown form
 * also gives NULL.
 */
char *nt_unicode_normalize(const char *s, size_t len, nt_unicode_form form,
                           size_t *out_len);

/*
 * Same, but also returns in *out_map (when out_map is not NULL) a malloc'd
 * array of *out_len entries (at least one allocated, so it can always be
 * freed): for each output byte, the index of the input byte it came from.
 * A code point that comes out unchanged maps byte for byte onto its input
 * bytes; every byte of a code point that was changed, produced by a
 * decomposition or formed by a composition maps to the first byte of the
 * input character it came from (for a composition: the starter's).
 * Returns NULL, with nothing allocated, on allocation failure (or an
 * unknown form).
 */
char *nt_unicode_normalize_map(const char *s, size_t len, nt_unicode_form form,
                               size_t *out_len, size_t **out_map);

/* 1 if cp has the Unicode White_Space property, else 0. */
int nt_unicode_is_whitespace(uint32_t cp);

/* The canonical combining class of cp (0 for starters and invalid cp). */
int nt_unicode_combining_class(uint32_t cp);

/*
 * Whitespace as JavaScript's String.prototype.trim() sees it (WhiteSpace
 * and LineTerminator: tab, LF, VT, FF, CR, space, NBSP, U+1680,
 * U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF).
 * tokenizers.js strips with it, and so does @huggingface/jinja's strip(),
 * which the chat template uses. The lengths are bytes of s[0..n).
 */
int nt_js_space(uint32_t cp);
size_t nt_js_leading_space(const char *s, size_t n);
size_t nt_js_trailing_space(const char *s, size_t n);

#endif
