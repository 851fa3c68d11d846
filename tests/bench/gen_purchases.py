#!/usr/bin/env python3
"""Writes a synthetic purchases CSV for benchmarks.

Buyers repurchase every 20-45 days over a year, mostly daily lenses with some
switching to yearly; zones from a small realistic set (some rows blank, so
the config's default applies). Deterministic for a given --seed.

  gen_purchases.py --purchases 1000000 --buyers 250000 > purchases.csv
  gen_purchases.py ... --events events.csv > purchases.csv

With --events, also writes an events CSV (touchpointctl simulate --events):
two per purchase, a read 1 to 3 days after it and then, for two purchases
in three, a click (a trust signal) within the next day, else a delivered.
"""
import argparse
import datetime as dt
import random
import sys

ZONES = ["", "", "Asia/Shanghai", "Europe/Berlin", "America/New_York", "Asia/Tokyo",
         "Australia/Sydney", "America/Sao_Paulo"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--purchases", type=int, default=1_000_000)
    ap.add_argument("--buyers", type=int, default=250_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", default="2026-01-01T00:00:00+00:00")
    ap.add_argument("--events", help="also write an events CSV here")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    start = dt.datetime.fromisoformat(args.start)
    out = sys.stdout
    out.write("order_id,buyer_id,product,quantity,amount,purchased_at,timezone\n")
    # Each buyer gets a first purchase within 60 days, then one every 20-45
    # days; rows are written in time order, as an export would be.
    per_buyer = args.purchases // args.buyers
    extra = args.purchases - per_buyer * args.buyers
    events = []
    for b in range(args.buyers):
        n = per_buyer + (1 if b < extra else 0)
        t = start + dt.timedelta(seconds=rnd.randrange(60 * 86400))
        zone = ZONES[b % len(ZONES)]
        product = "daily"
        for _ in range(n):
            events.append((t, b, product, zone))
            if product == "daily" and rnd.random() < 0.1:
                product = "yearly"
            t += dt.timedelta(days=rnd.randint(20, 45), seconds=rnd.randrange(86400))
    events.sort(key=lambda e: e[0])
    answers = []
    for i, (t, b, product, zone) in enumerate(events):
        qty = rnd.randint(1, 3) if product == "daily" else 1
        amount = qty * (120 if product == "daily" else 900)
        out.write(f"o{i},buyer{b},{product},{qty},{amount},{t.strftime('%Y-%m-%dT%H:%M:%S+00:00')},{zone}\n")
        if args.events:
            read = t + dt.timedelta(days=1, seconds=rnd.randrange(2 * 86400))
            then = read + dt.timedelta(seconds=rnd.randrange(86400))
            answers.append((read, f"r{i}", b, "read"))
            answers.append((then, f"c{i}", b, "clicked" if rnd.random() < 2 / 3 else "delivered"))
    if args.events:
        answers.sort(key=lambda e: e[0])
        with open(args.events, "w") as f:
            f.write("event_id,buyer_id,type,at,touchpoint_id\n")
            for at, event_id, b, kind in answers:
                f.write(f"{event_id},buyer{b},{kind},{at.strftime('%Y-%m-%dT%H:%M:%S+00:00')},\n")


if __name__ == "__main__":
    main()
