// `simulate --compare`: the same replay under two rule sets, touchpoint by
// touchpoint. A touchpoint's id is the same for the same order, cadence and
// step under any rules (core/ids.h), so the two runs match by id.
// Memory: 24 bytes per touchpoint of the first run, and 4 per moved one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scheduler/store.h"

namespace tp {

class RunDiff {
 public:
  // Every touchpoint of run A (final, or pending at the end), then Seal().
  void AddA(const TouchpointView& t);
  void Seal();
  // Every touchpoint of run B, after Seal().
  void AddB(const TouchpointView& t);

  // {"steps": [{key, cadence, step, a: {planned, fired}, b: {planned,
  // fired}, appear, disappear, moved, later, earlier, shift_hours: {min,
  // median, max}}]}: appear counts fires only under B, disappear fires only
  // under A, moved fires under both at different times (B minus A). Steps
  // in the order first seen (A's rules, then any only B has).
  std::string Json() const;

 private:
  struct Record {
    std::uint64_t key = 0;  // the id's first 64 bits
    std::int64_t fire_ms = kNotFired;
    std::uint32_t step = 0;  // index into steps_
    bool matched = false;
  };
  struct StepDiff {
    std::string cadence, step;
    std::uint64_t planned_a = 0, planned_b = 0, fired_a = 0, fired_b = 0;
    std::uint64_t appear = 0, disappear = 0, later = 0, earlier = 0;
    std::vector<std::int32_t> shift_minutes;  // of the moved ones
  };
  static constexpr std::int64_t kNotFired = INT64_MIN;

  std::uint32_t StepOf(std::string_view cadence, std::string_view step);

  std::vector<Record> a_;
  std::vector<StepDiff> steps_;
  bool sealed_ = false;
};

}  // namespace tp
