#!/usr/bin/env python3
"""PyTorch's fused attention as the peer of kiln's prefill attention kernel.

Times torch.nn.functional.scaled_dot_product_attention (causal, grouped KV
heads) on the shape kiln_attention_check times, with each backend PyTorch has
(flash attention 2, memory-efficient, cuDNN), CUDA events, median of --reps,
and prints TFLOP/s counted the same way: 4 * head_dim * heads * (query, key)
pairs the causal mask leaves (about half of seq^2).

  python3 bench/sdpa_peer.py [--seq 2048] [--heads 32] [--kv-heads 8] [--head-dim 128]
"""
import argparse

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--reps", type=int, default=30)
    a = p.parse_args()
    pairs = a.seq * (a.seq + 1) / 2
    flop = 4.0 * a.head_dim * a.heads * pairs
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}; seq {a.seq}, heads {a.heads}/{a.kv_heads}, "
          f"head_dim {a.head_dim}, {flop / 1e12:.3f} TFLOP")
    flush = torch.empty(512 << 20, dtype=torch.uint8, device="cuda")
    for dtype in (torch.float16, torch.bfloat16):
        g = torch.Generator(device="cuda").manual_seed(0)
        q = torch.randn(1, a.heads, a.seq, a.head_dim, dtype=dtype, device="cuda", generator=g)
        k = torch.randn(1, a.kv_heads, a.seq, a.head_dim, dtype=dtype, device="cuda", generator=g)
        v = torch.randn(1, a.kv_heads, a.seq, a.head_dim, dtype=dtype, device="cuda", generator=g)
        for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                              ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            try:
                with sdpa_kernel(backend):
                    run = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                                  enable_gqa=True)
                    run()
                    times = []
                    for _ in range(a.reps + 1):
                        flush.random_(0, 255)
                        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        s.record()
                        run()
                        e.record()
                        e.synchronize()
                        times.append(s.elapsed_time(e))
                    ms = sorted(times[1:])[len(times) // 2]
                    print(f"  {str(dtype):15s} {name:10s} {ms * 1e3:8.1f} us {flop / (ms * 1e-3) / 1e12:6.1f} TFLOP/s")
            except Exception as exc:  # a backend that does not take the shape or dtype
                print(f"  {str(dtype):15s} {name:10s} unavailable: {str(exc).splitlines()[0][:100]}")


if __name__ == "__main__":
    main()
