#include "scheduler/event.h"

#include <utility>

#include "core/json.h"

namespace tp {

std::string TouchpointEventJson(const TouchpointView& t, Instant fire_at,
                                std::string_view attributes, Instant timestamp) {
  std::string out;
  out.reserve(384 + attributes.size());
  out += R"({"type":"touchpoint.due","timestamp":")";
  AppendRfc3339(out, timestamp, UtcZone());
  out += R"(","data":{)";
  const std::pair<const char*, std::string_view> fields[] = {
      {"id", t.id},           {"buyer_id", t.buyer_id}, {"order_id", t.order_id},
      {"cadence", t.cadence}, {"topic", t.topic},       {"tier", t.tier},
      {"product", t.product}};
  for (const auto& [key, value] : fields) {
    if (key != fields[0].first) out += ',';
    out += '"';
    out += key;
    out += "\":";
    AppendJsonString(out, value);
  }
  out += R"(,"due_at":")";
  AppendRfc3339(out, t.due_at, t.zone);
  out += R"(","fire_at":")";
  AppendRfc3339(out, fire_at, t.zone);
  out += R"(","attributes":)";
  out += attributes.empty() ? std::string_view("{}") : attributes;
  out += "}}";
  return out;
}

}  // namespace tp
