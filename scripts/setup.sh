#!/usr/bin/env bash
# Installs the Debian packages kiln needs to build and test. Idempotent: it
# runs apt-get only when something is missing.
set -euo pipefail

packages=(
  g++ cmake make              # toolchain
  nlohmann-json3-dev          # engine.json, config.json, safetensors headers
  libcli11-dev                # command line
  zlib1g-dev                  # deflated entries in PyTorch .bin archives
  libpcre2-dev                # tokenizer pre-split regexes (\p{L}, look-ahead)
  libutf8proc-dev             # Unicode normalization (NFC, NFKC) for tokenizers
  libsentencepiece-dev        # tokenizer.model files
  libgtest-dev libgmock-dev   # tests
  python3                     # test helpers
  curl                        # the HTTP client the serving tests talk to the server with
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
