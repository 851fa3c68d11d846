#include "simulate/report_collector.h"

#include <algorithm>

#include "planner/planner.h"

namespace tp {
namespace {

Instant FromMs(std::int64_t ms) { return Instant{Millis(ms)}; }
std::int64_t Ms(Instant t) { return t.time_since_epoch().count(); }

}  // namespace

ReportCollector::ReportCollector(const Rules& rules, ReportBy by)
    : rules_(rules), fires_wanted_(by == ReportBy::kCadence || by == ReportBy::kTopic) {}

std::uint32_t ReportCollector::Buyer(std::string_view id) {
  auto [it, inserted] =
      buyers_.try_emplace(std::string(id), static_cast<std::uint32_t>(buyers_.size()));
  return it->second;
}

void ReportCollector::OnPurchase(const Purchase& purchase, int tier, const Zone* zone) {
  const int product = rules_.ProductIndex(purchase.product);
  if (product < 0 || tier < 0) return;
  const Instant runout = Runout(purchase.purchased_at, purchase.quantity,
                                rules_.products[static_cast<std::size_t>(product)], zone);
  purchases_.push_back({Buyer(purchase.buyer_id), static_cast<std::uint16_t>(tier),
                        static_cast<std::uint16_t>(product), static_cast<float>(purchase.amount),
                        Ms(purchase.purchased_at), Ms(runout), zone});
}

void ReportCollector::OnFired(const TouchpointView& t, std::uint64_t key) {
  if (!fires_wanted_ || !t.fire_at) return;
  const int cadence = rules_.CadenceIndex(t.cadence);
  if (cadence < 0) return;
  const auto& steps = rules_.cadences[static_cast<std::size_t>(cadence)].steps;
  const auto step =
      std::find_if(steps.begin(), steps.end(), [&](const Step& s) { return s.id == t.step; });
  fires_.push_back({Buyer(t.buyer_id), static_cast<std::uint16_t>(cadence),
                    static_cast<std::uint16_t>(step - steps.begin()), Ms(*t.fire_at), key, t.zone});
}

void ReportCollector::OnEvent(const EngagementEvent& event, std::uint64_t credited_key) {
  const int type = rules_.EngagementTypeIndex(event.type);
  if (type < 0) return;
  const bool trust = rules_.engagement_types[static_cast<std::size_t>(type)].trust;
  // By tier or product only trust signals matter; by cadence or topic only
  // credited events.
  if (fires_wanted_ ? credited_key == 0 : !trust) return;
  events_.push_back({Buyer(event.buyer_id), trust, Ms(event.at), credited_key});
}

OutcomeReport ReportCollector::Report(const ReportOptions& options) const {
  OutcomeReport report(options);
  // Each list by buyer, then time (stable: ties stay in arrival order).
  auto order = [](const auto& list) {
    std::vector<std::uint32_t> index(list.size());
    for (std::uint32_t i = 0; i < index.size(); ++i) index[i] = i;
    std::stable_sort(index.begin(), index.end(), [&](std::uint32_t a, std::uint32_t b) {
      return std::tie(list[a].buyer, list[a].at_ms) < std::tie(list[b].buyer, list[b].at_ms);
    });
    return index;
  };
  const auto p_order = order(purchases_), f_order = order(fires_), e_order = order(events_);
  std::size_t p = 0, f = 0, e = 0;
  BuyerHistory buyer;
  for (std::uint32_t b = 0; b < buyers_.size(); ++b) {
    buyer.purchases.clear();
    buyer.fires.clear();
    buyer.events.clear();
    for (; p < p_order.size() && purchases_[p_order[p]].buyer == b; ++p) {
      const PurchaseRec& r = purchases_[p_order[p]];
      buyer.purchases.push_back({FromMs(r.at_ms), FromMs(r.runout_ms), r.amount,
                                 rules_.tiers[r.tier].name, rules_.products[r.product].name,
                                 r.zone});
    }
    for (; f < f_order.size() && fires_[f_order[f]].buyer == b; ++f) {
      const FireRec& r = fires_[f_order[f]];
      const Cadence& c = rules_.cadences[r.cadence];
      buyer.fires.push_back({FromMs(r.at_ms), r.key, c.name,
                             r.step < c.steps.size() ? c.steps[r.step].topic : "", r.zone});
    }
    for (; e < e_order.size() && events_[e_order[e]].buyer == b; ++e) {
      const EventRec& r = events_[e_order[e]];
      buyer.events.push_back({FromMs(r.at_ms), r.trust, r.credited});
    }
    report.Add(buyer);
  }
  return report;
}

}  // namespace tp
