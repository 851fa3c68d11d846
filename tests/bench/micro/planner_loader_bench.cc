// Micro-benchmarks (Google Benchmark) of the planner, the reload re-planner
// and the config loader, on the example config. Run in Release:
//   cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release && cmake --build build-release -j2
//   build-release/tests/bench/micro/touchpoint_micro_bench
// docs/benchmarks.md has the latest figures.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/loader.h"
#include "core/time.h"
#include "planner/planner.h"
#include "planner/replan.h"

namespace tp {
namespace {

std::string ExampleText() {
  std::ifstream in(TP_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const Rules& Example() {
  static const std::shared_ptr<const Rules> rules = [] {
    LoadResult r = LoadRulesString(ExampleText(), TP_EXAMPLE_CONFIG);
    if (!r.ok()) throw std::runtime_error(r.errors.front().ToString());
    return r.rules;
  }();
  return *rules;
}

Instant T0() { return *ParseRfc3339("2026-11-01T10:00:00+08:00"); }

// A buyer's history: one daily purchase every 30 days before T0.
std::vector<PastPurchase> History(const Rules& rules, int n) {
  std::vector<PastPurchase> out;
  const int daily = rules.ProductIndex("daily");
  for (int i = n; i > 0; --i) out.push_back({T0() - std::chrono::hours(24 * 30 * i), daily, 240});
  return out;
}

// The common case: a buyer's first daily purchase (six touchpoints).
void BM_PlanFirstPurchase(benchmark::State& state) {
  const Rules& rules = Example();
  const Zone* zone = FindZone("Asia/Shanghai");
  const Purchase p{"order-000001", "buyer-1", "daily", 2, 240, T0(), "", ""};
  const int product = rules.ProductIndex("daily");
  std::size_t planned = 0;
  for (auto _ : state) {
    Plan plan = PlanPurchase(rules, {}, p, product, zone);
    planned += plan.touchpoints.size();
    benchmark::DoNotOptimize(plan);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["touchpoints/s"] =
      benchmark::Counter(static_cast<double>(planned), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PlanFirstPurchase);

// A repurchase with N earlier purchases (tiers count them all; a switch
// from daily to yearly looks at the previous one).
void BM_PlanWithHistory(benchmark::State& state) {
  const Rules& rules = Example();
  const Zone* zone = FindZone("Asia/Shanghai");
  const auto history = History(rules, static_cast<int>(state.range(0)));
  const Purchase p{"order-000002", "buyer-1", "yearly", 1, 980, T0(), "", ""};
  const int product = rules.ProductIndex("yearly");
  for (auto _ : state) {
    Plan plan = PlanPurchase(rules, history, p, product, zone);
    benchmark::DoNotOptimize(plan);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_PlanWithHistory)->Arg(1)->Arg(8)->Arg(64);

// One purchase's share of a reload: re-plan its six pending touchpoints.
void BM_ReplanPurchase(benchmark::State& state) {
  const Rules& rules = Example();
  const Zone* zone = FindZone("Asia/Shanghai");
  const Purchase p{"order-000001", "buyer-1", "daily", 2, 240, T0(), "", ""};
  const int product = rules.ProductIndex("daily");
  std::vector<ExistingTouchpoint> existing;
  for (const PlannedTouchpoint& t : PlanPurchase(rules, {}, p, product, zone).touchpoints) {
    existing.push_back({t.id, rules.cadences[t.cadence].name, TouchpointState::kPending, t.due_at,
                        t.next_at, existing.size() + 1});
  }
  for (auto _ : state) {
    PurchaseReplan r = ReplanPurchase(rules, {}, p, product, zone, existing, T0());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_ReplanPurchase);

// Loading (parsing and validating) the example config, as at start and at
// every reload.
void BM_LoadExampleConfig(benchmark::State& state) {
  const std::string text = ExampleText();
  for (auto _ : state) {
    LoadResult r = LoadRulesString(text, "touchpoint.yaml");
    if (!r.ok()) state.SkipWithError("the example config does not load");
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_LoadExampleConfig);

// A large config: N cadences of 10 steps each.
void BM_LoadLargeConfig(benchmark::State& state) {
  std::string text =
      "version: 1\ntimezone: Asia/Shanghai\nproducts:\n  daily: {supply_days: 15}\n"
      "sinks:\n  - {name: outbox, type: queue}\ncadences:\n";
  for (int c = 0; c < state.range(0); ++c) {
    text += "  - name: cadence-" + std::to_string(c) + "\n    products: [daily]\n    steps:\n";
    for (int s = 1; s <= 10; ++s) {
      text += "      - {after: " + std::to_string(s * 3) + "d, topic: topic-" + std::to_string(s) +
              "}\n";
    }
  }
  for (auto _ : state) {
    LoadResult r = LoadRulesString(text, "large.yaml");
    if (!r.ok()) state.SkipWithError(r.errors.front().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_LoadLargeConfig)->Arg(10)->Arg(100);

}  // namespace
}  // namespace tp

BENCHMARK_MAIN();
