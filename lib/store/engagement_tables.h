// Engagement events in SQLite (the `events` table): recording one, what an
// event id already stands for, the touchpoint an event names or is
// credited to, the cadences a type stops (stop_on), and the first trust
// signal since a due touchpoint's purchase (a step's `when`). Internal to
// lib/store; SqliteStore forwards to it (ScheduleStore, scheduler/store.h).
#pragma once

#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/rules.h"
#include "scheduler/store.h"
#include "store/database.h"
#include "store/row_writer.h"
#include "store/sql.h"

namespace tp {

class EngagementTables {
 public:
  EngagementTables(Database& db, RowWriter& rows);

  StatusOr<EventMatch> Match(const EngagementEvent& event);
  StatusOr<BuyerTouchpoint> FindTouchpoint(std::string_view buyer_id,
                                           std::string_view touchpoint_id);
  StatusOr<BuyerTouchpoint> LastFiredBefore(std::string_view buyer_id, Instant at);
  StatusOr<bool> Add(const EngagementEvent& event, std::uint64_t buyer, std::uint64_t credited,
                     Instant now);
  StatusOr<CadenceCounts> CancelCadences(std::string_view buyer_id,
                                         std::span<const std::string> cadences, Instant up_to,
                                         Instant now, std::string_view reason);
  StatusOr<std::vector<EngagementEvent>> FirstEventsSince(std::string_view buyer_id, Instant since,
                                                          std::span<const std::string> types);
  StatusOr<std::optional<EngagementEvent>> FirstEngagement(const DueTouchpoint& due,
                                                           std::span<const std::string> types,
                                                           Instant until);

 private:
  // A TouchpointRef from a row of (id, cadence, purchase, fire_at), with the
  // purchase's zone.
  TouchpointRef Ref(SQLite::Statement& q);

  Database& db_;
  RowWriter& rows_;
  sql::ZoneCache zones_;
  SQLite::Statement match_;
  SQLite::Statement touchpoints_of_;
  SQLite::Statement fired_before_;
  SQLite::Statement zone_of_;
  SQLite::Statement insert_;
  SQLite::Statement cancel_;
  SQLite::Statement first_engagement_;
  SQLite::Statement first_events_since_;
};

}  // namespace tp
