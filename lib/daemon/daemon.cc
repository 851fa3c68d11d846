// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <spdlog/spdlog.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "api/auth.h"
#include "api/buyer_routes.h"
#include "api/dead_letter_routes.h"
#include "api/http_json.h"
#include "api/purchase_routes.h"
#include "api/queue_routes.h"
#include "api/router.h"
#include "config/loader.h"
#include "core/json_parse.h"
#include "core/text.h"
#include "daemon/daemon.h"
#include "daemon/daemon_metrics.h"
#include "daemon/fire_loop.h"
#include "daemon/ingest_batcher.h"
#include "daemon/replanner.h"
#include "daemon/retention_loop.h"
#include "daemon/space_guard.h"
#include "delivery/dispatcher.h"
#include "http/server.h"
#include "ops/logging.h"
#include "ops/service_manager.h"
#include "planner/replan.h"
#include "scheduler/scheduler.h"
#include "store/sqlite_store.h"
#include "store/store_reader.h"

namespace tp {
namespace {

namespace asio = boost::asio;
using json = api::Json;

}  // namespace

struct Daemon::Impl {
  Impl(asio::io_context& io_context, std::shared_ptr<const Rules> r, const Clock& c,
       std::unique_ptr<SqliteStore> s, std::unique_ptr<HttpServer> listening, DaemonOptions opts)
      : io(io_context),
        options(std::move(opts)),
        metrics(options.version),
        clock(c),
        rules(std::move(r)),
        store(std::move(s)),
        scheduler(*store, clock, rules),
        server_owned(std::move(listening)),
        server(*server_owned),
        watchdog(io),
        reserve(options.database + "-reserve"),
        space([this] { return store->Space(); }, reserve, clock),
        space_timer(io),
        replanner(
            io, *store, clock,
            [this](const ReplanCounts& step, bool done) { Replanned(step, done); },
            [this] { return !space.short_of_space(); },
            [this](const Status& failed) {
              if (failed.unavailable()) CheckSpace(true);
            }),
        fire(io, *store, scheduler, clock,
             {.may_fire = [this] { return !stopping && !space.short_of_space(); },
              .covered = [this](Instant now) { return replanner.Covers(now); },
              .storage_full = [this] { CheckSpace(true); },
              .fired = [this] { dispatcher->Wake(); }}),
        batcher(
            io, *store, scheduler, metrics, rules,
            {.no_room = [this]() -> std::optional<std::string> {
               if (!space.short_of_space()) return std::nullopt;
               return space.report().reason;
             },
             .store_failed = [this](const Status& failed,
                                    const std::string& what) { return StoreFailed(failed, what); },
             .storage_full = [this] { CheckSpace(true); },
             .committed = [this] { fire.Rearm(); }}),
        retention(
            io, *store, clock, rules,
            [this](std::int64_t deleted) { metrics.pruned.Add({}, static_cast<double>(deleted)); }),
        route_context{clock, rules,
                      [this](const Status& failed, const std::string& what) {
                        return StoreFailed(failed, what);
                      }},
        purchase_routes(
            route_context, [this] { return batcher.Closed(); },
            [this](std::vector<Purchase> items, HttpRespond respond) {
              batcher.Submit(std::move(items), std::move(respond));
            }),
        buyer_routes(route_context, *store, scheduler),
        dead_letter_routes(route_context, *store, [this] { dispatcher->Wake(); }),
        signals(io) {
    config.sha256 = rules->sha256;
    config.loaded_at = clock.Now();
    scheduler.set_observer(&metrics);
    metrics.start_time.Set({}, static_cast<double>(std::time(nullptr)));
    ConfigMetrics();
  }

  // --- planning -----------------------------------------------------------

