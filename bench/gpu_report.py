#!/usr/bin/env python3
"""Markdown table of one bench/gpu_bench.sh run: kiln against HuggingFace
transformers and against the GPU's copy bandwidth, all measured in that run.

    python3 bench/gpu_report.py OUT_DIR     (build.json, bench-kiln.json, hf.jsonl)
"""
import json
import os
import sys


def main():
    out = sys.argv[1]
    build = json.load(open(os.path.join(out, "build.json")))
    kiln = json.load(open(os.path.join(out, "bench-kiln.json")))
    hf = [json.loads(line) for line in open(os.path.join(out, "hf.jsonl"))] if os.path.exists(
        os.path.join(out, "hf.jsonl")) else []
    bw = next((h["GBps"] for h in hf if h["what"] == "copy_bandwidth"), None)
    hf_load = next((h for h in hf if h["what"] == "hf_load"), None)
    hf_gen = {h["batch"]: h for h in hf if h["what"] == "hf_generate"}
    wb = kiln["weight_bytes"]
    dec = kiln["decode"]["tokens_per_second"]
    print(f"| measure | kiln | peer or limit (same run) | ratio |")
    print(f"| --- | --- | --- | --- |")
    if bw:
        roof = bw * 1e9 / wb
        print(f"| batch-1 decode, 128 in / 128 out | {dec:.1f} tok/s | roofline {roof:.1f} tok/s "
              f"(copy {bw:.0f} GB/s / {wb / 1e9:.2f} GB of weights) | {dec / roof:.2f} |")
        if 1 in hf_gen:
            h = hf_gen[1]["decode_tok_per_s_per_seq"]
            print(f"| batch-1 decode vs HF | {dec:.1f} tok/s | HF static cache {h:.1f} tok/s | {dec / h:.1f}x |")
    for t in kiln["throughput"]:
        if "skipped" in t:
            continue
        b = t["batch"]
        line = f"| output tok/s, batch {b}, 128 in / 128 out | {t['output_tokens_per_second']:.0f} |"
        if b in hf_gen:
            h = hf_gen[b]["output_tok_per_s"]
            line += f" HF static cache {h:.0f} | {t['output_tokens_per_second'] / h:.2f}x |"
        else:
            line += " HF: not run at this batch | |"
        print(line)
    lp = kiln.get("long_prompt_ttft", {})
    if "ttft_seconds" in lp:
        print(f"| time to first token, 2048-token prompt | {lp['ttft_seconds'] * 1e3:.0f} ms "
              f"({lp['prompt_tokens_per_second']:.0f} prompt tok/s) | | |")
    print(f"| build (checkpoint -> engine) | {build['seconds']:.1f} s | | |")
    if hf_load:
        print(f"| load (engine -> GPU) | {kiln['load_seconds']:.2f} s | HF from_pretrained "
              f"{hf_load['seconds']:.2f} s | {hf_load['seconds'] / kiln['load_seconds']:.1f}x faster |")
    else:
        print(f"| load (engine -> GPU) | {kiln['load_seconds']:.2f} s | | |")


if __name__ == "__main__":
    main()
