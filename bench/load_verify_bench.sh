#!/usr/bin/env bash
# Load time with and without the weights' checksums verified while they load
# (the GPU machine, after `scripts/gpu-check.sh pack` or a carried .carry/bin/kiln):
#
#   bench/load_verify_bench.sh [PRESET] [RUNS]     (default llama2-7b, 3 runs each)
#
# A random fp16 checkpoint at the preset's size in /dev/shm, an engine built
# from it for the GPU, then `kiln bench` loads alternating with verification on
# and off (--no-verify-weights), the page cache warm for both; prints each
# run's load seconds and each mode's median against the unverified one.
set -uo pipefail
cd "$(dirname "$0")/.."
preset=${1:-llama2-7b} runs=${2:-3}
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
kiln=.carry/bin/kiln
work=${WORK:-/dev/shm/kiln-load} out=${OUT:-/tmp/kiln-load}
mkdir -p "$work" "$out"
ckpt="$work/$preset" engine="$work/$preset-engine"
[ -f "$ckpt/config.json" ] ||
  python3 .carry/bench/make_random_checkpoint.py --preset "$preset" --dtype float16 "$ckpt" > "$out/checkpoint.log" 2>&1
"$kiln" build --model "$ckpt" --output "$engine" --target cuda --force --tune off > "$out/build.log" 2>&1 ||
  { tail "$out/build.log"; exit 1; }
# One untimed load first: the page cache and CUDA's lazy loading, for both modes alike.
"$kiln" bench "$engine" --batches 1 --input-len 8 --output-len 4 --ttft-len 0 > /dev/null 2>&1
modes="off on"  # --no-verify-weights, and the defaults
for i in $(seq "$runs"); do
  for mode in $modes; do
    flag=""
    [ "$mode" = off ] && flag="--no-verify-weights"
    "$kiln" bench "$engine" --batches 1 --input-len 8 \
      --output-len 4 --ttft-len 0 $flag --json "$out/$mode-$i.json" > "$out/$mode-$i.txt" 2>&1 ||
      { tail "$out/$mode-$i.txt"; exit 1; }
    python3 -c "import json,sys; print('$mode', json.load(open('$out/$mode-$i.json'))['load_seconds'])"
  done
done | tee "$out/loads.txt"
python3 - "$out/loads.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, seconds = line.split()
    runs.setdefault(mode, []).append(float(seconds))
off = statistics.median(runs["off"])
for mode, seconds in runs.items():
    m = statistics.median(seconds)
    print(f"{mode:>12}: median load {m:.3f} s ({len(seconds)} runs), {m / off:.3f} x unverified")
PY
# Where the verified load's extra time goes: the device hashing, as kiln logs it.
grep -h "weights hashed on the GPU" "$out"/on-*.txt || echo "no device hashing logged"
# A byte flipped 3 GiB into the blob must be refused (then flipped back).
flip() {
  python3 -c "import sys; f = open(sys.argv[1], 'r+b'); f.seek(3 << 30); b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 0x5a]))" \
    "$engine/rank0.bin"
}
flip
if "$kiln" bench "$engine" --batches 1 --input-len 8 --output-len 4 --ttft-len 0 > "$out/flipped.txt" 2>&1; then
  echo "flipped byte at 3 GiB: NOT detected"
else
  echo "flipped byte at 3 GiB: $(grep -m1 -o 'does not match.*)' "$out/flipped.txt" || tail -1 "$out/flipped.txt")"
fi
flip
