#!/usr/bin/env bash
# The main job on its default model: set up, build kiln, compile the bundled
# demo model (demo/model: a small Llama trained on fortune cookies) into a CPU
# engine, check it against the PyTorch reference recorded at training time,
# generate text from a prompt and from a chat, then serve the engine and answer
# an LMI and an OpenAI request with curl.
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

echo
echo "== kiln serve (LMI and OpenAI APIs), answered with curl"
log=$(mktemp)
OPTION_MODEL_ID="$PWD/$engine" build/kiln serve --host 127.0.0.1 --port 0 > "$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
  if [ -n "$port" ] && grep -q ") ready" "$log"; then break; fi
  sleep 0.1
done
[ -n "$port" ] || { cat "$log"; exit 1; }
echo "POST /invocations"
curl -sS -X POST "http://127.0.0.1:$port/invocations" -H 'Content-Type: application/json' \
  -d '{"inputs": "Love is", "parameters": {"max_new_tokens": 32}}'
echo
echo "POST /v1/chat/completions"
curl -sS "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages": [{"role": "user", "content": "Tell me a fortune."}], "temperature": 0}'
echo
kill -TERM $server
wait $server
echo "server stopped cleanly"
