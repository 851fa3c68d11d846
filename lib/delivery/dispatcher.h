// Delivery to push sinks (webhooks, Redis streams) from the durable outbox
// the scheduler fills (the `deliveries` table): one worker per sink on the
// daemon's io_context, each with its own concurrency limit and circuit
// breaker, so a failing sink neither starves the others nor spins.
//
// Webhooks: every attempt is signed afresh (Standard Webhooks), retried with
// exponential backoff and jitter (or as Retry-After says) on 408, 429, 5xx
// and network errors, and dead-lettered on other 4xx or after the last
// attempt. Redis: events are XADDed in fire order, pipelined; while Redis is
// down they wait in the outbox and go, in order, when it is back.
//
// Results are written in one transaction per loop turn. An event is only
// taken again once its result is written, so nothing is attempted twice at
// once; after a crash, what was in flight is attempted again (at least once).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/rules.h"
#include "core/clock.h"
#include "core/status.h"

namespace boost::asio {
class io_context;
}

namespace tp {

class OutboxStore;

struct SinkHealth {
  std::string name;
  // "ok", "open" (backing off), "half-open" (probing), "standby" (a stream
  // another daemon sharing the store delivers).
  std::string state;
  int consecutive_failures = 0;
  std::string last_error;
  bool failing = false;  // open or half-open, and not standing by
};

// Told of every delivery attempt once its result is recorded, for metrics.
class DeliveryObserver {
 public:
  virtual ~DeliveryObserver() = default;
  // `outcome`: "delivered", "retried" or "dead_lettered".
  virtual void OnAttempt(std::string_view sink, std::string_view outcome, Millis latency) = 0;
};

class Dispatcher {
 public:
  // A worker per push sink of `rules`. Fails when a sink cannot be set up
  // (a CA file OpenSSL rejects).
  // `poll`: for a store other daemons share, look at each sink's outbox
  // at least this often, so deliveries another daemon left (it died
  // mid-attempt) are taken over even by a daemon with nothing to deliver.
  static StatusOr<std::unique_ptr<Dispatcher>> Create(boost::asio::io_context& io,
                                                      OutboxStore& store, const Clock& clock,
                                                      const Rules& rules,
                                                      std::optional<Millis> poll = std::nullopt);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // A reload's push sinks, built and not yet in use: dropping it changes
  // nothing.
  class Prepared {
   public:
    Prepared(Prepared&&) noexcept;
    Prepared& operator=(Prepared&&) noexcept;
    ~Prepared();

   private:
    friend class Dispatcher;
    struct Workers;
    explicit Prepared(std::unique_ptr<Workers> workers);
    std::unique_ptr<Workers> workers_;
  };
  // Builds the push sinks of `rules` (a reload): a sink whose delivery
  // settings are unchanged keeps its worker (connections, circuit); a
  // changed or new one gets a fresh worker. Fails, changing nothing, when a
  // sink cannot be set up (like Create()).
  StatusOr<Prepared> Prepare(const Rules& rules);
  // Puts `prepared` in use: a removed sink stops taking events and lets
  // those in flight finish.
  void Commit(Prepared prepared, const Rules& rules);
  // Outboxes may have new events (after firing, replaying, starting).
  void Wake();
  // No new attempts; those in flight finish and are recorded.
  void Stop();
  std::vector<SinkHealth> Health() const;
  // `observer` (may be null) must outlive *this.
  void set_observer(DeliveryObserver* observer);
  // Called (on the loop) when a store call fails for want of the store
  // (Unavailable): the daemon probes its database.
  void set_store_unavailable(std::function<void()> called);

  struct Impl;

 private:
  explicit Dispatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp
