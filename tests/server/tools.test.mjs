// Tool calls, on a scripted model (nemotron synth --script) whose reply to
// any prompt is one call of get_weather:
//   <toolcall> {"name": "get_weather"} </toolcall>
// (the tiny fixture's tokenizer has too few spellings of '"' for a bigram
// model to write an "arguments" object too; a call without one has the
// arguments {}), and on a second one that completes the call a named
// tool_choice begins, with arguments {"city": "Oslo"}. The official client
// reads them whole and streamed.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { client, env, modelId, collectChat, checkUsage, sameUsage, expectApiError } from './lib.mjs';

const c = client({ baseURL: env('NT_TOOL_URL'), apiKey: 'unused' });
const SCRIPT = env('NT_TOOL_SCRIPT');
let MODEL;
before(async () => { MODEL = await modelId(c); });

const tools = [
    {
        type: 'function',
        function: {
            name: 'get_weather', description: 'The current weather in a city.',
            parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
    },
    {
        type: 'function',
        function: { name: 'get_time', description: 'The time now.', parameters: { type: 'object', properties: {} } },
    },
];
const messages = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is the weather like in Oslo?' },
];
const EXPECTED = JSON.parse(SCRIPT.replace(/^<toolcall>|<\/toolcall>$/g, '').trim());
const EXPECTED_ARGS = EXPECTED.arguments ?? {};

function checkCall(message, finish, what) {
    assert.equal(finish, 'tool_calls', `${what}: finish_reason`);
    assert.equal(message.role, 'assistant', `${what}: role`);
    assert.ok(message.content === null || message.content === '',
              `${what}: content ${JSON.stringify(message.content)} beside the call`);
    assert.ok(Array.isArray(message.tool_calls), `${what}: no tool_calls in ${JSON.stringify(message)}`);
    assert.equal(message.tool_calls.length, 1, `${what}: ${message.tool_calls.length} calls`);
    const call = message.tool_calls[0];
    assert.equal(call.type, 'function', `${what}: type`);
    assert.equal(typeof call.id, 'string', `${what}: id`);
    assert.ok(call.id.length > 0, `${what}: empty id`);
    assert.equal(call.function.name, EXPECTED.name, `${what}: name`);
    assert.equal(typeof call.function.arguments, 'string', `${what}: arguments is a JSON string`);
    assert.deepEqual(JSON.parse(call.function.arguments), EXPECTED_ARGS, `${what}: arguments`);
    return call;
}

test('a tool call, whole', async () => {
    for (const tool_choice of [undefined, 'auto']) {
        const r = await c.chat.completions.create({ model: MODEL, messages, tools, tool_choice, max_tokens: 64, temperature: 0 });
        checkCall(r.choices[0].message, r.choices[0].finish_reason, `tool_choice ${tool_choice}`);
        checkUsage(r.usage);
    }
    // temperature 1: the scripted logits lead by far, the same call
    const t = await c.chat.completions.create({ model: MODEL, messages, tools, max_tokens: 64, temperature: 1, seed: 3 });
    checkCall(t.choices[0].message, t.choices[0].finish_reason, 'temperature 1');
});

test('a tool call, streamed: the client\'s stream helper', async () => {
    const stream = c.chat.completions.stream({ model: MODEL, messages, tools, max_tokens: 64, temperature: 0,
                                               stream_options: { include_usage: true } });
    const done = [];
    stream.on('tool_calls.function.arguments.done', (e) => done.push(e));
    let content = '';
    stream.on('content', (d) => { content += d; });
    const final = await stream.finalChatCompletion();
    const call = checkCall(final.choices[0].message, final.choices[0].finish_reason, 'stream helper');
    assert.equal(content, '', 'content deltas beside the call');
    assert.equal(done.length, 1, 'tool_calls.function.arguments.done events');
    assert.equal(done[0].name, EXPECTED.name);
    assert.deepEqual(JSON.parse(done[0].arguments), EXPECTED_ARGS);
    checkUsage(final.usage, 'stream usage');
    // the same as the whole reply
    const whole = await c.chat.completions.create({ model: MODEL, messages, tools, max_tokens: 64, temperature: 0 });
    assert.equal(call.function.arguments, whole.choices[0].message.tool_calls[0].function.arguments);
    sameUsage(final.usage, whole.usage, 'stream usage vs the whole reply\'s');
});

