#!/usr/bin/env python3
"""perplexity.py - perplexity of a model on a text, in PyTorch (model.py).

  perplexity.py --model MODEL_DIR --ids IDS.json [--ctx 256]

IDS.json is the text's token ids, BOS first (`nemotron tokenize --bos
--no-special < text > ids.json`). The windows are llama.cpp's, as in
`nemotron perplexity`: non-overlapping windows of CTX tokens, the first
token of each replaced by BOS, the logits at positions CTX/2 .. CTX-2
scored against the next token. Prints one JSON object: ppl, the mean NLL
and the counts. This is the reference a shipped model's README records,
computed without the engine, so that a test can compare the two.
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import from_pretrained  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="perplexity in PyTorch, llama.cpp's windows")
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.ids) as f:
        ids = json.load(f)
    model = from_pretrained(args.model).eval()
    bos = ids[0]
    ctx, first = args.ctx, args.ctx // 2
    n_windows = len(ids) // ctx
    nll_sum, n_scored = 0.0, 0
    with torch.no_grad():
        for w in range(n_windows):
            win = ids[w * ctx:(w + 1) * ctx]
            win[0] = bos
            logits = model(torch.tensor([win]))[0].double()
            logp = torch.log_softmax(logits[first:ctx - 1], dim=-1)
            target = torch.tensor(win[first + 1:ctx])
            nll = -logp.gather(1, target[:, None]).squeeze(1)
            nll_sum += nll.sum().item()
            n_scored += nll.numel()
    mean = nll_sum / n_scored
    print(json.dumps({"ppl": math.exp(mean), "nll_mean": mean, "n_ctx": ctx,
                      "n_tokens": len(ids), "n_windows": n_windows, "n_scored": n_scored}))


if __name__ == "__main__":
    main()
