#!/usr/bin/env bash
# Benchmark: touchpointd's memory with about 1,000,000 pending touchpoints,
# and ingest throughput through `touchpointctl import` (HTTP batches of 1000).
# Every buyer buys once, so nothing is cancelled and every touchpoint stays
# pending. Prints `metric=NAME value=NUMBER unit=UNIT` lines.
#
#   tests/bench/daemon_pending.sh [--purchases N] [--build-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
purchases=200000
build_dir=build-release
while (($#)); do
  case $1 in
    --purchases) purchases=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    *) echo "usage: $0 [--purchases N] [--build-dir DIR]" >&2; exit 64 ;;
  esac
done
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTP_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target touchpointd touchpointctl >/dev/null
work=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [[ -n ${KEEP_WORK:-} ]] && echo "work dir: $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
python3 tests/bench/gen_purchases.py --purchases "$purchases" --buyers "$purchases" \
  --start "$(date -u +%Y-%m-%dT00:00:00+00:00)" >"$work/purchases.csv"

start_daemon() {
  rm -f "$work/log"
  "$build_dir/daemon/touchpointd" --config config/touchpoint.example.yaml \
    --listen 127.0.0.1:0 --database "$work/tp.db" 2>"$work/log" &
  pid=$!
  for _ in $(seq 200); do
    address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$work/log")
    [[ -n $address ]] && return
    sleep 0.05
  done
  echo "touchpointd did not start:" >&2
  cat "$work/log" >&2
  exit 1
}
rss_kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }

start_daemon
begin=$(date +%s.%N)
"$build_dir/daemon/touchpointctl" import --url "http://$address" "$work/purchases.csv" \
  >/dev/null 2>"$work/import.err"
end=$(date +%s.%N)
hwm_ingest=$(rss_kib VmHWM)
kill "$pid" && wait "$pid" || true
pid=

pending=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM touchpoints WHERE state = 0").fetchone()[0])' "$work/tp.db")
# A restart with everything pending: what the daemon holds at rest.
start_daemon
for i in $(seq 0 999 "$purchases"); do
  curl -sS -o /dev/null "http://$address/v1/buyers/buyer$i" || true
done
rss_rest=$(rss_kib VmRSS)
hwm_rest=$(rss_kib VmHWM)

awk -v n="$purchases" -v b="$begin" -v e="$end" -v p="$pending" -v h="$hwm_ingest" \
  -v r="$rss_rest" -v hr="$hwm_rest" -v db="$(du -k "$work/tp.db" | cut -f1)" 'BEGIN {
  s = e - b
  printf "metric=purchases value=%d unit=count\n", n
  printf "metric=pending_touchpoints value=%d unit=count\n", p
  printf "metric=import_seconds value=%.1f unit=s\n", s
  printf "metric=import_purchases_per_s value=%.0f unit=1/s\n", n / s
  printf "metric=import_touchpoints_per_s value=%.0f unit=1/s\n", p / s
  printf "metric=peak_rss_during_import value=%.1f unit=MiB\n", h / 1024
  printf "metric=rss_at_rest_after_restart value=%.1f unit=MiB\n", r / 1024
  printf "metric=peak_rss_after_restart value=%.1f unit=MiB\n", hr / 1024
  printf "metric=database_size value=%.0f unit=MiB\n", db / 1024
}'
