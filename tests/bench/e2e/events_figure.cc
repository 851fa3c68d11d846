// `events_per_s` and `report_s_1m` (issue 17): engagement events posted to
// a daemon holding the purchases they answer, then the outcomes report over
// that base, with the loop's longest stall while it is computed.
#include "figures.h"

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

// The example config with every step fired at once: no send window, no
// cap, and a misfire_grace past the purchases' age.
std::string FiringConfig(const Options& options) {
  std::string yaml = ReadFile(options.example_config);
  const auto edit = [&](std::string_view key, std::string_view line) {
    const auto at = yaml.find("\n" + std::string(key));
    if (at == std::string::npos) Fail("the example config has no " + std::string(key));
    const auto end = yaml.find('\n', at + 1);
    yaml.replace(at + 1, end - at - 1, line);
  };
  edit("send_window:", "");
  edit("frequency_cap:", "");
  edit("misfire_grace:", "misfire_grace: 90d");
  return yaml;
}

// A gauge or the sum of a counter's series, from a /metrics text.
double Scraped(const std::string& text, std::string_view name) {
  double sum = 0;
  std::size_t at = 0;
  while ((at = text.find(name, at)) != std::string::npos) {
    const bool line_start = at == 0 || text[at - 1] == '\n';
    const char next = text[at + name.size()];
    const auto end = text.find('\n', at);
    if (line_start && (next == ' ' || next == '{')) {
      sum += std::stod(text.substr(text.rfind(' ', end) + 1, end));
    }
    at = end;
  }
  return sum;
}

}  // namespace

// N first purchases of buyers b0.. spread over 30 days from 60 days ago,
// with the example's cadences (FiringConfig): all six steps of each fire as
// it is ingested, and that is waited for. Then 2N events, a read and a click
// per buyer after those fires (each credited to the buyer's last), then
// the report by tier and by cadence, each timed alone, and by cadence once
// more while /healthz is asked back to back.
void EventsFigure(const Options& options, const std::string& work) {
  auto daemon = Fresh(options, work, "events", FiringConfig(options));
  daemon->Start();
  const std::int64_t n = options.report_purchases;
  const tp::Instant base = Now() - std::chrono::hours(24 * 60);
  const tp::Millis span = std::chrono::hours(24 * 30);
  std::vector<Purchase> purchases;
  for (std::int64_t i = 0; i < n; ++i) purchases.push_back({i, base + span * i / n});
  const auto ingest_started = Steady::now();
  const IngestResult bought = Post(*daemon, Bodies(purchases, 1000));
  auto scraper = daemon->Client();
  scraper->set_timeout(std::chrono::minutes(1));
  for (;;) {
    auto m = scraper->Request("GET", "/metrics");
    if (!m.ok() || m->status != 200) Fail("events: /metrics failed");
    if (Scraped(m->body, "touchpoint_touchpoints_pending") == 0) {
      const double fired = Scraped(m->body, "touchpoint_touchpoints_fired_total");
      if (fired != 6.0 * static_cast<double>(n)) {
        Fail("events: " + std::to_string(fired) + " touchpoints fired, not 6 a purchase");
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  Note("events: " + std::to_string(bought.purchases) + " purchases in " +
       std::to_string(bought.seconds) + " s, their " + std::to_string(6 * n) +
       " touchpoints all fired " + std::to_string(Seconds(Steady::now() - ingest_started)) +
       " s from the first");

  // The events fall in the second before they are posted: after every fire
  // (all done before that second began), and before the report's as_of
  // (now), however quickly they are posted.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto bodies =
      EventBodies(2 * n, Now() - std::chrono::seconds(1), std::chrono::seconds(1), 1000);
  const IngestResult heard = Post(*daemon, bodies, 2, "/v1/events");
  if (heard.purchases != 2 * n) {
    Fail("events: " + std::to_string(heard.purchases) + " of " + std::to_string(2 * n) +
         " accepted");
  }
  Note("events: " + std::to_string(heard.purchases) + " events in " +
       std::to_string(heard.seconds) + " s");
  Metric("events_per_s", static_cast<double>(heard.purchases) / heard.seconds, "1/s");

  // The report by tier and by cadence, timed alone; then by cadence again
  // while another connection asks /healthz back to back: its slowest answer
  // is how long the loop was held. (The prober keeps a core busy, so the
  // report is not timed then.)
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
    // What it counted: every purchase; every fire, and every event credited.
    const json report = json::parse(r->body);
    const char* fields[2][2] = {{"purchases", "purchases"}, {"fired", "engaged"}};
    const std::int64_t expected[2][2] = {{n, n}, {6 * n, 2 * n}};
    for (int f = 0; f < 2; ++f) {
      std::int64_t counted = 0;
      for (const json& row : report.at("rows")) counted += row.at(fields[i][f]).get<std::int64_t>();
      if (counted != expected[i][f]) {
        Fail("events: the report by " + std::string(by[i]) + " counted " + std::to_string(counted) +
             " " + fields[i][f]);
      }
    }
  }
  std::atomic<bool> done{false};
  double stall_ms = 0;
  std::thread prober([&] {
    auto probe = daemon->Client();
    while (!done) {
      const auto asked = Steady::now();
      auto h = probe->Request("GET", "/healthz");
      if (!h.ok() || h->status != 200) Fail("events: /healthz failed during the report");
      stall_ms = std::max(stall_ms, Seconds(Steady::now() - asked) * 1000);
    }
  });
  const auto probed_start = Steady::now();
  auto probed = client->Request("GET", "/v1/reports/outcomes?by=cadence");
  const double probed_s = Seconds(Steady::now() - probed_start);
  done = true;
  prober.join();
  if (!probed.ok() || probed->status != 200) Fail("events: the probed report failed");
  const double hwm = daemon->MemoryMiB("VmHWM");
  daemon->Stop();
  Note("events: report by tier " + std::to_string(seconds[0]) + " s, by cadence " +
       std::to_string(seconds[1]) + " s, over " + std::to_string(n) + " purchases and " +
       std::to_string(2 * n) + " events (" + std::to_string(6 * n) +
       " fired); by cadence again with /healthz asked meanwhile " + std::to_string(probed_s) +
       " s, the loop held at most " + std::to_string(stall_ms) + " ms; peak RSS " +
       std::to_string(hwm) + " MiB");
  Metric("report_s_1m", std::max(seconds[0], seconds[1]), "s");
  Metric("report_max_stall_ms", stall_ms, "ms");
  Metric("rss_mib_report_1m", hwm, "MiB");
}

}  // namespace tp::e2e
