#!/usr/bin/env bash
# Installs what is needed, builds, validates the example config and previews
# it on the example purchases.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTP_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc 2>/dev/null || echo 2)"
ctl=build-release/daemon/touchpointctl
"$ctl" validate config/touchpoint.example.yaml
echo "--- simulate --config config/touchpoint.example.yaml --purchases config/purchases.example.csv"
"$ctl" simulate --config config/touchpoint.example.yaml --purchases config/purchases.example.csv
