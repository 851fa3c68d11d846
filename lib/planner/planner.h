// The planner: rules + a buyer's history + a new purchase -> touchpoints.
// Pure: no I/O, no clock, no state; safe to call from any thread.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "config/rules.h"
#include "core/model.h"

namespace tp {

// What the planner needs to know of a buyer's earlier purchases.
struct PastPurchase {
  Instant purchased_at;
  int product = 0;  // index into Rules::products
  double amount = 0;
  std::int64_t quantity = 1;
  const Zone* zone = nullptr;  // the zone it was planned in
};

// One of the buyer's engagement events, as planning reads it.
struct BuyerEvent {
  Instant at;
  int type = 0;  // index into Rules::engagement_types
};

// The names of the event types some cadence stops on (`stop_on`), each
// once: the events planning reads (PlanPurchase's `events`).
std::vector<std::string> StopTypes(const Rules& rules);

// Whether some step has a `when`: firing it reads the buyer's trust
// signals.
bool AnyWhen(const Rules& rules);

struct PlannedTouchpoint {
  std::string id;  // TouchpointId(order_id, cadence name, step id)
  int cadence = 0;
  int step = 0;
  Instant due_at;   // anchor + after
  Instant next_at;  // due_at moved into the send window: when it may first fire
  bool cancel_on_repurchase = false;
  // kPending normally; kCancelled or kSkipped when it is final at birth (see
  // PlanPurchase), with the reason.
  TouchpointState state = TouchpointState::kPending;
  std::string reason;
};

struct Plan {
  int tier = 0;                                // index into Rules::tiers
  bool switched = false;                       // a switch cadence's from -> to matched
  std::vector<PlannedTouchpoint> touchpoints;  // cadence order, then step order
};

// Re-planning (planner/replan.h) takes a purchase's touchpoints as stored
// and hands back the changes to them.

// A touchpoint of the purchase as stored.
struct ExistingTouchpoint {
  std::string id;
  std::string cadence;  // its cadence's name
  TouchpointState state = TouchpointState::kPending;
  Instant due_at;
  Instant next_at;
  std::uint64_t handle = 0;  // the store's key for it, handed back in changes
};

struct ReplanChange {
  enum class Kind : std::uint8_t {
    kUpdate,  // a pending step: new due_at/next_at/topic/order (may be unchanged)
    kAdd,     // a new pending step
    kCancel,  // a pending step cancelled with `reason`
  };
  Kind kind = Kind::kUpdate;
  PlannedTouchpoint touchpoint;  // kUpdate, kAdd; kCancel sets only id
  std::string cadence;           // the cadence's name (all kinds)
  std::string reason;            // kCancel
  Instant previous_due_at;       // kUpdate: the due time it had
  std::uint64_t handle = 0;      // kUpdate, kCancel: the existing touchpoint's handle
};

struct PurchaseReplan {
  int tier = -1;  // index into Rules::tiers; -1 when the purchase cannot be planned
  std::vector<ReplanChange> changes;
};

// When a purchase of `quantity` units of `product` at `purchased_at` runs
// out: quantity x supply_days calendar days later in `zone` (at most
// kMaxRunoutDays).
Instant Runout(Instant purchased_at, std::int64_t quantity, const Product& product,
               const Zone* zone);

// Plans `purchase` (whose product must exist in `rules`) for a buyer whose
// earlier purchases are `history`, sorted by purchased_at (ties in arrival
// order) and not containing `purchase`. `zone` is the buyer's zone for it.
//
// The purchase takes effect at its place in purchased_at order, after any
// history entry with the same instant:
//  - tier: planner/tier.h's TierOf over the history up to that place;
//  - switch cadences: match when the purchase just before that place has a
//    different product, listed in `from`, and this product is in `to`;
//  - due_at = anchor + after, in calendar days of `zone` for `d` (same
//    wall-clock time), exactly for s/m/h; runout = purchased_at +
//    quantity * supply_days days;
//  - a touchpoint due before the purchase itself (a negative runout offset)
//    is born kSkipped;
//  - when history holds a newer purchase (this order arrived late), that
//    purchase would have cancelled this one's cancel_on_repurchase
//    touchpoints not yet due by then: those are born kCancelled;
//  - when `events` holds one at or after purchased_at of a type a cadence
//    stops on (this order arrived after the buyer's answer, or a reload
//    adds steps to a cadence the answer stopped), the cadence's
//    touchpoints are born kCancelled, with the reason the first such event
//    gives them: none of them was sent before the answer, and none is sent
//    after it. `events` is the buyer's (in any order; others are ignored):
//    the first of each of StopTypes() at or after purchased_at is enough.
// Cancelling earlier purchases' touchpoints is the caller's job (it owns the
// state); see Scheduler::Ingest.
Plan PlanPurchase(const Rules& rules, std::span<const PastPurchase> history,
                  const Purchase& purchase, int product, const Zone* zone,
                  std::span<const BuyerEvent> events = {});

// The reason a touchpoint stopped by an event of `type` at `at` is given
// (the event's own cancels and those PlanPurchase makes at birth alike).
std::string StoppedReason(std::string_view type, Instant at);

}  // namespace tp
