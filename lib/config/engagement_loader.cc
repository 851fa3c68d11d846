// `engagement:` (the event types POST /v1/events takes, and the trust
// signals among them) and `outcomes:` (the windows of docs/outcomes.md).
#include <algorithm>
#include <set>

#include "config/loader_sections.h"

namespace tp::config {

void Loader::LoadEngagement(const YAML::Node& node) {
  auto fields = Map(node, "engagement", {"types", "trust"});
  if (!fields) return;
  if (auto v = Field(*fields, node, "types", "engagement", false); v.IsDefined()) {
    if (!v.IsSequence() || v.size() == 0) {
      Error(v, "engagement types must be a non-empty list of names");
    } else {
      std::vector<EngagementType> types;
      std::set<std::string> seen;
      for (const auto& item : v) {
        auto name = Name(item, "engagement type");
        if (!name) continue;
        if (!seen.insert(*name).second) {
          Error(item, "engagement type " + Quote(*name) + " is listed twice");
          continue;
        }
        types.push_back({*name, false});
      }
      rules_.engagement_types = std::move(types);
    }
  }
  if (auto v = Field(*fields, node, "trust", "engagement", false); v.IsDefined()) {
    for (EngagementType& t : rules_.engagement_types) t.trust = false;
    // An empty list: no event builds trust (every buyer is not engaged).
    if (v.IsSequence() && v.size() == 0) return;
    for (int i : References(v, "engagement trust", rules_.engagement_types, "engagement type")) {
      rules_.engagement_types[static_cast<std::size_t>(i)].trust = true;
    }
  } else {
    // The default trust signals, where the types have them.
    for (EngagementType& t : rules_.engagement_types) {
      t.trust = t.name == "replied" || t.name == "clicked";
    }
  }
}

void Loader::LoadOutcomes(const YAML::Node& node) {
  auto fields = Map(node, "outcomes", {"trust_within", "repurchase_grace", "attribution_window"});
  if (!fields) return;
  auto window = [&](const char* key, Duration& out, bool zero_ok) {
    auto v = Field(*fields, node, key, "outcomes", false);
    if (!v.IsDefined()) return;
    auto d = DurationValue(v, std::string("outcomes ") + key);
    if (!d) return;
    if (d->IsNegative() || (!zero_ok && d->count == 0)) {
      Error(v,
            std::string("outcomes ") + key + " must be " + (zero_ok ? "0 or more" : "more than 0"));
      return;
    }
    out = *d;
  };
  window("trust_within", rules_.outcomes.trust_within, false);
  window("repurchase_grace", rules_.outcomes.repurchase_grace, true);
  window("attribution_window", rules_.outcomes.attribution_window, false);
}

}  // namespace tp::config
