#!/usr/bin/env bash
#
# eval_mmlu.sh - `nemotron eval mmlu` end to end.
#
# usage: eval_mmlu.sh NEMOTRON FIXTURE_DIR SCRATCH_DIR
#
# Writes a small MMLU in the original layout (three subjects; quoted fields
# with commas, doubled quotes and line breaks; one file with CRLF endings;
# one dev file with fewer rows than -k) and scripted models of the
# fixture's shape (`synth --like --script`, a bigram model: every token
# outside the script is followed by the script's first token). The prompt
# ends with "Answer:", whose last token is ":", so with the script ": B"
# the token after it is "▁B" - the token the harness scores B by - and the
# model answers B to every question: the accuracy must be exactly the
# share of questions whose answer is B, per subject and overall, micro and
# macro. ": D" answers D. The script "B" (the token "B", not "▁B") leaves
# all four letter tokens at logit 0: the tie goes to A, as numpy's argmax
# gives it in the original.
#
# Also: a prompt against one written out by hand (the original's format,
# two spaces after "about" included), dropping examples to fit -c,
# prefix reuse against a fresh evaluation (`nemotron logits`) on the
# random fixture, and every error case with its file:line.
#
# Prints "N passed, N failed"; exits 1 if anything failed.

set -u
. "$(dirname "$0")/check_lib.sh" "$@"

# has NAME FILE NEEDLE: FILE contains the string NEEDLE (line breaks too).
has() {
    local content
    content=$(cat "$2")
    if [[ $content == *"$3"* ]]; then
        passed=$((passed + 1))
    else
        fail "$1: no [$3] in: $(head -c 3000 "$2")"
    fi
}

# ---- the data set ----------------------------------------------------------------------
data=$scratch/data
mkdir -p "$data/dev" "$data/test"

# astronomy: 5 dev rows; 4 questions, answers B A B D
cat >"$data/dev/astronomy_dev.csv" <<'EOF'
What is the Sun?,A star,A planet,A moon,A comet,A
"Which is larger, Earth or Mars?",Earth,Mars,"About equal, roughly",Neither,A
"The ""red planet"" is:",Venus,Mars,Jupiter,Saturn,B
How many planets orbit the Sun?,Seven,Nine,Eight,Ten,C
"A light-year measures
what?",Time,Speed,Mass,Distance,D
EOF
cat >"$data/test/astronomy_test.csv" <<'EOF'
"He said ""look up"", then pointed. At what?",The ground,The sky,The sea,A tree,B
What orbits Earth?,The Moon,Mars,"Venus, sometimes",Jupiter,A
"Line one
line two: which comes second?",Line one,Line two,Both,Neither,B
Which is a dwarf planet?,Earth,Mars,Venus,Pluto,D
EOF

# high_school_biology, CRLF line endings: 5 dev rows; 5 questions, answers C B B B A
printf '%s\r\n' \
    'What do cells divide by?,Osmosis,Mitosis,Diffusion,Fusion,B' \
    '"DNA, in short, is:",A protein,A lipid,A nucleic acid,A sugar,C' \
    'What carries oxygen?,Platelets,White cells,Plasma,Red cells,D' \
    '"The ""powerhouse"" of the cell?",Mitochondria,Nucleus,Ribosome,Vacuole,A' \
    'Plants make food by:,Respiration,Photosynthesis,Digestion,Fermentation,B' \
    >"$data/dev/high_school_biology_dev.csv"
printf '%s\r\n' \
    '"Which, of these, is an organ?",A cell,A tissue,The heart,A molecule,C' \
    '"Genes sit on ""chromosomes"". True?",No,Yes,Sometimes,Never,B' \
    'What is the basic unit of life?,The atom,The cell,The organ,The tissue,B' \
    '"Pick the odd one:' 'shark, whale, trout",Shark,Whale,Trout,None,B' \
    'Enzymes are:,Proteins,Sugars,Fats,Salts,A' \
    >"$data/test/high_school_biology_test.csv"

