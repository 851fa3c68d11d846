// What an engagement event must be to be recorded: the one set of rules
// POST /v1/events, `touchpointctl import --events` (through the API) and
// `simulate --events` apply, with the same messages as a purchase's
// (planner/purchase_check.h). Whether its touchpoint_id names one of the
// buyer's touchpoints is the store's to say. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/rules.h"
#include "core/model.h"
#include "planner/purchase_check.h"

namespace tp {

// `type` must be one of the rules' engagement types.
std::optional<std::string> EventTypeProblem(std::string_view type, const Rules& rules);
// `at` is in [kMinPurchasedAt, kMaxPurchasedAt), as a purchase's time.
std::optional<std::string> EventAtProblem(Instant at);

// The first field of `event`, in the order event_id, buyer_id, type, at,
// touchpoint_id, attributes, that breaks a rule, or nullopt.
std::optional<PurchaseProblem> CheckEvent(const EngagementEvent& event, const Rules& rules);

}  // namespace tp
