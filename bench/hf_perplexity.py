#!/usr/bin/env python3
"""The independent reference for `kiln perplexity`: transformers in float64
on the same checkpoint, the same tokenization (HF tokenizers, no special
tokens, the tokenizer's lead tokens before each chunk) and the same chunks
(--context tokens, the second half of each chunk's predictions scored; see
src/cli/cmd_perplexity.cc):

    python3 bench/hf_perplexity.py MODEL_DIR TEXT_FILE --context 128 [--json OUT]
                                   [--fp8-weights] [--fp8-kv]

Prints {"tokens", "chunks", "scored", "perplexity"} as one JSON line.

--fp8-weights and --fp8-kv compute, still in float64, what an FP8 engine
computes (docs/verification.md, "FP8"): every linear layer but the LM head with
its weight rounded to E4M3 per output row (scale = the row's max |w| / 448)
and its input rounded to E4M3 per token (scale = the token's max |x| / 448);
the attention's keys (after the rotary embedding) and values rounded to E4M3
unscaled, as kiln's E4M3 KV cache stores them. The independent figure for
`kiln perplexity` of a --quantize fp8 / --kv-cache-dtype fp8 engine.
"""
import argparse
import json
import math

import torch
from tokenizers import Tokenizer


E4M3_MAX = 448.0


def e4m3(x):
    """x rounded to E4M3 (nearest even, saturating), back in x's dtype."""
    return x.to(torch.float32).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).to(x.dtype)


def row_scaled_e4m3(x):
    """Each row (last dimension) rounded to E4M3 with scale max|row| / 448."""
    scale = x.abs().amax(-1, keepdim=True).to(torch.float32) / E4M3_MAX
    scale = torch.where(scale > 0, scale, torch.ones_like(scale)).to(x.dtype)
    return e4m3(x / scale) * scale


def quantize_linear_layers(model):
    head = model.get_output_embeddings()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not head:
            with torch.no_grad():
                module.weight.copy_(row_scaled_e4m3(module.weight))
            module.register_forward_pre_hook(lambda _m, args: (row_scaled_e4m3(args[0]),) + args[1:])


def round_kv_to_e4m3(model):
    # The eager attention function itself wrapped where the model's module
    # looks it up, so the eager causal mask stays as it is (a newly registered
    # attention implementation gets another mask format).
    import importlib
    module = importlib.import_module(type(model).__module__)
    eager = module.eager_attention_forward

    def attention(attn, query, key, value, *rest, **kwargs):
        return eager(attn, query, e4m3(key), e4m3(value), *rest, **kwargs)

    module.eager_attention_forward = attention


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--json", default="")
    ap.add_argument("--fp8-weights", action="store_true")
    ap.add_argument("--fp8-kv", action="store_true")
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
    if args.fp8_weights:
        quantize_linear_layers(model)
    if args.fp8_kv:
        round_kv_to_e4m3(model)
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
