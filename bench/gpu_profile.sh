#!/usr/bin/env bash
# Where the CUDA target's time goes, per op kind (KILN_CUDA_PROFILE=1), on the
# engine bench/gpu_bench.sh built: batch-1 decode, a batch-64 run (with the
# bench's batch-1 warm-up in it) and a 2048-token prefill. GPU machine; carry .carry.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
kiln=.carry/bin/kiln engine=${1:-/tmp/kiln-gpu-bench/llama2-7b-float16-engine}
echo "== batch-1 decode: 8 prompt + 128 new tokens"
KILN_CUDA_PROFILE=1 "$kiln" generate --engine "$engine" --input-ids 1,2,3,4,5,6,7,8 --max-new-tokens 128 --ignore-eos 2>&1 |
  grep -E "KILN_CUDA_PROFILE|^  |tokens/s"
echo "== kiln bench --batches ${PROFILE_BATCHES:-64} (includes its batch-1 run)"
KILN_CUDA_PROFILE=1 "$kiln" bench "$engine" --batches "${PROFILE_BATCHES:-64}" --ttft-len 0 2>&1 | grep -E "KILN_CUDA_PROFILE|^  [a-z0-9_+]+|^ +[0-9]+ "
echo "== 2048-token prefill"
ids=$(python3 -c "print(','.join(str(3 + i * 7 % 31000) for i in range(2048)))")
KILN_CUDA_PROFILE=1 "$kiln" generate --engine "$engine" --input-ids "$ids" --max-new-tokens 1 --ignore-eos 2>&1 |
  grep -E "KILN_CUDA_PROFILE|^  |tokens"
