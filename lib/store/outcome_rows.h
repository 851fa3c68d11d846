// The outcomes report's reads (outcomes/outcomes.h): every buyer's
// purchases, fires and events, streamed buyer by buyer from ordered scans
// of one read transaction, so the whole base is never held at once. Only
// what the grouping needs is read: by tier or product, purchases and trust
// signals; by cadence or topic, purchases, fires and credited events. Runs
// on the StoreReader's thread and connection. Internal to lib/store.
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <functional>
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

// Streams every buyer into `report`. Throws SQLite's errors.
void ReadOutcomes(SQLite::Database& db, const OutcomeQuery& query, OutcomeReport& report);

}  // namespace tp
