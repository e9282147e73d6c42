#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang-14 (ASan + UBSan, in build-fuzz/) and runs each target
# for a bounded time, one at a time. docs/fuzzing.md says more.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s; all targets)
#   scripts/fuzz.sh 120 jinja tokenizer_json
#
# Seeds come from ../shared/fixtures (KILN_FIXTURES) at run time; what each run adds is kept in
# build-fuzz/fuzz/corpus/<target>/, findings (crash-*, timeout-*, oom-*, leak-*) go to build-fuzz/fuzz/findings/<target>/
# and each log to build-fuzz/fuzz/logs/<target>.log. Exits non-zero when a target found something.
# FUZZ_BUILD_JOBS (default 2) and FUZZ_RSS_MB (default 2048) tune it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
[[ $# -gt 0 ]] && shift
all_targets=(http_request_parser properties_file safetensors pickle_reader manifest config_spec tokenizer_json jinja)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all_targets[@]}")
build=build-fuzz
fixtures=${KILN_FIXTURES:-$(pwd)/../shared/fixtures}

if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 -DKILN_FUZZ=ON -DKILN_TESTS=OFF -DKILN_CUDA=OFF \
    $(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake --build "$build" -j "${FUZZ_BUILD_JOBS:-2}" --target fuzz

out=$build/fuzz
rm -rf "$out/seeds"
python3 scripts/fuzz_seeds.py "$fixtures" "$out/seeds" "$build"

status=0
summary=()
for target in "${targets[@]}"; do
  binary=$out/${target}_fuzz
  [[ -x $binary ]] || { echo "no fuzz target '$target' (have: ${all_targets[*]})" >&2; exit 2; }
  mkdir -p "$out/corpus/$target" "$out/findings/$target" "$out/logs" "$out/seeds/$target"
  dict=()
  [[ -f tests/fuzz/$target.dict ]] && dict=(-dict="tests/fuzz/$target.dict")
  log=$out/logs/$target.log
  start=$out/logs/$target.start
  touch "$start"
  echo "== $target: ${seconds}s"
  # -timeout: an input running 5 s is a hang; -max_len keeps mutated inputs small enough to run fast.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$binary" "$out/corpus/$target" "$out/seeds/$target" "${dict[@]}" -max_total_time="$seconds" -timeout=5 \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$out/findings/$target/" >"$log" 2>&1 || status=1
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -oE '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || echo "cov: ?")
  found=$(find "$out/findings/$target" -type f -newer "$start" | wc -l)
  summary+=("$(printf '%-20s execs %-10s %-22s findings %s' "$target" "$execs" "$cov" "$found")")
  [[ $found -gt 0 ]] && status=1
  tail -n 3 "$log"
done
echo
printf '%s\n' "${summary[@]}"
exit $status
