/*
 * cmd_eval.c - `nemotron eval mmlu`: MMLU (Hendrycks et al., "Measuring
 * Massive Multitask Language Understanding", ICLR 2021), few-shot, scored
 * as the paper's evaluate.py (github.com/hendrycks/test) scores it.
 *
 * The data is the original release's layout: DIR/test/SUBJECT_test.csv
 * and DIR/dev/SUBJECT_dev.csv, rows `question,A,B,C,D,answer` without a
 * header. Subjects are the test files' names, sorted.
 *
 * The prompt of a question, byte for byte evaluate.py's:
 *
 *   "The following are multiple choice questions (with answers) about "
 *   + a space and a word for each word of the subject (high_school_biology:
 *   " high school biology", the original's format_subject, so there are two
 *   spaces after "about") + ".\n\n", then for each of the first k rows of
 *   the dev file
 *     QUESTION "\nA. " A "\nB. " B "\nC. " C "\nD. " D "\nAnswer: " X "\n\n"
 *   then the test question in the same shape, ending with "\nAnswer:".
 *
 * A prompt longer than the context drops dev examples from the end until
 * it fits, as the original does (it cropped to GPT-3's 2048 tokens). The
 * answer is the letter whose token (the one "Answer: A" ends with, "▁A"
 * in a SentencePiece vocabulary: the original compares the log
 * probabilities of " A" ... " D") has the largest logit at the last
 * position; ties go to the earlier letter (numpy's argmax).
 *
 * Where this differs from the original: fields are taken verbatim, whereas
 * pandas reads cells such as "None", "NA" or an empty one as NaN, which the
 * original prints as "nan" (and then an integer column prints as floats).
 *
 * Prompts are evaluated in one context, each reusing the cached prefix it
 * shares with the previous one (the subject's few-shot examples), so only
 * each question's own tokens are computed.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "csv.h"
#include "internal.h"
#include "score.h"

#define MMLU_FIELDS 6 /* question, A, B, C, D, answer */
static const char LETTERS[4] = {'A', 'B', 'C', 'D'};

static void eval_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron eval mmlu --data DIR -m MODEL [options]\n"
            "  MMLU, k-shot, scored as the original evaluate.py (hendrycks/test) does\n"
            "  --data DIR          the original layout: DIR/test/SUBJECT_test.csv and\n"
            "                      DIR/dev/SUBJECT_dev.csv (rows question,A,B,C,D,answer)\n"
            "  -k N                examples per prompt, the first N rows of the subject's\n"
            "                      dev file (default 5; 0 needs no dev files)\n"
            "  --subjects a,b,...  these subjects only (default: every test file)\n"
            "  --limit N           the first N questions of each subject only\n"
            "  --json FILE         write the settings, every subject's and every\n"
            "                      question's result as JSON\n"
            "  --dry-run           print each prompt (after a \"### \" line) instead of\n"
            "                      evaluating it\n"
            "  --bos               begin each prompt with the bos token\n"
            "  -t N                threads (default: all CPUs)\n"
            "  -c N                context size (default: the model's, 4096); longer\n"
            "                      prompts drop examples until they fit\n"
            "  -b N, --no-mmap, --simd NAME   as for `nemotron run`\n");
}

/* ---- text -------------------------------------------------------------------- */

static int sb_str(nt_buf *b, const char *s) { return nt_buf_add(b, s, strlen(s)); }

/* ---- the data -------------------------------------------------------------------- */

typedef struct question {
    char *const *f; /* question, A, B, C, D, answer */
    int line;
    int answer;     /* 0..3 */
} question;

typedef struct subject {
    char *name;        /* the file name's stem: high_school_biology */
    char *test_path;
    char *dev_path;
    csv_table test_csv, dev_csv;
    question *tests;
    int n_tests;       /* after --limit */
    question *devs;
    int n_devs;        /* at most k */
    /* results */
    int n_done, n_correct;
    int min_shots, n_reduced; /* questions with fewer than k examples */
} subject;

typedef struct result {
    int subject, question;
    int shots, n_tokens;
    int prediction;
    float logits[4];
} result;

