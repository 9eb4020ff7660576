/*
 * cmd_synth.c - `nemotron synth`: a random-weight checkpoint in HF layout.
 *
 * The real weights cannot be downloaded everywhere we need to measure, but
 * speed and memory depend only on the shape. `--shape mini-4b` writes a
 * checkpoint of exactly Nemotron-Mini-4B-Instruct's shape (and, like the HF
 * release, in shards of at most 5 GB with an index); `--shape tiny` the
 * 2-layer shape of the test fixture.
 *
 * Every tensor's values come from its own generator seeded by (seed, tensor
 * index), so the output does not depend on how it is sharded. Values are
 * uniform with standard deviation 0.02, HF's initializer range; norm
 * weights are stored as HF does (the model applies 1 + w).
 *
 * Beside them goes a tokenizer.model of the shape's vocabulary size, laid
 * out as Nemotron's: <pad> <unk> <s> </s>, the user-defined <extra_id_N>
 * pieces the chat format is built on, the 256 byte pieces, then made-up
 * BPE pieces (see write_tokenizer). It is the same for every seed. With it
 * the directory is a whole model: `run -p`, `chat`, `quantize` and
 * `convert` (whose GGUF vocabulary comes from it) all take it.
 *
 * `--like DIR` takes the shape from another model's config.json and copies
 * its tokenizer files instead, so the checkpoint speaks that model's
 * vocabulary. `--script TEXT` writes, instead of random weights, a bigram
 * model whose greedy reply to any prompt is exactly TEXT and then eos (see
 * synth_script.h): tests of anything downstream of generation (tool calls,
 * streaming, stop handling) get a known reply from the real architecture.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "rng.h"
#include "synth_script.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer_impl.h"

#define SHARD_LIMIT_BYTES 5000000000ull /* HF's default max_shard_size "5GB" */
#define CHUNK_ELEMS (1 << 20)

typedef struct shape {
    const char *name;
    int vocab, hidden, layers, heads, kv_heads, head_dim, ff, ctx;
    double norm_eps, rope_theta, rotary_factor;
    int bos, eos;
} shape;

static const shape shapes[] = {
    {"mini-4b", 256000, 3072, 32, 24, 8, 128, 9216, 4096, 1e-5, 10000.0, 0.5, 2, 3},
    {"tiny", 2048, 512, 2, 4, 2, 128, 1536, 4096, 1e-5, 10000.0, 0.5, 2, 3},
};

/* Tokenizer files --like copies (those present; one of the first two must be). */
static const char *const tokenizer_files[] = {"tokenizer.json", "tokenizer.model",
                                              "tokenizer_config.json",
                                              "special_tokens_map.json"};

static void synth_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron synth -o DIR (--shape mini-4b|tiny | --like MODEL_DIR)\n"
            "                      [--script TEXT | --script-file FILE] [--seed N]\n"
            "                      [--dtype bf16|f16|f32]\n"
            "  writes config.json, random weights in HF safetensors layout and a\n"
            "  tokenizer.model of the shape's vocabulary size\n"
            "  --like MODEL_DIR    the shape of MODEL_DIR's config.json, and a copy of\n"
            "                      its tokenizer files instead of a made-up tokenizer\n"
            "  --script TEXT       instead of random weights, a model whose greedy reply\n"
            "                      to any prompt is exactly TEXT, then end of sequence;\n"
            "                      prints the script's token ids (JSON) on stdout. TEXT\n"
            "                      must be spelled by tokens that are all different\n"
            "  --script-file FILE  the same with FILE's bytes as TEXT\n");
}

