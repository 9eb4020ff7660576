// 16 streaming clients at once get exactly what each gets alone.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { client, env, modelId, checkUsage, sameUsage, metrics, metric, ms, sleep } from './lib.mjs';

const c = client();
let MODEL;
before(async () => { MODEL = await modelId(c); });

const N = 16;
const topics = ['the forge', 'the mill', 'the river', 'the old oak', 'the harvest', 'the king',
    'the dragon', 'the tavern', 'a sword', 'the winter', 'the market', 'the bridge',
    'the wolves', 'the well', 'the chapel', 'the mine'];

function request(i) {
    return {
        model: MODEL,
        messages: [
            { role: 'system', content: `You are villager number ${i} of Oakvale.` },
            { role: 'user', content: `Tell me about ${topics[i]}.${' Please.'.repeat(i % 4)}` },
        ],
        max_tokens: 24 + (i % 3) * 4,
        temperature: 1,
        seed: 1000 + 17 * i,
        stream: true,
        stream_options: { include_usage: true },
    };
}

async function run(i, times) {
    const stream = await c.chat.completions.create(request(i));
    let first = null;
    const out = { content: '', finish: null, usage: null };
    for await (const chunk of stream) {
        const ch = chunk.choices[0];
        if (ch && first === null) first = Date.now();
        if (typeof ch?.delta?.content === 'string') out.content += ch.delta.content;
        if (ch?.finish_reason) out.finish = ch.finish_reason;
        if (chunk.usage) out.usage = chunk.usage;
    }
    if (times) times[i] = [first, Date.now()];
    return out;
}

test(`${N} concurrent streams equal the same requests run alone`, { timeout: ms(120000) }, async () => {
    const alone = [];
    for (let i = 0; i < N; i++) {
        alone.push(await run(i));
        assert.ok(alone[i].content.length > 0, `request ${i} alone: empty reply`);
        assert.ok(['stop', 'length'].includes(alone[i].finish), `request ${i}: finish ${alone[i].finish}`);
        checkUsage(alone[i].usage, `request ${i} usage`);
    }
    const distinct = new Set(alone.map((o) => o.content));
    assert.equal(distinct.size, N, 'the requests alone do not all differ');

    // all at once, watching how many run together
    const times = [];
    const t0 = Date.now();
    const together = await Promise.all(Array.from({ length: N }, (_, i) => run(i, times)));
    const wall = Date.now() - t0;
    const mismatches = [];
    for (let i = 0; i < N; i++) {
        if (together[i].content !== alone[i].content || together[i].finish !== alone[i].finish)
            mismatches.push(`request ${i}:\n  alone:    ${JSON.stringify(alone[i].content)} (${alone[i].finish})\n` +
                            `  together: ${JSON.stringify(together[i].content)} (${together[i].finish})`);
        sameUsage(together[i].usage, alone[i].usage, `request ${i} usage`);
    }
    assert.equal(mismatches.length, 0, `${mismatches.length} of ${N} differ:\n${mismatches.join('\n')}`);

    // streams in flight at once: from a first chunk to a last one
    let most = 0;
    for (const [a] of times) most = Math.max(most, times.filter(([s, e]) => s <= a && a <= e).length);
    console.log(`# ${N} streams together: ${wall} ms, at most ${most} in flight at once`);
    assert.ok(most >= 2, 'the streams never overlapped: the server ran them one by one');

    // and the server is idle again
    let v;
    for (let t = 0; t < ms(5000); t += 100) {
        v = (await metrics(env('NT_URL'), env('NT_API_KEY'))).values;
        if (metric(v, 'nemotron_requests_running') === 0 && metric(v, 'nemotron_requests_waiting') === 0) break;
        await sleep(100);
    }
    assert.equal(metric(v, 'nemotron_requests_running'), 0);
    assert.equal(metric(v, 'nemotron_requests_waiting'), 0);
    assert.equal(metric(v, 'nemotron_kv_cache_blocks{state="used"}'), 0);
});
