// The fire side of the schedule (ScheduleStore's NextWakeup, TakeDue,
// FiredBetween, ApplyOutcomes) and the fan-out of a fire: a fired touchpoint
// becomes a message on each queue sink and an outbox entry for each push
// sink its cadence routes to, in the same transaction. Internal to
// lib/store; SqliteStore forwards to it.
#pragma once

#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/rules.h"
#include "core/status.h"
#include "scheduler/store.h"
#include "store/database.h"
#include "store/event_rows.h"
#include "store/fire_routing.h"
#include "store/row_writer.h"
#include "store/sql.h"
#include "store/touchpoint_row.h"

namespace tp {

class FireTables {
 public:
  FireTables(Database& db, RowWriter& rows, EventRows& events);

  // Which sinks each step's touchpoints go to from now on (a reload): its
  // own, else its cadence's.
  void SetRouting(const Rules& rules);

  StatusOr<std::optional<Instant>> NextWakeup();
  // Reads the due rows and keeps them (their views point into them) until
  // the next call.
  StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max);
  StatusOr<std::vector<FiredTouchpoint>> FiredBetween(const DueTouchpoint& due, Instant from,
                                                      Instant to, bool sinks);
  Status ApplyOutcomes(std::span<const DueTouchpoint> due, std::span<const FiringOutcome> outcomes);

 private:
  using Routing = FireRouting::Routing;
  using Route = FireRouting::Route;
  // Changes by this connection, and commits by others: while both stay as
  // they were when TakeDue() read its rows, those rows are still pending.
  using FileVersion = std::pair<std::int64_t, std::int64_t>;
  FileVersion Version();

  Database& db_;
  RowWriter& rows_;
  EventRows& events_;
  FireRouting routing_;
  sql::ZoneCache zones_;
  std::vector<DueRow> due_;
  std::optional<FileVersion> due_version_;  // as TakeDue() left it

  SQLite::Statement next_wakeup_;
  // What the scheduler decides on: events are made from the rows later.
  SQLite::Statement take_due_;
  SQLite::Statement fired_between_;
  SQLite::Statement fire_;
  SQLite::Statement still_pending_;
  SQLite::Statement data_version_;
  SQLite::Statement defer_;
  SQLite::Statement skip_;
  SQLite::Statement enqueue_;
  SQLite::Statement enqueue_many_;
  SQLite::Statement outbox_insert_;
  SQLite::Statement outbox_insert_many_;
};

}  // namespace tp
