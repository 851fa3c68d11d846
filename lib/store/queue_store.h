// What the embedded queues' routes need from storage: leases and acks of the
// messages a fire put on a queue (docs/queues.md). SqliteStore implements
// it; a second backend implements the same.
//
// Threading: called on the thread that owns the store. Errors: a Status,
// Unavailable when storage is full for now (the route answers 503).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/time.h"

namespace tp {

struct LeasedMessage {
  std::string receipt;
  std::string event;   // the event JSON ("null" if the store lost it; logged)
  int deliveries = 0;  // times handed out, this one included
};

// A message a lease took (QueueStore::TakeLease), its event still to make
// from its touchpoint (StoreReader::Fill).
struct LeasedRow {
  std::int64_t id = 0;          // the message's row id
  std::int64_t touchpoint = 0;  // its touchpoint's row id
  LeasedMessage message;
};

// Makes the events of leased messages (StoreReader does, on a thread of
// its own and a read-only connection, so the loop does not).
class LeasedEvents {
 public:
  using Filled = std::function<void(StatusOr<std::vector<LeasedRow>>)>;
  virtual ~LeasedEvents() = default;

  // Fills in the events of `leased` (of `queue`, for the log), then calls
  // `done` with the rows, or with the error that stopped it (the lease
  // stands; its messages come back after their visibility timeout). `done`
  // may run on another thread.
  virtual void Fill(std::vector<LeasedRow> leased, std::string queue, Filled done) = 0;
};

// A lease and an ack run off the daemon's loop, on a thread and connection
// of the store's own, where the store lets other connections write at the
// same time (PgReader; a SQLite file has one writer, the loop's).
// Jobs run in order; each `done` runs on that thread.
class QueueJobs {
 public:
  using Acked = std::function<void(StatusOr<int>)>;
  virtual ~QueueJobs() = default;

  // QueueStore::TakeLease, committed, then LeasedEvents::Fill: `done`
  // gets the rows with their events, or the error that stopped it (if
  // the lease was taken, it stands; its messages come back after their
  // visibility timeout). `asked`: the request's time on the daemon's
  // clock; the lease is taken at that time moved on by however long the
  // job waited (for the thread, and for the queue's turn), so its
  // messages are hidden for the whole `visibility` from when they are
  // taken.
  virtual void Lease(std::string queue, int max, Millis visibility, Instant asked,
                     LeasedEvents::Filled done) = 0;
  // QueueStore::Ack, committed, at `asked` moved on as for a lease.
  virtual void Ack(std::string queue, std::vector<std::string> receipts, Instant asked,
                   Acked done) = 0;
};

class QueueStore {
 public:
  virtual ~QueueStore() = default;

  // Up to `max` messages of `queue` visible at `now` (the longest visible
  // first), in enqueue order, each hidden until now + visibility under a
  // fresh receipt, without their events (a StoreReader makes them on its
  // own thread). Atomic on its own.
  virtual StatusOr<std::vector<LeasedRow>> TakeLease(std::string_view queue, int max,
                                                     Millis visibility, Instant now) = 0;
  // Removes the messages whose receipts are current, with a history line
  // each; returns how many. A receipt that is unknown, malformed, already
  // acked or superseded by a later lease counts for nothing.
  virtual StatusOr<int> Ack(std::string_view queue, std::span<const std::string> receipts,
                            Instant now) = 0;
  // Messages on `queue`, visible or not.
  virtual StatusOr<std::int64_t> QueueDepth(std::string_view queue) = 0;
};

}  // namespace tp
