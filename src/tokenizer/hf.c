/*
 * hf.c - HF tokenizers' rules, for tokenizer.json files.
 *
 * The behaviour matches the reference our tests hold, HF's tokenizers.js
 * (npm @huggingface/tokenizers 0.2.0), which the Python/Rust library agrees
 * with on everything a SentencePiece-converted BPE vocabulary exercises.
 * Encoding a text:
 *
 *   1. split it at added tokens (longest match at each position, scanning
 *      left to right), trimming whitespace next to tokens marked lstrip or
 *      rstrip; each piece between tokens is a "section";
 *   2. normalize each section (Prepend, Replace, Strip, NFC, ...), then
 *      split it again at the added tokens marked `normalized`;
 *   3. pre-tokenize (Metaspace: spaces to U+2581, and the prefix U+2581
 *      by prepend_scheme, where "first" means the text's first section);
 *   4. BPE by merge rank; unknown symbols become byte pieces or <unk>.
 *
 * Decoding maps ids to their pieces and runs the decoder chain over the
 * list: Replace, ByteFallback (a run of <0xXX> pieces decoded as UTF-8),
 * Fuse, Strip, Metaspace. Two details follow tokenizers.js where the Rust
 * library differs: a byte run is decoded like a browser's TextDecoder (each
 * ill-formed subsequence is one U+FFFD, and a leading byte order mark is
 * dropped). Like transformers' decode(), spaces before punctuation are
 * cleaned up when tokenizer_config.json asks for it (the default).
 *
 * Components we do not implement are refused by name when loading.
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "tokenizer/hf_model.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

#define MAX_TOKENIZER_JSON (256u << 20)

/*
 * Bounds on a pipeline, so that a hostile tokenizer.json cannot make
 * encoding or decoding blow up: each Replace step may lengthen a text by
 * its content / pattern ratio, and a chain of them multiplies (22 steps
 * of "a" -> "aa" turn 16 bytes into 64 MB). Real tokenizers use a
 * handful of steps and grow a text at most 3-fold (" " -> "\u2581").
 */
#define MAX_PIPELINE_STEPS 32
#define MAX_REPLACE_GROWTH 64

enum { SCHEME_ALWAYS = 0, SCHEME_FIRST = 1, SCHEME_NEVER = 2 };
enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_WITH_PREVIOUS,
       SPLIT_MERGED_WITH_NEXT, SPLIT_CONTIGUOUS };

/* ---- loading: small helpers ------------------------------------------------ */

typedef struct loader {
    nt_tokenizer *tok;
    const char *path;
    nt_error *err;
    nt_status status;
} loader;

static nt_status load_fail(loader *L, nt_status st, const char *what) {
    if (L->status == NT_OK)
        L->status = nt_fail(L->err, st, "%s: %s", L->path, what);
    return L->status;
}

static char *dup_bytes(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int bool_field(const nt_json *obj, const char *key, int def) {
    const nt_json *v = nt_json_get(obj, key);
    return nt_json_is_bool(v) ? nt_json_bool(v) : def;
}

/* A {"String": "..."} pattern; Regex patterns need an engine we lack. */
static int string_pattern(loader *L, const nt_json *pattern, const char *where,
                          char **out, size_t *len) {
    size_t n;
    const char *s = nt_json_string(nt_json_get(pattern, "String"), &n);
    if (!s) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: %s patterns are not supported (only String)",
                 where, nt_json_get(pattern, "Regex") ? "Regex" : "this kind of");
        load_fail(L, NT_ERR_UNSUPPORTED, msg);
        return 0;
    }
    if (n == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s: empty pattern", where);
        load_fail(L, NT_ERR_FORMAT, msg);
        return 0;
    }
    *out = dup_bytes(s, n);
    *len = n;
    return *out != NULL || (load_fail(L, NT_ERR_NO_MEMORY, "out of memory"), 0);
}

