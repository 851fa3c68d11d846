#!/usr/bin/env bash
# CI's smoke test of the end-to-end benchmark: the quick run must finish and
# print every figure (the values are not checked; see docs/benchmarks.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$here/run.sh" --quick | tee "$out"
missing=0
for name in ingest_purchases_per_s ingest_touchpoints_per_s fire_touchpoints_per_s \
            fire_touchpoints_per_s_one_cap fire_touchpoints_per_s_three_caps \
            lateness_p50_ms lateness_p99_ms webhook_deliveries_per_s rss_mib_pending_1m \
            startup_s_pending_1m db_bytes_per_touchpoint reload_s_pending_1m reload_max_stall_ms \
            metrics_scrape_ms_pending_1m status_ms_pending_1m metrics_scrape_ms_during_status \
            events_per_s report_s_1m report_max_stall_ms rss_mib_report_1m; do
  if ! grep -Eq "^metric=$name value=[0-9.e+-]+ unit=[^ ]+$" "$out"; then
    echo "e2e smoke: no figure for $name" >&2
    missing=1
  fi
done
exit "$missing"