/* The tensor list in HF's order. */
static int list_tensors(const shape *s, nt_dtype dtype, nt_st_tensor_spec **out,
                        char ***names_out) {
    int n = 3 + s->layers * 11 + 1;
    nt_st_tensor_spec *specs = calloc((size_t)n, sizeof *specs);
    char **names = calloc((size_t)n, sizeof *names);
    if (!specs || !names) {
        free(specs);
        free(names);
        return -1;
    }
    int k = 0;
    int64_t H = s->hidden, Q = (int64_t)s->heads * s->head_dim,
            KV = (int64_t)s->kv_heads * s->head_dim, F = s->ff, V = s->vocab;
#define ADD(dims, d0, d1, ...)                                  \
    do {                                                        \
        char buf[128];                                          \
        snprintf(buf, sizeof buf, __VA_ARGS__);                 \
        names[k] = strdup(buf);                                 \
        specs[k] = (nt_st_tensor_spec){names[k], dtype, dims, {d0, d1}}; \
        k++;                                                    \
    } while (0)
    ADD(2, V, H, "model.embed_tokens.weight");
    for (int l = 0; l < s->layers; l++) {
        ADD(1, H, 0, "model.layers.%d.input_layernorm.weight", l);
        ADD(1, H, 0, "model.layers.%d.input_layernorm.bias", l);
        ADD(2, Q, H, "model.layers.%d.self_attn.q_proj.weight", l);
        ADD(2, KV, H, "model.layers.%d.self_attn.k_proj.weight", l);
        ADD(2, KV, H, "model.layers.%d.self_attn.v_proj.weight", l);
        ADD(2, H, Q, "model.layers.%d.self_attn.o_proj.weight", l);
        ADD(1, H, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD(1, H, 0, "model.layers.%d.post_attention_layernorm.bias", l);
        ADD(2, F, H, "model.layers.%d.mlp.up_proj.weight", l);
        ADD(2, H, F, "model.layers.%d.mlp.down_proj.weight", l);
    }
    ADD(1, H, 0, "model.norm.weight");
    ADD(1, H, 0, "model.norm.bias");
    ADD(2, V, H, "lm_head.weight");
#undef ADD
    for (int i = 0; i < k; i++)
        if (!names[i])
            return -1;
    *out = specs;
    *names_out = names;
    return k;
}

static uint64_t spec_elems(const nt_st_tensor_spec *s) {
    uint64_t n = 1;
    for (int d = 0; d < s->n_dims; d++)
        n *= (uint64_t)s->shape[d];
    return n;
}

/*
 * Random values, or with `script` the scripted model's: its embeddings and
 * lm_head (in `vals`, a chunk of floats), zero everywhere else. Zero norm
 * weights are a scale of 1; zero o_proj and down_proj keep each layer from
 * changing the residual stream.
 */
static nt_status write_tensor_data(nt_st_writer *w, const nt_st_tensor_spec *s,
                                   uint64_t seed, int index, void *chunk,
                                   const synth_script *script, float *vals,
                                   uint64_t *done, uint64_t total,
                                   cli_progress_bar *progress,
                                   nt_error *err) {
    /* uniform on [-a, a] has standard deviation a / sqrt(3) */
    const double a = 0.02 * sqrt(3.0);
    uint64_t state = seed * 0x100000001b3ull + (uint64_t)index * 0x9e3779b97f4a7c15ull;
    uint64_t n = spec_elems(s);
    int role = !script                                              ? -1
               : strcmp(s->name, "model.embed_tokens.weight") == 0 ? 0
               : strcmp(s->name, "lm_head.weight") == 0             ? 1
                                                                    : -1;
    for (uint64_t i = 0; i < n; i += CHUNK_ELEMS) {
        uint64_t m = n - i < CHUNK_ELEMS ? n - i : CHUNK_ELEMS;
        if (script) {
            memset(vals, 0, m * sizeof *vals);
            if (role >= 0)
                synth_script_fill(script, role, i, m, vals);
        }
        for (uint64_t j = 0; j < m; j++) {
            float v;
            if (script) {
                v = vals[j];
            } else {
                double u = nt_unit_from_u64(nt_splitmix64(&state));
                v = (float)((2.0 * u - 1.0) * a);
            }
            if (s->dtype == NT_DTYPE_BF16)
                ((uint16_t *)chunk)[j] = nt_f32_to_bf16(v);
            else if (s->dtype == NT_DTYPE_F16)
                ((uint16_t *)chunk)[j] = nt_f32_to_f16(v);
            else
                ((float *)chunk)[j] = v;
        }
        uint64_t bytes = nt_dtype_bytes(s->dtype, m);
        nt_status st = nt_st_writer_write(w, chunk, bytes, err);
        if (st != NT_OK)
            return st;
        *done += bytes;
        cli_progress("writing", (double)*done / (double)total, progress);
    }
    return NT_OK;
}

static int write_config(const char *dir, const shape *s, nt_dtype dtype,
                        const char *note) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *fp = fopen(path, "w");
    if (!fp) {
        cli_error("%s: cannot create: %s", path, strerror(errno));
        return 0;
    }
    const char *torch_dtype = dtype == NT_DTYPE_BF16   ? "bfloat16"
                              : dtype == NT_DTYPE_F16 ? "float16"
                                                      : "float32";
    fprintf(fp,
            "{\n"
            "  \"architectures\": [\"NemotronForCausalLM\"],\n"
            "  \"model_type\": \"nemotron\",\n"
            "  \"attention_bias\": false,\n"
            "  \"attention_dropout\": 0.0,\n"
            "  \"bos_token_id\": %d,\n"
            "  \"eos_token_id\": %d,\n"
            "  \"head_dim\": %d,\n"
            "  \"hidden_act\": \"relu2\",\n"
            "  \"hidden_size\": %d,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"intermediate_size\": %d,\n"
            "  \"max_position_embeddings\": %d,\n"
            "  \"mlp_bias\": false,\n"
            "  \"norm_eps\": %g,\n"
            "  \"num_attention_heads\": %d,\n"
            "  \"num_hidden_layers\": %d,\n"
            "  \"num_key_value_heads\": %d,\n"
            "  \"partial_rotary_factor\": %g,\n"
            "  \"rope_scaling\": null,\n"
            "  \"rope_theta\": %.1f,\n"
            "  \"tie_word_embeddings\": false,\n"
            "  \"torch_dtype\": \"%s\",\n"
            "  \"vocab_size\": %d,\n"
            "  \"_synthetic\": \"%s\"\n"
            "}\n",
            s->bos, s->eos, s->head_dim, s->hidden, s->ff, s->ctx, s->norm_eps, s->heads,
            s->layers, s->kv_heads, s->rotary_factor, s->rope_theta, torch_dtype, s->vocab,
            note);
    if (fclose(fp) != 0) {
        cli_error("%s: write failed", path);
        return 0;
    }
    return 1;
}

