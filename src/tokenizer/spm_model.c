/*
 * spm_model.c - see spm_model.h.
 *
 * The protobuf wire format, as far as it matters here: a message is a
 * sequence of fields, each a varint tag (field_number << 3 | wire_type)
 * followed by a value whose shape the wire type gives:
 *   0 varint   1-10 bytes, 7 bits each, low group first, high bit = "more"
 *   1 i64      8 bytes little-endian
 *   2 len      a varint byte count, then that many bytes (strings, bytes,
 *              sub-messages)
 *   3 sgroup   start of a group: fields up to the matching end-group tag
 *   4 egroup   end of a group
 *   5 i32      4 bytes little-endian (float)
 * Field numbers and defaults come from sentencepiece_model.proto, as of
 * SentencePiece 0.1.97 (Debian's) and of its current master, which agree
 * on every field read here:
 *
 *   ModelProto        1 pieces (repeated SentencePiece), 2 trainer_spec,
 *                     3 normalizer_spec, 4 self_test_data (shape checked,
 *                     not kept), 5 denormalizer_spec
 *   SentencePiece     1 piece (string), 2 score (float), 3 type (enum,
 *                     default NORMAL)
 *   TrainerSpec       3 model_type (default UNIGRAM), 22 split_by_whitespace
 *                     (true), 24 treat_whitespace_as_suffix (false),
 *                     25 split_digits (false), 26 allow_whitespace_only_pieces
 *                     (false), 35 byte_fallback (false), 40 unk_id (0),
 *                     41 bos_id (1), 42 eos_id (2), 43 pad_id (-1),
 *                     44 unk_surface (" \xE2\x81\x87 ")
 *   NormalizerSpec    1 name, 2 precompiled_charsmap (bytes),
 *                     3 add_dummy_prefix (true), 4 remove_extra_whitespaces
 *                     (true), 5 escape_whitespaces (true)
 *
 * Parsing runs in two steps. The first walks the bytes and records where
 * each string is (offsets into the input) and the scalar values, so that a
 * failure has nothing to free but one array; the second validates and then
 * copies the strings into memory the model owns.
 *
 * Speed matters a little (vocabularies reach 256k pieces): error messages
 * are formatted only on failure, pieces in the shape SentencePiece writes
 * take a short fast path, and the duplicate check is a hash table (with a
 * sort to fall back on, should crafted texts make probing quadratic).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/vocab.h"

enum {
    WIRE_VARINT = 0,
    WIRE_I64 = 1,
    WIRE_LEN = 2,
    WIRE_SGROUP = 3,
    WIRE_EGROUP = 4,
    WIRE_I32 = 5
};

/* Deeper nesting of unknown groups than this is refused, not recursed. */
#define MAX_GROUP_DEPTH 64

#define NO_PIECE SIZE_MAX

static const char DEFAULT_UNK_SURFACE[] = " \xE2\x81\x87 ";

/* The unread part of a message: absolute offsets into the input. */
typedef struct span {
    size_t pos, end;
} span;

/* A string field found in the input (`present` tells it was there). */
typedef struct str_ref {
    size_t off, len;
    int present;
} str_ref;

typedef struct piece_ref {
    size_t msg_off;  /* where the piece's message starts, for messages */
    str_ref text;
    float score;
    int type;
    uint64_t hash;   /* of the text and lookup table, for the duplicate check */
} piece_ref;

typedef struct normalizer_fields {
    str_ref name;
    str_ref charsmap;
    int add_dummy_prefix;
    int remove_extra_whitespaces;
    int escape_whitespaces;
} normalizer_fields;

typedef struct parser {
    const unsigned char *data;
    size_t len;
    const char *path;
    nt_error *err;
    /*
     * What is being read, for messages: piece `where_piece` unless that is
     * NO_PIECE, else the message `where_name` ("trainer_spec"), else the
     * top level. Kept unformatted: formatting a label for every field would
     * cost more than the parsing does.
     */
    size_t where_piece;
    const char *where_name;

    piece_ref *pieces;
    size_t n_pieces, cap_pieces;

    /* TrainerSpec scalars land straight in the model being built. */
    nt_spm_model *m;
    str_ref unk_surface;
    normalizer_fields norm, denorm;
    int has_denorm;
} parser;

/* One known field of a message: its number, wire type and name. */
typedef struct field_info {
    unsigned number;
    int wire;
    const char *name;
} field_info;

static const field_info MODEL_FIELDS[] = {
    {1, WIRE_LEN, "pieces"},
    {2, WIRE_LEN, "trainer_spec"},
    {3, WIRE_LEN, "normalizer_spec"},
    {4, WIRE_LEN, "self_test_data"},
    {5, WIRE_LEN, "denormalizer_spec"},
    {0, 0, NULL}};

static const field_info PIECE_FIELDS[] = {
    {1, WIRE_LEN, "piece"},
    {2, WIRE_I32, "score"},
    {3, WIRE_VARINT, "type"},
    {0, 0, NULL}};

static const field_info TRAINER_FIELDS[] = {
    {3, WIRE_VARINT, "model_type"},
    {22, WIRE_VARINT, "split_by_whitespace"},
    {24, WIRE_VARINT, "treat_whitespace_as_suffix"},
    {25, WIRE_VARINT, "split_digits"},
    {26, WIRE_VARINT, "allow_whitespace_only_pieces"},
    {35, WIRE_VARINT, "byte_fallback"},
    {40, WIRE_VARINT, "unk_id"},
    {41, WIRE_VARINT, "bos_id"},
    {42, WIRE_VARINT, "eos_id"},
    {43, WIRE_VARINT, "pad_id"},
    {44, WIRE_LEN, "unk_surface"},
    {0, 0, NULL}};

