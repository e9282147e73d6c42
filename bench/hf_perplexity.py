#!/usr/bin/env python3
"""The independent reference for `kiln perplexity`: transformers in float64
on the same checkpoint, the same tokenization (HF tokenizers, no special
tokens, the tokenizer's lead tokens before each chunk) and the same chunks
(--context tokens, the second half of each chunk's predictions scored; see
src/cli/cmd_perplexity.cc):

    python3 bench/hf_perplexity.py MODEL_DIR TEXT_FILE --context 128 [--json OUT]

Prints {"tokens", "chunks", "scored", "perplexity"} as one JSON line.
"""
import argparse
import json
import math

import torch
from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    import transformers
    tok = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    lead = tok.encode("", add_special_tokens=True).ids
    ids = tok.encode(open(args.text, encoding="utf-8").read(), add_special_tokens=False).ids
    body = args.context - len(lead)
    # Loaded in the checkpoint's dtype and then cast, as the fixtures' references
    # were made (make_fixtures.py): the rotary inv_freq buffer is rounded to
    # that dtype too, as transformers does for a model run in it, and as kiln
    # does (docs/verification.md, "Rotary frequencies"); the arithmetic is float64.
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype="auto",
                                                              attn_implementation="eager")
    # from_pretrained keeps buffers in fp32: the explicit cast rounds inv_freq too.
    model = model.to(model.dtype).to(torch.float64).eval()
    nll, chunks = [], 0
    for c in range(max(len(ids) // body, 1)):
        chunk = lead + ids[c * body:(c + 1) * body]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([chunk]), use_cache=False).logits[0].to(torch.float64)
        logp = torch.log_softmax(logits, -1)
        for t in range(len(chunk) // 2, len(chunk) - 1):
            nll.append(-logp[t, chunk[t + 1]].item())
        chunks += 1
    out = {"model": args.model, "text": args.text, "context": args.context, "tokens": len(ids), "chunks": chunks,
           "scored": len(nll), "perplexity": math.exp(sum(nll) / len(nll)),
           "transformers": transformers.__version__, "torch": torch.__version__}
    print(json.dumps(out))
    if args.json:
        json.dump(out, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
