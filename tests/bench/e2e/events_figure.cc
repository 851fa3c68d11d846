// `events_per_s` and `report_s_1m` (issue 17): engagement events posted to
// a daemon holding the purchases they answer, then the outcomes report over
// that base, with the loop's longest stall while it is computed.
#include "harness.h"

namespace tp::e2e {
namespace {

// JSON array bodies of `batch` events each: event v<i> of buyer b<i/2>, a
// read and then a click, `at` spread over `span` from `base`.
std::vector<std::string> EventBodies(std::int64_t events, tp::Instant base, tp::Millis span,
                                     std::size_t batch) {
  std::vector<std::string> bodies;
  std::string body;
  for (std::int64_t i = 0; i < events; ++i) {
    body += body.empty() ? "[" : ",";
    body += R"({"event_id":"v)" + std::to_string(i) + R"(","buyer_id":"b)" + std::to_string(i / 2) +
            R"(","type":")" + (i % 2 == 0 ? "read" : "clicked") + R"(","at":")" +
            Rfc3339(base + span * i / events) + "\"}";
    if (static_cast<std::size_t>(i % static_cast<std::int64_t>(batch)) == batch - 1 ||
        i == events - 1) {
      bodies.push_back(body + "]");
      body.clear();
    }
  }
  return bodies;
}

}  // namespace

// The example config; N first purchases of buyers b0.. spread over the last
// 60 days (their steps are long missed: skipped at ingest, nothing fires),
// then 2N events, a read and a click per buyer a day after the purchase,
// then the report by tier and by cadence, /healthz asked back to back
// meanwhile.
void EventsFigure(const Options& options, const std::string& work) {
  auto daemon = Fresh(options, work, "events", "");
  daemon->Start();
  const std::int64_t n = options.report_purchases;
  const tp::Instant base = Now() - std::chrono::hours(24 * 60);
  const tp::Millis span = std::chrono::hours(24 * 30);
  std::vector<Purchase> purchases;
  for (std::int64_t i = 0; i < n; ++i) purchases.push_back({i, base + span * i / n});
  const IngestResult bought = Post(*daemon, Bodies(purchases, 1000));
  Note("events: " + std::to_string(bought.purchases) + " purchases in " +
       std::to_string(bought.seconds) + " s");

  const auto bodies = EventBodies(2 * n, base + std::chrono::hours(24), span, 1000);
  const IngestResult heard = Post(*daemon, bodies, 2, "/v1/events");
  if (heard.purchases != 2 * n) {
    Fail("events: " + std::to_string(heard.purchases) + " of " + std::to_string(2 * n) +
         " accepted");
  }
  Note("events: " + std::to_string(heard.purchases) + " events in " +
       std::to_string(heard.seconds) + " s");
  Metric("events_per_s", static_cast<double>(heard.purchases) / heard.seconds, "1/s");

  // The report, while another connection asks /healthz back to back: its
  // slowest answer is how long the loop was held.
  std::atomic<bool> done{false};
  double stall_ms = 0;
  std::thread prober([&] {
    auto client = daemon->Client();
    while (!done) {
      const auto asked = Steady::now();
      auto h = client->Request("GET", "/healthz");
      if (!h.ok() || h->status != 200) Fail("events: /healthz failed during the report");
      stall_ms = std::max(stall_ms, Seconds(Steady::now() - asked) * 1000);
    }
  });
  auto client = daemon->Client();
  client->set_timeout(std::chrono::minutes(10));
  double seconds[2] = {0, 0};
  const char* by[2] = {"tier", "cadence"};
  for (int i = 0; i < 2; ++i) {
    const auto started = Steady::now();
    auto r = client->Request("GET", std::string("/v1/reports/outcomes?by=") + by[i]);
    seconds[i] = Seconds(Steady::now() - started);
    if (!r.ok() || r->status != 200) {
      Fail(std::string("events: the report failed: ") + (r.ok() ? r->body : r.status().message()));
    }
    const json report = json::parse(r->body);
    if (i == 0) {
      std::int64_t counted = 0;
      for (const json& row : report.at("rows")) counted += row.at("purchases").get<std::int64_t>();
      if (counted != n)
        Fail("events: the report counted " + std::to_string(counted) + " purchases");
    }
  }
  done = true;
  prober.join();
  const double hwm = daemon->MemoryMiB("VmHWM");
  daemon->Stop();
  Note("events: report by tier " + std::to_string(seconds[0]) + " s, by cadence " +
       std::to_string(seconds[1]) + " s, over " + std::to_string(n) + " purchases and " +
       std::to_string(2 * n) + " events; the loop held at most " + std::to_string(stall_ms) +
       " ms; peak RSS " + std::to_string(hwm) + " MiB");
  Metric("report_s_1m", std::max(seconds[0], seconds[1]), "s");
  Metric("report_max_stall_ms", stall_ms, "ms");
  Metric("rss_mib_report_1m", hwm, "MiB");
}

}  // namespace tp::e2e
