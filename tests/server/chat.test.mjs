// The OpenAI API as the official client sees it, on the tiny model: chat
// completions whole and streamed, sampling parameters, n, logprobs, stop
// strings, finish reasons, logit_bias, RAG contexts, tool turns in the
// conversation, /v1/completions, /v1/models, health and metrics.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
    client, env, modelId, collectChat, checkUsage, sameUsage, rawFetch, rootOf, metrics,
    metric, ms, sleep, expectApiError,
} from './lib.mjs';
import OpenAI from 'openai';

const c = client();
let MODEL;

const SYSTEM = 'You are Garrick, the blacksmith of Oakvale. Answer briefly.';
const convo = (user = 'Tell me about the forge.') => [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: user },
];

async function chat(params) {
    return c.chat.completions.create({ model: MODEL, messages: convo(), ...params });
}

before(async () => {
    MODEL = await modelId(c);
});

test('GET /v1/models lists the served model', async () => {
    const page = await c.models.list();
    assert.equal(page.data.length, 1);
    const m = page.data[0];
    assert.equal(m.object, 'model');
    assert.equal(typeof m.id, 'string');
    assert.ok(m.id.length > 0);
    assert.equal(typeof m.owned_by, 'string', 'owned_by');
    assert.ok(Number.isInteger(m.created), 'created');
    const raw = await rawFetch(`${env('NT_URL')}/models`, { headers: { Authorization: `Bearer ${env('NT_API_KEY')}` } });
    assert.equal(raw.status, 200);
    assert.equal(raw.json?.object, 'list');
});

test('health endpoints answer 200', async () => {
    for (const path of ['/health', '/v1/health/live', '/v1/health/ready']) {
        const r = await rawFetch(`${rootOf(env('NT_URL'))}${path}`);
        assert.equal(r.status, 200, `GET ${path}: ${r.status} ${r.text}`);
    }
});

test('a plain chat completion', async () => {
    const r = await chat({ max_tokens: 16, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(typeof r.id, 'string');
    assert.ok(r.id.length > 0);
    assert.ok(Number.isInteger(r.created) && r.created > 1.6e9, `created ${r.created}`);
    assert.equal(r.model, MODEL);
    assert.equal(r.choices.length, 1);
    const ch = r.choices[0];
    assert.equal(ch.index, 0);
    assert.equal(ch.message.role, 'assistant');
    assert.equal(typeof ch.message.content, 'string');
    assert.ok(ch.message.content.length > 0, 'empty reply');
    assert.ok(['stop', 'length'].includes(ch.finish_reason), `finish_reason ${ch.finish_reason}`);
    checkUsage(r.usage);
    assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 16);
    if (ch.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 16);
    // greedy is deterministic
    const again = await chat({ max_tokens: 16, temperature: 0 });
    assert.equal(again.choices[0].message.content, ch.message.content);
    assert.notEqual(again.id, r.id, 'two completions with one id');
});

test('non-ASCII text in the conversation', async () => {
    const user = 'Smørrebrød, crème brûlée, 鍛冶屋, 🔨🔥 — what do you forge?';
    const r = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: user }], max_tokens: 8, temperature: 0 });
    const ascii = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'What do you forge?' }], max_tokens: 8, temperature: 0 });
    checkUsage(r.usage);
    assert.ok(r.usage.prompt_tokens > ascii.usage.prompt_tokens + 10, 'the non-ASCII text is not in the prompt');
    assert.equal(typeof r.choices[0].message.content, 'string');
});

