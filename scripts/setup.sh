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
  libcurl4-openssl-dev        # the S3 client (storage layer)
  libssl-dev                  # SigV4 signing (HMAC-SHA256)
  openmpi-bin libopenmpi-dev  # tensor-parallel ranks as processes (mpirun; tests/mpi)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The S3 tests talk to a real S3-compatible server (moto) and compare with the
# aws CLI. Both come with kiln's machines' Python; the CLI is also a Debian
# package, moto is not (and no PyPI is reachable), so a machine without moto
# is told so here rather than by a failing test.
command -v aws > /dev/null || missing+=(awscli)
python3 -c "import moto.server" 2> /dev/null || echo "setup: warning: python3 cannot import moto; the S3 tests will fail" >&2

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
