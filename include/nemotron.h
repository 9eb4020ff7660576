/*
 * nemotron.h - the public interface of libnemotron.
 *
 * libnemotron runs NVIDIA's Nemotron-Mini-4B-Instruct (HF architecture
 * NemotronForCausalLM) and models of the same shape on the CPU. It depends on
 * libc, libm and POSIX threads only, so that a game or an application can
 * embed it.
 *
 * The objects:
 *
 *   nt_model    the weights and hyper-parameters, loaded once from an HF model
 *               directory. Read-only after loading, so any number of contexts
 *               (in any number of threads) may share one model.
 *   nt_context  one sequence being evaluated: its KV cache, its scratch
 *               memory, its threads. A context is used by one thread at a time.
 *   nt_sampler  picks the next token from a row of logits.
 *
 * Conventions: every type is opaque; there is no global state. A function
 * that can fail takes an `nt_error *` (which may be NULL) as its last
 * argument, returns NULL or an nt_status other than NT_OK on failure, and
 * then fills the error with a message that says what went wrong and where
 * (file, tensor, field, position).
 */
#ifndef NEMOTRON_H
#define NEMOTRON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NT_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum nt_status {
    NT_OK = 0,
    NT_ERR_ARGUMENT,     /* the caller passed something invalid */
    NT_ERR_IO,           /* a file could not be opened, read or written */
    NT_ERR_FORMAT,       /* a file is malformed: corrupt, truncated, misshaped */
    NT_ERR_UNSUPPORTED,  /* well-formed, but not something this build runs */
    NT_ERR_NO_MEMORY,    /* an allocation or a mapping failed */
    NT_ERR_CONTEXT_FULL  /* the tokens do not fit in the context's KV cache */
} nt_status;

typedef struct nt_error {
    nt_status status;
    char message[1024];
} nt_error;

/* "ok", "invalid argument", "i/o error", ... */
const char *nt_status_string(nt_status status);

/* ------------------------------------------------------------------------ */
/* Models                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct nt_model nt_model;

/*
 * Called during long operations. `stage` names the work ("loading"),
 * `fraction` runs from 0 to 1 and reaches exactly 1 once at the end.
 */
typedef void (*nt_progress_fn)(const char *stage, double fraction, void *user);

typedef struct nt_model_params {
    /*
     * 1 (default): memory-map the weight files; pages are read on first use
     * and shared with the page cache. 0: read the weights into private
     * memory, which is what a benchmark wants on a machine whose kernel
     * evicts idle page cache.
     */
    int use_mmap;
    nt_progress_fn progress;  /* NULL for none */
    void *progress_user;
} nt_model_params;

nt_model_params nt_model_default_params(void);

/*
 * Loads a model from an HF model directory (config.json plus
 * model.safetensors or model.safetensors.index.json with its shards), or
 * from the path of one of those files inside it.
 */
nt_model *nt_model_load(const char *path, const nt_model_params *params,
                        nt_error *err);
void nt_model_free(nt_model *model);

typedef struct nt_model_info {
    int n_vocab;
    int n_embd;           /* hidden size */
    int n_layer;
    int n_head;           /* query heads */
    int n_head_kv;        /* key/value heads (grouped-query attention) */
    int head_dim;
    int n_rot;            /* leading dims of each head that are rotated */
    int n_ff;             /* MLP inner size */
    int n_ctx_train;      /* max_position_embeddings */
    float norm_eps;
    float rope_theta;
    int bos_id;
    int eos_id;
    uint64_t n_params;    /* number of weights, embeddings and head included */
    uint64_t weight_bytes;/* bytes of weight data as stored */
    const char *weight_type; /* "bf16", "f16", "f32" or "mixed" */
} nt_model_info;

void nt_model_get_info(const nt_model *model, nt_model_info *info);

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct nt_context nt_context;

/* Which kernels a context runs. AUTO takes the best the CPU supports. */
typedef enum nt_simd {
    NT_SIMD_AUTO = 0,
    NT_SIMD_GENERIC,  /* portable C: the reference */
    NT_SIMD_AVX2,     /* AVX2 + FMA + F16C */
    NT_SIMD_AVX512    /* AVX-512 F/BW/VL */
} nt_simd;

