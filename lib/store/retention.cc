#include "store/retention.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/sql.h"

namespace tp {

using sql::Ms;

StatusOr<PruneResult> RetentionTables::PruneFinished(Instant cutoff, std::int64_t after,
                                                     std::int64_t span) {
  PruneResult result;
  Status s = db_.Atomically("prune finished touchpoints", [&] {
    const bool whole = queued_.Step(
        after, Ms(cutoff),
        [&] {
          SQLite::Statement last(db_.sql(), "SELECT COALESCE(MAX(id), 0) FROM queue_messages");
          last.executeStep();
          return last.getColumn(0).getInt64();
        },
        [&](std::int64_t from, std::int64_t end, std::int64_t before,
            std::vector<std::int64_t>& out) {
          SQLite::Statement last(db_.sql(),
                                 "SELECT COALESCE((SELECT id FROM queue_messages WHERE id > ? AND "
                                 "id <= ? ORDER BY id LIMIT 1 OFFSET ?), ?)");
          last.bind(1, from);
          last.bind(2, end);
          last.bind(3, QueuedBefore::kRange - 1);
          last.bind(4, end);
          last.executeStep();
          const std::int64_t to = last.getColumn(0).getInt64();
          SQLite::Statement q(db_.sql(),
                              "SELECT touchpoint FROM queue_messages WHERE id > ? AND id <= ? "
                              "AND enqueued_at < ?");
          q.bind(1, from);
          q.bind(2, to);
          q.bind(3, before);
          while (q.executeStep()) out.push_back(q.getColumn(0).getInt64());
          return to;
        });
    if (!whole) {
      result.next = after;  // the next step reads on
      return;
    }
    // The span's rows: up to the span-th row after `after`, or to the end.
    SQLite::Statement end(db_.sql(),
                          "SELECT (SELECT id FROM touchpoints WHERE id > ? ORDER BY id LIMIT 1 "
                          "OFFSET ?), (SELECT COALESCE(MAX(id), 0) FROM touchpoints)");
    end.bind(1, after);
    end.bind(2, std::max<std::int64_t>(span, 1) - 1);
    end.executeStep();
    EndSpan(result, after,
            end.getColumn(0).isNull() ? std::nullopt
                                      : std::optional<std::int64_t>(end.getColumn(0).getInt64()),
            end.getColumn(1).getInt64());
    // Finished (fired, cancelled, suppressed, skipped; never dead) and due
    // and fired before the cutoff, with nothing left to deliver.
    SQLite::Statement find(
        db_.sql(),
        "SELECT t.id, t.buyer, t.purchase FROM touchpoints t WHERE t.id > ?1 AND t.id <= ?2 "
        "AND t.state IN (1, 2, 3, 4) AND t.due_at < ?3 AND COALESCE(t.fire_at, 0) < ?3 "
        "AND NOT EXISTS (SELECT 1 FROM queue_events e WHERE e.touchpoint = t.id) "
        "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.touchpoint = t.id)");
    find.bind(1, after);
    find.bind(2, result.next);
    find.bind(3, std::min(Ms(cutoff), queued_.cutoff()));
    const std::span<const std::int64_t> queued = queued_.Between(after, result.next);
    struct Found {
      std::int64_t id, buyer, purchase;
    };
    std::vector<Found> found;
    while (find.executeStep()) {
      const std::int64_t id = find.getColumn(0).getInt64();
      if (std::binary_search(queued.begin(), queued.end(), id)) continue;
      found.push_back({id, find.getColumn(1).getInt64(), find.getColumn(2).getInt64()});
    }
    // Nor while anything of their purchase is pending: a re-plan, which
    // re-plans only purchases with a step pending, must find the finished
    // ones, or it plans them again. Each buyer's pending purchases read
    // once (by the buyer's index), however many of its rows the span has.
    std::unordered_map<std::int64_t, std::unordered_set<std::int64_t>> pending;
    SQLite::Statement pending_of(
        db_.sql(), "SELECT DISTINCT purchase FROM touchpoints WHERE buyer = ? AND state = 0");
    for (const Found& f : found) {
      auto [it, added] = pending.try_emplace(f.buyer);
      if (!added) continue;
      pending_of.tryReset();
      pending_of.bind(1, f.buyer);
      while (pending_of.executeStep()) it->second.insert(pending_of.getColumn(0).getInt64());
    }
    std::vector<std::int64_t> ids;
    for (const Found& f : found) {
      if (!pending[f.buyer].contains(f.purchase)) ids.push_back(f.id);
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
    if (result.done) queued_.Done();
  });
  if (!s.ok()) return s;
  return result;
}

}  // namespace tp
