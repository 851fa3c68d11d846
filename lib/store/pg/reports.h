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
  // The touchpoints with a message enqueued before `cutoff`, sorted, read
  // once a pass (as the SQLite store does: store/retention.h). A message
  // is enqueued when its touchpoint fires, at its fire time, so none is
  // added for a touchpoint fired before the cutoff once this is read: it
  // only errs by keeping one whose message was acked since. No index on
  // queue_messages(touchpoint) to ask per row: each lease would write it.
  struct Queued {
    std::optional<std::int64_t> cutoff;
    std::vector<std::int64_t> touchpoints;
  } queued_before_;
};

}  // namespace tp::pgstore
