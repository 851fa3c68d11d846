#include "store/fire_routing.h"

namespace tp {

void FireRouting::Set(const Rules& rules) {
  routing_of_.clear();
  auto routing = [&](const std::vector<int>& sinks) {
    Routing r;
    r.sinks = rules.SinkList(sinks);
    for (int i : sinks) {
      const Sink& s = rules.sinks[static_cast<std::size_t>(i)];
      r.routes.push_back({s.name, s.type});
      if (!r.fired_reason.empty()) r.fired_reason += "; ";
      r.fired_reason += s.type == Sink::Type::kQueue
                            ? "queued on " + s.name
                            : "handed to " + std::string(SinkTypeName(s.type)) + " " + s.name;
    }
    if (r.routes.empty()) r.fired_reason = no_routing_.fired_reason;
    return r;
  };
  for (const Cadence& c : rules.cadences) {
    CadenceRouting& cadence = routing_of_[c.name];
    cadence.routing = routing(rules.SinksOf(c, Step{}));
    for (const Step& step : c.steps) {
      if (!step.sinks.empty()) cadence.steps.emplace_back(step.id, routing(step.sinks));
    }
  }
}

const FireRouting::Routing& FireRouting::Of(std::string_view cadence, std::string_view step) const {
  auto it = routing_of_.find(cadence);
  if (it == routing_of_.end()) return no_routing_;
  for (const auto& [id, routing] : it->second.steps) {
    if (id == step) return routing;
  }
  return it->second.routing;
}

}  // namespace tp
