// Slowloris: clients that send their request headers a byte a second and
// never finish must not hold up anyone else.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { client, env, modelId, rawFetch, rootOf, ms, sleep } from './lib.mjs';

const URL_ = env('NT_URL');
const c = client();
let MODEL;
before(async () => { MODEL = await modelId(c); });

// Opens a connection that trickles a request's headers one byte a second.
function trickler() {
    const u = new URL(URL_);
    const text = `POST /v1/chat/completions HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\n` +
                 `Authorization: Bearer ${env('NT_API_KEY')}\r\nX-Padding: ${'a'.repeat(4096)}`;
    const sock = net.connect(Number(u.port), u.hostname);
    let pos = 0, closedByServer = false;
    sock.on('error', () => {});
    sock.on('close', () => { closedByServer = true; });
    sock.on('data', () => {});
    const timer = setInterval(() => {
        if (sock.destroyed || pos >= text.length) return;
        sock.write(text[pos++]);
    }, 1000);
    return {
        stop() { clearInterval(timer); sock.destroy(); },
        get sent() { return pos; },
        get closed() { return closedByServer; },
    };
}

// Normal traffic, each request timed.
async function traffic(label) {
    const limitChat = ms(5000), limitHealth = ms(2000);
    for (let k = 0; k < 3; k++) {
        let t = Date.now();
        const h = await rawFetch(`${rootOf(URL_)}/health`, {}, ms(20000));
        const th = Date.now() - t;
        assert.equal(h.status, 200);
        assert.ok(th < limitHealth, `${label}: GET /health took ${th} ms`);
        t = Date.now();
        const r = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `Hello ${k}` }], max_tokens: 8 },
                                                  { timeout: ms(20000) });
        const tc = Date.now() - t;
        assert.equal(r.choices.length, 1);
        assert.ok(tc < limitChat, `${label}: a chat completion took ${tc} ms`);
        t = Date.now();
        let chunks = 0;
        for await (const _ of await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, stream: true },
                                                                { timeout: ms(20000) })) chunks++;
        const ts = Date.now() - t;
        assert.ok(chunks > 0);
        assert.ok(ts < limitChat, `${label}: a streamed completion took ${ts} ms`);
        await sleep(500);
    }
}

test('one trickling client does not block others', { timeout: ms(60000) }, async () => {
    const t = trickler();
    try {
        await sleep(1500);
        await traffic('one slow client');
        console.log(`# the slow client sent ${t.sent} bytes${t.closed ? ', then the server closed it' : ''}`);
    } finally {
        t.stop();
    }
});

test('24 trickling clients (more than --parallel) do not block others', { timeout: ms(60000) }, async () => {
    const ts = Array.from({ length: 24 }, trickler);
    try {
        await sleep(1500);
        await traffic('24 slow clients');
        console.log(`# ${ts.filter((t) => t.closed).length} of 24 slow clients closed by the server`);
    } finally {
        for (const t of ts) t.stop();
    }
});
