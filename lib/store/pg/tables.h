// The schedule in PostgreSQL: ScheduleStore's calls (scheduler/store.h) on
// a Session, defined by concern: ingest (schedule.cc), firing and its
// fan-out (fire.cc), engagement events (engagement.cc). Internal to
// lib/store; PgStore forwards to it.
//
// Several daemons share one database, so what one daemon's SQLite store
// gets from being alone is got from locks here:
//  - a buyer's ingest and events take the buyer's turn (a transaction-level
//    advisory lock on the buyer's id) before reading the buyer's history,
//    so two daemons recording purchases of one buyer take turns, exactly
//    as one daemon would;
//  - TakeDue() claims due touchpoints with their buyers' rows (FOR NO KEY
//    UPDATE ... SKIP LOCKED) in a transaction that ApplyOutcomes()
//    commits: each touchpoint is decided by one daemon, and a buyer's caps
//    are counted by one daemon at a time.
// Not thread-safe: one thread owns it (held_for_order() is read from any).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/rules_in_force.h"
#include "pg/connection.h"
#include "planner/planner.h"
#include "scheduler/store.h"
#include "store/fire_routing.h"
#include "store/pg/session.h"
#include "store/touchpoint_row.h"
#include "store/values.h"

namespace tp::pgstore {

class Tables {
 public:
  Tables(Session& session, const RulesInForce& rules);

  // Ingest (schedule.cc; a group's batches: ingest_ahead.cc).
  //
  // Inside a group, takes the buyers' turns not yet held, in one statement
  // (Transactions::TakeBuyersTurns); outside one, nothing.
  Status TakeBuyersTurns(std::span<const std::string> buyer_ids);
  // Inside a group, takes the purchases' buyers' turns in one statement (in
  // the order of their lock keys, so two daemons' batches wait for each
  // other rather than deadlock) and reads their rows and the orders ahead:
  // the calls for these purchases then read what was kept, and their new
  // purchases are held back and written as one statement before anything
  // else reaches the database (Session::Defer). Outside a group, nothing.
  Status PrepareIngest(std::span<const Purchase> purchases);
  StatusOr<PurchaseMatch> MatchPurchase(const Purchase& purchase, const Zone* zone);
  StatusOr<BuyerState> LoadBuyer(std::string_view buyer_id);
  Status AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                     std::span<const PlannedTouchpoint> touchpoints, Instant now);
  StatusOr<CadenceCounts> CancelEarlier(std::string_view buyer_id, Instant up_to,
                                        std::string_view except_order, Instant now,
                                        std::string_view reason);
  StatusOr<CadenceCounts> SetOptedOut(std::string_view buyer_id, bool opted_out, Instant now);

