#include "api/event_json.h"

#include <unordered_map>

#include "core/text.h"
#include "planner/event_check.h"

namespace tp {
namespace {

using namespace json_items;  // NOLINT(google-build-using-namespace): the field readers

std::optional<BodyError> ParseEvent(const json& item, const Rules& rules, EngagementEvent& out) {
  if (auto e = OnlyFields(item, "event",
                          {"event_id", "buyer_id", "type", "at", "touchpoint_id", "attributes"})) {
    return e;
  }
  if (auto e = Text(item, "event_id", out.event_id)) return e;
  if (auto e = Check("event_id", IdFieldProblem("event_id", out.event_id))) return e;
  if (auto e = Text(item, "buyer_id", out.buyer_id)) return e;
  if (auto e = Check("buyer_id", IdFieldProblem("buyer_id", out.buyer_id))) return e;
  if (auto e = Text(item, "type", out.type)) return e;
  if (auto e = Check("type", EventTypeProblem(out.type, rules))) return e;
  if (auto e = Time(item, "at", out.at)) return e;
  if (auto e = Check("at", EventAtProblem(out.at))) return e;
  out.touchpoint_id.clear();
  if (const json* t = Find(item, "touchpoint_id"); t != nullptr && !t->is_null()) {
    if (auto e = Text(item, "touchpoint_id", out.touchpoint_id)) return e;
    if (auto e = Check("touchpoint_id", IdFieldProblem("touchpoint_id", out.touchpoint_id))) {
      return e;
    }
  }
  return Attributes(item, out.attributes);
}

// An event twice in one request: fine when both say the same, an error at
// the second otherwise.
std::optional<BodyError> RepeatedEvent(const std::vector<EngagementEvent>& items) {
  std::unordered_map<std::string_view, std::size_t> first;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto [it, inserted] = first.emplace(items[i].event_id, i);
    if (inserted) continue;
    const std::string_view field = items[it->second].FirstDifference(items[i]);
    if (field.empty()) continue;
    return BodyError{"event_id '" + Excerpt(items[i].event_id) + "' is also item " +
                         std::to_string(it->second) + " of this request, with another " +
                         std::string(field),
                     i, std::string(field)};
  }
  return std::nullopt;
}

}  // namespace

ParsedEvents ParseEvents(std::string_view body, const Rules& rules, std::size_t max_items) {
  ParsedEvents result;
  result.error = ParseItems<EngagementEvent>(
      body, "event", "events", max_items,
      [&](const json& item, EngagementEvent& out) { return ParseEvent(item, rules, out); },
      result.items);
  if (!result.error) result.error = RepeatedEvent(result.items);
  if (result.error) result.items.clear();
  return result;
}

}  // namespace tp