test('a tool call, streamed: the deltas', async () => {
    const chunks = [];
    for await (const chunk of await c.chat.completions.create({ model: MODEL, messages, tools, max_tokens: 64, temperature: 0, stream: true }))
        chunks.push(chunk);
    const deltas = chunks.flatMap((ch) => ch.choices).flatMap((ch) => ch.delta?.tool_calls ?? []);
    assert.ok(deltas.length >= 1, 'no tool_calls deltas');
    assert.ok(deltas.every((d) => d.index === 0), 'tool call delta index');
    assert.equal(deltas[0].type, 'function');
    assert.ok(deltas[0].id, 'the first delta carries the id');
    assert.equal(deltas[0].function.name, EXPECTED.name, 'the first delta carries the name');
    const args = deltas.map((d) => d.function?.arguments ?? '').join('');
    assert.deepEqual(JSON.parse(args), EXPECTED_ARGS);
    const finishes = chunks.flatMap((ch) => ch.choices).map((ch) => ch.finish_reason).filter(Boolean);
    assert.deepEqual(finishes, ['tool_calls']);
    const s = await collectChat(await c.chat.completions.create({ model: MODEL, messages, tools, max_tokens: 64, temperature: 0, stream: true }));
    assert.equal(s.content[0] ?? '', '', 'content deltas beside the call');
});

test('tool_choice required', async () => {
    const req = await c.chat.completions.create({ model: MODEL, messages, tools, tool_choice: 'required', max_tokens: 64, temperature: 0 });
    checkCall(req.choices[0].message, req.choices[0].finish_reason, 'tool_choice required');
    const stream = c.chat.completions.stream({ model: MODEL, messages, tools, tool_choice: 'required', max_tokens: 64, temperature: 0 });
    const final = await stream.finalChatCompletion();
    checkCall(final.choices[0].message, final.choices[0].finish_reason, 'tool_choice required, streamed');
});

// The second scripted model writes only what follows the start of a call
// the server puts in the reply for a named tool_choice: the whole reply is
// then a call of get_weather with arguments.
test('tool_choice named: the call, with arguments', async () => {
    const nc = client({ baseURL: env('NT_NAMED_URL'), apiKey: 'unused' });
    const model = await modelId(nc);
    const expected = { name: 'get_weather', arguments: JSON.parse(env('NT_NAMED_SCRIPT').replace(/\}\s*<\/toolcall>$/, '')) };
    const params = { model, messages, tools, max_tokens: 64, temperature: 0,
                     tool_choice: { type: 'function', function: { name: 'get_weather' } } };
    const check = (message, finish, what) => {
        assert.equal(finish, 'tool_calls', `${what}: finish_reason`);
        assert.ok(message.content === null || message.content === '', `${what}: content ${JSON.stringify(message.content)}`);
        assert.equal(message.tool_calls?.length, 1, `${what}: tool_calls ${JSON.stringify(message.tool_calls)}`);
        const call = message.tool_calls[0];
        assert.equal(call.type, 'function');
        assert.ok(call.id);
        assert.equal(call.function.name, expected.name, `${what}: name`);
        assert.deepEqual(JSON.parse(call.function.arguments), expected.arguments, `${what}: arguments`);
    };
    const r = await nc.chat.completions.create(params);
    check(r.choices[0].message, r.choices[0].finish_reason, 'named');
    checkUsage(r.usage);
    const stream = nc.chat.completions.stream(params);
    const done = [];
    stream.on('tool_calls.function.arguments.done', (e) => done.push(e));
    const final = await stream.finalChatCompletion();
    check(final.choices[0].message, final.choices[0].finish_reason, 'named, streamed');
    assert.equal(done.length, 1);
    assert.deepEqual(JSON.parse(done[0].arguments), expected.arguments);
    // a name that is not among the tools is refused
    await expectApiError(nc.chat.completions.create({ ...params, tool_choice: { type: 'function', function: { name: 'get_time_of_day' } } }),
                         OpenAI.BadRequestError, 400, 'tool_choice naming no tool');
});

test('tool_choice none: no call, the text as content', async () => {
    const r = await c.chat.completions.create({ model: MODEL, messages, tools, tool_choice: 'none', max_tokens: 64, temperature: 0 });
    const m = r.choices[0].message;
    assert.ok(!m.tool_calls?.length, `tool_calls with tool_choice none: ${JSON.stringify(m.tool_calls)}`);
    assert.notEqual(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(typeof m.content, 'string');
});

test('n=2 tool calls', async () => {
    const r = await c.chat.completions.create({ model: MODEL, messages, tools, n: 2, max_tokens: 64, temperature: 1, seed: 1 });
    assert.equal(r.choices.length, 2);
    for (const ch of r.choices) checkCall(ch.message, ch.finish_reason, `n=2 choice ${ch.index}`);
    assert.notEqual(r.choices[0].message.tool_calls[0].id, r.choices[1].message.tool_calls[0].id, 'two calls with one id');
});