  // Firing (fire.cc).
  StatusOr<std::optional<Instant>> NextWakeup();
  StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max);
  StatusOr<std::vector<FiredTouchpoint>> FiredBetween(const DueTouchpoint& due, Instant from,
                                                      Instant to, bool sinks);
  Status ApplyOutcomes(std::span<const DueTouchpoint> due, std::span<const FiringOutcome> outcomes);
  // Rows this store's claims took and left pending, to keep a buyer's
  // touchpoints in order (OutOfTurn): each claim counts its own. Read from
  // any thread.
  std::int64_t held_for_order() const { return held_for_order_.load(std::memory_order_relaxed); }

  // Engagement events (engagement.cc).
  StatusOr<EventMatch> MatchEvent(const EngagementEvent& event);
  StatusOr<BuyerTouchpoint> FindTouchpoint(std::string_view buyer_id,
                                           std::string_view touchpoint_id);
  StatusOr<BuyerTouchpoint> LastFiredBefore(std::string_view buyer_id, Instant at);
  StatusOr<bool> AddEvent(const EngagementEvent& event, std::uint64_t buyer, std::uint64_t credited,
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
  // Rows (schedule.cc). Each throws pg::Error.
  //
  // Waits for the buyer's turn, held until this transaction ends.
  void TakeBuyersTurn(std::string_view buyer_id);
  // The buyer's row id, in the buyer's turn, if known (and whether it
  // opted out); with `create`, the buyer is added first if unknown.
  std::optional<std::int64_t> FindBuyer(std::string_view buyer_id, Instant now, bool create,
                                        bool* opted_out = nullptr);
  // Runs an UPDATE ... RETURNING id, cadence and records each row's
  // transition; counts go to `counts` by cadence.
  void FinishReturned(const pg::Result& r, Instant now, TouchpointState state,
                      std::string_view reason, CadenceCounts& counts);
  const FireRouting& Routing();

  // What a group's ingest keeps (ingest_ahead.cc), for one scope of the
  // session: the turns held, and every prepared buyer's and order's rows as
  // they are in this transaction, held-back purchases included.
  struct Ahead {
    struct Buyer {
      std::optional<std::int64_t> id;  // none: not in the table (yet)
      bool opted_out = false;
      std::vector<PastPurchase> history;  // as LoadBuyer() gives it
      bool held = false;                  // to be created with the held purchases
    };
    struct Order {
      Purchase purchase;
      std::string zone;  // the name of the zone it was planned in
    };
    // The purchases held back, as columns of the statement that writes them.
    struct Held {
      std::vector<std::string> new_buyers;
      std::vector<std::int64_t> created_at;
      std::vector<std::string> order_id, buyer, product, timezone, zone, tier, attributes;
      std::vector<std::int64_t> known, quantity, purchased_at, received_at;
      std::vector<double> amount;
      std::vector<std::int64_t> of, cadence_order, step_order, cancel, state, due_at, next_at;
      std::vector<std::string> cadence, step, topic, reason;
    };
    std::uint64_t scope = 0;
    std::unordered_set<std::string, sql::StringHash, std::equal_to<>> turns;
    std::unordered_map<std::string, Buyer, sql::StringHash, std::equal_to<>> buyers;
    // Every prepared order id: its purchase, or none when it is new.
    std::unordered_map<std::string, std::optional<Order>, sql::StringHash, std::equal_to<>> orders;
    Held held;
    // FirstEventsSince() of StopTypes() for each purchase of the last
    // PrepareIngest(), by buyer id and purchased_at (ms): read again at
    // each, and a buyer's forgotten when an event of theirs is added, so
    // that events recorded since count.
    std::unordered_map<std::string, std::unordered_map<std::int64_t, std::vector<EngagementEvent>>,
                       sql::StringHash, std::equal_to<>>
        events;

    Buyer* FindBuyer(std::string_view buyer_id);
    const std::vector<EngagementEvent>* FindEvents(std::string_view buyer_id, Instant since) const;
  };
  // Takes the turns of these buyers not `ahead` holds, in one statement:
  // each buyer's own, or every buyer's at once when the group would hold
  // more than kTurnsEach (rows.h). Throws pg::Error.
  void TakeTurns(Ahead& ahead, pg::Connection& c, std::span<const std::string> buyer_ids);
  // What is kept for the current scope (emptied when the scope changed),
  // or null outside a group.
  Ahead* Current();
  // Records the purchase in `ahead` and holds its rows back.
  void Hold(Ahead& ahead, Ahead::Buyer& buyer, const Purchase& purchase, const Zone* zone, int tier,
            std::span<const PlannedTouchpoint> touchpoints, Instant now);
  // Writes the held-back purchases (Session::Defer). Throws pg::Error.
  void WriteHeld();

  // TakeDue()'s claims (fire.cc). Each throws (pg::Error, or
  // std::runtime_error for a row whose purchase or buyer is missing).
  //
  // A claimed touchpoint row's own columns (its purchase and buyer by row
  // id; ClaimWithBuyers fills no purchase).
  struct ClaimedRow {
    std::int64_t id = 0, due_at = 0, next_at = 0, cadence_order = 0, step_order = 0, purchase = 0,
                 buyer = 0;
    std::string cadence, step;
  };
  // Which of `rows` (a claim at `now`) wait for an earlier pending row of
  // their buyer (earlier in firing order) that the claim does not hold, or
  // for a row of their buyer fired later than `now` (by less than
  // kFireOrderSlack, fire_order.cc): true at those places.
  // The claims leave them pending, undecided, for a later pass: a buyer's
  // rows are decided in order, by any daemons, as by one, and fired at
  // times in that order.
  std::vector<bool> OutOfTurn(pg::Connection& c, Instant now, const std::vector<ClaimedRow>& rows);
  // Appends `row` to due_, with what was read of its buyer and purchase.
  void AddDue(ClaimedRow&& row, std::string_view buyer_id, const Zone* zone,
              std::int64_t received_at);
  // With frequency caps: the due rows and their buyers' rows, in one
  // statement, into due_.
  void ClaimWithBuyers(pg::Connection& c, Instant now, std::size_t max);
  // Without: the due rows alone (ClaimRange), then their purchases and
  // buyers, each read once, into due_.
  void ClaimFromFrontier(pg::Connection& c, Instant now, std::size_t max);
  // The due rows from the claim frontier, or from the head (kTakeDueFrom,
  // kTakeDueBefore), in firing order; advances the frontier after a full
  // claim.
  std::vector<ClaimedRow> ClaimRange(pg::Connection& c, Instant now, std::size_t max);

  Session& session_;
  const RulesInForce& rules_;
  FireRouting routing_;
  std::optional<std::uint64_t> routed_;  // the rules' generation routing_ follows
  sql::ZoneCache zones_;
  std::vector<DueRow> due_;      // TakeDue()'s rows, which its views point into
  Instant head_due_;             // when TakeDue() next reads from the head (fire.cc)
  bool claimed_all_ = false;     // whether its last claim took as many as it asked
  bool frontier_moved_ = false;  // whether its last claim moved the frontier
  std::atomic<std::int64_t> held_for_order_{0};
  Ahead ahead_;
  // Every buyer's turn held (TakeTurns()): taken by group
  // all_turns_group_ (Session::group()) in scope all_turns_scope_, inside a
  // request's savepoint or not. Taken outside one, it lasts the group;
  // inside, until that savepoint is rolled back (the scope changes).
  std::uint64_t all_turns_group_ = 0, all_turns_scope_ = 0;
  bool all_turns_enclosed_ = false;
  bool AllTurnsHeld() const;
};

}  // namespace tp::pgstore
