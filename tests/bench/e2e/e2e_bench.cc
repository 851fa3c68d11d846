// The end-to-end benchmark (docs/benchmarks.md): starts a real touchpointd
// on a free loopback port with a fresh database for each figure, drives it
// over HTTP from this separate process (the load generator, the queue
// consumer and the webhook receiver), stops it, and prints one line per
// figure: `metric=NAME value=NUMBER unit=UNIT`.
//
//   touchpoint_e2e_bench --daemon PATH [--purchases N] [--touchpoints N]
//                        [--webhooks N] [--pending N] [--lateness-s S]
//                        [--quick] [--only FIGURE,...] [--keep DIR] [--rounds N]
//                        [--store sqlite|postgres [--pg-url URL]]
//
// tests/bench/e2e/run.sh builds it and touchpointd in Release and runs it.
#include <functional>
#include <vector>

#include "burst_config.h"
#include "figures.h"
#include "ratios.h"
#include "server_cpu.h"

namespace tp::e2e {
namespace {

// --- the figures --------------------------------------------------------------

class Bench {
 public:
  explicit Bench(Options options) : options_(std::move(options)) {
    if (!options_.keep.empty()) {
      work_ = options_.keep;
      fs::create_directories(work_);
    } else {
      char dir[] = "/tmp/touchpoint-e2e-XXXXXX";
      if (::mkdtemp(dir) == nullptr) Fail("cannot make a temporary directory");
      work_ = dir;
    }
  }
  ~Bench() {
    if (options_.keep.empty()) DropDatabase(options_, last_database_);
    if (!pg_dir_.empty()) StopServer();
    if (options_.keep.empty()) fs::remove_all(work_);
  }
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;

  void Run() {
    if (options_.postgres && options_.pg_url.empty()) StartServer();
    if (options_.postgres) {
      server_cpu_ = ServerCpu::Find(options_.pg_url);
      if (server_cpu_) {
        using Pages = ServerCpu::Pages;
        const std::optional<Pages> pages = server_cpu_->SharedMemoryPages();
        Note(!pages ? "whether the server's shared memory is in huge pages: unknown (its "
                      "postmaster's mappings are not readable here)"
             : *pages == Pages::kHuge ? "the server's shared memory is in huge pages"
             : *pages == Pages::kTransparentHuge
                 ? "the server's shared memory is in transparent huge pages (shmem_enabled)"
                 : "the server's shared memory is not in huge pages (4 kB pages: see "
                   "docs/benchmarks.md, vm.nr_hugepages or shmem_enabled)");
      }
    }
    // The figures in their order; each round starts one figure later
    // (--rounds), so that none is always the first, on a fresh server.
    std::vector<std::function<void()>> figures;
    const auto add = [&](bool wanted, std::function<void()> figure) {
      if (wanted) figures.push_back(std::move(figure));
    };
    if (options_.postgres) {
      // What the PostgreSQL store is measured on (docs/benchmarks.md);
      // sizes for the capacity plan (docs/scaling.md) when asked by name.
      add(Wanted("ingest"), [this] { Ingest(); });
      add(Wanted("fire"), [this] { fire_rates_.push_back(Fire()); });
      add(Wanted("fire3"), [this] { fire3_rates_.push_back(FireThreeDaemons()); });
      add(Wanted("lateness"), [this] { Lateness(); });
      add(options_.only.contains("pending"),
          [this] { PendingFigure(options_, work_, Fresh("pending", "")); });
    } else {
      add(Wanted("ingest"), [this] { Ingest(); });
      add(Wanted("fire"), [this] { Fire(); });
      add(Wanted("caps"), [this] { Caps(); });
      add(Wanted("lateness"), [this] { Lateness(); });
      add(Wanted("webhook"), [this] { Webhooks(); });
      add(Wanted("pending"), [this] { PendingFigure(options_, work_, Fresh("pending", "")); });
      add(Wanted("events"), [this] { EventsFigure(options_, work_); });
    }
    for (int round = 0; round < options_.rounds; ++round) {
      if (options_.rounds > 1) Note("round " + std::to_string(round + 1));
      for (std::size_t k = 0; k < figures.size(); ++k) {
        figures[(k + static_cast<std::size_t>(round)) % figures.size()]();
      }
    }
    if (!fire3_rates_.empty() && fire3_rates_.size() == fire_rates_.size()) {
      std::vector<double> ratios;
      for (std::size_t r = 0; r < fire_rates_.size(); ++r) {
        ratios.push_back(fire3_rates_[r] / fire_rates_[r]);
      }
      const Ratios summary = Summarize(ratios);
      Note("three daemons / one, by round: " + summary.text);
      Metric("fire_three_daemons_to_one", summary.mean, "ratio");
    }
    server_cpu_.reset();
  }