# world_religions: only 3 dev rows (k=5 asks for more: a warning); 3 questions, A C D
cat >"$data/dev/world_religions_dev.csv" <<'EOF'
Q1?,a,b,c,d,A
Q2?,a,b,c,d,B
Q3?,a,b,c,d,C
EOF
cat >"$data/test/world_religions_test.csv" <<'EOF'
T1?,a,b,c,d,A
T2?,a,b,c,d,C
T3?,a,b,c,d,D
EOF

# ---- the scripted models -------------------------------------------------------------------
check "synth ': B'" 0 "" "$nemotron" synth -o "$scratch/answers_b" --like "$fixture" --script ": B"
check "synth ': D'" 0 "" "$nemotron" synth -o "$scratch/answers_d" --like "$fixture" --script ": D"
check "synth 'B'" 0 "" "$nemotron" synth -o "$scratch/ties" --like "$fixture" --script "B"
# the letter tokens, as the harness finds them: "▁A" ... "▁D"
check "letter pieces" 0 "" "$nemotron" tokenize -m "$fixture" --pieces <<<"Answer: A B C D"
has "letter pieces" "$out" '":", "▁A", "▁B", "▁C", "▁D"'

# ---- always B: the accuracy is the share of B answers ------------------------------------------
json=$scratch/b.json
check "eval, always B" 0 "warning: $data/dev/world_religions_dev.csv has 3 rows" \
    "$nemotron" eval mmlu --data "$data" -m "$scratch/answers_b" -t 2 --json "$json"
has "always B: astronomy" "$out" "astronomy                    4        2    50.00%  5"
has "always B: biology" "$out" "high_school_biology          5        3    60.00%  5"
has "always B: religions" "$out" "world_religions              3        0     0.00%  3"
has "always B: micro" "$out" "micro average: 41.67% (5/12 questions)"
has "always B: macro" "$out" "macro average: 36.67% (mean of 3 subjects)"
has "always B: per-subject line on stderr" "$err" "high_school_biology"
has "json: micro" "$json" '"questions": 12,'
has "json: correct" "$json" '"correct": 5,'
has "json: micro accuracy" "$json" '"micro_accuracy": 0.416666667,'
has "json: macro accuracy" "$json" '"macro_accuracy": 0.366666667,'
has "json: letter tokens" "$json" '"letter_tokens": {"A": 419, "B": 351, "C": 337, "D": 533}'
has "json: astronomy" "$json" '{"name": "astronomy", "questions": 4, "correct": 2, "accuracy": 0.5, "shots": 5, "min_shots": 5, "reduced": 0}'
has "json: religions" "$json" '{"name": "world_religions", "questions": 3, "correct": 0, "accuracy": 0, "shots": 3, "min_shots": 3, "reduced": 0}'
has "json: a question" "$json" '{"subject": "high_school_biology", "index": 3, "line": 4, "answer": "B", "prediction": "B", "correct": true, "shots": 5,'
same "json: every prediction is B" "$(grep -c '"prediction": "B"' "$json")" 12
# the few-shot prefix is computed once per subject, not once per question
prompt_tokens=$(sed -n 's/.*"prompt_tokens": \([0-9]*\).*/\1/p' "$json")
evaluated=$(sed -n 's/.*"evaluated_tokens": \([0-9]*\).*/\1/p' "$json")
if [ -n "$prompt_tokens" ] && [ -n "$evaluated" ] && [ "$((evaluated * 2))" -lt "$prompt_tokens" ]; then
    passed=$((passed + 1))
else
    fail "prefix reuse: $evaluated of $prompt_tokens prompt tokens evaluated"
fi

# --subjects and --limit
check "eval --subjects --limit" 0 "" \
    "$nemotron" eval mmlu --data "$data" -m "$scratch/answers_b" -t 1 \
    --subjects high_school_biology,astronomy --limit 2
