#!/usr/bin/env bash
# The CUDA target against HuggingFace transformers on one GPU, in one run
# (the GPU machine, after `scripts/gpu-check.sh pack` here; carry .carry):
#
#   bench/gpu_bench.sh [PRESET] [DTYPE]      (default llama2-7b float16)
#
# 1. a random checkpoint at the preset's size (../shared/bench/make_random_checkpoint.py)
# 2. kiln build --target cuda, timed
# 3. kiln bench: load, batch-1 decode, throughput at 128 in / 128 out for the
#    batches in KILN_BATCHES (engine built for MAX_BATCH, default 256),
#    time to first token for a 2048-token prompt
# 4. ../shared/bench/hf_baseline.py with a static cache: device copy bandwidth,
#    from_pretrained load time, generate() at the same batches
# Everything lands in /tmp/kiln-gpu-bench/out: build.json, bench-kiln.json, hf.jsonl, logs.
set -uo pipefail
cd "$(dirname "$0")/.."
preset=${1:-llama2-7b} dtype=${2:-float16}
batches=${KILN_BATCHES:-1,64,256}
max_batch=${MAX_BATCH:-256}
hf_batches=${HF_BATCHES:-$batches}
work=/tmp/kiln-gpu-bench out=/tmp/kiln-gpu-bench/out
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1
kiln=.carry/bin/kiln
mkdir -p "$out" "$work"
ckpt="$work/$preset-$dtype" engine="$work/$preset-$dtype-engine"

step() { echo "== $(date +%T) $*" >&2; }

if [ ! -f "$ckpt/config.json" ]; then
  step "random $preset checkpoint ($dtype)"
  python3 .carry/bench/make_random_checkpoint.py --preset "$preset" --dtype "$dtype" "$ckpt" > "$out/checkpoint.log" 2>&1
fi
step "kiln build"
start=$(date +%s%N)
"$kiln" build --model "$ckpt" --output "$engine" --target cuda --force --max-batch-size "$max_batch" --max-input-len 2048 \
  --max-output-len 256 > "$out/build.log" 2>&1 || { tail "$out/build.log"; exit 1; }
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "{\"what\": \"kiln_build\", \"seconds\": $((ms / 1000)).$(printf %03d $((ms % 1000)))}" | tee "$out/build.json"

step "kiln bench"
timeout ${KILN_BENCH_TIMEOUT:-240} "$kiln" bench "$engine" --batches "$batches" --input-len 128 --output-len 128 \
  --ttft-len 2048 --json "$out/bench-kiln.json" 2> "$out/bench-kiln.log" | tee "$out/bench-kiln.txt"

if [ "${SKIP_HF:-0}" != 1 ]; then
  step "HF transformers baseline (static cache)"
  timeout ${HF_TIMEOUT:-300} python3 .carry/bench/hf_baseline.py "$ckpt" --batches "$hf_batches" --input-len 128 \
    --output-len 128 --static-cache 2> "$out/hf.log" | tee "$out/hf.jsonl"
fi

python3 bench/gpu_report.py "$out" | tee "$out/report.md"
step done
