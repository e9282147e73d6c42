#!/usr/bin/env bash
# FP8's cost in quality on a trained model, in one device call (after
# `scripts/gpu-check.sh pack`; carry .carry):
#
#   bench/fp8_perplexity.sh [MODEL_DIR] [TEXT...]
#
# (default demo/model on demo/heldout.txt and, where it is there,
# .carry/bench/train-sample.txt: 40 KB of the demo's training corpus, made by
# demo/make_corpus.py, on which the demo model is at home.)
#
# Engines of the model for the GPU in fp16, bf16, fp8 (--quantize fp8), fp8
# with an E4M3 KV cache, and bf16 with an E4M3 KV cache; `kiln perplexity` of
# each on the held-out text, with the KL divergence and top-1 agreement of its
# next-token distributions against the fp16 engine's; and transformers'
# float64 perplexity of the same checkpoint on the same chunks
# (bench/hf_perplexity.py), the independent figure the fp16 engine must match,
# and its float64 perplexity with E4M3 rounding where each FP8 engine rounds
# (--fp8-weights, --fp8-kv), the figure each FP8 engine must match.
set -uo pipefail
cd "$(dirname "$0")/.."
model=${1:-demo/model} context=${CONTEXT:-512}
shift || true
texts=("$@")
[ ${#texts[@]} -gt 0 ] || texts=(demo/heldout.txt .carry/bench/train-sample.txt)
export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
kiln=.carry/bin/kiln work=${WORK:-/tmp/kiln-ppl} out=${PPL_OUT:-/tmp/kiln-ppl/logs}
mkdir -p "$work" "$out"
for variant in fp16 bf16 fp8 fp8kv kv8; do
  case $variant in
    fp16) opts="--dtype fp16" ;;
    bf16) opts="--dtype bf16" ;;
    fp8) opts="--dtype fp16 --quantize fp8" ;;
    fp8kv) opts="--dtype fp16 --quantize fp8 --kv-cache-dtype fp8" ;;
    kv8) opts="--dtype bf16 --kv-cache-dtype fp8" ;;
  esac
  # shellcheck disable=SC2086
  "$kiln" build --model "$model" --output "$work/$variant" --target cuda --force -q $opts > "$out/build-$variant.log" 2>&1 ||
    { echo "$variant: build failed"; tail -3 "$out/build-$variant.log"; continue; }
done
for text in "${texts[@]}"; do
  [ -f "$text" ] || continue
  name=$(basename "$text" .txt)
  echo "== $text"
  python3 bench/hf_perplexity.py "$model" "$text" --context "$context" > "$out/hf-$name.json" 2> "$out/hf-$name.log" &&
    echo "transformers float64: $(tail -1 "$out/hf-$name.json")" ||
    { echo "transformers float64: failed"; tail -3 "$out/hf-$name.log"; }
  # What the fp8, fp8kv and kv8 engines compute, in float64 (bench/hf_perplexity.py).
  for ref in "fp8:--fp8-weights" "fp8kv:--fp8-weights --fp8-kv" "kv8:--fp8-kv"; do
    # shellcheck disable=SC2086
    python3 bench/hf_perplexity.py "$model" "$text" --context "$context" ${ref#*:} > "$out/hf-$name-${ref%%:*}.json" \
      2> "$out/hf-$name-${ref%%:*}.log" && echo "transformers float64 as ${ref%%:*}: $(tail -1 "$out/hf-$name-${ref%%:*}.json")" ||
      { echo "transformers float64 as ${ref%%:*}: failed"; tail -3 "$out/hf-$name-${ref%%:*}.log"; }
  done
  for variant in fp16 bf16 fp8 fp8kv kv8; do
    [ -f "$work/$variant/engine.json" ] || continue
    base=()
    [ "$variant" = fp16 ] || base=(--kl-divergence-base "$work/fp16")
    "$kiln" perplexity --engine "$work/$variant" --text "$text" --context "$context" "${base[@]}" --json \
      > "$out/ppl-$name-$variant.json" 2> "$out/ppl-$name-$variant.log" &&
      echo "$variant: $(cat "$out/ppl-$name-$variant.json")" ||
      { echo "$variant: perplexity failed"; tail -3 "$out/ppl-$name-$variant.log"; }
  done
done