static const field_info SELF_TEST_FIELDS[] = {
    {1, WIRE_LEN, "samples"},
    {0, 0, NULL}};

static const field_info SAMPLE_FIELDS[] = {
    {1, WIRE_LEN, "input"},
    {2, WIRE_LEN, "expected"},
    {0, 0, NULL}};

static const field_info NORMALIZER_FIELDS[] = {
    {1, WIRE_LEN, "name"},
    {2, WIRE_LEN, "precompiled_charsmap"},
    {3, WIRE_VARINT, "add_dummy_prefix"},
    {4, WIRE_VARINT, "remove_extra_whitespaces"},
    {5, WIRE_VARINT, "escape_whitespaces"},
    {0, 0, NULL}};

static const char *wire_name(int wire) {
    switch (wire) {
    case WIRE_VARINT: return "varint";
    case WIRE_I64: return "64-bit";
    case WIRE_LEN: return "length-delimited";
    case WIRE_SGROUP: return "start-group";
    case WIRE_EGROUP: return "end-group";
    case WIRE_I32: return "32-bit";
    }
    return "invalid";
}

static const field_info *find_field(const field_info *known, unsigned number) {
    for (; known->name != NULL; known++)
        if (known->number == number)
            return known;
    return NULL;
}

/* Fails with NT_ERR_FORMAT: "<path>: <where>: <message>". */
static nt_status parse_fail(parser *p, const char *fmt, ...) NT_PRINTF(2, 3);
static nt_status parse_fail(parser *p, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->where_piece != NO_PIECE)
        nt_fail(p->err, NT_ERR_FORMAT, "%s: piece %zu: %s", p->path,
                p->where_piece, msg);
    else if (p->where_name != NULL)
        nt_fail(p->err, NT_ERR_FORMAT, "%s: %s: %s", p->path, p->where_name,
                msg);
    else
        nt_fail(p->err, NT_ERR_FORMAT, "%s: %s", p->path, msg);
    /* A constant, so the compiler sees that failure paths never yield NT_OK
       (and that outputs left unset on them are never read). */
    return NT_ERR_FORMAT;
}

/*
 * What a read is reading, for messages: a field_info, which a message
 * formats as "field N (name)", or as `name` alone when N is 0 (a text such
 * as "field tag"), or "field N" when there is no name. Passed as a pointer
 * and formatted only when a message is written.
 */
typedef const field_info *label;

static const field_info LABEL_TAG = {0, 0, "field tag"};
static const field_info LABEL_LENGTH = {0, 0, "length"};

static const char *label_text(label l, char *buf, size_t size) {
    if (l->number == 0)
        return l->name;
    if (l->name != NULL)
        snprintf(buf, size, "field %u (%s)", l->number, l->name);
    else
        snprintf(buf, size, "field %u", l->number);
    return buf;
}

/* `what`, starting at `start`, needs bytes past the end of span `s`. */
static nt_status fail_truncated(parser *p, const span *s, label what,
                                size_t start) {
    char buf[96];
    const char *w = label_text(what, buf, sizeof buf);
    if (s->end == p->len)
        return parse_fail(p, "%s at byte %zu: truncated at byte %zu (the end "
                          "of the file)", w, start, s->end);
    return parse_fail(p, "%s at byte %zu runs past the end of its message at "
                      "byte %zu", w, start, s->end);
}

/* ---- the wire format ---------------------------------------------------- */

static nt_status read_varint(parser *p, span *s, label what, uint64_t *out) {
    /* Most varints here (tags, short lengths, types) are one byte. */
    if (s->pos < s->end && p->data[s->pos] < 0x80) {
        *out = p->data[s->pos++];
        return NT_OK;
    }
    size_t start = s->pos;
    uint64_t value = 0;
    *out = 0;
    for (unsigned i = 0;; i++) {
        if (s->pos >= s->end)
            return fail_truncated(p, s, what, start);
        unsigned byte = p->data[s->pos++];
        /* The 10th byte holds bit 63 only. */
        if (i == 9 && byte > 1) {
            char buf[96];
            return parse_fail(p, "%s at byte %zu: varint longer than 64 bits",
                              label_text(what, buf, sizeof buf), start);
        }
        value |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (byte < 0x80) {
            *out = value;
            return NT_OK;
        }
    }
}

static nt_status read_fixed(parser *p, span *s, label what, size_t size,
                            unsigned char *out) {
    if (s->end - s->pos < size)
        return fail_truncated(p, s, what, s->pos);
    if (out != NULL)
        memcpy(out, p->data + s->pos, size);
    s->pos += size;
    return NT_OK;
}

