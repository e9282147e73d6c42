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
#                                 a table, non-zero on a failure
#
# With the device tool: pack here, then run `scripts/gpu-check.sh verify` there
# with carry [".carry"]. bench/gpu_bench.sh (same carry) times a 7B model.
# Logs: /tmp/kiln-gpu-check/logs on that machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}

pack() {
  if [ ! -f build-cuda/CMakeCache.txt ]; then
    cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DKILN_TESTS=OFF > /dev/null
  fi
  cmake --build build-cuda -j"$(nproc)" --target kiln kiln_attention_check
  rm -rf .carry && mkdir -p .carry/bin .carry/lib .carry/bench
  cp build-cuda/kiln build-cuda/kiln_attention_check .carry/bin/
  # Every library outside glibc and the CUDA toolkit travels (the GPU machine
  # has its own CUDA 13 and glibc, not Debian's -dev packages).
  ldd build-cuda/kiln | awk '$3 ~ /^\// {print $3}' |
    grep -Ev '/(libc|libm|libpthread|libdl|librt|libresolv|ld-linux[^/]*)\.so|^/usr/local/cuda' |
    while read -r lib; do cp -L "$lib" .carry/lib/; done
  cp -r ../shared/fixtures/models .carry/fixtures
  cp ../shared/bench/*.py .carry/bench/
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
  echo "passed $passed, failed $failed"
  [ "$failed" -eq 0 ]
}

case "$mode" in
  pack) pack ;;
  verify) verify ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
