#!/usr/bin/env python3
"""spm_to_tokenizer_json.py - a SentencePiece BPE tokenizer.model as an HF
tokenizer.json, in the layout transformers writes for such models
(Metaspace pre-tokenizer with prepend_scheme "first", byte fallback,
<0xXX> decoding, a Strip of the leading space).

Used by the benchmarks to get a large tokenizer.json from a model trained
here; stdlib only. The merges follow transformers' SentencePieceExtractor:
for every piece, every split into two pieces that both exist, ordered by the
merged piece's score (best first), ties by the ids of the two halves.

usage: spm_to_tokenizer_json.py tokenizer.model > tokenizer.json
"""
import json
import struct
import sys


def varint(buf, at):
    value, shift = 0, 0
    while True:
        b = buf[at]
        at += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, at
        shift += 7


def fields(buf):
    """(field number, wire type, value) for each field of a message."""
    at = 0
    while at < len(buf):
        key, at = varint(buf, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = varint(buf, at)
        elif wire == 1:
            value, at = buf[at:at + 8], at + 8
        elif wire == 2:
            n, at = varint(buf, at)
            value, at = buf[at:at + n], at + n
        elif wire == 5:
            value, at = buf[at:at + 4], at + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def read_pieces(path):
    with open(path, "rb") as f:
        data = f.read()
    pieces = []
    for number, wire, value in fields(data):
        if number == 1 and wire == 2:
            text, score, kind = "", 0.0, 1
            for n, w, v in fields(value):
                if n == 1:
                    text = v.decode("utf-8")
                elif n == 2:
                    score = struct.unpack("<f", v)[0]
                elif n == 3:
                    kind = v
            pieces.append((text, score, kind))
    return pieces


def main():
    pieces = read_pieces(sys.argv[1])
    vocab = {text: i for i, (text, _, _) in enumerate(pieces)}
    unk = next(text for text, _, kind in pieces if kind == 2)
    merges = []
    for piece_id, (text, score, kind) in enumerate(pieces):
        local = []
        for cut in range(1, len(text)):
            left, right = text[:cut], text[cut:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)  # stable: ties keep order
    added = [
        {"id": i, "content": text, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": kind != 4}
        for i, (text, _, kind) in enumerate(pieces) if kind in (2, 3, 4)
    ]
    out = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": "first", "split": False},
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[l, r] for l, r, _ in merges]},
    }
    json.dump(out, sys.stdout, ensure_ascii=False)
    print("merges:", len(merges), file=sys.stderr)


if __name__ == "__main__":
    main()
