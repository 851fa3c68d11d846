#!/usr/bin/env bash
# A PostgreSQL server for the tests, from Debian's postgresql package
# (scripts/deps.sh): its own cluster in DIR, on a free loopback port, no
# Unix socket, trust authentication for the user "touchpoint".
#   tests/pg/cluster.sh start DIR   # initdb if needed, start; the URL in DIR/url
#   tests/pg/cluster.sh stop DIR    # stop (fast), leaving DIR
#   tests/pg/cluster.sh standby DIR PRIMARY_URL   # a hot standby of that
#                                   # server (pg_basebackup), started as above
# initdb and the server refuse to run as root: as root they run as the
# unprivileged user "nobody", which then owns DIR. ctest starts one for the
# whole suite (tests/CMakeLists.txt: the fixture "pg"); a test binary run by
# hand starts its own (tests/pg_server.h).
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop DIR | standby DIR PRIMARY_URL}
dir=${2:?usage: cluster.sh start|stop DIR | standby DIR PRIMARY_URL}
bindir=$(pg_config --bindir 2>/dev/null || true)
if [[ ! -x $bindir/pg_ctl ]]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
fi
[[ -x $bindir/pg_ctl ]] || { echo "cluster.sh: no pg_ctl: install Debian's postgresql (scripts/deps.sh)" >&2; exit 1; }
as_user=()
if [[ $(id -u) -eq 0 ]]; then as_user=(runuser -u nobody --); fi

case $cmd in
  start | standby)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]]; then
      chown nobody "$dir"
      runuser -u nobody -- test -x "$dir" ||
        { echo "cluster.sh: user nobody cannot reach $dir (a parent folder is private)" >&2; exit 1; }
    fi
    if [[ $cmd == standby && ! -f $dir/data/PG_VERSION ]]; then
      # -R: standby.signal and the primary's address, so it starts as its
      # hot standby, streaming.
      primary=${3:?usage: cluster.sh standby DIR PRIMARY_URL}
      rm -rf "$dir/data"
      "${as_user[@]}" "$bindir/pg_basebackup" -D "$dir/data" -d "$primary" -R -X stream -c fast \
        >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
    fi
    if [[ ! -f $dir/data/PG_VERSION ]]; then
      rm -rf "$dir/data"
      "${as_user[@]}" "$bindir/initdb" -D "$dir/data" -U touchpoint --auth=trust -E UTF8 \
        --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    # A server left running by an earlier run that was killed: stop it.
    "${as_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    # The port it had, if free: a server restarted keeps its address (the
    # tests of a restart need that); else a free one.
    port=$(python3 - "$dir/port" <<'PY'
import socket, sys
def free(p):
    s = socket.socket()
    # As the server binds: a port whose old connections linger (TIME_WAIT)
    # is free to listen on again.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
        return s.getsockname()[1]
    except OSError:
        return None
    finally:
        s.close()
try:
    old = int(open(sys.argv[1]).read())
except (OSError, ValueError):
    old = None
print((old and free(old)) or free(0))
PY
)
    echo "$port" >"$dir/port"
    # Durability is not under test here: fsync off makes a test's database
    # quick to create and write. TP_PG_SETTINGS replaces these settings (the
    # benchmark's: tests/bench/e2e).
    settings=${TP_PG_SETTINGS:--c fsync=off -c synchronous_commit=off -c full_page_writes=off}
    "${as_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k '' -c listen_addresses=127.0.0.1 -c max_connections=300 $settings" \
      start >/dev/null ||
      { tail -20 "$dir/server.log" >&2; exit 1; }
    echo "postgresql://touchpoint@127.0.0.1:$port" >"$dir/url.tmp"
    mv "$dir/url.tmp" "$dir/url"
    ;;
  stop)
    [[ -d $dir/data ]] || exit 0
    "${as_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -f "$dir/url"
    ;;
  *)
    echo "usage: cluster.sh start|stop DIR | standby DIR PRIMARY_URL" >&2
    exit 2
    ;;
esac
