#!/usr/bin/env python3
"""The GEMM algorithms `kiln build` measured for an engine (engine.json's
kernel_choices.gemm), as achieved TFLOP/s and weight GB/s per shape and m:
where the tensor-core products stand against the card's compute and memory
limits. Usage: bench/gemm_report.py ENGINE_DIR"""
import json
import sys

manifest = json.load(open(f"{sys.argv[1]}/engine.json"))
gemm = manifest.get("kernel_choices", {}).get("gemm", {})
if not gemm.get("tuned"):
    sys.exit(f"untuned: {gemm.get('reason', 'no kernel_choices.gemm')}")
print(f"{'uses':<10} {'n':>6} {'k':>6} {'m':>5} {'us':>9} {'TFLOP/s':>8} {'weight GB/s':>11} {'vs heuristic':>12}")
for p in gemm["problems"]:
    for c in p["choices"]:
        flops = 2.0 * c["m"] * p["n"] * p["k"]
        weight_bytes = 2.0 * p["n"] * p["k"]
        print(f"{'+'.join(p['uses']):<10} {p['n']:>6} {p['k']:>6} {c['m']:>5} {c['us']:>9.1f} "
              f"{flops / c['us'] / 1e6:>8.0f} {weight_bytes / c['us'] / 1e3:>11.0f} {c['default_us'] / c['us']:>11.3f}x")
