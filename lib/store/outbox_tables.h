// The push sinks' outbox and dead letters (OutboxStore): where a webhook or
// stream delivery waits, is retried, dies and is replayed, each step with a
// line in its touchpoint's history. A fire puts the entries there
// (fire_tables.h). Internal to lib/store; SqliteStore forwards to it.
#pragma once

#include <SQLiteCpp/Statement.h>

#include "store/database.h"
#include "store/outbox_store.h"
#include "store/row_writer.h"

namespace tp {

class OutboxTables {
 public:
  OutboxTables(Database& db, RowWriter& rows);

  StatusOr<std::vector<OutboxItem>> Due(std::string_view sink, Instant now, std::size_t max,
                                        bool in_order);
  StatusOr<std::optional<Instant>> NextAfter(std::string_view sink, Instant now);
  Status Record(std::span<const DeliveryResult> results);
  StatusOr<std::vector<DeadLetter>> DeadLetters(std::string_view sink, std::int64_t after,
                                                int limit);
  // The one with `id`, or (0) those of `sink` past `after` dead by
  // `dead_by`, at most `limit` (negative: no limit).
  StatusOr<OutboxStore::ReplayedStep> Replay(std::int64_t id, std::string_view sink,
                                             std::int64_t after, Instant dead_by, int limit,
                                             Instant now);
  StatusOr<std::vector<std::pair<std::string, std::int64_t>>> BySink(std::int64_t limit);
  StatusOr<std::int64_t> Depth(std::string_view sink);
  StatusOr<std::int64_t> DeadLetterCount(std::string_view sink);

 private:
  Database& db_;
  RowWriter& rows_;
  // Webhooks go by their own retry schedules; a stream keeps fire order.
  SQLite::Statement due_;
  SQLite::Statement due_in_order_;
  SQLite::Statement next_;
  SQLite::Statement delivered_;
  // A retry (?1 = 0) waits until ?3; a dead letter (?1 = 1) died at ?3.
  SQLite::Statement failed_attempt_;
  SQLite::Statement touchpoint_dead_;
};

}  // namespace tp
