#include "simulate/digest.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace tp {
namespace {

using OJson = nlohmann::ordered_json;

constexpr std::size_t kMaxJourneyPurchases = 50;
constexpr std::size_t kMaxJourneyTouchpoints = 200;
// The load chart keeps at most this many bars: a longer span is bucketed
// into several days a bar.
constexpr std::int64_t kMaxBars = 1100;

// A reason without what is particular to one touchpoint (an order id, a
// time, how late), so that reasons of the same kind count together.
std::string ReasonGroup(std::string_view reason) {
  if (reason.starts_with("repurchased: order ")) return "repurchased";
  if (reason.starts_with("missed by ")) {
    const auto comma = reason.find(", ");
    if (comma != std::string_view::npos) return "missed: " + std::string(reason.substr(comma + 2));
  }
  std::string out;
  for (std::size_t i = 0; i < reason.size();) {
    // " at 2026-..." names a moment: drop it up to the next comma.
    if (reason.compare(i, 4, " at ") == 0 && i + 4 < reason.size() &&
        std::isdigit(static_cast<unsigned char>(reason[i + 4])) != 0) {
      const auto comma = reason.find(',', i);
      i = comma == std::string_view::npos ? reason.size() : comma;
      continue;
    }
    out.push_back(reason[i++]);
  }
  return out;
}

std::string DayText(std::int64_t day) {
  const date::year_month_day ymd{date::sys_days(date::days(day))};
  return date::format("%F", ymd);
}

std::string Time(Instant t, const Zone* zone) { return FormatRfc3339(t, zone); }

}  // namespace

SimDigest::SimDigest(const Rules& rules, std::size_t journeys_per_tier)
    : rules_(rules),
      journeys_per_tier_(journeys_per_tier),
      sampled_per_tier_(rules.tiers.size(), 0) {
  for (const Cadence& c : rules.cadences) {
    for (const Step& s : c.steps) StepIndex(c.name, s.id, s.topic);
  }
}

std::size_t SimDigest::StepIndex(std::string_view cadence, std::string_view step,
                                 std::string_view topic) {
  // A handful of steps: a scan beats hashing two strings.
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].step == step && steps_[i].cadence == cadence) return i;
  }
  auto c = std::find(cadences_.begin(), cadences_.end(), cadence);
  if (c == cadences_.end()) c = cadences_.insert(cadences_.end(), std::string(cadence));
  cadence_of_step_.push_back(static_cast<std::size_t>(c - cadences_.begin()));
  StepCounts counts;
  counts.cadence = cadence;
  counts.step = step;
  counts.topic = topic;
  steps_.push_back(std::move(counts));
  return steps_.size() - 1;
}

std::int64_t SimDigest::DayOf(Instant t) const {
  return date::floor<date::days>(ToLocal(t, rules_.timezone)).time_since_epoch().count();
}

SimDigest::Journey* SimDigest::JourneyOf(std::string_view buyer) {
  if (journey_of_buyer_.empty()) return nullptr;
  const auto it = journey_of_buyer_.find(std::string(buyer));
  return it == journey_of_buyer_.end() ? nullptr : &journeys_[it->second];
}

void SimDigest::OnPurchase(const Purchase& purchase, int tier, bool first) {
  if (first) ++buyers_;
  const std::string tier_name = tier >= 0 && static_cast<std::size_t>(tier) < rules_.tiers.size()
                                    ? rules_.tiers[static_cast<std::size_t>(tier)].name
                                    : std::string();
  if (first && !tier_name.empty() &&
      sampled_per_tier_[static_cast<std::size_t>(tier)] < journeys_per_tier_) {
    ++sampled_per_tier_[static_cast<std::size_t>(tier)];
    journey_of_buyer_.emplace(purchase.buyer_id, journeys_.size());
    journeys_.push_back(Journey{purchase.buyer_id, tier_name, {}, {}, {}});
  }
  Journey* j = JourneyOf(purchase.buyer_id);
  if (j == nullptr || j->purchases.size() == kMaxJourneyPurchases) return;
  const Zone* zone = FindZone(purchase.timezone);
  j->purchases.push_back({purchase.order_id, purchase.product, tier_name,
                          Time(purchase.purchased_at, zone ? zone : rules_.timezone)});
}

