#!/usr/bin/env bash
# Builds an engine from a fixture checkpoint and verifies it against the
# fixture's HuggingFace reference: verify_fixture.sh KILN FIXTURE_DIR DTYPE WORK_DIR
set -euo pipefail
kiln=$1 fixture=$2 dtype=$3 work=$4
engine="$work/$(basename "$fixture")-$dtype"
mkdir -p "$work"
"$kiln" build --model "$fixture" --output "$engine" --dtype "$dtype" --force -q
"$kiln" verify --engine "$engine" --reference "$fixture"
