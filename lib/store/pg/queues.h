// The embedded queues in PostgreSQL: QueueStore (store/queue_store.h) on a
// Session. Internal to lib/store; PgStore forwards to it.
//
// Several daemons share them: a lease takes its queue's turn, then visible
// messages FOR UPDATE SKIP LOCKED, so leases of one queue, on any daemons,
// run one after the other and never hand out one message twice; an ack is
// any daemon's.
// Not thread-safe: one thread owns it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/pg/session.h"
#include "store/queue_store.h"
#include "store/values.h"

namespace tp::pgstore {

// A lease of up to `max` visible messages of `queue` (QueueStore::
// TakeLease), in enqueue order, and an ack of `receipts` (QueueStore::Ack),
// each on `c` in the caller's transaction (a lease takes its queue's turn,
// kept to the commit, then leases, both in one round trip; outside a
// transaction, the lease is one of its own; an ack turns sequential scans
// off, deletes and writes the history lines, and sets them back as they
// were, in one round trip):
// Queues runs them on the store's session, PgReader on a connection of its
// own, off the daemon's loop.
std::vector<LeasedRow> LeaseOn(pg::Connection& c, std::string_view queue, int max,
                               Millis visibility, Instant now);
int AckOn(pg::Connection& c, std::string_view queue, std::span<const std::string> receipts,
          Instant now);
// Whether `queue` has a message visible at `now`, read without a lock, a
// turn or a transaction of its own: PgReader asks first, so that the poll
// of an idle consumer costs one statement and takes no turn. (A message
// that comes after it is one the lease would have missed at that moment
// too.)
bool AnyVisible(pg::Connection& c, std::string_view queue, Instant now);

class Queues {
 public:
  explicit Queues(Session& session) : session_(session) {}

  StatusOr<std::vector<LeasedRow>> TakeLease(std::string_view queue, int max, Millis visibility,
                                             Instant now);
  StatusOr<int> Ack(std::string_view queue, std::span<const std::string> receipts, Instant now);
  StatusOr<std::int64_t> QueueDepth(std::string_view queue);
  // The events of leased rows, made on this connection.
  Status Fill(std::span<LeasedRow> leased, std::string_view queue);

 private:
  Session& session_;
  sql::ZoneCache zones_;
};

}  // namespace tp::pgstore
