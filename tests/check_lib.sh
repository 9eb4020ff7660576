# check_lib.sh - what the shell tests share (sourced, not run):
#
#   . "$(dirname "$0")/check_lib.sh" "$@"
#
# takes the test's arguments NEMOTRON FIXTURE_DIR SCRATCH_DIR into
# $nemotron, $fixture and $scratch (emptied for the test), and gives the
# checks below, which leave each command's output in $out and $err and
# count into $passed and $failed.

if [ $# -ne 3 ]; then
    echo "usage: $0 NEMOTRON FIXTURE_DIR SCRATCH_DIR" >&2
    exit 2
fi
nemotron=$1
fixture=$2
scratch=$3
rm -rf "$scratch"
mkdir -p "$scratch" || exit 2

out=$scratch/stdout
err=$scratch/stderr
passed=0
failed=0

fail() {
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}

# check NAME WANT_RC NEEDLE COMMAND...: COMMAND must exit with WANT_RC and,
# unless NEEDLE is empty, say NEEDLE on stderr; its output stays in $out and
# $err for further checks. Returns 1 (having counted a failure) otherwise.
check() {
    local name=$1 want=$2 needle=$3
    shift 3
    "$@" >"$out" 2>"$err"
    local rc=$?
    if grep -qE 'Sanitizer|runtime error' "$err"; then
        fail "$name: sanitizer report:"
        cat "$err" >&2
    elif [ "$rc" -ne "$want" ]; then
        fail "$name: exit code $rc, want $want; stderr: $(head -c 2000 "$err")"
    elif [ -n "$needle" ] && ! grep -qF -- "$needle" "$err"; then
        fail "$name: stderr does not mention \"$needle\": $(head -c 2000 "$err")"
    else
        passed=$((passed + 1))
        return 0
    fi
    return 1
}

# expect NAME CONDITION...: CONDITION (a command) must succeed.
expect() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        fail "$name"
    fi
}

# same NAME GOT WANT: byte-for-byte equal strings.
same() {
    if [ "$2" == "$3" ]; then
        passed=$((passed + 1))
    else
        fail "$1: got [$2], want [$3]"
    fi
}

# $(...) drops trailing newlines; this keeps every byte of stdout.
stdout_exact() { cat "$out"; printf x; }

# field NAME [FILE]: the value of NAME in the flat JSON object in FILE
# (default $out).
field() {
    grep -oE "\"$1\": [^,}]+" "${2:-$out}" | head -n 1 | sed 's/^[^:]*: //'
}

# holds A OP B [TOL]: awk's verdict on a numeric comparison; "close" is
# |A - B| <= TOL * |B|.
holds() {
    awk -v a="$1" -v op="$2" -v b="$3" -v tol="${4:-0}" 'BEGIN {
        d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b
        ok = op == "<" ? a < b : op == ">" ? a > b : op == "close" ? d <= tol * m : 0
        exit !ok }'
}
