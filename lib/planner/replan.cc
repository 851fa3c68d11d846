#include "planner/replan.h"

#include <algorithm>
#include <unordered_map>

namespace tp {
namespace {

constexpr std::string_view kRulesChanged = "rules changed";

bool SameSteps(const Step& a, const Step& b) {
  return a.id == b.id && a.topic == b.topic && a.after == b.after && a.anchor == b.anchor &&
         a.tiers == b.tiers;
}

bool SameCadence(const Cadence& a, const Cadence& b) {
  return a.name == b.name && a.trigger == b.trigger && a.products == b.products &&
         a.from == b.from && a.to == b.to && a.cancel_on_repurchase == b.cancel_on_repurchase &&
         std::equal(a.steps.begin(), a.steps.end(), b.steps.begin(), b.steps.end(), SameSteps);
}

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
                              std::span<const ExistingTouchpoint> existing, Instant now) {
  PurchaseReplan out;
  if (product < 0 || zone == nullptr) {
    const std::string reason = std::string(kRulesChanged) + ": product '" + purchase.product +
                               "' is no longer in the rules";
    for (const ExistingTouchpoint& e : existing) {
      if (e.state == TouchpointState::kPending) out.changes.push_back(Cancel(e, reason));
    }
    return out;
  }
  Plan plan = PlanPurchase(rules, others, purchase, product, zone);
  out.tier = plan.tier;

  std::unordered_map<std::string_view, const ExistingTouchpoint*> by_id;
  for (const ExistingTouchpoint& e : existing) by_id.emplace(e.id, &e);
  const Instant missed_before = now - rules.misfire_grace.Exact();

  for (PlannedTouchpoint& t : plan.touchpoints) {
    const std::string& cadence = rules.cadences[t.cadence].name;
    auto it = by_id.find(t.id);
    if (it == by_id.end()) {
      if (t.state == TouchpointState::kPending && t.next_at >= missed_before) {
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

bool SamePlanning(const Rules& a, const Rules& b) {
  auto same_product = [](const Product& x, const Product& y) {
    return x.name == y.name && x.supply_days == y.supply_days;
  };
  auto same_tier = [](const Tier& x, const Tier& y) {
    return x.name == y.name && x.min_purchases == y.min_purchases && x.min_spend == y.min_spend;
  };
  return a.timezone_name == b.timezone_name && a.send_window.from == b.send_window.from &&
         a.send_window.to == b.send_window.to &&
         std::equal(a.products.begin(), a.products.end(), b.products.begin(), b.products.end(),
                    same_product) &&
         std::equal(a.tiers.begin(), a.tiers.end(), b.tiers.begin(), b.tiers.end(), same_tier) &&
         std::equal(a.cadences.begin(), a.cadences.end(), b.cadences.begin(), b.cadences.end(),
                    SameCadence);
}

}  // namespace tp