has "--limit: biology" "$out" "high_school_biology          2        1    50.00%  5"
has "--limit: astronomy" "$out" "astronomy                    2        1    50.00%  5"
has "--limit: micro" "$out" "micro average: 50.00% (2/4 questions)"
if grep -q world_religions "$out"; then fail "--subjects: world_religions evaluated"; else passed=$((passed + 1)); fi

# ---- always D; ties ----------------------------------------------------------------------------
check "eval, always D" 0 "" "$nemotron" eval mmlu --data "$data" -m "$scratch/answers_d" -t 2
has "always D: micro" "$out" "micro average: 16.67% (2/12 questions)"
has "always D: macro" "$out" "macro average: 19.44% (mean of 3 subjects)"
has "always D: astronomy" "$out" "astronomy                    4        1    25.00%  5"
check "eval, all letters tie" 0 "" "$nemotron" eval mmlu --data "$data" -m "$scratch/ties" -t 2 \
    --json "$scratch/ties.json"
has "ties go to A: micro" "$out" "micro average: 25.00% (3/12 questions)"
has "ties go to A: macro" "$out" "macro average: 26.11% (mean of 3 subjects)"
has "ties: the logits are equal" "$scratch/ties.json" '"prediction": "A", "correct": false, "shots": 5, "tokens":'
same "ties: every prediction is A" "$(grep -c '"prediction": "A"' "$scratch/ties.json")" 12

# ---- the prompt, byte for byte ---------------------------------------------------------------------
check "dry run" 0 "" "$nemotron" eval mmlu --data "$data" -m "$scratch/answers_b" --dry-run \
    --subjects high_school_biology --limit 1 -k 3
got=$(stdout_exact)
got=${got%x}
want=$(printf '%s\n' \
    "The following are multiple choice questions (with answers) about  high school biology." \
    "" \
    "What do cells divide by?" "A. Osmosis" "B. Mitosis" "C. Diffusion" "D. Fusion" "Answer: B" "" \
    "DNA, in short, is:" "A. A protein" "B. A lipid" "C. A nucleic acid" "D. A sugar" "Answer: C" "" \
    "What carries oxygen?" "A. Platelets" "B. White cells" "C. Plasma" "D. Red cells" "Answer: D" "" \
    "Which, of these, is an organ?" "A. A cell" "B. A tissue" "C. The heart" "D. A molecule"
    printf 'Answer:')
header=$(head -n 1 "$out")
same "dry run: the prompt" "${got#"$header"$'\n'}" "$want"$'\n\n'
case $header in
"### high_school_biology 1/1 ($data/test/high_school_biology_test.csv:1): 3-shot, "*" tokens, answer C")
    passed=$((passed + 1)) ;;
*) fail "dry run: header [$header]" ;;
esac
# the prompt is what the model reads: its tokens are what the header counts
n_tok=$(printf '%s' "$want" | "$nemotron" tokenize -m "$fixture" --no-special | tr -cd , | wc -c)
same "dry run: token count" "$header" "${header%%: 3-shot*}: 3-shot, $((n_tok + 1)) tokens, answer C"

# a quoted line break and doubled quotes reach the prompt as one question
check "dry run: multi-line question" 0 "" "$nemotron" eval mmlu --data "$data" \
    -m "$scratch/answers_b" --dry-run --subjects high_school_biology --limit 4 -k 0
has "dry run: line break in a question" "$out" $'Pick the odd one:\r\nshark, whale, trout\nA. Shark'
has "dry run: doubled quotes" "$out" $'Genes sit on "chromosomes". True?\nA. No'
has "dry run: 0-shot header" "$out" $'about  high school biology.\n\nWhich, of these'

