#!/usr/bin/env bash
# The end-to-end benchmark: builds touchpointd and the load generator in
# Release (build-release/), then runs every figure against a real daemon on a
# free loopback port, each with a fresh database. Prints one line per figure:
#   metric=NAME value=NUMBER unit=UNIT
#
#   tests/bench/e2e/run.sh                  # full sizes (a few minutes)
#   tests/bench/e2e/run.sh --quick          # small sizes, under a minute
#   tests/bench/e2e/run.sh --purchases 100000 --pending 500000 ...
# Every option: tests/bench/e2e/run.sh --help. See docs/benchmarks.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
build="${TP_BENCH_BUILD_DIR:-$root/build-release}"
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTP_BUILD_TESTS=OFF \
  -DTP_BUILD_BENCH=ON -DTP_WERROR="${TP_WERROR:-OFF}" >/dev/null
cmake --build "$build" -j"$jobs" --target touchpointd touchpoint_e2e_bench >/dev/null
exec "$build/tests/bench/e2e/touchpoint_e2e_bench" --daemon "$build/daemon/touchpointd" "$@"