/* Reads a length-delimited value: `body` gets its bytes. */
static nt_status read_len(parser *p, span *s, label what, span *body) {
    size_t start = s->pos;
    uint64_t n = 0;
    body->pos = body->end = s->pos;
    nt_status st = read_varint(p, s, what, &n);
    if (st != NT_OK)
        return st;
    if (n > s->end - s->pos) {
        char buf[96];
        const char *w = label_text(what, buf, sizeof buf);
        if (s->end == p->len)
            return parse_fail(p, "%s at byte %zu: truncated: it says %" PRIu64
                              " bytes but the file ends at byte %zu",
                              w, start, n, s->end);
        return parse_fail(p, "%s at byte %zu: its %" PRIu64 " bytes run past "
                          "the end of its message at byte %zu",
                          w, start, n, s->end);
    }
    body->pos = s->pos;
    body->end = s->pos + (size_t)n;
    s->pos = body->end;
    return NT_OK;
}

static nt_status read_tag(parser *p, span *s, unsigned *field, int *wire,
                          size_t *tag_at) {
    *tag_at = s->pos;
    *field = 0;
    *wire = 0;
    uint64_t tag = 0;
    nt_status st = read_varint(p, s, &LABEL_TAG, &tag);
    if (st != NT_OK)
        return st;
    if (tag > UINT32_MAX)
        return parse_fail(p, "field tag at byte %zu: %" PRIu64 " is too large "
                          "to be a tag", *tag_at, tag);
    *field = (unsigned)(tag >> 3);
    *wire = (int)(tag & 7);
    if (*field == 0)
        return parse_fail(p, "field tag at byte %zu: field number 0 is invalid",
                          *tag_at);
    if (*wire > WIRE_I32)
        return parse_fail(p, "field %u at byte %zu: invalid wire type %d",
                          *field, *tag_at, *wire);
    return NT_OK;
}

static nt_status skip_value(parser *p, span *s, unsigned field, int wire,
                            size_t tag_at);

/* Skips a group's fields up to its end-group tag (the start tag is read). */
static nt_status skip_group(parser *p, span *s, unsigned field, size_t tag_at) {
    unsigned open[MAX_GROUP_DEPTH];
    int depth = 0;
    open[depth++] = field;
    while (depth > 0) {
        if (s->pos >= s->end) {
            char what[64];
            snprintf(what, sizeof what, "group (field %u) never closed", field);
            field_info text = {0, 0, what};
            return fail_truncated(p, s, &text, tag_at);
        }
        unsigned inner = 0;
        int wire = 0;
        size_t inner_at;
        nt_status st = read_tag(p, s, &inner, &wire, &inner_at);
        if (st != NT_OK)
            return st;
        if (wire == WIRE_EGROUP) {
            if (inner != open[depth - 1])
                return parse_fail(p, "field %u at byte %zu: end-group does not "
                                  "match the open group of field %u",
                                  inner, inner_at, open[depth - 1]);
            depth--;
        } else if (wire == WIRE_SGROUP) {
            if (depth == MAX_GROUP_DEPTH)
                return parse_fail(p, "field %u at byte %zu: groups nested more "
                                  "than %d deep", inner, inner_at,
                                  MAX_GROUP_DEPTH);
            open[depth++] = inner;
        } else {
            st = skip_value(p, s, inner, wire, inner_at);
            if (st != NT_OK)
                return st;
        }
    }
    return NT_OK;
}

/* Skips the value of a field we do not read. */
static nt_status skip_value(parser *p, span *s, unsigned field, int wire,
                            size_t tag_at) {
    field_info unknown = {field, wire, NULL};
    label what = &unknown;
    uint64_t ignored;
    span body;
    switch (wire) {
    case WIRE_VARINT: return read_varint(p, s, what, &ignored);
    case WIRE_I64: return read_fixed(p, s, what, 8, NULL);
    case WIRE_LEN: return read_len(p, s, what, &body);
    case WIRE_I32: return read_fixed(p, s, what, 4, NULL);
    case WIRE_SGROUP: return skip_group(p, s, field, tag_at);
    case WIRE_EGROUP:
        return parse_fail(p, "field %u at byte %zu: end-group without a "
                          "start-group", field, tag_at);
    }
    return parse_fail(p, "field %u at byte %zu: invalid wire type %d", field,
                      tag_at, wire);
}

/*
 * Reads the next tag of a message. `*info` is the known field or NULL for
 * one we skip; a known field with the wrong wire type is an error.
 */
static nt_status next_field(parser *p, span *s, const field_info *known,
                            const field_info **info, int *wire,
                            size_t *tag_at) {
    unsigned field = 0;
    nt_status st = read_tag(p, s, &field, wire, tag_at);
    if (st != NT_OK)
        return st;
    *info = find_field(known, field);
    if (*info == NULL)
        return skip_value(p, s, field, *wire, *tag_at);
    if (*wire != (*info)->wire)
        return parse_fail(p, "field %u (%s) at byte %zu has wire type %d (%s), "
                          "expected %d (%s)", field, (*info)->name, *tag_at,
                          *wire, wire_name(*wire), (*info)->wire,
                          wire_name((*info)->wire));
    return NT_OK;
}

static nt_status read_bool(parser *p, span *s, const field_info *info,
                           int *out) {
    uint64_t v;
    nt_status st = read_varint(p, s, info, &v);
    if (st == NT_OK)
        *out = v != 0;
    return st;
}

/*
 * An int32 as protobuf writes it: non-negative values as they are, negative
 * ones sign-extended to 64 bits (10 bytes). The 32-bit two's complement
 * form (5 bytes) that some writers produce is accepted too.
 */
