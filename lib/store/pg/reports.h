// A buyer's timeline and the pending counts (ReportStore, store/
// report_store.h), and retention (RetentionStore, store/retention_store.h)
// in PostgreSQL. Internal to lib/store; PgStore forwards to it.
// Not thread-safe: one thread owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "store/pg/session.h"
#include "store/report_store.h"
#include "store/retention_store.h"
#include "store/values.h"

namespace tp::pgstore {

class Reports {
 public:
  explicit Reports(Session& session) : session_(session) {}

  StatusOr<std::optional<BuyerReport>> GetBuyer(std::string_view buyer_id);
  StatusOr<int> PendingOf(std::string_view buyer_id);
  StatusOr<std::int64_t> PendingCount();
  StatusOr<PruneResult> PruneFinished(Instant cutoff, std::int64_t after, std::int64_t span);

 private:
  Session& session_;
  // The touchpoints with a message enqueued before `cutoff`, read once a
  // pass (as the SQLite store does: store/retention.h), by ranges of
  // kQueueRange message ids, a step each, so that no step holds the
  // daemon's loop long however many messages wait. A message is enqueued
  // when its touchpoint fires, at its fire time, so none is added for a
  // touchpoint fired before the cutoff once the pass has begun: the list
  // only errs by keeping one whose message was acked since. The pass
  // prunes by the earlier of its cutoff and the one the list was read
  // with. No index on queue_messages(touchpoint) to ask per row: each
  // lease would write it.
  static constexpr std::int64_t kQueueRange = 100'000;
  struct Queued {
    std::optional<std::int64_t> cutoff;  // read with; none before a pass
    std::int64_t read_to = 0;            // message ids read so far
    std::int64_t read_end = 0;           // the last id as the pass began
    bool complete = false;               // sorted, and pruning began
    std::vector<std::int64_t> touchpoints;
  } queued_before_;
};

}  // namespace tp::pgstore
