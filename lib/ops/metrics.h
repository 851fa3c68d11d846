// Metrics in the Prometheus text exposition format (version 0.0.4), written
// by hand: Debian has no C++ client library. A Registry holds families; a
// family is one metric name with its HELP, TYPE and label names, and one
// series per distinct label values, created on first use.
//
// Not thread-safe: the daemon updates and renders on its one I/O thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tp::metrics {

class Family {
 public:
  enum class Type : std::uint8_t { kCounter, kGauge, kHistogram };

  // Counters: adds `v` (>= 0) to the series of `labels` (one value per label
  // name, in order).
  void Add(std::initializer_list<std::string_view> labels, double v = 1);
  // Gauges: sets the series.
  void Set(std::initializer_list<std::string_view> labels, double v);
  // Histograms: counts one observation.
  void Observe(std::initializer_list<std::string_view> labels, double v);
  // Gauges recomputed at every scrape drop their old series first.
  void Clear() { series_.clear(); }

 private:
  friend class Registry;
  struct Series {
    std::vector<std::string> labels;
    double value = 0;                    // counter, gauge
    std::vector<std::uint64_t> buckets;  // histogram: per bound, not cumulative
    double sum = 0;
    std::uint64_t count = 0;
  };
  Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
         std::vector<double> bounds);
  Series& At(std::initializer_list<std::string_view> labels);
  void Render(std::string& out) const;

  std::string name_, help_;
  Type type_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histogram upper bounds, ascending; +Inf implied
  std::map<std::string, Series, std::less<>> series_;  // by joined label values
  std::string key_;                                    // scratch for At()
};

class Registry {
 public:
  // Names and labels must follow Prometheus' conventions (the caller's
  // duty; promtool checks the output in the tests). The family lives as long
  // as the registry.
  Family& Counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family& Gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family& Histogram(std::string name, std::string help, std::vector<std::string> label_names,
                    std::vector<double> bounds);

  // Every family, in registration order.
  std::string Render() const;

 private:
  std::vector<std::unique_ptr<Family>> families_;
};

// The exposition format's content type.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace tp::metrics
