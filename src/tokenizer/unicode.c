/*
 * unicode.c - UTF-8 coding and Unicode normalization (UAX #15).
 *
 * Why this file exists: HF tokenizers normalize text (NFC, NFKC) before
 * splitting it, and the library may not link ICU, so it normalizes by
 * itself, from tables that tools/gen_unicode_tables.py derives from the
 * Unicode Character Database (unicode_tables.h).
 *
 * How it works, in short:
 *
 *   - The input is scanned once with the quick-check algorithm of UAX #15
 *     (section 9): a character whose NFx_QC is Yes and whose combining
 *     classes are in order leaves the text as it is. Runs of ASCII are
 *     skipped eight bytes at a time. Text that passes is not copied
 *     character by character: accepted input is copied in bulk with one
 *     memcpy() when something has to change, or at the end.
 *
 *   - A character that fails the check (QC No or Maybe, or a combining
 *     mark out of order) makes the normalizer take the smallest piece of
 *     text around it that can be normalized on its own: from the last
 *     "stable" character before it (combining class 0 and QC Yes: nothing
 *     before it can interact with it or anything after it) up to the next
 *     stable character. UAX #15 guarantees that normalizing such pieces one
 *     by one equals normalizing the whole. Only that piece is decoded into
 *     code points, fully decomposed, canonically ordered, recomposed (NFC,
 *     NFKC) and encoded again.
 *
 *   - Decompositions are stored fully applied, so decomposing a character
 *     is one table lookup. Canonical ordering is a stable sort of each run
 *     of non-starters: insertion sort for short runs, a counting sort by
 *     combining class for long ones, so that hostile input (a million
 *     combining marks) stays linear. Hangul syllables are decomposed and
 *     composed arithmetically (Unicode 3.12), not looked up.
 *
 *   - Bytes that are not valid UTF-8 are copied one by one and treated as
 *     starters that compose with nothing: a tokenizer's byte fallback still
 *     sees them, and no valid text around them changes meaning.
 *
 *   - The byte map (nt_unicode_normalize_map) follows each code point
 *     through the piece: it remembers the input offset of the character it
 *     came from, and whether it is still that very character (then its
 *     bytes map one to one).
 *
 * There is no global or static mutable state; the tables are const.
 */
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/unicode_tables.h"

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                     */
/* ------------------------------------------------------------------------ */