test('a stream joins to exactly the non-streamed text (temperature 1, seed)', async () => {
    const params = { max_tokens: 48, temperature: 1, seed: 1234 };
    const whole = await chat(params);
    const text = whole.choices[0].message.content;
    assert.ok(text.length > 0);
    const s = await collectChat(await chat({ ...params, stream: true, stream_options: { include_usage: true } }));
    assert.equal(s.content[0], text, 'streamed text differs from the non-streamed text');
    assert.equal(s.finish[0], whole.choices[0].finish_reason, 'finish_reason');
    assert.equal(s.role[0], 'assistant', 'first delta carries role "assistant"');
    assert.ok(s.chunks > 2, `only ${s.chunks} chunks: not streamed`);
    assert.equal(s.ids.size, 1, 'every chunk has the same id');
    assert.equal(s.model, MODEL);
    assert.equal(s.usageChunks, 1, 'exactly one usage chunk with include_usage');
    checkUsage(s.usage, 'stream usage');
    sameUsage(s.usage, whole.usage, 'stream usage vs the non-streamed usage');
    // the same seed again gives the same text; a temperature-1 reply is not the greedy one
    const again = await chat(params);
    assert.equal(again.choices[0].message.content, text, 'same seed, different text');
    const greedy = await chat({ max_tokens: 48, temperature: 0 });
    assert.notEqual(greedy.choices[0].message.content, text, 'temperature 1 gave the greedy text');
});

test('a stream without include_usage has no usage chunk', async () => {
    const s = await collectChat(await chat({ max_tokens: 8, temperature: 0, stream: true }));
    assert.equal(s.usageChunks, 0);
    assert.ok(['stop', 'length'].includes(s.finish[0]));
});

test('the stream helper assembles a plain reply', async () => {
    const params = { max_tokens: 24, temperature: 1, seed: 99 };
    const whole = await chat(params);
    const stream = c.chat.completions.stream({ model: MODEL, messages: convo(), ...params });
    let deltas = '';
    stream.on('content', (d) => { deltas += d; });
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
    assert.equal(deltas, whole.choices[0].message.content);
    assert.equal(final.choices[0].finish_reason, whole.choices[0].finish_reason);
});

test('n=2: two choices, choice i sampled with seed+i', async () => {
    const params = { max_tokens: 24, temperature: 1 };
    const r = await chat({ ...params, n: 2, seed: 77 });
    assert.equal(r.choices.length, 2);
    assert.deepEqual(r.choices.map((ch) => ch.index), [0, 1]);
    const [a, b] = r.choices.map((ch) => ch.message.content);
    assert.notEqual(a, b, 'the two choices are the same');
    const s77 = await chat({ ...params, seed: 77 });
    const s78 = await chat({ ...params, seed: 78 });
    assert.equal(a, s77.choices[0].message.content, 'choice 0 is not seed 77 alone');
    assert.equal(b, s78.choices[0].message.content, 'choice 1 is not seed 78 alone');
    assert.equal(r.choices[1].finish_reason, s78.choices[0].finish_reason);
    checkUsage(r.usage);
    assert.equal(r.usage.prompt_tokens, s77.usage.prompt_tokens);
    assert.equal(r.usage.completion_tokens,
                 s77.usage.completion_tokens + s78.usage.completion_tokens,
                 'completion_tokens is the sum over choices');
    // streamed, each index joins to its choice
    const s = await collectChat(await chat({ ...params, n: 2, seed: 77, stream: true }));
    assert.deepEqual(s.content, [a, b]);
    assert.deepEqual(s.finish, r.choices.map((ch) => ch.finish_reason));
});

