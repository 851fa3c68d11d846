// `simulate --html`: what a replay did, gathered while it streams. Memory
// grows with the days it spans, the rules' steps and a few sample buyers,
// never with the touchpoints: each is counted as it becomes final (or, at
// the end, as still pending) and forgotten.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/rules.h"
#include "core/model.h"
#include "scheduler/store.h"

namespace tp {

class SimDigest {
 public:
  // `journeys_per_tier` buyers of each tier (the tier of their first
  // purchase) have their whole timeline kept.
  explicit SimDigest(const Rules& rules, std::size_t journeys_per_tier = 3);

  // A purchase recorded; `first` when it is the buyer's first purchase
  // (the summary's buyers are those who bought).
  void OnPurchase(const Purchase& purchase, int tier, bool first);
  // A touchpoint final, or still pending when the replay ends: each once.
  void OnTouchpoint(const TouchpointView& t);
  // A touchpoint a frequency cap held back to `until` (`t.next_at` is when
  // it came due to be checked).
  void OnCapDeferred(const TouchpointView& t, Instant until, std::string_view reason);

  // What the summary counts besides touchpoints, when the replay ends.
  struct Totals {
    std::uint64_t purchases = 0, duplicates = 0, events = 0, event_duplicates = 0;
  };
  void SetTotals(const Totals& totals) { totals_ = totals; }
  // The outcomes reports as JSON: {"by_tier": ..., "by_step": ...}
  // (outcomes/report_json.h), when the replay had events.
  void SetOutcomes(std::string json) { outcomes_ = std::move(json); }

  // The digest as JSON (docs/config.md, "Preview a change", describes the
  // page it feeds): summary, per-day load, heat map, funnel, outcomes,
  // journeys.
  std::string Json(std::string_view label) const;

 private:
  static constexpr std::size_t kStates = 6;  // TouchpointState's values
  static constexpr std::size_t kReasonsPerStep = 32;
  struct StepCounts {
    std::string cadence, step, topic;
    std::array<std::uint64_t, kStates> by_state{};
    std::uint64_t held = 0;  // deferrals by a cap (a touchpoint once per day held)
    // (state, reason as grouped) -> count; at most kReasonsPerStep, the
    // rest in `other_reasons`.
    std::map<std::pair<int, std::string>, std::uint64_t> reasons;
    std::uint64_t other_reasons = 0;
  };
  struct Journey {
    std::string buyer, tier;
    struct Bought {
      std::string order_id, product, tier, at;
    };
    struct Touch {
      std::string id, cadence, step, topic, due_at, fire_at, status, reason;
      std::int64_t due_ms = 0;  // for the order
      std::uint32_t held = 0;
      std::string held_reason;
    };
    std::vector<Bought> purchases;
    std::vector<Touch> touchpoints;
    std::unordered_map<std::string, std::pair<std::uint32_t, std::string>> held;  // by id
  };

  // The step's index in steps_ (added if the rules do not name it).
  std::size_t StepIndex(std::string_view cadence, std::string_view step, std::string_view topic);
  std::int64_t DayOf(Instant t) const;  // the day number in the rules' zone
  Journey* JourneyOf(std::string_view buyer);

  const Rules& rules_;
  const std::size_t journeys_per_tier_;
  std::vector<StepCounts> steps_;
  std::vector<std::size_t> cadence_of_step_;  // index into cadences_
  std::vector<std::string> cadences_;
  // Day number -> fires per cadence (index into cadences_), and holds.
  std::map<std::int64_t, std::vector<std::uint64_t>> fired_by_day_;
  std::map<std::int64_t, std::uint64_t> held_by_day_;
  std::array<std::array<std::uint64_t, 24>, 7> heat_{};  // [ISO weekday - 1][hour], buyer-local
  std::array<std::uint64_t, kStates> by_state_{};
  std::uint64_t cap_deferrals_ = 0;
  std::uint64_t buyers_ = 0;
  Totals totals_;
  std::string outcomes_;
  std::vector<Journey> journeys_;
  std::unordered_map<std::string, std::size_t> journey_of_buyer_;
  std::vector<std::size_t> sampled_per_tier_;
};

}  // namespace tp
