#!/usr/bin/env bash
# ctest's BrowserTest.SimulatePage: a generated base of 800 buyers with
# events, replayed under the playbook and a variant of it, checked in
# chromium by simulate_page.mjs. Screenshots land in OUT_DIR.
#   tests/browser/simulate_page.sh build/daemon/touchpointctl OUT_DIR
set -euo pipefail
ctl=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[[ -d $here/node_modules/puppeteer-core ]] ||
  { echo "simulate_page.sh: run 'npm ci --prefix tests/browser' (scripts/test.sh does)" >&2; exit 1; }
mkdir -p "$out"
python3 "$root/tests/bench/gen_purchases.py" --purchases 3000 --buyers 800 --seed 11 \
  --events "$out/events.csv" >"$out/purchases.csv"
exec node "$here/simulate_page.mjs" --ctl "$ctl" --config "$root/config/touchpoint.playbook.yaml" \
  --purchases "$out/purchases.csv" --events "$out/events.csv" --out "$out"
