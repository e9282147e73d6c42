#!/usr/bin/env python3
"""Pre-quantized FP8 checkpoints as model hubs publish them, made from the
llama fixture, each with its own float64 reference (the reference.json /
reference.safetensors format of ../shared/fixtures), for kiln's loader of
such checkpoints and for the FP8 kernels' exactness:

- llama-fp8-channel: compressed-tensors "float-quantized" layout, weights
  F8_E4M3 [out, in] with weight_scale F32 [out, 1] (strategy "channel"),
  dynamic per-token activations (no input_scale).
- llama-fp8-tensor: quant_method "fp8" (the layout of vLLM / AutoFP8 exports),
  per-tensor F32 weight_scale [] and input_scale [] (static activation scale).

Every attention and MLP projection is quantized; embeddings, norms and the LM
head stay fp32. The reference runs transformers' LlamaForCausalLM in float64
on the dequantized weights (e4m3 x scale), so it is the model the checkpoint
describes, computed exactly: greedy continuations of three prompts and the
teacher-forced logits, as ../shared/fixtures/make_fixtures.py makes them.

    python3 tests/checkpoint/make_fp8_checkpoints.py LLAMA_FIXTURE_DIR OUT_DIR
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def quantize(w, per_channel):
    w = w.to(torch.float32)
    amax = w.abs().amax(dim=1, keepdim=True) if per_channel else w.abs().amax()
    scale = torch.where(amax > 0, amax / 448.0, torch.ones_like(amax))
    q = (w / scale).to(torch.float8_e4m3fn)
    return q, scale.to(torch.float32)


def reference(model, prompt, max_new=12):
    seq, margins = list(prompt), []
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1].to(torch.float64)
            top = torch.topk(logits, 2).values
            margins.append(float(top[0] - top[1]))
            seq.append(int(torch.argmax(logits)))
        full = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0].to(torch.float32)
    return seq[len(prompt):], full, margins


def make(src, out, name, per_channel):
    import transformers
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    tensors = load_file(os.path.join(src, "model.safetensors"))
    saved, dequantized = {}, {}
    for key, w in tensors.items():
        if key.endswith(".weight") and key.split(".")[-2] in PROJECTIONS:
            q, scale = quantize(w, per_channel)
            saved[key] = q.contiguous()
            saved[key[: -len("weight")] + "weight_scale"] = scale.contiguous() if per_channel else scale.reshape(())
            if not per_channel:
                saved[key[: -len("weight")] + "input_scale"] = torch.tensor(0.05, dtype=torch.float32)
            dequantized[key] = q.to(torch.float64) * scale.to(torch.float64)
        else:
            saved[key] = w.contiguous()
            dequantized[key] = w.to(torch.float64)
    save_file(saved, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    cfg = json.load(open(os.path.join(src, "config.json")))
    if per_channel:
        cfg["quantization_config"] = {
            "quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
            "config_groups": {"group_0": {
                "targets": ["Linear"],
                "weights": {"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True,
                            "dynamic": False},
                "input_activations": {"num_bits": 8, "type": "float", "strategy": "token", "symmetric": True,
                                      "dynamic": True}}},
            "ignore": ["lm_head"]}
    else:
        cfg["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "static",
                                      "ignored_layers": ["lm_head"]}
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2, sort_keys=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(src, extra)):
            shutil.copy(os.path.join(src, extra), d)
    # The reference: the dequantized model, float64.
    config = transformers.AutoConfig.from_pretrained(src)  # the fixture's own, unquantized
    config._attn_implementation = "eager"
    model = transformers.LlamaForCausalLM(config).to(torch.float64).eval()
    missing = model.load_state_dict(dequantized, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    src_ref = json.load(open(os.path.join(src, "reference.json")))
    refs, cases = {}, []
    for i, c in enumerate(src_ref["cases"]):
        g, logits, margins = reference(model, c["prompt"])
        refs[f"prompt_{i}"] = torch.tensor(c["prompt"], dtype=torch.int32)
        refs[f"generated_{i}"] = torch.tensor(g, dtype=torch.int32)
        refs[f"logits_{i}"] = logits.contiguous()
        cases.append({"prompt": c["prompt"], "generated": g, "greedy_margins": margins})
    save_file(refs, os.path.join(d, "reference.safetensors"))
    json.dump({"name": name, "source": "transformers.LlamaForCausalLM on the dequantized weights, float64",
               "features": ["fp8-prequantized", "per-channel" if per_channel else "per-tensor"],
               "vocab_size": cfg["vocab_size"], "cases": cases}, open(os.path.join(d, "reference.json"), "w"), indent=1)
    print(name, "written")


def main():
    src, out = sys.argv[1], sys.argv[2]
    make(src, out, "llama-fp8-channel", per_channel=True)
    make(src, out, "llama-fp8-tensor", per_channel=False)


if __name__ == "__main__":
    main()
