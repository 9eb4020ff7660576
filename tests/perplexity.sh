#!/usr/bin/env bash
#
# perplexity.sh - `nemotron perplexity` on the tiny fixture model.
#
# usage: perplexity.sh NEMOTRON FIXTURE_DIR SCRATCH_DIR
#
# 1. Its perplexity (and standard error) equals one computed here, in awk,
#    from the logits `nemotron logits` writes for the same windows: the
#    text tokenized with BOS and no special tokens, cut into windows of
#    --ctx tokens, each window's first token replaced by BOS, the logits
#    at positions ctx/2 .. ctx-2 scored against the next token.
# 2. --kl-base with the same model: KL exactly 0, the same top token
#    everywhere, the base's perplexity the model's.
# 3. Quantized files against the bf16 original: q8_0 a small positive KL,
#    q4_0 a larger one; the base's perplexity is the one measured alone.
# 4. Errors: exit codes and messages (2 for a command line that makes no
#    sense, 1 for inputs the work cannot be done on).
#
# Prints "N passed, N failed"; exits 1 if anything failed.

set -u
. "$(dirname "$0")/check_lib.sh" "$@"
n_vocab=2048
ctx=32

text=$scratch/text.txt
cat >"$text" <<'EOF'
The blacksmith of Oakvale rose before dawn, as he had every day for thirty
years. He lit the forge, set the bellows going and laid out the iron he meant
to work: a plough share for the miller, hinges for the chapel door, and a
sword that the captain of the guard had ordered in the spring.
"You are early," said his daughter from the doorway. She carried bread and a
jug of milk, and the cat followed her in, as it always did, hoping for both.
"The captain is never late," he answered, "so neither am I." <s> </s>
EOF

# ---- 1. against the logits, computed here -----------------------------------------

if check "perplexity --json" 0 "" "$nemotron" perplexity -m "$fixture" -f "$text" \
        --ctx $ctx --json -t 2; then
    ppl=$(field ppl)
    ppl_error=$(field ppl_error)
    n_scored=$(field n_scored)
    n_windows=$(field n_windows)
    n_tokens=$(field n_tokens)
fi