static nt_hf_step *push_step(loader *L, const char *stage, nt_hf_step **steps, int *n) {
    if (*n == MAX_PIPELINE_STEPS) {
        char msg[128];
        snprintf(msg, sizeof msg, "more than %d %s steps", MAX_PIPELINE_STEPS, stage);
        load_fail(L, NT_ERR_FORMAT, msg);
        return NULL;
    }
    nt_hf_step *p = realloc(*steps, (size_t)(*n + 1) * sizeof *p);
    if (!p) {
        load_fail(L, NT_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    *steps = p;
    memset(&p[*n], 0, sizeof p[*n]);
    return &p[(*n)++];
}

static void unsupported(loader *L, const char *stage, const char *type) {
    char msg[192];
    snprintf(msg, sizeof msg, "%s type \"%.64s\" is not supported", stage,
             type ? type : "(none)");
    load_fail(L, NT_ERR_UNSUPPORTED, msg);
}

static int parse_scheme(loader *L, const nt_json *obj) {
    const char *s = nt_json_string(nt_json_get(obj, "prepend_scheme"), NULL);
    if (!s) /* older files: add_prefix_space */
        return bool_field(obj, "add_prefix_space", 1) ? SCHEME_ALWAYS : SCHEME_NEVER;
    if (strcmp(s, "always") == 0)
        return SCHEME_ALWAYS;
    if (strcmp(s, "first") == 0)
        return SCHEME_FIRST;
    if (strcmp(s, "never") == 0)
        return SCHEME_NEVER;
    load_fail(L, NT_ERR_FORMAT, "Metaspace: prepend_scheme is not always, first or never");
    return SCHEME_ALWAYS;
}

static int metaspace_replacement(loader *L, const nt_json *obj, nt_hf_step *st) {
    size_t n;
    const char *r = nt_json_string(nt_json_get(obj, "replacement"), &n);
    if (!r) {
        r = "\xE2\x96\x81";
        n = 3;
    }
    uint32_t cp;
    if (n == 0 || nt_utf8_decode(r, n, &cp) != (int)n) {
        load_fail(L, NT_ERR_FORMAT, "Metaspace: replacement is not one character");
        return 0;
    }
    st->a = dup_bytes(r, n);
    st->a_len = n;
    return st->a != NULL || (load_fail(L, NT_ERR_NO_MEMORY, "out of memory"), 0);
}

/* ---- loading: the three pipelines ------------------------------------------- */

static void parse_normalizer(loader *L, const nt_json *n) {
    if (L->status != NT_OK || !n || nt_json_is_null(n))
        return;
    nt_tokenizer *tok = L->tok;
    const char *type = nt_json_string(nt_json_get(n, "type"), NULL);
    if (type && strcmp(type, "Sequence") == 0) {
        const nt_json *list = nt_json_get(n, "normalizers");
        for (size_t i = 0; i < nt_json_count(list); i++)
            parse_normalizer(L, nt_json_at(list, i));
        return;
    }
    nt_hf_step *st = push_step(L, "normalizer", &tok->normalizers, &tok->n_normalizers);
    if (!st || !type) {
        if (st)
            unsupported(L, "normalizer", type);
        return;
    }
    if (strcmp(type, "Prepend") == 0) {
        size_t len;
        const char *p = nt_json_string(nt_json_get(n, "prepend"), &len);
        if (!p) {
            load_fail(L, NT_ERR_FORMAT, "Prepend normalizer without \"prepend\"");
            return;
        }
        st->kind = HF_PREPEND;
        st->a = dup_bytes(p, len);
        st->a_len = len;
    } else if (strcmp(type, "Replace") == 0) {
        size_t len;
        const char *c = nt_json_string(nt_json_get(n, "content"), &len);
        st->kind = HF_REPLACE;
        if (string_pattern(L, nt_json_get(n, "pattern"), "Replace normalizer", &st->a,
                           &st->a_len)) {
            st->b = dup_bytes(c ? c : "", c ? len : 0);
            st->b_len = c ? len : 0;
        }
    } else if (strcmp(type, "Strip") == 0) {
        st->kind = HF_STRIP;
        st->left = bool_field(n, "strip_left", 1);
        st->right = bool_field(n, "strip_right", 1);
    } else if (strcmp(type, "NFC") == 0) {
        st->kind = HF_NFC;
    } else if (strcmp(type, "NFKC") == 0) {
        st->kind = HF_NFKC;
    } else if (strcmp(type, "NFD") == 0) {
        st->kind = HF_NFD;
    } else if (strcmp(type, "NFKD") == 0) {
        st->kind = HF_NFKD;
    } else {
        unsupported(L, "normalizer", type);
    }
}

static void parse_pre_tokenizer(loader *L, const nt_json *p) {
    if (L->status != NT_OK || !p || nt_json_is_null(p))
        return;
    nt_tokenizer *tok = L->tok;
    const char *type = nt_json_string(nt_json_get(p, "type"), NULL);
    if (type && strcmp(type, "Sequence") == 0) {
        const nt_json *list = nt_json_get(p, "pretokenizers");
        for (size_t i = 0; i < nt_json_count(list); i++)
            parse_pre_tokenizer(L, nt_json_at(list, i));
        return;
    }
    nt_hf_step *st = push_step(L, "pre_tokenizer", &tok->pre_tokenizers, &tok->n_pre_tokenizers);
    if (!st)
        return;
    if (type && strcmp(type, "Metaspace") == 0) {
        st->kind = HF_METASPACE;
        st->prepend_scheme = parse_scheme(L, p);
        st->split = bool_field(p, "split", 1);
        metaspace_replacement(L, p, st);
    } else if (type && strcmp(type, "Split") == 0) {
        static const char *behaviors[] = {"Removed", "Isolated", "MergedWithPrevious",
                                          "MergedWithNext", "Contiguous"};
        const char *b = nt_json_string(nt_json_get(p, "behavior"), NULL);
        st->kind = HF_SPLIT;
        st->behavior = -1;
        for (int i = 0; b && i < 5; i++)
            if (strcmp(b, behaviors[i]) == 0)
                st->behavior = i;
        if (st->behavior < 0) {
            load_fail(L, NT_ERR_FORMAT, "Split pre-tokenizer: unknown behavior");
            return;
        }
        st->invert = bool_field(p, "invert", 0);
        if (st->invert) {
            load_fail(L, NT_ERR_UNSUPPORTED, "Split pre-tokenizer: invert is not supported");
            return;
        }
        string_pattern(L, nt_json_get(p, "pattern"), "Split pre-tokenizer", &st->a,
                       &st->a_len);
    } else {
        unsupported(L, "pre_tokenizer", type);
    }
}

static void parse_decoder(loader *L, const nt_json *d) {
    if (L->status != NT_OK || !d || nt_json_is_null(d))
        return;
    nt_tokenizer *tok = L->tok;
    const char *type = nt_json_string(nt_json_get(d, "type"), NULL);
    if (type && strcmp(type, "Sequence") == 0) {
        const nt_json *list = nt_json_get(d, "decoders");
        for (size_t i = 0; i < nt_json_count(list); i++)
            parse_decoder(L, nt_json_at(list, i));
        return;
    }
    nt_hf_step *st = push_step(L, "decoder", &tok->decoders, &tok->n_decoders);
    if (!st)
        return;
    if (type && strcmp(type, "Replace") == 0) {
        size_t len;
        const char *c = nt_json_string(nt_json_get(d, "content"), &len);
        st->kind = HF_REPLACE;
        if (string_pattern(L, nt_json_get(d, "pattern"), "Replace decoder", &st->a,
                           &st->a_len)) {
            st->b = dup_bytes(c ? c : "", c ? len : 0);
            st->b_len = c ? len : 0;
        }
    } else if (type && strcmp(type, "ByteFallback") == 0) {
        st->kind = HF_BYTE_FALLBACK;
    } else if (type && strcmp(type, "Fuse") == 0) {
        st->kind = HF_FUSE;
    } else if (type && strcmp(type, "Strip") == 0) {
        size_t len;
        const char *c = nt_json_string(nt_json_get(d, "content"), &len);
        uint32_t cp;
        int64_t start = 0, stop = 0;
        nt_json_int64(nt_json_get(d, "start"), &start);
        nt_json_int64(nt_json_get(d, "stop"), &stop);
        if (!c || len == 0 || nt_utf8_decode(c, len, &cp) != (int)len || start < 0 ||
            stop < 0 || start > 1000 || stop > 1000) {
            load_fail(L, NT_ERR_FORMAT, "Strip decoder: content must be one character");
            return;
        }
        st->kind = HF_STRIP;
        st->a = dup_bytes(c, len);
        st->a_len = len;
        st->left = (int)start;
        st->right = (int)stop;
    } else if (type && strcmp(type, "Metaspace") == 0) {
        st->kind = HF_METASPACE;
        st->prepend_scheme = parse_scheme(L, d);
        metaspace_replacement(L, d, st);
    } else {
        unsupported(L, "decoder", type);
    }
}

/* Fails the load when the Replace steps of a pipeline, one after another,
 * could make a text more than MAX_REPLACE_GROWTH times longer. */
static void check_replace_growth(loader *L, const nt_hf_step *steps, int n, const char *stage) {
    uint64_t growth = 1;
    for (int i = 0; i < n && growth <= MAX_REPLACE_GROWTH; i++)
        if (steps[i].kind == HF_REPLACE && steps[i].b_len > steps[i].a_len)
            growth *= (steps[i].b_len + steps[i].a_len - 1) / steps[i].a_len;
    if (L->status == NT_OK && growth > MAX_REPLACE_GROWTH) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the %s's Replace steps could make a text more than %d times longer", stage,
                 MAX_REPLACE_GROWTH);
        load_fail(L, NT_ERR_UNSUPPORTED, msg);
    }
}