  // The rules the pending touchpoints were planned by, at start: other ones
  // (the config changed while the daemon was down) are re-planned to, and a
  // re-plan that a stop or a crash interrupted resumes.
  void StartPlanning() {
    auto state = store->Planning();
    const std::string fingerprint = PlanningFingerprint(*rules);
    Status s = state.status();
    if (state.ok() && state->fingerprint.empty()) {
      // A database from before schema 8: planned by these rules, as far as
      // anyone can tell.
      s = store->SetPlanning(fingerprint, false);
    } else if (state.ok() && state->fingerprint != fingerprint) {
      s = store->SetPlanning(fingerprint, true);
      if (s.ok()) {
        replanner.Run(
            "the config's planning rules are not those the pending touchpoints were "
            "planned by (it changed while touchpointd was stopped)");
      }
    } else if (state.ok() && state->replanning) {
      replanner.Run("resuming the re-plan a stop interrupted");
    }
    if (!s.ok()) {
      spdlog::error("planning state: {}; the next start tries again", s.message());
    }
    metrics.replanning.Set({}, replanner.running() ? 1 : 0);
  }

  // A step of the re-plan went through: what it changed, counted; what it
  // moved or passed, fired when due.
  void Replanned(const ReplanCounts& step, bool done) {
    for (const auto& [cadence, n] : step.cancelled_by_cadence) {
      metrics.cancelled.Add({cadence}, static_cast<double>(n));
    }
    for (const auto& [cadence, n] : step.added_by_cadence) {
      metrics.planned.Add({cadence}, static_cast<double>(n));
    }
    metrics.replanning.Set({}, done ? 0 : 1);
    fire.Rearm(true);
  }

  // --- disk space -----------------------------------------------------------

  // Every second, and after a write failed for want of space: short of space
  // stops firing (Rearm, RunDue) and purchases (IngestPurchases); room again
  // resumes both (daemon/space_guard.h).
  void CheckSpace(bool write_failed = false) {
    if (stopping) return;
    if (space.Check(write_failed)) {
      if (space.short_of_space()) {
        fire.Pause();
      } else {
        fire.Rearm(true);
        dispatcher->Wake();
      }
    }
    const SpaceGuard::Report r = space.report();
    metrics.storage_short.Set({}, r.short_of_space ? 1 : 0);
    metrics.storage_room.Set({}, static_cast<double>(r.last.Room()));
  }