 private:
  bool Wanted(std::string_view figure) const {
    return options_.only.empty() || options_.only.contains(figure);
  }

  // A figure's daemon on a fresh database; the previous figure's is
  // dropped first, unless kept (--keep).
  std::unique_ptr<Daemon> Fresh(const std::string& name, const std::string& yaml) {
    if (options_.keep.empty()) DropDatabase(options_, last_database_);
    auto daemon = e2e::Fresh(options_, work_, name, yaml);
    last_database_ = daemon->database();
    return daemon;
  }

  // The PostgreSQL server's CPU so far by session, when it is on this
  // machine (server_cpu.h); and from `before` to now, per touchpoint.
  ServerCpu::Reading ServerCpuNow() {
    return server_cpu_ ? server_cpu_->Read() : ServerCpu::Reading{};
  }
  void NoteServerCpu(const std::string& name, const ServerCpu::Reading& before,
                     std::int64_t touchpoints) {
    if (!server_cpu_) return;
    Note(name + ": the server's CPU per touchpoint: " +
         ServerCpu::PerTouchpoint(before, server_cpu_->Read(), touchpoints));
  }

  // A PostgreSQL server of the bench's own in its work directory, durable
  // as SQLite's synchronous=NORMAL is (fsync on, no flush per commit),
  // with room for a burst in shared buffers and WAL.
  void StartServer() {
    pg_dir_ = work_ + "/pg";
    fs::create_directories(pg_dir_);
    if (::getuid() == 0) fs::permissions(work_, fs::perms::others_exec, fs::perm_options::add);
    const std::string settings =
        "TP_PG_SETTINGS='-c fsync=on -c synchronous_commit=off -c full_page_writes=on "
        "-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=15min' ";
    if (std::system((settings + TP_PG_CLUSTER_SCRIPT + " start " + pg_dir_).c_str()) != 0) {
      Fail("cannot start PostgreSQL in " + pg_dir_);
    }
    {
      std::lock_guard lock(Left().mutex);
      Left().pg_dir = pg_dir_;
    }
    std::ifstream in(pg_dir_ + "/url");
    std::getline(in, options_.pg_url);
    Note("PostgreSQL at " + options_.pg_url);
  }
  void StopServer() {
    {
      std::lock_guard lock(Left().mutex);
      Left().pg_dir.clear();
    }
    (void)std::system((std::string(TP_PG_CLUSTER_SCRIPT) + " stop " + pg_dir_).c_str());
  }

  // Purchases whose six touchpoints fall due from `due` over `window`: one
  // purchase per buyer, an hour before.
  static std::vector<Purchase> Burst(std::int64_t touchpoints, tp::Instant due, tp::Millis window) {
    const std::int64_t count = (touchpoints + 5) / 6;
    std::vector<Purchase> out;
    for (std::int64_t i = 0; i < count; ++i) {
      out.push_back({i, due - std::chrono::hours(1) + window * i / count});
    }
    return out;
  }

  // When a burst of `touchpoints` may fall due: after ingesting them, by the
  // ingest rate measured first, with room to spare.
  // Without a measured rate (--only), 50,000 touchpoints/s is assumed.
  tp::Instant BurstStart(std::int64_t touchpoints) const {
    const double rate = ingest_rate_ > 0 ? ingest_rate_ : 50'000;
    const double ingest_s = static_cast<double>(touchpoints) / rate;
    return Now() + tp::Millis(2000 + static_cast<std::int64_t>(3000 * ingest_s));
  }

  void WaitUntil(tp::Instant at, const char* what) const {
    const tp::Instant now = Now();
    if (now >= at) {
      Note(std::string(what) +
           ": the burst fell due before ingest ended; the figure includes "
           "ingest");
      return;
    }
    std::this_thread::sleep_for(at - now);
  }

