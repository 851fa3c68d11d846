// Micro-benchmarks (Google Benchmark) of the SQLite store's fire path, in
// process: no HTTP, so each phase's cost per touchpoint stands alone, and a
// run is short enough for callgrind (deterministic instruction counts on a
// VM whose speed drifts). Each iteration gets a fresh database holding
// `range(0)` touchpoints, fires them (BM_Fire), or fires them and then leases
// (BM_Lease) or leases and acks them (BM_Ack) 1,000 at a time like the
// end-to-end consumer; only that phase is timed.
//   build-release/tests/bench/micro/touchpoint_micro_bench --benchmark_filter=BM_Fire
//   valgrind --tool=callgrind build-release/tests/bench/micro/touchpoint_micro_bench
//     --benchmark_filter=BM_Ack --benchmark_min_time=0.001   (one line)
// docs/benchmarks.md has the latest figures.
#include <benchmark/benchmark.h>
#include <stdlib.h>  // mkdtemp

#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "burst_config.h"
#include "config/loader.h"
#include "core/clock.h"
#include "scheduler/scheduler.h"
#include "store/sqlite_store.h"

namespace tp {
namespace {

constexpr int kLeaseMax = 1000;  // as the end-to-end consumer leases

std::shared_ptr<const Rules> BurstRules() {
  LoadResult loaded = LoadRulesString(bench::BurstConfig("{name: outbox, type: queue}"), "burst");
  if (!loaded.ok()) throw std::runtime_error(loaded.errors.front().ToString());
  return loaded.rules;
}

// A fresh database in a directory of its own, removed with it.
class Fixture {
 public:
  explicit Fixture(std::int64_t touchpoints) {
    std::string dir = (std::filesystem::temp_directory_path() / "tp-bench-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = dir;
    auto store = SqliteStore::Open(dir_ + "/tp.db", rules_);
    if (!store.ok()) throw std::runtime_error(store.status().message());
    store_ = std::move(*store);
    scheduler_ = std::make_unique<Scheduler>(*store_, clock_, rules_);
    // One transaction for all of them, as the daemon's group commit would.
    Check(store_->Begin());
    Check(store_->Savepoint());
    for (std::int64_t i = 0; i < (touchpoints + 5) / 6; ++i) {
      const std::string n = std::to_string(i);
      auto r = scheduler_->Ingest(
          {"order-" + n, "buyer-" + n, "daily", 1, 10, kStart + std::chrono::milliseconds(i), ""});
      if (!r.ok()) throw std::runtime_error(r.status().message());
    }
    Check(store_->Release());
    Check(store_->Commit());
    clock_.Set(kStart + std::chrono::hours(2));  // all due
  }
  ~Fixture() {
    scheduler_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  std::int64_t Fire() {
    auto stats = scheduler_->RunDue();
    if (!stats.ok()) throw std::runtime_error(stats.status().message());
    return static_cast<std::int64_t>(stats->fired);
  }
  std::vector<std::vector<std::string>> LeaseAll() {
    std::vector<std::vector<std::string>> leases;
    for (;;) {
      auto leased = store_->Lease("outbox", kLeaseMax, std::chrono::minutes(10), clock_.Now());
      if (!leased.ok()) throw std::runtime_error(leased.status().message());
      if (leased->empty()) return leases;
      auto& receipts = leases.emplace_back();
      for (const LeasedMessage& m : *leased) receipts.push_back(m.receipt);
    }
  }
  std::int64_t AckAll(const std::vector<std::vector<std::string>>& leases) {
    std::int64_t acked = 0;
    for (const auto& receipts : leases) {
      auto n = store_->Ack("outbox", receipts, clock_.Now());
      if (!n.ok()) throw std::runtime_error(n.status().message());
      acked += *n;
    }
    return acked;
  }

 private:
  static void Check(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.message());
  }
  static constexpr Instant kStart = Instant(std::chrono::milliseconds(1'800'000'000'000));

  std::string dir_;
  RulesInForce rules_{BurstRules()};
  FakeClock clock_{kStart};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Scheduler> scheduler_;
};

// Times `phase(fixture)` (it returns how many touchpoints it handled) on a
// fresh fixture per iteration, built by `prepare` with the timer paused; the
// previous fixture is torn down there too.
template <typename Prepare, typename Phase>
void Run(benchmark::State& state, Prepare prepare, Phase phase) {
  std::int64_t items = 0;
  std::unique_ptr<Fixture> f;
  for (auto _ : state) {
    state.PauseTiming();
    f.reset();
    f = std::make_unique<Fixture>(state.range(0));
    prepare(*f);
    state.ResumeTiming();
    items += phase(*f);
  }
  state.SetItemsProcessed(items);
}

void BM_Fire(benchmark::State& state) {
  Run(
      state, [](Fixture&) {}, [](Fixture& f) { return f.Fire(); });
}
BENCHMARK(BM_Fire)->Arg(6000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Lease(benchmark::State& state) {
  Run(
      state, [](Fixture& f) { f.Fire(); },
      [](Fixture& f) {
        std::int64_t leased = 0;
        for (const auto& receipts : f.LeaseAll())
          leased += static_cast<std::int64_t>(receipts.size());
        return leased;
      });
}
BENCHMARK(BM_Lease)->Arg(6000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Ack(benchmark::State& state) {
  std::vector<std::vector<std::string>> leases;
  Run(
      state,
      [&](Fixture& f) {
        f.Fire();
        leases = f.LeaseAll();
      },
      [&](Fixture& f) { return f.AckAll(leases); });
}
BENCHMARK(BM_Ack)->Arg(6000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace tp
