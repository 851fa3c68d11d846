// The scheduler core: ingest (plan + record + cancel) and firing (send window,
// frequency cap, misfire) on an injectable clock. It is the one implementation
// of BRIEF section 4: `simulate` drives it on a virtual clock over a
// MemoryStore, the daemon on the system clock over its SQLite store.
//
// Not thread-safe: call from one thread (the daemon's I/O executor). `store`
// and `clock` must outlive *this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/rules.h"
#include "config/rules_in_force.h"
#include "core/clock.h"
#include "core/model.h"
#include "core/status.h"
#include "scheduler/store.h"

namespace tp {

struct IngestOutcome {
  enum class Kind : std::uint8_t {
    kPlanned,    // recorded; touchpoints planned (none while opted out)
    kDuplicate,  // same order id, same content: nothing new
    kConflict,   // same order id, different content: nothing recorded
  };
  Kind kind = Kind::kPlanned;
  int tier = -1;  // kPlanned only
  // Touchpoints recorded pending (planned), and those final at birth:
  // skipped (due before the purchase, or missed by more than misfire_grace
  // when the order arrived) or cancelled (by a newer purchase of the buyer).
  int planned = 0;
  int skipped = 0;
  int cancelled = 0;
  // kConflict: the field that differs from the recorded purchase, or "" if
  // the store cannot tell.
  std::string conflict_field = {};
};

struct EventOutcome {
  enum class Kind : std::uint8_t {
    kRecorded,           // recorded; stop_on applied
    kDuplicate,          // same event id, same content: nothing new
    kConflict,           // same event id, different content: nothing recorded
    kUnknownTouchpoint,  // touchpoint_id names no touchpoint of the buyer: nothing recorded
  };
  Kind kind = Kind::kRecorded;
  int cancelled = 0;  // kRecorded: pending touchpoints its type stopped (stop_on)
  // kRecorded: the touchpoint it was credited to (the store's handle), 0: none.
  std::uint64_t credited = 0;
  // kConflict: the field that differs from the recorded event.
  std::string conflict_field = {};
};

struct RunStats {
  std::size_t fired = 0;
  std::size_t deferred = 0;  // by the window after a delay, or by the cap
  std::size_t skipped = 0;   // misfired beyond misfire_grace, or its `when` unmet
  bool more = false;         // stopped at max_batches with more still due
};

// Told what the scheduler decided, for metrics; called on its thread, after
// the store recorded it (a caller that rolls back must discard what it heard
// since).
class SchedulerObserver {
 public:
  virtual ~SchedulerObserver() = default;
  // `count` touchpoints of `cadence` entered `state` (kPending: planned).
  virtual void OnTouchpoints(std::string_view cadence, TouchpointState state,
                             std::int64_t count) = 0;
  // One was deferred: by the send window after a delay, or by the cap.
  virtual void OnDeferred(std::string_view cadence) = 0;
  // One fired `late` after its next_at.
  virtual void OnFired(std::string_view cadence, Millis late) = 0;
  // An engagement event was credited to a touchpoint of `cadence`.
  virtual void OnEngaged(std::string_view /*cadence*/) {}
  // A repurchase (a purchase after the buyer's earlier one) was recorded:
  // `in_window` when it came by the previous purchase's runout plus
  // repurchase_grace; `credited_cadence` the cadence of the touchpoint it
  // is credited to ("" for none).
  virtual void OnRepurchase(bool /*in_window*/, std::string_view /*credited_cadence*/) {}
};

class Scheduler {
 public:
  // Plans and fires by the rules in force at each call (`rules` outlives
  // *this; a reload swaps what it holds).
  Scheduler(ScheduleStore& store, const Clock& clock, const RulesInForce& rules);
  Scheduler(ScheduleStore& store, const Clock& clock, RulesInForce&& rules) = delete;

  // Validates the purchase (planner/purchase_check.h: an error, not a plan),
  // then records and plans it. A purchase cancels the pending
  // cancel_on_repurchase touchpoints of the buyer's earlier purchases (by
  // purchased_at), never those of newer ones.
  StatusOr<IngestOutcome> Ingest(const Purchase& purchase);
  // Before a batch's Ingest() calls inside the caller's group: lets the
  // store read the batch's buyers and orders at once
  // (ScheduleStore::PrepareIngest).
  Status PrepareIngest(std::span<const Purchase> purchases) {
    return store_.PrepareIngest(purchases);
  }

  // Validates the event (planner/event_check.h: an error), then records it
  // unless its id is known; its touchpoint_id, if any, must name a
  // touchpoint of the buyer. A type some cadences stop_on cancels the
  // buyer's pending touchpoints of those cadences whose purchase was made at
  // or before the event (one older than a purchase leaves that purchase's
  // alone).
  StatusOr<EventOutcome> RecordEvent(const EngagementEvent& event);

  // Opt-out suppresses the buyer's pending touchpoints (how many it
  // returns) and plans none while opted out; opt-in plans only future
  // purchases.
  StatusOr<std::int64_t> OptOut(std::string_view buyer_id);
  Status OptIn(std::string_view buyer_id);

  // Decides every touchpoint due at clock.Now(), in batches: later than
  // misfire_grace -> skipped; outside the send window (only possible when
  // late) -> the next opening; a frequency cap that applies to it (by its
  // step's sinks) is full for its buyer-local period -> the next day's
  // opening (scheduler/frequency_caps.h); a step whose
  // `when` does not hold (engaged: a trust-signal event from the buyer since
  // the purchase) -> skipped with the reason; else fired at Now(). Ties go by due_at, then
  // buyer, then (a buyer's own) cadence order, step order. Stops after `max_batches` batches (each
  // one store transaction) so a caller with an event loop can interleave other work; RunStats::more
  // says to call again.
  StatusOr<RunStats> RunDue(std::size_t max_batches = SIZE_MAX);

  // When RunDue() next has something to do, or nullopt if nothing is pending.
  StatusOr<std::optional<Instant>> NextWakeup() { return store_.NextWakeup(); }

  const Rules& rules() const { return *rules_; }
  // `observer` (may be null) must outlive *this.
  void set_observer(SchedulerObserver* observer) { observer_ = observer; }
  // The zone for a buyer-supplied name ("" = the config's default), or null.
  const Zone* ZoneFor(std::string_view name) const;

 private:
  void Report(const CadenceCounts& counts, TouchpointState state);
  // Tells the observer when `purchase` repurchases (docs/outcomes.md).
  Status ObserveRepurchase(const Purchase& purchase, std::span<const PastPurchase> history,
                           const Zone* zone);
  // An event whose id the store may hold already: a duplicate or a
  // conflict if it does, else `if_new`.
  StatusOr<EventOutcome> AsRecorded(const EngagementEvent& event, EventOutcome::Kind if_new);
  // Why `due`'s step may not fire now by its `when`, or nullopt.
  StatusOr<std::optional<std::string>> UnmetWhen(const DueTouchpoint& due, Instant now);
  // The buyer's events planning `purchase` reads (planner.h's BuyerEvent):
  // none when no cadence stops on any.
  StatusOr<std::vector<BuyerEvent>> StopEvents(const Purchase& purchase);

  ScheduleStore& store_;
  const Clock& clock_;
  const RulesInForce& rules_;
  SchedulerObserver* observer_ = nullptr;
  // StopTypes() of the rules of generation stop_types_of_.
  std::vector<std::string> stop_types_;
  std::optional<std::uint64_t> stop_types_of_;
};

}  // namespace tp
