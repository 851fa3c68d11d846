#include "outcomes/outcomes.h"

#include <algorithm>
#include <unordered_map>

namespace tp {
namespace {

constexpr double kMsPerDay = 86'400'000.0;

// t - d: calendar days back in `zone`, exact for s/m/h.
Instant Before(Instant t, Duration d, const Zone* zone) {
  d.count = -d.count;
  return AddDuration(t, d, zone);
}

}  // namespace

std::optional<ReportBy> ParseReportBy(std::string_view name) {
  if (name == "tier") return ReportBy::kTier;
  if (name == "product") return ReportBy::kProduct;
  if (name == "cadence") return ReportBy::kCadence;
  if (name == "topic") return ReportBy::kTopic;
  return std::nullopt;
}

std::string_view ReportByName(ReportBy by) {
  switch (by) {
    case ReportBy::kTier:
      return "tier";
    case ReportBy::kProduct:
      return "product";
    case ReportBy::kCadence:
      return "cadence";
    case ReportBy::kTopic:
      return "topic";
  }
  return "tier";
}

std::optional<double> PurchaseOutcomes::TrustRate() const {
  const std::int64_t closed = purchases - trust_open;
  if (closed <= 0) return std::nullopt;
  return static_cast<double>(trust_built) / static_cast<double>(closed);
}

std::optional<double> PurchaseOutcomes::RepurchaseRate() const {
  const std::int64_t closed = purchases - open;
  if (closed <= 0) return std::nullopt;
  return static_cast<double>(repurchased) / static_cast<double>(closed);
}

std::optional<double> PurchaseOutcomes::MedianDaysToRepurchase() const {
  if (days_to_repurchase.empty()) return std::nullopt;
  std::vector<double> days = days_to_repurchase;
  const std::size_t mid = days.size() / 2;
  std::nth_element(days.begin(), days.begin() + static_cast<std::ptrdiff_t>(mid), days.end());
  if (days.size() % 2 == 1) return days[mid];
  const double upper = days[mid];
  const double lower =
      *std::max_element(days.begin(), days.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

std::optional<double> FireOutcomes::EngagementRate() const {
  if (fired == 0) return std::nullopt;
  return static_cast<double>(engaged) / static_cast<double>(fired);
}

void OutcomeReport::Add(const BuyerHistory& buyer) {
  if (options_.by == ReportBy::kTier || options_.by == ReportBy::kProduct) {
    AddPurchases(buyer);
  } else {
    AddFires(buyer);
  }
}

void OutcomeReport::Merge(OutcomeReport&& other) {
  for (auto& [key, theirs] : other.purchases_) {
    PurchaseOutcomes& row = purchases_[key];
    row.key = key;
    row.purchases += theirs.purchases;
    row.open += theirs.open;
    row.trust_open += theirs.trust_open;
    row.trust_built += theirs.trust_built;
    row.repurchased += theirs.repurchased;
    row.days_to_repurchase.insert(row.days_to_repurchase.end(), theirs.days_to_repurchase.begin(),
                                  theirs.days_to_repurchase.end());
  }
  for (auto& [key, theirs] : other.fires_) {
    FireOutcomes& row = fires_[key];
    row.key = key;
    row.fired += theirs.fired;
    row.engaged += theirs.engaged;
    row.repurchases += theirs.repurchases;
    row.revenue += theirs.revenue;
  }
}

void OutcomeReport::AddPurchases(const BuyerHistory& buyer) {
  const ReportOptions& o = options_;
  const auto& purchases = buyer.purchases;
  for (std::size_t i = 0; i < purchases.size(); ++i) {
    const BuyerHistory::Purchase& p = purchases[i];
    if (p.purchased_at < o.from || p.purchased_at >= o.to || p.purchased_at > o.as_of) continue;
    PurchaseOutcomes& row = purchases_[o.by == ReportBy::kTier ? p.tier : p.product];
    row.key = o.by == ReportBy::kTier ? p.tier : p.product;
    ++row.purchases;

    // Trust: a trust signal in [purchased_at, purchased_at + trust_within),
    // known by as_of.
    const Instant trust_end = AddDuration(p.purchased_at, o.windows.trust_within, p.zone);
    // Events are in time order: from the first at or after the purchase.
    bool trusted = false;
    for (auto e =
             std::lower_bound(buyer.events.begin(), buyer.events.end(), p.purchased_at,
                              [](const BuyerHistory::Event&ev, Instant at) { return ev.at < at; });
         e != buyer.events.end() && e->at < trust_end && e->at <= o.as_of; ++e) {
      if (e->trust) {
        trusted = true;
        break;
      }
    }
    if (trusted) {
      ++row.trust_built;
    } else if (trust_end > o.as_of) {
      ++row.trust_open;
    }

    // Repurchase: the first later purchase up to runout + grace, known by
    // as_of.
    const Instant repurchase_end = AddDuration(p.runout, o.windows.repurchase_grace, p.zone);
    // Purchases are in time order: the first one after this one's instant.
    const BuyerHistory::Purchase* again = nullptr;
    for (std::size_t j = i + 1; j < purchases.size(); ++j) {
      const BuyerHistory::Purchase& q = purchases[j];
      if (q.purchased_at <= p.purchased_at) continue;
      if (q.purchased_at <= repurchase_end && q.purchased_at <= o.as_of) again = &q;
      break;
    }
    if (again != nullptr) {
      ++row.repurchased;
      row.days_to_repurchase.push_back(
          static_cast<double>((again->purchased_at - p.purchased_at).count()) / kMsPerDay);
    } else if (repurchase_end > o.as_of) {
      ++row.open;
    }
  }
}

void OutcomeReport::AddFires(const BuyerHistory& buyer) {
  const ReportOptions& o = options_;
  // The touchpoints fired in [from, to) by key, and what is credited to them.
  std::unordered_map<std::uint64_t, FireOutcomes*> counted;
  for (const BuyerHistory::Fire& f : buyer.fires) {
    if (f.fire_at < o.from || f.fire_at >= o.to || f.fire_at > o.as_of) continue;
    const std::string& key = o.by == ReportBy::kCadence ? f.cadence : f.topic;
    FireOutcomes& row = fires_[key];
    row.key = key;
    ++row.fired;
    counted.emplace(f.touchpoint, &row);
  }
  if (counted.empty()) return;
  for (const BuyerHistory::Event& e : buyer.events) {
    if (e.credited == 0 || e.at > o.as_of) continue;
    if (auto it = counted.find(e.credited); it != counted.end()) ++it->second->engaged;
  }
  // A repurchase (any purchase after the buyer's first) is credited to the
  // last touchpoint fired within attribution_window before it.
  const auto& purchases = buyer.purchases;
  const auto& fires = buyer.fires;
  std::size_t next_fire = 0;  // the fires before q, walked forward once
  for (std::size_t i = 1; i < purchases.size(); ++i) {
    const BuyerHistory::Purchase& q = purchases[i];
    // Not a repurchase: at the same instant as the buyer's first.
    if (q.purchased_at <= purchases[0].purchased_at) continue;
    if (q.purchased_at > o.as_of) break;
    while (next_fire < fires.size() && fires[next_fire].fire_at < q.purchased_at) ++next_fire;
    const BuyerHistory::Fire* last = next_fire == 0 ? nullptr : &fires[next_fire - 1];
    if (last == nullptr ||
        last->fire_at < Before(q.purchased_at, o.windows.attribution_window, last->zone)) {
      continue;
    }
    if (auto it = counted.find(last->touchpoint); it != counted.end()) {
      ++it->second->repurchases;
      it->second->revenue += q.amount;
    }
  }
}

}  // namespace tp
