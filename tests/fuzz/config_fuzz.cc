// libFuzzer target: the YAML config loader (config/loader.h), which the
// daemon runs at start and on every SIGHUP.
//
// Beyond not crashing or throwing: a load either gives rules and no errors
// or errors and no rules, and loading the same text twice gives the same
// result (a reload of an unchanged file must not look like a change). Rules
// that load hold together (every index resolves, the last tier matches
// everyone, the send window is forward) and plan purchases at the edges of
// what planner/purchase_check.h admits into touchpoints within the years
// 1900 to 2300 that wait for the send window no more than a day or so.
// Paths in a config (secret_file, token_file, ca_file) are relative to the
// working directory here: run.sh runs this target in a scratch directory.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.h"
#include "fuzz_support.h"
#include "planner/planner.h"
#include "planner/purchase_check.h"

namespace {

bool Indices(const std::vector<int>& indices, std::size_t size) {
  for (int i : indices) {
    if (i < 0 || static_cast<std::size_t>(i) >= size) return false;
  }
  return true;
}

void CheckConsistent(const tp::Rules& rules) {
  FUZZ_CHECK(rules.timezone != nullptr);
  FUZZ_CHECK(rules.send_window.from < rules.send_window.to);
  FUZZ_CHECK(!rules.products.empty() && !rules.tiers.empty() && !rules.sinks.empty());
  for (const tp::Product& p : rules.products) FUZZ_CHECK(p.supply_days >= 1);
  const tp::Tier& last = rules.tiers.back();
  FUZZ_CHECK(last.MatchesEveryPurchase());
  for (const tp::Tier& t : rules.tiers) {
    FUZZ_CHECK(Indices(t.bought, rules.products.size()));
    FUZZ_CHECK(!t.within || t.within->count > 0);
    for (const tp::AttributeCondition& a : t.attributes) FUZZ_CHECK(!a.values.empty());
  }
  FUZZ_CHECK(rules.frequency_caps.size() <= 16);
  for (const tp::FrequencyCap& cap : rules.frequency_caps) {
    FUZZ_CHECK(cap.max >= 1 && cap.max <= 1000);
    FUZZ_CHECK(Indices(cap.sinks, rules.sinks.size()));
  }
  for (const tp::Cadence& c : rules.cadences) {
    FUZZ_CHECK(Indices(c.products, rules.products.size()));
    FUZZ_CHECK(Indices(c.from, rules.products.size()));
    FUZZ_CHECK(Indices(c.to, rules.products.size()));
    FUZZ_CHECK(Indices(c.sinks, rules.sinks.size()));
    for (const tp::Step& step : c.steps) {
      FUZZ_CHECK(Indices(step.tiers, rules.tiers.size()));
      FUZZ_CHECK(Indices(step.sinks, rules.sinks.size()));
    }
  }
}

// Every product bought at the first and last instants a purchase may have,
// once with the most units it may come in, after a purchase of each other
// product (which starts switch cadences).
void CheckPlans(const tp::Rules& rules) {
  const tp::Instant earliest = tp::kMinPurchasedAt;
  const tp::Instant latest = tp::kMaxPurchasedAt - tp::Millis(1);
  const tp::Instant floor = *tp::ParseRfc3339("1900-01-01T00:00:00Z");
  const tp::Instant ceiling = *tp::ParseRfc3339("2300-01-01T00:00:00Z");
  for (std::size_t p = 0; p < rules.products.size(); ++p) {
    const std::int64_t most = tp::kMaxRunoutDays / rules.products[p].supply_days;
    for (const tp::Instant at : {earliest, latest}) {
      for (const std::int64_t quantity : {std::int64_t{1}, most}) {
        for (std::size_t before = 0; before < rules.products.size(); ++before) {
          tp::Purchase purchase{"o", "b", rules.products[p].name, quantity, 1e12, at, ""};
          FUZZ_CHECK(!tp::CheckPurchase(purchase, rules));
          const tp::PastPurchase past[] = {{at - tp::Millis(1), static_cast<int>(before), 0}};
          const tp::Plan plan =
              tp::PlanPurchase(rules, past, purchase, static_cast<int>(p), rules.timezone);
          FUZZ_CHECK(plan.tier >= 0 && static_cast<std::size_t>(plan.tier) < rules.tiers.size());
          for (const tp::PlannedTouchpoint& t : plan.touchpoints) {
            FUZZ_CHECK(t.due_at >= floor && t.due_at < ceiling);
            // At most the next day's opening (a DST gap or a skipped day
            // moves it further, by design, but not by days).
            FUZZ_CHECK(t.next_at >= t.due_at && t.next_at - t.due_at <= std::chrono::hours(72));
          }
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const tp::LoadResult first = tp::LoadRulesString(yaml, "fuzz.yaml");
  if (!first.ok()) {
    FUZZ_CHECK(!first.errors.empty());
    for (const tp::ConfigError& e : first.errors) {
      FUZZ_CHECK(!e.message.empty());
      FUZZ_CHECK(e.line >= 1 && e.column >= 1);
      (void)e.ToString();
    }
    return 0;
  }
  FUZZ_CHECK(first.errors.empty());
  FUZZ_CHECK(first.rules->sha256.size() == 64);
  const tp::LoadResult second = tp::LoadRulesString(yaml, "fuzz.yaml");
  FUZZ_CHECK(second.ok());
  FUZZ_CHECK(second.rules->sha256 == first.rules->sha256);
  CheckConsistent(*first.rules);
  CheckPlans(*first.rules);
  return 0;
}
