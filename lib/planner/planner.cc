#include "planner/planner.h"

#include <algorithm>

#include "core/ids.h"
#include "planner/purchase_check.h"
#include "planner/tier.h"
#include "planner/window.h"

namespace tp {
namespace {

bool Contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The first of `events` at or after `from` of a type `cadence` stops on.
const BuyerEvent* FirstStop(const Cadence& cadence, std::span<const BuyerEvent> events,
                            Instant from) {
  const BuyerEvent* first = nullptr;
  for (const BuyerEvent& e : events) {
    if (e.at < from || !Contains(cadence.stop_on, e.type)) continue;
    if (first == nullptr || e.at < first->at) first = &e;
  }
  return first;
}

}  // namespace

Instant Runout(Instant purchased_at, std::int64_t quantity, const Product& product,
               const Zone* zone) {
  // Ingest refuses quantity x supply_days past kMaxRunoutDays, but a reload
  // may raise supply_days under purchases already taken: a re-plan then
  // plans their runout at the bound, never past it (dates stay in range).
  return AddCalendarDays(
      purchased_at,
      std::min(static_cast<std::int64_t>(product.supply_days) * quantity, kMaxRunoutDays), zone);
}

std::vector<std::string> StopTypes(const Rules& rules) {
  std::vector<int> types;
  for (const Cadence& c : rules.cadences) {
    for (int t : c.stop_on) {
      if (!Contains(types, t)) types.push_back(t);
    }
  }
  std::vector<std::string> names;
  names.reserve(types.size());
  for (int t : types) names.push_back(rules.engagement_types[static_cast<std::size_t>(t)].name);
  return names;
}

bool AnyWhen(const Rules& rules) {
  return std::any_of(rules.cadences.begin(), rules.cadences.end(), [](const Cadence& c) {
    return std::any_of(c.steps.begin(), c.steps.end(),
                       [](const Step& s) { return s.when != When::kAlways; });
  });
}

std::string StoppedReason(std::string_view type, Instant at) {
  return "buyer " + std::string(type) + " at " + FormatRfc3339(at, UtcZone());
}

Plan PlanPurchase(const Rules& rules, std::span<const PastPurchase> history,
                  const Purchase& purchase, int product, const Zone* zone,
                  std::span<const BuyerEvent> events) {
  const auto place =
      std::upper_bound(history.begin(), history.end(), purchase.purchased_at,
                       [](Instant t, const PastPurchase& p) { return t < p.purchased_at; });
  const PastPurchase* previous = place == history.begin() ? nullptr : &*(place - 1);
  const PastPurchase* newer = place == history.end() ? nullptr : &*place;

  Plan plan;
  plan.tier = TierOf(rules, history.first(static_cast<std::size_t>(place - history.begin())),
                     purchase, product, zone);
  const Product& bought = rules.products[static_cast<std::size_t>(product)];
  const Instant runout = Runout(purchase.purchased_at, purchase.quantity, bought, zone);

  for (std::size_t c = 0; c < rules.cadences.size(); ++c) {
    const Cadence& cadence = rules.cadences[c];
    bool triggered = false;
    if (cadence.trigger == Trigger::kPurchase) {
      triggered = Contains(cadence.products, product);
    } else {
      triggered = previous != nullptr && previous->product != product &&
                  Contains(cadence.from, previous->product) && Contains(cadence.to, product);
      plan.switched = plan.switched || triggered;
    }
    if (!triggered) continue;
    const BuyerEvent* stop =
        cadence.stop_on.empty() ? nullptr : FirstStop(cadence, events, purchase.purchased_at);
    for (std::size_t s = 0; s < cadence.steps.size(); ++s) {
      const Step& step = cadence.steps[s];
      if (!step.tiers.empty() && !Contains(step.tiers, plan.tier)) continue;
      PlannedTouchpoint tp;
      tp.id = TouchpointId(purchase.order_id, cadence.name, step.id);
      tp.cadence = static_cast<int>(c);
      tp.step = static_cast<int>(s);
      const Instant anchor = step.anchor == Anchor::kRunout ? runout : purchase.purchased_at;
      tp.due_at = AddDuration(anchor, step.after, zone);
      tp.next_at = NextOpening(tp.due_at, rules.send_window, zone);
      tp.cancel_on_repurchase = cadence.cancel_on_repurchase;
      if (tp.due_at < purchase.purchased_at) {
        tp.state = TouchpointState::kSkipped;
        tp.reason = "due before the purchase was made";
      } else if (newer != nullptr && cadence.cancel_on_repurchase &&
                 tp.next_at >= newer->purchased_at) {
        tp.state = TouchpointState::kCancelled;
        tp.reason = "repurchased: a newer purchase was already recorded";
      } else if (stop != nullptr) {
        tp.state = TouchpointState::kCancelled;
        tp.reason = StoppedReason(rules.engagement_types[static_cast<std::size_t>(stop->type)].name,
                                  stop->at);
      }
      plan.touchpoints.push_back(std::move(tp));
    }
  }
  return plan;
}

}  // namespace tp
