#include <algorithm>
#include <set>

#include "config/loader_sections.h"

namespace tp::config {

void Loader::LoadCadences(const YAML::Node& node) {
  if (!node.IsSequence() || node.size() == 0) {
    Error(node, "cadences must be a non-empty list");
    return;
  }
  std::set<std::string> seen;
  for (const auto& item : node) {
    auto fields = Map(item, "a cadence",
                      {"name", "trigger", "products", "from", "to", "cancel_on_repurchase", "sinks",
                       "stop_on", "steps"});
    if (!fields) continue;
    Cadence cadence;
    if (auto v = Field(*fields, item, "name", "a cadence", true); v.IsDefined()) {
      if (auto name = Name(v, "cadence name")) {
        if (!seen.insert(*name).second) Error(v, "duplicate cadence " + Quote(*name));
        cadence.name = *name;
      }
    }
    const std::string what = "cadence " + Quote(cadence.name);
    if (auto v = Field(*fields, item, "trigger", what, false); v.IsDefined()) {
      if (v.IsScalar() && v.Scalar() == "purchase") {
        cadence.trigger = Trigger::kPurchase;
      } else if (v.IsScalar() && v.Scalar() == "switch") {
        cadence.trigger = Trigger::kSwitch;
      } else {
        Error(v, what + " trigger must be 'purchase' or 'switch'");
      }
    }
    auto products = Field(*fields, item, "products", what, false);
    auto from = Field(*fields, item, "from", what, false);
    auto to = Field(*fields, item, "to", what, false);
    if (cadence.trigger == Trigger::kPurchase) {
      if (from.IsDefined()) Error(from, "'from' applies only to trigger: switch");
      if (to.IsDefined()) Error(to, "'to' applies only to trigger: switch");
      if (products.IsDefined()) {
        cadence.products = References(products, what + " products", rules_.products, "product");
      } else {
        for (std::size_t i = 0; i < rules_.products.size(); ++i) {
          cadence.products.push_back(static_cast<int>(i));
        }
      }
    } else {
      if (products.IsDefined()) {
        Error(products, "'products' applies only to trigger: purchase (a switch uses from/to)");
      }
      if (!from.IsDefined())
        Error(item, "missing required key 'from' in " + what + " (trigger: switch)");
      if (!to.IsDefined())
        Error(item, "missing required key 'to' in " + what + " (trigger: switch)");
      if (from.IsDefined())
        cadence.from = References(from, what + " from", rules_.products, "product");
      if (to.IsDefined()) cadence.to = References(to, what + " to", rules_.products, "product");
    }
    if (auto v = Field(*fields, item, "cancel_on_repurchase", what, false); v.IsDefined()) {
      cadence.cancel_on_repurchase = Bool(v, what + " cancel_on_repurchase").value_or(false);
    }
    if (auto v = Field(*fields, item, "sinks", what, false); v.IsDefined()) {
      cadence.sinks = References(v, what + " sinks", rules_.sinks, "sink");
    } else {
      for (std::size_t i = 0; i < rules_.sinks.size(); ++i)
        cadence.sinks.push_back(static_cast<int>(i));
    }
    if (auto v = Field(*fields, item, "stop_on", what, false); v.IsDefined()) {
      cadence.stop_on =
          References(v, what + " stop_on", rules_.engagement_types, "engagement type");
    }
    if (auto v = Field(*fields, item, "steps", what, true); v.IsDefined()) {
      LoadSteps(v, what, cadence);
    }
    rules_.cadences.push_back(std::move(cadence));
  }
}

void Loader::LoadSteps(const YAML::Node& node, const std::string& what, Cadence& cadence) {
  if (!node.IsSequence() || node.size() == 0) {
    Error(node, what + " steps must be a non-empty list");
    return;
  }
  std::map<std::string, int> ids;
  for (const auto& item : node) {
    const std::string step_what = "a step of " + what;
    auto fields =
        Map(item, step_what, {"id", "after", "anchor", "topic", "tiers", "when", "sinks"});
    if (!fields) continue;
    Step step;
    // Where a duplicate id is reported: the id, else the topic it defaults
    // to. (A Mark, not a Node: assigning to a YAML::Node rebinds the node
    // it was copied from.)
    YAML::Mark id_mark = item.Mark();
    if (auto v = Field(*fields, item, "topic", step_what, true); v.IsDefined()) {
      step.topic = String(v, "topic").value_or("");
      id_mark = v.Mark();
    }
    if (auto v = Field(*fields, item, "id", step_what, false); v.IsDefined()) {
      step.id = Name(v, "step id").value_or("");
      id_mark = v.Mark();
    } else {
      step.id = step.topic;
    }
    if (!step.id.empty() && !ids.emplace(step.id, id_mark.line).second) {
      AddError(id_mark, "step id " + Quote(step.id) + " is used twice in " + what +
                            " (ids default to the topic; give one step an 'id:')");
    }
    if (auto v = Field(*fields, item, "anchor", step_what, false); v.IsDefined()) {
      if (v.IsScalar() && v.Scalar() == "purchase") {
        step.anchor = Anchor::kPurchase;
      } else if (v.IsScalar() && v.Scalar() == "runout") {
        step.anchor = Anchor::kRunout;
      } else {
        Error(v, "anchor must be 'purchase' or 'runout'");
      }
    }
    if (auto v = Field(*fields, item, "after", step_what, true); v.IsDefined()) {
      if (auto d = DurationValue(v, "after")) {
        if (d->IsNegative() && step.anchor != Anchor::kRunout) {
          Error(v, "a negative 'after' is allowed only with anchor: runout");
        } else {
          step.after = *d;
        }
      }
    }
    if (auto v = Field(*fields, item, "tiers", step_what, false); v.IsDefined()) {
      step.tiers = References(v, "step tiers", rules_.tiers, "tier");
    }
    if (auto v = Field(*fields, item, "when", step_what, false); v.IsDefined()) {
      if (v.IsScalar() && v.Scalar() == "engaged") {
        step.when = When::kEngaged;
      } else if (v.IsScalar() && v.Scalar() == "not_engaged") {
        step.when = When::kNotEngaged;
      } else {
        Error(v, "when must be 'engaged' or 'not_engaged'");
      }
      const auto& types = rules_.engagement_types;
      if (step.when != When::kAlways &&
          std::none_of(types.begin(), types.end(), [](const auto& t) { return t.trust; })) {
        Error(v, "'when' needs a trust signal to decide on, and engagement trust lists none");
      }
    }
    if (auto v = Field(*fields, item, "sinks", step_what, false); v.IsDefined()) {
      // Replaces the cadence's sinks for this step (a channel per step).
      step.sinks = References(v, "the sinks of step " + Quote(step.id) + " of " + what,
                              rules_.sinks, "sink");
    }
    cadence.steps.push_back(std::move(step));
  }
}

}  // namespace tp::config
