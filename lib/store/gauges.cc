#include "store/gauges.h"

#include <SQLiteCpp/SQLiteCpp.h>

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
  SQLite::Statement q(db, kOutboxBySink);
  while (q.executeStep())
    g.outbox.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getInt64());
  return g;
}

}  // namespace tp
