// Re-planning after the planning rules change (ReplanStore, store/
// replan_store.h) in PostgreSQL. Internal to lib/store; PgStore forwards
// to it.
//
// Daemons that reload to the same rules share one sweep: its position is
// in the planning row, and each step takes the re-plan's advisory lock and
// reads the position there, so steps on several daemons take turns and
// carry on from each other. (A buyer may be re-planned twice, once by each
// daemon, which changes nothing.) Each record of a re-plan starts a new
// run of the sweep, numbered in the planning row, after the step under way
// commits; a daemon whose next step finds another run forgets the buyers
// it had re-planned, so that a buyer written by the rules before (by a
// daemon not yet reloaded) is re-planned in the new run whoever steps.
// Not thread-safe: one thread owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/rules_in_force.h"
#include "store/pg/session.h"
#include "store/replan_store.h"
#include "store/values.h"

namespace tp::pgstore {

// The sweep's advisory lock, tried by a step and by the restart once other
// rules are gone; and the planning row's read (both in planning.cc).
extern const pg::Statement kTryReplanLock;
extern const pg::Statement kPlanning;

class Replan {
 public:
  Replan(Session& session, const RulesInForce& rules) : session_(session), rules_(rules) {}

  StatusOr<PlanningState> Planning();
  Status SetPlanning(std::string_view fingerprint, bool replan);
  // The session is the daemon's loop's: SetPlanning() waits less.
  void set_on_loop() { on_loop_ = true; }
  Status NotePlanningByOtherRules(std::string_view fingerprint);
  StatusOr<bool> ReplanOnceOtherRulesGone(std::string_view fingerprint, Millis gone);
  StatusOr<ReplanStep> ReplanSome(const PurchaseReplanner& replan, std::string_view fingerprint,
                                  std::chrono::steady_clock::time_point deadline, Instant now);

 private:
  // A position in the pending index's order.
  struct Sweep {
    std::int64_t next_at = INT64_MIN, due_at = INT64_MIN, buyer = INT64_MIN,
                 cadence_order = INT64_MIN, step_order = INT64_MIN, id = INT64_MIN;
  };
  // Re-plans these buyers' purchases that have pending touchpoints, in a
  // few statements for all of them (their turns taken first, in one
  // order); writes in the order one buyer at a time would. With `wait`
  // false, only if every turn is free: else false, having written nothing
  // (the caller rolls back to its savepoint, which lets go of the turns
  // that were free).
  bool ReplanBuyers(const PurchaseReplanner& replan, const std::vector<std::int64_t>& buyers,
                    Instant now, ReplanCounts& counts, bool wait);

  Session& session_;
  const RulesInForce& rules_;
  sql::ZoneCache zones_;
  std::vector<bool> replanned_;  // buyers this daemon re-planned in run run_
  std::int64_t run_ = -1;
  bool on_loop_ = false;
  // Rows a step reads at a time; the first read of a step reads half as
  // many after a first read that met a lock held elsewhere, and twice as
  // many after one that did not (up to kRowsPerRead).
  static constexpr int kRowsPerRead = 128;
  int first_read_ = kRowsPerRead;
};

}  // namespace tp::pgstore
