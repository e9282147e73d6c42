#!/usr/bin/env python3
"""PyTorch's float8_e4m3fn, the independent reference for kiln's E4M3
conversions (tests/core/fp8_test.cc): every byte's value, and the byte that
torch's fp32 -> float8_e4m3fn cast gives for fp32 inputs chosen to cover the
format: exact values, midpoints between neighbours (ties to even), points
just either side of them, subnormals, the largest finite value 448 and the
overflow threshold, zeros, and random values over the whole range.

    python3 tests/core/make_e4m3_reference.py tests/core/data/e4m3_reference.json
"""
import json
import sys

import torch


def main():
    codes = torch.arange(256, dtype=torch.uint8)
    values = codes.view(torch.float8_e4m3fn).to(torch.float32)
    finite = sorted({float(v) for v in values if torch.isfinite(v) and v >= 0})
    inputs = set(finite)
    for a, b in zip(finite, finite[1:]):
        mid = (a + b) / 2
        inputs.add(mid)
        inputs.add(float(torch.nextafter(torch.tensor(mid), torch.tensor(0.0))))
        inputs.add(float(torch.nextafter(torch.tensor(mid), torch.tensor(1e9))))
    inputs.update([448.0, 449.0, 463.9, 464.0, 465.0, 1e6, 2.0**-10, 2.0**-9 * 0.75, 1e-30])
    g = torch.Generator().manual_seed(8)
    inputs.update(float(v) for v in torch.randn(2000, generator=g) * 100)
    inputs.update(float(v) for v in torch.rand(500, generator=g) * 2.0**-6)
    xs = sorted(inputs)
    xs = xs + [-x for x in xs]
    t = torch.tensor(xs, dtype=torch.float32)
    out = t.to(torch.float8_e4m3fn).view(torch.uint8)
    json.dump({"torch": torch.__version__,
               "decode": [float(v) if torch.isfinite(v) else "nan" for v in values],
               "encode": [[float(x), int(b)] for x, b in zip(t.tolist(), out.tolist())]},
              open(sys.argv[1], "w"))
    print(f"{len(xs)} inputs, torch {torch.__version__}")


if __name__ == "__main__":
    main()
