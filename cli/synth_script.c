/*
 * synth_script.c - spelling a script with distinct tokens, and the bigram
 * weights that replay it (see synth_script.h).
 *
 * Segmentation works on the text the tokens decode to, not on pieces: a
 * candidate at byte `pos` is a token whose decoded text, placed there in a
 * reply, is exactly the next bytes of the script. Candidates come from the
 * tokenizer's own vocabulary (the piece spelled with "▁" for spaces, and the
 * byte pieces <0xNN>), and each is checked by decoding it, so the decoder's
 * rules (SentencePiece's and HF's differ around a leading space) are
 * followed rather than re-implemented. A depth-first search then picks one
 * candidate per step, longest first, never a token twice. What can follow
 * byte `pos` depends only on which of the tokens still usable from there on
 * are taken, so each (pos, that set) found to lead nowhere is remembered
 * and never searched again: an impossible script is proven impossible
 * quickly, not by trying every spelling.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "synth_script.h"

/* Candidate tries before the search gives up: a bound on time and memory
 * (about a second, 50 MB for the dead states) that the scripts this is for
 * stay far below (a few hundred tries). */
#define MAX_SEARCH_STEPS 1000000L
#define MAX_SCRIPT_BYTES 65536

static const char SPACE_PIECE[] = "\xE2\x96\x81"; /* "▁", SentencePiece's space */

typedef struct cand {
    int32_t id;
    int len; /* bytes of the script it spells */
} cand;

typedef struct search {
    const nt_tokenizer *tok;
    const char *text;
    size_t len;
    cand **at;             /* [len]: the candidates at each byte, longest first */
    int *n_at;
    unsigned char *banned; /* [n_tok]: never in the script */
    int32_t banned_match;  /* a banned token that spells the text here, or -1 */
    unsigned char *used;   /* [n_tok]: on the current path */
    int32_t *path;
    int depth, max_depth;
    long steps;
    int32_t *last_pos;     /* [n_tok]: the last byte a token is a candidate at, or -1 */
    long depth_hits;       /* paths cut by max_depth (their failure is not memoized) */
    uint64_t *dead;        /* open-addressed set of dead states, 2 words each */
    size_t n_dead, dead_cap;
    size_t best_pos;       /* furthest byte any path reached */
    int32_t ctx_id;        /* a plain token to decode candidates after */
    const char *ctx_text;
    size_t ctx_len;
    char *scratch;         /* ctx_text + a piece of the script */
} search;

int synth_script_decodes_to(const nt_tokenizer *tok, const int32_t *ids, size_t n,
                            const char *want, size_t want_len) {
    for (int skip = 0; skip < 2; skip++) {
        size_t len = 0;
        nt_error err;
        char *s = nt_detokenize(tok, ids, n, skip ? NT_DETOKENIZE_SKIP_SPECIAL : 0, &len, &err);
        int same = s && len == want_len && memcmp(s, want, len) == 0;
        free(s);
        if (!same)
            return 0;
    }
    return 1;
}

/*
 * Whether token id, at byte pos of a reply, shows text[pos, pos + n). The
 * first token of a reply is decoded alone, as the reply's decoder sees it
 * (a leading space may be dropped there); any other after a plain token,
 * so that it is decoded as in the middle of a text.
 */
static int spells(search *s, size_t pos, int32_t id, size_t n) {
    if (pos == 0)
        return synth_script_decodes_to(s->tok, &id, 1, s->text, n);
    int32_t pair[2] = {s->ctx_id, id};
    memcpy(s->scratch + s->ctx_len, s->text + pos, n);
    return synth_script_decodes_to(s->tok, pair, 2, s->scratch, s->ctx_len + n);
}

/* The candidates at byte pos: whole pieces of every length, then the byte
 * piece of the byte there. Returns 0 when out of memory. */
