#!/usr/bin/env python3
"""serve_bench.py - load an OpenAI-compatible server the way a game does.

Measures, against any server with /v1/completions (nemotron serve,
llama.cpp's llama-server, vLLM):

  throughput  N concurrent clients, each streaming one completion of
              --max-tokens tokens from its own prompt; total generated
              tokens per second of wall time (tokens from each response's
              usage, or its streamed chunks when a server sends no usage),
              for each N in --clients.
  ttft        time to first token of a request whose long shared prefix
              (an NPC's system prompt and lore: --prefix-words words) is
              not cached, then of a request that repeats the prefix with a
              different question. Each repetition uses a new prefix.

Raw completions (no chat template), so that two servers do the same work.
Python's standard library only. Example:

  build/nemotron serve -m models/synth-mini-4b-q4_0.gguf --parallel 16 &
  bench/serve_bench.py --url http://127.0.0.1:8000/v1 --clients 1,4,16
"""
import argparse
import json
import random
import sys
import threading
import time
import urllib.request


def words(rng, n):
    vocab = ("the guard tavern sword dragon village merchant quest gold river "
             "mountain king shadow forest castle night ancient spell captain "
             "harbor storm witch temple bread market lantern road wolf").split()
    return " ".join(rng.choice(vocab) for _ in range(n))


def stream_completion(url, prompt, max_tokens, key=None):
    """Streams one completion. Returns (seconds to first text, seconds in
    all, completion tokens, prompt tokens or None)."""
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True},
            "ignore_eos": True, "cache_prompt": True}
    req = urllib.request.Request(url + "/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    if key:
        req.add_header("Authorization", "Bearer " + key)
    t0 = time.perf_counter()
    first = None
    chunks = 0
    usage = None
    with urllib.request.urlopen(req, timeout=3600) as resp:
        for raw in resp:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            obj = json.loads(data)
            if obj.get("usage"):
                usage = obj["usage"]
            for ch in obj.get("choices") or []:
                if ch.get("text"):
                    chunks += 1
                    if first is None:
                        first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    n = usage["completion_tokens"] if usage and usage.get("completion_tokens") else chunks
    return (first if first is not None else total), total, n, (usage or {}).get("prompt_tokens")


def throughput(args, n_clients, rng):
    prompts = ["%d. %s" % (i, words(rng, args.prompt_words)) for i in range(n_clients)]
    results = [None] * n_clients
    errors = []

    def client(i):
        try:
            results[i] = stream_completion(args.url, prompts[i], args.max_tokens, args.api_key)
        except Exception as e:  # reported, not hidden
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        sys.exit("errors: " + "; ".join(errors))
    tokens = sum(r[2] for r in results)
    ttft = sorted(r[0] for r in results)
    return tokens, wall, ttft[len(ttft) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000/v1")
    ap.add_argument("--api-key")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt-words", type=int, default=24)
    ap.add_argument("--prefix-words", type=int, default=1500,
                    help="words of the shared prefix of the ttft test (0: skip it)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = {"url": args.url, "max_tokens": args.max_tokens, "throughput": [], "ttft": []}

    # one short request first, so that loading and first touches are not timed
    stream_completion(args.url, "warm up", 4, args.api_key)

    for n in [int(x) for x in args.clients.split(",") if x]:
        best = None
        for _ in range(args.repeat):
            tokens, wall, ttft = throughput(args, n, rng)
            if best is None or tokens / wall > best[0] / best[1]:
                best = (tokens, wall, ttft)
        tokens, wall, ttft = best
        row = {"clients": n, "tokens": tokens, "seconds": round(wall, 3),
               "tokens_per_second": round(tokens / wall, 2), "median_ttft": round(ttft, 3)}
        out["throughput"].append(row)
        if not args.json:
            print("clients %3d: %5d tokens in %7.2f s = %7.2f t/s (median ttft %.2f s)"
                  % (n, tokens, wall, tokens / wall, ttft), flush=True)

    for r in range(args.repeat if args.prefix_words > 0 else 0):
        prefix = "Lore %d: %s\n" % (r, words(rng, args.prefix_words))
        cold, _, _, n_prompt = stream_completion(
            args.url, prefix + "Question: who guards the gate?", 1, args.api_key)
        warm, _, _, _ = stream_completion(
            args.url, prefix + "Question: where is the inn?", 1, args.api_key)
        out["ttft"].append({"prompt_tokens": n_prompt, "cold": round(cold, 3),
                            "cached": round(warm, 3)})
        if not args.json:
            print("ttft, %s-token prompt: not cached %.2f s, cached prefix %.2f s"
                  % (n_prompt, cold, warm), flush=True)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
