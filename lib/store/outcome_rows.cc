#include "store/outcome_rows.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "store/sql.h"

namespace tp {
namespace {

using sql::FromMs;

// One ordered scan, read a buyer at a time. On SQLite's C interface: the
// report reads every row of three tables, and SQLiteCpp's Column copies a
// shared pointer for each value read.
class Scan {
 public:
  // `range` bound to ?1 and ?2, and `text`, if any, to ?3.
  Scan(SQLite::Database& db, const char* sql, BuyerRange range, const std::string* text = nullptr)
      : db_(db.getHandle()) {
    sqlite3_stmt* q = nullptr;
    Check(sqlite3_prepare_v2(db_, sql, -1, &q, nullptr));
    q_.reset(q);
    Check(sqlite3_bind_int64(q, 1, range.first));
    Check(sqlite3_bind_int64(q, 2, range.end));
    if (text != nullptr) {
      Check(
          sqlite3_bind_text(q, 3, text->data(), static_cast<int>(text->size()), SQLITE_TRANSIENT));
    }
    Step();
  }
  // The buyer (row id) of the current row, or kEnd past the last.
  static constexpr std::int64_t kEnd = std::numeric_limits<std::int64_t>::max();
  std::int64_t buyer() const { return buyer_; }
  void Step() {
    buyer_ = kEnd;
    const int rc = sqlite3_step(q_.get());
    if (rc == SQLITE_ROW) {
      buyer_ = Int(0);
    } else if (rc != SQLITE_DONE) {
      Check(rc);
    }
  }
  std::int64_t Int(int column) const { return sqlite3_column_int64(q_.get(), column); }
  double Real(int column) const { return sqlite3_column_double(q_.get(), column); }
  bool Null(int column) const { return sqlite3_column_type(q_.get(), column) == SQLITE_NULL; }
  std::string_view Text(int column) const {
    const auto* text = sqlite3_column_text(q_.get(), column);
    if (text == nullptr) return {};
    return {reinterpret_cast<const char*>(text),
            static_cast<std::size_t>(sqlite3_column_bytes(q_.get(), column))};
  }

 private:
  void Check(int rc) const {
    if (rc != SQLITE_OK) throw SQLite::Exception(db_, rc);
  }
  struct Finalize {
    void operator()(sqlite3_stmt* q) const { sqlite3_finalize(q); }
  };
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, Finalize> q_;
  std::int64_t buyer_ = kEnd;
};

// Makes `list` `n` long, keeping the elements (and their strings' room)
// already there: most buyers need as many as the one before.
template <typename T>
T& Slot(std::vector<T>& list, std::size_t n) {
  if (list.size() < n) list.resize(n);
  return list[n - 1];
}

// Up to `parts` ranges of about equal row-id span covering every buyer.
std::vector<BuyerRange> SplitBuyers(SQLite::Database& db, int parts) {
  SQLite::Statement q(db, "SELECT COALESCE(MAX(id), 0) FROM buyers");
  q.executeStep();
  const std::int64_t last = q.getColumn(0).getInt64();
  std::vector<BuyerRange> ranges(static_cast<std::size_t>(std::max(parts, 1)));
  const std::int64_t span = last / static_cast<std::int64_t>(ranges.size()) + 1;
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    ranges[i].first = static_cast<std::int64_t>(i) * span;
    ranges[i - 1].end = ranges[i].first;
  }
  return ranges;
}

}  // namespace

bool ReadOutcomes(SQLite::Database& db, const OutcomeQuery& query, BuyerRange range,
                  OutcomeReport& report, const std::atomic<bool>& stop) {
  const bool by_fires =
      query.options.by == ReportBy::kCadence || query.options.by == ReportBy::kTopic;
  sql::ZoneCache zones;
  SQLite::Transaction snapshot(db);  // one snapshot; rolled back at the end: it only reads
  Scan purchases(db,
                 "SELECT buyer, purchased_at, quantity, product, amount, tier, zone, id FROM "
                 "purchases WHERE buyer >= ?1 AND buyer < ?2 ORDER BY buyer, purchased_at, id",
                 range);
  // From touchpoints_fired alone (schema 10), in its order.
  std::optional<Scan> fires;
  if (by_fires) {
    fires.emplace(db,
                  "SELECT buyer, fire_at, id, cadence, topic, purchase FROM touchpoints INDEXED BY "
                  "touchpoints_fired WHERE state IN (1, 5) AND buyer >= ?1 AND buyer < ?2 "
                  "ORDER BY buyer, fire_at, id",
                  range);
  }
  const std::string trust = sql::JsonStrings(query.trust_types);
  Scan events(db,
              by_fires ? "SELECT buyer, at, 0, credited FROM events WHERE credited IS NOT NULL "
                         "AND buyer >= ?1 AND buyer < ?2 ORDER BY buyer, at, id"
                       : "SELECT buyer, at, 1, NULL FROM events WHERE type IN (SELECT value FROM "
                         "json_each(?3)) AND buyer >= ?1 AND buyer < ?2 ORDER BY buyer, at, id",
              range, by_fires ? nullptr : &trust);
  BuyerHistory buyer;
  std::vector<std::int64_t> purchase_ids;  // of buyer.purchases, by index
  for (std::int64_t buyers = 0;; ++buyers) {
    if (buyers % 4096 == 0 && stop.load(std::memory_order_relaxed)) return false;
    const std::int64_t next =
        std::min({purchases.buyer(), fires ? fires->buyer() : Scan::kEnd, events.buyer()});
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
    for (; fires && fires->buyer() == next; fires->Step()) {
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

StatusOr<OutcomeReport> ComputeOutcomes(const std::string& path, const OutcomeQuery& query,
                                        int parts, const std::atomic<bool>& stop) {
  struct Part {
    BuyerRange range;
    OutcomeReport report;
    Status status;
  };
  std::vector<Part> done;
  try {
    SQLite::Database first(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX);
    for (const BuyerRange& r : SplitBuyers(first, parts)) {
      done.push_back({r, OutcomeReport(query.options), Status::Ok()});
    }
  } catch (const std::exception& e) {
    return Status::Error(std::string("cannot read the buyers: ") + e.what());
  }
  const auto read = [&](Part& part) {
    try {
      SQLite::Database db(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX);
      db.setBusyTimeout(5000);
      if (!ReadOutcomes(db, query, part.range, part.report, stop)) {
        part.status = Status::Error("stopped");
      }
    } catch (const std::exception& e) {
      part.status = Status::Error(e.what());
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < done.size(); ++i) threads.emplace_back(read, std::ref(done[i]));
  read(done[0]);
  for (std::thread& t : threads) t.join();
  for (Part& part : done) {
    if (!part.status.ok()) return part.status;
  }
  OutcomeReport report = std::move(done[0].report);
  for (std::size_t i = 1; i < done.size(); ++i) report.Merge(std::move(done[i].report));
  return report;
}

}  // namespace tp
