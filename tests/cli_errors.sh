#!/usr/bin/env bash
#
# cli_errors.sh - the `nemotron` command's exit codes and messages.
#
# usage: cli_errors.sh NEMOTRON FIXTURE_DIR SCRATCH_DIR
#
# Scripts and CI drive the command, so its contract is its exit codes: 0 for
# success, 1 for a failure of the work itself (a broken model, a token
# outside the vocabulary, a full context), 2 for a command line that makes
# no sense. A failure must also say on stderr what it is about (the file,
# the field, the vocabulary), and never be a crash: a signal, or, in a
# sanitizer build, a sanitizer report (ASan exits with 1 too, so stderr is
# searched for one on every run). test_model_errors covers the library's
# side of broken models in depth; this checks the command passes it on.
#
# The working cases check what a script relies on: `run` prints exactly -n
# ids, `logits` writes positions * vocab float32s, and `synth` is
# deterministic in its seed and writes a model (tokenizer.model included)
# that `run`, `tokenize` and `quantize` accept.
#
# Prints "N passed, N failed"; exits 1 if anything failed.

set -u
. "$(dirname "$0")/check_lib.sh" "$@"
n_vocab=2048

differ() {
    ! cmp -s "$1" "$2"
}

# ids_count: the number of ids on the one line of $out, or -1 if it holds
# anything but ids.
ids_count() {
    if [ "$(wc -l <"$out")" -eq 1 ] && grep -qE '^[0-9]+( [0-9]+)*$' "$out"; then
        wc -w <"$out"
    else
        echo -1
    fi
}

# model_dir NAME: a fresh copy of the fixture's directory, its weights linked.
model_dir() {
    local dir=$scratch/$1
    mkdir -p "$dir"
    cp "$fixture/config.json" "$dir/config.json"
    ln -sf "$(cd "$fixture" && pwd)/model.safetensors" "$dir/model.safetensors"
    echo "$dir"
}

# ---- broken models: exit 1, naming the problem ---------------------------------

truncated=$(model_dir truncated)
rm "$truncated/model.safetensors"
head -c 100000 "$fixture/model.safetensors" >"$truncated/model.safetensors"
check "truncated safetensors" 1 "$truncated/model.safetensors" \
    "$nemotron" run -m "$truncated" --ids "2 4" -n 2
check "truncated safetensors, no mmap" 1 "$truncated/model.safetensors" \
    "$nemotron" run -m "$truncated" --no-mmap --ids "2 4" -n 2

llama=$(model_dir llama)
sed -i 's/NemotronForCausalLM/LlamaForCausalLM/' "$llama/config.json"
check "other architecture" 1 "architectures" \
    "$nemotron" run -m "$llama" --ids "2 4" -n 2
check "other architecture (logits)" 1 "LlamaForCausalLM" \
    "$nemotron" logits -m "$llama" --ids "2 4" -o "$scratch/unused.f32"
expect "no logits file after a failed load" test ! -e "$scratch/unused.f32"

check "missing model directory" 1 "$scratch/no-such-model" \
    "$nemotron" run -m "$scratch/no-such-model" --ids "2 4" -n 2

# ---- bad command lines: exit 2 ----------------------------------------------------

check "unknown option" 2 "--bogus" "$nemotron" run -m "$fixture" --ids "2" --bogus
check "-t abc" 2 "abc" "$nemotron" run -m "$fixture" -t abc --ids "2"
check "option without its value" 2 "-n" "$nemotron" run -m "$fixture" --ids "2" -n
check "missing --ids" 2 "--ids" "$nemotron" run -m "$fixture"
check "--ids \"1 x\"" 2 "x" "$nemotron" run -m "$fixture" --ids "1 x"
check "--ids \"\"" 2 "--ids" "$nemotron" run -m "$fixture" --ids ""
check "unknown subcommand" 2 "frobnicate" "$nemotron" frobnicate
check "no subcommand" 2 "usage" "$nemotron"
check "logits without -o" 2 "-o" "$nemotron" logits -m "$fixture" --ids "2"
check "synth unknown shape" 2 "--shape" "$nemotron" synth -o "$scratch/x" --shape huge

# ---- run and logits ---------------------------------------------------------------

if check "run" 0 "" "$nemotron" run -m "$fixture" --ids "2 4 100 7" -n 8; then
    expect "run prints 8 ids (got: $(cat "$out"))" test "$(ids_count)" -eq 8
fi
check "id outside the vocabulary" 1 "vocabulary of $n_vocab" \
    "$nemotron" run -m "$fixture" --ids "5000"
check "context full" 1 "context" \
    "$nemotron" run -m "$fixture" -c 4 --ids "1 2 3 4 5 6"

logits=$scratch/logits.f32
if check "logits" 0 "" "$nemotron" logits -m "$fixture" --ids "2 4 100 7" -o "$logits"; then
    size=$(wc -c <"$logits")
    expect "logits file is 4 x $n_vocab float32 (got $size bytes)" \
        test "$size" -eq $((4 * n_vocab * 4))
