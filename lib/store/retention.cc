#include "store/retention.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>

#include "store/sql.h"

namespace tp {

using sql::Ms;

StatusOr<PruneResult> RetentionTables::PruneFinished(Instant cutoff, std::int64_t after,
                                                     std::int64_t span) {
  PruneResult result;
  Status s = db_.Atomically("prune finished touchpoints", [&] {
    // Finished (fired, cancelled, suppressed, skipped; never dead) and due
    // and fired before the cutoff, with nothing left to deliver.
    SQLite::Statement find(
        db_.sql(),
        "SELECT t.id FROM touchpoints t WHERE t.id > ?1 AND t.id <= ?2 AND t.state IN (1, 2, 3, 4) "
        "AND t.due_at < ?3 AND COALESCE(t.fire_at, 0) < ?3 "
        "AND NOT EXISTS (SELECT 1 FROM queue_events e WHERE e.touchpoint = t.id) "
        "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.touchpoint = t.id)");
    find.bind(1, after);
    find.bind(2, after + span);
    find.bind(3, Ms(cutoff));
    Queued& queued = queued_before_;
    if (queued.cutoff != Ms(cutoff)) {
      queued.touchpoints.clear();
      SQLite::Statement q(db_.sql(),
                          "SELECT DISTINCT touchpoint FROM queue_messages WHERE enqueued_at < ? "
                          "ORDER BY touchpoint");
      q.bind(1, Ms(cutoff));
      while (q.executeStep()) queued.touchpoints.push_back(q.getColumn(0).getInt64());
      queued.cutoff = Ms(cutoff);
    }
    std::vector<std::int64_t> ids;
    while (find.executeStep()) {
      const std::int64_t id = find.getColumn(0).getInt64();
      if (!std::binary_search(queued.touchpoints.begin(), queued.touchpoints.end(), id)) {
        ids.push_back(id);
      }
    }
    SQLite::Statement history(db_.sql(), "DELETE FROM touchpoint_history WHERE touchpoint = ?");
    SQLite::Statement touchpoint(db_.sql(), "DELETE FROM touchpoints WHERE id = ?");
    for (std::int64_t id : ids) {
      history.tryReset();
      history.bind(1, id);
      history.exec();
      touchpoint.tryReset();
      touchpoint.bind(1, id);
      touchpoint.exec();
    }
    result.deleted = static_cast<std::int64_t>(ids.size());
    SQLite::Statement last(db_.sql(), "SELECT MAX(id) FROM touchpoints");
    last.executeStep();
    const std::int64_t max_id = last.getColumn(0).isNull() ? 0 : last.getColumn(0).getInt64();
    result.next = after + span;
    result.done = result.next >= max_id;
  });
  if (!s.ok()) return s;
  return result;
}

}  // namespace tp
