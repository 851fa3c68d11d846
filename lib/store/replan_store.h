// What the re-planner needs from storage: where the pending touchpoints
// stand with the rules, and re-planning them in steps after the planning
// rules change (docs/operations.md "Re-planning in the background"): the
// store sweeps and writes, the planner's function it is handed decides.
// SqliteStore implements it.
//
// Threading: called on the thread that owns the store, between its other
// calls, never inside the caller's transaction (ReplanSome() is one of its
// own). Errors: a Status; a failed step changes nothing and the next one
// starts where the file says the sweep is.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/rules.h"
#include "core/model.h"
#include "core/status.h"
#include "core/time.h"
#include "scheduler/store.h"

namespace tp {

// What re-planning changed.
struct ReplanCounts {
  std::int64_t moved = 0;      // pending, now due at another time
  std::int64_t updated = 0;    // pending, same due time, other topic or order
  std::int64_t added = 0;      // new pending steps
  std::int64_t cancelled = 0;  // "rules changed"
  CadenceCounts cancelled_by_cadence;
  CadenceCounts added_by_cadence;

  void Add(const ReplanCounts& other);
};

// Where the pending touchpoints stand with the rules.
struct PlanningState {
  // PlanningFingerprint() of the rules the pending touchpoints are planned
  // by, or are being re-planned to; empty in a database that never recorded
  // one (written before schema 8).
  std::string fingerprint;
  bool replanning = false;  // a re-plan to `fingerprint` is under way
  // Several daemons (PostgreSQL): how long ago a daemon planning by other
  // rules than `fingerprint` last said so (NotePlanningByOtherRules); none
  // if none has since the rules were recorded.
  std::optional<Millis> other_rules_seen;
};

// One step of a re-plan (ReplanStore::ReplanSome).
struct ReplanStep {
  ReplanCounts counts;
  std::int64_t buyers = 0;  // buyers re-planned in this step
  // Every pending touchpoint with next_at before this has been re-planned
  // (the sweep goes in firing order); Instant::max() once done.
  Instant covered;
  bool done = false;
  // Ended early at a lock held elsewhere (PostgreSQL: another daemon's
  // step under way, or a buyer or a row another session held for longer
  // than a step waits): the next step is to come a little later.
  bool busy = false;
  // The sweep under way is to other rules than the caller's (a reload
  // recorded since the caller asked for this step, on this daemon or
  // another): nothing written, and `done` (that re-plan is not the
  // caller's to go on with; firing need not wait for it).
  bool superseded = false;
};

// The planner's half of a re-plan: what becomes of one purchase's
// touchpoints under `rules` (planner/replan.h's ReplanPurchase, which the
// daemon passes). The store loads the rows and writes the changes back; it
// does not plan.
// `events`: the buyer's first event of each of StopTypes(rules) at or after
// the purchase's purchased_at.
using PurchaseReplanner = std::function<PurchaseReplan(
    const Rules& rules, std::span<const PastPurchase> others, const Purchase& purchase, int product,
    const Zone* zone, std::span<const ExistingTouchpoint> existing, Instant now,
    std::span<const BuyerEvent> events)>;

class ReplanStore {
 public:
  virtual ~ReplanStore() = default;

  // The sweep visits pending touchpoints in firing order and re-plans each
  // one's buyer (every purchase of the buyer with a pending touchpoint)
  // under the rules in force, once; where it has got to is kept, so
  // a re-plan interrupted by a crash resumes at the next start (the buyers
  // it had done are done again, which changes nothing).
  //
  // The state kept, which opening the store also loads for ReplanSome().
  virtual StatusOr<PlanningState> Planning() = 0;
  // Records that the pending touchpoints are planned by `fingerprint`
  // (nothing to re-plan), or that a re-plan to it starts from the first
  // pending touchpoint. Inside the caller's transaction if there is one.
  virtual Status SetPlanning(std::string_view fingerprint, bool replan) = 0;
  // Re-plans from where the sweep is until `deadline` (one buyer at least),
  // each purchase by `replan`, in one transaction that also records how far
  // it got. Only while Planning().replanning, to `fingerprint` (that of the
  // rules the caller plans by): a re-plan to other rules, recorded since
  // the caller asked for this step (by a reload, on this daemon or
  // another), is not the caller's to step through (by its rules, it would
  // leave the buyers it passed on them); the step then writes nothing and
  // is `superseded`.
  virtual StatusOr<ReplanStep> ReplanSome(const PurchaseReplanner& replan,
                                          std::string_view fingerprint,
                                          std::chrono::steady_clock::time_point deadline,
                                          Instant now) = 0;

  // Several daemons on one database (PostgreSQL; one daemon has no one to
  // tell, so these do nothing by default). A daemon whose rules are not
  // those recorded (`fingerprint`: its own) plans the purchases it takes by
  // them, behind the sweep to the recorded ones or after it: it says so
  // once a second while it runs, without waiting for a lock (a step under
  // way: the next second).
  virtual Status NotePlanningByOtherRules(std::string_view /*fingerprint*/) { return Status::Ok(); }
  // Once no daemon has said so for `gone` (stopped, or restarted or
  // reloaded to the recorded rules), starts the sweep to the recorded rules
  // (`fingerprint`, the caller's) again from the first pending touchpoint,
  // so that the purchases planned by the others are re-planned too. True if
  // this call started it (of several daemons asking at once, one does);
  // false, without waiting, if a step under way holds the sweep.
  virtual StatusOr<bool> ReplanOnceOtherRulesGone(std::string_view /*fingerprint*/,
                                                  Millis /*gone*/) {
    return false;
  }
};

}  // namespace tp
