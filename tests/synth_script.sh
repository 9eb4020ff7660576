#!/usr/bin/env bash
#
# synth_script.sh - `nemotron synth --script`: a model whose reply is known.
#
# usage: synth_script.sh NEMOTRON FIXTURE_DIR SCRATCH_DIR
#
# Tests of what comes after generation (tool calls, streaming, stop
# handling, a server) need a model of the real architecture that says a
# known text; the random fixture says gibberish. `synth --like FIXTURE
# --script TEXT` writes a bigram model with the fixture's shape and
# tokenizer whose reply to any prompt is TEXT, then eos. This builds one
# that calls a tool and checks, through the library as `nemotron run` and
# `chat` drive it, that greedy and temperature-1 replies are exactly TEXT
# and end with eos, that the printed ids decode to TEXT, and that scripts a
# bigram cannot replay (a token needed twice, a leading space, the token
# every chat prompt ends with) are refused with the reason, exit code 1.
#
# The fixture's vocabulary has five tokens that can spell a '"' (", <0x22>,
# ":, ▁" and ",), so a tool call with arguments, which needs at least six,
# cannot be scripted with it; the call below has none (arguments {}).
#
# Prints "N passed, N failed"; exits 1 if anything failed.

set -u
. "$(dirname "$0")/check_lib.sh" "$@"

text='<toolcall> {"name": "get_weather"} </toolcall>'
model=$scratch/toolcall

# ---- the scripted checkpoint -------------------------------------------------------
check "synth --script" 0 "" \
    "$nemotron" synth -o "$model" --like "$fixture" --script "$text" || {
    echo "$passed passed, $failed failed"
    exit 1
}
ids_json=$(cat "$out") # [2020, 483, ...]
ids=$(echo "$ids_json" | tr -d '[],')
n_ids=$(echo "$ids" | wc -w)
expect_unique=$(echo "$ids" | tr ' ' '\n' | sort | uniq -d)
same "script ids are all different" "$expect_unique" ""
for f in config.json model.safetensors tokenizer.json tokenizer.model; do
    [ -f "$model/$f" ] || fail "synth --like: no $f written"
done
check "the ids decode to the script" 0 "" \
    "$nemotron" detokenize -m "$model" <<<"$ids_json"
got=$(stdout_exact)
same "the ids decode to the script" "${got%x}" "$text"$'\n'

# ---- replies ---------------------------------------------------------------------------
# A chat prompt as a client sends it, rendered by the model's template.
conversation='{"messages": [{"role": "user", "content": "What is the weather in Oslo?"}]}'
check "template" 0 "" "$nemotron" template -m "$model" <<<"$conversation"
prompt=$(stdout_exact)
prompt=${prompt%x}

# run prints the reply and a newline; stderr says how many tokens and why it stopped
reply_is_script() {
    local name=$1
    shift
    check "$name" 0 "stop: end of sequence" "$nemotron" run -m "$model" -n 200 "$@" || return
    local got
    got=$(stdout_exact)
    same "$name: reply" "${got%x}" "$text"$'\n'
    grep -qF "generation: $((n_ids + 1)) tokens" "$err" ||
        fail "$name: not $n_ids tokens then eos: $(cat "$err")"
}
reply_is_script "greedy, chat prompt" -p "$prompt"
reply_is_script "greedy, plain prompt" -p "Hello there"
# the winning logit leads by 45: sampling at temperature 1 follows the script
reply_is_script "temperature 1, seed 1" -p "$prompt" --temp 1 --seed 1
reply_is_script "temperature 1, seed 2" -p "$prompt" --temp 1 --seed 2 --top-k 0 --top-p 1
# with --ids, run prints the ids: the script's, then eos (3)
check "ids" 0 "stop: end of sequence" "$nemotron" run -m "$model" --ids "5 24" -n 200
same "ids: the script's, then eos" "$(cat "$out")" "$ids 3"

# The reply parser reads the call out of the stream.
printf 'What is the weather in Oslo?\n' >"$scratch/chat_in"
check "chat" 0 "" "$nemotron" chat -m "$model" <"$scratch/chat_in"
grep -qF '[tool call] {"name": "get_weather", "arguments": {}}' "$out" &&
    passed=$((passed + 1)) || fail "chat: no tool call in: $(cat "$out")"

# Without --like: the made-up tokenizer of --shape tiny, f16 weights.
check "synth --shape tiny --script" 0 "" \
    "$nemotron" synth -o "$scratch/hello" --shape tiny --dtype f16 --script "hello world"
check "run --shape tiny script" 0 "stop: end of sequence" \
    "$nemotron" run -m "$scratch/hello" -p "abc" -n 50
got=$(stdout_exact)
same "run --shape tiny script: reply" "${got%x}" "hello world"$'\n'

# --script-file takes the file's bytes exactly: with a trailing newline the
# script needs <0x0A>, the token every chat prompt ends with, and is refused.
printf '%s' "$text" >"$scratch/script.txt"
check "synth --script-file" 0 "" \
    "$nemotron" synth -o "$scratch/fromfile" --like "$fixture" --script-file "$scratch/script.txt"
same "--script-file: same ids" "$(cat "$out")" "$ids_json"
printf '%s\n' "$text" >"$scratch/script_nl.txt"
check "script ending in a newline" 1 "ends every chat prompt" \
    "$nemotron" synth -o "$scratch/nl" --like "$fixture" --script-file "$scratch/script_nl.txt"

# ---- scripts a bigram cannot replay --------------------------------------------------
# The tool call with arguments: ten '"' and five tokens to spell them.
check "impossible script" 1 "holds 10 '\"'" \
    "$nemotron" synth -o "$scratch/impossible" --like "$fixture" \
    --script '<toolcall> {"name": "get_weather", "arguments": {"city": "Oslo"}} </toolcall>'
[ -e "$scratch/impossible/model.safetensors" ] || [ -e "$scratch/impossible/config.json" ] &&
    fail "impossible script: a model written"
check "a repeat no spelling avoids" 1 "cannot be spelled with distinct tokens" \
    "$nemotron" synth -o "$scratch/impossible" --like "$fixture" \
    --script "the cat sat on the mat with the hat"
check "leading space" 1 "leading space" \
    "$nemotron" synth -o "$scratch/impossible" --like "$fixture" --script " hi"
check "empty script" 1 "empty" \
    "$nemotron" synth -o "$scratch/impossible" --like "$fixture" --script ""
check "--script and --script-file" 2 "one of them" \
    "$nemotron" synth -o "$scratch/impossible" --like "$fixture" --script a \
    --script-file "$scratch/script.txt"
check "--like and --shape" 2 "one of them" \
    "$nemotron" synth -o "$scratch/impossible" --like "$fixture" --shape tiny
check "--like its own output" 1 "same folder" \
    "$nemotron" synth -o "$model" --like "$model" --script "hi"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
