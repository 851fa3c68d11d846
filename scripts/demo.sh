#!/usr/bin/env bash
# Talks to the daemon that scripts/quickstart.sh runs: ingests a purchase made
# a day ago, leases the touchpoint that came due from the embedded queue, acks
# it, and shows the buyer's timeline. Prints each command it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
url=${TOUCHPOINT_URL:-http://127.0.0.1:8787}

# The example's send window is 09:00-21:00 buyer-local: give the demo buyer a
# zone where it is about noon now, so the touchpoint is not held until morning.
hour=$(date -u +%-H)
offset=$((12 - hour))
if ((offset >= 0)); then zone="Etc/GMT-$offset"; else zone="Etc/GMT+$((-offset))"; fi
purchased_at=$(date -u -d '1 day ago 5 minutes ago' +%Y-%m-%dT%H:%M:%SZ)
order="demo-$(date +%s)"

run() {
  printf '\n$ %s\n' "$*" >&2
  "$@"
  echo
}

run curl -sS -X POST "$url/v1/purchases" -H 'Content-Type: application/json' -d \
  "{\"order_id\": \"$order\", \"buyer_id\": \"demo-buyer\", \"product\": \"daily\", \"quantity\": 2, \"amount\": 240, \"purchased_at\": \"$purchased_at\", \"timezone\": \"$zone\", \"attributes\": {\"channel\": \"wecom\"}}"
sleep 0.2
leased=$(run curl -sS -X POST "$url/v1/queues/outbox/lease" -H 'Content-Type: application/json' \
  -d '{"max": 10, "visibility_s": 60}')
echo "$leased"
receipts=$(python3 -c 'import json,sys; print(json.dumps([m["receipt"] for m in json.load(sys.stdin)["messages"]]))' <<<"$leased")
run curl -sS -X POST "$url/v1/queues/outbox/ack" -H 'Content-Type: application/json' \
  -d "{\"receipts\": $receipts}"
ctl=build-release/daemon/touchpointctl
[[ -x $ctl ]] || ctl=build/daemon/touchpointctl
run "$ctl" buyer --url "$url" demo-buyer
