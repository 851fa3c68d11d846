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
#include "store/queued_before.h"
#include "store/report_store.h"
#include "store/retention_store.h"
#include "store/values.h"

namespace tp::pgstore {

class Reports {
 public:
  explicit Reports(Session& session) : session_(session) {}

  StatusOr<std::optional<BuyerReport>> GetBuyer(std::string_view buyer_id,
                                                std::int64_t last_purchases);
  StatusOr<std::int64_t> PendingCount();
  StatusOr<PruneResult> PruneFinished(Instant cutoff, std::int64_t after, std::int64_t span);

 private:
  Session& session_;
  // Which touchpoints are still queued (store/queued_before.h).
  QueuedBefore queued_;
};

}  // namespace tp::pgstore