static char *path_join(const char *dir, const char *a, const char *b) {
    size_t n = strlen(dir) + strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", dir, a, b);
    return p;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The subjects of DIR/test, sorted (as the original sorts them); *names is
 * malloc'd strings. Returns the count, or -1 after saying why. */
static int list_subjects(const char *test_dir, char ***names) {
    static const char suffix[] = "_test.csv";
    const size_t ls = sizeof suffix - 1;
    DIR *d = opendir(test_dir);
    if (!d) {
        cli_error("%s: cannot open: %s (MMLU's layout: DIR/test/SUBJECT_test.csv, "
                  "DIR/dev/SUBJECT_dev.csv)",
                  test_dir, strerror(errno));
        return -1;
    }
    char **out = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= ls || strcmp(e->d_name + len - ls, suffix) != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(out, (size_t)cap * sizeof *p);
            if (!p)
                goto oom;
            out = p;
        }
        if (!(out[n] = malloc(len - ls + 1)))
            goto oom;
        memcpy(out[n], e->d_name, len - ls);
        out[n++][len - ls] = '\0';
    }
    closedir(d);
    if (n > 1)
        qsort(out, (size_t)n, sizeof *out, cmp_str);
    *names = out;
    return n;
oom:
    closedir(d);
    for (int i = 0; i < n; i++)
        free(out[i]);
    free(out);
    cli_error("out of memory");
    return -1;
}

/* The rows of a file as questions; at most `max` (< 0: all). */
static int read_questions(const char *path, csv_table *t, int max, question **out,
                          int *n_out) {
    char msg[1024];
    if (!csv_read_file(path, t, msg, sizeof msg)) {
        cli_error("%s", msg);
        return 0;
    }
    size_t n = t->n_records;
    if (max >= 0 && n > (size_t)max)
        n = (size_t)max;
    question *q = calloc(n ? n : 1, sizeof *q);
    if (!q) {
        cli_error("out of memory");
        return 0;
    }
    /* every row is checked, also those past --limit: a broken file is
     * reported whatever the options */
    for (size_t r = 0; r < t->n_records; r++) {
        size_t nf = csv_n_fields(t, r);
        char *const *f = csv_record(t, r);
        if (nf != MMLU_FIELDS) {
            cli_error("%s:%d: %zu field%s, want %d (question,A,B,C,D,answer)", path,
                      t->line[r], nf, nf == 1 ? "" : "s", MMLU_FIELDS);
            free(q);
            return 0;
        }
        const char *a = f[MMLU_FIELDS - 1];
        if (!(a[0] >= 'A' && a[0] <= 'D' && a[1] == '\0')) {
            fprintf(stderr, "nemotron: %s:%d: the answer is \"", path, t->line[r]);
            fwrite(a, 1, strlen(a) > 40 ? 40 : strlen(a), stderr);
            fprintf(stderr, "%s\", not A, B, C or D\n", strlen(a) > 40 ? "..." : "");
            free(q);
            return 0;
        }
        if (r < n)
            q[r] = (question){f, t->line[r], a[0] - 'A'};
    }
    *out = q;
    *n_out = (int)n;
    return 1;
}

static void free_subjects(subject *s, int n) {
    for (int i = 0; s && i < n; i++) {
        free(s[i].name);
        free(s[i].test_path);
        free(s[i].dev_path);
        csv_free(&s[i].test_csv);
        csv_free(&s[i].dev_csv);
        free(s[i].tests);
        free(s[i].devs);
    }
    free(s);
}

/* ---- prompts -------------------------------------------------------------------- */

static int add_example(nt_buf *b, const question *q, int with_answer) {
    int ok = sb_str(b, q->f[0]);
    for (int j = 0; j < 4 && ok; j++) {
        char head[5] = {'\n', LETTERS[j], '.', ' ', '\0'};
        ok = sb_str(b, head) && sb_str(b, q->f[1 + j]);
    }
    ok = ok && sb_str(b, "\nAnswer:");
    if (with_answer && ok) {
        char tail[5] = {' ', LETTERS[q->answer], '\n', '\n', '\0'};
        ok = sb_str(b, tail);
    }
    return ok;
}

