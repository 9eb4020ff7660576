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
    uint64_t decode_bytes;/* weight bytes one decoding step reads: all but
                             the token embedding's unused rows (decoding
                             speed is at most memory bandwidth / this) */
    const char *weight_type; /* "bf16", "q4_0", ...; a GGUF's mix ("q4_k_m") or
                                "mixed" when matrices differ */
} nt_model_info;

void nt_model_get_info(const nt_model *model, nt_model_info *info);

/*
 * Writes the model at in_path (anything nt_model_load reads) as a GGUF
 * file llama.cpp reads too, in the storage type `type`: f32, f16, bf16
 * (a conversion), or q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q4_k_m, q5_k,
 * q5_k_m, q6_k (GGML's block types; llama.cpp's rules for which matrices
 * get more bits unless `pure`). The vocabulary comes from a SentencePiece
 * tokenizer: the directory's tokenizer.model, or the GGUF's own.
 *
 * With awq_calibration set, activation-aware scales are first found from
 * that text and folded into the weights (the folded model computes the
 * same function; only the rounding error moves to where it costs least).
 */
typedef struct nt_quantize_params {
    const char *type;
    const char *output_type;      /* NULL: the type's rule for the lm_head */
    int pure;                     /* every matrix in `type` */
    int n_threads;                /* 0: 1 */
    const char *awq_calibration;  /* text file; NULL: plain rounding */
    int awq_tokens;               /* calibration tokens to use; 0: 2048 */
    const char *awq_for;          /* the type whose rounding the scales are
                                     chosen for; NULL: `type` (another type
                                     writes the folded model unrounded, to
                                     check that it computes the same) */
    double *awq_errors;           /* NULL, or 2 doubles to receive the sampled
                                     output error of the rounded weights with
                                     AWQ's scales and without (its alpha = 0) */
    nt_progress_fn progress;
    void *progress_user;
} nt_quantize_params;

nt_quantize_params nt_quantize_default_params(void);
nt_status nt_model_quantize(const char *in_path, const char *out_path,
                            const nt_quantize_params *params, nt_error *err);

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct nt_context nt_context;

