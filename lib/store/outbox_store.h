// What the dispatcher needs from storage: the push sinks' outbox (each
// fired touchpoint's event, per webhook or stream sink, until delivered)
// and its dead letters (docs/webhooks.md). SqliteStore implements it; a
// second backend, or a test's fake, implements the same.
//
// Threading: called on the thread that owns the store (the daemon's loop).
// Errors: a Status, Unavailable when storage is full for now; a failed call
// changes nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/time.h"

namespace tp {

// One event waiting in a push sink's outbox.
struct OutboxItem {
  std::int64_t id = 0;          // the delivery's id (a dead letter keeps it)
  std::int64_t touchpoint = 0;  // the touchpoint's row
  std::string touchpoint_id;    // its stable id: the webhook-id / the stream entry's id field
  std::string event;            // the event JSON, the same bytes on every attempt
  int attempts = 0;             // failed attempts so far
};

// What one delivery attempt came to.
struct DeliveryResult {
  enum class Kind : std::uint8_t { kDelivered, kRetry, kDead };
  std::int64_t id = 0;
  std::int64_t touchpoint = 0;
  Kind kind = Kind::kDelivered;
  Instant at;               // when the attempt ended
  int attempts = 0;         // failed attempts, this one included (kRetry, kDead)
  Instant next_attempt_at;  // kRetry
  std::string error;        // the failure, kept as last_error (kRetry, kDead)
  std::string history;      // the line for the touchpoint's history
  Millis latency{0};        // how long the attempt took (metrics only)
};

struct DeadLetter {
  std::int64_t id = 0;
  std::string sink;
  std::string touchpoint_id;
  std::string event;
  int attempts = 0;
  std::string last_error;
  Instant dead_at;
};

class OutboxStore {
 public:
  virtual ~OutboxStore() = default;

  // Up to `max` events of `sink` due by `now`: by their next attempt time,
  // or in fire order when `in_order` (a stream: those this daemon is
  // sending now among them, counted in `max`). Not in order, none of
  // `attempting`, the events this daemon is sending now: a store several
  // daemons share keeps its claims on those still its own, and leaves one
  // another daemon took over and recorded meanwhile to them (this daemon's
  // late result for it is not recorded), not claimed back unattempted.
  virtual StatusOr<std::vector<OutboxItem>> DueDeliveries(
      std::string_view sink, Instant now, std::size_t max, bool in_order,
      std::span<const std::int64_t> attempting = {}) = 0;
  // This daemon no longer delivers the in-order `sink` (its worker
  // stopped, or its circuit is open: it cannot reach the sink) and has
  // nothing of it in flight: another daemon sharing the store may deliver
  // it, from the first event on. Nothing to do for a store only one daemon
  // uses.
  virtual Status LetGoOfSink(std::string_view sink) {
    (void)sink;
    return Status::Ok();
  }
  // Whether the last in-order DueDeliveries() of `sink` found another
  // daemon sharing the store delivering it (and so returned nothing).
  virtual bool DeliveredElsewhere(std::string_view sink) const {
    (void)sink;
    return false;
  }
  // When the earliest event of `sink` due after `now` is due, if any.
  virtual StatusOr<std::optional<Instant>> NextDeliveryAfter(std::string_view sink,
                                                             Instant now) = 0;
  // Records attempts' results in one transaction: a delivered event leaves
  // the outbox, a failed one waits for its next attempt, a dead one stays as
  // a dead letter and its touchpoint becomes dead. Each adds a history line.
  // A result for an entry replayed or gone meanwhile changes nothing.
  virtual Status RecordDeliveries(std::span<const DeliveryResult> results) = 0;
  // Dead letters with id > `after`, oldest first, of `sink` if not empty.
  virtual StatusOr<std::vector<DeadLetter>> DeadLetters(std::string_view sink, std::int64_t after,
                                                        int limit) = 0;
  // What a replay of one dead letter did, or found.
  enum class ReplayedOne {
    kReplayed,  // put back in its outbox
    kWaiting,   // not dead: it waits in its outbox (replayed already, or
                // not given up on yet)
    kUnknown,   // no such event: an unknown id, or delivered since
  };
  // Puts the dead letter `id` back in its outbox, due now with no failed
  // attempts.
  virtual StatusOr<ReplayedOne> ReplayDeadLetter(std::int64_t id, Instant now) = 0;
  // One step of replaying them all, so that no call takes long: those of
  // `sink` (every sink's if empty) with id > `after` that were dead by
  // `dead_by` (the replay's start: what dies meanwhile waits for the next
  // replay), the oldest first, at most `limit` of them read. How many went
  // back (fewer than read when another daemon changed some meanwhile), and
  // the last id read (0: none left).
  struct ReplayedStep {
    int replayed = 0;
    std::int64_t last_id = 0;
    // Of a replay of one id that put none back: whether that event waits in
    // its outbox.
    bool waiting = false;
  };
  // A replay of one id's step as ReplayDeadLetter() answers it.
  static StatusOr<ReplayedOne> OneOf(const StatusOr<ReplayedStep>& step) {
    if (!step.ok()) return step.status();
    if (step->replayed > 0) return ReplayedOne::kReplayed;
    return step->waiting ? ReplayedOne::kWaiting : ReplayedOne::kUnknown;
  }
  virtual StatusOr<ReplayedStep> ReplayDeadLettersAfter(std::string_view sink, std::int64_t after,
                                                        Instant dead_by, int limit,
                                                        Instant now) = 0;
  // Sinks with events waiting in their outbox, and how many each, counted
  // up to `limit` (a count of `limit`: at least that many), so that the
  // read stays short whatever the outbox holds.
  virtual StatusOr<std::vector<std::pair<std::string, std::int64_t>>> OutboxBySink(
      std::int64_t limit) = 0;
  // Events waiting in `sink`'s outbox, and dead letters of `sink`.
  virtual StatusOr<std::int64_t> OutboxDepth(std::string_view sink) = 0;
  virtual StatusOr<std::int64_t> DeadLetterCount(std::string_view sink) = 0;
};

}  // namespace tp
