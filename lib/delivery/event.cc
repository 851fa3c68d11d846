#include "delivery/event.h"

#include "core/json.h"

namespace tp {

std::string TouchpointEventJson(const TouchpointView& t, Instant fire_at,
                                std::string_view attributes, Instant timestamp) {
  std::string out;
  out.reserve(384 + attributes.size());
  out += R"({"type":"touchpoint.due","timestamp":")";
  AppendRfc3339(out, timestamp, UtcZone());
  out += R"(","data":{"id":)";
  AppendJsonString(out, t.id);
  out += R"(,"buyer_id":)";
  AppendJsonString(out, t.buyer_id);
  out += R"(,"order_id":)";
  AppendJsonString(out, t.order_id);
  out += R"(,"cadence":)";
  AppendJsonString(out, t.cadence);
  out += R"(,"topic":)";
  AppendJsonString(out, t.topic);
  out += R"(,"tier":)";
  AppendJsonString(out, t.tier);
  out += R"(,"product":)";
  AppendJsonString(out, t.product);
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