static int find_candidates(search *s, size_t pos, size_t max_piece, char *piece) {
    size_t room = s->len - pos < max_piece ? s->len - pos : max_piece;
    cand *c = malloc((room + 1) * sizeof *c);
    if (!c)
        return 0;
    int n = 0;
    for (size_t len = room; len >= 1; len--) {
        /* the piece as the vocabulary stores it: spaces are "▁" */
        size_t plen = 0;
        for (size_t i = 0; i < len; i++) {
            if (s->text[pos + i] == ' ') {
                memcpy(piece + plen, SPACE_PIECE, 3);
                plen += 3;
            } else {
                piece[plen++] = s->text[pos + i];
            }
        }
        if (plen > max_piece)
            continue;
        int32_t id = nt_tokenizer_find(s->tok, piece, plen);
        if (id >= 0 && s->banned[id])
            s->banned_match = id;
        else if (id >= 0 && spells(s, pos, id, len))
            c[n++] = (cand){id, (int)len};
    }
    unsigned char b = (unsigned char)s->text[pos];
    char byte_piece[8];
    int32_t id = nt_tokenizer_find(s->tok, byte_piece,
                                   (size_t)snprintf(byte_piece, sizeof byte_piece, "<0x%02X>", b));
    /* A byte of a multi-byte character decodes to U+FFFD on its own, so it
     * cannot be checked alone; the check of the whole script covers it. */
    if (id >= 0 && s->banned[id])
        s->banned_match = id;
    else if (id >= 0 && (b >= 0x80 || spells(s, pos, id, 1)))
        c[n++] = (cand){id, 1};
    s->at[pos] = c;
    s->n_at[pos] = n;
    return 1;
}

