#include "planner/replan.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/ids.h"

namespace tp {
namespace {

constexpr std::string_view kRulesChanged = "rules changed";

ReplanChange Cancel(const ExistingTouchpoint& e, std::string reason) {
  ReplanChange c;
  c.kind = ReplanChange::Kind::kCancel;
  c.touchpoint.id = e.id;
  c.cadence = e.cadence;
  c.handle = e.handle;
  c.reason = std::move(reason);
  return c;
}

// kAdd has no existing touchpoint; kUpdate passes the one it moves.
ReplanChange Planned(ReplanChange::Kind kind, PlannedTouchpoint t, const std::string& cadence,
                     const ExistingTouchpoint* existing = nullptr) {
  ReplanChange c;
  c.kind = kind;
  c.touchpoint = std::move(t);
  c.cadence = cadence;
  if (existing != nullptr) {
    c.previous_due_at = existing->due_at;
    c.handle = existing->handle;
  }
  return c;
}

}  // namespace

PurchaseReplan ReplanPurchase(const Rules& rules, std::span<const PastPurchase> others,
                              const Purchase& purchase, int product, const Zone* zone,
                              std::span<const ExistingTouchpoint> existing, Instant now,
                              std::span<const BuyerEvent> events) {
  PurchaseReplan out;
  if (product < 0 || zone == nullptr) {
    const std::string reason = std::string(kRulesChanged) + ": product '" + purchase.product +
                               "' is no longer in the rules";
    for (const ExistingTouchpoint& e : existing) {
      if (e.state == TouchpointState::kPending) out.changes.push_back(Cancel(e, reason));
    }
    return out;
  }
  Plan plan = PlanPurchase(rules, others, purchase, product, zone, events);
  out.tier = plan.tier;

  std::unordered_map<std::string_view, const ExistingTouchpoint*> by_id;
  for (const ExistingTouchpoint& e : existing) by_id.emplace(e.id, &e);
  const Instant missed_before = now - rules.misfire_grace.Exact();
  // Fired touchpoints (dead ones too: a sink gave up, another may have
  // delivered) the new plan no longer has: a step renamed (its id, the
  // topic serving as its id, or its cadence), or another tier's step at
  // the same time. A new step due when one of them was is that message
  // under another name: the buyer had it, so it is not added. Each stands
  // for one new step, of its own cadence if there is one.
  std::unordered_set<std::string_view> planned;
  for (const PlannedTouchpoint& t : plan.touchpoints) planned.emplace(t.id);
  std::vector<const ExistingTouchpoint*> gone;
  for (const ExistingTouchpoint& e : existing) {
    if ((e.state == TouchpointState::kFired || e.state == TouchpointState::kDead) &&
        !planned.contains(e.id))
      gone.push_back(&e);
  }
  const auto sent_as = [&](const PlannedTouchpoint& t, const std::string& cadence) {
    auto same = std::find_if(gone.begin(), gone.end(), [&](const ExistingTouchpoint* e) {
      return e->due_at == t.due_at && e->cadence == cadence;
    });
    if (same == gone.end()) {
      same = std::find_if(gone.begin(), gone.end(),
                          [&](const ExistingTouchpoint* e) { return e->due_at == t.due_at; });
    }
    if (same == gone.end()) return false;
    gone.erase(same);
    return true;
  };

  for (PlannedTouchpoint& t : plan.touchpoints) {
    const std::string& cadence = rules.cadences[t.cadence].name;
    auto it = by_id.find(t.id);
    if (it == by_id.end()) {
      if (t.state == TouchpointState::kPending && t.next_at >= missed_before &&
          !sent_as(t, cadence)) {
        out.changes.push_back(Planned(ReplanChange::Kind::kAdd, std::move(t), cadence));
      }
      continue;
    }
    const ExistingTouchpoint& e = *it->second;
    by_id.erase(it);
    if (e.state != TouchpointState::kPending) continue;  // final: never again
    if (t.state != TouchpointState::kPending) {
      out.changes.push_back(Cancel(e, std::string(kRulesChanged) + ": " + t.reason));
      continue;
    }
    if (t.due_at == e.due_at) {
      t.next_at = e.next_at;
    } else if (t.next_at < missed_before) {
      t.next_at = now;
    }
    out.changes.push_back(Planned(ReplanChange::Kind::kUpdate, std::move(t), cadence, &e));
  }
  // What the new plan no longer has.
  for (const ExistingTouchpoint& e : existing) {
    if (e.state != TouchpointState::kPending || !by_id.contains(e.id)) continue;
    out.changes.push_back(Cancel(e, std::string(kRulesChanged)));
  }
  return out;
}

std::string PlanningFingerprint(const Rules& rules) {
  // One line per thing planning reads, names for references, in file order.
  std::string text = "zone " + rules.timezone_name + "\nwindow " +
                     FormatTimeOfDay(rules.send_window.from) + " " +
                     FormatTimeOfDay(rules.send_window.to) + "\n";
  auto names = [](const auto& all, const std::vector<int>& indices) {
    std::string out;
    for (int i : indices) out += " " + all[static_cast<std::size_t>(i)].name;
    return out;
  };
  for (const Product& p : rules.products) {
    text += "product " + p.name + " " + std::to_string(p.supply_days) + "\n";
  }
  for (const Tier& t : rules.tiers) {
    char spend[40] = "-";
    if (t.min_spend) std::snprintf(spend, sizeof spend, "%.17g", *t.min_spend);
    text += "tier " + t.name + " " +
            (t.min_purchases ? std::to_string(*t.min_purchases) : std::string("-")) + " " + spend;
    // Later conditions only when set: a config without them keeps the
    // fingerprint it had before they existed.
    // Sets, so sorted: reordering one is no change.
    if (t.within) text += " within " + t.within->ToString();
    if (!t.bought.empty()) {
      std::vector<std::string> bought;
      for (int p : t.bought) bought.push_back(rules.products[static_cast<std::size_t>(p)].name);
      std::sort(bought.begin(), bought.end());
      text += " bought";
      for (const std::string& b : bought) text += " " + b;
    }
    std::vector<AttributeCondition> attributes = t.attributes;
    std::sort(attributes.begin(), attributes.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
    for (AttributeCondition& a : attributes) {
      std::sort(a.values.begin(), a.values.end());
      text += " attribute " + std::to_string(a.key.size()) + ":" + a.key;
      for (const std::string& v : a.values) text += " " + std::to_string(v.size()) + ":" + v;
    }
    text += "\n";
  }
  for (const Cadence& c : rules.cadences) {
    text += "cadence " + c.name + " " + (c.trigger == Trigger::kSwitch ? "switch" : "purchase") +
            " products" + names(rules.products, c.products) + " from" +
            names(rules.products, c.from) + " to" + names(rules.products, c.to) +
            (c.cancel_on_repurchase ? " cancel_on_repurchase" : "") + "\n";
    for (const Step& s : c.steps) {
      text += "step " + s.id + " " + s.topic + " " + s.after.ToString() + " " +
              (s.anchor == Anchor::kRunout ? "runout" : "purchase") + " tiers" +
              names(rules.tiers, s.tiers) + "\n";
    }
  }
  return Sha256Hex(text);
}

bool SamePlanning(const Rules& a, const Rules& b) {
  return PlanningFingerprint(a) == PlanningFingerprint(b);
}

}  // namespace tp
