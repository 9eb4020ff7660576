/*
 * common.c - see common.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("nemotron: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_model_opts_init(cli_model_opts *o) {
    memset(o, 0, sizeof *o);
    o->use_mmap = 1;
    o->simd = NT_SIMD_AUTO;
    const char *env = getenv("NT_SIMD");
    if (env && *env) {
        int s = nt_simd_parse(env);
        if (s >= 0)
            o->simd = (nt_simd)s;
        else
            cli_error("ignoring NT_SIMD=%s (use auto, generic, avx2, avx512 or avx512vnni)", env);
    }
}

int cli_help_or_unknown(const char *command, const char *arg,
                        void (*usage)(FILE *out)) {
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    cli_error("%s: unknown option \"%s\"", command, arg);
    usage(stderr);
    return EXIT_USAGE;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_int(const char *opt, const char *s, long long lo, long long hi,
                  long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) {
        cli_error("%s: \"%s\" is not an integer in %lld..%lld", opt, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_float(const char *opt, const char *s, double lo, double hi,
                    double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        cli_error("%s: \"%s\" is not a number in %g..%g", opt, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

const char CLI_SAMPLER_USAGE[] =
    "  --temp T               temperature; 0 is greedy\n"
    "  --top-k K              keep the K most likely tokens (0: off)\n"
    "  --top-p P              keep the most likely tokens up to mass P (1: off)\n"
    "  --min-p P              keep tokens at least P times the top one's probability\n"
    "  --repeat-penalty R     divide the logits of repeated tokens by R (1: off)\n"
    "  --repeat-last-n N      tokens the repeat penalty looks back over (0: all)\n"
    "  --frequency-penalty F  subtract F per earlier use in the reply\n"
    "  --presence-penalty P   subtract P from tokens used in the reply\n"
    "  --logit-bias ID=BIAS   add BIAS to token ID's logit (repeatable)\n"
    "  --seed S               sampling seed\n";

void cli_sampler_opts_init(cli_sampler_opts *o, float temperature, float top_p) {
    memset(o, 0, sizeof *o);
    o->params = nt_sampler_default_params();
    o->params.temperature = temperature;
    o->params.top_p = top_p;
    o->params.logit_bias = o->bias;
}

static int parse_logit_bias(cli_sampler_opts *o, const char *opt, const char *v) {
    const char *eq = strchr(v, '=');
    char id_text[32];
    long long id;
    double bias;
    if (!eq || eq == v || (size_t)(eq - v) >= sizeof id_text) {
        cli_error("%s: \"%s\" is not ID=BIAS", opt, v);
        return 0;
    }
    memcpy(id_text, v, (size_t)(eq - v));
    id_text[eq - v] = 0;
    if (!cli_parse_int(opt, id_text, 0, INT32_MAX, &id) ||
        !cli_parse_float(opt, eq + 1, -100, 100, &bias))
        return 0;
    if (o->params.n_logit_bias == CLI_MAX_LOGIT_BIAS) {
        cli_error("%s: at most %d biases", opt, CLI_MAX_LOGIT_BIAS);
        return 0;
    }
    o->bias[o->params.n_logit_bias++] = (nt_logit_bias){(int32_t)id, (float)bias};
    return 1;
}

int cli_parse_sampler_opt(cli_sampler_opts *o, int argc, char **argv, int *i) {
    static const struct {
        const char *name;
        double lo, hi;
        size_t offset;
    } floats[] = {
        {"--temp", 0, 100, offsetof(nt_sampler_params, temperature)},
        {"--top-p", 1e-9, 1, offsetof(nt_sampler_params, top_p)},
        {"--min-p", 0, 1, offsetof(nt_sampler_params, min_p)},
        {"--repeat-penalty", 1e-3, 100, offsetof(nt_sampler_params, repetition_penalty)},
        {"--frequency-penalty", -100, 100, offsetof(nt_sampler_params, frequency_penalty)},
        {"--presence-penalty", -100, 100, offsetof(nt_sampler_params, presence_penalty)},
    };
    const char *a = argv[*i], *v;
    long long n;
    double d;
    for (size_t k = 0; k < sizeof floats / sizeof floats[0]; k++) {
        if (strcmp(a, floats[k].name) != 0)
            continue;
        if (!(v = cli_value(argc, argv, i)) ||
            !cli_parse_float(a, v, floats[k].lo, floats[k].hi, &d))
            return -1;
        *(float *)((char *)&o->params + floats[k].offset) = (float)d;
        return 1;
    }
    if (strcmp(a, "--top-k") == 0 || strcmp(a, "--repeat-last-n") == 0) {
        if (!(v = cli_value(argc, argv, i)) || !cli_parse_int(a, v, 0, 1 << 24, &n))
            return -1;
        *(a[2] == 't' ? &o->params.top_k : &o->params.penalty_last_n) = (int)n;
    } else if (strcmp(a, "--seed") == 0) {
        if (!(v = cli_value(argc, argv, i)) || !cli_parse_int(a, v, 0, INT64_MAX, &n))
            return -1;
        o->params.seed = (uint64_t)n;
        o->seed_given = 1;
    } else if (strcmp(a, "--logit-bias") == 0) {
        if (!(v = cli_value(argc, argv, i)) || !parse_logit_bias(o, a, v))
            return -1;
    } else {
        return 0;
    }
    return 1;
}

int cli_parse_model_opt(cli_model_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    long long n;
    if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        o->model_path = v;
    } else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
        if (!(v = cli_value(argc, argv, i)) || !cli_parse_int(a, v, 1, 1024, &n))
            return -1;
        o->n_threads = (int)n;
    } else if (strcmp(a, "-c") == 0 || strcmp(a, "--ctx-size") == 0) {
        if (!(v = cli_value(argc, argv, i)) || !cli_parse_int(a, v, 1, 1 << 24, &n))
            return -1;
        o->n_ctx = (int)n;
    } else if (strcmp(a, "-b") == 0 || strcmp(a, "--batch-size") == 0) {
        if (!(v = cli_value(argc, argv, i)) || !cli_parse_int(a, v, 1, 65536, &n))
            return -1;
        o->n_batch = (int)n;
    } else if (strcmp(a, "--no-mmap") == 0) {
        o->use_mmap = 0;
    } else if (strcmp(a, "--mmap") == 0) {
        o->use_mmap = 1;
    } else if (strcmp(a, "--simd") == 0) {
        if (!(v = cli_value(argc, argv, i)))
            return -1;
        int s = nt_simd_parse(v);
        if (s < 0) {
            cli_error("--simd: \"%s\" is not auto, generic, avx2, avx512 or avx512vnni", v);
            return -1;
        }
        o->simd = (nt_simd)s;
    } else {
        return 0;
    }
    return 1;
}

int cli_parse_ids(const char *s, int32_t **ids) {
    int n = 0, cap = 16;
    int32_t *out = malloc((size_t)cap * sizeof *out);
    if (!out) {
        cli_error("out of memory");
        return -1;
    }
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '[' ||
               *p == ']')
            p++;
        if (*p == '\0')
            break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            cli_error("--ids: \"%.20s\" is not a token id", p);
            free(out);
            return -1;
        }
        if (n == cap) {
            int32_t *grown = realloc(out, (size_t)(cap *= 2) * sizeof *out);
            if (!grown) {
                free(out);
                cli_error("out of memory");
                return -1;
            }
            out = grown;
        }
        out[n++] = (int32_t)v;
        p = end;
    }
    if (n == 0) {
        cli_error("--ids: no token ids given");
        free(out);
        return -1;
    }
    *ids = out;
    return n;
}

void cli_progress_bar_init(cli_progress_bar *bar) {
    bar->last_percent = -1;
    bar->is_tty = isatty(STDERR_FILENO);
}

void cli_progress(const char *stage, double fraction, void *user) {
    cli_progress_bar *ps = user;
    if (!ps->is_tty)
        return;
    int percent = (int)floor(fraction * 100.0);
    if (percent == ps->last_percent)
        return;
    ps->last_percent = percent;
    int width = 40, filled = (int)(fraction * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%%", stage, bar, percent);
    if (fraction >= 1.0)
        fputc('\n', stderr);
    fflush(stderr);
}

nt_model *cli_load_model(const cli_model_opts *o, double *seconds) {
    if (!o->model_path) {
        cli_error("no model given (-m MODEL_DIR)");
        return NULL;
    }
    cli_progress_bar ps;
    cli_progress_bar_init(&ps);
    nt_model_params mp = nt_model_default_params();
    mp.use_mmap = o->use_mmap;
    mp.progress = cli_progress;
    mp.progress_user = &ps;
    double t0 = cli_now();
    nt_error err;
    nt_model *model = nt_model_load(o->model_path, &mp, &err);
    double t1 = cli_now();
    if (!model) {
        if (ps.is_tty && ps.last_percent >= 0)
            fputc('\n', stderr);
        cli_error("%s", err.message);
        return NULL;
    }
    if (seconds)
        *seconds = t1 - t0;
    return model;
}

nt_context *cli_new_context(nt_model *model, const cli_model_opts *o,
                            int want_ctx) {
    nt_model_info info;
    nt_model_get_info(model, &info);
    nt_context_params cp = nt_context_default_params();
    cp.n_ctx = o->n_ctx ? o->n_ctx
               : want_ctx > 0 && want_ctx < info.n_ctx_train ? want_ctx
                                                             : info.n_ctx_train;
    cp.n_batch = o->n_batch;
    cp.n_threads = o->n_threads;
    cp.simd = o->simd;
    nt_error err;
    nt_context *ctx = nt_context_new(model, &cp, &err);
    if (!ctx)
        cli_error("%s", err.message);
    return ctx;
}

void cli_print_json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

double cli_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

uint64_t cli_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;
}

char *cli_read_stdin(size_t *len) {
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                buf = NULL;
            } else {
                buf = p;
            }
        }
    }
    if (!buf || ferror(stdin)) {
        cli_error("cannot read standard input");
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
