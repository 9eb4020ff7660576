/*
 * hf_model.h - tokenizer.json's BPE vocabulary and merge rules, read while
 * the file is parsed.
 *
 * Usage, from the tokenizer.json loader:
 *
 *     nt_hf_model_reader *r = nt_hf_model_reader_new(err);
 *     nt_json_stream streams[NT_HF_MODEL_STREAMS];
 *     nt_hf_model_reader_streams(r, streams);
 *     doc = nt_json_parse_streaming(text, len, streams, NT_HF_MODEL_STREAMS, ...);
 *     ... check the model's type and options in doc ...
 *     nt_hf_model_reader_finish(r, doc's "model", doc's "added_tokens",
 *                               &tok->vocab, &tok->merges, path, err);
 *     nt_hf_model_reader_free(r);
 *
 * finish() fills the vocabulary (model.vocab plus the added tokens, which
 * share its ids) and the merge rules (which must name pieces of
 * model.vocab, as in HF tokenizers), or fails naming what is wrong.
 */
#ifndef NT_TOKENIZER_HF_MODEL_H
#define NT_TOKENIZER_HF_MODEL_H

#include "json.h"
#include "tokenizer/bpe.h"
#include "tokenizer/vocab.h"

typedef struct nt_hf_model_reader nt_hf_model_reader;

#define NT_HF_MODEL_STREAMS 2 /* model.vocab, model.merges */

nt_hf_model_reader *nt_hf_model_reader_new(nt_error *err);
void nt_hf_model_reader_streams(nt_hf_model_reader *r,
                                nt_json_stream streams[NT_HF_MODEL_STREAMS]);
/* After a failed parse too: says whether a stream ran out of memory. */
int nt_hf_model_reader_out_of_memory(const nt_hf_model_reader *r);
nt_status nt_hf_model_reader_finish(nt_hf_model_reader *r, const nt_json *model,
                                    const nt_json *added_tokens, nt_vocab *vocab,
                                    nt_merges *merges, const char *path, nt_error *err);
/* Stops the worker thread, if any, and frees everything. NULL is fine. */
void nt_hf_model_reader_free(nt_hf_model_reader *r);

#endif
