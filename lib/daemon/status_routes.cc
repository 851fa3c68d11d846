#include "daemon/status_routes.h"

#include <date/tz.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <fstream>
#include <optional>

#include "api/auth.h"
#include "api/http_json.h"
#include "api/v1_gate.h"
#include "ops/metrics.h"

namespace tp {

namespace asio = boost::asio;
using json = api::Json;

namespace {

// What /healthz leaves out for a request without the API's token when
// `auth` is on: every free-text field, since errors and reasons name
// internal hosts, ports, paths and statements. The states and counts stay,
// for a load balancer's or a monitor's probe.
constexpr const char* kWithheld =
    "the config's path, errors and reasons: send the API's bearer token for them";
// The same without `auth`, to a request by a name not the daemon's (a page
// that made its own name resolve here: api::ForeignHost()).
constexpr const char* kWithheldForeignHost =
    "the config's path, errors and reasons: ask by an IP address, localhost or a name in "
    "http.allowed_hosts for them";

}  // namespace

void StatusRoutes::AddTo(api::Router& router) {
  router.Add(
      "GET", "/healthz",
      [this](const HttpRequest& req, const api::RouteParams&, HttpRespond respond) {
        const auto& tokens = parts_.rules->auth_tokens;
        if (!tokens.empty()) {
          return respond(Health(BearerAuthorized(req.authorization, tokens) ? nullptr : kWithheld));
        }
        const bool foreign = api::ForeignHost(req, parts_.rules->http_allowed_hosts).has_value();
        respond(Health(foreign ? kWithheldForeignHost : nullptr));
      });
  router.Add("GET", "/metrics",
             [this](const HttpRequest&, const api::RouteParams&, HttpRespond respond) {
               Metrics(std::move(respond));
             });
  router.Add("GET", "/v1/status",
             [this](const HttpRequest&, const api::RouteParams&, HttpRespond respond) {
               Status(std::move(respond));
             });
}

HttpResponse StatusRoutes::Health(const char* withheld) const {
  const bool details = withheld == nullptr;
  json sinks = json::array();
  for (const SinkHealth& h : parts_.dispatcher.Health()) {
    json item = {{"name", h.name}, {"state", h.state}};
    if (h.consecutive_failures > 0) item["consecutive_failures"] = h.consecutive_failures;
    if (details && !h.last_error.empty()) item["last_error"] = h.last_error;
    sinks.push_back(std::move(item));
  }
  const Reloader::State& config = parts_.reloader.state();
  json cfg = {{"sha256", config.sha256}, {"loaded_at", FormatRfc3339(config.loaded_at, UtcZone())}};
  if (details) cfg["path"] = parts_.options.config_path;
  if (const Replanner::Progress& p = parts_.replanner.progress(); p.started_at) {
    json replan = {{"state", p.running ? "running" : "done"},
                   {"started_at", FormatRfc3339(*p.started_at, UtcZone())},
                   {"buyers", p.buyers},
                   {"moved", p.counts.moved},
                   {"added", p.counts.added},
                   {"cancelled", p.counts.cancelled},
                   {"updated", p.counts.updated}};
    if (p.finished_at) replan["finished_at"] = FormatRfc3339(*p.finished_at, UtcZone());
    if (p.failures > 0) replan["failures"] = p.failures;
    if (details && p.failures > 0) replan["last_error"] = p.last_error;
    cfg["replan"] = std::move(replan);
  }
  const bool replan_failing = parts_.replanner.progress().failures >= Replanner::kFailuresDegrade;
  if (config.last_reload_at) {
    json last = {{"at", FormatRfc3339(*config.last_reload_at, UtcZone())},
                 {"ok", config.errors.empty()}};
    if (details && !config.errors.empty()) last["errors"] = config.errors;
    cfg["last_reload"] = std::move(last);
  }
  json storage = parts_.storage.Health();
  if (!details) storage.erase("reason");
  const FiringHealth fire = parts_.firing.Health();
  json firing = {{"state", fire.consecutive_failures == 0 ? "ok" : "failing"}};
  if (fire.consecutive_failures > 0) firing["consecutive_failures"] = fire.consecutive_failures;
  if (details && fire.consecutive_failures > 0) firing["last_error"] = fire.last_error;
  // Still 200: the daemon runs on its last good rules, and serves leases
  // and acks when short of space. "degraded" tells a person (and an alert
  // on /metrics) that something needs them.
  const bool degraded = !config.errors.empty() || parts_.storage.paused() || replan_failing ||
                        fire.consecutive_failures >= kFiringFailuresDegrade;
  json health = {{"status", degraded ? "degraded" : "ok"},
                 {"config", std::move(cfg)},
                 {"storage", std::move(storage)},
                 {"firing", std::move(firing)},
                 {"sinks", std::move(sinks)}};
  if (!details) health["withheld"] = withheld;
  return api::JsonResponse(200, health);
}

// The store-backed gauges are counted on a store reader's thread (a
// scan of the pending index: 50-80 ms at a million pending), then set and
// the page rendered here; the rest accumulate as things happen.
void StatusRoutes::Metrics(HttpRespond respond) {
  std::vector<std::string> queues, push_sinks;
  for (const Sink& sink : parts_.rules->sinks) {
    (sink.type == Sink::Type::kQueue ? queues : push_sinks).push_back(sink.name);
  }
  // The page is rendered back on the loop; the work guard keeps the loop
  // running (at a stop too) until then.
  parts_.reader.Count(std::move(queues), std::move(push_sinks),
                      [this, work = asio::make_work_guard(parts_.io),
                       respond = std::move(respond)](StatusOr<StoreGauges> gauges) mutable {
                        asio::post(work.get_executor(), [this, respond = std::move(respond),
                                                         gauges = std::move(gauges)]() mutable {
                          // (The outage itself is logged by the store's watch.)
                          if (!gauges.ok() && gauges.status().unavailable()) {
                            parts_.storage.Check(true);
                          } else if (!gauges.ok()) {
                            spdlog::warn("/metrics: the store's gauges left out: {}",
                                         gauges.status().message());
                          }
                          respond(RenderMetrics(gauges.ok() ? &*gauges : nullptr));
                        });
                        work.reset();
                      });
}

// Both counts at once, each on a thread of the store reader's (each
// consistent in itself), then the answer rendered on the loop once both
// are in (or the first to fail answered at once). The days are shared by
// the requests at once, and given again for a while when counting them is
// slow (daemon/shared_read.h); the rest is counted for each request
// (bounded: store/pg/gauges.h).
void StatusRoutes::Status(HttpRespond respond) {
  // Local days in the rules' zone, from today's start. Each day's start is
  // its own midnight (or the first instant after it, where summer time
  // skips midnight), not the previous day's start plus a day.
  StatusKey key{parts_.rules.shared(), {}};  // the same rules throughout
  const Zone* zone = key.rules->timezone;
  const auto today = date::floor<date::days>(ToLocal(parts_.clock.Now(), zone));
  for (int d = 0; d <= kPendingDays; ++d) {
    key.boundaries.push_back(FromLocal(LocalTime(today + date::days(d)), zone));
  }
  std::vector<std::string> queues, push_sinks;
  for (const Sink& sink : key.rules->sinks) {
    (sink.type == Sink::Type::kQueue ? queues : push_sinks).push_back(sink.name);
  }
  // Filled in on the loop as the counts come in: a failure answers at
  // once, and otherwise the second count in.
  struct Answer {
    StatusKey key;
    HttpRespond respond;  // null once answered
    std::optional<StoreGauges> gauges;
    std::optional<DaysCounted> days;
  };
  auto answer = std::make_shared<Answer>(Answer{key, std::move(respond), {}, {}});
  auto settle = [this](Answer& a, const tp::Status& failed) {
    if (!a.respond) return;  // answered already: the other count failed
    if (!failed.ok()) {
      HttpRespond reply = std::exchange(a.respond, nullptr);
      return reply(parts_.storage.StoreFailed(failed, "cannot count the store"));
    }
    if (!a.gauges || !a.days) return;
    HttpRespond reply = std::exchange(a.respond, nullptr);
    reply(RenderStatus(*a.key.rules, *a.gauges, *a.days, a.key.boundaries));
  };
  parts_.reader.Count(
      std::move(queues), std::move(push_sinks),
      [answer, settle,
       work = asio::make_work_guard(parts_.io)](StatusOr<StoreGauges> gauges) mutable {
        // Everything moved to the loop, so that the answer (and the
        // connection it holds) is let go there, not on the reader's thread.
        asio::post(work.get_executor(), [answer = std::move(answer), settle = std::move(settle),
                                         gauges = std::move(gauges)]() mutable {
          if (gauges.ok()) answer->gauges = std::move(*gauges);
          settle(*answer, gauges.status());
        });
        work.reset();
      });
  status_reads_.Get(
      key, [this, key](DayReads::Done done) { CountDays(key, std::move(done)); },
      [answer, settle](const StatusOr<DaysCounted>& days) {
        if (days.ok()) answer->days = *days;
        settle(*answer, days.status());
      });
}

void StatusRoutes::CountDays(const StatusKey& key, DayReads::Done done) {
  parts_.reader.PendingByDay(
      key.boundaries, [this, work = asio::make_work_guard(parts_.io),
                       done = std::move(done)](StatusOr<PendingDays> days) mutable {
        asio::post(
            work.get_executor(), [this, done = std::move(done), days = std::move(days)]() mutable {
              if (!days.ok()) return done(days.status(), {});
              const auto took = days->took;
              // When the count started, not when it was asked for
              // (it may have waited for the days' thread).
              const Instant as_of = parts_.clock.Now() - std::chrono::duration_cast<Millis>(took);
              done(DaysCounted{std::move(*days), as_of}, took);
            });
        work.reset();
      });
}

HttpResponse StatusRoutes::RenderStatus(const Rules& rules, const StoreGauges& gauges,
                                        const DaysCounted& counted,
                                        const std::vector<Instant>& boundaries) const {
  const PendingDays& days = counted.days;
  auto count_of = [](const auto& pairs, const std::string& name) -> std::int64_t {
    for (const auto& [key, n] : pairs) {
      if (key == name) return n;
    }
    return 0;
  };
  json sinks = json::array();
  const std::vector<SinkHealth> health = parts_.dispatcher.Health();
  for (const Sink& sink : rules.sinks) {
    if (sink.type == Sink::Type::kQueue) continue;
    json item = {{"name", sink.name},
                 {"type", sink.type == Sink::Type::kWebhook ? "webhook" : "redis"},
                 {"state", "ok"},
                 {"consecutive_failures", 0},
                 {"last_error", nullptr},
                 {"outbox", count_of(gauges.outbox, sink.name)},
                 {"dead_letters", count_of(gauges.dead_letters, sink.name)}};
    for (const SinkHealth& h : health) {
      if (h.name != sink.name) continue;
      item["state"] = h.state;
      item["consecutive_failures"] = h.consecutive_failures;
      if (!h.last_error.empty()) item["last_error"] = h.last_error;
    }
    sinks.push_back(std::move(item));
  }
  json queues = json::array();
  for (const auto& [name, messages] : gauges.queue_messages) {
    queues.push_back({{"name", name}, {"messages", messages}});
  }
  json per_day = json::array();
  for (std::size_t i = 0; i < days.days.size(); ++i) {
    json cadences = json::object();
    std::int64_t total = 0;
    for (const auto& [order, n] : days.days[i]) {
      const std::string name = order >= 0 && static_cast<std::size_t>(order) < rules.cadences.size()
                                   ? rules.cadences[static_cast<std::size_t>(order)].name
                                   : "(not in the rules)";
      cadences[name] = cadences.value(name, std::int64_t{0}) + n;
      total += n;
    }
    per_day.push_back({{"day", FormatRfc3339(boundaries[i], rules.timezone).substr(0, 10)},
                       {"total", total},
                       {"cadences", std::move(cadences)}});
  }
  return api::JsonResponse(200, {{"as_of", FormatRfc3339(parts_.clock.Now(), UtcZone())},
                                 {"sinks", std::move(sinks)},
                                 {"queues", std::move(queues)},
                                 {"counts_estimated", gauges.estimated},
                                 {"pending",
                                  {{"total", gauges.pending},
                                   {"timezone", rules.timezone->name()},
                                   {"days_as_of", FormatRfc3339(counted.as_of, UtcZone())},
                                   {"before", days.before},
                                   {"days", std::move(per_day)},
                                   {"later", days.later}}}});
}

HttpResponse StatusRoutes::RenderMetrics(const StoreGauges* gauges) {
  DaemonMetrics& m = parts_.metrics;
  if (m.taken_over != nullptr) {
    const std::int64_t now = parts_.store.TakenOver();
    m.taken_over->Add({}, static_cast<double>(now - taken_over_));
    taken_over_ = now;
  }
  if (m.held_for_order != nullptr) {
    const std::int64_t now = parts_.firing.HeldForOrder();
    m.held_for_order->Add({}, static_cast<double>(now - held_for_order_));
    held_for_order_ = now;
  }
  m.pending.Clear();
  m.counts_estimated.Clear();
  m.outbox.Clear();
  m.dead_letters.Clear();
  m.queue_messages.Clear();
  m.circuit_open.Clear();
  m.store_counts_up.Set({}, gauges != nullptr ? 1 : 0);
  if (gauges != nullptr) {
    m.pending.Set({}, static_cast<double>(gauges->pending));
    m.counts_estimated.Set({}, gauges->estimated ? 1 : 0);
    for (const auto& [queue, depth] : gauges->queue_messages) {
      m.queue_messages.Set({queue}, static_cast<double>(depth));
    }
    for (const auto& [sink, dead] : gauges->dead_letters) {
      m.dead_letters.Set({sink}, static_cast<double>(dead));
      m.outbox.Set({sink}, 0);
    }
    // Sinks removed from the config included.
    for (const auto& [sink, waiting] : gauges->outbox) {
      m.outbox.Set({sink}, static_cast<double>(waiting));
    }
  }
  for (const SinkHealth& h : parts_.dispatcher.Health()) {
    m.circuit_open.Set({h.name}, h.failing ? 1 : 0);
  }
  m.firing_failures.Set({}, parts_.firing.Health().consecutive_failures);
  m.resident_memory.Set({}, ResidentBytes());
  m.http_connections.Set({}, static_cast<double>(parts_.server.Connections()));
  m.http_max_connections.Set({}, static_cast<double>(parts_.server.MaxConnections()));
  m.http_idle_connections.Set({}, static_cast<double>(parts_.server.IdleConnections()));
  m.http_idle_closed.Set({}, static_cast<double>(parts_.server.IdleClosed()));
  return HttpResponse{200, m.registry.Render(), std::string(metrics::kContentType)};
}

double StatusRoutes::ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long long size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace tp
