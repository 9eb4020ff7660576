/*
 * cmd_template.c - `nemotron template`: the exact prompt for a conversation.
 *
 * Reads {"messages": [...], "tools": [...], "contexts": [...]} (OpenAI
 * message and tool shapes) on stdin and prints the prompt text the model
 * sees, with the assistant's turn opened, and nothing after it.
 * Verification tools outside the tests rely on this: keep it stable.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "common.h"

static void template_usage(FILE *out) {
    fprintf(out,
            "usage: nemotron template -m MODEL_DIR|MODEL_FILE [--no-generation-prompt] "
            "< conversation.json\n"
            "  prints the prompt for {\"messages\": [...], \"tools\": [...], "
            "\"contexts\": [...]}\n"
            "  --no-generation-prompt  do not open the assistant's turn at the end\n");
}

int cmd_template(int argc, char **argv) {
    const char *path = NULL;
    unsigned flags = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
            if (!(path = cli_value(argc, argv, &i)))
                return EXIT_USAGE;
        } else if (strcmp(a, "--no-generation-prompt") == 0) {
            flags |= NT_CHAT_NO_GENERATION_PROMPT;
        } else {
            return cli_help_or_unknown("template", a, template_usage);
        }
    }
    /* Every model this program runs uses Nemotron-Mini's format, built in;
     * the model is named so that the command stays the same when a file
     * brings a format of its own. */
    struct stat st;
    if (!path) {
        cli_error("no model given (-m MODEL_DIR)");
        return EXIT_USAGE;
    }
    if (stat(path, &st) != 0) {
        cli_error("%s: no such file or folder", path);
        return 1;
    }
    size_t len;
    char *text = cli_read_stdin(&len);
    if (!text)
        return 1;
    char *prompt = NULL;
    size_t prompt_len = 0;
    nt_error err;
    int status = 0;
    if (nt_chat_render(text, len, flags, &prompt, &prompt_len, &err) != NT_OK) {
        cli_error("%s", err.message);
        status = 1;
    } else {
        fwrite(prompt, 1, prompt_len, stdout);
    }
    free(prompt);
    free(text);
    return status;
}