/* "auto", "generic", "avx2", "avx512" */
const char *nt_simd_name(nt_simd simd);
/* Parses such a name; returns -1 for an unknown one. */
int nt_simd_parse(const char *name);
/* The best kernel set this CPU runs. */
nt_simd nt_simd_best(void);

typedef struct nt_context_params {
    int n_ctx;      /* KV cache capacity in tokens; 0: the model's n_ctx_train */
    int n_batch;    /* most tokens per forward step; longer evaluations are
                       split into steps of this size. 0: 512 */
    int n_threads;  /* 0: one per online CPU */
    nt_simd simd;   /* NT_SIMD_AUTO unless testing a kernel set */
} nt_context_params;

nt_context_params nt_context_default_params(void);

/* Fails with NT_ERR_UNSUPPORTED if `simd` asks for what the CPU lacks. */
nt_context *nt_context_new(nt_model *model, const nt_context_params *params,
                           nt_error *err);
void nt_context_free(nt_context *ctx);

/* Which positions of an evaluation produce logits. */
typedef enum nt_logits_mode {
    NT_LOGITS_LAST = 0,  /* only the last token's: generation */
    NT_LOGITS_ALL,       /* every token's: scoring, verification */
    NT_LOGITS_NONE       /* none: filling the cache */
} nt_logits_mode;

/*
 * Appends `n_tokens` tokens to the sequence at positions n_past ...
 * n_past + n_tokens - 1 and runs the model over them. On failure nothing is
 * appended: an id outside the vocabulary is NT_ERR_ARGUMENT, tokens past the
 * cache's capacity NT_ERR_CONTEXT_FULL.
 */
nt_status nt_eval(nt_context *ctx, const int32_t *tokens, int n_tokens,
                  nt_logits_mode mode, nt_error *err);

/*
 * Logits (n_vocab floats) of the i-th token of the last nt_eval(); i = -1
 * means its last token. NULL if that evaluation produced no logits there.
 * Valid until the next nt_eval, truncate or clear.
 */
const float *nt_logits(const nt_context *ctx, int i);

int nt_n_past(const nt_context *ctx);  /* tokens in the KV cache */
int nt_n_ctx(const nt_context *ctx);   /* capacity */
int nt_n_threads(const nt_context *ctx);
nt_simd nt_context_simd(const nt_context *ctx); /* the kernel set in use */

/* Keeps the first n_keep tokens of the cache (n_keep <= n_past). */
nt_status nt_kv_truncate(nt_context *ctx, int n_keep, nt_error *err);
void nt_kv_clear(nt_context *ctx);

/* ------------------------------------------------------------------------ */
/* Tokenizers                                                                */
/* ------------------------------------------------------------------------ */

/*
 * Text to token ids and back, exactly as the reference library of the
 * file's format does it: HF tokenizers for tokenizer.json, SentencePiece
 * for tokenizer.model. The two disagree around leading spaces and added
 * tokens; each is followed to the letter. A tokenizer is read-only once
 * loaded and may be used from several threads at once.
 */
typedef struct nt_tokenizer nt_tokenizer;

/*
 * Loads a tokenizer.json or tokenizer.model file, or from a model directory
 * the tokenizer.json (preferred, as the HF stack does) or tokenizer.model.
 */
nt_tokenizer *nt_tokenizer_load(const char *path, nt_error *err);
void nt_tokenizer_free(nt_tokenizer *tok);

int nt_tokenizer_n_vocab(const nt_tokenizer *tok);
int32_t nt_tokenizer_bos(const nt_tokenizer *tok);  /* -1 if none */
int32_t nt_tokenizer_eos(const nt_tokenizer *tok);  /* -1 if none */
/* The piece of an id as stored (e.g. "\xe2\x96\x81Hello", "<0x0A>"); NULL
 * outside the vocabulary. */
const char *nt_tokenizer_piece(const nt_tokenizer *tok, int32_t id, size_t *len);
/* The id of a piece, or -1. */
int32_t nt_tokenizer_find(const nt_tokenizer *tok, const char *piece, size_t len);
/* "tokenizer.json" or "tokenizer.model": which rules this tokenizer follows. */
const char *nt_tokenizer_format(const nt_tokenizer *tok);

