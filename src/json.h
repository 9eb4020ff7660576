/*
 * json.h - a strict JSON (RFC 8259) parser with a read-only tree.
 *
 * libnemotron reads three kinds of JSON: config.json (a few hundred bytes),
 * safetensors headers (up to ~100 MB for huge checkpoints) and tokenizer.json
 * (~17 MB, one object with 256k members). The library depends on libc, libm
 * and pthreads only, so it carries its own parser rather than a third-party
 * one.
 *
 * The input is untrusted: anything that is not valid JSON is rejected with a
 * message that says what is wrong and where ("line 3, column 17: expected
 * ',' or '}' after object member"). Nesting deeper than NT_JSON_MAX_DEPTH is
 * rejected too.
 *
 * A parse produces an nt_json_doc that owns every node and every decoded
 * string; they live in a few large blocks and are all released by one
 * nt_json_free(). The tree is read-only, so one doc may be read from any
 * number of threads at once.
 *
 * Every accessor accepts NULL and then returns a neutral value (NULL, 0,
 * NT_JSON_NULL), so lookups chain without checks in between:
 *
 *     int64_t n;
 *     const nt_json *cfg = nt_json_root(doc);
 *     if (!nt_json_int64(nt_json_get(nt_json_get(cfg, "rope"), "dim"), &n))
 *         ... missing or not an integer ...
 *
 * Strings are decoded UTF-8, NUL-terminated for convenience, and carry a
 * length because "\u0000" may put a NUL inside them.
 *
 * Numbers keep their double value (correctly rounded, independent of the
 * process locale; magnitudes beyond the double range become +-inf as in
 * Python). A number written as an integer (no fraction, no exponent) that
 * fits in int64 also keeps its exact value: see nt_json_int64().
 *
 * Objects keep their members in file order, duplicates included;
 * nt_json_get() returns the last member with the key, as Python's json does.
 */
#ifndef NT_JSON_H
#define NT_JSON_H

#include <stddef.h>
#include <stdint.h>

#define NT_JSON_MAX_DEPTH 512  /* arrays and objects nested deeper fail */

typedef enum nt_json_kind {
    NT_JSON_NULL,
    NT_JSON_FALSE,
    NT_JSON_TRUE,
    NT_JSON_NUMBER,
    NT_JSON_STRING,
    NT_JSON_ARRAY,
    NT_JSON_OBJECT
} nt_json_kind;

typedef struct nt_json nt_json;          /* one value; layout private */
typedef struct nt_json_doc nt_json_doc;  /* a parsed text; owns its values */

/*
 * Parses `len` bytes of `text` (which need not be NUL-terminated). Returns
 * NULL on failure and writes the reason, always with its line and column
 * (1-based; columns count bytes), into `err` (`err_size` bytes, NUL-
 * terminated, truncated if needed; `err` may be NULL). Running out of memory
 * fails with "out of memory".
 */
nt_json_doc *nt_json_parse(const char *text, size_t len, char *err,
                           size_t err_size);
/*
 * Streaming parts of a document. tokenizer.json holds a vocabulary of 256k
 * members and half a million merges; a tree of them would cost tens of MB
 * and most of the load time, only to be read once and copied elsewhere.
 * nt_json_parse_streaming() parses and validates exactly like
 * nt_json_parse(), except that each container at one of the given paths
 * hands its elements to a callback, one at a time as each is complete, and
 * then forgets them: in the tree that container is empty. Memory for it
 * stays that of one element.
 *
 * A path names object keys from the root, separated by '.'
 * ("model.merges"); it has at least one key, and keys containing '.' cannot
 * be named. Containers inside a streamed element are never streamed.
 *
 * After the last element the callback is called once more with value
 * NULL (and index the number of elements): the container has ended.
 *
 * The callback returns 1 to go on, or 0 to stop the parse: the parse then
 * fails with the message the callback wrote into `msg` (`msg_size` bytes),
 * prefixed with the line and column where the element began.
 */
typedef struct nt_json_element {
    size_t index;          /* 0, 1, 2, ... within its container */
    const char *key;       /* an object member's key, else NULL */
    size_t key_len;
    const nt_json *value;  /* valid during the call only, as is key;
                              NULL: the container has ended */
} nt_json_element;

