// The outcomes report's reads (outcomes/outcomes.h): every buyer's
// purchases, fires and events, streamed buyer by buyer from ordered scans,
// so the whole base is never held at once. Only what the grouping needs is
// read: by tier or product, purchases and trust signals; by cadence or
// topic, purchases, fires and credited events, each from an index that
// holds all of it (schema 10). The buyers are split into ranges read at
// once on threads of their own, each with its own read-only connection and
// read transaction. Internal to lib/store.
#pragma once

#include <SQLiteCpp/Database.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/status.h"
#include "outcomes/outcomes.h"

namespace tp {

struct OutcomeQuery {
  ReportOptions options;
  std::vector<std::string> trust_types;  // engagement types that are trust signals
  // A purchase's runout (planner/planner.h Runout under the rules in force).
  std::function<Instant(Instant purchased_at, std::int64_t quantity, const std::string& product,
                        const Zone* zone)>
      runout;
};

// Buyers by row id, [first, end).
struct BuyerRange {
  std::int64_t first = 0;
  std::int64_t end = std::numeric_limits<std::int64_t>::max();
};

// Streams every buyer of `range` into `report`; gives up (false) once
// `stop` is set. Throws SQLite's errors.
bool ReadOutcomes(SQLite::Database& db, const OutcomeQuery& query, BuyerRange range,
                  OutcomeReport& report, const std::atomic<bool>& stop);

// The report over the whole file at `path`, its buyers split into `parts`
// ranges of about equal span read at once, each on a thread and read-only
// connection of its own. The ranges' read transactions begin one after the
// other: a write committed in between shows in the later ranges' buyers
// only. An error if `stop` is set before it is done.
StatusOr<OutcomeReport> ComputeOutcomes(const std::string& path, const OutcomeQuery& query,
                                        int parts, const std::atomic<bool>& stop);

}  // namespace tp
