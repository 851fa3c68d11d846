#include "planner/tier.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "planner/planner.h"

namespace tp {
namespace {

// What the purchases counted for a tier add up to.
struct Tally {
  std::int64_t count = 0;
  double spend = 0;
  bool bought = false;
};

Tally Count(std::span<const PastPurchase> purchases, const Purchase& purchase, int product,
            const std::vector<int>& bought) {
  auto listed = [&](int p) { return std::find(bought.begin(), bought.end(), p) != bought.end(); };
  Tally tally{static_cast<std::int64_t>(purchases.size()) + 1, purchase.amount, listed(product)};
  for (const PastPurchase& p : purchases) {
    tally.spend += p.amount;
    tally.bought = tally.bought || listed(p.product);
  }
  return tally;
}

bool AttributesMatch(const std::vector<AttributeCondition>& conditions,
                     const nlohmann::json& attributes) {
  return std::all_of(conditions.begin(), conditions.end(), [&](const AttributeCondition& c) {
    const auto it = attributes.find(c.key);
    if (it == attributes.end()) return false;
    // A string as it is; a number or true/false as JSON writes it (YAML's
    // `size: 14` is the text "14"). Arrays, objects and null match nothing.
    std::string text;
    if (it->is_string()) {
      text = it->get<std::string>();
    } else if (it->is_number() || it->is_boolean()) {
      text = it->dump();
    } else {
      return false;
    }
    return std::find(c.values.begin(), c.values.end(), text) != c.values.end();
  });
}

}  // namespace

int TierOf(const Rules& rules, std::span<const PastPurchase> before, const Purchase& purchase,
           int product, const Zone* zone) {
  // The purchase's attributes, parsed once if a tier asks (they were
  // checked to be a JSON object when recorded).
  std::optional<nlohmann::json> attributes;
  for (std::size_t i = 0; i < rules.tiers.size(); ++i) {
    const Tier& tier = rules.tiers[i];
    std::span<const PastPurchase> counted = before;
    if (tier.within) {
      const Instant from = AddDuration(purchase.purchased_at,
                                       Duration{-tier.within->count, tier.within->unit}, zone);
      const auto first =
          std::upper_bound(before.begin(), before.end(), from,
                           [](Instant t, const PastPurchase& p) { return t < p.purchased_at; });
      counted = before.subspan(static_cast<std::size_t>(first - before.begin()));
    }
    const Tally tally = Count(counted, purchase, product, tier.bought);
    if (tier.min_purchases && tally.count < *tier.min_purchases) continue;
    if (tier.min_spend && tally.spend < *tier.min_spend) continue;
    if (!tier.bought.empty() && !tally.bought) continue;
    if (!tier.attributes.empty()) {
      if (!attributes) {
        attributes = purchase.attributes.empty()
                         ? nlohmann::json::object()
                         : nlohmann::json::parse(purchase.attributes, nullptr, false);
        if (!attributes->is_object()) attributes = nlohmann::json::object();
      }
      if (!AttributesMatch(tier.attributes, *attributes)) continue;
    }
    return static_cast<int>(i);
  }
  return static_cast<int>(rules.tiers.size()) - 1;
}

}  // namespace tp