static nt_status read_int32(parser *p, span *s, const field_info *info,
                            int *out) {
    uint64_t v;
    size_t start = s->pos;
    nt_status st = read_varint(p, s, info, &v);
    if (st != NT_OK)
        return st;
    if (v <= INT32_MAX)
        *out = (int)v;
    else if (v >= UINT64_C(0xFFFFFFFF80000000))
        *out = (int)(int32_t)(uint32_t)v;
    else if (v >= UINT64_C(0x80000000) && v <= UINT32_MAX)
        *out = (int)(int32_t)(uint32_t)v;
    else
        return parse_fail(p, "field %u (%s) at byte %zu: %" PRIu64 " is not an "
                          "int32", info->number, info->name, start, v);
    return NT_OK;
}

static nt_status read_string(parser *p, span *s, const field_info *info,
                             str_ref *out) {
    span body = {0, 0};
    nt_status st = read_len(p, s, info, &body);
    if (st != NT_OK)
        return st;
    out->off = body.pos;
    out->len = body.end - body.pos;
    out->present = 1;
    return NT_OK;
}

/* ---- the messages ------------------------------------------------------- */

/* Tag bytes of the piece fields, as SentencePiece writes them. */
#define TAG_PIECE_TEXT 0x0A   /* field 1, length-delimited */
#define TAG_PIECE_SCORE 0x15  /* field 2, 32-bit */
#define TAG_PIECE_TYPE 0x18   /* field 3, varint */

static nt_status parse_piece(parser *p, span s, piece_ref *piece) {
    const unsigned char *d = p->data;
    while (s.pos < s.end) {
        /*
         * Fast paths for the usual shapes (one-byte tag, one-byte length
         * or type), which give exactly what the general path would; any
         * other shape, and every error, takes the general path.
         */
        size_t left = s.end - s.pos;
        unsigned tag = d[s.pos];
        if (tag == TAG_PIECE_TEXT && left >= 2 && d[s.pos + 1] < 0x80 &&
            d[s.pos + 1] <= left - 2) {
            piece->text.off = s.pos + 2;
            piece->text.len = d[s.pos + 1];
            piece->text.present = 1;
            s.pos += 2 + (size_t)d[s.pos + 1];
            continue;
        }
        if (tag == TAG_PIECE_SCORE && left >= 5) {
            memcpy(&piece->score, d + s.pos + 1, 4);  /* little-endian host */
            s.pos += 5;
            continue;
        }
        if (tag == TAG_PIECE_TYPE && left >= 2 && d[s.pos + 1] >= NT_SPM_NORMAL &&
            d[s.pos + 1] <= NT_SPM_BYTE) {
            piece->type = d[s.pos + 1];
            s.pos += 2;
            continue;
        }

        const field_info *info;
        int wire;
        size_t tag_at;
        nt_status st = next_field(p, &s, PIECE_FIELDS, &info, &wire, &tag_at);
        if (st != NT_OK)
            return st;
        if (info == NULL)
            continue;
        switch (info->number) {
        case 1:
            st = read_string(p, &s, info, &piece->text);
            break;
        case 2: {
            unsigned char bytes[4] = {0};
            st = read_fixed(p, &s, info, 4, bytes);
            if (st == NT_OK)
                memcpy(&piece->score, bytes, 4);  /* little-endian host */
            break;
        }
        case 3: {
            uint64_t type;
            size_t start = s.pos;
            st = read_varint(p, &s, info, &type);
            if (st != NT_OK)
                return st;
            if (type < NT_SPM_NORMAL || type > NT_SPM_BYTE)
                return parse_fail(p, "field 3 (type) at byte %zu: %" PRId64
                                  " is not a piece type (1..6)", start,
                                  (int64_t)type);
            piece->type = (int)type;
            break;
        }
        }
        if (st != NT_OK)
            return st;
    }
    return NT_OK;
}

static nt_status parse_trainer_spec(parser *p, span s) {
    nt_spm_model *m = p->m;
    while (s.pos < s.end) {
        const field_info *info;
        int wire;
        size_t tag_at;
        nt_status st = next_field(p, &s, TRAINER_FIELDS, &info, &wire, &tag_at);
        if (st != NT_OK)
            return st;
        if (info == NULL)
            continue;
        switch (info->number) {
        case 3: {
            uint64_t type;
            size_t start = s.pos;
            st = read_varint(p, &s, info, &type);
            if (st != NT_OK)
                return st;
            if (type < NT_SPM_MODEL_UNIGRAM || type > NT_SPM_MODEL_CHAR)
                return parse_fail(p, "field 3 (model_type) at byte %zu: %" PRId64
                                  " is not a model type (1..4)", start,
                                  (int64_t)type);
            m->model_type = (int)type;
            break;
        }
        case 22: st = read_bool(p, &s, info, &m->split_by_whitespace); break;
        case 24: st = read_bool(p, &s, info, &m->treat_whitespace_as_suffix); break;
        case 25: st = read_bool(p, &s, info, &m->split_digits); break;
        case 26: st = read_bool(p, &s, info, &m->allow_whitespace_only_pieces); break;
        case 35: st = read_bool(p, &s, info, &m->byte_fallback); break;
        case 40: st = read_int32(p, &s, info, &m->unk_id); break;
        case 41: st = read_int32(p, &s, info, &m->bos_id); break;
        case 42: st = read_int32(p, &s, info, &m->eos_id); break;
        case 43: st = read_int32(p, &s, info, &m->pad_id); break;
        case 44: st = read_string(p, &s, info, &p->unk_surface); break;
        }
        if (st != NT_OK)
            return st;
    }
    return NT_OK;
}