/* Strict RFC 3629 decoding of one sequence; len >= 1. */
static inline int utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    if (b0 < 0xC2) /* continuation byte, or C0/C1: overlong 2-byte lead */
        return 0;
    if (b0 < 0xE0) {
        if (len < 2 || (s[1] & 0xC0) != 0x80)
            return 0;
        *cp = ((uint32_t)(b0 & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (b0 < 0xF0) {
        if (len < 3)
            return 0;
        unsigned b1 = s[1];
        if ((b1 & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (b0 == 0xE0 && b1 < 0xA0) /* overlong */
            return 0;
        if (b0 == 0xED && b1 >= 0xA0) /* U+D800..U+DFFF */
            return 0;
        *cp = ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)(b1 & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    if (b0 < 0xF5) {
        if (len < 4)
            return 0;
        unsigned b1 = s[1];
        if ((b1 & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (b0 == 0xF0 && b1 < 0x90) /* overlong */
            return 0;
        if (b0 == 0xF4 && b1 >= 0x90) /* above U+10FFFF */
            return 0;
        *cp = ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)(b1 & 0x3F) << 12) |
              ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        return 4;
    }
    return 0;
}

int nt_utf8_decode(const char *s, size_t len, uint32_t *cp)
{
    if (s == NULL || len == 0)
        return 0;
    uint32_t c;
    int n = utf8_decode((const unsigned char *)s, len, &c);
    if (n && cp)
        *cp = c;
    return n;
}

int nt_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return 0;
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        o[0] = (unsigned char)(0xF0 | (cp >> 18));
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

/* Index of the first non-ASCII byte in s[i..len), or len. */
static size_t ascii_run_end(const unsigned char *s, size_t i, size_t len)
{
    while (i + 8 <= len) {
        uint64_t word;
        memcpy(&word, s + i, 8);
        if (word & UINT64_C(0x8080808080808080))
            break;
        i += 8;
    }
    while (i < len && s[i] < 0x80)
        i++;
    return i;
}

/* ------------------------------------------------------------------------ */
/* Character data                                                            */
/* ------------------------------------------------------------------------ */

#define HANGUL_S_BASE 0xAC00u
#define HANGUL_L_BASE 0x1100u
#define HANGUL_V_BASE 0x1161u
#define HANGUL_T_BASE 0x11A7u
#define HANGUL_L_COUNT 19u
#define HANGUL_V_COUNT 21u
#define HANGUL_T_COUNT 28u
#define HANGUL_N_COUNT (HANGUL_V_COUNT * HANGUL_T_COUNT)
#define HANGUL_S_COUNT (HANGUL_L_COUNT * HANGUL_N_COUNT)

/* ccc in bits 0-7, quick-check flags (NT_UCD_*) in bits 8-15. */
static inline unsigned char_class(uint32_t cp)
{
    if (cp >= NT_UCD_CLASS_LIMIT)
        return 0;
    uint32_t block = nt_ucd_class_stage1[cp >> NT_UCD_CLASS_SHIFT];
    uint32_t low = cp & ((1u << NT_UCD_CLASS_SHIFT) - 1);
    return nt_ucd_class_values[nt_ucd_class_stage2[(block << NT_UCD_CLASS_SHIFT) | low]];
}

/* Offset of cp's record in nt_ucd_decomp_data, 0 if none. */
static inline uint32_t char_record(uint32_t cp)
{
    if (cp >= NT_UCD_RECORD_LIMIT)
        return 0;
    uint32_t block = nt_ucd_record_stage1[cp >> NT_UCD_RECORD_SHIFT];
    uint32_t low = cp & ((1u << NT_UCD_RECORD_SHIFT) - 1);
    return nt_ucd_record_stage2[(block << NT_UCD_RECORD_SHIFT) | low];
}

int nt_unicode_combining_class(uint32_t cp)
{
    return (int)(char_class(cp) & 0xFF);
}

int nt_unicode_is_whitespace(uint32_t cp)
{
    size_t n = sizeof nt_ucd_white_space / sizeof nt_ucd_white_space[0];
    if (cp < nt_ucd_white_space[0][0] || cp > nt_ucd_white_space[n - 1][1])
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (cp < nt_ucd_white_space[i][0])
            return 0;
        if (cp <= nt_ucd_white_space[i][1])
            return 1;
    }
    return 0;
}

/* The primary composite of the pair (first, second), or 0 if none. */
static uint32_t compose_pair(uint32_t first, uint32_t second)
{
    if (first - HANGUL_L_BASE < HANGUL_L_COUNT) {
        if (second - HANGUL_V_BASE < HANGUL_V_COUNT)
            return HANGUL_S_BASE +
                   ((first - HANGUL_L_BASE) * HANGUL_V_COUNT + (second - HANGUL_V_BASE)) *
                       HANGUL_T_COUNT;
        return 0;
    }
    if (first - HANGUL_S_BASE < HANGUL_S_COUNT) {
        /* an LV syllable takes a trailing consonant U+11A8..U+11C2 */
        if ((first - HANGUL_S_BASE) % HANGUL_T_COUNT == 0 &&
            second - (HANGUL_T_BASE + 1) < HANGUL_T_COUNT - 1)
            return first + (second - HANGUL_T_BASE);
        return 0;
    }
    uint32_t rec = char_record(first);
    if (rec == 0)
        return 0;
    uint32_t list = NT_UCD_HDR_COMP_OFFSET(nt_ucd_decomp_data[rec]);
    if (list == 0)
        return 0;
    uint32_t count = nt_ucd_comp_data[list];
    const uint32_t *pairs = nt_ucd_comp_data + list + 1;
    for (uint32_t k = 0; k < count; k++) {
        if (pairs[2 * k] == second)
            return pairs[2 * k + 1];
        if (pairs[2 * k] > second)
            break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Normalizer state                                                          */
/* ------------------------------------------------------------------------ */

/*
 * A code point of the piece being normalized, packed: the code point, its
 * combining class, and whether it is still the input character at its
 * source offset (for the byte map).
 */
#define ENTRY_CP(e) ((e) & 0x1FFFFFu)
#define ENTRY_CCC(e) (((e) >> 21) & 0xFFu)
#define ENTRY_UNCHANGED 0x20000000u
#define ENTRY_MAKE(cp, ccc, unchanged) \
    ((cp) | ((uint32_t)(ccc) << 21) | ((unchanged) ? ENTRY_UNCHANGED : 0))

/* Runs of non-starters at least this long are counting-sorted. */
#define SHORT_RUN 32
#define PIECE_INLINE 64

typedef struct normalizer {
    const unsigned char *in;
    size_t in_len;
    nt_unicode_form form;
    int compose;             /* NFC, NFKC */
    int compat;              /* NFKC, NFKD */

    char *out;               /* output bytes, room for a NUL after out_len */
    size_t *map;             /* output byte -> input byte, when wanted */
    size_t out_len, out_cap;

    /* The piece being normalized: entries and their source offsets. */
    uint32_t *entry;
    size_t *source;
    size_t piece_len, piece_cap;
    uint32_t entry_inline[PIECE_INLINE];
    size_t source_inline[PIECE_INLINE];
} normalizer;

static int out_reserve(normalizer *nz, size_t extra)
{
    if (extra < nz->out_cap - nz->out_len) /* keeps one byte for the NUL */
        return 0;
    size_t need = nz->out_len + extra + 1;
    if (need < extra) /* overflow */
        return -1;
    size_t cap = nz->out_cap * 2;
    if (cap < need)
        cap = need;
    char *out = realloc(nz->out, cap);
    if (out == NULL)
        return -1;
    nz->out = out;
    if (nz->map) {
        if (cap > SIZE_MAX / sizeof(size_t))
            return -1;
        size_t *map = realloc(nz->map, cap * sizeof(size_t));
        if (map == NULL)
            return -1;
        nz->map = map;
    }
    nz->out_cap = cap;
    return 0;
}

/* Copies input bytes [from, to) to the output unchanged. */
static int out_copy(normalizer *nz, size_t from, size_t to)
{
    size_t n = to - from;
    if (n == 0)
        return 0;
    if (out_reserve(nz, n) != 0)
        return -1;
    memcpy(nz->out + nz->out_len, nz->in + from, n);
    if (nz->map) {
        size_t *map = nz->map + nz->out_len;
        for (size_t k = 0; k < n; k++)
            map[k] = from + k;
    }
    nz->out_len += n;
    return 0;
}

static int piece_reserve(normalizer *nz, size_t extra)
{
    if (extra <= nz->piece_cap - nz->piece_len)
        return 0;
    size_t need = nz->piece_len + extra;
    size_t cap = nz->piece_cap * 2;
    if (cap < need)
        cap = need;
    if (cap > SIZE_MAX / sizeof(size_t))
        return -1;
    uint32_t *entry = malloc(cap * sizeof *entry);
    size_t *source = malloc(cap * sizeof *source);
    if (entry == NULL || source == NULL) {
        free(entry);
        free(source);
        return -1;
    }
    memcpy(entry, nz->entry, nz->piece_len * sizeof *entry);
    memcpy(source, nz->source, nz->piece_len * sizeof *source);
    if (nz->entry != nz->entry_inline) {
        free(nz->entry);
        free(nz->source);
    }
    nz->entry = entry;
    nz->source = source;
    nz->piece_cap = cap;
    return 0;
}

/* Appends the full decomposition of cp (input offset `at`) to the piece. */
static int piece_append_decomposed(normalizer *nz, uint32_t cp, size_t at)
{
    if (piece_reserve(nz, NT_UCD_MAX_DECOMPOSITION) != 0)
        return -1;
    uint32_t *entry = nz->entry + nz->piece_len;
    size_t *source = nz->source + nz->piece_len;
    size_t n = 0;

    if (cp - HANGUL_S_BASE < HANGUL_S_COUNT) {
        uint32_t s = cp - HANGUL_S_BASE;
        uint32_t t = s % HANGUL_T_COUNT;
        entry[n++] = ENTRY_MAKE(HANGUL_L_BASE + s / HANGUL_N_COUNT, 0, 0);
        entry[n++] = ENTRY_MAKE(HANGUL_V_BASE + (s % HANGUL_N_COUNT) / HANGUL_T_COUNT, 0, 0);
        if (t != 0)
            entry[n++] = ENTRY_MAKE(HANGUL_T_BASE + t, 0, 0);
    } else {
        uint32_t rec = char_record(cp);
        const uint32_t *mapping = NULL;
        uint32_t mapping_len = 0;
        if (rec != 0) {
            uint32_t header = nt_ucd_decomp_data[rec];
            uint32_t canon_len = NT_UCD_HDR_CANON_LEN(header);
            if (!nz->compat) {
                mapping_len = canon_len;
                mapping = nt_ucd_decomp_data + rec + 1;
            } else {
                mapping_len = NT_UCD_HDR_COMPAT_LEN(header);
                mapping = nt_ucd_decomp_data + rec + 1 +
                          (NT_UCD_HDR_COMPAT_SHARED(header) ? 0 : canon_len);
            }
        }
        if (mapping_len == 0) {
            entry[n++] = ENTRY_MAKE(cp, char_class(cp) & 0xFF, 1);
        } else {
            for (uint32_t k = 0; k < mapping_len; k++)
                entry[n++] = ENTRY_MAKE(mapping[k], char_class(mapping[k]) & 0xFF, 0);
        }
    }
    for (size_t k = 0; k < n; k++)
        source[k] = at;
    nz->piece_len += n;
    return 0;
}

/* Stable sort of entries [lo, hi) (all non-starters) by combining class. */
static int sort_run(normalizer *nz, size_t lo, size_t hi)
{
    uint32_t *entry = nz->entry;
    size_t *source = nz->source;
    size_t n = hi - lo;
    if (n < SHORT_RUN) {
        for (size_t i = lo + 1; i < hi; i++) {
            uint32_t e = entry[i];
            size_t src = source[i];
            unsigned ccc = ENTRY_CCC(e);
            size_t j = i;
            while (j > lo && ENTRY_CCC(entry[j - 1]) > ccc) {
                entry[j] = entry[j - 1];
                source[j] = source[j - 1];
                j--;
            }
            entry[j] = e;
            source[j] = src;
        }
        return 0;
    }
    size_t start[257] = {0};
    for (size_t i = lo; i < hi; i++)
        start[ENTRY_CCC(entry[i]) + 1]++;
    for (int c = 1; c <= 256; c++)
        start[c] += start[c - 1];
    uint32_t *sorted_entry = malloc(n * sizeof *sorted_entry);
    size_t *sorted_source = malloc(n * sizeof *sorted_source);
    if (sorted_entry == NULL || sorted_source == NULL) {
        free(sorted_entry);
        free(sorted_source);
        return -1;
    }
    for (size_t i = lo; i < hi; i++) {
        size_t to = start[ENTRY_CCC(entry[i])]++;
        sorted_entry[to] = entry[i];
        sorted_source[to] = source[i];
    }
    memcpy(entry + lo, sorted_entry, n * sizeof *entry);
    memcpy(source + lo, sorted_source, n * sizeof *source);
    free(sorted_entry);
    free(sorted_source);
    return 0;
}

/* The canonical ordering algorithm over the whole piece. */
static int piece_reorder(normalizer *nz)
{
    size_t n = nz->piece_len;
    for (size_t i = 0; i < n;) {
        if (ENTRY_CCC(nz->entry[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && ENTRY_CCC(nz->entry[j]) != 0)
            j++;
        if (j - i > 1 && sort_run(nz, i, j) != 0)
            return -1;
        i = j;
    }
    return 0;
}

/* The canonical composition algorithm (UAX #15), in place. */
static void piece_compose(normalizer *nz)
{
    uint32_t *entry = nz->entry;
    size_t *source = nz->source;
    size_t n = nz->piece_len, kept = 0;
    size_t starter = 0;
    int have_starter = 0;
    int last_ccc = -1; /* -1: nothing kept since the starter */

    for (size_t i = 0; i < n; i++) {
        uint32_t e = entry[i];
        uint32_t cp = ENTRY_CP(e);
        int ccc = (int)ENTRY_CCC(e);
        /* not blocked: adjacent to the starter, or every character in
         * between has a lower, non-zero class */
        if (have_starter && (last_ccc < 0 || last_ccc < ccc)) {
            uint32_t composite = compose_pair(ENTRY_CP(entry[starter]), cp);
            if (composite != 0) {
                uint32_t original = 0;
                size_t at = source[starter];
                utf8_decode(nz->in + at, nz->in_len - at, &original);
                entry[starter] = ENTRY_MAKE(composite, 0, composite == original);
                continue;
            }
        }
        if (ccc == 0) {
            starter = kept;
            have_starter = 1;
            last_ccc = -1;
        } else {
            last_ccc = ccc;
        }
        entry[kept] = e;
        source[kept] = source[i];
        kept++;
    }
    nz->piece_len = kept;
}

static int piece_emit(normalizer *nz)
{
    if (nz->piece_len > (SIZE_MAX - 1) / 4 || out_reserve(nz, nz->piece_len * 4) != 0)
        return -1;
    char *out = nz->out + nz->out_len;
    size_t *map = nz->map ? nz->map + nz->out_len : NULL;
    size_t written = 0;
    for (size_t i = 0; i < nz->piece_len; i++) {
        uint32_t e = nz->entry[i];
        int len = nt_utf8_encode(ENTRY_CP(e), out + written);
        if (map) {
            size_t at = nz->source[i];
            size_t step = (e & ENTRY_UNCHANGED) ? 1 : 0;
            for (int k = 0; k < len; k++)
                map[written + (size_t)k] = at + step * (size_t)k;
        }
        written += (size_t)len;
    }
    nz->out_len += written;
    return 0;
}

/* Normalizes input [from, to), which is valid UTF-8, onto the output. */
static int normalize_piece(normalizer *nz, size_t from, size_t to)
{
    nz->piece_len = 0;
    for (size_t i = from; i < to;) {
        uint32_t cp;
        int n = utf8_decode(nz->in + i, to - i, &cp);
        if (n == 0) /* cannot happen: pieces end before invalid bytes */
            return -1;
        if (piece_append_decomposed(nz, cp, i) != 0)
            return -1;
        i += (size_t)n;
    }
    if (piece_reorder(nz) != 0)
        return -1;
    if (nz->compose)
        piece_compose(nz);
    return piece_emit(nz);
}

/* Quick-check flags that make a character fail the check, per form. */
static unsigned unstable_flags(nt_unicode_form form)
{
    switch (form) {
    case NT_UNICODE_NFC: return NT_UCD_NFC_NO | NT_UCD_NFC_MAYBE;
    case NT_UNICODE_NFKC: return NT_UCD_NFKC_NO | NT_UCD_NFKC_MAYBE;
    case NT_UNICODE_NFD: return NT_UCD_NFD_NO;
    case NT_UNICODE_NFKD: return NT_UCD_NFKD_NO;
    }
    return 0;
}

/*
 * The offset of the first stable character at or after i (ASCII, an
 * invalid byte, or combining class 0 with quick check Yes), or len.
 */
static size_t next_stable(const unsigned char *in, size_t i, size_t len, unsigned unstable)
{
    while (i < len) {
        if (in[i] < 0x80)
            return i;
        uint32_t cp;
        int n = utf8_decode(in + i, len - i, &cp);
        if (n == 0)
            return i;
        unsigned cls = char_class(cp);
        if ((cls & 0xFF) == 0 && ((cls >> 8) & unstable) == 0)
            return i;
        i += (size_t)n;
    }
    return len;
}

static int normalize(normalizer *nz)
{
    const unsigned char *in = nz->in;
    size_t len = nz->in_len;
    unsigned unstable = unstable_flags(nz->form);
    size_t i = 0;
    size_t copied_to = 0;  /* input before this offset is already output */
    size_t stable_at = 0;  /* the last stable character (or 0): a piece starts there */
    unsigned last_ccc = 0; /* of the last character accepted */

    while (i < len) {
        if (in[i] < 0x80) {
            i = ascii_run_end(in, i + 1, len);
            stable_at = i - 1;
            last_ccc = 0;
            continue;
        }
        uint32_t cp;
        int n = utf8_decode(in + i, len - i, &cp);
        if (n == 0) {
            /* an invalid byte: kept as is, and no piece may include it */
            i++;
            stable_at = i;
            last_ccc = 0;
            continue;
        }
        unsigned cls = char_class(cp);
        unsigned ccc = cls & 0xFF;
        if (((cls >> 8) & unstable) == 0) {
            if (ccc == 0) {
                stable_at = i;
                last_ccc = 0;
                i += (size_t)n;
                continue;
            }
            if (last_ccc <= ccc) {
                last_ccc = ccc;
                i += (size_t)n;
                continue;
            }
        }
        /* Quick check No or Maybe: normalize the piece around cp. */
        size_t end = next_stable(in, i + (size_t)n, len, unstable);
        if (out_copy(nz, copied_to, stable_at) != 0 || normalize_piece(nz, stable_at, end) != 0)
            return -1;
        copied_to = stable_at = i = end;
        last_ccc = 0;
    }
    return out_copy(nz, copied_to, len);
}

char *nt_unicode_normalize_map(const char *s, size_t len, nt_unicode_form form,
                               size_t *out_len, size_t **out_map)
{
    if (out_len)
        *out_len = 0;
    if (out_map)
        *out_map = NULL;
    if ((unsigned)form > NT_UNICODE_NFKD || (s == NULL && len != 0))
        return NULL;
    if (len >= SIZE_MAX / sizeof(size_t) - 1)
        return NULL;

    normalizer nz;
    memset(&nz, 0, offsetof(normalizer, entry_inline));
    nz.in = (const unsigned char *)(s ? s : "");
    nz.in_len = len;
    nz.form = form;
    nz.compose = form == NT_UNICODE_NFC || form == NT_UNICODE_NFKC;
    nz.compat = form == NT_UNICODE_NFKC || form == NT_UNICODE_NFKD;
    nz.entry = nz.entry_inline;
    nz.source = nz.source_inline;
    nz.piece_cap = PIECE_INLINE;
    /* Most text comes out as long as it went in. */
    nz.out_cap = len + 1;
    nz.out = malloc(nz.out_cap);
    if (out_map)
        nz.map = malloc(nz.out_cap * sizeof(size_t));

    int rc = -1;
    if (nz.out != NULL && (out_map == NULL || nz.map != NULL))
        rc = normalize(&nz);
    if (nz.entry != nz.entry_inline) {
        free(nz.entry);
        free(nz.source);
    }
    if (rc != 0) {
        free(nz.out);
        free(nz.map);
        return NULL;
    }
    nz.out[nz.out_len] = '\0';
    if (out_len)
        *out_len = nz.out_len;
    if (out_map)
        *out_map = nz.map;
    return nz.out;
}

char *nt_unicode_normalize(const char *s, size_t len, nt_unicode_form form, size_t *out_len)
{
    return nt_unicode_normalize_map(s, len, form, out_len, NULL);
}

/* ---- whitespace as JavaScript's trim() sees it ------------------------- */

int nt_js_space(uint32_t c) {
    return c == 0x09 || c == 0x0A || c == 0x0B || c == 0x0C || c == 0x0D ||
           c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000 || c == 0xFEFF;
}

size_t nt_js_leading_space(const char *s, size_t n) {
    size_t at = 0;
    uint32_t cp;
    int k;
    while (at < n && (k = nt_utf8_decode(s + at, n - at, &cp)) > 0 && nt_js_space(cp))
        at += (size_t)k;
    return at;
}

size_t nt_js_trailing_space(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80 && end - start < 4)
            start--;
        uint32_t cp;
        int k = nt_utf8_decode(s + start, end - start, &cp);
        if (k <= 0 || (size_t)k != end - start || !nt_js_space(cp))
            break;
        end = start;
    }
    return n - end;
}