# ---- a context too small for every example ----------------------------------------------------------
# With -c exactly the 3-shot prompt's length, the 5-shot and 4-shot prompts
# do not fit and 3 examples remain.
check "dry run -k 3" 0 "" "$nemotron" eval mmlu --data "$data" -m "$scratch/answers_b" --dry-run \
    --subjects astronomy --limit 1 -k 3
n3=$(head -n 1 "$out" | sed -n 's/.*3-shot, \([0-9]*\) tokens.*/\1/p')
check "crop to the context" 0 "astronomy: 1 of 1 prompts dropped examples to fit the context of $n3 tokens (down to 3-shot)" \
    "$nemotron" eval mmlu --data "$data" -m "$scratch/answers_b" --subjects astronomy --limit 1 \
    -c "$n3" --json "$scratch/crop.json"
has "crop: json" "$scratch/crop.json" "\"shots\": 3, \"tokens\": $n3,"
has "crop: subject" "$scratch/crop.json" '"shots": 5, "min_shots": 3, "reduced": 1}'
has "crop: table" "$out" "astronomy          1        1   100.00%  3-5"
check "context too small for the question" 1 "astronomy_test.csv:1: the question alone is" \
    "$nemotron" eval mmlu --data "$data" -m "$scratch/answers_b" --subjects astronomy -c 20 \
    --json "$scratch/none.json"
[ -e "$scratch/none.json" ] && fail "a failed run left its --json file" || passed=$((passed + 1))

# ---- prefix reuse computes what a fresh evaluation does --------------------------------------------------
# On the random fixture: question 2 of a subject is evaluated after question
# 1 left the few-shot prefix in the cache; its letter logits must match
# `nemotron logits` over its whole prompt from an empty cache.
check "random model" 0 "" "$nemotron" eval mmlu --data "$data" -m "$fixture" -t 2 \
    --subjects astronomy --limit 2 --json "$scratch/random.json"
check "random model: prompts" 0 "" "$nemotron" eval mmlu --data "$data" -m "$fixture" --dry-run \
    --subjects astronomy --limit 2
prompt2=$(sed -n '/^### astronomy 2\/2 /,$p' "$out" | tail -n +2)
ids=$(printf '%s' "$prompt2" | "$nemotron" tokenize -m "$fixture" --no-special | tr -d '[],')
check "logits of question 2" 0 "" "$nemotron" logits -m "$fixture" -t 2 --ids "$ids" -o "$scratch/q2.f32"
n=$(echo "$ids" | wc -w)
n_vocab=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$fixture/config.json")
fresh=""
for id in 419 351 337 533; do
    fresh="$fresh $(od -A n -t f4 -j $(((n - 1) * n_vocab * 4 + id * 4)) -N 4 "$scratch/q2.f32")"
done
reused=$(grep '"index": 1,' "$scratch/random.json" | sed 's/.*"logits": \[\([^]]*\)\].*/\1/' | tr -d ,)
if awk -v a="$fresh" -v b="$reused" 'BEGIN {
        na = split(a, x, " "); nb = split(b, y, " ")
        if (na != 4 || nb != 4) exit 1
        for (i = 1; i <= 4; i++) {
            d = x[i] - y[i]; if (d < 0) d = -d
            m = x[i] < 0 ? -x[i] : x[i]
            if (d > 1e-3 + 1e-3 * m) exit 1
        }
    }'; then
    passed=$((passed + 1))
else
    fail "prefix reuse: letter logits [$reused], a fresh evaluation [$fresh]"
fi
has "reused: question 2 is 5-shot" "$scratch/random.json" "\"index\": 1, \"line\": 2, \"answer\": \"A\""

