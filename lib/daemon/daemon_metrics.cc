#include "daemon/daemon_metrics.h"

#include <utility>

namespace tp {
namespace {

double InSeconds(Millis d) { return static_cast<double>(d.count()) / 1000.0; }

// Fire lateness: timer precision at the low end, a backlog at the high end.
const std::vector<double> kLatenessBounds = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
// One delivery attempt, up to the usual 10 s timeout and beyond.
const std::vector<double> kDurationBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10,   30};

}  // namespace

DaemonMetrics::DaemonMetrics(std::string_view version)
    : ingest_requests(registry.Counter(
          "touchpoint_ingest_requests_total",
          "POST /v1/purchases requests by outcome: accepted (200), invalid (400, 413, 415), "
          "conflict (409), error (5xx).",
          {"outcome"})),
      ingest_purchases(registry.Counter(
          "touchpoint_ingest_purchases_total",
          "Purchases in committed ingest requests by outcome: accepted or duplicate; conflict "
          "counts the purchase that made its request a 409.",
          {"outcome"})),
      events(registry.Counter(
          "touchpoint_events_total",
          "Engagement events in committed POST /v1/events requests, by type and outcome: "
          "accepted or duplicate; conflict (409) and invalid (its touchpoint_id names none of "
          "the buyer's) count the event that refused its request.",
          {"type", "outcome"})),
      engaged(registry.Counter("touchpoint_touchpoints_engaged_total",
                               "Engagement events credited to a touchpoint (the one they name, "
                               "else the last fired within the attribution window), by cadence.",
                               {"cadence"})),
      repurchases(registry.Counter(
          "touchpoint_repurchases_total",
          "Purchases after a buyer's earlier one, by whether they came by that one's runout "
          "plus repurchase_grace.",
          {"in_window"})),
      repurchases_credited(registry.Counter(
          "touchpoint_repurchases_credited_total",
          "Repurchases credited to the last touchpoint fired to the buyer within the "
          "attribution window, by its cadence.",
          {"cadence"})),
      unauthorized(registry.Counter("touchpoint_api_unauthorized_requests_total",
                                    "/v1/ requests refused with 401 (no or a wrong token).")),
      planned(registry.Counter("touchpoint_touchpoints_planned_total",
                               "Touchpoints planned pending, by cadence (at ingest and reload).",
                               {"cadence"})),
      fired(registry.Counter("touchpoint_touchpoints_fired_total",
                             "Touchpoints fired (handed to their sinks), by cadence.",
                             {"cadence"})),
      cancelled(registry.Counter(
          "touchpoint_touchpoints_cancelled_total",
          "Touchpoints cancelled (repurchase, rules changed at a reload, or a stop_on event), by "
          "cadence.",
          {"cadence"})),
      suppressed(registry.Counter("touchpoint_touchpoints_suppressed_total",
                                  "Touchpoints suppressed by an opt-out, by cadence.",
                                  {"cadence"})),
      skipped(registry.Counter(
          "touchpoint_touchpoints_skipped_total",
          "Touchpoints skipped: missed by more than misfire_grace, due before the purchase, or "
          "their step's when unmet.",
          {"cadence"})),
      deferred(registry.Counter(
          "touchpoint_touchpoints_deferred_total",
          "Deferrals of due touchpoints by the send window (when late) or the frequency cap.",
          {"cadence"})),
      lateness(registry.Histogram("touchpoint_fire_lateness_seconds",
                                  "How long after its next_at a touchpoint fired.", {},
                                  kLatenessBounds)),
      deliveries(registry.Counter(
          "touchpoint_deliveries_total",
          "Push delivery attempts by sink and outcome: delivered, retried, dead_lettered.",
          {"sink", "outcome"})),
      delivery_duration(registry.Histogram("touchpoint_delivery_duration_seconds",
                                           "Duration of push delivery attempts, by sink.", {"sink"},
                                           kDurationBounds)),
      pending(registry.Gauge("touchpoint_touchpoints_pending",
                             "Touchpoints waiting to fire (in the store).")),
      outbox(registry.Gauge("touchpoint_outbox_events",
                            "Fired events waiting in a push sink's outbox, by sink.", {"sink"})),
      dead_letters(registry.Gauge("touchpoint_dead_letters",
                                  "Dead letters waiting for a replay, by sink.", {"sink"})),
      queue_messages(registry.Gauge("touchpoint_queue_messages",
                                    "Messages in an embedded queue (leased or not), by queue.",
                                    {"queue"})),
      counts_estimated(registry.Gauge(
          "touchpoint_store_counts_estimated",
          "1 while a store count above (pending, outbox, dead letters, queue messages) is "
          "PostgreSQL's estimate (over 1,000,000 rows), else 0.")),
      store_counts_up(registry.Gauge(
          "touchpoint_store_counts_up",
          "1 when this scrape's store counts were read; 0 when the store could not be read "
          "(pending, outbox, dead letters, queue messages and whether they are estimates are "
          "then left out).")),
      circuit_open(registry.Gauge(
          "touchpoint_sink_circuit_open",
          "1 while a push sink's circuit is open or half-open (failing), else 0 (and 0 while "
          "the sink stands by: a Redis stream another daemon delivers).",
          {"sink"})),
      reloads(registry.Counter("touchpoint_config_reloads_total",
                               "Config reloads (SIGHUP) by result: success or failure.",
                               {"result"})),
      reload_ok(registry.Gauge("touchpoint_config_last_reload_successful",
                               "1 if the last reload succeeded (or none happened yet), else 0.")),
      config_loaded(registry.Gauge("touchpoint_config_loaded_timestamp_seconds",
                                   "When the config in use was loaded, in Unix seconds.")),
      config_info(registry.Gauge("touchpoint_config_info",
                                 "The config in use: its SHA-256 in the label; always 1.",
                                 {"sha256"})),
      pruned(registry.Counter("touchpoint_retention_pruned_touchpoints_total",
                              "Finished touchpoints deleted by retention.")),
      storage_short(registry.Gauge(
          "touchpoint_storage_short",
          "1 while the database has no room (disk full, or database_max_size reached): "
          "purchases are refused and firing paused; else 0.")),
      replanning(registry.Gauge(
          "touchpoint_replan_running",
          "1 while pending touchpoints are being re-planned to new rules (after a reload), else "
          "0.")),
      firing_failures(registry.Gauge(
          "touchpoint_firing_failures",
          "Firing passes (and reads of the next due time) that failed in a row, each retried a "
          "second later; 0 once a pass goes through, or while firing is paused.")),
      storage_room(registry.Gauge("touchpoint_storage_room_bytes",
                                  "Bytes the database can still grow by: its disk's free space "
                                  "(or what database_max_size leaves) plus its free pages.")),
      build_info(registry.Gauge("touchpoint_build_info",
                                "The running build: its version in the label; always 1.",
                                {"version"})),
      start_time(registry.Gauge("process_start_time_seconds",
                                "Start time of the process since the Unix epoch in seconds.")),
      resident_memory(
          registry.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.")),
      http_connections(registry.Gauge(
          "touchpoint_http_connections",
          "API connections open now; at touchpoint_http_max_connections, a new one takes the "
          "place of an idle one, or waits.")),
      http_max_connections(registry.Gauge("touchpoint_http_max_connections",
                                          "http.max_connections: the most served at once.")),
      http_idle_connections(
          registry.Gauge("touchpoint_http_connections_idle",
                         "Of the API connections open now, those idle: waiting for a request "
                         "(a new one at the most takes the place of the one idle longest).")),
      http_idle_closed(registry.Counter(
          "touchpoint_http_idle_closed_total",
          "Idle API connections closed to let a new client in, at http.max_connections.")) {
  build_info.Set({version}, 1);
  for (const char* outcome : {"accepted", "invalid", "conflict", "unavailable", "error"}) {
    ingest_requests.Add({outcome}, 0);
  }
  for (const char* outcome : {"accepted", "duplicate", "conflict"}) {
    ingest_purchases.Add({outcome}, 0);
  }
  repurchases.Add({"true"}, 0);
  repurchases.Add({"false"}, 0);
  unauthorized.Add({}, 0);
  reloads.Add({"success"}, 0);
  reloads.Add({"failure"}, 0);
  reload_ok.Set({}, 1);
  pruned.Add({}, 0);
}

void DaemonMetrics::EnableDatabase() {
  database_up = &registry.Gauge("touchpoint_database_up",
                                "1 while the PostgreSQL server answers; 0 while it does not "
                                "(purchases are refused and firing paused).");
  taken_over = &registry.Counter(
      "touchpoint_deliveries_taken_over_total",
      "Push deliveries this daemon took over from another daemon that ended while attempting "
      "them: each may have reached its sink twice.");
  held_for_order = &registry.Counter(
      "touchpoint_touchpoints_held_for_order_total",
      "Touchpoints a firing claim of this daemon took and left pending, to keep their buyer's "
      "order: an earlier one of the buyer was locked elsewhere (another daemon's claim, an "
      "ingest or re-plan write), left behind the claim frontier, or fired at a later time (a "
      "pass that began later, or a clock ahead by up to 5 s). Each claim counts its own.");
  database_up->Set({}, 1);
  taken_over->Add({}, 0);
  held_for_order->Add({}, 0);
}

void DaemonMetrics::OnTouchpoints(std::string_view cadence, TouchpointState state,
                                  std::int64_t count) {
  Count(cadence, state, count);
}

void DaemonMetrics::Count(std::string_view cadence, TouchpointState state, std::int64_t count) {
  const auto n = static_cast<double>(count);
  switch (state) {
    case TouchpointState::kPending:
      planned.Add({cadence}, n);
      break;
    case TouchpointState::kCancelled:
      cancelled.Add({cadence}, n);
      break;
    case TouchpointState::kSuppressed:
      suppressed.Add({cadence}, n);
      break;
    case TouchpointState::kSkipped:
      skipped.Add({cadence}, n);
      break;
    case TouchpointState::kFired:
    case TouchpointState::kDead:
      break;  // fired is OnFired; dead is a delivery outcome
  }
}

void DaemonMetrics::OnEngaged(std::string_view cadence) { engaged.Add({cadence}); }

void DaemonMetrics::OnRepurchase(bool in_window, std::string_view credited_cadence) {
  repurchases.Add({in_window ? "true" : "false"});
  if (!credited_cadence.empty()) repurchases_credited.Add({credited_cadence});
}

void DaemonMetrics::OnDeferred(std::string_view cadence) { deferred.Add({cadence}); }

void DaemonMetrics::OnFired(std::string_view cadence, Millis late) {
  fired.Add({cadence});
  lateness.Observe({}, InSeconds(std::max(late, Millis(0))));
}

void DaemonMetrics::OnAttempt(std::string_view sink, std::string_view outcome, Millis latency) {
  deliveries.Add({sink, outcome});
  delivery_duration.Observe({sink}, InSeconds(latency));
}

HttpRespond DaemonMetrics::CountingIngest(HttpRespond respond) {
  return [this, respond = std::move(respond)](HttpResponse r) {
    // 503: for want of space or while stopping, the client retries.
    const char* outcome = r.status == 200   ? "accepted"
                          : r.status == 409 ? "conflict"
                          : r.status == 503 ? "unavailable"
                          : r.status >= 500 ? "error"
                                            : "invalid";
    if (r.status != 401 && r.status != 405) ingest_requests.Add({outcome});
    respond(std::move(r));
  };
}

void DaemonMetrics::OnReplanned(const ReplanCounts& step, bool done) {
  for (const auto& [cadence, n] : step.cancelled_by_cadence) {
    cancelled.Add({cadence}, static_cast<double>(n));
  }
  for (const auto& [cadence, n] : step.added_by_cadence) {
    planned.Add({cadence}, static_cast<double>(n));
  }
  replanning.Set({}, done ? 0 : 1);
}

}  // namespace tp
