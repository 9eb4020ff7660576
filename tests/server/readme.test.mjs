// The README's curl examples, run as written against the server that
// run.sh started with the README's own `nemotron serve` command; only the
// address changes (the test server listens on a free port, not 8000).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { env, rootOf, ms } from './lib.mjs';

const README = new URL('../../README.md', import.meta.url);
const ROOT = rootOf(env('NT_README_URL'));    // http://127.0.0.1:PORT

// Fenced ```sh blocks whose first line is a curl command.
function curlBlocks(text) {
    const blocks = [];
    const re = /^```sh\n([\s\S]*?)^```/gm;
    for (let m; (m = re.exec(text));) {
        if (/^curl\s/.test(m[1])) blocks.push(m[1]);
    }
    return blocks;
}

const blocks = curlBlocks(readFileSync(README, 'utf8'));

test('the README has curl examples for the server', () => {
    assert.ok(blocks.length >= 4, `${blocks.length} curl blocks in README.md`);
    for (const b of blocks) assert.match(b, /http:\/\/127\.0\.0\.1:8000\//, `not against 127.0.0.1:8000: ${b}`);
    const all = blocks.join('\n');
    for (const what of ['/v1/chat/completions', '/v1/completions', '/metrics', '"stream": true', '"tools"'])
        assert.ok(all.includes(what), `no curl example with ${what}`);
});

for (const [i, block] of blocks.entries()) {
    const first = block.split('\n')[0];
    test(`README curl ${i + 1}: ${first.slice(0, 70)}`, { timeout: ms(60000) }, () => {
        const script = block.replaceAll('http://127.0.0.1:8000', ROOT);
        const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', script], { encoding: 'utf8', timeout: ms(30000) });
        assert.equal(r.status, 0, `exit ${r.status}\n${block}\nstderr: ${r.stderr}`);
        const out = r.stdout.trim();
        assert.ok(out.length > 0, `no output from\n${block}`);
        if (/\/metrics\b/.test(block)) {
            assert.match(out, /^# TYPE nemotron_\w+ \w+$/m, `not Prometheus text:\n${out.slice(0, 500)}`);
            assert.match(out, /^nemotron_requests_running \d/m);
        } else if (/"stream":\s*true/.test(block)) {
            const events = out.split(/\n\n+/).map((e) => e.trim()).filter(Boolean);
            assert.equal(events.at(-1), 'data: [DONE]', `the stream does not end with [DONE]:\n${out.slice(-300)}`);
            assert.ok(events.length >= 3, `${events.length} events`);
            let text = '';
            for (const e of events.slice(0, -1)) {
                assert.ok(e.startsWith('data: '), `not an SSE data event: ${e}`);
                const chunk = JSON.parse(e.slice(6));
                assert.ok(!chunk.error, `error in the stream: ${e}`);
                assert.ok(['chat.completion.chunk', 'text_completion'].includes(chunk.object), `object ${chunk.object}`);
                text += chunk.choices?.[0]?.delta?.content ?? chunk.choices?.[0]?.text ?? '';
            }
            assert.ok(text.length > 0, 'the stream has no text');
        } else {
            let body;
            assert.doesNotThrow(() => { body = JSON.parse(out); }, `not JSON:\n${out.slice(0, 500)}`);
            assert.ok(!body.error, `an error: ${out}`);
            assert.ok(['chat.completion', 'text_completion', 'list'].includes(body.object), `object ${body.object}`);
            if (body.object !== 'list') assert.ok(body.usage && body.choices?.length >= 1, out);
        }
    });
}

test('the README says how to point the OpenAI clients at the server', () => {
    const text = readFileSync(README, 'utf8');
    assert.ok(text.includes('http://127.0.0.1:8000/v1'), 'no base URL http://127.0.0.1:8000/v1');
    assert.match(text, /^build\/nemotron serve -m tests\/fixtures\/tiny-nemotron/m);
});
