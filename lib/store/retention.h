// Retention (RetentionStore): finished touchpoints deleted with their
// history once past the configured age, a span of row ids at a time.
// Internal to lib/store; SqliteStore forwards to it.
#pragma once

#include <cstdint>
#include <vector>

#include "store/database.h"
#include "store/queued_before.h"
#include "store/retention_store.h"

namespace tp {

class RetentionTables {
 public:
  explicit RetentionTables(Database& db) : db_(db) {}

  StatusOr<PruneResult> PruneFinished(Instant cutoff, std::int64_t after, std::int64_t span);

 private:
  Database& db_;
  // Which touchpoints are still queued (store/queued_before.h).
  QueuedBefore queued_;
};

}  // namespace tp
