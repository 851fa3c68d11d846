// Retention (RetentionStore): finished touchpoints deleted with their
// history once past the configured age, a span of row ids at a time.
// Internal to lib/store; SqliteStore forwards to it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "store/database.h"
#include "store/retention_store.h"

namespace tp {

class RetentionTables {
 public:
  explicit RetentionTables(Database& db) : db_(db) {}

  StatusOr<PruneResult> PruneFinished(Instant cutoff, std::int64_t after, std::int64_t span);

 private:
  Database& db_;
  // The touchpoints with a message enqueued before `cutoff`, sorted. A
  // message is enqueued when its touchpoint fires, so none is added for a
  // touchpoint fired before a cutoff once it is read: reading it once per
  // cutoff only errs by keeping one whose message was acked since.
  struct Queued {
    std::optional<std::int64_t> cutoff;
    std::vector<std::int64_t> touchpoints;
  } queued_before_;
};

}  // namespace tp
