// The narrow interface between the scheduler core and whatever keeps its
// state: MemoryStore for `simulate` and tests, the SQLite store in the daemon.
// The scheduler knows no SQL; a store knows no scheduling rules beyond what
// each method's contract states.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/status.h"
#include "planner/planner.h"

namespace tp {

// A touchpoint as handed out. The string_views point into storage owned by
// the store and stay valid until the store's next TakeDue() or mutation.
struct TouchpointView {
  std::string_view id;
  std::string_view buyer_id;
  std::string_view order_id;
  std::string_view cadence;
  std::string_view step;  // its step's id
  std::string_view topic;
  std::string_view tier;
  std::string_view product;
  const Zone* zone = nullptr;  // the buyer's zone for this touchpoint
  Instant due_at;
  Instant next_at;  // when it may next fire
  // When it could first fire: next_at, or when its purchase was recorded if
  // that was later (an order that arrived after its step was due). Lateness
  // is measured from it; a store that leaves it at the epoch means next_at.
  Instant ready_at;
  std::optional<Instant> fire_at;
  TouchpointState state = TouchpointState::kPending;
  std::string_view reason;  // why it is not pending/fired, if so
};

// A pending touchpoint whose next_at has come.
struct DueTouchpoint {
  std::uint64_t handle = 0;  // the store's key for it
  TouchpointView view;
};

// A touchpoint a buyer was handed, as the frequency caps count it.
struct FiredTouchpoint {
  Instant fire_at;
  // The sinks it went to as it fired, names comma-separated (Rules::
  // SinkList); nullopt when not asked for, or not known (fired before the
  // store recorded it).
  std::optional<std::string> sinks = {};
};

struct FiringOutcome {
  enum class Kind : std::uint8_t { kFired, kDeferred, kSkipped };
  Kind kind = Kind::kFired;
  Instant at;  // kFired: fire_at; kDeferred: the new next_at; kSkipped: when decided
  std::string reason;
  bool capped = false;  // kDeferred by a frequency cap (not by the send window)
};

// What an order id already stands for.
struct PurchaseMatch {
  enum class Kind : std::uint8_t { kNew, kSame, kConflict };
  Kind kind = Kind::kNew;
  // kConflict: the first field that differs (Purchase::FirstDifference), or
  // "" when the store keeps too little to tell.
  std::string field = {};
};

// A touchpoint an event may be credited to.
struct TouchpointRef {
  std::uint64_t handle = 0;  // the store's key for it, never 0
  std::string cadence;       // its cadence's name
  const Zone* zone = nullptr;
  std::optional<Instant> fire_at;  // when it fired, if it did
};

// A lookup's answer: the buyer's key in the store (0: not recorded yet)
// and the touchpoint found, if any.
struct BuyerTouchpoint {
  std::uint64_t buyer = 0;
  std::optional<TouchpointRef> touchpoint;
};

// What an event id already stands for (kConflict: the first field that
// differs, EngagementEvent::FirstDifference).
using EventMatch = PurchaseMatch;

// How many touchpoints of each cadence (by name) a call changed.
using CadenceCounts = std::map<std::string, std::int64_t, std::less<>>;

struct BuyerState {
  bool opted_out = false;
  // Sorted by purchased_at, ties in arrival order. Product is an index into
  // the current rules' products, -1 for a product the rules no longer have.
  std::vector<PastPurchase> history;
};

// A purchase's calls (MatchPurchase, LoadBuyer, CancelEarlier,
// AddPurchase...) see one buyer's history unchanged between them only
// inside the caller's group (lib/store/transactions.h, as the daemon's
// ingest writer runs them): outside one, on a store several writers share
// (PostgreSQL), each call is a transaction of its own and another writer's
// purchase of the buyer may come between two of them.
class ScheduleStore {
 public:
  virtual ~ScheduleStore() = default;

  // The calls for these purchases come next, in this order and in the
  // caller's group (a store may take their buyers' turns and read their
  // rows at once). Optional: every call works without it.
  virtual Status PrepareIngest(std::span<const Purchase> /*purchases*/) { return Status::Ok(); }
  // Whether `order_id` is new, recorded with the same content, or recorded
  // with different content. `zone` is the purchase's zone (its timezone, or
  // the default): a timezone that names the zone the recorded purchase was
  // planned in is the same timezone, so re-sending an order with the
  // default zone spelt out is not a conflict.
  virtual StatusOr<PurchaseMatch> MatchPurchase(const Purchase& purchase, const Zone* zone) = 0;
  // A buyer never seen is not opted out and has an empty history.
  virtual StatusOr<BuyerState> LoadBuyer(std::string_view buyer_id) = 0;
  // Records the purchase with the tier it was planned at, and its touchpoints
  // (pending ones become due at their next_at; born-final ones are recorded
  // with their state and reason at `now`).
  virtual Status AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                             std::span<const PlannedTouchpoint> touchpoints, Instant now) = 0;
  // Cancels the pending cancel_on_repurchase touchpoints of the buyer's
  // purchases made at or before `up_to`, other than `except_order`.
  virtual StatusOr<CadenceCounts> CancelEarlier(std::string_view buyer_id, Instant up_to,
                                                std::string_view except_order, Instant now,
                                                std::string_view reason) = 0;
  // Opting out suppresses every pending touchpoint of the buyer (creating the
  // buyer if unknown) and says how many; opting in only clears the flag.
  virtual StatusOr<CadenceCounts> SetOptedOut(std::string_view buyer_id, bool opted_out,
                                              Instant now) = 0;

