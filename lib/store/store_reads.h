// What the daemon reads off its loop, on threads of the store's own: the
// events of leased messages, the counts /metrics and /v1/status report, and
// the outcomes report; and, where the store allows (PgReader), the queues'
// leases and acks. StoreReader reads a SQLite file, PgReader a
// PostgreSQL database.
//
// Threading: called on the daemon's loop; each `done` runs on one of the
// reader's threads. Errors: a Status in `done`.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/outcome_rows.h"
#include "store/queue_store.h"
#include "store/report_store.h"

namespace tp {

class StoreReads : public LeasedEvents {
 public:
  using Counted = std::function<void(StatusOr<StoreGauges>)>;
  using Reported = std::function<void(StatusOr<OutcomeReport>)>;

  // Reads, in one read transaction, what the store's PendingCount(),
  // QueueDepth() of each of `queues`, DeadLetterCount() of each of
  // `push_sinks` and OutboxBySink() would say without a limit, then calls `done`
  // with it.
  virtual void Count(std::vector<std::string> queues, std::vector<std::string> push_sinks,
                     Counted done) = 0;
  // Counts the pending touchpoints between `boundaries` (PendingDays),
  // then calls `done` with them. A scan of every pending row: it runs
  // apart from the other reads, so it holds up neither Count() nor Fill()
  // (nor they it).
  virtual void PendingByDay(std::vector<Instant> boundaries,
                            std::function<void(StatusOr<PendingDays>)> done) = 0;
  // Computes the outcomes report over every buyer (its buyers split into
  // ranges read at once, on as many threads as there are cores, up to
  // four), then calls `done` with it.
  virtual void Outcomes(OutcomeQuery query, Reported done) = 0;
  // The daemon is stopping, and should not wait for a long read: a count
  // of the days or an outcomes report under way gives up (its `done` gets
  // an error), as do those asked after this; the rest still run.
  virtual void Stop() = 0;
  // Where this reader's thread takes leases and acks too (QueueJobs), or
  // null: then the loop does, on the store.
  virtual QueueJobs* queue_jobs() { return nullptr; }
};

}  // namespace tp