test('logprobs and top_logprobs', async () => {
    const r = await chat({ max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 });
    const ch = r.choices[0];
    const lp = ch.logprobs?.content;
    assert.ok(Array.isArray(lp), `logprobs.content: ${JSON.stringify(ch.logprobs)}`);
    assert.equal(lp.length, r.usage.completion_tokens, 'one entry per generated token');
    for (const [i, e] of lp.entries()) {
        assert.equal(typeof e.token, 'string');
        assert.ok(Number.isFinite(e.logprob) && e.logprob <= 0, `logprob[${i}] = ${e.logprob}`);
        assert.ok(Array.isArray(e.bytes) && e.bytes.every((x) => Number.isInteger(x) && x >= 0 && x < 256),
                  `bytes[${i}]`);
        assert.equal(e.top_logprobs.length, 3, `top_logprobs[${i}] has ${e.top_logprobs.length}`);
        for (let k = 0; k < 3; k++) {
            const t = e.top_logprobs[k];
            assert.equal(typeof t.token, 'string');
            assert.ok(Number.isFinite(t.logprob) && t.logprob <= 0);
            if (k) assert.ok(t.logprob <= e.top_logprobs[k - 1].logprob, 'top_logprobs not sorted');
        }
        // greedy: the chosen token is the most likely one
        assert.equal(e.token, e.top_logprobs[0].token, `greedy token ${i} is not the top one`);
        assert.ok(Math.abs(e.logprob - e.top_logprobs[0].logprob) < 1e-6);
    }
    if (ch.finish_reason === 'length') {
        const joined = Buffer.from(lp.flatMap((e) => e.bytes)).toString('utf8');
        assert.equal(joined, ch.message.content, 'the tokens\' bytes do not make the content');
    }
    // logprobs without top_logprobs, sampled: no alternatives, logprob <= 0
    const s = await chat({ max_tokens: 8, temperature: 1, seed: 5, logprobs: true });
    for (const e of s.choices[0].logprobs.content) {
        assert.ok(Number.isFinite(e.logprob) && e.logprob <= 0);
        assert.ok(!e.top_logprobs || e.top_logprobs.length === 0);
    }
    // without logprobs: none
    const n = await chat({ max_tokens: 4, temperature: 0 });
    assert.ok(n.choices[0].logprobs == null, `unasked logprobs: ${JSON.stringify(n.choices[0].logprobs)}`);
    // streamed logprobs are the same entries
    const st = await collectChat(await chat({ max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3, stream: true }));
    assert.deepEqual(st.logprobs[0].map((e) => e.token), lp.map((e) => e.token));
    for (const [i, e] of st.logprobs[0].entries())
        assert.ok(Math.abs(e.logprob - lp[i].logprob) < 1e-5, `stream logprob ${i}`);
});

// A stop string taken from a first, unconstrained reply, so that it really
// occurs: the reply ends just before its first occurrence.
function pickStop(text) {
    for (const len of [3, 2]) {
        for (let i = Math.min(8, text.length); i + len <= text.length; i++) {
            const s = text.slice(i, i + len);
            if (!/^[A-Za-z]+$/.test(s)) continue;
            if (/\s/.test(text[i - 1])) continue;       // no whitespace just before it
            if (text.indexOf(s) !== i) continue;        // its first occurrence
            return { stop: s, at: i };
        }
    }
    return null;
}

test('stop strings end the reply before them, finish_reason "stop"', async () => {
    const params = { max_tokens: 48, temperature: 1, seed: 4242 };
    const free = await chat(params);
    const text = free.choices[0].message.content;
    const pick = pickStop(text);
    assert.ok(pick, `no usable stop string in ${JSON.stringify(text)}`);
    const expected = text.slice(0, pick.at);
    for (const stop of [[pick.stop], pick.stop, ['#never#', pick.stop]]) {
        const r = await chat({ ...params, stop });
        assert.equal(r.choices[0].message.content, expected, `stop ${JSON.stringify(stop)} in ${JSON.stringify(text)}`);
        assert.equal(r.choices[0].finish_reason, 'stop');
        assert.ok(r.usage.completion_tokens <= free.usage.completion_tokens);
    }
    const s = await collectChat(await chat({ ...params, stop: [pick.stop], stream: true }));
    assert.equal(s.content[0], expected, 'streamed reply with a stop string');
    assert.equal(s.finish[0], 'stop');
});

test('max_tokens and max_completion_tokens: finish_reason "length"', async () => {
    const a = await chat({ max_tokens: 5, temperature: 0 });
    assert.equal(a.choices[0].finish_reason, 'length');
    assert.equal(a.usage.completion_tokens, 5);
    const b = await chat({ max_completion_tokens: 6, temperature: 0 });
    assert.equal(b.choices[0].finish_reason, 'length');
    assert.equal(b.usage.completion_tokens, 6);
    assert.ok(b.choices[0].message.content.startsWith(a.choices[0].message.content));
    const s = await collectChat(await chat({ max_tokens: 5, temperature: 0, stream: true, stream_options: { include_usage: true } }));
    assert.equal(s.finish[0], 'length');
    assert.equal(s.usage.completion_tokens, 5);
    assert.equal(s.content[0], a.choices[0].message.content);
});

test('top_p and seed: reproducible', async () => {
    const p = { max_tokens: 24, temperature: 0.8, top_p: 0.5, frequency_penalty: 0.5, presence_penalty: 0.3, seed: 11 };
    const a = await chat(p);
    const b = await chat(p);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content, 'not reproducible');
    checkUsage(a.usage);
    // top_p that keeps only the most likely token is greedy
    const g = await chat({ max_tokens: 24, temperature: 0 });
    const t = await chat({ max_tokens: 24, temperature: 1, top_p: 1e-6, seed: 5 });
    assert.equal(t.choices[0].message.content, g.choices[0].message.content, 'top_p 1e-6 is not greedy');
});

// Frequency and presence penalties act on the tokens the reply already
// holds (not the prompt's): greedy replies are the same up to the first
// token that repeats an earlier one, and there the penalty of 2 must change
// the choice when the repeated token led the runner-up by less than 2.
test('frequency and presence penalties', async () => {
    const greedy = await chat({ max_tokens: 64, temperature: 0, logprobs: true, top_logprobs: 2 });
    const lp = greedy.choices[0].logprobs.content;
    const key = (e) => `${e.token}|${e.bytes.join(',')}`;
    const seen = new Set();
    let j = -1;
    for (const [i, e] of lp.entries()) {
        if (seen.has(key(e))) { j = i; break; }
        seen.add(key(e));
    }
    assert.ok(j > 0, 'the greedy reply repeats no token: the test needs a prompt that does');
    const margin = lp[j].top_logprobs[0].logprob - lp[j].top_logprobs[1].logprob;
    assert.equal(lp[j].token, lp[j].top_logprobs[0].token);
    for (const penalty of [{ frequency_penalty: 2 }, { presence_penalty: 2 }]) {
        const r = await chat({ max_tokens: 64, temperature: 0, logprobs: true, ...penalty });
        const got = r.choices[0].logprobs.content.map(key);
        const what = `${JSON.stringify(penalty)}, first repeat at token ${j} (${JSON.stringify(lp[j].token)}, lead ${margin.toFixed(3)})`;
        assert.deepEqual(got.slice(0, j), lp.slice(0, j).map(key), `${what}: the reply changed before the repeat`);
        if (margin < 2 - 1e-3) assert.notEqual(got[j], key(lp[j]), `${what}: the penalty did not change the repeat`);
        if (margin > 2 + 1e-3) assert.equal(got[j], key(lp[j]), `${what}: the repeat changed although it led by more than 2`);
    }
});

test('logit_bias +100 forces a token', async () => {
    // the id of the piece "ak" in the fixture's vocabulary, from the CLI
    const run = (args, input) => spawnSync(env('NT_NEMOTRON'), args, { input, encoding: 'utf8' });
    const pieces = JSON.parse(run(['tokenize', '-m', env('NT_FIXTURE'), '--pieces'], 'Oakvale').stdout);
    const ids = JSON.parse(run(['tokenize', '-m', env('NT_FIXTURE')], 'Oakvale').stdout);
    const id = ids[pieces.indexOf('ak')];
    assert.ok(Number.isInteger(id), `no piece "ak" in ${JSON.stringify(pieces)}`);
    const r = await chat({ max_tokens: 4, temperature: 0, logit_bias: { [id]: 100 }, logprobs: true });
    assert.equal(r.choices[0].message.content, 'akakakak');
    assert.deepEqual(r.choices[0].logprobs.content.map((e) => e.token), ['ak', 'ak', 'ak', 'ak']);
    const t = await chat({ max_tokens: 4, temperature: 1, seed: 3, logit_bias: { [id]: 100 } });
    assert.equal(t.choices[0].message.content, 'akakakak');
});

test('response_format "text" is accepted', async () => {
    const r = await chat({ max_tokens: 4, temperature: 0, response_format: { type: 'text' } });
    assert.equal(r.choices[0].finish_reason, 'length');
});

test('RAG contexts are part of the prompt', async () => {
    const plain = await chat({ max_tokens: 4, temperature: 0 });
    const passage = 'The forge of Oakvale was built by the dwarves of the northern hills.';
    const rag = await chat({ max_tokens: 4, temperature: 0, contexts: [passage, 'Garrick sells swords.'] });
    checkUsage(rag.usage);
    assert.ok(rag.usage.prompt_tokens >= plain.usage.prompt_tokens + 15,
              `contexts added ${rag.usage.prompt_tokens - plain.usage.prompt_tokens} prompt tokens`);
});

