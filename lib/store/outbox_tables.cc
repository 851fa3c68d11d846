#include "store/outbox_tables.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <limits>

#include "core/ids.h"
#include "store/gauges.h"
#include "store/sql.h"

namespace tp {

using sql::BindText;
using sql::FromMs;
using sql::Guard;
using sql::Ms;
using sql::Text;

namespace {

constexpr const char* kOutboxDue =
    "SELECT d.id, d.touchpoint, p.order_id, t.cadence, t.step, d.event, d.attempts "
    "FROM deliveries d JOIN touchpoints t ON t.id = d.touchpoint "
    "JOIN purchases p ON p.id = t.purchase WHERE d.sink = ? AND d.state = 0 "
    "AND d.next_attempt_at <= ? ";

}  // namespace

OutboxTables::OutboxTables(Database& db, RowWriter& rows)
    : db_(db),
      rows_(rows),
      due_(db.sql(), std::string(kOutboxDue) + "ORDER BY d.next_attempt_at, d.id LIMIT ?"),
      due_in_order_(db.sql(), std::string(kOutboxDue) + "ORDER BY d.id LIMIT ?"),
      next_(db.sql(),
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE sink = ? AND state = 0 AND "
            "next_attempt_at > ?"),
      delivered_(db.sql(), "DELETE FROM deliveries WHERE id = ? AND state = 0"),
      failed_attempt_(db.sql(),
                      "UPDATE deliveries SET state = ?1, attempts = ?2, "
                      "next_attempt_at = CASE ?1 WHEN 0 THEN ?3 ELSE next_attempt_at END, "
                      "last_error = ?4, dead_at = CASE ?1 WHEN 1 THEN ?3 END "
                      "WHERE id = ?5 AND state = 0"),
      touchpoint_dead_(db.sql(),
                       "UPDATE touchpoints SET state = 5, reason = ? WHERE id = ? AND "
                       "state IN (1, 5)") {}

StatusOr<std::vector<OutboxItem>> OutboxTables::Due(std::string_view sink, Instant now,
                                                    std::size_t max, bool in_order) {
  return Guard("read the outbox", [&]() -> StatusOr<std::vector<OutboxItem>> {
    auto& q = in_order ? due_in_order_ : due_;
    q.tryReset();
    BindText(q, 1, sink);
    q.bind(2, Ms(now));
    q.bind(3, static_cast<std::int64_t>(max));
    std::vector<OutboxItem> out;
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getInt64(),
                     TouchpointId(q.getColumn(2).getText(), q.getColumn(3).getText(),
                                  q.getColumn(4).getText()),
                     q.getColumn(5).getString(), q.getColumn(6).getInt()});
    }
    q.tryReset();
    return out;
  });
}

StatusOr<std::optional<Instant>> OutboxTables::NextAfter(std::string_view sink, Instant now) {
  return Guard("read the outbox", [&]() -> StatusOr<std::optional<Instant>> {
    auto& q = next_;
    q.tryReset();
    BindText(q, 1, sink);
    q.bind(2, Ms(now));
    std::optional<Instant> at;
    if (q.executeStep() && !q.getColumn(0).isNull()) at = FromMs(q.getColumn(0).getInt64());
    q.tryReset();
    return at;
  });
}

Status OutboxTables::Record(std::span<const DeliveryResult> results) {
  return db_.Atomically("record deliveries", [&] {
    for (const DeliveryResult& r : results) {
      int changed = 0;
      switch (r.kind) {
        case DeliveryResult::Kind::kDelivered:
          delivered_.tryReset();
          delivered_.bind(1, r.id);
          changed = delivered_.exec();
          break;
        case DeliveryResult::Kind::kRetry:
        case DeliveryResult::Kind::kDead: {
          const bool dead = r.kind == DeliveryResult::Kind::kDead;
          auto& q = failed_attempt_;
          q.tryReset();
          q.bind(1, dead ? 1 : 0);
          q.bind(2, r.attempts);
          q.bind(3, Ms(dead ? r.at : r.next_attempt_at));
          BindText(q, 4, r.error);
          q.bind(5, r.id);
          changed = q.exec();
          if (dead && changed > 0) {
            touchpoint_dead_.tryReset();
            BindText(touchpoint_dead_, 1, r.history);
            touchpoint_dead_.bind(2, r.touchpoint);
            touchpoint_dead_.exec();
          }
          break;
        }
      }
      if (changed == 0) continue;  // replayed or gone meanwhile
      rows_.AddHistoryAsIs(r.touchpoint, r.at, r.history);
    }
  });
}

