#!/usr/bin/env bash
#
# scholar_model.sh - the small model that ships in weights/scholar-4m and
# that `make run` opens a chat with.
#
# usage: scholar_model.sh NEMOTRON MODEL_DIR SCRATCH_DIR
#
# - Perplexity: `nemotron perplexity` on the model's held-out sample must
#   give the figure that PyTorch gave for the same windows
#   (tools/train/perplexity.py on model.py, recorded in reference.json
#   when the model was exported), to 1e-4 relative: the trained weights
#   through the whole engine, against an independent implementation.
# - The chat `make run` opens (the Makefile's MODEL and SYSTEM): a
#   greeting, then "What is an anvil?", greedy with a repeat penalty of
#   1.2 (plain greedy decoding loops on a model this small: "narrow,
#   narrow, narrow"). The model must answer each on one line, ending by
#   itself, about the anvil, with no control token leaking into the
#   text. A model that lost its training, or an engine that computes it
#   wrong, talks about something else.
#
# Prints "N passed, N failed"; exits 1 if anything failed.

set -u
. "$(dirname "$0")/check_lib.sh" "$@"
model=$fixture
makefile=$(dirname "$0")/../Makefile

# ---- perplexity against PyTorch's --------------------------------------------
ref=$model/reference.json
ctx=$(field n_ctx "$ref")
want_ppl=$(field ppl "$ref")
want_scored=$(field n_scored "$ref")
expect "reference.json has the PyTorch figures" test -n "$ctx" -a -n "$want_ppl"
if check "perplexity of the held-out sample" 0 "" \
        "$nemotron" perplexity -m "$model" -f "$model/heldout-sample.txt" --ctx "$ctx" --json; then
    got_ppl=$(field ppl)
    same "the windows are PyTorch's" "$(field n_scored)" "$want_scored"
    expect "perplexity $got_ppl is PyTorch's $want_ppl to 1e-4" \
        holds "$got_ppl" close "$want_ppl" 1e-4
fi

# ---- the chat of `make run` ---------------------------------------------------
same "make run opens this model" "$(sed -n 's/^MODEL *?= *//p' "$makefile")" \
    "weights/$(basename "$model")"
system=$(sed -n 's/^SYSTEM *?= *//p' "$makefile")
expect "the Makefile has a system prompt" test -n "$system"
printf 'Hello!\nWhat is an anvil?\n' >"$scratch/in"
if check "a greedy chat" 0 "" \
        "$nemotron" chat -m "$model" --system "$system" --temp 0 --repeat-penalty 1.2 -n 96 -t 2 <"$scratch/in"; then
    greeting=$(sed -n 1p "$out") answer=$(sed -n 2p "$out")
    same "one line per question" "$(wc -l <"$out")" 2
    expect "the greeting is answered: $greeting" test -n "$greeting"
    expect "the answer is about the anvil: $answer" grep -qi "anvil" <<<"$answer"
    expect "no control token in the replies" \
        test -z "$(grep -e '<extra_id' -e '</s>' -e '<toolcall>' "$out")"
    expect "no reply was cut at -n" test -z "$(grep 'limit of' "$err")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
