#!/usr/bin/env bash
# kiln s3 cp against aws s3 cp on the same tree, same S3-compatible server
# (moto on loopback), same run:  bench/s3_throughput.sh [OUT.md]
# The tree is an engine-shaped one: a few large blobs and small files.
# moto (a Python server) is the bottleneck for both clients, so the ratio, not
# the absolute MB/s, is the result; on real S3 both scale with parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/dev/stdout}
scripts/build.sh > /dev/null
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m moto.server -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
for _ in $(seq 1 100); do curl -s "$AWS_ENDPOINT_URL" > /dev/null && break; sleep 0.1; done
aws s3 mb s3://bench > /dev/null
mkdir -p "$work/tree/tokenizer"
for i in 0 1 2 3; do head -c $((64 << 20)) /dev/urandom > "$work/tree/rank$i.bin"; done
for i in $(seq 1 20); do head -c 200000 /dev/urandom > "$work/tree/tokenizer/file$i"; done
bytes=$(du -sb "$work/tree" | cut -f1)
seconds() { local s e; s=$(date +%s%N); "$@" > /dev/null 2>&1; e=$(date +%s%N); echo "scale=3; ($e - $s) / 1000000000" | bc; }
ku=$(seconds build/kiln s3 cp "$work/tree" s3://bench/kiln --recursive)
au=$(seconds aws s3 cp "$work/tree" s3://bench/aws --recursive --only-show-errors)
kd=$(seconds build/kiln s3 cp s3://bench/kiln "$work/down-kiln" --recursive)
ad=$(seconds aws s3 cp s3://bench/aws "$work/down-aws" --recursive --only-show-errors)
diff -r "$work/tree" "$work/down-kiln" > /dev/null && diff -r "$work/tree" "$work/down-aws" > /dev/null
mb=$(echo "scale=1; $bytes / 1000000" | bc)
{
  echo "# S3 throughput, $(date -u +%Y-%m-%d), $(nproc) cores, moto on loopback"
  echo
  echo "Tree: 4 x 64 MiB blobs + 20 x 200 kB files ($mb MB); both downloads verified byte-identical."
  echo
  echo "| direction | kiln s3 cp (s) | aws s3 cp (s) | kiln MB/s | aws MB/s | kiln speedup |"
  echo "| --- | --- | --- | --- | --- | --- |"
  echo "| upload | $ku | $au | $(echo "scale=0; $mb / $ku" | bc) | $(echo "scale=0; $mb / $au" | bc) | $(echo "scale=2; $au / $ku" | bc)x |"
  echo "| download | $kd | $ad | $(echo "scale=0; $mb / $kd" | bc) | $(echo "scale=0; $mb / $ad" | bc) | $(echo "scale=2; $ad / $kd" | bc)x |"
} > "$out"
