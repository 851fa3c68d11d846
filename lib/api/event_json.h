// The body of POST /v1/events: one engagement event object or an array of
// them, checked completely before anything is recorded (the request is
// atomic), as purchases are (api/json_items.h).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "api/json_items.h"
#include "config/rules.h"
#include "core/model.h"

namespace tp {

struct ParsedEvents {
  std::vector<EngagementEvent> items;
  std::optional<BodyError> error;
};

inline constexpr std::size_t kMaxEventsPerRequest = 1'000;

// Fields: event_id, buyer_id, type (one of the config's engagement types),
// at (RFC 3339 with offset), touchpoint_id (optional; null = none),
// attributes (optional object), within planner/event_check.h's bounds. Any
// other field is an error. An event twice in one array must say the same
// both times (the second is then a duplicate); otherwise the second is an
// error.
ParsedEvents ParseEvents(std::string_view body, const Rules& rules,
                         std::size_t max_items = kMaxEventsPerRequest);

}  // namespace tp
