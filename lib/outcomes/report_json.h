// The outcomes report as JSON (docs/api.md, GET /v1/reports/outcomes): the
// one rendering the daemon's route and `touchpointctl simulate --report`
// share, so both print the same figures.
#pragma once

#include <nlohmann/json.hpp>

#include "outcomes/outcomes.h"

namespace tp {

// {"as_of", "from", "to", "by", "rows": [...]}: by tier or product each row
// is {key, purchases, open, trust_open, trust_built, trust_rate,
// repurchased, repurchase_rate, median_days_to_repurchase}; by cadence or
// topic {key, fired, engaged, engagement_rate, repurchases, revenue}. A
// rate with nothing to divide is null. Rows in key order.
nlohmann::ordered_json ReportJson(const OutcomeReport& report);

}  // namespace tp
