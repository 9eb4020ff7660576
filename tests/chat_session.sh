#!/usr/bin/env bash
#
# chat_session.sh - scripted `nemotron chat` sessions on the tiny fixture.
#
# usage: chat_session.sh NEMOTRON FIXTURE_DIR SCRATCH_DIR
#
# The chat reads lines from stdin when it is not a terminal and writes only
# replies to stdout, so a session is a here-document in and lines out.
#
# The first reply is checked against llama.cpp: the fixture's `chat` case is
# this very conversation (system prompt, one user line, rendered with the
# model's template and tokenized by SentencePiece), and its greedy reply is
# 24 tokens. The saved conversations are checked through `nemotron
# template`, whose rendering test_chat checks against HF's Jinja engine.
# A second process that /loads the first one's save must reply exactly as
# the first did after it: the KV cache reuse of a running chat changes
# nothing. Then /reset, tool calls in a loaded conversation, --tools and
# --context, a session on a pseudo-terminal (libedit), and the errors a user
# can make at the prompt.
#
# Prints "N passed, N failed"; exits 1 if anything failed.

set -u
. "$(dirname "$0")/check_lib.sh" "$@"

# No crash and no sanitizer report, whatever the exit code.
clean() {  # clean STDERR_FILE
    ! grep -q -e "Sanitizer" -e "runtime error" -e "Segmentation" "$1"
}

system="You are Garrick, the blacksmith of Oakvale. Answer briefly."
chat=("$nemotron" chat -m "$fixture" --tokenizer "$fixture/tokenizer.model" -t 2
      --temp 0 -n 24 --system "$system")

# llama.cpp's greedy reply, decoded; the chat strips the reply's ends.
greedy=$(tr -d ' \n' < "$fixture/reference/cases.json" |
         grep -o '"greedy":\[[0-9,]\+\]' | sed 's/"greedy"://')
