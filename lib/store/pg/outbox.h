// The push sinks' outbox in PostgreSQL: OutboxStore (store/outbox_store.h)
// on a Session. Internal to lib/store; PgStore forwards to it.
//
// Several daemons share it:
//  - A push delivery is claimed by the session that attempts it (its
//    server process and start time, in the row): no other daemon takes it
//    while that session lives. When it ends (the daemon died, or lost its
//    connection), the claim is free at once and the next daemon to look
//    takes the delivery over and attempts it again: at-least-once, and
//    counted (taken_over()), since the first attempt may have reached the
//    sink. (After a restart of the server, which ends every session, the
//    claims made before are left to their own daemons for kRestartGrace.)
//    A result is recorded only by the session holding the claim, or if its
//    claimer is gone and nobody took it over (fencing).
//  - A sink delivered in order (a Redis stream) has one deliverer at a
//    time: the session holding its advisory lock, taken with its first
//    due delivery and kept until the session ends or the daemon lets the
//    sink go (LetGoOfSink()).
//  - NextDeliveryAfter() says to look again within kTakeoverPoll while
//    deliveries are due that another session holds, so a daemon notices a
//    claim or a stream freed by a daemon that died.
// Not thread-safe: one thread owns it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/outbox_store.h"
#include "store/pg/session.h"
#include "store/values.h"

namespace tp::pgstore {

inline constexpr Millis kTakeoverPoll{1000};
// After PostgreSQL started (a restart), how long a claim made before is
// left for its own daemon to claim again (docs/scaling.md, Failover).
inline constexpr Millis kRestartGrace{10000};

// The claim DueDeliveries() runs, by fire order if `in_order` (parameters:
// the sink, now, at most how many, this session's process and start, its
// earlier sessions' processes and starts, and, not in order, the ids this
// daemon is attempting): for the tests of what a claim takes over.
const pg::Statement& ClaimDueStatement(bool in_order);

class Outbox {
 public:
  explicit Outbox(Session& session) : session_(session) {}

  StatusOr<std::vector<OutboxItem>> DueDeliveries(std::string_view sink, Instant now,
                                                  std::size_t max, bool in_order,
                                                  std::span<const std::int64_t> attempting);
  StatusOr<std::optional<Instant>> NextDeliveryAfter(std::string_view sink, Instant now);
  // Unlocks an in-order sink this session delivers, its claims on the
  // sink's waiting events given up first (OutboxStore::LetGoOfSink).
  Status LetGoOfSink(std::string_view sink);
  bool DeliveredElsewhere(std::string_view sink) const { return elsewhere_.contains(sink); }
  Status RecordDeliveries(std::span<const DeliveryResult> results);
  StatusOr<std::vector<DeadLetter>> DeadLetters(std::string_view sink, std::int64_t after,
                                                int limit);
  // The one with `id`, or (0) those of `sink` past `after` dead by
  // `dead_by`, at most `limit` (negative: no limit); OutboxStore's two calls.
  StatusOr<OutboxStore::ReplayedStep> ReplayDeadLetters(std::int64_t id, std::string_view sink,
                                                        std::int64_t after, Instant dead_by,
                                                        int limit, Instant now);
  StatusOr<std::vector<std::pair<std::string, std::int64_t>>> OutboxBySink(std::int64_t limit);
  StatusOr<std::int64_t> OutboxDepth(std::string_view sink);
  StatusOr<std::int64_t> DeadLetterCount(std::string_view sink);

  // Deliveries this store took over from a session that had ended while
  // it held them: each may have reached its sink already.
  std::int64_t taken_over() const { return taken_over_; }

 private:
  Session& session_;
  std::int64_t taken_over_ = 0;
  // An in-order sink this daemon delivered: whether `holder_`'s session
  // holds its lock (a session-level lock goes with its session, and is
  // taken once, as such locks count each time they are taken), and the ids
  // of its events this daemon's sessions claimed and have not recorded a
  // result of (given up when it lets the sink go, an earlier session's
  // too: nothing of them is in flight then).
  struct OrderedSink {
    bool locked = false;
    std::set<std::int64_t> claimed;
  };
  std::map<std::string, OrderedSink, std::less<>> ordered_;
  Session::Identity holder_;
  // The in-order sinks whose lock another session held at the last claim.
  std::set<std::string, std::less<>> elsewhere_;
};

}  // namespace tp::pgstore
