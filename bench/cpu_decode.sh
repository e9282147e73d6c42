#!/usr/bin/env bash
# CPU decode speed against the machine's memory bandwidth, measured in the same run.
#   bench/cpu_decode.sh [OUT.md]
# Makes a Llama-shaped random bf16 checkpoint (bench/make_cpu_checkpoint.py),
# builds fp32 and bf16 CPU engines, and for batch-1 greedy decode reports
# tokens/s and the ratio to the roofline: read bandwidth / bytes read per token
# (every weight matrix except the embedding table, which is only indexed).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/dev/stdout}
scripts/build.sh > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/make_cpu_checkpoint.py "$work/model" > /dev/null
bw=$(build/kiln_membw | awk '{print $2}')
{
  echo "# CPU decode, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m)"
  echo
  echo "Model: bench/make_cpu_checkpoint.py defaults (Llama shape: hidden 1024, 8 layers, 16 heads / 4 KV, ffn 2816, vocab 32000)."
  echo "Memory read bandwidth (build/kiln_membw, all cores): ${bw} GB/s."
  echo
  echo "| engine dtype | build s | weights read per token (MB) | decode tokens/s (batch 1, 8 in, 128 out) | GB/s | ratio to roofline |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for dtype in bf16 fp32; do
    start=$(date +%s%N)
    build/kiln build -q --model "$work/model" --output "$work/engine-$dtype" --dtype "$dtype"
    build_s=$(( ($(date +%s%N) - start) / 1000000 ))e-3
    json=$(build/kiln generate --engine "$work/engine-$dtype" --input-ids 1,2,3,4,5,6,7,8 --max-new-tokens 128 \
           --ignore-eos --json | tail -1)
    python3 - "$json" "$work/engine-$dtype/engine.json" "$bw" "$dtype" "$build_s" <<'PY'
import json, sys
run, manifest, bw, dtype, build_s = json.loads(sys.argv[1]), json.load(open(sys.argv[2])), float(sys.argv[3]), sys.argv[4], float(sys.argv[5])
read = sum(t["nbytes"] for r in manifest["ranks"] for t in r["tensors"] if t["name"] != "embed.weight")
tps = run["tokens_per_second"]
print(f"| {dtype} | {build_s:.2f} | {read / 1e6:.0f} | {tps:.1f} | {tps * read / 1e9:.1f} | {tps * read / 1e9 / bw:.2f} |")
PY
  done
} > "$out"
