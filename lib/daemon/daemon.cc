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
#include "api/purchase_json.h"
#include "config/loader.h"
#include "core/json_parse.h"
#include "core/text.h"
#include "daemon/daemon.h"
#include "daemon/daemon_metrics.h"
#include "daemon/replanner.h"
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
// Responses keep their keys in the order written, for people reading them.
using json = nlohmann::ordered_json;
// Request bodies, as core/json_parse.h parses them.
using RequestJson = nlohmann::json;

// Firing batches per loop turn: the rest is posted, so requests interleave.
constexpr std::size_t kBatchesPerTurn = 2;
constexpr int kDefaultLeaseMax = 10;
constexpr int kMaxLeaseMax = 1000;
constexpr double kDefaultVisibilityS = 30;
constexpr double kMaxVisibilityS = 12 * 3600;
constexpr std::size_t kMaxReceipts = 10'000;
constexpr int kDefaultDeadLetterLimit = 100;
constexpr int kMaxDeadLetterLimit = 1000;
// Retention: a pass over the touchpoints table every 10 minutes, in steps of
// 2,000 row ids with a 10 ms pause between them (a few ms of work each).
constexpr std::chrono::minutes kPruneInterval{10};
constexpr std::int64_t kPruneSpan = 2000;
constexpr std::chrono::milliseconds kPrunePause{10};

HttpResponse Json(int status, const json& body) {
  return HttpResponse{status, body.dump(-1, ' ', false, json::error_handler_t::replace)};
}
HttpResponse Error(int status, std::string message) {
  return Json(status, json{{"error", std::move(message)}});
}

// {"messages": [{receipt, deliveries, event}]}, events as made.
HttpResponse LeaseResponse(const std::vector<LeasedRow>& leased) {
  std::string out = R"({"messages":[)";
  std::size_t size = out.size() + 2;
  for (const LeasedRow& r : leased) size += r.message.receipt.size() + r.message.event.size() + 64;
  out.reserve(size);
  for (std::size_t i = 0; i < leased.size(); ++i) {
    const LeasedMessage& m = leased[i].message;
    if (i > 0) out += ',';
    // A receipt is digits, a dot and hex: nothing to escape.
    out += R"({"receipt":")";
    out += m.receipt;
    out += R"(","deliveries":)";
    out += std::to_string(m.deliveries);
    out += R"(,"event":)";
    out += m.event;
    out += '}';
  }
  out += "]}";
  return HttpResponse{200, std::move(out)};
}