static nt_status parse_normalizer_spec(parser *p, span s,
                                       normalizer_fields *n) {
    while (s.pos < s.end) {
        const field_info *info;
        int wire;
        size_t tag_at;
        nt_status st =
            next_field(p, &s, NORMALIZER_FIELDS, &info, &wire, &tag_at);
        if (st != NT_OK)
            return st;
        if (info == NULL)
            continue;
        switch (info->number) {
        case 1: st = read_string(p, &s, info, &n->name); break;
        case 2: st = read_string(p, &s, info, &n->charsmap); break;
        case 3: st = read_bool(p, &s, info, &n->add_dummy_prefix); break;
        case 4: st = read_bool(p, &s, info, &n->remove_extra_whitespaces); break;
        case 5: st = read_bool(p, &s, info, &n->escape_whitespaces); break;
        }
        if (st != NT_OK)
            return st;
    }
    return NT_OK;
}

/*
 * self_test_data is not needed to tokenize, but protobuf (and so
 * SentencePiece) refuses a file whose self_test_data is malformed, so its
 * shape is checked: repeated Sample samples = 1, each with string fields
 * input = 1 and expected = 2.
 */
static nt_status parse_self_test_data(parser *p, span s) {
    while (s.pos < s.end) {
        const field_info *info;
        int wire;
        size_t tag_at;
        nt_status st =
            next_field(p, &s, SELF_TEST_FIELDS, &info, &wire, &tag_at);
        if (st != NT_OK)
            return st;
        if (info == NULL)
            continue;
        span sample;
        st = read_len(p, &s, info, &sample);
        while (st == NT_OK && sample.pos < sample.end) {
            st = next_field(p, &sample, SAMPLE_FIELDS, &info, &wire, &tag_at);
            if (st == NT_OK && info != NULL) {
                span text;
                st = read_len(p, &sample, info, &text);
            }
        }
        if (st != NT_OK)
            return st;
    }
    return NT_OK;
}

static void normalizer_defaults(normalizer_fields *n) {
    memset(n, 0, sizeof *n);
    n->add_dummy_prefix = 1;
    n->remove_extra_whitespaces = 1;
    n->escape_whitespaces = 1;
}

/* Appends a piece (its message at `msg_off`, its fields in `body`). */
static nt_status add_piece(parser *p, size_t msg_off, span body) {
    if (p->n_pieces == p->cap_pieces) {
        if (p->n_pieces >= (size_t)INT_MAX)
            return parse_fail(p, "more than %d pieces", INT_MAX);
        size_t cap = p->cap_pieces ? p->cap_pieces * 2 : 1024;
        if (cap > (size_t)INT_MAX)
            cap = (size_t)INT_MAX;
        piece_ref *grown = realloc(p->pieces, cap * sizeof *grown);
        if (grown == NULL)
            return nt_fail(p->err, NT_ERR_NO_MEMORY,
                           "%s: out of memory for %zu pieces", p->path, cap);
        p->pieces = grown;
        p->cap_pieces = cap;
    }
    piece_ref *piece = &p->pieces[p->n_pieces++];
    memset(piece, 0, sizeof *piece);
    piece->type = NT_SPM_NORMAL;
    piece->msg_off = msg_off;
    return parse_piece(p, body, piece);
}

static nt_status parse_model_proto(parser *p) {
    span s = {0, p->len};
    while (s.pos < s.end) {
        unsigned field = 0;
        int wire = 0;
        size_t tag_at = 0;
        nt_status st;
        p->where_piece = NO_PIECE;
        p->where_name = NULL;
        /* The usual case first: a piece with a one-byte tag and length
           (the general path below gives the same for it). */
        size_t left = s.end - s.pos;
        if (p->data[s.pos] == TAG_PIECE_TEXT && left >= 2 &&
            p->data[s.pos + 1] < 0x80 && p->data[s.pos + 1] <= left - 2) {
            span body = {s.pos + 2, s.pos + 2 + p->data[s.pos + 1]};
            p->where_piece = p->n_pieces;
            st = add_piece(p, s.pos, body);
            if (st != NT_OK)
                return st;
            s.pos = body.end;
            continue;
        }
        st = read_tag(p, &s, &field, &wire, &tag_at);
        if (st != NT_OK)
            return st;
        const field_info *info = find_field(MODEL_FIELDS, field);
        if (info == NULL) {
            st = skip_value(p, &s, field, wire, tag_at);
            if (st != NT_OK)
                return st;
            continue;
        }
        if (field == 1)
            p->where_piece = p->n_pieces;
        else
            p->where_name = info->name;
        if (wire != info->wire)
            return parse_fail(p, "field %u at byte %zu has wire type %d (%s), "
                              "expected %d (%s)", field, tag_at, wire,
                              wire_name(wire), info->wire,
                              wire_name(info->wire));
        span body;
        st = read_len(p, &s, &LABEL_LENGTH, &body);
        if (st != NT_OK)
            return st;
        switch (field) {
        case 1: st = add_piece(p, tag_at, body); break;
        case 2: st = parse_trainer_spec(p, body); break;
        case 3: st = parse_normalizer_spec(p, body, &p->norm); break;
        case 4: st = parse_self_test_data(p, body); break;
        case 5:
            p->has_denorm = 1;
            st = parse_normalizer_spec(p, body, &p->denorm);
            break;
        }
        if (st != NT_OK)
            return st;
    }
    p->where_piece = NO_PIECE;
    p->where_name = NULL;
    return NT_OK;
}