void SimDigest::OnTouchpoint(const TouchpointView& t) {
  const auto state = static_cast<std::size_t>(t.state);
  ++by_state_[state];
  const std::size_t s = StepIndex(t.cadence, t.step, t.topic);
  StepCounts& counts = steps_[s];
  ++counts.by_state[state];
  if (!t.reason.empty() && t.state != TouchpointState::kPending) {
    auto key = std::pair{static_cast<int>(state), ReasonGroup(t.reason)};
    auto it = counts.reasons.find(key);
    if (it != counts.reasons.end()) {
      ++it->second;
    } else if (counts.reasons.size() < kReasonsPerStep) {
      counts.reasons.emplace(std::move(key), 1);
    } else {
      ++counts.other_reasons;
    }
  }
  const Zone* zone = t.zone != nullptr ? t.zone : rules_.timezone;
  if (t.state == TouchpointState::kFired && t.fire_at) {
    auto& day = fired_by_day_[DayOf(*t.fire_at)];
    day.resize(cadences_.size());
    ++day[cadence_of_step_[s]];
    const auto local = ToLocal(*t.fire_at, zone);
    const auto midnight = date::floor<date::days>(local);
    const auto hour = date::floor<std::chrono::hours>(local - midnight).count();
    const unsigned weekday = date::weekday(midnight).iso_encoding();  // 1 = Monday
    ++heat_[weekday - 1][static_cast<std::size_t>(hour)];
  }
  Journey* j = JourneyOf(t.buyer_id);
  if (j == nullptr) return;
  std::pair<std::uint32_t, std::string> held;
  if (auto it = j->held.find(std::string(t.id)); it != j->held.end()) {
    held = std::move(it->second);
    j->held.erase(it);  // final now: held no more, whether shown or not
  }
  if (j->touchpoints.size() == kMaxJourneyTouchpoints) return;
  Journey::Touch touch{std::string(t.id),
                       std::string(t.cadence),
                       std::string(t.step),
                       std::string(t.topic),
                       Time(t.due_at, zone),
                       t.fire_at ? Time(*t.fire_at, zone) : std::string(),
                       std::string(StateName(t.state)),
                       std::string(t.reason),
                       t.due_at.time_since_epoch().count(),
                       held.first,
                       std::move(held.second)};
  j->touchpoints.push_back(std::move(touch));
}

void SimDigest::OnCapDeferred(const TouchpointView& t, Instant /*until*/, std::string_view reason) {
  ++cap_deferrals_;
  ++steps_[StepIndex(t.cadence, t.step, t.topic)].held;
  ++held_by_day_[DayOf(t.next_at)];
  if (Journey* j = JourneyOf(t.buyer_id)) {
    auto& held = j->held[std::string(t.id)];
    ++held.first;
    held.second = reason;
  }
}