#define N_EXTRA_IDS 10 /* <extra_id_0>..<extra_id_9>, as in the test fixture */

/* Appends "▁" (when `space`) and the `len` letters a..z that spell k in base 26. */
static int spell_word(char *out, int space, int len, long k) {
    int n = 0;
    if (space)
        n += snprintf(out, 8, "\xE2\x96\x81");
    for (int i = len - 1; i >= 0; i--, k /= 26)
        out[n + i] = (char)('a' + k % 26);
    out[n + len] = '\0';
    return n + len;
}

/*
 * tokenizer.model with exactly `vocab` pieces. After the special, user-
 * defined and byte pieces come words of lower-case letters, shortest first,
 * each length as "▁"-prefixed words and then bare ones (from two letters
 * on), until only room for the characters is left: "▁" and the printable
 * ASCII characters, last, as SentencePiece lists a BPE model's characters.
 * Scores fall by one a piece, so every word can be merged from shorter
 * pieces ("▁ab" from "▁a" and "b"), and no two pieces are alike.
 */
static int write_tokenizer(const char *dir, int vocab) {
    static const struct {
        const char *text;
        int type;
    } special[] = {{"<pad>", NT_SPM_CONTROL},
                   {"<unk>", NT_SPM_UNKNOWN},
                   {"<s>", NT_SPM_CONTROL},
                   {"</s>", NT_SPM_CONTROL}};
    enum { N_CHARS = 1 + ('~' - '!' + 1) };
    nt_writer w = {0};
    char text[64];
    int n = 0;
    for (int i = 0; i < 4; i++, n++)
        nt_spm_write_piece(&w, special[i].text, strlen(special[i].text), 0.0f,
                           special[i].type);
    for (int i = 0; i < N_EXTRA_IDS; i++, n++)
        nt_spm_write_piece(&w, text, (size_t)snprintf(text, sizeof text, "<extra_id_%d>", i),
                           0.0f, NT_SPM_USER_DEFINED);
    for (int b = 0; b < 256; b++, n++)
        nt_spm_write_piece(&w, text, (size_t)snprintf(text, sizeof text, "<0x%02X>", b), 0.0f,
                           NT_SPM_BYTE);
    float score = 0.0f;
    long count = 26;
    for (int len = 1; n < vocab - N_CHARS; len++, count *= 26)
        for (int space = 1; space >= (len == 1); space--)
            for (long k = 0; k < count && n < vocab - N_CHARS; k++, n++)
                nt_spm_write_piece(&w, text, (size_t)spell_word(text, space, len, k),
                                   score--, NT_SPM_NORMAL);
    nt_spm_write_piece(&w, "\xE2\x96\x81", 3, score--, NT_SPM_NORMAL);
    n++;
    for (char c = '!'; c <= '~'; c++, n++)
        nt_spm_write_piece(&w, &c, 1, score--, NT_SPM_NORMAL);
    nt_spm_write_specs(&w, 1, 1, 2, 3, 0, 1, 0);

    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    int ok = 0;
    if (w.failed) {
        cli_error("out of memory");
    } else if (n != vocab) {
        cli_error("synth: %d tokenizer pieces, want %d", n, vocab);
    } else {
        FILE *fp = fopen(path, "wb");
        if (!fp) {
            cli_error("%s: cannot create: %s", path, strerror(errno));
        } else {
            int wrote = fwrite(w.buf.s, 1, w.buf.n, fp) == w.buf.n;
            ok = (fclose(fp) == 0) & wrote;
            if (!ok)
                cli_error("%s: write failed", path);
        }
    }
    nt_buf_free(&w.buf);
    return ok;
}

