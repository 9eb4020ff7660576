/*
 * common.h - what the nemotron subcommands share: option parsing, model
 * loading with a progress bar, token id lists.
 */
#ifndef NT_CLI_COMMON_H
#define NT_CLI_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "nemotron.h"

/* Exit codes: 0 fine, 1 the work failed, 2 the command line is wrong. */
#define EXIT_USAGE 2

/* Options most commands take. */
typedef struct cli_model_opts {
    const char *model_path;
    int n_threads;
    int n_ctx;
    int n_batch;
    int use_mmap;
    nt_simd simd;
} cli_model_opts;

void cli_model_opts_init(cli_model_opts *o);

/*
 * If argv[*i] is one of the shared options (-m, -t, -c, -b, --no-mmap,
 * --simd), consumes it (and its value) and returns 1; returns -1 after
 * printing an error for a bad value, 0 if the option is not one of them.
 */
int cli_parse_model_opt(cli_model_opts *o, int argc, char **argv, int *i);

/*
 * For an option no parser took: prints the usage for -h/--help (returns 0)
 * or an "unknown option" error and the usage on stderr (returns
 * EXIT_USAGE). The caller returns what this returns.
 */
int cli_help_or_unknown(const char *command, const char *arg,
                        void (*usage)(FILE *out));

/* Fetches the value of option argv[*i]; prints an error and returns NULL
 * if there is none. */
const char *cli_value(int argc, char **argv, int *i);

/* Strict number parsing: the whole string, within [lo, hi]. */
int cli_parse_int(const char *opt, const char *s, long long lo, long long hi,
                  long long *out);
int cli_parse_float(const char *opt, const char *s, double lo, double hi,
                    double *out);

/*
 * Sampling options (--temp, --top-k, --top-p, --min-p, --repeat-penalty,
 * --repeat-last-n, --frequency-penalty, --presence-penalty, --seed,
 * --logit-bias ID=BIAS, repeatable), parsed like cli_parse_model_opt. The
 * logit biases live in `o` (at most CLI_MAX_LOGIT_BIAS).
 */
#define CLI_MAX_LOGIT_BIAS 64
typedef struct cli_sampler_opts {
    nt_sampler_params params;
    nt_logit_bias bias[CLI_MAX_LOGIT_BIAS];
    int seed_given;
} cli_sampler_opts;

void cli_sampler_opts_init(cli_sampler_opts *o, float temperature, float top_p);
int cli_parse_sampler_opt(cli_sampler_opts *o, int argc, char **argv, int *i);
/* The usage lines for those options. */
extern const char CLI_SAMPLER_USAGE[];

/* "2 4 100 7" or "2,4,100,7" -> ids; returns count, -1 after an error. */
int cli_parse_ids(const char *s, int32_t **ids);

/* Loads the model with a progress bar on a terminal; reports the time. */
nt_model *cli_load_model(const cli_model_opts *o, double *seconds);

/* A context for the options, with n_ctx defaulting to `want_ctx`. */
nt_context *cli_new_context(nt_model *model, const cli_model_opts *o,
                            int want_ctx);

/* A progress bar on stderr when it is a terminal; silent otherwise.
 * cli_progress is an nt_progress_fn whose user pointer is a
 * cli_progress_bar. */
typedef struct cli_progress_bar {
    int last_percent;
    int is_tty;
} cli_progress_bar;

void cli_progress_bar_init(cli_progress_bar *bar);
void cli_progress(const char *stage, double fraction, void *user);

/* Writes s as a JSON string literal, quotes and escapes included. */
void cli_print_json_string(FILE *out, const char *s);

/* All of standard input (*len bytes); NULL after saying why. */
char *cli_read_stdin(size_t *len);

/* Monotonic clock, seconds. */
double cli_now(void);

/* Peak resident memory of this process, in bytes. */
uint64_t cli_peak_rss_bytes(void);

void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
