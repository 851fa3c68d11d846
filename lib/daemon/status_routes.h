// GET /healthz, GET /metrics and GET /v1/status (docs/api.md,
// docs/operations.md): how the daemon is, from its parts. /metrics and
// /v1/status count the store-backed gauges on a store reader's thread (a
// scan of the pending index: 50-80 ms at a million pending), and
// /v1/status its pending days at the same time on another, then render the
// page on the loop.
//
// Not thread-safe: the daemon's loop only.
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "api/router.h"
#include "config/rules.h"
#include "config/rules_in_force.h"
#include "core/clock.h"
#include "daemon/daemon.h"
#include "daemon/daemon_metrics.h"
#include "daemon/firing.h"
#include "daemon/reloader.h"
#include "daemon/replanner.h"
#include "daemon/shared_read.h"
#include "daemon/store_watch.h"
#include "delivery/dispatcher.h"
#include "http/server.h"
#include "store/store.h"
#include "store/store_reads.h"

namespace tp {

class StatusRoutes {
 public:
  struct Parts {
    boost::asio::io_context& io;
    const DaemonOptions& options;
    const RulesInForce& rules;
    const Reloader& reloader;
    const Replanner& replanner;
    StoreWatch& storage;
    const Firing& firing;
    Dispatcher& dispatcher;
    StoreReads& reader;
    DaemonMetrics& metrics;
    const Clock& clock;
    const Store& store;
    const HttpServer& server;
  };

  // The days GET /v1/status counts pending touchpoints over.
  static constexpr int kPendingDays = 30;

  explicit StatusRoutes(const Parts& parts) : parts_(parts) {}

  void AddTo(api::Router& router);

 private:
  // "degraded" while the last reload failed, the database has no room (or
  // does not answer), or the re-plan keeps failing; always 200. With
  // `withheld` (auth on and no valid token, or no auth and a Host not the
  // daemon's): states and counts only, and `withheld` saying why.
  HttpResponse Health(const char* withheld) const;
  // The days GET /v1/status counts, under which rules.
  struct StatusKey {
    std::shared_ptr<const Rules> rules;
    std::vector<Instant> boundaries;
    bool operator==(const StatusKey&) const = default;
  };
  struct DaysCounted {
    PendingDays days;
    Instant as_of;  // when the counting started
  };
  using DayReads = SharedRead<StatusKey, DaysCounted>;

  void Metrics(HttpRespond respond);
  // GET /v1/status (docs/api.md): sinks with their outbox and dead
  // letters, queue depths, and pending touchpoints per day for 30 days.
  void Status(HttpRespond respond);
  // The pending touchpoints per day of `key`, counted on the store
  // reader's days thread; `done` is called on the loop.
  void CountDays(const StatusKey& key, DayReads::Done done);
  // With the rules the days were counted under (a reload may come between).
  HttpResponse RenderStatus(const Rules& rules, const StoreGauges& gauges,
                            const DaysCounted& counted,
                            const std::vector<Instant>& boundaries) const;
  // Without the store's gauges when they could not be counted (null): the
  // daemon's own metrics still tell what it sees (the database down).
  HttpResponse RenderMetrics(const StoreGauges* gauges);
  static double ResidentBytes();

  Parts parts_;
  std::int64_t taken_over_ = 0;      // as counted in the metric so far
  std::int64_t held_for_order_ = 0;  // as counted in the metric so far
  DayReads status_reads_;
};

}  // namespace tp
