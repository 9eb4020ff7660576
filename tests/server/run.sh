#!/usr/bin/env bash
#
# run.sh - acceptance tests of `nemotron serve` through the official OpenAI
# Node client (openai@6.49.0, pinned in package.json / package-lock.json).
#
# usage: run.sh NEMOTRON FIXTURE_DIR SCRATCH_DIR
#
# Installs the client with `npm ci` into tests/server/node_modules when it is
# missing or was installed from another package-lock.json, writes the
# scripted tool-call models (`nemotron synth --script`) under SCRATCH_DIR,
# starts four servers on free ports (--port 0; each prints its address on
# stderr):
#   main    the tiny model, --parallel 16, --api-key, --max-body
#   tools   a scripted model, which always writes one tool call
#   named   a scripted model that completes a named tool_choice's call
#   readme  the README's own `build/nemotron serve ...` line, without a key
# runs the *.test.mjs files one after another (node --test), stops the
# servers and fails if any of them printed a sanitizer report.

set -u
if [ $# -ne 3 ]; then
    echo "usage: $0 NEMOTRON FIXTURE_DIR SCRATCH_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
nemotron=$(realpath "$1")
fixture=$(realpath "$2")
scratch=$3
rm -rf "$scratch"
mkdir -p "$scratch"
scratch=$(realpath "$scratch")

# ---- node, npm and the client ---------------------------------------------------
for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        echo "run.sh: $tool not found: install Node.js 18 or later, 20+ preferred (scripts/setup.sh does, as root)" >&2
        exit 1
    fi
done
# openai@6 supports Node 20 and later; Debian 12's nodejs is 18, on which
# these tests run too.
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "run.sh: Node.js $(node --version) is too old: 18 or later is needed (20 or later preferred)" >&2
    exit 1
fi
# One install at a time (the Release and ASan trees share node_modules).
(
    flock 9
    if ! cmp -s "$here/package-lock.json" "$here/node_modules/.nt-package-lock.json"; then
        echo "run.sh: npm ci (tests/server/node_modules)" >&2
        cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2 &&
            cp package-lock.json node_modules/.nt-package-lock.json
    fi
) 9>"${TMPDIR:-/tmp}/nemotron-server-tests-npm.lock" || { echo "run.sh: npm ci failed" >&2; exit 1; }

# AddressSanitizer builds run several times slower: longer deadlines.
factor=1
if grep -qa __asan_init "$nemotron"; then factor=4; fi

# ---- servers ---------------------------------------------------------------------
pids=()
logs=()
stop_servers() {
    local pid t
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do
        for ((t = 0; t < 100; t++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: server $pid did not exit 10 s after SIGTERM; killed" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    pids=()
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

# start_server NAME DIR ARGS...: runs `nemotron serve ARGS --port 0` in DIR
# and sets $url to the address it prints.
start_server() {
    local name=$1 dir=$2 log="$scratch/$1.log" t
    shift 2
    (cd "$dir" && exec "$nemotron" serve "$@" --port 0) >"$log" 2>&1 &
    pids+=($!)
    logs+=("$log")
    url=
    for ((t = 0; t < 300 * factor; t++)); do
        url=$(grep -o -m1 'listening on http://127\.0\.0\.1:[0-9]*/v1' "$log" | sed 's/^listening on //')
        [ -n "$url" ] && break
        if ! kill -0 "${pids[-1]}" 2>/dev/null; then
            echo "run.sh: the $name server exited:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [ -z "$url" ]; then
        echo "run.sh: the $name server printed no address in $((30 * factor)) s:" >&2
        cat "$log" >&2
        exit 1
    fi
    echo "run.sh: $name server at $url (pid ${pids[-1]}): nemotron serve $* --port 0" >&2
}

# The servers without --api-key must have none (serve reads this too).
unset NEMOTRON_API_KEY
api_key="sk-nemotron-test-$$"
max_body=262144
start_server main "$repo" -m "$fixture" --parallel 16 --api-key "$api_key" --max-body "$max_body"
main_url=$url

# Scripted models (nemotron synth --script): bigram machines whose greedy
# (and temperature-1) reply to any prompt is exactly the script. The first
# writes a whole call, without "arguments": the fixture's tokenizer spells
# '"' five ways only, and a bigram model uses each token once (see
# cli/synth_script.h); a call without arguments has the arguments {}. The
# second writes what follows the prefix the server puts at the start of
# the reply for tool_choice {"function": {"name": "get_weather"}},
# '<toolcall> {"name": "get_weather", "arguments": ', so that the reply is
# a call with arguments.
tool_script='<toolcall> {"name": "get_weather"} </toolcall>'
named_script='{"city": "Oslo"}} </toolcall>'
for m in tool:"$tool_script" named:"$named_script"; do
    if ! "$nemotron" synth -o "$scratch/${m%%:*}-model" --like "$fixture" --script "${m#*:}" \
            >"$scratch/synth-${m%%:*}.log" 2>&1; then
        echo "run.sh: nemotron synth --script '${m#*:}' failed:" >&2
        cat "$scratch/synth-${m%%:*}.log" >&2
        exit 1
    fi
done
start_server tools "$repo" -m "$scratch/tool-model" --parallel 2
tool_url=$url
start_server named "$repo" -m "$scratch/named-model" --parallel 2
named_url=$url

# The README's command, as written there (run from the repository root).
readme_cmd=$(sed -n 's|^build/nemotron serve \(-m tests/fixtures/tiny-nemotron.*\)$|\1|p' "$repo/README.md" | head -1)
if [ -z "$readme_cmd" ]; then
    echo "run.sh: README.md has no 'build/nemotron serve -m tests/fixtures/tiny-nemotron' line" >&2
    exit 1
fi
read -r -a readme_args <<<"$readme_cmd"
start_server readme "$repo" "${readme_args[@]}"
readme_url=$url

# ---- the tests -------------------------------------------------------------------
# One file at a time: the concurrency, disconnect and slow-client tests
# read the server's metrics and timings, which other traffic would blur.
cd "$here"
export NT_URL=$main_url NT_API_KEY=$api_key NT_MAX_BODY=$max_body \
       NT_TOOL_URL=$tool_url NT_TOOL_SCRIPT=$tool_script NT_NAMED_URL=$named_url \
       NT_NAMED_SCRIPT=$named_script NT_README_URL=$readme_url \
       NT_NEMOTRON=$nemotron NT_FIXTURE=$fixture NT_TIME_FACTOR=$factor
rc=0
failed=()
for t in chat errors tools concurrency disconnect slowloris readme; do
    echo "run.sh: ---- $t.test.mjs" >&2
    start=$SECONDS
    if ! node --test --test-reporter=spec "$t.test.mjs"; then
        rc=1
        failed+=("$t")
    fi
    echo "run.sh: $t.test.mjs: $((SECONDS - start)) s" >&2
done

stop_servers
for log in "${logs[@]}"; do
    if grep -q -e 'Sanitizer' -e 'runtime error' -e 'Segmentation' "$log"; then
        echo "run.sh: $(basename "$log"): the server reported an error:" >&2
        cat "$log" >&2
        rc=1
    fi
done
if [ $rc -eq 0 ]; then
    echo "run.sh: all server tests passed" >&2
else
    echo "run.sh: FAILED: ${failed[*]:-server logs}" >&2
fi
exit $rc
