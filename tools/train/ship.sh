#!/usr/bin/env bash
# ship.sh - turn an exported model into the folder the repository ships.
#
#   tools/train/ship.sh NEMOTRON MODEL_DIR DATA_DIR OUT_DIR [CTX]
#
# Copies MODEL_DIR (train.py's export: config.json, model.safetensors and
# the tokenizer files) to OUT_DIR, adds heldout-sample.txt (the first 300
# lines of DATA_DIR/heldout.txt, text the model never trained on) and
# reference.json: the sample's perplexity over llama.cpp's windows of CTX
# tokens (default 256, the training length) computed by PyTorch
# (perplexity.py on model.py), on the ids NEMOTRON's tokenizer gives. The
# test tests/scholar_model.sh checks the engine against that figure.
# OUT_DIR's README.md is written by hand and kept.
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
nemotron=$1 model=$2 data=$3 out=$4 ctx=${5:-256}
here=$(dirname "$0")
python=/usr/bin/python3 # Debian's, which sees python3-torch

mkdir -p "$out"
for f in config.json model.safetensors tokenizer.json tokenizer.model tokenizer_config.json; do
    cp "$model/$f" "$out/$f"
done
head -n 300 "$data/heldout.txt" >"$out/heldout-sample.txt"
ids=$(mktemp)
trap 'rm -f "$ids"' EXIT
"$nemotron" tokenize -m "$out" --bos --no-special <"$out/heldout-sample.txt" >"$ids"
"$python" "$here/perplexity.py" --model "$out" --ids "$ids" --ctx "$ctx" >"$out/reference.json"
cat "$out/reference.json"
