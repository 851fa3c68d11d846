// What the retention loop needs from storage: deleting finished touchpoints
// past `retention` (docs/config.md), a bounded span at a time. SqliteStore
// and PgStore implement it.
//
// Threading: called on the thread that owns the store. Errors: a Status; a
// failed step deletes nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "core/status.h"
#include "core/time.h"

namespace tp {

// One step of retention pruning.
struct PruneResult {
  std::int64_t deleted = 0;  // touchpoints deleted, with their history
  std::int64_t next = 0;     // where the next step starts
  bool done = false;         // the step reached the end of the table
};

// Where a step over the `span` rows after row id `after` ends, for both
// stores: `spanth`, the id of the span-th of them (none if fewer are
// left), and `last`, the table's last id (0 if it is empty).
inline void EndSpan(PruneResult& result, std::int64_t after, std::optional<std::int64_t> spanth,
                    std::int64_t last) {
  result.done = !spanth || *spanth >= last;
  result.next = spanth ? *spanth : std::max(after, last);
}

class RetentionStore {
 public:
  virtual ~RetentionStore() = default;

  // Deletes, with their history, those of the `span` rows after row id
  // `after` (the next `span` ids that exist; `next`: the last of them) that
  // are finished (fired, cancelled, suppressed or skipped; a dead one waits
  // for its replay), were due and fired before `cutoff`, and have no queue
  // message or outbox entry left. Walking the table in spans bounds the
  // work of one call, so the daemon's loop never stalls on it; spans of
  // rows, not of ids, so that a pass costs the rows there are, not every id
  // ever given. The queues are read once a pass, a number of messages a
  // call (store/queued_before.h): until they are read, a call deletes
  // nothing and returns `next` = `after`. Purchases stay: tiers and
  // duplicate detection need them.
  virtual StatusOr<PruneResult> PruneFinished(Instant cutoff, std::int64_t after,
                                              std::int64_t span) = 0;
};

}  // namespace tp
