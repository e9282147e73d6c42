#!/usr/bin/env bash
# The main job on its default model: set up, build kiln, compile the bundled
# small Llama checkpoint into a CPU engine, check it against HuggingFace's
# reference outputs, and generate from it.
#   MODEL=DIR scripts/demo.sh   uses another HuggingFace checkpoint directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
model=${MODEL:-../shared/fixtures/models/llama}
engine=build/demo-engine
echo
echo "== kiln build: $model -> $engine"
build/kiln build --model "$model" --output "$engine" --target cpu --force
echo
echo "== kiln inspect"
build/kiln inspect "$engine"
if [ -f "$model/reference.json" ]; then
  echo
  echo "== kiln verify (against HuggingFace float64 reference)"
  build/kiln verify --engine "$engine" --reference "$model"
fi
echo
echo "== kiln generate"
build/kiln generate --engine "$engine" --input-ids 1,43,258,348 --max-new-tokens 24 --json
