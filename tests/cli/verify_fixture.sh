#!/usr/bin/env bash
# Builds an engine from a fixture checkpoint and verifies it against the
# fixture's HuggingFace reference:
#   verify_fixture.sh KILN FIXTURE_DIR DTYPE WORK_DIR [extra build options]
set -euo pipefail
kiln=$1 fixture=$2 dtype=$3 work=$4
shift 4
# Extra options become part of the engine's name ("--tp 2" -> "-tp2") so tests do not collide.
engine="$work/$(basename "$fixture")-$dtype$(printf '%s' "$@" | tr -cd 'a-z0-9' | sed 's/^./-&/')"
mkdir -p "$work"
"$kiln" build --model "$fixture" --output "$engine" --dtype "$dtype" --force -q "$@"
"$kiln" verify --engine "$engine" --reference "$fixture"
