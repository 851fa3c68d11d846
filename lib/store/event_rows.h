// Makes the events of fired touchpoints from their rows, on one connection:
// the store's (a fire's outbox entries, SqliteStore::Lease()) or a
// StoreReader's on its own thread (leased messages). Events stored before
// schema 7 are handed out as stored; the others are made as the fire would
// have made them, with its time (scheduler/event.h). Internal to lib/store.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"
#include "store/queue_store.h"
#include "store/sql.h"
#include "store/touchpoint_row.h"

namespace tp {

class EventRows {
 public:
  // Throws SQLite's errors.
  explicit EventRows(SQLite::Database& db);

  // Whether queue_events held stored events when this was made (none are
  // added since): acks drop them.
  bool stored_left() const { return stored_left_; }

  // The events of fired touchpoints (row ids), by row id; one whose row is
  // gone is left out. With `stored`, events stored before schema 7 win.
  // Throws SQLite's errors.
  std::unordered_map<std::int64_t, std::string> Make(std::span<const std::int64_t> touchpoints,
                                                     bool stored);

  // The events of a lease's messages, as a lease hands them out: a message
  // whose touchpoint is gone (a file edited by hand; retention keeps a
  // queued one) gets null, so it can be acked, and the log says so. Errors
  // as a Status: the lease stands, and its messages come back after their
  // visibility timeout.
  Status Fill(std::span<LeasedRow> leased, std::string_view queue);

 private:
  bool stored_left_;
  SQLite::Statement stored_;
  SQLite::Statement rows_;
  sql::ZoneCache zones_;
  DueRow row_;  // reused: its strings keep their capacity
};

}  // namespace tp
