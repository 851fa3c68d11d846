#!/usr/bin/env bash
# Installs what is needed, builds and runs the whole test suite.
#   scripts/test.sh              # Debug build in build/, ctest
#   scripts/test.sh --sanitize   # ASan + UBSan build (clang) in build-asan/, ctest
# TP_WERROR=ON makes compiler warnings errors, TP_LINE_TABLES=ON keeps only
# line tables as debug info (CI sets both; .ci/run), TP_UNITY=ON compiles
# the library and the test programs as unity builds (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# The official standardwebhooks package, for the signature interop test.
npm ci --prefix tests/interop --no-audit --no-fund --silent
# puppeteer-core, which drives Debian's chromium in the browser tests (it
# downloads no browser).
npm ci --prefix tests/browser --no-audit --no-fund --silent

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DTP_WERROR="${TP_WERROR:-OFF}"
            -DTP_LINE_TABLES="${TP_LINE_TABLES:-OFF}" -DTP_UNITY="${TP_UNITY:-OFF}")
if [[ ${1:-} == --sanitize ]]; then
  build_dir=build-asan
  # clang, with libFuzzer's coverage instrumentation as well (TP_FUZZ): the
  # same objects then serve the fuzz targets (tests/fuzz/run.sh 60
  # build-asan), so CI compiles the library once for both, not twice.
  # Naming the compiler makes CMake start an existing build-asan afresh if
  # it was configured with another. -O1, as ASan advises: at -O0 with the
  # coverage hooks the suite's daemons ran too slowly for its 30 s request
  # timeouts, and the fuzzers got a fraction of the runs.
  cmake_args+=(-DCMAKE_CXX_COMPILER=clang++ -DTP_SANITIZE=ON -DTP_FUZZ=ON
               "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1")
fi
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j"$jobs"
# The suite mostly waits on daemons and sockets: two tests per core.
ctest --test-dir "$build_dir" --output-on-failure -j"$((2 * jobs))"
