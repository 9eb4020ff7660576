/*
 * test_kv_pool.c - the KV cache's block bookkeeping (src/engine/kv_pool.c):
 * prefix reuse, eviction, truncation, and a random workload checked
 * against invariants that any correct pool keeps.
 */
#include "check.h"
#include "engine/kv_pool.h"

static int total(const nt_kv_pool_stats *s) { return s->n_used + s->n_cached + s->n_free; }

/* Evaluates tokens[0..n) into seq: reserve, then commit. */
static nt_status feed(nt_kv_pool *pool, nt_kv_seq *seq, const int32_t *tokens, int n) {
    nt_error err;
    nt_status st = nt_kv_seq_reserve(pool, seq, n, &err);
    if (st != NT_OK)
        return st;
    return nt_kv_seq_commit(pool, seq, tokens, n, &err);
}

static void scripted(void) {
    nt_error err;
    nt_kv_pool *pool = nt_kv_pool_new(8, 4, &err);
    CHECK(pool != NULL);
    int32_t p[12] = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    nt_kv_seq a = {0}, b = {0}, c = {0};
    nt_kv_pool_stats st;

    CHECK(nt_kv_seq_begin(pool, &a, p, 10, 9, &err) == 0); /* nothing cached yet */
    CHECK(feed(pool, &a, p, 10) == NT_OK);
    nt_kv_pool_get_stats(pool, &st);
    CHECK(st.n_used == 3 && st.n_free == 5 && st.n_cached == 0);

    /* the same prompt, longer: the two full blocks are shared */
    CHECK(nt_kv_seq_begin(pool, &b, p, 12, 11, &err) == 8);
    CHECK(b.blocks[0] == a.blocks[0] && b.blocks[1] == a.blocks[1]);
    CHECK(memcmp(b.tokens, p, 8 * sizeof(int32_t)) == 0);
    /* max_reuse keeps the last token out: 8 tokens in two blocks at most */
    nt_kv_seq d = {0};
    CHECK(nt_kv_seq_begin(pool, &d, p, 8, 7, &err) == 4);
    nt_kv_seq_release(pool, &d);
    CHECK(feed(pool, &b, p + 8, 4) == NT_OK);
    nt_kv_pool_get_stats(pool, &st);
    CHECK(st.n_used == 4 && st.n_free == 4);
    /* B's own blocks have their own slots */
    CHECK(nt_kv_seq_slot(&b, 4, 9) == (int64_t)b.blocks[2] * 4 + 1);
    CHECK(b.blocks[2] != a.blocks[2]);

    /* a prompt that differs in its second block shares only the first */
    int32_t q[8] = {5, 6, 7, 8, 9, 10, 11, 99};
    CHECK(nt_kv_seq_begin(pool, &c, q, 8, 8, &err) == 4);
    /* and one that differs in the first shares nothing */
    int32_t r[8] = {4, 6, 7, 8, 9, 10, 11, 12};
    CHECK(nt_kv_seq_begin(pool, &c, r, 8, 8, &err) == 0);
    nt_kv_seq_release(pool, &c);

    /* truncating inside a registered block lets the whole block go */
    CHECK(nt_kv_seq_truncate(pool, &b, 6) == 4);
    CHECK(b.n_blocks == 1 && b.n_tokens == 4);
    /* inside its own partial block, a truncation keeps what was asked */
    CHECK(nt_kv_seq_truncate(pool, &a, 9) == 9);
    CHECK(nt_kv_seq_truncate(pool, &a, 20) == 9);
    nt_kv_seq_release(pool, &a);
    nt_kv_seq_release(pool, &b);
    nt_kv_pool_get_stats(pool, &st);
    /* full blocks stay cached: p's first two and B's third */
    CHECK(st.n_used == 0 && st.n_cached == 3 && st.n_free == 5);
    CHECK(total(&st) == 8);

    /* a long sequence takes the free blocks, then evicts cached ones, the
     * least recently released first, then runs out */
    int32_t big[40];
    for (int i = 0; i < 40; i++)
        big[i] = 1000 + i;
    nt_kv_seq e = {0};
    CHECK(nt_kv_seq_begin(pool, &e, big, 40, 39, &err) == 0);
    CHECK(feed(pool, &e, big, 24) == NT_OK); /* 6 blocks: 5 free, 1 evicted */
    nt_kv_pool_get_stats(pool, &st);
    CHECK(st.n_used == 6 && st.n_cached == 2 && st.n_free == 0);
    CHECK(feed(pool, &e, big + 24, 8) == NT_OK); /* the last two cached ones */
    nt_status full = nt_kv_seq_reserve(pool, &e, 1, &err);
    CHECK(full == NT_ERR_CONTEXT_FULL);
    CHECK(strstr(err.message, "full") != NULL);
    /* p's blocks are gone: nothing of p is reused now */
    nt_kv_seq f = {0};
    CHECK(nt_kv_seq_begin(pool, &f, p, 12, 11, &err) == 0);
    nt_kv_seq_release(pool, &f);
    nt_kv_seq_release(pool, &e);
    nt_kv_pool_get_stats(pool, &st);
    CHECK(st.n_cached == 8 && st.n_used == 0);

    /* two sequences that fill the same prefix at once: one registration;
     * the other's blocks are freed when it ends */
    nt_kv_seq g = {0}, h = {0};
    CHECK(nt_kv_seq_begin(pool, &g, p, 8, 8, &err) == 0);
    CHECK(nt_kv_seq_begin(pool, &h, p, 8, 8, &err) == 0);
    CHECK(feed(pool, &g, p, 8) == NT_OK);
    CHECK(feed(pool, &h, p, 8) == NT_OK);
    nt_kv_seq_release(pool, &h);
    nt_kv_pool_get_stats(pool, &st);
    CHECK(st.n_used == 2 && st.n_free == 2);
    nt_kv_seq i = {0};
    CHECK(nt_kv_seq_begin(pool, &i, p, 9, 9, &err) == 8);
    CHECK(i.blocks[0] == g.blocks[0] && i.blocks[1] == g.blocks[1]);
    nt_kv_seq_release(pool, &i);
    nt_kv_seq_release(pool, &g);

    /* commits must stay within what was reserved */
    nt_kv_seq j = {0};
    CHECK(nt_kv_seq_begin(pool, &j, p, 0, 0, &err) == 0);
    CHECK(nt_kv_seq_commit(pool, &j, p, 1, &err) == NT_ERR_ARGUMENT);
    nt_kv_seq_release(pool, &j);
    nt_kv_pool_free(pool);

    CHECK(nt_kv_pool_new(0, 16, &err) == NULL && err.status == NT_ERR_ARGUMENT);
}

