// Every error the server contract names, with its status code and OpenAI's
// error shape: through the official client's error classes where the client
// can send the request, through fetch or a raw socket where it cannot.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
    client, env, modelId, rawFetch, rootOf, checkErrorBody, expectApiError,
    rawExchange, rawBody, ms,
} from './lib.mjs';

const URL_ = env('NT_URL');
const ROOT = rootOf(URL_);
const KEY = env('NT_API_KEY');
const MAX_BODY = Number(env('NT_MAX_BODY'));
const c = client();
let MODEL;
const auth = { Authorization: `Bearer ${KEY}` };
const json = { ...auth, 'Content-Type': 'application/json' };
const messages = [{ role: 'user', content: 'Hello' }];

before(async () => { MODEL = await modelId(c); });

test('malformed JSON: 400', async () => {
    for (const body of ['{"model": "x", "messages": [', 'not json', '{"model": "x",}', '']) {
        const r = await rawFetch(`${URL_}/chat/completions`, { method: 'POST', headers: json, body });
        assert.equal(r.status, 400, `body ${JSON.stringify(body)}: ${r.status} ${r.text}`);
        checkErrorBody(r.json, `malformed ${JSON.stringify(body)}`);
    }
    const r = await rawFetch(`${URL_}/completions`, { method: 'POST', headers: json, body: '{"prompt": "a"' });
    assert.equal(r.status, 400, `completions: ${r.status} ${r.text}`);
    checkErrorBody(r.json, 'malformed completions body');
    const a = await rawFetch(`${URL_}/chat/completions`, { method: 'POST', headers: json, body: '[1, 2]' });
    assert.equal(a.status, 400, `a JSON array body: ${a.status} ${a.text}`);
    checkErrorBody(a.json, 'array body');
});

test('wrong types: 400 with param', async () => {
    const cases = [
        ['messages', { messages: 'hello' }],
        ['messages', { messages: undefined }],
        ['temperature', { temperature: 'hot' }],
        ['max_tokens', { max_tokens: 'ten' }],
        ['stream', { stream: 'yes' }],
        ['stop', { stop: 5 }],
        ['n', { n: 'two' }],
        ['seed', { seed: 'abc' }],
        ['logit_bias', { logit_bias: [1, 2] }],
        ['tools', { tools: 'get_weather' }],
    ];
    for (const [param, extra] of cases) {
        const body = { model: MODEL, messages, max_tokens: 4, ...extra };
        const err = await expectApiError(c.chat.completions.create(body), OpenAI.BadRequestError, 400,
                                         `${param}: ${JSON.stringify(extra)}`);
        assert.equal(err.param, param, `param for ${JSON.stringify(extra)}: ${JSON.stringify(err.error)}`);
    }
    // a message of an unknown role, a message without content
    for (const bad of [[{ role: 'wizard', content: 'hi' }], [{ content: 'hi' }], [42]]) {
        const err = await expectApiError(c.chat.completions.create({ model: MODEL, messages: bad, max_tokens: 4 }),
                                         OpenAI.BadRequestError, 400, `messages ${JSON.stringify(bad)}`);
        assert.ok(typeof err.param === 'string' && err.param.startsWith('messages'),
                  `param for messages ${JSON.stringify(bad)}: ${JSON.stringify(err.error)}`);
    }
    const err = await expectApiError(c.completions.create({ model: MODEL, prompt: 'a', max_tokens: 'x' }),
                                     OpenAI.BadRequestError, 400, 'completions max_tokens');
    assert.equal(err.param, 'max_tokens');
});

test('unknown model: 404 model_not_found', async () => {
    for (const [what, call] of [
        ['chat', () => c.chat.completions.create({ model: 'no-such-model', messages, max_tokens: 4 })],
        ['chat stream', () => c.chat.completions.create({ model: 'no-such-model', messages, max_tokens: 4, stream: true })],
        ['completions', () => c.completions.create({ model: 'no-such-model', prompt: 'a', max_tokens: 4 })],
    ]) {
        const err = await expectApiError(call(), OpenAI.NotFoundError, 404, what);
        assert.equal(err.code, 'model_not_found', `${what}: ${JSON.stringify(err.error)}`);
    }
});

