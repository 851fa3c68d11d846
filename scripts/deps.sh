#!/usr/bin/env bash
# Installs the Debian 12 packages Touchpoint builds, tests and runs with
# (systemd for systemd-analyze, prometheus for promtool: both used by tests;
# clang, its libFuzzer runtime and llvm-symbolizer for tests/fuzz; Chart.js,
# compiled into the pages; chromium, firefox-esr and a font for the browser
# tests; libpq for the PostgreSQL store, and Debian's PostgreSQL server,
# which the tests start in a folder of their own: tests/pg/cluster.sh;
# iproute2's `ip` for the network-cut test's namespaces).
# Idempotent; skips apt entirely when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git
  libboost-dev libyaml-cpp-dev libhowardhinnant-date-dev tzdata
  nlohmann-json3-dev libcli11-dev libsqlitecpp-dev libsqlite3-dev
  libspdlog-dev libfmt-dev libssl-dev libsystemd-dev libhiredis-dev redis-server
  libpq-dev postgresql
  systemd prometheus
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  python3 time curl openssl iproute2
  clang libclang-rt-14-dev llvm
  libjs-chart.js chromium firefox-esr fonts-dejavu-core
)
# The webhook signature interop test runs the official Standard Webhooks
# package on Node.js; use the machine's Node if it has one, else Debian's.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "installing: ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