test('a conversation with tools, a tool call and its result', async () => {
    const tools = [{
        type: 'function',
        function: {
            name: 'get_weather', description: 'The weather in a city',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
    }];
    const messages = [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: 'What is the weather in Oslo?' },
        { role: 'assistant', content: null, tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Oslo"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 4, "sky": "rain"}' },
    ];
    const short = await c.chat.completions.create({ model: MODEL, messages: messages.slice(0, 2), max_tokens: 4, temperature: 0, tools });
    const r = await c.chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 0, tools, tool_choice: 'auto' });
    checkUsage(r.usage);
    assert.ok(r.usage.prompt_tokens > short.usage.prompt_tokens + 10, 'the tool turns are not in the prompt');
    assert.equal(r.choices[0].message.role, 'assistant');
    const none = await c.chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 0, tools, tool_choice: 'none' });
    assert.ok(!none.choices[0].message.tool_calls?.length);
});

test('POST /v1/completions', async () => {
    const p = { model: MODEL, prompt: 'The blacksmith said', max_tokens: 8, temperature: 0 };
    const r = await c.completions.create(p);
    assert.equal(r.object, 'text_completion');
    assert.equal(typeof r.id, 'string');
    assert.equal(r.model, MODEL);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(typeof r.choices[0].text, 'string');
    assert.ok(r.choices[0].text.length > 0);
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    checkUsage(r.usage);
    const again = await c.completions.create(p);
    assert.equal(again.choices[0].text, r.choices[0].text);
    // seeded sampling, whole and streamed
    const sp = { ...p, max_tokens: 24, temperature: 1, seed: 8 };
    const whole = await c.completions.create(sp);
    let joined = '';
    let finish = null;
    for await (const chunk of await c.completions.create({ ...sp, stream: true })) {
        assert.equal(chunk.object, 'text_completion');
        for (const ch of chunk.choices) {
            joined += ch.text ?? '';
            if (ch.finish_reason) finish = ch.finish_reason;
        }
    }
    assert.equal(joined, whole.choices[0].text);
    assert.equal(finish, whole.choices[0].finish_reason);
    const l = await c.completions.create({ ...p, max_tokens: 3 });
    assert.equal(l.choices[0].finish_reason, 'length');
    assert.equal(l.usage.completion_tokens, 3);
});

test('GET /metrics in Prometheus text', async () => {
    // Nothing runs now: the scheduler updates its figures before a
    // request's last event, so they are 0 by the time its client has it.
    const { text, values } = await metrics(env('NT_URL'), env('NT_API_KEY'));
    assert.equal(metric(values, 'nemotron_requests_running'), 0, 'requests running');
    assert.equal(metric(values, 'nemotron_requests_waiting'), 0, 'requests waiting');
    assert.equal(metric(values, 'nemotron_kv_cache_blocks{state="used"}'), 0, 'KV blocks used');
    assert.match(text, /^# TYPE nemotron_time_to_first_token_seconds histogram$/m);
    assert.ok(metric(values, 'nemotron_time_to_first_token_seconds_count') > 0, 'no TTFT observed');
    assert.ok(metric(values, 'nemotron_time_to_first_token_seconds_bucket{le="+Inf"}') > 0);
    assert.ok(metric(values, 'nemotron_time_to_first_token_seconds_sum') >= 0);
    assert.ok(metric(values, 'nemotron_prompt_tokens_total') > 0, 'prompt tokens');
    assert.ok(metric(values, 'nemotron_generation_tokens_total') > 0, 'generated tokens');
});

test('response_format json modes are refused (400)', async () => {
    await expectApiError(chat({ max_tokens: 4, response_format: { type: 'json_object' } }),
                         OpenAI.BadRequestError, 400, 'json_object');
    await expectApiError(chat({ max_tokens: 4, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } } }),
                         OpenAI.BadRequestError, 400, 'json_schema');
});