/* ---- loading: added tokens (the vocabulary and merges: hf_model.c) ------- */

/* Normalizes s (for added tokens' normalized forms and the encoder): a
 * whole section, or a chunk of one that begins (first) or ends (last) it. */
static nt_status run_normalizers(const nt_tokenizer *tok, const char *s, size_t n,
                                 int first, int last, nt_buf *out, nt_error *err);

static void build_added(loader *L, const nt_json *added) {
    nt_tokenizer *tok = L->tok;
    int n = (int)nt_json_count(added);
    tok->added = calloc((size_t)(n > 0 ? n : 1), sizeof *tok->added);
    const char **raw = calloc((size_t)(n > 0 ? n : 1), sizeof *raw);
    const char **raw_ns = calloc((size_t)(n > 0 ? n : 1), sizeof *raw_ns);
    const char **norm = calloc((size_t)(n > 0 ? n : 1), sizeof *norm);
    const char **norm_ns = calloc((size_t)(n > 0 ? n : 1), sizeof *norm_ns);
    size_t *raw_len = calloc((size_t)(n > 0 ? n : 1), sizeof *raw_len);
    size_t *norm_len = calloc((size_t)(n > 0 ? n : 1), sizeof *norm_len);
    if (!tok->added || !raw || !raw_ns || !norm || !norm_ns || !raw_len || !norm_len) {
        load_fail(L, NT_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    tok->n_added = n;
    for (int i = 0; i < n && L->status == NT_OK; i++) {
        const nt_json *t = nt_json_at(added, (size_t)i);
        nt_added_token *a = &tok->added[i];
        int64_t id = 0;
        const char *content = nt_json_string(nt_json_get(t, "content"), &a->len);
        nt_json_int64(nt_json_get(t, "id"), &id);
        a->id = (int32_t)id;
        a->content = dup_bytes(content, a->len);
        a->special = bool_field(t, "special", 0);
        a->lstrip = bool_field(t, "lstrip", 0);
        a->rstrip = bool_field(t, "rstrip", 0);
        a->normalized = bool_field(t, "normalized", !a->special);
        a->single_word = bool_field(t, "single_word", 0);
        if (!a->content) {
            load_fail(L, NT_ERR_NO_MEMORY, "out of memory");
            break;
        }
        if (a->normalized && tok->n_normalizers > 0) {
            nt_buf nb = {0};
            if (run_normalizers(tok, a->content, a->len, 1, 1, &nb, L->err) != NT_OK) {
                nt_buf_free(&nb);
                L->status = L->err ? L->err->status : NT_ERR_NO_MEMORY;
                break;
            }
            a->normalized_content = nb.s ? nb.s : dup_bytes("", 0);
            a->normalized_len = nb.n;
            norm[i] = a->normalized_content;
            norm_len[i] = a->normalized_len;
            norm_ns[i] = a->special ? NULL : norm[i];
        } else {
            raw[i] = a->content;
            raw_len[i] = a->len;
            raw_ns[i] = a->special ? NULL : raw[i];
        }
    }
    if (L->status != NT_OK)
        goto done;
    if (nt_matcher_init(&tok->added_raw, raw, raw_len, n, L->err) != NT_OK ||
        nt_matcher_init(&tok->added_raw_nonspecial, raw_ns, raw_len, n, L->err) != NT_OK ||
        nt_matcher_init(&tok->added_norm, norm, norm_len, n, L->err) != NT_OK ||
        nt_matcher_init(&tok->added_norm_nonspecial, norm_ns, norm_len, n, L->err) != NT_OK)
        L->status = NT_ERR_NO_MEMORY;
done:
    free(raw);
    free(raw_ns);
    free(norm);
    free(norm_ns);
    free(raw_len);
    free(norm_len);
}

/*
 * transformers keeps clean_up_tokenization_spaces in tokenizer_config.json
 * beside tokenizer.json; both it and tokenizers.js default to true. A
 * missing or unreadable config keeps the default.
 */
static void read_clean_up_setting(nt_tokenizer *tok, const char *json_path) {
    tok->clean_up_spaces = 1;
    const char *slash = strrchr(json_path, '/');
    char path[4096];
    snprintf(path, sizeof path, "%.*stokenizer_config.json",
             slash ? (int)(slash - json_path + 1) : 0, json_path);
    size_t len;
    char *text = nt_read_file(path, 16u << 20, &len, NULL); /* none: the default */
    nt_json_doc *doc = text ? nt_json_parse(text, len, NULL, 0) : NULL;
    const nt_json *v = nt_json_get(nt_json_root(doc), "clean_up_tokenization_spaces");
    if (nt_json_is_bool(v))
        tok->clean_up_spaces = nt_json_bool(v);
    nt_json_free(doc);
    free(text);
}

/* A file's bytes, mapped (the page cache serves them without a copy) or,
 * where mapping fails, read. */
typedef struct file_bytes {
    char *text;
    size_t size;
    int mapped;
} file_bytes;

static void file_bytes_free(file_bytes *f) {
    if (f->mapped)
        munmap(f->text, f->size);
    else
        free(f->text);
    f->text = NULL;
}

static nt_status file_bytes_read(file_bytes *f, const char *path, nt_error *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nt_fail(err, NT_ERR_IO, "%s: cannot open", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return nt_fail(err, NT_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > MAX_TOKENIZER_JSON) {
        close(fd);
        return nt_fail(err, NT_ERR_FORMAT, "%s: larger than %u MB", path,
                       MAX_TOKENIZER_JSON >> 20);
    }
    f->size = (size_t)sb.st_size;
    if (f->size > 0) {
#ifdef MAP_POPULATE
        int flags = MAP_PRIVATE | MAP_POPULATE; /* mapped now, not a fault per page */
#else
        int flags = MAP_PRIVATE;
#endif
        void *p = mmap(NULL, f->size, PROT_READ, flags, fd, 0);
        if (p != MAP_FAILED) {
            f->text = p;
            f->mapped = 1;
            close(fd);
            return NT_OK;
        }
    }
    close(fd);
    f->text = nt_read_file(path, MAX_TOKENIZER_JSON, &f->size, err);
    return f->text ? NT_OK : err ? err->status : NT_ERR_IO;
}

nt_status nt_hf_tokenizer_load(nt_tokenizer *tok, const char *path, nt_error *err) {
    file_bytes file;
    nt_status read_status = file_bytes_read(&file, path, err);
    if (read_status != NT_OK)
        return read_status;
    nt_hf_model_reader *reader = nt_hf_model_reader_new(err);
    if (!reader) {
        file_bytes_free(&file);
        return NT_ERR_NO_MEMORY;
    }
    nt_json_stream streams[NT_HF_MODEL_STREAMS];
    nt_hf_model_reader_streams(reader, streams);
    char jerr[320];
    nt_json_doc *doc = nt_json_parse_streaming(file.text, file.size, streams,
                                               NT_HF_MODEL_STREAMS, jerr, sizeof jerr);
    file_bytes_free(&file);
    if (!doc) {
        int out_of_memory = nt_hf_model_reader_out_of_memory(reader) ||
                            strcmp(jerr, "out of memory") == 0;
        nt_hf_model_reader_free(reader);
        if (out_of_memory)
            return nt_fail(err, NT_ERR_NO_MEMORY, "%s: out of memory", path);
        return nt_fail(err, NT_ERR_FORMAT, "%s: not valid JSON: %s", path, jerr);
    }

    loader L = {tok, path, err, NT_OK};
    const nt_json *root = nt_json_root(doc);
    const nt_json *model = nt_json_get(root, "model");
    const char *type = nt_json_string(nt_json_get(model, "type"), NULL);
    tok->format = NT_FORMAT_HF;
    if (nt_json_kind_of(root) != NT_JSON_OBJECT || nt_json_kind_of(model) != NT_JSON_OBJECT)
        load_fail(&L, NT_ERR_FORMAT, "no \"model\" object");
    else if (type && strcmp(type, "BPE") != 0)
        unsupported(&L, "model", type);
    else if (nt_json_kind_of(nt_json_get(model, "dropout")) == NT_JSON_NUMBER &&
             nt_json_number(nt_json_get(model, "dropout")) != 0.0)
        load_fail(&L, NT_ERR_UNSUPPORTED, "BPE dropout is not supported");
    else if (nt_json_string(nt_json_get(model, "continuing_subword_prefix"), NULL) &&
             *nt_json_string(nt_json_get(model, "continuing_subword_prefix"), NULL))
        load_fail(&L, NT_ERR_UNSUPPORTED, "continuing_subword_prefix is not supported");
    else if (nt_json_string(nt_json_get(model, "end_of_word_suffix"), NULL) &&
             *nt_json_string(nt_json_get(model, "end_of_word_suffix"), NULL))
        load_fail(&L, NT_ERR_UNSUPPORTED, "end_of_word_suffix is not supported");
    const nt_json *added = nt_json_get(root, "added_tokens");
    if (L.status == NT_OK)
        L.status = nt_hf_model_reader_finish(reader, model, added, &tok->vocab, &tok->merges,
                                             path, err);
    nt_hf_model_reader_free(reader);
    tok->bpe.byte_fallback = bool_field(model, "byte_fallback", 0);
    tok->bpe.fuse_unk = bool_field(model, "fuse_unk", 0);
    tok->bpe.ignore_merges = bool_field(model, "ignore_merges", 0);
    parse_normalizer(&L, nt_json_get(root, "normalizer"));
    parse_pre_tokenizer(&L, nt_json_get(root, "pre_tokenizer"));
    parse_decoder(&L, nt_json_get(root, "decoder"));
    check_replace_growth(&L, tok->normalizers, tok->n_normalizers, "normalizer");
    check_replace_growth(&L, tok->decoders, tok->n_decoders, "decoder");
    const nt_json *post = nt_json_get(root, "post_processor");
    const char *post_type = nt_json_string(nt_json_get(post, "type"), NULL);
    if (L.status == NT_OK && post && !nt_json_is_null(post) &&
        !(post_type && strcmp(post_type, "TemplateProcessing") == 0))
        unsupported(&L, "post_processor", post_type); /* bos comes from the caller */
    if (L.status == NT_OK)
        build_added(&L, added);
    if (L.status == NT_OK) {
        tok->is_special = calloc((size_t)tok->vocab.n, 1);
        if (!tok->is_special)
            load_fail(&L, NT_ERR_NO_MEMORY, "out of memory");
        for (int i = 0; L.status == NT_OK && i < tok->n_added; i++)
            if (tok->added[i].special)
                tok->is_special[tok->added[i].id] = 1;
    }
    nt_json_free(doc);
    if (L.status == NT_OK)
        read_clean_up_setting(tok, path);
    return L.status;
}

static void free_steps(nt_hf_step *steps, int n) {
    for (int i = 0; i < n; i++) {
        free(steps[i].a);
        free(steps[i].b);
    }
    free(steps);
}

void nt_hf_tokenizer_free(nt_tokenizer *tok) {
    nt_merges_free(&tok->merges);
    for (int i = 0; i < tok->n_added; i++) {
        free(tok->added[i].content);
        free(tok->added[i].normalized_content);
    }
    free(tok->added);
    nt_matcher_free(&tok->added_raw);
    nt_matcher_free(&tok->added_raw_nonspecial);
    nt_matcher_free(&tok->added_norm);
    nt_matcher_free(&tok->added_norm_nonspecial);
    free_steps(tok->normalizers, tok->n_normalizers);
    free_steps(tok->pre_tokenizers, tok->n_pre_tokenizers);
    free_steps(tok->decoders, tok->n_decoders);
}

/* ---- encoding --------------------------------------------------------------- */

/* out = s with every `pat` replaced by `rep` */
static int replace_all(const char *s, size_t n, const char *pat, size_t pat_len,
                       const char *rep, size_t rep_len, nt_buf *out) {
    size_t at = 0;
    while (at < n) {
        const char *hit = pat_len <= n - at ? memmem(s + at, n - at, pat, pat_len) : NULL;
        size_t until = hit ? (size_t)(hit - s) : n;
        if (!nt_buf_add(out, s + at, until - at))
            return 0;
        if (!hit)
            break;
        if (!nt_buf_add(out, rep, rep_len))
            return 0;
        at = until + pat_len;
    }
    return nt_buf_reserve(out, 0);
}

static nt_status run_normalizers(const nt_tokenizer *tok, const char *s, size_t n,
                                 int first, int last, nt_buf *out, nt_error *err) {
    nt_buf cur = {0};
    if (!nt_buf_add(&cur, s, n))
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; i < tok->n_normalizers; i++) {
        const nt_hf_step *st = &tok->normalizers[i];
        nt_buf next = {0};
        int ok = 1;
        switch (st->kind) {
        case HF_PREPEND:
            ok = (!first || nt_buf_add(&next, st->a, st->a_len)) &&
                 nt_buf_add(&next, cur.s, cur.n);
            break;
        case HF_REPLACE:
            ok = replace_all(cur.s, cur.n, st->a, st->a_len, st->b, st->b_len, &next);
            break;
        case HF_STRIP: {
            size_t lead = st->left && first ? nt_js_leading_space(cur.s, cur.n) : 0;
            size_t rest = lead < cur.n ? cur.n - lead : 0;
            size_t trail = st->right && last ? nt_js_trailing_space(cur.s + lead, rest) : 0;
            ok = nt_buf_add(&next, cur.s + lead, trail < rest ? rest - trail : 0) &&
                 nt_buf_reserve(&next, 0);
            break;
        }
        default: {
            nt_unicode_form form = st->kind == HF_NFC    ? NT_UNICODE_NFC
                                   : st->kind == HF_NFKC ? NT_UNICODE_NFKC
                                   : st->kind == HF_NFD  ? NT_UNICODE_NFD
                                                         : NT_UNICODE_NFKD;
            size_t len;
            char *norm = nt_unicode_normalize(cur.s, cur.n, form, &len);
            ok = norm && nt_buf_add(&next, norm, len);
            free(norm);
            break;
        }
        }
        nt_buf_free(&cur);
        cur = next;
        if (!ok || !nt_buf_reserve(&cur, 0)) {
            nt_buf_free(&cur);
            return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");
        }
    }
    *out = cur;
    return NT_OK;
}

/* Words are spans of one buffer. */
typedef struct span {
    size_t start, len;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static int spans_push(spans *s, size_t start, size_t len) {
    if (len == 0)
        return 1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        span *p = realloc(s->v, cap * sizeof *p);
        if (!p)
            return 0;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = (span){start, len};
    return 1;
}

/* Splits word w of buf at occurrences of pat, by behavior, into out. */
static int split_span(const char *buf, span w, const char *pat, size_t pat_len,
                      int behavior, spans *out) {
    size_t at = w.start, end = w.start + w.len, piece_start = w.start;
    while (at < end) {
        const char *hit = pat_len <= end - at ? memmem(buf + at, end - at, pat, pat_len) : NULL;
        if (!hit)
            break;
        size_t h = (size_t)(hit - buf);
        int ok = 1;
        switch (behavior) {
        case SPLIT_REMOVED:
            ok = spans_push(out, piece_start, h - piece_start);
            piece_start = h + pat_len;
            break;
        case SPLIT_ISOLATED:
            ok = spans_push(out, piece_start, h - piece_start) &&
                 spans_push(out, h, pat_len);
            piece_start = h + pat_len;
            break;
        case SPLIT_MERGED_WITH_PREVIOUS:
            ok = spans_push(out, piece_start, h + pat_len - piece_start);
            piece_start = h + pat_len;
            break;
        case SPLIT_MERGED_WITH_NEXT:
            ok = spans_push(out, piece_start, h - piece_start);
            piece_start = h;
            break;
        default: { /* Contiguous: runs of the pattern stay together */
            size_t run_end = h + pat_len;
            while (run_end + pat_len <= end && memcmp(buf + run_end, pat, pat_len) == 0)
                run_end += pat_len;
            ok = spans_push(out, piece_start, h - piece_start) &&
                 spans_push(out, h, run_end - h);
            piece_start = run_end;
            h = run_end - pat_len;
            break;
        }
        }
        if (!ok)
            return 0;
        at = h + pat_len;
    }
    return spans_push(out, piece_start, end - piece_start);
}

/* Pre-tokenizes text into words (spans of *buf, which it may rewrite).
 * `continuation`: the text goes on from the previous chunk, so it gets
 * no prefix. */
static int pre_tokenize(const nt_tokenizer *tok, nt_buf *buf, int section_index,
                        int continuation, spans *words) {
    words->n = 0;
    if (!spans_push(words, 0, buf->n))
        return 0;
    for (int i = 0; i < tok->n_pre_tokenizers; i++) {
        const nt_hf_step *st = &tok->pre_tokenizers[i];
        spans next = {0};
        int ok = 1;
        if (st->kind == HF_METASPACE) {
            /* Rewrite each word: spaces to the replacement, maybe a prefix. */
            nt_buf rewritten = {0};
            for (size_t w = 0; ok && w < words->n; w++) {
                const char *s = buf->s + words->v[w].start;
                size_t n = words->v[w].len, start = rewritten.n;
                nt_buf one = {0};
                ok = replace_all(s, n, " ", 1, st->a, st->a_len, &one);
                int starts = one.n >= st->a_len && memcmp(one.s, st->a, st->a_len) == 0;
                if (ok && !starts && !continuation &&
                    (st->prepend_scheme == SCHEME_ALWAYS ||
                     (st->prepend_scheme == SCHEME_FIRST && section_index == 0)))
                    ok = nt_buf_add(&rewritten, st->a, st->a_len);
                ok = ok && nt_buf_add(&rewritten, one.s ? one.s : "", one.n);
                nt_buf_free(&one);
                span whole = {start, rewritten.n - start};
                if (ok && st->split)
                    ok = split_span(rewritten.s, whole, st->a, st->a_len,
                                    SPLIT_MERGED_WITH_NEXT, &next);
                else if (ok)
                    ok = spans_push(&next, whole.start, whole.len);
            }
            nt_buf_free(buf);
            *buf = rewritten;
        } else { /* HF_SPLIT */
            for (size_t w = 0; ok && w < words->n; w++)
                ok = split_span(buf->s, words->v[w], st->a, st->a_len, st->behavior, &next);
        }
        free(words->v);
        *words = next;
        if (!ok)
            return 0;
    }
    return 1;
}

typedef struct section {
    size_t start, len;
    int token;   /* added token index, or -1 for text */
} section;

typedef struct sections {
    section *v;
    size_t n, cap;
} sections;

static int sections_push(sections *s, size_t start, size_t len, int token) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        section *p = realloc(s->v, cap * sizeof *p);
        if (!p)
            return 0;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = (section){start, len, token};
    return 1;
}

/* Splits text at added tokens, then trims around lstrip/rstrip tokens. */
static int split_added(const nt_tokenizer *tok, const nt_matcher *m, const char *text,
                       size_t len, sections *out) {
    out->n = 0;
    size_t start = 0, at = 0;
    while (at < len) {
        size_t mlen;
        int t = nt_matcher_match(m, text, len, at, &mlen);
        if (t < 0) {
            at++;
            continue;
        }
        if (at > start && !sections_push(out, start, at - start, -1))
            return 0;
        if (!sections_push(out, at, mlen, t))
            return 0;
        at += mlen;
        start = at;
    }
    if (start < len && !sections_push(out, start, len - start, -1))
        return 0;
    for (size_t i = 0; i < out->n; i++) {
        if (out->v[i].token < 0)
            continue;
        const nt_added_token *a = &tok->added[out->v[i].token];
        if (a->lstrip && i > 0 && out->v[i - 1].token < 0)
            out->v[i - 1].len -= nt_js_trailing_space(text + out->v[i - 1].start, out->v[i - 1].len);
        if (a->rstrip && i + 1 < out->n && out->v[i + 1].token < 0) {
            size_t lead = nt_js_leading_space(text + out->v[i + 1].start, out->v[i + 1].len);
            out->v[i + 1].start += lead;
            out->v[i + 1].len -= lead;
        }
    }
    return 1;
}

/* Whether s is well-formed UTF-8. */
static int valid_utf8(const char *s, size_t n) {
    for (size_t at = 0; at < n;) {
        if ((unsigned char)s[at] < 0x80) {
            at++;
            continue;
        }
        uint32_t cp;
        int k = nt_utf8_decode(s + at, n - at, &cp);
        if (k <= 0)
            return 0;
        at += (size_t)k;
    }
    return 1;
}

static nt_status encode_text(const nt_tokenizer *tok, const char *text, size_t len,
                             unsigned flags, nt_ids *out, nt_error *err);

/*
 * The HF stack only ever sees text as strings of characters: bytes that
 * are not UTF-8 have become U+FFFD (one per ill-formed subsequence) before
 * a tokenizer runs. We do the same rather than encode raw bytes.
 */
nt_status nt_hf_encode(const nt_tokenizer *tok, const char *text, size_t len,
                       unsigned flags, nt_ids *out, nt_error *err) {
    if (valid_utf8(text, len))
        return encode_text(tok, text, len, flags, out, err);
    nt_buf clean = {0};
    if (!nt_utf8_append_lossy(&clean, (const unsigned char *)text, len) ||
        !nt_buf_reserve(&clean, 0)) {
        nt_buf_free(&clean);
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
    }
    nt_status s = encode_text(tok, clean.s, clean.n, flags, out, err);
    nt_buf_free(&clean);
    return s;
}

static nt_status encode_text(const nt_tokenizer *tok, const char *text, size_t len,
                             unsigned flags, nt_ids *out, nt_error *err) {
    int no_special = (flags & NT_TOKENIZE_NO_SPECIAL) != 0;
    const nt_matcher *raw = no_special ? &tok->added_raw_nonspecial : &tok->added_raw;
    const nt_matcher *norm = no_special ? &tok->added_norm_nonspecial : &tok->added_norm;
    sections outer = {0}, inner = {0};
    spans words = {0};
    nt_buf normalized = {0};
    nt_bpe_scratch scratch = {0};
    nt_status s = NT_OK;
    if (!split_added(tok, raw, text, len, &outer))
        s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
    for (size_t i = 0; s == NT_OK && i < outer.n; i++) {
        const section *sec = &outer.v[i];
        if (sec->len == 0)
            continue;
        if (sec->token >= 0) {
            if (!nt_ids_push(out, tok->added[sec->token].id))
                s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
            continue;
        }
        /* A long section is normalized and encoded a chunk at a time. */
        for (size_t from = 0; s == NT_OK && from < sec->len;) {
            size_t end = nt_tokenizer_chunk_end(tok, text + sec->start, sec->len, from);
            nt_buf_free(&normalized);
            s = run_normalizers(tok, text + sec->start + from, end - from, from == 0,
                                end == sec->len, &normalized, err);
            int chunk_continues = from > 0;
            from = end;
            if (s != NT_OK || normalized.n == 0)
                continue;
            if (!split_added(tok, norm, normalized.s, normalized.n, &inner)) {
                s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
                break;
            }
            for (size_t j = 0; s == NT_OK && j < inner.n; j++) {
                const section *sub = &inner.v[j];
                if (sub->len == 0)
                    continue;
                if (sub->token >= 0) {
                    if (!nt_ids_push(out, tok->added[sub->token].id))
                        s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
                    continue;
                }
                int continuation = chunk_continues && sub->start == 0;
                if (!continuation)
                    scratch.prev_unk = 0; /* unknowns fuse within one piece of text */
                nt_buf piece = {0};
                if (!nt_buf_add(&piece, normalized.s + sub->start, sub->len) ||
                    !pre_tokenize(tok, &piece, (int)i, continuation, &words)) {
                    nt_buf_free(&piece);
                    s = nt_fail(err, NT_ERR_NO_MEMORY, "out of memory encoding text");
                    break;
                }
                for (size_t w = 0; s == NT_OK && w < words.n; w++)
                    s = nt_bpe_encode_by_rank(&tok->vocab, &tok->merges, &tok->bpe,
                                              piece.s + words.v[w].start, words.v[w].len,
                                              &scratch, out, err);
                nt_buf_free(&piece);
            }
        }
    }
    free(outer.v);
    free(inner.v);
    free(words.v);
    nt_buf_free(&normalized);
    nt_bpe_scratch_free(&scratch);
    return s;
}

/* ---- decoding ---------------------------------------------------------------- */

/*
 * transformers' clean_up_tokenization: spaces before punctuation and
 * English contractions go, applied as this sequence of global replacements
 * (each one pass, left to right), exactly as transformers and tokenizers.js
 * apply it.
 */
static const struct {
    const char *from, *to;
} cleanups[] = {
    {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
    {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
};
#define N_CLEANUPS (sizeof cleanups / sizeof cleanups[0])

static int clean_up_spaces(nt_buf *text) {
    for (size_t i = 0; i < N_CLEANUPS; i++) {
        size_t from_len = strlen(cleanups[i].from);
        if (text->n < from_len || !memmem(text->s, text->n, cleanups[i].from, from_len))
            continue;
        nt_buf r = {0};
        if (!replace_all(text->s, text->n, cleanups[i].from, from_len, cleanups[i].to,
                         strlen(cleanups[i].to), &r))
            return 0;
        nt_buf_free(text);
        *text = r;
    }
    return 1;
}

size_t nt_hf_cleanup_holdback(const nt_tokenizer *tok, const char *text, size_t n) {
    if (tok->format != NT_FORMAT_HF || !tok->clean_up_spaces)
        return 0;
    size_t best = 0;
    for (size_t i = 0; i < N_CLEANUPS; i++) {
        size_t len = strlen(cleanups[i].from);
        for (size_t k = len - 1; k > best; k--)
            if (k <= n && memcmp(text + n - k, cleanups[i].from, k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/*
 * The decoder chain works on a list of strings, as HF's does. The list is
 * one text buffer and where each string starts, so that a step costs a
 * pass over the text, not an allocation per token.
 */
typedef struct toklist {
    nt_buf text;
    size_t *start;  /* string i is text.s[start[i] .. start[i + 1]) */
    size_t n, cap;
} toklist;

static void toklist_free(toklist *l) {
    nt_buf_free(&l->text);
    free(l->start);
    memset(l, 0, sizeof *l);
}

/* Ends the string being appended to l->text (and starts the next). */
static int toklist_close(toklist *l) {
    if (l->n + 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *p = realloc(l->start, cap * sizeof *p);
        if (!p)
            return 0;
        l->start = p;
        l->cap = cap;
    }
    if (l->n == 0)
        l->start[0] = 0;
    l->start[++l->n] = l->text.n;
    return 1;
}

static const char *tok_at(const toklist *l, size_t i, size_t *len) {
    *len = l->start[i + 1] - l->start[i];
    return l->text.s + l->start[i];
}

/* Appends a decoded byte run as one string: TextDecoder's rules. */
static int close_byte_run(toklist *out, const nt_buf *run) {
    size_t before = out->text.n;
    if (!nt_utf8_append_lossy(&out->text, (const unsigned char *)run->s, run->n))
        return 0;
    /* TextDecoder drops a byte order mark at the start. */
    if (out->text.n - before >= 3 && memcmp(out->text.s + before, "\xEF\xBB\xBF", 3) == 0) {
        memmove(out->text.s + before, out->text.s + before + 3, out->text.n - before - 3);
        out->text.n -= 3;
    }
    return toklist_close(out);
}

/* One decoding step: in -> out. Returns 0 when out of memory. */
static int decode_step(const nt_hf_step *st, const toklist *in, toklist *out) {
    int ok = nt_buf_reserve(&out->text, in->text.n);
    nt_buf run = {0};
    for (size_t i = 0; ok && i < in->n; i++) {
        size_t len;
        const char *t = tok_at(in, i, &len);
        switch (st->kind) {
        case HF_REPLACE:
            ok = replace_all(t, len, st->a, st->a_len, st->b, st->b_len, &out->text) &&
                 toklist_close(out);
            break;
        case HF_BYTE_FALLBACK: {
            int byte = nt_byte_piece_value(t, len);
            if (byte >= 0) {
                char b = (char)byte;
                ok = nt_buf_add(&run, &b, 1);
                break;
            }
            if (run.n > 0) {
                ok = close_byte_run(out, &run);
                run.n = 0;
            }
            ok = ok && nt_buf_add(&out->text, t, len) && toklist_close(out);
            break;
        }
        case HF_FUSE:
            ok = nt_buf_add(&out->text, t, len) && (i + 1 < in->n || toklist_close(out));
            break;
        case HF_STRIP: {
            size_t cut = 0, end = len;
            for (int k = 0; k < st->left && end - cut >= st->a_len &&
                            memcmp(t + cut, st->a, st->a_len) == 0;
                 k++)
                cut += st->a_len;
            for (int k = 0; k < st->right && end - cut >= st->a_len &&
                            memcmp(t + end - st->a_len, st->a, st->a_len) == 0;
                 k++)
                end -= st->a_len;
            ok = nt_buf_add(&out->text, t + cut, end - cut) && toklist_close(out);
            break;
        }
        case HF_METASPACE: {
            size_t before = out->text.n;
            ok = replace_all(t, len, st->a, st->a_len, " ", 1, &out->text);
            if (ok && i == 0 && st->prepend_scheme != SCHEME_NEVER &&
                out->text.n > before && out->text.s[before] == ' ') {
                memmove(out->text.s + before, out->text.s + before + 1,
                        out->text.n - before - 1);
                out->text.n--;
            }
            ok = ok && toklist_close(out);
            break;
        }
        default:
            ok = nt_buf_add(&out->text, t, len) && toklist_close(out);
            break;
        }
    }
    if (ok && run.n > 0)
        ok = close_byte_run(out, &run);
    nt_buf_free(&run);
    return ok && nt_buf_reserve(&out->text, 0);
}

nt_status nt_hf_decode(const nt_tokenizer *tok, const int32_t *ids, size_t n,
                       unsigned flags, nt_buf *out, nt_error *err) {
    toklist l = {0};
    int ok = nt_buf_reserve(&l.text, 0);
    for (size_t i = 0; ok && i < n; i++) {
        if ((flags & NT_DETOKENIZE_SKIP_SPECIAL) && tok->is_special[ids[i]])
            continue;
        size_t len;
        const char *p = nt_vocab_piece(&tok->vocab, ids[i], &len);
        ok = nt_buf_add(&l.text, p, len) && toklist_close(&l);
    }
    for (int d = 0; ok && d < tok->n_decoders && l.n > 0; d++) {
        toklist next = {0};
        ok = decode_step(&tok->decoders[d], &l, &next);
        toklist_free(&l);
        l = next;
    }
    /* The strings, joined, are the text. */
    if (ok && tok->clean_up_spaces)
        ok = clean_up_spaces(&l.text);
    ok = ok && nt_buf_add(out, l.text.s ? l.text.s : "", l.text.n);
    toklist_free(&l);
    return ok ? NT_OK : nt_fail(err, NT_ERR_NO_MEMORY, "out of memory decoding");
}
