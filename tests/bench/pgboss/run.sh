#!/usr/bin/env bash
# pg-boss beside touchpointd's PostgreSQL figures: starts a PostgreSQL server
# in a temporary directory with the e2e bench's settings (tests/pg/cluster.sh,
# as tests/bench/e2e does for --store postgres), installs the pinned pg-boss
# if node_modules is missing, runs bench.mjs, stops the server on exit.
# Prints `metric=NAME value=NUMBER unit=UNIT` lines and `pgboss_bench:` notes.
#
#   tests/bench/pgboss/run.sh                     # full sizes (about a minute)
#   tests/bench/pgboss/run.sh --scheduled 20000 --fired 10000 --lateness-s 2
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
work=$(mktemp -d /tmp/touchpoint-pgboss-XXXXXX)
chmod o+x "$work" # as root the server runs as nobody, which must reach $work/pg
export TP_PG_SETTINGS='-c fsync=on -c synchronous_commit=off -c full_page_writes=on -c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=15min'
cleanup() {
  "$root/tests/pg/cluster.sh" stop "$work/pg" || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [[ ! -d $here/node_modules ]]; then
  (cd "$here" && npm ci --no-audit --no-fund >&2)
fi
"$root/tests/pg/cluster.sh" start "$work/pg"
node "$here/bench.mjs" --url "$(cat "$work/pg/url")/postgres" "$@"
