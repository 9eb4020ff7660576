#!/usr/bin/env bash
# Tokenizer speed on a large vocabulary, ours against spm_encode.
#
# Everything is made here from Debian packages, once, under models/tokbench:
#   corpus.txt  10 MB of the documentation under /usr/share/doc (the text
#               that is encoded and timed);
#   big.model   a SentencePiece BPE model trained on it with Nemotron-like
#               settings; with hard_vocab_limit=false it keeps what the
#               text supports (about 124k pieces, in about a minute:
#               training the full 256k on 100 MB takes an hour here);
#   big256.model  the same grown to 256000 pieces by continuing BPE on the
#               encoded corpus (tools/extend_spm_model.py);
#   tokenizer.json  the same vocabulary as HF writes it
#               (tools/spm_to_tokenizer_json.py).
# Then build/bench_tokenizer times load, encode (a call per line, as
# spm_encode works, and the whole file) and decode for both files, and
# spm_encode is timed on the same text and model (best of 3).
set -euo pipefail
cd "$(dirname "$0")/.."
out=models/tokbench
mkdir -p "$out"

text_of() { # the files named on stdin, decompressed, as clean UTF-8
    while read -r f; do
        case "$f" in *.gz) zcat "$f" 2>/dev/null || true ;; *) cat "$f" 2>/dev/null || true ;; esac
    done | tr -d '\000\r' | iconv -f utf-8 -t utf-8 -c
}

if [ ! -s "$out/corpus.txt" ]; then
    echo "making $out/corpus.txt" >&2
    { find /usr/share/doc -type f -name '*.gz' | sort | head -3000
      find /usr/share/doc -type f ! -name '*.gz' | sort; } | text_of |
        head -c 10485760 > "$out/corpus.txt" || true
fi
if [ ! -s "$out/big.model" ]; then
    echo "training $out/big.model (minutes)" >&2
    spm_train --input="$out/corpus.txt" --model_prefix="$out/big" --vocab_size=256000 \
        --model_type=bpe --byte_fallback=true --split_digits=true \
        --normalization_rule_name=identity --remove_extra_whitespaces=false \
        --allow_whitespace_only_pieces=true --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3 \
        --user_defined_symbols="<extra_id_0>,<extra_id_1>,<extra_id_2>" \
        --hard_vocab_limit=false --num_threads="$(nproc)" --max_sentence_length=100000 \
        --input_sentence_size=3000000 --shuffle_input_sentence=false \
        > "$out/train.log" 2>&1
fi

if [ ! -s "$out/big256.model" ]; then
    echo "growing it to 256000 pieces" >&2
    spm_encode --model="$out/big.model" --output_format=id < "$out/corpus.txt" > "$out/corpus.ids"
    python3 tools/extend_spm_model.py "$out/big.model" "$out/corpus.ids" 256000 "$out/big256.model"
fi
if [ ! -s "$out/tokenizer.json" ]; then
    echo "converting to $out/tokenizer.json" >&2
    python3 tools/spm_to_tokenizer_json.py "$out/big256.model" > "$out/tokenizer.json"
fi

build/bench_tokenizer "$out/big256.model" "$out/corpus.txt"
build/bench_tokenizer "$out/tokenizer.json" "$out/corpus.txt"
for _ in 1 2 3; do
    start=$(date +%s%N)
    spm_encode --model="$out/big256.model" --output_format=id < "$out/corpus.txt" > /dev/null
    echo $(( $(date +%s%N) - start ))
done | sort -n | head -1 | awk -v bytes="$(stat -c %s "$out/corpus.txt")" \
    '{ printf "spm_encode: best of 3 %.3f s, %.2f MB/s\n", $1 / 1e9, bytes / 1e6 / ($1 / 1e9) }'