expected=$(printf '%s' "$greedy" | "$nemotron" detokenize -m "$fixture/tokenizer.model" |
           sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
expect "the fixture has a greedy reply" test -n "$expected"

# ---- session 1: a user turn, /save, a tool result, /save --------------------
"${chat[@]}" > "$scratch/out1" 2> "$scratch/err1" <<EOF
What do you sell?
/save $scratch/one.json
/tool {"price": 12}
/save $scratch/two.json
/quit
EOF
status=$?
expect "session 1 exits 0" test $status -eq 0
expect "session 1 is clean" clean "$scratch/err1"
reply1=$(sed -n 1p "$scratch/out1")
reply2=$(sed -n 2p "$scratch/out1")
expect "the first reply is llama.cpp's greedy reply" test "$reply1" = "$expected"
expect "stdout holds the two replies only" test "$(wc -l < "$scratch/out1")" -eq 2
expect "a reply cut at -n says so" grep -q "limit of 24 tokens" "$scratch/err1"

render() {  # render FILE: the saved conversation's prompt, no generation prompt
    "$nemotron" template -m "$fixture" --no-generation-prompt < "$1"
}
want1=$(printf '<extra_id_0>System\n%s\n\n<extra_id_1>User\nWhat do you sell?\n<extra_id_1>Assistant\n%s\n' \
        "$system" "$reply1")
expect "one.json renders as the conversation" test "$(render "$scratch/one.json")" = "$want1"
want2=$(printf '%s\n<extra_id_1>Tool\n{"price": 12}\n<extra_id_1>Assistant\n%s\n' \
        "$want1" "$reply2")
expect "two.json adds the tool turn and the reply" test "$(render "$scratch/two.json")" = "$want2"
expect "the second reply is not empty" test -n "$reply2"

# ---- session 2: a fresh process picks up one.json ---------------------------
"${chat[@]}" > "$scratch/out2" 2> "$scratch/err2" <<EOF
/load $scratch/one.json
/tool {"price": 12}
/save $scratch/three.json
EOF
expect "session 2 exits 0" test $? -eq 0
expect "session 2 is clean" clean "$scratch/err2"
expect "a loaded conversation replies as the running one did" \
    test "$(cat "$scratch/out2")" = "$reply2"
expect "and saves the same conversation" cmp -s "$scratch/two.json" "$scratch/three.json"

# ---- session 3: /reset keeps the system prompt --------------------------------
"${chat[@]}" > "$scratch/out3" 2> "$scratch/err3" <<EOF
/load $scratch/two.json
/reset
/save $scratch/four.json
EOF
expect "session 3 exits 0" test $? -eq 0
expect "/reset keeps only the system message" \
    test "$(render "$scratch/four.json")" = "$(printf '<extra_id_0>System\n%s\n\n' "$system")"

# ---- session 4: a conversation with tool calls -------------------------------
cat > "$scratch/calls.json" <<'EOF'
{"messages": [
  {"role": "user", "content": "Weather in Oslo and Bergen?"},
  {"role": "assistant", "content": null, "tool_calls": [
    {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
    {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Bergen"}}}]},
  {"role": "tool", "content": "{\"temp_c\": 3}"},
  {"role": "tool", "content": "{\"temp_c\": 7}"}],
 "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}
EOF
"${chat[@]}" > "$scratch/out4" 2> "$scratch/err4" <<EOF
/load $scratch/calls.json
/save $scratch/five.json
Thanks!
/save $scratch/six.json
EOF
expect "session 4 exits 0" test $? -eq 0
expect "session 4 is clean" clean "$scratch/err4"
expect "a saved tool-call conversation renders as the loaded one" \
    test "$(render "$scratch/five.json")" = "$(render "$scratch/calls.json")"
expect "the tool calls render as the model writes them" \
    grep -q '^<toolcall> {"name": "get_weather", "arguments": {"city": "Bergen"}} </toolcall>$' \
    <(render "$scratch/five.json")
expect "the next turn follows them" \
    grep -q '^Thanks!$' <(render "$scratch/six.json" | grep -A1 '^<extra_id_1>User$' | tail -n 1)

# ---- session 5: --tools and --context ------------------------------------------
printf '[{"type": "function", "function": {"name": "buy", "parameters": {}}}]' > "$scratch/tools.json"
printf '  Oakvale sells swords for 12 gold.\n' > "$scratch/passage.txt"
"$nemotron" chat -m "$fixture" -t 1 --system "Be brief." --tools "$scratch/tools.json" \
    --context "$scratch/passage.txt" > "$scratch/out5" 2> "$scratch/err5" <<EOF
/save $scratch/seven.json
EOF
expect "session 5 exits 0" test $? -eq 0
want7=$(printf '<extra_id_0>System\nBe brief.\n\n<tool> {"type": "function", "function": {"name": "buy", "parameters": {}}} </tool>\n\n<context> Oakvale sells swords for 12 gold. </context>\n\n')
expect "--tools and --context make the system turn" test "$(render "$scratch/seven.json")" = "$want7"

# ---- session 6: mistakes at the prompt ----------------------------------------
"${chat[@]}" > "$scratch/out6" 2> "$scratch/err6" <<EOF
/load $scratch/missing.json
/load $scratch/out1
/tool not json
/save
/frobnicate
/help

What do you sell?
EOF
expect "session 6 goes on after each mistake" test $? -eq 0
expect "session 6 is clean" clean "$scratch/err6"
expect "a missing file is named" grep -q "missing.json" "$scratch/err6"
expect "a file that is not a conversation is refused" grep -q "out1 is not JSON" "$scratch/err6"
expect "/tool wants JSON" grep -q "/tool needs" "$scratch/err6"
expect "/save wants a name" grep -q "/save needs a file name" "$scratch/err6"
expect "unknown commands are named" grep -q "unknown command /frobnicate" "$scratch/err6"
expect "/help lists /load" grep -q "/load FILE" "$scratch/err6"
expect "the conversation was untouched: same first reply" \
    test "$(cat "$scratch/out6")" = "$expected"

# ---- session 7: on a terminal (libedit), through script(1)'s pseudo-terminal --
if command -v script > /dev/null; then
    printf 'What do you sell?\n/save %s\n/quit\n' "$scratch/tty.json" |
        timeout 120 script -qec "$(printf '%q ' "${chat[@]}")" /dev/null > "$scratch/out11" 2>&1
    expect "on a terminal the chat prompts with '> '" grep -q '^> What do you sell?' \
        <(tr -d '\r' < "$scratch/out11")
    expect "on a terminal the reply is llama.cpp's too" grep -qxF "$expected" \
        <(tr -d '\r' < "$scratch/out11")
    expect "on a terminal /save works" cmp -s "$scratch/tty.json" "$scratch/one.json"
    expect "the terminal session is clean" clean "$scratch/out11"
else
    echo "script(1) not found: the terminal session is skipped"
fi

# ---- command line errors --------------------------------------------------------
"$nemotron" chat > /dev/null 2> "$scratch/err7" < /dev/null
expect "no model: usage error" test $? -eq 2
"${chat[@]}" --tools "$scratch/passage.txt" > /dev/null 2> "$scratch/err8" < /dev/null
expect "bad --tools: error" test $? -eq 1
expect "bad --tools is named" grep -q "passage.txt is not JSON" "$scratch/err8"
"$nemotron" chat -m "$fixture" --system-file "$scratch/nothing.txt" > /dev/null 2> "$scratch/err9" < /dev/null
expect "missing --system-file: error" test $? -eq 1
expect "missing --system-file is named" grep -q "nothing.txt" "$scratch/err9"
"${chat[@]}" -c 16 > "$scratch/out10" 2> "$scratch/err10" <<EOF
What do you sell?
EOF
status=$?
expect "a conversation past the context is refused" grep -q "no room is left" "$scratch/err10"
expect "and the chat goes on to the end of its input" test $status -eq 0

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