/* ---- validation ---------------------------------------------------------- */

/* Length of the valid UTF-8 character at s[0..n), or 0 if it is not one. */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t need;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;  /* a continuation byte, C0/C1 (overlong) or F5..FF */
    }
    if (n - 1 < need)
        return 0;
    for (size_t k = 1; k <= need; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need + 1;
}

/* Offset of the first byte that is not valid UTF-8, or SIZE_MAX. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_char_len(s + i, n - i);
        if (k == 0)
            return i;
        i += k;
    }
    return SIZE_MAX;
}

/* A quoted, shortened, escaped copy of some text, for messages. */
static const char *quote(const unsigned char *s, size_t n, char *buf,
                         size_t size) {
    size_t out = 0, i = 0;
    buf[out++] = '"';
    while (i < n && out + 12 < size) {
        size_t k = s[i] >= 0x80 ? utf8_char_len(s + i, n - i) : 1;
        if (s[i] >= 0x80 && k > 0) {
            memcpy(buf + out, s + i, k);
            out += k;
            i += k;
        } else if (s[i] < 0x20 || s[i] >= 0x7F || s[i] == '"' ||
                   s[i] == '\\') {
            out += (size_t)snprintf(buf + out, size - out, "\\x%02X", s[i]);
            i++;
        } else {
            buf[out++] = (char)s[i++];
        }
    }
    if (i < n) {
        memcpy(buf + out, "...", 3);
        out += 3;
    }
    buf[out++] = '"';
    buf[out] = '\0';
    return buf;
}

/* NORMAL, USER_DEFINED and UNUSED pieces share one SentencePiece lookup
   table; UNKNOWN, CONTROL and BYTE pieces the other. */
static int piece_table(int type) {
    return type == NT_SPM_UNKNOWN || type == NT_SPM_CONTROL ||
           type == NT_SPM_BYTE;
}

static int same_key(const parser *p, size_t a, size_t b) {
    const piece_ref *x = &p->pieces[a], *y = &p->pieces[b];
    return piece_table(x->type) == piece_table(y->type) &&
           x->text.len == y->text.len &&
           memcmp(p->data + x->text.off, p->data + y->text.off,
                  x->text.len) == 0;
}

static uint64_t piece_hash(const parser *p, size_t i) {
    const piece_ref *x = &p->pieces[i];
    return nt_hash_bytes_seeded((const char *)p->data + x->text.off, x->text.len,
                                (uint64_t)piece_table(x->type));
}

typedef struct sort_key {
    const unsigned char *text;
    size_t len;
    int table;
    int index;
} sort_key;

