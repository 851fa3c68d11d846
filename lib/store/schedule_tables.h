// The ingest side of the schedule: purchases and buyers as the scheduler
// records them (ScheduleStore's MatchPurchase, LoadBuyer, AddPurchase,
// CancelEarlier, SetOptedOut), with their statements. The fire side is in
// fire_tables.h. Internal to lib/store; SqliteStore forwards to it.
#pragma once

#include <SQLiteCpp/Statement.h>

#include <span>
#include <string_view>

#include "config/rules.h"
#include "core/status.h"
#include "scheduler/store.h"
#include "store/database.h"
#include "store/row_writer.h"
#include "store/sql.h"

namespace tp {

class ScheduleTables {
 public:
  ScheduleTables(Database& db, RowWriter& rows);

  StatusOr<PurchaseMatch> MatchPurchase(const Purchase& purchase, const Zone* zone);
  StatusOr<BuyerState> LoadBuyer(const Rules& rules, std::string_view buyer_id);
  Status AddPurchase(const Rules& rules, const Purchase& purchase, const Zone* zone, int tier,
                     std::span<const PlannedTouchpoint> touchpoints, Instant now);
  StatusOr<CadenceCounts> CancelEarlier(std::string_view buyer_id, Instant up_to,
                                        std::string_view except_order, Instant now,
                                        std::string_view reason);
  StatusOr<CadenceCounts> SetOptedOut(std::string_view buyer_id, bool opted_out, Instant now);

 private:
  Database& db_;
  RowWriter& rows_;
  sql::ZoneCache zones_;
  SQLite::Statement match_;
  SQLite::Statement buyer_history_;
  SQLite::Statement purchase_insert_;
  SQLite::Statement cancel_earlier_;
  SQLite::Statement set_opted_out_;
  SQLite::Statement suppress_;
};

}  // namespace tp
