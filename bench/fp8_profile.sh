#!/usr/bin/env bash
# An FP8 engine's speed with and without its FP8 kernel paths, and where its
# GPU time goes per op and step size, in one device call (after
# `scripts/gpu-check.sh pack`; carry .carry):
#
#   bench/fp8_profile.sh [PRESET] [BATCH]      (default llama3-8b, 512)
#
# A random fp16 checkpoint of the preset in /dev/shm, an fp8 + fp8 KV engine
# built from it (max_batch_size BATCH); `kiln bench` at batch 1 and BATCH with
# the default kernels and with the comparison switches
# (KILN_CUDA_FP8_GEMV=f32: decode's products on the fp32 gemv;
# KILN_CUDA_FP8_FUSE=0: norm and activation write fp32, quantized after;
# others through VARIANTS, e.g. "default;KILN_CUDA_ATTN_HEADS=2");
# then KILN_CUDA_PROFILE=rows over the default run: GPU time per op kind for
# batch-1 decode steps (@1), the batch's decode steps (@BATCH) and prompt
# chunks (other row counts).
set -uo pipefail
cd "$(dirname "$0")/.."
preset=${1:-llama3-8b} batch=${2:-512}
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
kiln=.carry/bin/kiln work=${WORK:-/dev/shm/kiln-fp8} out=${FP8_BENCH_OUT:-/tmp/kiln-fp8}
mkdir -p "$work" "$out"
ckpt="$work/$preset" engine="$work/$preset-fp8kv-$batch"
[ -f "$ckpt/config.json" ] ||
  python3 .carry/bench/make_random_checkpoint.py --preset "$preset" --dtype float16 "$ckpt" > "$out/checkpoint.log" 2>&1
[ -f "$engine/engine.json" ] ||
  "$kiln" build --model "$ckpt" --output "$engine" --target cuda --force --quantize fp8 --kv-cache-dtype fp8 \
    --max-batch-size "$batch" --max-input-len 2048 --max-output-len 256 -q > "$out/build.log" 2>&1 ||
  { tail "$out/build.log"; exit 1; }
# VARIANTS: ";"-separated settings to compare, "default" for none.
IFS=';' read -ra variants <<< "${VARIANTS:-default;KILN_CUDA_FP8_GEMV=f32 KILN_CUDA_FP8_FUSE=0}"
for variant in "${variants[@]}"; do
  echo "== $variant"
  settings=()
  [ "$variant" = default ] || read -ra settings <<< "$variant"
  env "${settings[@]}" "$kiln" bench "$engine" --batches "$batch" --input-len 128 --output-len 128 --ttft-len 2048 2>&1 |
    grep -E "^ +[0-9]+ |decode|ttft|tokens/s"
done
echo "== KILN_CUDA_PROFILE=rows (default kernels)"
KILN_CUDA_PROFILE=rows "$kiln" bench "$engine" --batches "$batch" --input-len 128 --output-len 128 --ttft-len 0 \
  > "$out/profile.txt" 2>&1
grep -E "KILN_CUDA_PROFILE|@" "$out/profile.txt" | head -60
