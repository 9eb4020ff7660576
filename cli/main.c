/*
 * main.c - `nemotron COMMAND [OPTIONS]`.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "common.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"run", cmd_run, "generate from a text prompt or token ids, streaming"},
    {"logits", cmd_logits, "write the logits of every position as float32"},
    {"perplexity", cmd_perplexity, "perplexity of a text, and KL divergence to another model"},
    {"bench", cmd_bench, "measure prefill and decode speed"},
    {"synth", cmd_synth, "write a random-weight checkpoint of the real shape"},
    {"tokenize", cmd_tokenize, "text on stdin to token ids (a JSON array)"},
    {"detokenize", cmd_detokenize, "a JSON array of ids on stdin to text"},
    {"template", cmd_template, "the exact prompt for a conversation (JSON on stdin)"},
    {"chat", cmd_chat, "an interactive conversation (tools, passages, /save, /load)"},
    {"quantize", cmd_quantize, "write a model as GGUF in a 4- to 8-bit type (AWQ too)"},
    {"convert", cmd_convert, "write an HF checkpoint as GGUF (f16, bf16, f32)"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server (continuous batching)"},
    {"eval", cmd_eval, "benchmark accuracy: MMLU, k-shot (eval mmlu --data DIR)"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: nemotron COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`nemotron COMMAND --help` describes a command's options.\n"
                 "nemotron %s, kernels: %s\n",
            NT_VERSION_STRING, nt_simd_name(nt_simd_best()));
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("nemotron %s\n", NT_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 2, argv + 2);
    cli_error("unknown command \"%s\"", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
