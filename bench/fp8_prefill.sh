#!/usr/bin/env bash
# The prompt side of an FP8 engine in one device call (after
# `scripts/gpu-check.sh pack`; carry .carry):
#
#   bench/fp8_prefill.sh [PRESET]      (default llama3-8b)
#
# 1. kiln_attention_check --only prefill: both prefill attention kernels
#    against float64 and their TFLOP/s on the preset-like shapes;
# 2. bench/sdpa_peer.py: PyTorch's fused attention (flash attention 2,
#    memory-efficient, cuDNN) on the same shape, as the peer;
# 3. an fp8 + fp8 KV engine of the preset (random fp16 checkpoint in
#    /dev/shm): the 2048-token time to first token, and under
#    KILN_CUDA_PROFILE=rows the GPU time per op kind of its prompt (@2048).
set -uo pipefail
cd "$(dirname "$0")/.."
preset=${1:-llama3-8b}
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
kiln=.carry/bin/kiln work=${WORK:-/dev/shm/kiln-fp8} out=${FP8_BENCH_OUT:-/tmp/kiln-fp8}
mkdir -p "$work" "$out"
echo "== prefill attention kernels (kiln_attention_check --only prefill)"
.carry/bin/kiln_attention_check --only prefill --reps 20
echo "== peer: PyTorch scaled_dot_product_attention"
python3 .carry/bench/sdpa_peer.py 2>&1 | grep -v -i warn
ckpt="$work/$preset" engine="$work/$preset-fp8kv-prefill"
[ -f "$ckpt/config.json" ] ||
  python3 .carry/bench/make_random_checkpoint.py --preset "$preset" --dtype float16 "$ckpt" > "$out/checkpoint.log" 2>&1
[ -f "$engine/engine.json" ] ||
  "$kiln" build --model "$ckpt" --output "$engine" --target cuda --force --quantize fp8 --kv-cache-dtype fp8 \
    --max-batch-size 64 --max-input-len 2048 --max-output-len 256 -q > "$out/build.log" 2>&1 ||
  { tail "$out/build.log"; exit 1; }
echo "== $preset fp8 + fp8 KV: 2048-token time to first token"
"$kiln" bench "$engine" --batches 1 --input-len 128 --output-len 8 --ttft-len 2048 2>&1 | grep -E "ttft +[0-9]"
echo "== KILN_CUDA_PROFILE=rows over 2048-token prompts (@2048: the prompt's ops)"
KILN_CUDA_PROFILE=rows "$kiln" bench "$engine" --batches 1 --input-len 2048 --output-len 2 --ttft-len 2048 \
  > "$out/prefill-profile.txt" 2>&1
grep -E "@2048|ttft +[0-9]" "$out/prefill-profile.txt" | head -16
