#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs
# each for SECONDS (default 60), one per core at a time, starting from its
# seed corpus in tests/fuzz/corpus/TARGET/. Inputs that reach new code go to
# build-fuzz/fuzz-out/TARGET/corpus/, never into the committed corpus; a crash
# leaves its input in build-fuzz/fuzz-out/TARGET/ and makes the script exit 1
# once every target has run.
#   tests/fuzz/run.sh           # 60 s each
#   tests/fuzz/run.sh 600       # longer
#   tests/fuzz/run.sh 60 build-asan
#                               # in a build already configured with TP_FUZZ
#                               # (scripts/test.sh --sanitize makes one; CI
#                               # uses it rather than compiling everything
#                               # a second time)
#
# One target by hand (from the repository's root, after one run.sh):
#   mkdir -p /tmp/csv-out && cd /tmp/csv-out
#   $OLDPWD/build-fuzz/tests/fuzz/csv_fuzz -dict=$OLDPWD/tests/fuzz/csv_fuzz.dict \
#     -max_len=8192 . $OLDPWD/tests/fuzz/corpus/csv_fuzz
# (the first directory receives new inputs; -jobs=N runs N at once).
# Reproducing a crash: run the target on the saved input alone, which runs it
# and prints the sanitizer's report (llvm-symbolizer names the lines):
#   UBSAN_OPTIONS=print_stacktrace=1 \
#     build-fuzz/tests/fuzz/csv_fuzz build-fuzz/fuzz-out/csv_fuzz/crash-<sha1>
# -minimize_crash=1 -runs=10000 shrinks it first; TP_FUZZ_SHOW=1 makes
# http_fuzz print the daemon's answers. A fixed crash becomes a regression
# test in the gtest suite (tests/<dir>/<file>_test.cc) with the input spelt
# out in it.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
build=${2:-build-fuzz}
out=$build/fuzz-out
targets=(purchase_json_fuzz json_body_fuzz config_fuzz csv_fuzz http_fuzz)

if [[ -n ${2:-} ]]; then
  grep -q '^TP_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null ||
    { echo "run.sh: $build is not a build configured with TP_FUZZ=ON" >&2; exit 64; }
else
  # The compiler is chosen when build-fuzz is first configured.
  CXX=clang++ cmake -S . -B "$build" -DTP_FUZZ=ON -DTP_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTP_WERROR="${TP_WERROR:-OFF}" \
    -DTP_LINE_TABLES="${TP_LINE_TABLES:-OFF}" >/dev/null
fi
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
root=$PWD
# A figure from libFuzzer's final stats (-print_final_stats=1) in a log.
stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }
# Runs one target; its report goes to $out/TARGET/report, its status to
# $out/TARGET/failed when it fails.
fuzz_one() {
  local target=$1 dir=$out/$1
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/cwd"
  local args=(-max_total_time="$seconds" -timeout=10 -max_len=8192 -print_final_stats=1
              -artifact_prefix="$root/$dir/")
  [[ -f tests/fuzz/$target.dict ]] && args+=(-dict="$root/tests/fuzz/$target.dict")
  local log=$dir/fuzz.log
  # In a scratch directory: paths in fuzzed configs are relative to it.
  if (cd "$dir/cwd" && "$root/$build/tests/fuzz/$target" "${args[@]}" \
        "$root/$dir/corpus" "$root/tests/fuzz/corpus/$target") >"$log" 2>&1; then
    local cov
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    printf '%-20s ok     %ss, %s runs (%s/s), cov %s, %s new inputs\n' "$target" "$seconds" \
      "$(stat_of number_of_executed_units "$log")" "$(stat_of average_exec_per_sec "$log")" \
      "${cov:-?}" "$(stat_of new_units_added "$log")" >"$dir/report"
  else
    touch "$dir/failed"
    local artifact
    artifact=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -1)
    { printf '%-20s FAILED input: %s (log: %s)\n' "$target" "${artifact:-none}" "$log"
      grep -m1 -A25 -E '^==[0-9]+==ERROR|runtime error|invariant broken|ERROR: libFuzzer' "$log" ||
        tail -25 "$log"; } >"$dir/report"
  fi
}
# One target per core at a time: each is a single process.
jobs=$(nproc 2>/dev/null || echo 2)
for target in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  fuzz_one "$target" &
done
wait
failed=0
for target in "${targets[@]}"; do
  cat "$out/$target/report"
  [[ -e $out/$target/failed ]] && failed=1
done
exit "$failed"