# ---- errors -----------------------------------------------------------------------------------------
m=$scratch/answers_b
check "no benchmark" 2 "name a benchmark" "$nemotron" eval
check "unknown benchmark" 2 "unknown benchmark" "$nemotron" eval hellaswag
check "no --data" 2 "needs --data" "$nemotron" eval mmlu -m "$m"
check "no -m" 2 "needs -m" "$nemotron" eval mmlu --data "$data"
check "bad -k" 2 "-k" "$nemotron" eval mmlu --data "$data" -m "$m" -k x
check "unknown option" 2 "unknown option" "$nemotron" eval mmlu --data "$data" -m "$m" --frobnicate
check "help" 0 "" "$nemotron" eval mmlu --help
has "help" "$out" "--dry-run"
check "missing DIR" 1 "$scratch/nowhere: not a directory" \
    "$nemotron" eval mmlu --data "$scratch/nowhere" -m "$m"
mkdir -p "$scratch/empty/test" "$scratch/notest"
check "no test folder" 1 "$scratch/notest/test: cannot open" \
    "$nemotron" eval mmlu --data "$scratch/notest" -m "$m"
check "no test files" 1 "$scratch/empty/test: no SUBJECT_test.csv files" \
    "$nemotron" eval mmlu --data "$scratch/empty" -m "$m"
check "unknown subject" 1 "no subject \"astrology\"" \
    "$nemotron" eval mmlu --data "$data" -m "$m" --subjects astronomy,astrology

# broken files: a copy of the data set with one file replaced
broken() {
    rm -rf "$scratch/broken"
    cp -r "$data" "$scratch/broken"
    cat >"$scratch/broken/$1"
}
# line 4: after a record spanning lines 2-3
broken test/astronomy_test.csv <<'EOF'
Q?,a,b,c,d,A
"Two
lines",a,b,c,d,B
Q?,a,b,c,d
EOF
check "wrong column count" 1 "$scratch/broken/test/astronomy_test.csv:4: 5 fields, want 6" \
    "$nemotron" eval mmlu --data "$scratch/broken" -m "$m"
broken dev/world_religions_dev.csv <<'EOF'
Q?,a,b,c,d,A
Q?,a,b,c,d,E
EOF
check "bad answer letter" 1 "$scratch/broken/dev/world_religions_dev.csv:2: the answer is \"E\", not A, B, C or D" \
    "$nemotron" eval mmlu --data "$scratch/broken" -m "$m"
broken test/world_religions_test.csv <<'EOF'
Q?,a,b,c,d,A
"Q?,a,b,c,d,B
Q?,a,b,c,d,C
EOF
check "unterminated quote" 1 "$scratch/broken/test/world_religions_test.csv:2: a quoted field opened on this line never ends" \
    "$nemotron" eval mmlu --data "$scratch/broken" -m "$m"
broken test/world_religions_test.csv <<'EOF'
Q?,a,b,c,d,A
"Q"?,a,b,c,d,B
EOF
check "text after a closing quote" 1 "$scratch/broken/test/world_religions_test.csv:2: text after the closing quote" \
    "$nemotron" eval mmlu --data "$scratch/broken" -m "$m"
# a bad row past --limit is still reported
broken test/world_religions_test.csv <<'EOF'
Q?,a,b,c,d,A
Q?,a,b,c,d,a
EOF
check "bad row past --limit" 1 "world_religions_test.csv:2: the answer is \"a\"" \
    "$nemotron" eval mmlu --data "$scratch/broken" -m "$m" --limit 1
# a subject without its dev file: an error, unless -k 0
rm -rf "$scratch/broken" && cp -r "$data" "$scratch/broken" && rm "$scratch/broken/dev/astronomy_dev.csv"
check "missing dev file" 1 "$scratch/broken/dev/astronomy_dev.csv: missing: subject astronomy needs its dev file for -k 5" \
    "$nemotron" eval mmlu --data "$scratch/broken" -m "$m"
check "missing dev file, -k 0" 0 "" "$nemotron" eval mmlu --data "$scratch/broken" -m "$m" -k 0 -t 2
has "-k 0: micro" "$out" "micro average: 41.67% (5/12 questions)"
has "-k 0: shots" "$out" "astronomy                    4        2    50.00%  0"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
