#!/usr/bin/env python3
"""Benchmark: how late touchpointd fires at light load.

Starts a Release touchpointd on a free port with a fresh database and a config
whose steps are due 2 to 11 seconds after each purchase, ingests PURCHASES
purchases spread over a second (10 touchpoints each, all due within about
ten seconds), waits until all fired, then reads fire_at - next_at of every
touchpoint from the database. Prints `metric=NAME value=NUMBER unit=UNIT`.

  tests/bench/lateness.py [--purchases 100] [--database-sync normal|full]
                          [--build-dir build-release]
"""
import argparse
import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

CONFIG = """version: 1
timezone: UTC
misfire_grace: 1h
products: {p: {supply_days: 30}}
cadences:
  - name: c
    trigger: purchase
    products: [p]
    steps:
""" + "".join(f"      - {{after: {s}s, topic: t{s}}}\n" for s in range(2, 12)) + """sinks: [{name: outbox, type: queue}]
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--purchases", type=int, default=100)
    ap.add_argument("--database-sync", choices=["normal", "full"], default="normal")
    ap.add_argument("--build-dir", default="build-release")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    build = os.path.join(root, args.build_dir)
    subprocess.run(["cmake", "-S", root, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                    "-DTP_BUILD_TESTS=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j2", "--target", "touchpointd"], check=True,
                   stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as work:
        config = os.path.join(work, "touchpoint.yaml")
        with open(config, "w") as f:
            f.write(CONFIG + f"database_sync: {args.database_sync}\n")
        db = os.path.join(work, "tp.db")
        log = open(os.path.join(work, "log"), "w+")
        daemon = subprocess.Popen([os.path.join(build, "daemon", "touchpointd"), "--config",
                                   config, "--listen", "127.0.0.1:0", "--database", db],
                                  stderr=log)
        try:
            address = None
            for _ in range(200):
                log.seek(0)
                m = re.search(r"listening on (\S+)", log.read())
                if m:
                    address = m.group(1)
                    break
                time.sleep(0.05)
            if address is None:
                sys.exit("touchpointd did not start")
            for i in range(args.purchases):
                at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
                body = json.dumps({"order_id": f"o{i}", "buyer_id": f"b{i}", "product": "p",
                                   "quantity": 1, "amount": 1, "purchased_at": at}).encode()
                req = urllib.request.Request(f"http://{address}/v1/purchases", data=body,
                                             headers={"Content-Type": "application/json"})
                urllib.request.urlopen(req).read()
                time.sleep(1.0 / args.purchases)
            total = args.purchases * 10
            con = sqlite3.connect(db)
            deadline = time.time() + 30
            while time.time() < deadline:
                fired = con.execute("SELECT COUNT(*) FROM touchpoints WHERE state = 1").fetchone()[0]
                if fired == total:
                    break
                time.sleep(0.2)
            late = sorted(r[0] for r in con.execute(
                "SELECT fire_at - next_at FROM touchpoints WHERE state = 1"))
        finally:
            daemon.terminate()
            daemon.wait()
    if len(late) != total:
        sys.exit(f"only {len(late)} of {total} touchpoints fired")

    def pct(p):
        return late[min(len(late) - 1, int(p / 100 * len(late)))]
    print(f"metric=touchpoints_fired value={len(late)} unit=count")
    print(f"metric=lateness_p50 value={pct(50)} unit=ms")
    print(f"metric=lateness_p99 value={pct(99)} unit=ms")
    print(f"metric=lateness_max value={late[-1]} unit=ms")


if __name__ == "__main__":
    main()