check "tokenize" 0 "" "$nemotron" tokenize -m "$fixture" --bos --no-special <"$text"
read -r -a ids <<<"$(tr -d '[],' <"$out")"
bos=${ids[0]}
windows=$((${#ids[@]} / ctx))
expect "the BOS is first (${ids[0]})" test "$bos" -eq 2
expect "n_tokens ${n_tokens:-?} = ${#ids[@]}" test "${n_tokens:-0}" -eq "${#ids[@]}"
expect "3 windows or more (got $windows)" test "$windows" -ge 3
expect "n_windows ${n_windows:-?} = $windows" test "${n_windows:-0}" -eq "$windows"
expect "n_scored ${n_scored:-?} = $windows x $((ctx / 2 - 1))" \
    test "${n_scored:-0}" -eq $((windows * (ctx / 2 - 1)))

nll=$scratch/nll.txt
: >"$nll"
for ((w = 0; w < windows; w++)); do
    window=("$bos" "${ids[@]:w*ctx+1:ctx-1}")
    check "logits of window $w" 0 "" "$nemotron" logits -m "$fixture" \
        --ids "${window[*]}" -o "$scratch/window$w.f32" || continue
    # one row of logits per line; row p predicts window[p + 1]
    od -An -v -f -w$((4 * n_vocab)) "$scratch/window$w.f32" |
        awk -v first=$((ctx / 2)) -v last=$((ctx - 2)) -v ids="${window[*]}" '
            BEGIN { split(ids, t, " ") }
            { p = NR - 1 }
            p >= first && p <= last {
                max = $1
                for (i = 2; i <= NF; i++) if ($i > max) max = $i
                s = 0
                for (i = 1; i <= NF; i++) s += exp($i - max)
                printf "%.17g\n", max + log(s) - $(t[p + 2] + 1)
            }' >>"$nll"
done
read -r want_n want_ppl want_error <<<"$(awk '
    { n++; s += $1; s2 += $1 * $1 }
    END { m = s / n; v = s2 / n - m * m
          printf "%d %.17g %.17g\n", n, exp(m), exp(m) * sqrt(v / (n - 1)) }' "$nll")"
expect "positions scored: $want_n, the command's ${n_scored:-?}" \
    test "$want_n" -eq "${n_scored:-0}"
expect "perplexity ${ppl:-?} = $want_ppl (1e-6)" holds "${ppl:-0}" close "$want_ppl" 1e-6
expect "its error ${ppl_error:-?} = $want_error (1e-6)" \
    holds "${ppl_error:-0}" close "$want_error" 1e-6

# in text, and with the scored half evaluated in steps of 5 tokens: the same
# positions, the same figure (printed to 4 decimals: 8 digits here)
if check "perplexity, text, -b 5" 0 "" "$nemotron" perplexity -m "$fixture" -f "$text" \
        -c $ctx -b 5 -t 1; then
    text_ppl=$(awk '$1 == "PPL:" { print $2 }' "$out")
    expect "the text says PPL +/- error" grep -qE "^PPL: +[0-9.]+ \+/- [0-9.]+$" "$out"
    expect "-b 5: perplexity ${text_ppl:-?} = $want_ppl" \
        holds "${text_ppl:-0}" close "$want_ppl" 1e-6
    expect "the text says the windows" grep -qF "$windows of $ctx tokens" "$out"
fi

# ---- 2. the model against itself --------------------------------------------------

if check "--kl-base itself" 0 "" "$nemotron" perplexity -m "$fixture" -f "$text" \
        --ctx $ctx --kl-base "$fixture" --json -t 1; then
    expect "KL with itself is 0 (got $(field kld_mean))" test "$(field kld_mean)" = 0
    expect "its error is 0 (got $(field kld_error))" test "$(field kld_error)" = 0
    expect "same top everywhere (got $(field same_top))" test "$(field same_top)" = 1
    expect "base perplexity $(field base_ppl) = the model's $(field ppl)" \
        test "$(field base_ppl)" = "$(field ppl)"
    expect "perplexity with a base $(field ppl) = without ${ppl:-?}" \
        holds "$(field ppl)" close "${ppl:-0}" 1e-9
fi

# ---- 3. quantized files against the bf16 original ---------------------------------

if check "--kl-base, q8_0" 0 "" "$nemotron" perplexity -m "$fixture/model-q8_0.gguf" \
        -f "$text" --ctx $ctx --kl-base "$fixture" --json -t 1; then
    kl_q8=$(field kld_mean)
    expect "q8_0: KL $kl_q8 > 0" holds "$kl_q8" ">" 0
    expect "q8_0: KL $kl_q8 < 0.01" holds "$kl_q8" "<" 0.01
    expect "q8_0: base perplexity $(field base_ppl) = bf16's ${ppl:-?}" \
        holds "$(field base_ppl)" close "${ppl:-0}" 1e-9
    expect "q8_0: same top p $(field same_top) > 0.5" holds "$(field same_top)" ">" 0.5
fi
if check "--kl-base, q4_0, text" 0 "" "$nemotron" perplexity \
        -m "$fixture/model-q4_0.gguf" -f "$text" --ctx $ctx --kl-base "$fixture" -t 1; then
    kl_q4=$(awk '$1 == "mean" && $2 == "KLD:" { print $3 }' "$out")
    expect "q4_0: KL ${kl_q4:-?} > q8_0's ${kl_q8:-?}" holds "${kl_q4:-0}" ">" "${kl_q8:-1}"
    expect "the text says mean KLD" grep -qE "^mean KLD: +[0-9.]+ \+/- [0-9.]+$" "$out"
    expect "the text says same top p" grep -qE "^same top p: +[0-9.]+ \+/- [0-9.]+ %$" "$out"
fi

# ---- 4. errors ----------------------------------------------------------------------

check "missing text file" 1 "$scratch/no-such.txt" \
    "$nemotron" perplexity -m "$fixture" -f "$scratch/no-such.txt"
: >"$scratch/empty.txt"
check "empty text file" 1 "empty" \
    "$nemotron" perplexity -m "$fixture" -f "$scratch/empty.txt"
check "text shorter than a window" 1 "needs at least 512 tokens" \
    "$nemotron" perplexity -m "$fixture" -f "$text"
expect "the message says how long the text is" grep -qF "${#ids[@]} tokens long" "$err"
check "odd --ctx" 2 "even" "$nemotron" perplexity -m "$fixture" -f "$text" --ctx 33
check "--ctx below 16" 2 "at least 16" "$nemotron" perplexity -m "$fixture" -f "$text" --ctx 8
check "-c below 16" 2 "at least 16" "$nemotron" perplexity -m "$fixture" -f "$text" -c 14
check "--ctx past the model's context" 2 "context of $fixture (4096 tokens)" \
    "$nemotron" perplexity -m "$fixture" -f "$text" --ctx 8192
check "--ctx abc" 2 "abc" "$nemotron" perplexity -m "$fixture" -f "$text" --ctx abc
check "no text" 2 "-f" "$nemotron" perplexity -m "$fixture"
check "no model" 2 "-m" "$nemotron" perplexity -f "$text"
check "unknown option" 2 "--bogus" "$nemotron" perplexity -m "$fixture" -f "$text" --bogus
check "missing base" 1 "$scratch/no-such-model" "$nemotron" perplexity -m "$fixture" \
    -f "$text" --ctx $ctx --kl-base "$scratch/no-such-model"
# a model of the same shape whose vocabulary has other pieces
if check "synth a model with another vocabulary" 0 "" \
        "$nemotron" synth -o "$scratch/other" --shape tiny --seed 1; then
    check "--kl-base, another vocabulary" 1 "same vocabulary" "$nemotron" perplexity \
        -m "$fixture" -f "$text" --ctx $ctx --kl-base "$scratch/other"
    expect "the message names the token" grep -qE "token [0-9]+ is" "$err"
fi
check "--help" 0 "" "$nemotron" perplexity --help
expect "--help prints the usage" grep -qF -- "--kl-base" "$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
