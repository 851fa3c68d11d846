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

#include "store/outcome_merge.h"
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
  return MergeOutcomes(query, purchases, fires ? &*fires : nullptr, events, report, stop);
}

StatusOr<OutcomeReport> ComputeOutcomes(const std::string& path, const OutcomeQuery& query,
                                        int parts, const std::atomic<bool>& stop) {
  std::vector<OutcomePart> done;
  try {
    SQLite::Database first(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX);
    for (const BuyerRange& r : SplitBuyers(first, parts)) {
      done.push_back({r, OutcomeReport(query.options), Status::Ok()});
    }
  } catch (const std::exception& e) {
    return Status::Error(std::string("cannot read the buyers: ") + e.what());
  }
  const auto read = [&](OutcomePart& part) {
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
  return ReadParts(done, read);
}

}  // namespace tp
