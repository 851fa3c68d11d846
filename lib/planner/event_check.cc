#include "planner/event_check.h"

#include "core/text.h"

namespace tp {

std::optional<std::string> EventTypeProblem(std::string_view type, const Rules& rules) {
  if (rules.EngagementTypeIndex(type) >= 0) return std::nullopt;
  std::string known;
  for (const EngagementType& t : rules.engagement_types) {
    known += (known.empty() ? "" : ", ") + t.name;
  }
  return "unknown type '" + Excerpt(type) + "' (engagement types are " + known + ")";
}

std::optional<std::string> EventAtProblem(Instant at) {
  if (at >= kMinPurchasedAt && at < kMaxPurchasedAt) return std::nullopt;
  return "at must be from 2000-01-01T00:00:00Z to before 2100-01-01T00:00:00Z, got " +
         FormatRfc3339(at, UtcZone());
}

std::optional<PurchaseProblem> CheckEvent(const EngagementEvent& e, const Rules& rules) {
  auto problem = [](const char* field,
                    std::optional<std::string> message) -> std::optional<PurchaseProblem> {
    if (!message) return std::nullopt;
    return PurchaseProblem{field, std::move(*message)};
  };
  if (auto p = problem("event_id", IdFieldProblem("event_id", e.event_id))) return p;
  if (auto p = problem("buyer_id", IdFieldProblem("buyer_id", e.buyer_id))) return p;
  if (auto p = problem("type", EventTypeProblem(e.type, rules))) return p;
  if (auto p = problem("at", EventAtProblem(e.at))) return p;
  if (!e.touchpoint_id.empty()) {
    if (auto p = problem("touchpoint_id", IdFieldProblem("touchpoint_id", e.touchpoint_id))) {
      return p;
    }
  }
  return problem("attributes", AttributesProblem(e.attributes));
}

}  // namespace tp