/* The prompt of test question q of subject s with its first k examples. */
static int build_prompt(nt_buf *b, const subject *s, int k, const question *q) {
    b->n = 0;
    int ok = sb_str(b, "The following are multiple choice questions (with answers) about ");
    /* the original's format_subject: " " before each word, so two spaces
     * after "about" */
    for (const char *p = s->name; *p && ok;) {
        const char *u = strchr(p, '_');
        size_t n = u ? (size_t)(u - p) : strlen(p);
        ok = nt_buf_add(b, " ", 1) && nt_buf_add(b, p, n);
        p += n + (u != NULL);
        if (u && !*p)
            ok = ok && nt_buf_add(b, " ", 1); /* a trailing "_": an empty last word */
    }
    ok = ok && sb_str(b, ".\n\n");
    for (int i = 0; i < k && ok; i++)
        ok = add_example(b, &s->devs[i], 1);
    ok = ok && add_example(b, q, 0);
    if (!ok)
        cli_error("out of memory");
    return ok;
}

/* ---- progress ----------------------------------------------------------------- */

typedef struct progress {
    int tty;
    int total;
    double t0, last;
    int shown; /* a bar is on the line */
} progress;

static void progress_bar(progress *p, int done, int correct, int force) {
    if (!p->tty)
        return;
    double now = cli_now();
    if (!force && now - p->last < 0.2)
        return;
    p->last = now;
    double frac = p->total ? (double)done / p->total : 1.0;
    int width = 30, filled = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    double rate = done > 0 ? done / (now - p->t0) : 0.0;
    fprintf(stderr, "\r\033[Kmmlu [%s] %3d%% %d/%d", bar, (int)floor(frac * 100.0), done,
            p->total);
    if (done > 0) {
        fprintf(stderr, " | acc %.2f%% | %.2f q/s", 100.0 * correct / done, rate);
        if (done < p->total && rate > 0) {
            long eta = (long)((p->total - done) / rate);
            fprintf(stderr, " | ETA %ld:%02ld:%02ld", eta / 3600, eta / 60 % 60, eta % 60);
        }
    }
    fflush(stderr);
    p->shown = 1;
}