/*
 * Random begins, feeds, truncations and releases on a small pool and a
 * two-letter alphabet (so prefixes collide often). After every step: the
 * states add up; a block in two tables is registered, and holds the same
 * tokens at the same positions in both (shared blocks are only ever read);
 * every sequence's tokens are what it was fed.
 */
#define SEQS 6
static void random_workload(void) {
    nt_error err;
    const int bt = 3, n_blocks = 24;
    nt_kv_pool *pool = nt_kv_pool_new(n_blocks, bt, &err);
    nt_kv_seq seq[SEQS] = {{0}};
    int32_t want[SEQS][64];
    int n_want[SEQS] = {0};
    uint32_t rng = 12345;
    int bad = 0, reused = 0;
    for (int step = 0; step < 20000; step++) {
        rng = rng * 1664525u + 1013904223u;
        int s = (int)(rng >> 8) % SEQS, op = (int)(rng >> 16) % 10;
        if (op < 3) {
            /* begin on a random prompt, then feed the rest of it */
            int n = 1 + (int)(rng >> 20) % 20;
            int32_t prompt[64];
            for (int t = 0; t < n; t++) {
                rng = rng * 1664525u + 1013904223u;
                prompt[t] = (int32_t)((rng >> 24) & 1);
            }
            int got = nt_kv_seq_begin(pool, &seq[s], prompt, n, n - 1, &err);
            bad += got < 0 || got > n - 1 || got % bt != 0;
            reused += got;
            memcpy(want[s], prompt, sizeof(int32_t) * (size_t)got);
            n_want[s] = got;
            if (feed(pool, &seq[s], prompt + got, n - got) == NT_OK) {
                memcpy(want[s] + got, prompt + got, sizeof(int32_t) * (size_t)(n - got));
                n_want[s] = n;
            } else {
                n_want[s] = nt_kv_seq_truncate(pool, &seq[s], got);
            }
        } else if (op < 6) {
            int32_t t = (int32_t)((rng >> 24) & 1);
            if (n_want[s] < 60 && feed(pool, &seq[s], &t, 1) == NT_OK)
                want[s][n_want[s]++] = t;
        } else if (op < 8) {
            n_want[s] = nt_kv_seq_truncate(pool, &seq[s], n_want[s] - (int)(rng >> 24) % 5);
        } else {
            nt_kv_seq_release(pool, &seq[s]);
            n_want[s] = 0;
        }
        nt_kv_pool_stats st;
        nt_kv_pool_get_stats(pool, &st);
        bad += total(&st) != n_blocks || st.n_used < 0;
        for (int a = 0; a < SEQS; a++) {
            bad += seq[a].n_tokens != n_want[a] ||
                   (n_want[a] > 0 &&
                    memcmp(seq[a].tokens, want[a], sizeof(int32_t) * (size_t)n_want[a]) != 0);
            for (int x = 0; x < seq[a].n_blocks; x++)
                for (int b = a; b < SEQS; b++)
                    for (int y = 0; y < seq[b].n_blocks; y++) {
                        if ((a == b && x == y) || seq[a].blocks[x] != seq[b].blocks[y])
                            continue;
                        /* the same block twice: full in both, same place,
                         * same tokens */
                        bad += a == b || x != y || (x + 1) * bt > seq[a].n_tokens ||
                               (y + 1) * bt > seq[b].n_tokens ||
                               memcmp(want[a] + x * bt, want[b] + y * bt,
                                      sizeof(int32_t) * (size_t)bt) != 0;
                    }
        }
    }
    CHECK_MSG(bad == 0, "%d invariant violations", bad);
    CHECK_MSG(reused > 1000, "only %d tokens reused: the workload does not test reuse", reused);
    for (int s = 0; s < SEQS; s++)
        nt_kv_seq_release(pool, &seq[s]);
    nt_kv_pool_free(pool);
}

int main(void) {
    scripted();
    random_workload();
    return check_summary();
}