#define NT_TOKENIZE_BOS 1u        /* begin with the bos token */
#define NT_TOKENIZE_NO_SPECIAL 2u /* special tokens in the text are plain text */

/*
 * Encodes len bytes of UTF-8 text. On success *ids is a malloc'd array of
 * *n_ids ids (free() it; NULL when there are none).
 */
nt_status nt_tokenize(const nt_tokenizer *tok, const char *text, size_t len,
                      unsigned flags, int32_t **ids, size_t *n_ids,
                      nt_error *err);

#define NT_DETOKENIZE_SKIP_SPECIAL 1u /* leave special tokens out */

/* Decodes ids to a malloc'd, NUL-terminated string (length in *len). */
char *nt_detokenize(const nt_tokenizer *tok, const int32_t *ids, size_t n_ids,
                    unsigned flags, size_t *len, nt_error *err);

/*
 * Streaming decode: feed ids one at a time, get text as soon as it is
 * final. Never returns part of a UTF-8 character; the pieces returned by
 * push and then flush, joined, equal nt_detokenize of all the ids.
 */
typedef struct nt_detokenizer nt_detokenizer;

nt_detokenizer *nt_detokenizer_new(const nt_tokenizer *tok, unsigned flags,
                                   nt_error *err);
/* Text that became final with this id (*len may be 0); valid until the
 * next call. NULL on failure. */
const char *nt_detokenizer_push(nt_detokenizer *d, int32_t id, size_t *len,
                                nt_error *err);
/* The rest, at the end of the stream. */
const char *nt_detokenizer_flush(nt_detokenizer *d, size_t *len, nt_error *err);
void nt_detokenizer_free(nt_detokenizer *d);

/* ------------------------------------------------------------------------ */
/* Sampling                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct nt_sampler nt_sampler;

/* ---- conversations: Nemotron-Mini's prompt format ------------------------ */

/*
 * Renders a conversation into the prompt text, byte for byte what the
 * model's published chat template gives (HF's Jinja engine, with
 * add_generation_prompt), implemented natively.
 *
 * The conversation is JSON in OpenAI's shapes:
 *
 *   {"messages": [{"role": "system" | "user" | "assistant" | "tool",
 *                  "content": "text" or [{"type": "text", "text": "..."}]
 *                                or null (an assistant turn with tool_calls),
 *                  "tool_calls": [{"type": "function", "function":
 *                      {"name": "...", "arguments": "{json}" or {...}}}]},
 *                 ...],
 *    "tools": [{"type": "function", "function": {...}}, ...],   optional
 *    "contexts": ["passage", ...]}                             optional
 *
 * System messages form the system turn (in order; as the template does,
 * wherever they appear), then each tool as <tool> {json} </tool>, each
 * passage as <context> ... </context>, then the turns. An assistant turn's
 * tool calls are written as the model emits them, one per line:
 * <toolcall> {"name": "...", "arguments": {...}} </toolcall>, after its
 * text if it has any. Contents are stripped of surrounding whitespace.
 * Unknown roles, content parts other than text and malformed shapes are
 * refused with a message saying where.
 *
 * *prompt is malloc'd and NUL-terminated; free() it.
 */
#define NT_CHAT_NO_GENERATION_PROMPT 1u /* do not end with the assistant's turn */

nt_status nt_chat_render(const char *conversation_json, size_t len, unsigned flags,
                         char **prompt, size_t *prompt_len, nt_error *err);

typedef struct nt_sampler_params {
    float temperature;  /* <= 0: greedy (argmax, lowest id on ties) */
    int top_k;          /* <= 0: off */
    float top_p;        /* >= 1: off */
    uint64_t seed;      /* same seed, same logits: same choices */
} nt_sampler_params;

nt_sampler_params nt_sampler_default_params(void);  /* greedy */
nt_sampler *nt_sampler_new(const nt_sampler_params *params, nt_error *err);
void nt_sampler_free(nt_sampler *sampler);
/* Returns the chosen id, or -1 if n_vocab < 1 or logits is NULL. */
int32_t nt_sampler_sample(nt_sampler *sampler, const float *logits,
                          int n_vocab);

#ifdef __cplusplus
}
#endif

#endif /* NEMOTRON_H */