  // Engagement events (docs/outcomes.md). Recording one is a lookup
  // (FindTouchpoint or LastFiredBefore), then AddEvent with the buyer key
  // that lookup returned, so the store finds the buyer once per event.
  //
  // Whether `event_id` is new, recorded with the same content, or with
  // different content.
  virtual StatusOr<EventMatch> MatchEvent(const EngagementEvent& event) = 0;
  // The buyer's touchpoint `touchpoint_id`, whatever its state, or none if
  // the buyer has none by that id.
  virtual StatusOr<BuyerTouchpoint> FindTouchpoint(std::string_view buyer_id,
                                                   std::string_view touchpoint_id) = 0;
  // The buyer's touchpoint fired last before `at` (ties: the one recorded
  // last), or none.
  virtual StatusOr<BuyerTouchpoint> LastFiredBefore(std::string_view buyer_id, Instant at) = 0;
  // Records the event received at `now` unless its event_id is recorded
  // already: then it writes nothing and says false (MatchEvent tells a
  // duplicate from a conflict). `buyer` is the key the lookup just made
  // for this event returned, or 0 (the buyer is looked up, and created if
  // unknown); `credited` a TouchpointRef's handle, or 0: none.
  virtual StatusOr<bool> AddEvent(const EngagementEvent& event, std::uint64_t buyer,
                                  std::uint64_t credited, Instant now) = 0;
  // Cancels the buyer's pending touchpoints of the cadences named in
  // `cadences` whose purchase was made at or before `up_to`.
  virtual StatusOr<CadenceCounts> CancelCadences(std::string_view buyer_id,
                                                 std::span<const std::string> cadences,
                                                 Instant up_to, Instant now,
                                                 std::string_view reason) = 0;
  // For each of `types`, the buyer's first event of it (its `type` and
  // `at`) with `at` at or after `since`; none for a type without one. What
  // planning a purchase reads (planner.h's PlanPurchase `events`), for an
  // answer recorded before the purchase was.
  virtual StatusOr<std::vector<EngagementEvent>> FirstEventsSince(
      std::string_view buyer_id, Instant since, std::span<const std::string> types) = 0;
  // The first event of the buyer of `due` of one of `types` with `at` from
  // its purchase's purchased_at up to `until` (inclusive), by time; nullopt
  // if none.
  virtual StatusOr<std::optional<EngagementEvent>> FirstEngagement(
      const DueTouchpoint& due, std::span<const std::string> types, Instant until) = 0;

  // The earliest next_at of any pending touchpoint, or nullopt if none.
  virtual StatusOr<std::optional<Instant>> NextWakeup() = 0;
  // How many touchpoints TakeDue() has taken and left pending so far to
  // keep their buyer's order, because the buyer's earlier one was locked
  // by another transaction (another daemon's claim, an ingest or re-plan
  // write), left behind the claim frontier, or fired at a later time (by
  // a pass that began later, or a clock ahead); each claim counts its
  // own. Always 0 for a store that decides a buyer's touchpoints in one
  // place. Read from any thread.
  virtual std::int64_t HeldForOrder() const { return 0; }
  // Up to `max` pending touchpoints with next_at <= now, ordered by next_at,
  // then due_at, then buyer (in the order the store first knew them), then
  // cadence order, then step order, then arrival. Each is
  // returned once until ApplyOutcomes() decides it. A view needs only what
  // the scheduler decides on (buyer, cadence, zone, due_at, next_at); a
  // store may leave the rest empty and make events from its rows.
  virtual StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max) = 0;
  // The touchpoints of the buyer of `due` fired (dead-lettered ones
  // included) in [from, to), with the sinks each went to when `sinks`.
  // The scheduler asks only about the frequency caps' periods that contain
  // the current time: at most the calendar month, or the ISO week, that
  // contains it.
  virtual StatusOr<std::vector<FiredTouchpoint>> FiredBetween(const DueTouchpoint& due,
                                                              Instant from, Instant to,
                                                              bool sinks) = 0;
  // Applies one outcome per due touchpoint (outcomes[i] for due[i]), all or
  // nothing.
  virtual Status ApplyOutcomes(std::span<const DueTouchpoint> due,
                               std::span<const FiringOutcome> outcomes) = 0;
};

}  // namespace tp