  // `ingest_*`: the example config (six touchpoints for a first daily
  // purchase); every tenth purchase is a repurchase of a buyer 1,000 back, so
  // cancelling runs too.
  void Ingest() {
    auto daemon = Fresh("ingest", "");
    daemon->Start();
    const std::int64_t n = options_.purchases;
    const tp::Instant base = Now() - std::chrono::hours(1);
    std::vector<Purchase> purchases;
    for (std::int64_t i = 0; i < n; ++i) {
      const bool repeat = i % 10 == 9 && i >= 1000;
      purchases.push_back({repeat ? i - 1000 : i, base + tp::Millis(i)});
    }
    const auto bodies = Bodies(purchases, 1000);
    StallWatch stalls(*daemon);
    const IngestResult r = Post(*daemon, bodies);
    const double stall_ms = stalls.Stop();
    const double hwm = daemon->MemoryMiB("VmHWM");
    const double written = daemon->IoBytes("wchar"), read = daemon->IoBytes("rchar");
    const double large_stall_ms = LargeBodyStall(*daemon, base);
    daemon->Stop();
    ingest_rate_ = static_cast<double>(r.touchpoints) / r.seconds;
    const auto per_touchpoint = [&](double bytes) {
      return std::to_string(static_cast<std::int64_t>(bytes / static_cast<double>(r.touchpoints)));
    };
    Note("ingest: " + std::to_string(r.purchases) + " purchases, " + std::to_string(r.touchpoints) +
         " touchpoints in " + std::to_string(r.seconds) + " s; the daemon wrote " +
         per_touchpoint(written) + " and read " + per_touchpoint(read) + " bytes per touchpoint");
    Metric("ingest_purchases_per_s", static_cast<double>(r.purchases) / r.seconds, "1/s");
    Metric("ingest_touchpoints_per_s", ingest_rate_, "1/s");
    Metric("rss_mib_ingest", hwm, "MiB");
    Metric("ingest_max_stall_ms", stall_ms, "ms");
    Metric("ingest_max_stall_ms_4mib", large_stall_ms, "ms");
  }

