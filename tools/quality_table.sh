#!/usr/bin/env bash
# quality_table.sh - what quantization costs a model, as one Markdown table.
#
#   tools/quality_table.sh NEMOTRON MODEL_DIR HELD_OUT.txt CALIBRATION.txt OUT_DIR [CTX]
#
# Writes MODEL_DIR (bf16 HF checkpoint) as Q8_0, Q6_K, Q4_K (q4_k_m), Q4_0
# rounded to nearest, and Q4_0 with AWQ scales found on CALIBRATION.txt,
# all into OUT_DIR, then scores each on HELD_OUT.txt with `nemotron
# perplexity --kl-base MODEL_DIR` (llama.cpp's windows of CTX tokens,
# default 512): perplexity, mean KL divergence from the bf16 model, top-1
# agreement, file size. The calibration text must not overlap the held-out
# text, or AWQ is measured on what it was fitted to.
set -euo pipefail
if [ $# -lt 5 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
nemotron=$1 model=$2 text=$3 calib=$4 out=$5 ctx=${6:-512}
mkdir -p "$out"

# name|quantize arguments (empty: the bf16 model itself)
variants=(
    "bf16|"
    "Q8_0|--type q8_0"
    "Q6_K|--type q6_k"
    "Q4_K (q4_k_m)|--type q4_k_m"
    "Q4_0 round-to-nearest|--type q4_0"
    "Q4_0 AWQ|--type q4_0 --awq $calib"
)

# One number out of perplexity's --json (flat object, numbers only).
field() { grep -o "\"$1\": [-0-9.eE+]*" "$2" | head -1 | sed 's/.*: //'; }

size_of() {
    if [ -d "$1" ]; then
        du -cb "$1"/*.safetensors | tail -1 | cut -f1
    else
        stat -c %s "$1"
    fi
}

printf '| weights | perplexity | KL vs bf16 | same top-1 | size (MB) |\n'
printf '|---|---|---|---|---|\n'
i=0
for v in "${variants[@]}"; do
    name=${v%%|*} args=${v#*|}
    if [ -z "$args" ]; then
        file=$model
    else
        file=$out/variant-$i.gguf
        # shellcheck disable=SC2086 # args are words on purpose
        "$nemotron" quantize -m "$model" -o "$file" $args >"$out/quantize-$i.log" 2>&1 ||
            { echo "quantize $name failed: see $out/quantize-$i.log" >&2; exit 1; }
    fi
    json=$out/perplexity-$i.json
    "$nemotron" perplexity -m "$file" -f "$text" --ctx "$ctx" --kl-base "$model" --json \
        >"$json" 2>"$out/perplexity-$i.log" ||
        { echo "perplexity $name failed: see $out/perplexity-$i.log" >&2; exit 1; }
    printf '| %s | %.4f ± %.4f | %.6f ± %.6f | %.4f | %.2f |\n' "$name" \
        "$(field ppl "$json")" "$(field ppl_error "$json")" \
        "$(field kld_mean "$json")" "$(field kld_error "$json")" \
        "$(field same_top "$json")" "$(awk -v b="$(size_of "$file")" 'BEGIN { print b / 1e6 }')"
    i=$((i + 1))
done
