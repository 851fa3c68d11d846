// touchpointd's metrics (docs/operations.md lists them): the families, and
// the observers that feed them from the scheduler and the dispatcher.
// Gauges that mirror the store (pending, outboxes, dead letters, queues) are
// set by the daemon at each scrape. Not thread-safe: the I/O thread only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "delivery/dispatcher.h"
#include "http/server.h"
#include "ops/metrics.h"
#include "scheduler/scheduler.h"
#include "store/replan_store.h"

namespace tp {

class DaemonMetrics final : public SchedulerObserver, public DeliveryObserver {
 public:
  explicit DaemonMetrics(std::string_view version);

  // `respond` for an ingest request, counting its outcome by status
  // (touchpoint_ingest_requests_total; 401 and 405 are not ingest).
  HttpRespond CountingIngest(HttpRespond respond);

  // A step of a re-plan went through: what it changed, counted.
  void OnReplanned(const ReplanCounts& step, bool done);

  // SchedulerObserver.
  void OnTouchpoints(std::string_view cadence, TouchpointState state, std::int64_t count) override;
  void OnDeferred(std::string_view cadence) override;
  void OnFired(std::string_view cadence, Millis late) override;
  void OnEngaged(std::string_view cadence) override;
  void OnRepurchase(bool in_window, std::string_view credited_cadence) override;
  // DeliveryObserver.
  void OnAttempt(std::string_view sink, std::string_view outcome, Millis latency) override;

  metrics::Registry registry;
  metrics::Family& ingest_requests;
  metrics::Family& ingest_purchases;
  metrics::Family& events;
  metrics::Family& engaged;
  metrics::Family& repurchases;
  metrics::Family& repurchases_credited;
  metrics::Family& unauthorized;
  metrics::Family& planned;
  metrics::Family& fired;
  metrics::Family& cancelled;
  metrics::Family& suppressed;
  metrics::Family& skipped;
  metrics::Family& deferred;
  metrics::Family& lateness;
  metrics::Family& deliveries;
  metrics::Family& delivery_duration;
  metrics::Family& pending;
  metrics::Family& outbox;
  metrics::Family& dead_letters;
  metrics::Family& queue_messages;
  metrics::Family& counts_estimated;
  metrics::Family& store_counts_up;
  metrics::Family& circuit_open;
  metrics::Family& reloads;
  metrics::Family& reload_ok;
  metrics::Family& config_loaded;
  metrics::Family& config_info;
  metrics::Family& pruned;
  metrics::Family& storage_short;
  metrics::Family& replanning;
  metrics::Family& firing_failures;
  metrics::Family& storage_room;
  metrics::Family& build_info;
  metrics::Family& start_time;
  metrics::Family& resident_memory;
  metrics::Family& http_connections;
  metrics::Family& http_max_connections;
  metrics::Family& http_idle_connections;
  metrics::Family& http_idle_closed;
  // Only with a PostgreSQL store (EnableDatabase()): whether it answers, and
  // deliveries taken over from a daemon that died mid-attempt.
  metrics::Family* database_up = nullptr;
  metrics::Family* taken_over = nullptr;
  metrics::Family* held_for_order = nullptr;
  void EnableDatabase();

 private:
  void Count(std::string_view cadence, TouchpointState state, std::int64_t count);
};

}  // namespace tp
