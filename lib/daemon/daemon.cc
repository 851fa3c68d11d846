// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <ctime>
#include <optional>

#include "api/buyer_routes.h"
#include "api/dead_letter_routes.h"
#include "api/ingest_routes.h"
#include "api/queue_routes.h"
#include "api/report_routes.h"
#include "api/router.h"
#include "api/ui_routes.h"
#include "api/v1_gate.h"
#include "core/text.h"
#include "daemon/daemon.h"
#include "daemon/daemon_metrics.h"
#include "daemon/database_watch.h"
#include "daemon/fire_loop.h"
#include "daemon/fire_thread.h"
#include "daemon/ingest_batcher.h"
#include "daemon/off_loop.h"
#include "daemon/open_store.h"
#include "daemon/reloader.h"
#include "daemon/replanner.h"
#include "daemon/retention_loop.h"
#include "daemon/space_watch.h"
#include "daemon/status_routes.h"
#include "daemon/stop_guard.h"
#include "delivery/dispatcher.h"
#include "http/server.h"
#include "ops/service_manager.h"
#include "planner/replan.h"
#include "scheduler/scheduler.h"
#include "store/pg_store.h"
#include "store/sqlite_store.h"

namespace tp {
namespace {

namespace asio = boost::asio;

// With a store other daemons share, the fire loop and the dispatcher look
// at least this often: another daemon may have recorded an earlier
// touchpoint, or died holding touchpoints or deliveries (docs/scaling.md);
// and the re-planner looks whether another daemon's reload started the
// shared re-plan again (Replanner::FollowOthers).
constexpr Millis kSharedPoll{1000};

}  // namespace

struct Daemon::Impl {
  // `sqlite` or `pg`: `s` as what it is, which decides how the daemon
  // watches it.
  Impl(asio::io_context& io_context, std::unique_ptr<RulesInForce> r, const Clock& c,
       std::unique_ptr<Store> s, SqliteStore* sqlite, PgStore* pg,
       std::unique_ptr<HttpServer> listening, DaemonOptions opts)
      : io(io_context),
        options(std::move(opts)),
        metrics(options.version),
        clock(c),
        rules_owned(std::move(r)),
        rules(*rules_owned),
        stop_guard(pg == nullptr ? nullptr : std::make_unique<StopGuard>([](Millis waited) {
          return PgStore::CutWaiting(waited);
        })),
        store(std::move(s)),
        scheduler(*store, clock, rules),
        server_owned(std::move(listening)),
        server(*server_owned),
        watchdog(io),
        storage(Watch(sqlite, pg)),
        replanner(
            io, *store, clock,
            [this](const ReplanCounts& step, bool done) {
              metrics.OnReplanned(step, done);
              fire->Rearm(true);  // what it moved or passed, fired when due
            },
            // Nor before the ingest groups a reload handed over are written.
            [this] { return !storage->paused() && batcher.Written(); },
            [this](const Status& failed) {
              if (failed.unavailable()) storage->Check(true);
            },
            // Firing (on its own thread on PostgreSQL, which reads how far
            // the re-plan got when re-armed) waits for the re-plan from now.
            [this] {
              metrics.replanning.Set({}, 1);
              if (fire) fire->Rearm(true);
            }),
        batcher(io, *store, clock, metrics, rules,
                {.no_room = [this]() -> std::optional<std::string> {
                   if (!storage->paused()) return std::nullopt;
                   return storage->reason();
                 },
                 .storage_full = [this] { storage->Check(true); },
                 .committed = [this] { fire->Rearm(false); },
                 .written = [this] { replanner.Wake(); }}),
        retention(io, *store, clock, rules,
                  {.deleted =
                       [this](std::int64_t deleted) {
                         metrics.pruned.Add({}, static_cast<double>(deleted));
                       },
                   .failed =
                       [this](const Status& failed) {
                         if (failed.unavailable()) storage->Check(true);
                       }}),
        route_context{clock, rules,
                      [this](const Status& failed, const std::string& what) {
                        return storage->StoreFailed(failed, what);
                      }},
        off_loop(io),
        ingest_routes(
            route_context, [this] { return batcher.Closed(); },
            [this](std::vector<Purchase> items, HttpRespond respond) {
              batcher.Submit(std::move(items), std::move(respond));
            },
            [this](std::vector<EngagementEvent> items, HttpRespond respond) {
              batcher.Submit(std::move(items), std::move(respond));
            },
            [this](std::function<void()> work, std::function<void()> then) {
              off_loop.Run(std::move(work), std::move(then));
            }),
        buyer_routes(route_context, *store,
                     [this](std::string buyer, bool opt_out, HttpRespond respond) {
                       if (auto closed = batcher.Closed()) return respond(std::move(*closed));
                       batcher.Submit(OptChange{std::move(buyer), opt_out}, std::move(respond));
                     }),
        dead_letter_routes(
            route_context, *store, [this] { dispatcher->Wake(); },
            [this](std::function<void()> later) { asio::post(io, std::move(later)); }),
        signals(io) {
    scheduler.set_observer(&metrics);
    metrics.start_time.Set({}, static_cast<double>(std::time(nullptr)));
  }

