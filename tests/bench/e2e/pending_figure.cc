// The `pending` figures (`rss_mib_pending_1m`, `startup_s_pending_1m`,
// `db_bytes_per_touchpoint`, `reload_s_pending_1m`, `reload_max_stall_ms`,
// `metrics_scrape_ms_pending_1m`, `status_ms_pending_1m`,
// `metrics_scrape_ms_during_status`): a large base of pending touchpoints,
// then a restart, a /metrics scrape, /v1/status (with a scrape while it
// counts) and a reload that re-plans them all.
#include <nlohmann/json.hpp>

#include "figures.h"

namespace tp::e2e {

void PendingFigure(const Options& options, const std::string& work,
                   std::unique_ptr<Daemon> daemon) {
  daemon->Start();
  const std::int64_t n = (options.pending + 5) / 6;
  const tp::Instant base = Now() - std::chrono::minutes(10);
  std::vector<Purchase> purchases;
  for (std::int64_t i = 0; i < n; ++i) purchases.push_back({i, base + tp::Millis(i % 600'000)});
  const std::string wal_before = options.postgres ? PgWalPosition(*daemon) : "";
  const IngestResult r = Post(*daemon, Bodies(purchases, 1000));
  double hwm = daemon->MemoryMiB("VmHWM");
  daemon->Stop();
  const std::string dir = work + "/pending";
  const auto bytes = options.postgres ? PgSizes(*daemon, r, wal_before)
                                      : static_cast<std::uintmax_t>(fs::file_size(dir + "/tp.db"));
  Note("pending: " + std::to_string(r.touchpoints) + " touchpoints in " +
       std::to_string(r.seconds) + " s, " + std::to_string(bytes) +
       " bytes, peak RSS while ingesting " + std::to_string(hwm) + " MiB");

  const double startup = daemon->Start();
  auto client = daemon->Client();
  const auto scrape_start = Steady::now();
  auto scrape = client->Request("GET", "/metrics");
  const double scrape_ms = Seconds(Steady::now() - scrape_start) * 1000;
  if (!scrape.ok() || scrape->status != 200) Fail("/metrics failed");
  for (int i = 0; i < 100; ++i) {
    auto b = client->Request("GET", "/v1/buyers/b" + std::to_string(i * (n / 100)));
    if (!b.ok() || b->status != 200) Fail("a buyer lookup failed");
  }
  // GET /v1/status twice: the days counted, then given again if that took
  // 100 ms or more (docs/api.md).
  double status_ms[2] = {0, 0};
  std::string days_as_of[2];
  const auto ask_status = [&client] {
    const auto asked = Steady::now();
    auto status = client->Request("GET", "/v1/status");
    if (!status.ok() || status->status != 200) Fail("/v1/status failed");
    return std::pair(Seconds(Steady::now() - asked) * 1000,
                     json::parse(status->body).at("pending").at("days_as_of").get<std::string>());
  };
  for (int i = 0; i < 2; ++i) std::tie(status_ms[i], days_as_of[i]) = ask_status();
  // Waits until the days counted in `ms` or less are no longer given again
  // (ten times as long as the count took), and a few milliseconds more, so
  // the next count's days_as_of (to the millisecond) differs.
  const auto wait_out = [](double ms) {
    std::this_thread::sleep_for(Millis(static_cast<std::int64_t>(ms * 11) + 5));
  };
  // Counted once more, warm, to time a count; then again with a /metrics
  // scrape from another connection half way through that time: the scrape
  // should not wait for the days.
  wait_out(std::max(status_ms[0], status_ms[1]));
  const auto [warm_ms, warm_as_of] = ask_status();
  if (warm_as_of == days_as_of[0] || warm_as_of == days_as_of[1]) {
    Fail("/v1/status gave the days again after their time");
  }
  wait_out(warm_ms);
  double scrape_during_ms = -1;
  Steady::time_point scrape_sent;
  const auto last_asked = Steady::now();
  const auto half_way =
      last_asked + std::chrono::microseconds(static_cast<std::int64_t>(warm_ms * 500));
  std::thread scraper([&daemon, &scrape_during_ms, &scrape_sent, half_way] {
    auto other = daemon->Client();
    std::this_thread::sleep_until(half_way);
    scrape_sent = Steady::now();
    auto during = other->Request("GET", "/metrics");
    if (during.ok() && during->status == 200) {
      scrape_during_ms = Seconds(Steady::now() - scrape_sent) * 1000;
    }
  });
  const auto [last_ms, last_as_of] = ask_status();
  const auto answered = Steady::now();
  scraper.join();
  if (scrape_during_ms < 0) Fail("/metrics failed during /v1/status");
  if (last_as_of == warm_as_of) Fail("/v1/status gave the days again after their time");
  Note("pending: restart " + std::to_string(startup) + " s, /metrics " + std::to_string(scrape_ms) +
       " ms, /v1/status " + std::to_string(status_ms[0]) + " ms, again " +
       std::to_string(status_ms[1]) + " ms (" +
       (days_as_of[0] == days_as_of[1] ? "the days given again" : "the days counted again") +
       "), counted again " + std::to_string(warm_ms) + " ms, and " + std::to_string(last_ms) +
       " ms with /metrics " + std::to_string(scrape_during_ms) + " ms " +
       (scrape_sent < answered ? "sent meanwhile" : "sent after the answer (a quick count)"));
  // The reload: the last trust step moves from 21d to 22d.
  std::string yaml = ReadFile(dir + "/touchpoint.yaml");
  const auto step = yaml.find("after: 21d");
  if (step == std::string::npos) Fail("the example config has no 'after: 21d' step to move");
  yaml.replace(step, 10, "after: 22d");
  WriteFile(dir + "/touchpoint.yaml", yaml);
  // The reload is done when its re-plan is; meanwhile /healthz is asked
  // back to back, and the slowest answer is how long the loop was held.
  const auto reload_start = Steady::now();
  daemon->Signal(SIGHUP);
  double reload_s = 0;
  double stall_ms = 0;
  for (;;) {
    const auto asked = Steady::now();
    auto h = client->Request("GET", "/healthz");
    if (!h.ok()) Fail("/healthz failed during the reload");
    stall_ms = std::max(stall_ms, Seconds(Steady::now() - asked) * 1000);
    const json health = json::parse(h->body);
    const json& config = health.at("config");
    if (config.contains("last_reload")) {
      if (!config.at("last_reload").at("ok").get<bool>()) Fail("the reload failed: " + h->body);
      // (A build before the background re-plan has no "replan": done.)
      if (!config.contains("replan") || config.at("replan").at("state") == "done") {
        reload_s = Seconds(Steady::now() - reload_start);
        break;
      }
    }
    if (Steady::now() - reload_start > std::chrono::hours(1)) Fail("the reload never ended");
  }
  hwm = std::max(hwm, daemon->MemoryMiB("VmHWM"));
  daemon->Stop();
  Note("pending: reload " + std::to_string(reload_s) + " s (the loop held at most " +
       std::to_string(stall_ms) + " ms)");
  Metric("rss_mib_pending_1m", hwm, "MiB");
  Metric("startup_s_pending_1m", startup, "s");
  Metric("db_bytes_per_touchpoint", static_cast<double>(bytes) / static_cast<double>(r.touchpoints),
         "B");
  Metric("reload_s_pending_1m", reload_s, "s");
  Metric("reload_max_stall_ms", stall_ms, "ms");
  Metric("metrics_scrape_ms_pending_1m", scrape_ms, "ms");
  Metric("status_ms_pending_1m", status_ms[0], "ms");
  Metric("metrics_scrape_ms_during_status", scrape_during_ms, "ms");
}

}  // namespace tp::e2e