  void WatchSpace() {
    space_timer.expires_after(std::chrono::seconds(1));
    space_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      CheckSpace();
      WatchSpace();
    });
  }

  // A store call failed: 503 with Retry-After when it was for want of space
  // (the daemon then stops taking on more, CheckSpace), else 500.
  HttpResponse StoreFailed(const Status& s, const std::string& what) {
    if (!s.unavailable()) return api::ErrorResponse(500, what + ": " + s.message());
    CheckSpace(true);
    return api::Unavailable(what + ": " + s.message());
  }

  // --- HTTP ---------------------------------------------------------------

  // The routes, once the store reader and the dispatcher exist.
  void AddRoutes() {
    router.Add("GET", "/healthz",
               [this](const HttpRequest&, const api::RouteParams&, HttpRespond respond) {
                 respond(Health());
               });
    router.Add("GET", "/metrics",
               [this](const HttpRequest&, const api::RouteParams&, HttpRespond respond) {
                 Metrics(std::move(respond));
               });
    purchase_routes.AddTo(router);
    buyer_routes.AddTo(router);
    queue_routes = std::make_unique<api::QueueRoutes>(route_context, io, *store, *reader);
    queue_routes->AddTo(router);
    dead_letter_routes.AddTo(router);
  }

  // Every request: /v1 needs the bearer token (when the config has tokens)
  // and JSON bodies; then its route answers.
  void Handle(const HttpRequest& req, HttpRespond respond) {
    const std::string_view target = req.target;
    const auto parts = api::Segments(target.substr(0, target.find('?')));
    if (parts.size() == 2 && parts[0] == "v1" && parts[1] == "purchases") {
      respond = [this, respond = std::move(respond)](HttpResponse r) {
        // 503: for want of space or while stopping, the client retries.
        const char* outcome = r.status == 200   ? "accepted"
                              : r.status == 409 ? "conflict"
                              : r.status == 503 ? "unavailable"
                              : r.status >= 500 ? "error"
                                                : "invalid";
        if (r.status != 401 && r.status != 405) metrics.ingest_requests.Add({outcome});
        respond(std::move(r));
      };
    }
    if (!parts.empty() && parts[0] == "v1") {
      if (!rules->auth_tokens.empty() && !BearerAuthorized(req.authorization, rules->auth_tokens)) {
        HttpResponse r = api::ErrorResponse(
            401, req.authorization.empty() ? "this API needs an Authorization: Bearer token"
                                           : "the bearer token is not valid");
        r.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="touchpoint")");
        metrics.unauthorized.Add({});
        return respond(std::move(r));
      }
      if (req.method == "POST" && !req.body.empty() && !api::IsJson(req.content_type)) {
        return respond(api::ErrorResponse(
            415, "Content-Type must be application/json, got '" + req.content_type + "'"));
      }
    }
    router.Route(req, std::move(respond));
  }

  HttpResponse Health() {
    json sinks = json::array();
    for (const SinkHealth& h : dispatcher->Health()) {
      json item = {{"name", h.name}, {"state", h.state}};
      if (h.consecutive_failures > 0) item["consecutive_failures"] = h.consecutive_failures;
      if (!h.last_error.empty()) item["last_error"] = h.last_error;
      sinks.push_back(std::move(item));
    }
    json cfg = {{"path", options.config_path},
                {"sha256", config.sha256},
                {"loaded_at", FormatRfc3339(config.loaded_at, UtcZone())}};
    if (const Replanner::Progress& p = replanner.progress(); p.started_at) {
      json replan = {{"state", p.running ? "running" : "done"},
                     {"started_at", FormatRfc3339(*p.started_at, UtcZone())},
                     {"buyers", p.buyers},
                     {"moved", p.counts.moved},
                     {"added", p.counts.added},
                     {"cancelled", p.counts.cancelled},
                     {"updated", p.counts.updated}};
      if (p.finished_at) replan["finished_at"] = FormatRfc3339(*p.finished_at, UtcZone());
      if (p.failures > 0) {
        replan["failures"] = p.failures;
        replan["last_error"] = p.last_error;
      }
      cfg["replan"] = std::move(replan);
    }
    const bool replan_failing = replanner.progress().failures >= Replanner::kFailuresDegrade;
    if (config.last_reload_at) {
      json last = {{"at", FormatRfc3339(*config.last_reload_at, UtcZone())},
                   {"ok", config.reload_errors.empty()}};
      if (!config.reload_errors.empty()) last["errors"] = config.reload_errors;
      cfg["last_reload"] = std::move(last);
    }
    const SpaceGuard::Report room = space.report();
    json storage = {{"state", room.short_of_space ? "short" : "ok"},
                    {"room_bytes", room.last.Room()},
                    {"disk_free_bytes", room.last.fs_free},
                    {"reserve_bytes", room.reserve_held}};
    if (room.since) storage["since"] = FormatRfc3339(*room.since, UtcZone());
    if (!room.reason.empty()) storage["reason"] = room.reason;
    // Still 200: the daemon runs on its last good rules, and serves leases
    // and acks when short of space. "degraded" tells a person (and an alert
    // on /metrics) that something needs them.
    const bool degraded = !config.reload_errors.empty() || room.short_of_space || replan_failing;
    return api::JsonResponse(200, {{"status", degraded ? "degraded" : "ok"},
                                   {"config", std::move(cfg)},
                                   {"storage", std::move(storage)},
                                   {"sinks", std::move(sinks)}});
  }

  // Wraps `fn` for another thread: calling the result posts fn(value) to the
  // loop. The work guard keeps the loop running (at a stop too) until then.
  template <typename Fn>
  auto OnLoop(Fn fn) {
    return [work = asio::make_work_guard(io), fn = std::move(fn)](auto value) mutable {
      asio::post(work.get_executor(), [fn = std::move(fn), value = std::move(value)]() mutable {
        fn(std::move(value));
      });
      work.reset();
    };
  }

  // The store-backed gauges are counted on the store reader's thread (a
  // scan of the pending index: 50-80 ms at a million pending), then set and
  // the page rendered here; the rest accumulate as things happen.
  void Metrics(HttpRespond respond) {
    std::vector<std::string> queues, push_sinks;
    for (const Sink& sink : rules->sinks) {
      (sink.type == Sink::Type::kQueue ? queues : push_sinks).push_back(sink.name);
    }
    reader->Count(std::move(queues), std::move(push_sinks),
                  OnLoop([this, respond = std::move(respond)](StatusOr<StoreGauges> gauges) {
                    respond(gauges.ok() ? RenderMetrics(*gauges)
                                        : api::ErrorResponse(500, gauges.status().message()));
                  }));
  }

  HttpResponse RenderMetrics(const StoreGauges& gauges) {
    metrics.pending.Set({}, static_cast<double>(gauges.pending));
    metrics.outbox.Clear();
    metrics.dead_letters.Clear();
    metrics.queue_messages.Clear();
    metrics.circuit_open.Clear();
    for (const auto& [queue, depth] : gauges.queue_messages) {
      metrics.queue_messages.Set({queue}, static_cast<double>(depth));
    }
    for (const auto& [sink, dead] : gauges.dead_letters) {
      metrics.dead_letters.Set({sink}, static_cast<double>(dead));
      metrics.outbox.Set({sink}, 0);
    }
    // Sinks removed from the config included.
    for (const auto& [sink, waiting] : gauges.outbox) {
      metrics.outbox.Set({sink}, static_cast<double>(waiting));
    }
    for (const SinkHealth& h : dispatcher->Health()) {
      metrics.circuit_open.Set({h.name}, h.state == "ok" ? 0 : 1);
    }
    metrics.resident_memory.Set({}, ResidentBytes());
    return HttpResponse{200, metrics.registry.Render(), std::string(metrics::kContentType)};
  }

  static double ResidentBytes() {
    std::ifstream statm("/proc/self/statm");
    long long size = 0, resident = 0;
    if (!(statm >> size >> resident)) return 0;
    return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  }

  void ConfigMetrics() {
    metrics.config_info.Clear();
    metrics.config_info.Set({config.sha256}, 1);
    metrics.config_loaded.Set(
        {}, static_cast<double>(config.loaded_at.time_since_epoch().count()) / 1000.0);
    metrics.reload_ok.Set({}, config.reload_errors.empty() ? 1 : 0);
  }

  // --- reload -------------------------------------------------------------

  Status Reload() {
    if (stopping) return Status::Error("stopping");
    service::NotifyReloading();
    Status s = SwapRules();
    config.last_reload_at = clock.Now();
    service::NotifyReady(s.ok() ? "reloaded; listening on " + server.LocalAddress()
                                : "reload failed, running the previous config: " + s.message());
    return s;
  }

  Status ReloadFailed(std::vector<std::string> errors, const std::string& summary) {
    for (const std::string& e : errors) spdlog::error("reload: {}", e);
    spdlog::error("reload failed: {}; still running the config loaded at {} (sha256 {})", summary,
                  FormatRfc3339(config.loaded_at, UtcZone()), config.sha256.substr(0, 12));
    config.reload_errors = std::move(errors);
    metrics.reloads.Add({"failure"});
    ConfigMetrics();
    return Status::Error(summary);
  }

  Status SwapRules() {
    LoadResult loaded = LoadRulesFile(options.config_path);
    if (!loaded.ok()) {
      std::vector<std::string> errors;
      for (const ConfigError& e : loaded.errors) errors.push_back(e.ToString());
      return ReloadFailed(std::move(errors), options.config_path + ": " +
                                                 std::to_string(loaded.errors.size()) + " error" +
                                                 (loaded.errors.size() == 1 ? "" : "s"));
    }
    const std::shared_ptr<const Rules> next = loaded.rules;
    const std::shared_ptr<const Rules> previous = rules;
    // Requests parsed under the old rules are recorded under them first.
    batcher.Flush();

    // The swap is one short transaction: the rules, and a re-plan to them
    // starting from the first pending touchpoint (Replanner steps through
    // it afterwards, so the loop is never held for long).
    const bool replan = !SamePlanning(*previous, *next);
    const std::string fingerprint = PlanningFingerprint(*next);
    const Instant now = clock.Now();
    Status s = dispatcher->Reconfigure(*next, [&]() -> Status {
      if (Status b = store->Begin(); !b.ok()) return b;
      store->SetRules(next);
      Status planned = replan ? store->SetPlanning(fingerprint, true) : Status::Ok();
      if (planned.ok()) planned = store->Commit();
      if (!planned.ok()) {
        (void)store->Rollback();
        store->SetRules(previous);
        (void)store->Planning();  // the re-plan under way, if any, as it was
      }
      return planned;
    });
    if (!s.ok()) return ReloadFailed({s.message()}, s.message());

    rules = next;
    scheduler.SetRules(next);
    if (options.log_level.empty()) (void)SetLogLevel(next->log_level);
    WarnRestartOnly(*previous, *next);
    config.sha256 = next->sha256;
    config.loaded_at = now;
    config.reload_errors.clear();
    metrics.reloads.Add({"success"});
    ConfigMetrics();
    if (replan) {
      spdlog::info("reloaded {} (sha256 {}): planning rules changed", options.config_path,
                   next->sha256.substr(0, 12));
      replanner.Run("the rules reloaded at " + FormatRfc3339(now, UtcZone()));
    } else {
      spdlog::info("reloaded {} (sha256 {}): planning rules unchanged, nothing re-planned",
                   options.config_path, next->sha256.substr(0, 12));
    }
    fire.Rearm(true);
    return Status::Ok();
  }

  // Settings a running daemon cannot change: say they wait for a restart.
  void WarnRestartOnly(const Rules& was, const Rules& now) {
    auto warn = [](const char* key) {
      spdlog::warn("reload: '{}' changed; it takes effect at the next restart", key);
    };
    // A key the command line overrides changes nothing, even at a restart.
    auto overridden = [](const char* key, const char* flag) {
      spdlog::info("reload: '{}' changed; {} overrides it", key, flag);
    };
    if (was.listen != now.listen) {
      options.listen_from_flag ? overridden("listen", "--listen") : warn("listen");
    }
    if (was.database != now.database) {
      options.database_from_flag ? overridden("database", "--database") : warn("database");
    }
    if (was.database_sync != now.database_sync) warn("database_sync");
    if (!(was.http_request_timeout == now.http_request_timeout)) warn("http.request_timeout");
  }

  // --- watchdog and signals -----------------------------------------------

  // WATCHDOG=1 from the event loop itself: a loop stuck in one handler stops
  // the pings, and systemd restarts the daemon.
  void StartWatchdog() {
    auto interval = service::WatchdogInterval();
    if (!interval) return;
    spdlog::info("systemd watchdog: pinging every {} ms", interval->count());
    PingWatchdog(*interval);
  }
  void PingWatchdog(Millis interval) {
    service::PingWatchdog();
    watchdog.expires_after(interval);
    watchdog.async_wait([this, interval](const boost::system::error_code& ec) {
      if (!ec && !stopping) PingWatchdog(interval);
    });
  }

  void WaitForSignal() {
    signals.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        spdlog::info("received SIGHUP: reloading {}", options.config_path);
        (void)Reload();
        WaitForSignal();
        return;
      }
      spdlog::info("received {}", signo == SIGINT ? "SIGINT" : "SIGTERM");
      Stop();
    });
  }

  void Stop() {
    if (stopping) return;
    stopping = true;
    service::NotifyStopping();
    spdlog::info("stopping: finishing requests in flight");
    server.Stop();
    dispatcher->Stop();
    batcher.Stop();
    fire.Stop();
    watchdog.cancel();
    retention.Stop();
    space_timer.cancel();
    replanner.Stop();
    boost::system::error_code ignored;
    signals.cancel(ignored);
  }

  // The config in use and how the last reload went (for /healthz, /metrics).
  struct ConfigState {
    std::string sha256;
    Instant loaded_at;
    std::optional<Instant> last_reload_at;
    std::vector<std::string> reload_errors;  // of the last reload; empty if it worked
  };

  asio::io_context& io;
  const DaemonOptions options;
  DaemonMetrics metrics;
  const Clock& clock;
  std::shared_ptr<const Rules> rules;
  ConfigState config;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<StoreReader> reader;  // leased events and /metrics counts, on its thread
  std::unique_ptr<Dispatcher> dispatcher;
  Scheduler scheduler;
  std::unique_ptr<HttpServer> server_owned;
  HttpServer& server;
  asio::steady_timer watchdog;
  DiskReserve reserve;
  SpaceGuard space;
  asio::steady_timer space_timer;
  Replanner replanner;
  FireLoop fire;
  IngestBatcher batcher;
  RetentionLoop retention;
  api::RouteContext route_context;
  api::Router router;
  api::PurchaseRoutes purchase_routes;
  api::BuyerRoutes buyer_routes;
  std::unique_ptr<api::QueueRoutes> queue_routes;  // once the store reader is open
  api::DeadLetterRoutes dead_letter_routes;
  asio::signal_set signals;
  bool stopping = false;
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;

