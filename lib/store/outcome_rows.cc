#include "store/outcome_rows.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <optional>

#include "store/sql.h"

namespace tp {
namespace {

using sql::FromMs;
using sql::TextView;

// One ordered scan, read a buyer at a time.
class Scan {
 public:
  // `text`, if any, bound to the statement's one parameter.
  Scan(SQLite::Database& db, const std::string& sql, const std::string* text = nullptr)
      : q_(db, sql) {
    if (text != nullptr) sql::BindText(q_, 1, *text);
    Step();
  }
  SQLite::Statement& q() { return q_; }
  // The buyer (row id) of the current row, or nullopt at the end.
  std::optional<std::int64_t> buyer() const { return buyer_; }
  void Step() {
    buyer_.reset();
    if (q_.executeStep()) buyer_ = q_.getColumn(0).getInt64();
  }

 private:
  SQLite::Statement q_;
  std::optional<std::int64_t> buyer_;
};

}  // namespace

void ReadOutcomes(SQLite::Database& db, const OutcomeQuery& query, OutcomeReport& report) {
  const bool by_fires =
      query.options.by == ReportBy::kCadence || query.options.by == ReportBy::kTopic;
  sql::ZoneCache zones;
  SQLite::Transaction snapshot(db);  // one snapshot; rolled back at the end: it only reads
  Scan purchases(db,
                 "SELECT buyer, purchased_at, quantity, product, amount, tier, zone FROM "
                 "purchases ORDER BY buyer, purchased_at, id");
  std::optional<Scan> fires;
  if (by_fires) {
    fires.emplace(db,
                  "SELECT t.buyer, t.fire_at, t.id, t.cadence, t.topic, p.zone FROM touchpoints t "
                  "JOIN purchases p ON p.id = t.purchase WHERE t.state IN (1, 5) "
                  "ORDER BY t.buyer, t.fire_at, t.id");
  }
  const std::string trust = sql::JsonStrings(query.trust_types);
  Scan events(db,
              by_fires ? "SELECT buyer, at, 0, credited FROM events WHERE credited IS NOT NULL "
                         "ORDER BY buyer, at, id"
                       : "SELECT buyer, at, 1, NULL FROM events WHERE type IN (SELECT value FROM "
                         "json_each(?)) ORDER BY buyer, at, id",
              by_fires ? nullptr : &trust);
  BuyerHistory buyer;
  for (;;) {
    std::optional<std::int64_t> next = purchases.buyer();
    for (Scan* s : {fires ? &*fires : nullptr, &events}) {
      if (s != nullptr && s->buyer() && (!next || *s->buyer() < *next)) next = s->buyer();
    }
    if (!next) break;
    buyer.purchases.clear();
    buyer.fires.clear();
    buyer.events.clear();
    for (; purchases.buyer() == next; purchases.Step()) {
      SQLite::Statement& q = purchases.q();
      const Instant at = FromMs(q.getColumn(1).getInt64());
      const Zone* zone = zones.Named(TextView(q.getColumn(6)));
      std::string product = q.getColumn(3).getString();
      const Instant runout = query.runout(at, q.getColumn(2).getInt64(), product, zone);
      buyer.purchases.push_back({at, runout, q.getColumn(4).getDouble(), q.getColumn(5).getString(),
                                 std::move(product), zone});
    }
    for (; fires && fires->buyer() == next; fires->Step()) {
      SQLite::Statement& q = fires->q();
      buyer.fires.push_back({FromMs(q.getColumn(1).getInt64()),
                             static_cast<std::uint64_t>(q.getColumn(2).getInt64()),
                             q.getColumn(3).getString(), q.getColumn(4).getString(),
                             zones.Named(TextView(q.getColumn(5)))});
    }
    for (; events.buyer() == next; events.Step()) {
      SQLite::Statement& q = events.q();
      buyer.events.push_back(
          {FromMs(q.getColumn(1).getInt64()), q.getColumn(2).getInt() != 0,
           q.getColumn(3).isNull() ? 0 : static_cast<std::uint64_t>(q.getColumn(3).getInt64())});
    }
    report.Add(buyer);
  }
}

}  // namespace tp
