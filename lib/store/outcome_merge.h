// The outcomes report's merge of a buyer range's three ordered scans
// (purchases; fires; events), buyer by buyer, into an OutcomeReport: the
// same for every backend, each with its own Scan (SQLite's statements,
// PostgreSQL's cursors). Internal to lib/store.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "outcomes/outcomes.h"
#include "store/outcome_rows.h"
#include "store/values.h"

namespace tp {

// Threads an outcomes report reads on at once: the cores, up to 4.
inline int ReportParts() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1U, 4U));
}

// A buyer range of a report, what was read of it, and how that went.
struct OutcomePart {
  BuyerRange range;
  OutcomeReport report;
  Status status = Status::Ok();
};

// Reads each part with `read(part)`, the first on this thread and the
// others on threads of their own (here too when no thread is to be had: a
// process at its limit), and merges them: the first part's failure, or
// the whole report.
template <typename Read>
StatusOr<OutcomeReport> ReadParts(std::vector<OutcomePart>& parts, const Read& read) {
  std::vector<std::thread> threads;
  threads.reserve(parts.size());
  for (std::size_t i = 1; i < parts.size(); ++i) {
    try {
      threads.emplace_back(read, std::ref(parts[i]));
    } catch (const std::exception&) {
      read(parts[i]);
    }
  }
  if (!parts.empty()) read(parts[0]);
  for (std::thread& t : threads) t.join();
  for (OutcomePart& part : parts) {
    if (!part.status.ok()) return part.status;
  }
  if (parts.empty()) return Status::Error("no buyer range to read");
  OutcomeReport report = std::move(parts[0].report);
  for (std::size_t i = 1; i < parts.size(); ++i) report.Merge(std::move(parts[i].report));
  return report;
}

// Makes `list` `n` long, keeping the elements (and their strings' room)
// already there: most buyers need as many as the one before.
template <typename T>
T& Slot(std::vector<T>& list, std::size_t n) {
  if (list.size() < n) list.resize(n);
  return list[n - 1];
}

// Scan: an ordered scan read a row at a time, with buyer() (the current
// row's buyer, Scan::kEnd past the last), Step(), and the current row's
// Int(), Real(), Null() and Text() by column:
//   purchases: buyer, purchased_at, quantity, product, amount, tier, zone, id
//   fires:     buyer, fire_at, id, cadence, topic, purchase (null: not by fires)
//   events:    buyer, at, trust (0/1), credited (or NULL)
// Streams every buyer into `report`; gives up (false) once `stop` is set.
template <typename Scan>
bool MergeOutcomes(const OutcomeQuery& query, Scan& purchases, Scan* fires, Scan& events,
                   OutcomeReport& report, const std::atomic<bool>& stop) {
  using sql::FromMs;
  sql::ZoneCache zones;
  BuyerHistory buyer;
  std::vector<std::int64_t> purchase_ids;  // of buyer.purchases, by index
  for (std::int64_t buyers = 0;; ++buyers) {
    if (buyers % 4096 == 0 && stop.load(std::memory_order_relaxed)) return false;
    const std::int64_t next = std::min(
        {purchases.buyer(), fires != nullptr ? fires->buyer() : Scan::kEnd, events.buyer()});
    if (next == Scan::kEnd) break;
    std::size_t purchases_read = 0;
    purchase_ids.clear();
    for (; purchases.buyer() == next; purchases.Step()) {
      BuyerHistory::Purchase& p = Slot(buyer.purchases, ++purchases_read);
      p.purchased_at = FromMs(purchases.Int(1));
      p.zone = zones.Named(purchases.Text(6));
      p.product.assign(purchases.Text(3));
      p.runout = query.runout(p.purchased_at, purchases.Int(2), p.product, p.zone);
      p.amount = purchases.Real(4);
      p.tier.assign(purchases.Text(5));
      purchase_ids.push_back(purchases.Int(7));
    }
    buyer.purchases.resize(purchases_read);
    std::size_t fires_read = 0;
    for (; fires != nullptr && fires->buyer() == next; fires->Step()) {
      BuyerHistory::Fire& f = Slot(buyer.fires, ++fires_read);
      f.fire_at = FromMs(fires->Int(1));
      f.touchpoint = static_cast<std::uint64_t>(fires->Int(2));
      f.cadence.assign(fires->Text(3));
      f.topic.assign(fires->Text(4));
      const auto mine = std::find(purchase_ids.begin(), purchase_ids.end(), fires->Int(5));
      f.zone = mine == purchase_ids.end()
                   ? UtcZone()
                   : buyer.purchases[static_cast<std::size_t>(mine - purchase_ids.begin())].zone;
    }
    buyer.fires.resize(fires_read);
    buyer.events.clear();
    for (; events.buyer() == next; events.Step()) {
      buyer.events.push_back({FromMs(events.Int(1)), events.Int(2) != 0,
                              events.Null(3) ? 0 : static_cast<std::uint64_t>(events.Int(3))});
    }
    report.Add(buyer);
  }
  return true;
}

}  // namespace tp