  // How the store is watched: a SQLite file's disk, or whether the
  // PostgreSQL server answers.
  std::unique_ptr<StoreWatch> Watch(SqliteStore* sqlite, PgStore* pg) {
    auto changed = [this](bool paused) { SpaceChanged(paused); };
    if (pg != nullptr) {
      metrics.EnableDatabase();
      // Resumed: every session of the daemon's (the loop's, the ingest,
      // firing and re-plan threads') reconnects at its next call.
      return std::make_unique<DatabaseWatch>(
          io, [pg] { return pg->Probe(); }, [] { return PgStore::LongestWait(); }, clock, metrics,
          [changed](bool paused) {
            if (!paused) PgStore::ServerAnswers();
            changed(paused);
          });
    }
    return std::make_unique<SpaceWatch>(
        io, options.database, [sqlite] { return sqlite->Space(); },
        [] { return SqliteStore::FullFailures(); }, clock, metrics, changed);
  }

  // Short of space (or the database unreachable) stops firing (and ingest,
  // IngestBatcher asks); room again resumes it, the deliveries and a
  // re-plan step waiting for its retry (daemon/store_watch.h).
  void SpaceChanged(bool short_of_space) {
    if (stopping) return;
    if (short_of_space) return fire->Pause();
    fire->Rearm(true);
    dispatcher->Wake();
    replanner.Wake();
  }

  // Firing: on the loop over the daemon's store, or, on a store other
  // daemons share (PostgreSQL), on a thread and connection of its own
  // (daemon/fire_thread.h), so that a firing pass does not hold up the
  // requests, leases and acks.
  Status MakeFiring(bool shared) {
    auto may_fire = [this] { return !stopping && !storage->paused(); };
    if (!shared) {
      fire = std::make_unique<FireLoop>(
          io, *store, scheduler, clock,
          FireLoop::Hooks{.may_fire = may_fire,
                          .covered = [this](Instant now) { return replanner.Covers(now); },
                          .storage_full = [this] { storage->Check(true); },
                          .fired = [this] { dispatcher->Wake(); }});
      return Status::Ok();
    }
    auto thread = FireThread::Open(io, rules, clock, &metrics,
                                   {.may_fire = may_fire,
                                    .covered_until = [this] { return replanner.CoveredUntil(); },
                                    .storage_full = [this] { storage->Check(true); },
                                    .fired = [this] { dispatcher->Wake(); },
                                    .poll = kSharedPoll},
                                   PgFiringSessions(options.database));
    if (!thread.ok()) return thread.status();
    fire = std::move(*thread);
    return Status::Ok();
  }