StatusOr<std::unique_ptr<Daemon>> Daemon::Start(asio::io_context& io,
                                                std::shared_ptr<const Rules> rules,
                                                const DaemonOptions& options, const Clock& clock) {
  // The port first: a daemon that cannot listen leaves the database alone.
  HttpLimits limits;
  limits.request_timeout = rules->http_request_timeout.Exact();
  auto server = std::make_unique<HttpServer>(io, limits);
  if (Status s = server->Listen(options.listen); !s.ok()) return s;
  auto store = SqliteStore::Open(options.database, rules);
  if (!store.ok() && store.status().unavailable()) {
    // A full disk (or database_max_size): say so plainly, in one line.
    auto fs = MeasureFilesystem(options.database);
    return Status::Error(
        "no room to open the database " + options.database + " (" +
        (fs.ok() ? std::to_string(fs->fs_free) + " bytes free on its disk" : "disk not measured") +
        "): " + store.status().message() + "; free some space, then start touchpointd again");
  }
  if (!store.ok()) return store.status();
  auto reader = StoreReader::Open(options.database);
  if (!reader.ok()) return reader.status();
  auto impl =
      std::make_unique<Impl>(io, rules, clock, std::move(*store), std::move(server), options);
  impl->reader = std::move(*reader);
  auto dispatcher = Dispatcher::Create(io, *impl->store, clock, *rules);
  if (!dispatcher.ok()) return dispatcher.status();
  impl->dispatcher = std::move(*dispatcher);
  impl->dispatcher->set_observer(&impl->metrics);
  Impl* self = impl.get();
  self->AddRoutes();
  self->server.Serve(
      [self](HttpRequest req, HttpRespond respond) { self->Handle(req, std::move(respond)); });
  if (options.handle_signals) {
    self->signals.add(SIGINT);
    self->signals.add(SIGTERM);
    self->signals.add(SIGHUP);
    self->WaitForSignal();
  }
  self->CheckSpace();  // a full disk at start: short of space from the outset
  self->StartPlanning();
  self->WatchSpace();
  self->fire.Start();
  self->dispatcher->Wake();  // what waited in the outboxes while down
  self->StartWatchdog();
  self->retention.Start();
  service::NotifyReady("listening on " + self->server.LocalAddress());
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

std::string Daemon::Address() const { return impl_->server.LocalAddress(); }

void Daemon::Stop() { impl_->Stop(); }

}  // namespace tp