bool IsJson(std::string_view content_type) {
  std::string lower;
  for (char c : content_type.substr(0, content_type.find(';'))) {
    if (c != ' ' && c != '\t')
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return lower == "application/json";
}

// Decodes %XX escapes of one path segment; nullopt if malformed.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

// The value of `key` in a query string, percent-decoded; nullopt if absent.
std::optional<std::string> QueryParam(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
      std::replace(value.begin(), value.end(), '+', ' ');
      return PercentDecode(value).value_or(std::string());
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// A whole non-negative decimal number, or nullopt.
std::optional<std::int64_t> Count(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

const Zone* ZoneOrUtc(const std::string& name) {
  const Zone* zone = FindZone(name);
  return zone != nullptr ? zone : UtcZone();
}

json BuyerJson(const BuyerReport& r) {
  json purchases = json::array();
  for (const PurchaseRecord& p : r.purchases) {
    const Zone* zone = ZoneOrUtc(p.zone);
    purchases.push_back({
        {"order_id", p.purchase.order_id},
        {"product", p.purchase.product},
        {"quantity", p.purchase.quantity},
        {"amount", p.purchase.amount},
        {"purchased_at", FormatRfc3339(p.purchase.purchased_at, zone)},
        {"timezone", p.zone},
        {"tier", p.tier},
        {"attributes",
         p.purchase.attributes.empty() ? json::object() : json::parse(p.purchase.attributes)},
        {"received_at", FormatRfc3339(p.received_at, UtcZone())},
    });
  }
  json touchpoints = json::array();
  for (const TouchpointRecord& t : r.touchpoints) {
    const Zone* zone = ZoneOrUtc(t.zone);
    json history = json::array();
    for (const Transition& h : t.history) {
      history.push_back({{"at", FormatRfc3339(h.at, zone)},
                         {"status", std::string(StateName(h.state))},
                         {"reason", h.reason}});
    }
    json item = {
        {"id", t.id},
        {"buyer_id", r.buyer_id},
        {"order_id", t.order_id},
        {"cadence", t.cadence},
        {"step", t.step},
        {"topic", t.topic},
        {"tier", t.tier},
        {"product", t.product},
        {"due_at", FormatRfc3339(t.due_at, zone)},
        {"fire_at", t.fire_at ? json(FormatRfc3339(*t.fire_at, zone)) : json(nullptr)},
        {"status", std::string(StateName(t.state))},
    };
    if (t.state == TouchpointState::kPending) {
      item["next_at"] = FormatRfc3339(t.next_at, zone);
      item["reason"] = t.next_at == t.due_at
                           ? "waiting until due_at"
                           : "waiting until " + FormatRfc3339(t.next_at, zone) +
                                 (t.history.empty() ? ": due outside the send window"
                                                    : " (" + t.history.back().reason + ")");
    } else if (t.state != TouchpointState::kFired) {
      item["reason"] = t.reason;
    }
    item["history"] = std::move(history);
    touchpoints.push_back(std::move(item));
  }
  return {{"buyer_id", r.buyer_id},
          {"tier", r.tier.empty() ? json(nullptr) : json(r.tier)},
          {"opted_out", r.opted_out},
          {"purchases", std::move(purchases)},
          {"touchpoints", std::move(touchpoints)}};
}

}  // namespace

struct Daemon::Impl {
  struct PendingIngest {
    std::vector<Purchase> items;
    HttpRespond respond;
  };

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
        timer(io),
        retry(io),
        watchdog(io),
        prune_timer(io),
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
        signals(io),
        clock_jumps(io) {
    config.sha256 = rules->sha256;
    config.loaded_at = clock.Now();
    scheduler.set_observer(&metrics);
    metrics.start_time.Set({}, static_cast<double>(std::time(nullptr)));
    ConfigMetrics();
  }

  // Whether `id`, though not an id ingest takes today, names a recorded
  // buyer: only UTF-8 of an id's size is looked up.
  bool KnownBuyer(std::string_view id) {
    if (id.empty() || id.size() > kMaxIdBytes || InvalidUtf8At(id)) return false;
    auto report = store->GetBuyer(id);
    return report.ok() && report->has_value();
  }

  // --- scheduling ---------------------------------------------------------

  void Rearm(bool force = false) {
    if (stopping || space.short_of_space()) return;
    auto next = store->NextWakeup();
    if (!next.ok()) return RetrySoon("reading the next wakeup: " + next.status().message());
    if (!*next) {
      armed.reset();
      timer.cancel();
      return;
    }
    if (!force && armed && *armed == **next) return;
    armed = **next;
    timer.expires_at(std::chrono::time_point_cast<std::chrono::system_clock::duration>(**next));
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // re-armed or stopped
      armed.reset();
      RunDue();
    });
  }

  void RunDue() {
    if (stopping || space.short_of_space()) return;
    // A touchpoint the re-plan has not reached waits for it (Replanned()).
    if (!replanner.Covers(clock.Now())) return;
    auto stats = scheduler.RunDue(kBatchesPerTurn);
    if (!stats.ok() && stats.status().unavailable()) {
      spdlog::error("firing due touchpoints: {}", stats.status().message());
      return CheckSpace(true);
    }
    if (!stats.ok()) return RetrySoon("firing due touchpoints: " + stats.status().message());
    if (stats->fired + stats->deferred + stats->skipped > 0) {
      spdlog::debug("scheduler: fired {}, deferred {}, skipped {}", stats->fired, stats->deferred,
                    stats->skipped);
    }
    if (stats->skipped > 0) {
      spdlog::warn("skipped {} missed by more than misfire_grace",
                   Plural(static_cast<long long>(stats->skipped), "touchpoint"));
    }
    if (stats->fired > 0) dispatcher->Wake();
    if (stats->more) {
      asio::post(io, [this] { RunDue(); });
      return;
    }
    Rearm();
  }

  // A store error while scheduling (disk full, I/O error): log it and try
  // again in a second rather than spin or give up.
  void RetrySoon(const std::string& what) {
    spdlog::error("{}; retrying in 1s", what);
    retry.expires_after(std::chrono::seconds(1));
    retry.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Rearm(true);
    });
  }

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
    Rearm(true);
  }

  // --- disk space -----------------------------------------------------------

  // Every second, and after a write failed for want of space: short of space
  // stops firing (Rearm, RunDue) and purchases (IngestPurchases); room again
  // resumes both (daemon/space_guard.h).
  void CheckSpace(bool write_failed = false) {
    if (stopping) return;
    if (space.Check(write_failed)) {
      if (space.short_of_space()) {
        armed.reset();
        timer.cancel();
        retry.cancel();
      } else {
        Rearm(true);
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
    if (!s.unavailable()) return Error(500, what + ": " + s.message());
    CheckSpace(true);
    return Unavailable(what + ": " + s.message());
  }

  static HttpResponse Unavailable(std::string message) {
    HttpResponse r = Error(503, std::move(message) + "; try again later");
    r.headers.emplace_back("Retry-After", "10");
    return r;
  }

  // The wall clock was set: the timer's deadline must be recomputed.
  void WatchClockJumps() {
    const int fd = ::timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) {
      spdlog::warn("cannot watch for wall clock changes: {}", std::strerror(errno));
      return;
    }
    clock_jumps.assign(fd);
    ArmClockJumpWatch();
  }
  void ArmClockJumpWatch() {
    itimerspec spec{};
    spec.it_value.tv_sec = std::time(nullptr) + 10L * 365 * 86400;
    if (::timerfd_settime(clock_jumps.native_handle(), TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
                          &spec, nullptr) != 0) {
      spdlog::warn("cannot watch for wall clock changes: {}", std::strerror(errno));
      return;
    }
    clock_jumps.async_wait(
        asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
          if (ec || stopping) return;
          std::uint64_t expirations = 0;
          if (::read(clock_jumps.native_handle(), &expirations, sizeof expirations) < 0 &&
              errno == ECANCELED) {
            spdlog::info("wall clock changed; rescheduling");
          }
          ArmClockJumpWatch();
          Rearm(true);
        });
  }

  // --- HTTP ---------------------------------------------------------------

  void Handle(const HttpRequest& req, HttpRespond respond) {
    const std::string_view target = req.target;
    const auto path = target.substr(0, target.find('?'));
    const auto parts = Segments(path);
    const bool post = req.method == "POST";
    const bool get = req.method == "GET" || req.method == "HEAD";
    auto method_not_allowed = [&](const char* allow) {
      HttpResponse r = Error(405, "method " + req.method + " not allowed here (use " + allow + ")");
      r.headers.emplace_back("Allow", allow);
      respond(std::move(r));
    };

    if (parts.size() == 1 && parts[0] == "healthz") {
      if (!get) return method_not_allowed("GET");
      return respond(Health());
    }
    if (parts.size() == 1 && parts[0] == "metrics") {
      if (!get) return method_not_allowed("GET");
      return Metrics(std::move(respond));
    }
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
    if (parts.empty() || parts[0] != "v1") return respond(Error(404, "no such endpoint"));
    if (!rules->auth_tokens.empty() && !BearerAuthorized(req.authorization, rules->auth_tokens)) {
      HttpResponse r =
          Error(401, req.authorization.empty() ? "this API needs an Authorization: Bearer token"
                                               : "the bearer token is not valid");
      r.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="touchpoint")");
      metrics.unauthorized.Add({});
      return respond(std::move(r));
    }
    if (post && !req.body.empty() && !IsJson(req.content_type)) {
      return respond(
          Error(415, "Content-Type must be application/json, got '" + req.content_type + "'"));
    }

    if (parts.size() == 2 && parts[1] == "purchases") {
      if (!post) return method_not_allowed("POST");
      return IngestPurchases(req.body, std::move(respond));
    }
    if (parts.size() >= 3 && parts[1] == "buyers") {
      auto buyer = PercentDecode(parts[2]);
      if (!buyer) return respond(Error(400, "malformed percent-encoding in the buyer id"));
      // The same rules as a purchase's buyer_id: no one else can exist, but
      // for buyers recorded before ids were checked (control characters
      // were let in then): they can still be looked up and opted out.
      if (auto problem = IdProblem(*buyer); problem && !KnownBuyer(*buyer)) {
        return respond(
            Json(400, {{"error", "the buyer id in the path " + *problem}, {"field", "buyer_id"}}));
      }
      if (parts.size() == 3) {
        if (!get) return method_not_allowed("GET");
        return respond(GetBuyer(*buyer));
      }
      if (parts.size() == 4 && (parts[3] == "opt-out" || parts[3] == "opt-in")) {
        if (!post) return method_not_allowed("POST");
        return respond(SetOptOut(*buyer, parts[3] == "opt-out"));
      }
    }
    if (parts.size() == 4 && parts[1] == "queues" && (parts[3] == "lease" || parts[3] == "ack")) {
      if (!post) return method_not_allowed("POST");
      auto queue = PercentDecode(parts[2]);
      if (!queue || !IsQueue(*queue)) {
        return respond(Error(404, "unknown queue '" + std::string(parts[2]) + "'"));
      }
      if (parts[3] == "lease") return Lease(*queue, req.body, std::move(respond));
      return respond(Ack(*queue, req.body));
    }
    if (parts.size() >= 2 && parts[1] == "dead-letters") {
      if (parts.size() == 2) {
        if (!get) return method_not_allowed("GET");
        return respond(ListDeadLetters(req.target));
      }
      if (parts.size() == 3 && parts[2] == "replay") {
        if (!post) return method_not_allowed("POST");
        return respond(ReplayAll(req.body));
      }
      if (parts.size() == 4 && parts[3] == "replay") {
        if (!post) return method_not_allowed("POST");
        return respond(ReplayOne(parts[2]));
      }
    }
    respond(Error(404, "no such endpoint"));
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
    return Json(200, {{"status", degraded ? "degraded" : "ok"},
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
    reader->Count(
        std::move(queues), std::move(push_sinks),
        OnLoop([this, respond = std::move(respond)](StatusOr<StoreGauges> gauges) {
          respond(gauges.ok() ? RenderMetrics(*gauges) : Error(500, gauges.status().message()));
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
    if (flush_posted) FlushIngest();

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
    Rearm(true);
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

  // --- retention ----------------------------------------------------------

  void SchedulePrune(std::chrono::steady_clock::duration delay) {
    prune_timer.expires_after(delay);
    prune_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) PruneStep();
    });
  }

  // One step of a pass; the config may turn retention on or off at a reload.
  void PruneStep() {
    if (stopping) return;
    if (!rules->retention) {
      prune_cursor = prune_deleted = 0;
      return SchedulePrune(kPruneInterval);
    }
    // A pass keeps the cutoff it started with (the store reads the queues
    // once per cutoff), unless a reload lengthened the retention meanwhile.
    const Instant cutoff = clock.Now() - rules->retention->Exact();
    if (prune_cursor == 0 || cutoff < prune_cutoff) prune_cutoff = cutoff;
    auto step = store->PruneFinished(prune_cutoff, prune_cursor, kPruneSpan);
    if (!step.ok()) {
      spdlog::error("retention: {}; trying again in 10 minutes", step.status().message());
      prune_cursor = prune_deleted = 0;
      return SchedulePrune(kPruneInterval);
    }
    prune_deleted += step->deleted;
    metrics.pruned.Add({}, static_cast<double>(step->deleted));
    if (!step->done) {
      prune_cursor = step->next;
      return SchedulePrune(kPrunePause);
    }
    if (prune_deleted > 0) {
      spdlog::info("retention: deleted {} finished before {} (retention {})",
                   Plural(prune_deleted, "touchpoint"), FormatRfc3339(prune_cutoff, UtcZone()),
                   rules->retention->ToString());
    }
    prune_cursor = prune_deleted = 0;
    SchedulePrune(kPruneInterval);
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

  bool IsPushSink(std::string_view name) const {
    return std::any_of(rules->sinks.begin(), rules->sinks.end(),
                       [&](const Sink& s) { return s.IsPush() && s.name == name; });
  }

  HttpResponse ListDeadLetters(std::string_view target) {
    const auto sink_param = QueryParam(target, "sink");
    if (sink_param && !IsPushSink(*sink_param)) {
      return Json(400, {{"error", "sink must name a webhook or redis sink"}, {"field", "sink"}});
    }
    const std::string sink = sink_param.value_or("");
    std::int64_t after = 0;
    if (auto v = QueryParam(target, "after")) {
      auto n = Count(*v);
      if (!n) return Json(400, {{"error", "after must be a dead letter id"}, {"field", "after"}});
      after = *n;
    }
    int limit = kDefaultDeadLetterLimit;
    if (auto v = QueryParam(target, "limit")) {
      auto n = Count(*v);
      if (!n || *n < 1 || *n > kMaxDeadLetterLimit) {
        return Json(400, {{"error", "limit must be an integer from 1 to " +
                                        std::to_string(kMaxDeadLetterLimit)},
                          {"field", "limit"}});
      }
      limit = static_cast<int>(*n);
    }
    auto letters = store->DeadLetters(sink, after, limit);
    if (!letters.ok()) return Error(500, letters.status().message());
    json items = json::array();
    for (const DeadLetter& d : *letters) {
      items.push_back({{"id", d.id},
                       {"sink", d.sink},
                       {"touchpoint_id", d.touchpoint_id},
                       {"attempts", d.attempts},
                       {"last_error", d.last_error},
                       {"dead_at", FormatRfc3339(d.dead_at, UtcZone())},
                       {"event", json::parse(d.event, nullptr, false)}});
    }
    const bool full = static_cast<int>(letters->size()) == limit;
    return Json(200, {{"dead_letters", std::move(items)},
                      {"next_after", full ? json(letters->back().id) : json(nullptr)}});
  }

  HttpResponse ReplayOne(std::string_view id_text) {
    auto id = Count(id_text);
    if (!id || *id == 0) return Error(404, "no dead letter '" + std::string(id_text) + "'");
    auto replayed = store->ReplayDeadLetters(*id, "", clock.Now());
    if (!replayed.ok()) return StoreFailed(replayed.status(), "cannot replay");
    if (*replayed == 0) return Error(404, "no dead letter " + std::to_string(*id));
    spdlog::info("dead letter {} replayed", *id);
    dispatcher->Wake();
    return Json(200, {{"replayed", *replayed}});
  }

  // Which dead letters must be said: {"all": true}, or {"sink": NAME} for
  // one sink's. A bare POST replays nothing.
  HttpResponse ReplayAll(const std::string& body) {
    RequestJson req;
    if (auto bad = ParseObject(body, req, {"all", "sink"})) return *bad;
    const auto all = req.find("all");
    const auto named = req.find("sink");
    if ((all == req.end()) == (named == req.end())) {
      return Json(400, {{"error",
                         "say which dead letters to replay: {\"all\": true} for every one, or "
                         "{\"sink\": NAME} for one sink's"},
                        {"field", nullptr}});
    }
    std::string sink;
    if (all != req.end() && *all != true) {
      return Json(400, {{"error", "all must be true (or use sink)"}, {"field", "all"}});
    }
    if (named != req.end()) {
      if (!named->is_string() || !IsPushSink(named->get<std::string>())) {
        return Json(400, {{"error", "sink must name a webhook or redis sink"}, {"field", "sink"}});
      }
      sink = named->get<std::string>();
    }
    auto replayed = store->ReplayDeadLetters(0, sink, clock.Now());
    if (!replayed.ok()) return StoreFailed(replayed.status(), "cannot replay");
    spdlog::info("{} replayed{}", Plural(*replayed, "dead letter"),
                 sink.empty() ? "" : " on " + sink);
    dispatcher->Wake();
    return Json(200, {{"replayed", *replayed}});
  }

  bool IsQueue(std::string_view name) const {
    for (const Sink& s : rules->sinks) {
      if (s.type == Sink::Type::kQueue && s.name == name) return true;
    }
    return false;
  }

  void IngestPurchases(const std::string& body, HttpRespond respond) {
    if (stopping) return respond(Error(503, "shutting down"));
    ParsedPurchases parsed = ParsePurchases(body, *rules);
    if (parsed.error) {
      const auto& e = *parsed.error;
      return respond(Json(400, {{"error", e.error},
                                {"index", e.index ? json(*e.index) : json(nullptr)},
                                {"field", e.field.empty() ? json(nullptr) : json(e.field)}}));
    }
    if (space.short_of_space()) {
      return respond(
          Unavailable("the database has no room for purchases: " + space.report().reason));
    }
    pending.push_back({std::move(parsed.items), std::move(respond)});
    if (!flush_posted) {
      flush_posted = true;
      asio::post(io, [this] { FlushIngest(); });
    }
  }

  // One transaction for every request that queued up; a savepoint each.
  void FlushIngest() {
    flush_posted = false;
    std::vector<PendingIngest> batch = std::move(pending);
    pending.clear();
    std::vector<HttpResponse> responses(batch.size());
    if (Status s = store->Begin(); !s.ok()) {
      spdlog::error("ingest: {}", s.message());
      if (s.unavailable()) CheckSpace(true);
      for (auto& p : batch) p.respond(Unavailable("cannot write to the database: " + s.message()));
      return;
    }
    PurchaseCounts counts;
    for (std::size_t r = 0; r < batch.size(); ++r) {
      metrics.StageBegin();
      responses[r] = IngestOne(batch[r].items, counts);
      if (responses[r].status < 500) continue;
      // A failed write may have ended the whole transaction (SQLite rolls
      // back by itself on a full disk or an I/O error): the requests before
      // are not recorded either, and those after must not start afresh.
      (void)store->Rollback();
      metrics.StageAbort();
      for (std::size_t k = 0; k < batch.size(); ++k) {
        batch[k].respond(k == r ? std::move(responses[r])
                                : Unavailable("not recorded: another request written with it "
                                              "failed"));
      }
      return;
    }
    if (Status s = store->Commit(); !s.ok()) {
      spdlog::error("ingest commit: {}", s.message());
      (void)store->Rollback();
      metrics.StageAbort();
      if (s.unavailable()) CheckSpace(true);
      for (auto& p : batch) {
        p.respond(Unavailable("cannot commit to the database: " + s.message()));
      }
      return;
    }
    metrics.StageCommit();
    metrics.ingest_purchases.Add({"accepted"}, static_cast<double>(counts.accepted));
    metrics.ingest_purchases.Add({"duplicate"}, static_cast<double>(counts.duplicates));
    metrics.ingest_purchases.Add({"conflict"}, static_cast<double>(counts.conflicts));
    for (std::size_t r = 0; r < batch.size(); ++r) batch[r].respond(std::move(responses[r]));
    Rearm();
  }

  struct PurchaseCounts {
    std::int64_t accepted = 0, duplicates = 0, conflicts = 0;
  };

  // One request in its savepoint; `counts` grows only if it is released.
  HttpResponse IngestOne(const std::vector<Purchase>& items, PurchaseCounts& counts) {
    if (Status s = store->Savepoint(); !s.ok()) return StoreFailed(s, "cannot record purchases");
    json results = json::array();
    int accepted = 0, duplicates = 0, planned = 0, skipped = 0, cancelled = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto outcome = scheduler.Ingest(items[i]);
      if (!outcome.ok() || outcome->kind == IngestOutcome::Kind::kConflict) {
        (void)store->RollbackTo();
        metrics.StageRollbackRequest();
        if (outcome.ok()) ++counts.conflicts;
        if (!outcome.ok()) {
          spdlog::error("ingest: {}", outcome.status().message());
          return StoreFailed(outcome.status(), "cannot record purchase");
        }
        const std::string& field = outcome->conflict_field;
        return Json(409,
                    {{"error", "order_id '" + items[i].order_id + "' was already recorded with " +
                                   (field.empty() ? "different content" : "another " + field)},
                     {"index", i},
                     {"field", field.empty() ? "order_id" : field},
                     {"order_id", items[i].order_id}});
      }
      json result = {{"order_id", items[i].order_id}};
      if (outcome->kind == IngestOutcome::Kind::kDuplicate) {
        ++duplicates;
        result["status"] = "duplicate";
      } else {
        ++accepted;
        planned += outcome->planned;
        skipped += outcome->skipped;
        cancelled += outcome->cancelled;
        result["status"] = "accepted";
        result["tier"] = rules->tiers[outcome->tier].name;
        result["touchpoints"] = outcome->planned;
        result["skipped"] = outcome->skipped;
        result["cancelled"] = outcome->cancelled;
      }
      results.push_back(std::move(result));
    }
    if (Status s = store->Release(); !s.ok()) {
      metrics.StageRollbackRequest();
      return StoreFailed(s, "cannot record purchases");
    }
    counts.accepted += accepted;
    counts.duplicates += duplicates;
    return Json(200, {{"accepted", accepted},
                      {"duplicates", duplicates},
                      {"touchpoints_planned", planned},
                      {"touchpoints_skipped", skipped},
                      {"touchpoints_cancelled", cancelled},
                      {"results", std::move(results)}});
  }

  HttpResponse GetBuyer(const std::string& buyer) {
    auto report = store->GetBuyer(buyer);
    if (!report.ok()) return Error(500, report.status().message());
    if (!report->has_value()) return Error(404, "unknown buyer '" + buyer + "'");
    return Json(200, BuyerJson(**report));
  }

  HttpResponse SetOptOut(const std::string& buyer, bool opt_out) {
    auto pending_before = store->PendingOf(buyer);
    if (!pending_before.ok()) return StoreFailed(pending_before.status(), "cannot read the buyer");
    Status s = opt_out ? scheduler.OptOut(buyer) : scheduler.OptIn(buyer);
    if (!s.ok()) return StoreFailed(s, opt_out ? "cannot opt out" : "cannot opt in");
    json body = {{"buyer_id", buyer}, {"opted_out", opt_out}};
    if (opt_out) body["suppressed"] = *pending_before;
    return Json(200, body);
  }

  // Parses an optional JSON object body (core/json_parse.h); the 400 that
  // says what is wrong, with the field when there is one.
  static std::optional<HttpResponse> ParseObject(const std::string& body, RequestJson& out,
                                                 std::initializer_list<const char*> allowed) {
    out = RequestJson::object();
    if (body.empty()) return std::nullopt;
    ParsedJson parsed = ParseJson(body);
    if (parsed.error) {
      const JsonParseError& e = *parsed.error;
      json answer = {{"error", e.path.empty() ? e.message : e.PathText() + ": " + e.message}};
      if (!e.path.empty() && !e.path[0].index) answer["field"] = Excerpt(e.path[0].key);
      return Json(400, answer);
    }
    out = std::move(parsed.value);
    if (!out.is_object()) return Error(400, "the body must be a JSON object");
    for (const auto& item : out.items()) {
      const std::string& key = item.key();
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
        return Json(400, {{"error", "unknown field '" + Excerpt(key) + "' (expected " +
                                        JoinKeys(allowed) + ")"},
                          {"field", Excerpt(key)}});
      }
    }
    return std::nullopt;
  }

  static std::string JoinKeys(std::initializer_list<const char*> keys) {
    std::string out;
    for (const char* k : keys) out += (out.empty() ? "" : ", ") + std::string(k);
    return out;
  }

  // The lease is taken here; its events are made, and the answer written,
  // on the store reader's thread, and the answer goes out from the loop.
  void Lease(const std::string& queue, const std::string& body, HttpRespond respond) {
    int max = kDefaultLeaseMax;
    Millis visibility(static_cast<std::int64_t>(kDefaultVisibilityS * 1000));
    if (auto bad = ParseLease(body, max, visibility)) return respond(std::move(*bad));
    auto leased = store->TakeLease(queue, max, visibility, clock.Now());
    if (!leased.ok()) return respond(StoreFailed(leased.status(), "cannot lease"));
    if (leased->empty()) return respond(LeaseResponse(*leased));
    // The answer is written on the reader's thread too.
    reader->Fill(
        std::move(*leased), queue,
        [then = OnLoop(std::move(respond))](StatusOr<std::vector<LeasedRow>> rows) mutable {
          then(rows.ok() ? LeaseResponse(*rows) : Error(500, rows.status().message()));
        });
  }

  // The lease request's fields, or the 400 that says what is wrong.
  static std::optional<HttpResponse> ParseLease(const std::string& body, int& max,
                                                Millis& visibility) {
    RequestJson req;
    if (auto bad = ParseObject(body, req, {"max", "visibility_s"})) return bad;
    if (auto it = req.find("max"); it != req.end()) {
      if (!it->is_number_integer() || it->get<std::int64_t>() < 1 ||
          it->get<std::int64_t>() > kMaxLeaseMax) {
        return Json(400,
                    {{"error", "max must be an integer from 1 to " + std::to_string(kMaxLeaseMax)},
                     {"field", "max"}});
      }
      max = it->get<int>();
    }
    if (auto it = req.find("visibility_s"); it != req.end()) {
      if (!it->is_number() || !(it->get<double>() > 0) || it->get<double>() > kMaxVisibilityS) {
        return Json(400, {{"error",
                           "visibility_s must be a number of seconds, more than 0 and "
                           "at most 43200"},
                          {"field", "visibility_s"}});
      }
      visibility = Millis(static_cast<std::int64_t>(it->get<double>() * 1000));
    }
    return std::nullopt;
  }

  HttpResponse Ack(const std::string& queue, const std::string& body) {
    RequestJson req;
    if (auto bad = ParseObject(body, req, {"receipts"})) return *bad;
    auto it = req.find("receipts");
    if (it == req.end() || !it->is_array()) {
      return Json(400, {{"error", "receipts must be an array of strings"}, {"field", "receipts"}});
    }
    if (it->size() > kMaxReceipts) {
      return Json(400,
                  {{"error", "at most " + std::to_string(kMaxReceipts) + " receipts per request"},
                   {"field", "receipts"}});
    }
    std::vector<std::string> receipts;
    for (const RequestJson& r : *it) {
      if (!r.is_string()) {
        return Json(400,
                    {{"error", "receipts must be an array of strings"}, {"field", "receipts"}});
      }
      receipts.push_back(r.get<std::string>());
    }
    auto acked = store->Ack(queue, receipts, clock.Now());
    if (!acked.ok()) return StoreFailed(acked.status(), "cannot ack");
    return Json(200, {{"acked", *acked}});
  }

  void Stop() {
    if (stopping) return;
    stopping = true;
    service::NotifyStopping();
    spdlog::info("stopping: finishing requests in flight");
    server.Stop();
    dispatcher->Stop();
    timer.cancel();
    retry.cancel();
    watchdog.cancel();
    prune_timer.cancel();
    space_timer.cancel();
    replanner.Stop();
    boost::system::error_code ignored;
    signals.cancel(ignored);
    clock_jumps.close(ignored);
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
  asio::system_timer timer;
  asio::steady_timer retry;
  asio::steady_timer watchdog;
  asio::steady_timer prune_timer;
  DiskReserve reserve;
  SpaceGuard space;
  asio::steady_timer space_timer;
  Replanner replanner;
  std::int64_t prune_cursor = 0;
  Instant prune_cutoff;  // of the pass under way
  std::int64_t prune_deleted = 0;
  asio::signal_set signals;
  asio::posix::stream_descriptor clock_jumps;
  std::optional<Instant> armed;
  std::vector<PendingIngest> pending;
  bool flush_posted = false;
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
  self->server.Serve(
      [self](HttpRequest req, HttpRespond respond) { self->Handle(req, std::move(respond)); });
  if (options.handle_signals) {
    self->signals.add(SIGINT);
    self->signals.add(SIGTERM);
    self->signals.add(SIGHUP);
    self->WaitForSignal();
  }
  self->WatchClockJumps();
  self->CheckSpace();  // a full disk at start: short of space from the outset
  self->StartPlanning();
  self->WatchSpace();
  self->Rearm(true);
  self->dispatcher->Wake();  // what waited in the outboxes while down
  self->StartWatchdog();
  self->SchedulePrune(std::chrono::seconds(0));
  service::NotifyReady("listening on " + self->server.LocalAddress());
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

std::string Daemon::Address() const { return impl_->server.LocalAddress(); }

void Daemon::Stop() { impl_->Stop(); }

}  // namespace tp
