#!/usr/bin/env python3
"""extend_spm_model.py - grow a SentencePiece BPE model to a given size by
continuing BPE on text it has already encoded.

The benchmark wants a full-size (256000-piece) vocabulary, but spm_train
needs about an hour here to learn one. Training a smaller model on the
corpus takes a minute; this script then does what further BPE training
would do, greedily: it counts adjacent pairs of pieces in the encoded
corpus and adds the most frequent pairs whose joined text is not yet a
piece, as new pieces scored below every existing one (so they merge last,
as later merges do). The result is a valid model with every new piece the
join of two existing ones.

New pieces are appended to the ModelProto as further `pieces` fields, which
protobuf (and our reader) concatenate with the existing ones.

usage: extend_spm_model.py IN.model IDS.txt TARGET_SIZE OUT.model
  IDS.txt: spm_encode --output_format=id of the corpus (ids per line)
"""
import collections
import struct
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from spm_to_tokenizer_json import read_pieces  # noqa: E402


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def piece_field(text, score):
    data = text.encode("utf-8")
    inner = b"\x0a" + varint(len(data)) + data + b"\x15" + struct.pack("<f", score)
    return b"\x0a" + varint(len(inner)) + inner


def main():
    model_path, ids_path, target, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    pieces = read_pieces(model_path)
    texts = [t for t, _, _ in pieces]
    known = set(texts)
    normal = [kind == 1 for _, _, kind in pieces]
    pairs = collections.Counter()
    with open(ids_path) as f:
        for line in f:
            ids = [int(x) for x in line.split()]
            for a, b in zip(ids, ids[1:]):
                if normal[a] and normal[b]:
                    pairs[(a, b)] += 1
    need = target - len(pieces)
    lowest = min(score for _, score, _ in pieces)
    added = []
    for (a, b), _count in pairs.most_common():
        if len(added) >= need:
            break
        joined = texts[a] + texts[b]
        if joined in known or len(joined) > 64:
            continue
        known.add(joined)
        added.append(joined)
    with open(model_path, "rb") as f:
        data = f.read()
    with open(out_path, "wb") as f:
        f.write(data)
        for k, text in enumerate(added):
            f.write(piece_field(text, lowest - 1 - k))
    print("%d pieces + %d new = %d" % (len(pieces), len(added), len(pieces) + len(added)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
