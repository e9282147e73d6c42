#!/usr/bin/env python3
"""The range of a model's keys and values on a text, against E4M3's: per
layer, the largest |k| and |v|, their median, and the share of values below
E4M3's smallest normal (2^-6, where its relative precision starts to fall)
or above its largest finite value (448). Why an unscaled E4M3 KV cache loses
more on one model than another (bench/fp8_perplexity.sh).

    python3 bench/kv_range.py MODEL_DIR TEXT_FILE [--tokens 2048]
"""
import argparse

import torch
from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("--tokens", type=int, default=2048)
    args = ap.parse_args()
    import transformers
    tok = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    ids = tok.encode(open(args.text, encoding="utf-8").read(), add_special_tokens=False).ids[: args.tokens]
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    ctx = getattr(model.config, "max_position_embeddings", 512)
    seen = {}

    def hook(name):
        def f(_module, _inputs, output):
            seen.setdefault(name, []).append(output.detach().abs().flatten())
        return f

    for name, module in model.named_modules():
        if name.endswith(("k_proj", "v_proj")):
            module.register_forward_hook(hook(name))
    with torch.no_grad():
        for start in range(0, len(ids), ctx):
            model(torch.tensor([ids[start:start + ctx]]))
    print(f"{'projection':40s} {'max':>9s} {'median':>9s} {'<2^-6':>7s} {'>448':>6s}")
    for name, parts in seen.items():
        a = torch.cat(parts)
        print(f"{name:40s} {a.max().item():9.3f} {a.median().item():9.4f} "
              f"{(a < 2 ** -6).float().mean().item():7.3f} {(a > 448).float().mean().item():6.3f}")


if __name__ == "__main__":
    main()
