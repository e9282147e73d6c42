#!/usr/bin/env python3
"""HuggingFace's own error in 16-bit, the peer kiln verify's 16-bit bounds are
set against (docs/verification.md): every fixture whose reference is a stock
transformers class, loaded by transformers in bf16 and fp16 with eager and
sdpa attention on the GPU, teacher-forced over each reference case
(prompt + greedy continuation), compared with the fixture's float64 logits by
the figures `kiln verify` reports:

    python3 bench/hf_precision_baseline.py FIXTURES_DIR [--json OUT.json]

Per fixture, dtype and attention: max |logit error| (and in units of
u x rms(reference logits), u the dtype's unit roundoff: bf16 2^-8, fp16
2^-11), the KL divergence KL(reference || model) per position (mean, 99th
percentile by nearest rank, max; and the mean and p99 in units of
(u x rms)^2), and top-1 agreement over the positions whose reference top-2
margin exceeds 40 u rms (kiln verify's decisive positions). Fixtures computed
by remote_refs.py modules (no stock class) are listed as not measured.
"""
import argparse
import json
import math
import os
import sys

import torch
from safetensors.torch import load_file

UNIT = {"bf16": 2.0**-8, "fp16": 2.0**-11}
DTYPE = {"bf16": torch.bfloat16, "fp16": torch.float16}


def figures(logits, ref, u, rms):
    """logits, ref: [positions, vocab] float64."""
    err = (logits - ref).abs().max().item()
    lp, lq = torch.log_softmax(ref, -1), torch.log_softmax(logits, -1)
    kl = (lp.exp() * (lp - lq)).sum(-1).clamp_min(0)
    ks = torch.sort(kl).values
    p99 = ks[max(math.ceil(0.99 * len(ks)), 1) - 1].item()
    top2 = torch.topk(ref, 2, dim=-1).values
    decisive = (top2[:, 0] - top2[:, 1]) > 40 * u * rms
    agree = (logits.argmax(-1) == ref.argmax(-1)) & decisive
    scale = (u * rms) ** 2
    return {"max_abs": err, "max_abs_units": err / (u * rms), "kl_mean": kl.mean().item(), "kl_p99": p99,
            "kl_max": kl.max().item(), "kl_mean_units": kl.mean().item() / scale, "kl_p99_units": p99 / scale,
            "decisive": int(decisive.sum()), "top1_agree": int(agree.sum()), "positions": len(kl)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixtures")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    import transformers
    names = json.load(open(os.path.join(args.fixtures, "manifest.json")))["fixtures"]
    rows = []
    for name in names:
        d = os.path.join(args.fixtures, name)
        meta = json.load(open(os.path.join(d, "reference.json")))
        if not meta["source"].startswith("transformers."):
            rows.append({"fixture": name, "measured": False, "source": meta["source"]})
            continue
        tensors = load_file(os.path.join(d, "reference.safetensors"))
        cases = [(c["prompt"] + c["generated"], tensors[f"logits_{i}"].to(torch.float64))
                 for i, c in enumerate(meta["cases"])]
        all_ref = torch.cat([r for _, r in cases])
        rms = all_ref.pow(2).mean().sqrt().item()
        for dt in ("bf16", "fp16"):
            for impl in ("eager", "sdpa"):
                try:
                    model = transformers.AutoModelForCausalLM.from_pretrained(
                        d, dtype=DTYPE[dt], attn_implementation=impl).to("cuda").eval()
                except Exception as e:  # an attention implementation a class does not offer
                    rows.append({"fixture": name, "dtype": dt, "attention": impl, "error": str(e)[:200]})
                    continue
                with torch.no_grad():
                    out = [model(input_ids=torch.tensor([ids], device="cuda"), use_cache=False).logits[0]
                           .to(torch.float64).cpu() for ids, _ in cases]
                row = {"fixture": name, "dtype": dt, "attention": impl, "rms": rms}
                row.update(figures(torch.cat(out), all_ref, UNIT[dt], rms))
                rows.append(row)
                print(json.dumps(row), flush=True)
                del model
                torch.cuda.empty_cache()
    print(f"{'fixture':26} {'dtype':5} {'attn':5} {'max|dl|':>8} {'units':>6} {'KLmean':>9} {'KLp99':>9} "
          f"{'KLmax':>9} {'mean_u':>7} {'p99_u':>7} top1")
    for r in rows:
        if "max_abs" in r:
            print(f"{r['fixture']:26} {r['dtype']:5} {r['attention']:5} {r['max_abs']:8.3g} {r['max_abs_units']:6.1f} "
                  f"{r['kl_mean']:9.3g} {r['kl_p99']:9.3g} {r['kl_max']:9.3g} {r['kl_mean_units']:7.3f} "
                  f"{r['kl_p99_units']:7.3f} {r['top1_agree']}/{r['decisive']}")
        elif not r.get("measured", True):
            print(f"{r['fixture']:26} not measured: reference from {r['source']}, no stock transformers class")
        else:
            print(f"{r['fixture']:26} {r['dtype']:5} {r['attention']:5} error: {r['error']}")
    if args.json:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "rows": rows},
                  open(args.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
