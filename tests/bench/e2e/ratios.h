// A ratio of two figures over alternated rounds (--rounds): on a VM whose
// speed drifts, one round's ratio says little, so the bench sums up all of
// them (docs/benchmarks.md).
#pragma once

#include <string>
#include <vector>

namespace tp::e2e {

struct Ratios {
  double mean = 0;
  // "0.86 0.98 ...; mean 0.86 (95% interval 0.79-0.93), median 0.86,
  // above 1 in 2 of 9": the rounds' ratios, then the mean's 95% interval by
  // bootstrap (5,000 resamples, a fixed seed, so a run's summary repeats).
  std::string text;
};
// `ratios` must not be empty.
Ratios Summarize(const std::vector<double>& ratios);

}  // namespace tp::e2e
