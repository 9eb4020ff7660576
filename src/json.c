/*
 * json.c - a strict JSON (RFC 8259) parser with a read-only tree.
 *
 * Why this file exists: the core library may depend on libc, libm and
 * pthreads only, yet it must read config.json, safetensors headers and
 * tokenizer.json. So it carries this small parser instead of linking a
 * third-party one.
 *
 * How it works, in short:
 *
 *   - The parser is iterative: an explicit stack of open containers, at most
 *     NT_JSON_MAX_DEPTH deep, so hostile nesting cannot exhaust the C stack.
 *
 *   - Values of the containers still open wait on one growable "pending"
 *     vector. When a container closes, its children are the top of that
 *     vector; they are copied into the arena as one contiguous array and
 *     popped. Every value is thus copied once, so parsing is linear, and
 *     nt_json_at() is O(1). An object member is a node whose `key` is set.
 *
 *   - Nodes and decoded strings come from an arena: a few large blocks,
 *     released together by nt_json_free(). A string is scanned (and fully
 *     validated) once to find its end, then copied, or decoded when it has
 *     escapes; the decoded form is never longer than the source.
 *
 *   - Numbers are validated against the JSON grammar, then converted.
 *     Short decimals take an exact path (a mantissa below 2^53 times or
 *     divided by an exact power of ten is one correctly rounded IEEE
 *     operation); the rest go to strtod_l() with a "C" locale made for the
 *     parse, so the result is correctly rounded and the process locale
 *     cannot turn "1.5" into 1.
 *
 *   - Line and column are computed only when reporting an error, by
 *     counting newlines up to the offending byte.
 *
 *   - A streamed container (nt_json_parse_streaming) takes an arena mark
 *     when it opens. Each of its elements is built as usual, handed to the
 *     callback, then dropped: the pending vector pops it and the arena goes
 *     back to the mark, so the same few kilobytes serve every element.
 *
 * There is no global or static mutable state: all of it lives in the
 * parser and in the document.
 */
#define _GNU_SOURCE 1  /* strtod_l() and newlocale() in glibc and musl */

#include "json.h"
#include "internal.h"

#include <ctype.h>
#include <float.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__)
#include <xlocale.h>
#endif

/* ------------------------------------------------------------------------ */
/* Data structures                                                           */
/* ------------------------------------------------------------------------ */

struct nt_json {
    const char *key;    /* the member's key when this value is in an object */
    uint32_t key_len;
    uint8_t kind;       /* nt_json_kind */
    uint8_t is_int;     /* number written as an integer that fits int64 */
    union {
        struct { double d; int64_t i; } num;
        struct { const char *ptr; size_t len; } str;
        struct { const nt_json *items; size_t count; } kids;
    } u;
};

/* One arena block; its data follows the header. */
typedef struct nt_json_block {
    struct nt_json_block *next;
    size_t size;  /* bytes of data */
    size_t used;
} nt_json_block;

#define NT_JSON_BLOCK_HEADER \
    ((sizeof(nt_json_block) + 15) & ~(size_t)15)
#define NT_JSON_BLOCK_MIN ((size_t)4096)
#define NT_JSON_BLOCK_MAX ((size_t)256 << 20)

typedef struct nt_json_arena {
    nt_json_block *blocks;  /* every block, for freeing */
    nt_json_block *cur;     /* the block small allocations come from */
    size_t next_size;       /* size of the next regular block */
} nt_json_arena;

struct nt_json_doc {
    nt_json_block *blocks;
    nt_json root;
};

/* A position in the arena to go back to: everything allocated after it
 * is released by nt_json_arena_reset(). */
typedef struct nt_json_mark {
    nt_json_block *blocks;
    nt_json_block *cur;
    size_t used;
    size_t next_size;
} nt_json_mark;

typedef struct nt_json_frame {
    size_t start;   /* index in the pending vector of the first child */
    int is_object;
    int stream;     /* the stream this container feeds, or -1 */
    uint32_t paths; /* streams whose path runs through this container */
    size_t count;   /* elements streamed so far */
    nt_json_mark mark;
} nt_json_frame;

typedef struct nt_json_parser {
    const unsigned char *start;  /* the whole text */
    const unsigned char *end;
    char *err;
    size_t err_size;
    int failed;

    nt_json_arena arena;

    nt_json *pending;  /* children of the open containers */
    size_t n_pending;
    size_t cap_pending;

    nt_json_frame frames[NT_JSON_MAX_DEPTH];
    int depth;

    const nt_json_stream *streams;
    size_t n_streams;
    const unsigned char *element_start;  /* of the element being streamed */

    locale_t c_locale;  /* made on first use, freed at the end */
} nt_json_parser;

/* ------------------------------------------------------------------------ */
/* Arena                                                                     */
/* ------------------------------------------------------------------------ */

static unsigned char *nt_json_block_data(nt_json_block *b) {
    return (unsigned char *)b + NT_JSON_BLOCK_HEADER;
}

static nt_json_block *nt_json_block_new(nt_json_arena *a, size_t size) {
    nt_json_block *b;
    if (size > SIZE_MAX - NT_JSON_BLOCK_HEADER) return NULL;
    b = malloc(NT_JSON_BLOCK_HEADER + size);
    if (b == NULL) return NULL;
    b->size = size;
    b->used = 0;
    b->next = a->blocks;
    a->blocks = b;
    return b;
}

static void nt_json_blocks_free(nt_json_block *b) {
    while (b != NULL) {
        nt_json_block *next = b->next;
        free(b);
        b = next;
    }
}

/* `align` is a power of two no larger than 16. NULL when out of memory. */
static void *nt_json_arena_alloc(nt_json_arena *a, size_t size, size_t align) {
    nt_json_block *b = a->cur;
    if (b != NULL) {
        size_t off = (b->used + align - 1) & ~(align - 1);
        if (off <= b->size && size <= b->size - off) {
            b->used = off + size;
            return nt_json_block_data(b) + off;
        }
    }
    /* A large request gets a block of its own, so that the current block
     * keeps serving small ones. */
    if (size > a->next_size / 4) {
        b = nt_json_block_new(a, size);
        if (b == NULL) return NULL;
        b->used = size;
        return nt_json_block_data(b);
    }
    b = nt_json_block_new(a, a->next_size);
    if (b == NULL) return NULL;
    a->cur = b;
    if (a->next_size < NT_JSON_BLOCK_MAX) a->next_size *= 2;
    b->used = size;
    return nt_json_block_data(b);
}

