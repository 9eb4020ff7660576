#!/usr/bin/env python3
"""Prefill and decode speed of nemotron and llama.cpp, side by side.

usage: bench/compare_llamacpp.py LLAMA_BENCH MODEL.gguf [MODEL.gguf ...]
       [--nemotron build/nemotron] [--bandwidth build/bench_bandwidth]
       [-t 2] [-p 512] [-n 128] [-r 3] [--rounds 2]

Both programs read the same files with the weights in memory (llama-bench
-mmp 0, nemotron --no-mmap). Each round runs every model once in each
program, alternating, so that a noisy machine slows both alike; the table
reports the best round's median of each. The memory read bandwidth is
probed before each model in each round (bench_bandwidth, same thread
count), and decode speed is also given as a fraction of the highest sample:
weight bytes read per token (nemotron's decode_bytes) times tokens per
second, over that bandwidth.

llama.cpp is not part of this project: build it yourself and pass the path
of its llama-bench.
"""
import argparse
import json
import re
import subprocess
import sys


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def nemotron_bench(args, model):
    out = run([args.nemotron, "bench", "-m", model, "-p", str(args.p), "-n", str(args.n),
               "-t", str(args.t), "-r", str(args.r), "--no-mmap", "--json"])
    j = json.loads(out.strip().splitlines()[-1])
    return {"pp": j.get("pp_tps"), "tg": j.get("tg_tps"), "type": j["weight_type"],
            "bytes": j["weight_bytes"], "decode_bytes": j["decode_bytes"]}


def llama_bench(args, model):
    out = run([args.llama_bench, "-m", model, "-t", str(args.t), "-mmp", "0",
               "-p", str(args.p), "-n", str(args.n), "-r", str(args.r), "-o", "json"])
    res = {"pp": None, "tg": None}
    for row in json.loads(out):
        key = "pp" if row["n_gen"] == 0 else "tg"
        samples = sorted(row.get("samples_ts") or [row["avg_ts"]])
        res[key] = samples[len(samples) // 2]
    return res


def bandwidth(args):
    """The probe's median and highest sample."""
    out = run([args.bandwidth, str(args.t), "2048", "5"])
    m = re.search(r"median ([0-9.]+) GB/s \(([0-9.]+)\.\.([0-9.]+)\)", out)
    return float(m.group(1)), float(m.group(3)), out.strip()


def best(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("llama_bench")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--nemotron", default="build/nemotron")
    ap.add_argument("--bandwidth", default="build/bench_bandwidth")
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    # The machine's bandwidth drifts over minutes, so it is probed before
    # every model of every round, and decoding is held to the highest
    # sample seen: its share is then never flattered by a slow probe.
    bw_medians, bw_peak = [], 0.0
    ours, theirs = {}, {}
    for rnd in range(args.rounds):
        for model in args.models:
            med, peak, line = bandwidth(args)
            bw_medians.append(med)
            bw_peak = max(bw_peak, peak)
            print(line, file=sys.stderr)
            print(f"round {rnd + 1}: {model}", file=sys.stderr)
            o = nemotron_bench(args, model)
            t = llama_bench(args, model)
            prev_o = ours.get(model, {})
            prev_t = theirs.get(model, {})
            ours[model] = dict(o, pp=best(prev_o.get("pp"), o["pp"]),
                               tg=best(prev_o.get("tg"), o["tg"]))
            theirs[model] = {k: best(prev_t.get(k), t[k]) for k in ("pp", "tg")}

    bw_medians.sort()
    print(f"\nthreads {args.t}, pp{args.p} and tg{args.n}, weights in memory; read "
          f"bandwidth: highest sample {bw_peak:.1f} GB/s, probe medians "
          f"{bw_medians[0]:.1f}..{bw_medians[-1]:.1f} GB/s\n")
    print("| model | type | GiB | pp llama.cpp | pp nemotron | x | tg llama.cpp "
          "| tg nemotron | x | decode GB/s | of bandwidth |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for model in args.models:
        o, t = ours[model], theirs[model]

        def ratio(a, b):
            return f"{a / b:.2f}" if a and b else "-"

        dec = o["decode_bytes"] * o["tg"] / 1e9 if o["tg"] else 0
        print(f"| {model.split('/')[-1]} | {o['type']} | {o['bytes'] / 2**30:.2f} "
              f"| {t['pp'] or 0:.2f} | {o['pp'] or 0:.2f} | {ratio(o['pp'], t['pp'])} "
              f"| {t['tg'] or 0:.2f} | {o['tg'] or 0:.2f} | {ratio(o['tg'], t['tg'])} "
              f"| {dec:.1f} | {100 * dec / bw_peak:.0f}% |")


if __name__ == "__main__":
    main()
