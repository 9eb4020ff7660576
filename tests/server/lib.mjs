// Shared helpers of the server acceptance tests. run.sh starts the servers
// and passes where they listen through the environment:
//   NT_URL          the main server (tiny model, --parallel 16, --api-key)
//   NT_API_KEY      its key
//   NT_MAX_BODY     its --max-body
//   NT_TOOL_URL     a server on the scripted tool-call model (no key)
//   NT_TOOL_SCRIPT  the text that model writes
//   NT_README_URL   the server started with the README's command (no key)
//   NT_NEMOTRON     the nemotron binary, NT_FIXTURE the tiny model
//   NT_TIME_FACTOR  1, or more for slow builds (AddressSanitizer)
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';

export function env(name) {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set (run the tests through tests/server/run.sh)`);
    return v;
}

export const TIME_FACTOR = Number(process.env.NT_TIME_FACTOR || 1);
// A duration in milliseconds, scaled for slow builds.
export const ms = (n) => Math.round(n * TIME_FACTOR);

export function client(opts = {}) {
    return new OpenAI({
        baseURL: opts.baseURL ?? env('NT_URL'),
        apiKey: opts.apiKey ?? process.env.NT_API_KEY ?? 'unused',
        maxRetries: 0,          // a retried failure must not hide
        timeout: opts.timeout ?? ms(60000),
    });
}

export const rootOf = (baseURL) => baseURL.replace(/\/v1\/?$/, '');

// The id of the single model a server serves (GET /v1/models).
export async function modelId(c) {
    const ids = [];
    for await (const m of c.models.list()) ids.push(m.id);
    assert.equal(ids.length, 1, `one model expected, got ${JSON.stringify(ids)}`);
    return ids[0];
}

// Reads a stream of chat.completion.chunk objects (choice 0 unless n > 1):
// the joined content per choice, finish reasons, role, usage, chunk count.
export async function collectChat(stream) {
    const out = { content: [], finish: [], role: [], logprobs: [], usage: null,
                  chunks: 0, usageChunks: 0, ids: new Set(), model: null };
    for await (const chunk of stream) {
        out.chunks++;
        out.ids.add(chunk.id);
        out.model = chunk.model;
        assert.equal(chunk.object, 'chat.completion.chunk');
        if (chunk.usage) {
            out.usage = chunk.usage;
            out.usageChunks++;
        }
        for (const ch of chunk.choices) {
            const i = ch.index;
            out.content[i] ??= '';
            if (ch.delta?.role) out.role[i] = ch.delta.role;
            if (typeof ch.delta?.content === 'string') out.content[i] += ch.delta.content;
            if (ch.finish_reason) {
                assert.equal(out.finish[i], undefined, `choice ${i} finished twice`);
                out.finish[i] = ch.finish_reason;
            }
            if (ch.logprobs?.content) (out.logprobs[i] ??= []).push(...ch.logprobs.content);
        }
    }
    return out;
}

export function checkUsage(u, what = 'usage') {
    assert.ok(u, `${what} missing`);
    for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens'])
        assert.ok(Number.isInteger(u[k]) && u[k] >= 0, `${what}.${k} = ${u[k]}`);
    assert.ok(u.prompt_tokens > 0, `${what}.prompt_tokens = 0`);
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens, `${what}.total_tokens`);
}

// Two usages count the same tokens (cached_tokens, which says how much of
// the prompt the prefix cache held, may differ).
export function sameUsage(a, b, what = 'usage') {
    for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens'])
        assert.equal(a?.[k], b?.[k], `${what}: ${k} ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
}

// An error body in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
export function checkErrorBody(body, what) {
    assert.ok(body && typeof body === 'object' && body.error && typeof body.error === 'object',
              `${what}: no "error" object in ${JSON.stringify(body)}`);
    const e = body.error;
    assert.equal(typeof e.message, 'string', `${what}: error.message`);
    assert.ok(e.message.length > 0, `${what}: empty error.message`);
    assert.equal(typeof e.type, 'string', `${what}: error.type`);
    assert.ok('param' in e, `${what}: error.param missing`);
    assert.ok('code' in e, `${what}: error.code missing`);
    return e;
}

// Expects `promise` (an openai call) to reject with `Class` and `status`;
// returns the error. A call that succeeds fails the test with what it got.
export async function expectApiError(promise, Class, status, what) {
    let got;
    try {
        got = await promise;
    } catch (err) {
        assert.ok(err instanceof Class,
                  `${what}: expected ${Class.name} (${status}), got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, status, `${what}: status`);
        assert.equal(typeof err.error?.message, 'string', `${what}: error.message in ${JSON.stringify(err.error)}`);
        assert.equal(typeof err.error?.type, 'string', `${what}: error.type in ${JSON.stringify(err.error)}`);
        return err;
    }
    assert.fail(`${what}: expected ${Class.name} (${status}), the call succeeded: ${JSON.stringify(got).slice(0, 300)}`);
}

// fetch with a deadline; returns {status, headers, text, json}.
export async function rawFetch(url, init = {}, timeout = ms(30000)) {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeout) });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, headers: res.headers, text, json };
}

// Prometheus text format -> Map of 'name{labels}' (as written) -> number.
export function parseMetrics(text) {
    const m = new Map();
    for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/);
        if (match) m.set(match[1].replace(/\s+/g, ''), Number(match[2]));
    }
    return m;
}

export async function metrics(baseURL, apiKey) {
    const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
    const r = await rawFetch(`${rootOf(baseURL)}/metrics`, { headers });
    assert.equal(r.status, 200, `GET /metrics: ${r.status} ${r.text.slice(0, 200)}`);
    return { text: r.text, values: parseMetrics(r.text) };
}

// One metric's value; throws if the server does not export it.
export function metric(values, key) {
    const v = values.get(key);
    assert.ok(v !== undefined, `metric ${key} not in /metrics`);
    return v;
}

export const sleep = (t) => new Promise((r) => setTimeout(r, t));

// Sends raw bytes on a new TCP connection and reads until the server
// closes it or `timeout` passes; returns {status, text, closed, elapsed}.
export function rawExchange(baseURL, chunks, { timeout = ms(10000) } = {}) {
    const u = new URL(baseURL);
    return new Promise((resolve, reject) => {
        const t0 = Date.now();
        const sock = net.connect(Number(u.port), u.hostname);
        let data = Buffer.alloc(0);
        let done = false;
        const finish = (closed) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            sock.destroy();
            const text = data.toString('latin1');
            const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
            resolve({ status: m ? Number(m[1]) : null, text, closed, elapsed: Date.now() - t0 });
        };
        const timer = setTimeout(() => finish(false), timeout);
        sock.on('connect', () => {
            for (const c of chunks) sock.write(c);
        });
        sock.on('data', (d) => {
            data = Buffer.concat([data, d]);
            // A complete response with a Content-Length ends the exchange.
            const text = data.toString('latin1');
            const head = text.indexOf('\r\n\r\n');
            if (head >= 0) {
                const cl = text.slice(0, head).match(/\r\ncontent-length:\s*(\d+)/i);
                if (cl && data.length >= head + 4 + Number(cl[1])) finish(false);
            }
        });
        sock.on('end', () => finish(true));
        sock.on('close', () => finish(true));
        sock.on('error', (e) => {
            if (data.length) finish(true);
            else if (!done) { done = true; clearTimeout(timer); reject(e); }
        });
    });
}

// Body of an HTTP response read with rawExchange (Content-Length only).
export function rawBody(text) {
    const i = text.indexOf('\r\n\r\n');
    return i < 0 ? '' : text.slice(i + 4);
}