  // The parts made once the store reader and the dispatcher exist, and the
  // routes.
  void Complete() {
    reloader = std::make_unique<Reloader>(
        options, clock, rules,
        Reloader::Parts{*store, *dispatcher, batcher, replanner, *fire, metrics});
    status_routes = std::make_unique<StatusRoutes>(
        StatusRoutes::Parts{io, options, rules, *reloader, replanner, *storage, *fire, *dispatcher,
                            *reader, metrics, clock, *store, server});
    queue_routes = std::make_unique<api::QueueRoutes>(route_context, io, *store, *reader,
                                                      reader->queue_jobs());
    report_routes = std::make_unique<api::ReportRoutes>(
        route_context, io, [this](OutcomeQuery query, api::ReportRoutes::Done done) {
          reader->Outcomes(std::move(query), std::move(done));
        });
    status_routes->AddTo(router);
    ingest_routes.AddTo(router);
    buyer_routes.AddTo(router);
    queue_routes->AddTo(router);
    dead_letter_routes.AddTo(router);
    report_routes->AddTo(router);
    api::AddUiRoutes(router);
  }

  // SIGHUP (daemon/reloader.h), told to systemd.
  void Reload() {
    if (stopping) return;
    service::NotifyReloading();
    Status s = reloader->Reload();
    service::NotifyReady(s.ok() ? "reloaded; listening on " + server.LocalAddress()
                                : "reload failed, running the previous config: " + s.message());
  }

