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
#include "model/safetensors.h"
#include "rng.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/tokenizer_impl.h"

#define SHARD_LIMIT_BYTES 5000000000ull /* HF's default max_shard_size "5GB" */
#define CHUNK_ELEMS (1 << 20)

typedef struct shape {
    const char *name;
    int vocab, hidden, layers, heads, kv_heads, head_dim, ff, ctx;
} shape;

static const shape shapes[] = {
    {"mini-4b", 256000, 3072, 32, 24, 8, 128, 9216, 4096},
    {"tiny", 2048, 512, 2, 4, 2, 128, 1536, 4096},
};

static void synth_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron synth -o DIR --shape mini-4b|tiny [--seed N] "
            "[--dtype bf16|f16|f32]\n"
            "  writes config.json, random weights in HF safetensors layout and a\n"
            "  tokenizer.model of the shape's vocabulary size\n");
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

static nt_status write_tensor_data(nt_st_writer *w, const nt_st_tensor_spec *s,
                                   uint64_t seed, int index, void *chunk,
                                   uint64_t *done, uint64_t total,
                                   cli_progress_bar *progress,
                                   nt_error *err) {
    /* uniform on [-a, a] has standard deviation a / sqrt(3) */
    const double a = 0.02 * sqrt(3.0);
    uint64_t state = seed * 0x100000001b3ull + (uint64_t)index * 0x9e3779b97f4a7c15ull;
    uint64_t n = spec_elems(s);
    for (uint64_t i = 0; i < n; i += CHUNK_ELEMS) {
        uint64_t m = n - i < CHUNK_ELEMS ? n - i : CHUNK_ELEMS;
        for (uint64_t j = 0; j < m; j++) {
            double u = nt_unit_from_u64(nt_splitmix64(&state));
            float v = (float)((2.0 * u - 1.0) * a);
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

static int write_config(const char *dir, const shape *s, nt_dtype dtype) {
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
            "  \"bos_token_id\": 2,\n"
            "  \"eos_token_id\": 3,\n"
            "  \"head_dim\": %d,\n"
            "  \"hidden_act\": \"relu2\",\n"
            "  \"hidden_size\": %d,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"intermediate_size\": %d,\n"
            "  \"max_position_embeddings\": %d,\n"
            "  \"mlp_bias\": false,\n"
            "  \"norm_eps\": 1e-05,\n"
            "  \"num_attention_heads\": %d,\n"
            "  \"num_hidden_layers\": %d,\n"
            "  \"num_key_value_heads\": %d,\n"
            "  \"partial_rotary_factor\": 0.5,\n"
            "  \"rope_scaling\": null,\n"
            "  \"rope_theta\": 10000.0,\n"
            "  \"tie_word_embeddings\": false,\n"
            "  \"torch_dtype\": \"%s\",\n"
            "  \"vocab_size\": %d,\n"
            "  \"_synthetic\": \"random weights written by nemotron synth\"\n"
            "}\n",
            s->head_dim, s->hidden, s->ff, s->ctx, s->heads, s->layers, s->kv_heads,
            torch_dtype, s->vocab);
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

int cmd_synth(int argc, char **argv) {
    const char *out_dir = NULL, *shape_name = NULL;
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
    if (!out_dir || !s) {
        cli_error(!out_dir ? "synth: no output directory (-o DIR)"
                           : "synth: --shape must be mini-4b or tiny");
        synth_usage(stderr);
        return EXIT_USAGE;
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        cli_error("%s: cannot create: %s", out_dir, strerror(errno));
        return 1;
    }

    nt_st_tensor_spec *specs = NULL;
    char **names = NULL;
    int n = list_tensors(s, dtype, &specs, &names);
    if (n < 0) {
        cli_error("out of memory");
        return 1;
    }
    /* Deal tensors into shards of at most SHARD_LIMIT_BYTES. */
    int *shard_of = calloc((size_t)n, sizeof *shard_of);
    void *chunk = malloc((size_t)CHUNK_ELEMS * sizeof(float));
    int status = 1;
    if (!shard_of || !chunk) {
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

    if (!write_config(out_dir, s, dtype) || !write_tokenizer(out_dir, s->vocab))
        goto done;
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
            if (write_tensor_data(w, &specs[i], (uint64_t)seed, i, chunk, &done_bytes,
                                  total, &progress, &err) != NT_OK) {
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
    fprintf(stderr, "wrote %s: shape %s, %s, %.2f GB in %d file%s, seed %lld\n",
            out_dir, s->name, nt_dtype_traits_of(dtype)->name, (double)total * 1e-9,
            n_shards, n_shards > 1 ? "s" : "", seed);
    status = 0;
done:
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    free(specs);
    free(shard_of);
    free(chunk);
    return status;
}
