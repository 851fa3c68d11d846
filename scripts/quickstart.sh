#!/usr/bin/env bash
# Installs what is needed, builds, checks the example config and runs
# touchpointd on it in the foreground (Ctrl-C stops it), with its SQLite store
# in ./var/. Try it from another terminal with scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTP_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc 2>/dev/null || echo 2)"
build-release/daemon/touchpointctl validate config/touchpoint.example.yaml
mkdir -p var
exec build-release/daemon/touchpointd --config config/touchpoint.example.yaml \
  --database var/touchpoint.db "$@"