  // One request of 1,000 purchases whose attributes nearly fill the body
  // limit (4 MiB), alone: the longest /healthz answer meanwhile, i.e. how long
  // its parse (off the loop) and its write held the loop.
  static double LargeBodyStall(const Daemon& daemon, tp::Instant at) {
    const std::string note(4'000, 'x');
    std::string body = "[";
    for (int i = 0; i < 1000; ++i) {
      if (i > 0) body += ',';
      body += R"({"order_id":"large)" + std::to_string(i) + R"(","buyer_id":"large)" +
              std::to_string(i) +
              R"(","product":"daily","quantity":2,"amount":240,"purchased_at":")" + Rfc3339(at) +
              R"(","attributes":{"note":")" + note + "\"}}";
    }
    body += ']';
    StallWatch stalls(daemon);
    const IngestResult r = Post(daemon, {body}, 1);
    const double stall_ms = stalls.Stop();
    Note("ingest: one request of " + std::to_string(r.purchases) + " purchases in " +
         std::to_string(body.size()) + " bytes took " + std::to_string(r.seconds) + " s");
    return stall_ms;
  }

  // `fire_touchpoints_per_s`: N touchpoints due within 100 ms, fired into
  // the embedded queue and leased and acked by two consumers; from the first
  // due time to the last ack.
  double Fire() {
    return Fire("fire", tp::bench::BurstConfig("{name: outbox, type: queue}"),
                "fire_touchpoints_per_s");
  }
  // `fire_touchpoints_per_s_one_cap` and `_three_caps`: the same under a
  // day cap, and under a day, a week and a month cap, none of them reached:
  // what checking the caps costs.
  void Caps() {
    const std::string queue = tp::bench::BurstConfig("{name: outbox, type: queue}");
    Fire("fire-one-cap", "frequency_cap: {max: 10, per: day}\n" + queue,
         "fire_touchpoints_per_s_one_cap");
    Fire("fire-three-caps",
         "frequency_cap:\n  - {max: 10, per: day}\n  - {max: 50, per: week}\n"
         "  - {max: 200, per: month}\n" +
             queue,
         "fire_touchpoints_per_s_three_caps");
  }
  // Returns the rate.
  double Fire(const std::string& name, const std::string& config, const std::string& metric) {
    auto daemon = Fresh(name, config);
    daemon->Start();
    const tp::Instant due = BurstStart(options_.touchpoints);
    const auto purchases = Burst(options_.touchpoints, due, tp::Millis(100));
    const IngestResult r = Post(*daemon, Bodies(purchases, 1000));
    WaitUntil(due, name.c_str());
    const auto due_steady = Steady::now();
    const double loop_cpu = daemon->CpuSeconds(true), all_cpu = daemon->CpuSeconds(false);
    const double written = daemon->IoBytes("wchar");
    const ServerCpu::Reading server_before = ServerCpuNow();
    Consumed consumed;
    const auto last = Consume(
        *daemon, r.touchpoints, options_.consumers, std::chrono::milliseconds(1),
        [](std::string_view, double) {}, &consumed);
    Note(name + ": " + consumed.Describe(due_steady));
    NoteServerCpu(name, server_before, r.touchpoints);
    const auto per_touchpoint = [&](double seconds) {
      return std::to_string(seconds * 1e6 / static_cast<double>(r.touchpoints));
    };
    Note(name + ": CPU per touchpoint " + per_touchpoint(daemon->CpuSeconds(true) - loop_cpu) +
         " us on the loop, " + per_touchpoint(daemon->CpuSeconds(false) - all_cpu) +
         " us on all the daemon's threads; " +
         per_touchpoint((daemon->IoBytes("wchar") - written) / 1e6) + " bytes written");
    daemon->Stop();
    const double seconds = Seconds(last - due_steady);
    Note(name + ": " + std::to_string(r.touchpoints) + " touchpoints in " +
         std::to_string(seconds) + " s");
    const double rate = static_cast<double>(r.touchpoints) / seconds;
    Metric(metric.c_str(), rate, "1/s");
    return rate;
  }

  // `fire_touchpoints_per_s_three_daemons` (PostgreSQL): the fire figure
  // with three daemons on one database, the purchases posted a third to
  // each, a consumer leasing from each; from the first due time to the
  // last ack.
  double FireThreeDaemons() {
    const std::string name = "fire-three-daemons";
    auto first = Fresh(name, tp::bench::BurstConfig("{name: outbox, type: queue}"));
    std::vector<std::unique_ptr<Daemon>> others;
    for (int i = 1; i < 3; ++i) {
      others.push_back(std::make_unique<Daemon>(
          options_, first->config(), first->database(),
          work_ + "/" + name + "/touchpointd-" + std::to_string(i) + ".log"));
    }
    first->Start();
    for (auto& d : others) d->Start();
    const std::vector<const Daemon*> all = {first.get(), others[0].get(), others[1].get()};
    const tp::Instant due = BurstStart(options_.touchpoints);
    const auto bodies = Bodies(Burst(options_.touchpoints, due, tp::Millis(100)), 1000);
    std::vector<std::vector<std::string>> shares(all.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) shares[i % all.size()].push_back(bodies[i]);
    std::vector<IngestResult> results(all.size());
    std::vector<std::thread> posting;
    for (std::size_t i = 0; i < all.size(); ++i) {
      posting.emplace_back([&, i] { results[i] = Post(*all[i], shares[i], 1); });
    }
    for (auto& t : posting) t.join();
    std::int64_t touchpoints = 0;
    for (const IngestResult& r : results) touchpoints += r.touchpoints;
    WaitUntil(due, name.c_str());
    const auto due_steady = Steady::now();
    const auto daemons_cpu = [&all] {
      double sum = 0;
      for (const Daemon* d : all) sum += d->CpuSeconds(false);
      return sum;
    };
    const double all_cpu = daemons_cpu();
    const ServerCpu::Reading server_before = ServerCpuNow();
    Consumed consumed;
    const auto last = Consume(
        all, touchpoints, static_cast<int>(all.size()), std::chrono::milliseconds(1),
        [](std::string_view, double) {}, &consumed);
    Note(name + ": " + consumed.Describe(due_steady));
    NoteServerCpu(name, server_before, touchpoints);
    Note(name + ": CPU per touchpoint " +
         std::to_string((daemons_cpu() - all_cpu) * 1e6 / static_cast<double>(touchpoints)) +
         " us on all three daemons' threads");
    for (auto& d : others) d->Stop();
    first->Stop();
    const double seconds = Seconds(last - due_steady);
    Note(name + ": " + std::to_string(touchpoints) + " touchpoints in " + std::to_string(seconds) +
         " s");
    const double rate = static_cast<double>(touchpoints) / seconds;
    Metric("fire_touchpoints_per_s_three_daemons", rate, "1/s");
    return rate;
  }

  // `lateness_*`: one touchpoint due every 5 ms for lateness_s seconds, a
  // consumer polling every millisecond while the queue is empty; lateness is
  // when the consumer got it minus its due_at.
  void Lateness() {
    std::string yaml =
        "version: 1\ntimezone: UTC\nmisfire_grace: 1h\nproducts: {daily: {supply_days: 15}}\n"
        "cadences:\n  - name: steady\n    trigger: purchase\n    products: [daily]\n"
        "    steps:\n      - {after: 1h, topic: one}\n"
        "sinks:\n  - {name: outbox, type: queue}\nlog: {level: warn}\n";
    auto daemon = Fresh("lateness", yaml);
    daemon->Start();
    const std::int64_t count = std::int64_t{200} * options_.lateness_s;
    const tp::Instant first = Now() + std::chrono::seconds(2);
    std::vector<Purchase> purchases;
    for (std::int64_t i = 0; i < count; ++i) {
      purchases.push_back({i, first - std::chrono::hours(1) + tp::Millis(5 * i)});
    }
    Post(*daemon, Bodies(purchases, 1000), 1);
    std::vector<double> late;
    late.reserve(static_cast<std::size_t>(count));
    const ServerCpu::Reading server_before = ServerCpuNow();
    Consume(*daemon, count, 1, std::chrono::milliseconds(1), [&](std::string_view text, double at) {
      static constexpr std::string_view kDueAt = R"("due_at":")";
      const auto start = text.find(kDueAt);
      if (start == std::string_view::npos) Fail("an event without a due_at");
      const auto end = text.find('"', start + kDueAt.size());
      const auto due =
          tp::ParseRfc3339(text.substr(start + kDueAt.size(), end - start - kDueAt.size()));
      if (!due) Fail("an event with a bad due_at");
      late.push_back(at - static_cast<double>(due->time_since_epoch().count()));
    });
    NoteServerCpu("lateness", server_before, count);
    daemon->Stop();
    std::sort(late.begin(), late.end());
    auto percentile = [&](double p) {
      return late[std::min(late.size() - 1,
                           static_cast<std::size_t>(p * static_cast<double>(late.size())))];
    };
    Note("lateness: " + std::to_string(late.size()) + " touchpoints, max " +
         std::to_string(late.back()) + " ms");
    Metric("lateness_p50_ms", percentile(0.50), "ms");
    Metric("lateness_p99_ms", percentile(0.99), "ms");
  }