/* A strong 64-bit mix of x (splitmix64's finalizer). */
static uint64_t mix64(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/*
 * The state at byte pos: pos and the set of tokens on the path that could
 * still be used from pos on, as two independent 64-bit hashes (sums of
 * per-token hashes, so the order they were taken in does not matter; a
 * false match is a 2^-128 event).
 */
static void state_key(const search *s, size_t pos, uint64_t key[2]) {
    key[0] = mix64(pos + 1);
    key[1] = mix64((pos + 1) ^ 0x5bd1e9955bd1e995ull) | 1; /* never 0: 0 is empty */
    for (int i = 0; i < s->depth; i++)
        if (s->last_pos[s->path[i]] >= (int32_t)pos) {
            key[0] += mix64((uint64_t)s->path[i] * 2 + 1);
            key[1] += mix64((uint64_t)s->path[i] * 2 + 0x100000000ull) & ~1ull;
        }
}

/* Whether key is in the dead set; adds it if `add`. Returns -1 when out of
 * memory. */
static int dead_state(search *s, const uint64_t key[2], int add) {
    if (add && 2 * (s->n_dead + 1) > s->dead_cap) {
        size_t cap = s->dead_cap ? 2 * s->dead_cap : 4096;
        uint64_t *t = calloc(cap * 2, sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < s->dead_cap; i++) {
            if (!s->dead[2 * i + 1])
                continue;
            size_t j = s->dead[2 * i] & (cap - 1);
            while (t[2 * j + 1])
                j = (j + 1) & (cap - 1);
            t[2 * j] = s->dead[2 * i];
            t[2 * j + 1] = s->dead[2 * i + 1];
        }
        free(s->dead);
        s->dead = t;
        s->dead_cap = cap;
    }
    if (!s->dead_cap)
        return 0;
    size_t j = key[0] & (s->dead_cap - 1);
    for (; s->dead[2 * j + 1]; j = (j + 1) & (s->dead_cap - 1))
        if (s->dead[2 * j] == key[0] && s->dead[2 * j + 1] == key[1])
            return 1;
    if (add) {
        s->dead[2 * j] = key[0];
        s->dead[2 * j + 1] = key[1];
        s->n_dead++;
    }
    return 0;
}

/* 1: the path spells the rest of the script; 0: no way from here; -1: out
 * of steps or memory. */
static int dfs(search *s, size_t pos) {
    if (pos > s->best_pos)
        s->best_pos = pos;
    if (pos == s->len)
        return 1;
    if (s->depth == s->max_depth) {
        s->depth_hits++;
        return 0;
    }
    uint64_t key[2];
    state_key(s, pos, key);
    if (dead_state(s, key, 0))
        return 0;
    long hits = s->depth_hits;
    for (int k = 0; k < s->n_at[pos]; k++) {
        const cand *c = &s->at[pos][k];
        if (s->used[c->id])
            continue;
        if (++s->steps > MAX_SEARCH_STEPS)
            return -1;
        s->used[c->id] = 1;
        s->path[s->depth++] = c->id;
        int r = dfs(s, pos + (size_t)c->len);
        if (r != 0)
            return r;
        s->used[c->id] = 0;
        s->depth--;
    }
    /* A failure that a shorter path might not meet is not final. */
    if (s->depth_hits == hits && dead_state(s, key, 1) < 0)
        return -1;
    return 0;
}

/* A byte for a message: the character, or \xNN. */
static const char *show_byte(unsigned char b, char buf[8]) {
    if (b >= 0x20 && b < 0x7f)
        snprintf(buf, 8, "'%c'", b);
    else
        snprintf(buf, 8, "\\x%02X", b);
    return buf;
}

/*
 * Each token may spell at most once, so a byte the script holds k times
 * needs k occurrences of it among the distinct tokens that can spell some
 * part of the script. Counting them names the usual reason a script is
 * impossible (JSON's many quotes) at once, instead of after a search.
 */
static int check_supply(search *s, int n_tok) {
    size_t demand[256] = {0}, supply[256] = {0};
    for (size_t i = 0; i < s->len; i++)
        demand[(unsigned char)s->text[i]]++;
    unsigned char *seen = calloc((size_t)n_tok, 1);
    if (!seen) {
        cli_error("out of memory");
        return 0;
    }
    for (size_t pos = 0; pos < s->len; pos++)
        for (int k = 0; k < s->n_at[pos]; k++) {
            const cand *c = &s->at[pos][k];
            if (seen[c->id])
                continue;
            seen[c->id] = 1;
            for (int i = 0; i < c->len; i++)
                supply[(unsigned char)s->text[pos + (size_t)i]]++;
        }
    int ok = 1;
    for (int b = 0; b < 256; b++) {
        if (demand[b] <= supply[b])
            continue;
        ok = 0;
        /* name the tokens that can spell the byte */
        char list[1024] = "", one[8];
        size_t used = 0;
        memset(seen, 0, (size_t)n_tok);
        for (size_t pos = 0; pos < s->len; pos++)
            for (int k = 0; k < s->n_at[pos]; k++) {
                const cand *c = &s->at[pos][k];
                if (seen[c->id] || !memchr(s->text + pos, b, (size_t)c->len))
                    continue;
                seen[c->id] = 1;
                size_t plen = 0;
                const char *p = nt_tokenizer_piece(s->tok, c->id, &plen);
                if (used + plen + 4 < sizeof list)
                    used += (size_t)snprintf(list + used, sizeof list - used, "%s%.*s",
                                             used ? " " : "", (int)plen, p);
            }
        cli_error("synth: the script holds %zu %s, but the different tokens that can "
                  "spell them there hold only %zu (%s), and a bigram model can use each "
                  "token once: use fewer of them",
                  demand[b], show_byte((unsigned char)b, one), supply[b],
                  used ? list : "none");
    }
    free(seen);
    return ok;
}

/* The token a chat prompt ends with ("<extra_id_1>Assistant\n" opens the
 * reply): if the script used it, the reply would start in the middle. */
static int32_t prompt_end_token(const nt_tokenizer *tok) {
    static const char conv[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}";
    char *prompt = NULL;
    size_t plen = 0, n = 0;
    int32_t *ids = NULL, last = -1;
    nt_error err;
    if (nt_chat_render(conv, sizeof conv - 1, 0, &prompt, &plen, &err) == NT_OK &&
        nt_tokenize(tok, prompt, plen, 0, &ids, &n, &err) == NT_OK && n > 0)
        last = ids[n - 1];
    free(prompt);
    free(ids);
    return last;
}

/* A token whose text is "a" everywhere, to decode candidates after. */
static int find_context_token(search *s) {
    static const char *const tries[] = {"a", "<0x61>"};
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        int32_t id = nt_tokenizer_find(s->tok, tries[i], strlen(tries[i]));
        if (id >= 0 && synth_script_decodes_to(s->tok, &id, 1, "a", 1)) {
            s->ctx_id = id;
            s->ctx_text = "a";
            s->ctx_len = 1;
            return 1;
        }
    }
    cli_error("synth: the tokenizer has no token for \"a\" to check pieces with");
    return 0;
}

