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
// Not thread-safe: one thread owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/rules_in_force.h"
#include "pg/connection.h"
#include "scheduler/store.h"
#include "store/fire_routing.h"
#include "store/pg/session.h"
#include "store/touchpoint_row.h"
#include "store/values.h"

namespace tp::pgstore {

class Tables {
 public:
  Tables(Session& session, const RulesInForce& rules);

  // Ingest (schedule.cc).
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

  Session& session_;
  const RulesInForce& rules_;
  FireRouting routing_;
  std::optional<std::uint64_t> routed_;  // the rules' generation routing_ follows
  sql::ZoneCache zones_;
  std::vector<DueRow> due_;  // TakeDue()'s rows, which its views point into
};

}  // namespace tp::pgstore