  // `webhook_deliveries_per_s`: N touchpoints due within 100 ms, delivered
  // to a local keep-alive receiver that answers 200 at once; from the first
  // due time to the last delivery.
  void Webhooks() {
    Receiver receiver;
    const std::string dir = work_ + "/webhook-secret";
    WriteFile(dir, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
    auto daemon = Fresh(
        "webhook", tp::bench::BurstConfig("{name: hook, type: webhook, url: \"" + receiver.url() +
                                          "\", secret_file: " + dir + ", concurrency: 64}"));
    daemon->Start();
    const tp::Instant due = BurstStart(options_.webhooks);
    const auto purchases = Burst(options_.webhooks, due, tp::Millis(100));
    const IngestResult r = Post(*daemon, Bodies(purchases, 1000));
    WaitUntil(due, "webhook");
    const auto due_steady = Steady::now();
    const auto deadline = due_steady + std::chrono::minutes(10);
    while (static_cast<std::int64_t>(receiver.unique()) < r.touchpoints) {
      if (Steady::now() > deadline) {
        Fail("webhook: " + std::to_string(receiver.unique()) + " of " +
             std::to_string(r.touchpoints) + " delivered");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const double seconds = Seconds(receiver.last() - due_steady);
    daemon->Stop();
    Note("webhook: " + std::to_string(r.touchpoints) + " deliveries (" +
         std::to_string(receiver.requests()) + " requests) in " + std::to_string(seconds) + " s");
    Metric("webhook_deliveries_per_s", static_cast<double>(r.touchpoints) / seconds, "1/s");
  }

  Options options_;
  std::string work_;
  std::string pg_dir_;                   // the bench's own PostgreSQL server, if it started one
  std::string last_database_;            // the last figure's (dropped with the next figure)
  std::optional<ServerCpu> server_cpu_;  // with --store postgres, the server on this machine
  double ingest_rate_ = 0;
  std::vector<double> fire_rates_, fire3_rates_;  // PostgreSQL: each round's, for their ratio
};

}  // namespace
}  // namespace tp::e2e

int main(int argc, char** argv) {
  tp::e2e::Bench(tp::e2e::ParseOptions(argc, argv)).Run();
  return 0;
}