/* Which kernels a context runs. AUTO takes the best the CPU supports. */
typedef enum nt_simd {
    NT_SIMD_AUTO = 0,
    NT_SIMD_GENERIC,  /* portable C: the reference */
    NT_SIMD_AVX2,     /* AVX2 + FMA + F16C */
    NT_SIMD_AVX512,   /* AVX-512 F/BW/VL/DQ */
    NT_SIMD_AVX512VNNI /* AVX-512 plus VNNI (8-bit dot products) */
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
/* Those tokens, in order (n_past of them); valid until the next call that
 * changes the cache. */
const int32_t *nt_kv_tokens(const nt_context *ctx);
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

/*
 * A sampler turns a row of logits into the next token. What it does, in
 * order (vLLM's and HF's order; llama.cpp applies temperature last):
 *
 *   1. logit bias: bias[id] is added to the logit of id (OpenAI's
 *      logit_bias; -100 practically bans a token, +100 practically forces it);
 *   2. penalties, from the tokens the sampler has been told about:
 *      repetition (HF/CTRL): a logit l of a token seen in the prompt or the
 *        reply (within the last penalty_last_n tokens of the prompt
 *        followed by the reply, if set) becomes
 *        l / r if l > 0 and l * r otherwise;
 *      frequency and presence (OpenAI): l -= count * frequency_penalty
 *        + (count > 0) * presence_penalty, count = occurrences in the reply;
 *   3. temperature <= 0: the largest logit wins (lowest id on ties), and
 *      the rest is skipped. Otherwise logits are divided by temperature;
 *   4. top-k keeps the k most likely tokens;
 *   5. top-p keeps the most likely tokens whose probabilities (after 1-4,
 *      renormalized) first reach p in sum;
 *   6. min-p keeps the tokens whose probability is at least min_p times
 *      the largest one's;
 *   7. one token is drawn from what is left, renormalized, with the
 *      sampler's own generator (xoshiro256**, seeded with four splitmix64
 *      outputs of seed): one uniform u in [0, 1) per call at temperature
 *      > 0, even when one token is left, none when greedy; the token is
 *      the first, most likely first, whose cumulative probability exceeds
 *      u. The same seed and logits give the same choices on every machine
 *      with the same C math library (weights use expf).
 *
 * Tokens whose probability is 0 (a logit of -inf, or so far below the best
 * that exp underflows) are never kept.
 *
 * Ties between equal logits are broken by id, so no step depends on the
 * order of a sort.
 */
typedef struct nt_sampler nt_sampler;

typedef struct nt_logit_bias {
    int32_t id;
    float bias;
} nt_logit_bias;

#define NT_MAX_TOP_LOGPROBS 20

typedef struct nt_sampler_params {
    float temperature;        /* <= 0: greedy; must be finite */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off; must be > 0 */
    float min_p;              /* <= 0: off; must be <= 1 */
    float repetition_penalty; /* 1: off; must be > 0 */
    float frequency_penalty;  /* 0: off */
    float presence_penalty;   /* 0: off */
    int penalty_last_n;       /* tokens the repetition penalty looks back
                                 over; 0: all of the prompt and the reply */
    const nt_logit_bias *logit_bias; /* copied by nt_sampler_new; ids >= 0;
                                        an id listed twice gets both */
    int n_logit_bias;
    uint64_t seed;
} nt_sampler_params;

/* Greedy: temperature 0, top_p 1, repetition_penalty 1, nothing else. */
nt_sampler_params nt_sampler_default_params(void);
/* Refuses NaNs and values out of their ranges with NT_ERR_ARGUMENT. */
nt_sampler *nt_sampler_new(const nt_sampler_params *params, nt_error *err);
void nt_sampler_free(nt_sampler *sampler);

/*
 * The history the penalties look at. nt_sampler_set_prompt replaces it
 * with the prompt's tokens (seen by the repetition penalty only) and
 * forgets the reply; nt_sampler_accept appends a token of the reply.
 * nt_generate calls both; a caller with its own loop calls them itself.
 * A refused call (a negative id: NT_ERR_ARGUMENT) changes nothing.
 */
nt_status nt_sampler_set_prompt(nt_sampler *sampler, const int32_t *tokens,
                                int n_tokens, nt_error *err);
nt_status nt_sampler_accept(nt_sampler *sampler, int32_t token, nt_error *err);

typedef struct nt_token_prob {
    int32_t id;
    float p;         /* nt_sampler_distribution: probability; else a logprob */
} nt_token_prob;

/*
 * What sampling chose, and the log-probabilities that OpenAI's logprobs
 * report: those of the model's own distribution (log-softmax of the logits
 * as given, before bias, penalties and temperature, as vLLM reports by
 * default), for the chosen token and for the n_top most likely tokens.
 */
typedef struct nt_sample {
    int32_t id;
    float logprob;
    int n_top;
    nt_token_prob top[NT_MAX_TOP_LOGPROBS];  /* most likely first */
} nt_sample;

/*
 * Chooses the next token from n_vocab logits, and fills *out (may be NULL)
 * with its log-probability and the n_top (0..NT_MAX_TOP_LOGPROBS; at most
 * n_vocab are written, out->n_top says how many) most likely alternatives.
 * Returns the chosen id, or -1 if logits is NULL, n_vocab < 1, n_top is out
 * of range, a logit is NaN or +inf or all are -inf, a logit bias or the
 * history (whether or not a penalty reads it) names an id >= n_vocab, or
 * memory runs out.
 */
int32_t nt_sampler_sample(nt_sampler *sampler, const float *logits,
                          int n_vocab);
int32_t nt_sampler_sample_ex(nt_sampler *sampler, const float *logits,
                             int n_vocab, int n_top, nt_sample *out);

/*
 * The distribution step 7 would draw from (after steps 1-6; with
 * temperature <= 0 the single greedy token with p = 1): the kept tokens,
 * most likely first (ties: lower id first), at most `max` of them written
 * to out. Returns how many tokens are kept, or -1 as nt_sampler_sample.
 * Draws nothing, so the generator's state is unchanged.
 */
int nt_sampler_distribution(nt_sampler *sampler, const float *logits,
                            int n_vocab, nt_token_prob *out, int max);

/* ------------------------------------------------------------------------ */
/* Conversations                                                             */
/* ------------------------------------------------------------------------ */

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


/*
 * Reading a reply as it streams. The model calls tools by writing
 *
 *   <toolcall> {"name": "get_weather", "arguments": {"city": "Oslo"}} </toolcall>
 *
 * A reply parser turns such blocks into tool-call events and the text
 * outside them into content events, and ends the reply at a stop string.
 *
 * - A block is a call when, after "<toolcall>", there is one JSON object
 *   with a non-empty string "name" and an object "arguments" (or a string
 *   holding one; missing means {}), then "</toolcall>", with any
 *   whitespace between. "</toolcall>" inside a JSON string does not end it.
 * - Any other block (invalid JSON, a missing name, text after the object,
 *   a reply that ends inside it) stays content, as the model wrote it.
 * - Content is the text outside the calls, less the whitespace at the
 *   reply's ends and just before each call: a reply of calls alone has
 *   none, and "Checking. <toolcall>...</toolcall> Done." gives
 *   "Checking. Done."
 * - Stop strings are matched in the raw text, inside blocks too; the reply
 *   ends before the first match.
 * - Text that may still turn out to be "<toolcall>", a stop string or
 *   whitespace that will be dropped is held back until it is decided, so
 *   content is never taken back. Feeding a text at once or one byte at a
 *   time gives the same events, joined.
 */
typedef struct nt_reply_parser nt_reply_parser;

typedef enum nt_event_type {
    NT_EVENT_CONTENT = 1, /* text: more of the reply's content */
    NT_EVENT_TOOL_CALL,   /* name, arguments, index */
    NT_EVENT_TOKEN,       /* nt_generate and the scheduler: a token was
                             sampled (sample) */
    NT_EVENT_DONE         /* the scheduler only: the request is over (result);
                             always its last event */
} nt_event_type;

typedef struct nt_generation nt_generation;

typedef struct nt_event {
    nt_event_type type;
    const char *text;      /* CONTENT: new text (not NUL-terminated) */
    size_t text_len;
    const char *name;      /* TOOL_CALL: NUL-terminated */
    const char *arguments; /* TOOL_CALL: the JSON object, NUL-terminated, written
                              as the chat template writes JSON (so a
                              conversation holding the call renders it back
                              as the model wrote it) */
    int index;             /* TOOL_CALL: 0 for the reply's first call, ... */
    const nt_sample *sample; /* TOKEN: the token and its logprobs */
    const nt_generation *result; /* DONE: how it ended, token counts, times */
    uint64_t request;      /* the scheduler only: the request's id */
} nt_event;

/* Called for each event; the pointers in it are valid during the call.
 * Return 0 to go on; anything else cancels nt_generate. */
typedef int (*nt_event_fn)(const nt_event *event, void *user);

/* Plain text: no tool calls, no whitespace dropped; stop strings only. */
#define NT_REPLY_RAW 1u

/* stop: n_stop stop strings (copied; empty strings are refused). */
nt_reply_parser *nt_reply_parser_new(const char *const *stop, int n_stop,
                                     unsigned flags, nt_error *err);
void nt_reply_parser_free(nt_reply_parser *parser);
/*
 * Feeds len bytes of the reply. Returns 0 while the reply goes on, or
 * 1 + i once stop string i has been found: the events up to it have been
 * sent and further text is ignored. -1 if fn cancelled or memory ran out.
 */
int nt_reply_parser_push(nt_reply_parser *parser, const char *text, size_t len,
                         nt_event_fn fn, void *user);
/* The reply is over: sends what was held back (an unfinished block as
 * content). Returns 0, or -1 as push. */
int nt_reply_parser_finish(nt_reply_parser *parser, nt_event_fn fn, void *user);

/* ------------------------------------------------------------------------ */
/* Generation                                                                */
/* ------------------------------------------------------------------------ */

typedef enum nt_finish_reason {
    NT_FINISH_NONE = 0,
    NT_FINISH_EOS,          /* the model wrote </s> */
    NT_FINISH_END_OF_TURN,  /* the model began a new turn (<extra_id_1>) */
    NT_FINISH_STOP,         /* a stop string of the caller's */
    NT_FINISH_LENGTH,       /* max_tokens were generated */
    NT_FINISH_CONTEXT,      /* the context is full */
    NT_FINISH_CANCELLED     /* the event callback asked to stop */
} nt_finish_reason;

/* "eos", "end_of_turn", "stop", "length", "context_full", "cancelled" */
const char *nt_finish_reason_name(nt_finish_reason reason);

typedef struct nt_generate_params {
    int max_tokens;           /* most tokens to generate; 0: no limit */
    const char *const *stop;  /* the caller's stop strings */
    int n_stop;
    int parse_tool_calls;     /* 1 (default): <toolcall> blocks are tool-call
                                 events; 0: everything is content */
    int n_top_logprobs;       /* alternatives in each TOKEN event's sample */
} nt_generate_params;

nt_generate_params nt_generate_default_params(void);

typedef struct nt_generation {
    nt_finish_reason finish;
    int n_prompt;        /* prompt tokens */
    int n_reused;        /* of which were already in the KV cache */
    int n_generated;     /* tokens sampled, the stopping one included */
    int n_tool_calls;
    double prompt_seconds;   /* evaluating the prompt */
    double generate_seconds; /* after it, to the end */
} nt_generation;

/*
 * Generates a reply to `prompt` (token ids, e.g. a rendered conversation
 * tokenized without bos) in ctx. The part of the prompt that the context
 * already holds from the previous call (a conversation's earlier turns) is
 * not evaluated again. Each sampled token is a TOKEN event, then its text
 * goes through a reply parser (see above), whose events follow. Generation
 * ends at eos, at the token or text <extra_id_1>, at a stop string, after
 * max_tokens, when the context is full, or when fn cancels; result->finish
 * says which. The tokens that end a reply (eos, <extra_id_1>) are not
 * content. A prompt that leaves no room in the context to generate is
 * refused with NT_ERR_CONTEXT_FULL, before any work.
 */
nt_status nt_generate(nt_context *ctx, const nt_tokenizer *tok,
                      nt_sampler *sampler, const int32_t *prompt, int n_prompt,
                      const nt_generate_params *params, nt_event_fn fn,
                      void *user, nt_generation *result, nt_error *err);

/* ------------------------------------------------------------------------ */
/* Serving many requests at once                                             */
/* ------------------------------------------------------------------------ */

/*
 * A scheduler generates replies for many requests together (continuous
 * batching): one step runs the model once over a batch holding the next
 * token of every running reply and chunks of prompts being read, so the
 * weights are read once for all of them. Requests join between steps;
 * a long prompt is read in chunks of chunk_tokens, so that running
 * replies keep flowing; a finished or cancelled request leaves at once
 * and gives back its cache.
 *
 * The KV cache is one pool of n_ctx positions in blocks of block_tokens,
 * shared by all sequences. A prompt that begins with tokens whose blocks
 * are cached (an NPC's system prompt and lore, the conversation so far,
 * another request's prompt) takes those blocks instead of computing them.
 * A request is admitted when the pool can hold its prompt and its
 * max_tokens (or its sequence's limit, n_seq_ctx, without max_tokens),
 * so that no running reply ever waits for memory; otherwise it queues.
 *
 * Batch invariance: unless batch_dependent is set, what a request
 * generates does not depend on the other requests in the batch, to the
 * bit: each token's computation is the same whatever shares its step (a
 * prompt token always takes the prefill kernels, a reply token the decode
 * kernels, one row at a time). With batch_dependent, steps of many replies
 * use the prefill kernels for all of them, which is faster but changes
 * the last bits of the logits with the batch. (Which blocks of a prompt
 * were cached can still change those bits: a cached block computed while
 * generating an earlier reply holds the decode kernels' rounding.)
 *
 * A request's DONE event carries its nt_generation: n_reused counts the
 * prompt tokens taken from the cache, prompt_seconds runs from submit to
 * the first token (queueing included: the time to first token), and
 * generate_seconds from there to the end.
 *
 * Threads: submit, cancel, stop and get_stats may be called from any
 * thread. step (or run, which calls it) runs in one thread, and the
 * requests' event callbacks are called from there.
 */
typedef struct nt_scheduler nt_scheduler;

typedef struct nt_scheduler_params {
    int n_ctx;           /* KV cache positions for all sequences; 0: 4 * n_seq_ctx */
    int n_seq_ctx;       /* most positions of one sequence (prompt and reply);
                            0: the model's context length */
    int n_parallel;      /* most requests running at once; 0: 4 */
    int n_threads;       /* 0: one per CPU */
    int chunk_tokens;    /* most prompt tokens read per step; 0: 256 */
    int block_tokens;    /* positions per cache block; 0: 16 */
    int batch_dependent; /* 1: faster, not batch-invariant (see above) */
    nt_simd simd;
} nt_scheduler_params;

nt_scheduler_params nt_scheduler_default_params(void);

/* The model and tokenizer must outlive the scheduler. */
nt_scheduler *nt_scheduler_new(nt_model *model, const nt_tokenizer *tok,
                               const nt_scheduler_params *params, nt_error *err);
/* Ends every request (each gets its DONE event, finish CANCELLED) and frees
 * the scheduler. Not while a step runs in another thread: stop it first. */
void nt_scheduler_free(nt_scheduler *s);

typedef struct nt_request_params {
    nt_sampler_params sampling;
    nt_generate_params generate;
    /* Text the reply starts with, given by the caller (e.g. "<toolcall>" to
       force a tool call): it is already at the end of the prompt's tokens,
       and it is fed to the reply parser before the first generated token,
       so it belongs to the reply's content or tool calls. NULL: none. */
    const char *reply_prefix;
    /* Receives the request's events, from the thread that runs the steps;
       returning nonzero cancels the request (its DONE event follows). */
    nt_event_fn fn;
    void *user;
} nt_request_params;

/*
 * Queues a request for a reply to `prompt` (token ids, copied). Returns
 * its id (> 0), or 0 on failure: NT_ERR_CONTEXT_FULL when the prompt leaves
 * no room for a token of reply in n_seq_ctx, NT_ERR_ARGUMENT for an id
 * outside the vocabulary or invalid sampling parameters. Once accepted, a
 * request gets exactly one DONE event, whatever happens.
 */
uint64_t nt_scheduler_submit(nt_scheduler *s, const int32_t *prompt, int n_prompt,
                             const nt_request_params *params, nt_error *err);

/* Cancels a request (its DONE event, finish CANCELLED, comes from the next
 * step). Returns 1, or 0 if no such request is queued or running. */
int nt_scheduler_cancel(nt_scheduler *s, uint64_t id);

/* Runs one step: admits what fits, reads prompt chunks, generates one token
 * for every running reply, delivers events. Returns the number of requests
 * queued or running after it, or -1 on failure (err says why; the requests
 * of the failed step have been ended). */
int nt_scheduler_step(nt_scheduler *s, nt_error *err);
/* Steps until nt_scheduler_stop(), sleeping while there is nothing to do. */
void nt_scheduler_run(nt_scheduler *s);
void nt_scheduler_stop(nt_scheduler *s);

typedef struct nt_scheduler_stats {
    int n_running;            /* requests in the batch */
    int n_queued;             /* waiting to be admitted */
    int n_parallel;
    int n_seq_ctx;
    int kv_blocks;            /* the pool */
    int kv_blocks_used;       /* held by running sequences */
    int kv_blocks_cached;     /* held by none, kept for prefix reuse */
    int block_tokens;
    uint64_t requests;        /* finished, all reasons */
    uint64_t prompt_tokens;   /* of admitted requests */
    uint64_t prompt_tokens_reused; /* of which came from the cache */
    uint64_t generated_tokens;
    uint64_t steps;
} nt_scheduler_stats;

void nt_scheduler_get_stats(nt_scheduler *s, nt_scheduler_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* NEMOTRON_H */