std::string SimDigest::Json(std::string_view label) const {
  const Totals& totals = totals_;
  OJson out;
  out["label"] = label;
  out["timezone"] = rules_.timezone->name();
  OJson statuses = OJson::object();
  std::uint64_t touchpoints = 0;
  for (std::size_t s = 0; s < kStates; ++s) {
    const auto state = static_cast<TouchpointState>(s);
    if (state == TouchpointState::kDead) continue;  // nothing is delivered here
    statuses[std::string(StateName(state))] = by_state_[s];
    touchpoints += by_state_[s];
  }
  out["summary"] = {{"buyers", buyers_},
                    {"purchases", totals.purchases},
                    {"duplicates", totals.duplicates},
                    {"events", totals.events},
                    {"event_duplicates", totals.event_duplicates},
                    {"touchpoints", touchpoints},
                    {"statuses", statuses},
                    {"cap_deferrals", cap_deferrals_}};

  // Per day (or bucket of days) from the first fire or hold to the last.
  OJson load = {{"cadences", cadences_}};
  std::int64_t first = 0, last = -1;
  if (!fired_by_day_.empty()) {
    first = fired_by_day_.begin()->first;
    last = fired_by_day_.rbegin()->first;
  }
  if (!held_by_day_.empty()) {
    first =
        last < first ? held_by_day_.begin()->first : std::min(first, held_by_day_.begin()->first);
    last = std::max(last, held_by_day_.rbegin()->first);
  }
  const std::int64_t span = last >= first ? last - first + 1 : 0;
  const std::int64_t bucket = std::max<std::int64_t>(1, (span + kMaxBars - 1) / kMaxBars);
  const auto bars = static_cast<std::size_t>((span + bucket - 1) / bucket);
  std::vector<std::vector<std::uint64_t>> fired(cadences_.size(),
                                                std::vector<std::uint64_t>(bars, 0));
  std::vector<std::uint64_t> held(bars, 0);
  for (const auto& [day, counts] : fired_by_day_) {
    const auto bar = static_cast<std::size_t>((day - first) / bucket);
    for (std::size_t c = 0; c < counts.size(); ++c) fired[c][bar] += counts[c];
  }
  for (const auto& [day, n] : held_by_day_)
    held[static_cast<std::size_t>((day - first) / bucket)] += n;
  load["first_day"] = span > 0 ? OJson(DayText(first)) : OJson(nullptr);
  load["bucket_days"] = bucket;
  load["fired"] = fired;
  load["held"] = held;
  out["load"] = std::move(load);
  out["heatmap"] = heat_;

  OJson funnel = OJson::array();
  for (const StepCounts& s : steps_) {
    OJson row = {{"cadence", s.cadence}, {"step", s.step}, {"topic", s.topic}};
    std::uint64_t planned = 0;
    for (std::size_t k = 0; k < kStates; ++k) planned += s.by_state[k];
    row["planned"] = planned;
    for (std::size_t k = 0; k < kStates; ++k) {
      const auto state = static_cast<TouchpointState>(k);
      if (state != TouchpointState::kDead) row[std::string(StateName(state))] = s.by_state[k];
    }
    row["held"] = s.held;
    std::vector<std::pair<std::pair<int, std::string>, std::uint64_t>> top(s.reasons.begin(),
                                                                           s.reasons.end());
    std::stable_sort(top.begin(), top.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (top.size() > 5) top.resize(5);
    OJson reasons = OJson::array();
    for (const auto& [key, n] : top) {
      reasons.push_back({{"status", StateName(static_cast<TouchpointState>(key.first))},
                         {"reason", key.second},
                         {"count", n}});
    }
    row["reasons"] = std::move(reasons);
    row["other_reasons"] = s.other_reasons;
    funnel.push_back(std::move(row));
  }
  out["funnel"] = std::move(funnel);

  out["outcomes"] = outcomes_.empty() ? OJson(nullptr) : OJson::parse(outcomes_);

  OJson journeys = OJson::array();
  for (const Journey& j : journeys_) {
    OJson bought = OJson::array();
    for (const auto& p : j.purchases) {
      bought.push_back(
          {{"order_id", p.order_id}, {"product", p.product}, {"tier", p.tier}, {"at", p.at}});
    }
    OJson touches = OJson::array();
    auto sorted = j.touchpoints;
    std::stable_sort(
        sorted.begin(), sorted.end(),
        [](const Journey::Touch& a, const Journey::Touch& b) { return a.due_ms < b.due_ms; });
    for (const auto& t : sorted) {
      touches.push_back({{"id", t.id},
                         {"cadence", t.cadence},
                         {"step", t.step},
                         {"topic", t.topic},
                         {"due_at", t.due_at},
                         {"fire_at", t.fire_at.empty() ? OJson(nullptr) : OJson(t.fire_at)},
                         {"status", t.status},
                         {"reason", t.reason},
                         {"held", t.held},
                         {"held_reason", t.held_reason}});
    }
    journeys.push_back({{"buyer", j.buyer},
                        {"tier", j.tier},
                        {"purchases", std::move(bought)},
                        {"touchpoints", std::move(touches)}});
  }
  out["journeys"] = std::move(journeys);
  return out.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

}  // namespace tp
