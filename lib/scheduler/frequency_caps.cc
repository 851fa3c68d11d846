#include "scheduler/frequency_caps.h"

#include <algorithm>

namespace tp {
namespace {

std::string FullReason(const Rules& rules, const FrequencyCap& cap) {
  std::string reason = "frequency cap reached for the buyer's " + std::string(PeriodName(cap.per)) +
                       " (" + std::to_string(cap.max) + " per " + std::string(PeriodName(cap.per));
  for (std::size_t i = 0; i < cap.sinks.size(); ++i) {
    reason += (i == 0 ? " on " : ", ") + rules.sinks[static_cast<std::size_t>(cap.sinks[i])].name;
  }
  return reason + ")";
}

}  // namespace

CapLedger::CapLedger(const Rules& rules, ScheduleStore& store, Instant now)
    : rules_(rules),
      store_(store),
      now_(now),
      all_(rules.frequency_caps.size() >= 32 ? ~Mask{0}
                                             : (Mask{1} << rules.frequency_caps.size()) - 1) {
  const auto& caps = rules.frequency_caps;
  scoped_ = std::any_of(caps.begin(), caps.end(), [](const auto& c) { return !c.sinks.empty(); });
  if (!scoped_) return;
  for (const Cadence& cadence : rules.cadences) {
    auto& steps = step_masks_[cadence.name];
    for (const Step& step : cadence.steps) {
      steps.emplace_back(step.id, MaskOfSinks(rules.SinkList(rules.SinksOf(cadence, step))));
    }
  }
}

CapLedger::Mask CapLedger::MaskOfSinks(std::string_view sinks) {
  if (auto it = masks_.find(sinks); it != masks_.end()) return it->second;
  Mask mask = 0;
  const auto& caps = rules_.frequency_caps;
  for (std::size_t i = 0; i < caps.size(); ++i) {
    bool applies = caps[i].sinks.empty();
    for (int s : caps[i].sinks) {
      // Whole names between commas.
      const std::string& name = rules_.sinks[static_cast<std::size_t>(s)].name;
      for (std::size_t at = sinks.find(name); !applies && at != std::string_view::npos;
           at = sinks.find(name, at + 1)) {
        const std::size_t end = at + name.size();
        applies = (at == 0 || sinks[at - 1] == ',') && (end == sinks.size() || sinks[end] == ',');
      }
    }
    if (applies) mask |= Mask{1} << i;
  }
  masks_.emplace(std::string(sinks), mask);
  return mask;
}

CapLedger::Mask CapLedger::MaskOf(std::string_view cadence, std::string_view step) const {
  if (!scoped_) return all_;
  auto it = step_masks_.find(cadence);
  if (it == step_masks_.end()) return all_;
  for (const auto& [id, mask] : it->second) {
    if (id == step) return mask;
  }
  return all_;
}

const std::vector<CapLedger::Period>& CapLedger::PeriodsIn(const Zone* zone) {
  for (const auto& [z, periods] : periods_) {
    if (z == zone) return periods;
  }
  std::vector<Period> periods;
  for (const FrequencyCap& cap : rules_.frequency_caps) {
    switch (cap.per) {
      case FrequencyCap::Per::kDay:
        periods.push_back({StartOfLocalDay(now_, zone), StartOfNextLocalDay(now_, zone)});
        break;
      case FrequencyCap::Per::kWeek:
        periods.push_back({StartOfLocalWeek(now_, zone), StartOfNextLocalWeek(now_, zone)});
        break;
      case FrequencyCap::Per::kMonth:
        periods.push_back({StartOfLocalMonth(now_, zone), StartOfNextLocalMonth(now_, zone)});
        break;
    }
  }
  return periods_.emplace_back(zone, std::move(periods)).second;
}

StatusOr<CapLedger::BuyerFires*> CapLedger::FiresOf(const DueTouchpoint& due, Instant from,
                                                    Instant to) {
  auto [it, added] = buyers_.try_emplace(due.view.buyer_id);
  BuyerFires& buyer = it->second;
  if (!added && buyer.from <= from) return &buyer;
  // First asked, or now from earlier (a touchpoint in another zone).
  auto stored = store_.FiredBetween(due, from, to, scoped_);
  if (!stored.ok()) return stored.status();
  buyer.from = from;
  buyer.stored.clear();
  for (const FiredTouchpoint& f : *stored) {
    // Where it went as it fired; unknown (fired before the store recorded
    // it): every cap, erring on the quiet side.
    buyer.stored.push_back({f.fire_at, f.sinks ? MaskOfSinks(*f.sinks) : all_});
  }
  return &buyer;
}

StatusOr<std::optional<std::string>> CapLedger::Check(const DueTouchpoint& due) {
  const Mask mask = MaskOf(due.view.cadence, due.view.step);
  if (mask == 0) return std::optional<std::string>();
  const std::vector<Period>& periods = PeriodsIn(due.view.zone);
  Instant from = Instant::max(), to = Instant::min();
  for (std::size_t i = 0; i < periods.size(); ++i) {
    if ((mask & (Mask{1} << i)) == 0) continue;
    from = std::min(from, periods[i].from);
    to = std::max(to, periods[i].to);
  }
  auto buyer = FiresOf(due, from, to);
  if (!buyer.ok()) return buyer.status();
  for (std::size_t i = 0; i < periods.size(); ++i) {
    const Mask bit = Mask{1} << i;
    if ((mask & bit) == 0) continue;
    const Period& p = periods[i];
    auto in = [&](const Fire& f) { return (f.caps & bit) != 0 && p.from <= f.at && f.at < p.to; };
    const auto count = std::count_if((*buyer)->stored.begin(), (*buyer)->stored.end(), in) +
                       std::count_if((*buyer)->batch.begin(), (*buyer)->batch.end(), in);
    if (count >= rules_.frequency_caps[i].max) {
      return std::optional<std::string>(FullReason(rules_, rules_.frequency_caps[i]));
    }
  }
  return std::optional<std::string>();
}

void CapLedger::Count(const DueTouchpoint& due) {
  auto it = buyers_.find(due.view.buyer_id);
  if (it == buyers_.end()) return;  // no cap applies to it: Check() read nothing
  it->second.batch.push_back({now_, MaskOf(due.view.cadence, due.view.step)});
}

}  // namespace tp