StatusOr<std::vector<DeadLetter>> OutboxTables::DeadLetters(std::string_view sink,
                                                            std::int64_t after, int limit) {
  return Guard("list dead letters", [&]() -> StatusOr<std::vector<DeadLetter>> {
    SQLite::Statement q(
        db_.sql(),
        "SELECT d.id, d.sink, p.order_id, t.cadence, t.step, d.event, d.attempts, d.last_error, "
        "d.dead_at FROM deliveries d JOIN touchpoints t ON t.id = d.touchpoint "
        "JOIN purchases p ON p.id = t.purchase "
        "WHERE d.state = 1 AND d.id > ?1 AND (?2 = '' OR d.sink = ?2) ORDER BY d.id LIMIT ?3");
    q.bind(1, after);
    BindText(q, 2, sink);
    q.bind(3, limit);
    std::vector<DeadLetter> out;
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(),
                     TouchpointId(q.getColumn(2).getText(), q.getColumn(3).getText(),
                                  q.getColumn(4).getText()),
                     q.getColumn(5).getString(), q.getColumn(6).getInt(), Text(q.getColumn(7)),
                     FromMs(q.getColumn(8).getInt64())});
    }
    return out;
  });
}

StatusOr<OutboxStore::ReplayedStep> OutboxTables::Replay(std::int64_t id, std::string_view sink,
                                                         std::int64_t after, Instant dead_by,
                                                         int limit, Instant now) {
  OutboxStore::ReplayedStep step;
  Status s = db_.Atomically("replay dead letters", [&] {
    step = {};
    SQLite::Statement q(
        db_.sql(),
        "UPDATE deliveries SET state = 0, attempts = 0, next_attempt_at = ?1, dead_at = NULL "
        "WHERE id IN (SELECT id FROM deliveries WHERE state = 1 AND (?2 = 0 OR id = ?2) AND "
        "(?3 = '' OR sink = ?3) AND id > ?4 AND dead_at <= ?6 ORDER BY id LIMIT ?5) "
        "RETURNING id, touchpoint, sink");
    q.bind(1, Ms(now));
    q.bind(2, id);
    BindText(q, 3, sink);
    q.bind(4, after);
    q.bind(5, limit);
    q.bind(6, dead_by == Instant::max() ? std::numeric_limits<std::int64_t>::max() : Ms(dead_by));
    std::vector<std::pair<std::int64_t, std::string>> replayed;
    while (q.executeStep()) {
      step.last_id = std::max(step.last_id, q.getColumn(0).getInt64());
      replayed.emplace_back(q.getColumn(1).getInt64(), q.getColumn(2).getString());
    }
    q.tryReset();
    // A touchpoint is fired again once none of its deliveries is dead.
    SQLite::Statement revive(db_.sql(),
                             "UPDATE touchpoints SET state = 1, reason = NULL WHERE id = ? AND "
                             "state = 5 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE "
                             "touchpoint = touchpoints.id AND state = 1)");
    for (const auto& [touchpoint, name] : replayed) {
      revive.tryReset();
      revive.bind(1, touchpoint);
      revive.exec();
      rows_.AddHistoryAsIs(touchpoint, now, "dead letter replayed on " + name);
      ++step.replayed;
    }
    if (id != 0 && replayed.empty()) {
      SQLite::Statement waiting(db_.sql(), "SELECT 1 FROM deliveries WHERE id = ? AND state = 0");
      waiting.bind(1, id);
      step.waiting = waiting.executeStep();
    }
  });
  if (!s.ok()) return s;
  return step;
}

StatusOr<std::vector<std::pair<std::string, std::int64_t>>> OutboxTables::BySink(
    std::int64_t limit) {
  return Guard("outbox sinks",
               [&]() -> StatusOr<std::vector<std::pair<std::string, std::int64_t>>> {
                 // Each sink found from the last by the due index (a read
                 // per sink), and its events counted up to `limit`.
                 SQLite::Statement q(
                     db_.sql(),
                     "WITH RECURSIVE sinks(name) AS (SELECT (SELECT min(sink) FROM deliveries "
                     "WHERE state = 0) UNION ALL SELECT (SELECT min(sink) FROM deliveries WHERE "
                     "state = 0 AND sink > name) FROM sinks WHERE name IS NOT NULL) "
                     "SELECT name, (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE state = "
                     "0 AND sink = name LIMIT ?1) AS c) FROM sinks WHERE name IS NOT NULL "
                     "ORDER BY name");
                 q.bind(1, limit);
                 std::vector<std::pair<std::string, std::int64_t>> out;
                 while (q.executeStep()) {
                   out.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getInt64());
                 }
                 return out;
               });
}

StatusOr<std::int64_t> OutboxTables::Depth(std::string_view sink) {
  return db_.Count("outbox depth", "SELECT COUNT(*) FROM deliveries WHERE sink = ? AND state = 0",
                   sink);
}

StatusOr<std::int64_t> OutboxTables::DeadLetterCount(std::string_view sink) {
  return db_.Count("dead letter count", kDeadLetterCount, sink);
}

}  // namespace tp
