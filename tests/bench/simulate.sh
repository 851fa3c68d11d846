#!/usr/bin/env bash
# Benchmark: `touchpointctl simulate` over N synthetic purchases (default
# 1,000,000) with the example config, in a Release build. Prints wall time,
# peak RSS and throughput as `metric=NAME value=NUMBER unit=UNIT` lines.
# With --events, a second run replays two engagement events per purchase too
# and prints the outcomes report by cadence (`simulate --events --report`).
# With --html, the page instead (`simulate --html`, with the events if
# --events), then the page comparing the config with a variant whose send
# window opens an hour later (`--compare`): time, peak RSS and file size.
#
#   tests/bench/simulate.sh [--purchases N] [--buyers N] [--events] [--html] [--build-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
purchases=1000000
buyers=250000
build_dir=build-release
events=0
html=0
while (($#)); do
  case $1 in
    --purchases) purchases=$2; shift 2 ;;
    --buyers) buyers=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --events) events=1; shift ;;
    --html) html=1; shift ;;
    *) echo "usage: $0 [--purchases N] [--buyers N] [--events] [--html] [--build-dir DIR]" >&2; exit 64 ;;
  esac
done
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTP_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target touchpointctl >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
csv=$work/purchases.csv
gen=(python3 tests/bench/gen_purchases.py --purchases "$purchases" --buyers "$buyers")
if ((events)); then gen+=(--events "$work/events.csv"); fi
"${gen[@]}" >"$csv"
ctl=("$build_dir/daemon/touchpointctl" simulate --config config/touchpoint.example.yaml
     --purchases "$csv")
if ((html)); then
  with_events=()
  if ((events)); then with_events=(--events "$work/events.csv"); fi
  sed 's/send_window: {from: "09:00"/send_window: {from: "10:00"/' \
    config/touchpoint.example.yaml >"$work/other.yaml"
  cmp -s config/touchpoint.example.yaml "$work/other.yaml" && { echo "no send window to move" >&2; exit 1; }
  for mode in html compare; do
    extra=()
    [[ $mode == compare ]] && extra=(--compare "$work/other.yaml")
    /usr/bin/time -f "%e %M" -o "$work/time" "${ctl[@]}" "${with_events[@]}" \
      --html "$work/$mode.html" "${extra[@]}" 2>/dev/null
    read -r seconds max_kib <"$work/time"
    echo "metric=simulate_${mode}_wall_s value=$seconds unit=s"
    echo "metric=simulate_${mode}_peak_rss_mib value=$((max_kib / 1024)) unit=MiB"
    echo "metric=simulate_${mode}_file_kib value=$(($(stat -c %s "$work/$mode.html") / 1024)) unit=KiB"
  done
  exit 0
fi
/usr/bin/time -f "%e %M" -o "$work/time" "${ctl[@]}" >"$work/out.jsonl"
read -r seconds max_kib <"$work/time"
lines=$(wc -l <"$work/out.jsonl")
fired=$(grep -c '"status":"fired"' "$work/out.jsonl" || true)
echo "metric=simulate_purchases value=$purchases unit=count"
echo "metric=simulate_touchpoints value=$lines unit=count"
echo "metric=simulate_fired value=$fired unit=count"
echo "metric=simulate_wall_s value=$seconds unit=s"
echo "metric=simulate_peak_rss_mib value=$((max_kib / 1024)) unit=MiB"
awk -v n="$purchases" -v s="$seconds" 'BEGIN { printf "metric=simulate_purchases_per_s value=%d unit=1/s\n", (s > 0 ? n / s : 0) }'
if ((events)); then
  /usr/bin/time -f "%e %M" -o "$work/time" \
    "$build_dir/daemon/touchpointctl" simulate --config config/touchpoint.example.yaml \
    --purchases "$csv" --events "$work/events.csv" --report --by cadence >"$work/report.txt"
  read -r seconds max_kib <"$work/time"
  cat "$work/report.txt" >&2
  echo "metric=simulate_events value=$(($(wc -l <"$work/events.csv") - 1)) unit=count"
  echo "metric=simulate_events_report_wall_s value=$seconds unit=s"
  echo "metric=simulate_events_report_peak_rss_mib value=$((max_kib / 1024)) unit=MiB"
fi
