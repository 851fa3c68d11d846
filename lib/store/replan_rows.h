// Re-planning's rows (ReplanStore): the planning state in the `planning`
// table, the sweep over pending touchpoints in firing order, and each
// buyer's purchases handed to the planner's function under the rules in
// force, with the changes written back. Internal to lib/store; SqliteStore
// forwards to it.
#pragma once

#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/rules.h"
#include "store/database.h"
#include "store/replan_store.h"
#include "store/row_writer.h"
#include "store/sql.h"

namespace tp {

class ReplanRows {
 public:
  ReplanRows(Database& db, RowWriter& rows);

  StatusOr<PlanningState> Planning();
  Status SetPlanning(std::string_view fingerprint, bool replan);
  StatusOr<ReplanStep> ReplanSome(const Rules& rules, const PurchaseReplanner& replan,
                                  std::string_view fingerprint,
                                  std::chrono::steady_clock::time_point deadline, Instant now);

 private:
  // A re-plan's sweep: where it is in the pending index's order (from the
  // start: the least values).
  struct Sweep {
    std::int64_t next_at = INT64_MIN, due_at = INT64_MIN, buyer = INT64_MIN,
                 cadence_order = INT64_MIN, step_order = INT64_MIN, id = INT64_MIN;
  };
  // A purchase as recorded, with its touchpoints.
  struct StoredPurchase {
    std::int64_t row = 0;
    Purchase purchase;
    const Zone* zone = nullptr;  // the zone it was planned in
    std::vector<ExistingTouchpoint> touchpoints;
  };

  void BindSweep(SQLite::Statement& q, int first, const std::optional<Sweep>& at);
  // `at`: a re-plan under way continues from there; nullopt: none.
  void SavePlanning(std::string_view fingerprint, const std::optional<Sweep>& at);
  void SaveSweep(const std::optional<Sweep>& at);
  // A buyer's purchases by purchased_at (ties in arrival order), each with
  // its touchpoints (their handles are row ids). Throws SQLite's errors.
  std::vector<StoredPurchase> LoadPurchases(std::int64_t buyer, const std::string& buyer_id);
  // Records a purchase's new tier (unless -1) and applies the changes.
  // Throws SQLite's errors.
  void ApplyChanges(const Rules& rules, std::int64_t purchase_row, std::int64_t buyer, int tier,
                    std::span<const ReplanChange> changes, Instant now, ReplanCounts& counts);
  // Re-plans by `replan` under `rules` every purchase of the buyer (row id)
  // that has a pending touchpoint. Throws SQLite's errors.
  void ReplanBuyer(const Rules& rules, const PurchaseReplanner& replan, std::int64_t buyer,
                   Instant now, ReplanCounts& counts);

  Database& db_;
  RowWriter& rows_;
  sql::ZoneCache zones_;
  Sweep sweep_;
  std::string fingerprint_;      // the planning state's, as last read or written
  std::vector<bool> replanned_;  // the buyers (by row id) this re-plan did

  SQLite::Statement purchases_of_;
  SQLite::Statement touchpoints_of_;
  // A purchase's new tier (?1; buyer ?2, purchase ?3). Its fired touchpoints
  // keep the tier they fired with: their queued events are made from it.
  SQLite::Statement pin_tier_;
  SQLite::Statement purchase_tier_;
  // Writes only when something differs, so an unchanged step costs no write.
  SQLite::Statement replan_update_;
  SQLite::Statement replan_cancel_;
  // The pending touchpoints after the sweep's position, in firing order.
  SQLite::Statement sweep_rows_;
  SQLite::Statement buyer_name_;
  SQLite::Statement first_events_since_;
  SQLite::Statement save_sweep_;
};

}  // namespace tp
