#!/usr/bin/env bash
# FP8 against fp16 on one GPU, in one device call (after `scripts/gpu-check.sh
# pack`; carry .carry):
#
#   bench/fp8_bench.sh [PRESET] [BATCHES] [VARIANTS]
#       (default llama2-7b, 1, "none fp8 fp8kv"; MAX_BATCH (default 256) is the
#       engines' max_batch_size, TTFT_LEN (default 2048) the long prompt)
#
# A random fp16 checkpoint at the preset's size in /dev/shm; from it an fp16
# engine (none), an fp8 one (--quantize fp8) and one with an E4M3 KV cache
# too (fp8kv), each build timed; `kiln bench` of each (load, 128 in / 128 out
# at BATCHES, time to first token of a TTFT_LEN prompt); the device's copy bandwidth
# (../shared/bench/hf_baseline.py's measurement) and each engine's bandwidth
# roofline for batch-1 decode: bandwidth / bytes a decode step reads (every
# tensor but the embedding table, of which a step reads one row).
set -uo pipefail
cd "$(dirname "$0")/.."
preset=${1:-llama2-7b} batches=${2:-1} variants=${3:-none fp8 fp8kv}
max_batch=${MAX_BATCH:-256} ttft=${TTFT_LEN:-2048}
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Not $OUT: the device tool brings back only a few files from there.
kiln=.carry/bin/kiln work=${WORK:-/dev/shm/kiln-fp8} out=${FP8_BENCH_OUT:-/tmp/kiln-fp8}
mkdir -p "$work" "$out"
ckpt="$work/$preset"
[ -f "$ckpt/config.json" ] ||
  python3 .carry/bench/make_random_checkpoint.py --preset "$preset" --dtype float16 "$ckpt" > "$out/checkpoint.log" 2>&1
bw=$(cd .carry/bench && python3 -c "import hf_baseline; print(hf_baseline.copy_bandwidth())")
echo "copy bandwidth: $bw GB/s"
for q in $variants; do
  engine="$work/$preset-$q"
  case $q in
    fp8kv) opts=(--quantize fp8 --kv-cache-dtype fp8) ;;
    *) opts=(--quantize "$q") ;;
  esac
  start=$(date +%s.%N)
  "$kiln" build --model "$ckpt" --output "$engine" --target cuda --force "${opts[@]}" --max-batch-size "$max_batch" \
    --max-input-len 2048 --max-output-len 256 > "$out/build-$q.log" 2>&1 || { tail "$out/build-$q.log"; exit 1; }
  echo "build $q: $(python3 -c "import time; print(round(time.time() - $start, 2))") s"
  "$kiln" bench "$engine" --batches "$batches" --input-len 128 --output-len 128 --ttft-len "$ttft" \
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
