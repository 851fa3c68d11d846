// The outcomes report (GET /v1/reports/outcomes, outcomes/report_json.h)
// as an aligned table for people: `touchpointctl report` and
// `touchpointctl simulate --report` print it the same way.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

namespace tp {

// A title line, then one row per key. Rates as percentages, "-" where
// there is nothing to divide.
void PrintOutcomeReport(const nlohmann::ordered_json& report, std::ostream& out);

}  // namespace tp
