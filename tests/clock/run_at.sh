#!/usr/bin/env bash
# Runs the built suite (ctest in BUILD_DIR) with the wall clock of every
# process moved to each INSTANT in turn (shift_clock.cc), so that a test
# that only passes at some hours, on some days or away from a DST change
# fails here and not at 04:00 on a CI machine. Without instants it uses the
# list below: each starts just before a boundary the suite then crosses.
#   tests/clock/run_at.sh build                          # the list below
#   tests/clock/run_at.sh build 2027-03-28T00:59:30Z     # one instant
set -euo pipefail
build=${1:?usage: run_at.sh BUILD_DIR [INSTANT...]}
shift
instants=("$@")
if ((${#instants[@]} == 0)); then
  instants=(
    2027-01-01T03:30:00Z  # 03:00-08:00 UTC, where a send-window test once failed; a Friday
    2026-12-31T23:59:40Z  # the UTC day, month and year end during the run
    2027-03-28T00:59:30Z  # Europe/Berlin springs forward during the run
    2027-10-31T00:59:30Z  # Europe/Berlin falls back during the run
    2028-02-29T15:59:40Z  # a leap day; Asia/Shanghai's midnight during the run
    2027-07-04T12:59:40Z  # a Sunday; Shanghai's send window closes during the run
  )
fi
lib=$(find "$(cd "$build" && pwd)" -name libtp_shift_clock.so -print -quit)
[[ -n $lib ]] || { echo "run_at.sh: no libtp_shift_clock.so under $build (build the tests)" >&2; exit 1; }
# The suite mostly waits on daemons and sockets (about 14 s of CPU in 35 s
# at -j2), so it runs four tests per core.
jobs=$((4 * $(nproc 2>/dev/null || echo 2)))
# The crash loop kills and restarts daemons for 20 s whatever the time; it
# runs once, in the plain suite. So do the browser tests: the simulate
# page's replay runs on a virtual clock, the status page's daemon has no
# send window in UTC, and chromium is not a process to preload.
# The PostgreSQL store's own tests decide on fake clocks and fixed
# instants.
exclude=${TP_RUN_AT_EXCLUDE:-CrashTest|BrowserTest|StoreConformanceTest|PgStoreTest|PgOutboxTest|PgConnectionTest}
# The daemons on PostgreSQL (PostgresDaemonTest) run at the first instant
# only: their scheduling is the scheduler's, which the daemons on SQLite
# cross every boundary with, and each instant without them (and without
# the server their fixture starts) is about a fifth shorter.
once=${TP_RUN_AT_ONCE:-PostgresDaemonTest|PgCluster}
failed=()
for at in "${instants[@]}"; do
  shift_s=$(($(date -u -d "$at" +%s) - $(date -u +%s)))
  echo "=== the suite at $at (wall clock moved ${shift_s}s) ==="
  skip=$exclude
  [[ $at == "${instants[0]}" || -z $once ]] || skip="$exclude|$once"
  if ! LD_PRELOAD=$lib TP_CLOCK_SHIFT_S=$shift_s \
      ctest --test-dir "$build" --output-on-failure -j"$jobs" -E "$skip"; then
    failed+=("$at")
  fi
done
if ((${#failed[@]})); then
  echo "run_at.sh: the suite failed at: ${failed[*]}" >&2
  exit 1
fi
