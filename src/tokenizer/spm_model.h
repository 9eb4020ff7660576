/*
 * spm_model.h - reading SentencePiece's tokenizer.model into a plain struct.
 *
 * A tokenizer.model file is one serialized `sentencepiece.ModelProto`
 * protobuf message (proto2, sentencepiece_model.proto). We read the parts a
 * tokenizer needs - the pieces with their scores and types, and the
 * settings from TrainerSpec and NormalizerSpec that change how text is
 * encoded - with a small protobuf wire-format reader of our own, so the
 * library needs no protobuf runtime.
 *
 * The file is untrusted input. Every varint, length and wire type is checked
 * against the bytes that are there; a malformed file fails with
 * NT_ERR_FORMAT and a message naming the file, the part (piece index,
 * trainer_spec, ...) and the byte offset, e.g.
 *   "tokenizer.model: piece 17: field 1 (piece) at byte 4023: truncated ..."
 * Unknown fields of any wire type, groups included, are skipped as protobuf
 * skips them. Fields absent from the file take sentencepiece_model.proto's
 * defaults; a field given twice follows protobuf: the last scalar wins, and
 * sub-messages (trainer_spec twice) merge.
 *
 * After parsing, the model is checked as SentencePiece checks it when it
 * loads one (model_interface.cc):
 *   - at least one piece, and no piece with empty text;
 *   - no two pieces share a text within one of SentencePiece's two lookup
 *     tables: NORMAL/USER_DEFINED/UNUSED pieces in one, UNKNOWN/CONTROL/BYTE
 *     pieces in the other (so a CONTROL "<s>" beside a NORMAL "<s>" is
 *     allowed, as SentencePiece allows it);
 *   - exactly one UNKNOWN piece;
 *   - BYTE pieces are spelled "<0xHH>" (upper-case hex) and appear only with
 *     byte_fallback, which then needs all 256 of them.
 * It is also held to rules of our own, stricter than SentencePiece, which
 * loads such files (protobuf-lite checks neither):
 *   - piece texts, unk_surface and normalizer names are valid UTF-8 (and the
 *     latter two, handed out as C strings, hold no NUL);
 *   - piece types are 1..6 and model_type 1..4 (protobuf would quietly read
 *     an unknown enum value as the default);
 *   - a known field with the wrong wire type is an error (protobuf would keep
 *     it as an unknown field: in a file we are about to trust, that hides a
 *     corrupt field);
 *   - trainer_spec.unk_id is the UNKNOWN piece's index, and bos_id, eos_id
 *     and pad_id are -1 or a piece index.
 * Note that SentencePiece's own unk_id()/bos_id()/eos_id()/pad_id() do not
 * read these ids: they look up the texts in trainer_spec fields 45..48
 * (unk_piece, bos_piece, eos_piece, pad_piece; default "<unk>", "<s>",
 * "</s>", "<pad>") and answer -1 unless that piece is UNKNOWN (for unk) or
 * CONTROL. Files spm_train writes keep the two consistent.
 */
#ifndef NT_TOKENIZER_SPM_MODEL_H
#define NT_TOKENIZER_SPM_MODEL_H

#include <stddef.h>

#include "nemotron.h"

/* Files larger than this are refused by nt_spm_model_load. */
#define NT_SPM_MODEL_MAX_FILE_SIZE ((size_t)256 << 20)

/* ModelProto.SentencePiece.Type */
typedef enum nt_spm_piece_type {
    NT_SPM_NORMAL = 1,
    NT_SPM_UNKNOWN = 2,
    NT_SPM_CONTROL = 3,
    NT_SPM_USER_DEFINED = 4,
    NT_SPM_UNUSED = 5,
    NT_SPM_BYTE = 6
} nt_spm_piece_type;

/* TrainerSpec.ModelType */
typedef enum nt_spm_model_type {
    NT_SPM_MODEL_UNIGRAM = 1,
    NT_SPM_MODEL_BPE = 2,
    NT_SPM_MODEL_WORD = 3,
    NT_SPM_MODEL_CHAR = 4
} nt_spm_model_type;

typedef struct nt_spm_piece {
    char *text;   /* UTF-8, `len` bytes, then a NUL */
    size_t len;
    float score;
    int type;     /* nt_spm_piece_type */
} nt_spm_piece;

typedef struct nt_spm_model {
    /*
     * Every piece's text lives in one block owned by the model, which
     * starts at pieces[0].text; treat the texts as read-only.
     */
    nt_spm_piece *pieces;
    int n_pieces;

    /* TrainerSpec (field 2 of ModelProto) */
    int model_type;                    /* nt_spm_model_type; default UNIGRAM */
    int byte_fallback;                 /* default 0 */
    int split_digits;                  /* default 0 */
    int treat_whitespace_as_suffix;    /* default 0 */
    int allow_whitespace_only_pieces;  /* default 0 */
    int split_by_whitespace;           /* default 1 */
    int unk_id, bos_id, eos_id, pad_id;/* defaults 0, 1, 2, -1; -1: none */
    char *unk_surface;                 /* default " \xE2\x81\x87 " (U+2047) */

    /* NormalizerSpec (field 3 of ModelProto) */
    char *normalizer_name;             /* default "" */
    int add_dummy_prefix;              /* default 1 */
    int remove_extra_whitespaces;      /* default 1 */
    int escape_whitespaces;            /* default 1 */
    unsigned char *precompiled_charsmap; /* NULL when absent or empty */
    size_t precompiled_charsmap_len;

    /* denormalizer_spec (field 5 of ModelProto) is present; it is checked
       for well-formedness but otherwise not kept */
    int has_denormalizer_spec;
} nt_spm_model;

/*
 * Parses and validates `len` bytes of a serialized ModelProto. `path` names
 * the data in error messages (NULL: "tokenizer.model"). The model keeps no
 * pointer into `data`. On failure `*out` is left zeroed (and safe to free).
 */
nt_status nt_spm_model_parse(const unsigned char *data, size_t len,
                             const char *path, nt_spm_model *out,
                             nt_error *err);

/* Reads the file at `path` (at most NT_SPM_MODEL_MAX_FILE_SIZE) and parses it. */
nt_status nt_spm_model_load(const char *path, nt_spm_model *out, nt_error *err);

/* Frees what the model owns and zeroes it; NULL and zeroed models are fine. */
void nt_spm_model_free(nt_spm_model *m);

#endif