static int plan_weights(synth_script *out, int n_vocab, int hidden, double norm_eps,
                        int32_t eos_id) {
    int n = out->n_ids;
    out->embed_slot = malloc((size_t)n_vocab * sizeof *out->embed_slot);
    out->head_slot = malloc((size_t)n_vocab * sizeof *out->head_slot);
    int *count = calloc((size_t)n + 1, sizeof *count);
    if (!out->embed_slot || !out->head_slot || !count) {
        free(count);
        cli_error("out of memory");
        return 0;
    }
    for (int t = 0; t < n_vocab; t++) {
        out->embed_slot[t] = 0;
        out->head_slot[t] = -1;
    }
    /* script token k (from 0) sits at slot k + 1 and follows the token at
     * slot k; eos follows the last */
    for (int k = 0; k < n; k++) {
        out->embed_slot[out->ids[k]] = k + 1;
        out->head_slot[out->ids[k]] = k;
    }
    out->head_slot[eos_id] = n;

    /*
     * LayerNorm1P (w = 0, b = 0) of a one-hot vector of value e in `hidden`
     * dimensions: mean e/H, variance e^2 (1/H - 1/H^2), so the hot slot
     * becomes `hot` (about sqrt(H - 1)) and every other `cold` (about
     * -1/sqrt(H - 1)), whatever e is. With e = 1 and lm_head values of a
     * power of two, every weight is exact in bf16 and f16.
     */
    double H = hidden, mean = 1.0 / H, inv = 1.0 / sqrt(1.0 / H - mean * mean + norm_eps);
    double hot = (1.0 - mean) * inv, cold = -mean * inv;
    /*
     * At each step the scripted token's logit is head*hot; a token whose
     * row is hot elsewhere gets head*cold < 0, one with a zero row 0. A lead
     * of 20 + ln(n_vocab) keeps all other tokens together below e^-20 of
     * the probability at temperature 1.
     */
    double want = 20.0 + log((double)n_vocab);
    float head = 1.0f;
    while (head * hot < want && head < 32768.0f)
        head *= 2.0f;
    out->embed_value = 1.0f;
    out->head_value = head;

    /* No ties: each slot is hot in exactly one lm_head row. */
    int zero_rows = 0, ok = 1;
    for (int t = 0; t < n_vocab; t++) {
        if (out->head_slot[t] < 0)
            zero_rows++;
        else
            count[out->head_slot[t]]++;
    }
    for (int s = 0; s <= n && ok; s++)
        ok = count[s] == 1;
    free(count);
    if (!ok) {
        cli_error("synth: internal error: a slot is not hot in exactly one lm_head row");
        return 0;
    }
    /* n >= 1, so some rows are hot elsewhere (head*cold); zero rows give 0 */
    double rival = zero_rows ? fmax(0.0, head * cold) : head * cold;
    out->margin = head * hot - rival;
    if (out->margin < 20.0) {
        cli_error("synth: the scripted token leads by only %.1f (want 20): hidden size %d "
                  "is too small", out->margin, hidden);
        return 0;
    }
    return 1;
}

