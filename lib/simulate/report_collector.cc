#include "simulate/report_collector.h"

#include <algorithm>

#include "planner/planner.h"

namespace tp {
namespace {

Instant InstantAt(std::int64_t ms) { return Instant{Millis(ms)}; }
std::int64_t MsOf(Instant t) { return t.time_since_epoch().count(); }

}  // namespace

ReportCollector::ReportCollector(const Rules& rules, std::initializer_list<ReportBy> by,
                                 const MemoryStore& store)
    : rules_(rules), store_(store) {
  for (ReportBy b : by) {
    (b == ReportBy::kCadence || b == ReportBy::kTopic ? fires_wanted_ : purchases_wanted_) = true;
  }
}

void ReportCollector::OnPurchase(const Purchase& purchase, int tier, const Zone* zone) {
  const int product = rules_.ProductIndex(purchase.product);
  const auto buyer = store_.BuyerIndexOf(purchase.buyer_id);
  if (product < 0 || tier < 0 || !buyer) return;
  const Instant runout = Runout(purchase.purchased_at, purchase.quantity,
                                rules_.products[static_cast<std::size_t>(product)], zone);
  purchases_.push_back({*buyer, static_cast<std::uint16_t>(tier),
                        static_cast<std::uint16_t>(product), static_cast<float>(purchase.amount),
                        MsOf(purchase.purchased_at), MsOf(runout), zone});
}

void ReportCollector::OnEvent(const EngagementEvent& event, std::uint64_t credited) {
  const int type = rules_.EngagementTypeIndex(event.type);
  const auto buyer = store_.BuyerIndexOf(event.buyer_id);
  if (type < 0 || !buyer) return;
  const bool trust = rules_.engagement_types[static_cast<std::size_t>(type)].trust;
  // By tier or product only trust signals matter; by cadence or topic only
  // credited events.
  if (!(purchases_wanted_ && trust) && !(fires_wanted_ && credited != 0)) return;
  events_.push_back({*buyer, trust, MsOf(event.at), credited});
}

OutcomeReport ReportCollector::Report(const ReportOptions& options) const {
  return Collect(options, false);
}

OutcomeReport ReportCollector::ReportBySteps(ReportOptions options) const {
  options.by = ReportBy::kTopic;
  return Collect(options, true);
}

OutcomeReport ReportCollector::Collect(const ReportOptions& options, bool by_step) const {
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
  const auto p_order = order(purchases_), e_order = order(events_);
  std::size_t p = 0, e = 0;
  BuyerHistory buyer;
  std::vector<MemoryStore::Fired> fired;
  for (std::uint32_t b = 0; b < store_.buyer_count(); ++b) {
    buyer.purchases.clear();
    buyer.fires.clear();
    buyer.events.clear();
    for (; p < p_order.size() && purchases_[p_order[p]].buyer == b; ++p) {
      const PurchaseRec& r = purchases_[p_order[p]];
      buyer.purchases.push_back({InstantAt(r.at_ms), InstantAt(r.runout_ms), r.amount,
                                 rules_.tiers[r.tier].name, rules_.products[r.product].name,
                                 r.zone});
    }
    // In time order, ties in planning order (as the store's row ids).
    if (options.by == ReportBy::kCadence || options.by == ReportBy::kTopic) {
      store_.FiredOf(b, fired);
    }
    std::stable_sort(fired.begin(), fired.end(),
                     [](const MemoryStore::Fired& x, const MemoryStore::Fired& y) {
                       return x.fire_at < y.fire_at;
                     });
    for (const MemoryStore::Fired& r : fired) {
      const Cadence& c = rules_.cadences[r.cadence];
      const std::string key = r.step >= c.steps.size() ? ""
                              : by_step                ? c.name + "/" + c.steps[r.step].id
                                                       : c.steps[r.step].topic;
      buyer.fires.push_back({r.fire_at, r.handle, c.name, key, r.zone});
    }
    for (; e < e_order.size() && events_[e_order[e]].buyer == b; ++e) {
      const EventRec& r = events_[e_order[e]];
      buyer.events.push_back({InstantAt(r.at_ms), r.trust, r.credited});
    }
    report.Add(buyer);
  }
  return report;
}

}  // namespace tp