fi
# Evaluated (and written) in steps of 3: every row still arrives, and the
# first step's rows equal those of a run that evaluates those 3 tokens alone.
if check "logits in steps" 0 "" "$nemotron" logits -m "$fixture" -b 3 \
        --ids "2 4 100 7 9 11 13" -o "$logits"; then
    size=$(wc -c <"$logits")
    expect "stepped logits file is 7 x $n_vocab float32 (got $size bytes)" \
        test "$size" -eq $((7 * n_vocab * 4))
    if check "logits of the first step" 0 "" "$nemotron" logits -m "$fixture" \
            --ids "2 4 100" -o "$scratch/first3.f32"; then
        expect "stepped logits start with the first step's" \
            cmp -s -n $((3 * n_vocab * 4)) "$logits" "$scratch/first3.f32"
    fi
fi

# ---- synth ------------------------------------------------------------------------

check "synth seed 3" 0 "" "$nemotron" synth -o "$scratch/synth3" --shape tiny --seed 3
check "synth seed 3 again" 0 "" "$nemotron" synth -o "$scratch/synth3b" --shape tiny --seed 3
check "synth seed 4" 0 "" "$nemotron" synth -o "$scratch/synth4" --shape tiny --seed 4
expect "synth: same seed, same weights" \
    cmp -s "$scratch/synth3/model.safetensors" "$scratch/synth3b/model.safetensors"
expect "synth: same seed, same config" \
    cmp -s "$scratch/synth3/config.json" "$scratch/synth3b/config.json"
expect "synth: another seed, other weights" \
    differ "$scratch/synth3/model.safetensors" "$scratch/synth4/model.safetensors"
expect "synth: the tokenizer does not depend on the seed" \
    cmp -s "$scratch/synth3/tokenizer.model" "$scratch/synth4/tokenizer.model"

# The synth tokenizer.model: the prompt format's pieces whole, other bytes
# through byte pieces, decoding gives the text back, and it has exactly
# n_vocab pieces (quantize refuses any other count).
synth_text=$'Hello, world <extra_id_1>User\n\xc3\xbcn 42~'
printf '%s' "$synth_text" >"$scratch/synth_text"
if check "tokenize with the synth tokenizer" 0 "" \
        "$nemotron" tokenize -m "$scratch/synth3" --pieces <"$scratch/synth_text"; then
    expect "synth tokenizer: <extra_id_1> is one piece ($(cat "$out"))" \
        grep -qF '"<extra_id_1>", "U"' "$out"
    expect "synth tokenizer: byte fallback ($(cat "$out"))" \
        grep -qF '"<0xC3>", "<0xBC>"' "$out"
fi
if check "tokenize to ids with the synth tokenizer" 0 "" \
        "$nemotron" tokenize -m "$scratch/synth3" <"$scratch/synth_text"; then
    cp "$out" "$scratch/synth_ids"
    if check "detokenize with the synth tokenizer" 0 "" \
            "$nemotron" detokenize -m "$scratch/synth3" <"$scratch/synth_ids"; then
        expect "synth tokenizer: decoding gives the text back ($(cat "$out"))" \
            test "$(cat "$out")" = "$synth_text"
    fi
fi
check "synth tokenizer: id $n_vocab is outside" 1 "outside the vocabulary" \
    "$nemotron" detokenize -m "$scratch/synth3" <<<"[$n_vocab]"
if check "quantize the synth model (on 1 thread)" 0 "" "$nemotron" quantize -m "$scratch/synth3" \
        -o "$scratch/synth3.gguf" --type q4_0 -t 1; then
    check "run the quantized synth model from text" 0 "" \
        "$nemotron" run -m "$scratch/synth3.gguf" -p "Hello" -n 4 --ignore-eos
    if check "tokenize with the quantized synth model's vocabulary" 0 "" \
            "$nemotron" tokenize -m "$scratch/synth3.gguf" <"$scratch/synth_text"; then
        expect "synth: the GGUF vocabulary tokenizes as tokenizer.model" \
            cmp -s "$out" "$scratch/synth_ids"
    fi
fi
check "run the synth model from text" 0 "" \
    "$nemotron" run -m "$scratch/synth3" -p "Hello" -n 4 --ignore-eos

runs=()
for i in 1 2; do
    if check "run on the synth model ($i)" 0 "" \
        "$nemotron" run -m "$scratch/synth3" --ids "2 5" -n 4 --ignore-eos; then
        expect "synth model: 4 ids (got: $(cat "$out"))" test "$(ids_count)" -eq 4
        runs+=("$(cat "$out")")
    fi
done
expect "synth model: the same ids twice (${runs[*]:-})" \
    test "${#runs[@]}" -eq 2 -a "${runs[0]:-}" = "${runs[1]:-x}"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