test('unknown route: 404; wrong method: 405', async () => {
    for (const [method, path] of [['GET', '/v1/nothing'], ['POST', '/v1/nothing'], ['GET', '/nothing'], ['POST', '/v1/chat']]) {
        const r = await rawFetch(`${ROOT}${path}`, { method, headers: json, body: method === 'POST' ? '{}' : undefined });
        assert.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.text}`);
        checkErrorBody(r.json, `${method} ${path}`);
    }
    const nf = await expectApiError(c.get('/nothing/here'), OpenAI.NotFoundError, 404, 'client GET /v1/nothing/here');
    assert.ok(nf);
    for (const [method, path] of [['GET', '/v1/chat/completions'], ['GET', '/v1/completions'], ['DELETE', '/v1/models']]) {
        const r = await rawFetch(`${ROOT}${path}`, { method, headers: auth });
        assert.equal(r.status, 405, `${method} ${path}: ${r.status} ${r.text}`);
        checkErrorBody(r.json, `${method} ${path}`);
    }
});

test('prompt past the context: 400 context_length_exceeded', async () => {
    const long = 'The hammer rings on the anvil. '.repeat(1000);    // about 7000 tokens, 31 KB
    for (const [what, call] of [
        ['chat', () => c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: long }], max_tokens: 4 })],
        ['chat stream', () => c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: long }], max_tokens: 4, stream: true })],
        ['completions', () => c.completions.create({ model: MODEL, prompt: long, max_tokens: 4 })],
    ]) {
        const err = await expectApiError(call(), OpenAI.BadRequestError, 400, what);
        assert.equal(err.code, 'context_length_exceeded', `${what}: ${JSON.stringify(err.error)}`);
    }
    // and the server still serves
    const r = await c.chat.completions.create({ model: MODEL, messages, max_tokens: 2 });
    assert.equal(r.choices.length, 1);
});

test('body over --max-body: 413', async () => {
    const big = 'x'.repeat(MAX_BODY + 1000);
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: big }], max_tokens: 4 });
    // fetch, as any HTTP client sends it
    const r = await rawFetch(`${URL_}/chat/completions`, { method: 'POST', headers: json, body });
    assert.equal(r.status, 413, `${r.status} ${r.text.slice(0, 300)}`);
    checkErrorBody(r.json, '413');
    // the official client: an APIError with status 413
    let err;
    try {
        await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: big }], max_tokens: 4 });
    } catch (e) { err = e; }
    assert.ok(err instanceof OpenAI.APIError, `client: ${err?.constructor?.name} ${err?.message}`);
    assert.equal(err.status, 413, `client: ${err?.message}`);
    // a Content-Length over the limit is refused before any body is sent
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEY}\r\n` +
                 `Content-Type: application/json\r\nContent-Length: ${MAX_BODY * 100}\r\n\r\n{"model":`;
    const x = await rawExchange(URL_, [head], { timeout: ms(5000) });
    assert.equal(x.status, 413, `declared Content-Length ${MAX_BODY * 100}: ${JSON.stringify(x.text.slice(0, 300))}`);
    checkErrorBody(JSON.parse(rawBody(x.text)), 'declared Content-Length over the limit');
    // without a Content-Length (chunked): the same limit
    const chunked = (text) => new ReadableStream({
        start(ctl) {
            const b = Buffer.from(text);
            for (let i = 0; i < b.length; i += 16384) ctl.enqueue(b.subarray(i, i + 16384));
            ctl.close();
        },
    });
    const small = JSON.stringify({ model: MODEL, messages, max_tokens: 2 });
    const okc = await rawFetch(`${URL_}/chat/completions`, { method: 'POST', headers: json, body: chunked(small), duplex: 'half' });
    assert.equal(okc.status, 200, `a chunked body under the limit: ${okc.status} ${okc.text.slice(0, 300)}`);
    const bigc = await rawFetch(`${URL_}/chat/completions`, { method: 'POST', headers: json, body: chunked(body), duplex: 'half' });
    assert.equal(bigc.status, 413, `a chunked body over the limit: ${bigc.status} ${bigc.text.slice(0, 300)}`);
    checkErrorBody(bigc.json, 'chunked 413');
    // the server still serves
    const ok = await c.chat.completions.create({ model: MODEL, messages, max_tokens: 2 });
    assert.equal(ok.choices.length, 1);
});

test('--api-key: 401 without or with a wrong key; health stays open', async () => {
    const wrong = client({ apiKey: 'sk-wrong' });
    await expectApiError(wrong.chat.completions.create({ model: MODEL, messages, max_tokens: 4 }),
                         OpenAI.AuthenticationError, 401, 'wrong key, chat');
    await expectApiError(wrong.models.list(), OpenAI.AuthenticationError, 401, 'wrong key, models');
    await expectApiError(wrong.completions.create({ model: MODEL, prompt: 'a', max_tokens: 4 }),
                         OpenAI.AuthenticationError, 401, 'wrong key, completions');
    for (const headers of [{}, { Authorization: 'Bearer' }, { Authorization: `Basic ${KEY}` },
                           { Authorization: `Bearer ${KEY}x` }]) {
        const r = await rawFetch(`${URL_}/chat/completions`, {
            method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' },
            body: JSON.stringify({ model: MODEL, messages, max_tokens: 4 }),
        });
        assert.equal(r.status, 401, `headers ${JSON.stringify(headers)}: ${r.status} ${r.text}`);
        checkErrorBody(r.json, `401 ${JSON.stringify(headers)}`);
    }
    const m = await rawFetch(`${URL_}/models`);
    assert.equal(m.status, 401, `GET /v1/models without a key: ${m.status}`);
    for (const path of ['/health', '/v1/health/live', '/v1/health/ready']) {
        const r = await rawFetch(`${ROOT}${path}`);
        assert.equal(r.status, 200, `GET ${path} without a key: ${r.status} ${r.text}`);
    }
});
