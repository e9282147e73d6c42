#!/usr/bin/env bash
# The CUDA target's correctness check, in two halves:
#
#   scripts/gpu-check.sh pack     (here) build kiln with CUDA into build-cuda/ and
#                                 put it, the shared libraries it needs that are
#                                 neither glibc's nor CUDA's, the fixtures and the
#                                 shared benchmark scripts into .carry/
#   scripts/gpu-check.sh verify   (on the GPU machine, .carry/ beside it) build an
#                                 engine for the GPU from every fixture in fp32 and
#                                 bf16 and `kiln verify` it against HuggingFace's
#                                 float64 reference (and four fp32 --tp 2 engines);
#                                 a table, non-zero on a failure; then sampling
#                                 (CPU vs GPU tokens) and kiln serve under load
#   scripts/gpu-check.sh serve    (on the GPU machine) only the kiln serve check
#   scripts/gpu-check.sh fp8      (on the GPU machine) only the FP8 engines' checks
#
# With the device tool: pack here, then run `scripts/gpu-check.sh verify` there
# with carry [".carry"]. bench/gpu_bench.sh (same carry) times a 7B model.
# Logs: /tmp/kiln-gpu-check/logs on that machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}

pack() {
  # Hopper only (the GPU machine's H100/H200): half the device code of CI's
  # sm_80 + sm_90 build, so the carried tree stays under the tool's 64 MiB.
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DKILN_TESTS=OFF \
    -DCMAKE_CUDA_ARCHITECTURES="${KILN_CUDA_ARCHS:-90}" > /dev/null
  cmake --build build-cuda -j"$(nproc)" --target kiln kiln_attention_check kiln_gemv_check
  rm -rf .carry && mkdir -p .carry/bin .carry/lib .carry/bench
  cp build-cuda/kiln build-cuda/kiln_attention_check build-cuda/kiln_gemv_check .carry/bin/
  strip .carry/bin/*
  # Every library outside glibc and the CUDA toolkit travels (the GPU machine
  # has its own CUDA 13 and glibc, not Debian's -dev packages).
  ldd build-cuda/kiln | awk '$3 ~ /^\// {print $3}' |
    grep -Ev '/(libc|libm|libpthread|libdl|librt|libresolv|ld-linux[^/]*)\.so|^/usr/local/cuda' |
    while read -r lib; do cp -L "$lib" .carry/lib/; done
  cp -r ../shared/fixtures/models .carry/fixtures
  cp ../shared/bench/*.py .carry/bench/
  cp bench/sdpa_peer.py .carry/bench/  # the prefill attention's peer (bench/fp8_prefill.sh)
  # 40 KB of the demo model's training corpus (bench/fp8_perplexity.sh), where
  # Debian's fortunes are installed to make it from.
  if [ -d /usr/share/games/fortunes ] && python3 demo/make_corpus.py /tmp/kiln-demo-corpus.txt > /dev/null; then
    python3 -c "import sys; s = open(sys.argv[1]).read(); i = s.find('\n%\n', len(s) // 2) + 3; open(sys.argv[2], 'w').write(s[i:i + 40000])" \
      /tmp/kiln-demo-corpus.txt .carry/bench/train-sample.txt
  fi
  du -sh .carry
}

verify() {
  export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local kiln=.carry/bin/kiln work=/tmp/kiln-gpu-check out=/tmp/kiln-gpu-check/logs
  mkdir -p "$work" "$out"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$kiln" --version
  local failed=0 passed=0
  printf '%-26s %-5s %-6s %-10s %s\n' fixture dtype result "worst" "verdict (or the error)"
  for fixture in $(python3 -c "import json;print(' '.join(json.load(open('.carry/fixtures/manifest.json'))['fixtures']))"); do
    for dtype in fp32 bf16; do
      # As on the CPU (docs/verification.md): Mixtral's router near-ties flip under bf16 rounding.
      [ "$fixture" = mixtral ] && [ "$dtype" = bf16 ] && continue
      local engine="$work/$fixture-$dtype" log="$out/verify-$fixture-$dtype.log"
      if "$kiln" build --model ".carry/fixtures/$fixture" --output "$engine" --dtype "$dtype" --target cuda \
           --force -q > "$log" 2>&1 &&
         "$kiln" verify --engine "$engine" --reference ".carry/fixtures/$fixture" >> "$log" 2>&1; then
        passed=$((passed + 1)); result=PASS
      else
        failed=$((failed + 1)); result=FAIL
        [ "$failed" -le 3 ] && tail -5 "$log" | sed 's/^/    /' >&2
      fi
      # The largest logit error over every case, and the verdict line (or the error).
      worst=$(grep -oE 'max\|dlogit\| [0-9.e+-]+' "$log" | awk '{print $2}' | sort -g | tail -1)
      printf '%-26s %-5s %-6s %-10s %s\n' "$fixture" "$dtype" "$result" "${worst:--}" "$(tail -1 "$log" | cut -c1-100)"
    done
  done
  # Tensor-parallel engines (ranks run in turn on the one GPU): GQA split, experts, MQA replication, learned positions.
  for fixture in llama mixtral falcon-7b-style gpt2; do
    local engine="$work/$fixture-fp32-tp2" log="$out/verify-$fixture-fp32-tp2.log"
    if "$kiln" build --model ".carry/fixtures/$fixture" --output "$engine" --dtype fp32 --tp 2 --target cuda \
         --force -q > "$log" 2>&1 &&
       "$kiln" verify --engine "$engine" --reference ".carry/fixtures/$fixture" >> "$log" 2>&1; then
      passed=$((passed + 1)); result=PASS
    else
      failed=$((failed + 1)); result=FAIL
    fi
    printf '%-26s %-5s %-6s %s\n' "$fixture" "tp2" "$result" "$(tail -1 "$log" | cut -c1-100)"
  done
  # Sampling on the GPU (temperature, top-k, top-p, repetition penalty) against
  # the CPU's sample_token with the same seed: the same tokens, up to the order
  # of floating-point sums (fp32 engines, whose logits agree to ~1e-5).
  for fixture in llama qwen2 gpt2 phi2; do
    local log="$out/sample-$fixture.log" args="--input-ids 1,2,3,4,5 --max-new-tokens 40 --ignore-eos --json"
    local cpu_engine="$work/$fixture-fp32-cpu" result=FAIL
    if "$kiln" build --model ".carry/fixtures/$fixture" --output "$cpu_engine" --dtype fp32 --target cpu \
         --force -q > "$log" 2>&1; then
      result=PASS
      for opts in "--temperature 0.8 --top-k 40 --top-p 0.9 --seed 11 --repetition-penalty 1.3" \
                  "--temperature 1.5 --seed 3" "--top-p 0.5 --seed 5" "--repetition-penalty 1.5"; do
        # shellcheck disable=SC2086
        a=$("$kiln" generate --engine "$cpu_engine" $args $opts 2>>"$log" | python3 -c "import json,sys;print(json.load(sys.stdin)['output_ids'])")
        # shellcheck disable=SC2086
        b=$("$kiln" generate --engine "$work/$fixture-fp32" $args $opts 2>>"$log" | python3 -c "import json,sys;print(json.load(sys.stdin)['output_ids'])")
        echo "$opts: cpu $a cuda $b" >> "$log"
        [ -n "$a" ] && [ "$a" = "$b" ] || result=FAIL
      done
    fi
    if [ "$result" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    printf '%-26s %-5s %-6s %s\n' "$fixture" "sample" "$result" "$(tail -1 "$log" | cut -c1-100)"
  done
  fp8_check
  corruption_check
  serve_check
  echo "passed $passed, failed $failed"
  [ "$failed" -eq 0 ]
}

# FP8 engines (--quantize fp8: E4M3 projections, per-channel scales): every
# fixture built and verified against HuggingFace's float64 reference under the
# fp8 criterion (docs/verification.md); the figures line of each goes to the
# log. Counts into passed/failed of the caller.
fp8_check() {
  # fp8: E4M3 projections; fp8kv: and an E4M3 KV cache; kv8: only the KV cache in E4M3 (bf16 weights).
  local variant opts
  for fixture in $(python3 -c "import json;print(' '.join(json.load(open('.carry/fixtures/manifest.json'))['fixtures']))"); do
    for variant in fp8 fp8kv kv8; do
      case $variant in
        fp8) opts="--quantize fp8" ;;
        fp8kv) opts="--quantize fp8 --kv-cache-dtype fp8" ;;
        kv8) opts="--dtype bf16 --kv-cache-dtype fp8" ;;
      esac
      local engine="$work/$fixture-$variant" log="$out/verify-$fixture-$variant.log" result=FAIL
      # shellcheck disable=SC2086
      if "$kiln" build --model ".carry/fixtures/$fixture" --output "$engine" $opts --target cuda \
           --force -q > "$log" 2>&1 &&
         "$kiln" verify --engine "$engine" --reference ".carry/fixtures/$fixture" >> "$log" 2>&1; then
        result=PASS
      fi
      # Mixtral's routing flips at near-ties in any low precision (docs/verification.md): reported, not counted.
      if [ "$fixture" = mixtral ]; then
        result="$result(moe)"
      elif [ "$result" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
      printf '%-26s %-5s %-9s %s\n' "$fixture" "$variant" "$result" \
        "$(grep -m1 '^all positions' "$log" | cut -c1-120 || tail -1 "$log" | cut -c1-120)"
    done
  done
  # Pre-quantized FP8 checkpoints against their own float64 reference (the
  # dequantized model): what is left is the kernels' error, not quantization's.
  for dir in tests/checkpoint/data/llama-fp8-*; do
    [ -f "$dir/config.json" ] || continue
    local name engine log result=FAIL
    name=$(basename "$dir") engine="$work/$(basename "$dir")-engine" log="$out/verify-$(basename "$dir").log"
    if "$kiln" build --model "$dir" --output "$engine" --target cuda --force -q > "$log" 2>&1 &&
       "$kiln" verify --engine "$engine" --reference "$dir" >> "$log" 2>&1; then
      result=PASS
    fi
    if [ "$result" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    printf '%-26s %-5s %-9s %s\n' "$name" "ckpt" "$result" \
      "$(grep -m1 '^all positions' "$log" | cut -c1-120 || tail -1 "$log" | cut -c1-120)"
  done
}

# Weights verified on the GPU (runtime/weight_verifier): every fixture above
# loaded with its chunks hashed on the device; here a flipped byte in a tensor
# must be refused by `generate` (and load with --no-verify-weights), and one in
# the padding between tensors, which no kernel reads, loads but fails
# `inspect --check`. Counts into passed/failed of the caller.
corruption_check() {
  local log="$out/corruption.log" engine="" tensor_byte="" pad_byte="" result
  : > "$log"
  # An engine above with padding between tensors (tensors start at multiples of
  # 256 bytes), and in it the last tensor's last byte and the first padding byte.
  read -r engine tensor_byte pad_byte < <(python3 - "$work" <<'PY'
import glob, json, sys
for path in sorted(glob.glob(sys.argv[1] + "/*/engine.json")):
    m = json.load(open(path))
    if m["target"]["backend"] != "cuda":
        continue
    t = sorted(m["ranks"][0]["tensors"], key=lambda t: t["offset"])
    gaps = [a["offset"] + a["nbytes"] for a, b in zip(t, t[1:]) if b["offset"] > a["offset"] + a["nbytes"]]
    if gaps:
        print(path[: -len("/engine.json")], t[-1]["offset"] + t[-1]["nbytes"] - 1, gaps[0])
        break
PY
)
  if [ -z "$engine" ]; then
    echo "corruption check: no engine above has padding between tensors" >&2
    failed=$((failed + 1))
    return
  fi
  for what in "tensor:$tensor_byte" "padding:$pad_byte"; do
    local copy="$work/corrupt-${what%%:*}"
    result=FAIL
    rm -rf "$copy" && cp -r "$engine" "$copy"
    python3 -c "import sys; f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2])); b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 0x5a]))" \
      "$copy/rank0.bin" "${what#*:}"
    if [ "${what%%:*}" = tensor ]; then
      # Refused, naming the chunk; loaded when told not to verify.
      ! "$kiln" generate --engine "$copy" --input-ids 1,2,3 --max-new-tokens 2 >> "$log" 2>&1 &&
        grep -q "does not match its checksum" "$log" &&
        "$kiln" generate --engine "$copy" --input-ids 1,2,3 --max-new-tokens 2 --no-verify-weights >> "$log" 2>&1 &&
        result=PASS
    else
      # No tensor holds the byte: the weights on the device are intact and load;
      # `inspect --check`, which hashes the file, still finds it.
      "$kiln" generate --engine "$copy" --input-ids 1,2,3 --max-new-tokens 2 >> "$log" 2>&1 &&
        ! "$kiln" inspect --check "$copy" >> "$log" 2>&1 && grep -q "does not match its checksum" "$log" &&
        result=PASS
    fi
    if [ "$result" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    printf '%-26s %-5s %-6s %s\n' "$(basename "$engine") ${what%%:*}" "flip" "$result" \
      "$(grep -m1 -o 'does not match.*)' "$log" | cut -c1-100)"
    cat "$log" >> "$out/corruption-all.log" && : > "$log"
  done
  # And the intact engine was hashed on the device, not from the file.
  result=FAIL
  "$kiln" generate --engine "$engine" --input-ids 1,2,3 --max-new-tokens 2 >> "$log" 2>&1 &&
    grep -q "weights hashed on the GPU" "$log" && result=PASS
  if [ "$result" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  printf '%-26s %-5s %-6s %s\n' "$(basename "$engine")" "intact" "$result" \
    "$(grep -m1 -o 'weights hashed on the GPU.*' "$log" | cut -c1-100)"
}

# kiln serve on the CUDA target: the demo model, greedy and sampled LMI
# requests and OpenAI chat, 16 at once, every one answered. Counts into
# passed/failed of the caller.
serve_check() {
  local log="$out/serve.log" engine="$work/demo-cuda" result=FAIL
  if "$kiln" build --model demo/model --output "$engine" --target cuda --force -q > "$log" 2>&1; then
    OPTION_MODEL_ID="$engine" "$kiln" serve --host 127.0.0.1 --port 0 >> "$log" 2>&1 &
    local server=$! port=""
    for _ in $(seq 1 300); do
      port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
      if [ -n "$port" ] && grep -q ") ready" "$log"; then break; fi
      sleep 0.1
    done
    local answers="$out/serve-answers.txt"
    : > "$answers"
    local clients=""
    for i in $(seq 1 16); do
      case $((i % 3)) in
        0) env -u LD_LIBRARY_PATH curl -sS -m 60 -X POST "http://127.0.0.1:$port/invocations" -H 'Content-Type: application/json' \
             -d '{"inputs": "Love is", "parameters": {"max_new_tokens": 24}}' >> "$answers" & ;;
        1) env -u LD_LIBRARY_PATH curl -sS -m 60 -X POST "http://127.0.0.1:$port/invocations" -H 'Content-Type: application/json' \
             -d "{\"inputs\": \"You will\", \"parameters\": {\"max_new_tokens\": 24, \"do_sample\": true, \"temperature\": 0.9, \"top_p\": 0.9, \"top_k\": 20, \"repetition_penalty\": 1.2, \"seed\": $i}}" >> "$answers" & ;;
        2) env -u LD_LIBRARY_PATH curl -sS -m 60 "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
             -d '{"messages": [{"role": "user", "content": "Tell me a fortune."}], "temperature": 0, "max_tokens": 24}' >> "$answers" & ;;
      esac
      clients="$clients $!"
    done
    # shellcheck disable=SC2086
    wait $clients 2>/dev/null || true
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    local lmi chat
    lmi=$(grep -o '"generated_text"' "$answers" | wc -l) chat=$(grep -o '"choices"' "$answers" | wc -l)
    echo "answers: $lmi LMI, $chat chat" >> "$log"
    head -c 600 "$answers" >> "$log"
    [ "$lmi" -eq 11 ] && [ "$chat" -eq 5 ] && result=PASS
  fi
  if [ "$result" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  printf '%-26s %-5s %-6s %s\n' demo serve "$result" "$(grep answers: "$log" | tail -1)"
}

case "$mode" in
  pack) pack ;;
  verify) verify ;;
  fp8)
    # Only the FP8 engines (fp8_check), after a change to their kernels.
    export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    kiln=.carry/bin/kiln work=/tmp/kiln-gpu-check out=/tmp/kiln-gpu-check/logs passed=0 failed=0
    mkdir -p "$work" "$out"
    fp8_check
    echo "passed $passed, failed $failed"
    [ "$failed" -eq 0 ] ;;
  serve)
    export LD_LIBRARY_PATH="$PWD/.carry/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    kiln=.carry/bin/kiln work=/tmp/kiln-gpu-check out=/tmp/kiln-gpu-check/logs passed=0 failed=0
    mkdir -p "$out"
    serve_check
    [ "$failed" -eq 0 ] ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
