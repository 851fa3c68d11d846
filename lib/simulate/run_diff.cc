#include "simulate/run_diff.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "scheduler/memory_store.h"

namespace tp {
namespace {

std::int64_t FireMs(const TouchpointView& t) {
  return t.state == TouchpointState::kFired && t.fire_at ? t.fire_at->time_since_epoch().count()
                                                         : std::numeric_limits<std::int64_t>::min();
}

}  // namespace

std::uint32_t RunDiff::StepOf(std::string_view cadence, std::string_view step) {
  for (std::uint32_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].step == step && steps_[i].cadence == cadence) return i;
  }
  steps_.push_back({std::string(cadence), std::string(step), 0, 0, 0, 0, 0, 0, 0, 0, {}});
  return static_cast<std::uint32_t>(steps_.size() - 1);
}

void RunDiff::AddA(const TouchpointView& t) {
  const std::uint32_t step = StepOf(t.cadence, t.step);
  const std::int64_t fire = FireMs(t);
  ++steps_[step].planned_a;
  if (fire != kNotFired) ++steps_[step].fired_a;
  a_.push_back({MemoryStore::TouchpointKey(t.id).value_or(0), fire, step, false});
}

void RunDiff::Seal() {
  std::sort(a_.begin(), a_.end(), [](const Record& x, const Record& y) { return x.key < y.key; });
  sealed_ = true;
}

void RunDiff::AddB(const TouchpointView& t) {
  const std::uint32_t step = StepOf(t.cadence, t.step);
  StepDiff& d = steps_[step];
  const std::int64_t fire = FireMs(t);
  ++d.planned_b;
  if (fire != kNotFired) ++d.fired_b;
  const std::uint64_t key = MemoryStore::TouchpointKey(t.id).value_or(0);
  auto it = std::lower_bound(a_.begin(), a_.end(), key,
                             [](const Record& r, std::uint64_t k) { return r.key < k; });
  const bool in_a = sealed_ && it != a_.end() && it->key == key && !it->matched;
  if (!in_a) {
    if (fire != kNotFired) ++d.appear;
    return;
  }
  it->matched = true;
  if (it->fire_ms == kNotFired) {
    if (fire != kNotFired) ++d.appear;
  } else if (fire == kNotFired) {
    ++steps_[it->step].disappear;
  } else if (fire != it->fire_ms) {
    const std::int64_t minutes = (fire - it->fire_ms) / 60'000;
    d.shift_minutes.push_back(static_cast<std::int32_t>(
        std::clamp<std::int64_t>(minutes, std::numeric_limits<std::int32_t>::min(),
                                 std::numeric_limits<std::int32_t>::max())));
    ++(fire > it->fire_ms ? d.later : d.earlier);
  }
}

std::string RunDiff::Json() const {
  // A's fires B never planned disappear too.
  std::vector<std::uint64_t> gone(steps_.size(), 0);
  for (const Record& r : a_) {
    if (!r.matched && r.fire_ms != kNotFired) ++gone[r.step];
  }
  nlohmann::ordered_json steps = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    const StepDiff& d = steps_[i];
    auto shifts = d.shift_minutes;
    nlohmann::ordered_json shift = nullptr;
    if (!shifts.empty()) {
      const auto [lo, hi] = std::minmax_element(shifts.begin(), shifts.end());
      const double min = *lo / 60.0, max = *hi / 60.0;
      const auto mid = shifts.begin() + static_cast<std::ptrdiff_t>(shifts.size() / 2);
      std::nth_element(shifts.begin(), mid, shifts.end());
      shift = {{"min", min}, {"median", *mid / 60.0}, {"max", max}};
    }
    steps.push_back({{"key", d.cadence + "/" + d.step},
                     {"cadence", d.cadence},
                     {"step", d.step},
                     {"a", {{"planned", d.planned_a}, {"fired", d.fired_a}}},
                     {"b", {{"planned", d.planned_b}, {"fired", d.fired_b}}},
                     {"appear", d.appear},
                     {"disappear", d.disappear + gone[i]},
                     {"moved", d.shift_minutes.size()},
                     {"later", d.later},
                     {"earlier", d.earlier},
                     {"shift_hours", shift}});
  }
  return nlohmann::ordered_json{{"steps", steps}}.dump(
      -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace tp
