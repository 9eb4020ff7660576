#!/usr/bin/env python3
"""train.py - train the small Nemotron model on the CPU (or a CUDA device)
and export it as an HF model directory that nemotron loads.

  train.py --data DATA_DIR --out OUT_DIR [--steps N] [...]

DATA_DIR is what build_data.py and train_tokenizer.sh wrote (train.jsonl,
heldout.jsonl, tokenizer.model, nodummy.model, tokenizer.json,
tokenizer_config.json). The text is encoded once with Debian's spm_encode
and cached in DATA_DIR/{train,heldout}.ids (int16 tokens, one document after
another, with their offsets).

Encoding: spm_encode works line by line, and no piece of the vocabulary
contains a newline (spm_train reads lines), so a document's encoding is the
encoding of its lines joined by the <0x0A> byte piece, exactly as
SentencePiece encodes the whole text, provided the dummy prefix "▁" is
added to the first line only (nodummy.model encodes the others). Chat
documents start with <extra_id_0>: SentencePiece gives it a lone "▁" piece
first, HF tokenizer.json (Metaspace, prepend_scheme "first") does not; half
of them (seeded) are encoded each way so the model answers either. Prose
documents are <s> text </s>; chat documents text </s> (nemotron chat sends no
<s>), so a reply ends with </s> or the next <extra_id_1>.

Batches: rows of --seq tokens (+1 for the targets), packed with whole
documents from a seeded shuffle; the document that does not fit is cut, and
the next row starts again at its beginning, so every document is seen once
per epoch from position 0.

Writes OUT_DIR/ckpt.pt every --ckpt-every steps and at the end (--resume
continues from it), OUT_DIR/log.jsonl, and the export: OUT_DIR/model/
{config.json, model.safetensors, tokenizer.model, tokenizer.json,
tokenizer_config.json}. --export-only exports the last checkpoint (to
--export-to DIR, say) without training: a look at a run that goes on.
"""
import argparse
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import time

def _threads():
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "2"


# BLAS threads (Debian's torch calls the system BLAS; install
# libopenblas0-pthread, the reference BLAS is ~10x slower), before torch loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads())
os.environ.setdefault("OMP_NUM_THREADS", _threads())

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, Nemotron, save_safetensors  # noqa: E402

BOS, EOS = 2, 3


# --- encoding ----------------------------------------------------------------

