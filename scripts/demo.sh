#!/usr/bin/env bash
# The main job on its default model: set up, build kiln, compile the bundled
# demo model (demo/model: a small Llama trained on fortune cookies) into a CPU
# engine, check it against the PyTorch reference recorded at training time,
# and generate text from a prompt and from a chat.
#   MODEL=DIR scripts/demo.sh   uses another HuggingFace checkpoint directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
model=${MODEL:-demo/model}
engine=build/demo-engine
echo
echo "== kiln build: $model -> $engine"
build/kiln build --model "$model" --output "$engine" --target cpu --force
echo
echo "== kiln inspect"
build/kiln inspect "$engine"
if [ -f "$model/reference.json" ]; then
  echo
  echo "== kiln verify (against the PyTorch reference)"
  build/kiln verify --engine "$engine" --reference "$model"
fi
if [ -d "$engine/tokenizer" ]; then
  echo
  echo "== kiln generate --prompt 'The meaning of life is'"
  build/kiln generate --engine "$engine" --prompt "The meaning of life is" --max-new-tokens 48
  echo
  echo "== kiln generate --chat (\"Tell me a fortune.\")"
  messages=$(mktemp)
  echo '[{"role": "user", "content": "Tell me a fortune."}]' > "$messages"
  build/kiln generate --engine "$engine" --chat "$messages" --max-new-tokens 64
  rm -f "$messages"
else
  echo
  echo "== kiln generate (no tokenizer in this checkpoint: token ids)"
  build/kiln generate --engine "$engine" --input-ids 1,2,3 --max-new-tokens 24
fi
