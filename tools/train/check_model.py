#!/usr/bin/env python3
"""check_model.py - verify model.py against reference logits.

  check_model.py [--fixture DIR]
      Loads the tiny-nemotron fixture (bf16 safetensors) into model.py and
      compares its logits on every case in DIR/reference/cases.json with the
      reference float32 logits (llama.cpp, f32; agree with float64 HF math to
      2e-6). Passes when max |diff| < 1e-4. Runs offline.

  check_model.py --model MODEL_DIR --nemotron PATH/TO/nemotron [--ids "2 4 5"]
      Compares model.py on MODEL_DIR (e.g. an export of train.py) with
      `nemotron logits` on the same ids.

Exit status 0 when every comparison is within tolerance.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import from_pretrained  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOL = 1e-4


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]))[0].float()


def read_f32(path, shape):
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    return torch.frombuffer(raw, dtype=torch.float32).reshape(shape)


def check_fixture(fixture):
    model = from_pretrained(fixture).eval()
    with open(os.path.join(fixture, "reference", "cases.json")) as f:
        cases = json.load(f)
    worst = 0.0
    for case in cases:
        ref = read_f32(os.path.join(fixture, "reference", case["logits"]), case["shape"])
        got = logits_of(model, case["ids"])
        diff = (got - ref).abs().max().item()
        top = (got.argmax(-1) == ref.argmax(-1)).float().mean().item()
        print("%-8s %4d positions  max |diff| %.3g  top-1 agreement %.4f" % (
            case["name"], len(case["ids"]), diff, top))
        worst = max(worst, diff)
    return worst


def check_engine(model_dir, nemotron, ids):
    model = from_pretrained(model_dir).eval()
    got = logits_of(model, ids)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.f32")
        subprocess.run([nemotron, "logits", "-m", model_dir, "--ids", " ".join(map(str, ids)),
                        "-o", out, "-t", "2"], check=True)
        ref = read_f32(out, got.shape)
    diff = (got - ref).abs().max().item()
    top = (got.argmax(-1) == ref.argmax(-1)).float().mean().item()
    print("nemotron logits vs model.py on %s, %d positions: max |diff| %.3g (max |logit| %.3g), "
          "top-1 agreement %.4f" % (model_dir, len(ids), diff, got.abs().max().item(), top))
    return diff


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", default=os.path.join(ROOT, "tests", "fixtures", "tiny-nemotron"))
    ap.add_argument("--model")
    ap.add_argument("--nemotron")
    ap.add_argument("--ids", default="2 4 5 100 7 1000 42 3000 17 9")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.model:
        if not args.nemotron:
            ap.error("--model needs --nemotron")
        worst = check_engine(args.model, args.nemotron, [int(x) for x in args.ids.split()])
    else:
        worst = check_fixture(args.fixture)
    ok = worst < TOL
    print("%s: max |diff| %.3g (tolerance %g)" % ("PASS" if ok else "FAIL", worst, TOL))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
