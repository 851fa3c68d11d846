#include "ratios.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>

namespace tp::e2e {
namespace {

double Mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

std::string Fixed(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", v);
  return text;
}

}  // namespace

Ratios Summarize(const std::vector<double>& ratios) {
  constexpr int kResamples = 5000;
  std::mt19937_64 random(20261205);
  std::uniform_int_distribution<std::size_t> pick(0, ratios.size() - 1);
  std::vector<double> means(kResamples);
  std::vector<double> sample(ratios.size());
  for (double& mean : means) {
    for (double& s : sample) s = ratios[pick(random)];
    mean = Mean(sample);
  }
  std::sort(means.begin(), means.end());
  std::vector<double> sorted = ratios;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  const double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  const auto above = std::count_if(ratios.begin(), ratios.end(), [](double r) { return r > 1; });

  Ratios out;
  out.mean = Mean(ratios);
  for (const double r : ratios) out.text += Fixed(r) + " ";
  out.text.back() = ';';
  out.text += " mean " + Fixed(out.mean) + " (95% interval " + Fixed(means[kResamples / 40]) + "-" +
              Fixed(means[kResamples - 1 - kResamples / 40]) + "), median " + Fixed(median) +
              ", above 1 in " + std::to_string(above) + " of " + std::to_string(n);
  return out;
}

}  // namespace tp::e2e