/* A line on stderr, above the bar when there is one. */
static void progress_line(progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void progress_line(progress *p, const char *fmt, ...) {
    if (p->shown)
        fputs("\r\033[K", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    p->shown = 0;
}

/* ---- output ----------------------------------------------------------------------- */

static void json_float(FILE *out, double v) {
    if (isfinite(v))
        fprintf(out, "%.9g", v);
    else
        fputs("null", out);
}

static void softmax4(const float *l, double *p) {
    double lse = nt_score_logsumexp(l, 4);
    for (int j = 0; j < 4; j++)
        p[j] = exp((double)l[j] - lse);
}

typedef struct totals {
    int questions, correct, subjects;
    double micro, macro; /* NAN when there is nothing */
} totals;

static totals count(const subject *s, int n) {
    totals t = {0, 0, 0, NAN, NAN};
    double sum = 0;
    for (int i = 0; i < n; i++) {
        t.questions += s[i].n_done;
        t.correct += s[i].n_correct;
        if (s[i].n_done) {
            t.subjects++;
            sum += (double)s[i].n_correct / s[i].n_done;
        }
    }
    if (t.questions)
        t.micro = (double)t.correct / t.questions;
    if (t.subjects)
        t.macro = sum / t.subjects;
    return t;
}

static void print_table(const subject *s, int n, int k) {
    int w = 7;
    for (int i = 0; i < n; i++)
        if ((int)strlen(s[i].name) > w)
            w = (int)strlen(s[i].name);
    printf("%-*s  %9s  %7s  %8s  %s\n", w, "subject", "questions", "correct", "accuracy",
           "shots");
    for (int i = 0; i < n; i++) {
        printf("%-*s  %9d  %7d  ", w, s[i].name, s[i].n_done, s[i].n_correct);
        if (s[i].n_done)
            printf("%7.2f%%  ", 100.0 * s[i].n_correct / s[i].n_done);
        else
            printf("%8s  ", "-");
        int most = s[i].n_devs < k ? s[i].n_devs : k;
        if (s[i].n_done && s[i].min_shots < most)
            printf("%d-%d\n", s[i].min_shots, most);
        else
            printf("%d\n", most);
    }
    totals t = count(s, n);
    printf("\n");
    if (t.questions) {
        printf("micro average: %.2f%% (%d/%d questions)\n", 100.0 * t.micro, t.correct,
               t.questions);
        printf("macro average: %.2f%% (mean of %d subject%s)\n", 100.0 * t.macro, t.subjects,
               t.subjects == 1 ? "" : "s");
    } else {
        printf("no questions evaluated\n");
    }
}

typedef struct run_info {
    const char *data_dir, *model_path;
    int k, limit, bos, n_ctx;
    int32_t letter_ids[4];
    const char *weight_type;
    double seconds;
    long long prompt_tokens, evaluated_tokens;
} run_info;

static int write_json(FILE *out, const run_info *ri, const subject *s, int n,
                      const result *res, int n_res) {
    totals t = count(s, n);
    fputs("{\n  \"benchmark\": \"mmlu\",\n  \"data\": ", out);
    cli_print_json_string(out, ri->data_dir);
    fputs(",\n  \"model\": ", out);
    cli_print_json_string(out, ri->model_path);
    fputs(",\n  \"weight_type\": ", out);
    cli_print_json_string(out, ri->weight_type);
    fprintf(out, ",\n  \"k\": %d,\n  \"limit\": ", ri->k);
    if (ri->limit >= 0)
        fprintf(out, "%d", ri->limit);
    else
        fputs("null", out);
    fprintf(out, ",\n  \"bos\": %s,\n  \"n_ctx\": %d,\n  \"letter_tokens\": {", ri->bos ? "true" : "false",
            ri->n_ctx);
    for (int j = 0; j < 4; j++)
        fprintf(out, "%s\"%c\": %d", j ? ", " : "", LETTERS[j], (int)ri->letter_ids[j]);
    fprintf(out, "},\n  \"questions\": %d,\n  \"correct\": %d,\n  \"micro_accuracy\": ",
            t.questions, t.correct);
    json_float(out, t.micro);
    fprintf(out, ",\n  \"n_subjects\": %d,\n  \"macro_accuracy\": ", t.subjects);
    json_float(out, t.macro);
    fprintf(out, ",\n  \"seconds\": %.3f,\n  \"prompt_tokens\": %lld,\n"
                 "  \"evaluated_tokens\": %lld,\n  \"subjects\": [",
            ri->seconds, ri->prompt_tokens, ri->evaluated_tokens);
    for (int i = 0; i < n; i++) {
        fputs(i ? ",\n    {\"name\": " : "\n    {\"name\": ", out);
        cli_print_json_string(out, s[i].name);
        fprintf(out, ", \"questions\": %d, \"correct\": %d, \"accuracy\": ", s[i].n_done,
                s[i].n_correct);
        json_float(out, s[i].n_done ? (double)s[i].n_correct / s[i].n_done : NAN);
        int most = s[i].n_devs < ri->k ? s[i].n_devs : ri->k;
        fprintf(out, ", \"shots\": %d, \"min_shots\": %d, \"reduced\": %d}", most,
                s[i].n_done ? s[i].min_shots : most, s[i].n_reduced);
    }
    fputs("\n  ],\n  \"results\": [", out);
    for (int i = 0; i < n_res; i++) {
        const result *r = &res[i];
        const question *q = &s[r->subject].tests[r->question];
        double p[4];
        softmax4(r->logits, p);
        fputs(i ? ",\n    {\"subject\": " : "\n    {\"subject\": ", out);
        cli_print_json_string(out, s[r->subject].name);
        fprintf(out,
                ", \"index\": %d, \"line\": %d, \"answer\": \"%c\", \"prediction\": \"%c\", "
                "\"correct\": %s, \"shots\": %d, \"tokens\": %d, \"logits\": [",
                r->question, q->line, LETTERS[q->answer], LETTERS[r->prediction],
                r->prediction == q->answer ? "true" : "false", r->shots, r->n_tokens);
        for (int j = 0; j < 4; j++) {
            if (j)
                fputs(", ", out);
            json_float(out, r->logits[j]);
        }
        fputs("], \"probs\": [", out);
        for (int j = 0; j < 4; j++) {
            if (j)
                fputs(", ", out);
            json_float(out, p[j]);
        }
        fputs("]}", out);
    }
    fputs("\n  ]\n}\n", out);
    return !ferror(out);
}

/* ---- scoring ------------------------------------------------------------------- */

/*
 * The token each letter is scored by: the one that "Answer: X" has after
 * the tokens of "Answer:". Returns 0 after saying why when a letter is not
 * exactly one token there.
 */
static int letter_tokens(const nt_tokenizer *tok, unsigned flags, int32_t ids[4]) {
    nt_error err;
    int32_t *base = NULL;
    size_t n_base = 0;
    if (nt_tokenize(tok, "Answer:", 7, flags, &base, &n_base, &err) != NT_OK) {
        cli_error("%s", err.message);
        return 0;
    }
    int ok = 1;
    for (int j = 0; j < 4 && ok; j++) {
        char text[16];
        snprintf(text, sizeof text, "Answer: %c", LETTERS[j]);
        int32_t *t = NULL;
        size_t n = 0;
        if (nt_tokenize(tok, text, strlen(text), flags, &t, &n, &err) != NT_OK) {
            cli_error("%s", err.message);
            ok = 0;
        } else if (n != n_base + 1 || memcmp(t, base, n_base * sizeof *t) != 0) {
            cli_error("eval: this tokenizer does not spell \"Answer: %c\" as the tokens of "
                      "\"Answer:\" and one token for \" %c\" (it gives %zu tokens for %zu); "
                      "each letter must be a single token to be scored",
                      LETTERS[j], LETTERS[j], n, n_base);
            ok = 0;
        } else {
            ids[j] = t[n_base];
            for (int i = 0; i < j; i++)
                if (ids[i] == ids[j]) {
                    cli_error("eval: the letters %c and %c have the same token %d",
                              LETTERS[i], LETTERS[j], (int)ids[j]);
                    ok = 0;
                }
        }
        free(t);
    }
    free(base);
    return ok;
}

/* Evaluates a prompt after the longest prefix it shares with the cache;
 * returns the tokens computed, or -1 after saying why. */
static int eval_prompt(nt_context *ctx, const int32_t *ids, int n) {
    const int32_t *kv = nt_kv_tokens(ctx);
    int n_past = nt_n_past(ctx), common = 0;
    while (common < n_past && common < n && kv[common] == ids[common])
        common++;
    if (common == n)
        common = n - 1; /* the last token again, for its logits */
    nt_error err;
    if ((common < n_past && nt_kv_truncate(ctx, common, &err) != NT_OK) ||
        nt_eval(ctx, ids + common, n - common, NT_LOGITS_LAST, &err) != NT_OK) {
        cli_error("%s", err.message);
        return -1;
    }
    return n - common;
}

/* ---- the command ------------------------------------------------------------------ */

static int split_subjects(const char *list, char ***out) {
    int n = 0;
    char **names = NULL;
    for (const char *p = list;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == 0) {
            cli_error("--subjects: an empty name in \"%s\"", list);
            goto bad;
        }
        char **g = realloc(names, (size_t)(n + 1) * sizeof *g);
        if (!g || !(g[n] = malloc(len + 1))) {
            if (g)
                names = g;
            cli_error("out of memory");
            goto bad;
        }
        names = g;
        memcpy(names[n], p, len);
        names[n][len] = '\0';
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], names[n]) == 0) {
                cli_error("--subjects: \"%s\" is named twice", names[n]);
                n++;
                goto bad;
            }
        n++;
        if (!c)
            break;
        p = c + 1;
    }
    *out = names;
    return n;
