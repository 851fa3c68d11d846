// Reads a PostgreSQL store off the daemon's loop (store/store_reads.h): a
// thread and connection of its own for the events of leased messages and
// /metrics' counts; another for the queues' leases (with their events) and
// acks (QueueJobs); another for the pending days of /v1/status (a scan of
// every pending row, which so holds up no scrape and no lease); and for an
// outcomes report threads and connections of their own, each range of
// buyers read from one snapshot (REPEATABLE READ) with server-side
// cursors, so no range is ever held in memory at once.
// A lost connection is reopened by the next job.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "store/store_reads.h"

namespace tp {

class PgReader final : public StoreReads, public QueueJobs {
 public:
  // Connects to `url` (a database the store has migrated). The counts of
  // /metrics are exact up to `exact_counts_up_to` rows each, PostgreSQL's
  // estimates beyond (store/pg/gauges.h). With an `answer_limit`, a
  // lease, an ack, a lease's events or a count waits at most that long
  // for the server's answer (past it the connection is given up, as when
  // lost: Unavailable), and the server ends a statement that runs a second
  // less (statement_timeout; Unavailable too): a frozen server would hold
  // the queues' and counts' threads, and every request queued behind
  // them, for as long as it stays frozen.
  static constexpr std::int64_t kExactCountsUpTo = 1'000'000;
  static StatusOr<std::unique_ptr<PgReader>> Open(
      const std::string& url, std::int64_t exact_counts_up_to = kExactCountsUpTo,
      std::chrono::milliseconds answer_limit = {});
  // Finishes the jobs queued so far (a report under way gives up), then
  // stops.
  ~PgReader() override;
  PgReader(const PgReader&) = delete;
  PgReader& operator=(const PgReader&) = delete;

  void Fill(std::vector<LeasedRow> leased, std::string queue, Filled done) override;
  void Count(std::vector<std::string> queues, std::vector<std::string> push_sinks,
             Counted done) override;
  void PendingByDay(std::vector<Instant> boundaries,
                    std::function<void(StatusOr<PendingDays>)> done) override;
  void Outcomes(OutcomeQuery query, Reported done) override;
  // Asks the server to cancel the count of the days under way (on a thread
  // of its own: a server that does not answer does not hold the caller),
  // which also stops before its next statement, and a report gives up at
  // its next rows.
  void Stop() override;
  QueueJobs* queue_jobs() override { return this; }

  // QueueJobs: on a thread and connection of their own (so a slow count
  // holds up no lease), in order, each in a transaction of its own, while
  // the loop's connection ingests and the fire thread's fires
  // (daemon/fire_thread.h): the server works on all three at once.
  void Lease(std::string queue, int max, Millis visibility, Instant asked, Filled done) override;
  void Ack(std::string queue, std::vector<std::string> receipts, Instant asked,
           Acked done) override;

 private:
  struct Impl;
  explicit PgReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp
