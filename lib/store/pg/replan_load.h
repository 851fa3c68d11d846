// What a re-plan step reads of its buyers (store/pg/replan.h): each
// purchase with its touchpoints, and for one with steps pending, the
// buyer's first answers since it (planner.h's `events`). Internal to
// lib/store.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/rules.h"
#include "pg/connection.h"
#include "planner/planner.h"
#include "store/values.h"

namespace tp::pgstore {

struct ReplanRows {
  std::int64_t row = 0;
  Purchase purchase;
  const Zone* zone = nullptr;
  std::vector<ExistingTouchpoint> touchpoints;
  std::vector<BuyerEvent> events;  // only while pending()
  bool pending() const;
};

// Each of `buyers`' purchases (those `names` names), by buyer, in
// purchased_at order: three statements, four with a `stop_on`.
std::unordered_map<std::int64_t, std::vector<ReplanRows>> LoadForReplan(
    pg::Connection& c, const Rules& rules, sql::ZoneCache& zones,
    const std::vector<std::int64_t>& buyers,
    const std::unordered_map<std::int64_t, std::string>& names);

}  // namespace tp::pgstore