bad:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return -1;
}

static int cmd_eval_mmlu(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo);
    const char *data_dir = NULL, *subjects_arg = NULL, *json_path = NULL;
    long long k = 5, limit = -1;
    int dry_run = 0, bos = 0;
    for (int i = 0; i < argc; i++) {
        int r = cli_parse_model_opt(&mo, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "--data") == 0) {
            if (!(data_dir = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "-k") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 0, 1000, &k))
                return EXIT_USAGE;
        } else if (strcmp(a, "--subjects") == 0) {
            if (!(subjects_arg = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--limit") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(a, v, 1, INT32_MAX, &limit))
                return EXIT_USAGE;
        } else if (strcmp(a, "--json") == 0) {
            if (!(json_path = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry_run = 1;
        } else if (strcmp(a, "--bos") == 0) {
            bos = 1;
        } else {
            return cli_help_or_unknown("eval mmlu", a, eval_usage);
        }
    }
    if (!data_dir) {
        cli_error("eval mmlu: needs --data DIR (MMLU's test/ and dev/ folders)");
        eval_usage(stderr);
        return EXIT_USAGE;
    }
    if (!mo.model_path) {
        cli_error("eval mmlu: needs -m MODEL (for --dry-run too: its tokenizer counts tokens)");
        return EXIT_USAGE;
    }
    if (dry_run && json_path) {
        cli_error("eval mmlu: --dry-run evaluates nothing to write to --json");
        return EXIT_USAGE;
    }

    int status = 1, n_subjects = 0, n_names = 0;
    char **names = NULL;
    subject *subj = NULL;
    char *test_dir = NULL, *dev_dir = NULL;
    nt_tokenizer *tok = NULL;
    nt_model *model = NULL;
    nt_context *ctx = NULL;
    FILE *json = NULL;
    result *results = NULL;
    int n_results = 0;
    nt_buf prompt = {0};
    int32_t *ids = NULL;
    nt_error err;

    /* ---- the data, all checked before the model loads */
    if (!is_dir(data_dir)) {
        cli_error("%s: not a directory (want MMLU's layout: DIR/test/SUBJECT_test.csv, "
                  "DIR/dev/SUBJECT_dev.csv)",
                  data_dir);
        goto done;
    }
    test_dir = path_join(data_dir, "test", "");
    dev_dir = path_join(data_dir, "dev", "");
    if (!test_dir || !dev_dir) {
        cli_error("out of memory");
        goto done;
    }
    if (subjects_arg) {
        if ((n_names = split_subjects(subjects_arg, &names)) < 0) {
            n_names = 0;
            status = EXIT_USAGE;
            goto done;
        }
        if (!is_dir(test_dir)) {
            cli_error("%s: not a directory (MMLU's layout: DIR/test/SUBJECT_test.csv, "
                      "DIR/dev/SUBJECT_dev.csv)",
                      test_dir);
            goto done;
        }
    } else {
        if ((n_names = list_subjects(test_dir, &names)) < 0) {
            n_names = 0;
            goto done;
        }
        if (n_names == 0) {
            cli_error("%s: no SUBJECT_test.csv files", test_dir);
            goto done;
        }
    }
    if (!(subj = calloc((size_t)n_names, sizeof *subj))) {
        cli_error("out of memory");
        goto done;
    }
    int total = 0;
    for (int i = 0; i < n_names; i++) {
        subject *s = &subj[n_subjects++];
        s->name = names[i];
        names[i] = NULL;
        s->test_path = path_join(test_dir, s->name, "_test.csv");
        s->dev_path = path_join(dev_dir, s->name, "_dev.csv");
        if (!s->test_path || !s->dev_path) {
            cli_error("out of memory");
            goto done;
        }
        if (subjects_arg && access(s->test_path, F_OK) != 0) {
            cli_error("--subjects: no subject \"%s\" (no %s)", s->name, s->test_path);
            goto done;
        }
        if (!read_questions(s->test_path, &s->test_csv, (int)limit, &s->tests, &s->n_tests))
            goto done;
        if (k > 0) {
            if (access(s->dev_path, F_OK) != 0) {
                cli_error("%s: missing: subject %s needs its dev file for -k %lld "
                          "(its first %lld rows are the examples; -k 0 needs none)",
                          s->dev_path, s->name, k, k);
                goto done;
            }
            if (!read_questions(s->dev_path, &s->dev_csv, (int)k, &s->devs, &s->n_devs))
                goto done;
            if (s->n_devs < k)
                cli_error("warning: %s has %d row%s: subject %s gets %d example%s, not %lld",
                          s->dev_path, s->n_devs, s->n_devs == 1 ? "" : "s", s->name,
                          s->n_devs, s->n_devs == 1 ? "" : "s", k);
        }
        if (s->n_tests == 0)
            cli_error("warning: %s has no questions", s->test_path);
        s->min_shots = s->n_devs;
        total += s->n_tests;
    }
    if (total == 0) {
        cli_error("eval mmlu: no questions to evaluate");
        goto done;
    }

    /* ---- tokenizer, letters, model */
    unsigned flags = NT_TOKENIZE_NO_SPECIAL | (bos ? NT_TOKENIZE_BOS : 0u);
    int32_t letter_ids[4];
    if (!(tok = nt_tokenizer_load(mo.model_path, &err))) {
        cli_error("%s", err.message);
        goto done;
    }
    if (!letter_tokens(tok, flags & ~NT_TOKENIZE_BOS, letter_ids))
        goto done;
    int n_ctx = mo.n_ctx;
    nt_model_info info;
    memset(&info, 0, sizeof info);
    info.weight_type = "";
    if (!dry_run || !n_ctx) {
        if (!(model = cli_load_model(&mo, NULL)))
            goto done;
        nt_model_get_info(model, &info);
        for (int j = 0; j < 4; j++)
            if (letter_ids[j] >= info.n_vocab) {
                cli_error("eval: the token of %c (%d) is outside the model's vocabulary of %d",
                          LETTERS[j], (int)letter_ids[j], info.n_vocab);
                goto done;
            }
        if (!n_ctx)
            n_ctx = info.n_ctx_train;
    }
    if (!dry_run) {
        if (!(ctx = cli_new_context(model, &mo, n_ctx)))
            goto done;
        n_ctx = nt_n_ctx(ctx);
        if (json_path && !(json = fopen(json_path, "w"))) {
            cli_error("%s: cannot create: %s", json_path, strerror(errno));
            goto done;
        }
        if (!(results = calloc(total ? (size_t)total : 1, sizeof *results))) {
            cli_error("out of memory");
            goto done;
        }
    }

    /* ---- the questions */
    progress pb = {!dry_run && isatty(STDERR_FILENO), total, cli_now(), 0, 0};
    long long prompt_tokens = 0, evaluated = 0;
    int done_q = 0, correct = 0;
    for (int si = 0; si < n_subjects; si++) {
        subject *s = &subj[si];
        for (int qi = 0; qi < s->n_tests; qi++) {
            const question *q = &s->tests[qi];
            int shots = s->n_devs;
            size_t n_ids = 0;
            for (;;) {
                free(ids);
                ids = NULL;
                if (!build_prompt(&prompt, s, shots, q))
                    goto done;
                if (nt_tokenize(tok, prompt.s, prompt.n, flags, &ids, &n_ids, &err) != NT_OK) {
                    cli_error("%s", err.message);
                    goto done;
                }
                if (n_ids <= (size_t)n_ctx)
                    break;
                if (shots == 0) {
                    progress_line(&pb, "nemotron: %s:%d: the question alone is %zu tokens, more "
                                       "than the context's %d (-c)",
                                  s->test_path, q->line, n_ids, n_ctx);
                    goto done;
                }
                shots--; /* as the original: drop the last example until it fits */
            }
            if (shots < s->n_devs) {
                s->n_reduced++;
                if (shots < s->min_shots)
                    s->min_shots = shots;
            }
            prompt_tokens += (long long)n_ids;
            if (dry_run) {
                printf("### %s %d/%d (%s:%d): %d-shot, %zu tokens, answer %c\n%s\n\n",
                       s->name, qi + 1, s->n_tests, s->test_path, q->line, shots, n_ids,
                       LETTERS[q->answer], prompt.s);
                continue;
            }
            int n_eval = eval_prompt(ctx, ids, (int)n_ids);
            if (n_eval < 0)
                goto done;
            evaluated += n_eval;
            const float *logits = nt_logits(ctx, -1);
            result *r = &results[n_results++];
            *r = (result){si, qi, shots, (int)n_ids, 0, {0}};
            for (int j = 0; j < 4; j++) {
                r->logits[j] = logits[letter_ids[j]];
                if (r->logits[j] > r->logits[r->prediction])
                    r->prediction = j; /* ties: the first, as numpy's argmax */
            }
            s->n_done++;
            done_q++;
            if (r->prediction == q->answer) {
                s->n_correct++;
                correct++;
            }
            progress_bar(&pb, done_q, correct, 0);
        }
        if (s->n_reduced)
            progress_line(&pb,
                          "nemotron: warning: %s: %d of %d prompts dropped examples to fit the "
                          "context of %d tokens (down to %d-shot)",
                          s->name, s->n_reduced, s->n_tests, n_ctx, s->min_shots);
        if (!dry_run && s->n_done)
            progress_line(&pb, "mmlu: %-40s %6.2f%% (%d/%d)", s->name,
                          100.0 * s->n_correct / s->n_done, s->n_correct, s->n_done);
        progress_bar(&pb, done_q, correct, 1);
    }
    if (pb.shown)
        fputc('\n', stderr);
    if (dry_run) {
        fflush(stdout);
        fprintf(stderr, "mmlu: %d prompts, %lld tokens, %d-token context\n", total,
                prompt_tokens, n_ctx);
        status = 0;
        goto done;
    }
    double seconds = cli_now() - pb.t0;
    print_table(subj, n_subjects, (int)k);
    fflush(stdout);
    fprintf(stderr,
            "mmlu: %d questions, %d subject%s, %lld-shot, %.1f s (%.2f questions/s); "
            "%lld prompt tokens, %lld evaluated (the rest reused from the cache); "
            "threads: %d, kernels: %s\n",
            done_q, n_subjects, n_subjects == 1 ? "" : "s", k, seconds, seconds > 0 ? done_q / seconds : 0.0,
            prompt_tokens, evaluated, nt_n_threads(ctx), nt_simd_name(nt_context_simd(ctx)));
    if (json) {
        run_info ri = {data_dir, mo.model_path, (int)k, (int)limit, bos, n_ctx,
                       {letter_ids[0], letter_ids[1], letter_ids[2], letter_ids[3]},
                       info.weight_type ? info.weight_type : "", seconds, prompt_tokens,
                       evaluated};
        int ok = write_json(json, &ri, subj, n_subjects, results, n_results);
        if (fclose(json) != 0)
            ok = 0;
        json = NULL;
        if (!ok) {
            cli_error("%s: write failed", json_path);
            remove(json_path);
            goto done;
        }
    }
    status = 0;
done:
    if (json) {
        fclose(json);
        remove(json_path);
    }
    for (int i = 0; i < n_names; i++)
        if (names)
            free(names[i]);
    free(names);
    free_subjects(subj, n_subjects);
    free(test_dir);
    free(dev_dir);
    free(prompt.s);
    free(ids);
    free(results);
    nt_context_free(ctx);
    nt_model_free(model);
    nt_tokenizer_free(tok);
    return status;
}

int cmd_eval(int argc, char **argv) {
    if (argc < 1) {
        cli_error("eval: name a benchmark (mmlu)");
        eval_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[0], "mmlu") == 0)
        return cmd_eval_mmlu(argc - 1, argv + 1);
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        eval_usage(stdout);
        return 0;
    }
    cli_error("eval: unknown benchmark \"%s\" (there is mmlu)", argv[0]);
    return EXIT_USAGE;
}