  // Every request: /v1 needs the bearer token (when the config has tokens)
  // and JSON bodies (api/v1_gate.h); then its route answers.
  void Handle(const HttpRequest& req, HttpRespond respond) {
    if (api::IsPurchases(req.target)) respond = metrics.CountingIngest(std::move(respond));
    if (auto refused = api::CheckV1(req, rules->auth_tokens, rules->http_allowed_hosts)) {
      if (refused->status == 401) metrics.unauthorized.Add({});
      return respond(std::move(*refused));
    }
    router.Route(req, std::move(respond));
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
        Reload();
        WaitForSignal();
        return;
      }
      spdlog::info("received {}", signo == SIGINT ? "SIGINT" : "SIGTERM");
      Stop();
    });
  }

  // The loop has run out once the stop's last requests were answered, the
  // purchases queued at the stop written: a daemon on other planning
  // rules than the recorded ones says so after them (Replanner). The parts
  // go after this, in the reverse of their order below.
  ~Impl() {
    if (stopping) replanner.NoteOtherRulesOnceMore();
  }

  void Stop() {
    if (stopping) return;
    stopping = true;
    service::NotifyStopping();
    spdlog::info("stopping: finishing requests in flight");
    if (stop_guard) stop_guard->Start();
    server.Stop();
    dead_letter_routes.Stop();
    // A count of /v1/status's days or an outcomes report under way would
    // hold the stop for as long as it runs (minutes at hundreds of millions
    // of rows): it gives up, and its request is answered with the error.
    if (reader) reader->Stop();
    dispatcher->Stop();
    batcher.Stop();
    off_loop.Stop();  // (what it parses now is answered 503)
    fire->Stop();
    watchdog.cancel();
    retention.Stop();
    storage->Stop();
    replanner.Stop();
    boost::system::error_code ignored;
    signals.cancel(ignored);
  }

  asio::io_context& io;
  const DaemonOptions options;
  DaemonMetrics metrics;
  const Clock& clock;
  // The rules in force: components read them at each use, the Reloader
  // swaps them.
  std::unique_ptr<RulesInForce> rules_owned;
  RulesInForce& rules;
  // On PostgreSQL, that a frozen server cannot hold a stop; destroyed last,
  // after every part's threads were joined.
  std::unique_ptr<StopGuard> stop_guard;
  std::unique_ptr<Store> store;
  // Leased events, /metrics counts and the outcomes report, on its threads.
  std::unique_ptr<StoreReads> reader;
  std::unique_ptr<Dispatcher> dispatcher;
  Scheduler scheduler;
  std::unique_ptr<HttpServer> server_owned;
  HttpServer& server;
  asio::steady_timer watchdog;
  std::unique_ptr<StoreWatch> storage;
  Replanner replanner;
  // Made by MakeFiring() (a FireLoop or a FireThread); stopped, and its
  // thread joined, before the parts it posts to go.
  std::unique_ptr<Firing> fire;
  IngestBatcher batcher;
  RetentionLoop retention;
  api::RouteContext route_context;
  api::Router router;
  // Parses large ingest bodies.
  OffLoop off_loop;
  api::IngestRoutes ingest_routes;
  api::BuyerRoutes buyer_routes;
  api::DeadLetterRoutes dead_letter_routes;
  // Made by Complete(), once the store reader and the dispatcher exist.
  std::unique_ptr<Reloader> reloader;
  std::unique_ptr<StatusRoutes> status_routes;
  std::unique_ptr<api::QueueRoutes> queue_routes;
  std::unique_ptr<api::ReportRoutes> report_routes;
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
  limits.max_body = api::kMaxIngestBody;
  limits.max_connections = static_cast<std::size_t>(rules->http_max_connections);
  auto server = std::make_unique<HttpServer>(io, limits);
  if (Status s = server->Listen(options.listen); !s.ok()) return s;
  // Until READY=1 (or a failure): what follows opens the database.
  std::optional<service::StartExtender> extending(std::in_place);
  auto in_force = std::make_unique<RulesInForce>(rules);
  auto opened = OpenStore(options.database, *in_force);
  if (!opened.ok()) return opened.status();
  auto impl = std::make_unique<Impl>(io, std::move(in_force), clock, std::move(opened->store),
                                     opened->sqlite, opened->pg, std::move(server), options);
  impl->reader = std::move(opened->reader);
  auto dispatcher =
      Dispatcher::Create(io, *impl->store, clock, *rules,
                         opened->pg != nullptr ? std::optional<Millis>(kSharedPoll) : std::nullopt);
  if (!dispatcher.ok()) return dispatcher.status();
  impl->dispatcher = std::move(*dispatcher);
  impl->dispatcher->set_observer(&impl->metrics);
  // (On SQLite, the space watch's check each second finds a delivery's
  // record that failed for want of space: the store counts those.)
  if (opened->pg != nullptr) {
    impl->dispatcher->set_store_unavailable([raw = impl.get()] { raw->storage->Check(true); });
  }
  if (Status s = impl->MakeFiring(opened->pg != nullptr); !s.ok()) return s;
  if (opened->pg != nullptr) {
    impl->replanner.FollowOthers(kSharedPoll);
    // Ingest groups and the re-plan's steps on threads and sessions of
    // their own: a group of large requests, or a step on a server busy with
    // autovacuum, takes long enough there to hold the loop up.
    Status s = impl->batcher.UseThread(PgIngestSessions(options.database), PgStore::kGroupBuyers);
    if (!s.ok()) return s;
    s = impl->replanner.UseThread(impl->rules, PgReplanSessions(options.database));
    if (!s.ok()) return s;
  }
  Impl* self = impl.get();
  self->Complete();
  // A stranger's body is not read: the token is checked on the header.
  self->server.SetHeaderCheck([self](const HttpRequest& req) {
    auto refused =
        api::CheckV1Header(req, self->rules->auth_tokens, self->rules->http_allowed_hosts);
    if (refused && refused->status == 401) self->metrics.unauthorized.Add({});
    return refused;
  });
  self->server.SetBodyLimit(&api::BodyLimit);
  self->server.Serve(
      [self](HttpRequest req, HttpRespond respond) { self->Handle(req, std::move(respond)); });
  if (options.handle_signals) {
    self->signals.add(SIGINT);
    self->signals.add(SIGTERM);
    self->signals.add(SIGHUP);
    self->WaitForSignal();
  }
  self->storage->Start();  // a full disk at start: short of space from the outset
  self->replanner.Start(PlanningFingerprint(*rules));
  self->metrics.replanning.Set({}, self->replanner.running() ? 1 : 0);
  self->fire->Start();
  self->dispatcher->Wake();  // what waited in the outboxes while down
  self->StartWatchdog();
  self->retention.Start();
  extending.reset();  // (its thread joined: no extension after READY=1)
  service::NotifyReady("listening on " + self->server.LocalAddress());
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

std::string Daemon::Address() const { return impl_->server.LocalAddress(); }

void Daemon::Stop() { impl_->Stop(); }

}  // namespace tp
