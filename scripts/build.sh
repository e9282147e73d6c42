#!/usr/bin/env bash
# Incremental Release build; leaves the CLI at build/kiln.
# BUILD_TYPE=Debug scripts/build.sh builds into build-debug/ instead.
set -euo pipefail
cd "$(dirname "$0")/.."
type=${BUILD_TYPE:-Release}
dir=build
[ "$type" = Release ] || dir=build-$(echo "$type" | tr '[:upper:]' '[:lower:]')
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type"
fi
cmake --build "$dir" -j"$(nproc)"