/* The shape of the model in `dir` (its config.json), named after dir. */
static int shape_of_model(const char *dir, shape *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    nt_error err;
    size_t len = 0;
    char *text = nt_read_file(path, 1 << 20, &len, &err);
    nt_hparams hp;
    int ok = text && nt_config_parse(text, len, path, &hp, &err) == NT_OK;
    free(text);
    if (!ok) {
        cli_error("%s", err.message);
        return 0;
    }
    *s = (shape){dir, hp.n_vocab, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv,
                 hp.head_dim, hp.n_ff, hp.n_ctx_train, hp.norm_eps, hp.rope_theta,
                 (double)hp.n_rot / hp.head_dim, hp.bos_id, hp.eos_id};
    return 1;
}

static int file_exists(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Copies the tokenizer files of `from` that exist into `to`. */
static int copy_tokenizer(const char *from, const char *to) {
    struct stat a, b;
    if (stat(from, &a) == 0 && stat(to, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        cli_error("synth: --like and -o name the same folder");
        return 0;
    }
    if (!file_exists(from, "tokenizer.json") && !file_exists(from, "tokenizer.model")) {
        cli_error("%s: no tokenizer.json or tokenizer.model", from);
        return 0;
    }
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++) {
        char src[4096], dst[4096];
        snprintf(src, sizeof src, "%s/%s", from, tokenizer_files[i]);
        snprintf(dst, sizeof dst, "%s/%s", to, tokenizer_files[i]);
        if (access(src, F_OK) != 0) {
            unlink(dst); /* a file from an earlier run would not match */
            continue;
        }
        nt_error err;
        size_t len = 0;
        char *data = nt_read_file(src, (size_t)1 << 30, &len, &err);
        if (!data) {
            cli_error("%s", err.message);
            return 0;
        }
        FILE *fp = fopen(dst, "wb");
        int ok = fp && fwrite(data, 1, len, fp) == len;
        if (fp && fclose(fp) != 0)
            ok = 0;
        free(data);
        if (!ok) {
            cli_error("%s: cannot write: %s", dst, strerror(errno));
            return 0;
        }
    }
    return 1;
}

/*
 * Plans the scripted weights with the tokenizer the written directory
 * loads with (what `run -m DIR` and a server use), checks that its other
 * tokenizer file, if any, decodes the script the same, and prints the ids.
 */
static int plan_script(const char *dir, const shape *s, const char *text, size_t len,
                       synth_script *plan) {
    nt_error err;
    nt_tokenizer *tok = nt_tokenizer_load(dir, &err);
    if (!tok) {
        cli_error("%s", err.message);
        return 0;
    }
    int ok = synth_script_plan(tok, text, len, s->vocab, s->hidden, s->norm_eps, s->eos, plan);
    const char *other = strcmp(nt_tokenizer_format(tok), "tokenizer.json") == 0
                            ? "tokenizer.model"
                            : "tokenizer.json";
    if (ok && file_exists(dir, other)) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, other);
        nt_tokenizer *tok2 = nt_tokenizer_load(path, &err);
        if (!tok2) {
            cli_error("%s", err.message);
            ok = 0;
        } else if (!synth_script_decodes_to(tok2, plan->ids, plan->n_ids, text, len)) {
            cli_error("synth: %s decodes the script's tokens differently from %s",
                      other, nt_tokenizer_format(tok));
            ok = 0;
        }
        nt_tokenizer_free(tok2);
    }
    if (ok) {
        fprintf(stderr, "script: %d different tokens, the scripted logit leads by %.1f:",
                plan->n_ids, plan->margin);
        for (int i = 0; i < plan->n_ids; i++) {
            size_t plen = 0;
            const char *p = nt_tokenizer_piece(tok, plan->ids[i], &plen);
            fprintf(stderr, " %d=%.*s", (int)plan->ids[i], (int)plen, p);
        }
        fprintf(stderr, ", then %d (eos)\n", s->eos);
        for (int i = 0; i < plan->n_ids; i++)
            printf(i ? ", %d" : "[%d", (int)plan->ids[i]);
        printf("]\n");
        fflush(stdout);
    } else {
        synth_script_free(plan);
    }
    nt_tokenizer_free(tok);
    return ok;
}