typedef int (*nt_json_element_fn)(void *user, const nt_json_element *e,
                                  char *msg, size_t msg_size);

typedef struct nt_json_stream {
    const char *path;
    nt_json_element_fn fn;
    void *user;
} nt_json_stream;

#define NT_JSON_MAX_STREAMS 32

/* At most NT_JSON_MAX_STREAMS streams; more fail the parse. */
nt_json_doc *nt_json_parse_streaming(const char *text, size_t len,
                                     const nt_json_stream *streams,
                                     size_t n_streams, char *err,
                                     size_t err_size);

void nt_json_free(nt_json_doc *doc);  /* NULL is fine */

const nt_json *nt_json_root(const nt_json_doc *doc);

nt_json_kind nt_json_kind_of(const nt_json *v);  /* NULL: NT_JSON_NULL */
/* "null", "false", "true", "number", "string", "array", "object" */
const char *nt_json_kind_name(nt_json_kind k);

/* Elements of an array or members of an object; 0 for anything else. */
size_t nt_json_count(const nt_json *v);

/*
 * The i-th element of an array or the value of the i-th member of an
 * object; NULL when `i` is out of range or `v` is neither.
 */
const nt_json *nt_json_at(const nt_json *v, size_t i);

/*
 * The key of the i-th member of an object (NUL-terminated; its length in
 * `*len` when `len` is not NULL); NULL when out of range or not an object.
 */
const char *nt_json_key_at(const nt_json *obj, size_t i, size_t *len);

/*
 * The value of the member named `key`, or NULL when `obj` is NULL, not an
 * object, or has no such member. With duplicate keys the last one wins.
 * The lookup scans the members, so it costs O(members).
 */
const nt_json *nt_json_get(const nt_json *obj, const char *key);
/* The same for a key of `key_len` bytes, which may contain NULs. */
const nt_json *nt_json_getn(const nt_json *obj, const char *key,
                            size_t key_len);

/*
 * The decoded UTF-8 of a string (NUL-terminated; its length in `*len` when
 * `len` is not NULL); NULL when `v` is not a string.
 */
const char *nt_json_string(const nt_json *v, size_t *len);

double nt_json_number(const nt_json *v);  /* 0 when not a number */

/*
 * 1 and the exact value in `*out` when `v` is a number written as an
 * integer (no fraction, no exponent) within int64; 0 and `*out` untouched
 * otherwise ("1.0", "1e3" and 9223372036854775808 give 0).
 */
int nt_json_int64(const nt_json *v, int64_t *out);

/*
 * v as JavaScript's JSON.stringify() writes it with ", " between items and
 * ": " after keys: what @huggingface/jinja's `tojson` filter prints, and so
 * what chat templates put in prompts. Strings escape '"', '\\' and controls
 * only (non-ASCII stays as it is); numbers are JavaScript's shortest form
 * (1.0 -> 1, 1e21 -> 1e+21, overflowed -> null); object keys come in
 * JavaScript's order (integer-like keys first, ascending, then the others
 * in order of first appearance), a repeated key once with its last value.
 * Returns malloc'd NUL-terminated text and its length, or NULL when out of
 * memory.
 */
char *nt_json_to_js_text(const nt_json *v, size_t *len);

/* A string as JSON text, quoted and escaped as nt_json_to_js_text does. */
char *nt_json_quote_js(const char *s, size_t n, size_t *len);

/*
 * v if it is an object; if it is a string holding the text of a JSON
 * object (as OpenAI gives tool-call arguments), that object, parsed into
 * *doc (free it with nt_json_free); NULL otherwise.
 */
const nt_json *nt_json_object_or_text(const nt_json *v, nt_json_doc **doc);

int nt_json_is_null(const nt_json *v);  /* 1 only for a JSON null */
int nt_json_is_bool(const nt_json *v);  /* 1 for true or false */
int nt_json_bool(const nt_json *v);     /* 1 for true, 0 for anything else */

#endif /* NT_JSON_H */