def spm_encode(model, lines):
    """ids for each line, by spm_encode (one process for all lines)."""
    if not lines:
        return []
    p = subprocess.run(["spm_encode", "--model=" + model, "--output_format=id"],
                       input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    out = p.stdout.split("\n")[:-1]
    if len(out) != len(lines):
        raise RuntimeError("spm_encode: %d lines in, %d out" % (len(lines), len(out)))
    return [[int(x) for x in o.split()] for o in out]


def newline_id(data_dir):
    with open(os.path.join(data_dir, "tokenizer.vocab"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.split("\t")[0] == "<0x0A>":
                return i
    raise RuntimeError("no <0x0A> piece")


def encode_docs(data_dir, name, seed):
    """Token ids of DATA_DIR/NAME.jsonl as (tokens int16 tensor, offsets),
    cached in DATA_DIR/NAME.ids."""
    cache = os.path.join(data_dir, name + ".ids")
    if os.path.exists(cache):
        blob = torch.load(cache)
        return blob["tokens"], blob["offsets"]
    docs = [json.loads(line) for line in open(os.path.join(data_dir, name + ".jsonl"), encoding="utf-8")]
    rng = random.Random(seed)
    first, rest, plan = [], [], []
    for d in docs:
        lines = d["text"].split("\n")
        if d["kind"] == "chat" and rng.random() < 0.5:
            plan.append((d["kind"], None, len(rest)))          # no dummy prefix
            rest.extend(lines)
        else:
            plan.append((d["kind"], len(first), len(rest)))
            first.append(lines[0])
            rest.extend(lines[1:])
    t0 = time.time()
    ids_first = spm_encode(os.path.join(data_dir, "tokenizer.model"), first)
    ids_rest = spm_encode(os.path.join(data_dir, "nodummy.model"), rest)
    nl = newline_id(data_dir)
    tokens, offsets = [], [0]
    for (kind, fi, ri), d in zip(plan, docs):
        n = d["text"].count("\n") + 1
        parts = ([ids_first[fi]] + ids_rest[ri:ri + n - 1]) if fi is not None else ids_rest[ri:ri + n]
        seq = [BOS] if kind == "prose" else []
        for i, p in enumerate(parts):
            if i:
                seq.append(nl)
            seq.extend(p)
        seq.append(EOS)
        tokens.extend(seq)
        offsets.append(len(tokens))
    t = torch.tensor(tokens, dtype=torch.int16)
    torch.save({"tokens": t, "offsets": offsets}, cache)
    print("encoded %s: %d docs, %d tokens (%.1f s)" % (name, len(docs), len(tokens), time.time() - t0),
          flush=True)
    return t, offsets


def make_rows(tokens, offsets, seq, seed):
    """Start offsets of rows of seq+1 tokens (see the module comment)."""
    n_docs = len(offsets) - 1
    order = list(range(n_docs))
    random.Random(seed).shuffle(order)
    rows = []  # list of lists of (start, end) spans
    cur, room = [], seq + 1
    i = 0
    while i < len(order):
        a, b = offsets[order[i]], offsets[order[i] + 1]
        if b - a > seq + 1:             # longer than a row: its own chunks
            for s in range(a, b - 1, seq + 1):
                rows.append([(s, min(b, s + seq + 1))])
            i += 1
            continue
        if b - a <= room:
            cur.append((a, b))
            room -= b - a
            i += 1
        else:
            cur.append((a, a + room))   # cut; the next row starts this doc again
            rows.append(cur)
            cur, room = [], seq + 1
    if cur:
        rows.append(cur)
    return rows


def row_tensor(tokens, spans, seq):
    parts = [tokens[a:b] for a, b in spans]
    r = torch.cat(parts).long()
    if len(r) < seq + 1:  # only the last row of an epoch; pad with eos, masked
        r = torch.cat([r, torch.full((seq + 1 - len(r),), -1, dtype=torch.long)])
    return r


class Batches:
    def __init__(self, tokens, offsets, seq, batch, seed):
        self.tokens, self.offsets, self.seq, self.batch, self.seed = tokens, offsets, seq, batch, seed
        self.epoch, self.rows = -1, None

    def get(self, step):
        per_epoch = None
        if self.rows is None:
            self.rows = make_rows(self.tokens, self.offsets, self.seq, self.seed)
            self.epoch = 0
        per_epoch = len(self.rows) // self.batch
        epoch, i = divmod(step, per_epoch)
        if epoch != self.epoch:
            self.rows = make_rows(self.tokens, self.offsets, self.seq, self.seed + epoch)
            self.epoch = epoch
        rows = self.rows[i * self.batch:(i + 1) * self.batch]
        return torch.stack([row_tensor(self.tokens, r, self.seq) for r in rows]), epoch


def loss_of(model, rows):
    x, y = rows[:, :-1].clamp(min=0), rows[:, 1:]
    logits = model(x)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                             y.reshape(-1), ignore_index=-1)


# --- export ------------------------------------------------------------------

def export(model, data_dir, out_dir, dtype):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(model.config.hf_dict(), f, indent=2)
        f.write("\n")
    save_safetensors(os.path.join(out_dir, "model.safetensors"), model.state_dict(), dtype)
    for name in ("tokenizer.model", "tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(data_dir, name), os.path.join(out_dir, name))


# --- main ----------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="train the small Nemotron model")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--kv-heads", type=int, default=1)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--ff", type=int, default=768)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-rows", type=int, default=64)
    ap.add_argument("--ckpt-every", type=int, default=1000)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="stop (checkpoint and export) after this long; 0: no limit")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dtype", choices=["bf16", "f32"], default="bf16",
                    help="weights in the exported model.safetensors")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true",
                    help="export OUT/ckpt.pt to OUT/model (or --export-to) and stop; no training")
    ap.add_argument("--export-to", help="where --export-only writes the model")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    vocab = sum(1 for _ in open(os.path.join(args.data, "tokenizer.vocab"), encoding="utf-8"))
    cfg = Config(vocab_size=vocab, hidden_size=args.hidden, intermediate_size=args.ff,
                 num_hidden_layers=args.layers, num_attention_heads=args.heads,
                 num_key_value_heads=args.kv_heads, head_dim=args.head_dim)
    train_tok, train_off = encode_docs(args.data, "train", args.seed)
    held_tok, held_off = encode_docs(args.data, "heldout", args.seed + 1)
    batches = Batches(train_tok, train_off, args.seq, args.batch, args.seed)
    held_rows = make_rows(held_tok, held_off, args.seq, args.seed)[:args.eval_rows]
    held = torch.stack([row_tensor(held_tok, r, args.seq) for r in held_rows]).to(args.device)

    model = Nemotron(cfg)
    model.init_weights(args.seed)
    model.to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    step = 0
    ckpt = os.path.join(args.out, "ckpt.pt")
    if (args.resume or args.export_only) and os.path.exists(ckpt):
        state = torch.load(ckpt, map_location=args.device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        print("resumed at step %d" % step)
    if args.export_only:
        if step == 0:
            sys.exit("train.py: no checkpoint in %s to export" % args.out)
        out_dir = args.export_to or os.path.join(args.out, "model")
        export(model, args.data, out_dir, args.dtype)
        print("exported step %d to %s" % (step, out_dir))
        return

    def lr_at(s):
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        t = min(1.0, (s - args.warmup) / max(1, args.steps - args.warmup))
        return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))

    def evaluate():
        model.eval()
        with torch.no_grad():
            losses = [loss_of(model, held[i:i + args.batch]).item()
                      for i in range(0, len(held), args.batch)]
        model.train()
        return sum(losses) / len(losses)

    def save():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "args": vars(args)}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    tokens_per_step = args.batch * args.seq
    print("model: %d parameters (%d without embeddings), vocab %d; %d train tokens, "
          "%d tokens per step, %d steps = %.2f epochs" % (
              n_params, n_params - cfg.vocab_size * cfg.hidden_size, cfg.vocab_size,
              len(train_tok), tokens_per_step, args.steps,
              args.steps * tokens_per_step / len(train_tok)), flush=True)
    log = open(os.path.join(args.out, "log.jsonl"), "a")
    model.train()
    t_start = time.time()
    t_last, n_last, avg = time.time(), 0, None
    if step == 0:
        h = evaluate()
        print("step 0 heldout loss %.4f" % h, flush=True)
        log.write(json.dumps({"step": 0, "heldout": h}) + "\n")
    while step < args.steps:
        rows, epoch = batches.get(step)
        rows = rows.to(args.device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = loss_of(model, rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip).item()
        opt.step()
        step += 1
        n_last += 1
        avg = loss.item() if avg is None else 0.9 * avg + 0.1 * loss.item()
        if step % args.log_every == 0:
            dt = (time.time() - t_last) / n_last
            print("step %d epoch %d loss %.4f (avg %.4f) lr %.2e gnorm %.2f  %.3f s/step %.0f tok/s" % (
                step, epoch, loss.item(), avg, lr_at(step - 1), gnorm, dt, tokens_per_step / dt),
                flush=True)
            log.write(json.dumps({"step": step, "loss": loss.item(), "avg": avg,
                                  "s_per_step": dt}) + "\n")
            log.flush()
            t_last, n_last = time.time(), 0
        out_of_time = args.max_minutes and time.time() - t_start > args.max_minutes * 60
        if step % args.eval_every == 0 or step == args.steps or out_of_time:
            h = evaluate()
            print("step %d heldout loss %.4f (ppl %.2f)" % (step, h, math.exp(h)), flush=True)
            log.write(json.dumps({"step": step, "heldout": h}) + "\n")
            log.flush()
        if step % args.ckpt_every == 0 or step == args.steps or out_of_time:
            save()
        if out_of_time:
            print("stopping after %.1f minutes at step %d" % (args.max_minutes, step))
            break
    export(model.cpu(), args.data, os.path.join(args.out, "model"), args.dtype)
    print("exported %s (%s)" % (os.path.join(args.out, "model"), args.dtype))


if __name__ == "__main__":
    main()