int synth_script_plan(const nt_tokenizer *tok, const char *text, size_t len,
                      int n_vocab, int hidden, double norm_eps, int32_t eos_id,
                      synth_script *out) {
    memset(out, 0, sizeof *out);
    out->n_vocab = n_vocab;
    out->hidden = hidden;
    int n_tok = nt_tokenizer_n_vocab(tok);
    if (len == 0) {
        cli_error("synth: the script is empty");
        return 0;
    }
    if (len > MAX_SCRIPT_BYTES) {
        cli_error("synth: the script is longer than %d bytes", MAX_SCRIPT_BYTES);
        return 0;
    }
    if (n_tok > n_vocab || eos_id < 0 || eos_id >= n_vocab) {
        cli_error("synth: the tokenizer has %d tokens and eos %d, the model %d tokens",
                  n_tok, (int)eos_id, n_vocab);
        return 0;
    }
    size_t max_piece = 0;
    for (int32_t id = 0; id < n_tok; id++) {
        size_t plen = 0;
        if (nt_tokenizer_piece(tok, id, &plen) && plen > max_piece)
            max_piece = plen;
    }

    search s = {.tok = tok, .text = text, .len = len};
    s.at = calloc(len, sizeof *s.at);
    s.n_at = calloc(len, sizeof *s.n_at);
    s.banned = calloc((size_t)n_tok, 1);
    s.used = calloc((size_t)n_tok, 1);
    /* slots 1..hidden-1 hold the script's tokens */
    s.max_depth = hidden - 1;
    s.path = malloc((size_t)s.max_depth * sizeof *s.path);
    s.scratch = malloc(len + 8);
    char *piece = malloc(3 * max_piece + 4); /* a space grows to 3 bytes */
    int ok = 0;
    if (!s.at || !s.n_at || !s.banned || !s.used || !s.path || !s.scratch || !piece) {
        cli_error("out of memory");
        goto done;
    }
    if (!find_context_token(&s))
        goto done;
    memcpy(s.scratch, s.ctx_text, s.ctx_len);
    int32_t prompt_end = prompt_end_token(tok);
    int32_t never[] = {eos_id, nt_tokenizer_eos(tok), nt_tokenizer_bos(tok), prompt_end};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (never[i] >= 0 && never[i] < n_tok)
            s.banned[never[i]] = 1;

    for (size_t pos = 0; pos < len; pos++) {
        s.banned_match = -1;
        if (!find_candidates(&s, pos, max_piece, piece)) {
            cli_error("out of memory");
            goto done;
        }
        if (s.n_at[pos] == 0) {
            char b[8], why[256] = "";
            size_t plen = 0;
            const char *p = nt_tokenizer_piece(tok, s.banned_match, &plen);
            if (pos == 0 && text[0] == ' ')
                snprintf(why, sizeof why, ": the decoder drops a reply's leading space");
            else if (s.banned_match >= 0 && s.banned_match == prompt_end)
                snprintf(why, sizeof why, ": only %.*s, which ends every chat prompt "
                         "(\"<extra_id_1>Assistant\\n\"), and so cannot be in the script",
                         (int)plen, p);
            else if (s.banned_match >= 0)
                snprintf(why, sizeof why, ": only %.*s, which is bos or eos", (int)plen, p);
            cli_error("synth: no token spells the script's byte %zu (%s) there%s", pos,
                      show_byte((unsigned char)text[pos], b), why);
            goto done;
        }
    }
    if (!check_supply(&s, n_tok))
        goto done;
    if (!(s.last_pos = malloc((size_t)n_tok * sizeof *s.last_pos))) {
        cli_error("out of memory");
        goto done;
    }
    for (int32_t id = 0; id < n_tok; id++)
        s.last_pos[id] = -1;
    for (size_t pos = 0; pos < len; pos++)
        for (int k = 0; k < s.n_at[pos]; k++)
            s.last_pos[s.at[pos][k].id] = (int32_t)pos;
    int r = dfs(&s, 0);
    if (r <= 0) {
        if (r < 0)
            cli_error("synth: found no way to spell the script with distinct tokens in "
                      "%ld tries (gave up); the furthest got to byte %zu: \"%.*s\"",
                      s.steps, s.best_pos, (int)s.best_pos, text);
        else if (s.depth_hits > 0)
            cli_error("synth: found no way to spell the script with distinct tokens in "
                      "at most %d tokens (hidden size %d)", s.max_depth, hidden);
        else
            cli_error("synth: the script cannot be spelled with distinct tokens: every "
                      "spelling runs out of unused ones by byte %zu of %zu, after \"%.*s\"",
                      s.best_pos, len, (int)s.best_pos, text);
        goto done;
    }
    /* the pieces were checked one by one; check the reply as a whole */
    if (!synth_script_decodes_to(tok, s.path, (size_t)s.depth, text, len)) {
        cli_error("synth: the chosen tokens do not decode to the script");
        goto done;
    }
    out->n_ids = s.depth;
    out->ids = malloc((size_t)s.depth * sizeof *out->ids);
    if (!out->ids) {
        cli_error("out of memory");
        goto done;
    }
    memcpy(out->ids, s.path, (size_t)s.depth * sizeof *out->ids);
    ok = plan_weights(out, n_vocab, hidden, norm_eps, eos_id);
done:
    for (size_t pos = 0; s.at && pos < len; pos++)
        free(s.at[pos]);
    free(s.at);
    free(s.n_at);
    free(s.banned);
    free(s.used);
    free(s.path);
    free(s.scratch);
    free(s.last_pos);
    free(s.dead);
    free(piece);
    if (!ok)
        synth_script_free(out);
    return ok;
}

void synth_script_fill(const synth_script *s, int is_head, uint64_t first,
                       uint64_t n, float *values) {
    const int32_t *slot = is_head ? s->head_slot : s->embed_slot;
    float v = is_head ? s->head_value : s->embed_value;
    uint64_t H = (uint64_t)s->hidden;
    for (uint64_t row = first / H; row < (uint64_t)s->n_vocab && row * H < first + n; row++) {
        if (slot[row] < 0)
            continue;
        uint64_t at = row * H + (uint64_t)slot[row];
        if (at >= first && at < first + n)
            values[at - first] = v;
    }
}

void synth_script_free(synth_script *s) {
    free(s->ids);
    free(s->embed_slot);
    free(s->head_slot);
    memset(s, 0, sizeof *s);
}
