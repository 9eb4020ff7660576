/*
 * metrics.c - what GET /metrics reports, in Prometheus' text format 0.0.4.
 *
 * Two sources. The scheduler knows the state of the batch and the cache and
 * counts tokens (nt_scheduler_get_stats); those are read when the page is
 * asked for. The server counts what only it sees: answers by endpoint and
 * status, and the time from submitting a request to its first token (a
 * histogram with vLLM's buckets, so dashboards made for vLLM read it).
 *
 * One mutex guards the counters; it is held for a few additions, also on
 * the scheduler's thread (the first token of each choice), never across a
 * call into anything else.
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "server_internal.h"

static const double ttft_bounds[METRICS_TTFT_BUCKETS] = {
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
    0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  10.0,
};

static const char *const endpoint_names[N_ENDPOINTS] = {
    "/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics",
    "other",
};

void metrics_init(metrics *m) {
    memset(&m->c, 0, sizeof m->c);
    pthread_mutex_init(&m->lock, NULL);
}

void metrics_destroy(metrics *m) { pthread_mutex_destroy(&m->lock); }

void metrics_count_request(metrics *m, endpoint ep, int status) {
    if ((int)ep < 0 || ep >= N_ENDPOINTS)
        ep = ENDPOINT_OTHER;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < METRICS_MAX_STATUSES; i++) {
        /* status 0 marks a free slot; a status past the last slot goes
         * uncounted, which takes more distinct codes than the server sends */
        if (m->c.statuses[ep][i] == status || m->c.statuses[ep][i] == 0) {
            m->c.statuses[ep][i] = status;
            m->c.counts[ep][i]++;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

void metrics_observe_ttft(metrics *m, double seconds) {
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < METRICS_TTFT_BUCKETS; i++)
        if (seconds <= ttft_bounds[i]) {
            m->c.ttft_buckets[i]++;
            break;
        }
    m->c.ttft_count++;
    m->c.ttft_sum += seconds;
    pthread_mutex_unlock(&m->lock);
}

static void header(strbuf *b, const char *name, const char *type, const char *help) {
    strbuf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *metrics_render(metrics *m, const nt_scheduler_stats *stats, size_t *len) {
    nt_scheduler_stats none;
    if (!stats) {
        memset(&none, 0, sizeof none);
        stats = &none;
    }
    metrics_counts copy;
    pthread_mutex_lock(&m->lock);
    copy = m->c;
    pthread_mutex_unlock(&m->lock);

    strbuf b = {0};
    header(&b, "nemotron_requests_total", "counter",
           "HTTP requests answered, by endpoint and status code.");
    for (int ep = 0; ep < N_ENDPOINTS; ep++)
        for (int i = 0; i < METRICS_MAX_STATUSES && copy.statuses[ep][i]; i++)
            strbuf_addf(&b, "nemotron_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                        endpoint_names[ep], copy.statuses[ep][i],
                        (unsigned long long)copy.counts[ep][i]);

    header(&b, "nemotron_prompt_tokens_total", "counter",
           "Prompt tokens of the requests admitted to the batch.");
    strbuf_addf(&b, "nemotron_prompt_tokens_total %llu\n",
                (unsigned long long)stats->prompt_tokens);
    header(&b, "nemotron_prompt_tokens_cached_total", "counter",
           "Prompt tokens taken from the prefix cache instead of computed.");
    strbuf_addf(&b, "nemotron_prompt_tokens_cached_total %llu\n",
                (unsigned long long)stats->prompt_tokens_reused);
    header(&b, "nemotron_generation_tokens_total", "counter", "Tokens generated.");
    strbuf_addf(&b, "nemotron_generation_tokens_total %llu\n",
                (unsigned long long)stats->generated_tokens);

    header(&b, "nemotron_time_to_first_token_seconds", "histogram",
           "Time from submitting a request (one per choice) to its first token.");
    uint64_t cumulative = 0;
    for (int i = 0; i < METRICS_TTFT_BUCKETS; i++) {
        cumulative += copy.ttft_buckets[i];
        strbuf_addf(&b, "nemotron_time_to_first_token_seconds_bucket{le=\"%g\"} %llu\n",
                    ttft_bounds[i], (unsigned long long)cumulative);
    }
    strbuf_addf(&b, "nemotron_time_to_first_token_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)copy.ttft_count);
    strbuf_addf(&b, "nemotron_time_to_first_token_seconds_sum %.6f\n", copy.ttft_sum);
    strbuf_addf(&b, "nemotron_time_to_first_token_seconds_count %llu\n",
                (unsigned long long)copy.ttft_count);

    header(&b, "nemotron_requests_running", "gauge", "Requests in the batch.");
    strbuf_addf(&b, "nemotron_requests_running %d\n", stats->n_running);
    header(&b, "nemotron_requests_waiting", "gauge", "Requests queued for admission.");
    strbuf_addf(&b, "nemotron_requests_waiting %d\n", stats->n_queued);
    header(&b, "nemotron_kv_cache_usage_ratio", "gauge",
           "Fraction of the KV cache's blocks held by running requests.");
    strbuf_addf(&b, "nemotron_kv_cache_usage_ratio %.6f\n",
                stats->kv_blocks > 0 ? (double)stats->kv_blocks_used / stats->kv_blocks : 0.0);
    header(&b, "nemotron_kv_cache_blocks", "gauge",
           "KV cache blocks: used by running requests, cached for prefix reuse, free.");
    int free_blocks = stats->kv_blocks - stats->kv_blocks_used - stats->kv_blocks_cached;
    strbuf_addf(&b, "nemotron_kv_cache_blocks{state=\"used\"} %d\n", stats->kv_blocks_used);
    strbuf_addf(&b, "nemotron_kv_cache_blocks{state=\"cached\"} %d\n", stats->kv_blocks_cached);
    strbuf_addf(&b, "nemotron_kv_cache_blocks{state=\"free\"} %d\n",
                free_blocks > 0 ? free_blocks : 0);
    if (b.failed) {
        strbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.s;
}