static int compare_keys(const void *a, const void *b) {
    const sort_key *x = a, *y = b;
    if (x->table != y->table)
        return x->table < y->table ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Finds the first piece (lowest index `*second`) whose key an earlier piece
 * `*first` already has, by sorting: O(n log n) whatever the texts are.
 */
static nt_status find_duplicate_sorted(parser *p, int *first, int *second) {
    size_t n = p->n_pieces;
    sort_key *keys = malloc(n * sizeof *keys);
    if (keys == NULL)
        return nt_fail(p->err, NT_ERR_NO_MEMORY, "%s: out of memory", p->path);
    for (size_t i = 0; i < n; i++) {
        keys[i].text = p->data + p->pieces[i].text.off;
        keys[i].len = p->pieces[i].text.len;
        keys[i].table = piece_table(p->pieces[i].type);
        keys[i].index = (int)i;
    }
    qsort(keys, n, sizeof *keys, compare_keys);
    *first = *second = -1;
    for (size_t i = 0; i + 1 < n; i++) {
        /* Within a run of equal keys the indices ascend: keys[i] starts a
           run exactly when it differs from keys[i - 1]. */
        if (i > 0 && same_key(p, (size_t)keys[i - 1].index,
                              (size_t)keys[i].index))
            continue;
        if (same_key(p, (size_t)keys[i].index, (size_t)keys[i + 1].index) &&
            (*second < 0 || keys[i + 1].index < *second)) {
            *first = keys[i].index;
            *second = keys[i + 1].index;
        }
    }
    free(keys);
    return NT_OK;
}

/*
 * The same with a hash table, which is what runs: linear probing over a
 * table at most half full. Texts made to collide could make probing
 * quadratic, so past a budget of probes the sorting version takes over.
 */
static nt_status find_duplicate(parser *p, int *first, int *second) {
    /* A slot: the high half of the hash, to skip most comparisons, and the
       piece index + 1 (0: empty). */
    typedef struct slot_entry {
        uint32_t hash_high;
        uint32_t index_plus_1;
    } slot_entry;
    size_t n = p->n_pieces, size = 16;
    while (size < 2 * n)
        size *= 2;
    slot_entry *slots = calloc(size, sizeof *slots);
    if (slots == NULL)
        return nt_fail(p->err, NT_ERR_NO_MEMORY, "%s: out of memory", p->path);
    size_t budget = 16 * n + 1024, probes = 0;
    *first = *second = -1;
    for (size_t i = 0; i < n; i++) {
        /* The table outgrows the caches: ask for slots a few pieces ahead
           so that their cache misses overlap. */
        if (i + 16 < n)
            NT_PREFETCH(&slots[(size_t)p->pieces[i + 16].hash & (size - 1)]);
        uint64_t h = p->pieces[i].hash;
        uint32_t high = (uint32_t)(h >> 32);
        size_t slot = (size_t)h & (size - 1);
        while (slots[slot].index_plus_1 != 0) {
            size_t j = slots[slot].index_plus_1 - 1;
            if (slots[slot].hash_high == high && same_key(p, j, i)) {
                *first = (int)j;
                *second = (int)i;
                free(slots);
                return NT_OK;
            }
            if (++probes > budget) {
                free(slots);
                return find_duplicate_sorted(p, first, second);
            }
            slot = (slot + 1) & (size - 1);
        }
        slots[slot].hash_high = high;
        slots[slot].index_plus_1 = (uint32_t)(i + 1);
    }
    free(slots);
    return NT_OK;
}

/* "<0x4F>" -> 0x4F; -1 for anything else (SentencePiece writes upper case). */
static int byte_piece_value(const unsigned char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    const char *hi = s[3] ? strchr(hex, s[3]) : NULL;
    const char *lo = s[4] ? strchr(hex, s[4]) : NULL;
    if (hi == NULL || lo == NULL)
        return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

static nt_status check_id(parser *p, const char *name, int id) {
    if (id != -1 && (id < 0 || (size_t)id >= p->n_pieces))
        return parse_fail(p, "trainer_spec: %s %d is not -1 or a piece index "
                          "(the model has %zu pieces)", name, id,
                          p->n_pieces);
    return NT_OK;
}

/* C strings the model hands out must not hide bytes behind a NUL. */
static nt_status check_c_string(parser *p, const char *name,
                                const str_ref *ref) {
    if (!ref->present)
        return NT_OK;
    const unsigned char *s = p->data + ref->off;
    size_t bad = utf8_invalid_at(s, ref->len);
    if (bad != SIZE_MAX)
        return parse_fail(p, "%s at byte %zu is not valid UTF-8 (byte 0x%02X "
                          "at offset %zu)", name, ref->off, s[bad], bad);
    if (memchr(s, '\0', ref->len) != NULL)
        return parse_fail(p, "%s at byte %zu contains a NUL byte", name,
                          ref->off);
    return NT_OK;
}

static nt_status validate(parser *p) {
    nt_spm_model *m = p->m;
    char q[160];
    nt_status st;
    size_t n = p->n_pieces;
    int unk_index = -1;
    int bytes_found = 0;
    unsigned char byte_seen[256] = {0};

    if (n == 0)
        return parse_fail(p, "the model has no pieces");
    for (size_t i = 0; i < n; i++) {
        const piece_ref *piece = &p->pieces[i];
        const unsigned char *text = p->data + piece->text.off;
        p->where_piece = i;
        if (piece->text.len == 0)
            return parse_fail(p, "empty text (the piece's message is at "
                              "byte %zu)", piece->msg_off);
        size_t bad = utf8_invalid_at(text, piece->text.len);
        if (bad != SIZE_MAX)
            return parse_fail(p, "text %s at byte %zu is not valid UTF-8 "
                              "(byte 0x%02X at offset %zu)",
                              quote(text, piece->text.len, q, sizeof q),
                              piece->text.off, text[bad], bad);
        p->pieces[i].hash = piece_hash(p, i);
        if (piece->type == NT_SPM_UNKNOWN) {
            if (unk_index >= 0)
                return parse_fail(p, "type UNKNOWN, but piece %d is already "
                                  "the UNKNOWN piece", unk_index);
            unk_index = (int)i;
        }
        if (piece->type == NT_SPM_BYTE) {
            int value = byte_piece_value(text, piece->text.len);
            if (!m->byte_fallback)
                return parse_fail(p, "byte piece %s, but trainer_spec."
                                  "byte_fallback is false",
                                  quote(text, piece->text.len, q, sizeof q));
            if (value < 0)
                return parse_fail(p, "byte piece %s is not of the form <0xHH>",
                                  quote(text, piece->text.len, q, sizeof q));
            if (!byte_seen[value]) {
                byte_seen[value] = 1;
                bytes_found++;
            }
        }
    }
    p->where_piece = NO_PIECE;

    int first = -1, second = -1;
    st = find_duplicate(p, &first, &second);
    if (st != NT_OK)
        return st;
    if (second >= 0) {
        const piece_ref *piece = &p->pieces[second];
        return parse_fail(p, "pieces %d and %d have the same text %s",
                          first, second,
                          quote(p->data + piece->text.off, piece->text.len, q,
                                sizeof q));
    }

    if (unk_index < 0)
        return parse_fail(p, "no piece has type UNKNOWN");
    if (m->unk_id != unk_index)
        return parse_fail(p, "trainer_spec: unk_id is %d but the UNKNOWN piece "
                          "is piece %d", m->unk_id, unk_index);
    if ((st = check_id(p, "bos_id", m->bos_id)) != NT_OK ||
        (st = check_id(p, "eos_id", m->eos_id)) != NT_OK ||
        (st = check_id(p, "pad_id", m->pad_id)) != NT_OK)
        return st;
    if (m->byte_fallback && bytes_found != 256) {
        int missing = 0;
        while (byte_seen[missing])
            missing++;
        return parse_fail(p, "trainer_spec.byte_fallback is true but only %d "
                          "of the 256 byte pieces exist (<0x%02X> is missing)",
                          bytes_found, missing);
    }
    if ((st = check_c_string(p, "trainer_spec: unk_surface",
                             &p->unk_surface)) != NT_OK ||
        (st = check_c_string(p, "normalizer_spec: name", &p->norm.name)) !=
            NT_OK ||
        (st = check_c_string(p, "denormalizer_spec: name", &p->denorm.name)) !=
            NT_OK)
        return st;
    return NT_OK;
}

/* ---- building the model ---------------------------------------------------- */

static char *copy_string(const parser *p, const str_ref *ref,
                         const char *fallback) {
    const char *src = ref->present ? (const char *)p->data + ref->off : fallback;
    size_t len = ref->present ? ref->len : strlen(fallback);
    char *s = malloc(len + 1);
    if (s != NULL) {
        memcpy(s, src, len);
        s[len] = '\0';
    }
    return s;
}

static nt_status build(parser *p) {
    nt_spm_model *m = p->m;
    size_t n = p->n_pieces, total = 0;
    for (size_t i = 0; i < n; i++)
        total += p->pieces[i].text.len + 1;  /* texts are disjoint: no overflow */

    m->pieces = calloc(n, sizeof *m->pieces);
    char *block = malloc(total);
    m->unk_surface = copy_string(p, &p->unk_surface, DEFAULT_UNK_SURFACE);
    m->normalizer_name = copy_string(p, &p->norm.name, "");
    if (p->norm.charsmap.present && p->norm.charsmap.len > 0) {
        m->precompiled_charsmap = malloc(p->norm.charsmap.len);
        if (m->precompiled_charsmap != NULL) {
            memcpy(m->precompiled_charsmap, p->data + p->norm.charsmap.off,
                   p->norm.charsmap.len);
            m->precompiled_charsmap_len = p->norm.charsmap.len;
        }
    }
    if (m->pieces == NULL || block == NULL || m->unk_surface == NULL ||
        m->normalizer_name == NULL ||
        (p->norm.charsmap.len > 0 && m->precompiled_charsmap == NULL)) {
        free(block);
        return nt_fail(p->err, NT_ERR_NO_MEMORY,
                       "%s: out of memory for %zu pieces", p->path, n);
    }
    char *at = block;
    for (size_t i = 0; i < n; i++) {
        const piece_ref *src = &p->pieces[i];
        nt_spm_piece *dst = &m->pieces[i];
        memcpy(at, p->data + src->text.off, src->text.len);
        at[src->text.len] = '\0';
        dst->text = at;
        dst->len = src->text.len;
        dst->score = src->score;
        dst->type = src->type;
        at += src->text.len + 1;
    }
    m->n_pieces = (int)n;
    m->add_dummy_prefix = p->norm.add_dummy_prefix;
    m->remove_extra_whitespaces = p->norm.remove_extra_whitespaces;
    m->escape_whitespaces = p->norm.escape_whitespaces;
    m->has_denormalizer_spec = p->has_denorm;
    return NT_OK;
}

/* ---- the interface ----------------------------------------------------------- */

nt_status nt_spm_model_parse(const unsigned char *data, size_t len,
                             const char *path, nt_spm_model *out,
                             nt_error *err) {
    if (out == NULL)
        return nt_fail(err, NT_ERR_ARGUMENT, "nt_spm_model_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (data == NULL && len > 0)
        return nt_fail(err, NT_ERR_ARGUMENT, "nt_spm_model_parse: data is NULL");

    parser p;
    memset(&p, 0, sizeof p);
    p.data = data;
    p.len = len;
    p.path = path != NULL ? path : "tokenizer.model";
    p.err = err;
    p.where_piece = NO_PIECE;
    p.m = out;
    normalizer_defaults(&p.norm);
    normalizer_defaults(&p.denorm);
    out->model_type = NT_SPM_MODEL_UNIGRAM;
    out->split_by_whitespace = 1;
    out->unk_id = 0;
    out->bos_id = 1;
    out->eos_id = 2;
    out->pad_id = -1;

    nt_status st = parse_model_proto(&p);
    if (st == NT_OK)
        st = validate(&p);
    if (st == NT_OK)
        st = build(&p);
    free(p.pieces);
    if (st != NT_OK) {
        nt_spm_model_free(out);
        return st;
    }
    nt_error_clear(err);
    return NT_OK;
}

nt_status nt_spm_model_load(const char *path, nt_spm_model *out,
                            nt_error *err) {
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (path == NULL || out == NULL)
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "nt_spm_model_load: path or out is NULL");
    size_t len;
    unsigned char *buf = (unsigned char *)nt_read_file(path, NT_SPM_MODEL_MAX_FILE_SIZE,
                                                       &len, err);
    if (buf == NULL)
        return err != NULL ? err->status : NT_ERR_IO;
    nt_status st = nt_spm_model_parse(buf, len, path, out, err);
    free(buf);
    return st;
}

void nt_spm_model_free(nt_spm_model *m) {
    if (m == NULL)
        return;
    if (m->pieces != NULL && m->n_pieces > 0)
        free(m->pieces[0].text);
    free(m->pieces);
    free(m->unk_surface);
    free(m->normalizer_name);
    free(m->precompiled_charsmap);
    memset(m, 0, sizeof *m);
}