int cmd_synth(int argc, char **argv) {
    const char *out_dir = NULL, *shape_name = NULL, *like_dir = NULL;
    const char *script_arg = NULL, *script_file = NULL;
    long long seed = 0;
    nt_dtype dtype = NT_DTYPE_BF16;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!(out_dir = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--shape") == 0) {
            if (!(shape_name = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--like") == 0) {
            if (!(like_dir = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--script") == 0) {
            if (!(script_arg = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--script-file") == 0) {
            if (!(script_file = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--seed") == 0) {
            if (!(v = cli_value(argc, argv, &i)) ||
                !cli_parse_int(a, v, 0, INT64_MAX, &seed))
                return EXIT_USAGE;
        } else if (strcmp(a, "--dtype") == 0) {
            if (!(v = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
            if (strcmp(v, "bf16") == 0)
                dtype = NT_DTYPE_BF16;
            else if (strcmp(v, "f16") == 0)
                dtype = NT_DTYPE_F16;
            else if (strcmp(v, "f32") == 0)
                dtype = NT_DTYPE_F32;
            else {
                cli_error("--dtype: \"%s\" is not bf16, f16 or f32", v);
                return EXIT_USAGE;
            }
        } else {
            return cli_help_or_unknown("synth", a, synth_usage);
        }
    }
    const shape *s = NULL;
    for (size_t i = 0; shape_name && i < sizeof shapes / sizeof shapes[0]; i++)
        if (strcmp(shape_name, shapes[i].name) == 0)
            s = &shapes[i];
    const char *usage_error = !out_dir                   ? "no output directory (-o DIR)"
                              : !shape_name == !like_dir ? "give --shape or --like (one of them)"
                              : shape_name && !s         ? "--shape must be mini-4b or tiny"
                              : script_arg && script_file
                                  ? "give --script or --script-file (one of them)"
                                  : NULL;
    if (usage_error) {
        cli_error("synth: %s", usage_error);
        synth_usage(stderr);
        return EXIT_USAGE;
    }
    shape like;
    if (like_dir) {
        if (!shape_of_model(like_dir, &like))
            return 1;
        s = &like;
    }
    /* The script as bytes: the argument, or exactly the file's contents. */
    char *script_text = NULL;
    size_t script_len = 0;
    if (script_file) {
        nt_error err;
        if (!(script_text = nt_read_file(script_file, 1 << 20, &script_len, &err))) {
            cli_error("%s", err.message);
            return 1;
        }
    } else if (script_arg) {
        script_len = strlen(script_arg);
        if (!(script_text = strdup(script_arg))) {
            cli_error("out of memory");
            return 1;
        }
    }
    synth_script plan = {0};
    int scripted = script_file || script_arg;
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        cli_error("%s: cannot create: %s", out_dir, strerror(errno));
        free(script_text);
        return 1;
    }
    /* Without --like only tokenizer.model is written: tokenizer files an
     * earlier --like left here would be loaded instead of it. */
    for (size_t i = 0; !like_dir && i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++)
        if (strcmp(tokenizer_files[i], "tokenizer.model") != 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", out_dir, tokenizer_files[i]);
            unlink(path);
        }
    /* The tokenizer first: the script is planned with it, and when there is
     * no plan nothing else is written. */
    if (!(like_dir ? copy_tokenizer(like_dir, out_dir) : write_tokenizer(out_dir, s->vocab)) ||
        (scripted && !plan_script(out_dir, s, script_text, script_len, &plan)) ||
        !write_config(out_dir, s, dtype,
                      scripted ? "scripted weights written by nemotron synth --script"
                               : "random weights written by nemotron synth")) {
        synth_script_free(&plan);
        free(script_text);
        return 1;
    }
    free(script_text);

    nt_st_tensor_spec *specs = NULL;
    char **names = NULL;
    int n = list_tensors(s, dtype, &specs, &names);
    if (n < 0) {
        cli_error("out of memory");
        synth_script_free(&plan);
        return 1;
    }
    /* Deal tensors into shards of at most SHARD_LIMIT_BYTES. */
    int *shard_of = calloc((size_t)n, sizeof *shard_of);
    void *chunk = malloc((size_t)CHUNK_ELEMS * sizeof(float));
    float *vals = scripted ? malloc((size_t)CHUNK_ELEMS * sizeof *vals) : NULL;
    int status = 1;
    if (!shard_of || !chunk || (scripted && !vals)) {
        cli_error("out of memory");
        goto done;
    }
    uint64_t total = 0, in_shard = 0;
    int n_shards = 1;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = nt_dtype_bytes(dtype, spec_elems(&specs[i]));
        if (in_shard > 0 && in_shard + bytes > SHARD_LIMIT_BYTES) {
            n_shards++;
            in_shard = 0;
        }
        shard_of[i] = n_shards - 1;
        in_shard += bytes;
        total += bytes;
    }

    cli_progress_bar progress;
    cli_progress_bar_init(&progress);
    uint64_t done_bytes = 0;
    char path[4096];
    for (int sh = 0; sh < n_shards; sh++) {
        int first = -1, count = 0;
        for (int i = 0; i < n; i++)
            if (shard_of[i] == sh) {
                if (first < 0)
                    first = i;
                count++;
            }
        if (n_shards == 1)
            snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
        else
            snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", out_dir,
                     sh + 1, n_shards);
        nt_error err;
        nt_st_writer *w = nt_st_writer_open(path, specs + first, count, &err);
        if (!w) {
            cli_error("%s", err.message);
            goto done;
        }
        for (int i = first; i < first + count; i++)
            if (write_tensor_data(w, &specs[i], (uint64_t)seed, i, chunk,
                                  scripted ? &plan : NULL, vals, &done_bytes, total,
                                  &progress, &err) != NT_OK) {
                nt_st_writer_abort(w);
                cli_error("%s", err.message);
                goto done;
            }
        if (nt_st_writer_close(w, &err) != NT_OK) {
            cli_error("%s", err.message);
            goto done;
        }
    }
    if (n_shards > 1) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", out_dir);
        FILE *fp = fopen(path, "w");
        if (!fp) {
            cli_error("%s: cannot create: %s", path, strerror(errno));
            goto done;
        }
        fprintf(fp, "{\n  \"metadata\": {\"total_size\": %llu},\n  \"weight_map\": {",
                (unsigned long long)total);
        for (int i = 0; i < n; i++)
            fprintf(fp, "%s\n    \"%s\": \"model-%05d-of-%05d.safetensors\"",
                    i ? "," : "", names[i], shard_of[i] + 1, n_shards);
        fprintf(fp, "\n  }\n}\n");
        if (fclose(fp) != 0) {
            cli_error("%s: write failed", path);
            goto done;
        }
    }
    if (progress.is_tty && progress.last_percent < 100)
        cli_progress("writing", 1.0, &progress);
    fprintf(stderr, "wrote %s: shape %s, %s, %.2f GB in %d file%s, ", out_dir, s->name,
            nt_dtype_traits_of(dtype)->name, (double)total * 1e-9, n_shards,
            n_shards > 1 ? "s" : "");
    if (scripted)
        fprintf(stderr, "scripted reply of %d tokens\n", plan.n_ids);
    else
        fprintf(stderr, "seed %lld\n", seed);
    status = 0;
done:
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    free(specs);
    free(shard_of);
    free(chunk);
    free(vals);
    synth_script_free(&plan);
    return status;
}
