#!/usr/bin/env python3
"""PyTorch's FP8 quantization of two projections of the llama fixture, the
independent reference for `kiln build --quantize fp8` (tests/compiler/
fp8_build_test.cc): per output channel, scale = max |row| / 448 in fp32,
weights = (w / scale) cast to float8_e4m3fn.

    python3 tests/compiler/make_fp8_reference.py ../shared/fixtures/models/llama \
        tests/compiler/data/llama_fp8_reference.json
"""
import json
import sys

import torch
from safetensors.torch import load_file


def quantize(w):
    w = w.to(torch.float32)
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / 448.0, torch.ones_like(amax))
    q = (w / scale[:, None]).to(torch.float8_e4m3fn).view(torch.uint8)
    return q, scale


def main():
    tensors = load_file(f"{sys.argv[1]}/model.safetensors")
    out = {"torch": torch.__version__, "tensors": {}}
    for name in ("model.layers.0.mlp.down_proj.weight", "model.layers.1.self_attn.o_proj.weight"):
        q, scale = quantize(tensors[name])
        out["tensors"][name] = {"shape": list(q.shape), "e4m3": bytes(q.flatten().tolist()).hex(),
                                "scale": scale.tolist()}
    json.dump(out, open(sys.argv[2], "w"))
    print("wrote", sys.argv[2])


if __name__ == "__main__":
    main()