static nt_json_mark nt_json_arena_mark(const nt_json_arena *a) {
    nt_json_mark m;
    m.blocks = a->blocks;
    m.cur = a->cur;
    m.used = a->cur != NULL ? a->cur->used : 0;
    m.next_size = a->next_size;
    return m;
}

static void nt_json_arena_reset(nt_json_arena *a, const nt_json_mark *m) {
    while (a->blocks != m->blocks) {
        nt_json_block *next = a->blocks->next;
        free(a->blocks);
        a->blocks = next;
    }
    a->cur = m->cur;
    if (a->cur != NULL) a->cur->used = m->used;
    /* The block sizes start over too: otherwise each streamed element
     * that outgrows the current block would double them, and after a
     * few dozen elements every one would allocate 256 MB (the fuzzer's
     * timeout: 17 s for a 4 KB tokenizer.json). */
    a->next_size = m->next_size;
}

/* Gives back the unused tail of the latest allocation `p` of `had` bytes,
 * of which only `keep` were needed. A no-op unless `p` was the latest. */
static void nt_json_arena_shrink(nt_json_arena *a, void *p, size_t had,
                                 size_t keep) {
    nt_json_block *b = a->cur;
    if (b != NULL && (unsigned char *)p + had == nt_json_block_data(b) + b->used)
        b->used -= had - keep;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void nt_json_fail(nt_json_parser *ps, const unsigned char *at,
                         const char *fmt, ...) {
    const unsigned char *q, *line_start;
    size_t line = 1;
    char msg[256];
    va_list ap;

    if (ps->failed) return;
    ps->failed = 1;
    if (ps->err == NULL || ps->err_size == 0) return;

    line_start = ps->start;
    for (q = ps->start; q < at; q++) {
        if (*q == '\n') {
            line++;
            line_start = q + 1;
        }
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->err_size, "line %zu, column %zu: %s", line,
             (size_t)(at - line_start) + 1, msg);
}

static void nt_json_fail_oom(nt_json_parser *ps) {
    if (ps->failed) return;
    ps->failed = 1;
    if (ps->err != NULL && ps->err_size > 0)
        snprintf(ps->err, ps->err_size, "out of memory");
}

/* Names the byte at `p` for a message: 'x', or byte 0xC3, or end of input. */
static const char *nt_json_describe(const nt_json_parser *ps,
                                    const unsigned char *p, char buf[16]) {
    if (p >= ps->end) return "end of input";
    if (*p > 0x20 && *p < 0x7f)
        snprintf(buf, 16, "'%c'", *p);
    else
        snprintf(buf, 16, "byte 0x%02X", *p);
    return buf;
}

/* Reports an unexpected byte where `wanted` was expected, with a hint for
 * the usual non-JSON habits. */
static void nt_json_fail_unexpected(nt_json_parser *ps, const unsigned char *p,
                                    const char *wanted) {
    char buf[16];
    if (p >= ps->end) {
        nt_json_fail(ps, p, "unexpected end of input, %s", wanted);
        return;
    }
    switch (*p) {
    case '/':
        nt_json_fail(ps, p, "comments are not allowed in JSON");
        return;
    case '\'':
        nt_json_fail(ps, p, "strings must be in double quotes, not single");
        return;
    case '+':
        nt_json_fail(ps, p, "unexpected '+', %s (numbers have no '+' sign)",
                     wanted);
        return;
    case '.':
        nt_json_fail(ps, p, "unexpected '.', %s (a number needs a digit "
                            "before its decimal point)", wanted);
        return;
    case 'N':
    case 'I':
        nt_json_fail(ps, p, "unexpected '%c', %s (NaN and Infinity are not "
                            "JSON)", *p, wanted);
        return;
    case 0xEF:
        if (p == ps->start && ps->end - p >= 3 && p[1] == 0xBB &&
            p[2] == 0xBF) {
            nt_json_fail(ps, p, "a byte order mark is not allowed in JSON");
            return;
        }
        break;
    default:
        break;
    }
    nt_json_fail(ps, p, "unexpected %s, %s", nt_json_describe(ps, p, buf),
                 wanted);
}

/* ------------------------------------------------------------------------ */
/* Scanning                                                                  */
/* ------------------------------------------------------------------------ */

static const unsigned char *nt_json_skip_ws(const unsigned char *p,
                                            const unsigned char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* 1 for the bytes a string cannot simply copy: '"', '\\', controls and
 * non-ASCII (which needs UTF-8 validation). */
static const unsigned char nt_json_string_special[256] = {
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
};

/* Length of the well-formed UTF-8 sequence at p (whose first byte is
 * >= 0x80), or 0 if it is not one: no overlongs, no surrogates, nothing
 * past U+10FFFF, no truncation. */
static size_t nt_json_utf8_len(const unsigned char *p,
                               const unsigned char *end) {
    size_t avail = (size_t)(end - p);
    unsigned c = p[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t n, i;

    if (c < 0xC2) return 0;  /* continuation byte, or overlong C0/C1 */
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;       /* overlong */
        if (c == 0xED) hi = 0x9F;       /* UTF-16 surrogates */
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0) lo = 0x90;       /* overlong */
        if (c == 0xF4) hi = 0x8F;       /* beyond U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* The value of 4 hex digits at p, or -1 if there are not 4 of them. */
static long nt_json_hex4(const unsigned char *p, const unsigned char *end) {
    long v = 0;
    int i;
    if (end - p < 4) return -1;
    for (i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (long)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (long)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (long)(c - 'A' + 10);
        else return -1;
    }
    return v;
}

static unsigned char *nt_json_put_utf8(unsigned char *d, uint32_t cp) {
    if (cp < 0x80) {
        *d++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *d++ = (unsigned char)(0xC0 | (cp >> 6));
        *d++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (unsigned char)(0xE0 | (cp >> 12));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (unsigned char)(0xF0 | (cp >> 18));
        *d++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/*
 * Checks the \u escape at p (p[0] == '\\', p[1] == 'u'), including the low
 * half that must follow a high surrogate. Returns the byte after it and the
 * code point in *cp, or NULL after reporting the error.
 */
static const unsigned char *nt_json_u_escape(nt_json_parser *ps,
                                             const unsigned char *p,
                                             uint32_t *cp) {
    const unsigned char *end = ps->end;
    long hi = nt_json_hex4(p + 2, end), lo;

    if (hi < 0) {
        /* Either the text ends within the digits, or one is not hex. */
        const unsigned char *q = p + 2;
        while (q < end && q < p + 6 && isxdigit(*q)) q++;
        if (q == end)
            nt_json_fail(ps, end, "unexpected end of input in \\u escape");
        else
            nt_json_fail(ps, p, "invalid \\u escape: expected 4 hex digits");
        return NULL;
    }
    p += 6;
    if (hi >= 0xDC00 && hi <= 0xDFFF) {
        nt_json_fail(ps, p - 6, "invalid \\u escape: lone low surrogate "
                                "\\u%04lX", hi);
        return NULL;
    }
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = (uint32_t)hi;
        return p;
    }
    /* A high surrogate: the low half must follow as another \u escape. */
    if (end - p < 2 || p[0] != '\\' || p[1] != 'u' ||
        (lo = nt_json_hex4(p + 2, end)) < 0xDC00 || lo > 0xDFFF) {
        nt_json_fail(ps, p - 6, "invalid \\u escape: high surrogate \\u%04lX "
                                "is not followed by a low surrogate", hi);
        return NULL;
    }
    *cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
    return p + 6;
}

/*
 * Parses the string whose opening quote is at p. Returns the byte after
 * the closing quote and the decoded, NUL-terminated string in *out and
 * *out_len, or NULL after reporting the error.
 */
static const unsigned char *nt_json_parse_string(nt_json_parser *ps,
                                                 const unsigned char *p,
                                                 const char **out,
                                                 size_t *out_len) {
    const unsigned char *end = ps->end;
    const unsigned char *body = p + 1, *q = body;
    int has_escapes = 0;
    size_t span;
    unsigned char *dst, *d;

    /* Pass 1: find the closing quote, validating everything on the way. */
    for (;;) {
        unsigned c;
        while (q < end && !nt_json_string_special[*q]) q++;
        if (q >= end) {
            nt_json_fail(ps, end, "unexpected end of input in string "
                                  "(no closing '\"')");
            return NULL;
        }
        c = *q;
        if (c == '"') break;
        if (c == '\\') {
            uint32_t cp;
            has_escapes = 1;
            if (end - q < 2) {
                nt_json_fail(ps, end, "unexpected end of input in escape");
                return NULL;
            }
            switch (q[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n':
            case 'r': case 't':
                q += 2;
                break;
            case 'u':
                q = nt_json_u_escape(ps, q, &cp);
                if (q == NULL) return NULL;
                break;
            default: {
                char buf[16];
                nt_json_fail(ps, q, "invalid escape '\\' followed by %s",
                             nt_json_describe(ps, q + 1, buf));
                return NULL;
            }
            }
        } else if (c < 0x20) {
            nt_json_fail(ps, q, "control character 0x%02X must be escaped "
                                "in a string", c);
            return NULL;
        } else {
            size_t n = nt_json_utf8_len(q, end);
            if (n == 0) {
                nt_json_fail(ps, q, "invalid UTF-8 (byte 0x%02X) in string",
                             c);
                return NULL;
            }
            q += n;
        }
    }

    /* Pass 2: copy, or decode into at most as many bytes as the source. */
    span = (size_t)(q - body);
    dst = nt_json_arena_alloc(&ps->arena, span + 1, 1);
    if (dst == NULL) {
        nt_json_fail_oom(ps);
        return NULL;
    }
    if (!has_escapes) {
        memcpy(dst, body, span);
        dst[span] = '\0';
        *out = (const char *)dst;
        *out_len = span;
        return q + 1;
    }
    d = dst;
    {
        const unsigned char *s = body;
        while (s < q) {
            const unsigned char *bs = memchr(s, '\\', (size_t)(q - s));
            if (bs == NULL) bs = q;
            memcpy(d, s, (size_t)(bs - s));
            d += bs - s;
            s = bs;
            if (s == q) break;
            switch (s[1]) {
            case 'b': *d++ = '\b'; s += 2; break;
            case 'f': *d++ = '\f'; s += 2; break;
            case 'n': *d++ = '\n'; s += 2; break;
            case 'r': *d++ = '\r'; s += 2; break;
            case 't': *d++ = '\t'; s += 2; break;
            case 'u': {
                /* Validated in pass 1, so this cannot fail. */
                uint32_t cp = 0;
                s = nt_json_u_escape(ps, s, &cp);
                if (s == NULL) return NULL;
                d = nt_json_put_utf8(d, cp);
                break;
            }
            default:  /* '"', '\\', '/' */
                *d++ = s[1];
                s += 2;
                break;
            }
        }
    }
    *d = '\0';
    nt_json_arena_shrink(&ps->arena, dst, span + 1, (size_t)(d - dst) + 1);
    *out = (const char *)dst;
    *out_len = (size_t)(d - dst);
    return q + 1;
}

/* ------------------------------------------------------------------------ */
/* Numbers                                                                   */
/* ------------------------------------------------------------------------ */

static int nt_json_is_digit(const unsigned char *p, const unsigned char *end) {
    return p < end && *p >= '0' && *p <= '9';
}

/* strtod_l() of the lexeme [s, e), which the grammar has already checked. */
static int nt_json_strtod(nt_json_parser *ps, const unsigned char *s,
                          const unsigned char *e, double *out) {
    char small[64], *buf = small, *stop;
    size_t n = (size_t)(e - s);
    int ok = 1;

    if (ps->c_locale == (locale_t)0) {
        ps->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (ps->c_locale == (locale_t)0) {
            nt_json_fail_oom(ps);
            return 0;
        }
    }
    if (n >= sizeof small) {
        buf = malloc(n + 1);
        if (buf == NULL) {
            nt_json_fail_oom(ps);
            return 0;
        }
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod_l(buf, &stop, ps->c_locale);  /* ERANGE: +-inf or tiny */
    if (stop != buf + n) {
        nt_json_fail(ps, s, "number could not be converted");
        ok = 0;
    }
    if (buf != small) free(buf);
    return ok;
}

/*
 * Parses the number at p (a '-' or a digit) into *v. Returns the byte
 * after it, or NULL after reporting the error.
 */
static const unsigned char *nt_json_parse_number(nt_json_parser *ps,
                                                 const unsigned char *p,
                                                 nt_json *v) {
    static const double pow10[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
    };
    const unsigned char *end = ps->end, *s = p;
    uint64_t m = 0;        /* up to 19 significant digits */
    int n_sig = 0;         /* significant digits in m */
    int truncated = 0;     /* more significant digits than m holds */
    int is_integer = 1;
    long long e10 = 0;     /* value = m * 10^e10 (when !truncated) */
    int neg = 0;
    double d;

    if (*p == '-') {
        neg = 1;
        p++;
        if (!nt_json_is_digit(p, end)) {
            nt_json_fail_unexpected(ps, p, "expected a digit after '-'");
            return NULL;
        }
    }

    /* Integer part: "0" or [1-9][0-9]* */
    if (*p == '0') {
        p++;
        if (nt_json_is_digit(p, end)) {
            nt_json_fail(ps, s, "leading zeros are not allowed in numbers");
            return NULL;
        }
    } else {
        for (; nt_json_is_digit(p, end); p++) {
            if (n_sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                n_sig++;
            } else {
                truncated = 1;
            }
        }
    }

    /* Fraction */
    if (p < end && *p == '.') {
        is_integer = 0;
        p++;
        if (!nt_json_is_digit(p, end)) {
            nt_json_fail_unexpected(ps, p, "expected a digit after the "
                                           "decimal point");
            return NULL;
        }
        for (; nt_json_is_digit(p, end); p++) {
            unsigned digit = (unsigned)(*p - '0');
            if (m == 0 && digit == 0) {
                e10--;                     /* a leading zero: 0.000123 */
            } else if (n_sig < 19) {
                m = m * 10 + digit;
                n_sig++;
                e10--;
            } else {
                truncated = 1;
            }
        }
    }

    /* Exponent */
    if (p < end && (*p == 'e' || *p == 'E')) {
        long long x = 0;
        int xneg = 0;
        is_integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            xneg = *p == '-';
            p++;
        }
        if (!nt_json_is_digit(p, end)) {
            nt_json_fail_unexpected(ps, p, "expected a digit in the exponent");
            return NULL;
        }
        for (; nt_json_is_digit(p, end); p++)
            if (x < 1000000000) x = x * 10 + (*p - '0');
        e10 += xneg ? -x : x;
    }

    v->kind = NT_JSON_NUMBER;
    v->is_int = 0;
    v->u.num.i = 0;
    if (is_integer && !truncated) {
        if (!neg && m <= (uint64_t)INT64_MAX) {
            v->is_int = 1;
            v->u.num.i = (int64_t)m;
        } else if (neg && m <= (uint64_t)INT64_MAX + 1) {
            v->is_int = 1;
            v->u.num.i = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN
                                                      : -(int64_t)m;
        }
    }

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    /* Exact: both operands are exact doubles, so the one operation is
     * correctly rounded. */
    if (!truncated && m <= ((uint64_t)1 << 53) && e10 >= -22 && e10 <= 22) {
        d = (double)m;
        if (e10 < 0) d /= pow10[-e10];
        else d *= pow10[e10];
        v->u.num.d = neg ? -d : d;
        return p;
    }
#else
    (void)pow10;
#endif
    if (m == 0 && !truncated) {
        d = 0.0;  /* 0, 0.000, 0e999999 */
    } else if (!nt_json_strtod(ps, neg ? s + 1 : s, p, &d)) {
        return NULL;
    }
    v->u.num.d = neg ? -d : d;
    return p;
}

/* ------------------------------------------------------------------------ */
/* Structure                                                                 */
/* ------------------------------------------------------------------------ */

static int nt_json_push(nt_json_parser *ps, const nt_json *v) {
    if (ps->n_pending == ps->cap_pending) {
        size_t cap = ps->cap_pending ? ps->cap_pending * 2 : 256;
        nt_json *grown;
        if (cap > SIZE_MAX / sizeof(nt_json)) {
            nt_json_fail_oom(ps);
            return 0;
        }
        grown = realloc(ps->pending, cap * sizeof(nt_json));
        if (grown == NULL) {
            nt_json_fail_oom(ps);
            return 0;
        }
        ps->pending = grown;
        ps->cap_pending = cap;
    }
    ps->pending[ps->n_pending++] = *v;
    return 1;
}

static int nt_json_stream_end(nt_json_parser *ps, nt_json_frame *f);

/* Closes the innermost container: moves its children into the arena. */
static int nt_json_close(nt_json_parser *ps, nt_json *v) {
    nt_json_frame *f = &ps->frames[--ps->depth];
    size_t count = ps->n_pending - f->start;
    nt_json *items = NULL;

    if (f->stream >= 0 && !nt_json_stream_end(ps, f)) return 0;

    if (count > 0) {
        items = nt_json_arena_alloc(&ps->arena, count * sizeof(nt_json),
                                    _Alignof(nt_json));
        if (items == NULL) {
            nt_json_fail_oom(ps);
            return 0;
        }
        memcpy(items, ps->pending + f->start, count * sizeof(nt_json));
    }
    ps->n_pending = f->start;
    memset(v, 0, sizeof *v);
    v->kind = f->is_object ? NT_JSON_OBJECT : NT_JSON_ARRAY;
    v->u.kids.items = items;
    v->u.kids.count = count;
    return 1;
}

/*
 * Parses an object key at p (after '{' or ',' and whitespace) and the ':'
 * after it, and pushes the member, whose value comes next. Returns the
 * byte after the ':', or NULL after reporting the error.
 */
static const unsigned char *nt_json_parse_key(nt_json_parser *ps,
                                              const unsigned char *p,
                                              int after_comma) {
    const unsigned char *end = ps->end;
    nt_json member;
    const char *key;
    size_t key_len;

    if (p >= end || *p != '"') {
        if (after_comma && p < end && *p == '}')
            nt_json_fail(ps, p, "trailing comma before '}'");
        else
            nt_json_fail_unexpected(ps, p, "expected a string key");
        return NULL;
    }
    p = nt_json_parse_string(ps, p, &key, &key_len);
    if (p == NULL) return NULL;
    if (key_len > UINT32_MAX) {
        nt_json_fail(ps, p, "object key longer than 4 GiB");
        return NULL;
    }
    p = nt_json_skip_ws(p, end);
    if (p >= end || *p != ':') {
        nt_json_fail_unexpected(ps, p, "expected ':' after object key");
        return NULL;
    }
    memset(&member, 0, sizeof member);
    member.key = key;
    member.key_len = (uint32_t)key_len;
    member.kind = NT_JSON_NULL;  /* filled in when the value is complete */
    if (!nt_json_push(ps, &member)) return NULL;
    return p + 1;
}

static const unsigned char *nt_json_parse_literal(nt_json_parser *ps,
                                                  const unsigned char *p,
                                                  const char *word,
                                                  nt_json_kind kind,
                                                  nt_json *v) {
    size_t n = strlen(word), avail = (size_t)(ps->end - p), i;
    for (i = 0; i < n; i++) {
        if (i == avail) {
            nt_json_fail(ps, p + i, "unexpected end of input in '%s'", word);
            return NULL;
        }
        if (p[i] != (unsigned char)word[i]) {
            nt_json_fail(ps, p, "invalid literal (expected '%s')", word);
            return NULL;
        }
    }
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)kind;
    return p + n;
}

/* The i-th '.'-separated key of `path` and its length; NULL past the last. */
static const char *nt_json_path_key(const char *path, int i, size_t *len) {
    const char *dot;
    for (; i > 0; i--) {
        path = strchr(path, '.');
        if (path == NULL) return NULL;
        path++;
    }
    dot = strchr(path, '.');
    *len = dot != NULL ? (size_t)(dot - path) : strlen(path);
    return path;
}

/*
 * Pushes the frame of a container that opens at the current depth, and
 * works out whether it is streamed: the streams whose path has matched
 * every key so far, and which match this container's key too, carry on;
 * one whose path ends here feeds on this container.
 */
static void nt_json_open(nt_json_parser *ps, int is_object,
                         const unsigned char *at) {
    int d = ps->depth;
    nt_json_frame *f = &ps->frames[d];
    uint32_t paths = 0;
    size_t i;

    f->start = ps->n_pending;
    f->is_object = is_object;
    f->stream = -1;
    f->count = 0;
    if (d == 0) {
        for (i = 0; i < ps->n_streams; i++) paths |= (uint32_t)1 << i;
    } else {
        const nt_json_frame *parent = &ps->frames[d - 1];
        if (parent->paths != 0 && parent->is_object) {
            const nt_json *member = &ps->pending[ps->n_pending - 1];
            for (i = 0; i < ps->n_streams; i++) {
                size_t len, next_len;
                const char *key;
                if (!(parent->paths >> i & 1)) continue;
                key = nt_json_path_key(ps->streams[i].path, d - 1, &len);
                if (key == NULL || len != member->key_len ||
                    memcmp(key, member->key, len) != 0)
                    continue;
                if (nt_json_path_key(ps->streams[i].path, d, &next_len) == NULL) {
                    f->stream = (int)i;  /* the path ends here */
                    f->mark = nt_json_arena_mark(&ps->arena);
                    ps->element_start = at;
                } else {
                    paths |= (uint32_t)1 << i;
                }
            }
        }
    }
    f->paths = f->stream >= 0 ? 0 : paths;
    ps->depth++;
}

/*
 * Hands the complete element v of the streamed container f to its
 * callback, then forgets it. 1 to go on, 0 after an error.
 */
static int nt_json_stream_element(nt_json_parser *ps, nt_json_frame *f,
                                  const nt_json *v) {
    const nt_json_stream *st = &ps->streams[f->stream];
    nt_json_element e;
    char msg[256];
    int ok;

    e.index = f->count++;
    e.key = NULL;
    e.key_len = 0;
    e.value = v;
    if (f->is_object) {
        const nt_json *member = &ps->pending[ps->n_pending - 1];
        e.key = member->key;
        e.key_len = member->key_len;
    }
    msg[0] = '\0';
    ok = st->fn(st->user, &e, msg, sizeof msg);
    if (f->is_object) ps->n_pending--;
    nt_json_arena_reset(&ps->arena, &f->mark);
    if (!ok) {
        nt_json_fail(ps, ps->element_start, "%s",
                     msg[0] ? msg : "stopped by the reader");
        return 0;
    }
    return 1;
}

/* Tells the callback of the streamed container f that it has ended. */
static int nt_json_stream_end(nt_json_parser *ps, nt_json_frame *f) {
    const nt_json_stream *st = &ps->streams[f->stream];
    nt_json_element e;
    char msg[256];

    e.index = f->count;
    e.key = NULL;
    e.key_len = 0;
    e.value = NULL;
    msg[0] = '\0';
    if (!st->fn(st->user, &e, msg, sizeof msg)) {
        nt_json_fail(ps, ps->element_start, "%s",
                     msg[0] ? msg : "stopped by the reader");
        return 0;
    }
    return 1;
}

/* Parses the whole text into *root. 1 on success, 0 after an error. */
static int nt_json_parse_text(nt_json_parser *ps, nt_json *root) {
    const unsigned char *p = ps->start, *end = ps->end;
    nt_json v;

    for (;;) {
        /* A value is expected at p. */
        p = nt_json_skip_ws(p, end);
        if (ps->depth > 0 && ps->frames[ps->depth - 1].stream >= 0)
            ps->element_start = p;
        if (p >= end) {
            nt_json_fail(ps, p, "unexpected end of input, expected a value");
            return 0;
        }
        switch (*p) {
        case '{':
        case '[': {
            int is_object = *p == '{';
            if (ps->depth == NT_JSON_MAX_DEPTH) {
                nt_json_fail(ps, p, "arrays and objects nested deeper than "
                                    "%d levels", NT_JSON_MAX_DEPTH);
                return 0;
            }
            nt_json_open(ps, is_object, p);
            p = nt_json_skip_ws(p + 1, end);
            if (p < end && *p == (is_object ? '}' : ']')) {
                p++;
                if (!nt_json_close(ps, &v)) return 0;
                break;  /* an empty container is a complete value */
            }
            if (is_object) {
                p = nt_json_parse_key(ps, p, 0);
                if (p == NULL) return 0;
            }
            continue;  /* the first value inside */
        }
        case '"': {
            const char *str;
            size_t len;
            p = nt_json_parse_string(ps, p, &str, &len);
            if (p == NULL) return 0;
            memset(&v, 0, sizeof v);
            v.kind = NT_JSON_STRING;
            v.u.str.ptr = str;
            v.u.str.len = len;
            break;
        }
        case 't':
            p = nt_json_parse_literal(ps, p, "true", NT_JSON_TRUE, &v);
            if (p == NULL) return 0;
            break;
        case 'f':
            p = nt_json_parse_literal(ps, p, "false", NT_JSON_FALSE, &v);
            if (p == NULL) return 0;
            break;
        case 'n':
            p = nt_json_parse_literal(ps, p, "null", NT_JSON_NULL, &v);
            if (p == NULL) return 0;
            break;
        case '-': case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
            memset(&v, 0, sizeof v);
            p = nt_json_parse_number(ps, p, &v);
            if (p == NULL) return 0;
            break;
        default:
            nt_json_fail_unexpected(ps, p, "expected a value");
            return 0;
        }

        /* v is complete: hand it to its container, closing containers as
         * long as their closing brackets follow. */
        for (;;) {
            nt_json_frame *f;
            if (ps->depth == 0) {
                *root = v;
                p = nt_json_skip_ws(p, end);
                if (p < end) {
                    if (*p == '/')
                        nt_json_fail(ps, p, "comments are not allowed in "
                                            "JSON");
                    else
                        nt_json_fail(ps, p, "unexpected data after the "
                                            "JSON value");
                    return 0;
                }
                return 1;
            }
            f = &ps->frames[ps->depth - 1];
            if (f->stream >= 0) {
                if (!nt_json_stream_element(ps, f, &v)) return 0;
            } else if (f->is_object) {
                nt_json *member = &ps->pending[ps->n_pending - 1];
                member->kind = v.kind;
                member->is_int = v.is_int;
                member->u = v.u;
            } else if (!nt_json_push(ps, &v)) {
                return 0;
            }
            p = nt_json_skip_ws(p, end);
            if (p < end && *p == ',') {
                p = nt_json_skip_ws(p + 1, end);
                if (f->is_object) {
                    p = nt_json_parse_key(ps, p, 1);
                    if (p == NULL) return 0;
                } else if (p < end && *p == ']') {
                    nt_json_fail(ps, p, "trailing comma before ']'");
                    return 0;
                }
                break;  /* the next value */
            }
            if (p < end && *p == (f->is_object ? '}' : ']')) {
                p++;
                if (!nt_json_close(ps, &v)) return 0;
                continue;
            }
            nt_json_fail_unexpected(ps, p, f->is_object
                                    ? "expected ',' or '}' after object member"
                                    : "expected ',' or ']' after array element");
            return 0;
        }
    }
}

nt_json_doc *nt_json_parse(const char *text, size_t len, char *err,
                           size_t err_size) {
    return nt_json_parse_streaming(text, len, NULL, 0, err, err_size);
}

nt_json_doc *nt_json_parse_streaming(const char *text, size_t len,
                                     const nt_json_stream *streams,
                                     size_t n_streams, char *err,
                                     size_t err_size) {
    nt_json_parser *ps;
    nt_json_doc *doc = NULL;
    nt_json root;
    size_t first;
    static const char empty[1] = "";

    if (err != NULL && err_size > 0) err[0] = '\0';
    if (text == NULL) {
        if (len > 0) {
            if (err != NULL && err_size > 0)
                snprintf(err, err_size, "line 1, column 1: no text "
                                        "(NULL pointer)");
            return NULL;
        }
        text = empty;
    }
    if (n_streams > NT_JSON_MAX_STREAMS) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "line 1, column 1: more than %d streams",
                     NT_JSON_MAX_STREAMS);
        return NULL;
    }

    ps = malloc(sizeof *ps);
    if (ps == NULL) {
        if (err != NULL && err_size > 0) snprintf(err, err_size,
                                                  "out of memory");
        return NULL;
    }
    memset(ps, 0, sizeof *ps);  /* pointers to NULL, c_locale to 0 */
    ps->c_locale = (locale_t)0;
    ps->start = (const unsigned char *)text;
    ps->end = ps->start + len;
    ps->err = err;
    ps->err_size = err_size;
    ps->streams = streams;
    ps->n_streams = n_streams;

    /* The tree rarely outgrows the text by much; size the first block so
     * that most documents fit in one or two blocks. */
    first = len < NT_JSON_BLOCK_MAX / 4 ? len + len / 2 : NT_JSON_BLOCK_MAX;
    ps->arena.next_size = first < NT_JSON_BLOCK_MIN ? NT_JSON_BLOCK_MIN : first;

    if (nt_json_parse_text(ps, &root)) {
        doc = malloc(sizeof *doc);
        if (doc == NULL) {
            nt_json_fail_oom(ps);
        } else {
            doc->blocks = ps->arena.blocks;
            doc->root = root;
            ps->arena.blocks = NULL;
        }
    }
    nt_json_blocks_free(ps->arena.blocks);
    free(ps->pending);
    if (ps->c_locale != (locale_t)0) freelocale(ps->c_locale);
    free(ps);
    return doc;
}

void nt_json_free(nt_json_doc *doc) {
    if (doc == NULL) return;
    nt_json_blocks_free(doc->blocks);
    free(doc);
}

/* ------------------------------------------------------------------------ */
/* Access                                                                    */
/* ------------------------------------------------------------------------ */

const nt_json *nt_json_root(const nt_json_doc *doc) {
    return doc != NULL ? &doc->root : NULL;
}

nt_json_kind nt_json_kind_of(const nt_json *v) {
    return v != NULL ? (nt_json_kind)v->kind : NT_JSON_NULL;
}

const char *nt_json_kind_name(nt_json_kind k) {
    switch (k) {
    case NT_JSON_NULL: return "null";
    case NT_JSON_FALSE: return "false";
    case NT_JSON_TRUE: return "true";
    case NT_JSON_NUMBER: return "number";
    case NT_JSON_STRING: return "string";
    case NT_JSON_ARRAY: return "array";
    case NT_JSON_OBJECT: return "object";
    }
    return "invalid";
}

static int nt_json_is_container(const nt_json *v) {
    return v != NULL && (v->kind == NT_JSON_ARRAY || v->kind == NT_JSON_OBJECT);
}

size_t nt_json_count(const nt_json *v) {
    return nt_json_is_container(v) ? v->u.kids.count : 0;
}

const nt_json *nt_json_at(const nt_json *v, size_t i) {
    if (!nt_json_is_container(v) || i >= v->u.kids.count) return NULL;
    return &v->u.kids.items[i];
}

const char *nt_json_key_at(const nt_json *obj, size_t i, size_t *len) {
    const nt_json *m;
    if (obj == NULL || obj->kind != NT_JSON_OBJECT || i >= obj->u.kids.count) {
        if (len != NULL) *len = 0;
        return NULL;
    }
    m = &obj->u.kids.items[i];
    if (len != NULL) *len = m->key_len;
    return m->key;
}

const nt_json *nt_json_getn(const nt_json *obj, const char *key,
                            size_t key_len) {
    const nt_json *items;
    size_t i;
    if (obj == NULL || obj->kind != NT_JSON_OBJECT || key == NULL ||
        key_len > UINT32_MAX)
        return NULL;
    items = obj->u.kids.items;
    /* From the end, so that the last of duplicate keys wins. */
    for (i = obj->u.kids.count; i-- > 0;) {
        if (items[i].key_len == key_len &&
            memcmp(items[i].key, key, key_len) == 0)
            return &items[i];
    }
    return NULL;
}

const nt_json *nt_json_get(const nt_json *obj, const char *key) {
    if (key == NULL) return NULL;
    return nt_json_getn(obj, key, strlen(key));
}

const char *nt_json_string(const nt_json *v, size_t *len) {
    if (v == NULL || v->kind != NT_JSON_STRING) {
        if (len != NULL) *len = 0;
        return NULL;
    }
    if (len != NULL) *len = v->u.str.len;
    return v->u.str.ptr;
}

double nt_json_number(const nt_json *v) {
    return v != NULL && v->kind == NT_JSON_NUMBER ? v->u.num.d : 0.0;
}

int nt_json_int64(const nt_json *v, int64_t *out) {
    if (v == NULL || v->kind != NT_JSON_NUMBER || !v->is_int) return 0;
    if (out != NULL) *out = v->u.num.i;
    return 1;
}

int nt_json_is_null(const nt_json *v) {
    return v != NULL && v->kind == NT_JSON_NULL;
}

int nt_json_is_bool(const nt_json *v) {
    return v != NULL && (v->kind == NT_JSON_TRUE || v->kind == NT_JSON_FALSE);
}

int nt_json_bool(const nt_json *v) {
    return v != NULL && v->kind == NT_JSON_TRUE;
}

/* ------------------------------------------------------------------------ */
/* Writing, as JavaScript's JSON.stringify()                                 */
/* ------------------------------------------------------------------------ */


static void nt_json_put(nt_writer *o, const char *s, size_t n) {
    nt_write(o, s, n);
}

static void nt_json_put_str(nt_writer *o, const char *s) {
    nt_json_put(o, s, strlen(s));
}

static void nt_json_put_string(nt_writer *o, const char *s, size_t len) {
    size_t i, run = 0;
    nt_json_put(o, "\"", 1);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        nt_json_put(o, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': nt_json_put(o, "\\\"", 2); break;
        case '\\': nt_json_put(o, "\\\\", 2); break;
        case '\b': nt_json_put(o, "\\b", 2); break;
        case '\f': nt_json_put(o, "\\f", 2); break;
        case '\n': nt_json_put(o, "\\n", 2); break;
        case '\r': nt_json_put(o, "\\r", 2); break;
        case '\t': nt_json_put(o, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            nt_json_put(o, esc, 6);
        }
    }
    nt_json_put(o, s + run, len - run);
    nt_json_put(o, "\"", 1);
}

/* JavaScript's Number.prototype.toString(): the shortest digits that read
 * back to d, in plain notation for 1e-6 <= |d| < 1e21, else d.ddde+N. */
static void nt_json_put_number(nt_writer *o, double d) {
    char buf[40], digits[24], out[64];
    int p, exp10 = 0, n_digits = 0, k = 0;
    const char *e;

    if (d != d || d - d != 0) {  /* NaN or infinite: JSON.stringify says null */
        nt_json_put_str(o, "null");
        return;
    }
    if (d == 0) {  /* -0 too */
        nt_json_put_str(o, "0");
        return;
    }
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    /* buf is [-]D[.DDD]e[+-]X: collect the digits and the exponent */
    for (e = buf; *e != 'e'; e++)
        if (*e >= '0' && *e <= '9') digits[n_digits++] = *e;
    exp10 = atoi(e + 1);
    while (n_digits > 1 && digits[n_digits - 1] == '0') n_digits--;
    if (d < 0) out[k++] = '-';
    if (exp10 >= 21 || exp10 < -6) {
        out[k++] = digits[0];
        if (n_digits > 1) {
            out[k++] = '.';
            memcpy(out + k, digits + 1, (size_t)n_digits - 1);
            k += n_digits - 1;
        }
        k += snprintf(out + k, sizeof out - (size_t)k, "e%c%d", exp10 < 0 ? '-' : '+',
                      exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        out[k++] = '0';
        out[k++] = '.';
        for (p = 0; p < -exp10 - 1; p++) out[k++] = '0';
        memcpy(out + k, digits, (size_t)n_digits);
        k += n_digits;
    } else {
        for (p = 0; p <= exp10 || p < n_digits; p++) {
            if (p == exp10 + 1) out[k++] = '.';
            out[k++] = p < n_digits ? digits[p] : '0';
        }
    }
    nt_json_put(o, out, (size_t)k);
}

/* A key JavaScript treats as an array index: "0", or 1-9 then digits,
 * below 2^32 - 1. Its value in *index. */
static int nt_json_index_key(const char *key, size_t len, uint64_t *index) {
    uint64_t v = 0;
    size_t i;
    if (len == 0 || len > 10 || (len > 1 && key[0] == '0')) return 0;
    for (i = 0; i < len; i++) {
        if (key[i] < '0' || key[i] > '9') return 0;
        v = v * 10 + (uint64_t)(key[i] - '0');
    }
    if (v >= 4294967295ull) return 0;
    *index = v;
    return 1;
}

static void nt_json_put_value(nt_writer *o, const nt_json *v);

static void nt_json_put_member(nt_writer *o, const nt_json *obj, size_t i, int *first) {
    const nt_json *m = &obj->u.kids.items[i];
    /* the last value of the key, written where it first appeared */
    const nt_json *last = nt_json_getn(obj, m->key, m->key_len);
    if (!*first) nt_json_put(o, ", ", 2);
    *first = 0;
    nt_json_put_string(o, m->key, m->key_len);
    nt_json_put(o, ": ", 2);
    nt_json_put_value(o, last);
}

/* 1 when member i of obj repeats an earlier key. */
static int nt_json_repeated_key(const nt_json *obj, size_t i) {
    const nt_json *items = obj->u.kids.items;
    size_t j;
    for (j = 0; j < i; j++)
        if (items[j].key_len == items[i].key_len &&
            memcmp(items[j].key, items[i].key, items[i].key_len) == 0)
            return 1;
    return 0;
}

static void nt_json_put_object(nt_writer *o, const nt_json *v) {
    size_t n = v->u.kids.count, i, n_index = 0;
    size_t *order;
    int first = 1;
    nt_json_put(o, "{", 1);
    order = malloc((n ? n : 1) * sizeof *order);
    if (order == NULL) {
        o->failed = 1;
        return;
    }
    /* integer-like keys first, ascending (insertion sort: objects in
     * prompts are small) */
    for (i = 0; i < n; i++) {
        uint64_t key_i, key_j;
        size_t j;
        if (!nt_json_index_key(v->u.kids.items[i].key, v->u.kids.items[i].key_len, &key_i) ||
            nt_json_repeated_key(v, i))
            continue;
        for (j = n_index; j > 0; j--) {
            nt_json_index_key(v->u.kids.items[order[j - 1]].key,
                              v->u.kids.items[order[j - 1]].key_len, &key_j);
            if (key_j < key_i) break;
            order[j] = order[j - 1];
        }
        order[j] = i;
        n_index++;
    }
    for (i = 0; i < n_index; i++) nt_json_put_member(o, v, order[i], &first);
    for (i = 0; i < n; i++) {
        uint64_t unused;
        if (nt_json_index_key(v->u.kids.items[i].key, v->u.kids.items[i].key_len, &unused) ||
            nt_json_repeated_key(v, i))
            continue;
        nt_json_put_member(o, v, i, &first);
    }
    free(order);
    nt_json_put(o, "}", 1);
}

static void nt_json_put_value(nt_writer *o, const nt_json *v) {
    size_t i;
    switch (nt_json_kind_of(v)) {
    case NT_JSON_NULL: nt_json_put_str(o, "null"); break;
    case NT_JSON_FALSE: nt_json_put_str(o, "false"); break;
    case NT_JSON_TRUE: nt_json_put_str(o, "true"); break;
    case NT_JSON_NUMBER: nt_json_put_number(o, v->u.num.d); break;
    case NT_JSON_STRING: nt_json_put_string(o, v->u.str.ptr, v->u.str.len); break;
    case NT_JSON_ARRAY:
        nt_json_put(o, "[", 1);
        for (i = 0; i < v->u.kids.count; i++) {
            if (i > 0) nt_json_put(o, ", ", 2);
            nt_json_put_value(o, &v->u.kids.items[i]);
        }
        nt_json_put(o, "]", 1);
        break;
    case NT_JSON_OBJECT: nt_json_put_object(o, v); break;
    }
}

char *nt_json_to_js_text(const nt_json *v, size_t *len) {
    nt_writer o = {{NULL, 0, 0}, 0};
    nt_json_put_value(&o, v);
    if (o.failed || o.buf.s == NULL) {
        free(o.buf.s);
        return NULL;
    }
    if (len != NULL) *len = o.buf.n;
    return o.buf.s;
}

char *nt_json_quote_js(const char *s, size_t n, size_t *len) {
    nt_writer o = {{NULL, 0, 0}, 0};
    nt_json_put_string(&o, s, n);
    if (o.failed) {
        free(o.buf.s);
        return NULL;
    }
    if (len != NULL) *len = o.buf.n;
    return o.buf.s;
}

const nt_json *nt_json_object_or_text(const nt_json *v, nt_json_doc **doc) {
    *doc = NULL;
    if (nt_json_kind_of(v) == NT_JSON_STRING) {
        size_t n;
        const char *s = nt_json_string(v, &n);
        *doc = nt_json_parse(s, n, NULL, 0);
        v = nt_json_root(*doc);
    }
    return nt_json_kind_of(v) == NT_JSON_OBJECT ? v : NULL;
}
