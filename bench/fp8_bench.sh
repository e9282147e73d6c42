#!/usr/bin/env bash
# FP8 against fp16 on one GPU, in one device call (after `scripts/gpu-check.sh
# pack`; carry .carry):
#
#   bench/fp8_bench.sh [PRESET] [BATCHES]     (default llama2-7b, 1)
#
# A random fp16 checkpoint at the preset's size in /dev/shm; an fp16 engine and
# an fp8 one (--quantize fp8) built from it, timed; `kiln bench` of each
# (load, 128 in / 128 out at BATCHES); the device's copy bandwidth
# (../shared/bench/hf_baseline.py's measurement) and each engine's bandwidth
# roofline for batch-1 decode: bandwidth / bytes a decode step reads (every
# tensor but the embedding table, of which a step reads one row).
set -uo pipefail
cd "$(dirname "$0")/.."
preset=${1:-llama2-7b} batches=${2:-1}
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Not $OUT: the device tool brings back only a few files from there.
kiln=.carry/bin/kiln work=${WORK:-/dev/shm/kiln-fp8} out=${FP8_BENCH_OUT:-/tmp/kiln-fp8}
mkdir -p "$work" "$out"
ckpt="$work/$preset"
[ -f "$ckpt/config.json" ] ||
  python3 .carry/bench/make_random_checkpoint.py --preset "$preset" --dtype float16 "$ckpt" > "$out/checkpoint.log" 2>&1
bw=$(cd .carry/bench && python3 -c "import hf_baseline; print(hf_baseline.copy_bandwidth())")
echo "copy bandwidth: $bw GB/s"
for q in none fp8; do
  engine="$work/$preset-$q"
  start=$(date +%s.%N)
  "$kiln" build --model "$ckpt" --output "$engine" --target cuda --force --quantize "$q" --max-batch-size 256 \
    --max-input-len 2048 --max-output-len 256 > "$out/build-$q.log" 2>&1 || { tail "$out/build-$q.log"; exit 1; }
  echo "build $q: $(python3 -c "import time; print(round(time.time() - $start, 2))") s"
  "$kiln" bench "$engine" --batches "$batches" --input-len 128 --output-len 128 --ttft-len 0 \
    --json "$out/bench-$q.json" > "$out/bench-$q.txt" 2>&1 || { tail "$out/bench-$q.txt"; exit 1; }
  python3 - "$engine/engine.json" "$out/bench-$q.json" "$bw" "$q" <<'PY'
import json, sys
m, b, bw, q = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3]), sys.argv[4]
step = sum(t["nbytes"] for r in m["ranks"] for t in r["tensors"] if t["name"] != "embed.weight")
roof = bw * 1e9 / step
print(f"{q}: load {b.get('load_seconds', 0):.3f} s; decode step reads {step / 1e9:.2f} GB -> roofline {roof:.0f} tok/s")
print("  " + json.dumps(b)[:1500])
PY
done
