#include "store/gauges.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <vector>

#include "store/sql.h"

namespace tp {

using sql::BindText;

StoreGauges ReadGauges(SQLite::Database& db, std::span<const std::string> queues,
                       std::span<const std::string> push_sinks) {
  SQLite::Transaction read(db);  // rolled back at the end: it only reads
  StoreGauges g;
  g.pending = db.execAndGet(kPendingCount).getInt64();
  auto each = [&](const char* text, std::span<const std::string> names, auto& out) {
    SQLite::Statement q(db, text);
    for (const std::string& name : names) {
      q.tryReset();
      BindText(q, 1, name);
      q.executeStep();
      out.emplace_back(name, q.getColumn(0).getInt64());
    }
  };
  each(kQueueDepth, queues, g.queue_messages);
  each(kDeadLetterCount, push_sinks, g.dead_letters);
  // A sink a reload removed keeps its dead letters: counted while any wait.
  std::vector<std::string> removed;
  SQLite::Statement sinks(db, kSinksWithDeliveries);
  while (sinks.executeStep()) {
    std::string sink = sinks.getColumn(0).getString();
    if (std::find(push_sinks.begin(), push_sinks.end(), sink) == push_sinks.end())
      removed.push_back(std::move(sink));
  }
  std::vector<std::pair<std::string, std::int64_t>> removed_dead;
  each(kDeadLetterCount, removed, removed_dead);
  for (auto& entry : removed_dead) {
    if (entry.second > 0) g.dead_letters.push_back(std::move(entry));
  }
  SQLite::Statement q(db, kOutboxBySink);
  while (q.executeStep())
    g.outbox.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getInt64());
  return g;
}

PendingDays ReadPendingDays(SQLite::Database& db, std::span<const Instant> boundaries) {
  PendingDays out;
  if (boundaries.size() < 2) return out;
  SQLite::Transaction read(db);
  out.days.resize(boundaries.size() - 1);
  const char* kCount = "SELECT COUNT(*) FROM touchpoints WHERE state = 0 AND next_at < ?";
  SQLite::Statement before(db, kCount);
  before.bind(1, sql::Ms(boundaries.front()));
  before.executeStep();
  out.before = before.getColumn(0).getInt64();
  SQLite::Statement later(db, "SELECT COUNT(*) FROM touchpoints WHERE state = 0 AND next_at >= ?");
  later.bind(1, sql::Ms(boundaries.back()));
  later.executeStep();
  out.later = later.getColumn(0).getInt64();
  // One range of the pending index per span, grouped by what the index
  // holds: no row of the table is read.
  SQLite::Statement span(db,
                         "SELECT cadence_order, COUNT(*) FROM touchpoints "
                         "WHERE state = 0 AND next_at >= ? AND next_at < ? GROUP BY cadence_order");
  for (std::size_t i = 0; i + 1 < boundaries.size(); ++i) {
    span.tryReset();
    span.bind(1, sql::Ms(boundaries[i]));
    span.bind(2, sql::Ms(boundaries[i + 1]));
    while (span.executeStep()) {
      out.days[i][span.getColumn(0).getInt()] = span.getColumn(1).getInt64();
    }
  }
  return out;
}

}  // namespace tp
