#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/outcome_rows.h"
#include "store/queue_store.h"
#include "store/report_store.h"
#include "store/store_reads.h"

namespace tp {

// Reads the store on threads and read-only connections of its own, so the
// thread that owns the store (and runs the daemon's loop) does not: the
// events of leased messages, which took a quarter of that thread's time per
// message, and the counts /metrics reports, which scan an index (50-80 ms
// at a million pending). Jobs run in order; each calls its `done` on the
// reader's thread. The pending days (/v1/status) are counted apart, on a
// thread and connection of their own, so a scan of every pending row holds
// up neither a lease nor a scrape; outcomes reports too, on threads of
// their own, so a report of seconds holds up no lease.
class StoreReader final : public StoreReads {
 public:
  // Opens `path` (a store's file, already open and migrated by it).
  static StatusOr<std::unique_ptr<StoreReader>> Open(const std::string& path);
  // Finishes the jobs queued so far (a report under way gives up), then
  // stops.
  ~StoreReader() override;
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  // Fills in the events of `leased` (of `queue`, for the log) as
  // SqliteStore::Lease() would make them (the rows they come from do not
  // change once their touchpoint fired, and a lease is committed before it
  // comes here), then calls `done` with the rows, or with the error that
  // stopped it (the lease stands; its messages come back after their
  // visibility timeout).
  void Fill(std::vector<LeasedRow> leased, std::string queue, Filled done) override;
  // Reads, in one read transaction, what SqliteStore's PendingCount(),
  // QueueDepth() of each of `queues`, DeadLetterCount() of each of
  // `push_sinks` and OutboxBySink() would say without a limit, then calls `done`
  // with it.
  void Count(std::vector<std::string> queues, std::vector<std::string> push_sinks,
             Counted done) override;
  // Counts the pending touchpoints between `boundaries` (gauges.h
  // ReadPendingDays) on the days' thread and connection, in order with
  // the other counts of days, then calls `done` with them on that thread.
  void PendingByDay(std::vector<Instant> boundaries,
                    std::function<void(StatusOr<PendingDays>)> done) override;
  // Computes the outcomes report over the whole file (store/outcome_rows.h
  // ComputeOutcomes, on as many threads as there are cores, up to four),
  // then calls `done` with it on the last of them.
  void Outcomes(OutcomeQuery query, Reported done) override;
  // A count of the days under way gives up within SQLite's next 1,000
  // steps (a progress handler), and a report at its next rows.
  void Stop() override;

 private:
  struct Impl;
  explicit StoreReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp
